"""statsmodels GLMGam adapter: convention, frozen basis, keys, warm select_penweight."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from requires import require_module

# an optional extra: skipped when missing, except under GAMSTORE_CI=1 where it must be there
sm = require_module("statsmodels.api", module_level=True)
from statsmodels.gam.api import BSplines, GLMGam  # noqa: E402

import gamstore  # noqa: E402
from gamstore.adapters import statsmodels as ad  # noqa: E402
from gamstore.loso.simulate import simulate  # noqa: E402


def _data(family: str = "gaussian", n: int = 600, subjects: int = 6) -> tuple[Any, Any, Any]:
    df = simulate(family, n=n, n_subjects=subjects, seed=7)
    return df[["x0", "x1", "x2"]].to_numpy(), df["y"].to_numpy(), df["subj"].to_numpy()


def _model(family: str = "gaussian", n: int = 600) -> tuple[GLMGam, Any]:
    x, y, subj = _data(family, n)
    bs = BSplines(x, df=[8, 8, 8], degree=[3, 3, 3], constraints="center")
    fam = sm.families.Gaussian() if family == "gaussian" else sm.families.Poisson()
    return GLMGam(y, exog=np.ones((len(y), 1)), smoother=bs, family=fam), subj


def _store(name: str) -> Any:
    return gamstore.open_store(f"memory://adapters-sm-{name}")


# ---------------------------------------------------------------------------------------------


def test_rho_alpha_convention_round_trip_and_errors() -> None:
    a = np.array([1e-5, 0.3, 7.0])
    np.testing.assert_allclose(ad.rho_to_alpha(ad.alpha_to_rho(a)), a, rtol=1e-14)
    np.testing.assert_allclose(ad.alpha_to_rho(0.5), [0.0])
    with pytest.raises(ValueError, match="alpha"):
        ad.alpha_to_rho([1.0, -1.0])
    with pytest.raises(ValueError, match="rho"):
        ad.rho_to_alpha([np.nan])


def test_pirls_penalty_is_two_alpha_times_cov_der2() -> None:
    """The stored convention: statsmodels at α equals penalised LS with λ = 2α on cov_der2."""
    model, _ = _model()
    alpha = np.array([0.01, 0.2, 0.003])
    res = model._fit_pirls(alpha, tol=1e-12)
    X = np.asarray(model.exog)
    P = np.zeros((X.shape[1], X.shape[1]))
    for j, s in enumerate(model.smoother.smoothers):
        cols = 1 + np.flatnonzero(model.smoother.mask[j])
        P[np.ix_(cols, cols)] += 2 * alpha[j] * s.cov_der2
    beta = np.linalg.solve(X.T @ X + P, X.T @ np.asarray(model.endog))
    np.testing.assert_allclose(res.params, beta, rtol=1e-8, atol=1e-10)
    # and α alone (λ = α) would be measurably different
    P1 = P / 2
    beta1 = np.linalg.solve(X.T @ X + P1, X.T @ np.asarray(model.endog))
    assert np.max(np.abs(beta1 - beta)) > 1e-4


def test_frozen_smoother_keeps_full_basis_rows_and_penalty() -> None:
    model, subj = _model()
    rows = subj != 2
    fs = ad.frozen_smoother(model.smoother, rows)
    np.testing.assert_array_equal(fs.basis, model.smoother.basis[rows])
    for s_full, s_fold in zip(model.smoother.smoothers, fs.smoothers, strict=True):
        np.testing.assert_array_equal(s_fold.cov_der2, s_full.cov_der2)
    fm = ad.fold_model(model, rows)
    assert fm.nobs == rows.sum() and fm.k_exog_linear == 1
    np.testing.assert_array_equal(fm.endog, np.asarray(model.endog)[rows])
    # seed key is row-free: shared by full and fold; exact keys differ
    assert ad.seed_key(fm, "aic") == ad.seed_key(model, "aic")
    assert ad.exact_key(fm, "aic") != ad.exact_key(model, "aic")
    assert ad.seed_key(model, "gcv") != ad.seed_key(model, "aic")
    assert "conv=statsmodels-alpha" in ad.exact_key(model)
    # a basis rebuilt on fold data is a different basis: no seed match
    x, _, _ = _data()
    refit_bs = BSplines(x[rows], df=[8, 8, 8], degree=[3, 3, 3], constraints="center")
    other = GLMGam(np.asarray(model.endog)[rows], exog=np.ones((rows.sum(), 1)), smoother=refit_bs)
    assert ad.seed_key(other, "aic") != ad.seed_key(model, "aic")
    with pytest.raises(ValueError, match="rows"):
        ad.frozen_smoother(model.smoother, np.ones(3, dtype=bool))


def test_keys_are_pure_functions_of_data_and_spec() -> None:
    m1, _ = _model()
    m2, _ = _model()
    assert ad.exact_key(m1) == ad.exact_key(m2)
    m2.endog = np.asarray(m2.endog).copy()
    m2.endog[0] += 1e-9
    assert ad.exact_key(m1) != ad.exact_key(m2)
    assert ad.exact_key(m1, options={"gtol": 1}) != ad.exact_key(m1, options={"gtol": 2})
    # fitting the model does not change its keys (no lazily filled state is hashed)
    before = ad.exact_key(m1)
    m1.fit()
    assert ad.exact_key(m1) == before


def test_initial_alpha_is_the_initial_sp_heuristic() -> None:
    model, _ = _model()
    a = ad.initial_alpha(model)
    assert a.shape == (3,) and np.all(np.isfinite(a)) and np.all(a > 0)
    # mgcv: scale by 10 while the ratio > 0.4, then divide while < 0.4 (ends at >= 0.4)
    X = np.asarray(model.exog)
    ldxx = (X**2).sum(0)

    def ratio(alpha: np.ndarray) -> float:
        ldss = np.zeros_like(ldxx)
        for j, s in enumerate(model.smoother.smoothers):
            cols = 1 + np.flatnonzero(model.smoother.mask[j])
            ldss[cols] += 2 * alpha[j] * np.diag(s.cov_der2)
        use = ldss > 0
        return float(np.mean(ldxx[use] / (ldxx[use] + ldss[use])))

    assert ratio(a * 10) < 0.4 <= ratio(a)


def test_select_penweight_cold_without_store_refits_at_optimum() -> None:
    model, _ = _model()
    assert not hasattr(model, "scale")  # never fitted: pitfall 1 must be handled
    fit = ad.select_penweight(model, criterion="aic")
    assert fit.warm == "cold" and fit.success is True
    assert fit.results is not None
    np.testing.assert_allclose(fit.results.params, fit.params)
    assert fit.value == pytest.approx(float(fit.results.aic), rel=1e-12)
    np.testing.assert_allclose(fit.rho, np.log(2 * fit.alpha))
    np.testing.assert_allclose(fit.start_alpha, ad.initial_alpha(model))
    assert fit.n_calls >= 4 and fit.n_pirls >= 2 * fit.n_calls
    assert "_fit_pirls" not in vars(model)  # the counting wrapper is removed
    # the optimum is a local minimum of the criterion: nudging α does not improve it
    for j in range(3):
        for step in (0.8, 1.25):
            a = fit.alpha.copy()
            a[j] *= step
            assert float(model._fit_pirls(a).aic) >= fit.value - 1e-3


def test_exact_and_seed_warm_starts_through_the_store() -> None:
    store = _store("warm")
    model, subj = _model()
    cold = ad.select_penweight(model, store=store, criterion="aic")
    assert cold.warm == "cold" and cold.saved["block"] and cold.saved["outer"]

    # the stored state: record B with the parametric block and one block per smooth
    from gamstore.records import BlockWarmStartRecord, IteratePayload

    rec = store.lookup("block", cold.exact_key).record
    assert isinstance(rec, BlockWarmStartRecord)
    assert rec.block_names == ("(parametric)", "s(x0)", "s(x1)", "s(x2)")
    assert rec.block_dims == (1, 7, 7, 7)
    np.testing.assert_allclose(rec.rho, np.log(2 * cold.alpha))
    np.testing.assert_allclose(np.concatenate(rec.block_beta), cold.params)
    seed = store.lookup_latest("outer", cold.seed_key)
    assert isinstance(seed.record, IteratePayload) and seed.kind == "final"
    assert seed.objective == pytest.approx(cold.value)
    assert seed.record.hessian.shape == (3, 3)  # BFGS's outer Hessian, in ρ coordinates

    again = ad.select_penweight(model, store=store, criterion="aic")
    assert again.warm == "exact"
    assert again.n_calls < cold.n_calls
    assert again.value == pytest.approx(cold.value, rel=1e-7, abs=1e-6)
    newest_seed = store.lookup_latest("outer", cold.seed_key).entry_id

    rows = subj != 0
    fold_cold = ad.select_penweight(ad.fold_model(model, rows), criterion="aic")
    fold_warm = ad.select_penweight(
        ad.fold_model(model, rows), store=store, criterion="aic", publish_seed=False
    )
    assert fold_warm.warm == "seed"
    np.testing.assert_allclose(fold_warm.start_alpha, cold.alpha)
    assert fold_warm.n_calls < fold_cold.n_calls
    # same optimum: compare criterion and fitted values, not α (flat directions)
    assert fold_warm.value == pytest.approx(fold_cold.value, rel=1e-6, abs=1e-4)
    np.testing.assert_allclose(
        fold_warm.results.fittedvalues, fold_cold.results.fittedvalues, rtol=0, atol=2e-3
    )
    # publish_seed=False left the full-data seed as the newest
    assert store.lookup_latest("outer", cold.seed_key).entry_id == newest_seed

    # the stored fits are inspectable with xarray; the convention is in the key, next to ρ
    fits = gamstore.open_fits(store, "block")
    keys = [str(k) for k in fits["key"].values]
    assert all("conv=statsmodels-alpha" in k for k in keys) and cold.exact_key in keys
    row = fits.isel(fit=keys.index(cold.exact_key))
    np.testing.assert_allclose(row["rho"].values[: len(cold.rho)], np.log(2 * cold.alpha))


def test_unusable_stored_state_falls_back_to_cold() -> None:
    from gamstore.records import IteratePayload

    store = _store("bad")
    model, _ = _model()
    # a seed with the wrong number of ρ under this model's seed key
    bad = IteratePayload(rho=[1.0, 2.0], cost=1.0, eval_id=1)
    store.save("outer", ad.seed_key(model, "aic"), bad, kind="final")
    fit = ad.select_penweight(model, store=store, criterion="aic")
    assert fit.warm == "cold"


def test_bad_input_is_named() -> None:
    model, _ = _model()
    with pytest.raises(ValueError, match="criterion"):
        ad.select_penweight(model, criterion="reml")
    with pytest.raises(ValueError, match="method"):
        ad.select_penweight(model, method="basinhopping")
    with pytest.raises(ValueError, match="start_alpha"):
        ad.select_penweight(model, start_alpha=[1.0, 2.0])
    with pytest.raises(TypeError, match="GLMGam"):
        ad.select_penweight(object())
    with pytest.raises(ValueError, match="gtol"):
        ad.select_penweight(model, gtol=-1.0)


def test_nelder_mead_path_and_gcv() -> None:
    model, _ = _model(n=300)
    fit = ad.select_penweight(model, criterion="gcv", method="nm", options={"xtol": 1e-3})
    assert fit.success is None and fit.value == pytest.approx(float(fit.results.gcv))


def test_fold_model_carries_offset_and_exposure() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(120, 2))
    expo = rng.uniform(1, 3, 120)
    off = rng.normal(scale=0.1, size=120)
    y = rng.poisson(expo * np.exp(x[:, 0]))
    bs = BSplines(x, df=[6, 6], degree=[3, 3], constraints="center")
    kw = {"family": sm.families.Poisson()}
    m = GLMGam(y, exog=np.ones((120, 1)), smoother=bs, exposure=expo, offset=off, **kw)
    rows = np.arange(120) % 3 != 0
    f = ad.fold_model(m, rows)
    np.testing.assert_allclose(f.exposure, m.exposure[rows])  # GLM keeps log(exposure)
    np.testing.assert_allclose(f.offset, m.offset[rows])
    # offset and exposure are data: they enter the exact key, not the row-free seed key
    plain = GLMGam(y, exog=np.ones((120, 1)), smoother=bs, **kw)
    assert ad.exact_key(plain) != ad.exact_key(m)
    assert ad.seed_key(plain) == ad.seed_key(m)


class _NoConvention:
    """A block record written without ``rho_convention`` (an entry from before the field)."""

    RECORD_TYPE = "block_warm_start"

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
    model, _ = _model(n=300)
    cold = ad.select_penweight(model, store=store, publish_seed=False)
    assert cold.warm == "cold" and "outer" not in cold.saved
    rec = store.lookup("block", cold.exact_key).record
    assert rec.rho_convention == ad.RHO_CONVENTION == "statsmodels-alpha"
    assert f"conv={ad.RHO_CONVENTION}/" in cold.exact_key  # the key string is unchanged

    # the same numbers under the same key, labelled with another convention (or with none,
    # which reads as "mgcv") and made the best entry: never reinterpreted as log(2α)
    for i, foreign in enumerate(
        [dataclasses.replace(rec, rho_convention="mgcv"), _NoConvention(rec)]
    ):
        store.save("block", cold.exact_key, foreign, objective=cold.value - 1.0 - i, kind="final")
        assert store.lookup("block", cold.exact_key).record.rho_convention == "mgcv"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gamstore.adapters.statsmodels"):
            again = ad.select_penweight(model, store=store, publish_seed=False)
        assert again.warm == "cold"
        assert "rho_convention 'mgcv', expected 'statsmodels-alpha'" in caplog.text

    # control: relabelled with the adapter's convention, the very same record is an exact hit
    store.save("block", cold.exact_key, rec, objective=cold.value - 10.0, kind="final")
    assert ad.select_penweight(model, store=store, publish_seed=False).warm == "exact"
