"""Records A/B load-store and the exact block warm start (spec §5.1, §5.2, §5.9, §8.1;
checklist 9, 53-57, 70)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_warmstart_fakes import FakeStore, Family, assert_unchanged, freeze, make_fit

from gamstore.records import BlockWarmStartRecord, InnerSummary, WarmStartRecord
from gamstore.warmstart.blocks import (
    SATURATION_THRESHOLD,
    BlockWarmStart,
    CachedInner,
    load_block_warm_start,
    store_block_warm_start,
)
from gamstore.warmstart.capability import WarmStartStore, clear_memo
from gamstore.warmstart.inner_cap import update_inner_cap
from gamstore.warmstart.keys import UnsupportedFamilyError, block_key
from gamstore.warmstart.records_io import (
    load_block_record,
    load_record,
    store_block_record,
    store_record,
)
from gamstore.warmstart.specs import BlockSpec, FitOptions


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


def _warm(specs: list[BlockSpec], rho: Any = (0.5, -1.0, 2.0), **kw: Any) -> BlockWarmStart:
    rng = np.random.default_rng(3)
    return BlockWarmStart(
        rho=np.array(rho, dtype=float),
        block_beta=[rng.normal(size=s.width) for s in specs],
        **kw,
    )


def _inner(**kw: Any) -> CachedInner:
    base: dict[str, Any] = {
        "log_likelihood": -120.5,
        "penalty_value": 3.25,
        "cycles": 7,
        "converged": True,
        "block_logdet_h": 12.0,
        "block_logdet_s": 4.0,
        "kkt_residual": 1e-9,
        "active_constraints": np.array([1, 2]),
    }
    base.update(kw)
    return CachedInner(**base)


def _assert_same(a: BlockWarmStart, b: BlockWarmStart) -> None:
    np.testing.assert_array_equal(a.rho, b.rho)
    assert len(a.block_beta) == len(b.block_beta)
    for x, y in zip(a.block_beta, b.block_beta, strict=True):
        np.testing.assert_array_equal(x, y)


# -- records A and B ------------------------------------------------------------------------


def test_record_a_round_trip_and_no_store() -> None:
    ws = WarmStartStore(store=FakeStore())
    rec = WarmStartRecord(key="surv-transform-0123", n_rows=10, n_cols=3, rho=[1.0], beta=[1, 2, 3])
    assert store_record(None, rec) is False
    assert load_record(None, rec.key) is None
    assert store_record(ws, rec) is True
    got = load_record(ws, rec.key)
    assert got == rec
    assert got is not None and got.is_compatible(rec.key, 10, 3)
    assert load_record(ws, "other") is None
    # keyspaces are disjoint: record A is not visible as record B under the same key
    assert load_block_record(ws, rec.key) is None


def test_store_record_type_checked() -> None:
    ws = WarmStartStore(store=FakeStore())
    with pytest.raises(TypeError, match="record: expected WarmStartRecord"):
        store_record(ws, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="BlockWarmStartRecord"):
        store_block_record(ws, WarmStartRecord(key="k", n_rows=1, n_cols=0))  # type: ignore[arg-type]


def test_block_record_fresh_entry_each_store_newest_wins() -> None:
    # checklist 54: fresh entry per store, objective None, kind checkpoint, newest returned
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    for i in range(3):
        rec = BlockWarmStartRecord(
            key="cf-0000000000000001", n_rows=5, block_names=("a",), block_dims=(1,),
            rho=[float(i)], block_beta=[[float(i)]], active_sets=[None],
        )  # fmt: skip
        assert store_block_record(ws, rec)
    assert len(fake.entries) == 3
    assert all(e.objective is None and e.kind == "checkpoint" for e in fake.entries)
    got = load_block_record(ws, "cf-0000000000000001")
    assert got is not None and got.rho.tolist() == [2.0]


def test_collision_guard_and_foreign_type() -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    other = BlockWarmStartRecord(key="cf-bbbb", n_rows=1, block_names=(), block_dims=())
    # an entry under "cf-aaaa" whose record carries another key string is a miss
    assert ws.save("block", "cf-aaaa", other) is not None
    assert load_block_record(ws, "cf-aaaa") is None
    # a record of another type under the block key is a miss
    assert ws.save("block", "cf-cccc", WarmStartRecord(key="cf-cccc", n_rows=1, n_cols=0))
    assert load_block_record(ws, "cf-cccc") is None


def test_package_version_not_compared() -> None:
    # checklist 56
    ws = WarmStartStore(store=FakeStore())
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    warm = _warm(specs)
    rec = BlockWarmStartRecord(
        key=key, n_rows=40, block_names=tuple(s.name for s in specs),
        block_dims=tuple(s.width for s in specs), rho=warm.rho, block_beta=warm.block_beta,
        active_sets=[None] * 3, package_version="0.0.1-some-other-build",
    )  # fmt: skip
    assert store_block_record(ws, rec)
    _, got = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert got is not None
    _assert_same(got, warm)


# -- block warm start -------------------------------------------------------------------------


def test_round_trip_restores_rho_beta_active_sets_and_inner() -> None:
    ws = WarmStartStore(store=FakeStore())
    fam, specs, opts = make_fit()
    key, warm = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert key is not None and key.startswith("cf-") and warm is None
    current = _warm(
        specs,
        active_sets=[np.array([3, 1, 3, 1]), np.array([], dtype=int), None],
        cached_inner=_inner(),
    )
    before = freeze(current, specs)
    assert store_block_warm_start(ws, key, specs, current)
    assert_unchanged(before, current, specs)  # nothing mutated
    key2, got = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert key2 == key and got is not None
    _assert_same(got, current)
    # checklist 57: sorted + deduplicated, empty -> None
    assert got.active_sets[0] is not None and got.active_sets[0].tolist() == [1, 3]
    assert got.active_sets[1] is None and got.active_sets[2] is None
    inner = got.cached_inner
    assert inner is not None
    assert (inner.log_likelihood, inner.penalty_value, inner.cycles, inner.converged) == (
        -120.5, 3.25, 7, True,
    )  # fmt: skip
    assert (inner.block_logdet_h, inner.block_logdet_s) == (12.0, 4.0)
    assert inner.kkt_residual is None and inner.active_constraints is None
    # the returned arrays are private, writable copies
    got.rho[0] = 99.0
    got.block_beta[0][:] = 0.0
    _, again = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert again is not None
    _assert_same(again, current)


def test_inner_summary_stored_only_when_finite() -> None:
    ws = WarmStartStore(store=FakeStore())
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    for bad in ("log_likelihood", "penalty_value", "block_logdet_h", "block_logdet_s"):
        assert store_block_warm_start(
            ws, key, specs, _warm(specs, cached_inner=_inner(**{bad: np.inf}))
        )
        _, got = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
        assert got is not None and got.cached_inner is None, bad
    assert store_block_warm_start(ws, key, specs, _warm(specs, cached_inner=_inner(cycles=3)))
    _, got = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert got is not None and got.cached_inner is not None and got.cached_inner.cycles == 3


def _record_for(key: str, specs: list[BlockSpec], **changes: Any) -> BlockWarmStartRecord:
    warm = _warm(specs)
    fields: dict[str, Any] = {
        "key": key,
        "n_rows": specs[0].n_rows,
        "block_names": tuple(s.name for s in specs),
        "block_dims": tuple(s.width for s in specs),
        "rho": warm.rho,
        "block_beta": tuple(warm.block_beta),
        "active_sets": (None,) * len(specs),
        "inner": None,
    }
    fields.update(changes)
    return BlockWarmStartRecord(**fields)


INCOMPATIBLE: dict[str, dict[str, Any]] = {
    "version": {"version": 2},
    "n_rows": {"n_rows": 41},
    "block names": {"block_names": ("(parametric)", "s(x1)", "s(x9)")},
    "block dims": {"block_dims": (2, 5, 5)},
    "rho length": {"rho": np.array([0.5, -1.0])},
    "beta count": {"block_beta": (np.zeros(2), np.zeros(5))},
    "beta width": {"block_beta": (np.zeros(2), np.zeros(4), np.zeros(4))},
    "active set count": {"active_sets": (None, None)},
}


@pytest.mark.parametrize("what", sorted(INCOMPATIBLE))
def test_incompatible_record_falls_back_cold(what: str) -> None:
    # checklist 53: an incompatible record under the right key is ignored
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    assert store_block_record(ws, _record_for(key, specs))
    _, ok = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert ok is not None  # control: the unchanged record is accepted
    assert store_block_record(ws, _record_for(key, specs, **INCOMPATIBLE[what]))
    snap = freeze(fam, specs)
    key2, got = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert key2 == key and got is None
    assert_unchanged(snap, fam, specs)


def test_rho_len_mismatch_is_cold() -> None:
    ws = WarmStartStore(store=FakeStore())
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    assert store_block_warm_start(ws, key, specs, _warm(specs))
    snap = freeze(fam, specs)
    assert load_block_warm_start(ws, fam, specs, opts, rho_len=2)[1] is None
    assert_unchanged(snap, fam, specs)
    assert load_block_warm_start(ws, fam, specs, opts, rho_len=3)[1] is not None


def test_different_data_or_options_miss() -> None:
    ws = WarmStartStore(store=FakeStore())
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    assert store_block_warm_start(ws, key, specs, _warm(specs))
    fam2 = Family("poisson", fam.y + 1.0)
    snap = freeze(fam, fam2, specs)
    assert load_block_warm_start(ws, fam2, specs, opts, rho_len=3)[1] is None
    assert load_block_warm_start(ws, fam, specs, FitOptions(inner_max_cycles=51), 3)[1] is None
    assert_unchanged(snap, fam, fam2, specs)


@pytest.mark.parametrize(
    ("rho", "threshold", "stored"),
    [
        ((0.5, -8.99, 2.0), SATURATION_THRESHOLD, True),
        ((0.5, 9.0, 2.0), SATURATION_THRESHOLD, False),
        ((0.5, -9.0, 2.0), SATURATION_THRESHOLD, False),
        ((0.5, -12.0, 2.0), None, True),
        ((0.5, 6.0, 2.0), 5.0, False),
        ((0.5, 4.0, 2.0), 5.0, True),
    ],
)
def test_saturation_gate(
    rho: tuple[float, ...], threshold: float | None, stored: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    warm = _warm(specs, rho=rho)
    before = freeze(warm, specs)
    with caplog.at_level(logging.DEBUG, logger="gamstore"):
        assert (
            store_block_warm_start(ws, key, specs, warm, saturation_threshold=threshold) is stored
        )
    assert (len(fake.entries) == 1) is stored
    if not stored:
        assert any("saturated" in r.getMessage() for r in caplog.records)
    assert_unchanged(before, warm, specs)
    got = load_block_warm_start(ws, fam, specs, opts, rho_len=3)[1]
    assert (got is not None) is stored


BAD_WARM: dict[str, Any] = {
    "non-finite rho": lambda s: _warm(s, rho=(0.5, np.nan, 1.0)),
    "infinite beta": lambda s: BlockWarmStart(
        rho=np.zeros(3), block_beta=[np.zeros(2), np.array([1, 2, np.inf, 4, 5.0]), np.zeros(4)]
    ),
    "beta count": lambda s: BlockWarmStart(rho=np.zeros(3), block_beta=[np.zeros(2)]),
    "beta width": lambda s: BlockWarmStart(
        rho=np.zeros(3), block_beta=[np.zeros(2), np.zeros(4), np.zeros(4)]
    ),
    "active set count": lambda s: _warm(s, active_sets=[None]),
    "2-D rho": lambda s: BlockWarmStart(
        rho=np.zeros((3, 1)), block_beta=[np.zeros(w) for w in (2, 5, 4)]
    ),
}


@pytest.mark.parametrize("what", sorted(BAD_WARM))
def test_store_skips_bad_warm_start(what: str) -> None:
    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    warm = BAD_WARM[what](specs)
    before = freeze(warm, specs)
    assert store_block_warm_start(ws, key, specs, warm) is False
    assert fake.entries == []
    assert_unchanged(before, warm, specs)


def test_no_store_is_silent_even_without_fingerprint() -> None:
    _, specs, opts = make_fit()
    fam = Family("custom", None)  # cannot fingerprint itself
    warm = _warm(specs)
    snap = freeze(specs, warm)
    assert load_block_warm_start(None, fam, specs, opts, rho_len=3) == (None, None)
    assert store_block_warm_start(None, "cf-0", specs, warm) is False
    ws = WarmStartStore(store=FakeStore())
    assert store_block_warm_start(ws, None, specs, warm) is False
    assert_unchanged(snap, specs, warm)


def test_store_configured_without_fingerprint_is_refused() -> None:
    # checklist 9 (PR #4148)
    _, specs, opts = make_fit()
    fam = Family("custom", None)
    ws = WarmStartStore(store=FakeStore())
    with pytest.raises(UnsupportedFamilyError, match="'custom'"):
        load_block_warm_start(ws, fam, specs, opts, rho_len=3)


def test_storage_failure_never_raises_and_falls_back_cold() -> None:
    from gamstore.store.errors import StoreError

    fake = FakeStore()
    ws = WarmStartStore(store=fake)
    fam, specs, opts = make_fit()
    key = block_key(fam, specs, opts)
    assert store_block_warm_start(ws, key, specs, _warm(specs))
    fake.fail_lookup = StoreError("timeout")
    warm = _warm(specs)
    snap = freeze(fam, specs, warm)
    assert load_block_warm_start(ws, fam, specs, opts, rho_len=3) == (key, None)
    assert store_block_warm_start(ws, key, specs, warm) is False
    assert_unchanged(snap, fam, specs, warm)


def test_update_inner_cap_from_warm_start() -> None:
    # checklist 70 via the fitter-facing wrapper
    opts = FitOptions(inner_max_cycles=200)
    warm = BlockWarmStart(rho=np.zeros(1), block_beta=[], cached_inner=_inner(cycles=70))
    assert update_inner_cap(opts, warm, None, None) == (75, None)
    warm.cached_inner = _inner(cycles=70, converged=False)
    assert update_inner_cap(opts, warm, 2.0, None) == (140, 2.0)
    assert update_inner_cap(opts, warm, 0.01, 2.0) == (200, 2.0)
    warm.cached_inner = None
    assert update_inner_cap(opts, warm, None, None) == (200, None)
    assert update_inner_cap(opts, None, None, None) == (200, None)
    assert (
        update_inner_cap(30, _warm([], rho=(), cached_inner=_inner(cycles=1)), None, None)[0] == 30
    )


def test_inner_summary_conversion() -> None:
    s = _inner(solved_inner_tol=1e-8, block_log_lambdas=np.array([1.0, 2.0])).summary()
    assert isinstance(s, InnerSummary)
    assert s.solved_inner_tol == 1e-8 and s.block_log_lambdas is not None
    back = CachedInner.from_summary(s)
    assert back.kkt_residual is None and back.block_log_lambdas is not None
    assert _inner(cycles=-1).summary() is None  # invalid count: not persisted


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    n=st.integers(1, 12),
    data=st.data(),
)
def test_property_round_trip_is_bitwise(widths: list[int], n: int, data: Any) -> None:
    import uuid

    from gamstore.store import open_store

    finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
    rng = np.random.default_rng(len(widths) * 100 + n)
    specs = [BlockSpec(f"b{i}", rng.normal(size=(n, w))) for i, w in enumerate(widths)]
    fam = Family("gaussian", rng.normal(size=n))
    opts = FitOptions()
    rho = np.array(data.draw(st.lists(st.floats(-8.99, 8.99), min_size=0, max_size=3)))
    betas = [np.array(data.draw(st.lists(finite, min_size=w, max_size=w))) for w in widths]
    ws = WarmStartStore(store=open_store(f"memory://ws-prop-{uuid.uuid4().hex}"))
    key, miss = load_block_warm_start(ws, fam, specs, opts, rho.shape[0])
    assert miss is None
    assert store_block_warm_start(ws, key, specs, BlockWarmStart(rho, betas))
    _, got = load_block_warm_start(ws, fam, specs, opts, rho.shape[0])
    assert got is not None
    assert got.rho.tobytes() == rho.astype(np.float64).tobytes()
    for a, b in zip(got.block_beta, betas, strict=True):
        assert a.tobytes() == b.astype(np.float64).tobytes()


def test_record_of_another_rho_convention_is_a_miss() -> None:
    # a stored ρ means nothing without the penalty it multiplies: another convention is cold
    ws = WarmStartStore(store=FakeStore())
    fam, specs, opts = make_fit()
    key, _ = load_block_warm_start(ws, fam, specs, opts, rho_len=3)
    assert key is not None
    assert store_block_warm_start(ws, key, specs, _warm(specs))
    _, same = load_block_warm_start(ws, fam, specs, opts, rho_len=3, rho_convention="mgcv")
    assert same is not None
    _, other = load_block_warm_start(
        ws, fam, specs, opts, rho_len=3, rho_convention="statsmodels-alpha"
    )
    assert other is None
