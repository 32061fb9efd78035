"""Entry provenance (issue 13 item 9): which fit, on which data, in which run wrote an entry.

GAM.fit and run_loso record the response and covariate names, the model terms, the rows
used, the subject column and held-out label, a run id and the gamstore version in every
entry's marker; open_fits, ``gamstore ls`` and ``gamstore show`` show them, the artifact's
``term`` dimension is labelled with the term names, and the full-data artifact is a
``final``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import gamstore
from gamstore.cli import EXIT_OK, main
from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate
from gamstore.store import codec
from gamstore.store.layout import MARKER, entry_prefix, key_folder
from gamstore.store.provenance import check_provenance, current_provenance, provenance
from gamstore.store.testing import block_record

TERMS = ["(parametric)", "s(x0)", "s(x1)"]


@pytest.fixture(scope="module")
def loso_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """A LOSO run of 3 subjects into a local store: (store path, data, result)."""
    df = simulate("gaussian")
    df = df[df["subj"] < 3].reset_index(drop=True)
    path = tmp_path_factory.mktemp("prov") / "store"
    res = run_loso(df, GAM([s("x0"), s("x1")]), subject="subj", y="y", store=str(path))
    return path, df, res


def _entries(store: Any, keyspace: str) -> list[Any]:
    out = [store.read_entry(info) for info in store.entries(keyspace)]
    assert all(e is not None for e in out)
    return sorted(out, key=lambda e: e.created)


def test_loso_entries_carry_provenance(loso_store: tuple[Path, Any, Any]) -> None:
    path, df, res = loso_store
    run_id = res.attrs["run_id"]
    assert isinstance(run_id, str) and len(run_id) == 16
    store = gamstore.open_store(path, read_only=True)
    (artifact,) = _entries(store, "artifact")
    assert artifact.provenance == {
        "response": "y",
        "covariates": ["x0", "x1"],
        "terms": TERMS,
        "n_rows": len(df),
        "subject_column": "subj",
        "held_out": None,
        "run_id": run_id,
        "gamstore_version": gamstore.__version__,
    }
    blocks = _entries(store, "block")
    held = sorted((e.provenance["held_out"], e.provenance["n_rows"]) for e in blocks[1:])
    sizes = df.groupby("subj").size()
    assert held == [(str(k), len(df) - int(sizes[k])) for k in (0, 1, 2)]
    assert blocks[0].provenance["held_out"] is None
    assert {e.provenance["run_id"] for e in blocks} == {run_id}
    # each block record maps back to its fold: its held-out label and its row count agree
    for e in blocks:
        assert e.record.n_rows == e.provenance["n_rows"]


def test_full_data_artifact_is_final_for_every_reader(loso_store: tuple[Path, Any, Any]) -> None:
    path, _, _ = loso_store
    # another process (another producer identity) reads the store
    other = gamstore.open_store(path, read_only=True, producer=f"other-{uuid.uuid4().hex}")
    info = next(iter(other.entries("artifact")))
    assert (other.read_marker(info) or {})["kind"] == "final"
    ds = gamstore.open_fits(other, "artifact", catalog="never")
    assert list(ds["kind"].values) == ["final"]


def test_open_fits_labels_terms_and_shows_provenance(loso_store: tuple[Path, Any, Any]) -> None:
    path, df, res = loso_store
    ds = gamstore.open_fits(path, "artifact", catalog="never")
    assert list(ds["term"].values) == TERMS  # names, not 0..n
    assert list(ds["term_name"].values[0]) == TERMS
    assert ds["rho"].sel(term="s(x1)").shape == (1, ds.sizes["penalty"])
    row = ds.isel(fit=0)
    assert (str(row["response"].values), str(row["covariates"].values)) == ("y", "x0,x1")
    assert (str(row["subject_column"].values), str(row["held_out"].values)) == ("subj", "")
    assert str(row["run_id"].values) == res.attrs["run_id"]
    assert str(row["gamstore_version"].values) == gamstore.__version__
    assert int(row["n_rows"].values) == len(df)
    blocks = gamstore.open_fits(path, "block", catalog="never")
    assert list(blocks["block"].values) == TERMS
    assert sorted(blocks["held_out"].values) == ["", "0", "1", "2"]


def test_catalog_keeps_provenance(loso_store: tuple[Path, Any, Any], tmp_path: Path) -> None:
    import shutil

    from gamstore.views.catalog import write_catalog

    path, _, _ = loso_store
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    write_catalog(gamstore.open_store(copy))
    ds = gamstore.open_fits(copy, "block", catalog="require")
    listed = gamstore.open_fits(copy, "block", catalog="never")
    assert list(ds["block"].values) == TERMS
    assert list(ds["held_out"].values) == list(listed["held_out"].values)
    assert list(ds["run_id"].values) == list(listed["run_id"].values)


def test_ls_and_show_print_provenance(loso_store: tuple[Path, Any, Any]) -> None:
    path, _, res = loso_store
    runner = CliRunner()
    out = runner.invoke(main, ["ls", str(path), "--json", "-k", "block"], catch_exceptions=False)
    assert out.exit_code == EXIT_OK, out.output
    rows = json.loads(out.output)
    assert sorted(r["held_out"] or "" for r in rows) == ["", "0", "1", "2"]
    assert {r["run_id"] for r in rows} == {res.attrs["run_id"]}
    assert all(r["subject_column"] == "subj" and r["covariates"] == ["x0", "x1"] for r in rows)
    table = runner.invoke(main, ["ls", str(path), "-k", "block"], catch_exceptions=False)
    assert "subj=1" in table.output and "none (full data)" in table.output
    entry_id = next(r["entry_id"] for r in rows if r["held_out"] == "2")
    shown = runner.invoke(main, ["show", str(path), entry_id, "--json"], catch_exceptions=False)
    assert shown.exit_code == EXIT_OK, shown.output
    prov = json.loads(shown.output)["provenance"]
    assert prov["held_out"] == "2" and prov["terms"] == TERMS and prov["response"] == "y"
    text = runner.invoke(main, ["show", str(path), entry_id], catch_exceptions=False).output
    assert "held_out" in text and res.attrs["run_id"] in text


def test_plain_fit_gets_its_own_run_id() -> None:
    df = simulate("gaussian")
    store = gamstore.open_store(f"memory://prov-{uuid.uuid4().hex}")
    model = GAM([s("x0")])
    model.fit(df, y="y", store=store)
    model.fit(df.iloc[:1500], y="y", store=store)
    runs = {e.provenance["run_id"] for e in _entries(store, "block")}
    assert len(runs) == 2
    e = _entries(store, "block")[0]
    assert e.provenance["response"] == "y"
    assert "subject_column" not in e.provenance and "held_out" not in e.provenance
    with provenance(run_id="my-run"):
        model.fit(df.iloc[:1000], y="y", store=store)
    assert _entries(store, "block")[-1].provenance["run_id"] == "my-run"


def test_store_save_provenance_argument_and_scopes() -> None:
    store = gamstore.open_store(f"memory://prov-{uuid.uuid4().hex}")
    with provenance(subject_column="id", held_out="7", run_id="r1"):
        with provenance(response="y", n_rows=90):
            assert current_provenance()["held_out"] == "7"
            store.save("block", "a", block_record("a"), provenance={"held_out": "8"})
    assert current_provenance() == {}
    e = store.lookup("block", "a")
    assert e is not None and e.provenance is not None
    assert e.provenance["held_out"] == "8" and e.provenance["run_id"] == "r1"
    assert e.provenance["n_rows"] == 90 and e.provenance["gamstore_version"]
    store.save("block", "b", block_record("b"))  # outside any scope: the version only
    b = store.lookup("block", "b")
    assert b is not None and b.provenance == {"gamstore_version": gamstore.__version__}


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"n_rows": -1}, "provenance.n_rows"),
        ({"n_rows": True}, "provenance.n_rows"),
        ({"covariates": "x0"}, "provenance.covariates"),
        ({"covariates": ["x", 3]}, r"provenance.covariates\[1\]"),
        ({"response": "y" * 300}, "provenance.response"),
        ({"secret": "x"}, "unknown field"),
    ],
)
def test_bad_provenance_is_refused_and_nothing_written(bad: dict[str, Any], match: str) -> None:
    store = gamstore.open_store(f"memory://prov-{uuid.uuid4().hex}")
    before = sorted(o.path for o in store.backend.list(""))
    with pytest.raises((TypeError, ValueError), match=match):
        store.save("block", "a", block_record("a"), provenance=bad)
    with pytest.raises((TypeError, ValueError), match=match):
        with provenance(**bad):
            pass  # pragma: no cover
    assert sorted(o.path for o in store.backend.list("")) == before


def test_tampered_provenance_is_corrupt_and_old_entries_have_none() -> None:
    store = gamstore.open_store(f"memory://prov-{uuid.uuid4().hex}")
    eid = store.save("block", "k", block_record("k"), provenance={"n_rows": 5})
    assert eid is not None
    path = entry_prefix("block", key_folder("block", "k"), eid)
    marker = store.backend.get(f"{path}/{MARKER}")
    assert marker is not None
    store.backend.put(f"{path}/{MARKER}", marker.replace(b'"n_rows":5', b'"n_rows":-5'))
    store._state.forget(path)
    assert store.lookup("block", "k") is None  # a marker that fails its checks is a miss
    # an entry of a gamstore before provenance: no field at all, read as None
    rec = block_record("old")
    enc = codec.encode_entry(
        record=rec,
        keyspace="block",
        key="old",
        entry_id="18ef000000000000-00000000-00000000",
        producer="old-process",
        created=0x18EF000000000000,
        objective=None,
        iteration=None,
        kind="checkpoint",
        schema="gamstore-schema-1",
    )
    assert "provenance" not in enc.attrs
    old = entry_prefix("block", key_folder("block", "old"), "18ef000000000000-00000000-00000000")
    store.backend.put_many({f"{old}/{p}": b for p, b in enc.payload.items()})
    store.backend.put(f"{old}/{MARKER}", enc.marker)
    e = store.lookup("block", "old")
    assert e is not None and e.provenance is None
    ds = gamstore.open_fits(store, "block", catalog="never")
    assert list(ds["run_id"].values) == [""] and list(ds["held_out"].values) == [""]


def test_check_provenance_copies_and_keeps_types() -> None:
    src = {"covariates": ("a", "b"), "held_out": None, "n_rows": np.int64(3).item()}
    out = check_provenance(src)
    assert out == {"covariates": ["a", "b"], "held_out": None, "n_rows": 3}
    out["covariates"].append("c")
    assert src["covariates"] == ("a", "b")


def test_process_pool_folds_record_their_provenance(tmp_path: Path) -> None:
    # the context variable does not cross processes: each worker sets it around its fold
    df = simulate("gaussian")
    df = df[df["subj"] < 3].reset_index(drop=True)
    path = tmp_path / "store"
    res = run_loso(
        df,
        GAM([s("x0")]),
        subject="subj",
        y="y",
        store=str(path),
        executor="processes",
        max_workers=2,
    )
    store = gamstore.open_store(path, read_only=True)
    blocks = _entries(store, "block")
    assert sorted(e.provenance["held_out"] or "" for e in blocks) == ["", "0", "1", "2"]
    assert {e.provenance["run_id"] for e in blocks} == {res.attrs["run_id"]}
    assert {e.provenance["subject_column"] for e in blocks} == {"subj"}
