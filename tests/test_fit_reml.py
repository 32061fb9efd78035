"""PIRLS stationarity, the REML score against a direct computation, and its exact derivatives."""

from __future__ import annotations

import numpy as np
import pytest
from requires import require_module

from gamstore.fit import GAM, s
from gamstore.fit.families import get_family
from gamstore.fit.pirls import pirls
from gamstore.fit.reml import Problem, evaluate
from gamstore.fit.simulate import simulate

FAMILIES = ["gaussian", "poisson", "binomial"]


def _problem(family: str, n: int = 400, seed: int = 5) -> Problem:
    df = simulate(family, n=n, S=10, seed=seed)
    model = GAM([s("x0", k=8), s("x1", k=6), s("x2", k=9)], family=family)
    prob, _ = model.prepare(df, "y")
    return prob


@pytest.mark.parametrize("family", FAMILIES)
def test_pirls_solves_the_penalized_score_equations(family: str) -> None:
    prob = _problem(family)
    rho = np.array([1.0, 3.0, -0.5])
    fit = pirls(prob.design.X, prob.y, prob.wt, prob.offset, prob.family, prob.design.s_diag(rho))
    assert fit.converged
    # d/dbeta of (D + beta' S beta)/2: X'(wt (y - mu)) = S_lambda beta (canonical link)
    score = prob.design.X.T @ (prob.wt * (prob.y - fit.mu))
    np.testing.assert_allclose(score, prob.design.s_diag(rho) * fit.beta, atol=1e-6)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_pirls_step_halving_recovers_from_a_wild_start(family: str) -> None:
    prob = _problem(family)
    s_diag = prob.design.s_diag(np.array([2.0, 2.0, 2.0]))
    ref = pirls(prob.design.X, prob.y, prob.wt, prob.offset, prob.family, s_diag)
    wild = np.full(prob.design.p, 8.0)
    got = pirls(prob.design.X, prob.y, prob.wt, prob.offset, prob.family, s_diag, wild)
    assert got.converged
    np.testing.assert_allclose(got.beta, ref.beta, atol=1e-5)


def _direct_score(prob: Problem, rho: np.ndarray) -> float:
    """LAML written out plainly in reduced coordinates (no working basis, no profiling)."""
    d = prob.design
    fam = prob.family
    fit = pirls(d.X, prob.y, prob.wt, prob.offset, fam, d.s_diag(rho))
    # back to the reduced basis: X_red = X_w U', S_red = U diag(eig) U'
    Xr = d.X.copy()
    Sl = np.zeros((d.p, d.p))
    for j, b in enumerate(d.smooths):
        Xr[:, b.cols] = d.X[:, b.cols] @ b.U.T
        Sl[b.cols, b.cols] = np.exp(rho[j]) * b.basis.S
    beta = d.X.shape[1] and np.concatenate(
        [fit.beta[d.block_cols[0]]] + [b.U @ fit.beta[b.cols] for b in d.smooths]
    )
    w = prob.wt * fam.variance(fit.mu)
    H = Xr.T @ (Xr * w[:, None]) + Sl
    logdetH = np.linalg.slogdet(H)[1]
    logdetS = 0.0
    for j, b in enumerate(d.smooths):
        ev = np.linalg.eigvalsh(np.exp(rho[j]) * b.basis.S)
        logdetS += np.sum(np.log(ev[ev > 1e-10 * ev.max()]))
    Mp = d.null_space_dim
    pen = float(beta @ Sl @ beta)
    if fam.scale_known:
        ll = fam.loglik(prob.y, fit.mu, prob.wt, 1.0)
        return -ll + 0.5 * pen + 0.5 * logdetH - 0.5 * logdetS - 0.5 * Mp * np.log(2 * np.pi)
    # Gaussian: minimise the unprofiled score over phi numerically
    n = prob.n_eff
    D = fit.deviance

    def v(phi: float) -> float:
        return (
            (D + pen) / (2 * phi)
            + 0.5 * n * np.log(2 * np.pi * phi)
            - 0.5 * Mp * np.log(2 * np.pi)
            + 0.5 * (logdetH - d.p * np.log(phi))
            - 0.5 * (logdetS - (d.p - Mp) * np.log(phi))
        )

    from scipy.optimize import minimize_scalar

    return float(minimize_scalar(v, bounds=(1e-4, 1e4), method="bounded").fun)


