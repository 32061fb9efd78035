"""Exponential families and links for the reference fitter.

Each family supplies what PIRLS and the Laplace REML need: the inverse link, the working
weights and their first two derivatives with respect to the linear predictor, the deviance,
the full log-likelihood (with the ``lgamma`` terms, so that the REML score is on mgcv's
``gcv.ubre`` scale) and, for a family with an unknown scale, mgcv's saturated log-likelihood
``ls(scale)`` with its first two derivatives.

For a canonical link the working weights are the Fisher weights ``wt * V(mu)``. For any other
link they are mgcv's full Newton weights (``gam.fit3`` with ``fisher = FALSE``):
``w = wt * alpha * mu'^2 / V`` with ``alpha = 1 + (y - mu) (V'/V + g'' mu')``, the exact
Hessian of the negative log-likelihood in the linear predictor, so that ``X'WX + S`` is the
exact Hessian of the penalized objective and the REML derivatives stay exact. Their
derivatives in ``eta`` come from the third and fourth derivatives of the log-likelihood,
built from those of the variance function and the inverse link.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, expit, gammaln, ndtr, polygamma, xlogy

_ETA_MAX = 700.0  # exp() overflows just above 709
_DBL_EPS = float(np.finfo(np.float64).eps)
_PROBIT_THRESH = 8.125890664701906  # -qnorm(.Machine$double.eps), R's probit linkinv bound
_INV_SQRT_2PI = 0.3989422804014327


# ----------------------------------------------------------------------------------- links


class Link(ABC):
    """A link ``g(mu) = eta`` with the first four derivatives of its inverse."""

    name: ClassVar[str]

    @abstractmethod
    def fun(self, mu: np.ndarray) -> np.ndarray:
        """``g(mu)``."""

    @abstractmethod
    def inv(self, eta: np.ndarray) -> np.ndarray:
        """``g^{-1}(eta)`` (unbounded; the family applies its own range)."""

    @abstractmethod
    def derivs(
        self, eta: np.ndarray, mu: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``d^k mu / d eta^k`` for k = 1..4 at ``eta`` (``mu`` is ``inv(eta)``)."""


class IdentityLink(Link):
    name = "identity"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return eta

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        z = np.zeros_like(eta)
        return np.ones_like(eta), z, z, z


class LogLink(Link):
    name = "log"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return np.log(mu)

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return np.maximum(np.exp(np.minimum(eta, _ETA_MAX)), _DBL_EPS)

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        e = np.maximum(np.exp(np.minimum(eta, _ETA_MAX)), _DBL_EPS)
        return e, e, e, e


class InverseLink(Link):
    name = "inverse"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / mu

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return 1.0 / eta

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        m = 1.0 / eta
        m2 = m * m
        return -m2, 2.0 * m2 * m, -6.0 * m2 * m2, 24.0 * m2 * m2 * m


class InverseSquareLink(Link):
    name = "1/mu^2"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 / (mu * mu)

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return 1.0 / np.sqrt(eta)

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        # mu = eta^(-1/2)
        r = eta**-0.5
        return (
            -0.5 * r / eta,
            0.75 * r / eta**2,
            -1.875 * r / eta**3,
            6.5625 * r / eta**4,
        )


class SqrtLink(Link):
    name = "sqrt"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return np.sqrt(mu)

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return eta * eta

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        z = np.zeros_like(eta)
        return 2.0 * eta, np.full_like(eta, 2.0), z, z


class LogitLink(Link):
    name = "logit"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return np.log(mu) - np.log1p(-mu)

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return np.asarray(expit(eta))

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        p = expit(eta)
        v = p * (1.0 - p)
        return v, v * (1.0 - 2.0 * p), v * (1.0 - 6.0 * v), v * (1.0 - 2.0 * p) * (1.0 - 12.0 * v)


class ProbitLink(Link):
    name = "probit"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        from scipy.special import ndtri

        return np.asarray(ndtri(mu))

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return np.asarray(ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH)))

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        # R's mu.eta: pmax(dnorm(eta), .Machine$double.eps)
        phi = np.maximum(_INV_SQRT_2PI * np.exp(-0.5 * eta * eta), _DBL_EPS)
        e2 = eta * eta
        return phi, -eta * phi, (e2 - 1.0) * phi, eta * (3.0 - e2) * phi


