"""Model matrix of an additive model: the parametric block plus one block per smooth.

Each smooth block is built in mgcv's reduced coordinates (``X_j = B_j T_j``,
``S_j = T_j' S_raw T_j``) and then rotated by the eigenvectors ``U_j`` of ``S_j`` into a
*working* basis where the penalty is diagonal. The rotation is orthogonal, so it changes
neither the fit nor the REML score; it makes ``S_lambda`` a vector and keeps the scaled
Cholesky of ``X'WX + S_lambda`` accurate for extreme smoothing parameters. Coefficients are
reported back in reduced (``U beta_w``) and raw (``T U beta_w``) coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamstore.fit.basis import SmoothBasis, build_smooth_basis, fill_design
from gamstore.fit.data import get_column, n_rows

PARAMETRIC = "(parametric)"


@dataclass(frozen=True)
class SmoothTerm:
    """Specification of one P-spline smooth ``s(term, k=...)``.

    Attributes
    ----------
    term : str
        Covariate column.
    k : int
        Basis dimension (default 10, as mgcv).
    """

    term: str
    k: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.term, str) or not self.term:
            raise TypeError(f"s(): term must be a non-empty column name, got {self.term!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 4:
            raise ValueError(f"s({self.term!r}): k must be an integer >= 4, got {self.k!r}")

    @property
    def label(self) -> str:
        """Block name, as mgcv labels the term: ``s(x0)``."""
        return f"s({self.term})"


@dataclass(frozen=True)
class SmoothBlock:
    """One smooth in the assembled design."""

    spec: SmoothTerm
    basis: SmoothBasis
    U: np.ndarray  # reduced -> working rotation, shape (k-1, k-1)
    eig: np.ndarray  # penalty eigenvalues in the working basis (zeros for the null space)
    cols: slice
    logdet_S: float  # log of the product of the positive eigenvalues of S_j

    @property
    def rank(self) -> int:
        """Penalty rank."""
        return self.basis.rank


@dataclass
class Design:
    """Assembled model matrix in the working basis plus what is needed to map back."""

    X: np.ndarray
    linear: list[str]
    smooths: list[SmoothBlock]
    n: int
    p: int
    initial_rho: np.ndarray  # mgcv initial.sp on this design (log scale)
    block_names: list[str] = field(default_factory=list)
    block_cols: list[slice] = field(default_factory=list)

    @property
    def n_sp(self) -> int:
        """Number of smoothing parameters."""
        return len(self.smooths)

    @property
    def null_space_dim(self) -> int:
        """``M_p``: unpenalized dimension of the whole model."""
        return self.p - sum(b.rank for b in self.smooths)

    @property
    def logdet_S_consts(self) -> np.ndarray:
        """``log|S_j|_+`` per smooth."""
        return np.array([b.logdet_S for b in self.smooths])

    @property
    def ranks(self) -> np.ndarray:
        """Penalty ranks per smooth."""
        return np.array([b.rank for b in self.smooths], dtype=np.float64)

    def s_diag(self, rho: np.ndarray) -> np.ndarray:
        """Diagonal of ``S_lambda`` in the working basis, shape (p,)."""
        d = np.zeros(self.p)
        for j, b in enumerate(self.smooths):
            d[b.cols] = np.exp(rho[j]) * b.eig
        return d

    def to_reduced(self, beta_w: np.ndarray) -> dict[str, np.ndarray]:
        """Working-basis coefficients -> reduced (constrained) coefficients per block."""
        out = {PARAMETRIC: beta_w[self.block_cols[0]].copy()}
        for b in self.smooths:
            out[b.spec.label] = b.U @ beta_w[b.cols]
        return out

    def to_raw(self, beta_w: np.ndarray) -> dict[str, np.ndarray]:
        """Working-basis coefficients -> raw B-spline coefficients per block."""
        out = {PARAMETRIC: beta_w[self.block_cols[0]].copy()}
        for b in self.smooths:
            out[b.spec.label] = b.basis.T @ (b.U @ beta_w[b.cols])
        return out

    def from_reduced(self, beta_red: dict[str, np.ndarray]) -> np.ndarray:
        """Reduced coefficients per block -> working-basis vector (for warm starts)."""
        out = np.empty(self.p)
        for name, cols in zip(self.block_names, self.block_cols, strict=True):
            v = np.asarray(beta_red[name], dtype=np.float64).ravel()
            if v.size != cols.stop - cols.start:
                raise ValueError(
                    f"beta for block {name!r} must have shape ({cols.stop - cols.start},), "
                    f"got ({v.size},)"
                )
            out[cols] = v
        for b in self.smooths:
            out[b.cols] = b.U.T @ out[b.cols]
        return out

    def predict_matrix(self, data: Any) -> np.ndarray:
        """Model matrix (working basis) for new data with the frozen bases."""
        n = n_rows(data)
        X = np.empty((n, self.p))
        X[:, 0] = 1.0
        for i, name in enumerate(self.linear):
            X[:, 1 + i] = get_column(data, name)
        for b in self.smooths:
            x = get_column(data, b.spec.term)
            X[:, b.cols] = b.basis.design(x, extrapolate=True) @ b.U
        return X


def _initial_sp(ldxx: np.ndarray, pen_blocks: list[tuple[slice, np.ndarray]]) -> np.ndarray:
    """mgcv ``initial.sp``: rough smoothing parameters from the sizes of X'X and S.

    ``ldxx`` is ``colSums(X^2)`` of the reduced design; ``pen_blocks`` holds each penalty's
    columns and its reduced S_j.
    """
    p = ldxx.size
    ldss = np.zeros(p)
    pen = np.zeros(p, dtype=bool)
    sp = np.zeros(len(pen_blocks))
    for i, (cols, S) in enumerate(pen_blocks):
        absS = np.abs(S)
        thresh = np.finfo(float).eps ** 0.8 * absS.max()
        ind = (absS.mean(axis=1) > thresh) & (absS.mean(axis=0) > thresh) & (np.diag(absS) > thresh)
        xx = ldxx[cols][ind]
        ss = np.diag(S)[ind]
        pen[cols] |= ind
        sp[i] = xx.mean() / ss.mean()
        ldss[cols] += sp[i] * np.diag(S)
    ind = (ldss > 0) & pen & (ldxx > 0)
    lx, ls = ldxx[ind], ldss[ind]
    if lx.size:
        while np.mean(lx / (lx + ls)) > 0.4:
            sp *= 10.0
            ls = ls * 10.0
        while np.mean(lx / (lx + ls)) < 0.4:
            sp /= 10.0
            ls = ls / 10.0
    return np.log(sp)


def build_design(
    data: Any,
    smooths: list[SmoothTerm],
    linear: list[str],
    knots: dict[str, Any] | None = None,
) -> Design:
    """Validate the covariates and assemble the working-basis design.

    Parameters
    ----------
    data : pandas.DataFrame or Mapping[str, array-like]
        Covariates.
    smooths : list of SmoothTerm
        Smooth terms, in model order.
    linear : list of str
        Unpenalized linear covariates (after the intercept).
    knots : dict or None
        Per covariate: a 2-value range or a full knot vector (frozen knots).

    Returns
    -------
    Design
    """
    n = n_rows(data)
    knots = dict(knots or {})
    unknown = sorted(set(knots) - {sm.term for sm in smooths})
    if unknown:
        raise ValueError(f"knots given for {unknown}, which are not smooth terms of the model")
    terms = [sm.term for sm in smooths]
    if len(set(terms)) != len(terms):
        raise ValueError(f"each covariate may have one smooth, got {terms}")
    if len(set(linear)) != len(linear) or set(linear) & set(terms):
        raise ValueError(f"linear terms {linear} repeat each other or a smooth covariate")
    p = 1 + len(linear) + sum(sm.k - 1 for sm in smooths)
    if n <= p:
        raise ValueError(f"data has {n} rows, fewer than the {p} coefficients of the model")
    X = np.empty((n, p))
    X[:, 0] = 1.0
    names = [PARAMETRIC]
    cols = [slice(0, 1 + len(linear))]
    for i, name in enumerate(linear):
        X[:, 1 + i] = get_column(data, name, role="linear covariate")
    start = 1 + len(linear)
    blocks: list[SmoothBlock] = []
    pen_blocks: list[tuple[slice, np.ndarray]] = []
    ldxx = np.empty(p)
    ldxx[cols[0]] = np.einsum("ij,ij->j", X[:, cols[0]], X[:, cols[0]])
    for sm in smooths:
        x = get_column(data, sm.term, role=f"covariate of {sm.label}")
        n_unique = np.unique(x).size
        if n_unique == 1:
            raise ValueError(f"column {sm.term!r} is constant: {sm.label} cannot be estimated")
        if n_unique < sm.k:
            raise ValueError(
                f"column {sm.term!r} has {n_unique} unique values, fewer than k = {sm.k} "
                f"needed by {sm.label}; lower k"
            )
        basis, extrapolate, B = build_smooth_basis(x, sm.k, knots.get(sm.term))
        sl = slice(start, start + sm.k - 1)
        pen_blocks.append((sl, basis.S))
        vals, vecs = np.linalg.eigh(basis.S)
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
        eig = vals.copy()
        eig[basis.rank :] = 0.0  # the null space is exact: the linear trend
        logdet = float(np.sum(np.log(vals[: basis.rank])))
        ldxx[sl] = fill_design(X[:, sl], x, basis, vecs, extrapolate, B)
        blocks.append(SmoothBlock(sm, basis, vecs, eig, sl, logdet))
        names.append(sm.label)
        cols.append(sl)
        start = sl.stop
    rho0 = _initial_sp(ldxx, pen_blocks) if blocks else np.zeros(0)
    return Design(X, list(linear), blocks, n, p, rho0, names, cols)
