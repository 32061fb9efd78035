"""Inference at the REML optimum, as mgcv 1.8-41 reports it.

* ``Vp`` (Bayesian posterior covariance, ``(X'WX + S)^-1 scale``) and ``Ve`` (frequentist,
  ``F Vp`` with ``F = (X'WX + S)^-1 X'WX``), in mgcv's coefficient coordinates;
* per-coefficient ``edf = diag(F)`` and ``edf1 = 2 edf - diag(F F)`` (the reference degrees of
  freedom of the smooth tests);
* ``edf2`` and ``Vc``: the smoothing-parameter uncertainty correction of Wood, Pya and Saefken
  (2016) that mgcv's ``logLik.gam``/``AIC`` use (``gam.fit3.post.proc`` + ``Vb.corr``);
* the ``summary.gam`` tables: Wald tests of the parametric coefficients and Wood's (2013) test
  of every smooth (``testStat``, p-values through :mod:`gamstore.fit.davies`).

Everything is computed from the final REML evaluation of a fit (``H^-1``, ``X'WX``,
``dbeta/drho`` and the REML Hessian in rho), in the solver's working basis and then rotated to
mgcv's reduced coordinates ``beta = Q beta_w`` (``Q`` block diagonal: identity on the
parametric block, the eigenvectors ``U_j`` per smooth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from gamstore.fit.davies import psum_chisq
from gamstore.fit.linalg import SPDFactor, xtwx
from gamstore.fit.pirls import add_penalty

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from gamstore.fit.design import Design
    from gamstore.fit.reml import Problem, RemlEval

_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class FinalPieces:
    """What inference needs from the final REML evaluation (working basis).

    Kept by a FitResult instead of the n x p design: everything here is p x p or smaller,
    except the references to the response, weights and offset vectors the fit already holds.
    """

    Hinv: np.ndarray  # (X'WX + S_lambda)^-1, unscaled
    XtWX: np.ndarray
    dbeta: np.ndarray | None  # d beta / d rho, (p, m)
    hess: np.ndarray | None  # exact REML Hessian in rho, (m, m)
    a: np.ndarray | None  # beta' lambda_j S_j beta, (m,)
    y: np.ndarray
    wt: np.ndarray
    offset: np.ndarray
    # estimated scale, not Gaussian identity: the REML scale and d2 REML / d log(scale)^2 there
    reml_scale: float = float("nan")
    v_tt: float = float("nan")


def final_pieces(prob: Problem, ev: RemlEval, *, hessian: bool) -> FinalPieces:
    """Collect :class:`FinalPieces` from a final evaluation (recomputing what is missing).

    ``hessian=True`` also computes the exact REML Hessian when the outer loop did not need
    it (non-Gaussian: one pass over the design), for ``edf2`` and the AIC.
    """
    from gamstore.fit.reml import fisher_system, with_hessian

    d = prob.design
    P = ev.parts
    if not prob.family.is_canonical:
        # mgcv: Vp, F and the edf from the Fisher weights (the REML used the Newton ones)
        Hinv, XtWX = fisher_system(prob, ev)
    elif "Hinv" in P:
        Hinv, XtWX = P["Hinv"], P["XtWX"]
    else:
        XtWX = xtwx(d.X, prob.family.fisher_weights(ev.fit.eta, ev.fit.mu, prob.wt))
        H = XtWX.copy()
        add_penalty(H, d.s_diag(ev.rho))
        Hinv = SPDFactor(H).inverse()
    hess = ev.hess
    if hessian and hess is None and "Hinv" in P and d.n_sp:
        hess = with_hessian(prob, ev).hess
    return FinalPieces(
        Hinv=Hinv,
        XtWX=XtWX,
        dbeta=P.get("dbeta"),
        hess=hess,
        a=P.get("a"),
        y=prob.y,
        wt=prob.wt,
        offset=prob.offset,
        reml_scale=float(ev.scale),
        v_tt=float(P.get("v_tt", float("nan"))),
    )


def rotation(d: Design) -> np.ndarray:
    """``Q`` with ``beta_reduced = Q beta_working`` (block diagonal, orthogonal)."""
    Q = np.eye(d.p)
    for b in d.smooths:
        Q[b.cols, b.cols] = b.U
    return Q


@dataclass(frozen=True)
class Covariances:
    """Posterior and frequentist covariance and the degrees of freedom, mgcv coordinates."""

    Vp: np.ndarray
    Ve: np.ndarray
    XtWX: np.ndarray
    edf: np.ndarray  # per coefficient
    edf1: np.ndarray


def covariances(d: Design, pieces: FinalPieces, scale: float) -> Covariances:
    """``Vp``, ``Ve``, ``X'WX``, per-coefficient ``edf`` and ``edf1`` (reduced coordinates)."""
    Q = rotation(d)
    Hinv = Q @ pieces.Hinv @ Q.T
    Hinv = (Hinv + Hinv.T) / 2.0
    XtWX = Q @ pieces.XtWX @ Q.T
    XtWX = (XtWX + XtWX.T) / 2.0
    F = Hinv @ XtWX
    Vp = Hinv * scale
    Ve = F @ Vp
    Ve = (Ve + Ve.T) / 2.0
    edf = np.diag(F).copy()
    edf1 = 2.0 * edf - np.einsum("ij,ji->i", F, F)
    return Covariances(Vp=Vp, Ve=Ve, XtWX=XtWX, edf=edf, edf1=edf1)


