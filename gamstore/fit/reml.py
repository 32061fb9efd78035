"""Laplace-approximate REML (Wood 2011) with its exact gradient and Hessian in rho.

PIRLS uses the exact Hessian of the penalized log-likelihood, ``X'WX + S_lambda`` with the
family's Newton weights (Fisher weights for a canonical link), so
``dbeta/drho_j = -lambda_j H^{-1} S_j beta`` and the derivatives of ``log|H|`` only need
``dW/deta`` and ``d2W/deta2``. The score is on mgcv's ``gcv.ubre`` scale: the full
log-likelihood (with normalising constants) minus ``(M_p/2) log(2 pi)``. An unknown scale is
profiled out: in closed form for the Gaussian family with identity link, otherwise by a
one-dimensional Newton solve in ``log(scale)`` of mgcv's score
``(D + P)/(2 phi) - ls(phi) + log|H|/2 - log|S|_+/2 - (M_p/2) log(2 pi phi)`` (mgcv optimizes
``log(scale)`` jointly with rho; the profiled score has the same minimum, and its Hessian is
the joint one's Schur complement).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamstore.fit.design import Design
from gamstore.fit.families import Family
from gamstore.fit.linalg import SPDFactor, leverages, row_chunks, xtwx, xtwx_many
from gamstore.fit.pirls import PirlsResult, add_penalty, fit_at, pirls

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class Problem:
    """The data of one fit (design, response, weights, offset, family)."""

    design: Design
    y: np.ndarray
    wt: np.ndarray
    offset: np.ndarray
    family: Family
    # rho-independent products, formed on first use and reused by every evaluation of the fit
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_eff(self) -> int:
        """Observations with positive weight."""
        n = self._cache.get("n_eff")
        if n is None:
            n = self._cache["n_eff"] = int(np.count_nonzero(self.wt > 0))
        return int(n)

    def gaussian_gram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X'WX, X'W(y - offset))`` with ``W = diag(wt)``, computed once per problem.

        For the identity link W does not depend on beta or rho, so these two products carry
        all the n-sized work of a Gaussian fit; every outer evaluation then costs p x p.
        """
        g = self._cache.get("gram")
        if g is None:
            X = self.design.X
            g = self._cache["gram"] = (
                xtwx(X, self.wt),
                _xt(X, self.wt * (self.y - self.offset)),
            )
        return g  # type: ignore[no-any-return]

    def seed_gaussian_gram(self, XtWX: np.ndarray, XtWz: np.ndarray) -> None:
        """Set :meth:`gaussian_gram`'s products, computed elsewhere (a LOSO fold: downdated
        from the full data's, :meth:`gamstore.fit.foldview.FoldRows.gaussian_gram`)."""
        p = self.design.p
        if XtWX.shape != (p, p) or XtWz.shape != (p,):
            raise ValueError(
                f"gram: expected ({p}, {p}) and ({p},), got {XtWX.shape}, {XtWz.shape}"
            )
        self._cache["gram"] = (XtWX, XtWz)

    def seed_sums(self, n_eff: int, ztwz: float, sum_log_wt: float) -> None:
        """Set :attr:`n_eff`, :meth:`gaussian_ztwz` and :meth:`sum_log_wt`, computed elsewhere
        (a Gaussian LOSO fold: the full data's minus the held-out rows',
        :meth:`gamstore.fit.foldview.FoldRows.gaussian_fold`)."""
        self._cache.update(n_eff=int(n_eff), ztwz=float(ztwz), sum_log_wt=float(sum_log_wt))

    def gaussian_ztwz(self) -> float:
        """``z'Wz`` with ``z = y - offset``, once per problem (a Gaussian fit from moments
        forms its deviance from it, :func:`~gamstore.fit.pirls.pirls` with ``X=None``)."""
        v = self._cache.get("ztwz")
        if v is None:
            z = self.y - self.offset
            v = self._cache["ztwz"] = float(np.dot(self.wt * z, z))
        return float(v)

    def sum_log_wt(self) -> float:
        """``sum(log wt)`` over positive weights (a constant of the profiled Gaussian score)."""
        v = self._cache.get("sum_log_wt")
        if v is None:
            pos = self.wt > 0
            v = self._cache["sum_log_wt"] = float(np.sum(np.log(self.wt[pos])))
        return float(v)


