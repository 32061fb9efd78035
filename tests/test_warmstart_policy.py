"""The adaptive warm-start policy (issue 17 item 4): skip what cannot pay, never change answers.

Deterministic: every test injects the cost model's clock (a script of phase durations, or a
clock that advances by a fixed step per reading), so no decision depends on this machine's
speed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gamstore as gs
import gamstore.warmstart.plan as plan_mod
from gamstore.fit import GAM, s
from gamstore.fit.simulate import simulate
from gamstore.warmstart import policy as pol
from gamstore.warmstart.policy import CostModel, WarmPolicy

_counter = itertools.count()


def _store() -> Any:
    return gs.open_store(f"memory://warm-policy-{next(_counter)}")


def _data() -> pd.DataFrame:
    return simulate("poisson", n=400, S=5, seed=7)


def _model() -> GAM:
    return GAM([s("x0"), s("x1")], family="poisson", checkpoint_interval=1e9)


class Script:
    """A clock reading out phase durations in order: ``[("lookup", 0.04), ("fit", 0.003)]``
    gives 0, 0.04, 0.04, 0.043: each phase is measured as two readings."""

    def __init__(self, phases: Sequence[tuple[str, float]]) -> None:
        self.times: list[float] = []
        t = 0.0
        for _, d in phases:
            self.times += [t, t + d]
            t += d
        self.it: Iterator[float] = iter(self.times)
        self.read = 0

    def __call__(self) -> float:
        self.read += 1
        return next(self.it)

    @property
    def done(self) -> bool:
        return self.read == len(self.times)


class Step:
    """A clock that advances by ``step`` seconds at every reading (use a power of two: the
    differences are then exact and all equal)."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def _costs(monkeypatch: pytest.MonkeyPatch, clock: Any) -> CostModel:
    costs = CostModel(clock=clock)
    monkeypatch.setattr(plan_mod, "COSTS", costs)
    return costs


def _n_entries(store: Any) -> int:
    return sum(1 for _ in store.entries())


def test_first_fit_looks_up_then_a_slow_store_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    df, model, store = _data(), _model(), _store()
    cold = model.fit(df, y="y")
    # the first fit probes its exact record (a miss) before its lookups: "probe" phases
    clock = Script(
        [("probe", 0.0), ("lookup", 0.040), ("fit", 0.003), ("save", 0.012), ("fit", 0.003),
         ("probe", 0.0), ("lookup", 0.040), ("fit", 0.003)]
    )  # fmt: skip
    _costs(monkeypatch, clock)
    # an earlier run with every lookup and save (policy "always" is timed too)
    first = model.fit(df, y="y", store=store, warm_policy="always")
    assert first.warm == "cold"
    assert first.warm_decision == "looked up (policy always); saved (policy always)"
    written = _n_entries(store)
    assert written > 0
    # the store (40 ms a lookup) is slower than the fit it would shorten (3 ms): skipped,
    # although it holds this very fit; and a 3 ms fit is cheaper than a 12 ms save; with
    # neither, the fit never even hashes its inputs for a key
    import gamstore.fit.inputkey as inputkey

    keyed = []
    real_key = inputkey.fit_key

    def counting_key(*a: Any, **k: Any) -> Any:
        keyed.append(1)
        return real_key(*a, **k)

    monkeypatch.setattr(inputkey, "fit_key", counting_key)
    again = model.fit(df, y="y", store=store, warm_policy="adaptive")
    assert keyed == []
    assert again.warm == "cold"
    assert again.warm_decision == (
        "lookup skipped: fit ~3 ms, store round trip 40 ms; save skipped: fit 3 ms, "
        "store save 12 ms"
    )
    assert _n_entries(store) == written
    # never a different answer: the skipped warm start is the cold fit
    np.testing.assert_array_equal(again.rho, cold.rho)
    assert again.reml == cold.reml
    # a fresh process (no history) looks up; with no save timed yet, the lookups it just
    # timed stand in for a save: 40 ms of them cannot be paid by a 3 ms fit
    monkeypatch.setattr(inputkey, "fit_key", real_key)
    _costs(monkeypatch, clock)
    other = _store()
    fresh = model.fit(df, y="y", store=other, warm_policy="adaptive")
    assert fresh.warm_decision == (
        "looked up (no history yet); save skipped: fit 3 ms, store save ~160 ms "
        "(estimated from a round trip of 40 ms)"
    )
    assert clock.done and _n_entries(other) == 0
    np.testing.assert_array_equal(fresh.rho, cold.rho)


