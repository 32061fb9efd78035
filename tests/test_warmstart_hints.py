"""Never slower (issue 17): what a LOSO run knows before fitting, and the priors of the policy.

* a fold whose start check is certain to refit a cross-fit start cold (the ``"rows"``
  trigger, known from the row counts) is fitted cold without looking for that start;
* a fit whose lookups a hint rules out costs what a fit without a store costs: no key, no
  warm-start context unless it saves;
* the full-data fit's artifact is written for the folds that start from it (in-run benefit),
  whatever the later-run rule decides for its record;
* starts from the fit's own state (exact record) are timed apart from cross-fit starts, and
  priors decide before any warm start of the family was timed.

Deterministic: cost models with injected clocks, or assertions that do not depend on timing.
"""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gamstore as gs
import gamstore.warmstart.plan as plan_mod
from gamstore.fit import GAM, GamFitWarning, s
from gamstore.fit.simulate import simulate
from gamstore.fit.startcheck import StartCheckPolicy, foreseen, triggers
from gamstore.fit.warm import WarmContext, family_tag
from gamstore.loso import run_loso
from gamstore.warmstart import policy as pol
from gamstore.warmstart.policy import CostModel, FitHint, WarmPolicy, fit_hint

_counter = itertools.count()


def _store() -> Any:
    return gs.open_store(f"memory://warm-hints-{next(_counter)}")


class Step:
    """A clock advancing by ``step`` seconds at every reading."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def _costs(monkeypatch: pytest.MonkeyPatch, clock: Any = None) -> CostModel:
    costs = CostModel(clock=clock)
    monkeypatch.setattr(plan_mod, "COSTS", costs)
    return costs


@pytest.fixture
def adaptive() -> Any:
    old = pol.set_default_policy("adaptive")  # the suite runs with GAMSTORE_WARM_POLICY=always
    yield
    pol.set_default_policy(old)


def _model() -> GAM:
    return GAM([s("x0"), s("x1")], family="poisson", checkpoint_interval=1e9)


# -- the start check, foreseen -------------------------------------------------------------


class _Run:
    """The parts of a NewtonResult that ``triggers`` reads."""

    def __init__(self, rho: np.ndarray, converged: bool = True, n_indefinite: int = 0) -> None:
        self.final = type("F", (), {"rho": rho})()
        self.converged = converged
        self.n_indefinite = n_indefinite


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
@pytest.mark.parametrize("rows,parent", [(80, 100), (86, 100), (85, 100), (90, None), (99, 0)])
def test_foreseen_triggers_are_those_the_warm_run_fires_whatever_it_does(
    mode: str, rows: int, parent: int | None
) -> None:
    policy = StartCheckPolicy(mode=mode)  # type: ignore[arg-type]
    before = foreseen(policy, rows, parent)
    rho0 = np.zeros(2)
    for run in (_Run(rho0), _Run(rho0 + 5.0, converged=False, n_indefinite=2)):
        after, _, _ = triggers(policy, run, rho0, rows, parent)  # type: ignore[arg-type]
        assert set(before) <= set(after)
        # the row count is all "rows" depends on: foreseen iff it fires
        assert ("rows" in before) == ("rows" in after)
    expected = {"never": (), "always": ("always",)}.get(
        mode, ("rows",) if parent is None or parent <= 0 or 1 - rows / parent > 0.15 else ()
    )
    assert before == expected


# -- LOSO: folds the start check would refit cold ------------------------------------------


def test_rows_checked_folds_are_fitted_cold_without_a_lookup(adaptive: Any) -> None:
    """5 subjects: every fold drops 20% of the rows, so a cross-fit start would be refitted
    cold (warm + cold > cold). Before, fold 1 looked up, started from the full-data fit and
    was checked cold; now no fold looks up, none is checked, and the answers are the cold
    LOSO's. Real clock: the fold decisions do not depend on timing."""
    df = simulate("poisson", n=400, S=5, seed=7)
    model = _model()
    pol.COSTS.clear()
    res = run_loso(df, model, subject="subj", y="y", store=_store(), progress=False)
    plain = run_loso(df, model, subject="subj", y="y", warm=False, progress=False)
    decisions = [str(v) for v in res["warm_decision"].values.ravel()]
    assert all(
        d.startswith(
            "lookup skipped: the start check would refit a cross-fit start cold (rows: the fold "
            "drops 20% of the rows)"
        )
        for d in decisions
    ), decisions
    assert set(res["warm_source"].values.ravel()) == {"cold"}
    assert not res["cold_checked"].values.any()
    np.testing.assert_array_equal(res["rho"].values, plain["rho"].values)
    np.testing.assert_array_equal(res["reml"].values, plain["reml"].values)
    # no fold can start from the full-data fit's artifact: it is not written
    assert "artifact skipped" not in str(res["full_warm_decision"].values) or (
        "no fit of this run starts from it" in str(res["full_warm_decision"].values)
    )


