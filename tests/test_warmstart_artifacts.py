"""Cross-fit artifacts: the seed's two tests, capture/consume through a real store, and every
cold-fallback path (spec §6; checklist 10, 11, 58-66)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest
from test_warmstart_fakes import FakeStore, Family, assert_unchanged, freeze

from gamstore.artifact import (
    FIT_ARTIFACT_SCHEMA,
    BasisMeta,
    FitArtifact,
    FitDescriptor,
    GlobalFitSummary,
    ResponseSig,
    RowPopulationTag,
    TermArtifact,
    TermRole,
    term_identity_from_block,
)
from gamstore.gauge import Gauge
from gamstore.store import open_store
from gamstore.transfer import TransferConfig
from gamstore.warmstart.artifacts import (
    capture_fit_artifact,
    consume_fit_artifact,
    descriptor_for,
    load_fit_artifact,
    per_block_rho_slots,
    store_fit_artifact,
)
from gamstore.warmstart.capability import WarmStartStore, clear_memo
from gamstore.warmstart.keys import UnsupportedFamilyError
from gamstore.warmstart.specs import (
    BlockSpec,
    DensePenalty,
    FitOptions,
    FixedPenalty,
    LabeledPenalty,
    physical_to_outer,
)


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


def _store() -> WarmStartStore:
    return WarmStartStore(store=open_store(f"memory://ws-art-{uuid.uuid4().hex}"))


# -- the seed's own two tests ------------------------------------------------------------------


def sample_artifact(family: str, var: str, rho: list[float]) -> FitArtifact:
    block_name = f"s({var})"
    ident = term_identity_from_block(TermRole.MEAN, block_name, [None], [1], 10)
    return FitArtifact(
        descriptor=FitDescriptor(
            family_kind=family,
            term_identities=(ident,),
            response_signature=ResponseSig(family, 1),
            row_population=None,
        ),
        terms=(
            TermArtifact(
                identity=ident,
                role=TermRole.MEAN,
                basis_meta=BasisMeta(kind="block-spec", n_centers=8),
                raw_beta=np.array([0.1, -0.2, 0.3, 0.4, -0.5, 0.6, -0.7, 0.8]),
                rho_for_term=np.array(rho),
            ),
        ),
        global_=GlobalFitSummary(outer_objective=-42.0, converged=True, n_rows=500),
        schema=FIT_ARTIFACT_SCHEMA,
    )


def test_artifact_round_trips_by_descriptor() -> None:
    ws = _store()
    family = f"test-roundtrip-{time.time_ns()}"
    artifact = sample_artifact(family, "x", [2.5])
    key_hex = artifact.descriptor.descriptor_key().hex()
    assert store_fit_artifact(ws, artifact)
    loaded = load_fit_artifact(ws, key_hex)
    assert loaded is not None
    assert loaded.schema == artifact.schema
    assert len(loaded.terms) == 1
    assert loaded.terms[0].identity == artifact.terms[0].identity
    assert loaded.terms[0].rho_for_term.tolist() == [2.5]
    np.testing.assert_array_equal(loaded.terms[0].raw_beta, artifact.terms[0].raw_beta)
    assert loaded.descriptor.descriptor_key() == artifact.descriptor.descriptor_key()
    # the other accepted forms of the key
    assert load_fit_artifact(ws, artifact.descriptor) == loaded
    assert load_fit_artifact(ws, artifact.descriptor.descriptor_key()) == loaded


def test_loso_fold_descriptor_matches_full_data_artifact() -> None:
    ws = _store()
    family = f"test-loso-{time.time_ns()}"
    full = sample_artifact(family, "x", [1.7])
    full = FitArtifact(
        descriptor=FitDescriptor(
            full.descriptor.family_kind,
            full.descriptor.term_identities,
            full.descriptor.response_signature,
            RowPopulationTag(n_rows=1000, label="full"),
        ),
        terms=full.terms,
        global_=GlobalFitSummary(-42.0, True, 1000),
    )
    full_key = full.descriptor.descriptor_key().hex()
    fold = sample_artifact(family, "x", [1.7])
    fold_key = fold.descriptor.descriptor_key().hex()
    assert full_key == fold_key, "fold and full descriptor keys must match"
    assert store_fit_artifact(ws, full)
    loaded = load_fit_artifact(ws, fold_key)
    assert loaded is not None, "LOSO fold must retrieve the full-data artifact"
    assert loaded.terms[0].rho_for_term.tolist() == [1.7]


# -- a small model with sum-to-zero gauges -----------------------------------------------------


def _sum_to_zero(basis: np.ndarray) -> np.ndarray:
    """Z (k x k-1) spanning {β : mean(B)·β = 0}, via a full QR of the constraint."""
    c = basis.mean(axis=0)[:, None]
    q, _ = np.linalg.qr(c, mode="complete")
    return q[:, 1:]


class Model:
    """Raw bases for 2 smooths + parametric; ``fit(rows)`` gives specs and gauge."""

    def __init__(self, n: int = 60, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.y = rng.poisson(2.0, n).astype(float)
        self.x0 = np.column_stack([np.ones(n), rng.normal(size=n)])
        self.raw = [rng.uniform(size=(n, 6)), rng.uniform(size=(n, 5))]
        for b in self.raw:
            b /= b.sum(axis=1, keepdims=True)  # partition of unity, like B-splines
        d6, d5 = np.diff(np.eye(6), 2, axis=0), np.diff(np.eye(5), 2, axis=0)
        self.s = [d6.T @ d6, d5.T @ d5]

    def fit(self, rows: Any = slice(None)) -> tuple[Family, list[BlockSpec], Gauge]:
        zs = [_sum_to_zero(b[rows]) for b in self.raw]
        specs = [BlockSpec("(parametric)", self.x0[rows])]
        for j, (b, z, s) in enumerate(zip(self.raw, zs, self.s, strict=True), start=1):
            pens: list[Any] = [DensePenalty(z.T @ s @ z)]
            if j == 2:
                pens.append(LabeledPenalty("shrink", DensePenalty(np.eye(z.shape[1]))))
            specs.append(BlockSpec(f"s(x{j})", b[rows] @ z, penalties=pens, nullspace_dims=[1]))
        gauge = Gauge.block_diagonal([np.eye(2), *zs])
        return Family("poisson", self.y[rows]), specs, gauge


RHO = np.array([1.5, -0.75, 2.25])


def _betas(specs: list[BlockSpec], seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s.width) for s in specs]


def _capture(ws: Any, m: Model, rows: Any = slice(None), **kw: Any) -> tuple[Any, ...]:
    fam, specs, gauge = m.fit(rows)
    betas = _betas(specs)
    args: dict[str, Any] = {
        "reduced_block_beta": betas,
        "rho": RHO,
        "physical_to_outer": physical_to_outer(specs),
        "outer_objective": 123.0,
        "converged": True,
    }
    args.update(kw)
    ok = capture_fit_artifact(ws, fam, specs, gauge, **args)
    return ok, fam, specs, gauge, betas


def test_descriptor_is_fold_invariant_and_structural() -> None:
    # checklist 10, 11
    m = Model()
    fam, specs, _ = m.fit()
    ffam, fspecs, _ = m.fit(slice(5, None))
    key = descriptor_for(fam, specs).descriptor_key()
    assert descriptor_for(ffam, fspecs).descriptor_key() == key
    assert descriptor_for(fam, list(reversed(specs))).descriptor_key() == key  # order-free
    # penalty values do not matter; labels, widths, nullspace dims, names and family do
    s1 = specs[1]
    scaled = BlockSpec(s1.name, s1.design, None, [DensePenalty(2.0 * s1.penalties[0].matrix)], [1])
    assert descriptor_for(fam, [specs[0], scaled, specs[2]]).descriptor_key() == key
    variants = [
        descriptor_for("gaussian", specs),
        descriptor_for(
            fam, [specs[0], BlockSpec(s1.name, s1.design[:, :4], None, [], [1]), specs[2]]
        ),
        descriptor_for(
            fam, [specs[0], BlockSpec(s1.name, s1.design, None, s1.penalties, [2]), specs[2]]
        ),
        descriptor_for(
            fam, [specs[0], BlockSpec("s(z1)", s1.design, None, s1.penalties, [1]), specs[2]]
        ),
        descriptor_for(
            fam,
            [
                specs[0],
                BlockSpec(s1.name, s1.design, None, [LabeledPenalty("a", s1.penalties[0])], [1]),
                specs[2],
            ],
        ),
        descriptor_for(fam, specs[:2]),
    ]
    assert len({v.descriptor_key() for v in variants} | {key}) == len(variants) + 1


def test_per_block_rho_slots_with_fixed_and_shared_labels() -> None:
    eye = np.eye(2)
    specs = [
        BlockSpec(
            "a",
            np.ones((3, 2)),
            penalties=[DensePenalty(eye), FixedPenalty(1.0, DensePenalty(eye))],
        ),
        BlockSpec("b", np.ones((3, 2)), penalties=[LabeledPenalty("L", DensePenalty(eye))]),
        BlockSpec("c", np.ones((3, 2)), penalties=[LabeledPenalty("L", DensePenalty(eye))]),
    ]
    p2o = physical_to_outer(specs)
    assert per_block_rho_slots(specs, p2o) == [(0,), (1,), (1,)]


def test_capture_then_consume_same_data_reproduces_beta_and_rho() -> None:
    # checklist 58, 59, 63 (identity-like reproduction), 64, 65
    ws = _store()
    m = Model()
    ok, fam, specs, gauge, betas = _capture(ws, m)
    assert ok
    rho0 = np.zeros(3)
    warm = consume_fit_artifact(ws, fam, specs, gauge, physical_to_outer(specs), rho0)
    assert warm is not None
    np.testing.assert_allclose(warm.rho, RHO, rtol=0, atol=0)
    for got, want in zip(warm.block_beta, betas, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-10)
    assert warm.active_sets == [None, None, None]
    assert warm.cached_inner is None
    np.testing.assert_array_equal(rho0, np.zeros(3))  # input untouched


def test_loso_fold_consumes_full_data_artifact() -> None:
    ws = _store()
    m = Model()
    ok, _, _, full_gauge, betas = _capture(ws, m)
    assert ok
    ffam, fspecs, fgauge = m.fit(slice(6, None))
    rho0 = np.zeros(3)
    snap = freeze(ffam, fspecs, fgauge, rho0)
    warm = consume_fit_artifact(ws, ffam, fspecs, fgauge, physical_to_outer(fspecs), rho0)
    assert warm is not None
    np.testing.assert_array_equal(warm.rho, RHO)
    assert [b.shape[0] for b in warm.block_beta] == [s.width for s in fspecs]
    # the fold's raw β is the least-squares match of the parent's raw β
    raw_parent = full_gauge.lift_block_betas(betas)
    raw_fold = fgauge.lift_block_betas(warm.block_beta)
    np.testing.assert_allclose(raw_fold[0], raw_parent[0], atol=1e-12)  # identity block
    for b in (1, 2):
        z = fgauge.block_transform(b)
        resid = raw_parent[b] - raw_fold[b]
        np.testing.assert_allclose(z.T @ resid, 0.0, atol=1e-10)  # normal equations
    assert_unchanged(snap, ffam, fspecs, fgauge, rho0)
    assert warm.rho.flags.writeable  # the warm start owns its arrays


def test_latest_artifact_wins_regardless_of_objective() -> None:
    ws = _store()
    m = Model()
    assert _capture(ws, m, outer_objective=1.0)[0]
    time.sleep(0.002)
    assert _capture(ws, m, rho=RHO + 1.0, outer_objective=1e9)[0]
    fam, specs, gauge = m.fit()
    warm = consume_fit_artifact(ws, fam, specs, gauge, physical_to_outer(specs), np.zeros(3))
    assert warm is not None
    np.testing.assert_array_equal(warm.rho, RHO + 1.0)


CAPTURE_ABORTS: dict[str, Any] = {
    "beta count": lambda specs, gauge: {"reduced_block_beta": _betas(specs)[:2]},
    "beta width": lambda specs, gauge: {
        "reduced_block_beta": [b if i != 1 else b[:-1] for i, b in enumerate(_betas(specs))]
    },
    "non-finite beta": lambda specs, gauge: {
        "reduced_block_beta": [b if i != 2 else b * np.nan for i, b in enumerate(_betas(specs))]
    },
    "non-finite rho for a term": lambda specs, gauge: {"rho": np.array([1.0, np.inf, 0.0])},
    "non-finite objective": lambda specs, gauge: {"outer_objective": float("nan")},
    "not converged": lambda specs, gauge: {"converged": False},
    "gauge block count": lambda specs, gauge: {"gauge": Gauge.identity([2, 5])},
    "invalid gauge": lambda specs, gauge: {
        "gauge": Gauge(np.full((13, 11), np.nan), np.zeros(13), (0, 2, 8, 13), (0, 2, 7, 11))
    },
}


@pytest.mark.parametrize("what", sorted(CAPTURE_ABORTS))
def test_capture_aborts_store_nothing(what: str) -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    m = Model()
    fam, specs, gauge = m.fit()
    kw: dict[str, Any] = {
        "reduced_block_beta": _betas(specs),
        "rho": RHO,
        "physical_to_outer": physical_to_outer(specs),
        "outer_objective": 5.0,
        "converged": True,
    }
    kw.update(CAPTURE_ABORTS[what](specs, gauge))
    g = kw.pop("gauge", gauge)
    snap = freeze(fam, specs, g, kw["reduced_block_beta"], kw["rho"])
    assert capture_fit_artifact(ws, fam, specs, g, **kw) is False
    assert fake.entries == []
    assert_unchanged(snap, fam, specs, g, kw["reduced_block_beta"], kw["rho"])


def test_out_of_range_slots_dropped_on_capture() -> None:
    ws = _store()
    m = Model()
    fam, specs, gauge = m.fit()
    ok = capture_fit_artifact(
        ws, fam, specs, gauge, _betas(specs), RHO[:2], physical_to_outer(specs), 1.0, True
    )
    assert ok
    art = load_fit_artifact(ws, descriptor_for(fam, specs))
    assert art is not None
    assert [t.rho_for_term.tolist() for t in art.terms] == [[], [1.5], [-0.75]]


def test_unusable_artifact_never_stored() -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    bad = sample_artifact("fam", "x", [float("nan")])
    assert store_fit_artifact(ws, bad) is False
    assert fake.entries == []
    with pytest.raises(TypeError, match="FitArtifact"):
        store_fit_artifact(ws, "nope")  # type: ignore[arg-type]


def test_unusable_artifact_on_load_is_a_miss() -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    bad = sample_artifact("fam", "x", [float("nan")])
    from gamstore.artifact import artifact_key

    assert ws.save("artifact", artifact_key(bad.descriptor), bad)  # bypassing the gate
    assert load_fit_artifact(ws, bad.descriptor) is None


def _consume(ws: Any, m: Model, rows: Any = slice(None), **kw: Any) -> Any:
    fam, specs, gauge = m.fit(rows)
    args: dict[str, Any] = {
        "gauge": gauge,
        "physical_to_outer": physical_to_outer(specs),
        "rho_default": np.zeros(3),
    }
    args.update(kw)
    return consume_fit_artifact(ws, kw.pop("family", fam), specs, **args)


def test_consume_cold_paths() -> None:
    # checklist 65, 66: every "falls back cold" path returns None and touches nothing
    m = Model()
    fam, specs, gauge = m.fit()
    p2o = physical_to_outer(specs)
    rho0 = np.zeros(3)
    nan_rho0 = np.array([0.0, 0.0, 0.0, np.nan])  # an untouched default slot is NaN
    empty = np.zeros(0)
    other = [specs[0], specs[1]]
    snap = freeze(fam, specs, gauge, rho0, nan_rho0, p2o)

    def cold(store: Any, **kw: Any) -> None:
        args: dict[str, Any] = {"gauge": gauge, "physical_to_outer": p2o, "rho_default": rho0}
        args.update(kw)
        blocks = args.pop("specs", specs)
        assert consume_fit_artifact(store, fam, blocks, **args) is None, kw
        assert_unchanged(snap, fam, specs, gauge, rho0, nan_rho0, p2o)

    cold(None)  # no store
    ws = _store()
    cold(ws)  # no artifact
    assert capture_fit_artifact(ws, fam, specs, gauge, _betas(specs), RHO, p2o, 1.0, True)
    assert consume_fit_artifact(ws, fam, specs, gauge, p2o, rho0) is not None  # control
    cold(ws, rho_default=empty)  # empty ρ0
    cold(ws, gauge=None, physical_to_outer=[None] * 3)  # nothing matched: all terms Cold
    cold(ws, rho_default=nan_rho0)  # non-finite warm iterate
    cold(ws, specs=other, physical_to_outer=p2o[:1])  # another structure: descriptor miss
    cold(ws, rho_default=np.zeros((3, 1)))  # not a vector


def test_consume_misaligned_gauge_transfers_rho_only() -> None:
    ws = _store()
    m = Model()
    assert _capture(ws, m)[0]
    warm = _consume(ws, m, gauge=Gauge.identity([2, 5]))
    assert warm is not None
    np.testing.assert_array_equal(warm.rho, RHO)
    assert all(not b.any() for b in warm.block_beta)  # cold zero β (RhoOnly)


def test_consume_raw_width_mismatch_keeps_rho() -> None:
    # checklist 63: a raw-width mismatch gives a cold zero β while ρ still transfers
    ws = _store()
    m = Model()
    assert _capture(ws, m)[0]
    fam, specs, gauge = m.fit()
    t = gauge.t_full.copy()
    wide = Gauge(
        np.vstack([t, np.zeros((1, t.shape[1]))]),
        np.zeros(t.shape[0] + 1),
        (0, 2, 8, 14),
        gauge.block_starts_reduced,
    )
    warm = consume_fit_artifact(ws, fam, specs, wide, physical_to_outer(specs), np.zeros(3))
    assert warm is not None
    np.testing.assert_array_equal(warm.rho, RHO)
    assert not warm.block_beta[2].any()
    assert warm.block_beta[1].any()


def test_consume_with_historical_clamp_and_transport_mode() -> None:
    ws = _store()
    m = Model()
    assert _capture(ws, m, rho=np.array([9.5, 8.5, 0.5]))[0]
    fam, specs, gauge = m.fit()
    warm = consume_fit_artifact(
        ws, fam, specs, gauge, physical_to_outer(specs), np.zeros(3),
        config=TransferConfig.historical(),
    )  # fmt: skip
    assert warm is not None
    np.testing.assert_array_equal(warm.rho, [0.0, 8.0, 0.5])  # 9.5 skipped, 8.5 clamped
    ffam, fspecs, fgauge = m.fit(slice(4, None))
    means = [None] + [b[4:].mean(axis=0) for b in m.raw]
    warm2 = consume_fit_artifact(
        ws, ffam, fspecs, fgauge, physical_to_outer(fspecs), np.zeros(3),
        config=TransferConfig(mode="transport"), column_means=means, intercept_column=0,
    )  # fmt: skip
    assert warm2 is not None and all(np.isfinite(b).all() for b in warm2.block_beta)


def test_family_gate() -> None:
    # #1607: capture/consume require a family fingerprint when a store is configured
    m = Model()
    _, specs, gauge = m.fit()
    nofp = Family("custom", None)
    p2o = physical_to_outer(specs)
    ws = _store()
    with pytest.raises(UnsupportedFamilyError):
        capture_fit_artifact(ws, nofp, specs, gauge, _betas(specs), RHO, p2o, 1.0, True)
    with pytest.raises(UnsupportedFamilyError):
        consume_fit_artifact(ws, nofp, specs, gauge, p2o, np.zeros(3))
    assert (
        capture_fit_artifact(None, nofp, specs, gauge, _betas(specs), RHO, p2o, 1.0, True) is False
    )
    assert consume_fit_artifact(None, nofp, specs, gauge, p2o, np.zeros(3)) is None
    # options are forwarded to the family's fingerprint
    fam = Family("poisson", m.y)
    assert capture_fit_artifact(
        ws, fam, specs, gauge, _betas(specs), RHO, p2o, 1.0, True, options=FitOptions()
    )


def test_storage_failure_never_raises() -> None:
    from gamstore.store.errors import StoreError

    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    m = Model()
    fake.fail_save = StoreError("bucket gone")
    assert _capture(ws, m)[0] is False
    assert _consume(ws, m) is None


def test_capture_lifts_with_affine_shift() -> None:
    # checklist 58: raw = T·θ + a, split at the raw partition
    ws = _store()
    m = Model()
    fam, specs, gauge = m.fit()
    shift = np.linspace(-0.5, 0.5, gauge.t_full.shape[0])
    shifted = Gauge(gauge.t_full, shift, gauge.block_starts_raw, gauge.block_starts_reduced)
    betas = _betas(specs)
    p2o = physical_to_outer(specs)
    assert capture_fit_artifact(ws, fam, specs, shifted, betas, RHO, p2o, 1.0, True)
    art = load_fit_artifact(ws, descriptor_for(fam, specs))
    assert art is not None
    theta = np.concatenate(betas)
    raw = gauge.t_full @ theta + shift
    p = gauge.block_starts_raw
    for b, term in enumerate(art.terms):
        np.testing.assert_allclose(term.raw_beta, raw[p[b] : p[b + 1]], rtol=0, atol=1e-14)
    assert art.global_.converged and art.global_.n_rows == m.n
    assert art.descriptor.row_population is not None
    assert art.descriptor.row_population.n_rows == m.n


def test_consume_refuses_a_parent_of_another_rho_convention() -> None:
    ws = _store()
    ok, fam, specs, gauge, _ = _capture(ws, Model())
    assert ok
    p2o = physical_to_outer(specs)
    assert consume_fit_artifact(ws, fam, specs, gauge, p2o, np.zeros(3)) is not None
    other = consume_fit_artifact(
        ws, fam, specs, gauge, p2o, np.zeros(3), rho_convention="pygam-lam"
    )
    assert other is None


def test_consume_with_a_preloaded_parent_equals_the_lookup() -> None:
    ws = _store()
    m = Model()
    assert _capture(ws, m)[0]
    ffam, fspecs, fgauge = m.fit(slice(6, None))
    p2o = physical_to_outer(fspecs)
    rho0 = np.zeros(3)
    desc = descriptor_for(ffam, fspecs)
    parent = load_fit_artifact(ws, desc)
    assert parent is not None
    looked_up = consume_fit_artifact(ws, ffam, fspecs, fgauge, p2o, rho0)
    given = consume_fit_artifact(
        ws, ffam, fspecs, fgauge, p2o, rho0, descriptor=desc, parent=parent
    )
    assert looked_up is not None and given is not None
    np.testing.assert_array_equal(given.rho, looked_up.rho)
    for a, b in zip(given.block_beta, looked_up.block_beta, strict=True):
        np.testing.assert_array_equal(a, b)
    # a descriptor of another block count is re-derived, not trusted
    short = FitDescriptor(
        family_kind=desc.family_kind,
        term_identities=desc.term_identities[:1],
        response_signature=desc.response_signature,
        row_population=None,
    )
    again = consume_fit_artifact(
        ws, ffam, fspecs, fgauge, p2o, rho0, descriptor=short, parent=parent
    )
    assert again is not None
    np.testing.assert_array_equal(again.rho, looked_up.rho)
    # an unusable or foreign parent passed in is a cold start, never an error
    assert consume_fit_artifact(ws, ffam, fspecs, fgauge, p2o, rho0, parent="x") is None  # type: ignore[arg-type]
    bad = FitArtifact(
        descriptor=parent.descriptor,
        terms=parent.terms,
        global_=parent.global_,
        schema=FIT_ARTIFACT_SCHEMA + 1,
    )
    assert consume_fit_artifact(ws, ffam, fspecs, fgauge, p2o, rho0, parent=bad) is None


def test_block_term_identity_memo_is_value_keyed() -> None:
    from gamstore.warmstart.artifacts import block_term_identity

    a = BlockSpec(
        "s(x)", np.ones((4, 3)), penalties=(DensePenalty(np.eye(3)),), nullspace_dims=(1,)
    )
    b = BlockSpec(
        "s(x)", np.zeros((9, 3)), penalties=(DensePenalty(2 * np.eye(3)),), nullspace_dims=(1,)
    )
    c = BlockSpec(
        "s(x)", np.ones((4, 3)), penalties=(DensePenalty(np.eye(3)),), nullspace_dims=(2,)
    )
    ref = term_identity_from_block(TermRole.GENERIC, "s(x)", [None], [1], 3)
    assert block_term_identity(a) == ref and block_term_identity(b) == ref  # no values enter
    assert block_term_identity(c) != ref
    assert block_term_identity(c) == term_identity_from_block(
        TermRole.GENERIC, "s(x)", [None], [2], 3
    )
