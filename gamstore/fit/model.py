"""User-facing model: ``GAM([s("x0"), s("x1", k=12)], family=..., linear=[...]).fit(data, y=...)``.

``fit`` validates the data, builds the mgcv-compatible design, starts the REML Newton loop from
mgcv's ``initial.sp`` (cold) or from a warm start found through :mod:`gamstore.warmstart`, and
returns a :class:`FitResult` with per-block coefficients in raw and reduced coordinates.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

import numpy as np

from gamstore.fit import diagnostics
from gamstore.fit.data import (
    check_na_action,
    get_column,
    missing_mask,
    n_rows,
    resolve_vector,
    take_rows,
)
from gamstore.fit.design import (
    PARAMETRIC,
    Design,
    RawRows,
    SmoothTerm,
    SurfaceTerm,
    TensorTerm,
    build_design,
)
from gamstore.fit.families import Family, get_family
from gamstore.fit.inference import (
    Covariances,
    FinalPieces,
    GamSummary,
    corrected_covariance,
    covariances,
    family_loglik_ml,
    final_pieces,
    summarize,
)
from gamstore.fit.newton import (
    InnerCap,
    NewtonControl,
    NewtonResult,
    OnIterate,
    newton,
    profile_theta,
)
from gamstore.fit.reml import Problem, RemlEval, edf_per_block, fletcher_scale
from gamstore.fit.startcheck import StartCheck, StartCheckPolicy, as_policy

if TYPE_CHECKING:  # pragma: no cover
    from gamstore.fit.inputkey import DeferredRowBlocks
    from gamstore.warmstart.keys import RowBlockDigests

logger = logging.getLogger("gamstore.fit")

WARM_LEVELS = ("cold", "exact", "session", "cross-fit", "explicit")

#: How ``fit(store=...)`` answers from an exact record (see :meth:`GAM.fit`).
EXACT_HIT_MODES = ("lazy", "eager", "recertify")

# the FitResult fields an exact hit answered from its record computes on first read (the
# design, the fitted values and everything derived from them; see FitResult._deferred)
DEFERRED_FIELDS = frozenset(
    {
        "beta_raw",
        "beta_reduced",
        "fitted",
        "linear_predictor",
        "knots",
        "grad",
        "deviance",
        "S_scale",
        "_design",
        "_family",
    }
)


def s(
    term: str | Sequence[str], k: int | None = None, bs: str = "ps", by: str | None = None
) -> SmoothTerm:
    """A smooth of one covariate (mgcv ``s(term, bs=bs, k=k, by=by)``), or with
    ``bs="tp"`` of several (mgcv ``s(x, z)``: ``s(("x", "z"), bs="tp")``, an isotropic
    thin-plate surface with one smoothing parameter).

    Parameters
    ----------
    term : str or sequence of str
        Covariate column name; several for a thin-plate surface (``bs="tp"``).
    k : int or None
        Basis dimension before the sum-to-zero constraint (default 10, for a surface of d
        covariates mgcv's ``M + 27``: 30 in 2-D; at least 4 for ``ps``, ``cc`` and ``cp``,
        3 for ``cr`` and 1-D ``tp``; not used by ``re``).
    bs : str
        Basis (mgcv's ``bs`` codes): ``"ps"`` cubic P-spline (the default here), ``"tp"``
        thin-plate regression spline (mgcv's default), ``"cr"`` cubic regression spline,
        ``"cc"`` cyclic cubic regression spline, ``"cp"`` cyclic P-spline. The cyclic bases
        take their period from ``fit(knots={term: (lo, hi)})``, else from the data.
        ``"re"``: random effect of a factor column (one coefficient per level, identity
        penalty; a numeric column gives a random slope).
    by : str or None
        Factor column: one centred smooth per level (blocks ``s(term):byLEVEL``, one
        smoothing parameter each). Numeric column: a varying coefficient (``s(term):by``,
        not centred).

    Returns
    -------
    SmoothTerm
    """
    if not isinstance(term, str) and isinstance(term, Sequence) and len(term) > 1:
        cov = tuple(term)
        if k is None:
            from gamstore.fit.bases.tp import default_order, null_space_dim

            d = len(cov)
            k = null_space_dim(d, default_order(d)) + (27 if d == 2 else 100)
        kk = int(k) if isinstance(k, (int, np.integer)) else k
        return SurfaceTerm(cov[0], kk, bs, by, covariates=cov)
    if not isinstance(term, str) and isinstance(term, Sequence) and len(term) == 1:
        term = term[0]
    if k is None:
        k = 10
    return SmoothTerm(term, int(k) if isinstance(k, (int, np.integer)) else k, bs, by)  # type: ignore[arg-type]


def te(
    *terms: str, k: int | Sequence[int] = 5, bs: str = "ps", by: str | None = None
) -> TensorTerm:
    """A tensor-product smooth of two or more covariates (mgcv ``te(x, z, bs=bs, k=k)``).

    One smoothing parameter per margin; the penalties are mgcv's ``S_1 (x) I`` and
    ``I (x) S_2`` (after its ``np`` reparameterization and scaling), and the whole product is
    centred (sum-to-zero). The margins' knots are reported and frozen under the keys
    ``te(x,z)[x]`` of ``FitResult.knots`` / ``fit(knots=...)``.

    Parameters
    ----------
    *terms : str
        Covariate columns (two or more).
    k : int or sequence of int
        Basis dimension per margin (mgcv's default 5).
    bs : str
        The margins' 1-D basis (default ``"ps"``; mgcv's te default is ``"cr"``).
    by : str, optional
        mgcv's ``by``: a factor column gives one tensor product per level (blocks
        ``te(x,z):fA``, one ρ per margin each; put the factor in ``linear=`` for the level
        means, as in mgcv); a numeric column multiplies the product (a varying-coefficient
        surface, uncentred when the column is not constant). Margin knots are then keyed
        ``te(x,z):f[x]``.

    Returns
    -------
    TensorTerm
    """
    return _tensor("te", terms, k, bs, by)


def ti(
    *terms: str, k: int | Sequence[int] = 5, bs: str = "ps", by: str | None = None
) -> TensorTerm:
    """A tensor-product interaction (mgcv ``ti(x, z, bs=bs, k=k)``): each margin is centred
    before the product, so ``s(x) + s(z) + ti(x, z)`` separates main effects and interaction.
    Arguments as :func:`te` (``by``: one interaction per level, or times a numeric column;
    a ti has no constraint of its own to drop)."""
    return _tensor("ti", terms, k, bs, by)


def _tensor(kind: str, terms: tuple[str, ...], k: Any, bs: str, by: str | None) -> TensorTerm:
    ks: list[Any] = [k] * len(terms) if isinstance(k, (int, np.integer)) else list(k)
    ks = [int(v) if isinstance(v, np.integer) else v for v in ks]
    first: Any = ks[0] if ks else 5
    return TensorTerm(terms[0] if terms else "", first, bs, by, tuple(terms), tuple(ks), kind)


class Prediction(NamedTuple):
    """``predict(..., se_fit=True)``: predictions and their standard errors."""

    fit: np.ndarray
    se_fit: np.ndarray


@dataclass
class FitResult:
    """A fitted GAM at its REML optimum.

    Attributes
    ----------
    family : str
        Family name.
    rho : numpy.ndarray
        Log smoothing parameters (mgcv ``log(sp)`` scale): one per smooth, one per margin of
        a tensor product; ``rho_names`` labels them.
    beta_raw, beta_reduced : dict[str, numpy.ndarray]
        Coefficients per block (``"(parametric)"``, ``"s(x0)"``, ...); raw = B-spline
        coefficients, reduced = after the sum-to-zero constraint (mgcv's ``coef``).
    edf : dict[str, float]
        Effective degrees of freedom per block (including the parametric block).
    reml : float
        REML score on mgcv's ``gcv.ubre`` scale.
    scale : float
        Scale parameter as mgcv reports it (``sig2``): 1 for a known scale, the REML estimate
        for Gaussian with identity link, Fletcher's estimate otherwise (Gamma, inverse
        Gaussian, quasi families, Gaussian with another link).
    fitted : numpy.ndarray
        Fitted values on the response scale, shape (n,).
    n_outer, n_pirls_calls, n_pirls_iters : int
        Outer Newton iterations, PIRLS calls and PIRLS iterations of this fit.
    warm : str
        Where the start came from: "cold", "exact", "session", "cross-fit" or "explicit"
        (``rho0``/``beta0`` passed by the caller).
    knots : dict[str, numpy.ndarray]
        Full knot vector per smooth covariate (pass back as ``fit(knots=...)`` to freeze).
    converged : bool
        Outer loop convergence.
    wall_time : float
        Seconds spent in ``fit``.
    grad : numpy.ndarray
        REML gradient in rho at the returned optimum.
    deviance : float
        Deviance at the optimum.
    n : int
        Rows used by the fit (after omitting incomplete rows).
    n_dropped : int
        Rows omitted for missing values (``na_action="omit"``); their positions in the
        input are ``dropped_rows``. ``fitted`` and ``linear_predictor`` cover the kept rows.
    warnings : list of GamFitWarning
        The warnings this fit raised (see :mod:`gamstore.fit.diagnostics`), also emitted
        through :func:`warnings.warn` when the fit returned.
    start_check : StartCheck or None
        With a store: where the fit started, how far rho moved, whether the cold check ran
        and what it found (see :mod:`gamstore.fit.startcheck`); None without a store.
    ext : numpy.ndarray or None
        Extended-family parameters estimated with rho (``nb``: ``[log theta]``; ``tw``:
        ``[theta]`` with ``p = (b + a e^-theta)/(1 + e^-theta)``, ``(a, b) = (1.01, 1.99)``;
        mgcv's ``family$getTheta()``); None for the other families.
    reml_scale : float
        The scale at the REML optimum (mgcv's ``reml.scale``; 1 for a known scale).
    warm_decision : str
        With a store: what the warm-start policy decided and why (e.g. ``"lookup skipped:
        fit ~3 ms, store round trip 40 ms"``, see :mod:`gamstore.warmstart.policy`); ""
        without a store.

    Notes
    -----
    An exact refit answered from its stored record (``warm == "exact"``, ``n_outer == 0``,
    ``fit(exact_hit="lazy")``, the default) carries ρ, β, REML, scale, edf and the warnings
    from the record and builds the design on the first read of anything that needs it
    (coefficients per block, fitted values, the linear predictor, the gradient, the
    deviance, knots, covariances, predictions, summaries). What it then computes is what
    ``fit(exact_hit="eager")`` computes at once: the same numbers.
    """

    family: str
    rho: np.ndarray
    beta_raw: dict[str, np.ndarray]
    beta_reduced: dict[str, np.ndarray]
    edf: dict[str, float]
    reml: float
    scale: float
    fitted: np.ndarray
    linear_predictor: np.ndarray
    n_outer: int
    n_pirls_calls: int
    n_pirls_iters: int
    warm: str
    knots: dict[str, np.ndarray]
    converged: bool
    wall_time: float
    grad: np.ndarray
    deviance: float
    S_scale: dict[str, float]
    n: int
    model: GAM = field(repr=False)
    _design: Design = field(repr=False)
    _family: Family = field(repr=False)
    _offset_column: str | None = field(default=None, repr=False)
    # the fit problem (design matrix, response, weights) and its final REML evaluation, kept
    # for inference (Vp, summary, AIC), as mgcv keeps its model matrix
    _problem: Problem | None = field(default=None, repr=False)
    _final: RemlEval | None = field(default=None, repr=False)
    _response: str = field(default="y", repr=False)
    warnings: list[diagnostics.GamFitWarning] = field(default_factory=list, repr=False)
    start_check: StartCheck | None = field(default=None, repr=False)
    reml_scale: float = float("nan")
    ext: np.ndarray | None = None
    warm_decision: str = ""

    @property
    def theta(self) -> float | None:
        """The negative binomial ``theta`` the fit used (estimated: ``exp(ext[0])``; or the
        one fixed in ``NegBin(theta=...)``); None for the other families. A LOSO fold scores
        its held-out rows at its own theta (:func:`gamstore.loso.deviance.deviance`)."""
        th = getattr(self._family, "theta", None)
        return None if th is None else float(th)

    @property
    def power(self) -> float | None:
        """The Tweedie power ``p`` the fit used (``tw``: estimated, mgcv's
        ``family$getTheta(TRUE)``); None for the other families."""
        p = getattr(self._family, "p", None)
        return None if p is None else float(p)

    # -- an exact hit's deferred fields ------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # only reached for a missing attribute: a deferred field of an exact hit not read yet
        # (an exact hit of a LOSO fold fitted from moments computes in two steps: the fold,
        # then its fitted values when they are read)
        if name in DEFERRED_FIELDS:
            while name not in self.__dict__ and self._materialize():
                pass
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _materialize(self) -> bool:
        """Compute the deferred fields of an exact hit now (False: nothing was pending)."""
        pending = self.__dict__.get("_pending")
        if pending is None:
            return False
        compute, lock = pending
        with lock:  # one result's threads wait for one computation; other results do not
            if self.__dict__.get("_pending") is not pending:
                return True  # another thread computed them meanwhile
            compute(self)  # sets every deferred field (raises: nothing set, still pending)
            if self.__dict__.get("_pending") is pending:  # compute may leave a next step
                self.__dict__["_pending"] = None
            return True

    @property
    def deferred(self) -> bool:
        """True while the design-dependent fields of an exact hit answered from its record
        have not been computed yet (they are computed on first read); also while the fitted
        values of a Gaussian LOSO fold fitted from moments (its model matrix never formed,
        :mod:`gamstore.fit.foldview`) have not been read."""
        return self.__dict__.get("_pending") is not None

    def __getstate__(self) -> dict[str, Any]:
        while self._materialize():  # a pickled result carries its values, not a way to
            pass  # compute them
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- inference (mgcv's Vp, Ve, summary.gam, AIC) -----------------------------------------
    def _need_final(self) -> tuple[Problem, RemlEval]:
        if self._problem is None or self._final is None:
            self._materialize()  # an exact hit's deferred fit (not a fold's fitted values)
        if self._problem is None or self._final is None:
            raise ValueError(
                "this FitResult carries no final REML evaluation (it was not made by "
                "GAM.fit); refit to get standard errors and summaries"
            )
        return self._problem, self._final

    @cached_property
    def _pieces(self) -> FinalPieces:
        prob, fin = self._need_final()
        return final_pieces(prob, fin, hessian=False)

    @cached_property
    def _covariances(self) -> Covariances:
        return covariances(self._design, self._pieces, float(self.scale))

    @cached_property
    def _corrected(self) -> tuple[np.ndarray, np.ndarray] | None:
        prob, fin = self._need_final()
        pieces = final_pieces(prob, fin, hessian=True)
        return corrected_covariance(
            self._design,
            pieces,
            self._covariances,
            self.rho,
            float(self.scale),
            not self._family.scale_known,
        )

    @property
    def coef_names(self) -> list[str]:
        """Coefficient names in model order, as mgcv's ``names(coef(b))``."""
        return self._design.coef_labels

    @property
    def Vp(self) -> np.ndarray:
        """Bayesian posterior covariance of ``coef`` (mgcv's ``b$Vp``), shape (p, p)."""
        return self._covariances.Vp.copy()

    @property
    def Ve(self) -> np.ndarray:
        """Frequentist covariance of ``coef`` (mgcv's ``b$Ve``), shape (p, p)."""
        return self._covariances.Ve.copy()

    @property
    def Vc(self) -> np.ndarray:
        """``Vp`` corrected for smoothing-parameter uncertainty (mgcv's ``b$Vc``)."""
        corr = self._corrected
        return self.Vp if corr is None else corr[0].copy()

    @property
    def edf_coef(self) -> np.ndarray:
        """Effective degrees of freedom per coefficient (mgcv's ``b$edf``)."""
        return self._covariances.edf.copy()

    @property
    def edf1(self) -> np.ndarray:
        """mgcv's ``b$edf1`` (``2 edf - diag(F F)``), the smooth tests' reference df."""
        return self._covariances.edf1.copy()

    @property
    def edf2(self) -> np.ndarray:
        """mgcv's ``b$edf2``: edf corrected for smoothing-parameter uncertainty."""
        corr = self._corrected
        return self.edf1 if corr is None else corr[1].copy()

    @property
    def loglik(self) -> float:
        """Log-likelihood as mgcv's ``logLik(b)`` (Gaussian: at the ML scale)."""
        pieces = self._pieces
        return family_loglik_ml(self._family, pieces.y, self.fitted, pieces.wt, self.reml_scale)

    @property
    def loglik_df(self) -> float:
        """Degrees of freedom of ``loglik`` (mgcv: ``sum(edf2)`` + 1 for an estimated
        scale, at most the number of coefficients + 1; plus the extended-family parameters
        estimated, ``n.theta``: nb's theta, tw's p)."""
        sc = 0.0 if self._family.scale_known else 1.0
        df = float(self.edf2.sum()) + sc
        n_theta = 0 if self.ext is None else int(np.size(self.ext))
        return min(df, float(self._design.p) + sc) + n_theta

    @property
    def aic(self) -> float:
        """AIC as mgcv's ``AIC(b)``: ``-2 logLik + 2 df`` with the edf2 correction."""
        return -2.0 * self.loglik + 2.0 * self.loglik_df

    @property
    def formula(self) -> str:
        """The model as an mgcv formula (for display)."""
        terms = [t.name for t in self._design.linear]
        terms += [_mgcv_term(sm) for sm in self.model.smooths]
        return f"{self._response} ~ {' + '.join(terms) if terms else '1'}"

    def summary(self, *, show: bool = True) -> GamSummary:
        """mgcv's ``summary.gam``: parametric and smooth tables, R-sq.(adj), deviance
        explained, -REML, scale and n.

        Parameters
        ----------
        show : bool
            Print the table (as mgcv's ``print.summary.gam``) as well as returning it.

        Returns
        -------
        GamSummary
            ``.parametric`` and ``.smooth`` DataFrames, the statistics as attributes,
            ``.to_dataset()`` for xarray.
        """
        out = summarize(self)
        if show:
            print(out)
        return out

    def plot(self, **kwargs: Any) -> Any:
        """Plot every smooth with ±2 standard-error bands and a rug (mgcv's ``plot.gam``).

        Keyword arguments go to :func:`gamstore.plotting.plot_smooths`; returns the figure.
        """
        from gamstore.plotting import plot_smooths

        return plot_smooths(self, **kwargs)

    @property
    def dropped_rows(self) -> np.ndarray:
        """Positions (0-based, in the input data) of the rows omitted for missing values."""
        return self._design.dropped.copy()

    @property
    def n_dropped(self) -> int:
        """Number of rows omitted for missing values (mgcv's ``length(b$na.action)``)."""
        return int(self._design.dropped.size)

    @property
    def sp(self) -> np.ndarray:
        """Smoothing parameters ``exp(rho)``."""
        return np.exp(self.rho)

    @property
    def block_names(self) -> list[str]:
        """Block names in model order."""
        return list(self._design.block_names)

    @property
    def rho_names(self) -> list[str]:
        """One name per entry of ``rho``: the block's name for a block with one smoothing
        parameter (``s(x)``, ``s(x):fA``), the block's name and the margin for a tensor
        product's (``te(x,z)[x]``, ``te(x,z)[z]``, ``te(x,z):fA[x]``), as the margins' knots
        are keyed in ``knots``."""
        return self._design.rho_labels()

    @property
    def coef(self) -> np.ndarray:
        """All reduced coefficients in model order (mgcv's ``coef(b)``)."""
        return np.concatenate([self.beta_reduced[name] for name in self._design.block_names])

    @property
    def edf_total(self) -> float:
        """Total effective degrees of freedom."""
        return float(sum(self.edf.values()))

    @overload
    def predict(
        self,
        new_data: Any,
        type: Literal["response", "link"] = ...,
        offset: Any = ...,
        *,
        se_fit: Literal[False] = ...,
    ) -> np.ndarray: ...

    @overload
    def predict(
        self,
        new_data: Any,
        type: Literal["response", "link"] = ...,
        offset: Any = ...,
        *,
        se_fit: Literal[True],
    ) -> Prediction: ...

    def predict(
        self,
        new_data: Any,
        type: Literal["response", "link"] = "response",
        offset: Any = None,
        *,
        se_fit: bool = False,
    ) -> np.ndarray | Prediction:
        """Predict on new data with the fitted bases (knots and constraints frozen).

        Parameters
        ----------
        new_data : pandas.DataFrame or Mapping[str, array-like]
            Must hold every covariate of the model. Beyond the fitted range a smooth
            continues as a straight line (mgcv's rule for ``ps``), with an
            :class:`~gamstore.fit.ExtrapolationWarning`. A row with a missing covariate predicts
            NaN (mgcv's ``na.pass``) under ``na_action="omit"``.
        type : {"response", "link"}
            Scale of the prediction.
        offset : None, str or array-like
            Offset for the new rows. None uses the fit's offset column when the fit took its
            offset from a column present in ``new_data``, else zero.
        se_fit : bool
            Also return standard errors from the posterior covariance ``Vp`` (mgcv's
            ``predict.gam(se.fit = TRUE)``; on the response scale multiplied by
            ``|dmu/deta|``).

        Returns
        -------
        numpy.ndarray or Prediction
            Shape (n_new,); with ``se_fit=True`` a ``Prediction(fit, se_fit)``.

        Warns
        -----
        ExtrapolationWarning
            When a smooth covariate lies beyond the range the smooth was fitted on, naming
            the covariate, how many rows and the range.
        """
        if type not in ("response", "link"):
            raise ValueError(f"type must be 'response' or 'link', got {type!r}")
        n = n_rows(new_data)
        rows = np.arange(n)
        data = new_data
        if self.model.na_action == "omit":
            cols = {t.name: "covariate" for t in self._design.linear}
            cols.update({c: "covariate" for b in self._design.smooths for c in b.spec.columns})
            for b in self._design.smooths:
                if isinstance(b.spec, TensorTerm):
                    cols.update({m: "covariate" for m in b.spec.margins})
            cols.update(
                {b.extra.by: "covariate" for b in self._design.smooths if b.extra and b.extra.by}
            )
            bad = missing_mask(new_data, cols)
            if bad is not None:
                rows = np.flatnonzero(~bad)
                data = take_rows(new_data, rows)
        X = self._design.predict_matrix(data)
        beta_w = self._design.from_reduced(self.beta_reduced)
        eta_k = X @ beta_w
        if offset is None and self._offset_column is not None:
            try:
                offset = get_column(data, self._offset_column, role="offset")
            except ValueError:
                offset = None
        elif offset is not None and not isinstance(offset, str):
            offset = np.asarray(offset, dtype=np.float64)
            if offset.shape == (n,):
                offset = offset[rows]
        if offset is not None:
            off, _ = resolve_vector(data, offset, rows.size, role="offset", default=0.0)
            eta_k = eta_k + off
        eta = np.full(n, np.nan)
        eta[rows] = eta_k
        fit = eta.copy()
        fit[rows] = eta_k if type == "link" else self._family.mu(eta_k)
        if not se_fit:
            return fit
        # Vp in the working basis: the rows of X are already there
        vp_w = self._pieces.Hinv * float(self.scale)
        se_k = np.sqrt(np.maximum(np.einsum("ij,ij->i", X @ vp_w, X), 0.0))
        if type == "response":
            se_k = se_k * np.abs(self._family.mu_eta(eta_k))
        se = np.full(n, np.nan)
        se[rows] = se_k
        return Prediction(fit, se)


class GAM:
    """Additive model with P-spline smooths fitted by REML, with mgcv parity.

    Parameters
    ----------
    smooths : sequence of SmoothTerm
        Smooth terms built with :func:`s`.
    family : str or Family
        Response family, with a link other than its default in parentheses as R writes it:
        ``"gaussian"``, ``"poisson"``, ``"binomial"``, ``"Gamma"``, ``"inverse.gaussian"``,
        ``"quasipoisson"``, ``"quasibinomial"``, e.g. ``"binomial(probit)"``,
        ``"Gamma(log)"`` (docs/fitting.md, "Families and links").
    linear : sequence of str
        Unpenalized linear covariates (an intercept is always included).
    control : NewtonControl or None
        Outer-loop settings (mgcv defaults).
    checkpoint_interval : float
        With a store, seconds between outer-session checkpoints of accepted Newton steps
        (the first after this long into the fit); 0 checkpoints every step. The converged
        fit is always finalized.
    na_action : {"omit", "raise"}
        Rows with a missing value (NaN, None) in the response, a covariate, the weights or
        the offset: dropped before fitting (``"omit"``, mgcv's ``na.omit`` default; counted
        in ``res.n_dropped``) or an error naming the column (``"raise"``).
    start_check : {"auto", "always", "never"} or StartCheckPolicy
        With a store, when a fit that started from *another* fit's optimum (a LOSO fold from
        the full-data fit) is also fitted cold, keeping the lower REML (see
        :class:`gamstore.fit.startcheck.StartCheckPolicy` and docs/warm-start.md).
    """

    def __init__(
        self,
        smooths: Sequence[SmoothTerm],
        family: str | Family = "gaussian",
        linear: Sequence[str] = (),
        control: NewtonControl | None = None,
        checkpoint_interval: float = 1.0,
        na_action: str = "omit",
        start_check: StartCheckPolicy | str = "auto",
    ) -> None:
        self.na_action = check_na_action(na_action)
        if isinstance(smooths, SmoothTerm):
            smooths = [smooths]
        smooths = list(smooths)
        for i, sm in enumerate(smooths):
            if not isinstance(sm, SmoothTerm):
                raise TypeError(f"smooths[{i}] must be built with s(...), got {type(sm).__name__}")
        if isinstance(linear, str):
            linear = [linear]
        linear = list(linear)
        for name in linear:
            if not isinstance(name, str):
                raise TypeError(f"linear terms must be column names, got {name!r}")
        terms = [sm.term for sm in smooths]
        keys = [sm.key for sm in smooths]
        if len(set(keys)) != len(keys):
            raise ValueError(f"each covariate may have one smooth (per by variable), got {keys}")
        if len(set(linear)) != len(linear) or set(linear) & set(terms):
            raise ValueError(f"linear terms {linear} repeat each other or a smooth covariate")
        self.smooths: list[SmoothTerm] = smooths
        self.family: Family = get_family(family)
        self.linear: list[str] = linear
        self.control: NewtonControl = control or NewtonControl()
        if not (isinstance(checkpoint_interval, (int, float)) and checkpoint_interval >= 0):
            raise ValueError(
                f"checkpoint_interval must be >= 0 seconds, got {checkpoint_interval!r}"
            )
        self.checkpoint_interval = float(checkpoint_interval)
        self.start_check: StartCheckPolicy = as_policy(start_check)

    def __repr__(self) -> str:
        parts = [_py_term(sm) for sm in self.smooths]
        na = "" if self.na_action == "omit" else f", na_action={self.na_action!r}"
        return f"GAM([{', '.join(parts)}], family={self.family.kind!r}, linear={self.linear!r}{na})"

    def model_columns(self, y: Any, weights: Any = None, offset: Any = None) -> dict[str, str]:
        """Every data column the fit reads, mapped to its role (for missing-value checks)."""
        cols: dict[str, str] = {}
        for name, role in zip(response_columns(y), ("response", "trials"), strict=False):
            cols[name] = role
        for sm in self.smooths:
            for c in sm.columns:  # covariates, a by column, a tensor product's margins
                role = "by variable" if c == sm.by else "covariate"
                cols.setdefault(c, f"{role} of {sm.label}")
        for name in self.linear:
            cols.setdefault(name, "linear covariate")
        for spec, role in ((weights, "weights"), (offset, "offset")):
            if isinstance(spec, str):
                cols.setdefault(spec, role)
        return cols

    def row_block_digests(
        self,
        data: Any,
        y: str | tuple[str, str] = "y",
        weights: Any = None,
        offset: Any = None,
        *,
        groups: str | None = None,
    ) -> RowBlockDigests:
        """Digests of the columns a fit of ``data`` reads, one per row block.

        Pass them back as ``fit(..., row_blocks=...)`` (of this data, or of the data minus
        some blocks: ``digests.without(label)``) and the store key is derived from them in
        O(blocks) instead of hashing the rows (see :mod:`gamstore.fit.inputkey`).

        Parameters
        ----------
        data, y, weights, offset
            As for :meth:`fit`.
        groups : str, optional
            A column of group labels (e.g. subjects): one block per label, in canonical
            order (labels sorted; each group's rows in data order). A fit given these
            digests must read its rows in that order. None: one block, the rows as given.

        Returns
        -------
        gamstore.warmstart.keys.RowBlockDigests
        """
        from gamstore.fit.inputkey import data_digests

        return data_digests(self, data, y, weights, offset, groups=groups)

    def store_key(
        self,
        data: Any,
        y: str | tuple[str, str] = "y",
        weights: Any = None,
        offset: Any = None,
        knots: Mapping[str, Any] | None = None,
        *,
        row_blocks: RowBlockDigests | None = None,
    ) -> str:
        """The exact key ``"cf-<16 hex>"`` under which ``fit(data, ..., store=...)`` looks
        up and saves its block record (its session keys derive from it).

        A digest of the fit's inputs: the columns it reads, the model, the knots and the
        fitter settings (:mod:`gamstore.fit.inputkey`), never the built design.

        Raises
        ------
        ValueError, TypeError
            For data the fit itself would refuse, or ``row_blocks`` of other data.
        """
        from gamstore.fit.inputkey import fit_key

        self.prepare(data, y, weights, offset, knots)  # the fit's own checks first
        return fit_key(self, data, y, weights, offset, knots, row_blocks)

    def complete_rows(
        self, data: Any, y: Any, weights: Any = None, offset: Any = None
    ) -> np.ndarray | None:
        """Positions of the rows with a missing model value, or None when there are none."""
        bad = missing_mask(data, self.model_columns(y, weights, offset))
        return None if bad is None else np.flatnonzero(bad)

    def prepare(
        self,
        data: Any,
        y: str | tuple[str, str],
        weights: Any = None,
        offset: Any = None,
        knots: Mapping[str, Any] | None = None,
        raw_rows: RawRows | None = None,
    ) -> tuple[Problem, str | None]:
        """Validate the data and build the fit problem (design, response, weights, offset).

        ``y`` is the response column, or for the binomial family a pair
        ``(successes, trials)`` of count columns (mgcv's ``cbind(successes, failures)``
        with failures = trials - successes): the response is then the proportion and the
        weights are the trials (times any prior ``weights``). ``raw_rows``: raw basis rows
        evaluated elsewhere (see :func:`~gamstore.fit.design.build_design`).
        """
        cols = response_columns(y)
        fold = self._gaussian_fold(data, cols, weights, offset, knots, raw_rows)
        if fold is not None:
            return fold, offset if isinstance(offset, str) else None
        dropped = np.zeros(0, dtype=np.int64)
        if self.na_action == "omit":
            bad = self.complete_rows(data, y, weights, offset)
            if bad is not None:
                dropped = bad.astype(np.int64)
                keep = np.setdiff1d(np.arange(n_rows(data)), dropped)
                data = take_rows(data, keep)
                if weights is not None and not isinstance(weights, str):
                    weights = np.asarray(weights)[keep]
                if offset is not None and not isinstance(offset, str):
                    offset = np.asarray(offset)[keep]
        n = n_rows(data)
        wt, _ = resolve_vector(data, weights, n, role="weights", default=1.0)
        if len(cols) == 2:
            yv, wt = self._binomial_counts(data, cols, wt)
        else:
            yv = get_column(data, cols[0], role="response")
        if np.any(wt < 0):
            raise ValueError("weights must be non-negative")
        if not np.any(wt > 0):
            raise ValueError("weights are all zero")
        off, off_col = resolve_vector(data, offset, n, role="offset", default=0.0)
        self.family.validate(yv, wt, cols[0])
        if knots is not None and not isinstance(knots, Mapping):
            raise TypeError("knots must be a mapping covariate -> knot vector or range")
        w0 = None
        if not self.family.identity_gaussian or np.any(wt != 1.0):
            # mgcv initial.spg: start from the design weighted at the family's starting mean
            # (Fisher weights wt * mu.eta^2 / V; wt * V for a canonical link)
            mu0 = self.family.initial_mu(yv, wt)
            fam0 = self.family.start_family()
            w0 = fam0.fisher_weights(fam0.eta_of_mu(mu0), mu0, wt)
        moments = None
        build = getattr(raw_rows, "gaussian_design", None)
        if (
            build is not None
            and self.family.identity_gaussian
            and len(cols) == 1
            and not dropped.size
            and (w0 is None or np.array_equal(w0, wt))
        ):
            # a Gaussian LOSO fold: its design from the full data's moments, p x p only
            # (gamstore.fit.foldview); None builds it as usual
            moments = build(
                data, list(self.smooths), list(self.linear), dict(knots) if knots else None,
                yv, wt, off,
            )  # fmt: skip
        if moments is not None:
            design = moments[0]
        else:
            design = build_design(
                data,
                self.smooths,
                self.linear,
                dict(knots) if knots else None,
                start_weights=w0,
                raw_rows=raw_rows,
            )
        design.dropped = dropped
        design.notes.extend(diagnostics.response_notes(self.family.name, yv, wt, cols[0]))
        prob = Problem(design, yv, wt, off, self.family)
        seed = getattr(raw_rows, "gaussian_gram", None)
        if moments is not None:
            prob.seed_gaussian_gram(moments[1], moments[2])
        elif seed is not None and self.family.identity_gaussian:
            # a LOSO fold: X'WX downdated from the full data's (gamstore.fit.foldview)
            gram = seed(design, yv, wt, off)
            if gram is not None:
                prob.seed_gaussian_gram(*gram)
        return prob, off_col

    def _gaussian_fold(
        self,
        data: Any,
        cols: tuple[str, ...],
        weights: Any,
        offset: Any,
        knots: Mapping[str, Any] | None,
        raw_rows: RawRows | None,
    ) -> Problem | None:
        """A Gaussian LOSO fold's problem from the full data, its own rows not read
        (:meth:`gamstore.fit.foldview.FoldRows.gaussian_fold`: only for rows the LOSO
        pipeline vouches for, the full data checked once); None: prepare as usual."""
        make = getattr(raw_rows, "gaussian_fold", None)
        if (
            make is None
            or not self.family.identity_gaussian
            or len(cols) != 1
            or not (weights is None or isinstance(weights, str))
            or not (offset is None or isinstance(offset, str))
            or not (knots is None or isinstance(knots, Mapping))
        ):
            return None
        got = make(
            list(self.smooths),
            list(self.linear),
            dict(knots) if knots else None,
            (cols[0], weights, offset),
            n_rows(data),
        )
        if got is None:
            return None
        # mgcv's initial.spg weights of an identity Gaussian are the prior weights (w0 = wt)
        # and its response draws no notes (diagnostics.response_notes): nothing else to do
        prob = Problem(got.design, got.y, got.wt, got.offset, self.family)
        prob.seed_gaussian_gram(got.XtWX, got.XtWz)
        prob.seed_sums(got.n_eff, got.ztwz, got.sum_log_wt)
        return prob

    def _binomial_counts(
        self, data: Any, cols: tuple[str, ...], wt: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(successes, trials)`` columns -> (proportion, trials x prior weights)."""
        if self.family.name not in ("binomial", "quasibinomial"):
            raise ValueError(
                f"y=({cols[0]!r}, {cols[1]!r}): a (successes, trials) response needs "
                f"family='binomial' or 'quasibinomial' (any link), got {self.family.name!r}"
            )
        succ = get_column(data, cols[0], role="successes")
        trials = get_column(data, cols[1], role="trials")
        if np.any(trials < 0) or np.any(succ < 0):
            raise ValueError(f"columns {cols[0]!r}, {cols[1]!r}: counts must be non-negative")
        if np.any(succ > trials):
            i = int(np.flatnonzero(succ > trials)[0])
            raise ValueError(
                f"column {cols[0]!r} (successes) exceeds {cols[1]!r} (trials) at row {i}"
            )
        # as glm's binomial initialize: y = s / n (0 where n = 0), weights = n
        with np.errstate(invalid="ignore", divide="ignore"):
            prop = np.where(trials > 0, succ / np.where(trials > 0, trials, 1.0), 0.0)
        return prop, wt * trials

    def fit(
        self,
        data: Any,
        y: str | tuple[str, str] = "y",
        weights: Any = None,
        offset: Any = None,
        knots: Mapping[str, Any] | None = None,
        store: Any = None,
        *,
        rho0: Any = None,
        beta0: Any = None,
        inner_cap: InnerCap | None = None,
        on_iterate: OnIterate | None = None,
        raw_rows: RawRows | None = None,
        row_blocks: RowBlockDigests | DeferredRowBlocks | None = None,
        warm_policy: Any = None,
        exact_hit: str = "lazy",
    ) -> FitResult:
        """Fit by REML.

        Parameters
        ----------
        data : pandas.DataFrame or Mapping[str, array-like]
            Data with the response and all covariates.
        y : str or (str, str)
            Response column; for the binomial family also ``(successes, trials)`` columns.
        weights : None, str or array-like
            Prior weights (binomial: number of trials, with ``y`` a proportion).
        offset : None, str or array-like
            Offset on the link scale.
        knots : mapping or None
            Per smooth covariate: a 2-value range, or a full knot vector (``res.knots``) to
            freeze the basis of an earlier fit.
        store : gamstore Store or None
            Warm-start store (exact record, outer session, cross-fit artifact), through
            :mod:`gamstore.warmstart`. A store problem never changes the answer.
        rho0 : array-like or None
            Explicit starting log smoothing parameters (skips the store lookups).
        beta0 : mapping or array-like or None
            Explicit starting coefficients: reduced coefficients per block name, or one flat
            reduced vector in model order.
        inner_cap : callable or None
            ``inner_cap(evaluation_index) -> PIRLS iteration cap or None``.
        on_iterate : callable or None
            Called after the start and every accepted outer iterate.
        raw_rows : callable or None
            Raw basis rows already evaluated on a larger data set these rows come from (a
            LOSO fold: ``gamstore.fit.foldview.FullRawBases(full_data).rows(keep)``); the
            fit is the same, only the basis evaluation is skipped.
        row_blocks : RowBlockDigests, DeferredRowBlocks or None
            With a store: digests of ``data`` made earlier by :meth:`row_block_digests`
            (e.g. the full data's minus one subject, as ``run_loso`` passes to each fold),
            in the row order of ``data``; the store key is then derived from them without
            hashing the data. Deferred digests
            (:class:`gamstore.fit.inputkey.DeferredRowBlocks`) are made only when the key
            is needed (a lookup or a save). They must describe ``data`` exactly: the columns and row count
            are checked, the values are not (wrong digests cannot change the answer, every
            warm start is recertified, but they can cost one). None: the data is hashed.
        warm_policy : WarmPolicy, "always", "adaptive" or None
            With a store: when to look up and save (:mod:`gamstore.warmstart.policy`; the
            answer never depends on it). None: the process default (adaptive).
        exact_hit : {"lazy", "eager", "recertify"}
            With a store, how an exact refit (the same inputs as a converged fit whose block
            record carries its result) is answered. ``"lazy"`` (default): ρ, β, REML, scale,
            edf and warnings come from the record before the design is built; the design
            and everything derived from it (fitted values, coefficients per block,
            covariances, predictions) are computed on first read, at the stored ρ and β.
            ``"eager"``: the same, all computed now (the reference the lazy result
            equals). ``"recertify"``: the design is built and the Newton loop restarts at
            the stored optimum (one REML evaluation, a PIRLS step), as every other warm
            start. See docs/warm-start.md ("Exact refit").

        Returns
        -------
        FitResult

        Raises
        ------
        ValueError
            When ``row_blocks`` are digests of other columns or another row count, or
            ``exact_hit`` is not one of the modes.
        """
        t0 = time.perf_counter()
        if row_blocks is not None:
            from gamstore.fit.inputkey import DeferredRowBlocks
            from gamstore.warmstart.keys import RowBlockDigests

            if not isinstance(row_blocks, RowBlockDigests | DeferredRowBlocks):
                raise TypeError(
                    "row_blocks: expected RowBlockDigests (from GAM.row_block_digests) or "
                    "DeferredRowBlocks, "
                    f"got {type(row_blocks).__name__}"
                )
        if exact_hit not in EXACT_HIT_MODES:
            raise ValueError(f"exact_hit: expected one of {EXACT_HIT_MODES}, got {exact_hit!r}")
        warm = store is not None and rho0 is None and beta0 is None
        # derived on first use: a fit whose lookups and saves the adaptive warm-start
        # policy skips never hashes its inputs
        key: Any = functools.partial(self._input_key, data, y, weights, offset, knots, row_blocks)
        probe = None
        if warm and exact_hit != "recertify" and on_iterate is None and not self.family.n_ext:
            from gamstore.fit.warm import answer_exact

            # an exact refit answered from its record before the design is built
            inputs = (data, y, weights, offset, knots, raw_rows)
            verify = None if row_blocks is not None else key
            found, probe = answer_exact(
                self, store, key, inputs, t0, warm_policy, exact_hit, verify=verify
            )
            if found is not None:
                found._response = _response_label(y)
                return found
            if probe is not None and probe.key is not None:
                key = probe.key  # hashed once
        prob, off_col = self.prepare(data, y, weights, offset, knots, raw_rows)
        if warm:
            from gamstore.fit.warm import fit_with_store

            with self._provenance(y, prob):
                res = fit_with_store(
                    self,
                    prob,
                    off_col,
                    store,
                    t0,
                    inner_cap,
                    on_iterate,
                    key=key,
                    policy=warm_policy,
                    probe=probe,
                )
        else:
            start_rho, start_beta, label = self._explicit_start(prob.design, rho0, beta0)
            nres = self.run(prob, start_rho, start_beta, inner_cap=inner_cap, on_iterate=on_iterate)
            res = self.make_result(prob, off_col, nres, label, t0)
        res._response = _response_label(y)
        return res

    def _input_key(
        self,
        data: Any,
        y: Any,
        weights: Any,
        offset: Any,
        knots: Mapping[str, Any] | None,
        row_blocks: RowBlockDigests | DeferredRowBlocks | None,
    ) -> str | None:
        """The fit's store key from its inputs; None (the fit keys its built design
        instead) if the inputs cannot be hashed: a key problem never fails a fit."""
        from gamstore.fit.inputkey import fit_key

        try:
            return fit_key(self, data, y, weights, offset, knots, row_blocks)
        except ValueError:
            if row_blocks is not None:
                raise  # the caller's digests do not describe the data
            logger.info("input key unavailable; keying the built design", exc_info=True)
        except Exception as exc:  # noqa: BLE001 - e.g. a column type nobody hashes
            logger.info(
                "input key unavailable (%s: %s); keying the built design", type(exc).__name__, exc
            )
        return None

    def _provenance(self, y: Any, prob: Problem) -> AbstractContextManager[Any]:
        """Provenance of the entries this fit saves: response, covariates, rows, run id
        (the enclosing run's, e.g. a LOSO run, else a new one). Names are kept as text,
        cut to the stored size: provenance never fails a fit."""
        from gamstore.warmstart.provenance import (
            MAX_COVARIATES,
            MAX_TEXT,
            current_provenance,
            new_run_id,
            provenance,
        )

        names = [sm.term for sm in self.smooths] + list(self.linear)
        return provenance(
            response=",".join(str(c) for c in response_columns(y))[:MAX_TEXT],
            covariates=[str(c)[:MAX_TEXT] for c in names[:MAX_COVARIATES]],
            terms=[str(b)[:MAX_TEXT] for b in prob.design.block_names[:MAX_COVARIATES]],
            n_rows=int(prob.y.size),
            run_id=current_provenance().get("run_id") or new_run_id(),
        )

    def _explicit_start(
        self, d: Design, rho0: Any, beta0: Any
    ) -> tuple[np.ndarray, np.ndarray | None, str]:
        if rho0 is None and beta0 is None:
            return d.initial_rho.copy(), None, "cold"
        rho = d.initial_rho.copy()
        if rho0 is not None:
            rho = np.asarray(rho0, dtype=np.float64).ravel()
            if rho.shape != (d.n_sp,) or not np.all(np.isfinite(rho)):
                raise ValueError(f"rho0 must be {d.n_sp} finite values, got shape {rho.shape}")
        beta = None
        if beta0 is not None:
            beta = self.beta_to_working(d, beta0)
        return rho, beta, "explicit"

    @staticmethod
    def beta_to_working(d: Design, beta0: Any) -> np.ndarray:
        """Reduced coefficients (per block mapping or flat vector) -> working basis."""
        if isinstance(beta0, Mapping):
            missing = [name for name in d.block_names if name not in beta0]
            if missing:
                raise ValueError(f"beta0 lacks blocks {missing}")
            out = d.from_reduced(dict(beta0))
        else:
            flat = np.asarray(beta0, dtype=np.float64).ravel()
            if flat.shape != (d.p,):
                raise ValueError(f"beta0 must have shape ({d.p},), got {flat.shape}")
            out = d.from_reduced(
                {name: flat[cols] for name, cols in zip(d.block_names, d.block_cols, strict=True)}
            )
        if not np.all(np.isfinite(out)):
            raise ValueError("beta0 must be finite")
        return out

    def run(
        self,
        prob: Problem,
        rho0: np.ndarray,
        beta0: np.ndarray | None,
        *,
        inner_cap: InnerCap | None = None,
        on_iterate: OnIterate | None = None,
        ext0: np.ndarray | None = None,
    ) -> NewtonResult:
        """Run the outer loop from a start (working-basis ``beta0``; ``ext0`` the
        extended-family parameters' start, e.g. a stored ``[log theta]``)."""
        if prob.family.n_ext:
            return profile_theta(
                prob,
                rho0,
                beta0,
                ext0=ext0,
                control=self.control,
                inner_cap=inner_cap,
                on_iterate=on_iterate,
            )
        return newton(
            prob,
            rho0,
            beta0,
            control=self.control,
            inner_cap=inner_cap,
            on_iterate=on_iterate,
        )

    def make_result(
        self,
        prob: Problem,
        off_col: str | None,
        nres: NewtonResult,
        warm: str,
        t0: float,
        *,
        extra_calls: int = 0,
        extra_iters: int = 0,
        start_check: StartCheck | None = None,
        emit: bool = True,
    ) -> FitResult:
        """Assemble a :class:`FitResult` from the outer loop's final evaluation (``emit``:
        also raise its warnings)."""
        if nres.prob is not None:
            prob = nres.prob  # the family at the estimated theta
        d = prob.design
        fin = nres.final
        # fitted from moments (a Gaussian fold whose X was never formed): no fitted values
        # yet; they are formed when read (FitResult.fitted), from the raw bases
        moments_only = fin.fit.mu.size != d.n
        edf = edf_per_block(prob, fin)
        light = dataclasses.replace(d, X=np.empty((0, d.p)))  # keep bases, drop the n x p matrix
        notes = [
            *d.notes,
            *nres.notes,
            # (none for the identity Gaussian, the only family fitted from moments)
            *(
                []
                if moments_only
                else diagnostics.boundary_notes(self.family.name, fin.fit.mu, prob.wt)
            ),
        ]
        if emit:
            diagnostics.emit(notes, stacklevel=4)
        scale = fin.scale
        if not (self.family.scale_known or self.family.identity_gaussian or self.family.extended):
            # mgcv reports (and scales Vp with) Fletcher's estimate, not the REML one
            scale = fletcher_scale(prob, fin, float(sum(edf.values())))
        res = FitResult(
            family=self.family.name,
            rho=fin.rho.copy(),
            beta_raw=d.to_raw(fin.fit.beta),
            beta_reduced=d.to_reduced(fin.fit.beta),
            edf=edf,
            reml=fin.score,
            scale=scale,
            fitted=None if moments_only else fin.fit.mu.copy(),  # type: ignore[arg-type]
            linear_predictor=None if moments_only else fin.fit.eta.copy(),  # type: ignore[arg-type]
            n_outer=nres.n_outer,
            n_pirls_calls=nres.n_pirls_calls + extra_calls,
            n_pirls_iters=nres.n_pirls_iters + extra_iters,
            warm=warm,
            knots=_result_knots(d),
            converged=nres.converged,
            wall_time=time.perf_counter() - t0,
            grad=fin.grad.copy(),
            deviance=fin.fit.deviance,
            S_scale={b.label: b.basis.S_scale for b in d.smooths},
            n=d.n,
            model=self,
            _design=light,
            _family=prob.family,
            _offset_column=off_col,
            _problem=prob,
            _final=fin,
            warnings=notes,
            start_check=start_check,
            reml_scale=fin.scale,
            ext=None if nres.ext is None else nres.ext.copy(),
        )
        if moments_only:
            # deferred as an exact hit's fields are (FitResult.__getattr__): formed on first
            # read from the raw bases, in one pass, instead of for every fold
            for name in ("fitted", "linear_predictor"):
                del res.__dict__[name]
            res.__dict__["_pending"] = (
                functools.partial(_fitted_values, d, fin.fit.beta, prob.offset, prob.family),
                threading.Lock(),
            )
        return res


def _fitted_values(
    d: Design, beta: np.ndarray, offset: np.ndarray, family: Family, target: FitResult
) -> None:
    """Set ``fitted`` and ``linear_predictor`` of a fit made from moments (a Gaussian LOSO
    fold whose model matrix was never formed), from the design's raw bases."""
    eta = d.linear_predictor(beta) + offset
    target.__dict__.update(
        linear_predictor=eta, fitted=np.asarray(family.mu(eta), dtype=np.float64)
    )


def _result_knots(d: Design) -> dict[str, np.ndarray]:
    """``FitResult.knots``: per smooth covariate, and per tensor margin under its own key."""
    out: dict[str, np.ndarray] = {}
    for b in d.smooths:
        if b.extra is not None and b.extra.tensor is not None:
            assert isinstance(b.spec, TensorTerm)
            for m, impl in zip(b.spec.margins, b.extra.tensor.margins, strict=True):
                out[b.spec.knot_key(m)] = np.array(impl.knots, dtype=np.float64)
        elif b.has_knots:
            out[b.spec.knot_name] = b.basis.knots.copy()
    return out


def _py_term(sm: SmoothTerm) -> str:
    """``s(...)`` as it was written in Python (for reprs)."""
    if isinstance(sm, TensorTerm):
        bs = "" if sm.bs == "ps" else f", bs={sm.bs!r}"
        by = "" if sm.by is None else f", by={sm.by!r}"
        return f"{sm.kind}({', '.join(map(repr, sm.margins))}, k={list(sm.ks)}{bs}{by})"
    cov = sm.covariates_of
    first = repr(cov) if len(cov) > 1 else repr(sm.term)
    out = f"s({first}" + ("" if sm.bs == "re" else f", k={sm.k}")
    if sm.bs != "ps":
        out += f", bs={sm.bs!r}"
    if sm.by is not None:
        out += f", by={sm.by!r}"
    return out + ")"


def _mgcv_term(sm: SmoothTerm) -> str:
    """The term as mgcv writes it (for :attr:`FitResult.formula`)."""
    if isinstance(sm, TensorTerm):
        ks = ", ".join(str(k) for k in sm.ks)
        by = "" if sm.by is None else f", by = {sm.by}"
        return f'{sm.kind}({", ".join(sm.margins)}, bs = "{sm.bs}", k = c({ks}){by})'
    if sm.bs == "re":
        return f's({sm.term}, bs = "re")'
    by = "" if sm.by is None else f", by = {sm.by}"
    return f's({", ".join(sm.covariates_of)}, bs = "{sm.bs}", k = {sm.k}{by})'


def _response_label(y: Any) -> str:
    """The response as mgcv's formula writes it (``y``, ``cbind(s, n - s)``)."""
    cols = response_columns(y)
    return cols[0] if len(cols) == 1 else f"cbind({cols[0]}, {cols[1]} - {cols[0]})"


def response_columns(y: Any) -> tuple[str, ...]:
    """``y`` as a tuple of column names: ``(response,)`` or ``(successes, trials)``."""
    if isinstance(y, str):
        return (y,)
    if isinstance(y, (tuple, list)) and len(y) == 2 and all(isinstance(c, str) for c in y):
        if y[0] == y[1]:
            raise ValueError(f"y: successes and trials must be different columns, got {y!r}")
        return (str(y[0]), str(y[1]))
    raise TypeError(
        "y must be the response column name or a (successes, trials) pair of column names, "
        f"got {y!r}"
    )


__all__ = ["GAM", "FitResult", "PARAMETRIC", "Prediction", "response_columns", "s", "te", "ti"]
