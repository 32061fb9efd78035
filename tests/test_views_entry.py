"""open_entry: one stored entry as an xarray DataTree (real stores, values checked)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gamstore
from gamstore.views.entry import EntryNotFoundError, entry_tree, find_entry
from gamstore.views.synthetic import artifact_record, populate, synthetic_fit


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = gamstore.open_store(tmp_path / "store")
    populate(s, 3, seed=11)
    return s


def test_artifact_entry_tree(store: Any, tmp_path: Path) -> None:
    fit = synthetic_fit(11, 1)
    key, record = artifact_record(fit, "fit-11-1")
    tree = gamstore.open_entry(tmp_path / "store", "artifact", key)
    assert tree.attrs["keyspace"] == "artifact" and tree.attrs["key"] == key
    assert tree.attrs["record_type"] == "fit_artifact"
    assert tree.attrs["family"] == fit.family
    assert tree.attrs["descriptor_key"] == record.descriptor.descriptor_key().hex()
    assert tree.attrs["created"].endswith("Z")
    assert float(tree["objective"]) == fit.objective and int(tree["n_rows"]) == fit.n_rows
    assert set(tree["terms"].children) == {str(i) for i in range(len(fit.beta))}
    for i, (rho, beta) in enumerate(zip(fit.rho, fit.beta, strict=True)):
        node = tree[f"terms/{i}"]
        np.testing.assert_array_equal(node["beta"].values, beta)
        np.testing.assert_array_equal(node["rho"].values, rho)
        assert node.attrs["identity"] == record.terms[i].identity.hex()
        assert node["beta"].dims == ("coef",)
    assert tree["terms/1"].attrs["basis_kind"] == "ps"


def test_block_and_outer_entries(store: Any) -> None:
    fit = synthetic_fit(11, 2)
    block = gamstore.open_entry(store, "block", "block/fit-11-2")
    np.testing.assert_array_equal(block["rho"].values, fit.rho_flat)
    for i, beta in enumerate(fit.beta):
        np.testing.assert_array_equal(block[f"blocks/{i}/beta"].values, beta)
        assert block[f"blocks/{i}"].attrs["block_name"] == fit.block_names[i]
    assert int(block["inner/cycles"]) == 3 and bool(block["inner/converged"])
    outer = gamstore.open_entry(store, "outer", "outer/fit-11-2", which="latest")
    np.testing.assert_array_equal(outer["beta"].values, fit.beta_flat)
    assert outer.attrs["kind"] == "final"  # as stored, even though another producer reads it
    assert int(outer["eval_id"]) == 2 and outer.attrs["iteration"] == 2


def test_by_entry_id_and_memory_store() -> None:
    url = f"memory://entry-{uuid.uuid4().hex}"
    s = gamstore.open_store(url)
    ids = populate(s, 2, seed=4, keyspaces=("outer",))["outer"]
    tree = gamstore.open_entry(url, "outer", entry_id=ids[1])
    assert tree.attrs["entry_id"] == ids[1]
    np.testing.assert_array_equal(tree["rho"].values, synthetic_fit(4, 1).rho_flat)
    entry = find_entry(s, None, entry_id=ids[0])  # searched in every keyspace
    assert entry.key == "outer/fit-4-0"
    assert entry_tree(entry).attrs["entry_id"] == ids[0]


def test_missing_and_bad_arguments(store: Any) -> None:
    with pytest.raises(EntryNotFoundError, match="no readable entry"):
        gamstore.open_entry(store, "outer", "outer/nope")
    with pytest.raises(EntryNotFoundError, match="no entry with id"):
        gamstore.open_entry(store, "outer", entry_id="0" * 16 + "-00000000-00000000")
    with pytest.raises(ValueError, match="exactly one"):
        gamstore.open_entry(store, "outer")
    with pytest.raises(ValueError, match="exactly one"):
        gamstore.open_entry(store, "outer", "k", entry_id="x")
    with pytest.raises(ValueError, match="keyspace"):
        gamstore.open_entry(store, "bogus", "k")
    with pytest.raises(ValueError, match="which"):
        gamstore.open_entry(store, "outer", "k", which="oldest")
    with pytest.raises(ValueError, match="keyspace: required"):
        find_entry(store, None, "outer/fit-11-0")


@pytest.mark.s3
def test_open_entry_s3(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    s = gamstore.open_store(s3_store_url, storage_options=s3_options)
    populate(s, 1, seed=8, keyspaces=("block",))
    tree = gamstore.open_entry(s3_store_url, "block", "block/fit-8-0", storage_options=s3_options)
    np.testing.assert_array_equal(tree["rho"].values, synthetic_fit(8, 0).rho_flat)


def test_inner_keyspace_record(tmp_path: Path) -> None:
    from gamstore.records import WarmStartRecord

    s = gamstore.open_store(tmp_path / "inner")
    record = WarmStartRecord(
        key="inner/k",
        n_rows=50,
        n_cols=3,
        rho=np.array([0.5, -1.0]),
        beta=np.array([1.0, 2.0, 3.0]),
        prev_rho=np.array([0.4, -0.9]),
        last_inner_iters=7,
        last_inner_converged=True,
    )
    eid = s.save("inner", "inner/k", record, objective=12.5, iteration=4)
    assert eid is not None
    tree = gamstore.open_entry(s, "inner", "inner/k")
    np.testing.assert_array_equal(tree["beta"].values, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tree["prev_rho"].values, [0.4, -0.9])
    assert int(tree["iterations"]) == 7 and bool(tree["converged"]) and int(tree["n_cols"]) == 3
    ds = gamstore.open_fits(s, "inner")
    assert ds.sizes["fit"] == 1 and ds["fit"].values[0] == eid
    np.testing.assert_array_equal(ds["rho"].values[0], [0.5, -1.0])
    assert float(ds["objective"][0]) == 12.5 and int(ds["iterations"][0]) == 4
    assert int(ds["n_rows"][0]) == 50 and bool(ds["converged"][0])


class _Dummy:
    """A record type the views have no rule for (generic tree, skipped by open_fits)."""

    RECORD_TYPE = "views_test_dummy"

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def to_parts(self) -> Any:
        from gamstore.records import ArrayPart, RecordParts

        return RecordParts(
            {"note": "dummy"},
            {
                "vals": ArrayPart(self.values, ("n",)),
                "sub/0": ArrayPart(np.arange(2, dtype=np.int64), ("m",)),
            },
        )

    @classmethod
    def from_parts(cls, fields: Any, arrays: Any) -> _Dummy:
        return cls(np.asarray(arrays["vals"]))


def test_unknown_record_type_gives_generic_tree(tmp_path: Path) -> None:
    s = gamstore.open_store(tmp_path / "dummy", record_types={"views_test_dummy": _Dummy})
    populate(s, 1, seed=1, keyspaces=("outer",))
    eid = s.save("outer", "dummy-key", _Dummy(np.array([1.5, 2.5, 3.5])))
    tree = gamstore.open_entry(s, "outer", entry_id=eid)
    assert tree.attrs["record_type"] == "views_test_dummy"
    np.testing.assert_array_equal(tree["vals/values"].values, [1.5, 2.5, 3.5])
    np.testing.assert_array_equal(tree["sub/0/values"].values, [0, 1])
    ds = gamstore.open_fits(s, "outer")  # the dummy entry has no row; the iterate one does
    assert ds.sizes["fit"] == 1 and ds.attrs["gamstore"]["skipped"] == 1