@dataclass(frozen=True)
class RemlEval:
    """REML score and derivatives at one rho.

    Attributes
    ----------
    rho : numpy.ndarray
        Log smoothing parameters.
    score : float
        REML criterion (mgcv ``gcv.ubre``), to be minimised.
    grad, hess : numpy.ndarray
        Gradient (m,) and Hessian (m, m) in rho; ``hess`` is None when not requested.
    fit : PirlsResult
        Inner fit at rho.
    scale : float
        Scale parameter (profiled estimate for Gaussian, 1 otherwise).
    """

    rho: np.ndarray
    score: float
    grad: np.ndarray
    hess: np.ndarray | None
    fit: PirlsResult
    scale: float
    logdet_h: float = float("nan")
    logdet_s: float = float("nan")
    loglik: float = float("nan")
    parts: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _xt(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros(X.shape[1])
    for sl in row_chunks(X.shape[0]):
        out += X[sl].T @ v[sl]
    return out


def _xmul(X: np.ndarray, B: np.ndarray) -> np.ndarray:
    out = np.empty((X.shape[0], B.shape[1]))
    for sl in row_chunks(X.shape[0]):
        out[sl] = X[sl] @ B
    return out


def evaluate(
    prob: Problem,
    rho: np.ndarray,
    beta0: np.ndarray | None = None,
    *,
    hessian: bool = True,
    max_pirls: int = 100,
    pirls_tol: float = 1e-8,
    xtwx0: np.ndarray | None = None,
    at_beta: bool = False,
) -> RemlEval:
    """Run PIRLS at ``rho`` and return the REML score with its derivatives.

    Parameters
    ----------
    prob : Problem
        The fit's data.
    rho : numpy.ndarray
        Log smoothing parameters, shape (m,).
    beta0 : numpy.ndarray or None
        PIRLS warm start (working basis).
    hessian : bool
        Also compute the exact Hessian.
    max_pirls : int
        PIRLS iteration cap.
    pirls_tol : float
        PIRLS convergence tolerance.
    xtwx0 : numpy.ndarray or None
        ``X'WX`` at ``beta0`` when known (``parts["XtWX"]`` of the evaluation that produced
        ``beta0``): saves PIRLS one n x p^2 product.
    at_beta : bool
        Evaluate *at* ``beta0`` without a PIRLS step (:func:`~gamstore.fit.pirls.fit_at`):
        a stored optimum's ``beta`` is already PIRLS's answer at ``rho``, so this reproduces
        the evaluation that produced it.

    Returns
    -------
    RemlEval
    """
    d = prob.design
    fam = prob.family
    m = d.n_sp
    rho = np.asarray(rho, dtype=np.float64)
    if rho.shape != (m,):
        raise ValueError(f"rho must have shape ({m},), got {rho.shape}")
    s_diag = d.s_diag(rho)
    gaussian = fam.identity_gaussian
    # a Gaussian design from moments (a LOSO fold, gamstore.fit.foldview) is fitted from its
    # X'WX and X'Wy alone: its n x p matrix is never formed
    moments_only = gaussian and not d.has_matrix and d.lazy is not None
    X_fit = None if moments_only else d.X
    ztwz = prob.gaussian_ztwz() if moments_only else None
    if at_beta:
        if beta0 is None:
            raise ValueError("at_beta: needs beta0")
        fit = fit_at(
            X_fit,
            prob.y,
            prob.wt,
            prob.offset,
            fam,
            s_diag,
            beta0,
            gram=prob.gaussian_gram() if gaussian else None,
            ztwz=ztwz,
        )
    else:
        fit = pirls(
            X_fit,
            prob.y,
            prob.wt,
            prob.offset,
            fam,
            s_diag,
            beta0,
            max_iter=max_pirls,
            tol=pirls_tol,
            gram=prob.gaussian_gram() if gaussian else None,
            xtwx0=None if gaussian or beta0 is None else xtwx0,
            ztwz=ztwz,
        )
    beta, mu = fit.beta, fit.mu
    if fit.xtwx is not None:
        XtWX = fit.xtwx
        wd: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    else:
        wd = fam.weight_derivs(prob.y, fit.eta, mu, prob.wt)
        XtWX = xtwx(d.X, wd[0])
    H = XtWX.copy()
    add_penalty(H, s_diag)
    fac = SPDFactor(H)
    Hinv = fac.inverse()
    lam = np.exp(rho)
    dense = d.dense
    if dense:  # a tensor product: log|S_lambda|_+ is not linear in rho
        logdet_S, ldS_grad, ldS_hess = d.logdet_S(rho)
    else:
        ranks = np.array([b.rank for b in d.smooths], dtype=np.float64)
        logdet_S = float(np.dot(ranks, rho) + np.array([b.logdet_S for b in d.smooths]).sum())
        ldS_grad, ldS_hess = ranks, None
    Mp = d.null_space_dim
    penalty = fit.penalty

    v_tt = float("nan")  # d2 score / d log(scale)^2 at the profiled scale
    if fam.scale_known:
        scale = 1.0
        ll = fam.loglik(prob.y, mu, prob.wt, 1.0)
        extras = (fac.logdet, logdet_S, ll)
        score = -ll + 0.5 * penalty + 0.5 * fac.logdet - 0.5 * logdet_S - 0.5 * Mp * LOG_2PI
    elif not gaussian:
        dp = fit.deviance + penalty
        # a family with a costly ls (tw's series) starts at the previous evaluation's scale
        hint = None if fam.ls_log_concave else prob._cache.get("log_scale")
        scale, ls0, v_tt = profile_scale(fam, prob.y, prob.wt, dp, Mp, prob.n_eff, t0=hint)
        if not fam.ls_log_concave:
            prob._cache["log_scale"] = float(np.log(scale))
        extras = (fac.logdet, logdet_S, fam.loglik(prob.y, mu, prob.wt, scale))
        score = (
            dp / (2.0 * scale)
            - ls0
            + 0.5 * fac.logdet
            - 0.5 * logdet_S
            - 0.5 * Mp * (LOG_2PI + np.log(scale))
        )
    else:
        dof = prob.n_eff - Mp
        if dof <= 0:
            raise ValueError(f"too few observations ({prob.n_eff}) for {Mp} unpenalized terms")
        scale = (fit.deviance + penalty) / dof
        if moments_only:
            # Gaussian.loglik from the deviance (no fitted values): the same formula
            ll = (
                -fit.deviance / (2.0 * scale)
                - 0.5 * prob.n_eff * np.log(2.0 * np.pi * scale)
                + 0.5 * prob.sum_log_wt()
            )
        else:
            ll = fam.loglik(prob.y, mu, prob.wt, scale)
        extras = (fac.logdet, logdet_S, ll)
        score = (
            0.5 * dof * (1.0 + np.log(2.0 * np.pi * scale))
            + 0.5 * fac.logdet
            - 0.5 * logdet_S
            - 0.5 * prob.sum_log_wt()
        )

    # per smoothing parameter: S_j beta (lambda included), a_j, tr_j, dbeta/drho_j
    Sb = np.zeros((d.p, m))
    if dense:
        slots = d.slots
        for j, sl in enumerate(slots):
            Sb[sl.cols, j] = lam[j] * sl.times(beta[sl.cols])
        tr = np.array(
            [lam[j] * sl.trace_with(Hinv[sl.cols, sl.cols]) for j, sl in enumerate(slots)]
        )
    else:
        for j, b in enumerate(d.smooths):
            Sb[b.cols, j] = lam[j] * b.eig * beta[b.cols]
        diag_hinv = np.diag(Hinv)
        tr = np.array([lam[j] * np.dot(b.eig, diag_hinv[b.cols]) for j, b in enumerate(d.smooths)])
    a = Sb.T @ beta
    dbeta = -Hinv @ Sb  # (p, m)
    parts: dict[str, Any] = {
        "H": H, "Hinv": Hinv, "s_diag": s_diag, "Sb": Sb, "a": a, "tr": tr, "dbeta": dbeta,
        "lam": lam, "XtWX": XtWX, "ldS_hess": ldS_hess,
    }  # fmt: skip

    if gaussian:
        grad = a / (2.0 * scale) + 0.5 * tr - 0.5 * ldS_grad
    else:
        if wd is None:
            wd = fam.weight_derivs(prob.y, fit.eta, mu, prob.wt)
        dw = wd[1]
        h = leverages(d.X, Hinv)
        q = _xt(d.X, h * dw)  # X'(h * dw/deta): turns dbeta into the trace term of log|H|
        grad = 0.5 * a / scale + 0.5 * (q @ dbeta + tr) - 0.5 * ldS_grad
        parts.update(dw=dw, d2w=wd[2], h=h, q=q, v_tt=v_tt)
    out = RemlEval(rho, float(score), grad, None, fit, scale, *extras, parts=parts)
    return with_hessian(prob, out) if hessian else out


def with_hessian(prob: Problem, ev: RemlEval) -> RemlEval:
    """The evaluation with its exact Hessian filled in (reusing the gradient's pieces)."""
    if ev.hess is not None:
        return ev
    d = prob.design
    fam = prob.family
    m = d.n_sp
    P = ev.parts
    Hinv, Sb, a, tr, dbeta, lam = P["Hinv"], P["Sb"], P["a"], P["tr"], P["dbeta"], P["lam"]
    da = np.diag(a) - 2.0 * (Sb.T @ (Hinv @ Sb))
    if fam.identity_gaussian:
        dof = prob.n_eff - d.null_space_dim
        scale = ev.scale
        hess = (
            da / (2.0 * scale)
            - np.outer(a, a) / (2.0 * dof * scale**2)
            + 0.5 * np.diag(tr)
            - 0.5 * _trace_pairs(d, Hinv, lam)
        )
        if P.get("ldS_hess") is not None:
            hess = hess - 0.5 * P["ldS_hess"]
        return dataclasses.replace(ev, hess=_sym(hess))
    dw, h, q = P["dw"], P["h"], P["q"]
    scale = ev.scale
    eta_j = _xmul(d.X, dbeta)  # X dbeta/drho_j, (n, m)
    XDX = xtwx_many(d.X, dw[:, None] * eta_j)  # X' diag(dw * eta_j) X, (m, p, p)
    dH = XDX.copy()
    if d.dense:
        for j, sl in enumerate(d.slots):
            dH[j, sl.cols, sl.cols] += lam[j] * sl.matrix()
    else:
        for j, b in enumerate(d.smooths):
            idx = np.arange(b.cols.start, b.cols.stop)
            dH[j, idx, idx] += lam[j] * b.eig
    G = np.einsum("ab,jbc->jac", Hinv, dH)  # H^{-1} dH_j
    trGG = np.einsum("jab,kba->jk", G, G)
    hw2 = h * P["d2w"]
    t_w2 = eta_j.T @ (hw2[:, None] * eta_j)  # sum_i h_i w''_i eta_j eta_k
    hess = np.zeros((m, m))
    for j in range(m):
        for k in range(j, m):
            # d2beta/drho_j drho_k from differentiating H dbeta_j = -S_j beta
            v = dH[k] @ dbeta[:, j] + _s_times(d, lam, j, dbeta[:, k])
            if j == k:
                v = v + Sb[:, j]
            d2beta = -Hinv @ v
            dT = -trGG[j, k] + t_w2[j, k] + q @ d2beta + (tr[j] if j == k else 0.0)
            hess[j, k] = hess[k, j] = 0.5 * da[j, k] / scale + 0.5 * dT
    if P.get("ldS_hess") is not None:
        hess -= 0.5 * P["ldS_hess"]
    if not fam.scale_known:
        hess -= _scale_schur(a, scale, P["v_tt"])
    return dataclasses.replace(ev, hess=_sym(hess))


def fisher_hessian(prob: Problem, ev: RemlEval) -> np.ndarray:
    """Hessian in rho without the terms in dW/deta (no n-sized work).

    Exact for the Gaussian family with identity link; for others it is the PQL/Fisher-type
    approximation (with the profiled scale's Schur term where the scale is estimated) that
    drops the derivatives of the weights (within a few percent of the exact Hessian near the
    optimum). The outer loop uses it only to decide that a step would be negligible.
    """
    if prob.family.identity_gaussian:
        h = with_hessian(prob, ev).hess
        assert h is not None
        return h
    d = prob.design
    P = ev.parts
    Hinv, Sb, a, tr, lam = P["Hinv"], P["Sb"], P["a"], P["tr"], P["lam"]
    da = np.diag(a) - 2.0 * (Sb.T @ (Hinv @ Sb))
    hess = da / (2.0 * ev.scale) + 0.5 * np.diag(tr) - 0.5 * _trace_pairs(d, Hinv, lam)
    if P.get("ldS_hess") is not None:
        hess = hess - 0.5 * P["ldS_hess"]
    if not prob.family.scale_known:
        hess -= _scale_schur(a, ev.scale, P["v_tt"])
    out = _sym(hess)
    assert out is not None
    return out


def profile_scale(
    fam: Family,
    y: np.ndarray,
    wt: np.ndarray,
    dp: float,
    Mp: int,
    n_eff: int,
    t0: float | None = None,
) -> tuple[float, float, float]:
    """The scale minimizing mgcv's REML score at fixed rho (beta does not depend on it).

    Minimizes ``V(t) = dp e^{-t} / 2 - ls(e^t) - (M_p / 2) t`` over ``t = log(scale)`` by
    safeguarded Newton from ``t0`` (default ``log(dp / (n - M_p))``); returns
    ``(scale, ls(scale), V''(t))``.
    """
    dof = max(n_eff - Mp, 1)
    t = float(np.log(max(dp, 1e-300) / dof)) if t0 is None or not np.isfinite(t0) else float(t0)

    def derivs(t: float) -> tuple[float, float, float]:
        phi = float(np.exp(t))
        ls0, ls1, ls2 = fam.ls(y, wt, phi)
        v_t = -dp / (2.0 * phi) - ls1 * phi - 0.5 * Mp
        v_tt = dp / (2.0 * phi) - ls2 * phi * phi - ls1 * phi
        return ls0, v_t, v_tt

    ls0, v_t, v_tt = derivs(t)
    if not fam.ls_log_concave:
        out = _profile_scale_by_value(derivs, t, ls0, v_t, v_tt, dp, Mp)
        starts = fam.log_scale_starts()
        if not starts:
            return out

        def value(t: float, ls0: float) -> float:
            return dp * float(np.exp(-t)) / 2.0 - ls0 - 0.5 * Mp * t

        # a multimodal profile: screen the family's starting points by value (one ls each)
        # and descend from the lowest when it is already below the minimum reached
        best_v = value(float(np.log(out[0])), out[1])
        v0, c, (l0, g, h) = min(
            ((value(c, d[0]), c, d) for c in starts for d in [derivs(c)]), key=lambda r: r[0]
        )
        if v0 < best_v - 1e-12 * abs(best_v):
            cand = _profile_scale_by_value(derivs, c, l0, g, h, dp, Mp)
            if value(float(np.log(cand[0])), cand[1]) < best_v:
                out = cand
        return out
    for _ in range(100):
        step = -v_t / v_tt if v_tt > 0 else -float(np.sign(v_t))
        step = float(np.clip(step, -2.0, 2.0))
        t_new = t + step
        ls_new, vt_new, vtt_new = derivs(t_new)
        # safeguard: halve a step that leaves a larger slope than it started from (not a
        # step already below the tolerance: there the slopes are rounding noise)
        n_half = 0
        tiny = abs(step) < 1e-13 * max(1.0, abs(t))
        while not tiny and abs(vt_new) > abs(v_t) and n_half < 50:
            step *= 0.5
            t_new = t + step
            ls_new, vt_new, vtt_new = derivs(t_new)
            n_half += 1
        t, ls0, v_t, v_tt = t_new, ls_new, vt_new, vtt_new
        if abs(step) < 1e-13 * max(1.0, abs(t)):
            break
    return float(np.exp(t)), float(ls0), float(v_tt)


def _profile_scale_by_value(
    derivs: Any, t: float, ls0: float, v_t: float, v_tt: float, dp: float, Mp: int
) -> tuple[float, float, float]:
    """:func:`profile_scale` for a family whose ``ls`` need not make ``V`` convex in
    ``log(scale)`` (Tweedie near p = 1, where the density is lumpy in the scale as a scaled
    Poisson's is): Newton steps (gradient steps where ``V'' <= 0``) halved until ``V``
    itself does not increase, to a local minimum."""

    def value(t: float, ls0: float) -> float:
        return dp * float(np.exp(-t)) / 2.0 - ls0 - 0.5 * Mp * t

    v = value(t, ls0)
    for _ in range(200):
        step = -v_t / v_tt if v_tt > 0 else -float(np.sign(v_t))
        step = float(np.clip(step, -2.0, 2.0))
        tiny = abs(step) < 1e-13 * max(1.0, abs(t))
        t_new = t + step
        ls_new, vt_new, vtt_new = derivs(t_new)
        v_new = value(t_new, ls_new)
        n_half = 0
        while not tiny and v_new > v + 1e-14 * abs(v) and n_half < 60:
            step *= 0.5
            tiny = abs(step) < 1e-13 * max(1.0, abs(t))
            t_new = t + step
            ls_new, vt_new, vtt_new = derivs(t_new)
            v_new = value(t_new, ls_new)
            n_half += 1
        t, ls0, v_t, v_tt, v = t_new, ls_new, vt_new, vtt_new, v_new
        if tiny or abs(step) < 1e-13 * max(1.0, abs(t)):
            break
    return float(np.exp(t)), float(ls0), float(v_tt)


def _scale_schur(a: np.ndarray, scale: float, v_tt: float) -> np.ndarray:
    """What profiling the scale removes from the rho Hessian: ``c c' / V_tt`` with
    ``c = d2 V / drho dlog(scale) = -a / (2 scale)``."""
    c = -a / (2.0 * scale)
    return np.outer(c, c) / v_tt


def _s_times(d: Design, lam: np.ndarray, j: int, v: np.ndarray) -> np.ndarray:
    """``lambda_j S_j v`` (S_j diagonal in the working basis)."""
    out = np.zeros_like(v)
    if d.dense:
        sl = d.slots[j]
        out[sl.cols] = lam[j] * sl.times(v[sl.cols])
        return out
    b = d.smooths[j]
    out[b.cols] = lam[j] * b.eig * v[b.cols]
    return out


def _trace_pairs(d: Design, Hinv: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``tr(H^{-1} lambda_j S_j H^{-1} lambda_k S_k)`` for all pairs."""
    m = d.n_sp
    out = np.zeros((m, m))
    if d.dense:
        slots = d.slots
        # H^{-1} lambda_j S_j restricted to block columns: tr(A_j A_k) over the two blocks
        for j, sj in enumerate(slots):
            Aj = lam[j] * sj.times(Hinv[sj.cols, :])  # (w_j, p): S_j H^{-1} rows
            for k in range(j, m):
                sk = slots[k]
                Ak = lam[k] * sk.times(Hinv[sk.cols, :])
                # tr(H^-1 S_j H^-1 S_k) = sum over (S_j H^-1)[:, cols_k] * (S_k H^-1)[:, cols_j]^T
                out[j, k] = out[k, j] = float(np.sum(Aj[:, sk.cols] * Ak[:, sj.cols].T))
        return out
    for j, bj in enumerate(d.smooths):
        sj = lam[j] * bj.eig
        for k in range(j, m):
            bk = d.smooths[k]
            sk = lam[k] * bk.eig
            blk = Hinv[bj.cols, bk.cols]
            out[j, k] = out[k, j] = float(np.sum(sj[:, None] * blk * blk * sk[None, :]))
    return out


def _sym(h: np.ndarray | None) -> np.ndarray | None:
    return None if h is None else (h + h.T) / 2.0


def fisher_system(prob: Problem, ev: RemlEval) -> tuple[np.ndarray, np.ndarray]:
    """``((X'W_f X + S_lambda)^{-1}, X'W_f X)`` with the Fisher weights ``W_f``.

    mgcv's ``gam.fit3`` forms ``Vp``, ``F`` and the edf of a fit with a non-canonical link
    from the Fisher weights at the converged coefficients (its ``weights``), while the REML
    score and its derivatives use the Newton weights (``working.weights``).
    """
    d = prob.design
    wf = prob.family.fisher_weights(ev.fit.eta, ev.fit.mu, prob.wt)
    XtWX = xtwx(d.X, wf)
    H = XtWX.copy()
    add_penalty(H, d.s_diag(ev.rho))
    return SPDFactor(H).inverse(), XtWX


def fletcher_scale(prob: Problem, ev: RemlEval, edf_total: float) -> float:
    """mgcv's reported scale (``sig2``) for an estimated scale: Fletcher's (2012) estimator
    ``Pearson / (n - edf) / (1 + mean(V'(mu) (y - mu) / V(mu)))`` (``gam.control``'s default
    ``scale.est = "fletcher"``)."""
    fam = prob.family
    y, mu, wt = prob.y, ev.fit.mu, prob.wt
    V = fam.variance(mu)
    pearson = float(np.sum(wt * (y - mu) ** 2 / V))
    est = pearson / (y.size - edf_total)
    s_bar = max(-0.9, float(np.mean(fam.var_derivs(mu)[0] * (y - mu) / V)))
    if np.isfinite(s_bar):
        est /= 1.0 + s_bar
    return est


def edf_per_block(prob: Problem, ev: RemlEval) -> dict[str, float]:
    """Effective degrees of freedom per block: block traces of ``H^{-1} X'WX``.

    For a non-canonical link both use the Fisher weights, as mgcv's (see
    :func:`fisher_system`).
    """
    d = prob.design
    P = ev.parts
    fam = prob.family
    if not fam.is_canonical:
        Hinv, XtWX = fisher_system(prob, ev)
    elif "Hinv" in P:
        Hinv = P["Hinv"]
        XtWX = P["XtWX"]
    else:
        XtWX = xtwx(d.X, fam.working(prob.y, ev.fit.eta, ev.fit.mu, prob.wt)[0])
        H = XtWX.copy()
        add_penalty(H, d.s_diag(ev.rho))
        Hinv = SPDFactor(H).inverse()
    F_diag = np.einsum("ij,ji->i", Hinv, XtWX)
    return {
        name: float(F_diag[cols].sum())
        for name, cols in zip(d.block_names, d.block_cols, strict=True)
    }
