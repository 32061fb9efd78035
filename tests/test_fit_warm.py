"""Warm starts of ``GAM.fit(store=...)``: exact record, outer session, cross-fit artifact.

For every family and level the warm fit must reach the cold optimum (|dREML| <= 1e-6
relative, fitted values <= 1e-5 relative), and broken, foreign or stale store entries may only
cost speed, never change the answer.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gamstore as gs
from gamstore.fit import GAM, FitResult, s
from gamstore.fit.simulate import FAMILIES, simulate
from gamstore.fit.warm import WarmContext, split_beta

_counter = itertools.count()


def _store() -> Any:
    return gs.open_store(f"memory://fit-warm-{next(_counter)}")


def _model(family: str) -> GAM:
    return GAM([s("x0"), s("x1"), s("x2")], family=family)


def _data(family: str, seed: int = 20240601) -> pd.DataFrame:
    return simulate(family, n=1000, S=10, seed=seed)


def assert_same_optimum(warm: FitResult, cold: FitResult) -> None:
    assert warm.converged and cold.converged
    assert abs(warm.reml - cold.reml) <= 1e-6 * abs(cold.reml), (warm.reml, cold.reml)
    rel = np.max(np.abs(warm.fitted - cold.fitted)) / np.max(np.abs(cold.fitted))
    assert rel <= 1e-5, rel


def _delete(store: Any, keyspace: str) -> int:
    infos = list(store.entries(keyspace))
    for info in infos:
        store.delete_entry(info)
    return len(infos)


@pytest.mark.parametrize("family", FAMILIES)
def test_exact_record_refit(family: str) -> None:
    df, model, store = _data(family), _model(family), _store()
    cold = model.fit(df, y="y")
    first = model.fit(df, y="y", store=store)
    assert first.warm == "cold"
    assert_same_optimum(first, cold)
    # answered from the record (converged fits store their result): no PIRLS, no design yet
    again = model.fit(df, y="y", store=store)
    assert again.warm == "exact" and again.deferred
    assert again.n_outer == 0 and again.n_pirls_calls == 0 and again.n_pirls_iters == 0
    assert again.reml == first.reml
    assert_same_optimum(again, cold)
    assert not again.deferred  # reading the fitted values built the design
    # recertified at the stored optimum: one PIRLS call, one (or two) iterations
    recert = model.fit(df, y="y", store=store, exact_hit="recertify")
    assert recert.warm == "exact"
    assert_same_optimum(recert, cold)
    assert recert.n_outer == 0 and recert.n_pirls_calls == 1 and recert.n_pirls_iters <= 2
    # recomputed, not copied: the result is the evaluation of this run
    assert recert.reml == pytest.approx(first.reml, rel=1e-10)
    assert recert.fitted is not first.fitted


@pytest.mark.parametrize("family", FAMILIES)
def test_outer_session_resume(family: str) -> None:
    df, model, store = _data(family), _model(family), _store()
    cold = model.fit(df, y="y")
    model.fit(df, y="y", store=store)
    assert list(store.entries("outer")), "the Newton loop checkpoints / finalizes a session"
    assert _delete(store, "block") == 1
    outer_before = [i.entry_id for i in store.entries("outer")]
    res = model.fit(df, y="y", store=store)
    assert res.warm == "session"
    assert_same_optimum(res, cold)
    assert res.n_outer <= 1
    if res.n_outer == 0:  # recertified the final: only the missing block record is written
        assert [i.entry_id for i in store.entries("outer")] == outer_before
    assert len(list(store.entries("block"))) == 1
    assert model.fit(df, y="y", store=store).warm == "exact"


@pytest.mark.parametrize("family", FAMILIES)
def test_cross_fit_artifact_for_a_fold(family: str) -> None:
    df, model, store = _data(family), _model(family), _store()
    full = model.fit(df, y="y", store=store)
    fold = df[df["subj"] != 3]
    cold = model.fit(fold, y="y", knots=full.knots)
    _delete(store, "outer")  # leave only the artifact (and the full fit's block record)
    warm = model.fit(fold, y="y", knots=full.knots, store=store)
    assert warm.warm == "cross-fit"
    assert_same_optimum(warm, cold)
    assert warm.n_outer < cold.n_outer
    assert warm.n_pirls_iters < cold.n_pirls_iters


@pytest.mark.parametrize("family", FAMILIES)
def test_fold_finds_parent_through_session_seed_or_artifact(family: str) -> None:
    df, model, store = _data(family), _model(family), _store()
    full = model.fit(df, y="y", store=store)
    fold = df[df["subj"] != 5]
    cold = model.fit(fold, y="y", knots=full.knots)
    warm = model.fit(fold, y="y", knots=full.knots, store=store)
    # the artifact (ρ and transported β) is preferred over the ρ-only seed session
    assert warm.warm == "cross-fit"
    assert_same_optimum(warm, cold)


def test_cross_fit_with_other_knots_transfers_rho_only() -> None:
    df, model, store = _data("poisson"), _model("poisson"), _store()
    model.fit(df, y="y", store=store)
    fold = df[df["x1"] < 0.9]  # own knots differ from the parent's
    cold = model.fit(fold, y="y")
    ctx_prob, _ = model.prepare(fold, "y")
    ctx = WarmContext(ctx_prob, store, model.control)
    start = ctx.find_start()
    assert start is not None and start.source in ("cross-fit", "session")
    assert start.flat_beta() is None
    warm = model.fit(fold, y="y", store=store)
    assert_same_optimum(warm, cold)


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_exact_record_only_costs_speed(family: str) -> None:
    from gamstore.warmstart.blocks import BlockWarmStart, store_block_warm_start

    df, model, store = _data(family), _model(family), _store()
    cold = model.fit(df, y="y")
    prob, _ = model.prepare(df, "y")
    ctx = WarmContext(prob, store, model.control, model.store_key(df, "y"))
    assert ctx.find_start() is None  # cold
    rng = np.random.default_rng(0)
    bad_beta = split_beta(prob.design, rng.normal(scale=3.0, size=prob.design.p))
    ok = store_block_warm_start(
        store,
        ctx.key,
        ctx.specs,
        BlockWarmStart(cold.rho + 3.0, bad_beta),
        saturation_threshold=None,
    )
    assert ok
    res = model.fit(df, y="y", store=store)
    assert res.warm == "exact"
    assert_same_optimum(res, cold)
    assert res.n_outer > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_session_final_only_costs_speed(family: str) -> None:
    df, model, store = _data(family), _model(family), _store()
    cold = model.fit(df, y="y")
    prob, _ = model.prepare(df, "y")
    ctx = WarmContext(prob, store, model.control, model.store_key(df, "y"))
    ctx.session.begin(prob.design.n_sp)
    wrong_rho = cold.rho - 4.0
    wrong_beta = np.full(prob.design.p, 2.5)
    assert ctx.session.finish(wrong_rho, wrong_beta, cold.reml - 50.0, True, beta_rho=wrong_rho)
    res = model.fit(df, y="y", store=store)
    assert res.warm == "session"
    assert_same_optimum(res, cold)


@pytest.mark.parametrize("family", FAMILIES)
def test_wrong_artifact_only_costs_speed(family: str) -> None:
    from gamstore.warmstart.artifacts import capture_fit_artifact

    df, model, store = _data(family), _model(family), _store()
    full = model.fit(df, y="y")
    fold = df[df["subj"] != 1]
    cold = model.fit(fold, y="y", knots=full.knots)
    prob, _ = model.prepare(fold, "y", knots=full.knots)
    ctx = WarmContext(prob, store, model.control)
    rng = np.random.default_rng(1)
    bad = split_beta(prob.design, rng.normal(scale=4.0, size=prob.design.p))
    assert capture_fit_artifact(
        store, ctx.family, ctx.specs, ctx.gauge, bad, full.rho + 2.5, ctx.p2o, 1.0, True
    )
    res = model.fit(fold, y="y", knots=full.knots, store=store)
    assert res.warm == "cross-fit"
    assert_same_optimum(res, cold)


@pytest.mark.parametrize("family", FAMILIES)
def test_stale_parent_from_other_data(family: str) -> None:
    model, store = _model(family), _store()
    model.fit(_data(family, seed=1), y="y", store=store)
    other = _data(family, seed=2)
    cold = model.fit(other, y="y")
    res = model.fit(other, y="y", store=store)
    assert res.warm in ("cross-fit", "session")  # a structurally equal parent, other data
    assert_same_optimum(res, cold)


def test_corrupt_files_read_as_a_miss(tmp_path: Path) -> None:
    df, model = _data("binomial"), _model("binomial")
    store = gs.open_store(tmp_path / "st")
    cold = model.fit(df, y="y")
    model.fit(df, y="y", store=store)
    n = 0
    for f in (tmp_path / "st").rglob("*"):
        if f.is_file() and f.name not in ("zarr.json",) and ".access" not in f.parts:
            f.write_bytes(b"\x00garbage" * 3)
            n += 1
    assert n > 0
    res = model.fit(df, y="y", store=gs.open_store(tmp_path / "st"))
    assert res.warm == "cold"
    assert_same_optimum(res, cold)


class _BrokenStore:
    """Raises on every call, like an unreachable bucket."""

    url = "memory://broken"

    def save(self, *a: Any, **k: Any) -> Any:
        raise OSError("disk on fire")

    def lookup(self, *a: Any, **k: Any) -> Any:
        raise OSError("disk on fire")

    def lookup_latest(self, *a: Any, **k: Any) -> Any:
        raise OSError("disk on fire")

    def session(self, *a: Any, **k: Any) -> Any:
        raise OSError("disk on fire")


def test_failing_store_never_fails_a_fit(caplog: pytest.LogCaptureFixture) -> None:
    df, model = _data("gaussian"), _model("gaussian")
    cold = model.fit(df, y="y")
    with caplog.at_level(logging.DEBUG, logger="gamstore"):
        res = model.fit(df, y="y", store=_BrokenStore())
    assert res.warm == "cold"
    assert_same_optimum(res, cold)


def test_read_only_store_warm_starts_but_never_writes(tmp_path: Path) -> None:
    df, model = _data("poisson"), _model("poisson")
    model.fit(df, y="y", store=gs.open_store(tmp_path / "ro"))
    ro = gs.open_store(tmp_path / "ro", read_only=True)
    before = sorted(p for p in (tmp_path / "ro").rglob("*") if ".access" not in p.parts)
    res = model.fit(df[df["subj"] != 0], y="y", store=ro)
    after = sorted(p for p in (tmp_path / "ro").rglob("*") if ".access" not in p.parts)
    assert res.converged and res.warm in ("cross-fit", "session")
    assert before == after


def test_explicit_start_bypasses_the_store() -> None:
    df, model, store = _data("gaussian"), _model("gaussian"), _store()
    cold = model.fit(df, y="y")
    res = model.fit(df, y="y", store=store, rho0=cold.rho)
    assert res.warm == "explicit"
    assert not list(store.entries())


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("family", FAMILIES)
def test_interrupted_fit_resumes_from_session_checkpoint(family: str) -> None:
    df, store = _data(family), _store()
    model = GAM([s("x0"), s("x1"), s("x2")], family=family, checkpoint_interval=0.0)
    cold = model.fit(df, y="y")

    def stop_after_two(it: Any) -> None:
        if it.iteration == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        model.fit(df, y="y", store=store, on_iterate=stop_after_two)
    assert not list(store.entries("block")) and not list(store.entries("artifact"))
    assert len(list(store.entries("outer"))) == 1  # the latest checkpoint of the session
    res = model.fit(df, y="y", store=store)
    assert res.warm == "session"
    assert_same_optimum(res, cold)
    assert res.n_outer < cold.n_outer


def test_quick_fits_finalize_without_checkpoints() -> None:
    df, model, store = _data("poisson"), _model("poisson"), _store()
    assert model.checkpoint_interval == 1.0
    model.fit(df, y="y", store=store)
    outer = list(store.entries("outer"))
    assert len(outer) == 1
    entry = store.read_entry(outer[0])
    assert entry is not None and entry.kind == "final"


def test_folds_keep_transferring_from_the_full_data_fit() -> None:
    df, model, store = _data("poisson"), _model("poisson"), _store()
    full = model.fit(df, y="y", store=store)
    artifacts = [i.entry_id for i in store.entries("artifact")]
    assert len(artifacts) == 1
    for subj in (0, 1, 2):
        fold = df[df["subj"] != subj]
        res = model.fit(fold, y="y", knots=full.knots, store=store)
        assert res.warm == "cross-fit"
        assert_same_optimum(res, model.fit(fold, y="y", knots=full.knots))
    # folds wrote their block records and sessions, but the artifact is still the parent's
    assert [i.entry_id for i in store.entries("artifact")] == artifacts
    assert len(list(store.entries("block"))) == 4
    again = model.fit(df[df["subj"] != 1], y="y", knots=full.knots, store=store)
    assert again.warm == "exact"


def test_foreign_record_under_the_key_is_ignored() -> None:
    """A record of another shape under this fit's key (another producer's, or a model whose
    blocks differ) reads as incompatible: cold start, same answer."""
    from gamstore.records import BlockWarmStartRecord

    df, model, store = _data("poisson"), _model("poisson"), _store()
    cold = model.fit(df, y="y")
    prob, _ = model.prepare(df, "y")
    ctx = WarmContext(prob, store, model.control, model.store_key(df, "y"))
    ctx.find_start()
    assert ctx.key is not None
    foreign = BlockWarmStartRecord(
        key=ctx.key,
        n_rows=len(df),
        block_names=("(parametric)", "s(x0)"),
        block_dims=(1, 5),
        rho=np.array([1.0]),
        block_beta=(np.zeros(1), np.ones(5)),
        active_sets=(None, None),
        inner=None,
        created_unix_secs=0,
        updated_unix_secs=0,
    )
    assert store.save("block", ctx.key, foreign) is not None
    res = model.fit(df, y="y", store=store)
    assert res.warm == "cold"
    assert_same_optimum(res, cold)


@pytest.mark.parametrize("family", FAMILIES)
def test_cross_fit_beta_is_transported_exactly(family: str) -> None:
    """With frozen knots the parent's β, moved across the fold's own sum-to-zero constraint
    and mapped through the fold's gauge, reproduces the parent's linear predictor on the
    fold's rows (reference-fitter §3.3: exact, not a projection)."""
    df, model, store = _data(family), _model(family), _store()
    full = model.fit(df, y="y", store=store)
    keep = (df["subj"] != 4).to_numpy()
    fold = df[keep]
    prob, _ = model.prepare(fold, "y", knots=full.knots)
    ctx = WarmContext(prob, store, model.control)
    start = ctx._cross_fit()
    assert start is not None and start.flat_beta() is not None
    np.testing.assert_allclose(start.rho, full.rho)
    eta = prob.design.X @ start.flat_beta() + prob.offset
    np.testing.assert_allclose(eta, full.linear_predictor[keep], rtol=0, atol=1e-10)


