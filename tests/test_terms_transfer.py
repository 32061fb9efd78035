"""Cross-fit transfer when a fold's blocks differ from the full fit's (issue 19 item 4).

A leave-one-subject-out fold can lack a level the full-data fit had: ``s(g, bs="re")`` then
has one column fewer, a factor ``by`` one block fewer, a parametric factor one contrast
fewer. Such a design stores and finds its cross-fit artifacts under a structure key that
names those terms without their levels (``gamstore.fit.warm.structure_descriptor``), and the
transfer matches block by block (``gamstore.transfer.build_partial_warm_start``): blocks
with the parent's identity get its ρ and β, the changed ones start cold. Tested: every fold
reaches the optimum of its cold fit, on real grouped data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import parity
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gamstore
from gamstore.artifact import (
    BasisMeta,
    FitArtifact,
    FitDescriptor,
    GlobalFitSummary,
    ResponseSig,
    TermArtifact,
    TermRole,
    term_identity_from_block,
)
from gamstore.fit import GAM, s
from gamstore.fit.warm import block_specs, structure_descriptor
from gamstore.loso import run_loso
from gamstore.transfer import (
    ParentUnusable,
    Provenance,
    TermBuildContext,
    build_partial_warm_start,
)

sup = parity.suite("terms")


def _same_optimum(warm: float, cold: float) -> None:
    assert abs(warm - cold) <= 1e-8 * abs(cold), (warm, cold)


@pytest.mark.parametrize(
    ("name", "subject"),
    [("airquality_te_re_Month", "Month"), ("CO2_re", "Plant")],
)
def test_loso_by_the_random_effect_subject_runs_warm_equal_cold(
    name: str, subject: str, tmp_path: Path
) -> None:
    """The issue's done criterion: LOSO by the random effect's own subject (with a te() term
    on airquality), every fold warm-started from the full-data fit, equals its cold fit."""
    case = sup.cases()[name]
    data = sup.frame(case)
    gam = sup.model(case)
    ds = run_loso(
        data, gam, subject=subject, y=case["y"], store=str(tmp_path), compare_cold=True,
        progress=False,
    )  # fmt: skip
    assert int(ds.attrs["n_failed"]) == 0
    assert (ds["warm_source"].sel(start="warm").values == "cross-fit").all()
    for fold in ds["fold"].values:
        w = float(ds["reml"].sel(fold=fold, start="warm"))
        c = float(ds["reml"].sel(fold=fold, start="cold"))
        _same_optimum(w, c)
    # the held-out subject's rows are predicted (its random effect at zero), warm = cold
    pw = ds["pred_response"].sel(start="warm").values
    pc = ds["pred_response"].sel(start="cold").values
    assert np.isfinite(pw).all()
    np.testing.assert_allclose(pw, pc, rtol=1e-4, atol=1e-6 * np.abs(pc).max())


def test_fold_without_a_level_transfers_the_matching_blocks_and_starts_the_rest_cold(
    tmp_path: Path,
) -> None:
    case = sup.cases()["airquality_te_re_Month"]
    data = sup.frame(case)
    gam = sup.model(case)
    store = gamstore.open_store(str(tmp_path))
    full = gam.fit(data, y="Ozone", store=store)
    train = data[data["Month"] != "m7"].reset_index(drop=True)
    warm = gam.fit(train, y="Ozone", knots=full.knots, store=store)
    cold = gam.fit(train, y="Ozone", knots=full.knots)
    assert warm.warm == "cross-fit"
    assert warm.start_check is not None
    start = warm.start_check.rho_start
    # te(Temp,Wind): its two rho from the full fit; s(Month): 4 levels, not 5, so cold
    np.testing.assert_array_equal(start[:2], full.rho[:2])
    np.testing.assert_array_equal(start[2], cold._design.initial_rho[2])
    assert len(warm.beta_reduced["s(Month)"]) == 4 and len(full.beta_reduced["s(Month)"]) == 5
    _same_optimum(warm.reml, cold.reml)
    np.testing.assert_allclose(
        warm.fitted, cold.fitted, rtol=0, atol=1e-5 * np.abs(cold.fitted).max()
    )


def test_fold_without_a_by_factor_level_has_one_block_fewer(tmp_path: Path) -> None:
    """A fold that lacks a level of a ``by`` factor (and of its parametric main effect):
    one smooth block fewer and one contrast fewer than the full fit; the other levels'
    smooths start from the full fit's, the parametric block cold; same optimum as cold."""
    case = sup.cases()["airquality_by_SolarR"]
    data = sup.frame(case).assign(
        Month=np.asarray(sup.frame(sup.cases()["airquality_te_re_Month"])["Month"])
    )
    gam = GAM([s("Temp", k=5, by="Month")], linear=["Month"])
    store = gamstore.open_store(str(tmp_path))
    full = gam.fit(data, y="Ozone", store=store)
    train = data[data["Month"] != "m6"].reset_index(drop=True)
    warm = gam.fit(train, y="Ozone", knots=full.knots, store=store)
    cold = gam.fit(train, y="Ozone", knots=full.knots)
    assert len(full.rho) == 5 and len(warm.rho) == 4
    assert "s(Temp):Monthm6" in full.edf and "s(Temp):Monthm6" not in warm.edf
    assert warm.warm == "cross-fit"
    assert warm.start_check is not None
    keep = [i for i, lab in enumerate(full.block_names[1:]) if lab != "s(Temp):Monthm6"]
    np.testing.assert_array_equal(warm.start_check.rho_start, full.rho[keep])
    _same_optimum(warm.reml, cold.reml)
    np.testing.assert_allclose(
        warm.fitted, cold.fitted, rtol=0, atol=1e-5 * np.abs(cold.fitted).max()
    )


