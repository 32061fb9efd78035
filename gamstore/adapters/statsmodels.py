"""Persist and warm-start statsmodels ``GLMGam.select_penweight`` through a gamstore store.

statsmodels selects the penalty weights α of a ``GLMGam`` by minimising a results criterion
(``aic``, ``gcv``, ``bic``, ``cv``) over ``log α`` with a derivative-free or
finite-difference optimiser; every evaluation is a full PIRLS fit. This adapter stores the
optimum and starts later calls from it:

* **Convention.** statsmodels' PIRLS minimises ``Σ w(z − Xβ)² + β'(Σ 2α_j S_j)β`` with
  ``S_j = cov_der2`` (∫B''B''ᵀ, not a difference penalty), i.e. mgcv's deviance scale with
  λ_j = 2α_j. Stored ρ is therefore ``log(2α)`` and the key string of every entry carries
  ``conv=statsmodels-alpha`` (λ = 2α on ``cov_der2``), so it is never mistaken for an
  mgcv-convention ρ. The stored block record also says so in its ``rho_convention`` field;
  a record under the exact key with another convention (including records written before
  the field existed, which read as ``"mgcv"``) is a miss, logged. ``start_params`` of ``select_penweight`` is α (not log α); the adapter
  converts.
* **Keys.** The exact key hashes the data and the specification (response, full design,
  penalty matrices, family, link, offset/exposure/weights, criterion, optimiser settings)
  with :mod:`gamstore.fingerprint`. The *seed* key hashes only what a LOSO fold shares with
  the full-data fit when its basis is frozen (:func:`frozen_smoother`): family, link,
  criterion, the parametric width and each smooth's width and penalty matrix. Rows never
  enter it.
* **State.** After a call, the exact key gets a ``BlockWarmStartRecord`` (ρ, β per block:
  the parametric block and one per smooth, in the model's reduced coordinates) in the
  ``block`` keyspace, and the seed key an ``IteratePayload`` (ρ, β, criterion, and for BFGS
  the outer Hessian in ρ coordinates) in the ``outer`` keyspace.
* **Through the warm-start layer.** Every read and write goes through the orchestrator
  (:class:`gamstore.warmstart.plan.KeyedWarmStart`): the entry size cap, the read circuit
  breaker, and no storage error ever fails a call (it starts cold, logged).
* **Start.** An exact record (same data) first, then the newest seed (e.g. the full-data fit
  for a fold), else the cold start of mgcv's ``initial.sp`` heuristic (α = sp/2), not
  statsmodels' α = 1 (which is far from typical optima and overstates warm savings).
* **Pitfalls handled.** ``scale`` is set before ``select_penweight`` (it fails on a model
  that was never fitted); the model is refitted at the returned α (statsmodels does not);
  BFGS gets ``gtol`` relative to the criterion (the default 1e-5 on an AIC of ~4000 stops on
  finite-difference noise).

Nothing here is imported by ``import gamstore``; statsmodels is an optional extra.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

log = logging.getLogger("gamstore.adapters.statsmodels")

#: Name of the ρ convention recorded in every key string and in the ``rho_convention`` field
#: of stored block records (λ = 2α on ``cov_der2``).
RHO_CONVENTION = "statsmodels-alpha"
#: Name of the parametric block in stored records.
PARAMETRIC_BLOCK = "(parametric)"
_CRITERIA = ("aic", "gcv", "bic", "cv")
_METHODS = ("minimize", "nm")


def _require_statsmodels() -> Any:
    try:
        from statsmodels.gam import generalized_additive_model as gam_mod
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "gamstore.adapters.statsmodels needs statsmodels: pip install 'gamstore[adapters]'"
        ) from exc
    return gam_mod


# ---------------------------------------------------------------------------------------------
# ρ <-> α
# ---------------------------------------------------------------------------------------------


def alpha_to_rho(alpha: ArrayLike) -> NDArray[np.float64]:
    """ρ = log λ = log(2α): the mgcv deviance-scale log smoothing parameter of statsmodels' α."""
    a = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
    if a.ndim != 1 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"alpha: expected a 1-D vector of finite positive values, got {a!r}")
    return np.log(2.0 * a)


