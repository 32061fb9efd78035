"""Persist pyGAM's ``lam`` and ``coef_`` in a gamstore store; warm, local grid search.

pyGAM selects λ only by exhaustive grid search (``GAM.gridsearch``; default 11 points
``logspace(-3, 3, 11)`` shared by all terms). A stored λ cannot speed up a fit at fixed λ
(LinearGAM PIRLS is a fixed two passes), but it can **localise the grid**: search
``λ_stored × factors`` per term instead of a wide grid, and widen only when the best point
lies on the grid's edge. That is what :func:`gridsearch` does.

* **Convention.** ρ = log λ with pyGAM's unscaled 2nd-difference penalty ``D'D`` on the
  deviance scale (``conv=pygam-lam`` in every key string, and the ``rho_convention`` field
  of the stored record); λ is flattened over terms and their penalties in pyGAM's order
  (``flatten(gam.lam)``). A record under the exact key with another convention (including
  records written before the field existed, which read as ``"mgcv"``) is a miss, logged.
* **Keys.** The exact key hashes X, y, weights, the model specification (terms without their
  λ, the compiled edge knots, distribution, link, options) and the search settings, with
  :mod:`gamstore.fingerprint`. The seed key leaves out rows (X, y, weights) so LOSO folds find
  the full-data fit. pyGAM's default edge knots are the data range, which moves with the fold
  and shifts the basis: set ``edge_knots`` explicitly for β (and the seed key) to carry over.
* **State.** The exact key holds a ``WarmStartRecord`` (ρ, flat coef_) in the ``inner``
  keyspace; the seed key an ``IteratePayload`` (ρ, coef_, score) in the ``outer`` keyspace.
  Every read and write goes through the warm-start orchestrator
  (:class:`gamstore.warmstart.plan.KeyedWarmStart`): the entry size cap, the read circuit
  breaker, and no storage error ever fails a search (it starts cold, logged).
* **Pitfall handled.** ``gridsearch`` on a never-fitted model with a preset ``coef_`` fails;
  the stored start is fitted once (it becomes the incumbent) before any grid point.

Nothing here is imported by ``import gamstore``; pyGAM is an optional extra.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

log = logging.getLogger("gamstore.adapters.pygam")

#: Name of the ρ convention recorded in every key string and in the ``rho_convention`` field
#: of stored records.
RHO_CONVENTION = "pygam-lam"
#: Default multiplicative grid around a stored λ (per term).
DEFAULT_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: pyGAM's default grid (shared by all terms).
DEFAULT_GRID = tuple(np.logspace(-3, 3, 11).tolist())
_OBJECTIVES = ("auto", "GCV", "UBRE", "AIC", "AICc")
_STRATEGIES = ("auto", "cartesian", "coordinate")


def _require_pygam() -> Any:
    try:
        import pygam
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "gamstore.adapters.pygam needs pyGAM: pip install 'gamstore[adapters]'"
        ) from exc
    return pygam


def _flat_lam(gam: Any) -> NDArray[np.float64]:
    from pygam.utils import flatten

    return np.asarray(flatten(gam.lam), dtype=np.float64)


def _nest_lam(gam: Any, flat: NDArray[np.float64]) -> list[list[float]]:
    """Flat λ back into pyGAM's per-term lists (the shape of ``gam.lam``)."""
    out: list[list[float]] = []
    i = 0
    for term_lam in gam.lam:
        n = len(term_lam)
        out.append([float(v) for v in flat[i : i + n]])
        i += n
    return out


def _check_objective(gam: Any, objective: str) -> str:
    if objective not in _OBJECTIVES:
        raise ValueError(f"objective: expected one of {_OBJECTIVES}, got {objective!r}")
    if objective == "auto":
        return "UBRE" if gam.distribution._known_scale else "GCV"
    return objective


def _compiled(gam: Any, X: NDArray[np.float64]) -> Any:
    """A copy of ``gam`` with its terms compiled on X (edge knots resolved), not fitted."""
    g = copy.deepcopy(gam)
    if not g._is_fitted:
        g._validate_params()
        g._validate_data_dep_params(X)
    return g


