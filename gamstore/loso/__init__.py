"""Leave-one-subject-out (LOSO) cross-validation with warm starts.

``run_loso`` fits the full data once, then every fold with the knots frozen at the full-data
knots so that each fold starts from the full-data fit found in the store; it runs in
process, in a spawned process pool or on a dask cluster, and returns an xarray Dataset.
"""

from __future__ import annotations

from gamstore.loso.deviance import deviance
from gamstore.loso.pipeline import run_loso
from gamstore.loso.simulate import FAMILIES, simulate

__all__ = ["FAMILIES", "deviance", "run_loso", "simulate"]
