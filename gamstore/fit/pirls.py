"""Penalized iteratively re-weighted least squares (PIRLS) at fixed smoothing parameters.

Minimises the penalized deviance ``D(beta) + beta' S_lambda beta`` for an exponential family,
with mgcv's ``glm.control`` convergence test and step halving. The working weights are the
family's: Fisher weights for a canonical link, mgcv's full Newton weights otherwise (with a
Fisher step wherever the Newton Hessian is indefinite, as ``gam.fit3``). The penalty is
diagonal in the working basis (see :mod:`gamstore.fit.design`), so it is passed as a vector.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gamstore.fit.families import Family
from gamstore.fit.linalg import SPDFactor, row_chunks, xtwx

logger = logging.getLogger("gamstore.fit.pirls")

MAX_HALF = 30


@dataclass(frozen=True)
class PirlsResult:
    """Converged (or capped) inner fit at one smoothing-parameter vector.

    Attributes
    ----------
    beta : numpy.ndarray
        Coefficients in the working basis, shape (p,).
    eta, mu : numpy.ndarray
        Linear predictor (including the offset) and mean, shape (n,).
    deviance : float
        Deviance at ``beta``.
    penalty : float
        ``beta' S_lambda beta``.
    iterations : int
        Number of PIRLS iterations (weighted least-squares solves).
    converged : bool
        False when the iteration cap stopped the loop first.
    """

    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    deviance: float
    penalty: float
    iterations: int
    converged: bool
    xtwx: np.ndarray | None = None  # X'WX at beta when it is already known (Gaussian)

    @property
    def pdev(self) -> float:
        """Penalized deviance."""
        return self.deviance + self.penalty


def _linear_predictor(X: np.ndarray, beta: np.ndarray, offset: np.ndarray) -> np.ndarray:
    eta = np.empty(X.shape[0])
    for sl in row_chunks(X.shape[0]):
        eta[sl] = X[sl] @ beta
    eta += offset
    return eta


def _xt(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros(X.shape[1])
    for sl in row_chunks(X.shape[0]):
        out += X[sl].T @ v[sl]
    return out


def pirls(
    X: np.ndarray | None,
    y: np.ndarray,
    wt: np.ndarray,
    offset: np.ndarray,
    family: Family,
    s_diag: np.ndarray,
    beta0: np.ndarray | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-8,
    gram: tuple[np.ndarray, np.ndarray] | None = None,
    xtwx0: np.ndarray | None = None,
    ztwz: float | None = None,
) -> PirlsResult:
    """Fit the penalized GLM at fixed smoothing parameters.

    Parameters
    ----------
    X : numpy.ndarray or None
        Working-basis model matrix, shape (n, p). None only for the identity-link Gaussian
        with ``gram`` (a design from moments, whose X is not formed): the deviance is then
        ``z'Wz - 2 beta'X'Wz + beta'X'WX beta`` with ``z = y - offset``, and the result
        carries no fitted values (``eta`` and ``mu`` empty; see
        :meth:`gamstore.fit.design.Design.linear_predictor`).
    y, wt, offset : numpy.ndarray
        Response, prior weights and offset, shape (n,).
    family : Family
        Family and link.
    s_diag : numpy.ndarray
        Diagonal of ``S_lambda`` in the working basis, shape (p,); or the whole matrix,
        shape (p, p), when a block has several penalties (a tensor product), which no one
        basis makes diagonal together.
    beta0 : numpy.ndarray or None
        Warm start; None starts from the family's ``mustart``.
    max_iter : int
        Iteration cap (a warm-start layer may lower it).
    tol : float
        Relative tolerance on the penalized deviance (mgcv: ``|d - d_old| < tol (|d| + 0.1)``).
    gram : tuple of numpy.ndarray or None
        Gaussian only: precomputed ``(X'WX, X'W(y - offset))`` with ``W = diag(wt)``. Both are
        independent of the smoothing parameters, so the outer loop forms them once per fit and
        each evaluation is a p x p solve plus O(np) for the fitted values.
    xtwx0 : numpy.ndarray or None
        ``X'WX`` at ``beta0`` (the outer loop has it from the REML evaluation that produced
        ``beta0``); used for the first iteration instead of recomputing it. Ignored without
        ``beta0``.
    ztwz : float or None
        With ``X=None``: ``z'Wz`` (``z = y - offset``) when already known (the fit's
        evaluations share it); None computes it.

    Returns
    -------
    PirlsResult
    """
    if X is None and (gram is None or not family.identity_gaussian):
        raise ValueError("pirls: X may be None only for an identity-link Gaussian with gram")
    p = X.shape[1] if X is not None else gram[0].shape[0]  # type: ignore[index]
    if s_diag.shape not in ((p,), (p, p)):
        raise ValueError(f"s_diag must have shape ({p},) or ({p}, {p}), got {s_diag.shape}")
    max_iter = max(1, int(max_iter))

    def pen(b: np.ndarray) -> float:
        if s_diag.ndim == 2:
            return float(b @ (s_diag @ b))
        return float(np.dot(s_diag * b, b))

    if family.identity_gaussian:
        # identity link: one weighted least-squares solve is the exact minimiser
        if gram is None:
            assert X is not None
            XtWX, XtWz = xtwx(X, wt), _xt(X, wt * (y - offset))
        else:
            XtWX, XtWz = gram
        H = XtWX.copy()
        add_penalty(H, s_diag)
        beta = SPDFactor(H).solve(XtWz)
        if X is None:
            if ztwz is None:
                z = y - offset
                ztwz = float(np.dot(wt * z, z))
            rss = ztwz - 2.0 * float(np.dot(beta, XtWz))
            rss += float(beta @ (XtWX @ beta))
            empty = np.empty(0)
            return PirlsResult(beta, empty, empty, max(rss, 0.0), pen(beta), 1, True, XtWX)
        eta = _linear_predictor(X, beta, offset)
        mu = family.mu(eta)
        dev = family.deviance(y, mu, wt)
        return PirlsResult(beta, eta, mu, dev, pen(beta), 1, True, XtWX)

    assert X is not None  # checked above: only the Gaussian branch goes without it
    if beta0 is not None:
        beta_old: np.ndarray | None = np.asarray(beta0, dtype=np.float64).copy()
        eta = _linear_predictor(X, beta_old, offset)  # type: ignore[arg-type]
        mu = family.mu(eta)
        pdev_old = family.deviance(y, mu, wt) + pen(beta_old)  # type: ignore[arg-type]
        if not np.isfinite(pdev_old):
            beta_old = None
    else:
        beta_old = None
    if beta_old is None:
        mu = family.initial_mu(y, wt)
        eta = family.eta_of_mu(mu)
        pdev_old = np.inf

    converged = False
    it = 0
    beta = np.zeros(p) if beta_old is None else beta_old
    dev = np.inf
    known = xtwx0 if beta_old is not None else None
    while it < max_iter:
        it += 1
        w, u = family.working(y, eta, mu, wt)
        if known is not None:
            if known.shape != (p, p):
                raise ValueError(f"xtwx0 must have shape ({p}, {p}), got {known.shape}")
            H = known.copy()
            known = None
        else:
            H = xtwx(X, w)
        add_penalty(H, s_diag)
        fac = SPDFactor(H)
        if not fac.positive_definite and not family.is_canonical:
            # the full Newton Hessian is indefinite here: a Fisher step, as gam.fit3 does
            w = family.fisher_weights(eta, mu, wt)
            u = wt * (y - mu) * family.mu_eta(eta) / family.variance(mu)
            H = xtwx(X, w)
            add_penalty(H, s_diag)
            fac = SPDFactor(H)
        # X'W z with z = eta - offset + u / w, written without the division
        rhs = _xt(X, w * (eta - offset) + u)
        beta_new = fac.solve(rhs)
        eta_new = _linear_predictor(X, beta_new, offset)
        mu_new = family.mu(eta_new)
        dev_new = family.deviance(y, mu_new, wt)
        pdev_new = dev_new + pen(beta_new)
        if beta_old is not None:
            n_half = 0
            while (not np.isfinite(pdev_new) or pdev_new > pdev_old) and n_half < MAX_HALF:
                beta_new = 0.5 * (beta_new + beta_old)
                eta_new = _linear_predictor(X, beta_new, offset)
                mu_new = family.mu(eta_new)
                dev_new = family.deviance(y, mu_new, wt)
                pdev_new = dev_new + pen(beta_new)
                n_half += 1
            if not np.isfinite(pdev_new) or pdev_new > pdev_old:
                # no descent possible from here: the previous iterate is the minimiser
                beta_new, pdev_new = beta_old, pdev_old
                eta_new = _linear_predictor(X, beta_new, offset)
                mu_new = family.mu(eta_new)
                dev_new = family.deviance(y, mu_new, wt)
                converged = True
        change = abs(pdev_new - pdev_old)
        beta, eta, mu, dev = beta_new, eta_new, mu_new, dev_new
        if converged or change < tol * (abs(pdev_new) + 0.1):
            converged = True
            break
        beta_old, pdev_old = beta_new, pdev_new
    if not converged:
        logger.debug("PIRLS stopped at the iteration cap (%d) before convergence", max_iter)
    return PirlsResult(beta, eta, mu, dev, pen(beta), it, converged)


def fit_at(
    X: np.ndarray | None,
    y: np.ndarray,
    wt: np.ndarray,
    offset: np.ndarray,
    family: Family,
    s_diag: np.ndarray,
    beta: np.ndarray,
    *,
    gram: tuple[np.ndarray, np.ndarray] | None = None,
    ztwz: float | None = None,
) -> PirlsResult:
    """The inner fit *at* ``beta``, without a PIRLS step: what :func:`pirls` returns when it
    stops at ``beta`` (the same linear predictor, mean, deviance and penalty, computed the
    same way), for a stored optimum whose ``beta`` is already PIRLS's answer.

    ``gram`` (Gaussian, identity link): ``(X'WX, X'W(y - offset))`` as for :func:`pirls`,
    whose ``X'WX`` the result carries. ``iterations`` is 0. ``X=None`` and ``ztwz``: as for
    :func:`pirls` (a Gaussian design from moments: deviance from them, no fitted values).
    """
    beta = np.asarray(beta, dtype=np.float64)
    pen = float(beta @ (s_diag @ beta)) if s_diag.ndim == 2 else float(np.dot(s_diag * beta, beta))
    if X is None:
        if gram is None or not family.identity_gaussian:
            raise ValueError("fit_at: X may be None only for an identity-link Gaussian with gram")
        XtWX, XtWz = gram
        if beta.shape != (XtWX.shape[0],):
            raise ValueError(f"beta must have shape ({XtWX.shape[0]},), got {beta.shape}")
        if ztwz is None:
            z = y - offset
            ztwz = float(np.dot(wt * z, z))
        rss = ztwz - 2.0 * float(np.dot(beta, XtWz)) + float(beta @ (XtWX @ beta))
        empty = np.empty(0)
        return PirlsResult(beta, empty, empty, max(rss, 0.0), pen, 0, True, XtWX)
    p = X.shape[1]
    if beta.shape != (p,):
        raise ValueError(f"beta must have shape ({p},), got {beta.shape}")
    eta = _linear_predictor(X, beta, offset)
    mu = family.mu(eta)
    dev = family.deviance(y, mu, wt)
    xtwx_known = None
    if family.identity_gaussian:
        xtwx_known = xtwx(X, wt) if gram is None else gram[0]
    return PirlsResult(beta, eta, mu, dev, pen, 0, True, xtwx_known)


def add_penalty(H: np.ndarray, s: np.ndarray) -> None:
    """``H += S_lambda`` in place, for its diagonal (p,) or its whole matrix (p, p)."""
    if s.ndim == 2:
        H += s
    else:
        H[np.diag_indices(H.shape[0])] += s
