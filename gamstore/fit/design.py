"""Model matrix of an additive model: the parametric block plus one block per smooth.

Each smooth block is built in mgcv's reduced coordinates (``X_j = B_j T_j``,
``S_j = T_j' S_raw T_j``) and then rotated by the eigenvectors ``U_j`` of ``S_j`` into a
*working* basis where the penalty is diagonal. The rotation is orthogonal, so it changes
neither the fit nor the REML score; it makes ``S_lambda`` a vector and keeps the scaled
Cholesky of ``X'WX + S_lambda`` accurate for extreme smoothing parameters. Coefficients are
reported back in reduced (``U beta_w``) and raw (``T U beta_w``) coordinates.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gamstore.fit.bases import constrain, get_basis_type
from gamstore.fit.bases.ps import ps_extrapolation_range, ps_predict_raw
from gamstore.fit.basis import (
    RawSmoothBasis,
    RowBlock,
    SmoothBasis,
    fill_design,
    fill_designs,
    finish_smooth_bases,
    raw_smooth_group,
    smooth_knots,
    sq_col_sums,
)
from gamstore.fit.data import _as_array, _raw_column, get_column, n_rows
from gamstore.fit.diagnostics import GamFitWarning, basis_dimension_note, unidentifiable_note
from gamstore.fit.linalg import row_chunks, xtwx
from gamstore.fit.terms import (
    TermExtra,
    build_by,
    build_re,
    build_tensor,
    by_multiplier,
    re_predict,
    tensor_predict,
)

PARAMETRIC = "(parametric)"
INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class ParamTerm:
    """One parametric term: a numeric column, or a factor coded with treatment contrasts.

    Attributes
    ----------
    name : str
        Column name.
    levels : tuple or None
        None for a numeric column; for a factor, its levels in R's order (the first is the
        reference level and gets no column).
    """

    name: str
    levels: tuple[Any, ...] | None = None

    @property
    def is_factor(self) -> bool:
        """True for a factor."""
        return self.levels is not None

    @property
    def labels(self) -> list[str]:
        """Column labels as R's ``model.matrix`` names them (``TypeMississippi``)."""
        if self.levels is None:
            return [self.name]
        return [f"{self.name}{_r_level(v)}" for v in self.levels[1:]]

    @property
    def width(self) -> int:
        """Number of model-matrix columns."""
        return 1 if self.levels is None else len(self.levels) - 1

    def columns(self, data: Any, n: int, role: str = "linear covariate") -> np.ndarray:
        """The term's model-matrix columns, shape (n, width)."""
        if self.levels is None:
            return get_column(data, self.name, role=role)[:, None]
        codes = factor_codes(data, self.name, self.levels, n)
        out = np.zeros((n, self.width))
        rows = np.flatnonzero(codes > 0)
        out[rows, codes[rows] - 1] = 1.0
        return out

    def spec(self) -> list[Any]:
        """Strict-JSON description (part of the warm-start keys)."""
        return [self.name, None if self.levels is None else [_r_level(v) for v in self.levels]]


def _r_level(v: Any) -> str:
    """A level as R prints it (``TRUE``/``FALSE`` for logicals)."""
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _is_factor_dtype(values: Any, arr: np.ndarray) -> bool:
    dtype = getattr(values, "dtype", None)
    if dtype is not None and str(dtype) == "category":
        return True
    return arr.dtype.kind in "bOUS" or str(getattr(dtype, "name", "")) in ("string", "boolean")


def factor_levels(data: Any, name: str) -> tuple[Any, ...] | None:
    """Levels of ``name`` when it is a factor column (string, category, bool), else None.

    As R: a pandas ``category`` keeps its category order (unused categories dropped, as
    ``model.frame`` does), strings are sorted (code-point order, R's C locale), booleans
    are ``(False, True)``. Integer columns stay numeric.
    """
    raw = _raw_column(data, name, "linear covariate")
    arr = _as_array(raw)
    if not _is_factor_dtype(raw, arr):
        return None
    pd = sys.modules.get("pandas")
    present: list[Any] = []
    missing = np.zeros(arr.shape[0], dtype=bool)
    if pd is not None:
        missing = np.asarray(pd.isna(arr), dtype=bool)
    used = set(arr[~missing].tolist())
    cats = getattr(getattr(raw, "cat", raw), "categories", None)
    if cats is not None:
        present = [c for c in cats.tolist() if c in used]
    elif arr.dtype.kind == "b" or used <= {True, False}:
        present = [v for v in (False, True) if v in used]
    else:
        try:
            present = sorted(used)
        except TypeError:
            raise TypeError(
                f"column {name!r} (factor) mixes value types; levels must be all strings"
            ) from None
    if len(present) < 2:
        raise ValueError(
            f"column {name!r} (factor) has {len(present)} level(s) in the data; "
            "a factor term needs at least 2"
        )
    return tuple(v.item() if isinstance(v, np.generic) else v for v in present)


def factor_codes(data: Any, name: str, levels: tuple[Any, ...], n: int) -> np.ndarray:
    """Level index (0 = reference) of every row; an unknown or missing level raises."""
    arr = _as_array(_raw_column(data, name, "factor"))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"column {name!r} (factor) must have shape ({n},), got {arr.shape}")
    index = {v: i for i, v in enumerate(levels)}
    codes = np.fromiter((index.get(v, -1) for v in arr.tolist()), dtype=np.int64, count=n)
    if (codes < 0).any():
        bad = arr[codes < 0]
        raise ValueError(
            f"column {name!r} (factor) has value(s) {sorted({str(v) for v in bad})[:5]} that "
            f"are not among its levels {[_r_level(v) for v in levels]}"
        )
    return codes


def parametric_terms(data: Any, linear: list[str]) -> list[ParamTerm]:
    """Classify the linear covariates: factors (levels as R chooses them) or numeric."""
    return [ParamTerm(name, factor_levels(data, name)) for name in linear]