def test_a_fast_store_keeps_its_warm_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    df, model, store = _data(), _model(), _store()
    clock = Script(
        [("probe", 0.0), ("lookup", 0.0001), ("fit", 0.030), ("save", 0.0005),
         ("probe", 0.0001)]
    )  # fmt: skip
    costs = _costs(monkeypatch, clock)
    model.fit(df, y="y", store=store, warm_policy="adaptive")
    again = model.fit(df, y="y", store=store, warm_policy="adaptive")
    assert again.warm == "exact"
    # an exact hit answered from its record (before the design is built) writes nothing:
    # no save decision to make
    assert again.warm_decision == (
        "looked up: fit ~30 ms cold, store round trip 0.1 ms; exact record answered the fit "
        "(design built on first use)"
    )
    assert clock.done
    # the hit teaches the store's round trip, not a warm fit time (an exact hit says nothing
    # about what a session or cross-fit start saves)
    family = next(iter(costs._fit))
    assert costs.expected_fit(family, len(df), cold=False) is None
    assert costs.lookup_time(store.url) == pytest.approx(0.7 * 0.0001 + 0.3 * 0.0001)
    # the cold fit wrote its block record and artifact, not a session final that would only
    # duplicate the block record
    assert {ks: len(list(store.entries(ks))) for ks in ("block", "outer", "artifact")} == {
        "block": 1,
        "outer": 0,
        "artifact": 1,
    }


def test_policy_always_looks_up_and_saves_whatever_the_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    df, model, store = _data(), _model(), _store()
    costs = _costs(monkeypatch, Step(2.0**-10))
    first = model.fit(df, y="y", store=store, warm_policy="always")
    assert first.warm_decision == "looked up (policy always); saved (policy always)"
    # make the store look hopeless, then force the old behaviour
    for table in (costs._lookup, costs._save):
        for e in table.values():
            e.value = 1e6
    family = next(iter(costs._fit))
    assert costs.expected_fit(family, len(df)) is not None
    again = model.fit(df, y="y", store=store, warm_policy=WarmPolicy(mode="always"))
    assert again.warm == "exact"
    # and the same costs under the adaptive policy skip the lookup
    skipped = model.fit(df, y="y", store=store, warm_policy="adaptive")
    assert skipped.warm == "cold" and skipped.warm_decision.startswith("lookup skipped")