def rho_to_alpha(rho: ArrayLike) -> NDArray[np.float64]:
    """Inverse of :func:`alpha_to_rho`: α = exp(ρ)/2."""
    r = np.atleast_1d(np.asarray(rho, dtype=np.float64))
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise ValueError(f"rho: expected a 1-D vector of finite values, got {r!r}")
    return np.exp(r) / 2.0


# ---------------------------------------------------------------------------------------------
# Frozen basis for LOSO folds
# ---------------------------------------------------------------------------------------------


def _row_index(rows: ArrayLike, nobs: int) -> NDArray[np.intp]:
    idx = np.asarray(rows)
    if idx.dtype == bool:
        if idx.shape != (nobs,):
            raise ValueError(f"rows: boolean mask must have shape ({nobs},), got {idx.shape}")
        return np.flatnonzero(idx)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise TypeError("rows: expected a 1-D integer index or a boolean mask")
    if idx.size and (idx.min() < -nobs or idx.max() >= nobs):
        raise ValueError(f"rows: index out of range for {nobs} observations")
    return idx.astype(np.intp)


def frozen_smoother(smoother: Any, rows: ArrayLike) -> Any:
    """The full-data smoother restricted to ``rows``, with its knots, centring and penalty.

    A ``BSplines`` built on fold data moves its quantile knots and its centring transform,
    so a stored β would be in another basis. This builds a ``GenericSmoothers`` from rows of
    the full-data basis (and its derivatives) and keeps each smooth's ``cov_der2``, so
    β and α transfer between the full fit and every fold unchanged.

    Parameters
    ----------
    smoother : statsmodels additive smoother
        The full-data smoother (e.g. ``BSplines(x, df=[10]*3, degree=[3]*3,
        constraints="center")``).
    rows : array_like
        Integer row index or boolean mask of the fold.

    Returns
    -------
    statsmodels.gam.smooth_basis.GenericSmoothers
    """
    from statsmodels.gam.smooth_basis import GenericSmoothers, UnivariateGenericSmoother

    smooths = getattr(smoother, "smoothers", None)
    if not smooths:
        raise TypeError("smoother: expected a statsmodels additive smoother with .smoothers")
    x = np.asarray(smoother.x)
    idx = _row_index(rows, x.shape[0])
    parts = []
    for j, s in enumerate(smooths):
        basis = np.asarray(s.basis)
        der = s.der_basis if getattr(s, "der_basis", None) is not None else basis
        der2 = s.der2_basis if getattr(s, "der2_basis", None) is not None else basis
        parts.append(
            UnivariateGenericSmoother(
                x[idx, j],
                basis[idx],
                np.asarray(der)[idx],
                np.asarray(der2)[idx],
                np.asarray(s.cov_der2),
                variable_name=getattr(s, "variable_name", f"x{j}"),
            )
        )
    return GenericSmoothers(x[idx], parts)


