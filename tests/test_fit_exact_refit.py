"""An exact refit answered from its block record before the design is built (issue 17).

``fit(store=...)`` of the same inputs as a converged fit returns ρ, β, REML, scale, edf and the
warnings from the record, and computes the design and everything derived from it on first
read (``exact_hit="lazy"``, the default). ``exact_hit="eager"`` computes it all at once: the
reference. Every field a user can read must be the same in both (and the same as the cold fit
that wrote the record); a record that cannot answer falls back to the usual fit.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gamstore as gs
from gamstore.fit import GAM, FitResult, s, te
from gamstore.fit.model import DEFERRED_FIELDS
from gamstore.fit.simulate import simulate

_counter = itertools.count()
FAMILIES = ("gaussian", "poisson", "binomial")

# every public property of a result, and the methods a user calls without arguments
PROPERTIES = (
    "coef_names", "Vp", "Ve", "Vc", "edf_coef", "edf1", "edf2", "loglik", "loglik_df", "aic",
    "formula", "dropped_rows", "n_dropped", "sp", "block_names", "rho_names", "coef",
    "edf_total",
)  # fmt: skip
# fields that differ between two fits of the same inputs by construction
TIMING = ("wall_time", "warm_decision")


def _store() -> Any:
    return gs.open_store(f"memory://exact-refit-{next(_counter)}")


def _data(family: str, seed: int = 11) -> pd.DataFrame:
    df = simulate(family, n=1200, S=8, seed=seed)
    rng = np.random.default_rng(3)
    df["f"] = rng.choice(["a", "b", "c"], size=len(df))
    df["x3"] = rng.uniform(size=len(df))
    return df


def _model(family: str) -> GAM:
    # a P-spline, a tensor product, a random effect, a factor-by smooth and a parametric factor
    return GAM(
        [s("x0"), te("x1", "x2", k=4), s("subj", bs="re"), s("x3", by="f", k=5)],
        family=family,
        linear=["f"],
    )


def _same(a: Any, b: Any, name: str) -> None:
    """Bitwise the same value (arrays, dicts of arrays, scalars, warnings, start checks)."""
    if isinstance(a, dict):
        assert list(a) == list(b), name
        for k in a:
            _same(a[k], b[k], f"{name}[{k}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)
    elif isinstance(a, list) and a and isinstance(a[0], Warning):
        assert [(type(w), str(w)) for w in a] == [(type(w), str(w)) for w in b], name
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{name}.{f.name}")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), name
    else:
        assert a == b, (name, a, b)


def _public(res: FitResult) -> dict[str, Any]:
    """Everything a user reads from a result, in one dict (fields, properties, summary,
    predictions with standard errors)."""
    out = {
        f.name: getattr(res, f.name)
        for f in dataclasses.fields(res)
        if not f.name.startswith("_") and f.name not in TIMING + ("model",)
    }
    out.update({p: getattr(res, p) for p in PROPERTIES})
    summary = res.summary(show=False)
    out["summary"] = str(summary)
    out["summary_smooth"] = summary.smooth.to_numpy()
    new = pd.DataFrame(
        {"x0": [0.2, 0.7], "x1": [0.3, 0.5], "x2": [0.6, 0.1], "x3": [0.4, 0.9],
         "subj": [0, 1], "f": ["a", "c"]}
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in ("response", "link"):
            pred = res.predict(new, type=kind, se_fit=True)
            out[f"predict_{kind}"] = pred.fit
            out[f"predict_{kind}_se"] = pred.se_fit
    return out


def _fits(family: str) -> tuple[pd.DataFrame, GAM, Any, FitResult]:
    df, model, store = _data(family), _model(family), _store()
    first = model.fit(df, y="y", store=store, warm_policy="always")
    assert first.warm == "cold" and first.converged
    return df, model, store, first


@pytest.mark.parametrize("family", FAMILIES)
def test_lazy_exact_hit_equals_eager_and_the_cold_fit(family: str) -> None:
    df, model, store, first = _fits(family)
    lazy = model.fit(df, y="y", store=store, warm_policy="always")
    assert lazy.warm == "exact" and lazy.deferred
    assert lazy.warm_decision.endswith("exact record answered the fit (design built on first use)")
    eager = model.fit(df, y="y", store=store, warm_policy="always", exact_hit="eager")
    assert eager.warm == "exact" and not eager.deferred
    assert eager.warm_decision.endswith("exact record answered the fit (design built)")
    # what the record answered (ρ, REML, scale, edf, warnings) against the eager
    # recomputation from the data at the stored ρ and β, before anything is materialized
    for name in ("rho", "reml", "scale", "reml_scale", "edf", "warnings", "n", "converged"):
        _same(lazy.__dict__[name], getattr(eager, name), name)
    assert lazy.deferred
    a, b = _public(lazy), _public(eager)
    assert not lazy.deferred
    assert list(a) == list(b)
    for name in a:
        _same(a[name], b[name], name)
    # and both are the fit that wrote the record (same β, same evaluation): bitwise
    c = _public(first)
    for name in a:
        if name in ("warm", "n_outer", "n_pirls_calls", "n_pirls_iters", "start_check"):
            continue
        _same(a[name], c[name], name)
    assert (lazy.n_outer, lazy.n_pirls_calls, lazy.n_pirls_iters) == (0, 0, 0)
    assert lazy.start_check is not None and lazy.start_check.level == "exact"


@pytest.mark.parametrize("name", sorted(DEFERRED_FIELDS - {"_design", "_family"}))
def test_each_deferred_field_alone(name: str) -> None:
    df, model, store, _ = _fits("poisson")
    eager = model.fit(df, y="y", store=store, exact_hit="eager")
    lazy = model.fit(df, y="y", store=store)
    assert lazy.deferred and name not in lazy.__dict__
    _same(getattr(lazy, name), getattr(eager, name), name)
    assert not lazy.deferred


def test_exact_hit_builds_no_design(monkeypatch: pytest.MonkeyPatch) -> None:
    import gamstore.fit.model as model_mod

    df, model, store, first = _fits("gaussian")
    built = []
    real = model_mod.build_design

    def counting(*a: Any, **k: Any) -> Any:
        built.append(1)
        return real(*a, **k)

    monkeypatch.setattr(model_mod, "build_design", counting)
    res = model.fit(df, y="y", store=store)
    assert res.warm == "exact" and built == []
    assert res.reml == first.reml and res.edf == first.edf
    np.testing.assert_array_equal(res.coef, first.coef)  # the first read builds it
    assert built == [1]
    res.Vp, res.fitted, res.summary(show=False)  # once
    assert built == [1]


def test_exact_hit_emits_the_stored_warnings() -> None:
    from gamstore.fit.diagnostics import BasisDimensionWarning

    df = _data("gaussian")
    df["x0"] = np.round(df["x0"], 1)  # 11 unique values under a k=12 basis
    model = GAM([s("x0", k=12), s("x1")])
    store = _store()
    with pytest.warns(BasisDimensionWarning):
        first = model.fit(df, y="y", store=store)
    with pytest.warns(BasisDimensionWarning) as caught:
        again = model.fit(df, y="y", store=store)
    assert again.warm == "exact" and again.deferred
    assert [str(w.message) for w in caught] == [str(w) for w in first.warnings]
    _same(again.warnings, first.warnings, "warnings")


def test_pickled_lazy_result_carries_its_values() -> None:
    df, model, store, first = _fits("binomial")
    lazy = model.fit(df, y="y", store=store)
    assert lazy.deferred
    back = pickle.loads(pickle.dumps(lazy))
    assert not back.deferred and not lazy.deferred
    np.testing.assert_array_equal(back.fitted, first.fitted)
    np.testing.assert_array_equal(back.Vp, first.Vp)


def test_data_changed_in_place_is_refused_not_misread() -> None:
    df, model, store, _ = _fits("gaussian")
    lazy = model.fit(df, y="y", store=store)
    assert lazy.deferred
    df.loc[0, "y"] += 1.0  # the caller's frame, changed after the fit
    with pytest.raises(RuntimeError, match="changed since the fit"):
        _ = lazy.fitted
    assert lazy.deferred  # still pending: nothing half-computed
    # a refit of the changed data has another key: no exact record
    assert model.fit(df, y="y", store=store).warm != "exact"


@pytest.mark.parametrize(
    "change",
    ["n_rows", "labels", "no-summary", "design"],
)
def test_inconsistent_record_falls_back_to_the_usual_fit(change: str) -> None:
    df, model, store, first = _fits("poisson")
    key = model.store_key(df, "y")

    def plant(rec: Any) -> dict[str, Any]:
        res = rec.result
        if change == "n_rows":
            return {"n_rows": rec.n_rows + 1}
        if change == "labels":  # one label too few: the summary is not this record's
            return {"result": dataclasses.replace(
                res, block_labels=res.block_labels[:-1], edf=res.edf[:-1])}  # fmt: skip
        if change == "no-summary":
            return {"result": None}
        # as many labels, but not this design's: only building the design can tell
        return {"result": dataclasses.replace(
            res, block_labels=tuple(f"{b}'" for b in res.block_labels))}  # fmt: skip

    from gamstore.records import BlockWarmStartRecord
    from gamstore.warmstart.capability import warm_store
    from gamstore.warmstart.records_io import BLOCK_KEYSPACE, read_record

    ws = warm_store(store)
    rec = read_record(ws, BLOCK_KEYSPACE, key, BlockWarmStartRecord)
    assert rec is not None
    for info in list(store.entries(BLOCK_KEYSPACE)):
        store.delete_entry(info)
    assert ws.save(
        BLOCK_KEYSPACE, key, dataclasses.replace(rec, **plant(rec)), objective=None,
        kind="checkpoint",
    )  # fmt: skip
    if change == "design":
        # lazily it answers (the labels are only strings), and the first read refuses
        lazy = model.fit(df, y="y", store=store)
        assert lazy.deferred
        with pytest.raises(ValueError, match="does not match the record"):
            _ = lazy.fitted
        # eagerly the mismatch is found at once and the fit goes the usual way
        res = model.fit(df, y="y", store=store, exact_hit="eager")
    else:
        res = model.fit(df, y="y", store=store)
    assert not res.deferred
    # the usual path: a recertification of the stored optimum, or (n_rows wrong: the record
    # is incompatible) the session or a cold start; the same optimum either way
    assert res.warm in ("exact", "session", "cold")
    assert res.converged
    assert abs(res.reml - first.reml) <= 1e-8 * abs(first.reml)
    np.testing.assert_allclose(res.fitted, first.fitted, rtol=1e-6)


def test_unconverged_fit_stores_no_summary() -> None:
    from gamstore.fit.newton import NewtonControl
    from gamstore.records import BlockWarmStartRecord
    from gamstore.warmstart.capability import warm_store
    from gamstore.warmstart.records_io import BLOCK_KEYSPACE, read_record

    df = _data("poisson")
    model = GAM([s("x0"), s("x1")], family="poisson", control=NewtonControl(max_iter=1))
    store = _store()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = model.fit(df, y="y", store=store)
    assert not first.converged
    rec = read_record(warm_store(store), BLOCK_KEYSPACE, model.store_key(df, "y"),
                      BlockWarmStartRecord)  # fmt: skip
    assert rec is not None and rec.result is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = model.fit(df, y="y", store=store)
    assert again.warm == "exact" and not again.deferred and again.n_pirls_calls >= 1


def test_result_summary_round_trips_the_record() -> None:
    from gamstore.records import BlockWarmStartRecord, ResultSummary

    summary = ResultSummary(
        reml=1.5, scale=0.25, reml_scale=0.25, block_labels=("(parametric)", "s(x)"),
        edf=np.array([1.0, 3.25]), warning_kinds=("BoundaryFitWarning",),
        warning_messages=("fitted rates numerically 0",),
    )  # fmt: skip
    rec = BlockWarmStartRecord(
        key="cf-0123456789abcdef", n_rows=10, block_names=("a", "b"), block_dims=(1, 2),
        rho=np.array([0.5]), block_beta=(np.array([1.0]), np.array([2.0, 3.0])),
        active_sets=(None, None), result=summary,
    )  # fmt: skip
    parts = rec.to_parts()
    back = BlockWarmStartRecord.from_parts(
        parts.fields, {k: v.data for k, v in parts.arrays.items()}
    )
    assert back.result is not None
    _same(back.result.edf, summary.edf, "edf")
    assert back.result.block_labels == summary.block_labels
    assert back.result.warning_messages == summary.warning_messages
    # a record without a summary writes no field for it (older records read the same)
    plain = dataclasses.replace(rec, result=None).to_parts()
    assert "result" not in plain.fields
    with pytest.raises(ValueError, match="ResultSummary.edf"):
        dataclasses.replace(summary, edf=np.array([1.0]))


@pytest.mark.parametrize("reuse", [False, True])
def test_repeated_loso_folds_are_answered_from_their_records(reuse: bool) -> None:
    """``reuse=True``: the folds are built from the full data's raw bases and (Gaussian)
    fitted from its moments, whose fitted values are themselves deferred."""
    from gamstore.loso import run_loso

    df = simulate("gaussian", n=600, S=4, seed=5)
    model = GAM([s("x0"), s("x1")])
    store = _store()
    one = run_loso(df, model, subject="subj", y="y", store=store, reuse_designs=reuse)
    two = run_loso(df, model, subject="subj", y="y", store=store, reuse_designs=reuse)
    assert set(two["warm_source"].values.ravel()) == {"exact"}
    # answered from their records (written by the first run's saves, deferred to the
    # background writer): no PIRLS call, the full-data fit too
    assert set(two["n_pirls_calls"].values.ravel()) == {0}
    assert int(two["full_n_pirls_calls"].item()) == 0
    for name in ("rho", "reml", "pred_response", "se_response"):
        np.testing.assert_array_equal(two[name].values, one[name].values, err_msg=name)


def test_exact_hit_of_a_fold_from_moments_defers_its_fitted_values_again() -> None:
    from gamstore.fit.foldview import FullRawBases

    df = simulate("gaussian", n=600, S=4, seed=5)
    model = GAM([s("x0"), s("x1")])
    full = model.fit(df, y="y")
    keep = np.flatnonzero(df["subj"].to_numpy() != 1)
    train = df.iloc[keep].reset_index(drop=True)
    bases = FullRawBases(df)

    def fit(**kw: Any) -> FitResult:
        rows = bases.rows(keep, ("y", None, None))
        return model.fit(train, y="y", knots=full.knots, raw_rows=rows, **kw)

    store = _store()
    first = fit(store=store, warm_policy="always")
    assert first.deferred  # from moments: fitted values formed when read
    lazy = fit(store=store, warm_policy="always")
    assert lazy.warm == "exact" and lazy.deferred
    np.testing.assert_array_equal(lazy.Vp, first.Vp)  # the fold, not its fitted values
    assert lazy.deferred and "fitted" not in lazy.__dict__
    np.testing.assert_allclose(lazy.fitted, first.fitted, rtol=1e-12)
    assert not lazy.deferred
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(fit(store=store))).fitted, first.fitted, rtol=1e-12
    )


def test_threads_reading_one_lazy_result_build_its_design_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import gamstore.fit.model as model_mod

    df, model, store, first = _fits("gaussian")
    lazy = model.fit(df, y="y", store=store)
    built = []
    real = model_mod.build_design

    def counting(*a: Any, **k: Any) -> Any:
        built.append(1)
        return real(*a, **k)

    monkeypatch.setattr(model_mod, "build_design", counting)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: lazy.fitted, range(8)))
    assert built == [1]
    for g in got:
        np.testing.assert_array_equal(g, first.fitted)
