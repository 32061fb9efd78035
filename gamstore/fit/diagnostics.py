"""Fit warnings: the conditions under which mgcv warns, raised as catchable Python warnings.

Every warning of the fitter is a subclass of :class:`GamFitWarning` (itself a
``UserWarning``), so ``warnings.simplefilter("error", GamFitWarning)`` turns them all into
errors and ``warnings.catch_warnings`` can pick out one kind. A fit also carries the
warnings it raised on ``FitResult.warnings``, so a LOSO fold run in a worker thread or
process reports them with its result.

==============================  =========================================================
Class                           When (mgcv's message)
==============================  =========================================================
``StepFailureWarning``          the outer Newton step cannot decrease REML although the
                                gradient is not small ("Fitting terminated with step
                                failure - check results carefully"), or a binomial fit
                                that is completely separated (every fitted probability at
                                its 0/1 response: REML has no finite optimum in rho); the
                                fit then reports ``converged=False``
``IterationLimitWarning``       the outer loop hit ``NewtonControl.max_iter``
                                ("Iteration limit reached without full convergence")
``BoundaryFitWarning``          fitted probabilities numerically 0 or 1 (binomial) or
                                fitted rates numerically 0 (Poisson) at the optimum
``UnidentifiableBasisWarning``  a B-spline basis function has no data under its support
                                ("there is *no* information about some basis
                                coefficients"); the penalty alone fixes its coefficient
``BasisDimensionWarning``       k is larger than the number of unique covariate values
                                ("basis dimension is larger than number of unique
                                covariates"); the fit goes ahead, as mgcv's does
``NonIntegerResponseWarning``   a Poisson response that is not a count, or binomial
                                successes ``weights * y`` that are not whole numbers
``ExtrapolationWarning``        ``predict`` on covariate values outside the fitted range
                                (defined in :mod:`gamstore.fit.design`, raised by predict,
                                not by a fit, so it is not on ``FitResult.warnings``)
==============================  =========================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np


class GamFitWarning(UserWarning):
    """Base class of every warning the reference fitter raises."""


class StepFailureWarning(GamFitWarning):
    """The outer Newton iteration stopped because no step decreased REML (mgcv: step failure)."""


class IterationLimitWarning(GamFitWarning):
    """The outer Newton iteration reached its iteration cap before converging."""


class BoundaryFitWarning(GamFitWarning):
    """Fitted values at the boundary of the family's range (separation, zero rates)."""


class UnidentifiableBasisWarning(GamFitWarning):
    """Some basis function has no data: only the penalty identifies its coefficient."""


class BasisDimensionWarning(GamFitWarning):
    """The basis dimension k exceeds the number of unique covariate values."""


class NonIntegerResponseWarning(GamFitWarning):
    """Counts (Poisson ``y``, binomial ``weights * y``) that are not whole numbers."""


WARNING_CLASSES: tuple[type[GamFitWarning], ...] = (
    StepFailureWarning,
    IterationLimitWarning,
    BoundaryFitWarning,
    UnidentifiableBasisWarning,
    BasisDimensionWarning,
    NonIntegerResponseWarning,
)

# mgcv gam.fit3: eps <- 10 * .Machine$double.eps for its boundary checks
_BOUNDARY_EPS = 10.0 * float(np.finfo(float).eps)


def unidentifiable_note(label: str, col_means: np.ndarray | None) -> GamFitWarning | None:
    """An :class:`UnidentifiableBasisWarning` when a raw basis column sums to exactly zero.

    ``col_means`` are the column means of the raw B-spline design (the sum-to-zero
    constraint). A B-spline is positive strictly inside its support and zero outside, so a
    zero mean is a basis function without data: mgcv's ``colSums(X) == 0`` test.
    """
    if col_means is None:
        return None
    empty = np.flatnonzero(np.asarray(col_means) == 0.0)
    if empty.size == 0:
        return None
    return UnidentifiableBasisWarning(
        f"{label}: there is no information about {empty.size} basis coefficient(s) "
        f"(B-splines {empty.tolist()} have no data under their support); the penalty alone "
        "determines them"
    )


def basis_dimension_note(label: str, n_unique: int, k: int) -> GamFitWarning:
    """The warning for ``k`` above the number of unique covariate values."""
    return BasisDimensionWarning(
        f"{label}: basis dimension k = {k} is larger than the number of unique covariate "
        f"values ({n_unique}); the penalty identifies the fit"
    )