def test_structure_key_names_level_terms_without_their_levels() -> None:
    case = sup.cases()["airquality_te_re_Month"]
    data = sup.frame(case)
    gam = sup.model(case)
    full, _ = gam.prepare(data, "Ozone")
    fold, _ = gam.prepare(data[data["Month"] != "m5"].reset_index(drop=True), "Ozone")
    keys = []
    for prob in (full, fold):
        desc = structure_descriptor("gaussian", prob.design, block_specs(prob))
        keys.append(desc.descriptor_key())
    assert keys[0] == keys[1]  # the fold finds the full fit's artifact
    # a design without factors keeps the plain descriptor (keys of existing stores unchanged)
    plain = GAM([s("Temp"), s("Wind")]).prepare(data, "Ozone")[0]
    assert structure_descriptor("gaussian", plain.design, block_specs(plain)) is None


# ---------------------------------------------------------------- build_partial_warm_start


def _ident(name: str, width: int) -> Any:
    return term_identity_from_block(TermRole.GENERIC, name, [None], [1], width)


def _parent(terms: list[tuple[str, int, float]]) -> FitArtifact:
    ids = tuple(_ident(n, w) for n, w, _ in terms)
    return FitArtifact(
        descriptor=FitDescriptor("gaussian", ids, ResponseSig("gaussian")),
        terms=tuple(
            TermArtifact(
                i, TermRole.GENERIC, BasisMeta.block_spec(w), np.arange(1.0, w + 1), np.array([r])
            )
            for i, (_, w, r) in zip(ids, terms, strict=True)
        ),
        global_=GlobalFitSummary(1.0, True, 10),
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=5),
    st.lists(st.integers(-1, 2), min_size=5, max_size=5),
    st.lists(st.floats(-20, 20), min_size=5, max_size=5),
)
def test_partial_transfer_matches_block_by_block(
    widths: list[int], changes: list[int], rhos: list[float]
) -> None:
    """Blocks whose identity equals a parent term's get its ρ and β; a block whose width
    changed (a level more or fewer) keeps its default ρ and a zero β; nothing else moves."""
    parent = _parent([(f"b{i}", w, rhos[i]) for i, w in enumerate(widths)])
    new_widths = [max(1, w + changes[i]) for i, w in enumerate(widths)]
    contexts = [
        TermBuildContext(
            identity=_ident(f"b{i}", w), rho_slots=(i,), reduced_width=w, gauge_t_block=np.eye(w)
        )
        for i, w in enumerate(new_widths)
    ]
    default = np.full(len(widths), 0.5)
    res = build_partial_warm_start(contexts, default, parent)
    for i, (w_old, w_new) in enumerate(zip(widths, new_widths, strict=True)):
        if w_old == w_new:
            assert res.provenance[i] is Provenance.PROJECTED
            assert res.rho[i] == rhos[i]
            np.testing.assert_allclose(res.block_beta[i], np.arange(1.0, w_new + 1))
        else:
            assert res.provenance[i] is Provenance.COLD
            assert res.rho[i] == 0.5
            assert not res.block_beta[i].any() and res.block_beta[i].shape == (w_new,)


def test_partial_transfer_refuses_an_unusable_parent() -> None:
    bad = _parent([("b", 2, float("nan"))])
    ctx = TermBuildContext(identity=_ident("b", 2), rho_slots=(0,), reduced_width=2)
    with pytest.raises(ParentUnusable):
        build_partial_warm_start([ctx], np.zeros(1), bad)
    with pytest.raises(TypeError, match="terms\\[0\\]"):
        build_partial_warm_start(["x"], np.zeros(1), _parent([("b", 2, 1.0)]))  # type: ignore[list-item]
