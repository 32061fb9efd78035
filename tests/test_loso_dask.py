"""run_loso on a dask LocalCluster (2 worker processes) with one object store: S3 on a moto
server, and a small LOSO on every object store (S3, GCS, Azure emulators)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from requires import require

from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate
from gamstore.store import open_store

# (name, rtol, atol): the warm folds may start from different parents than in the serial
# run (the newest artifact wins), so they agree to the optimiser's tolerance, not bitwise;
# ρ only to ~1e-3 along the flat directions of the REML surface
TOLERANCES = [
    ("reml", 1e-9, 0.0),
    ("heldout_deviance", 1e-6, 0.0),
    ("edf", 1e-4, 0.0),
    ("rho", 0.0, 1e-3),
]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    try:
        import distributed
    except ImportError:
        require(False, "dask.distributed")
        raise
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.mark.s3
def test_dask_s3_equals_serial(client: Any, s3_store_url: str, s3_options: dict[str, Any]) -> None:
    data: pd.DataFrame = simulate("poisson", n=800, n_subjects=4, seed=4)
    model = GAM([s("x0"), s("x1"), s("x2")], family="poisson")
    serial = run_loso(data, model, subject="subj", compare_cold=True)
    store = open_store(s3_store_url, storage_options=s3_options)
    ds = run_loso(
        data,
        model,
        subject="subj",
        store=store,
        storage_options=s3_options,
        executor=client,
        compare_cold=True,
    )
    assert ds.attrs["executor"] == "dask"
    assert (ds["status"] == "ok").all()
    for name, rtol, atol in TOLERANCES:
        np.testing.assert_allclose(
            ds[name].values, serial[name].values, rtol=rtol, atol=atol, err_msg=name
        )
    # the cold folds do not depend on the order of the folds: those agree exactly
    for name in ("reml", "rho", "n_outer", "n_pirls_iters"):
        np.testing.assert_array_equal(
            ds[name].sel(start="cold").values, serial[name].sel(start="cold").values, name
        )
    assert set(ds["warm_source"].sel(start="warm").values) <= {"cross-fit", "session"}
    # both workers took part and wrote their fold records to the shared S3 store
    assert len({str(w) for w in ds["worker"].values.ravel()}) == 2
    keyspaces = {info.keyspace for info in store.entries()}
    assert len(list(store.entries())) > 1 and keyspaces


def test_dask_with_an_open_store_and_no_storage_options(client: Any, object_store: Any) -> None:
    """The workers reopen the store from Store.spec(): endpoint and credentials included
    (S3, GCS and Azure: each service's options travel to the workers)."""
    data: pd.DataFrame = simulate("poisson", n=300, n_subjects=3, seed=5)
    model = GAM([s("x0", k=6)], family="poisson")
    store = open_store(object_store.url(), storage_options=object_store.options)
    ds = run_loso(data, model, subject="subj", store=store, executor=client)
    assert (ds["status"] == "ok").all(), [str(e) for e in ds["error"].values.ravel()]
    assert set(ds["warm_source"].sel(start="warm").values) <= {"cross-fit", "session"}
    # the workers wrote their fold records to the shared store, through the same service
    reopened = open_store(object_store.url(), storage_options=object_store.options)
    assert len(list(reopened.entries())) > 1
