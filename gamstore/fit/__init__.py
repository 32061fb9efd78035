"""Reference REML fitter with mgcv parity: ``from gamstore.fit import GAM, s``."""

from __future__ import annotations

from gamstore.fit.design import PARAMETRIC, ExtrapolationWarning, SmoothTerm
from gamstore.fit.diagnostics import (
    BasisDimensionWarning,
    BoundaryFitWarning,
    GamFitWarning,
    IterationLimitWarning,
    NonIntegerResponseWarning,
    StepFailureWarning,
    UnidentifiableBasisWarning,
)
from gamstore.fit.model import GAM, FitResult, s, te, ti
from gamstore.fit.newton import Iterate, NewtonControl

__all__ = [
    "GAM",
    "BasisDimensionWarning",
    "BoundaryFitWarning",
    "ExtrapolationWarning",
    "FitResult",
    "GamFitWarning",
    "Iterate",
    "IterationLimitWarning",
    "NewtonControl",
    "NonIntegerResponseWarning",
    "PARAMETRIC",
    "SmoothTerm",
    "StepFailureWarning",
    "UnidentifiableBasisWarning",
    "s",
    "te",
    "ti",
]