@dataclass(frozen=True)
class SmoothTerm:
    """Specification of one smooth ``s(term, k=..., bs=..., by=...)``.

    Attributes
    ----------
    term : str
        Covariate column.
    k : int
        Basis dimension (default 10, as mgcv); not used by ``bs="re"``.
    bs : str
        mgcv basis code (:func:`gamstore.fit.bases.basis_names`): ``"ps"`` (P-spline, the
        default here), ``"tp"`` (mgcv's default), ``"cr"``, ``"cc"``, ``"cp"``; or ``"re"``:
        a random effect, one coefficient per level of a factor (identity penalty, one
        smoothing parameter; a numeric column is a random slope), see
        :mod:`gamstore.fit.terms`.
    by : str or None
        A factor column: one smooth (and one smoothing parameter) per level, each multiplied
        by the level's indicator and centred like ``s(term)`` (mgcv's factor ``by``). A
        numeric column: the smooth times that column (a varying coefficient), not centred.
    """

    term: str
    k: int = 10
    bs: str = "ps"
    by: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.term, str) or not self.term:
            raise TypeError(f"s(): term must be a non-empty column name, got {self.term!r}")
        if self.by is not None and (not isinstance(self.by, str) or not self.by):
            raise TypeError(f"s({self.term!r}): by must be a column name or None, got {self.by!r}")
        if self.by == self.term:
            raise ValueError(f"s({self.term!r}): by must be another column than the term")
        if self.bs == "re":
            if self.by is not None:
                raise ValueError(
                    f"s({self.term!r}, bs='re'): by= is not supported for random effects"
                )
            return
        bt = get_basis_type(self.bs)
        if (
            isinstance(self.k, bool)
            or not isinstance(self.k, (int, np.integer))
            or self.k < bt.min_k
        ):
            raise ValueError(
                f"s({self.term!r}, bs={self.bs!r}): k must be an integer >= {bt.min_k}, "
                f"got {self.k!r}"
            )

    @property
    def label(self) -> str:
        """Block name, as mgcv labels the term: ``s(x0)``."""
        return f"s({self.term})"

    @property
    def width(self) -> int:
        """Columns of the block after the sum-to-zero constraint (a plain smooth)."""
        return int(get_basis_type(self.bs).raw_width(int(self.k))) - 1

    @property
    def key(self) -> tuple[str, str | None]:
        """(covariate, by): two smooths of a model may not share it."""
        return (self.term, self.by)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the smooth reads: its covariate (several for a
        :class:`SurfaceTerm`), and its ``by`` column."""
        return (self.term,) if self.by is None else (self.term, self.by)

    @property
    def covariates_of(self) -> tuple[str, ...]:
        """The smooth's own covariates, without ``by`` (several for a :class:`SurfaceTerm`)."""
        return (self.term,)

    @property
    def knot_name(self) -> str:
        """Its key in ``knots=`` and ``FitResult.knots``: the covariate (``s(x,z)`` for a
        surface)."""
        return self.term

    def values(self, data: Any, role: str | None = None) -> np.ndarray:
        """The covariate values: shape (n,), or (n, d) for a surface."""
        if role is None:
            return get_column(data, self.term)
        return get_column(data, self.term, role=role)


@dataclass(frozen=True)
class SurfaceTerm(SmoothTerm):
    """One smooth of several covariates, mgcv's ``s(x, z, bs="tp")``: an isotropic
    thin-plate regression spline surface (one smoothing parameter).

    Attributes
    ----------
    covariates : tuple of str
        All covariate columns, in order (``term`` is the first).
    """

    covariates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        cov = self.covariates
        name = f"s({', '.join(map(repr, cov))})"
        if len(cov) < 2 or not all(isinstance(c, str) and c for c in cov):
            raise ValueError(f"{name}: needs two or more covariate column names")
        if len(set(cov)) != len(cov):
            raise ValueError(f"{name}: covariates must be distinct columns")
        if cov[0] != self.term:
            raise ValueError(f"{name}: term must be the first covariate")
        if self.bs != "tp":
            raise ValueError(
                f"{name}: a smooth of several covariates needs bs='tp', got {self.bs!r}"
            )
        if self.by is not None:
            raise ValueError(f"{name}: by= is not supported for a surface")
        super().__post_init__()

    @property
    def label(self) -> str:
        """mgcv's label: ``s(x,z)``."""
        return f"s({','.join(self.covariates)})"

    @property
    def key(self) -> tuple[str, str | None]:
        """One surface per label."""
        return (self.label, None)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.covariates

    @property
    def covariates_of(self) -> tuple[str, ...]:
        return self.covariates

    @property
    def knot_name(self) -> str:
        return self.label

    def values(self, data: Any, role: str | None = None) -> np.ndarray:
        cols = [
            get_column(data, c) if role is None else get_column(data, c, role=role)
            for c in self.covariates
        ]
        return np.column_stack(cols)


TENSOR_KINDS = ("te", "ti")


@dataclass(frozen=True)
class TensorTerm(SmoothTerm):
    """A tensor-product smooth ``te(x, z, ...)`` or ``ti(x, z, ...)`` of 1-D margins.

    Attributes
    ----------
    margins : tuple of str
        The margin covariates (two or more, distinct).
    ks : tuple of int
        Basis dimension per margin (mgcv's default 5 each).
    kind : {"te", "ti"}
        ``te``: the full tensor product, centred as a whole; ``ti``: the pure interaction,
        each margin centred before the product (mgcv's ``ti``).
    bs : str
        The margins' basis (registered 1-D basis, default ``"ps"``).
    by : str or None
        mgcv's ``te(x, z, by = ...)``: a factor gives one tensor product per level (each its
        own block ``te(x,z):fA`` with one ρ per margin, built and centred on all rows as
        ``smoothCon`` does before applying ``by``); a numeric column multiplies the tensor
        product (a varying coefficient surface), which a ``te`` then leaves uncentred when
        the column is not constant.
    """

    margins: tuple[str, ...] = ()
    ks: tuple[int, ...] = ()
    kind: str = "te"

    def __post_init__(self) -> None:
        if self.kind not in TENSOR_KINDS:
            raise ValueError(f"tensor kind must be one of {TENSOR_KINDS}, got {self.kind!r}")
        name = f"{self.kind}({', '.join(map(repr, self.margins))})"
        if len(self.margins) < 2 or not all(isinstance(m, str) and m for m in self.margins):
            raise ValueError(f"{name}: needs two or more covariate column names")
        if len(set(self.margins)) != len(self.margins):
            raise ValueError(f"{name}: margins must be distinct columns")
        if len(self.ks) != len(self.margins):
            raise ValueError(f"{name}: k must have one value per margin, got {self.ks!r}")
        if self.bs == "re":
            raise ValueError(f"{name}: margins must be a spline basis")
        if self.by is not None and (not isinstance(self.by, str) or not self.by):
            raise TypeError(f"{name}: by must be a column name or None, got {self.by!r}")
        if self.by is not None and self.by in self.margins:
            raise ValueError(f"{name}: by must be another column than the margins")
        bt = get_basis_type(self.bs)
        for kk in self.ks:
            if isinstance(kk, bool) or not isinstance(kk, (int, np.integer)) or kk < bt.min_k:
                raise ValueError(f"{name}: each k must be an integer >= {bt.min_k}, got {kk!r}")

    @property
    def label(self) -> str:
        """mgcv's label: ``te(x,z)``, ``ti(x,z)``."""
        return f"{self.kind}({','.join(self.margins)})"

    @property
    def key(self) -> tuple[str, str | None]:
        """One tensor term per label and ``by``."""
        return (self.label, self.by)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the term reads: its margins, and its ``by`` column."""
        return tuple(self.margins) + (() if self.by is None else (self.by,))

    @property
    def covariates_of(self) -> tuple[str, ...]:
        """The margins (a tensor product is a smooth of all of them)."""
        return tuple(self.margins)

    @property
    def width(self) -> int:
        """Columns of the block: te ``prod(k) - 1``, ti ``prod(k - 1)``."""
        bt = get_basis_type(self.bs)
        raw = [int(bt.raw_width(int(k))) for k in self.ks]
        if self.kind == "te":
            return int(np.prod(raw)) - 1
        return int(np.prod([r - 1 for r in raw]))

    def knot_key(self, margin: str) -> str:
        """The ``knots=`` / ``FitResult.knots`` key of a margin: ``te(x,z)[x]`` (its own, so a
        margin never takes the knots of an ``s(x)`` with another k); with ``by``:
        ``te(x,z):f[x]``, shared by every level (one basis, as mgcv builds it)."""
        by = "" if self.by is None else f":{self.by}"
        return f"{self.label}{by}[{margin}]"


@dataclass(frozen=True)
class SmoothBlock:
    """One smooth in the assembled design (a factor ``by`` gives one block per level)."""

    spec: SmoothTerm
    basis: SmoothBasis
    U: np.ndarray  # reduced -> working rotation, shape (k-1, k-1)
    eig: np.ndarray  # penalty eigenvalues in the working basis (zeros for the null space)
    cols: slice
    logdet_S: float  # log of the product of the positive eigenvalues of S_j
    # what the block is beyond a plain smooth: a factor-by level, a numeric by, a random
    # effect's levels (see gamstore.fit.terms)
    extra: TermExtra | None = None
    # a tensor product's penalties, one per margin, in the working basis (rows and columns
    # of the joint null space, the last ones, exactly zero); empty for one penalty (eig)
    pens: tuple[np.ndarray, ...] = ()

    @property
    def rank(self) -> int:
        """Penalty rank."""
        return self.basis.rank

    @property
    def label(self) -> str:
        """Block name, as mgcv labels the smooth: ``s(x)``, ``s(x):fA``, ``s(x):z``."""
        return self.spec.label if self.extra is None else self.extra.label

    @property
    def has_knots(self) -> bool:
        """A spline block (plain, or one level of a ``by``), not a random effect."""
        return self.spec.bs != "re"


@dataclass(frozen=True)
class PenaltySlot:
    """One smoothing parameter's penalty, on its block's working columns.

    Either a diagonal (``diag``, a single-penalty block, diagonal in its working basis) or a
    dense matrix (``mat``, one margin penalty of a tensor product).
    """

    cols: slice
    diag: np.ndarray | None
    mat: np.ndarray | None
    block: int

    def matrix(self) -> np.ndarray:
        """The block's penalty matrix (working basis)."""
        if self.mat is not None:
            return self.mat
        assert self.diag is not None
        return np.diag(self.diag)

    def times(self, v: np.ndarray) -> np.ndarray:
        """``S_j v`` for the block part ``v`` of a vector (or the columns of a matrix)."""
        if self.mat is None:
            assert self.diag is not None
            return self.diag * v if v.ndim == 1 else self.diag[:, None] * v
        return self.mat @ v

    def trace_with(self, A: np.ndarray) -> float:
        """``tr(S_j A)`` for the block's square ``A``."""
        if self.mat is None:
            assert self.diag is not None
            return float(np.dot(self.diag, np.diag(A)))
        return float(np.sum(self.mat * A.T))


