"""The simulation every gamstore benchmark, test and demo uses (reference-fitter, Appendix B).

Three smooth effects of uniform covariates (a sine, a standardised exponential and a
standardised bimodal bump) on the linear predictor, ``n // n_subjects`` rows per subject.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

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
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects, dtype=np.int64), n // n_subjects)
    x = rng.uniform(size=(n, 3))
    f0 = np.sin(2 * np.pi * x[:, 0])
    f1 = np.exp(2 * x[:, 1])
    f1 = (f1 - f1.mean()) / f1.std()
    x2 = x[:, 2]
    f2 = 0.2 * x2**11 * (10 * (1 - x2)) ** 6 + 10 * (10 * x2) ** 3 * (1 - x2) ** 10
    f2 = (f2 - f2.mean()) / f2.std()
    eta = f0 + f1 + f2
    if family == "gaussian":
        y = eta + rng.normal(scale=0.7, size=n)
    elif family == "poisson":
        y = rng.poisson(np.exp(0.5 * eta + 0.5)).astype(float)
    else:
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x2, "y": y, "subj": subj})
