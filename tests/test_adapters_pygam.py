"""pyGAM adapter: λ/coef_ stored through gamstore, local warm grid search."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from requires import require_module

# an optional extra: skipped when missing, except under GAMSTORE_CI=1 where it must be there
pygam = require_module("pygam", module_level=True)

import gamstore  # noqa: E402
from gamstore.adapters import pygam as ap  # noqa: E402
from gamstore.loso.simulate import simulate  # noqa: E402


def _data(family: str = "gaussian", n: int = 360) -> tuple[Any, Any, Any]:
    df = simulate(family, n=n, n_subjects=6, seed=11)
    return df[["x0", "x1", "x2"]].to_numpy(), df["y"].to_numpy(), df["subj"].to_numpy()


def _gam(kind: str = "linear", edge: bool = True) -> Any:
    kw: dict[str, Any] = {"n_splines": 7}
    if edge:
        kw["edge_knots"] = [0, 1]
    terms = pygam.s(0, **kw) + pygam.s(1, **kw) + pygam.s(2, **kw)
    return pygam.LinearGAM(terms) if kind == "linear" else pygam.PoissonGAM(terms)


def _store(name: str) -> Any:
    return gamstore.open_store(f"memory://adapters-pygam-{name}")


def test_keys_row_free_seed_and_explicit_edge_knots() -> None:
    X, y, subj = _data()
    rows = subj != 1
    e_full, s_full = ap.keys(_gam(), X, y)
    e_fold, s_fold = ap.keys(_gam(), X[rows], y[rows])
    assert s_full == s_fold and e_full != e_fold
    assert "conv=pygam-lam" in e_full and "/seed/" in s_full
    # λ is state, not spec: a different starting λ keeps the keys
    g = _gam()
    g.lam = [[3.0], [0.1], [5.0]]
    assert ap.keys(g, X, y) == (e_full, s_full)
    # data-derived edge knots move with the fold: different seed (β would not transfer)
    _, s1 = ap.keys(_gam(edge=False), X, y)
    _, s2 = ap.keys(_gam(edge=False), X[rows], y[rows])
    assert s1 != s2
    # settings enter the exact key only
    e3, s3 = ap.keys(_gam(), X, y, options={"factors": [0.5, 1, 2]})
    assert e3 != e_full and s3 == s_full


def test_cold_search_beats_or_matches_default_grid() -> None:
    X, y, _ = _data()
    base = _gam()
    default = _gam()
    default.gridsearch(X, y, progress=False)
    fit = ap.gridsearch(base, X, y)
    assert fit.warm == "cold" and fit.objective == "GCV"
    assert fit.score <= default.statistics_["GCV"] + 1e-12
    assert fit.score == pytest.approx(fit.gam.statistics_["GCV"])
    np.testing.assert_allclose(fit.rho, np.log(fit.lam))
    assert not base._is_fitted  # the caller's model is not modified
    assert fit.n_fits > 11


def test_warm_exact_and_seed_through_the_store() -> None:
    from gamstore.records import IteratePayload, WarmStartRecord

    store = _store("warm")
    X, y, subj = _data()
    cold = ap.gridsearch(_gam(), X, y, store=store)
    rec = store.lookup("inner", cold.exact_key).record
    assert isinstance(rec, WarmStartRecord)
    np.testing.assert_allclose(rec.rho, np.log(cold.lam))
    np.testing.assert_allclose(rec.beta, cold.gam.coef_)
    seed = store.lookup_latest("outer", cold.seed_key).record
    assert isinstance(seed, IteratePayload) and seed.cost == pytest.approx(cold.score)

    exact = ap.gridsearch(_gam(), X, y, store=store)
    assert exact.warm == "exact" and exact.n_fits == 1
    assert exact.score == pytest.approx(cold.score, rel=1e-9)
    np.testing.assert_allclose(exact.lam, cold.lam)

    rows = subj != 3
    fold_cold = ap.gridsearch(_gam(), X[rows], y[rows])
    fold_warm = ap.gridsearch(_gam(), X[rows], y[rows], store=store, publish_seed=False)
    assert fold_warm.warm == "seed"
    assert fold_warm.n_fits < fold_cold.n_fits
    # a local search from the full-data λ ends at least as well as default grid + local search
    assert fold_warm.score <= fold_cold.score * (1 + 1e-3)


def test_grid_moves_when_best_is_on_its_edge() -> None:
    X, y, _ = _data()
    store = _store("edge")
    _, skey = ap.keys(_gam(), X, y)
    from gamstore.records import IteratePayload

    # a seed far from the optimum: λ = 1e4 for every term
    store.save("outer", skey, IteratePayload(rho=np.log([1e4] * 3), cost=1.0, eval_id=0))
    fit = ap.gridsearch(
        _gam(), X, y, store=store, publish_seed=False, strategy="cartesian",
        factors=(0.01, 1.0, 100.0),
    )  # fmt: skip
    assert fit.warm == "seed" and fit.n_rounds > 1
    assert np.all(fit.lam <= 1e4 * 0.01 * (1 + 1e-12))


def test_poisson_uses_ubre_and_bad_input_is_named() -> None:
    X, y, _ = _data("poisson", n=300)
    fit = ap.gridsearch(_gam("poisson"), X, y, factors=(0.5, 1.0, 2.0))
    assert fit.objective == "UBRE"
    with pytest.raises(ValueError, match="factors"):
        ap.gridsearch(_gam(), X, y, factors=(1.0, 2.0))
    with pytest.raises(ValueError, match="strategy"):
        ap.gridsearch(_gam(), X, y, strategy="random")
    with pytest.raises(ValueError, match="objective"):
        ap.gridsearch(_gam(), X, y, objective="REML")
    with pytest.raises(ValueError, match="X, y"):
        ap.gridsearch(_gam(), X, y[:-1])
    with pytest.raises(TypeError, match="pyGAM"):
        ap.gridsearch(object(), X, y)


class _NoConvention:
    """A record A written without ``rho_convention`` (an entry from before the field)."""

    RECORD_TYPE = "warm_start"

    def __init__(self, record: Any) -> None:
        self.record = record

    def to_parts(self) -> Any:
        from gamstore.records import RecordParts

        parts = self.record.to_parts()
        fields = {k: v for k, v in parts.fields.items() if k != "rho_convention"}
        return RecordParts(fields, parts.arrays)


def test_record_states_its_rho_convention_and_another_one_is_a_logged_miss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import dataclasses
    import logging
    import uuid

    store = _store(f"conv-{uuid.uuid4().hex}")
    X, y, _ = _data(n=240)
    kw: dict[str, Any] = {"store": store, "publish_seed": False, "factors": (0.5, 1.0, 2.0)}
    cold = ap.gridsearch(_gam(), X, y, **kw)
    assert cold.warm == "cold" and "outer" not in cold.saved
    rec = store.lookup("inner", cold.exact_key).record
    assert rec.rho_convention == ap.RHO_CONVENTION == "pygam-lam"
    assert f"conv={ap.RHO_CONVENTION}/" in cold.exact_key  # the key string is unchanged

    # the same λ under the same key, labelled with another convention (or with none, which
    # reads as "mgcv") and made the best entry: a miss, logged
    for i, foreign in enumerate(
        [dataclasses.replace(rec, rho_convention="custom"), _NoConvention(rec)]
    ):
        store.save("inner", cold.exact_key, foreign, objective=cold.score - 1.0 - i, kind="final")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gamstore.adapters.pygam"):
            again = ap.gridsearch(_gam(), X, y, **kw)
        assert again.warm == "cold"
        label = "custom" if i == 0 else "mgcv"
        assert f"rho_convention {label!r}, expected 'pygam-lam'" in caplog.text

    # control: the very same record with the adapter's convention is an exact hit
    store.save("inner", cold.exact_key, rec, objective=cold.score - 10.0, kind="final")
    assert ap.gridsearch(_gam(), X, y, **kw).warm == "exact"