def test_loso_folds_decide_from_the_full_data_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every phase measures the same ~1 ms (2**-10 s, exact in binary): the full-data fit
    looks up (no history: an exact probe and the lookups, 2 phases) and estimates a save at 4
    lookup phases, more than 5% of any fit here:
    nothing is written. With 5 subjects every fold drops 20% of the rows, so its start check
    would refit a cross-fit start cold: no fold looks up (the full-data fit found no record
    of its own either); with 10, the full-data fit's artifact would save 10 folds a prior 30%
    of ~0.88 ms each, less than their 1 ms lookups: no artifact, so no fold looks up. The
    answers are those of folds fitted without a store."""
    from gamstore.loso import run_loso

    model = _model()
    old = pol.set_default_policy("adaptive")
    try:
        for n_subjects in (5, 10):
            df = simulate("poisson", n=400, S=n_subjects, seed=7)
            _costs(monkeypatch, Step(2.0**-10))
            res = run_loso(df, model, subject="subj", y="y", store=_store())
            plain = run_loso(df, model, subject="subj", y="y", warm=False)
            # the full-data fit's lookup phase: its exact probe (a miss) and its lookups
            save = (
                "save skipped: fit 0.977 ms, store save ~7.81 ms (estimated from a round "
                "trip of 1.95 ms)"
            )
            full = str(res["full_warm_decision"].values)
            decisions = [str(v) for v in res["warm_decision"].values.ravel()]
            assert len(decisions) == n_subjects
            if n_subjects == 5:
                assert full == f"looked up (no history yet); {save}"
                why = (
                    "lookup skipped: the start check would refit a cross-fit start cold (rows: "
                    "the fold drops 20% of the rows), and the full-data fit found no record of "
                    "its own"
                )
            else:
                assert full == (
                    f"looked up (no history yet); {save}; artifact skipped: 10 fits start "
                    "from it, each saves ~0.264 ms (prior 30% of ~0.879 ms) for a lookup of "
                    "1.95 ms; store save 7.81 ms (estimated)"
                )
                why = (
                    "lookup skipped: the full-data fit wrote no artifact and found no record of "
                    "its own"
                )
            assert all(d == f"{why}; {save}" for d in decisions), decisions
            assert res.attrs["warm_decisions"] == (
                f"lookup skipped x{n_subjects}; save skipped x{n_subjects}"
            )
            assert set(res["warm_source"].values.ravel()) == {"cold"}
            assert not res["cold_checked"].values.any()
            np.testing.assert_array_equal(res["rho"].values, plain["rho"].values)
            np.testing.assert_array_equal(res["reml"].values, plain["reml"].values)
    finally:
        pol.set_default_policy(old)


# -- the policy and the cost model as data --------------------------------------------------


def test_cost_model_means_and_decisions() -> None:
    costs = CostModel(clock=Step(1.0))
    p = WarmPolicy(weight=0.5)
    assert costs.lookup_decision(p, "u", "f", 100).reason == "looked up (no history yet)"
    costs.observe_fit("f", 100, 0.010, p)  # 0.1 ms per row
    assert costs.expected_fit("f", 300) == pytest.approx(0.030)
    assert costs.lookup_decision(p, "u", "f", 100).go  # no store history yet
    costs.observe_lookup("u", 0.004, p)
    costs.observe_lookup("u", 0.016, p)  # EWMA: 0.5 * 4 + 0.5 * 16 = 10 ms
    assert costs.lookup_time("u") == pytest.approx(0.010)
    d = costs.lookup_decision(p, "u", "f", 100)  # fit ~10 ms, store 10 ms: cannot pay
    assert not d.go and d.reason == "lookup skipped: fit ~10 ms, store round trip 10 ms"
    assert costs.lookup_decision(p, "u", "f", 101).go  # a bigger fit can
    assert costs.lookup_decision(WarmPolicy(lookup_ratio=0.5), "u", "f", 150).go is False
    assert costs.lookup_decision(p, "other-store", "f", 100).go  # per store URL
    # warm-started fits timed too: a lookup must beat what the warm start saves
    assert costs.lookup_decision(p, "u", "f", 200).reason == "looked up (no warm history yet)"
    costs.observe_fit("f", 200, 0.004, p, cold=False)  # 0.02 ms per row warm
    d = costs.lookup_decision(p, "u", "f", 200)  # saves 20 - 4 = 16 ms > 10 ms: pays
    assert d.go and d.reason == "looked up: fit ~20 ms cold, ~4 ms warm, store round trip 10 ms"
    d = costs.lookup_decision(p, "u", "f", 150)  # saves 15 - 3 = 12 ms: still pays
    assert d.go
    costs.observe_fit("f", 200, 0.036, p, cold=False)  # checked cold: warm slower than cold
    d = costs.lookup_decision(p, "u", "f", 200)
    assert not d.go and d.reason == (
        "lookup skipped: fit ~20 ms cold, ~20 ms warm, store round trip 10 ms"
    )
    assert costs.save_decision(p, "other-store", 0.001).reason == "saved (no history yet)"
    # no save timed on "u" yet: save_per_lookup (4) of its lookups (10 ms) estimate a save
    assert p.save_ratio == 1.0 and p.save_per_lookup == 4.0 and p.run_save_ratio == 0.05
    d = costs.save_decision(p, "u", 0.041)
    assert d.go and d.reason == (
        "saved: store save ~40 ms (estimated from a round trip of 10 ms), fit 41 ms"
    )
    # an estimate within save_explore (4) times the fit: one save times the store
    d = costs.save_decision(p, "u", 0.039)
    assert d.go and d.reason == (
        "saved to time this store: store save ~40 ms (estimated from a round trip of 10 ms), "
        "fit 39 ms"
    )
    d = costs.save_decision(p, "u", 0.0099)
    assert not d.go and d.reason == (
        "save skipped: fit 9.9 ms, store save ~40 ms (estimated from a round trip of 10 ms)"
    )
    # not inside a pipeline run: its saves are insurance (run_save_ratio), no exploring
    assert not costs.save_decision(p, "u", 0.039, in_run=True).go
    # a fit of a pipeline run saves for a later run only: at most 5% of the fit
    assert not costs.save_decision(p, "u", 0.79, in_run=True).go
    assert costs.save_decision(p, "u", 0.81, in_run=True).go
    costs.observe_save("u", 0.002, p)
    assert not costs.save_decision(p, "u", 0.002).go
    assert costs.save_decision(p, "u", 0.0021).go
    assert not costs.save_decision(p, "u", 0.039, in_run=True).go  # 2 ms: over 5% of 39 ms
    assert costs.save_decision(p, "u", 0.041, in_run=True).go
    assert costs.save_decision(WarmPolicy(mode="always"), "u", 0.0).go
    costs.observe_save("u", float("nan"), p)  # ignored, not a poisoned mean
    assert costs.save_time("u") == pytest.approx(0.002)
    costs.clear()
    assert costs.save_time("u") is None and costs.expected_fit("f", 1) is None
    assert costs.expected_fit("f", 1, cold=False) is None


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"mode": "sometimes"}, "mode"),
        ({"lookup_ratio": 0.0}, "lookup_ratio"),
        ({"save_ratio": float("inf")}, "save_ratio"),
        ({"weight": 1.5}, "weight"),
        ({"weight": True}, "weight"),
    ],
)
def test_bad_policy_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        WarmPolicy(**kwargs)


def test_policy_arguments_and_the_process_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pol.as_policy("always").mode == "always"
    with pytest.raises(TypeError, match="policy"):
        pol.as_policy(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        pol.as_policy("never")
    monkeypatch.setenv("GAMSTORE_WARM_POLICY", "adaptive")
    assert pol.as_policy(None).mode == "adaptive"
    monkeypatch.setenv("GAMSTORE_WARM_POLICY", "always")
    assert pol.default_policy().mode == "always"
    old = pol.set_default_policy(WarmPolicy(save_ratio=3.0))
    try:
        assert pol.as_policy(None).save_ratio == 3.0
    finally:
        pol.set_default_policy(old)
    assert pol.default_policy().mode == "always"


def test_exact_probe_goes_when_warm_starts_saved_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warm starts of the family saved nothing (e.g. LOSO folds whose starts were checked by
    a cold refit): the fit's lookups are skipped, but the exact probe is not - an exact hit
    saves the whole fit - and an exact refit is still answered from its record."""
    df, model, store = _data(), _model(), _store()
    costs = _costs(monkeypatch, Step(2.0**-10))
    first = model.fit(df, y="y", store=store, warm_policy="always")
    family = next(iter(costs._fit))
    costs.observe_fit(family, len(df), 1.0, WarmPolicy(weight=1.0), cold=True)
    costs.observe_fit(family, len(df), 1.0, WarmPolicy(weight=1.0), cold=False)
    assert not costs.lookup_decision(WarmPolicy(), store.url, family, len(df)).go
    again = model.fit(df, y="y", store=store, warm_policy="adaptive")
    assert again.warm == "exact" and again.deferred
    assert again.warm_decision.startswith("looked up: fit ~1e+03 ms cold, store round trip")
    assert again.reml == first.reml
    # a refit of other data of the same model: no record, and its own lookups are skipped
    other = model.fit(df.iloc[:-1], y="y", store=store, warm_policy="adaptive")
    assert other.warm == "cold" and other.warm_decision.startswith("lookup skipped")
