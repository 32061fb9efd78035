"""Held-out deviance of a fitted mean, per family (the LOSO fold score)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_FAMILIES = ("gaussian", "poisson", "binomial")


def _xlogy_ratio(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``y * log(y / mu)`` with the limit 0 at y = 0."""
    out = np.zeros_like(y)
    pos = y > 0
    out[pos] = y[pos] * np.log(y[pos] / mu[pos])
    return out


def family_name(family: object) -> str:
    """Lower-case family name of a string or of a family object with ``name``.

    Parameters
    ----------
    family : str or object
        ``"poisson"`` or an object with a ``name`` attribute (for example a fitter family).

    Returns
    -------
    str
        One of ``"gaussian"``, ``"poisson"``, ``"binomial"``.
    """
    name = family if isinstance(family, str) else getattr(family, "name", None)
    if not isinstance(name, str) or name.lower() not in _FAMILIES:
        raise ValueError(f"family: expected one of {_FAMILIES}, got {family!r}")
    return name.lower()


def deviance(family: str, y: ArrayLike, mu: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Total (prior-weighted) deviance of the response ``y`` at the fitted mean ``mu``.

    Parameters
    ----------
    family : {"gaussian", "poisson", "binomial"}
        Response family; binomial responses are proportions in [0, 1].
    y, mu : array_like, shape (n,)
        Observed response and fitted mean on the response scale.
    weights : array_like, shape (n,), optional
        Prior weights (binomial: number of trials); ones by default.

    Returns
    -------
    float
        ``sum(w * d_i)`` with the usual unit deviances; ``inf`` when ``mu`` leaves the
        family's support (for example ``mu = 0`` where ``y > 0`` for Poisson).
    """
    fam = family_name(family)
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    mu_arr = np.asarray(mu, dtype=np.float64).ravel()
    if y_arr.shape != mu_arr.shape:
        raise ValueError(f"mu: expected shape {y_arr.shape} like y, got {mu_arr.shape}")
    w = (
        np.ones_like(y_arr)
        if weights is None
        else np.broadcast_to(np.asarray(weights, dtype=np.float64), y_arr.shape)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        if fam == "gaussian":
            unit = (y_arr - mu_arr) ** 2
        elif fam == "poisson":
            unit = 2.0 * (_xlogy_ratio(y_arr, mu_arr) - (y_arr - mu_arr))
        else:
            unit = 2.0 * (_xlogy_ratio(y_arr, mu_arr) + _xlogy_ratio(1.0 - y_arr, 1.0 - mu_arr))
    total = float(np.sum(w * unit))
    return total if np.isfinite(total) else float("inf")
