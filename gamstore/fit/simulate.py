"""The Appendix B simulation used for parity fixtures, tests and benchmarks.

Three smooth effects (a sine, a standardised exponential and a standardised bimodal bump) on
uniform covariates, with Gaussian, Poisson or Bernoulli responses and ``S`` equal-sized subjects
for leave-one-subject-out folds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
    eta = _effects(x)
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


@dataclass(frozen=True)
class ParityCase:
    """A data set plus model used to check the fitter against mgcv.

    Attributes
    ----------
    name : str
        Case name (fixture key).
    data : pandas.DataFrame
        The data.
    family : str
        Family name.
    smooths : tuple of (str, int)
        Smooth covariates and basis dimensions.
    linear : tuple of str
        Linear covariates.
    weights, offset : str or None
        Column names of prior weights / offset.
    """

    name: str
    data: pd.DataFrame
    family: str
    smooths: tuple[tuple[str, int], ...]
    linear: tuple[str, ...] = ()
    weights: str | None = None
    offset: str | None = None

    def digest(self) -> str:
        """SHA-256 of the data (column names and float64 bytes), to detect generator drift."""
        h = hashlib.sha256()
        for c in self.data.columns:
            h.update(str(c).encode())
            h.update(
                np.ascontiguousarray(self.data[c].to_numpy(np.float64)).astype("<f8").tobytes()
            )
        return h.hexdigest()


PARITY_CASES = (
    "sim_gaussian",
    "sim_poisson",
    "sim_binomial",
    "gaussian_weights_linear",
    "poisson_offset_k12_null",
    "binomial_trials",
)


def parity_case(name: str) -> ParityCase:
    """Build one named mgcv parity case.

    The three ``sim_*`` cases are Appendix B as is. The others vary seed, n and k and add
    prior weights with a linear term, an offset with a fourth covariate that has no effect (a
    flat REML direction), and binomial proportions with trials as weights.
    """
    three = (("x0", 10), ("x1", 10), ("x2", 10))
    if name.startswith("sim_"):
        fam = name[4:]
        return ParityCase(name, simulate(fam), fam, three)
    if name == "gaussian_weights_linear":
        x, _, _ = simulate_arrays("gaussian", n=1000, S=10, seed=11)
        rng = np.random.default_rng(1011)
        eta = _effects(x)
        w = rng.integers(1, 5, size=x.shape[0]).astype(float)
        z = rng.normal(size=x.shape[0])
        y = eta + 0.8 * z + rng.normal(scale=0.7, size=x.shape[0]) / np.sqrt(w)
        df = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "z": z, "w": w, "y": y})
        return ParityCase(
            name, df, "gaussian", (("x0", 12), ("x1", 8), ("x2", 10)), ("z",), "w", None
        )
    if name == "poisson_offset_k12_null":
        rng = np.random.default_rng(7)
        n = 1500
        x = rng.uniform(size=(n, 4))
        expo = rng.uniform(0.5, 3.0, size=n)
        y = rng.poisson(expo * np.exp(0.5 * _effects(x[:, :3]) + 0.5)).astype(float)
        df = pd.DataFrame(
            {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "x3": x[:, 3], "lt": np.log(expo), "y": y}
        )
        return ParityCase(
            name, df, "poisson", (("x0", 12), ("x1", 10), ("x2", 12), ("x3", 8)), (), None, "lt"
        )
    if name == "binomial_trials":
        rng = np.random.default_rng(3)
        n = 800
        x = rng.uniform(size=(n, 3))
        m = rng.integers(1, 11, size=n).astype(float)
        succ = rng.binomial(m.astype(int), 1 / (1 + np.exp(-_effects(x))))
        df = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "m": m, "y": succ / m})
        return ParityCase(name, df, "binomial", three, (), "m", None)
    raise ValueError(f"unknown parity case {name!r}; known: {PARITY_CASES}")


def _effects(x: np.ndarray) -> np.ndarray:
    """The Appendix B linear predictor for covariates x (n, 3)."""
    f0 = np.sin(2 * np.pi * x[:, 0])
    f1 = np.exp(2 * x[:, 1])
    f1 = (f1 - f1.mean()) / f1.std()
    f2 = (
        0.2 * x[:, 2] ** 11 * (10 * (1 - x[:, 2])) ** 6
        + 10 * (10 * x[:, 2]) ** 3 * (1 - x[:, 2]) ** 10
    )
    f2 = (f2 - f2.mean()) / f2.std()
    return np.asarray(f0 + f1 + f2)