def _spec_info(gam: Any) -> str:
    """Canonical JSON of the model specification without any λ (λ is state, not spec)."""

    def scrub(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: scrub(v) for k, v in obj.items() if k not in ("lam", "verbose")}
        if isinstance(obj, (list, tuple)):
            return [scrub(v) for v in obj]
        if isinstance(obj, (np.floating, np.integer)):
            return obj.item()
        if obj is None or isinstance(obj, (str, int, float, bool)):
            return obj
        return repr(obj)

    return json.dumps(scrub(gam.terms.info), sort_keys=True)


def _seed_fingerprinter(gam: Any, objective: str) -> Any:
    from gamstore.fingerprint import Fingerprinter
    from gamstore.warmstart import SCHEMA_TAG

    fp = Fingerprinter()
    fp.absorb_str("schema", SCHEMA_TAG)
    fp.absorb_str("adapter", "pygam")
    fp.absorb_str("convention", RHO_CONVENTION)
    fp.absorb_str("class", type(gam).__name__)
    fp.absorb_str("distribution", type(gam.distribution).__name__)
    fp.absorb_str("link", type(gam.link).__name__)
    fp.absorb_str("objective", objective)
    fp.absorb_str("terms", _spec_info(gam))
    for t in gam.terms:
        ek = getattr(t, "edge_knots_", None)
        if ek is None:
            fp.absorb_tag("edge_knots-none")
        else:
            fp.absorb_array("edge_knots", np.asarray(ek, dtype=np.float64))
    fp.absorb_u64("max_iter", int(gam.max_iter))
    fp.absorb_f64("tol", float(gam.tol))
    fp.absorb_u64("n_coefs", int(gam.terms.n_coefs))
    return fp


