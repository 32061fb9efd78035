"""Cross-fit transfer: capture, build_warm_start, projection and exact transport (spec §6)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import BSpline

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
from gamstore.gauge import Gauge
from gamstore.transfer import (
    DescriptorMismatch,
    ParentUnusable,
    Provenance,
    TermBuildContext,
    TransferConfig,
    TransferError,
    TransferResult,
    _copy_rho,
    build_warm_start,
    capture_artifact,
    per_block_rho_slots,
    project_beta,
)

FAMILY = "gaussian"


def ident(name: str, width: int, n_pen: int = 1) -> Any:
    return term_identity_from_block(
        TermRole.from_block_name(name), name, [None] * n_pen, [1] * n_pen, width
    )


def artifact(
    terms: list[tuple[Any, Any, Any]], objective: float = 1.0, schema: int = 1
) -> FitArtifact:
    """terms: (identity, raw_beta, rho_for_term)."""
    ids = tuple(t[0] for t in terms)
    return FitArtifact(
        descriptor=FitDescriptor(FAMILY, ids, ResponseSig(FAMILY)),
        terms=tuple(
            TermArtifact(i, TermRole.GENERIC, BasisMeta.block_spec(len(b)), b, r)
            for i, b, r in terms
        ),
        global_=GlobalFitSummary(objective, True, 10),
        schema=schema,
    )


def descriptor_of(ids: list[Any]) -> FitDescriptor:
    return FitDescriptor(FAMILY, tuple(ids), ResponseSig(FAMILY))


def stz(c: np.ndarray) -> np.ndarray:
    """Sum-to-zero basis T (k×(k−1)) for the constraint row c, by complete QR."""
    q, _ = np.linalg.qr(np.asarray(c, dtype=float).reshape(-1, 1), mode="complete")
    return q[:, 1:]


# ------------------------------------------------------------------------------------------
# per_block_rho_slots and projection
# ------------------------------------------------------------------------------------------


def test_per_block_rho_slots() -> None:
    # blocks with 0, 2, 1, 2 penalties; physical 2 is fixed; labelled penalties share outer 0
    slots = per_block_rho_slots([0, 2, 1, 2], [0, 1, None, 0])
    assert slots == [(), (0, 1), (), (0,)]  # physical index 4 is out of range: dropped
    assert per_block_rho_slots([], []) == []
    with pytest.raises(ValueError, match=r"physical_to_outer\[1\]"):
        per_block_rho_slots([2], [0, -1])
    with pytest.raises(TypeError, match=r"penalty_counts\[0\]"):
        per_block_rho_slots([1.5], [0])


def test_projection_matches_pseudo_inverse_including_rank_deficiency() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(size=(6, 3))
    t[:, 2] = t[:, 0]  # rank 2: min-norm solution required
    beta = rng.normal(size=6)
    theta = project_beta(t, beta, 3)
    assert theta is not None
    assert np.allclose(theta, np.linalg.pinv(t) @ beta, atol=1e-12)
    assert abs(theta[0] - theta[2]) < 1e-12  # min-norm splits the duplicated direction


def test_projection_eigenvalue_threshold() -> None:
    # G = diag(1, eps): eps just above tau is kept, just below is dropped
    r = 2
    ru = r * 2.0**-53
    tau = ru / (1 - ru)
    keep = np.diag([1.0, math.sqrt(tau * 4)])
    drop = np.diag([1.0, math.sqrt(tau / 4)])
    beta = np.array([1.0, 1.0])
    kept = project_beta(keep, beta, 2)
    dropped = project_beta(drop, beta, 2)
    assert kept is not None and kept[1] != 0.0
    assert dropped is not None and dropped.tolist() == [1.0, 0.0]
    assert project_beta(np.zeros((2, 2)), beta, 2).tolist() == [0.0, 0.0]  # type: ignore[union-attr]


def test_projection_preconditions() -> None:
    assert project_beta(np.eye(3)[:, :2], np.ones(4), 2) is None  # raw rows != len(beta)
    assert project_beta(np.eye(3)[:, :2], np.ones(3), 3) is None  # red cols != width
    assert project_beta(np.eye(2), [1.0, np.nan], 2) is None
    assert project_beta(np.array([[np.inf, 0.0], [0.0, 1.0]]), [1.0, 1.0], 2) is None
    empty = project_beta(np.zeros((3, 0)), np.ones(3), 0)
    assert empty is not None and empty.shape == (0,)


# ------------------------------------------------------------------------------------------
# checklist 58: capture
# ------------------------------------------------------------------------------------------


def _capture(**overrides: Any) -> FitArtifact | None:
    t1 = stz(np.full(4, 0.25))
    gauge = Gauge.block_diagonal([np.eye(1), t1], affine_shift=np.array([0.5, 0, 0, 0, 0]))
    kw: dict[str, Any] = dict(
        family_kind=FAMILY,
        block_names=["(parametric)", "s(x)"],
        penalty_labels=[[], [None]],
        nullspace_dims=[[], [1]],
        gauge=gauge,
        reduced_block_beta=[np.array([2.0]), np.array([1.0, -1.0, 0.5])],
        rho=np.array([1.25]),
        rho_slots=[[], [0, 7]],  # slot 7 is out of range: dropped silently
        outer_objective=12.0,
        converged=True,
        n_rows=50,
        created_unix_secs=123,
    )
    kw.update(overrides)
    return capture_artifact(**kw)


def test_checklist_58_capture_lifts_and_splits() -> None:
    art = _capture()
    assert art is not None and art.is_usable()
    t1 = stz(np.full(4, 0.25))
    assert art.terms[0].raw_beta.tolist() == [2.5]  # T·θ + a with a = 0.5
    assert np.allclose(art.terms[1].raw_beta, t1 @ [1.0, -1.0, 0.5], atol=1e-15)
    assert art.terms[1].rho_for_term.tolist() == [1.25]
    assert art.terms[0].rho_for_term.shape == (0,)
    assert art.terms[1].identity == ident("s(x)", 3)
    assert art.terms[1].basis_meta.n_centers == 3
    assert art.descriptor.row_population is not None and art.descriptor.row_population.n_rows == 50
    assert art.created_unix_secs == 123


@pytest.mark.parametrize(
    "overrides",
    [
        {"reduced_block_beta": [np.array([2.0])]},  # beta count != blocks
        {"reduced_block_beta": [np.array([2.0]), np.array([1.0, 0.0])]},  # width mismatch
        {"reduced_block_beta": [np.array([2.0]), np.array([1.0, np.nan, 0.0])]},  # non-finite
        {"rho": np.array([np.inf])},  # non-finite rho_for_term
        {"outer_objective": math.nan},  # unusable
        {"gauge": Gauge.identity([1, 3, 1])},  # gauge block count != blocks
        {"gauge": Gauge(np.eye(4), np.zeros(4), (0, 1, 4), (0, 2, 4))},  # raw/reduced mismatch
        {"gauge": Gauge(np.eye(4), np.full(4, np.nan), (0, 1, 4), (0, 1, 4))},  # invalid gauge
    ],
)
def test_checklist_58_capture_aborts(overrides: dict[str, Any]) -> None:
    assert _capture(**overrides) is None


def test_capture_argument_errors() -> None:
    with pytest.raises(ValueError, match="rho_slots: expected 2 entries"):
        _capture(rho_slots=[[0]])
    with pytest.raises(TypeError, match="gauge: expected Gauge"):
        _capture(gauge=np.eye(4))
    with pytest.raises(TypeError, match=r"block_names\[1\]"):
        _capture(block_names=["a", 3])


# ------------------------------------------------------------------------------------------
# checklist 60-64: build_warm_start
# ------------------------------------------------------------------------------------------


def test_checklist_60_parent_unusable_and_descriptor_mismatch() -> None:
    a = ident("s(a)", 2)
    ctx = [TermBuildContext(a, (0,), 2, np.eye(2))]
    for bad in (
        artifact([(a, [1.0, 2.0], [0.5])], schema=2),
        artifact([(a, [1.0, 2.0], [0.5])], objective=math.nan),
        artifact([(a, [1.0, np.inf], [0.5])]),
        artifact([(a, [1.0, 2.0], [np.nan])]),
    ):
        with pytest.raises(ParentUnusable, match="parent artifact unusable"):
            build_warm_start(descriptor_of([a]), ctx, [0.0], bad)
    good = artifact([(a, [1.0, 2.0], [0.5])])
    other = ident("s(b)", 2)
    with pytest.raises(DescriptorMismatch, match="descriptor key"):
        build_warm_start(descriptor_of([other]), ctx, [0.0], good)
    other_family = FitDescriptor("poisson", (a,), ResponseSig(FAMILY))
    with pytest.raises(DescriptorMismatch):
        build_warm_start(other_family, ctx, [0.0], good)
    assert issubclass(ParentUnusable, TransferError) and issubclass(DescriptorMismatch, ValueError)


def test_checklist_61_unmatched_term_stays_cold_and_untouched() -> None:
    a, b = ident("s(a)", 2), ident("s(b)", 3)
    parent = artifact([(a, [1.0, 2.0], [0.5]), (b, [1.0, 2.0, 3.0], [0.7])])
    # new fit: term a matches, a new term c (same descriptor impossible), so build the
    # descriptor from the parent and give the context a foreign identity for block 1
    c = ident("s(c)", 3)
    ctx = [TermBuildContext(a, (0,), 2, np.eye(2)), TermBuildContext(c, (1,), 3, np.eye(3))]
    res = build_warm_start(parent.descriptor, ctx, [9.0, 8.0, 7.0], parent)
    assert res.provenance == (Provenance.PROJECTED, Provenance.COLD)
    assert res.rho.tolist() == [0.5, 8.0, 7.0]  # slot 1 (unmatched) and slot 2 untouched
    assert res.block_beta[1].tolist() == [0.0, 0.0, 0.0]


def test_checklist_62_rho_copy_rules() -> None:
    a = ident("s(a)", 2, n_pen=2)
    parent = artifact([(a, [1.0, 2.0], [-12.5, 30.0])])
    desc = parent.descriptor
    # count matches: verbatim, no clamp, slot out of range skipped
    ctx = [TermBuildContext(a, (0, 5), 2)]
    res = build_warm_start(desc, ctx, [0.0, 0.0], parent)
    assert res.rho.tolist() == [-12.5, 0.0]
    assert res.provenance == (Provenance.RHO_ONLY,)
    # count mismatch: nothing copied
    res = build_warm_start(desc, [TermBuildContext(a, (0,), 2)], [0.0, 0.0], parent)
    assert res.rho.tolist() == [0.0, 0.0] and res.provenance == (Provenance.COLD,)
    # non-finite parent values are skipped slot by slot (usable parents cannot carry them,
    # so exercise the copy rule directly)
    rho = np.zeros(3)
    assert _copy_rho(rho, (0, 1, 2), np.array([1.0, np.nan, -np.inf]), TransferConfig())
    assert rho.tolist() == [1.0, 0.0, 0.0]
    assert not _copy_rho(np.zeros(1), (0,), np.array([np.nan]), TransferConfig())


def test_historical_saturation_and_clamp_are_optional() -> None:
    a = ident("s(a)", 2, n_pen=3)
    parent = artifact([(a, [1.0, 2.0], [9.5, 8.7, -3.0])])
    ctx = [TermBuildContext(a, (0, 1, 2), 2)]
    hist = build_warm_start(parent.descriptor, ctx, [0.0, 0.0, 0.0], parent,
                            TransferConfig.historical())  # fmt: skip
    assert hist.rho.tolist() == [0.0, 8.0, -3.0]  # |9.5| >= 9 skipped, 8.7 clamped to 8
    cur = build_warm_start(parent.descriptor, ctx, [0.0, 0.0, 0.0], parent)
    assert cur.rho.tolist() == [9.5, 8.7, -3.0]


def test_checklist_63_projection_cases() -> None:
    a, b, c = ident("s(a)", 3), ident("s(b)", 2), ident("s(c)", 2)
    beta_a = np.array([0.3, -1.2, 2.5])
    beta_b = np.array([1.0, 2.0, 3.0, 4.0])
    parent = artifact([(a, beta_a, [0.1]), (b, beta_b, [0.2]), (c, [1.0, 2.0, 3.0], [0.3])])
    t42 = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 2)))[0]
    ctx = [
        TermBuildContext(a, (0,), 3, np.eye(3)),  # identity T reproduces the parent
        TermBuildContext(b, (1,), 2, t42),  # 4x2 T: finite length-2 theta
        TermBuildContext(c, (2,), 2, np.eye(2)),  # raw width 3 vs T rows 2: cold beta, rho ok
    ]
    res = build_warm_start(parent.descriptor, ctx, [0.0, 0.0, 0.0], parent)
    assert np.allclose(res.block_beta[0], beta_a, atol=1e-6)
    assert res.block_beta[1].shape == (2,) and np.isfinite(res.block_beta[1]).all()
    assert np.allclose(res.block_beta[1], t42.T @ beta_b, atol=1e-12)
    assert res.block_beta[2].tolist() == [0.0, 0.0]
    assert res.provenance == (Provenance.PROJECTED, Provenance.PROJECTED, Provenance.RHO_ONLY)
    assert res.rho.tolist() == [0.1, 0.2, 0.3]


def test_checklist_64_provenance() -> None:
    a, b, c, d = ident("s(a)", 1), ident("s(b)", 1), ident("s(c)", 1), ident("s(d)", 1)
    parent = artifact([(a, [1.0], [0.5]), (b, [1.0], [0.5]), (c, [1.0], [0.5]), (d, [1.0], [])])
    ctx = [
        TermBuildContext(a, (0,), 1, np.eye(1)),  # projected (and rho copied)
        TermBuildContext(b, (1,), 1, None),  # rho only
        TermBuildContext(c, (), 1, None),  # nothing (slot-count mismatch, no T)
        TermBuildContext(d, (), 1, np.eye(1)),  # projected without any rho
    ]
    res = build_warm_start(parent.descriptor, ctx, [0.0, 0.0], parent)
    assert res.provenance == (
        Provenance.PROJECTED,
        Provenance.RHO_ONLY,
        Provenance.COLD,
        Provenance.PROJECTED,
    )
    assert res.n_rho == 3 and res.n_beta == 2


def test_first_parent_term_with_equal_identity_wins() -> None:
    a = ident("s(a)", 1)
    parent = artifact([(a, [1.0], [0.5]), (a, [2.0], [0.9])])
    ctx = [TermBuildContext(a, (0,), 1, np.eye(1)), TermBuildContext(a, (1,), 1, np.eye(1))]
    res = build_warm_start(parent.descriptor, ctx, [0.0, 0.0], parent)
    assert [b.tolist() for b in res.block_beta] == [[1.0], [1.0]]
    assert res.rho.tolist() == [0.5, 0.5]


# ------------------------------------------------------------------------------------------
# checklist 65: consumer guard
# ------------------------------------------------------------------------------------------


def test_checklist_65_consumer_guard() -> None:
    a = ident("s(a)", 2)
    parent = artifact([(a, [1.0, 2.0], [0.5])])
    res = build_warm_start(
        parent.descriptor, [TermBuildContext(a, (0,), 2, np.eye(2))], [0.0], parent
    )
    assert res.warm_start(1, [2]) is res
    assert res.active_sets == (None,) and res.cached_inner is None
    assert res.warm_start(2, [2]) is None  # rho length mismatch
    assert res.warm_start(1, [3]) is None  # width mismatch
    assert res.warm_start(1, [2, 1]) is None  # block count mismatch
    cold = build_warm_start(parent.descriptor, [TermBuildContext(a, (), 2, None)], [0.0], parent)
    assert cold.provenance == (Provenance.COLD,) and cold.warm_start(1, [2]) is None
    non_finite = TransferResult(np.array([np.nan]), (np.zeros(2),), (Provenance.RHO_ONLY,))
    assert non_finite.warm_start(1, [2]) is None
    bad_beta = TransferResult(np.zeros(1), (np.array([np.inf, 0.0]),), (Provenance.PROJECTED,))
    assert bad_beta.warm_start(1, [2]) is None


# ------------------------------------------------------------------------------------------
# exact transport across a changed centring constraint (reference-fitter §3.3)
# ------------------------------------------------------------------------------------------


def _knots(x: np.ndarray, k: int = 10, d: int = 3) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    pad = 0.001 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    dx = (hi - lo) / (k - d)
    return lo + dx * np.arange(-d, k + 1)


def test_exact_transport_keeps_fold_linear_predictor() -> None:
    rng = np.random.default_rng(7)
    n, k = 300, 10
    x = rng.uniform(0.0, 1.0, size=(n, 2))
    x[:, 1] = x[:, 1] ** 2  # skewed second covariate: fold means shift a lot
    bases = [BSpline.design_matrix(x[:, j], _knots(x[:, j]), 3).toarray() for j in range(2)]
    assert np.allclose(bases[0].sum(axis=1), 1.0)  # partition of unity

    # parent: full-data fit, centring on full-data column means
    t_full = [stz(b.mean(axis=0)) for b in bases]
    gauge_full = Gauge.block_diagonal([np.eye(1), *t_full])
    theta = [np.array([0.8]), rng.normal(size=k - 1), rng.normal(size=k - 1)]
    names = ["(parametric)", "s(x0)", "s(x1)"]
    parent = capture_artifact(
        family_kind=FAMILY,
        block_names=names,
        penalty_labels=[[], [None], [None]],
        nullspace_dims=[[], [1], [1]],
        gauge=gauge_full,
        reduced_block_beta=theta,
        rho=[1.5, -0.5],
        rho_slots=[[], [0], [1]],
        outer_objective=10.0,
        converged=True,
        n_rows=n,
    )
    assert parent is not None
    raw = gauge_full.lift_block_betas(theta)

    # fold: leave out a group of rows; frozen knots, fold-specific centring T_new
    keep = x[:, 0] > 0.35
    fold_bases = [b[keep] for b in bases]
    c_new = [b.mean(axis=0) for b in fold_bases]
    t_new = [stz(c) for c in c_new]
    gauge_new = Gauge.block_diagonal([np.eye(1), *t_new])
    eta_parent = raw[0][0] + sum(fb @ r for fb, r in zip(fold_bases, raw[1:], strict=True))

    def contexts() -> list[TermBuildContext]:
        return [
            TermBuildContext(
                parent.terms[0].identity, (), 1, gauge_new.block_transform(0), intercept_column=0
            ),  # fmt: skip
            *(
                TermBuildContext(
                    parent.terms[j + 1].identity,
                    (j,),
                    k - 1,
                    gauge_new.block_transform(j + 1),
                    column_means=c_new[j],
                )  # fmt: skip
                for j in range(2)
            ),
        ]

    def fold_eta(result: TransferResult) -> np.ndarray:
        lifted = gauge_new.lift_block_betas(result.block_beta)
        return lifted[0][0] + sum(fb @ r for fb, r in zip(fold_bases, lifted[1:], strict=True))

    exact = build_warm_start(parent.descriptor, contexts(), [0.0, 0.0], parent,
                             TransferConfig(mode="transport"))  # fmt: skip
    plain = build_warm_start(parent.descriptor, contexts(), [0.0, 0.0], parent,
                             TransferConfig(mode="project"))  # fmt: skip
    assert exact.provenance == (Provenance.PROJECTED,) * 3
    assert exact.rho.tolist() == [1.5, -0.5] == plain.rho.tolist()
    err_exact = float(np.max(np.abs(fold_eta(exact) - eta_parent)))
    err_plain = float(np.max(np.abs(fold_eta(plain) - eta_parent)))
    assert err_exact < 1e-12
    assert err_plain > 1e-3
    # the transported smooth coefficients satisfy the fold's constraint, by construction
    for j in range(2):
        assert abs(c_new[j] @ (t_new[j] @ exact.block_beta[j + 1])) < 1e-12
    # with an unchanged constraint, transport and projection agree
    same = [
        TermBuildContext(parent.terms[0].identity, (), 1, np.eye(1), intercept_column=0),
        *(
            TermBuildContext(
                parent.terms[j + 1].identity,
                (j,),
                k - 1,
                t_full[j],
                column_means=bases[j].mean(axis=0),
            )  # fmt: skip
            for j in range(2)
        ),
    ]
    a = build_warm_start(parent.descriptor, same, [0.0, 0.0], parent, TransferConfig("transport"))
    b = build_warm_start(parent.descriptor, same, [0.0, 0.0], parent)
    for u, v in zip(a.block_beta, b.block_beta, strict=True):
        assert np.allclose(u, v, atol=1e-12)


# ------------------------------------------------------------------------------------------
# argument errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "exc", "pattern"),
    [
        (lambda: TransferConfig(mode="exact"), ValueError, r"TransferConfig\.mode"),  # type: ignore[arg-type]
        (
            lambda: TransferConfig(rho_saturation=-1.0),
            ValueError,
            r"TransferConfig\.rho_saturation",
        ),
        (lambda: TransferConfig(rho_interior_clamp=math.inf), ValueError, r"rho_interior_clamp"),
        (lambda: TermBuildContext("nothex", (), 1), ValueError, r"TermBuildContext\.identity"),
        (lambda: TermBuildContext(ident("a", 1), (-1,), 1), ValueError, r"rho_slots\[0\]"),
        (
            lambda: TermBuildContext(ident("a", 1), "0", 1),
            TypeError,
            r"TermBuildContext\.rho_slots",
        ),
        (lambda: TermBuildContext(ident("a", 1), (), -1), ValueError, r"reduced_width"),
        (
            lambda: TermBuildContext(ident("a", 1), (), 1, np.eye(1)[0]),
            ValueError,
            r"gauge_t_block",
        ),
        (
            lambda: TermBuildContext(ident("a", 1), (), 1, column_means=np.eye(2)),
            ValueError,
            r"TermBuildContext\.column_means",
        ),
        (
            lambda: TermBuildContext(ident("a", 1), (), 1, intercept_column=-1),
            ValueError,
            r"intercept_column",
        ),
    ],
)
def test_errors_name_the_field(factory: Any, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        factory()


def test_build_warm_start_argument_types() -> None:
    a = ident("s(a)", 1)
    parent = artifact([(a, [1.0], [0.5])])
    ctx = [TermBuildContext(a, (0,), 1)]
    with pytest.raises(TypeError, match="descriptor: expected FitDescriptor"):
        build_warm_start("d", ctx, [0.0], parent)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parent: expected FitArtifact"):
        build_warm_start(parent.descriptor, ctx, [0.0], {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"terms\[0\]: expected TermBuildContext"):
        build_warm_start(parent.descriptor, [1], [0.0], parent)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="rho_default: expected a 1-D"):
        build_warm_start(parent.descriptor, ctx, [[0.0]], parent)
    with pytest.raises(TypeError, match="config: expected TransferConfig"):
        build_warm_start(parent.descriptor, ctx, [0.0], parent, "project")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.integers(0, 2**31), st.floats(0.1, 0.9))
def test_transport_is_exact_for_random_folds(k: int, seed: int, cut: float) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=80)
    basis = BSpline.design_matrix(x, _knots(x, k=max(k, 4)), 3).toarray()
    kk = basis.shape[1]
    t_full = stz(basis.mean(axis=0))
    i0, i1 = ident("(parametric)", 1, 0), ident("s(x)", kk - 1)
    theta = rng.normal(size=kk - 1)
    parent = artifact([(i0, [0.3], []), (i1, t_full @ theta, [0.0])])
    keep = x > np.quantile(x, cut * 0.5)
    fold = basis[keep]
    c_new = fold.mean(axis=0)
    t_new = stz(c_new)
    ctx = [
        TermBuildContext(i0, (), 1, np.eye(1), intercept_column=0),
        TermBuildContext(i1, (0,), kk - 1, t_new, column_means=c_new),
    ]
    res = build_warm_start(parent.descriptor, ctx, [0.0], parent, TransferConfig("transport"))
    eta_parent = 0.3 + fold @ (t_full @ theta)
    eta_new = res.block_beta[0][0] + fold @ (t_new @ res.block_beta[1])
    assert np.max(np.abs(eta_new - eta_parent)) < 1e-12 * max(1.0, float(np.abs(eta_parent).max()))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(0, 5), st.integers(0, 2**31))
def test_projection_agrees_with_pinv(rows: int, cols: int, seed: int) -> None:
    cols = min(cols, rows)
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(rows, cols))
    beta = rng.normal(size=rows)
    theta = project_beta(t, beta, cols)
    assert theta is not None and theta.shape == (cols,)
    if cols:
        assert np.allclose(theta, np.linalg.pinv(t) @ beta, atol=1e-9, rtol=1e-9)


def test_descriptor_keys_hashed_at_most_once_per_side(monkeypatch: pytest.MonkeyPatch) -> None:
    a = ident("s(a)", 2)
    b = ident("s(b)", 2)
    ctx = [TermBuildContext(a, (0,), 2, np.eye(2))]
    calls = []
    real = FitDescriptor.descriptor_key

    def counting(self: FitDescriptor) -> Any:
        calls.append(self)
        return real(self)

    monkeypatch.setattr(FitDescriptor, "descriptor_key", counting)
    good = artifact([(a, [1.0, 2.0], [0.5])])
    # same family and terms: equal keys without hashing
    res = build_warm_start(descriptor_of([a]), ctx, [0.0], good)
    assert calls == []
    np.testing.assert_allclose(res.rho, [0.5])
    # same term set in another order: hashed once per side, and still equal (keys sort terms)
    two = artifact([(a, [1.0, 2.0], [0.5]), (b, [3.0, 4.0], [1.5])])
    ctx2 = [TermBuildContext(b, (0,), 2, np.eye(2)), TermBuildContext(a, (1,), 2, np.eye(2))]
    res = build_warm_start(descriptor_of([b, a]), ctx2, [0.0, 0.0], two)
    assert len(calls) == 2
    np.testing.assert_allclose(res.rho, [1.5, 0.5])
    calls.clear()
    with pytest.raises(DescriptorMismatch, match="descriptor key"):
        build_warm_start(descriptor_of([b]), ctx, [0.0], good)
    assert len(calls) == 2