# -- smoothing-parameter uncertainty: edf2 and Vc ---------------------------------------------
def _dchol(dA: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Derivative of the upper Cholesky factor ``R`` of ``A = R'R`` along ``dA``."""
    Rinv = np.linalg.inv(R)
    M = Rinv.T @ dA @ Rinv
    phi = np.triu(M)
    phi[np.diag_indices_from(phi)] *= 0.5
    return phi @ R


def corrected_covariance(
    d: Design,
    pieces: FinalPieces,
    cov: Covariances,
    rho: np.ndarray,
    scale: float,
    scale_estimated: bool,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(Vc, edf2)`` as mgcv's ``gam.fit3.post.proc`` computes them, or None.

    ``Vc = Vp + dbeta/drho V_rho dbeta/drho' + scale * Vb.corr`` with ``V_rho`` the inverse
    REML Hessian (for an estimated scale the Hessian includes log(scale), as mgcv's outer
    Hessian does); ``edf2 = diag(Vc X'WX) / scale``, capped at ``sum(edf1)``.
    """
    m = d.n_sp
    if m == 0 or pieces.hess is None or pieces.dbeta is None:
        return None
    Q = rotation(d)
    db = Q @ pieces.dbeta  # (p, m), mgcv coordinates
    hess = np.asarray(pieces.hess, dtype=np.float64)
    if scale_estimated:
        # mgcv optimises (rho, log scale) jointly; our score profiles the scale out. The
        # joint Hessian at the optimum: [[profiled + a a' / (2 dof s^2), -a / (2 s)],
        # [-a' / (2 s), dof / 2]] (its rho block inverse equals the profiled inverse)
        if pieces.a is None:
            return None
        a = np.asarray(pieces.a, dtype=np.float64)
        if np.isfinite(pieces.v_tt):
            # Gamma, quasi, ...: V_tt from the profiled solve, at the REML scale
            phi, v_tt = pieces.reml_scale, pieces.v_tt
        else:
            phi = scale
            v_tt = (float(np.count_nonzero(pieces.wt > 0)) - d.null_space_dim) / 2.0
        c = -a / (2.0 * phi)
        full = np.empty((m + 1, m + 1))
        full[:m, :m] = hess + np.outer(c, c) / v_tt
        full[:m, m] = full[m, :m] = c
        full[m, m] = v_tt
        hess = full
    vals, vecs = np.linalg.eigh((hess + hess.T) / 2.0)
    vals, vecs = vals[::-1], vecs[:, ::-1]  # R's eigen: decreasing
    pos = vals > 0
    dinv = np.where(pos, 1.0 / np.sqrt(np.where(pos, vals, 1.0)), 0.0)
    rV = (dinv[:, None] * vecs.T)[:, :m]
    B = rV @ db.T
    Vc1 = B.T @ B
    dreg = 1.0 / np.sqrt(np.where(pos, vals, 0.0) + 0.1)
    Vr = (dreg[:, None] * vecs.T).T @ (dreg[:, None] * vecs.T)
    if scale_estimated:
        Vr = Vr[:m, :m]
    # Vb.corr: derivative of the inverse Cholesky factor of X'WX + S_lambda along each rho
    lam = np.exp(rho)
    H = cov.XtWX.copy()
    S_full = []
    for j, sl in enumerate(d.slots):
        S = np.zeros((d.p, d.p))
        U = d.smooths[sl.block].U
        if sl.mat is None:
            S[sl.cols, sl.cols] = (U * sl.diag) @ U.T
        else:
            S[sl.cols, sl.cols] = U @ sl.mat @ U.T
        S_full.append(lam[j] * S)
        H += lam[j] * S
    try:
        R = np.linalg.cholesky((H + H.T) / 2.0).T
    except np.linalg.LinAlgError:
        Vc2 = np.zeros_like(H)
    else:
        Rinv = np.linalg.inv(R)
        dRi = [-(Rinv @ _dchol(dH, R) @ Rinv) for dH in S_full]
        Vc2 = np.zeros_like(H)
        for k in range(m):
            for ell in range(m):
                Vc2 += Vr[k, ell] * (dRi[k] @ dRi[ell].T)
        Vc2 *= scale
    Vc = cov.Vp + Vc1 + Vc2
    edf2 = np.einsum("ij,ji->i", Vc, cov.XtWX) / scale
    if edf2.sum() > cov.edf1.sum():
        edf2 = cov.edf1.copy()
    return Vc, edf2


# -- Wood (2013) test of a smooth ------------------------------------------------------------
def _block_root(G: np.ndarray) -> np.ndarray:
    """An ``R`` with ``R'R = G`` (Cholesky; symmetric root if G is singular).

    mgcv uses the QR factor of its ``R[, block]``; every root of the same Gram matrix differs
    from it by an orthogonal factor on the left, which the test statistic does not see.
    """
    try:
        return np.linalg.cholesky(G).T
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(G)
        return np.sqrt(np.clip(vals, 0.0, None))[:, None] * vecs.T


def _recov(
    d: Design, cov: Covariances, rho: np.ndarray, scale: float, others: list[Any], m: Any
) -> tuple[np.ndarray, np.ndarray]:
    """mgcv's ``recov(b, rind, m)`` for ``reTest`` of block ``m`` when the model has other
    random effects (``others``), as the ``(Vp_mm, Ve_mm)`` that :func:`re_test` takes.

    mgcv treats the other random effects as part of the error: with ``G = X'WX`` and
    ``S_2`` their penalties (``S_2^-`` its pseudo-inverse), ``M = G + G[:, r] S_2^- G[r, :]``;
    ``Ve = Vp M Vp / scale``; ``Rm'Rm`` is the Schur complement, for ``m``'s columns, of
    ``M + S_1`` on the remaining columns (``S_1`` the other penalties), which
    :func:`re_test` receives as ``scale * inv(M + S_1)_mm``. (mgcv forms the same products
    from the R factor of the weighted model matrix; they depend on it only through
    ``R'R = X'WX``.)
    """
    p = d.p
    lam = np.exp(rho)
    S = np.zeros((p, p))
    rind = np.zeros(p, dtype=bool)
    other_blocks = {id(o) for o in others}
    for o in others:
        rind[o.cols] = True
    S2 = np.zeros((p, p))
    for j, slot in enumerate(d.slots):
        blk = d.smooths[slot.block]
        Sj = lam[j] * (blk.U @ slot.matrix() @ blk.U.T)  # reduced (mgcv) coordinates
        target = S2 if id(blk) in other_blocks else S
        target[slot.cols, slot.cols] += Sj
    G = (cov.XtWX + cov.XtWX.T) / 2.0
    S2r = S2[np.ix_(rind, rind)]
    ev, vec = np.linalg.eigh((S2r + S2r.T) / 2.0)
    pos = ev > ev.max() * _EPS**0.8
    S2inv = (vec[:, pos] / ev[pos]) @ vec[:, pos].T
    M = G + G[:, rind] @ S2inv @ G[rind, :]
    Ve = cov.Vp @ M @ cov.Vp / scale
    keep = ~rind
    A = M[np.ix_(keep, keep)] + S[np.ix_(keep, keep)]
    idx = np.flatnonzero(keep)
    mm = np.flatnonzero((idx >= m.cols.start) & (idx < m.cols.stop))
    Ainv = np.linalg.inv((A + A.T) / 2.0)
    return scale * Ainv[np.ix_(mm, mm)], Ve[m.cols, m.cols]


def re_test(
    p: np.ndarray, Vp: np.ndarray, Ve: np.ndarray, scale: float, res_df: float = -1.0
) -> tuple[float, float, float]:
    """mgcv's ``reTest`` for a smooth without penalty null space, no other random effects.

    mgcv's ``recov`` gives ``Rm``, the trailing block of the R factor of ``[R; sqrt(S)]`` with
    the smooth's columns last: ``Rm'Rm`` is the Schur complement of ``X'WX + S_lambda``, which
    is ``scale * inv(Vp_mm)``. So ``stat = p' inv(Vp_mm) p`` and the chi-square weights are
    the eigenvalues of ``inv(Vp_mm) Ve_mm``; the rank counts those above
    ``max * eps^0.8``. With an estimated scale the p-value is
    ``psum.chisq(0, c(ev, -stat/k), df = c(1, ..., 1, k))``, ``k = max(1, round(res_df))``.

    Returns
    -------
    (stat, p-value, rank)
    """
    Vp = (Vp + Vp.T) / 2.0
    L = np.linalg.cholesky(Vp)
    z = np.linalg.solve(L, p)
    stat = float(z @ z)
    # eigenvalues of inv(Vp) Ve = those of L^-1 Ve L^-T (symmetric)
    Li = np.linalg.solve(L, np.eye(L.shape[0]))
    M = Li @ ((Ve + Ve.T) / 2.0) @ Li.T
    ev = np.linalg.eigvalsh((M + M.T) / 2.0)[::-1]
    ev[ev < 0] = 0.0
    rank = int(np.sum(ev > ev.max() * _EPS**0.8)) if ev.size and ev.max() > 0 else 0
    if res_df > 0:
        k = max(1, int(round(res_df)))
        pval = psum_chisq(0.0, np.concatenate([ev, [-stat / k]]), np.r_[np.ones(ev.size), k])
    else:
        pval = psum_chisq(stat, ev)
    return stat, float(pval), float(rank)


def test_stat(
    p: np.ndarray, R: np.ndarray, V: np.ndarray, rank: float, res_df: float = -1.0
) -> tuple[float, float, float]:
    """mgcv's ``testStat(p, X, V, rank, type = 0, res.df)`` with ``R'R = X'X``.

    Returns
    -------
    (stat, p-value, rank)
        The Wald-type statistic, its p-value (F-based when ``res_df > 0``) and the reference
        degrees of freedom (``Ref.df``).
    """
    Vr = R @ V @ R.T
    Vr = (Vr + Vr.T) / 2.0
    vals, vecs = np.linalg.eigh(Vr)
    vals, vecs = vals[::-1].copy(), vecs[:, ::-1].copy()
    siv = np.sign(vecs[0, :])
    siv[siv == 0] = 1.0
    vecs = vecs * siv
    k = max(0, math.floor(rank))
    nu = abs(rank - k)
    k1 = k + 1 if nu > 0 else k
    r_est = int(np.sum(vals > vals.max() * _EPS**0.9))
    if r_est < k1:
        k1 = k = r_est
        nu = 0.0
        rank = float(r_est)
    vec = vecs[:, : max(k1, 1)].copy() if k1 < vecs.shape[1] else vecs.copy()
    if nu > 0 and k > 0:
        if k > 1:
            vec[:, : k - 1] = vec[:, : k - 1] / np.sqrt(vals[: k - 1])
        b12 = math.sqrt(max(0.0, 0.5 * nu * (1.0 - nu)))
        B = np.array([[1.0, b12], [b12, nu]])
        ev = np.diag(vals[k - 1 : k1] ** -0.5)
        B = ev @ B @ ev
        bvals, bvecs = np.linalg.eigh(B)
        bvals, bvecs = bvals[::-1], bvecs[:, ::-1]
        rB = bvecs @ np.diag(np.sqrt(bvals)) @ bvecs.T
        vec1 = vec.copy()
        vec1[:, k - 1 : k1] = (rB @ np.diag([-1.0, 1.0]) @ vec[:, k - 1 : k1].T).T
        vec[:, k - 1 : k1] = (rB @ vec[:, k - 1 : k1].T).T
    else:
        vec = vec * math.sqrt(1.0 / vals[0]) if k == 0 else vec[:, :k] / np.sqrt(vals[:k])
        vec1 = vec
        if k == 1:
            rank = 1.0
    Rp = R @ p
    stat = float(np.sum((vec.T @ Rp) ** 2))
    stat1 = float(np.sum((vec1.T @ Rp) ** 2))
    rank1 = rank
    pval = 2.0
    if nu > 0:
        if k1 == 1:
            rank1 = 1.0
            val = np.ones(1)
        else:
            val = np.ones(k1)
            rp = nu + 1.0
            val[k - 1] = (rp + math.sqrt(rp * (2.0 - rp))) / 2.0
            val[k1 - 1] = rp - val[k - 1]
        if res_df <= 0:
            pval = (psum_chisq(stat, val) + psum_chisq(stat1, val)) / 2.0
        else:
            k0 = max(1, round(res_df))
            dfs = np.r_[np.ones(val.size), k0]
            pval = (
                psum_chisq(0.0, np.r_[val, -stat / k0], dfs)
                + psum_chisq(0.0, np.r_[val, -stat1 / k0], dfs)
            ) / 2.0
    if pval > 1.0:
        if res_df <= 0:
            pval = (stats.chi2.sf(stat, rank1) + stats.chi2.sf(stat1, rank1)) / 2.0
        else:
            pval = (
                stats.f.sf(stat / rank1, rank1, res_df) + stats.f.sf(stat1 / rank1, rank1, res_df)
            ) / 2.0
    return stat, float(min(1.0, pval)), float(rank)


# -- summary.gam --------------------------------------------------------------------------
def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    if p < 2e-16:
        return "< 2e-16"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"


@dataclass
class GamSummary:
    """mgcv's ``summary.gam``: parametric and smooth tables plus fit statistics.

    Attributes
    ----------
    parametric : pandas.DataFrame
        Index: coefficient names; columns ``Estimate``, ``Std. Error``, ``t value`` (or
        ``z value``) and ``Pr(>|t|)`` (or ``Pr(>|z|)``).
    smooth : pandas.DataFrame
        Index: smooth labels; columns ``edf``, ``Ref.df``, ``F`` (or ``Chi.sq``), ``p-value``.
    parametric_terms : pandas.DataFrame
        One joint Wald test per parametric term (a factor's columns together; mgcv's
        ``pTerms.table``, what ``anova.gam`` prints): ``df``, ``F`` (or ``Chi.sq``),
        ``p-value``.
    r_sq : float
        Adjusted R-squared (``R-sq.(adj)``).
    dev_expl : float
        Proportion of the null deviance explained.
    reml : float
        ``-REML`` (mgcv's ``sp.criterion``).
    scale : float
        Scale estimate (1 for Poisson and binomial).
    n : int
        Rows used.
    residual_df : float
        ``n - sum(edf)``.
    family, link, formula : str
        Description lines.
    """

    parametric: pd.DataFrame
    smooth: pd.DataFrame
    parametric_terms: pd.DataFrame
    r_sq: float
    dev_expl: float
    reml: float
    scale: float
    n: int
    residual_df: float
    family: str
    link: str
    formula: str

    def __str__(self) -> str:
        lines = [
            "",
            f"Family: {self.family} ",
            f"Link function: {self.link} ",
            "",
            "Formula:",
            self.formula,
            "",
        ]
        if len(self.parametric):
            lines.append("Parametric coefficients:")
            lines += _table_lines(self.parametric, p_col=self.parametric.columns[3])
        lines.append("")
        if len(self.smooth):
            lines.append("Approximate significance of smooth terms:")
            lines += _table_lines(self.smooth, p_col="p-value")
        if len(self.parametric) or len(self.smooth):
            lines.append("---")
            lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
        lines.append("")
        lines.append(
            f"R-sq.(adj) = {self.r_sq:6.3g}   Deviance explained = {100 * self.dev_expl:.3g}%"
        )
        lines.append(f"-REML = {self.reml:.5g}  Scale est. = {self.scale:<8.5g}  n = {self.n}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def to_dataset(self) -> xr.Dataset:
        """Both tables and the statistics as one xarray Dataset."""
        import xarray as xr

        par = self.parametric.rename(columns=_column_key)
        smo = self.smooth.rename(columns=_column_key)
        ter = self.parametric_terms.rename(columns=_column_key)
        ds = xr.Dataset(
            {
                **{
                    f"p_{c}": (("coefficient",), par[c].to_numpy(dtype=np.float64))
                    for c in par.columns
                },
                **{f"s_{c}": (("smooth",), smo[c].to_numpy(dtype=np.float64)) for c in smo.columns},
                **{
                    f"t_{c}": (("parametric_term",), ter[c].to_numpy(dtype=np.float64))
                    for c in ter.columns
                },
            },
            coords={
                "coefficient": np.asarray(list(par.index), dtype=object),
                "smooth": np.asarray(list(smo.index), dtype=object),
                "parametric_term": np.asarray(list(ter.index), dtype=object),
            },
        )
        ds.attrs.update(
            {
                "r_sq": self.r_sq,
                "dev_expl": self.dev_expl,
                "reml": self.reml,
                "scale": self.scale,
                "n": self.n,
                "residual_df": self.residual_df,
                "family": self.family,
                "link": self.link,
                "formula": self.formula,
            }
        )
        return ds


def _column_key(name: str) -> str:
    return {
        "Estimate": "estimate",
        "Std. Error": "std_error",
        "t value": "t_value",
        "z value": "z_value",
        "Pr(>|t|)": "p_value",
        "Pr(>|z|)": "p_value",
        "edf": "edf",
        "Ref.df": "ref_df",
        "F": "F",
        "Chi.sq": "chi_sq",
        "p-value": "p_value",
        "df": "df",
    }.get(name, name)


def _table_lines(tab: pd.DataFrame, p_col: str) -> list[str]:
    rows = []
    for name, row in tab.iterrows():
        cells = [str(name)]
        for col in tab.columns:
            v = float(row[col])
            cells.append(
                _format_p(v) if col == p_col else f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
            )
        cells.append(_stars(float(row[p_col])))
        rows.append(cells)
    header = ["", *map(str, tab.columns), ""]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for r in [header, *rows]:
        first = r[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1], strict=True)]
        out.append(" ".join([first, *rest, r[-1]]).rstrip())
    return out


def null_deviance(family: Any, y: np.ndarray, wt: np.ndarray) -> float:
    """Deviance of the intercept-only model (mgcv: at the weighted mean of y)."""
    mu0 = float(np.sum(wt * y) / np.sum(wt))
    return float(family.deviance(y, np.full_like(y, mu0), wt))


def summarize(res: Any) -> GamSummary:
    """Build the :class:`GamSummary` of a FitResult."""
    import pandas as pd

    d = res._design
    cov = res._covariances
    scale = float(res.scale)
    est_disp = not res._family.scale_known
    pieces = res._pieces
    y, wt = pieces.y, pieces.wt
    n = int(y.size)
    residual_df = n - float(cov.edf.sum())
    coef = res.coef
    se = np.sqrt(np.diag(cov.Vp))
    par = d.block_cols[0]
    est = coef[par]
    t = est / se[par]
    if est_disp:
        pv = 2.0 * stats.t.sf(np.abs(t), residual_df)
        cols = ["Estimate", "Std. Error", "t value", "Pr(>|t|)"]
    else:
        pv = 2.0 * stats.norm.sf(np.abs(t))
        cols = ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
    ptab = pd.DataFrame(np.column_stack([est, se[par], t, pv]), index=d.param_labels, columns=cols)
    ttab = _term_tests(d, coef, cov.Vp, est_disp, residual_df)
    rows = []
    random = [b for b in d.smooths if b.extra is not None and b.extra.kind == "re"]
    for b in d.smooths:
        sl = b.cols
        edf_i = float(cov.edf[sl].sum())
        edf1_i = float(cov.edf1[sl].sum())
        others_random = [r for r in random if r is not b]
        if b.rank == sl.stop - sl.start:
            # no penalty null space (a cyclic smooth after centring, a random effect):
            # mgcv tests it as a random effect (summary.gam's reTest), the other random
            # effects' covariance first re-weighted as mgcv's recov does
            vp_mm, ve_mm = (
                _recov(d, cov, np.asarray(res.rho), scale, others_random, b)
                if others_random
                else (cov.Vp[sl, sl], cov.Ve[sl, sl])
            )
            stat, pval, ref_df = re_test(
                coef[sl], vp_mm, ve_mm, scale, residual_df if est_disp else -1.0
            )
            rows.append((b.label, edf_i, ref_df, stat / ref_df if est_disp else stat, pval))
            continue
        G = cov.XtWX[sl, sl]
        R = _block_root((G + G.T) / 2.0)
        V = cov.Vp[sl, sl]
        rank = min(float(sl.stop - sl.start), edf1_i)
        stat, pval, ref_df = test_stat(coef[sl], R, V, rank, residual_df if est_disp else -1.0)
        rows.append((b.label, edf_i, ref_df, stat / ref_df if est_disp else stat, pval))
    scol = "F" if est_disp else "Chi.sq"
    stab = pd.DataFrame(
        [r[1:] for r in rows],
        index=[r[0] for r in rows],
        columns=["edf", "Ref.df", scol, "p-value"],
    )
    fitted = res.fitted
    w = np.sqrt(wt)
    mean_y = float(np.sum(wt * y) / np.sum(wt))
    r_sq = 1.0 - float(np.var(w * (y - fitted), ddof=1)) * (n - 1) / (
        float(np.var(w * (y - mean_y), ddof=1)) * residual_df
    )
    null_dev = null_deviance(res._family, y, wt)
    dev_expl = (null_dev - float(res.deviance)) / null_dev
    return GamSummary(
        parametric=ptab,
        smooth=stab,
        parametric_terms=ttab,
        r_sq=r_sq,
        dev_expl=dev_expl,
        reml=float(res.reml),
        scale=scale,
        n=n,
        residual_df=residual_df,
        family=res._family.name,
        link=res._family.link,
        formula=res.formula,
    )


def _term_tests(
    d: Design, coef: np.ndarray, Vp: np.ndarray, est_disp: bool, residual_df: float
) -> pd.DataFrame:
    """mgcv's ``pTerms.table``: a Wald test of each parametric term's coefficients."""
    import pandas as pd

    rows = []
    j = 1  # after the intercept
    for t in d.linear:
        idx = np.arange(j, j + t.width)
        j += t.width
        b = coef[idx]
        V = Vp[np.ix_(idx, idx)]
        if b.size == 1:
            df = 1
            chi = float(b[0] * b[0] / V[0, 0])
        else:
            # pseudo-inverse at rank tolerance sqrt(eps), as mgcv's summary.gam
            vals, vecs = np.linalg.eigh((V + V.T) / 2.0)
            vals, vecs = vals[::-1], vecs[:, ::-1]
            df = int(np.sum(vals > math.sqrt(_EPS) * vals[0]))
            inv = np.zeros_like(vals)
            inv[:df] = 1.0 / vals[:df]
            chi = float(b @ (vecs * inv) @ vecs.T @ b)
        if est_disp:
            rows.append((t.name, df, chi / df, float(stats.f.sf(chi / df, df, residual_df))))
        else:
            rows.append((t.name, df, chi, float(stats.chi2.sf(chi, df))))
    cols = ["df", "F" if est_disp else "Chi.sq", "p-value"]
    return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=cols)


def family_loglik_ml(
    family: Any, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, reml_scale: float = 1.0
) -> float:
    """Maximised log-likelihood as mgcv's ``logLik.gam`` uses it (``-family$aic / 2``).

    Gaussian: the scale at its ML value ``deviance / n`` (n = all rows), plus the parameter
    count correction mgcv applies separately. Gamma and inverse Gaussian: R's ``family$aic``
    at ``disp = reml_scale`` (mgcv passes ``dev = reml.scale * sum(w)``), prior weights
    multiplying the log densities. Tweedie (``tw``): the series log density at the REML
    scale, weighted likewise. Quasi families: NaN (mgcv: NA, no likelihood).
    """
    from scipy.special import gammaln

    if family.name in ("quasipoisson", "quasibinomial"):
        return float("nan")
    if family.name == "tw":
        # mgcv tw()$aic: -2 sum(w * ldTweedie(y, mu, p, phi = reml scale)) + 2, and
        # logLik.gam adds back what that + 2 and the edf took
        return float(family.loglik(y, mu, wt, reml_scale))
    if family.name == "Gamma":
        a = 1.0 / reml_scale
        sc = mu * reml_scale
        ld = -gammaln(a) - a * np.log(sc) + (a - 1.0) * np.log(y) - y / sc
        return float(np.sum(wt * ld))
    if family.name == "inverse.gaussian":
        sw = float(np.sum(wt))
        return float(
            -0.5 * sw * (math.log(2.0 * math.pi * reml_scale) + 1.0) - 1.5 * np.sum(wt * np.log(y))
        )
    if family.name == "gaussian":
        nobs = y.size
        dev = float(np.dot(wt, (y - mu) ** 2))
        pos = wt > 0
        return -0.5 * nobs * (math.log(2.0 * math.pi * dev / nobs) + 1.0) + 0.5 * float(
            np.sum(np.log(wt[pos]))
        )
    return float(family.loglik(y, mu, wt, 1.0))


__all__ = [
    "Covariances",
    "FinalPieces",
    "GamSummary",
    "corrected_covariance",
    "covariances",
    "final_pieces",
    "summarize",
    "test_stat",
]