def response_notes(family: str, y: np.ndarray, wt: np.ndarray, column: str) -> list[GamFitWarning]:
    """Non-integer counts (mgcv: ``abs(m - round(m)) > 0.001`` for binomial successes)."""
    used = wt > 0
    if family == "poisson":
        yy = y[used]
        bad = int(np.count_nonzero(np.abs(yy - np.round(yy)) > 1e-3))
        if bad:
            return [
                NonIntegerResponseWarning(
                    f"column {column!r}: {bad} non-integer value(s) in a poisson response; the "
                    "REML score uses lgamma(y + 1) and is not a count likelihood"
                )
            ]
    elif family == "binomial":
        m = (wt * y)[used]
        bad = int(np.count_nonzero(np.abs(m - np.round(m)) > 1e-3))
        if bad:
            return [
                NonIntegerResponseWarning(
                    f"column {column!r}: weights * response are not whole numbers of successes "
                    f"in {bad} row(s) (a non-integer binomial fit, as glm allows)"
                )
            ]
    return []


def boundary_notes(family: str, mu: np.ndarray, wt: np.ndarray) -> list[GamFitWarning]:
    """Fitted values numerically at the boundary (mgcv ``gam.fit3``'s checks)."""
    used = mu[wt > 0]
    if family == "binomial":
        n = int(np.count_nonzero((used < _BOUNDARY_EPS) | (used > 1.0 - _BOUNDARY_EPS)))
        if n:
            return [
                BoundaryFitWarning(
                    f"fitted probabilities numerically 0 or 1 occurred ({n} row(s)): the data "
                    "are (quasi-)separated and the smoothing parameter estimate is unreliable"
                )
            ]
    elif family == "poisson":
        n = int(np.count_nonzero(used < _BOUNDARY_EPS))
        if n:
            return [BoundaryFitWarning(f"fitted rates numerically 0 occurred ({n} row(s))")]
    return []


# a binomial fit whose every fitted probability is this close to its 0/1 response reproduces
# the data exactly (faithful, eruptions > 3: at most 8e-11; quasi-separated mtcars: 0.52)
_SEPARATED_TOL = 1e-6


def separation_note(
    family: str, y: np.ndarray, mu: np.ndarray, wt: np.ndarray
) -> StepFailureWarning | None:
    """mgcv's step-failure warning when a binomial fit is completely separated.

    Every response is 0 or 1 and every fitted probability is within ``1e-6`` of it: the
    penalized fit reproduces the data, the REML score has no finite optimum in rho (it keeps
    falling towards rho = -inf; mgcv's Newton loop wanders along it until its step fails)
    and the rho returned means nothing. Quasi-separation (some rows at 0 or 1) is left to
    :func:`boundary_notes`.
    """
    if family not in ("binomial", "quasibinomial"):
        return None
    used = wt > 0
    yu, mu_u = y[used], mu[used]
    if yu.size == 0 or not bool(np.all((yu == 0.0) | (yu == 1.0))):
        return None
    if float(np.max(np.abs(mu_u - yu))) > _SEPARATED_TOL:
        return None
    return StepFailureWarning(
        "Fitting terminated with step failure - check results carefully: the data are "
        f"completely separated (all {yu.size} fitted probabilities within {_SEPARATED_TOL:g} "
        "of their 0/1 response), so REML has no finite optimum in rho and the smoothing "
        "parameter estimate is meaningless"
    )


def emit(notes: Iterable[GamFitWarning], stacklevel: int = 3) -> None:
    """Raise each note through :func:`warnings.warn` (its class is the category)."""
    for w in notes:
        warnings.warn(w, stacklevel=stacklevel)


def describe(notes: Sequence[GamFitWarning]) -> list[str]:
    """``"ClassName: message"`` per note (the form stored with LOSO fold results)."""
    return [f"{type(w).__name__}: {w}" for w in notes]


__all__ = [
    "BasisDimensionWarning",
    "BoundaryFitWarning",
    "GamFitWarning",
    "IterationLimitWarning",
    "NonIntegerResponseWarning",
    "StepFailureWarning",
    "UnidentifiableBasisWarning",
    "WARNING_CLASSES",
    "boundary_notes",
    "describe",
    "emit",
    "response_notes",
    "unidentifiable_note",
]
