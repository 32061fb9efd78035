"""run_loso on a dask LocalCluster (2 worker processes) with one S3 store on a moto server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate
from gamstore.store import open_store

NUMERIC = ["rho", "edf", "reml", "heldout_deviance"]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.mark.s3
def test_dask_s3_equals_serial(client: Any, s3_store_url: str, s3_options: dict[str, Any]) -> None:
    data: pd.DataFrame = simulate("poisson", n=1000, n_subjects=5, seed=4)
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
    for name in NUMERIC:
        np.testing.assert_allclose(ds[name].values, serial[name].values, rtol=1e-6, err_msg=name)
    assert set(ds["warm_source"].sel(start="warm").values) <= {"cross-fit", "session"}
    # both workers took part and wrote their fold records to the shared S3 store
    assert len({str(w) for w in ds["worker"].values.ravel()}) == 2
    keyspaces = {info.keyspace for info in store.entries()}
    assert len(list(store.entries())) > 1 and keyspaces
