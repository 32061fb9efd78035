"""Reference REML fitter with mgcv parity: ``from gamstore.fit import GAM, s``."""

from __future__ import annotations

from gamstore.fit.design import PARAMETRIC, SmoothTerm
from gamstore.fit.model import GAM, FitResult, s
from gamstore.fit.newton import Iterate, NewtonControl

__all__ = ["GAM", "FitResult", "Iterate", "NewtonControl", "PARAMETRIC", "SmoothTerm", "s"]
