"""The simulation every gamstore benchmark, test and demo uses (reference-fitter, Appendix B).

Three smooth effects of uniform covariates (a sine, a standardised exponential and a
standardised bimodal bump) on the linear predictor, ``n // n_subjects`` rows per subject.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from gamstore.fit.simulate import simulate_arrays

Family = Literal["gaussian", "poisson", "binomial"]

FAMILIES: tuple[str, ...] = ("gaussian", "poisson", "binomial")


def simulate(
    family: str = "gaussian",
    n: int = 2000,
    n_subjects: int = 10,
    seed: int = 20240601,
) -> pd.DataFrame:
    """Simulate the Appendix B data set.

    Parameters
    ----------
    family : {"gaussian", "poisson", "binomial"}
        Response distribution. Gaussian noise has sd 0.7; Poisson uses the log link on
        ``0.5 * eta + 0.5``; binomial is Bernoulli with the logit link.
    n : int
        Number of rows; must be a positive multiple of ``n_subjects``.
    n_subjects : int
        Number of subjects (at least 2), labelled ``0 .. n_subjects - 1`` in column ``subj``.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the default reproduces the reference numbers.

    Returns
    -------
    pandas.DataFrame
        Columns ``x0``, ``x1``, ``x2`` (float64 in [0, 1)), ``y`` (float64) and ``subj`` (int64).
    """
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {FAMILIES}, got {family!r}")
    if not isinstance(n_subjects, (int, np.integer)) or n_subjects < 2:
        raise ValueError(f"n_subjects: expected an integer >= 2, got {n_subjects!r}")
    if not isinstance(n, (int, np.integer)) or n < n_subjects or n % n_subjects:
        raise ValueError(f"n: expected a positive multiple of n_subjects={n_subjects}, got {n!r}")
    # one generator for the whole project: the fitter's parity fixtures use the same draws
    x, y, subj = simulate_arrays(family, int(n), int(n_subjects), seed)
    subj = subj.astype(np.int64)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "y": y, "subj": subj})
