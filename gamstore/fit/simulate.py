"""The Appendix B simulation used for parity fixtures, tests and benchmarks.

Three smooth effects (a sine, a standardised exponential and a standardised bimodal bump) on
uniform covariates, with Gaussian, Poisson or Bernoulli responses and ``S`` equal-sized subjects
for leave-one-subject-out folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAMILIES = ("gaussian", "poisson", "binomial")


def simulate_arrays(
    family: str = "gaussian", n: int = 2000, S: int = 10, seed: int = 20240601
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariates ``x`` (n, 3), response ``y`` (n,) and subject ids (n,)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if n <= 0 or S <= 0 or n % S:
        raise ValueError(f"n must be a positive multiple of S, got n={n}, S={S}")
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(S), n // S)
    x = rng.uniform(size=(n, 3))
    f0 = np.sin(2 * np.pi * x[:, 0])
    f1 = np.exp(2 * x[:, 1])
    f1 = (f1 - f1.mean()) / f1.std()
    f2 = (
        0.2 * x[:, 2] ** 11 * (10 * (1 - x[:, 2])) ** 6
        + 10 * (10 * x[:, 2]) ** 3 * (1 - x[:, 2]) ** 10
    )
    f2 = (f2 - f2.mean()) / f2.std()
    eta = f0 + f1 + f2
    if family == "gaussian":
        y = eta + rng.normal(scale=0.7, size=n)
    elif family == "poisson":
        y = rng.poisson(np.exp(0.5 * eta + 0.5)).astype(float)
    else:
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    return x, y, subj


def simulate(
    family: str = "gaussian", n: int = 2000, S: int = 10, seed: int = 20240601
) -> pd.DataFrame:
    """The simulation as a DataFrame with columns ``x0, x1, x2, y, subj``.

    Parameters
    ----------
    family : {"gaussian", "poisson", "binomial"}
        Response distribution.
    n : int
        Rows (a multiple of ``S``).
    S : int
        Number of subjects.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    pandas.DataFrame
    """
    x, y, subj = simulate_arrays(family, n, S, seed)
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "y": y, "subj": subj})
