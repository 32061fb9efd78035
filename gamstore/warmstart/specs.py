"""Typed descriptions of what a blockwise penalized fit is made of.

A fit is a list of :class:`BlockSpec` (one per parameter block: the parametric block and one
per smooth), each with its design matrix, offset, penalties, nullspace dimensions and initial
log smoothing parameters, plus one :class:`FitOptions` holding every setting that changes the
optimum. The warm-start layer derives its keys from these objects
(:mod:`gamstore.warmstart.keys`) and never mutates the arrays they hold.

Penalties come in six kinds, mirroring the seed's ``PenaltyMatrix``:

* :class:`DensePenalty` - a full ``(p, p)`` matrix;
* :class:`DiagonalPenalty` - the diagonal of a ``(p, p)`` matrix;
* :class:`KroneckerPenalty` - ``left ⊗ right`` with ``left.n * right.n == p``;
* :class:`BlockwisePenalty` - a local square matrix on columns ``[col_start, col_end)`` of a
  ``total_dim``-wide block;
* :class:`LabeledPenalty` - an inner penalty plus a precision label (labelled penalties with
  the same label share one outer smoothing parameter);
* :class:`FixedPenalty` - an inner penalty with a fixed ``log_lambda`` (no outer slot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gamstore._validate import as_count, as_finite_float, as_int_at_least, as_opt_finite_float

__all__ = [
    "BlockSpec",
    "BlockwisePenalty",
    "DensePenalty",
    "DiagonalPenalty",
    "FitOptions",
    "FixedPenalty",
    "KroneckerPenalty",
    "LabeledPenalty",
    "Penalty",
    "WarmStartFamily",
    "cache_shape",
    "penalty_dim",
    "penalty_label",
    "physical_to_outer",
]


def _float_array(value: Any, field_name: str, ndim: int, shape_hint: str) -> np.ndarray:
    """Return ``value`` as a float64 ndarray of ``ndim`` dims, without copying when possible.

    Byte order and memory layout are kept (keys are layout-invariant); other dtypes are cast
    to float64 so a key is a function of the float64 values the fitter actually uses.
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy raises many types here
            raise TypeError(f"{field_name}: expected an array of shape {shape_hint}") from exc
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"{field_name}: expected a real numeric array of shape {shape_hint}, "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim != ndim:
        raise ValueError(
            f"{field_name}: expected a {ndim}-D array of shape {shape_hint}, got shape {arr.shape}"
        )
    if arr.dtype.kind != "f" or arr.dtype.itemsize != 8:
        arr = arr.astype(np.float64)
    return arr


def _plain_f8(value: Any, ndim: int) -> np.ndarray | None:
    """``value`` itself when :func:`_float_array` would return it unchanged (an 8-byte float
    ndarray of ``ndim`` dimensions), else None (the caller runs the full check)."""
    if (
        type(value) is np.ndarray
        and value.ndim == ndim
        and value.dtype.kind == "f"
        and value.dtype.itemsize == 8
    ):
        return value
    return None