class CloglogLink(Link):
    name = "cloglog"

    def fun(self, mu: np.ndarray) -> np.ndarray:
        return np.log(-np.log1p(-mu))

    def inv(self, eta: np.ndarray) -> np.ndarray:
        return np.asarray(-np.expm1(-np.exp(np.minimum(eta, _ETA_MAX))))

    def derivs(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, ...]:  # type: ignore[override]
        # mu = 1 - exp(-exp(eta)); mu' = exp(g), g = eta - exp(eta); R bounds mu' below by eps
        e = np.exp(np.minimum(eta, _ETA_MAX))
        m1 = np.maximum(np.exp(np.minimum(eta, _ETA_MAX) - e), _DBL_EPS)
        g1 = 1.0 - e
        g2 = -e
        return m1, m1 * g1, m1 * (g1 * g1 + g2), m1 * (g1**3 + 3.0 * g1 * g2 + g2)


LINKS: dict[str, type[Link]] = {
    cls.name: cls
    for cls in (
        IdentityLink,
        LogLink,
        InverseLink,
        InverseSquareLink,
        SqrtLink,
        LogitLink,
        ProbitLink,
        CloglogLink,
    )
}


# -------------------------------------------------------------------------------- families


class Family(ABC):
    """An exponential family (or quasi-family) with a link.

    Parameters
    ----------
    link : str or None
        Link name (one of the family's ``links``); None is the family's default link
        (R's default: canonical except for ``Gamma``, whose R default ``inverse`` is also
        its canonical link here).
    """

    name: ClassVar[str]
    canonical: ClassVar[str]
    links: ClassVar[tuple[str, ...]]
    scale_known: ClassVar[bool]
    # the three original families keep their closed-form canonical weights bit for bit
    _closed_canonical: ClassVar[bool] = False
    # an mgcv extended family (nb, tw): fitted by gam.fit4, whose reported scale is the REML
    # estimate (not Fletcher's)
    extended: ClassVar[bool] = False
    # whether the REML score is convex in log(scale) through ls (a slope-based Newton then
    # suffices; tw's series is lumpy in the scale near p = 1)
    ls_log_concave: ClassVar[bool] = True
    # whether the profile search of the extended-family parameter ends with secant steps on
    # its slope (newton._polish_ext): tw, whose REML scale moves with p (nb's Brent answer is
    # already within 1e-6 of mgcv's, and the steps would cost it 10-17 %)
    polish_ext: ClassVar[bool] = False

    def __init__(self, link: str | None = None) -> None:
        link = self.canonical if link is None else link
        if not isinstance(link, str) or link not in self.links:
            raise ValueError(
                f"family {self.name!r}: link must be one of {list(self.links)}, got {link!r}"
            )
        self.link: str = link
        self._link: Link = LINKS[link]()

    # -- identity --------------------------------------------------------------------------

    @property
    def is_canonical(self) -> bool:
        """Whether the link is the canonical one (Fisher = Newton weights)."""
        return self.link == self.canonical

    @property
    def kind(self) -> str:
        """Family and link as one name (``"binomial"`` for the canonical link of the original
        three families, as before links existed; ``"Gamma(log)"`` style otherwise). This is
        the family kind of the warm-start descriptors, so fits with different links never
        share a key."""
        if self._closed_canonical and self.is_canonical:
            return self.name
        return f"{self.name}({self.link})"

    @property
    def n_ext(self) -> int:
        """Number of extended-family parameters the fit estimates (nb's log theta)."""
        return 0

    def start_family(self) -> Family:
        """The family the cold start's weights use (nb with theta estimated: theta = 1)."""
        return self

    def log_scale_starts(self) -> tuple[float, ...]:
        """Extra starting points (log scale) of the scale profile, for a family whose REML
        score is not convex in log(scale) (``ls_log_concave`` False): the profile keeps the
        lowest of the local minima it reaches from them. None by default."""
        return ()

    def ext_bounds(self) -> tuple[float, float]:
        """Search interval of the extended-family parameter (``n_ext == 1`` only)."""
        raise NotImplementedError(f"family {self.name!r} estimates no extra parameter")

    def ext_first_bounds(self) -> tuple[float, float] | None:
        """Where a cold search of the extended-family parameter looks first (None: the whole
        of :meth:`ext_bounds`); the whole interval follows when the optimum is at an edge."""
        return None

    def ext_scan(self) -> tuple[float, ...]:
        """Values of the extended-family parameter a cold search also evaluates, outside
        :meth:`ext_first_bounds`, to catch another local optimum of the profile (none by
        default)."""
        return ()

    def with_ext(self, t: float) -> Family:
        """A copy with the extended-family parameter fixed at ``t`` (its working scale:
        nb's log theta, tw's theta = log((p - a)/(b - p)))."""
        raise NotImplementedError(f"family {self.name!r} estimates no extra parameter")

    @property
    def identity_gaussian(self) -> bool:
        """Gaussian with identity link: one least-squares solve, scale profiled in closed form."""
        return self.name == "gaussian" and self.link == "identity"

    # -- mean and link ---------------------------------------------------------------------

    def mu(self, eta: np.ndarray) -> np.ndarray:
        """Inverse link (bounded to the family's range as R's ``linkinv``)."""
        return self._link.inv(eta)

    def eta_of_mu(self, mu: np.ndarray) -> np.ndarray:
        """Link function."""
        return self._link.fun(mu)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """``d mu / d eta``."""
        return self._link.derivs(eta, self.mu(eta))[0]

    @abstractmethod
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function V(mu)."""

    @abstractmethod
    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``V'(mu), V''(mu), V'''(mu)``."""

    # -- working weights -------------------------------------------------------------------

    def fisher_weights(self, eta: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """``wt * mu'(eta)^2 / V(mu)`` (mgcv's ``weights``)."""
        if self._closed_canonical and self.is_canonical:
            return wt * self.variance(mu)
        m1 = self._link.derivs(eta, mu)[0]
        return wt * m1 * m1 / self.variance(mu)

    def working(
        self, y: np.ndarray, eta: np.ndarray, mu: np.ndarray, wt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Newton weights ``w`` and score ``u = d l / d eta`` (PIRLS solves with
        ``X'(w (eta - offset) + u)``)."""
        if self._closed_canonical and self.is_canonical:
            return wt * self.variance(mu), wt * (y - mu)
        m1, m2, _, _ = self._link.derivs(eta, mu)
        V = self.variance(mu)
        V1 = self.var_derivs(mu)[0]
        r = y - mu
        wf = wt * m1 * m1 / V
        if self.is_canonical:
            return wf, wt * r * m1 / V
        alpha = 1.0 + r * (V1 / V - m2 / (m1 * m1))
        alpha = np.where(alpha == 0.0, _DBL_EPS, alpha)  # as gam.fit3
        return wf * alpha, wt * r * m1 / V

    def weight_derivs(
        self, y: np.ndarray, eta: np.ndarray, mu: np.ndarray, wt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Newton weights and their first two derivatives in ``eta``: ``w = -l''``,
        ``-l'''``, ``-l''''`` (``l`` the log-likelihood of each row at unit scale)."""
        if self._closed_canonical and self.is_canonical:
            return wt * self.variance(mu), wt * self._dw(mu), wt * self._d2w(mu)
        m1, m2, m3, m4 = self._link.derivs(eta, mu)
        V = self.variance(mu)
        V1, V2, V3 = self.var_derivs(mu)
        r = y - mu
        iV = 1.0 / V
        a1, a2, a3 = V1 * iV, V2 * iV, V3 * iV  # V^(k) / V
        # derivatives in mu of f = dl/dmu = wt (y - mu) / V
        f0 = wt * r * iV
        f1 = wt * iV * (-1.0 - r * a1)
        f2 = wt * iV * (2.0 * a1 - r * (a2 - 2.0 * a1 * a1))
        f3 = wt * iV * (3.0 * a2 - 6.0 * a1 * a1 - r * (a3 - 6.0 * a1 * a2 + 6.0 * a1**3))
        w, _ = self.working(y, eta, mu, wt)
        l3 = f2 * m1**3 + 3.0 * f1 * m1 * m2 + f0 * m3
        l4 = f3 * m1**4 + 6.0 * f2 * m1 * m1 * m2 + f1 * (3.0 * m2 * m2 + 4.0 * m1 * m3) + f0 * m4
        return w, -l3, -l4

    def _dw(self, mu: np.ndarray) -> np.ndarray:  # pragma: no cover - canonical families only
        raise NotImplementedError

    def _d2w(self, mu: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # -- likelihood ------------------------------------------------------------------------

    @abstractmethod
    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        """Deviance ``2 (l_sat - l)`` (at unit scale)."""

    @abstractmethod
    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        """Full log-likelihood including normalising constants."""

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        """mgcv's ``family$ls``: saturated log-likelihood at ``scale`` and its first two
        derivatives in ``scale`` (unknown-scale families only)."""
        raise NotImplementedError(f"family {self.name!r} has a known scale")

    @abstractmethod
    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """Cold-start mean (as ``glm``'s ``mustart``)."""

    @abstractmethod
    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        """Raise ValueError naming ``column`` if ``y`` is outside the family's support."""

    def _check_link_range(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        """The cold start ``mustart`` must be inside the link's domain."""
        m = self.initial_mu(y[wt > 0], wt[wt > 0])
        with np.errstate(all="ignore"):
            eta = self.eta_of_mu(m)
        if not np.all(np.isfinite(eta)):
            raise ValueError(
                f"column {column!r}: family {self.name!r} with link {self.link!r} cannot start "
                f"from this response (the link of the starting mean is not finite)"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.link == self.link  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link))


def _gaussian_ls(wt: np.ndarray, scale: float, two_pi: bool = True) -> tuple[float, float, float]:
    pos = wt > 0
    nobs = int(np.count_nonzero(pos))
    c = 2.0 * np.pi * scale if two_pi else scale
    return (
        float(-nobs * np.log(c) / 2.0 + np.sum(np.log(wt[pos])) / 2.0),
        -nobs / (2.0 * scale),
        nobs / (2.0 * scale * scale),
    )


class Gaussian(Family):
    """Normal errors, unknown scale; links identity (canonical), log, inverse."""

    name = "gaussian"
    canonical = "identity"
    links = ("identity", "log", "inverse")
    scale_known = False
    _closed_canonical = True

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = np.zeros_like(mu)
        return z, z, z

    def _dw(self, mu: np.ndarray) -> np.ndarray:
        return np.zeros_like(mu)

    def _d2w(self, mu: np.ndarray) -> np.ndarray:
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

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        return _gaussian_ls(wt, scale)

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y.astype(np.float64, copy=True)

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        used = y[wt > 0]
        if used.size and np.ptp(used) == 0.0:
            raise ValueError(
                f"column {column!r}: gaussian response is constant; the scale cannot be estimated"
            )
        if self.link != "identity":
            self._check_link_range(y, wt, column)


class Poisson(Family):
    """Poisson counts; links log (canonical), identity, sqrt."""

    name = "poisson"
    canonical = "log"
    links = ("log", "identity", "sqrt")
    scale_known = True
    _closed_canonical = True

    def mu(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "log":
            return np.exp(np.minimum(eta, _ETA_MAX))
        return self._link.inv(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = np.zeros_like(mu)
        return np.ones_like(mu), z, z

    def _dw(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def _d2w(self, mu: np.ndarray) -> np.ndarray:
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
                f"column {column!r}: {self.name} response must be non-negative counts, "
                f"found {int(np.count_nonzero(y < 0))} negative value(s)"
            )
        if not np.any(y[wt > 0] > 0):
            raise ValueError(f"column {column!r}: {self.name} response is all zero")


class Binomial(Family):
    """Binomial proportions (``wt`` = number of trials); links logit (canonical), probit,
    cloglog."""

    name = "binomial"
    canonical = "logit"
    links = ("logit", "probit", "cloglog")
    scale_known = True
    _closed_canonical = True
    _EPS = 1e-15

    def mu(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "logit":
            return np.clip(expit(eta), self._EPS, 1.0 - self._EPS)
        if self.link == "cloglog":
            # R: pmax(pmin(-expm1(-exp(eta)), 1 - eps), eps)
            return np.clip(self._link.inv(eta), _DBL_EPS, 1.0 - _DBL_EPS)
        return self._link.inv(eta)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu)

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return 1.0 - 2.0 * mu, np.full_like(mu, -2.0), np.zeros_like(mu)

    def _dw(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu) * (1.0 - 2.0 * mu)

    def _d2w(self, mu: np.ndarray) -> np.ndarray:
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
                f"column {column!r}: {self.name} response must be 0/1 (or a proportion in "
                "[0, 1] with weights = number of trials)"
            )
        trials = wt > 0
        if np.all(wt == 1.0) and np.any((y != 0.0) & (y != 1.0)):
            raise ValueError(
                f"column {column!r}: {self.name} response must be binary 0/1 (pass the number "
                "of trials as weights for proportions)"
            )
        # non-integer successes are allowed, as in glm/mgcv: gamstore.fit.diagnostics warns
        used = y[trials]
        if used.size and (np.all(used == 0.0) or np.all(used == 1.0)):
            raise ValueError(
                f"column {column!r}: {self.name} response has a single outcome "
                f"(all {int(used[0])}); the model is not estimable"
            )


class QuasiPoisson(Poisson):
    """Poisson mean-variance relation with an estimated scale (mgcv's quasi ``ls``)."""

    name = "quasipoisson"
    scale_known = False
    _closed_canonical = False

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        # no likelihood: the REML score uses ls(); this is the Poisson one for diagnostics
        return float(np.dot(wt, xlogy(y, mu) - mu - gammaln(y + 1.0)))

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        return _gaussian_ls(wt, scale, two_pi=False)


class QuasiBinomial(Binomial):
    """Binomial mean-variance relation with an estimated scale (mgcv's quasi ``ls``)."""

    name = "quasibinomial"
    scale_known = False
    _closed_canonical = False

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        return _gaussian_ls(wt, scale, two_pi=False)

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any((y < 0) | (y > 1)):
            raise ValueError(
                f"column {column!r}: quasibinomial response must be a proportion in [0, 1]"
            )
        used = y[wt > 0]
        if used.size and (np.all(used == 0.0) or np.all(used == 1.0)):
            raise ValueError(
                f"column {column!r}: quasibinomial response has a single outcome "
                f"(all {int(used[0])}); the model is not estimable"
            )


class Gamma(Family):
    """Gamma errors (positive response, unknown scale); links inverse (canonical), log,
    identity."""

    name = "Gamma"
    canonical = "inverse"
    links = ("inverse", "log", "identity")
    scale_known = False

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu * mu

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return 2.0 * mu, np.full_like(mu, 2.0), np.zeros_like(mu)

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        # R: -2 wt (log(ifelse(y == 0, 1, y/mu)) - (y - mu)/mu)
        return float(-2.0 * np.dot(wt, np.log(y / mu) - (y - mu) / mu))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        pos = wt > 0
        y, mu, wt = y[pos], mu[pos], wt[pos]
        nu = wt / scale  # shape
        return float(np.sum(nu * np.log(nu * y / mu) - nu * y / mu - np.log(y) - gammaln(nu)))

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        # mgcv fix.family.ls (Gamma)
        pos = wt > 0
        y, w = y[pos], wt[pos]
        s = scale / w
        k0 = -gammaln(1.0 / s) - np.log(s) / s - 1.0 / s
        k1 = (digamma(1.0 / s) + np.log(s)) / (s * s)
        k2 = (-polygamma(1, 1.0 / s) / s + (1.0 - 2.0 * np.log(s) - 2.0 * digamma(1.0 / s))) / s**3
        return float(np.sum(k0 - np.log(y))), float(np.sum(k1 / w)), float(np.sum(k2 / w**2))

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y.astype(np.float64, copy=True)

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any(y[wt > 0] <= 0):
            raise ValueError(
                f"column {column!r}: Gamma response must be positive, found "
                f"{int(np.count_nonzero(y[wt > 0] <= 0))} value(s) <= 0"
            )
        self._check_link_range(y, wt, column)


class InverseGaussian(Family):
    """Inverse Gaussian errors (positive response, unknown scale); links 1/mu^2 (canonical),
    log, inverse, identity."""

    name = "inverse.gaussian"
    canonical = "1/mu^2"
    links = ("1/mu^2", "log", "inverse", "identity")
    scale_known = False

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu**3

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return 3.0 * mu * mu, 6.0 * mu, np.full_like(mu, 6.0)

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        r = y - mu
        return float(np.dot(wt, r * r / (y * mu * mu)))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        pos = wt > 0
        y, mu, wt = y[pos], mu[pos], wt[pos]
        r = y - mu
        return float(
            np.sum(
                0.5 * np.log(wt / (2.0 * np.pi * scale * y**3))
                - wt * r * r / (2.0 * scale * y * mu * mu)
            )
        )

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        pos = wt > 0
        nobs = int(np.count_nonzero(pos))
        return (
            float(
                -np.sum(np.log(2.0 * np.pi * scale * y[pos] ** 3)) / 2.0
                + np.sum(np.log(wt[pos])) / 2.0
            ),
            -nobs / (2.0 * scale),
            nobs / (2.0 * scale * scale),
        )

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y.astype(np.float64, copy=True)

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any(y[wt > 0] <= 0):
            raise ValueError(
                f"column {column!r}: inverse.gaussian response must be positive, found "
                f"{int(np.count_nonzero(y[wt > 0] <= 0))} value(s) <= 0"
            )
        self._check_link_range(y, wt, column)


class NegBin(Family):
    """Negative binomial counts (mgcv's ``nb()``): ``V(mu) = mu + mu^2 / theta``, scale 1;
    link log.

    ``theta=None`` (``"nb"``) estimates theta by REML with the smoothing parameters: the fit
    profiles the REML score over ``log(theta)`` (:func:`gamstore.fit.newton.profile_theta`)
    and evaluates each candidate with a fixed-theta copy (:meth:`with_theta`). No link is
    canonical for theta unknown, so the Newton weights are the observed ones, as mgcv's
    extended-family PIRLS uses.
    """

    name = "nb"
    canonical = "log"
    extended = True
    links = ("log", "identity", "sqrt")
    scale_known = True

    def __init__(self, link: str | None = None, theta: float | None = None) -> None:
        super().__init__(link)
        if theta is not None and not (np.isfinite(theta) and theta > 0):
            raise ValueError(f"family 'nb': theta must be a positive finite number, got {theta!r}")
        self.theta: float | None = None if theta is None else float(theta)

    @property
    def is_canonical(self) -> bool:
        return False  # log(mu / (mu + theta)) is the canonical link, never offered

    @property
    def n_ext(self) -> int:
        """Number of extended-family parameters estimated (log theta)."""
        return 1 if self.theta is None else 0

    def with_theta(self, theta: float) -> NegBin:
        """A copy with theta fixed (an evaluation of the REML profile)."""
        return NegBin(self.link, theta)

    def ext_bounds(self) -> tuple[float, float]:
        """log(theta) from e^-7 to e^12 (near-geometric to Poisson-like; at the upper end nb
        is Poisson to 1e-5)."""
        return (-7.0, 12.0)

    def with_ext(self, t: float) -> NegBin:
        """A copy at ``log(theta) = t``."""
        return self.with_theta(float(np.exp(t)))

    def start_family(self) -> Family:
        return self if self.theta is not None else self.with_theta(1.0)

    def _th(self) -> float:
        if self.theta is None:
            raise ValueError("family 'nb': theta is estimated; evaluate with_theta(theta)")
        return self.theta

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu + mu * mu / self._th()

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        th = self._th()
        return 1.0 + 2.0 * mu / th, np.full_like(mu, 2.0 / th), np.zeros_like(mu)

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        th = self._th()
        if np.any(mu[wt > 0] <= 0):
            return float("inf")  # mgcv's validmu (mu > 0): identity / sqrt steps are halved
        return float(2.0 * np.dot(wt, xlogy(y, y / mu) - (y + th) * np.log((y + th) / (mu + th))))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        th = self._th()
        per = (
            gammaln(y + th)
            - gammaln(th)
            - gammaln(y + 1.0)
            + th * np.log(th)
            + xlogy(y, mu)
            - (y + th) * np.log(mu + th)
        )
        return float(np.dot(wt, per))

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y + (y == 0) / 6.0  # mgcv nb()$initialize

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any(y < 0):
            raise ValueError(
                f"column {column!r}: nb response must be non-negative counts, "
                f"found {int(np.count_nonzero(y < 0))} negative value(s)"
            )
        self._check_link_range(y, wt, column)

    def __repr__(self) -> str:
        return f"NegBin(link={self.link!r}, theta={self.theta!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and other.link == self.link  # type: ignore[attr-defined]
            and other.theta == self.theta  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link, self.theta))


class Tweedie(Family):
    """Tweedie errors with ``1 < p < 2`` (mgcv's ``tw()``): ``V(mu) = mu^p``, scale estimated,
    link log.

    ``p=None`` (``"tw"``) estimates the power by REML with the smoothing parameters and the
    scale, as mgcv does on its working scale ``theta = log((p - a)/(b - p))``,
    ``(a, b) = (1.01, 1.99)``: the fit profiles the REML score over theta
    (:func:`gamstore.fit.newton.profile_theta`) and evaluates each candidate with a fixed-p
    copy (:meth:`with_ext`), whose scale is profiled like any estimated scale, with mgcv's
    saturated log-likelihood ``ls(phi) = sum(w * log f(y; y, phi, p))`` from Dunn & Smyth's
    series (:mod:`gamstore.fit.tweedie`). As in mgcv, prior weights multiply the log density
    (``w * ldTweedie(y, mu, p, phi)``); they do not divide the scale.
    """

    name = "tw"
    canonical = "log"
    links = ("log",)  # mgcv also offers identity, sqrt, inverse: not yet covered by parity
    scale_known = False
    extended = True
    ls_log_concave = False
    polish_ext = True
    A, B = 1.01, 1.99  # mgcv tw()'s default (a, b)

    def __init__(self, link: str | None = None, p: float | None = None) -> None:
        super().__init__(link)
        if p is not None and not (np.isfinite(p) and self.A < p < self.B):
            raise ValueError(f"family 'tw': p must be a number in ({self.A}, {self.B}), got {p!r}")
        self.p: float | None = None if p is None else float(p)
        self._table: Any = None  # the series' tabulated terms at p (built on first use)

    def _series(self) -> Any:
        from gamstore.fit.tweedie import SeriesTable

        if self._table is None:
            self._table = SeriesTable(self._p())
        return self._table

    @property
    def is_canonical(self) -> bool:
        return False  # mu^(1-p)/(1-p) is the canonical link, never offered

    @property
    def n_ext(self) -> int:
        """Number of extended-family parameters estimated (mgcv's theta for p)."""
        return 1 if self.p is None else 0

    def ext_bounds(self) -> tuple[float, float]:
        """theta in [-25, 16] (mgcv's theta is unbounded): p within 1.4e-11 of a = 1.01 at the
        lower end, where a profile driven to p = a still falls steeply (discoveries: REML
        2.7e3 per unit of p, 4.7e-4 above mgcv's at theta = -16); within 1e-7 of b at the
        upper end, past which p, the fit and REML change by less than 1e-7."""
        return (-25.0, 16.0)

    def ext_first_bounds(self) -> tuple[float, float] | None:
        """theta in [-4, 4] (p from 1.027 to 1.973) first: near p = 2 the series needs
        hundreds of terms per row, and most fits end inside."""
        return (-4.0, 4.0)

    def ext_scan(self) -> tuple[float, ...]:
        """theta values a cold search also tries below ``ext_first_bounds`` (p = 1.01, 1.0103,
        1.014), where the profile is multimodal (p near 1); the search refines around the
        best of them when it beats the one found inside."""
        return (-25.0, -8.0, -5.5)

    def log_scale_starts(self) -> tuple[float, ...]:
        """Near p = 1 (p < 1.1) the saturated likelihood is lumpy in the scale, with a local
        optimum near every ``phi = 1/k`` (a scaled Poisson's): ``log(1/k)``, k = 1..10."""
        if self.p is None or self.p >= 1.1:
            return ()
        return tuple(-float(np.log(k)) for k in range(1, 11))

    def with_ext(self, t: float) -> Tweedie:
        """A copy at mgcv's working parameter ``theta = t`` (``p = p_of_theta(t)``)."""
        from gamstore.fit.tweedie import p_of_theta

        return Tweedie(self.link, p_of_theta(t, self.A, self.B))

    def start_family(self) -> Family:
        # mgcv's iniTheta = 0: p = (a + b) / 2
        return self if self.p is not None else Tweedie(self.link, (self.A + self.B) / 2.0)

    def _p(self) -> float:
        if self.p is None:
            raise ValueError("family 'tw': p is estimated; evaluate with_ext(theta)")
        return self.p

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.power(mu, self._p())

    def var_derivs(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self._p()
        v1 = p * np.power(mu, p - 1.0)
        v2 = p * (p - 1.0) * np.power(mu, p - 2.0)
        return v1, v2, p * (p - 1.0) * (p - 2.0) * np.power(mu, p - 3.0)

    def deviance(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        # mgcv tw()$dev.resids
        p = self._p()
        y1 = y + (y == 0)
        th = (np.power(y1, 1.0 - p) - np.power(mu, 1.0 - p)) / (1.0 - p)
        ka = (np.power(y, 2.0 - p) - np.power(mu, 2.0 - p)) / (2.0 - p)
        return float(np.sum(np.maximum(2.0 * (y * th - ka) * wt, 0.0)))

    def loglik(self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, scale: float) -> float:
        from gamstore.fit.tweedie import log_density

        pos = wt > 0
        ld = log_density(y[pos], mu[pos], scale, self._p(), self._series())[0]
        return float(np.dot(wt[pos], ld))

    def ls(self, y: np.ndarray, wt: np.ndarray, scale: float) -> tuple[float, float, float]:
        # mgcv tw()$ls: colSums(w * ldTweedie(y, y, rho = log(scale), theta)), in d/dphi
        from gamstore.fit.tweedie import log_density

        pos = wt > 0
        w = wt[pos]
        l0, l1, l2 = log_density(y[pos], y[pos], scale, self._p(), self._series())
        r0, r1, r2 = float(np.dot(w, l0)), float(np.dot(w, l1)), float(np.dot(w, l2))
        return r0, r1 / scale, (r2 - r1) / (scale * scale)

    def initial_mu(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y + (y == 0) * 0.1  # mgcv tw()$initialize

    def validate(self, y: np.ndarray, wt: np.ndarray, column: str) -> None:
        if np.any(y < 0):
            raise ValueError(
                f"column {column!r}: tw (Tweedie) response must be non-negative, found "
                f"{int(np.count_nonzero(y < 0))} negative value(s)"
            )
        if not np.any(y[wt > 0] > 0):
            raise ValueError(f"column {column!r}: tw (Tweedie) response is all zero")
        self._check_link_range(y, wt, column)

    def __repr__(self) -> str:
        return f"Tweedie(link={self.link!r}, p={self.p!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and other.link == self.link  # type: ignore[attr-defined]
            and other.p == self.p  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link, self.p))


FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "poisson": Poisson,
    "binomial": Binomial,
    "gamma": Gamma,
    "inverse.gaussian": InverseGaussian,
    "quasipoisson": QuasiPoisson,
    "quasibinomial": QuasiBinomial,
    "nb": NegBin,
    "tw": Tweedie,
}


def family_names() -> list[str]:
    """Every ``family`` string :func:`get_family` accepts, default links first
    (``"gaussian"``, ..., ``"binomial(probit)"``, ``"Gamma(log)"``, ...)."""
    out: list[str] = []
    for key, cls in FAMILIES.items():
        out.append(key)
        out.extend(f"{key}({ln})" for ln in cls.links if ln != cls.canonical)
    return out


def get_family(family: str | Family, link: str | None = None) -> Family:
    """Resolve a family name (``"gaussian"``, ``"poisson"``, ``"binomial"``, ``"Gamma"``,
    ``"inverse.gaussian"``, ``"quasipoisson"``, ``"quasibinomial"``), optionally with the link
    in parentheses as R writes it (``"binomial(probit)"``, ``"Gamma(log)"``) or as ``link``,
    or an instance."""
    if isinstance(family, Family):
        if link is not None and link != family.link:
            raise ValueError(f"link {link!r} given with a {family!r} instance")
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a string or Family, got {type(family).__name__}")
    name = family.strip()
    if name.endswith(")") and "(" in name:
        name, _, inner = name[:-1].partition("(")
        inner = inner.strip().strip("\"'")
        inner = inner.removeprefix("link=").strip().strip("\"'")
        if link is not None and link != inner:
            raise ValueError(f"family {family!r} and link {link!r} disagree")
        link = inner
        name = name.strip()
    cls = FAMILIES.get(name.lower())
    if cls is None:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    return cls(link)
