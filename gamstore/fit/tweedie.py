"""The Tweedie log-density for ``1 < p < 2`` by Dunn & Smyth's (2005) series.

For ``y > 0`` the compound Poisson-gamma density is

``log f(y; mu, phi, p) = -log y + log W(y, phi, p) + (y mu^(1-p)/(1-p) - mu^(2-p)/(2-p)) / phi``

with ``W = sum_{j>=1} W_j``,
``log W_j = j log z - lgamma(j + 1) - lgamma(-alpha j)``, ``alpha = (2-p)/(1-p) < 0`` and
``log z = -alpha log y + alpha log(p-1) - log(2-p) - log(phi)/(p-1)``. ``log W_j`` is concave
in ``j`` with its maximum near ``j_max = y^(2-p) / (phi (2-p))``: the sum starts there and
walks outward both ways, in blocks, until the terms fall ``2 log(eps)`` below the largest one
(mgcv's C ``tweedious`` uses the same ``eps^2`` tolerance), accumulating in log space (running
maximum, rescaled sums), so nothing overflows however large ``j_max`` is. For ``y = 0`` the
density is exact: ``P(Y = 0) = exp(-mu^(2-p) / (phi (2-p)))``.

Derivatives in ``rho = log(phi)``: ``d log W_j / d rho = -j/(p-1)``, so
``d log W / d rho = -E[j]/(p-1)`` and ``d^2 log W / d rho^2 = Var[j]/(p-1)^2`` under the weights
``W_j / W`` (moments accumulated about the starting ``j``, free of cancellation).

These are the numbers of mgcv's ``ldTweedie(y, mu, rho = log(phi), theta, a, b)`` columns
``l``, ``rho`` and ``rho.2`` (checked against it in tests/test_fit_tweedie.py).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import gammaln

# stop a direction when its terms are this far (in log) below the largest: eps^2, as mgcv
_LOG_TOL = 2.0 * float(np.log(np.finfo(np.float64).eps))  # about -72.1
_FIRST_BLOCK = 16
_MAX_BLOCK = 4096
_WINDOW_MAX = 100_000.0  # widest first window each way (then blocks)
# at most this many terms each way from j_max (a width of sqrt((p - 1) j_max) per standard
# deviation: enough for j_max up to ~1e12)
MAX_TERMS = 10_000_000


class TweedieSeriesWarning(RuntimeWarning):
    """The series did not reach its tolerance within :data:`MAX_TERMS` terms each way."""


def _check_p(p: float) -> float:
    p = float(p)
    if not (1.0 < p < 2.0):
        raise ValueError(f"Tweedie power p must be in (1, 2), got {p!r}")
    return p


_TABLE_MAX = 1 << 20  # tabulate lgamma(j + 1) + lgamma(-alpha j) up to this j


class SeriesTable:
    """``lgamma(j + 1) + lgamma(-alpha j)`` for ``j = 0, 1, ...`` at one power ``p``.

    These parts of ``log W_j`` do not depend on y or the scale, so a family at a fixed p
    (every evaluation of the scale profile) computes each once and then only gathers them.
    Grown on demand up to 2^20 terms; beyond, :func:`log_w` evaluates them directly.
    """

    def __init__(self, p: float) -> None:
        self.p = _check_p(p)
        self._alpha = (2.0 - self.p) / (1.0 - self.p)
        self._g = np.zeros(0)

    def get(self, j: np.ndarray) -> np.ndarray | None:
        """The tabulated values at integer-valued ``j >= 1`` (None past the table's reach)."""
        top = float(np.max(j)) if j.size else 0.0
        if top >= _TABLE_MAX:
            return None
        if top >= self._g.size:
            size = int(min(_TABLE_MAX, max(2 * self._g.size, top + 1, 256)))
            k = np.arange(size, dtype=np.float64)
            g = np.full(size, np.inf)
            g[1:] = gammaln(k[1:] + 1.0) + gammaln(-self._alpha * k[1:])
            self._g = g
        return np.asarray(self._g[j.astype(np.intp)])


def log_w(
    y: np.ndarray, phi: np.ndarray | float, p: float, table: SeriesTable | None = None
) -> tuple[np.ndarray, ...]:
    """``log W`` and its first two derivatives in ``rho = log(phi)`` for ``y > 0``.

    Parameters
    ----------
    y : numpy.ndarray
        Positive responses, shape (n,).
    phi : float or numpy.ndarray
        Scale (scalar or shape (n,)), positive.
    p : float
        Power, ``1 < p < 2``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(log W, d log W / d rho, d^2 log W / d rho^2)``, each shape (n,).
    """
    p = _check_p(p)
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    phi_a = np.broadcast_to(np.asarray(phi, dtype=np.float64), y.shape)
    if n == 0:
        z = np.zeros(0)
        return z, z.copy(), z.copy()
    if np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("log_w: y must be positive and finite")
    alpha = (2.0 - p) / (1.0 - p)
    log_z = (
        -alpha * np.log(y) + alpha * np.log(p - 1.0) - np.log(2.0 - p) - np.log(phi_a) / (p - 1.0)
    )
    jmax = np.exp((2.0 - p) * np.log(y) - np.log(phi_a) - np.log(2.0 - p))
    j0 = np.maximum(1.0, np.round(np.minimum(jmax, 1e15)))

    if table is not None and table.p != p:
        raise ValueError(f"log_w: table for p = {table.p}, called with p = {p}")

    def flat_terms(j: np.ndarray, lz: np.ndarray) -> np.ndarray:
        g = None if table is None else table.get(j)
        if g is None:
            g = gammaln(j + 1.0) + gammaln(-alpha * j)
        return np.asarray(j * lz - g)

    # One ragged window per row, [j0 - down, j0 + up], summed in one flat pass. The second
    # difference of log W_j is about -1/((p - 1) j), so d terms above the mode the terms
    # have fallen by g(d) / (p - 1), g(d) = (j0 + d) log(1 + d/j0) - d (slower than a
    # Gaussian's d^2 / (2 (p - 1) j0)), and below it faster than that Gaussian: solve
    # g(d) = c (convex: Newton from the right) for the upper reach, the Gaussian's for the
    # lower. Rows whose window edge is not yet below the tolerance go on in blocks.
    c = -_LOG_TOL * (p - 1.0) * 1.1
    d = np.sqrt(2.0 * c * j0) + c
    for _ in range(8):
        g = (j0 + d) * np.log1p(d / j0) - d
        d = np.maximum(d - (g - c) / np.log1p(d / j0), 1.0)
    up = np.minimum(np.ceil(d) + 3.0, _WINDOW_MAX)
    down = np.minimum(np.ceil(np.sqrt(2.0 * c * j0)) + 3.0, np.minimum(j0 - 1.0, _WINDOW_MAX))
    counts = (up + down + 1.0).astype(np.intp)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    row = np.repeat(np.arange(n), counts)
    off = (np.arange(int(counts.sum())) - np.repeat(starts, counts)).astype(np.float64)
    off -= np.repeat(down, counts)
    lw = flat_terms(j0[row] + off, log_z[row])
    top = np.maximum.reduceat(lw, starts)
    e = np.exp(lw - top[row])
    s0 = np.add.reduceat(e, starts)
    s1 = np.add.reduceat(e * off, starts)
    s2 = np.add.reduceat(e * off * off, starts)
    ends = starts + counts - 1
    up_done = (lw[ends] - top < _LOG_TOL) & (lw[ends] <= lw[ends - 1])
    first = lw[starts]
    nxt = lw[np.minimum(starts + 1, ends)]
    down_done = (j0 - down <= 1.0) | ((first - top < _LOG_TOL) & (first <= nxt))

    def terms(j: np.ndarray, lz: np.ndarray) -> np.ndarray:
        return flat_terms(j, lz[:, None])

    unconverged = 0
    for sign, pending, reach in ((1.0, ~up_done, up), (-1.0, ~down_done, down)):
        active = np.flatnonzero(pending)
        start = reach + 1.0  # offset of the next block from j0 (beyond the window)
        width = _FIRST_BLOCK
        walked = 0
        while active.size:
            offb = sign * (start[active][:, None] + np.arange(width)[None, :])
            j = j0[active][:, None] + offb
            valid = j >= 1.0
            lwb = np.where(valid, terms(np.where(valid, j, 1.0), log_z[active]), -np.inf)
            m_old = top[active]
            m_new = np.maximum(m_old, lwb.max(axis=1))
            rescale = np.exp(m_old - m_new)
            eb = np.exp(lwb - m_new[:, None])
            s0[active] = s0[active] * rescale + eb.sum(axis=1)
            s1[active] = s1[active] * rescale + (eb * offb).sum(axis=1)
            s2[active] = s2[active] * rescale + (eb * offb * offb).sum(axis=1)
            top[active] = m_new
            # concave in j: once the last term of the block is below the tolerance and the
            # terms fall outward, every further term is smaller still
            last = lwb[:, -1]
            falling = lwb[:, -1] <= lwb[:, -2]
            done = (~valid[:, -1]) | ((last - m_new < _LOG_TOL) & falling)
            start[active] += width
            active = active[~done]
            walked += width
            if walked >= MAX_TERMS and active.size:
                unconverged += active.size
                break
            width = min(2 * width, _MAX_BLOCK)
    if unconverged:
        warnings.warn(
            f"Tweedie series not converged within {MAX_TERMS} terms for {unconverged} "
            "observation(s): the density may be unreliable",
            TweedieSeriesWarning,
            stacklevel=2,
        )
    mean_off = s1 / s0
    var = np.maximum(s2 / s0 - mean_off * mean_off, 0.0)
    lw_sum = top + np.log(s0)
    d1 = -(j0 + mean_off) / (p - 1.0)
    d2 = var / (p - 1.0) ** 2
    return lw_sum, d1, d2


def log_density(
    y: np.ndarray,
    mu: np.ndarray,
    phi: np.ndarray | float,
    p: float,
    table: SeriesTable | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tweedie log-density and its first two derivatives in ``rho = log(phi)``.

    Parameters
    ----------
    y : numpy.ndarray
        Non-negative responses, shape (n,).
    mu : numpy.ndarray
        Means, positive (0 is allowed where ``y = 0``: the saturated density, log 1 = 0).
    phi : float or numpy.ndarray
        Scale, positive.
    p : float
        Power, ``1 < p < 2``.
    table : SeriesTable or None
        Tabulated parts of the series at this ``p`` (see :class:`SeriesTable`).

    Returns
    -------
    tuple of numpy.ndarray
        ``(l, dl/drho, d^2 l/drho^2)`` per observation (mgcv ``ldTweedie``'s ``l``, ``rho``,
        ``rho.2``).
    """
    p = _check_p(p)
    y = np.asarray(y, dtype=np.float64)
    mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), y.shape)
    phi_a = np.broadcast_to(np.asarray(phi, dtype=np.float64), y.shape)
    if np.any(y < 0):
        raise ValueError("Tweedie log-density: y must be non-negative")
    l0 = np.zeros(y.shape)
    l1 = np.zeros(y.shape)
    l2 = np.zeros(y.shape)
    zero = y == 0
    if np.any(zero):
        m, f = mu[zero], phi_a[zero]
        base = -np.power(m, 2.0 - p) / (f * (2.0 - p))
        l0[zero], l1[zero], l2[zero] = base, -base, base
    pos = ~zero
    if np.any(pos):
        yp, m, f = y[pos], mu[pos], phi_a[pos]
        if np.ndim(phi) == 0:
            # W depends on y (and the one scale) only: sum the series once per distinct y
            # (counts repeat: quakes' 1000 rows have 102 distinct values)
            uy, inv = np.unique(yp, return_inverse=True)
            lw, w1, w2 = (v[inv] for v in log_w(uy, float(phi), p, table))
        else:
            lw, w1, w2 = log_w(yp, f, p, table)
        base = np.power(m, 1.0 - p) * (yp / (1.0 - p) - m / (2.0 - p)) / f
        l0[pos] = base - np.log(yp) + lw
        l1[pos] = -base + w1
        l2[pos] = base + w2
    return l0, l1, l2


def p_of_theta(theta: float, a: float = 1.01, b: float = 1.99) -> float:
    """mgcv's ``tw()`` power from its working parameter: ``p = (b + a e^-theta)/(1 + e^-theta)``
    (``family$getTheta(TRUE)``), evaluated as mgcv does on either sign of theta."""
    th = float(theta)
    if th > 0:
        e = np.exp(-th)
        return float((b + a * e) / (1.0 + e))
    e = np.exp(th)
    return float((b * e + a) / (e + 1.0))


def theta_of_p(p: float, a: float = 1.01, b: float = 1.99) -> float:
    """Inverse of :func:`p_of_theta`: ``theta = log((p - a)/(b - p))``, ``a < p < b``."""
    p = float(p)
    if not (a < p < b):
        raise ValueError(f"Tweedie p must be in ({a}, {b}), got {p!r}")
    return float(np.log((p - a) / (b - p)))


__all__ = [
    "MAX_TERMS",
    "SeriesTable",
    "TweedieSeriesWarning",
    "log_density",
    "log_w",
    "p_of_theta",
    "theta_of_p",
]