def test_non_uniform_full_knots_use_the_general_basis() -> None:
    df = _data("gaussian")
    model = GAM([s("x0", k=6), s("x1")])
    # k = 6 needs k + 4 = 10 knots; these are unevenly spaced (scipy's de Boor path)
    t = np.array([-0.3, -0.2, -0.1, 0.0, 0.15, 0.5, 0.6, 1.0, 1.1, 1.2])
    res = model.fit(df, y="y", knots={"x0": t})
    np.testing.assert_array_equal(res.knots["x0"], t)
    np.testing.assert_allclose(res.predict(df), res.fitted, rtol=1e-10, atol=1e-12)


def test_store_of_the_wrong_type_is_a_type_error() -> None:
    df, model = _data("gaussian"), _model("gaussian")
    with pytest.raises(TypeError, match="store"):
        model.fit(df, y="y", store=12345)


def test_warm_fold_does_each_lookup_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold derives its key once from its inputs (block and session keys share it) and
    never hashes its built design, reads the parent artifact once, and writes only its
    block record."""
    import gamstore.warmstart.blocks as blocks_mod
    import gamstore.warmstart.keys as keys_mod
    import gamstore.warmstart.plan as plan_mod

    df, store = _data("poisson"), _store()
    # no time-based session checkpoints, whatever the load of the machine
    model = GAM([s("x0"), s("x1"), s("x2")], family="poisson", checkpoint_interval=1e9)
    full = model.fit(df, y="y", store=store)
    fold = df[df["subj"] != 4]
    cold = model.fit(fold, y="y", knots=full.knots)
    calls: dict[str, int] = {"block_key": 0, "input_block_key": 0, "lookup_latest": 0}
    real_key, real_latest = keys_mod.block_key, type(store).lookup_latest
    real_input = keys_mod.input_block_key

    def counting_key(*a: Any, **k: Any) -> str:
        calls["block_key"] += 1
        return real_key(*a, **k)

    def counting_input(*a: Any, **k: Any) -> str:
        calls["input_block_key"] += 1
        return real_input(*a, **k)

    def counting_latest(self: Any, keyspace: str, key: str) -> Any:
        calls["lookup_latest"] += keyspace == "artifact"
        return real_latest(self, keyspace, key)

    monkeypatch.setattr(keys_mod, "block_key", counting_key)
    monkeypatch.setattr(blocks_mod, "block_key", counting_key)
    monkeypatch.setattr(plan_mod, "block_key", counting_key)
    monkeypatch.setattr(keys_mod, "input_block_key", counting_input)
    monkeypatch.setattr(type(store), "lookup_latest", counting_latest)
    before = {ks: len(list(store.entries(ks))) for ks in ("block", "outer", "artifact")}
    res = model.fit(fold, y="y", knots=full.knots, store=store)
    assert res.warm == "cross-fit"
    assert_same_optimum(res, cold)
    assert calls == {"block_key": 0, "input_block_key": 1, "lookup_latest": 1}
    after = {ks: len(list(store.entries(ks))) for ks in ("block", "outer", "artifact")}
    assert after == {**before, "block": before["block"] + 1}


def test_read_only_store_builds_no_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gamstore.warmstart.blocks as blocks_mod

    df, model = _data("gaussian"), _model("gaussian")
    full = model.fit(df, y="y", store=gs.open_store(tmp_path / "st"))
    ro = gs.open_store(tmp_path / "st", read_only=True)

    def never(*a: Any, **k: Any) -> bool:
        raise AssertionError("a record was built for a read-only store")

    monkeypatch.setattr(blocks_mod, "store_block_warm_start", never)
    fold = df[df["subj"] != 2]
    res = model.fit(fold, y="y", knots=full.knots, store=ro)
    assert res.warm == "cross-fit"
    assert_same_optimum(res, model.fit(fold, y="y", knots=full.knots))


def test_every_outer_control_setting_enters_the_key() -> None:
    # a record written under another stopping rule or tolerance must never be an exact hit
    import dataclasses

    from gamstore.fit.newton import NewtonControl
    from gamstore.fit.warm import fit_options

    base = NewtonControl()
    seen = {fit_options(base)}
    for f in dataclasses.fields(base):
        value = getattr(base, f.name)
        if isinstance(value, bool):
            changed = not value
        elif isinstance(value, int):
            changed = value + 1
        else:
            changed = value * 2
        opts = fit_options(dataclasses.replace(base, **{f.name: changed}))
        assert opts not in seen, f.name
        seen.add(opts)