def keys(
    gam: Any,
    X: ArrayLike,
    y: ArrayLike,
    weights: ArrayLike | None = None,
    objective: str = "auto",
    options: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """The exact and the seed key of a grid search.

    Parameters
    ----------
    gam : pygam.GAM
        The model (fitted or not).
    X, y, weights : array_like
        The data.
    objective : str
        pyGAM objective (``"auto"`` resolves to UBRE for known scale, else GCV).
    options : dict, optional
        Search settings that change the result; strict-JSON values.

    Returns
    -------
    (exact_key, seed_key) : tuple of str
    """
    Xa = np.asarray(X, dtype=np.float64)
    g = _compiled(gam, Xa)
    obj = _check_objective(g, objective)
    fp = _seed_fingerprinter(g, obj)
    seed = fp.finish_hex()
    fp.absorb_array("X", Xa)
    fp.absorb_array("y", np.asarray(y, dtype=np.float64))
    if weights is None:
        fp.absorb_tag("weights-none")
    else:
        fp.absorb_array("weights", np.asarray(weights, dtype=np.float64))
    fp.absorb_str("options", json.dumps(options or {}, sort_keys=True, allow_nan=False))
    head = f"pygam/conv={RHO_CONVENTION}/obj={obj}"
    return (
        f"{head}/dims={Xa.shape[0]}x{int(g.terms.n_coefs)}/{fp.finish_hex()}",
        f"{head}/seed/{seed}",
    )


@dataclass
class GridFit:
    """Result of :func:`gridsearch`.

    Attributes
    ----------
    gam : pygam.GAM
        The best fitted model.
    lam : numpy.ndarray
        Its flattened λ (``flatten(gam.lam)``).
    rho : numpy.ndarray
        ``log lam`` (:data:`RHO_CONVENTION`).
    objective : str
        The resolved objective (``"GCV"``, ``"UBRE"``, ...).
    score : float
        The best model's objective value.
    warm : str
        ``"cold"`` (no stored state: pyGAM's default grid), ``"exact"`` or ``"seed"``.
    n_fits : int
        Models fitted (grid points plus the incumbent fit).
    n_rounds : int
        Grid rounds (1 + number of times the grid was moved because the best point was on
        its edge).
    wall_time : float
        Seconds for the whole call.
    exact_key, seed_key : str
    warm_decision : str
        What the warm-start policy decided and why (see :mod:`gamstore.warmstart.policy`);
        "" without a store.
    saved : dict
        Entry ids written per keyspace.
    """

    gam: Any
    lam: NDArray[np.float64]
    rho: NDArray[np.float64]
    objective: str
    score: float
    warm: str
    n_fits: int
    n_rounds: int
    wall_time: float
    exact_key: str
    seed_key: str
    saved: dict[str, str | None] = field(default_factory=dict)
    warm_decision: str = ""


@dataclass(frozen=True)
class _Start:
    lam: NDArray[np.float64]
    coef: NDArray[np.float64] | None
    warm: str


def _load_start(plan: Any) -> _Start | None:
    """The exact record, else the newest seed, from the orchestrator (never raises)."""
    st = plan.find()
    if plan.miss_reason is not None:
        # same key string, but its ρ multiplies another S: never reinterpret it
        log.info("pyGAM exact record ignored: %s", plan.miss_reason)
    if st is None:
        return None
    if st.source == "exact":
        return _Start(np.exp(st.rho), np.asarray(st.block_beta[0], dtype=np.float64), "exact")
    return _Start(np.exp(st.rho), st.beta, "seed")


class _Evaluator:
    """Fits copies of a base model at given λ, warm-starting β from the incumbent."""

    def __init__(self, base: Any, X: Any, y: Any, weights: Any, objective: str) -> None:
        self.base, self.X, self.y, self.w, self.objective = base, X, y, weights, objective
        self.n_fits = 0
        self.cache: dict[tuple[float, ...], tuple[float, Any]] = {}

    def fit(self, lam: NDArray[np.float64], coef: NDArray[np.float64] | None) -> tuple[float, Any]:
        key = tuple(float(v) for v in lam)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        gam = copy.deepcopy(self.base)
        gam.lam = _nest_lam(self.base, np.asarray(lam, dtype=np.float64))
        if coef is not None:
            gam.set_params(coef_=np.array(coef, dtype=np.float64), force=True, verbose=False)
        try:
            gam.fit(self.X, self.y, weights=self.w)
            score = float(gam.statistics_[self.objective])
        except ValueError as exc:  # pyGAM's own grid search skips such points too
            log.debug("pyGAM fit failed at lam=%s: %s", key, exc)
            score, gam = math.inf, None
        self.n_fits += 1
        if not math.isfinite(score):
            score = math.inf
        self.cache[key] = (score, gam)
        return score, gam


def _local_search(
    ev: _Evaluator,
    lam0: NDArray[np.float64],
    coef0: NDArray[np.float64] | None,
    factors: Sequence[float],
    strategy: str,
    max_rounds: int,
    rel_tol: float,
) -> tuple[float, Any, int]:
    """Search λ0 × factors around the start; move the grid while the best is on its edge.

    Returns (best score, best fitted model, rounds). The start is fitted first and is the
    incumbent (pitfall: pyGAM cannot grid-search from a preset, never-fitted ``coef_``).
    """
    f = np.asarray(sorted(factors), dtype=np.float64)
    best_score, best_gam = ev.fit(lam0, coef0)
    best_lam = lam0.copy()

    def visit(lam: NDArray[np.float64]) -> bool:
        nonlocal best_score, best_gam, best_lam
        coef = None if best_gam is None else best_gam.coef_
        score, gam = ev.fit(lam, coef)
        # a relative improvement of at least rel_tol: flat directions (a λ that wants to go
        # to 0 or infinity) must not keep the search moving for nothing
        if score < best_score - rel_tol * abs(best_score):
            best_score, best_gam, best_lam = score, gam, lam
            return True
        return False

    centre = lam0.copy()
    rounds = 0
    if strategy == "cartesian":
        while rounds < max_rounds:
            rounds += 1
            for combo in itertools.product(f, repeat=centre.size):
                visit(centre * np.asarray(combo))
            ratio = best_lam / centre
            if not (np.isclose(ratio, f[0]) | np.isclose(ratio, f[-1])).any():
                break
            centre = best_lam.copy()
    else:
        # one λ at a time (others at the incumbent), sweeps repeated while they improve;
        # each sweep re-centres, so an edge optimum simply moves the next sweep
        while rounds < 2 * max_rounds:
            rounds += 1
            improved = False
            for j in range(centre.size):
                for fac in f:
                    lam = best_lam.copy()
                    lam[j] = centre[j] * fac
                    improved |= visit(lam)
            if not improved:
                break
            centre = best_lam.copy()
    return best_score, best_gam, rounds


def gridsearch(
    gam: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    store: Any = None,
    weights: ArrayLike | None = None,
    objective: str = "auto",
    factors: Sequence[float] = DEFAULT_FACTORS,
    strategy: str = "coordinate",
    max_rounds: int = 4,
    rel_tol: float = 1e-6,
    default_grid: ArrayLike | None = None,
    warm: bool = True,
    publish_seed: bool = True,
    warm_policy: Any = None,
) -> GridFit:
    """Grid-search pyGAM's λ, locally around a stored λ when the store has one.

    Without stored state this runs pyGAM's own ``gridsearch`` over ``default_grid``
    (default: pyGAM's 11-point ``logspace(-3, 3, 11)`` shared by all terms) and then refines
    locally, so a cold call and a warm call search the same local neighbourhood of their
    best point. With a seed (e.g. the full-data fit, for a LOSO fold) the default grid is
    skipped and only the local search runs, from the stored λ and coef_. An exact hit (same
    data, specification and settings) is refitted once at the stored λ and not searched
    again: the search is deterministic and would return the same point.

    Parameters
    ----------
    gam : pygam.GAM
        The model to fit (not modified; the best fitted copy is returned).
    X, y : array_like
        Data, ``X`` of shape (n, features), ``y`` of shape (n,).
    store : Store, URL/path or WarmStartStore, optional
        Where λ and coef_ are read and written (through :mod:`gamstore.warmstart`).
    weights : array_like, optional
        Sample weights, shape (n,).
    objective : {"auto", "GCV", "UBRE", "AIC", "AICc"}
    factors : sequence of float
        Multiplicative grid per λ around the start; must include 1 and at least one value
        below and above 1.
    strategy : {"coordinate", "cartesian", "auto"}
        ``"coordinate"`` (default): vary one λ at a time around the incumbent, sweep again
        while a sweep improves (``len(factors) * n_lam`` fits per sweep). ``"cartesian"``:
        every combination (``len(factors) ** n_lam`` fits per round, as pyGAM's gridsearch
        with per-term grids). ``"auto"``: cartesian when that is at most 125 fits per round.
    max_rounds : int
        Cartesian: rounds of re-centring when the best point is on the grid's edge.
        Coordinate: at most ``2 * max_rounds`` sweeps.
    rel_tol : float
        A point replaces the incumbent only if it improves the score by this relative amount
        (stops chasing flat directions).
    default_grid : array_like, optional
        Cold grid (1-D: shared by all terms, as pyGAM).
    warm : bool
        Read the store for a start.
    publish_seed : bool
        Write the row-free seed (folds that must not overwrite the full-data seed pass False).

    warm_policy : WarmPolicy, "always", "adaptive" or None
        With a store: when to look up and save (:mod:`gamstore.warmstart.policy`); None: the
        process default.
    Returns
    -------
    GridFit
    """
    pygam = _require_pygam()
    if not isinstance(gam, pygam.pygam.GAM):
        raise TypeError(f"gam: expected a pyGAM GAM, got {type(gam).__name__}")
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy: expected one of {_STRATEGIES}, got {strategy!r}")
    fac = [float(v) for v in factors]
    if not (
        all(math.isfinite(v) and v > 0 for v in fac) and 1.0 in fac and min(fac) < 1.0 < max(fac)
    ):
        raise ValueError(
            "factors: expected positive finite values including 1 and values below and above 1"
        )
    if not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds: expected an int >= 1, got {max_rounds!r}")
    t0 = time.perf_counter()
    Xa = np.asarray(X, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if Xa.ndim != 2 or ya.shape != (Xa.shape[0],):
        raise ValueError(f"X, y: expected shapes (n, p) and (n,), got {Xa.shape} and {ya.shape}")
    wa = None if weights is None else np.asarray(weights, dtype=np.float64)
    if wa is not None and wa.shape != ya.shape:
        raise ValueError(f"weights: expected shape {ya.shape}, got {wa.shape}")
    base = _compiled(gam, Xa)
    obj = _check_objective(base, objective)
    n_lam = _flat_lam(base).size
    n_coefs = int(base.terms.n_coefs)
    if strategy == "auto":
        strategy = "cartesian" if len(fac) ** n_lam <= 125 else "coordinate"
    grid = np.asarray(DEFAULT_GRID if default_grid is None else default_grid, dtype=np.float64)
    if not (math.isfinite(rel_tol) and rel_tol >= 0):
        raise ValueError(f"rel_tol: expected a finite float >= 0, got {rel_tol!r}")
    opts = {"factors": sorted(fac), "strategy": strategy, "max_rounds": max_rounds,
            "rel_tol": rel_tol, "default_grid": grid.tolist()}  # fmt: skip
    ekey, skey = keys(base, Xa, ya, wa, obj, opts)
    plan = None
    if store is not None:
        from gamstore.warmstart import KeyedWarmStart

        plan = KeyedWarmStart(
            store, exact_key=ekey, seed_key=skey, keyspace="inner",
            rho_convention=RHO_CONVENTION, n_rows=Xa.shape[0], block_names=["coef"],
            block_dims=[n_coefs], rho_len=n_lam,
            policy=warm_policy,
        )  # fmt: skip

    start = _load_start(plan) if (plan is not None and warm) else None
    # the search itself, timed for the policy (what a warm start shortens, a save must beat)
    clock = plan.costs.clock if plan is not None else time.perf_counter
    t_fit = clock()
    ev = _Evaluator(base, Xa, ya, wa, obj)
    n_pre = 0
    if start is None:
        # cold: pyGAM's own (default) grid, then the same local refinement as a warm call
        cold = copy.deepcopy(base)
        cold.gridsearch(Xa, ya, weights=wa, lam=grid, objective=obj, progress=False)
        n_pre = int(grid.shape[0])
        start = _Start(_flat_lam(cold), np.asarray(cold.coef_, dtype=np.float64), "cold")
    if start.warm == "exact":
        # same data, spec and settings: the search would return this point again
        score, best = ev.fit(start.lam, start.coef)
        rounds = 0
    else:
        score, best, rounds = _local_search(
            ev, start.lam, start.coef, fac, strategy, max_rounds, rel_tol
        )
    if best is None:
        raise ValueError("no pyGAM model could be fitted on the grid")
    lam = _flat_lam(best)
    fit = GridFit(
        gam=best,
        lam=lam,
        rho=np.log(lam),
        objective=obj,
        score=score,
        warm=start.warm,
        n_fits=ev.n_fits + n_pre,
        n_rounds=rounds,
        wall_time=0.0,
        exact_key=ekey,
        seed_key=skey,
    )
    if plan is not None:
        plan.observe_fit(clock() - t_fit, cold=fit.warm == "cold")
        fit.saved = _save(plan, fit, publish_seed)
        fit.warm_decision = plan.explain()
    fit.wall_time = time.perf_counter() - t0
    return fit


def _save(plan: Any, fit: GridFit, publish_seed: bool) -> dict[str, str | None]:
    coef = np.asarray(fit.gam.coef_, dtype=np.float64)
    if not (
        np.all(np.isfinite(coef)) and np.all(np.isfinite(fit.rho)) and math.isfinite(fit.score)
    ):
        log.info("pyGAM fit not stored: non-finite λ, coefficients or score")
        return {}
    saved: dict[str, str | None] = plan.save(
        rho=fit.rho,
        beta=coef,
        objective=fit.score,
        iteration=fit.n_fits,
        publish_seed=publish_seed,
        inner_iters=int(getattr(fit.gam, "n_iter_", 0) or 0),
    )
    return saved