class LazyRows(Protocol):
    """A design's model matrix kept as the rows of a larger one (a Gaussian LOSO fold built
    from moments, :meth:`gamstore.fit.foldview.FoldRows.gaussian_design`)."""

    def matrix(self) -> np.ndarray:
        """The (n, p) working-basis model matrix."""
        ...

    def linear_predictor(self, beta: np.ndarray) -> np.ndarray:
        """``X beta`` (no offset), shape (n,), without forming X."""
        ...


class _Matrix:
    """``Design.X``: the model matrix, formed on first read for a design built without it
    (``Design.lazy``); every other design holds it as a plain attribute value."""

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        X = obj.__dict__.get("_X")
        if X is None:
            lazy = obj.__dict__.get("lazy")
            if lazy is None:
                raise AttributeError("Design.X")
            X = obj.__dict__["_X"] = lazy.matrix()
        return X

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_X"] = value


@dataclass
class Design:
    """Assembled model matrix in the working basis plus what is needed to map back.

    ``X`` may be None with ``lazy`` set (a Gaussian fold built from the full data's
    moments): the fit needs only ``X'WX`` and ``X'Wy`` then, and ``X`` is formed on first
    read, for whatever needs it (inference on the fold fit, a design-hashed store key).
    """

    X: np.ndarray
    linear: list[ParamTerm]
    smooths: list[SmoothBlock]
    n: int
    p: int
    initial_rho: np.ndarray  # mgcv initial.sp on this design (log scale)
    block_names: list[str] = field(default_factory=list)
    block_cols: list[slice] = field(default_factory=list)
    # positions (in the caller's data) of the rows omitted for missing values
    dropped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # each smooth's covariate values (references, for plots' rugs)
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    # a plain P-spline's fitted covariate (min, max), as prediction reads them (filled on
    # first prediction, or given by a LOSO fold from moments: gamstore.fit.foldview)
    covariate_ranges: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # the model matrix's source when X was not formed (see the class docstring)
    lazy: LazyRows | None = field(default=None, repr=False, compare=False)

    def fitted_values_of(self, b: SmoothBlock) -> np.ndarray | None:
        """What prediction needs of a smooth's fitted covariate values (its
        ``extrapolation_range``): a plain P-spline reads their minimum and maximum only, so
        those two values (computed once per design: a LOSO fold predicts its held-out rows
        twice); other bases the values themselves."""
        name = b.spec.knot_name
        if b.spec.bs != "ps" or b.extra is not None:
            return self.covariates.get(name)
        rng = self.covariate_ranges.get(name)
        if rng is None:
            x = self.covariates.get(name)
            if x is None:
                return None
            rng = np.array([x.min(), x.max()]) if x.size else np.zeros(0)
            self.covariate_ranges[name] = rng
        return rng

    @property
    def has_matrix(self) -> bool:
        """Whether ``X`` is formed (False: a design from moments whose X was never read)."""
        return self.__dict__.get("_X") is not None

    def linear_predictor(self, beta: np.ndarray) -> np.ndarray:
        """``X beta`` (no offset), shape (n,): by rows of ``X``, or from ``lazy`` without
        forming it."""
        if not self.has_matrix and self.lazy is not None:
            return np.asarray(self.lazy.linear_predictor(beta), dtype=np.float64)
        X = self.X
        out = np.empty(X.shape[0])
        for sl in row_chunks(X.shape[0]):
            out[sl] = X[sl] @ beta
        return out

    @property
    def param_labels(self) -> list[str]:
        """Names of the parametric columns, as mgcv's ``names(coef(b))``."""
        return [INTERCEPT] + [lab for t in self.linear for lab in t.labels]

    @property
    def coef_labels(self) -> list[str]:
        """Names of all coefficients, as mgcv's ``names(coef(b))`` (``s(x).1`` ...)."""
        out = self.param_labels
        for b in self.smooths:
            out += [f"{b.label}.{i + 1}" for i in range(b.cols.stop - b.cols.start)]
        return out

    @property
    def has_factors(self) -> bool:
        """True when a parametric term is a factor."""
        return any(t.is_factor for t in self.linear)

    # warnings found while building (k above the unique values, basis functions with no data)
    notes: list[GamFitWarning] = field(default_factory=list)

    @property
    def slots(self) -> list[PenaltySlot]:
        """One entry per smoothing parameter, in ρ order (a tensor product has one per
        margin)."""
        out: list[PenaltySlot] = []
        for i, b in enumerate(self.smooths):
            if b.pens:
                out.extend(PenaltySlot(b.cols, None, P, i) for P in b.pens)
            else:
                out.append(PenaltySlot(b.cols, b.eig, None, i))
        return out

    @property
    def dense(self) -> bool:
        """Whether some block has several penalties (``S_lambda`` is then not diagonal)."""
        return any(b.pens for b in self.smooths)

    @property
    def n_sp(self) -> int:
        """Number of smoothing parameters."""
        return sum(max(1, len(b.pens)) for b in self.smooths)

    def rho_labels(self) -> list[str]:
        """One label per smoothing parameter, in ρ order: the block's name for a block with
        one penalty (``s(x)``, ``s(x):fA``); for a tensor product, one per margin, the block's
        name then the margin in brackets (``te(x,z)[x]``, ``te(x,z):fA[z]``), the
        convention of :meth:`TensorTerm.knot_key`."""
        from gamstore.rhonames import block_rho_labels

        out: list[str] = []
        for b in self.smooths:
            margins = tuple(getattr(b.spec, "margins", ()) or ())
            out.extend(block_rho_labels(b.label, max(1, len(b.pens)), margins))
        return out

    def block_slots(self) -> list[tuple[int, ...]]:
        """Per smooth block, the indices of its smoothing parameters."""
        out, j = [], 0
        for b in self.smooths:
            m = max(1, len(b.pens))
            out.append(tuple(range(j, j + m)))
            j += m
        return out

    def logdet_S(self, rho: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``log|S_lambda|_+`` with its gradient and Hessian in ρ.

        A single-penalty block contributes ``rank rho_j + log|S_j|_+`` (linear in ρ). A
        block with several penalties (a tensor product) contributes ``log det`` of
        ``sum_j lambda_j S_j`` on its range space (the first ``rank`` working columns: the
        working basis puts the joint null space last), whose derivatives are
        ``lambda_j tr(M^-1 S_j)`` and ``-lambda_j lambda_k tr(M^-1 S_j M^-1 S_k)`` (+ the
        first on the diagonal).
        """
        m = self.n_sp
        grad = np.zeros(m)
        hess = np.zeros((m, m))
        val = 0.0
        for b, js in zip(self.smooths, self.block_slots(), strict=True):
            if not b.pens:
                j = js[0]
                val += b.rank * float(rho[j]) + b.logdet_S
                grad[j] = b.rank
                continue
            r = b.rank
            lam = np.exp(rho[list(js)])
            Ps = [P[:r, :r] for P in b.pens]
            M = sum(lj * Pj for lj, Pj in zip(lam, Ps, strict=True))
            # Jacobi scaling keeps the factorization accurate for disparate lambdas
            dsc = 1.0 / np.sqrt(np.diag(M))
            Ms = (M * dsc[:, None]) * dsc[None, :]
            ev = np.linalg.eigvalsh((Ms + Ms.T) / 2.0)
            val += float(np.sum(np.log(ev))) - 2.0 * float(np.sum(np.log(dsc)))
            Minv = np.linalg.inv(Ms)
            Minv = (Minv * dsc[:, None]) * dsc[None, :]
            A = [lj * (Minv @ Pj) for lj, Pj in zip(lam, Ps, strict=True)]
            for a, ja in enumerate(js):
                grad[ja] = float(np.trace(A[a]))
                for c, jc in enumerate(js):
                    hess[ja, jc] = -float(np.sum(A[a] * A[c].T))
                hess[ja, ja] += grad[ja]
        return val, grad, hess

    @property
    def null_space_dim(self) -> int:
        """``M_p``: unpenalized dimension of the whole model."""
        return self.p - sum(b.rank for b in self.smooths)

    def s_diag(self, rho: np.ndarray) -> np.ndarray:
        """``S_lambda`` in the working basis: its diagonal (p,), or the whole (p, p) matrix
        when a block has several penalties (:attr:`dense`)."""
        if self.dense:
            S = np.zeros((self.p, self.p))
            for j, sl in enumerate(self.slots):
                S[sl.cols, sl.cols] += np.exp(rho[j]) * sl.matrix()
            return S
        d = np.zeros(self.p)
        for j, b in enumerate(self.smooths):
            d[b.cols] = np.exp(rho[j]) * b.eig
        return d

    def penalty_matrix(self, j: int) -> np.ndarray:
        """``S_j`` (unit lambda) in the working basis, shape (p, p)."""
        sl = self.slots[j]
        S = np.zeros((self.p, self.p))
        S[sl.cols, sl.cols] = sl.matrix()
        return S

    def to_reduced(self, beta_w: np.ndarray) -> dict[str, np.ndarray]:
        """Working-basis coefficients -> reduced (constrained) coefficients per block."""
        out = {PARAMETRIC: beta_w[self.block_cols[0]].copy()}
        for b in self.smooths:
            out[b.label] = b.U @ beta_w[b.cols]
        return out

    def to_raw(self, beta_w: np.ndarray) -> dict[str, np.ndarray]:
        """Working-basis coefficients -> raw B-spline coefficients per block."""
        out = {PARAMETRIC: beta_w[self.block_cols[0]].copy()}
        for b in self.smooths:
            out[b.label] = b.basis.T @ (b.U @ beta_w[b.cols])
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
        j = 1
        for t in self.linear:
            X[:, j : j + t.width] = t.columns(data, n, role="covariate")
            j += t.width
        outside: list[str] = []
        for b in self.smooths:
            if b.extra is not None and b.extra.tensor is not None:
                Xb = tensor_predict(b.extra, b.spec, data, self.covariates)
                if b.extra.by is not None:
                    Xb = Xb * by_multiplier(b.extra, data, n)[:, None]
                X[:, b.cols] = Xb @ b.U
                continue
            if b.extra is not None and b.extra.kind == "re":
                # unseen levels: zero rows, the random effect's mean (mgcv's predict.gam)
                X[:, b.cols] = re_predict(b.extra, b.spec.term, data, n) @ b.U
                continue
            x = b.spec.values(data)
            fitted = self.fitted_values_of(b)
            Xb = predict_basis(b.basis, x, fitted)
            if b.extra is not None:
                Xb = Xb * by_multiplier(b.extra, data, n)[:, None]
            X[:, b.cols] = Xb @ b.U
            rng = extrapolation_range(b.basis, fitted)
            if rng is None:  # periodic: values outside the period wrap
                continue
            lo, hi = rng
            n_out = int(np.count_nonzero((x < lo) | (x > hi)))
            note = f"{b.spec.term}: {n_out} of {n} outside [{lo:.6g}, {hi:.6g}]"
            if n_out and note not in outside:
                outside.append(note)
        if outside:
            warnings.warn(
                "predict: extrapolating beyond the fitted range ("
                + "; ".join(outside)
                + "); the smooths continue there as straight lines (ps, cr) or as mgcv's tp "
                "formula does",
                ExtrapolationWarning,
                stacklevel=3,  # the line that called FitResult.predict
            )
        return X


# set after the dataclass is made (its __init__ assigns X, which the descriptor stores)
setattr(Design, "X", _Matrix())  # noqa: B010 - mypy: a descriptor, typed as the field


class ExtrapolationWarning(GamFitWarning):
    """``predict`` at covariate values beyond the range a smooth was fitted on.

    There a P-spline continues as a straight line (mgcv's rule, :func:`predict_basis`), so
    the prediction rests on no data. Silence it where that is meant with
    ``warnings.simplefilter("ignore", gamstore.fit.ExtrapolationWarning)``.
    """


def extrapolation_range(
    basis: SmoothBasis, fitted: np.ndarray | None = None
) -> tuple[float, float] | None:
    """The covariate range ``predict`` evaluates the basis on unextrapolated, or None.

    For a P-spline the inner knot range ``[t_3, t_k]``, widened to the fitted covariate
    values when the fit itself reached outside it (see :func:`predict_basis`); for the other
    bases their own rule (:meth:`gamstore.fit.bases.Basis.extrapolation_range`; None for
    the cyclic ones, which wrap).
    """
    if basis.impl is not None:
        return basis.impl.extrapolation_range(fitted)
    return ps_extrapolation_range(basis.knots, fitted)


def predict_basis(
    basis: SmoothBasis, x: np.ndarray, fitted: np.ndarray | None = None
) -> np.ndarray:
    """Constrained design ``B T`` for prediction, as mgcv's ``Predict.matrix``.

    For a P-spline (mgcv's ``Predict.matrix.pspline.smooth``): inside the inner knot range
    ``[t_3, t_k]`` the B-splines themselves; beyond it, linear extrapolation from the value
    and slope at the nearer end, so a prediction far from the data is a straight line. When
    the fit itself reached outside the inner range (frozen knots narrower than the data: its
    design extended the end polynomials there), the linear rule starts at the ends of the
    fitted data instead, so predicting the fitting rows reproduces the fit. Other bases:
    their ``predict_design``.
    """
    if basis.impl is not None:
        return basis.impl.predict_design(x, fitted) @ basis.T
    return ps_predict_raw(basis.knots, x, fitted) @ basis.T


_EPS_08 = np.finfo(float).eps ** 0.8  # mgcv's threshold for "non-zero" penalty entries
_SQRT_EPS = np.finfo(float).eps ** 0.5  # mgcv gam.side / fixDependence tolerance


def _initial_sp(
    ldxx: np.ndarray,
    pen_blocks: list[tuple[slice, np.ndarray]],
    S_stack: np.ndarray | None = None,
) -> np.ndarray:
    """mgcv ``initial.sp``: rough smoothing parameters from the sizes of X'X and S.

    ``ldxx`` is ``colSums(X^2)`` of the reduced design; ``pen_blocks`` holds each penalty's
    columns and its reduced S_j (``S_stack``: the same matrices stacked, if at hand). Means
    are written as ``add.reduce / count``, which is exactly what ``numpy.mean`` computes,
    without its per-call overhead.
    """
    p = ldxx.size
    ldss = np.zeros(p)
    pen = np.zeros(p, dtype=bool)
    sp = _block_sp_stacked(ldxx, pen_blocks, ldss, pen, S_stack)
    if sp is None:
        sp = _block_sp(ldxx, pen_blocks, ldss, pen)
    add = np.add.reduce
    ind = (ldss > 0) & pen & (ldxx > 0)
    lx, ls = ldxx[ind], ldss[ind]
    nl = lx.size
    if nl:
        while add(lx / (lx + ls)) / nl > 0.4:
            sp *= 10.0
            ls = ls * 10.0
        while add(lx / (lx + ls)) / nl < 0.4:
            sp /= 10.0
            ls = ls / 10.0
    return np.log(sp)


def _block_sp(
    ldxx: np.ndarray,
    pen_blocks: list[tuple[slice, np.ndarray]],
    ldss: np.ndarray,
    pen: np.ndarray,
) -> np.ndarray:
    """Per-penalty starting sp (``mean(X'X diag) / mean(S diag)`` on S's non-zero rows).

    Fills ``ldss`` (the scaled S diagonals) and ``pen`` (the penalized columns) in place.
    """
    add = np.add.reduce
    sp = np.zeros(len(pen_blocks))
    for i, (cols, S) in enumerate(pen_blocks):
        absS = np.abs(S)
        m = S.shape[0]
        thresh = _EPS_08 * absS.max()
        dS = S.diagonal()
        ind = add(absS, axis=1) / m > thresh
        ind &= add(absS, axis=0) / m > thresh
        ind &= np.abs(dS) > thresh
        xx = ldxx[cols][ind]
        ss = dS[ind]
        pen[cols] |= ind
        sp[i] = (add(xx) / xx.size) / (add(ss) / ss.size)
        ldss[cols] += sp[i] * dS
    return sp


def _block_sp_stacked(
    ldxx: np.ndarray,
    pen_blocks: list[tuple[slice, np.ndarray]],
    ldss: np.ndarray,
    pen: np.ndarray,
    S_stack: np.ndarray | None = None,
) -> np.ndarray | None:
    """:func:`_block_sp` for penalties of one size, as stacked array operations.

    numpy reduces a stack slice by slice in the same order as one matrix, so the values
    are identical. Only the common case is taken: every row of every S non-zero (the
    means then run over whole rows); otherwise returns None before touching anything.
    """
    if not pen_blocks or len({S.shape for _, S in pen_blocks}) != 1:
        return None
    add = np.add.reduce
    S3 = np.stack([S for _, S in pen_blocks]) if S_stack is None else S_stack
    m = S3.shape[1]
    absS = np.abs(S3)
    thresh = (_EPS_08 * absS.reshape(absS.shape[0], -1).max(axis=1))[:, None]
    dS = S3.diagonal(axis1=1, axis2=2)
    ind = add(absS, axis=2) / m > thresh
    ind &= add(absS, axis=1) / m > thresh
    ind &= np.abs(dS) > thresh
    if not ind.all():
        return None
    cols = np.array([c.start for c, _ in pen_blocks])[:, None] + np.arange(m)
    sp = np.asarray((add(ldxx[cols], axis=1) / m) / (add(dS, axis=1) / m))
    pen[cols] = True
    # np.add.at, not ``ldss[cols] += ``: a tensor product's penalties share their columns,
    # and a buffered fancy-index += keeps only the last penalty's share of a repeated column
    # (mgcv's initial.sp adds every penalty's; its start was 10x off for a ti by factor)
    np.add.at(ldss, cols, sp[:, None] * dS)
    return sp


def _check_distinct(x: np.ndarray, sm: SmoothTerm) -> GamFitWarning | None:
    """Raise if ``x`` is constant; a warning when it has fewer than ``k`` distinct values.

    mgcv's P-splines fit with fewer unique values than k (the penalty identifies the
    coefficients) and warn; so does this. The first few rows usually settle it; only
    otherwise are all values sorted.
    """
    if len(set(x[: 4 * sm.k].tolist())) >= sm.k:
        return None
    n_unique = np.unique(x).size
    if n_unique == 1:
        raise ValueError(f"column {sm.term!r} is constant: {sm.label} cannot be estimated")
    if n_unique < sm.k:
        return basis_dimension_note(sm.label, n_unique, sm.k)
    return None


def _working_rotations(S: np.ndarray, rank: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Per penalty in the stack S (s, m, m): ``(U, eig, log|S|_+)`` of the working basis.

    U holds the eigenvectors of S by decreasing eigenvalue, eig those eigenvalues with the
    null space set to exactly zero. One stacked ``eigh`` call serves all penalties: LAPACK
    runs matrix by matrix, so the results are identical to separate calls.
    """
    vals, vecs = np.linalg.eigh(S)
    if (vals[:, 1:] > vals[:, :-1]).all():
        # LAPACK returns ascending values; with no ties argsort is the identity, so the
        # decreasing order is the plain reversal
        vals = vals[:, ::-1].copy()
        vecs = vecs[:, :, ::-1].copy()
    else:
        order = np.argsort(vals, axis=-1)[:, ::-1]
        vals = np.take_along_axis(vals, order, axis=-1)
        vecs = np.take_along_axis(vecs, order[:, None, :], axis=-1)
    logdet = np.log(vals[:, :rank]).sum(axis=-1)  # row by row, as a 1-D sum would
    eig = vals.copy()
    eig[:, rank:] = 0.0  # the null space is exact: the linear trend
    return [(vecs[j], eig[j], float(logdet[j])) for j in range(S.shape[0])]


#: ``raw_rows(smooth, knots, x) -> RowBlock | None``: a smooth's raw design rows evaluated
#: elsewhere (a LOSO fold's rows of the full data's raw design, :mod:`gamstore.fit.foldview`)
#: for covariate values ``x`` and the resolved knot vector, or None to evaluate them here
RawRows = Callable[["SmoothTerm", np.ndarray, np.ndarray], RowBlock | None]


def build_design(
    data: Any,
    smooths: list[SmoothTerm],
    linear: list[str] | list[ParamTerm],
    knots: dict[str, Any] | None = None,
    start_weights: np.ndarray | None = None,
    raw_rows: RawRows | None = None,
) -> Design:
    """Validate the covariates and assemble the working-basis design.

    Parameters
    ----------
    data : pandas.DataFrame or Mapping[str, array-like]
        Covariates.
    smooths : list of SmoothTerm
        Smooth terms, in model order.
    linear : list of str or ParamTerm
        Unpenalized parametric covariates (after the intercept); names are classified by
        :func:`parametric_terms` (factors get treatment contrasts).
    knots : dict or None
        Per covariate: a 2-value range or a full knot vector (frozen knots).
    start_weights : numpy.ndarray or None
        Row weights of mgcv's ``initial.spg`` (iterative weights at the starting mean):
        ``initial_rho`` is then computed on the weighted design, in the same pass that fills
        it (:func:`weighted_initial_rho` is the plain reference). None: unweighted.
    raw_rows : callable or None
        Where raw basis rows are already evaluated (a LOSO fold: the full data's raw
        design, row-selected; :mod:`gamstore.fit.foldview`). Only the evaluation is skipped:
        the constraints are absorbed from these rows' own column means, so the design is
        the one built from the covariates.

    Returns
    -------
    Design
    """
    n = n_rows(data)
    knots = dict(knots or {})
    allowed = {sm.knot_name for sm in smooths if sm.bs != "re" and not isinstance(sm, TensorTerm)}
    for sm in smooths:
        if isinstance(sm, TensorTerm):
            allowed.update(sm.knot_key(m) for m in sm.margins)
    unknown = sorted(set(knots) - allowed)
    if unknown:
        raise ValueError(f"knots given for {unknown}, which are not smooth terms of the model")
    keys = [sm.key for sm in smooths]
    if len(set(keys)) != len(keys):
        raise ValueError(f"each covariate may have one smooth (per by variable), got {keys}")
    terms = [sm.term for sm in smooths]
    lin_names = [t.name if isinstance(t, ParamTerm) else t for t in linear]
    if len(set(lin_names)) != len(lin_names) or set(lin_names) & set(terms):
        raise ValueError(f"linear terms {lin_names} repeat each other or a smooth covariate")
    pterms = [
        t if isinstance(t, ParamTerm) else ParamTerm(t, factor_levels(data, t)) for t in linear
    ]
    n_par = 1 + sum(t.width for t in pterms)
    # plain smooths take the path below (P-splines stacked); random effects and by-smooths
    # are built term by term (gamstore.fit.terms), each giving one or more blocks
    plain = [
        i
        for i, sm in enumerate(smooths)
        if sm.bs != "re" and sm.by is None and not isinstance(sm, TensorTerm)
    ]
    special: dict[int, list[tuple[Any, SmoothBasis, np.ndarray, np.ndarray | None]]] = {}
    xs_all: dict[int, np.ndarray] = {}
    dim_notes_all: dict[int, GamFitWarning | None] = {}
    for i, sm in enumerate(smooths):
        if i in plain:
            continue
        if isinstance(sm, TensorTerm):
            special[i] = [
                (ext, bas, Xr, None) for ext, bas, Xr, _ in build_tensor(data, sm, n, knots)
            ]
        elif sm.bs == "re":
            ext, bas, Xr = build_re(data, sm, n)
            special[i] = [(ext, bas, Xr, None)]
        else:
            x = get_column(data, sm.term, role=f"covariate of {sm.label}")
            dim_notes_all[i] = _check_distinct(x, sm)
            xs_all[i] = x
            special[i] = list(build_by(data, sm, x, n, knots.get(sm.term)))
    widths = {i: [blk[2].shape[1] for blk in special[i]] for i in special}
    p = n_par + sum(
        smooths[i].width if i not in special else sum(widths[i]) for i in range(len(smooths))
    )
    if n <= p:
        raise ValueError(f"data has {n} rows, fewer than the {p} coefficients of the model")
    X = np.empty((n, p))
    X[:, 0] = 1.0
    names = [PARAMETRIC]
    cols = [slice(0, n_par)]
    j0 = 1
    for t in pterms:
        X[:, j0 : j0 + t.width] = t.columns(data, n)
        j0 += t.width
    ldxx = np.empty(p)
    ldxx_w = np.zeros(p)  # weighted sums (start_weights), smooth columns only
    if pterms:
        ldxx[cols[0]] = np.einsum("ij,ij->j", X[:, cols[0]], X[:, cols[0]])
    else:
        ldxx[0] = float(n)  # a sum of n ones, exact in any order
    # column slices in model order (a by-factor term spans one slice per level)
    slices_all: dict[int, list[slice]] = {}
    start = n_par
    for i, sm in enumerate(smooths):
        slices_all[i] = []
        for w in [sm.width] if i not in special else widths[i]:
            slices_all[i].append(slice(start, start + w))
            start += w
    all_smooths = smooths
    smooths = [all_smooths[i] for i in plain]
    # pass 1, smooth by smooth: every check that can fail on the data, in model order
    xs: list[np.ndarray] = []
    knot_vecs: list[tuple[np.ndarray, bool]] = []
    dim_notes: list[GamFitWarning | None] = []
    given: list[RowBlock | None] = []
    generic: dict[int, np.ndarray] = {}  # raw designs of the non-ps smooths
    raws: list[RawSmoothBasis] = [None] * len(smooths)  # type: ignore[list-item]
    bases: list[SmoothBasis] = [None] * len(smooths)  # type: ignore[list-item]
    for i, sm in enumerate(smooths):
        x = sm.values(data, role=f"covariate of {sm.label}")
        dim_notes.append(_check_distinct(x, sm) if x.ndim == 1 else None)
        xs.append(x)
        if sm.bs == "ps":
            knot_vecs.append(smooth_knots(x, sm.k, knots.get(sm.term)))
            given.append(None if raw_rows is None else raw_rows(sm, knot_vecs[-1][0], x))
        else:
            # every other basis type through the registry (gamstore.fit.bases): construct,
            # then mgcv smoothCon's penalty scaling and sum-to-zero constraint
            knot_vecs.append((np.zeros(0), False))
            given.append(None)
            impl = get_basis_type(sm.bs).construct(x, int(sm.k), knots.get(sm.knot_name))
            Bg = impl.raw_design(x)
            bases[i] = constrain(impl, Bg)
            generic[i] = Bg
    # raw designs, constraints, penalties and their eigenvectors, computed together for
    # P-smooths of equal k (stacked arrays; identical to one smooth at a time)
    by_k: dict[int, list[int]] = {}
    for i, sm in enumerate(smooths):
        if sm.bs == "ps":
            by_k.setdefault(sm.k, []).append(i)
    rots: list[tuple[np.ndarray, np.ndarray, float]] = [None] * len(smooths)  # type: ignore[list-item]
    for i, b in enumerate(bases):
        if b is not None:
            rots[i] = _working_rotations(b.S[None], b.rank)[0]
    stacks: list[np.ndarray] = []
    raw_stacks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k, idx in by_k.items():
        group, B_stack = raw_smooth_group(
            [xs[i] for i in idx],
            k,
            [knot_vecs[i][0] for i in idx],
            [knot_vecs[i][1] for i in idx],
            [given[i] for i in idx],
        )
        group_bases, S_stack, T_stack = finish_smooth_bases(group)
        stacks.append(S_stack)
        if B_stack is not None:
            raw_stacks[k] = (B_stack, T_stack)
        group_rots = _working_rotations(S_stack, group_bases[0].rank)
        for j, i in enumerate(idx):
            raws[i], bases[i], rots[i] = group[j], group_bases[j], group_rots[j]
    slices = [slices_all[i][0] for i in plain]
    # the working-basis blocks: stacked products where a k group's raw designs are stacked
    for k, (B_stack, T_stack) in raw_stacks.items():
        idx = by_k[k]
        wsums: list[np.ndarray] = []
        sums = fill_designs(
            [X[:, slices[i]] for i in idx],
            B_stack,
            T_stack,
            [rots[i][0] for i in idx],
            start_weights,
            wsums,
        )
        for i, v in zip(idx, sums, strict=True):
            ldxx[slices[i]] = v
        if start_weights is not None:
            for i, v in zip(idx, wsums, strict=True):
                ldxx_w[slices[i]] = v
    plain_blocks: dict[int, SmoothBlock] = {}
    for i, (sm, x, raw, basis, (U, eig, logdet)) in enumerate(
        zip(smooths, xs, raws, bases, rots, strict=True)
    ):
        sl = slices[i]
        if i in generic:
            ldxx[sl] = _fill_generic(X[:, sl], generic[i] @ basis.T, U, start_weights, ldxx_w[sl])
        elif sm.k not in raw_stacks:
            B = raw.B if raw.B is not None else given[i]
            ldxx[sl] = fill_design(
                X[:, sl], x, basis, U, raw.extrapolate, B, start_weights, ldxx_w[sl]
            )
        plain_blocks[plain[i]] = SmoothBlock(sm, basis, U, eig, sl, logdet)
    # the other terms' blocks: reduced design X_r rotated to the working basis X_r U
    blocks: list[SmoothBlock] = []
    pen_blocks: list[tuple[slice, np.ndarray]] = []
    for i, sm in enumerate(all_smooths):
        if i in plain_blocks:
            blk = plain_blocks[i]
            blocks.append(blk)
            pen_blocks.append((blk.cols, blk.basis.S))
            names.append(blk.label)
            cols.append(blk.cols)
            continue
        for sl, (ext, basis, Xr, _B) in zip(slices_all[i], special[i], strict=True):
            ldxx[sl] = sq_col_sums(np.ascontiguousarray(Xr))
            if start_weights is not None:
                ldxx_w[sl] = start_weights @ (Xr * Xr)
            if ext.tensor is not None:
                blk = _tensor_block(sm, basis, ext, sl)
                pen_blocks.extend((sl, S) for S in ext.tensor.S)
            else:
                U, eig, logdet = _working_rotations(basis.S[None], basis.rank)[0]
                blk = SmoothBlock(sm, basis, U, eig, sl, logdet, ext)
                pen_blocks.append((sl, basis.S))
            X[:, sl] = Xr @ blk.U
            blocks.append(blk)
            names.append(blk.label)
            cols.append(sl)
    notes: list[GamFitWarning] = []
    plain_notes = dict(zip(plain, dim_notes, strict=True))
    plain_notes.update(dim_notes_all)
    seen: set[int] = set()
    for blk in blocks:
        i = all_smooths.index(blk.spec)
        if i in seen:
            continue
        seen.add(i)
        if blk.basis.col_means is not None:
            # a raw column summing to exactly zero (mgcv's test) is a B-spline without data
            empty_note = unidentifiable_note(blk.spec.label, blk.basis.col_means)
            if empty_note is not None:
                notes.append(empty_note)
        dim_note = plain_notes.get(i)
        if dim_note is not None:
            notes.append(dim_note)
    # one k group of plain P-splines only: its stacked penalties are in model order already
    S_all = stacks[0] if len(stacks) == 1 and not generic and not special else None
    # mgcv initial.spg: with start weights, the sums of the weighted design
    rho0 = (
        _initial_sp(ldxx if start_weights is None else ldxx_w, pen_blocks, S_all)
        if blocks
        else np.zeros(0)
    )
    covs = {sm.knot_name: x for sm, x in zip(smooths, xs, strict=True)}
    for sm in all_smooths:  # tensor margins: their fitted values, for prediction
        if isinstance(sm, TensorTerm):
            for m in sm.margins:
                covs.setdefault(m, get_column(data, m))
    for i, x in xs_all.items():
        covs.setdefault(all_smooths[i].term, x)
    check_side_constraints(blocks, X)
    return Design(X, pterms, blocks, n, p, rho0, names, cols, covariates=covs, notes=notes)


def _side_names(b: SmoothBlock) -> list[str]:
    """mgcv ``gam.side``'s variable names of a block: each covariate with its ``by`` column
    and ``by`` level pasted on (``Temp``, ``TempMonthm5``)."""
    spec = b.spec
    cov = list(spec.margins) if isinstance(spec, TensorTerm) else list(spec.covariates_of)
    by = "" if spec.by is None else spec.by
    level = ""
    if b.extra is not None and b.extra.level is not None:
        level = _r_level(b.extra.level)
    return [f"{c}{by}{level}" for c in cov]


def check_side_constraints(blocks: list[SmoothBlock], X: np.ndarray) -> None:
    """Refuse nested smooths that mgcv's ``gam.side`` would make identifiable.

    mgcv, for every smooth that shares a covariate with smooths of lower (or equal, earlier)
    dimension (``s(x) + te(x, z)``), deletes the columns that are linear combinations of the
    intercept and those smooths (``fixDependence``, tolerance ``sqrt(eps)`` against the
    largest R diagonal of the intercept and the lower smooths). gamstore does not delete
    columns: it runs the same test and raises, naming the terms. A random effect is exempt
    (mgcv's ``side.constrain = FALSE``); a ``ti`` passes the test by construction.

    Raises
    ------
    ValueError
        When some columns of a smooth depend on the intercept and the smooths it shares a
        covariate with.
    """
    from scipy.linalg import qr

    cand = [b for b in blocks if b.spec.bs != "re"]
    names = [_side_names(b) for b in cand]
    flat = [v for vn in names for v in vn]
    if len(set(flat)) == len(flat):
        return  # no shared covariate: nothing to check (the usual case)
    dims = [len(vn) for vn in names]
    order = sorted(range(len(cand)), key=lambda i: (dims[i], i))
    rank_of = {i: r for r, i in enumerate(order)}
    n = X.shape[0]
    for i in order:
        lower = [j for j in order if rank_of[j] < rank_of[i] and set(names[j]) & set(names[i])]
        if not lower:
            continue
        X1 = np.column_stack([np.ones(n)] + [X[:, cand[j].cols] for j in lower])
        X2 = X[:, cand[i].cols]
        q1, r1, _ = qr(X1, mode="economic", pivoting=True)
        r11 = abs(float(r1[0, 0]))
        rest = X2 - q1 @ (q1.T @ X2)
        r2 = qr(rest, mode="r", pivoting=True)[0]
        m = r2.shape[1]
        # mgcv: shrink the trailing block while its mean |R| is below R11 * sqrt(eps)
        r0 = m
        while r0 > 0 and np.mean(np.abs(r2[r0 - 1 : m, r0 - 1 : m])) < r11 * _SQRT_EPS:
            r0 -= 1
        dropped = m - r0
        if dropped:
            lows = ", ".join(cand[j].label for j in lower)
            raise ValueError(
                f"{cand[i].label}: {dropped} of its {m} columns are linear combinations of "
                f"the intercept and {lows}, which share its covariates; mgcv's gam.side "
                "would delete them, gamstore does not (not identifiable). Write main effects "
                "plus interaction with ti() (s(x) + s(z) + ti(x, z)), or drop the nested term"
            )


def _tensor_block(sm: SmoothTerm, basis: SmoothBasis, ext: TermExtra, sl: slice) -> SmoothBlock:
    """A tensor product's block: the working basis diagonalizes the *sum* of its penalties
    (no basis diagonalizes them together), with the joint null space last; each penalty is
    kept as a dense matrix there, its null-space rows and columns set to exactly zero."""
    parts = ext.tensor
    assert parts is not None
    total = sum(parts.S)
    ((U, eig, _),) = _working_rotations(np.asarray(total)[None], parts.rank)
    r = parts.rank
    pens = []
    for S in parts.S:
        P = U.T @ S @ U
        P = (P + P.T) / 2.0
        P[r:, :] = 0.0
        P[:, r:] = 0.0
        pens.append(P)
    return SmoothBlock(sm, basis, U, eig, sl, 0.0, ext, tuple(pens))


def _fill_generic(
    out: np.ndarray,
    Xr: np.ndarray,
    U: np.ndarray,
    w: np.ndarray | None,
    wsum: np.ndarray,
) -> np.ndarray:
    """Write the reduced block ``Xr`` rotated to the working basis into ``out``; return
    ``colSums(Xr^2)`` (and add ``colSums(w Xr^2)`` into ``wsum`` with start weights)."""
    out[...] = Xr @ U
    if w is not None:
        wsum += w @ (Xr * Xr)
    return np.asarray(np.einsum("ij,ij->j", Xr, Xr))


def weighted_initial_rho(d: Design, w: np.ndarray) -> np.ndarray:
    """mgcv ``initial.spg``: :func:`_initial_sp` on the design with rows scaled by ``sqrt(w)``.

    The plain reference of ``build_design(..., start_weights=w)``, which gets the same sums
    from the reduced blocks while it fills them (tests/test_fit_robust.py checks both agree).

    For a GLM mgcv starts the smoothing parameters from the *weighted* design, with the
    iterative weights ``w = prior weight * mu.eta(mustart)^2 / V(mustart)`` at the family's
    starting mean; only for a Gaussian fit with unit weights is that the plain design
    (:attr:`Design.initial_rho`). Starting elsewhere can lead the outer iteration into another
    basin than mgcv's (mtcars, binomial ``vs ~ s(qsec)``: REML keeps falling into the
    separated fit from the unweighted start). ``colSums(w X_r^2)`` of the reduced block
    ``X_r = X_w U'`` is the diagonal of ``U (X_w' W X_w) U'``.
    """
    ldxx = np.zeros(d.p)
    for b in d.smooths:
        G = xtwx(d.X[:, b.cols], w)
        sq = np.einsum("ij,jk,ik->i", b.U, G, b.U)
        # a reduced column made only of basis functions with no data is exactly zero in
        # mgcv (and left out of its means); the rotation back leaves rounding noise instead
        T = b.basis.T
        sq[~np.any(T[b.basis.col_means != 0.0] != 0.0, axis=0)] = 0.0
        ldxx[b.cols] = sq
    if not d.smooths:
        return np.zeros(0)
    return _initial_sp(ldxx, [(b.cols, b.basis.S) for b in d.smooths])
