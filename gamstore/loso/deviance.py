"""Held-out deviance of a fitted mean, per family (the LOSO fold score)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_FAMILIES = (
    "gaussian",
    "poisson",
    "binomial",
    "gamma",
    "inverse.gaussian",
    "quasipoisson",
    "quasibinomial",
    "nb",
    "tw",
)


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
        One of ``"gaussian"``, ``"poisson"``, ``"binomial"``, ``"gamma"``,
        ``"inverse.gaussian"``, ``"quasipoisson"``, ``"quasibinomial"``, ``"nb"``, ``"tw"``
        (the link does not change a deviance).
    """
    name = family if isinstance(family, str) else getattr(family, "name", None)
    if not isinstance(name, str) or name.lower() not in _FAMILIES:
        raise ValueError(f"family: expected one of {_FAMILIES}, got {family!r}")
    return name.lower()


def _nb_theta(theta: ArrayLike | float | None, shape: tuple[int, ...]) -> np.ndarray:
    """The negative binomial theta per row (a fold's estimate, or one per held-out row)."""
    if theta is None:
        raise ValueError(
            "theta: family 'nb' needs the fit's theta for a deviance or density "
            "(FitResult.theta), got None"
        )
    th = np.asarray(theta, dtype=np.float64)
    try:
        th = np.broadcast_to(th, shape)
    except ValueError as exc:
        raise ValueError(f"theta: expected a scalar or shape {shape}, got {th.shape}") from exc
    return th


def _tw_power(power: ArrayLike | float | None, shape: tuple[int, ...]) -> np.ndarray:
    """The Tweedie power per row (a fold's estimate, or one per held-out row)."""
    if power is None:
        raise ValueError(
            "power: family 'tw' needs the fit's power p for a deviance or density "
            "(FitResult.power), got None"
        )
    p = np.asarray(power, dtype=np.float64)
    try:
        p = np.broadcast_to(p, shape)
    except ValueError as exc:
        raise ValueError(f"power: expected a scalar or shape {shape}, got {p.shape}") from exc
    if not np.all((p > 1.0) & (p < 2.0)):
        raise ValueError("power: the Tweedie power must be in (1, 2)")
    return p


