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
    kind : {"re", "by-factor", "by-numeric"}
    by : str or None
        The ``by`` column.
    level : Any
        The level of a factor ``by`` this block belongs to.
    levels : tuple or None
        A random effect's levels (its columns, in order); None for a numeric random slope.
    """

    label: str
    kind: str
    by: str | None = None
    level: Any = None
    levels: tuple[Any, ...] | None = None

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
    if extra.kind == "by-factor":
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
