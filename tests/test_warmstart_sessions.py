"""Outer-iterate sessions: encode/decode/classify, start selection, checkpoints, finalize
(spec §4; checklist 45-47, 49-52)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from test_warmstart_fakes import FakeStore, Family, assert_unchanged, freeze, make_fit

from gamstore.records import IteratePayload, WarmStartRecord
from gamstore.store import open_store
from gamstore.store.errors import StoreError
from gamstore.warmstart.capability import WarmStartStore, clear_memo
from gamstore.warmstart.keys import UnsupportedFamilyError, session_keys
from gamstore.warmstart.sessions import (
    Discard,
    ExactFinal,
    OuterSession,
    OuterStart,
    Seed,
    classify_outer_entry,
    decode_iterate,
    encode_iterate,
)
from gamstore.warmstart.specs import BlockSpec


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


def _store(interval: float = 3600.0) -> WarmStartStore:
    st = open_store(f"memory://ws-sess-{uuid.uuid4().hex}", checkpoint_interval=interval)
    return WarmStartStore(store=st)


def _fold(fam: Family, specs: list[BlockSpec], drop: int = 5) -> tuple[Family, list[BlockSpec]]:
    keep = slice(0, specs[0].n_rows - drop)
    return Family(fam.name, fam.y[keep]), [
        BlockSpec(s.name, s.design[keep], None, s.penalties, s.nullspace_dims) for s in specs
    ]


RHO = np.array([0.25, -1.5, 3.0])
BETA = np.linspace(-1.0, 1.0, 11)
HESS = np.array([[2.0, 0.1, 0.0], [0.1, 3.0, 0.2], [0.0, 0.2, 4.0]])


# -- payload helpers -----------------------------------------------------------------------


def test_encode_decode_round_trip_through_store() -> None:
    # checklist 45
    ws = _store()
    p = encode_iterate(RHO, 12.5, 7, beta=BETA, hessian=HESS)
    assert p is not None
    assert ws.save("outer", "k", p, objective=12.5) is not None
    entry = ws.lookup("outer", "k")
    got = decode_iterate(entry.record, 3)
    assert got is not None
    np.testing.assert_array_equal(got.rho, RHO)
    np.testing.assert_array_equal(got.beta, BETA)
    np.testing.assert_array_equal(got.hessian, HESS)
    assert got.cost == 12.5 and got.eval_id == 7
    rho_only = encode_iterate(RHO, 1.0, 1)
    assert rho_only is not None and rho_only.beta.shape == (0,) and rho_only.hessian_dim == 0


def test_encode_refuses_non_finite_and_scrubs_hessian() -> None:
    # checklist 46 (write side)
    assert encode_iterate([np.nan], 1.0, 1) is None
    assert encode_iterate(RHO, np.inf, 1) is None
    assert encode_iterate(RHO, 1.0, 1, beta=[1.0, np.nan]) is None
    for bad in (np.ones((3, 2)), np.full((3, 3), np.inf), np.ones(3)):
        p = encode_iterate(RHO, 1.0, 1, hessian=bad)
        assert p is not None and p.hessian_dim == 0


def test_decode_rejections() -> None:
    # checklist 46 (read side)
    good = IteratePayload(rho=RHO, cost=1.0, eval_id=1, beta=BETA)
    assert decode_iterate(good, 3) is good
    assert decode_iterate(good, 2) is None
    assert decode_iterate(IteratePayload(rho=RHO, cost=1.0, eval_id=1, schema=2), 3) is None
    assert decode_iterate(IteratePayload(rho=[np.nan, 0, 0], cost=1.0, eval_id=1), 3) is None
    assert decode_iterate(IteratePayload(rho=RHO, cost=np.nan, eval_id=1), 3) is None
    assert decode_iterate(IteratePayload(rho=RHO, cost=1.0, eval_id=1, beta=[np.inf]), 3) is None
    assert decode_iterate(WarmStartRecord(key="x", n_rows=1, n_cols=0), 3) is None
    scrubbed = IteratePayload(rho=RHO, cost=1.0, eval_id=1, hessian=np.ones((2, 3)))
    assert decode_iterate(scrubbed, 3) is scrubbed and scrubbed.hessian_dim == 0


class _E:
    def __init__(self, record: Any, kind: str = "checkpoint", objective: Any = None) -> None:
        self.record, self.kind, self.objective, self.iteration = record, kind, objective, None


def test_classify_outer_entry() -> None:
    # checklist 47
    p = IteratePayload(rho=RHO, cost=1.0, eval_id=4, beta=BETA, hessian=HESS)
    assert isinstance(classify_outer_entry(_E(p, "final"), 3), ExactFinal)
    assert isinstance(classify_outer_entry(_E(p, "final"), 3, "preloaded"), Seed)
    seed = classify_outer_entry(_E(p), 3)
    assert isinstance(seed, Seed) and seed.hessian is not None and seed.iteration == 4
    assert classify_outer_entry(_E(p), 2) == Discard("payload-shape-mismatch")
    assert classify_outer_entry(_E(p, objective=float("nan")), 3) == Discard("non-finite-payload")
    bad = IteratePayload(rho=[np.inf, 0.0, 0.0], cost=1.0, eval_id=1)
    assert classify_outer_entry(_E(bad), 3) == Discard("non-finite-payload")
    assert classify_outer_entry(_E(None), 3) == Discard("payload-shape-mismatch")
    assert classify_outer_entry(_E(p, "weird"), 3) == Discard("payload-shape-mismatch")
    # no clamping: a boundary rho is returned verbatim
    far = IteratePayload(rho=[25.0, -30.0, 0.0], cost=1.0, eval_id=1)
    got = classify_outer_entry(_E(far), 3)
    assert isinstance(got, Seed) and got.rho.tolist() == [25.0, -30.0, 0.0]


def test_beta_for_is_bitwise() -> None:
    start = OuterStart("seed", RHO.copy(), BETA.copy())
    got = start.beta_for(RHO.copy())
    assert got is not None and np.array_equal(got, BETA)
    assert start.beta_for(np.nextafter(RHO, np.inf)) is None
    assert start.beta_for(RHO[:2]) is None
    assert OuterStart("cold").beta_for(RHO) is None


# -- sessions ------------------------------------------------------------------------------


def test_no_store_is_a_no_op() -> None:
    _, specs, opts = make_fit()
    sess = OuterSession.open(None, Family("custom", None), specs, opts)
    assert not sess.enabled
    start = sess.begin(3)
    assert start.kind == "cold" and start.reason == "no-store" and not start.warm
    assert sess.on_evaluation(RHO, BETA, 1.0) is False
    assert sess.finish(RHO, BETA, 1.0, True) is False


def test_store_without_fingerprint_is_refused() -> None:
    _, specs, opts = make_fit()
    with pytest.raises(UnsupportedFamilyError):
        OuterSession.open(_store(), Family("custom", None), specs, opts)


def _run(ws: WarmStartStore, fam: Family, specs: list[BlockSpec], opts: Any) -> OuterSession:
    return OuterSession.open(ws, fam, specs, opts)


def test_checkpoint_then_seed_then_final_then_exact_final() -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    first = _run(ws, fam, specs, opts)
    assert first.begin(3).reason == "miss"
    assert first.on_evaluation(RHO, BETA, 10.0) is True
    second = _run(ws, fam, specs, opts)
    start = second.begin(3)
    assert start.kind == "seed" and start.source == "exact"
    np.testing.assert_array_equal(start.rho, RHO)
    np.testing.assert_array_equal(start.beta_for(RHO), BETA)
    assert second.finish(RHO, BETA, 9.0, converged=True, hessian=HESS, iterations=12) is True
    third = _run(ws, fam, specs, opts)
    start = third.begin(3)
    assert start.kind == "exact-final" and start.source == "exact"
    np.testing.assert_array_equal(start.rho, RHO)
    np.testing.assert_array_equal(start.beta, BETA)
    assert start.hessian is None  # a resume recertifies; no Hessian is handed over
    assert start.iteration == 12


@pytest.mark.parametrize(
    ("converged", "certified", "cost"),
    [(False, True, 1.0), (True, False, 1.0), (True, True, float("nan"))],
)
def test_finalize_only_finite_converged_certified(
    converged: bool, certified: bool, cost: float
) -> None:
    # checklist 52
    ws = _store()
    fam, specs, opts = make_fit()
    sess = _run(ws, fam, specs, opts)
    sess.begin(3)
    sess.on_evaluation(RHO, BETA, 5.0)
    assert sess.finish(RHO, BETA, cost, converged, certified=certified) is False
    assert _run(ws, fam, specs, opts).begin(3).kind == "seed"


def test_final_beta_only_at_bitwise_final_rho() -> None:
    # checklist 52 / #2486
    fam, specs, opts = make_fit()
    rho_b = np.nextafter(RHO, np.inf)  # one ulp away
    cases = {
        "last eval at final rho": (RHO, None, None, True),
        "last eval one ulp away": (rho_b, None, None, False),
        "explicit beta": (rho_b, BETA, None, True),
        "explicit beta produced elsewhere": (rho_b, BETA, RHO, False),
        "explicit beta produced here": (rho_b, BETA, rho_b.copy(), True),
    }
    for what, (final_rho, beta, beta_rho, has_beta) in cases.items():
        ws = _store()
        sess = _run(ws, fam, specs, opts)
        sess.begin(3)
        assert sess.on_evaluation(RHO, BETA, 5.0)
        assert sess.finish(final_rho, beta, 4.0, True, beta_rho=beta_rho), what
        start = _run(ws, fam, specs, opts).begin(3)
        assert start.kind == "exact-final", what
        assert (start.beta is not None) is has_beta, what
        np.testing.assert_array_equal(start.rho, final_rho)


def test_rate_limit_and_improvement() -> None:
    # checklist 40/51 as seen through the session helper
    ws = _store(interval=3600.0)
    fam, specs, opts = make_fit()
    sess = _run(ws, fam, specs, opts)
    sess.begin(3)
    assert sess.on_evaluation(RHO, BETA, 10.0) is True
    assert sess.on_evaluation(RHO + 1, BETA, 10.0) is False  # not improving, within 2 s
    assert sess.on_evaluation(RHO + 2, BETA, 10.0 - 1e-13) is False  # within the 1e-12 margin
    assert sess.on_evaluation(RHO + 3, BETA, 9.0) is True  # improves
    assert sess.evaluations == 4
    start = _run(ws, fam, specs, opts).begin(3)
    np.testing.assert_array_equal(start.rho, RHO + 3)


@pytest.mark.parametrize(
    ("rho", "beta", "cost"),
    [
        (np.array([np.nan, 0.0, 0.0]), BETA, 1.0),
        (RHO, BETA, float("inf")),
        (RHO, np.array([0.0, np.nan]), 1.0),
        (RHO, BETA, "cheap"),
    ],
)
def test_non_finite_evaluations_not_persisted(rho: Any, beta: Any, cost: Any) -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    sess = _run(ws, fam, specs, opts)
    sess.begin(3)
    rho, beta = np.array(rho, copy=True), np.array(beta, copy=True)
    before = freeze(rho, beta)
    assert sess.on_evaluation(rho, beta, cost) is False
    assert sess.evaluations == 0
    assert _run(ws, fam, specs, opts).begin(3).kind == "cold"
    assert_unchanged(before, rho, beta)


def test_finish_with_non_finite_beta_is_rho_only() -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    sess = _run(ws, fam, specs, opts)
    sess.begin(3)
    beta = np.array([0.0, np.nan])
    snap = freeze(beta)
    assert sess.finish(RHO, beta, 1.0, True) is True
    assert_unchanged(snap, beta)
    start = _run(ws, fam, specs, opts).begin(3)
    assert start.kind == "exact-final" and start.beta is None


def test_loso_fold_seeds_from_mirror_never_exact_final() -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    full = _run(ws, fam, specs, opts)
    full.begin(3)
    full.on_evaluation(RHO, BETA, 5.0)
    assert full.finish(RHO, BETA, 4.0, True, hessian=HESS)
    ffam, fspecs = _fold(fam, specs)
    assert session_keys(ffam, fspecs, opts).seed == session_keys(fam, specs, opts).seed
    fold = _run(ws, ffam, fspecs, opts)
    start = fold.begin(3)
    assert start.kind == "seed" and start.source == "seed-key"  # a near match only seeds
    np.testing.assert_array_equal(start.rho, RHO)
    np.testing.assert_array_equal(start.hessian, HESS)
    no_hess = OuterSession.open(ws, ffam, fspecs, opts, analytic_hessian=False).begin(3)
    assert no_hess.kind == "seed" and no_hess.hessian is None
    assert _run(ws, ffam, fspecs, opts).begin(2).kind == "cold"  # dimension mismatch
    no_mirror = OuterSession.open(ws, ffam, fspecs, opts, mirror=False)
    assert no_mirror.begin(3).reason == "miss"


def test_exact_discard_falls_through_to_seed_key_or_cold() -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    keys = session_keys(fam, specs, opts)
    bad = IteratePayload(rho=[1.0, 2.0], cost=1.0, eval_id=1)  # wrong dimension
    assert ws.save("outer", keys.exact, bad, objective=1.0)
    start = _run(ws, fam, specs, opts).begin(3)
    assert start.kind == "cold" and start.reason == "payload-shape-mismatch"
    # the real store refuses non-finite arrays; a contract store that keeps them shows the
    # reader still discards such an entry
    fake = WarmStartStore(store=FakeStore())
    nonfinite = IteratePayload(rho=[np.inf, 0.0, 0.0], cost=1.0, eval_id=1)
    assert fake.save("outer", keys.exact, nonfinite, objective=0.5)
    assert _run(fake, fam, specs, opts).begin(3).reason == "non-finite-payload"
    good = IteratePayload(rho=RHO, cost=1.0, eval_id=1)
    assert ws.save("outer", keys.seed, good)
    start = _run(ws, fam, specs, opts).begin(3)
    assert start.kind == "seed" and start.source == "seed-key" and start.beta is None


def test_storage_failures_never_raise() -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    fam, specs, opts = make_fit()
    rho, beta = RHO.copy(), BETA.copy()
    snap = freeze(fam, specs, rho, beta)
    sess = _run(ws, fam, specs, opts)
    fake.fail_lookup = StoreError("unreachable")
    assert sess.begin(3).kind == "cold"
    fake.fail_lookup = None
    assert sess.on_evaluation(RHO, BETA, 1.0) is False  # disabled after the I/O error
    assert sess.finish(RHO, BETA, 1.0, True) is False
    fake2 = FakeStore()
    fake2.fail_save = OSError(5, "I/O error")
    sess2 = _run(WarmStartStore(store=fake2), fam, specs, opts)
    assert sess2.begin(3).kind == "cold"
    assert sess2.on_evaluation(rho, beta, 1.0) is False
    assert sess2.finish(rho, beta, 1.0, True) is False
    assert_unchanged(snap, fam, specs, rho, beta)


def test_start_arrays_are_private_copies_and_inputs_untouched() -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    sess = _run(ws, fam, specs, opts)
    sess.begin(3)
    rho, beta = RHO.copy(), BETA.copy()
    sess.on_evaluation(rho, beta, 3.0)
    sess.finish(rho, beta, 2.0, True, hessian=HESS.copy())
    np.testing.assert_array_equal(rho, RHO)
    np.testing.assert_array_equal(beta, BETA)
    start = _run(ws, fam, specs, opts).begin(3)
    assert start.rho is not None and start.rho.flags.writeable
    start.rho[:] = 0.0
    again = _run(ws, fam, specs, opts).begin(3)
    np.testing.assert_array_equal(again.rho, RHO)


def test_begin_validates_rho_dim() -> None:
    with pytest.raises(ValueError, match="rho_dim"):
        OuterSession(None, None).begin(-1)


def test_mirror_checkpoints_can_be_final_only() -> None:
    ws = _store()
    fam, specs, opts = make_fit()
    ffam, fspecs = _fold(fam, specs)
    full = OuterSession.open(ws, fam, specs, opts, mirror_checkpoints=False)
    full.begin(3)
    assert full.on_evaluation(RHO, BETA, 5.0)
    assert _run(ws, ffam, fspecs, opts).begin(3).reason == "miss"  # mirror not written yet
    assert _run(ws, fam, specs, opts).begin(3).kind == "seed"  # exact key was
    assert full.finish(RHO, BETA, 4.0, True)
    start = _run(ws, ffam, fspecs, opts).begin(3)
    assert start.kind == "seed" and start.source == "seed-key"


def test_open_with_block_key_hint_uses_same_keys() -> None:
    from gamstore.warmstart.blocks import load_block_warm_start

    ws = _store()
    fam, specs, opts = make_fit()
    key, _ = load_block_warm_start(ws, fam, specs, opts, 3)
    a = OuterSession.open(ws, fam, specs, opts, block_key=key)
    b = OuterSession.open(ws, fam, specs, opts)
    assert (a.exact_key, a.seed_key) == (b.exact_key, b.seed_key)
    a.begin(3)
    assert a.on_evaluation(RHO, BETA, 1.0)
    assert b.begin(3).kind == "seed"
