"""Exponential families with canonical links for the reference fitter.

Each family supplies what PIRLS and the Laplace REML need: the inverse link, the working
weights ``w = wt * V(mu)`` and their first two derivatives with respect to the linear
predictor, the deviance and the full log-likelihood (with the ``lgamma`` terms, so that the
REML score is on mgcv's ``gcv.ubre`` scale).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from scipy.special import expit, gammaln, xlogy

_ETA_MAX = 700.0  # exp() overflows just above 709


class Family(ABC):
    """A canonical-link exponential family."""

    name: ClassVar[str]
    link: ClassVar[str]
    scale_known: ClassVar[bool]

    @abstractmethod
    def mu(self, eta: np.ndarray) -> np.ndarray:
        """Inverse link."""

    @abstractmethod
    def eta_of_mu(self, mu: np.ndarray) -> np.ndarray:
        """Link function."""

    @abstractmethod
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function V(mu) (= dmu/deta for a canonical link)."""

    @abstractmethod
    def dw(self, mu: np.ndarray) -> np.ndarray:
        """d V(mu) / d eta."""

    @abstractmethod
    def d2w(self, mu: np.ndarray) -> np.ndarray:
        """d^2 V(mu) / d eta^2."""

    @abstractmethod
    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        """Deviance ``2 (l_sat - l)``."""

    @abstractmethod
    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        """Full log-likelihood including normalising constants."""

    @abstractmethod
    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Cold-start mean (as ``glm``'s ``mustart``)."""

    @abstractmethod
    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        """Raise ValueError naming ``column`` if ``y`` is outside the family's support."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Gaussian(Family):
    """Normal errors, identity link, unknown scale."""

    name = "gaussian"
    link = "identity"
    scale_known = False

    def mu(self, eta: np.ndarray) -> np.ndarray:
        return eta

    def eta_of_mu(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    def dw(self, mu: np.ndarray) -> np.ndarray:
        return np.zeros_like(mu)

    def d2w(self, mu: np.ndarray) -> np.ndarray:
        return np.zeros_like(mu)

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        r = y - mu
        return float(np.dot(wt, r * r))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        pos = wt > 0
        n = int(np.count_nonzero(pos))
        return float(
            -self.deviance(y, mu, wt) / (2.0 * scale)
            - 0.5 * n * np.log(2.0 * np.pi * scale)
            + 0.5 * np.sum(np.log(wt[pos]))
        )

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y.astype(np.float64, copy=True)

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        used = y[wt > 0]
        if used.size and np.ptp(used) == 0.0:
            raise ValueError(
                f"column {column!r}: gaussian response is constant; the scale cannot be estimated"
            )


class Poisson(Family):
    """Poisson counts, log link."""

    name = "poisson"
    link = "log"
    scale_known = True

    def mu(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(np.minimum(eta, _ETA_MAX))

    def eta_of_mu(self, mu: np.ndarray) -> np.ndarray:
        return np.log(mu)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def dw(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def d2w(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        return float(2.0 * np.dot(wt, xlogy(y, y) - xlogy(y, mu) - (y - mu)))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        return float(np.dot(wt, xlogy(y, mu) - mu - gammaln(y + 1.0)))

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y + 0.1

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any(y < 0):
            raise ValueError(
                f"column {column!r}: poisson response must be non-negative counts, "
                f"found {int(np.count_nonzero(y < 0))} negative value(s)"
            )
        if not np.any(y[wt > 0] > 0):
            raise ValueError(f"column {column!r}: poisson response is all zero")


class Binomial(Family):
    """Binomial proportions (``wt`` = number of trials), logit link."""

    name = "binomial"
    link = "logit"
    scale_known = True
    _EPS = 1e-15

    def mu(self, eta: np.ndarray) -> np.ndarray:
        return np.clip(expit(eta), self._EPS, 1.0 - self._EPS)

    def eta_of_mu(self, mu: np.ndarray) -> np.ndarray:
        return np.log(mu) - np.log1p(-mu)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu)

    def dw(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu) * (1.0 - 2.0 * mu)

    def d2w(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu) * (1.0 - 6.0 * mu + 6.0 * mu * mu)

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        d = xlogy(y, y) - xlogy(y, mu) + xlogy(1.0 - y, 1.0 - y) - xlogy(1.0 - y, 1.0 - mu)
        return float(2.0 * np.dot(wt, d))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        # log choose(m, m y) with m = trials, as R's dbinom(round(m y), round(m), mu)
        m = np.round(wt)
        s = np.round(wt * y)
        lchoose = gammaln(m + 1.0) - gammaln(s + 1.0) - gammaln(m - s + 1.0)
        core = xlogy(wt * y, mu) + xlogy(wt * (1.0 - y), 1.0 - mu)
        return float(np.sum(lchoose + core))

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return (wt * y + 0.5) / (wt + 1.0)

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any((y < 0) | (y > 1)):
            raise ValueError(
                f"column {column!r}: binomial response must be 0/1 (or a proportion in [0, 1] "
                "with weights = number of trials)"
            )
        trials = wt > 0
        if np.all(wt == 1.0) and np.any((y != 0.0) & (y != 1.0)):
            raise ValueError(
                f"column {column!r}: binomial response must be binary 0/1 (pass the number of "
                "trials as weights for proportions)"
            )
        # non-integer successes are allowed, as in glm/mgcv: gamstore.fit.diagnostics warns
        used = y[trials]
        if used.size and (np.all(used == 0.0) or np.all(used == 1.0)):
            raise ValueError(
                f"column {column!r}: binomial response has a single outcome "
                f"(all {int(used[0])}); the model is not estimable"
            )


FAMILIES: dict[str, type[Family]] = {"gaussian": Gaussian, "poisson": Poisson, "binomial": Binomial}


def get_family(family: str | Family) -> Family:
    """Resolve a family name (``"gaussian"``, ``"poisson"``, ``"binomial"``) or instance."""
    if isinstance(family, Family):
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a string or Family, got {type(family).__name__}")
    cls = FAMILIES.get(family.lower())
    if cls is None:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    return cls()