def fold_model(model: Any, rows: ArrayLike) -> Any:
    """A ``GLMGam`` on ``rows`` of ``model``'s data with the frozen full-data basis.

    Parameters
    ----------
    model : statsmodels.gam.api.GLMGam
        The full-data model.
    rows : array_like
        Integer row index or boolean mask of the fold (e.g. all subjects but one).

    Returns
    -------
    statsmodels.gam.api.GLMGam
        Same family, parametric part, offset and exposure (restricted to ``rows``), and the
        smoother of :func:`frozen_smoother`, so its :func:`seed_key` equals the full model's.
    """
    gam_mod = _require_statsmodels()
    idx = _row_index(rows, int(model.nobs))
    kwargs: dict[str, Any] = {"family": model.family, "alpha": model.alpha}
    for name in ("offset", "exposure"):
        value = getattr(model, name, None)
        if value is not None:
            arr = np.asarray(value)
            if name == "exposure":
                arr = np.exp(arr)  # GLM stores log(exposure)
            kwargs[name] = arr[idx]
    exog = None if model.exog_linear is None else np.asarray(model.exog_linear)[idx]
    return gam_mod.GLMGam(
        np.asarray(model.endog)[idx],
        exog=exog,
        smoother=frozen_smoother(model.smoother, idx),
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------
# Cold start: mgcv's initial.sp heuristic
# ---------------------------------------------------------------------------------------------


def initial_alpha(model: Any) -> NDArray[np.float64]:
    """Cold-start α from mgcv's ``initial.sp`` heuristic, translated by α = sp/2.

    For each smooth, sp = mean(colSums(X²)) / mean(diag S) over the penalised columns; then
    all sp are scaled by powers of 10 until the mean of ``ldxx/(ldxx + Σ sp diag S)`` over
    penalised columns is about 0.4.

    Parameters
    ----------
    model : statsmodels.gam.api.GLMGam

    Returns
    -------
    numpy.ndarray
        One α per smooth.
    """
    X = np.asarray(model.exog, dtype=np.float64)
    ldxx = np.einsum("ij,ij->j", X, X)
    k0 = int(model.k_exog_linear)
    ldss = np.zeros_like(ldxx)
    pen = np.zeros(ldxx.shape, dtype=bool)
    sp = np.zeros(len(model.smoother.smoothers))
    for j, s in enumerate(model.smoother.smoothers):
        S = np.asarray(s.cov_der2, dtype=np.float64)
        cols = k0 + np.flatnonzero(model.smoother.mask[j])
        aS = np.abs(S)
        thresh = np.finfo(float).eps ** 0.8 * aS.max() if aS.size else 0.0
        ind = (aS.mean(axis=1) > thresh) & (aS.mean(axis=0) > thresh) & (np.diag(aS) > thresh)
        if not ind.any():
            raise ValueError(f"smoother.smoothers[{j}].cov_der2: penalty is zero")
        size_s = float(np.mean(np.diag(S)[ind]))
        if size_s <= 0:
            raise ValueError(f"smoother.smoothers[{j}].cov_der2: non-positive diagonal")
        sp[j] = float(np.mean(ldxx[cols][ind])) / size_s
        pen[cols] |= ind
        ldss[cols] += sp[j] * np.diag(S)
    use = (ldss > 0) & pen & (ldxx > 0)
    xx, ss = ldxx[use], ldss[use]
    for _ in range(60):  # bounded: each step is a factor 10
        if np.mean(xx / (xx + ss)) <= 0.4:
            break
        sp *= 10.0
        ss = ss * 10.0
    for _ in range(60):
        if np.mean(xx / (xx + ss)) >= 0.4:
            break
        sp /= 10.0
        ss = ss / 10.0
    return sp / 2.0


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def _seed_fingerprinter(model: Any, criterion: str) -> Any:
    from gamstore.fingerprint import Fingerprinter
    from gamstore.warmstart import SCHEMA_TAG

    fp = Fingerprinter()
    fp.absorb_str("schema", SCHEMA_TAG)
    fp.absorb_str("adapter", "statsmodels-glmgam")
    fp.absorb_str("convention", RHO_CONVENTION)
    fp.absorb_str("family", type(model.family).__name__)
    fp.absorb_str("link", type(model.family.link).__name__)
    fp.absorb_str("criterion", criterion)
    fp.absorb_u64("k_exog_linear", int(model.k_exog_linear))
    fp.absorb_u64("k_smooths", len(model.smoother.smoothers))
    for s in model.smoother.smoothers:
        fp.absorb_u64("dim_basis", int(np.asarray(s.basis).shape[1]))
        fp.absorb_array("cov_der2", np.asarray(s.cov_der2, dtype=np.float64))
    return fp


def seed_key(model: Any, criterion: str = "aic") -> str:
    """Row-free key shared by a full-data fit and its frozen-basis folds.

    Parameters
    ----------
    model : statsmodels.gam.api.GLMGam
    criterion : str

    Returns
    -------
    str
        ``"sm-glmgam/conv=statsmodels-alpha/crit=<criterion>/seed/<16 hex>"``.
    """
    criterion = _check_criterion(criterion)
    h = _seed_fingerprinter(model, criterion).finish_hex()
    return f"sm-glmgam/conv={RHO_CONVENTION}/crit={criterion}/seed/{h}"


def exact_key(model: Any, criterion: str = "aic", options: dict[str, Any] | None = None) -> str:
    """Key of one fit: data, specification and optimiser settings.

    Parameters
    ----------
    model : statsmodels.gam.api.GLMGam
    criterion : str
    options : dict, optional
        Optimiser settings that change the result (method, gtol, ...); strict-JSON values.

    Returns
    -------
    str
        ``"sm-glmgam/conv=statsmodels-alpha/crit=<criterion>/dims=<n>x<p>/<16 hex>"``.
    """
    import json

    criterion = _check_criterion(criterion)
    fp = _seed_fingerprinter(model, criterion)
    fp.absorb_array("endog", np.asarray(model.endog, dtype=np.float64))
    fp.absorb_array("exog", np.asarray(model.exog, dtype=np.float64))
    for name in ("offset", "exposure", "var_weights", "freq_weights"):
        value = getattr(model, name, None)
        if value is None:
            fp.absorb_tag(f"{name}-none")
        else:
            fp.absorb_array(name, np.atleast_1d(np.asarray(value, dtype=np.float64)))
    fp.absorb_str("options", json.dumps(options or {}, sort_keys=True, allow_nan=False))
    n, p = np.asarray(model.exog).shape
    h = fp.finish_hex()
    return f"sm-glmgam/conv={RHO_CONVENTION}/crit={criterion}/dims={n}x{p}/{h}"


def _check_criterion(criterion: str) -> str:
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion: expected one of {_CRITERIA}, got {criterion!r}")
    return criterion


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


def block_layout(model: Any) -> tuple[list[str], list[NDArray[np.intp]]]:
    """Block names and their column indices into ``params``: the parametric block, then one
    block per smooth (statsmodels appends the smoother columns after ``exog``)."""
    k0 = int(model.k_exog_linear)
    names = [PARAMETRIC_BLOCK]
    cols = [np.arange(k0, dtype=np.intp)]
    for j, s in enumerate(model.smoother.smoothers):
        names.append(f"s({getattr(s, 'variable_name', f'x{j}')})")
        cols.append(k0 + np.flatnonzero(model.smoother.mask[j]).astype(np.intp))
    return names, cols


# ---------------------------------------------------------------------------------------------
# Warm select_penweight
# ---------------------------------------------------------------------------------------------


@dataclass
class PenweightFit:
    """Result of :func:`select_penweight`.

    Attributes
    ----------
    alpha : numpy.ndarray
        Selected α (statsmodels scale), one per smooth.
    rho : numpy.ndarray
        ``log(2α)``: the stored log smoothing parameters (:data:`RHO_CONVENTION`).
    results : GLMGamResults or None
        The model refitted at ``alpha`` (None with ``refit=False``).
    criterion : str
        Name of the minimised criterion.
    value : float
        Criterion at ``alpha`` (from the refit when available).
    params : numpy.ndarray
        Coefficients at ``alpha``.
    warm : str
        ``"cold"``, ``"exact"`` (same data and spec) or ``"seed"`` (row-free, e.g. full fit).
    start_alpha : numpy.ndarray
        α the optimiser started from.
    n_calls : int
        Criterion evaluations (PIRLS fits) during the search, plus the pre-evaluation.
    n_pirls : int
        Penalised WLS solves over those fits.
    n_refit_pirls : int
        WLS solves of the final refit.
    success : bool or None
        The optimiser's own convergence flag (BFGS ``success``; None for Nelder-Mead).
    wall_time : float
        Seconds for the whole call (lookups, search, refit, saves).
    exact_key, seed_key : str
    warm_decision : str
        What the warm-start policy decided and why (see :mod:`gamstore.warmstart.policy`);
        "" without a store.
    saved : dict
        Entry ids written per keyspace (None when a save failed or no store was given).
    """

    alpha: NDArray[np.float64]
    rho: NDArray[np.float64]
    results: Any
    criterion: str
    value: float
    params: NDArray[np.float64]
    warm: str
    start_alpha: NDArray[np.float64]
    n_calls: int
    n_pirls: int
    n_refit_pirls: int
    success: bool | None
    wall_time: float
    exact_key: str
    seed_key: str
    saved: dict[str, str | None] = field(default_factory=dict)
    warm_decision: str = ""


@dataclass(frozen=True)
class _Start:
    alpha: NDArray[np.float64]
    params: NDArray[np.float64] | None
    hessian: NDArray[np.float64] | None
    warm: str


def _load_start(plan: Any) -> _Start | None:
    """Exact block record first, then the newest seed; None when neither is usable."""
    st = plan.find()
    if plan.miss_reason is not None:
        # same key string, but its ρ multiplies another S: never reinterpret it
        log.info("statsmodels exact record ignored: %s", plan.miss_reason)
    if st is None:
        return None
    if st.source == "exact":
        return _Start(rho_to_alpha(st.rho), st.flat_beta(), None, "exact")
    return _Start(rho_to_alpha(st.rho), st.beta, st.hessian, "seed")


def _hess_inv0(hessian: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
    """Inverse of a stored outer Hessian for BFGS, only when it is symmetric positive definite."""
    if hessian is None:
        return None
    h = 0.5 * (hessian + hessian.T)
    try:
        w = np.linalg.eigvalsh(h)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(w)) or w.min() <= 1e-12 * max(w.max(), 1e-300):
        return None
    inv = np.linalg.inv(h)
    return 0.5 * (inv + inv.T)


def select_penweight(
    model: Any,
    *,
    store: Any = None,
    criterion: str = "aic",
    method: str = "minimize",
    gtol: float | None = None,
    gtol_rel: float = 1e-6,
    warm: bool = True,
    use_hessian: bool = True,
    publish_seed: bool = True,
    refit: bool = True,
    start_alpha: ArrayLike | None = None,
    options: dict[str, Any] | None = None,
    warm_policy: Any = None,
) -> PenweightFit:
    """``GLMGam.select_penweight`` with a stored warm start and the reference's pitfalls fixed.

    Parameters
    ----------
    model : statsmodels.gam.api.GLMGam
        The model; it need not have been fitted (``scale`` is set first).
    store : Store, URL/path or WarmStartStore, optional
        Where warm starts are read and written (through :mod:`gamstore.warmstart`). Without a store this is a cold call with the
        ``initial.sp`` start, a sensible ``gtol`` and a refit.
    criterion : {"aic", "gcv", "bic", "cv"}
        Results attribute to minimise.
    method : {"minimize", "nm"}
        ``"minimize"`` is scipy BFGS with finite differences; ``"nm"`` Nelder-Mead (slow, and
        it cannot exploit a warm start much: its simplex must shrink from scratch).
    gtol : float, optional
        BFGS gradient tolerance. Default ``max(gtol_rel * |criterion at the start|, 1e-5)``.
    gtol_rel : float
        Relative tolerance used for the default ``gtol``.
    warm : bool
        Read the store for a start (False: always cold, still writes).
    use_hessian : bool
        Pass a stored outer Hessian to BFGS as ``hess_inv0``.
    publish_seed : bool
        Write the row-free seed (so folds of a LOSO start from this fit). Folds that should
        not overwrite the full-data seed pass False.
    warm_policy : WarmPolicy, "always", "adaptive" or None
        With a store: when to look up and save (:mod:`gamstore.warmstart.policy`); None: the
        process default.
    refit : bool
        Refit the model at the selected α (statsmodels itself does not).
    start_alpha : array_like, optional
        Explicit cold start α (overrides the ``initial.sp`` heuristic; a stored start still
        wins when ``warm``).
    options : dict, optional
        Extra scipy options (e.g. ``{"maxiter": 200}``; for Nelder-Mead ``{"xtol": ...}``).

    Returns
    -------
    PenweightFit

    Raises
    ------
    ValueError
        For an unknown criterion/method, a bad ``start_alpha`` or ``gtol``.
    TypeError
        If ``model`` is not a ``GLMGam``.

    Notes
    -----
    Afterwards ``model.alpha`` holds the selected α, so ``model.fit()`` reproduces
    ``results``. ``n_calls`` counts every PIRLS fit of the search (statsmodels chains β from
    one evaluation to the next); the refit is counted separately. A problem reading the
    store never fails the call: it starts cold and logs one line at INFO.
    """
    gam_mod = _require_statsmodels()
    if not isinstance(model, gam_mod.GLMGam):
        raise TypeError(f"model: expected a statsmodels GLMGam, got {type(model).__name__}")
    criterion = _check_criterion(criterion)
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    if gtol is not None and not (math.isfinite(gtol) and gtol > 0):
        raise ValueError(f"gtol: expected a finite positive float, got {gtol!r}")
    t0 = time.perf_counter()
    names, cols = block_layout(model)
    dims = [len(c) for c in cols]
    k = len(names) - 1
    n_params = int(np.asarray(model.exog).shape[1])
    opts = dict(options or {})
    key_options = {"method": method, "gtol": gtol, "gtol_rel": gtol_rel, "options": opts}
    ekey = exact_key(model, criterion, key_options)
    skey = seed_key(model, criterion)

    # pitfall 1: select_penweight saves/restores model.scale, absent on an unfitted model
    if not hasattr(model, "scale"):
        model.scale, model.scaletype = 1.0, None

    plan = None
    if store is not None:
        from gamstore.warmstart import KeyedWarmStart

        plan = KeyedWarmStart(
            store, exact_key=ekey, seed_key=skey, keyspace="block",
            rho_convention=RHO_CONVENTION, n_rows=int(model.nobs), block_names=names,
            block_dims=dims, rho_len=k, seed_width=n_params,
            policy=warm_policy,
        )  # fmt: skip
    start = _load_start(plan) if (plan is not None and warm) else None
    # the search itself, timed for the policy (what a warm start shortens, a save must beat)
    clock = plan.costs.clock if plan is not None else time.perf_counter
    t_fit = clock()
    if start is None:
        a0 = initial_alpha(model) if start_alpha is None else np.asarray(start_alpha, float)
        if a0.shape != (k,) or not np.all(np.isfinite(a0)) or np.any(a0 <= 0):
            raise ValueError(f"start_alpha: expected {k} finite positive values, got {a0!r}")
        start = _Start(a0, None, None, "cold")

    counts = {"calls": 0, "pirls": 0}
    had_attr = "_fit_pirls" in vars(model)
    inner = model._fit_pirls

    def counted(*args: Any, **kwargs: Any) -> Any:
        res = inner(*args, **kwargs)
        counts["calls"] += 1
        counts["pirls"] += int(res.fit_history["iteration"])
        return res

    model._fit_pirls = counted
    try:
        # one evaluation at the start: gives β for the chain and the scale for gtol
        res0 = model._fit_pirls(start.alpha, start_params=start.params)
        crit0 = float(getattr(res0, criterion))
        if method == "minimize":
            g = gtol if gtol is not None else max(gtol_rel * abs(crit0), 1e-5)
            bopts: dict[str, Any] = {"gtol": g, **opts}
            hinv = _hess_inv0(start.hessian) if use_hessian else None
            if hinv is not None:
                bopts["hess_inv0"] = hinv
            alpha, fit_res, history = model.select_penweight(
                criterion=criterion,
                start_params=start.alpha,  # α, not log α (pitfall 2)
                start_model_params=np.asarray(res0.params),
                method="minimize",
                options=bopts,
            )
            success: bool | None = bool(fit_res.success)
            hess_inv = getattr(fit_res, "hess_inv", None)
        else:
            alpha, fit_res, history = model.select_penweight(
                criterion=criterion,
                start_params=start.alpha,
                start_model_params=np.asarray(res0.params),
                method="nm",
                disp=False,
                **opts,
            )
            success, hess_inv = None, None
        n_calls, n_pirls = counts["calls"], counts["pirls"]
        alpha = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
        # β of the evaluation closest to the optimum seeds the refit (pitfall: the last
        # evaluated α is not necessarily the optimum)
        hist_a = [np.asarray(a) for a in history["alpha"]]
        best = int(np.argmin([np.max(np.abs(np.log(a) - np.log(alpha))) for a in hist_a]))
        beta0 = np.asarray(history["params"][best])
        results = None
        if refit:
            results = model._fit_pirls(alpha, start_params=beta0)
            params = np.asarray(results.params, dtype=np.float64)
            value = float(getattr(results, criterion))
        else:
            params = beta0.astype(np.float64)
            value = float(np.asarray(history["criterion"])[best])
        n_refit = counts["pirls"] - n_pirls
    finally:
        if had_attr:
            model._fit_pirls = inner
        else:
            del model._fit_pirls
    # statsmodels' own fit() at the selected α, for users who read model.alpha afterwards
    model.alpha = list(alpha)

    rho = alpha_to_rho(alpha)
    fit = PenweightFit(
        alpha=alpha,
        rho=rho,
        results=results,
        criterion=criterion,
        value=value,
        params=params,
        warm=start.warm,
        start_alpha=np.asarray(start.alpha, dtype=np.float64),
        n_calls=n_calls,
        n_pirls=n_pirls,
        n_refit_pirls=n_refit,
        success=success,
        wall_time=0.0,
        exact_key=ekey,
        seed_key=skey,
    )
    if plan is not None:
        plan.observe_fit(clock() - t_fit, cold=fit.warm == "cold")
        fit.saved = _save(plan, fit, cols, hess_inv, publish_seed)
        fit.warm_decision = plan.explain()
    fit.wall_time = time.perf_counter() - t0
    log.debug(
        "statsmodels select_penweight %s: %s=%.6g, %d calls, %d PIRLS, warm=%s",
        criterion, criterion, value, n_calls, n_pirls, start.warm,
    )  # fmt: skip
    return fit


def _save(
    plan: Any,
    fit: PenweightFit,
    cols: Sequence[NDArray[np.intp]],
    hess_inv: Any,
    publish_seed: bool,
) -> dict[str, str | None]:
    if not (np.all(np.isfinite(fit.params)) and math.isfinite(fit.value)):
        log.info("statsmodels fit not stored: non-finite coefficients or criterion")
        return {}
    hessian: NDArray[np.float64] | None = None
    if publish_seed and hess_inv is not None:
        hinv = np.asarray(hess_inv, dtype=np.float64)
        k = fit.rho.shape[0]
        if hinv.shape == (k, k) and np.all(np.isfinite(hinv)):
            try:
                # BFGS works in log α; ρ = log α + log 2 has the same Hessian
                hessian = np.asarray(np.linalg.inv(0.5 * (hinv + hinv.T)), dtype=np.float64)
            except np.linalg.LinAlgError:
                hessian = None
    # β per block in the model's column order (the record's blocks)
    beta = np.concatenate([fit.params[c] for c in cols]) if cols else fit.params[:0]
    saved: dict[str, str | None] = plan.save(
        rho=fit.rho,
        beta=beta,
        objective=fit.value,
        iteration=fit.n_calls,
        publish_seed=publish_seed,
        hessian=hessian,
        seed_beta=fit.params,
    )
    return saved
