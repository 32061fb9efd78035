"""Smoothing-parameter names in the views: the ``penalty`` dimension of ``open_fits`` and
``open_entry`` named as ``FitResult.rho_names`` (one convention, :mod:`gamstore.rhonames`),
derived from what the stored records carry (block/term labels and ρ counts)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import parity
import pytest

import gamstore
from gamstore import open_store
from gamstore.fit import GAM, te
from gamstore.loso.results import term_names
from gamstore.rhonames import (
    block_label,
    block_rho_labels,
    penalty_block,
    rho_labels_for_blocks,
    tensor_margins,
)
from gamstore.views.catalog import write_catalog

sup = parity.suite("terms")
IRIS = sup.frame(sup.cases()["iris_te_by_Species"])
OLD = Path(__file__).resolve().parent / "fixtures" / "store_format1"
TE = "te(Sepal.Width,Petal.Length)"


def test_helpers_one_convention() -> None:
    assert tensor_margins("te(x,z)") == ("x", "z")
    assert tensor_margins("ti(x,z,w):fA") == ("x", "z", "w")
    assert tensor_margins("s(x)") == () and tensor_margins("te(x)") == ()
    assert block_rho_labels("s(x)", 1) == ["s(x)"]
    assert block_rho_labels("(parametric)", 0) == []
    assert block_rho_labels("te(x,z):fA", 2) == ["te(x,z):fA[x]", "te(x,z):fA[z]"]
    # margins given win; a count they do not match falls back to positions
    assert block_rho_labels("te(x,z)", 2, ("a", "b")) == ["te(x,z)[a]", "te(x,z)[b]"]
    assert block_rho_labels("te(x,z)", 3) == ["te(x,z)[1]", "te(x,z)[2]", "te(x,z)[3]"]
    assert block_label("te(x,z)[bs=cr]") == "te(x,z)"
    blocks = ["(parametric)[(Intercept),fB]", "s(x)", "te(x,z)[bs=cr]", "te(x,z):fA"]
    assert rho_labels_for_blocks(blocks, 5) == [
        "s(x)",
        "te(x,z)[x]",
        "te(x,z)[z]",
        "te(x,z):fA[x]",
        "te(x,z):fA[z]",
    ]
    # one ρ per block (a fitter without margin penalties), else unknown
    assert rho_labels_for_blocks(blocks, 3) == ["s(x)", "te(x,z)", "te(x,z):fA"]
    assert rho_labels_for_blocks(blocks, 4) is None
    assert rho_labels_for_blocks(["(parametric)"], 1) is None
    assert penalty_block("te(x,z):fA[z]", ["s(x)", "te(x,z):fA"]) == "te(x,z):fA"
    # LOSO's fallback for another fitter (ρ order within a block unknown) names blocks only
    edf = {"(parametric)": 1.0, "s(x)": 2.0, "te(x,z)": 5.0}
    assert term_names(np.zeros(2), edf) == ["s(x)", "te(x,z)"]
    assert term_names(np.zeros(3), edf) == ["sp0", "sp1", "sp2"]


@pytest.fixture(scope="module")
def fits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    root = tmp_path_factory.mktemp("rhonames") / "store"
    by = GAM([te("Sepal.Width", "Petal.Length", k=4, by="Species")], linear=["Species"])
    r_by = by.fit(IRIS, y="Sepal.Length", store=str(root))
    r_te = GAM([te("Sepal.Width", "Petal.Length", k=4)]).fit(
        IRIS, y="Sepal.Length", store=str(root)
    )
    return root, r_by, r_te


def _by_id(ds: Any, res: Any) -> int:
    # the fit whose stored rho is the result's
    for i in range(ds.sizes["fit"]):
        if int(ds["n_penalty"].values[i].sum()) == res.rho.size:
            return i
    raise AssertionError("fit not in view")


def test_fit_rho_names_are_the_helpers(fits: tuple[Path, Any, Any]) -> None:
    _, r_by, r_te = fits
    assert r_te.rho_names == [f"{TE}[Sepal.Width]", f"{TE}[Petal.Length]"]
    assert len(r_by.rho_names) == 6 and r_by.rho_names[0] == f"{TE}:Speciessetosa[Sepal.Width]"
    for res in (r_by, r_te):
        assert rho_labels_for_blocks(res.block_names, res.rho.size) == res.rho_names


@pytest.mark.parametrize("ragged", [False, True])
def test_open_fits_artifact_names_penalties(fits: tuple[Path, Any, Any], ragged: bool) -> None:
    root, r_by, r_te = fits
    ds = gamstore.open_fits(root, "artifact", catalog="never", ragged=ragged)
    assert ds.sizes["fit"] == 2
    names = ds["penalty_name"]
    if ragged:
        assert names.dims == ("penalty",) and names.size == ds["rho"].size
        assert sorted(names.values.tolist()) == sorted(r_by.rho_names + r_te.rho_names)
        return
    assert names.dims == ("fit", "term", "penalty")
    for res in (r_by, r_te):
        i = _by_id(ds, res)
        got = [str(v) for v in names.values[i].ravel() if v]
        assert got == res.rho_names
        rho = ds["rho"].values[i][ds["rho_mask"].values[i]]
        np.testing.assert_allclose(rho, res.rho, rtol=1e-12, atol=1e-12)
        # padding is ""
        assert set(names.values[i][~ds["rho_mask"].values[i]].tolist()) <= {""}


def test_open_fits_block_names_penalties(fits: tuple[Path, Any, Any]) -> None:
    root, r_by, r_te = fits
    ds = gamstore.open_fits(root, "block", catalog="never")
    assert ds["penalty_name"].dims == ("fit", "penalty")
    for res in (r_by, r_te):
        i = _by_id(ds, res)
        n = res.rho.size
        assert ds["penalty_name"].values[i, :n].tolist() == res.rho_names
        assert set(ds["penalty_name"].values[i, n:].tolist()) <= {""}
    # two models: the dimension stays an index; one model: it is named
    assert "penalty" not in ds.coords
    ragged = gamstore.open_fits(root, "block", catalog="never", ragged=True)
    assert sorted(ragged["penalty_name"].values.tolist()) == sorted(r_by.rho_names + r_te.rho_names)


def test_one_model_names_the_penalty_dimension(tmp_path: Path) -> None:
    res = GAM([te("Sepal.Width", "Petal.Length", k=4)]).fit(
        IRIS, y="Sepal.Length", store=str(tmp_path / "s")
    )
    ds = gamstore.open_fits(tmp_path / "s", "block", catalog="never")
    assert ds["penalty"].values.tolist() == res.rho_names
    np.testing.assert_allclose(ds["rho"].sel(penalty=f"{TE}[Petal.Length]").values, res.rho[1:])
    # the catalog keeps them
    write_catalog(open_store(tmp_path / "s"))
    cat = gamstore.open_fits(tmp_path / "s", "block", catalog="require")
    assert cat["penalty"].values.tolist() == res.rho_names
    art = gamstore.open_fits(tmp_path / "s", "artifact", catalog="require")
    assert [str(v) for v in art["penalty_name"].values.ravel() if v] == res.rho_names


def test_open_entry_names_penalties(fits: tuple[Path, Any, Any]) -> None:
    root, r_by, _ = fits
    ds = gamstore.open_fits(root, "block", catalog="never")
    i = _by_id(ds, r_by)
    tree = gamstore.open_entry(root, "block", entry_id=str(ds.fit.values[i]))
    assert tree["penalty"].values.tolist() == r_by.rho_names
    art = gamstore.open_fits(root, "artifact", catalog="never")
    j = _by_id(art, r_by)
    tree = gamstore.open_entry(root, "artifact", entry_id=str(art.fit.values[j]))
    got = [
        str(v)
        for k in range(int(art["n_term"].values[j]))
        if "penalty" in tree[f"terms/{k}"].coords
        for v in tree[f"terms/{k}"]["penalty"].values
    ]
    assert got == r_by.rho_names
    assert tree["terms/1"].attrs["term_name"] == f"{TE}:Speciessetosa"


@pytest.mark.parametrize("keyspace", ["artifact", "block", "outer", "inner", "from"])
def test_old_store_still_opens(tmp_path: Path, keyspace: str) -> None:
    root = tmp_path / "old"
    shutil.copytree(OLD, root)
    ds = gamstore.open_fits(root, keyspace, catalog="never")
    assert ds.sizes["fit"] >= 1
    if keyspace in ("artifact", "block"):
        # names where the record says them, "" where it does not (no provenance terms)
        assert ds["penalty_name"].shape == ds["rho"].shape
    write_catalog(open_store(root))
    assert gamstore.open_fits(root, keyspace, catalog="require").sizes["fit"] == ds.sizes["fit"]


def test_cli_show_names_penalties(fits: tuple[Path, Any, Any], tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from gamstore.cli import main

    root, r_by, _ = fits
    runner = CliRunner()
    for keyspace in ("block", "artifact"):
        ds = gamstore.open_fits(root, keyspace, catalog="never")
        entry_id = str(ds.fit.values[_by_id(ds, r_by)])
        out = runner.invoke(main, ["show", str(root), entry_id, "-k", keyspace, "--json"])
        assert out.exit_code == 0, out.output
        doc = json.loads(out.output)
        names = doc["penalty_names"]
        assert [s for labels in names.values() for s in labels] == r_by.rho_names
        for array, labels in names.items():
            assert len(doc["arrays"][array]["values"]) == len(labels)
        table = runner.invoke(main, ["show", str(root), entry_id, "-k", keyspace])
        assert table.exit_code == 0 and "smoothing parameters" in table.output
        assert "Speciesvirginica[Petal.Length]" in table.output
    # an outer session: named from the fit's terms in its provenance
    outer = gamstore.open_fits(root, "outer", catalog="never")
    entry_id = str(outer.fit.values[_by_id(outer, r_by)])
    out = runner.invoke(main, ["show", str(root), entry_id, "-k", "outer", "--json"])
    assert json.loads(out.output)["penalty_names"] == {"rho": r_by.rho_names}
    tree = gamstore.open_entry(root, "outer", entry_id=entry_id)
    assert tree["penalty"].values.tolist() == r_by.rho_names
    # an old entry (no provenance, no block names): nothing named, the table is left out
    copy = tmp_path / "old"
    shutil.copytree(OLD, copy)
    old_id = str(gamstore.open_fits(copy, "outer", catalog="never").fit.values[0])
    out = runner.invoke(main, ["show", str(copy), old_id, "-k", "outer"])
    assert out.exit_code == 0 and "smoothing parameters" not in out.output
    assert "penalty" not in gamstore.open_entry(copy, "outer", entry_id=old_id).coords


@pytest.mark.parametrize("ragged", [False, True])
def test_outer_sessions_named_from_provenance(fits: tuple[Path, Any, Any], ragged: bool) -> None:
    # iterate records hold no block names; the fit's terms in the entry's provenance do
    root, r_by, r_te = fits
    ds = gamstore.open_fits(root, "outer", catalog="never", ragged=ragged)
    if ragged:
        assert sorted(ds["penalty_name"].values.tolist()) == sorted(r_by.rho_names + r_te.rho_names)
        return
    for res in (r_by, r_te):
        i = _by_id(ds, res)
        assert ds["penalty_name"].values[i, : res.rho.size].tolist() == res.rho_names


def test_outer_names_survive_the_catalog(tmp_path: Path) -> None:
    from gamstore.views.assemble import dataset_rows

    res = GAM([te("Sepal.Width", "Petal.Length", k=4)]).fit(
        IRIS, y="Sepal.Length", store=str(tmp_path / "s")
    )
    write_catalog(open_store(tmp_path / "s"))
    ds = gamstore.open_fits(tmp_path / "s", "outer", catalog="require")
    assert ds["penalty"].values.tolist() == res.rho_names
    (row,) = dataset_rows(ds, "outer")
    assert list(row.penalty_names) == res.rho_names
    ragged = gamstore.open_fits(tmp_path / "s", "outer", catalog="require", ragged=True)
    assert ragged["penalty_name"].values.tolist() == res.rho_names