@pytest.mark.parametrize("family", FAMILIES)
def test_score_matches_direct_laplace_formula(family: str) -> None:
    prob = _problem(family)
    rho = np.array([0.5, 4.0, -1.0])
    got = evaluate(prob, rho).score
    assert got == pytest.approx(_direct_score(prob, rho), rel=1e-7)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_and_hessian_match_finite_differences(family: str) -> None:
    prob = _problem(family)
    rho = np.array([1.5, 3.0, -0.5])
    tight = {"pirls_tol": 1e-13}
    e = evaluate(prob, rho, **tight)
    assert e.hess is not None
    # PIRLS stops on the penalized deviance, so beta (and log|H|) carry ~1e-8 noise:
    # steps much below 1e-3 would measure that noise, not the derivative
    h = 1e-3
    g_fd = np.zeros(3)
    H_fd = np.zeros((3, 3))
    for j in range(3):
        up, dn = rho.copy(), rho.copy()
        up[j] += h
        dn[j] -= h
        eu, ed = evaluate(prob, up, **tight), evaluate(prob, dn, **tight)
        g_fd[j] = (eu.score - ed.score) / (2 * h)
        H_fd[:, j] = (eu.grad - ed.grad) / (2 * h)
    np.testing.assert_allclose(e.grad, g_fd, rtol=5e-5, atol=1e-5)
    np.testing.assert_allclose(e.hess, H_fd, rtol=1e-3, atol=1e-4)


def test_working_basis_is_orthogonal_to_reduced() -> None:
    prob = _problem("gaussian")
    for b in prob.design.smooths:
        np.testing.assert_allclose(b.U.T @ b.U, np.eye(b.U.shape[0]), atol=1e-12)
        np.testing.assert_allclose(b.U @ np.diag(b.eig) @ b.U.T, b.basis.S, atol=1e-12)