def deviance(
    family: str,
    y: ArrayLike,
    mu: ArrayLike,
    weights: ArrayLike | None = None,
    theta: ArrayLike | float | None = None,
    power: ArrayLike | float | None = None,
) -> float:
    """Total (prior-weighted) deviance of the response ``y`` at the fitted mean ``mu``.

    Parameters
    ----------
    family : str
        Response family (see :func:`family_name`); binomial responses are proportions in
        [0, 1]. The quasi families use the Poisson and binomial deviances.
    y, mu : array_like, shape (n,)
        Observed response and fitted mean on the response scale.
    weights : array_like, shape (n,), optional
        Prior weights (binomial: number of trials); ones by default.
    theta : float or array_like, shape (n,), optional
        Negative binomial ``theta`` (``"nb"`` only, required there): the fit's own estimate
        (a LOSO fold scores its held-out rows at the fold's theta), or one per row.
    power : float or array_like, shape (n,), optional
        Tweedie power ``p`` (``"tw"`` only, required there): the fit's own estimate, or one
        per row.

    Returns
    -------
    float
        ``sum(w * d_i)`` with the usual unit deviances (nb: mgcv's
        ``2 (y log(y / mu) - (y + theta) log((y + theta) / (mu + theta)))``); ``inf`` when
        ``mu`` leaves the family's support (for example ``mu = 0`` where ``y > 0`` for
        Poisson).
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
        elif fam in ("poisson", "quasipoisson"):
            unit = 2.0 * (_xlogy_ratio(y_arr, mu_arr) - (y_arr - mu_arr))
        elif fam == "gamma":
            unit = -2.0 * (np.log(y_arr / mu_arr) - (y_arr - mu_arr) / mu_arr)
        elif fam == "inverse.gaussian":
            unit = (y_arr - mu_arr) ** 2 / (y_arr * mu_arr * mu_arr)
        elif fam == "nb":
            th = _nb_theta(theta, y_arr.shape)
            unit = 2.0 * (
                _xlogy_ratio(y_arr, mu_arr) - (y_arr + th) * np.log((y_arr + th) / (mu_arr + th))
            )
            unit = np.where(mu_arr > 0, unit, np.inf)
        elif fam == "tw":  # mgcv tw()$dev.resids
            p = _tw_power(power, y_arr.shape)
            y1 = y_arr + (y_arr == 0)
            th = (y1 ** (1.0 - p) - mu_arr ** (1.0 - p)) / (1.0 - p)
            ka = (y_arr ** (2.0 - p) - mu_arr ** (2.0 - p)) / (2.0 - p)
            unit = np.where(mu_arr > 0, np.maximum(2.0 * (y_arr * th - ka), 0.0), np.inf)
        else:
            unit = 2.0 * (_xlogy_ratio(y_arr, mu_arr) + _xlogy_ratio(1.0 - y_arr, 1.0 - mu_arr))
    total = float(np.sum(w * unit))
    return total if np.isfinite(total) else float("inf")


def log_density(
    family: str,
    y: ArrayLike,
    mu: ArrayLike,
    weights: ArrayLike | None = None,
    scale: ArrayLike | float = 1.0,
    theta: ArrayLike | float | None = None,
    power: ArrayLike | float | None = None,
) -> np.ndarray:
    """Per-row log predictive density of ``y`` at the mean ``mu`` (the log score's terms).

    Gaussian: ``N(mu, scale / w)``; Poisson: ``Pois(mu)`` (times the prior weight, as the
    likelihood the fit maximises); binomial: ``Bin(round(w), mu)`` at ``round(w y)``
    successes (``w`` = trials); Gamma: shape ``w / scale``, mean ``mu``; inverse Gaussian:
    dispersion ``scale / w``; nb: ``NB(mu, theta)`` (R's ``dnbinom(y, size = theta,
    mu = mu)``, times the prior weight as for Poisson; ``theta`` required); tw: the Tweedie
    density at ``scale`` and ``power`` (Dunn & Smyth's series, :mod:`gamstore.fit.tweedie`;
    times the prior weight, as mgcv's ``ldTweedie``; ``power`` required). The quasi
    families have no density: NaN.

    Returns
    -------
    numpy.ndarray
        Shape (n,).
    """
    from scipy.special import gammaln, xlogy

    fam = family_name(family)
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    mu_arr = np.asarray(mu, dtype=np.float64).ravel()
    w = np.ones_like(y_arr) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        if fam == "gaussian":
            phi = np.broadcast_to(np.asarray(scale, dtype=np.float64), y_arr.shape) / w
            return -0.5 * np.log(2.0 * np.pi * phi) - (y_arr - mu_arr) ** 2 / (2.0 * phi)
        if fam == "poisson":
            return w * (xlogy(y_arr, mu_arr) - mu_arr - gammaln(y_arr + 1.0))
        if fam == "nb":
            th = _nb_theta(theta, y_arr.shape)
            per = (
                gammaln(y_arr + th)
                - gammaln(th)
                - gammaln(y_arr + 1.0)
                + th * np.log(th / (mu_arr + th))
                + xlogy(y_arr, mu_arr / (mu_arr + th))
            )
            return w * np.where(mu_arr > 0, per, -np.inf)
        if fam == "tw":
            from gamstore.fit.tweedie import log_density as tw_log_density

            p = _tw_power(power, y_arr.shape)
            phi = np.broadcast_to(np.asarray(scale, dtype=np.float64), y_arr.shape)
            out = np.full_like(y_arr, -np.inf)
            good = mu_arr > 0
            # one series per (power, scale): a fold's rows share both
            keys = np.stack([p, phi], axis=1)[good]
            idx = np.flatnonzero(good)
            for pk, fk in np.unique(keys, axis=0):
                rows = idx[(keys[:, 0] == pk) & (keys[:, 1] == fk)]
                out[rows] = tw_log_density(y_arr[rows], mu_arr[rows], float(fk), float(pk))[0]
            return w * out
        if fam in ("quasipoisson", "quasibinomial"):
            return np.full_like(y_arr, np.nan)
        if fam in ("gamma", "inverse.gaussian"):
            phi = np.broadcast_to(np.asarray(scale, dtype=np.float64), y_arr.shape) / w
            if fam == "gamma":
                nu = 1.0 / phi
                r = y_arr / mu_arr
                return nu * np.log(nu * r) - nu * r - np.log(y_arr) - gammaln(nu)
            return -0.5 * np.log(2.0 * np.pi * phi * y_arr**3) - (y_arr - mu_arr) ** 2 / (
                2.0 * phi * y_arr * mu_arr * mu_arr
            )
        m = np.round(w)
        k = np.round(w * y_arr)
        return (
            gammaln(m + 1.0)
            - gammaln(k + 1.0)
            - gammaln(m - k + 1.0)
            + xlogy(k, mu_arr)
            + xlogy(m - k, 1.0 - mu_arr)
        )


def auc(y: ArrayLike, score: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Area under the ROC curve of ``score`` for a binomial response.

    ``y`` is the observed proportion and ``weights`` the trials: row i counts ``w y``
    positives and ``w (1 - y)`` negatives at its score (for 0/1 data, the usual AUC; ties
    count one half, as the Mann-Whitney statistic).

    Returns
    -------
    float
        NaN without both positives and negatives.
    """
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    s_arr = np.asarray(score, dtype=np.float64).ravel()
    w = np.ones_like(y_arr) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(y_arr) & np.isfinite(s_arr) & np.isfinite(w)
    pos, neg, s_arr = (w * y_arr)[ok], (w * (1.0 - y_arr))[ok], s_arr[ok]
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    order = np.argsort(s_arr, kind="stable")
    s_sorted, pos, neg = s_arr[order], pos[order], neg[order]
    # group tied scores: every positive beats the negatives below its score, ties count 1/2
    uniq, start = np.unique(s_sorted, return_index=True)
    pos_g = np.add.reduceat(pos, start)
    neg_g = np.add.reduceat(neg, start)
    neg_below = np.cumsum(neg_g) - neg_g
    wins = float(np.sum(pos_g * (neg_below + 0.5 * neg_g)))
    return wins / (total_pos * total_neg)
