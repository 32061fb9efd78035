"""Smooth terms beyond a plain P-spline: random effects and ``by`` variables (mgcv parity).

* ``s(g, bs="re")`` - mgcv's ``smooth.construct.re.smooth.spec``: the model matrix of
  ``~ g - 1`` (one indicator column per level of a factor, or the column itself when ``g`` is
  numeric: a random slope), the identity penalty scaled as ``smoothCon`` scales every
  penalty (``S / (norm(S, "O") / norm(X, "I")^2)``, 1 for indicators), no centring constraint,
  penalty rank = number of columns, no null space. A level absent from the fit's data has no
  column; ``predict`` gives such rows a zero random effect, as mgcv's ``predict.gam`` does
  (with its warning "factor levels ... not in original fit"; the same value as
  ``exclude = "s(g)"``).
* ``s(x, by=f)`` with a factor ``f`` - mgcv's ``smoothCon``: the P-spline basis is built on all
  rows (knots, ``S.scale`` and the centring constraint ``colMeans(X)`` from the unmultiplied
  design), then one copy per level of ``f`` multiplies the design by the level's indicator;
  each copy is its own block with its own smoothing parameter and keeps the constraint. The
  labels are ``s(x):fA`` (mgcv's ``paste(label, ":", by, level)``).
* ``s(x, by=z)`` with a numeric ``z`` - the design times ``z``; the centring constraint is
  dropped when ``z`` is not constant (mgcv: ``sd(by) > mean(by) * eps * 1000``), so the block
  has all k columns and a two-dimensional penalty null space. Label ``s(x):z``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gamstore.fit.basis import SmoothBasis
from gamstore.fit.data import _as_array, _raw_column, get_column

_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class TermExtra:
    """What a block is beyond a plain ``ps`` smooth (stored on :class:`SmoothBlock`).

    Attributes
    ----------
    label : str
        Block name (mgcv's smooth label).
    kind : {"re", "by-factor", "by-numeric", "te", "ti"}
        (a te/ti with ``by`` keeps its kind; ``level`` says whether the ``by`` is a factor)
    by : str or None
        The ``by`` column.
    level : Any
        The level of a factor ``by`` this block belongs to (None: no factor ``by``).
    levels : tuple or None
        A random effect's levels (its columns, in order); None for a numeric random slope.
    """

    label: str
    kind: str
    by: str | None = None
    level: Any = None
    levels: tuple[Any, ...] | None = None
    tensor: TensorParts | None = None  # te/ti: the construction (margins, T, penalties)

    @property
    def by_factor(self) -> bool:
        """One level of a factor ``by`` (an ``s`` or a te/ti): the blocks a fold can lose."""
        return self.kind == "by-factor" or (self.tensor is not None and self.level is not None)

    def spec(self) -> list[Any]:
        """Strict-JSON description (levels as R prints them), for keys and records."""
        from gamstore.fit.design import _r_level

        lv = None if self.levels is None else [_r_level(v) for v in self.levels]
        level = None if self.level is None else _r_level(self.level)
        return [self.kind, self.by, level, lv]


def _factor_values(data: Any, name: str, n: int) -> np.ndarray:
    arr = _as_array(_raw_column(data, name, "factor"))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"column {name!r} (factor) must have shape ({n},), got {arr.shape}")
    return arr


def indicator_columns(values: np.ndarray, levels: tuple[Any, ...]) -> np.ndarray:
    """``model.matrix(~ g - 1)``: one 0/1 column per level; a value not among the levels
    (a level unseen by the fit) gives a row of zeros."""
    index = {v: i for i, v in enumerate(levels)}
    codes = np.fromiter((index.get(v, -1) for v in values.tolist()), np.int64, values.shape[0])
    out = np.zeros((values.shape[0], len(levels)))
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1.0
    return out


def re_levels(data: Any, name: str) -> tuple[Any, ...] | None:
    """The levels of a random-effect column (R's order), or None for a numeric column.

    Unlike a parametric factor a random effect may have a single level.
    """
    from gamstore.fit.design import factor_levels

    try:
        return factor_levels(data, name)
    except ValueError as exc:  # fewer than 2 levels: fine for a random effect
        if "level(s)" not in str(exc):
            raise
    arr = _as_array(_raw_column(data, name, "random effect"))
    vals = sorted({v.item() if isinstance(v, np.generic) else v for v in arr.tolist()})
    if not vals:
        raise ValueError(f"column {name!r} (random effect) has no levels in the data")
    return tuple(vals)


def re_basis(X: np.ndarray) -> SmoothBasis:
    """The random-effect basis of a model matrix X: identity penalty, scaled as mgcv's
    ``smoothCon`` (``norm(I, "O") = 1`` over ``norm(X, "I")^2``), no constraint."""
    m = X.shape[1]
    x_inf = float(np.abs(X).sum(axis=1).max()) if X.size else 1.0
    s_scale = 1.0 / x_inf**2 if x_inf > 0 else 1.0
    S = np.eye(m) / s_scale
    return SmoothBasis(np.zeros(0), m, np.eye(m), S, S.copy(), s_scale, m, None)


def build_re(data: Any, term: Any, n: int) -> tuple[TermExtra, SmoothBasis, np.ndarray]:
    """``s(g, bs="re")``: (extra, basis, reduced design)."""
    levels = re_levels(data, term.term)
    if levels is None:
        X = get_column(data, term.term, role=f"covariate of {term.label}")[:, None].copy()
    else:
        X = indicator_columns(_factor_values(data, term.term, n), levels)
    return TermExtra(term.label, "re", None, None, levels), re_basis(X), X


def build_by(
    data: Any, term: Any, x: np.ndarray, n: int, knots: Any
) -> list[tuple[TermExtra, SmoothBasis, np.ndarray, np.ndarray]]:
    """``s(x, by=...)``: per block (extra, basis, reduced design, raw design B).

    The basis of any registered type (:mod:`gamstore.fit.bases`) is built on all rows from
    the unmultiplied design - knots, ``S.scale`` and the centring constraint - as mgcv's
    ``smoothCon`` builds it before applying ``by``.
    """
    from gamstore.fit.bases import constrain, get_basis_type
    from gamstore.fit.design import _r_level, factor_levels

    impl = get_basis_type(term.bs).construct(x, int(term.k), knots)
    B = impl.raw_design(x)
    base = constrain(impl, B)  # S.scale and the constraint from the unmultiplied design
    levels = factor_levels(data, term.by)
    out = []
    if levels is not None:
        BT = B @ base.T
        f = _factor_values(data, term.by, n)
        for lev in levels:
            mult = (f == lev).astype(np.float64)
            label = f"{term.label}:{term.by}{_r_level(lev)}"
            out.append((TermExtra(label, "by-factor", term.by, lev), base, BT * mult[:, None], B))
        return out
    z = get_column(data, term.by, role=f"by variable of {term.label}")
    sd = float(np.std(z, ddof=1)) if n > 1 else 0.0
    basis = base
    if sd > float(np.mean(z)) * _EPS * 1000:  # a non-constant by: mgcv drops the constraint
        w = base.S_raw.shape[0]
        basis = SmoothBasis(
            base.knots, base.k, np.eye(w), base.S_raw, base.S_raw.copy(), base.S_scale,
            base.rank, None, impl=impl,
        )  # fmt: skip
    label = f"{term.label}:{term.by}"
    out.append((TermExtra(label, "by-numeric", term.by), basis, (B @ basis.T) * z[:, None], B))
    return out


def by_multiplier(extra: TermExtra, data: Any, n: int) -> np.ndarray:
    """The ``by`` factor of new rows: the level's indicator or the numeric column."""
    if extra.by_factor:
        assert extra.by is not None
        return (_factor_values(data, extra.by, n) == extra.level).astype(np.float64)
    assert extra.by is not None
    return get_column(data, extra.by, role="by variable")


def re_predict(extra: TermExtra, term: str, data: Any, n: int) -> np.ndarray:
    """A random effect's columns for new rows (unseen levels: zero rows, as mgcv)."""
    if extra.levels is None:
        return get_column(data, term)[:, None]
    return indicator_columns(_factor_values(data, term, n), extra.levels)


def unseen_levels(extra: TermExtra, term: str, data: Any, n: int) -> list[str]:
    """Levels in new data that the random effect ``extra`` was not fitted on."""
    from gamstore.fit.design import _r_level

    if extra.levels is None:
        return []
    known = set(extra.levels)
    vals = _factor_values(data, term, n)
    return sorted({_r_level(v) for v in vals.tolist() if v not in known})


# ----------------------------------------------------------------------- tensor products


@dataclass(frozen=True)
class TensorParts:
    """A tensor product's construction (mgcv's ``smooth.construct.tensor.smooth.spec`` then
    ``smoothCon``), in the coordinates the design needs.

    Attributes
    ----------
    margins : tuple
        Per margin, the constructed 1-D basis (:class:`gamstore.fit.bases.Basis`).
    T : numpy.ndarray
        ``beta_raw = T beta_reduced``, with raw = coefficients of the product of the margins'
        *raw* bases (knot-defined, so the same across the folds of a LOSO run with frozen
        knots): te ``kron(XP_1, XP_2) Z`` (Z the sum-to-zero constraint), ti
        ``kron(T_1 XP_1, T_2 XP_2)`` (T_i each margin's constraint).
    S : tuple of numpy.ndarray
        The scaled penalties in reduced coordinates, one per margin.
    S_scale : tuple of float
        ``smoothCon``'s scale of each penalty.
    rank : int
        Rank of ``sum_j S_j`` (the block's width minus its null space).
    col_means : numpy.ndarray or None
        te: the constraint row (column means of the tensor design); ti: None.
    """

    margins: tuple[Any, ...]
    T: np.ndarray
    S: tuple[np.ndarray, ...]
    S_scale: tuple[float, ...]
    rank: int
    col_means: np.ndarray | None


def row_kron(mats: list[np.ndarray]) -> np.ndarray:
    """mgcv's ``tensor.prod.model.matrix``: row-wise Kronecker product (first margin slowest)."""
    out = mats[0]
    for M in mats[1:]:
        out = (out[:, :, None] * M[:, None, :]).reshape(out.shape[0], -1)
    return out


def _kron_all(mats: list[np.ndarray]) -> np.ndarray:
    out = mats[0]
    for M in mats[1:]:
        out = np.kron(out, M)
    return out


#: bases mgcv constructs with ``noterp``: no ``np`` reparameterization as te/ti margins
NOTERP_KINDS = frozenset({"cr", "cc", "cs"})


def _np_reparam(impl: Any, x: np.ndarray, T: np.ndarray | None) -> np.ndarray | None:
    """mgcv's ``np = TRUE`` margin reparameterization: coefficients become the margin's values
    at ``seq(min(x), max(x), length = ncol)``: ``XP = V diag(1/d) U'`` from the SVD of the
    margin's prediction matrix there; None when it is too ill-conditioned (mgcv then warns
    "reparameterization unstable for margin: not done")."""
    from gamstore.fit.bases import r_seq

    ncol = impl.width if T is None else T.shape[1]
    pts = r_seq(float(x.min()), float(x.max()), ncol)
    P = impl.predict_design(pts, x)
    if T is not None:
        P = P @ T
    u, dv, vt = np.linalg.svd(P)
    if dv[-1] / dv[0] < _EPS**0.66:
        return None
    return np.asarray(vt.T @ (u.T / dv[:, None]))


def build_tensor(
    data: Any, term: Any, n: int, knots: dict[str, Any]
) -> list[tuple[TermExtra, SmoothBasis, np.ndarray, TensorParts]]:
    """``te(...)`` / ``ti(...)``: per block (extra, basis, reduced design, parts); one block,
    or one per level of a factor ``by``.

    te margins are mgcv's ``smooth.construct`` (raw basis, unscaled penalty, no constraint);
    ti margins go through ``smoothCon`` first (scaled penalty, sum-to-zero constraint). Then,
    as mgcv: the ``np`` reparameterization per margin, each margin penalty divided by its
    largest eigenvalue, the row-wise Kronecker product of the margin designs and the
    penalties ``S_1 (x) I``, ``I (x) S_2``; then ``smoothCon`` on the product: each penalty
    scaled by ``norm(S, "O") / norm(X, "I")^2`` and, for te only, the sum-to-zero constraint.

    ``by`` (mgcv's ``smoothCon``, which builds the smooth, its penalty scaling and its
    constraint on the unmultiplied design before applying ``by``): a factor gives one copy
    per level, the design times the level's indicator, each centred as the plain te (ti: no
    constraint), labels ``te(x,z):fA``; a numeric column multiplies the design, and a te
    drops its constraint when the column is not constant (``sd(by) > mean(by) eps 1000``):
    all ``prod(k)`` columns, null space ``prod`` of the margins' null spaces.
    """
    from gamstore.fit.bases import constrain, get_basis_type
    from gamstore.fit.design import factor_levels

    bt = get_basis_type(term.bs)
    ti = term.kind == "ti"
    impls, Xm, Sm, Tm, XPs, nulls = [], [], [], [], [], []
    for x_name, k in zip(term.margins, term.ks, strict=True):
        x = get_column(data, x_name, role=f"covariate of {term.label}")
        impl = bt.construct(x, int(k), knots.get(term.knot_key(x_name)))
        B = impl.raw_design(x)
        if ti:
            mc = constrain(impl, B)  # smoothCon(absorb.cons = TRUE) of the margin
            T_i: np.ndarray | None = mc.T
            X_i, S_i = B @ mc.T, mc.S
            nulls.append(max(0, impl.width - impl.rank - 1))
        else:
            T_i, X_i, S_i = None, B, impl.penalty
            nulls.append(impl.width - impl.rank)
        # mgcv skips it for bases whose coefficients already are function values at the
        # knots (its noterp flag: cr, cc)
        XP = None if impl.kind in NOTERP_KINDS else _np_reparam(impl, x, T_i)
        if XP is None:
            XP = np.eye(X_i.shape[1])
        X_i = X_i @ XP
        S_i = XP.T @ S_i @ XP
        S_i = (S_i + S_i.T) / 2.0
        S_i = S_i / float(np.linalg.eigvalsh(S_i)[-1])
        impls.append(impl)
        Xm.append(X_i)
        Sm.append(S_i)
        Tm.append(XP if T_i is None else T_i @ XP)
        XPs.append(XP)
    dims = [X.shape[1] for X in Xm]
    X = row_kron(Xm)
    S_full = []
    for j in range(len(Sm)):
        S_full.append(_kron_all([Sm[i] if i == j else np.eye(dims[i]) for i in range(len(Sm))]))
    x_inf = float(np.abs(X).sum(axis=1).max()) if n else 1.0
    scales = tuple(float(np.abs(S).sum(axis=0).max()) / x_inf**2 for S in S_full)
    S_full = [S / sc for S, sc in zip(S_full, scales, strict=True)]
    w_raw = X.shape[1]
    null_dim = int(np.prod(nulls))
    col_means: np.ndarray | None = None
    z_by: np.ndarray | None = None
    centre = not ti
    by_levels = None if term.by is None else factor_levels(data, term.by)
    if term.by is not None and by_levels is None:
        z_by = get_column(data, term.by, role=f"by variable of {term.label}")
        sd = float(np.std(z_by, ddof=1)) if n > 1 else 0.0
        if sd > float(np.mean(z_by)) * _EPS * 1000:  # a non-constant by: no constraint
            centre = False
    if not centre:
        Z = np.eye(w_raw)
    else:
        from gamstore.fit.basis import sum_to_zero_transform

        col_means = X.sum(axis=0) / max(n, 1)
        Z = sum_to_zero_transform(col_means)
        null_dim = max(0, null_dim - 1)
    S_red = tuple((Z.T @ S @ Z + (Z.T @ S @ Z).T) / 2.0 for S in S_full)
    Xr = X @ Z
    T = _kron_all(Tm) @ Z
    width = Z.shape[1]
    rank = width - null_dim
    knots_all = np.concatenate([np.asarray(im.knots, dtype=np.float64) for im in impls])
    basis = SmoothBasis(knots_all, w_raw, T, S_full[0], S_red[0], scales[0], rank, col_means)
    parts = TensorParts(tuple(impls), T, S_red, scales, rank, col_means)
    if term.by is None:
        return [(TermExtra(term.label, term.kind, None, None, None, parts), basis, Xr, parts)]
    if z_by is not None:
        label = f"{term.label}:{term.by}"
        extra = TermExtra(label, term.kind, term.by, None, None, parts)
        return [(extra, basis, Xr * z_by[:, None], parts)]
    from gamstore.fit.design import _r_level

    assert by_levels is not None
    f = _factor_values(data, term.by, n)
    out = []
    for lev in by_levels:
        mult = (f == lev).astype(np.float64)
        label = f"{term.label}:{term.by}{_r_level(lev)}"
        extra = TermExtra(label, term.kind, term.by, lev, None, parts)
        out.append((extra, basis, Xr * mult[:, None], parts))
    return out


def tensor_predict(
    extra: TermExtra, term: Any, data: Any, fitted: dict[str, np.ndarray]
) -> np.ndarray:
    """A tensor block's constrained design ``rowkron(B_i(x_i)) T`` at new rows (each margin's
    own prediction rule, e.g. linear beyond a P-spline's range)."""
    parts = extra.tensor
    assert parts is not None
    mats = []
    for x_name, impl in zip(term.margins, parts.margins, strict=True):
        x = get_column(data, x_name)
        mats.append(impl.predict_design(x, fitted.get(x_name)))
    return np.asarray(row_kron(mats) @ parts.T)