def test_family_lookup_errors() -> None:
    with pytest.raises(ValueError, match="family must be one of"):
        get_family("tweedie")  # not yet supported (Gamma is, since the families work)
    with pytest.raises(TypeError):
        get_family(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", FAMILIES)
def test_pirls_matches_statsmodels_glmgam_at_fixed_penalty(family: str) -> None:
    """Independent check of PIRLS and of the penalty scale (reference-fitter §3.10):
    statsmodels GLMGam with the same basis and penalty, alpha = lambda / 2."""
    sm = require_module("statsmodels.api")  # the [adapters] extra must be there in CI
    from statsmodels.gam.api import GLMGam
    from statsmodels.gam.smooth_basis import GenericSmoothers, UnivariateGenericSmoother

    df = simulate(family, n=600, S=10, seed=3)
    model = GAM([s("x0", k=8), s("x1", k=6)], family=family)
    prob, _ = model.prepare(df, "y")
    d = prob.design
    rho = np.array([1.0, 2.5])
    fit = pirls(d.X, prob.y, prob.wt, prob.offset, prob.family, d.s_diag(rho), tol=1e-13)
    smoothers = [
        UnivariateGenericSmoother(
            df[b.spec.term].to_numpy(),
            d.X[:, b.cols],
            d.X[:, b.cols],
            d.X[:, b.cols],
            np.diag(b.eig),
            variable_name=b.spec.term,
        )
        for b in d.smooths
    ]
    sm_family = {
        "gaussian": sm.families.Gaussian(),
        "poisson": sm.families.Poisson(),
        "binomial": sm.families.Binomial(),
    }[family]
    res = GLMGam(
        prob.y,
        exog=np.ones((len(df), 1)),
        smoother=GenericSmoothers(df[["x0", "x1"]].to_numpy(), smoothers),
        alpha=np.exp(rho) / 2.0,
        family=sm_family,
    ).fit(tol=1e-12)
    np.testing.assert_allclose(res.params, fit.beta, rtol=0, atol=1e-8)


def test_gaussian_gram_is_formed_once_and_matches_a_fresh_solve() -> None:
    prob = _problem("gaussian")
    d = prob.design
    rho = np.array([0.5, 2.0, -1.0])
    fresh = pirls(d.X, prob.y, prob.wt, prob.offset, prob.family, d.s_diag(rho))
    got = evaluate(prob, rho)
    np.testing.assert_allclose(got.fit.beta, fresh.beta, rtol=1e-10, atol=1e-12)
    assert got.fit.deviance == pytest.approx(fresh.deviance, rel=1e-12)
    gram = prob.gaussian_gram()
    assert prob.gaussian_gram() is gram  # cached on the problem, not recomputed
    np.testing.assert_allclose(gram[0], d.X.T @ (prob.wt[:, None] * d.X), rtol=1e-12, atol=1e-12)
    # a problem rebuilt with other data must not inherit the cached products
    import dataclasses

    other = dataclasses.replace(prob, y=prob.y + 1.0)
    assert other.gaussian_gram() is not gram
    np.testing.assert_allclose(
        other.gaussian_gram()[1], d.X.T @ (prob.wt * (prob.y + 1.0 - prob.offset)), rtol=1e-10
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_newton_end_game_lands_on_the_tight_optimum(family: str) -> None:
    from gamstore.fit.newton import NewtonControl, newton

    prob = _problem(family, n=1000)
    rho0 = prob.design.initial_rho
    # reference: no end-game shortcuts, polish until the gradient is below 1e-4 conv_tol
    tight = newton(
        prob,
        rho0,
        control=NewtonControl(final_step=0.0, skip_step=0.0, polish_factor=1e-4, max_polish=6),
    )
    fast = newton(prob, rho0)
    assert tight.converged and fast.converged
    assert fast.n_pirls_calls <= tight.n_pirls_calls
    fitted = tight.final.fit.mu
    rel = np.max(np.abs(fast.final.fit.mu - fitted)) / np.max(np.abs(fitted))
    assert rel <= 5e-6, rel  # the warm == cold contract is 1e-5
    assert fast.final.score == pytest.approx(tight.final.score, rel=1e-10)
    # restarting at the end point is recognised at once: one evaluation, no step
    again = newton(prob, fast.final.rho, fast.final.fit.beta)
    assert again.converged and again.n_outer == 0 and again.n_pirls_calls == 1
    # a nearby start finishes with an exact final Newton step
    near = newton(prob, fast.final.rho + 1e-3, fast.final.fit.beta)
    assert near.converged and near.n_outer <= 2
    rel = np.max(np.abs(near.final.fit.mu - fitted)) / np.max(np.abs(fitted))
    assert rel <= 5e-6, rel  # the warm == cold contract is 1e-5


def test_newton_without_polish_stops_on_mgcv_rule() -> None:
    from gamstore.fit.newton import NewtonControl, newton

    prob = _problem("poisson", n=1000)
    res = newton(prob, prob.design.initial_rho, control=NewtonControl(polish=False))
    assert res.converged
    ref = newton(prob, prob.design.initial_rho)
    assert abs(res.final.score - ref.final.score) <= 1e-6 * abs(ref.final.score)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_pirls_reuses_the_start_xtwx_from_the_previous_evaluation(family: str) -> None:
    prob = _problem(family)
    d = prob.design
    first = evaluate(prob, np.array([1.0, 2.0, 0.0]), hessian=False)
    XtWX = first.parts["XtWX"]
    np.testing.assert_allclose(
        XtWX, d.X.T @ ((prob.wt * prob.family.variance(first.fit.mu))[:, None] * d.X), rtol=1e-10
    )
    rho = np.array([1.2, 1.8, 0.3])
    plain = evaluate(prob, rho, first.fit.beta, hessian=False)
    reused = evaluate(prob, rho, first.fit.beta, hessian=False, xtwx0=XtWX)
    # the same product at the same beta: identical iterates, score and gradient
    np.testing.assert_array_equal(reused.fit.beta, plain.fit.beta)
    assert reused.score == plain.score
    np.testing.assert_array_equal(reused.grad, plain.grad)
    with pytest.raises(ValueError, match="xtwx0 must have shape"):
        pirls(
            d.X, prob.y, prob.wt, prob.offset, prob.family, d.s_diag(rho), first.fit.beta,
            xtwx0=np.eye(2),
        )  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_free_hessian_is_close_and_spares_a_refit_the_exact_one(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gamstore.fit.newton as nw
    from gamstore.fit.reml import fisher_hessian

    prob = _problem(family, n=1000)
    opt = nw.newton(prob, prob.design.initial_rho)
    at = evaluate(prob, opt.final.rho, opt.final.fit.beta)
    assert at.hess is not None
    approx = fisher_hessian(prob, at)
    err = np.max(np.abs(approx - at.hess)) / np.max(np.abs(at.hess))
    assert err <= (1e-12 if family == "gaussian" else 0.05), err
    exact_calls = []
    real = nw.with_hessian
    monkeypatch.setattr(nw, "with_hessian", lambda p, e: exact_calls.append(1) or real(p, e))
    again = nw.newton(prob, opt.final.rho, opt.final.fit.beta)
    assert again.converged and again.n_outer == 0 and again.n_pirls_calls == 1
    if family != "gaussian":  # Gaussian's exact Hessian is the cheap one
        assert exact_calls == []


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_every_end_point_is_recertified_without_a_step(family: str) -> None:
    from gamstore.fit.newton import newton

    df = simulate(family, n=1500, S=10, seed=11)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family)
    for subj in sorted(df["subj"].unique())[:5]:
        prob, _ = model.prepare(df[df["subj"] != subj], "y")
        res = newton(prob, prob.design.initial_rho)
        again = newton(prob, res.final.rho, res.final.fit.beta)
        assert res.converged and again.converged
        assert again.n_outer == 0 and again.n_pirls_calls == 1, (subj, again.n_outer)
