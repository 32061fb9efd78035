"""Smooth bases behind one small protocol: one module per mgcv ``bs`` code.

A basis type (:class:`BasisType`) turns a covariate and ``k`` (and optional knots) into a
:class:`Basis`: a frozen, data-free description that evaluates the *raw* design (before the
identifiability constraint), carries its unscaled penalty and knows how to predict. The
parts every basis shares are done once here, the way mgcv's ``smoothCon`` does them for every
``smooth.construct``: the sum-to-zero constraint on the raw design's column means and the
penalty scaling ``S / (norm(S, "O") / norm(X, "I")^2)`` (:func:`constrain`).

Adding a smooth type is one module in this package that defines a :class:`Basis` subclass
and a :class:`BasisType`, registered with :func:`register` (see docs/fitting.md, "Adding a
smooth type"). The P-spline ``ps`` keeps its stacked fast path in
:mod:`gamstore.fit.design`; every other type goes through :func:`constrain`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

import numpy as np

from gamstore.fit.basis import SmoothBasis, sum_to_zero_transform


class Basis(ABC):
    """A constructed raw basis of one smooth: everything needed to rebuild its design.

    Subclasses are frozen dataclasses; their fields are the frozen basis parameters
    (knots, and for ``tp`` the eigen-truncated thin-plate basis).
    """

    kind: ClassVar[str]

    @property
    @abstractmethod
    def width(self) -> int:
        """Columns of the raw design (mgcv's ``ncol(sm$X)``)."""

    @property
    @abstractmethod
    def penalty(self) -> np.ndarray:
        """Unscaled raw penalty, shape (width, width), symmetric."""

    @property
    @abstractmethod
    def rank(self) -> int:
        """Rank of the raw penalty (mgcv's ``sm$rank``)."""

    @abstractmethod
    def raw_design(self, x: np.ndarray) -> np.ndarray:
        """Raw design at covariate values ``x`` (n,), shape (n, width), as the fit builds it."""

    def predict_design(self, x: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
        """Raw design for prediction (mgcv's ``Predict.matrix``); the fit's rule by default."""
        return self.raw_design(x)

    @property
    @abstractmethod
    def knots(self) -> np.ndarray:
        """The knot vector ``FitResult.knots`` reports and ``fit(knots=...)`` accepts back:
        passing it reproduces this basis on the same data (mgcv's ``knots=`` meaning)."""

    @property
    def same_coordinates_as_knots(self) -> bool:
        """Whether equal :attr:`knots` mean equal raw basis functions on any rows.

        True for knot-defined bases (``ps``, ``cr``, ``cc``, ``cp``): a fold with frozen knots
        then has the parent's raw coordinates and a cross-fit β transfers. False for ``tp``,
        whose columns are also centred and scaled on the fit's own rows.
        """
        return True

    def extrapolation_range(self, fitted: np.ndarray | None = None) -> tuple[float, float] | None:
        """Covariate range beyond which ``predict`` extrapolates (warned), or None (periodic)."""
        if fitted is None or not fitted.size:
            return None
        return float(fitted.min()), float(fitted.max())

    def descriptor(self) -> dict[str, Any]:
        """Strict-JSON description (basis kind, width, knots) for records and views."""
        return {
            "kind": self.kind,
            "width": self.width,
            "rank": self.rank,
            "knots": [float(v) for v in self.knots],
        }


class BasisType(Protocol):
    """One mgcv ``bs`` code: how to construct its :class:`Basis` from data."""

    name: str
    min_k: int
    periodic: bool

    def raw_width(self, k: int) -> int:
        """Raw design columns for basis dimension k (``k - 1`` for ``cc``)."""
        ...

    def construct(self, x: np.ndarray, k: int, knots: np.ndarray | None) -> Basis:
        """Construct the basis of ``s(x, bs=name, k=k)`` on the fit's covariate values.

        ``knots``: None (placed from the data), or mgcv's ``knots=`` entry for the term
        (a range, or the full knot vector as :attr:`Basis.knots` reports it).
        """
        ...


_REGISTRY: dict[str, BasisType] = {}


def register(basis_type: BasisType) -> BasisType:
    """Add a basis type under its ``name`` (the ``bs`` code); returns it."""
    _REGISTRY[basis_type.name] = basis_type
    return basis_type


def basis_names() -> list[str]:
    """Registered ``bs`` codes."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_basis_type(bs: str) -> BasisType:
    """The registered basis type of a ``bs`` code; a clear error for an unknown one."""
    _load_builtin()
    try:
        return _REGISTRY[bs]
    except (KeyError, TypeError):
        raise ValueError(f"bs must be one of {sorted(_REGISTRY)}, got {bs!r}") from None


_BUILTIN = ("cc", "cp", "cr", "ps", "tp")


def _load_builtin() -> None:
    if not all(name in _REGISTRY for name in _BUILTIN):
        from gamstore.fit.bases import cc, cp, cr, ps, tp  # noqa: F401  (they register)


def constrain(raw: Basis, B: np.ndarray) -> SmoothBasis:
    """mgcv ``smoothCon`` on a constructed basis: penalty scaling and sum-to-zero constraint.

    ``B`` is the raw design on the fit's rows. The penalty is divided by
    ``S.scale = norm(S, "O") / norm(B, "I")^2``; the constraint row is the column means of
    ``B`` (columns with a zero mean kept unrotated, as mgcv's ``indi``).
    """
    n = B.shape[0]
    S0 = raw.penalty
    x_inf = float(np.abs(B).sum(axis=1).max()) if n else 1.0
    s_scale = float(np.abs(S0).sum(axis=0).max()) / x_inf**2
    col_means = B.sum(axis=0) / max(n, 1)
    T = sum_to_zero_transform(col_means)
    S_raw = S0 / s_scale
    S = T.T @ S_raw @ T
    S = (S + S.T) / 2.0
    return SmoothBasis(raw.knots, raw.width, T, S_raw, S, s_scale, raw.rank, col_means, impl=raw)


def as_vector(knots: Any, name: str) -> np.ndarray | None:
    """A ``knots`` entry as a float64 vector (None stays None); finite values required."""
    if knots is None:
        return None
    kn = np.asarray(knots, dtype=np.float64).ravel()
    if not np.isfinite(kn).all():
        raise ValueError(f"knots for {name}: values must be finite")
    return kn


def r_seq(lo: float, hi: float, n: int) -> np.ndarray:
    """R's ``seq(lo, hi, length = n)``: ``lo + i * by`` with the last value exactly ``hi``."""
    if n == 1:
        return np.array([lo])
    by = (hi - lo) / (n - 1)
    out = lo + np.arange(n, dtype=np.float64) * by
    out[-1] = hi
    return out


__all__ = [
    "Basis",
    "BasisType",
    "basis_names",
    "constrain",
    "get_basis_type",
    "register",
]
