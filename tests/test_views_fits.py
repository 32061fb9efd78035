"""open_fits / xr.open_dataset(engine="gamstore") over real stores (local, memory, S3)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import gamstore
from gamstore.views.backend import GamstoreBackendEntrypoint
from gamstore.views.synthetic import populate, synthetic_fit

N_FITS = 6
SEED = 3


def _check_artifact_values(ds: xr.Dataset, n: int = N_FITS, seed: int = SEED) -> None:
    assert ds.sizes["fit"] == n
    for i in range(n):
        fit = synthetic_fit(seed, i)
        row = ds.isel(fit=i)
        assert row["family"].item() == fit.family
        assert int(row["n_term"]) == len(fit.beta)
        assert int(row["n_rows"]) == fit.n_rows
        assert bool(row["converged"])
        np.testing.assert_allclose(float(row["objective"]), fit.objective, rtol=0, atol=0)
        for t, (rho, beta) in enumerate(zip(fit.rho, fit.beta, strict=True)):
            assert int(row["n_coef"][t]) == beta.size
            assert int(row["n_penalty"][t]) == rho.size
            np.testing.assert_array_equal(row["beta"].values[t, : beta.size], beta)
            np.testing.assert_array_equal(row["rho"].values[t, : rho.size], rho)
            assert not row["beta_mask"].values[t, beta.size :].any()
        assert row["term_basis"].values[0] == "parametric"
        assert len(row["descriptor_key"].item()) == 64
    assert ds["created"].dtype == np.dtype("datetime64[ns]")
    assert (np.diff(ds["created"].values.astype(np.int64)) > 0).all()


@pytest.fixture
def local_store(tmp_path: Path) -> Any:
    store = gamstore.open_store(tmp_path / "store")
    populate(store, N_FITS, seed=SEED)
    return store


def test_open_fits_local_artifact_values(local_store: Any, tmp_path: Path) -> None:
    ds = gamstore.open_fits(tmp_path / "store")
    _check_artifact_values(ds)
    assert ds.attrs["gamstore"]["source"] == "listing"
    assert ds["rho"].attrs["long_name"] == "log smoothing parameter"
    assert ds["objective"].attrs["units"] == "1"
    # an open store handle works as well as the URL
    xr.testing.assert_identical(ds, gamstore.open_fits(local_store))


def test_open_fits_block_and_outer(local_store: Any) -> None:
    block = gamstore.open_fits(local_store, "block")
    outer = gamstore.open_fits(local_store, "outer")
    assert block.sizes["fit"] == outer.sizes["fit"] == N_FITS
    for i in range(N_FITS):
        fit = synthetic_fit(SEED, i)
        b = block.isel(fit=i)
        assert list(b["block_name"].values[: len(fit.block_names)]) == list(fit.block_names)
        np.testing.assert_array_equal(b["rho"].values[: b["n_penalty"].item()], fit.rho_flat)
        for j, beta in enumerate(fit.beta):
            np.testing.assert_array_equal(b["block_beta"].values[j, : beta.size], beta)
        assert int(b["iterations"]) == 3  # inner cycles of the synthetic summary
        o = outer.isel(fit=i)
        np.testing.assert_array_equal(o["beta"].values[: int(o["n_coef"])], fit.beta_flat)
        assert o["kind"].item() == "final" and bool(o["converged"])
        assert int(o["iterations"]) == i
        assert float(o["objective"]) == fit.objective
    assert outer["key"].values[0] == f"outer/fit-{SEED}-0"


def test_empty_keyspace_and_memory_store() -> None:
    url = f"memory://views-{uuid.uuid4().hex}"
    store = gamstore.open_store(url)
    populate(store, 2, seed=1, keyspaces=("outer",))
    assert gamstore.open_fits(url, "inner").sizes["fit"] == 0
    outer = gamstore.open_fits(url, "outer")
    np.testing.assert_array_equal(
        outer["rho"].values[1, : int(outer["n_penalty"][1])], synthetic_fit(1, 1).rho_flat
    )


def test_corrupt_entry_is_skipped(local_store: Any, tmp_path: Path) -> None:
    info = sorted(local_store.entries("outer"), key=lambda i: i.created)[0]
    chunk = tmp_path / "store" / info.path / "values" / "0"
    data = bytearray(chunk.read_bytes())
    data[0] ^= 0xFF
    chunk.write_bytes(bytes(data))
    ds = gamstore.open_fits(tmp_path / "store", "outer")  # read-only view: nothing deleted
    assert ds.sizes["fit"] == N_FITS - 1
    assert info.entry_id not in set(ds["fit"].values)
    assert ds.attrs["gamstore"]["skipped"] == 1


def test_xarray_engine(local_store: Any, tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    ds = xr.open_dataset(url, engine="gamstore", keyspace="block", drop_variables=["nbytes"])
    assert "nbytes" not in ds and ds.sizes["fit"] == N_FITS
    assert GamstoreBackendEntrypoint().guess_can_open(url)
    assert not GamstoreBackendEntrypoint().guess_can_open(str(tmp_path))
    assert not GamstoreBackendEntrypoint().guess_can_open("s3://bucket/x")
    # guessed without engine= for a local gamstore directory
    assert xr.open_dataset(url).sizes["fit"] == N_FITS
    tree = xr.open_datatree(url, engine="gamstore")
    assert set(tree.children) == {"inner", "block", "outer", "artifact", "from"}
    assert tree["artifact"].to_dataset().sizes["fit"] == N_FITS
    assert tree["inner"].to_dataset().sizes["fit"] == 0


def test_bad_input(tmp_path: Path, local_store: Any) -> None:
    with pytest.raises(ValueError, match="keyspace"):
        gamstore.open_fits(local_store, "nope")
    with pytest.raises(ValueError, match="no store directory"):
        gamstore.open_fits(tmp_path / "missing")
    with pytest.raises(ValueError, match="empty store URL"):
        gamstore.open_fits("  ")
    with pytest.raises(ValueError, match="scheme"):
        gamstore.open_fits("ftp://host/x")
    with pytest.raises(TypeError, match="url_or_store"):
        gamstore.open_fits(42)
    with pytest.raises(ValueError, match="catalog"):
        gamstore.open_fits(local_store, catalog="sometimes")
    with pytest.raises(ValueError, match="storage_options"):
        gamstore.open_fits(local_store, storage_options={"anon": True})
    not_a_store = tmp_path / "other"
    not_a_store.mkdir()
    (not_a_store / "zarr.json").write_text(
        '{"zarr_format": 3, "node_type": "group", "attributes": {}}'
    )
    with pytest.raises(ValueError, match="not a gamstore root"):
        gamstore.open_fits(not_a_store)


@pytest.mark.s3
def test_open_fits_s3(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    store = gamstore.open_store(s3_store_url, storage_options=s3_options)
    populate(store, N_FITS, seed=SEED, keyspaces=("artifact", "outer"))
    ds = gamstore.open_fits(s3_store_url, storage_options=s3_options)
    _check_artifact_values(ds)
    engine = xr.open_dataset(
        s3_store_url, engine="gamstore", keyspace="outer", storage_options=s3_options
    )
    assert engine.sizes["fit"] == N_FITS


def test_fresh_process_reads_every_entry_concurrently(tmp_path: Path) -> None:
    # regression: concurrent first decodes raced the lazy registration of FitArtifact
    import json
    import subprocess
    import sys

    store = gamstore.open_store(tmp_path / "store")
    populate(store, 24, seed=1, keyspaces=("artifact",))
    code = (
        "import json, sys, gamstore\n"
        "ds = gamstore.open_fits(sys.argv[1], catalog='never')\n"
        "print(json.dumps([int(ds.sizes['fit']), ds.attrs['gamstore']['skipped']]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [24, 0]