def test_a_repeated_run_still_finds_the_folds_own_records(
    adaptive: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that holds the full-data fit (a repeated LOSO) may hold the folds' own records
    too: a rows-checked fold then looks up its own state only (an exact hit is never checked)
    and skips the cross-fit artifact."""
    df = simulate("poisson", n=400, S=5, seed=7)
    model, store = _model(), _store()
    old = pol.set_default_policy("always")
    try:
        first = run_loso(df, model, subject="subj", y="y", store=store, progress=False)
    finally:
        pol.set_default_policy(old)
    costs = _costs(monkeypatch)  # a real clock, but a lookup that is free against any fit
    costs.observe_lookup(store.url, 1e-12, WarmPolicy())
    again = run_loso(df, model, subject="subj", y="y", store=store, progress=False)
    assert str(again["full_warm_source"].values) == "exact"
    assert set(again["warm_source"].values.ravel()) == {"exact"}
    # each fold found its own record (answered from it, or looked up with the cross-fit
    # artifact ruled out), never a cross-fit start checked cold
    decisions = [str(v) for v in again["warm_decision"].values.ravel()]
    assert all(
        "exact record answered the fit" in d
        or d.startswith("cross-fit start skipped (the start check would refit")
        for d in decisions
    ), decisions
    assert not again["cold_checked"].values.any()
    np.testing.assert_allclose(again["reml"].values, first["reml"].values, rtol=1e-9)


def test_airquality_may_is_fitted_cold_under_the_adaptive_policy(adaptive: Any) -> None:
    """The start check's case (tests/test_loso_startcheck.py): May's warm start ends in the
    full-data fit's basin (REML 463.013), the cold fit and mgcv find 462.796. Every fold of
    this 5-month LOSO drops 8-26% of the rows; those over 15% are fitted cold outright, so
    May gets the better optimum without a warm run."""
    case = json.loads(
        (Path(__file__).parent / "fixtures" / "robust" / "airquality_loso.json").read_text()
    )
    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in case["data"].items()})
    model = GAM([s("Temp"), s("Wind"), s("Solar.R")], family="poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GamFitWarning)
        ds = run_loso(frame, model, subject="Month", y="Ozone", store=_store(), progress=False)
    may = ds.sel(fold=5.0, start="warm")
    assert str(may["warm_source"].values) == "cold" and not bool(may["cold_checked"])
    assert str(may["warm_decision"].values).startswith(
        "lookup skipped: the start check would refit a cross-fit start cold (rows"
    )
    assert float(may["reml"]) == pytest.approx(case["folds"]["5"]["mgcv"]["reml"][0], rel=1e-6)


# -- a fit whose lookups a hint rules out ---------------------------------------------------


def test_a_fit_without_lookups_derives_no_key_unless_it_saves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gamstore.fit.inputkey as inputkey

    df = simulate("poisson", n=400, S=5, seed=7)
    model, store = _model(), _store()
    cold = model.fit(df, y="y")
    keyed: list[int] = []
    real_key = inputkey.fit_key

    def counting_key(*a: Any, **k: Any) -> Any:
        keyed.append(1)
        return real_key(*a, **k)

    monkeypatch.setattr(inputkey, "fit_key", counting_key)
    costs = _costs(monkeypatch, Step(2.0**-10))
    costs.observe_lookup(store.url, 2.0**-10, WarmPolicy())  # a save: ~4 ms, the fit ~1 ms
    hint = FitHint(foreign=False, own=False, reason="nothing to find")
    with fit_hint(hint):
        res = model.fit(df, y="y", store=store, warm_policy="adaptive")
    assert keyed == [] and sum(1 for _ in store.entries()) == 0
    assert res.warm == "cold"
    assert res.warm_decision == (
        "lookup skipped: nothing to find; save skipped: fit 0.977 ms, store save ~3.91 ms "
        "(estimated from a round trip of 0.977 ms)"
    )
    np.testing.assert_array_equal(res.rho, cold.rho)
    assert res.reml == cold.reml
    # a save the policy allows builds the context then, keys the fit and writes its record
    costs = _costs(monkeypatch, Step(2.0**-10))
    costs.observe_lookup(store.url, 2.0**-20, WarmPolicy())
    with fit_hint(hint):
        saved = model.fit(df, y="y", store=store, warm_policy=WarmPolicy(run_save_ratio=1.0))
    assert keyed and saved.warm == "cold"
    assert saved.warm_decision.startswith("lookup skipped: nothing to find; saved")
    assert sum(1 for _ in store.entries("block")) == 1
    # and the record is this fit's: the same fit finds it
    again = model.fit(df, y="y", store=store, warm_policy="always")
    assert again.warm == "exact"
    # the policy "always" ignores hints: every lookup and save
    with fit_hint(hint):
        forced = model.fit(df, y="y", store=store, warm_policy="always")
    assert forced.warm == "exact"
    assert forced.warm_decision.startswith("looked up (policy always)")


def test_the_cost_family_of_a_fit_is_named_without_building_its_specs() -> None:
    df = simulate("poisson", n=300, S=3, seed=2)
    for model in (
        GAM([s("x0"), s("x1", bs="cr")], family="poisson"),
        GAM([s("x0", k=6)], family="gaussian", linear=["x2"]),
    ):
        prob, _ = model.prepare(df, "y", None, None, None, None)
        ctx = WarmContext(prob, _store(), model.control)
        assert family_tag(prob) == ctx.plan.family_tag


# -- the full-data fit's artifact: an in-run save ------------------------------------------


def test_the_artifact_the_folds_start_from_is_written_when_it_pays_in_this_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every phase ~1 ms: a save (estimated at 4 lookups) is more than 5% of the fit, so
    the record is not written; but 20 folds that each save more than their lookup (weighed
    at lookup_ratio 0.1 here: 13.7 ms against 7.81) pay for the artifact, which is written
    alone, and a fold then starts from it; with the default margin (twice the save) not."""
    df = simulate("poisson", n=400, S=10, seed=7)
    model, store = _model(), _store()
    _costs(monkeypatch, Step(2.0**-10))
    hint = FitHint(artifact_uses=20, artifact_rows=360)
    policy = WarmPolicy(prior_cross_fit=1.0, lookup_ratio=0.1, artifact_margin=1.0)
    with fit_hint(hint):
        full = model.fit(df, y="y", store=store, warm_policy=policy)
    # the lookup phase: the exact probe (a miss) and the lookups, 2 x 0.977 ms
    assert full.warm_decision == (
        "looked up (no history yet); save skipped: fit 0.977 ms, store save ~7.81 ms "
        "(estimated from a round trip of 1.95 ms); artifact saved: 20 fits start from it, "
        "each saves ~0.879 ms (prior 100% of ~0.879 ms) for a lookup of 1.95 ms; store save "
        "7.81 ms (estimated)"
    )
    assert hint.report.artifact is True
    assert {ks: sum(1 for _ in store.entries(ks)) for ks in ("block", "outer", "artifact")} == {
        "block": 0,
        "outer": 0,
        "artifact": 1,
    }
    fold = model.fit(df[df.subj != 0], y="y", store=store, knots=full.knots, warm_policy="always")
    assert fold.warm == "cross-fit"
    _costs(monkeypatch, Step(2.0**-10))
    margin = FitHint(artifact_uses=20, artifact_rows=360)
    with fit_hint(margin):
        model.fit(df, y="y", store=_store(), warm_policy=replace(policy, artifact_margin=2.0))
    assert margin.report.artifact is False
    # no fold would start from it: not written (and not explained: nothing is written)
    other = _store()
    none = FitHint(artifact_uses=0, artifact_reason="every fold is checked")
    _costs(monkeypatch, Step(2.0**-10))
    with fit_hint(none):
        res = model.fit(df, y="y", store=other, warm_policy=policy)
    assert none.report.artifact is False and sum(1 for _ in other.entries()) == 0
    assert "artifact" not in res.warm_decision


# -- the cost model: own starts timed apart, priors ----------------------------------------


def test_exact_hits_are_not_judged_by_slow_cross_fit_starts() -> None:
    costs = CostModel(clock=Step(1.0))
    p = WarmPolicy(weight=0.5)
    costs.observe_fit("f", 100, 0.020, p)  # cold: 20 ms
    costs.observe_lookup("u", 0.005, p)  # 5 ms a lookup phase
    costs.observe_fit("f", 100, 0.036, p, cold=False)  # a cross-fit start, checked cold
    costs.observe_fit("f", 100, 0.004, p, cold=False, own=True)  # an exact hit
    assert costs.expected_fit("f", 100, cold=False) == pytest.approx(0.036)
    assert costs.expected_fit("f", 100, cold=False, own=True) == pytest.approx(0.004)
    # a plain fit may find its own record: the better kind counts (before: one table, whose
    # mean 20 ms said a warm start saves nothing, so exact lookups were skipped)
    d = costs.lookup_decision(p, "u", "f", 100)
    assert d.go and d.reason == "looked up: fit ~20 ms cold, ~4 ms warm, store round trip 5 ms"
    # a fit that can only find a cross-fit start does not look up
    d = costs.lookup_decision(p, "u", "f", 100, FitHint(expect="cross-fit"))
    assert not d.go and d.reason == (
        "lookup skipped: fit ~20 ms cold, ~36 ms warm, store round trip 5 ms"
    )
    # a fold whose cross-fit start is ruled out looks up its own state
    d = costs.lookup_decision(p, "u", "f", 100, FitHint(foreign=False, reason="rows"))
    assert d.go and d.reason == (
        "cross-fit start skipped (rows); looked up: fit ~20 ms cold, ~4 ms exact, store round "
        "trip 5 ms"
    )
    d = costs.lookup_decision(p, "u", "f", 100, FitHint(foreign=False, own=False, reason="r"))
    assert not d.go and d.reason == "lookup skipped: r"
    # the policy "always" ignores hints
    assert costs.lookup_decision(WarmPolicy(mode="always"), "u", "f", 100, FitHint(
        foreign=False, own=False)).go  # fmt: skip


def test_priors_decide_before_a_warm_start_was_timed() -> None:
    costs = CostModel(clock=Step(1.0))
    p = WarmPolicy()
    costs.observe_fit("f", 100, 0.020, p)
    costs.observe_lookup("u", 0.005, p)
    # no hint: look up and learn
    assert costs.lookup_decision(p, "u", "f", 100).reason == "looked up (no warm history yet)"
    cross = FitHint(expect="cross-fit")
    d = costs.lookup_decision(p, "u", "f", 100, cross)  # 30% of 20 ms = 6 ms > 5 ms
    assert d.go and d.reason == (
        "looked up: fit ~20 ms cold, a cross-fit start saves ~6 ms (prior 30%), store round "
        "trip 5 ms"
    )
    d = costs.lookup_decision(p, "u", "f", 80, cross)  # 4.8 ms < 5 ms
    assert not d.go and d.reason.startswith("lookup skipped: fit ~16 ms cold, a cross-fit start")
    exact = FitHint(expect="exact")
    assert costs.lookup_decision(p, "u", "f", 60, exact).go  # 50% of 12 ms = 6 ms
    assert not costs.lookup_decision(p, "u", "f", 50, exact).go  # 5 ms: not less
    with pytest.raises(ValueError, match="prior_cross_fit"):
        WarmPolicy(prior_cross_fit=1.5)
    with pytest.raises(ValueError, match="save_per_lookup"):
        WarmPolicy(save_per_lookup=0.0)


def test_artifact_decision() -> None:
    costs = CostModel(clock=Step(1.0))
    p = WarmPolicy()
    hint = FitHint(artifact_uses=10, artifact_rows=90)
    assert costs.artifact_decision(p, "u", "f", hint).reason == "artifact saved (no history yet)"
    costs.observe_fit("f", 100, 0.020, p)  # a fold of 90 rows: ~18 ms cold
    costs.observe_lookup("u", 0.002, p)
    # 10 folds x (30% of 18 ms - 2 ms) = 34 ms > 4 x 2 ms
    d = costs.artifact_decision(p, "u", "f", hint)
    assert d.go and d.reason == (
        "artifact saved: 10 fits start from it, each saves ~5.4 ms (prior 30% of ~18 ms) for a "
        "lookup of 2 ms; store save 8 ms (estimated)"
    )
    costs.observe_fit("f", 90, 0.0175, p, cold=False)  # measured: a warm fold saves 0.5 ms
    d = costs.artifact_decision(p, "u", "f", hint)
    assert not d.go and d.reason.startswith("artifact skipped: 10 fits start from it, each saves")
    none = FitHint(artifact_uses=0, artifact_reason="why")
    d = costs.artifact_decision(p, "u", "f", none)
    assert not d.go and d.reason == "artifact skipped: no fit of this run starts from it (why)"
    assert costs.artifact_decision(WarmPolicy(mode="always"), "u", "f", none).go


def test_a_store_the_run_creates_is_not_looked_up(adaptive: Any, tmp_path: Path) -> None:
    """A local directory that does not exist yet holds nothing: the full-data fit skips its
    lookups (before: three that missed), and the store's round trip is estimated from its
    open for the save decisions. The same for the private store of ``store=None``."""
    df = simulate("poisson", n=400, S=5, seed=7)
    model = _model()
    plain = run_loso(df, model, subject="subj", y="y", warm=False, progress=False)
    for store in (str(tmp_path / "new-store"), None):
        pol.COSTS.clear()
        res = run_loso(df, model, subject="subj", y="y", store=store, progress=False)
        full = str(res["full_warm_decision"].values)
        assert full.startswith("lookup skipped: the store is new: nothing to find; save")
        assert "estimated from a round trip" in full
        np.testing.assert_array_equal(res["reml"].values, plain["reml"].values)
        np.testing.assert_array_equal(res["rho"].values, plain["rho"].values)
        if store is not None:
            first = f"{full}; {res.attrs.get('warm_decisions', '')}"
    # folds that may start from the full-data fit's artifact: its lookups (misses) measure
    # the round trip the artifact's in-run decision needs
    ten = simulate("poisson", n=400, S=10, seed=7)
    pol.COSTS.clear()
    res = run_loso(ten, model, subject="subj", y="y", store=str(tmp_path / "ten"), progress=False)
    assert str(res["full_warm_decision"].values).startswith("looked up")
    # (that store was made up front: the lookups time it); the first runs saved nothing, so
    # created nothing (the root is made by the first save); an existing store may hold a
    # run's records: looked up as before
    assert (tmp_path / "ten").exists()
    assert (tmp_path / "new-store").exists() == ("saved" in first), first
    gs.open_store(str(tmp_path / "new-store"))
    pol.COSTS.clear()
    again = run_loso(
        df, model, subject="subj", y="y", store=str(tmp_path / "new-store"), progress=False
    )
    assert str(again["full_warm_decision"].values).startswith("looked up")


def test_folds_on_a_new_store_look_up_the_artifact_alone_without_a_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A store this run creates holds no record or session of any fold: a fold that looks up
    reads only the full-data fit's artifact, and neither probes for its own record nor
    derives its input key (nor the run its row digests) unless it saves. The folds start
    from the same artifact as under the policy "always" (every lookup): the same answers."""
    import gamstore.fit.inputkey as inputkey

    df = simulate("poisson", n=400, S=10, seed=7)
    model = _model()
    keyed: list[int] = []
    real_key = inputkey.fit_key

    def counting_key(*a: Any, **k: Any) -> Any:
        keyed.append(1)
        return real_key(*a, **k)

    monkeypatch.setattr(inputkey, "fit_key", counting_key)
    # lookups and the artifact decided to pay whatever the timings (what a fold does once
    # it looks up is under test, not the decision); saves for a later run as the policy says
    go = pol.Decision(True, "looked up (test)")
    monkeypatch.setattr(CostModel, "lookup_decision", lambda *a, **k: go)
    monkeypatch.setattr(CostModel, "artifact_decision", lambda *a, **k: go)
    eager = WarmPolicy()
    old = pol.set_default_policy(eager)
    try:
        pol.COSTS.clear()
        res = run_loso(
            df, model, subject="subj", y="y", store=str(tmp_path / "new"), progress=False
        )
    finally:
        pol.set_default_policy(old)
    warm = res.sel(start="warm")
    sources = [str(v) for v in warm["warm_source"].values]
    assert sources and all(v == "cross-fit" for v in sources), sources
    decisions = [str(v) for v in warm["warm_decision"].values]
    assert all(d.startswith("looked up (test)") and "saved:" not in d for d in decisions)
    assert not any("probe" in d for d in decisions), decisions
    assert len(keyed) == 1  # the full-data fit's key (its lookups and its artifact)
    old = pol.set_default_policy("always")
    try:
        every = run_loso(
            df, model, subject="subj", y="y", store=str(tmp_path / "always"), progress=False
        )
    finally:
        pol.set_default_policy(old)
    assert [str(v) for v in every.sel(start="warm")["warm_source"].values] == sources
    np.testing.assert_array_equal(res["rho"].values, every["rho"].values)
    np.testing.assert_array_equal(res["reml"].values, every["reml"].values)
    # a fold that saves keys itself, and a later run on that store finds its record
    keyed.clear()
    old = pol.set_default_policy(replace(eager, run_save_ratio=1e9, save_ratio=1e9))
    try:
        pol.COSTS.clear()
        saved = run_loso(
            df, model, subject="subj", y="y", store=str(tmp_path / "saved"), progress=False
        )
        assert len(keyed) == 1 + len(sources)
        pol.COSTS.clear()
        again = run_loso(
            df, model, subject="subj", y="y", store=str(tmp_path / "saved"), progress=False
        )
    finally:
        pol.set_default_policy(old)
    assert all(str(v) == "exact" for v in again.sel(start="warm")["warm_source"].values)
    np.testing.assert_allclose(again["reml"].values, saved["reml"].values, rtol=1e-8)


def test_a_repeated_run_starts_its_folds_from_the_artifact_an_earlier_run_wrote(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A first run wrote the full-data fit's artifact and no records (its saves for a later
    run were skipped); a second run's full-data fit starts from that artifact and decides not
    to write another. Its folds must still start from the artifact in the store (before: they
    were told "the full-data fit wrote no artifact" and all fitted cold, so the repeated run
    was slower than the first)."""
    df = simulate("poisson", n=400, S=10, seed=7)
    model = _model()
    go = pol.Decision(True, "looked up (test)")
    monkeypatch.setattr(CostModel, "lookup_decision", lambda *a, **k: go)
    write = {"artifact": True}

    def artifact_decision(*a: Any, **k: Any) -> pol.Decision:
        return pol.Decision(write["artifact"], "artifact (test)")

    monkeypatch.setattr(CostModel, "artifact_decision", artifact_decision)
    no_later = replace(WarmPolicy(), run_save_ratio=1e-9)  # no record left for a later run
    old = pol.set_default_policy(no_later)
    try:
        store = str(tmp_path / "store")
        pol.COSTS.clear()
        first = run_loso(df, model, subject="subj", y="y", store=store, progress=False)
        write["artifact"] = False
        pol.COSTS.clear()
        again = run_loso(df, model, subject="subj", y="y", store=store, progress=False)
    finally:
        pol.set_default_policy(old)
    assert str(first["full_warm_source"].values) == "cold"
    assert str(again["full_warm_source"].values) == "cross-fit"
    sources = [str(v) for v in again.sel(start="warm")["warm_source"].values]
    assert sources and all(v == "cross-fit" for v in sources), sources
    decisions = [str(v) for v in again.sel(start="warm")["warm_decision"].values]
    assert not any("wrote no artifact" in d for d in decisions), decisions
    cold = run_loso(df, model, subject="subj", y="y", warm=False, progress=False)
    np.testing.assert_allclose(again["reml"].values, cold["reml"].values, rtol=1e-8)