def _square(value: Any, field_name: str) -> np.ndarray:
    arr = _float_array(value, field_name, 2, "(m, m)")
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{field_name}: expected a square (m, m) matrix, got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class DensePenalty:
    """A dense ``(p, p)`` penalty matrix ``S`` (the penalty is ``λ βᵀ S β``)."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", _square(self.matrix, "DensePenalty.matrix"))


@dataclass(frozen=True, eq=False)
class DiagonalPenalty:
    """A diagonal penalty given by its ``(p,)`` diagonal."""

    diagonal: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "diagonal", _float_array(self.diagonal, "DiagonalPenalty.diagonal", 1, "(p,)")
        )


@dataclass(frozen=True, eq=False)
class KroneckerPenalty:
    """A Kronecker-factored penalty ``left ⊗ right`` (tensor-product smooths)."""

    left: np.ndarray
    right: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "left", _square(self.left, "KroneckerPenalty.left"))
        object.__setattr__(self, "right", _square(self.right, "KroneckerPenalty.right"))


@dataclass(frozen=True, eq=False)
class BlockwisePenalty:
    """A local ``(m, m)`` penalty on columns ``[col_start, col_end)`` of a block of width
    ``total_dim`` (``m == col_end - col_start``)."""

    local: np.ndarray
    col_start: int
    col_end: int
    total_dim: int

    def __post_init__(self) -> None:
        local = _square(self.local, "BlockwisePenalty.local")
        start = as_count(self.col_start, "BlockwisePenalty.col_start")
        end = as_count(self.col_end, "BlockwisePenalty.col_end")
        total = as_count(self.total_dim, "BlockwisePenalty.total_dim")
        if not start <= end <= total:
            raise ValueError(
                "BlockwisePenalty.col_start/col_end: expected 0 <= col_start <= col_end <= "
                f"total_dim, got {start}, {end}, {total}"
            )
        if local.shape[0] != end - start:
            raise ValueError(
                f"BlockwisePenalty.local: expected shape ({end - start}, {end - start}) "
                f"(col_end - col_start), got {local.shape}"
            )
        object.__setattr__(self, "local", local)
        object.__setattr__(self, "col_start", start)
        object.__setattr__(self, "col_end", end)
        object.__setattr__(self, "total_dim", total)


@dataclass(frozen=True, eq=False)
class LabeledPenalty:
    """An inner penalty carrying a precision ``label``; equal labels share one outer ρ."""

    label: str
    inner: Penalty

    def __post_init__(self) -> None:
        if not isinstance(self.label, str):
            raise TypeError(f"LabeledPenalty.label: expected str, got {type(self.label).__name__}")
        _check_penalty(self.inner, "LabeledPenalty.inner")


@dataclass(frozen=True, eq=False)
class FixedPenalty:
    """An inner penalty with a fixed smoothing parameter ``exp(log_lambda)``; no outer slot."""

    log_lambda: float
    inner: Penalty

    def __post_init__(self) -> None:
        if isinstance(self.log_lambda, bool) or not isinstance(
            self.log_lambda, float | int | np.floating | np.integer
        ):
            raise TypeError(
                f"FixedPenalty.log_lambda: expected a float, got {type(self.log_lambda).__name__}"
            )
        object.__setattr__(self, "log_lambda", float(self.log_lambda))
        _check_penalty(self.inner, "FixedPenalty.inner")


Penalty = (
    DensePenalty
    | DiagonalPenalty
    | KroneckerPenalty
    | BlockwisePenalty
    | LabeledPenalty
    | FixedPenalty
)
_PENALTY_TYPES = (
    DensePenalty,
    DiagonalPenalty,
    KroneckerPenalty,
    BlockwisePenalty,
    LabeledPenalty,
    FixedPenalty,
)


def _check_penalty(value: Any, field_name: str) -> None:
    if not isinstance(value, _PENALTY_TYPES):
        raise TypeError(
            f"{field_name}: expected one of DensePenalty, DiagonalPenalty, KroneckerPenalty, "
            f"BlockwisePenalty, LabeledPenalty, FixedPenalty; got {type(value).__name__}"
        )


def penalty_dim(penalty: Penalty) -> int:
    """The coefficient width ``p`` the penalty acts on."""
    if isinstance(penalty, DensePenalty):
        return int(penalty.matrix.shape[0])
    if isinstance(penalty, DiagonalPenalty):
        return int(penalty.diagonal.shape[0])
    if isinstance(penalty, KroneckerPenalty):
        return int(penalty.left.shape[0] * penalty.right.shape[0])
    if isinstance(penalty, BlockwisePenalty):
        return penalty.total_dim
    return penalty_dim(penalty.inner)


def penalty_label(penalty: Penalty) -> str | None:
    """The precision label of a penalty (looking through :class:`FixedPenalty`), or None."""
    if isinstance(penalty, LabeledPenalty):
        return penalty.label
    if isinstance(penalty, FixedPenalty):
        return penalty_label(penalty.inner)
    return None


@dataclass(frozen=True, eq=False)
class BlockSpec:
    """One parameter block of a fit.

    Parameters
    ----------
    name : str
        Block name, e.g. ``"(parametric)"`` or ``"s(x0)"``. It enters keys and term
        identities but never a storage path.
    design : ndarray, shape (n, p)
        Design matrix in the solver's (reduced) coordinates. Any memory layout or byte
        order; non-float64 dtypes are cast to float64. Never mutated.
    offset : ndarray, shape (n,), optional
        Linear-predictor offset; None means zeros.
    penalties : sequence of Penalty
        Every penalty acting on this block; each must act on width ``p``.
    nullspace_dims : sequence of int
        Nullspace dimension of each penalty (or any per-block list the family uses).
    initial_log_lambdas : ndarray, shape (k,), optional
        Initial log smoothing parameters of the block (finite); None means empty.
    """

    name: str
    design: np.ndarray
    offset: np.ndarray | None = None
    penalties: Sequence[Penalty] = ()
    nullspace_dims: Sequence[int] = ()
    initial_log_lambdas: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"BlockSpec.name: expected str, got {type(self.name).__name__}")
        # (the error texts are formatted only when a value needs the full check)
        design = _plain_f8(self.design, 2)
        if design is None:
            design = _float_array(self.design, f"BlockSpec({self.name!r}).design", 2, "(n, p)")
        n, p = design.shape
        if self.offset is None:
            offset = np.zeros(n)
        else:
            offset = _float_array(self.offset, f"BlockSpec({self.name!r}).offset", 1, f"({n},)")
            if offset.shape[0] != n:
                raise ValueError(
                    f"BlockSpec({self.name!r}).offset: expected shape ({n},) to match the "
                    f"design rows, got {offset.shape}"
                )
        if isinstance(self.penalties, _PENALTY_TYPES):
            raise TypeError(
                f"BlockSpec({self.name!r}).penalties: expected a sequence of penalties, "
                "got a single penalty"
            )
        penalties = tuple(self.penalties)
        for i, pen in enumerate(penalties):
            if not isinstance(pen, _PENALTY_TYPES):
                _check_penalty(pen, f"BlockSpec({self.name!r}).penalties[{i}]")
            if penalty_dim(pen) != p:
                raise ValueError(
                    f"BlockSpec({self.name!r}).penalties[{i}]: expected a penalty acting on "
                    f"width {p} (the design columns), got width {penalty_dim(pen)}"
                )
        nullspace = tuple(
            d
            if type(d) is int and d >= 0
            else as_count(d, f"BlockSpec({self.name!r}).nullspace_dims[{i}]")
            for i, d in enumerate(self.nullspace_dims)
        )
        init: np.ndarray | None
        if self.initial_log_lambdas is None:
            init = np.zeros(0)
        else:
            init = _plain_f8(self.initial_log_lambdas, 1)
            if init is None:
                init = _float_array(
                    self.initial_log_lambdas,
                    f"BlockSpec({self.name!r}).initial_log_lambdas",
                    1,
                    "(k,)",
                )
            if not np.isfinite(init).all():
                raise ValueError(
                    f"BlockSpec({self.name!r}).initial_log_lambdas: expected finite values"
                )
        object.__setattr__(self, "design", design)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "penalties", penalties)
        object.__setattr__(self, "nullspace_dims", nullspace)
        object.__setattr__(self, "initial_log_lambdas", init)

    @property
    def n_rows(self) -> int:
        """Number of rows of the design."""
        return int(self.design.shape[0])

    @property
    def width(self) -> int:
        """Number of columns of the design (the block's reduced β width)."""
        return int(self.design.shape[1])


@dataclass(frozen=True)
class FitOptions:
    """Every option that changes the optimum of a blockwise fit (all of them enter the key).

    Parameters
    ----------
    inner_max_cycles : int
        Inner (PIRLS / block Newton) iteration budget; also the "full" inner cap.
    inner_tol : float
        Inner convergence tolerance.
    outer_max_iter : int
        Outer (smoothing parameter) iteration limit.
    outer_tol : float
        Outer gradient tolerance.
    outer_rel_cost_tol : float or None
        Optional relative cost-change stopping rule.
    ridge_floor : float
        Ridge added to the penalized Hessian's diagonal.
    ridge_policy : str
        How the ridge is applied (free text, hashed verbatim).
    use_reml : bool
        REML/LAML objective on (True) or a plain penalized likelihood (False).
    use_outer_hessian : bool
        Newton outer steps with the analytic outer Hessian.
    compute_covariance : bool
        Whether the fit computes the posterior covariance.
    early_exit_threshold : float or None
        Optional early-exit threshold of the outer search.
    outer_score_subsample : int or None
        Optional row subsample size used by the outer score.
    auto_outer_subsample : bool
        Let the fitter choose a subsample automatically.
    jeffreys_tau : float
        Strength τ of the joint Jeffreys/Firth term (0 = off); it moves the mode (#2612).
    """

    inner_max_cycles: int = 100
    inner_tol: float = 1e-8
    outer_max_iter: int = 200
    outer_tol: float = 1e-6
    outer_rel_cost_tol: float | None = None
    ridge_floor: float = 0.0
    ridge_policy: str = "none"
    use_reml: bool = True
    use_outer_hessian: bool = True
    compute_covariance: bool = True
    early_exit_threshold: float | None = None
    outer_score_subsample: int | None = None
    auto_outer_subsample: bool = False
    jeffreys_tau: float = 0.0
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Further optimum-changing settings as ``(name, value-string)`` pairs, hashed in order."""

    def __post_init__(self) -> None:
        as_int_at_least(self.inner_max_cycles, "FitOptions.inner_max_cycles", 1)
        as_int_at_least(self.outer_max_iter, "FitOptions.outer_max_iter", 1)
        as_finite_float(self.inner_tol, "FitOptions.inner_tol")
        as_finite_float(self.outer_tol, "FitOptions.outer_tol")
        as_opt_finite_float(self.outer_rel_cost_tol, "FitOptions.outer_rel_cost_tol")
        as_finite_float(self.ridge_floor, "FitOptions.ridge_floor")
        as_opt_finite_float(self.early_exit_threshold, "FitOptions.early_exit_threshold")
        as_finite_float(self.jeffreys_tau, "FitOptions.jeffreys_tau")
        if not isinstance(self.ridge_policy, str):
            raise TypeError("FitOptions.ridge_policy: expected str")
        for flag in ("use_reml", "use_outer_hessian", "compute_covariance", "auto_outer_subsample"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"FitOptions.{flag}: expected bool")
        if self.outer_score_subsample is not None:
            as_int_at_least(self.outer_score_subsample, "FitOptions.outer_score_subsample", 1)
        extra = tuple(self.extra)
        for i, item in enumerate(extra):
            if (
                not isinstance(item, tuple)
                or len(item) != 2
                or not all(isinstance(s, str) for s in item)
            ):
                raise TypeError(f"FitOptions.extra[{i}]: expected a (name, value) pair of str")
        object.__setattr__(self, "extra", extra)


@runtime_checkable
class WarmStartFamily(Protocol):
    """What the warm-start layer needs from a likelihood family.

    ``warm_start_fingerprint`` must cover every likelihood input that is not in the block
    specs (response, prior weights, trial counts, fixed dispersion, ...), e.g. built with
    :func:`gamstore.warmstart.keys.likelihood_fingerprint`. Return None when the family
    cannot key itself; with a store configured that is a configuration error (PR #4148).
    """

    @property
    def name(self) -> str: ...

    def warm_start_fingerprint(
        self, specs: Sequence[BlockSpec], options: FitOptions
    ) -> str | None: ...


def cache_shape(specs: Sequence[BlockSpec]) -> tuple[int, list[str], list[int]]:
    """``(n_rows of the first block or 0, block names, block widths)`` - the record shape."""
    n_rows = specs[0].n_rows if specs else 0
    return n_rows, [s.name for s in specs], [s.width for s in specs]


def physical_to_outer(specs: Sequence[BlockSpec]) -> list[int | None]:
    """Default map from each physical penalty (block order, then penalty order) to its outer
    ρ index.

    Fixed penalties get None; each other penalty gets the next free index, except that a
    labelled penalty reuses the index of the first earlier penalty with the same label.
    The number of outer parameters is ``max(index) + 1`` (0 when there is none).
    """
    out: list[int | None] = []
    by_label: dict[str, int] = {}
    next_slot = 0
    for spec in specs:
        for pen in spec.penalties:
            if isinstance(pen, FixedPenalty):
                out.append(None)
                continue
            label = penalty_label(pen)
            if label is not None and label in by_label:
                out.append(by_label[label])
                continue
            out.append(next_slot)
            if label is not None:
                by_label[label] = next_slot
            next_slot += 1
    return out
