"""View memory (issue 14): open_fits stays proportional to what it returns.

Before, every row was padded to the longest vector: 100 small entries plus one legal
1.9 M-value β took 1.8 GB of RSS, and two legal block records (4 000 blocks, one of them
1.9 M values) asked numpy for 113 GiB. Now the size is computed from the counts before
anything is allocated (``max_bytes``, a clear error naming ``ragged=True``), and
``ragged=True`` returns CF contiguous ragged arrays whose memory is that of the values.
Peaks are measured with tracemalloc (allocations, not time).
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import gamstore
from gamstore.records import BlockWarmStartRecord, IteratePayload
from gamstore.views.assemble import (
    DEFAULT_MAX_BYTES,
    ViewTooLargeError,
    assemble_fits,
    ragged_row,
    view_nbytes,
)
from gamstore.views.catalog import write_catalog
from gamstore.views.listing import list_infos, read_rows
from gamstore.views.synthetic import populate

BIG = 1_900_000  # one legal β: 15.2 MB, under the 16 MiB entry cap
N_SMALL = 100
MiB = 1 << 20


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    """(result or raised exception, peak bytes allocated while running ``fn``)."""
    tracemalloc.start()
    try:
        try:
            out: Any = fn()
        except Exception as exc:  # noqa: BLE001 - returned for the caller to check
            out = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


def _small(i: int) -> IteratePayload:
    return IteratePayload(
        rho=np.array([0.5, float(i)]), cost=float(i), eval_id=i, beta=np.arange(20.0) + i
    )


@pytest.fixture(scope="module")
def outer_store() -> Any:
    """100 small outer iterates and one with a 1.9 M-value β (memory store)."""
    store = gamstore.open_store(f"memory://views-memory-{uuid.uuid4().hex}")
    for i in range(N_SMALL):
        assert store.save("outer", f"small-{i}", _small(i), kind="final") is not None
    big = IteratePayload(
        rho=np.array([1.0]), cost=-1.0, eval_id=1, beta=np.linspace(-1.0, 1.0, BIG)
    )
    assert store.save("outer", "big", big, kind="final") is not None
    return store


def test_padded_view_too_large_is_refused_before_allocating(outer_store: Any) -> None:
    out, peak = _peak(lambda: gamstore.open_fits(outer_store, keyspace="outer"))
    assert isinstance(out, ViewTooLargeError), out
    assert isinstance(out, ValueError)
    text = str(out)
    assert "max_bytes" in text and "ragged=True" in text and "gamstore.open_entry" in text
    assert out.nbytes > 1.5e9 and out.max_bytes == DEFAULT_MAX_BYTES  # 101 rows x 1.9 M x 9
    assert peak < 150 * MiB, peak  # the rows were read (15 MB of β), nothing padded


def test_ragged_view_memory_is_that_of_the_values(outer_store: Any) -> None:
    ds, peak = _peak(lambda: gamstore.open_fits(outer_store, keyspace="outer", ragged=True))
    assert isinstance(ds, xr.Dataset), ds
    assert peak < 150 * MiB, peak  # padded: > 1.5 GB
    assert ds.sizes["fit"] == N_SMALL + 1
    assert ds.sizes["coef"] == BIG + 20 * N_SMALL
    assert ds.beta.dims == ("coef",) and ds.n_coef.dims == ("fit",)
    assert ds.n_coef.attrs["sample_dimension"] == "coef"
    assert int(ds.n_coef.sum()) == ds.sizes["coef"]
    assert "beta_mask" not in ds and ds.attrs["gamstore"]["ragged"] is True
    # every row's vectors are exactly the stored ones
    keys = [str(k) for k in ds.key.values]
    for i, key in enumerate(keys):
        beta = ragged_row(ds, "beta", i)
        rho = ragged_row(ds, "rho", i)
        assert isinstance(beta, np.ndarray) and isinstance(rho, np.ndarray)
        if key == "big":
            np.testing.assert_array_equal(beta, np.linspace(-1.0, 1.0, BIG))
        else:
            j = int(key.split("-")[1])
            np.testing.assert_array_equal(beta, _small(j).beta)
            np.testing.assert_array_equal(rho, _small(j).rho)


def _block_record(key: str, n_blocks: int, big: int) -> BlockWarmStartRecord:
    dims = [1] * (n_blocks - 1) + [big]
    return BlockWarmStartRecord(
        key=key,
        n_rows=10,
        block_names=[f"b{i}" for i in range(n_blocks)],
        block_dims=dims,
        rho=np.zeros(2),
        block_beta=[np.full(d, float(i)) for i, d in enumerate(dims)],
    )


def test_many_blocks_with_one_long_block(tmp_path: Path) -> None:
    """Before: two legal block records (4 000 blocks, one block of ~1.9 M values) made
    open_fits ask for a 113 GiB padded array."""
    store = gamstore.open_store(f"memory://views-blocks-{uuid.uuid4().hex}")
    big = 1_700_000  # with 4 000 array objects the entry stays under the 16 MiB cap
    for k in ("a", "b"):
        assert store.save("block", k, _block_record(k, 4000, big)) is not None
    out, peak = _peak(lambda: gamstore.open_fits(store, keyspace="block"))
    assert isinstance(out, ViewTooLargeError), out
    assert out.nbytes > 100 * (1 << 30)  # what padding would have asked for
    assert peak < 200 * MiB, peak
    ds, peak = _peak(lambda: gamstore.open_fits(store, keyspace="block", ragged=True))
    assert isinstance(ds, xr.Dataset), ds
    assert peak < 200 * MiB, peak
    assert ds.sizes["block"] == 8000 and ds.n_block.values.tolist() == [4000, 4000]
    assert ds.sizes["coef"] == 2 * (3999 + big)
    blocks = ragged_row(ds, "block_beta", 1)
    assert isinstance(blocks, list) and len(blocks) == 4000
    assert blocks[-1].size == big and float(blocks[-1][0]) == 3999.0
    assert [float(b[0]) for b in blocks[:3]] == [0.0, 1.0, 2.0]
    assert list(ds.block_name.values[:2]) == ["b0", "b1"]


@pytest.mark.parametrize("keyspace", ["artifact", "block", "outer"])
def test_ragged_equals_padded(tmp_path: Path, keyspace: str) -> None:
    """The two representations hold the same numbers (padded = the reference)."""
    store = gamstore.open_store(tmp_path / "s")
    populate(store, 4, seed=11)
    padded = gamstore.open_fits(store, keyspace=keyspace, catalog="never")
    ragged = gamstore.open_fits(store, keyspace=keyspace, catalog="never", ragged=True)
    assert list(padded.fit.values) == list(ragged.fit.values)
    for name in ("objective", "n_rows", "converged", "key", "created"):
        assert padded[name].equals(ragged[name]), name
    nested = {"artifact": ("rho", "beta"), "block": ("block_beta",), "outer": ()}[keyspace]
    flat = {"artifact": (), "block": ("rho",), "outer": ("rho", "beta")}[keyspace]
    group = {"artifact": "term", "block": "block", "outer": None}[keyspace]
    for i in range(padded.sizes["fit"]):
        for name in flat:
            n = int(padded[f"n_{padded[name].dims[1]}"][i])
            want = padded[name].values[i, :n]
            np.testing.assert_array_equal(ragged_row(ragged, name, i), want)
        for name in nested:
            inner = padded[name].dims[2]
            n_groups = int(padded[f"n_{group}"][i])
            got = ragged_row(ragged, name, i)
            assert isinstance(got, list) and len(got) == n_groups
            for g in range(n_groups):
                n = int(padded[f"n_{inner}"][i, g])
                np.testing.assert_array_equal(got[g], padded[name].values[i, g, :n])
    # the sizes the check uses are the real ones, to the byte for the arrays
    rows, _ = read_rows(store, list_infos(store, keyspace))
    for is_ragged, ds in ((False, padded), (True, ragged)):
        arrays = sum(v.nbytes for v in ds.data_vars.values() if v.dtype != object)
        assert view_nbytes(rows, keyspace, ragged=is_ragged) >= arrays


def test_catalog_leaves_out_a_keyspace_over_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "s"
    store = gamstore.open_store(root)
    populate(store, 2, seed=3, keyspaces=("block",))
    for i in range(3):
        store.save("outer", f"small-{i}", _small(i), kind="final")
    big = IteratePayload(rho=np.ones(1), cost=0.0, eval_id=1, beta=np.ones(BIG))
    store.save("outer", "big", big, kind="final")
    # a small cap for the test: the outer keyspace (4 x 1.9 M padded) does not fit it
    monkeypatch.setattr("gamstore.views.catalog.DEFAULT_MAX_BYTES", 32 * MiB)
    info = write_catalog(store)
    assert "outer" not in info.keyspaces and "block" in info.keyspaces
    assert "left out of the catalog" in caplog.text
    assert gamstore.open_fits(root, keyspace="block").attrs["gamstore"]["source"] == "catalog"
    ds = gamstore.open_fits(root, keyspace="outer", ragged=True)
    assert ds.attrs["gamstore"]["source"] == "listing" and ds.sizes["fit"] == 4
    small = gamstore.open_fits(root, keyspace="block", ragged=True)  # from the catalog
    assert small.attrs["gamstore"]["source"] == "catalog" and small.attrs["gamstore"]["ragged"]


def test_engine_and_arguments(tmp_path: Path) -> None:
    root = tmp_path / "s"
    populate(gamstore.open_store(root), 2, seed=1)
    ds = xr.open_dataset(root, engine="gamstore", keyspace="outer", ragged=True)
    assert "beta_mask" not in ds and ds.n_coef.attrs["sample_dimension"] == "coef"
    with pytest.raises(ViewTooLargeError, match="max_bytes"):
        xr.open_dataset(root, engine="gamstore", keyspace="outer", max_bytes=100)
    with pytest.raises(TypeError, match="ragged: expected True or False"):
        gamstore.open_fits(root, ragged="yes")  # type: ignore[arg-type]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_bytes: expected an int > 0 or None"):
            gamstore.open_fits(root, max_bytes=bad)  # type: ignore[arg-type]
    assert gamstore.open_fits(root, max_bytes=None).sizes["fit"] == 2
    tree = xr.open_datatree(root, engine="gamstore", ragged=True)
    assert tree["outer"].dataset.n_coef.attrs["sample_dimension"] == "coef"
    with pytest.raises(ViewTooLargeError):
        xr.open_datatree(root, engine="gamstore", max_bytes=100)
    empty = assemble_fits([], "artifact", ragged=True, max_bytes=1)  # nothing to refuse
    assert empty.sizes["fit"] == 0 and "n_term" in empty


def test_catalog_chunk_that_inflates_is_not_inflated(tmp_path: Path) -> None:
    """A catalog is untrusted input too: a 100 KB gzip chunk that inflates to 100 MB (pointer
    digests rewritten to match) used to be inflated whole before the size check."""
    import gzip
    import json

    import blake3

    root = tmp_path / "s"
    store = gamstore.open_store(root)
    populate(store, 3, seed=2, keyspaces=("outer",))
    info = write_catalog(store)
    pointer_path = root / ".catalog" / "current.json"
    pointer = json.loads(pointer_path.read_text())
    rel = next(r for r in pointer["objects"] if r.startswith("outer/objective/c"))
    bomb = gzip.compress(b"\0" * (100 * MiB), compresslevel=9)
    (root / ".catalog" / info.folder / rel).write_bytes(bomb)
    pointer["objects"][rel] = {"size": len(bomb), "digest": blake3.blake3(bomb).hexdigest()}
    pointer_path.write_text(json.dumps(pointer))
    ds, peak = _peak(lambda: gamstore.open_fits(root, keyspace="outer"))
    assert isinstance(ds, xr.Dataset), ds
    assert ds.attrs["gamstore"]["source"] == "listing" and ds.sizes["fit"] == 3
    assert peak < 30 * MiB, peak  # before: > 100 MB
