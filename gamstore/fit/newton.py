"""Outer Newton loop on the REML score, mirroring mgcv's ``newton()``.

The loop accepts a starting ``(rho0, beta0)`` (cold or warm), an optional cap on the PIRLS
iterations of each evaluation and a callback after every accepted iterate (the warm-start layer
writes session checkpoints from it). Flat directions (``|g_j|`` below a tenth of the tolerance)
are left out of the step, as mgcv's ``uconv.ind`` does, so smoothing parameters can drift
towards 0 or infinity without bounds causing trouble.

Near the optimum the loop ends on the exact Hessian rather than on mgcv's test plus a checked
polish step: a Newton step that moves no rho by more than ``final_step`` is taken and ends the
loop (quadratic convergence), and a point whose Newton step would be below ``skip_step`` is
accepted without another evaluation (see :class:`NewtonControl`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamstore.fit.diagnostics import (
    GamFitWarning,
    IterationLimitWarning,
    StepFailureWarning,
    separation_note,
)
from gamstore.fit.reml import Problem, RemlEval, evaluate, fisher_hessian, with_hessian

logger = logging.getLogger("gamstore.fit.newton")

# mgcv has no bound; along a flat direction REML moves like e^-rho, so past 50 the change is
# below rounding (trees, gaussian(inverse): mgcv goes to 26.9, and the old bound 25 left REML
# 1.8e-6 relative above it). Also the warm-start layer's saturation gate (warm.py).
RHO_BOUND = 50.0

#: a smoothing parameter is "at its bound" where less than this many effective degrees of
#: freedom separate its smooth from its null space (the smooth is nearly its unpenalized
#: part, e.g. a straight line for a P-spline with a second-order penalty): ``rank - tr_j`` with
#: ``tr_j = lambda_j tr(H^-1 S_j)`` (lambda -> infinity, a null effect shrunk to its
#: unpenalized part). REML tends to a constant there, so it is flat in ``rho_j`` and its
#: curvature can be slightly negative on the way: such an indefinite Hessian is no sign of
#: another basin (see :mod:`gamstore.fit.startcheck`). The other end (lambda -> 0) is not
#: flat in general (a nearly unpenalized smooth can have a sharp interior REML optimum) and
#: does not count.
BOUND_EDF = 1.0

#: a smoothing parameter is deep in its flat tail where less than this many effective degrees
#: of freedom separate its smooth from its null space: there the REML gradient in ``rho_j`` is
#: nil to rounding, so a Newton run started there cannot leave it (an interior basin of lower
#: REML stays unseen; :func:`gamstore.fit.startcheck.stayed_at_bound`). Far stricter than
#: :data:`BOUND_EDF` (a smooth 0.9 edf above its null space still has a REML gradient).
TAIL_EDF = 0.01


@dataclass(frozen=True)
class NewtonControl:
    """Outer-loop settings (mgcv ``gam.control()$newton`` defaults).

    Attributes
    ----------
    conv_tol : float
        Relative convergence tolerance (mgcv ``conv.tol``).
    max_iter : int
        Outer iteration cap.
    max_step : float
        Largest Newton step in any rho (mgcv ``maxNstep``).
    max_half : int
        Step halvings before giving up on a direction (mgcv ``maxHalf``).
    max_step_indefinite : float
        Largest step in any rho where the REML Hessian is not positive definite (a trust
        radius: there the Newton model has no minimum and a long step can cross into another
        basin, e.g. the separated fit of a binomial model).
    pirls_tol : float
        PIRLS tolerance (mgcv uses ``min(1e-7, conv.tol / 100)`` inside ``newton``).
    polish : bool
        After mgcv's test passes, keep taking Newton steps (at most ``max_polish``) until no
        gradient component exceeds ``polish_factor * conv_tol * score_scale``. With an exact
        Hessian this costs about one cheap warm PIRLS call and makes cold and warm fits land
        on the same optimum, not just within mgcv's tolerance of it.
    max_polish : int
        Cap on those extra steps (only steps on a positive definite Hessian count).
    polish_factor : float
        Gradient threshold of the polish, relative to ``conv_tol * score_scale`` (mgcv drops
        parameters below 0.1 of it from the step as flat).
    near_grad : float
        With ``polish``: the end-game rules below apply once no gradient component exceeds
        ``near_grad * conv_tol * score_scale``.
    final_step : float
        End game: when the exact Newton step (over every component above the polish
        threshold) moves no rho by more than this, take it in full, evaluate once and stop.
        Newton converges quadratically, so the point reached is within about the square of
        this of the optimum, which replaces mgcv's rule plus a checked polish step.
    skip_step : float
        End game: when the Newton step moves no rho by more than this and the Newton
        decrement ``g'H^{-1}g`` is at most ``decrement_tol * conv_tol * score_scale``, the
        current point is the optimum to within tolerance: stop without an evaluation.
    decrement_tol : float
        See ``skip_step``.
    """

    conv_tol: float = 1e-6
    max_iter: int = 200
    max_step: float = 5.0
    max_half: int = 30
    pirls_tol: float = 1e-8
    polish: bool = True
    max_polish: int = 4
    polish_factor: float = 0.01
    near_grad: float = 1e3
    final_step: float = 3e-3
    skip_step: float = 1e-4
    decrement_tol: float = 1e-2
    max_step_indefinite: float = 1.0


@dataclass(frozen=True)
class Iterate:
    """What the per-iterate callback sees."""

    iteration: int
    rho: np.ndarray
    beta: np.ndarray
    score: float
    grad: np.ndarray
    scale: float
    converged: bool
    #: extended-family parameters the iterate was computed at (nb: ``[log theta]``)
    ext: np.ndarray | None = None


@dataclass
class NewtonResult:
    """Outcome of the outer loop."""

    final: RemlEval
    n_outer: int
    n_pirls_calls: int
    n_pirls_iters: int
    converged: bool
    history: list[float] = field(default_factory=list)
    notes: list[GamFitWarning] = field(default_factory=list)
    n_indefinite: int = 0
    # of those, the steps where every direction of non-positive curvature lies along
    # smoothing parameters at their bound (:func:`at_bound`): flat tails, not another basin
    n_indefinite_bound: int = 0
    # per rho: at its bound at the start or at the optimum (None: not known, e.g. a tensor
    # product's joint penalties)
    at_bound: np.ndarray | None = None
    separated: bool = False  # a completely separated binomial fit: no finite REML optimum
    # extended-family parameters estimated with rho (nb: [log theta]); None for other families
    ext: np.ndarray | None = None
    prob: Problem | None = None  # the problem at the estimated ext (its family fixed there)
    # per rho: deep in its flat tail (:data:`TAIL_EDF`) at the start, and at the optimum
    # (None: not known). A rho in its tail at both never left the flat tail it started in:
    # the run did not search it (:func:`gamstore.fit.startcheck.stayed_at_bound`)
    tail_start: np.ndarray | None = None
    tail_end: np.ndarray | None = None


InnerCap = Callable[[int], "int | None"]
OnIterate = Callable[[Iterate], None]


def newton(
    prob: Problem,
    rho0: np.ndarray,
    beta0: np.ndarray | None = None,
    *,
    control: NewtonControl | None = None,
    inner_cap: InnerCap | None = None,
    on_iterate: OnIterate | None = None,
) -> NewtonResult:
    """Minimise the REML score over rho by damped Newton with step halving.

    Parameters
    ----------
    prob : Problem
        Fit data.
    rho0 : numpy.ndarray
        Starting log smoothing parameters, shape (m,).
    beta0 : numpy.ndarray or None
        Starting coefficients (working basis) for the first PIRLS call.
    control : NewtonControl or None
        Settings.
    inner_cap : callable or None
        ``inner_cap(evaluation_index) -> max PIRLS iterations or None``.
    on_iterate : callable or None
        Called with an :class:`Iterate` after the start point and after every accepted step.

    Returns
    -------
    NewtonResult
    """
    ctl = control or NewtonControl()
    m = prob.design.n_sp
    rho = np.clip(np.asarray(rho0, dtype=np.float64).copy(), -RHO_BOUND, RHO_BOUND)
    if rho.shape != (m,):
        raise ValueError(f"rho0 must have shape ({m},), got {rho.shape}")
    calls = 0
    iters = 0

    def ev(r: np.ndarray, b: np.ndarray | None, start: RemlEval | None = None) -> RemlEval:
        nonlocal calls, iters
        cap = inner_cap(calls) if inner_cap is not None else None
        out = evaluate(
            prob,
            r,
            b,
            hessian=False,  # filled in only where a Newton step is taken
            max_pirls=100 if cap is None else max(1, int(cap)),
            pirls_tol=ctl.pirls_tol,
            # X'WX at the start beta is the previous evaluation's: PIRLS skips one product
            xtwx0=None if start is None else start.parts.get("XtWX"),
        )
        calls += 1
        iters += out.fit.iterations
        return out

    cur = ev(rho, beta0)
    history = [cur.score]
    if m == 0:
        return NewtonResult(cur, 0, calls, iters, True, history)
    bound_start = at_bound(prob, cur)
    tail_start = at_bound(prob, cur, TAIL_EDF)

    def score_scale(e: RemlEval) -> float:
        if prob.family.scale_known:
            return abs(e.score) + e.scale
        return abs(e.score) + abs(np.log(e.scale))

    def notify(it: int, e: RemlEval, conv: bool) -> None:
        if on_iterate is not None:
            on_iterate(Iterate(it, e.rho.copy(), e.fit.beta.copy(), e.score, e.grad, e.scale, conv))

    converged = False
    notes: list[GamFitWarning] = []
    n_indefinite = 0  # Newton steps taken where the REML Hessian was not positive definite
    n_indefinite_bound = 0  # ... only along smoothing parameters at their bound
    n_outer = 0
    n_polish = 0
    tol = ctl.conv_tol
    # stationarity threshold: every |g_j| below it means no step can matter
    flat0 = (ctl.polish_factor if ctl.polish else 0.1) * tol
    notify(0, cur, not np.any(np.abs(cur.grad) > flat0 * score_scale(cur)))
    mgcv_conv = False  # mgcv's test passed on the last step
    while n_outer < ctl.max_iter:
        sc = score_scale(cur)
        flat = (ctl.polish_factor if (mgcv_conv and ctl.polish) else 0.1) * tol * sc
        if not np.any(np.abs(cur.grad) > flat0 * sc) and not np.any(
            _moving(cur.grad, _hessian_or_fisher(prob, cur), tol, sc, ctl)
        ):
            # every gradient component is below the (polish) threshold and none still has a
            # Newton step to take along real curvature: stationary
            converged = True
            break
        free = np.abs(cur.grad) > flat
        if not np.any(free):
            free = np.abs(cur.grad) > flat0 * sc
        if mgcv_conv and (not ctl.polish or n_polish >= ctl.max_polish):
            converged = True
            break
        if (
            ctl.polish
            and cur.hess is None
            and float(np.max(np.abs(cur.grad))) <= 5.0 * tol * sc
            and _negligible(cur.grad, _hessian_or_fisher(prob, cur), flat0 * sc, tol, sc, ctl, 0.5)
        ):
            # recertifying a stored optimum: the weight-free Hessian (no n-sized work) already
            # shows the step to be negligible, with a factor-2 margin for its approximation
            converged = True
            break
        cur = with_hessian(prob, cur)
        assert cur.hess is not None
        # mgcv's uconv.ind: a component stays in the step while its gradient OR its curvature
        # is above the threshold; a curved component is not flat even with a small gradient
        # (at large n, thresholds relative to |REML| would otherwise freeze it off the optimum)
        free = free | (np.abs(np.diag(cur.hess)) > flat)
        step = np.zeros(m)
        g = cur.grad[free]
        Hf = cur.hess[np.ix_(free, free)]
        step[free], pd = _newton_step_pd(g, Hf)
        n_indefinite += not pd
        if not pd:
            bound_now = at_bound(prob, cur)
            n_indefinite_bound += bound_now is not None and _only_along(Hf, bound_now[free])
        last = False  # this step is the final one (quadratic convergence from here)
        if ctl.polish and float(np.max(np.abs(cur.grad))) <= ctl.near_grad * tol * sc:
            if _negligible(cur.grad, cur.hess, flat0 * sc, tol, sc, ctl, 1.0):
                # already within a negligible step of the optimum: no evaluation needed
                converged = True
                break
            fine, exact = _fine_step(cur.grad, cur.hess, flat0 * sc, tol, sc, ctl)
            if exact and float(np.max(np.abs(fine))) <= ctl.final_step:
                # one exact Newton step from here lands within ~size^2 of the optimum
                step, last = fine, True
        if mgcv_conv and pd:
            # a polish step is a Newton step on a convex model; one where REML is not convex
            # is still the search for the optimum, however small the gradient
            n_polish += 1
        big = float(np.max(np.abs(step)))
        # where REML is not convex the quadratic model has no minimum: its step is only a
        # descent direction, trusted for a shorter distance than a positive definite one
        limit = ctl.max_step if pd or last else min(ctl.max_step, ctl.max_step_indefinite)
        if big > limit:
            step *= limit / big
        new: RemlEval | None = None
        halved = False
        for _ in range(ctl.max_half + 1):
            trial_rho = np.clip(cur.rho + step, -RHO_BOUND, RHO_BOUND)
            trial = ev(trial_rho, cur.fit.beta, cur)
            if np.isfinite(trial.score) and trial.score <= cur.score:
                new = trial
                break
            step *= 0.5
            halved = True
        if new is None:
            # no decrease along the Newton direction even for tiny steps: the score is at
            # its minimum to within rounding of the inner fit
            logger.debug("outer step halving failed at iteration %d; stopping", n_outer)
            converged = mgcv_conv or float(np.max(np.abs(cur.grad[free]))) <= 5.0 * tol * sc
            if not converged:
                # mgcv: "Fitting terminated with step failure - check results carefully"
                notes.append(
                    StepFailureWarning(
                        f"REML fitting terminated with step failure after {n_outer} outer "
                        f"iteration(s): no step along the Newton direction decreased REML while "
                        f"max |gradient| is {float(np.max(np.abs(cur.grad))):.3g}; check results "
                        "carefully (separation or a REML surface the inner fit cannot resolve)"
                    )
                )
            break
        n_outer += 1
        dscore = cur.score - new.score
        cur = new
        history.append(cur.score)
        sc = score_scale(cur)
        free_new = np.abs(cur.grad) > 0.1 * tol * sc
        gmax = float(np.max(np.abs(cur.grad[free_new]))) if np.any(free_new) else 0.0
        mgcv_conv = mgcv_conv or (dscore <= tol * sc and gmax <= 5.0 * tol * sc)
        if last and not halved and _certified(prob, cur, flat0, tol, sc, ctl):
            notify(n_outer, cur, True)
            converged = True
            break
        notify(n_outer, cur, mgcv_conv and not np.any(np.abs(cur.grad) > flat0 * sc))
    sep = separation_note(prob.family.name, prob.y, cur.fit.mu, prob.wt)
    if sep is not None:
        # no finite optimum: a stationary point of the rounded REML is not convergence
        converged = False
        if not any(isinstance(w, StepFailureWarning) for w in notes):
            notes.append(sep)
    if not converged:
        logger.info("REML Newton did not converge in %d iterations", n_outer)
        if n_outer >= ctl.max_iter:
            notes.append(
                IterationLimitWarning(
                    f"REML iteration limit ({ctl.max_iter}) reached without full convergence; "
                    "check results carefully"
                )
            )
    bound_end = at_bound(prob, cur)
    bound = None if bound_start is None or bound_end is None else bound_start | bound_end
    return NewtonResult(
        cur,
        n_outer,
        calls,
        iters,
        converged,
        history,
        notes,
        n_indefinite,
        n_indefinite_bound,
        bound,
        sep is not None,
        tail_start=tail_start,
        tail_end=at_bound(prob, cur, TAIL_EDF),
    )


def at_bound(prob: Problem, ev: RemlEval, edf: float = BOUND_EDF) -> np.ndarray | None:
    """Per rho: whether it is at its bound at ``ev`` (see :data:`BOUND_EDF`).

    ``tr_j = lambda_j tr(H^-1 S_j)`` runs from 0 (no penalty) to the penalty rank (the smooth
    shrunk to its null space); within ``edf`` of the rank the smooth is its null-space fit
    and REML is flat in ``rho_j``. None for a design with several penalties per block (a
    tensor product: no per-rho rank to compare with).
    """
    d = prob.design
    tr = ev.parts.get("tr")
    if d.dense or tr is None:
        return None
    ranks = np.array([b.rank for b in d.smooths], dtype=np.float64)
    tr = np.asarray(tr, dtype=np.float64)
    return np.asarray(ranks - tr <= edf, dtype=bool)


def _only_along(H: np.ndarray, along: np.ndarray, share: float = 0.99) -> bool:
    """Whether every eigenvector of ``H`` with non-positive curvature (eigenvalue below
    :func:`_newton_step_pd`'s floor) lies along the components ``along`` (at least ``share``
    of its squared norm there)."""
    if not np.all(np.isfinite(H)) or not np.any(along):
        return False
    vals, vecs = np.linalg.eigh(H)
    floor = max(float(np.max(np.abs(vals))), 1e-300) * 1e-7
    low = vals < floor
    if not np.any(low):
        return False
    weight = np.sum(vecs[along][:, low] ** 2, axis=0)
    return bool(np.all(weight >= share))


def _certified(
    prob: Problem, ev: RemlEval, flat0: float, tol: float, sc: float, ctl: NewtonControl
) -> bool:
    """Whether a refit starting at ``ev`` would stop at once (see the loop's first checks).

    After the final Newton step the point is checked the way a refit from the store checks
    it (stationary gradient, or a negligible step under the weight-free Hessian with its
    factor-2 margin), so an exact-record refit does not take a step; the check costs no
    n-sized work. When it fails the loop simply goes on.
    """
    g = np.abs(ev.grad)
    if float(np.max(g)) > 5.0 * tol * sc:
        return False
    h = _hessian_or_fisher(prob, ev)
    if not np.any(g > flat0 * sc) and not np.any(_moving(ev.grad, h, tol, sc, ctl)):
        return True
    return _negligible(ev.grad, h, flat0 * sc, tol, sc, ctl, 0.5)


def _hessian_or_fisher(prob: Problem, ev: RemlEval) -> np.ndarray:
    """The exact REML Hessian where it was computed, else the weight-free one (cheap)."""
    return ev.hess if ev.hess is not None else fisher_hessian(prob, ev)


def _moving(
    grad: np.ndarray, hess: np.ndarray, tol: float, sc: float, ctl: NewtonControl
) -> np.ndarray:
    """Components whose diagonal Newton step ``|g_j| / H_jj`` exceeds ``skip_step`` along
    real curvature (``H_jj`` above mgcv's ``uconv.ind`` floor ``0.1 conv_tol score_scale``).

    The gradient thresholds are relative to ``|REML|``, which grows with n while REML's
    curvature in rho need not: at n = 200 000 a gradient below the polish threshold can
    still leave rho 2e-3 off the optimum along curvature 3.8 (quakes resampled). Such a
    component is not stationary; a flat one (rho drifting to +-infinity) has no curvature
    and stays out.
    """
    d = np.diag(hess)
    return (d > 0.1 * tol * sc) & (np.abs(grad) > ctl.skip_step * d)


def _negligible(
    grad: np.ndarray,
    hess: np.ndarray,
    flat: float,
    tol: float,
    sc: float,
    ctl: NewtonControl,
    margin: float,
) -> bool:
    """True when the Newton step from here is below ``margin * skip_step`` in every rho and
    its decrement ``g'H^{-1}g`` below ``margin * decrement_tol * conv_tol * score_scale``
    (the step over every component above ``flat``; H must be positive definite there)."""
    fine, exact = _fine_step(grad, hess, flat, tol, sc, ctl)
    size = float(np.max(np.abs(fine)))
    dec = float(-np.dot(grad, fine))  # Newton decrement
    return exact and size <= margin * ctl.skip_step and dec <= margin * ctl.decrement_tol * tol * sc


def _newton_step_pd(g: np.ndarray, Hf: np.ndarray) -> tuple[np.ndarray, bool]:
    """``-H^{-1} g`` with the eigenvalues of H replaced by ``max(|e|, 1e-7 max|e|)`` (mgcv),
    and whether H needed no such regularisation (positive definite: exact Newton)."""
    if not np.all(np.isfinite(Hf)):
        Hf = np.eye(g.shape[0])  # unusable curvature: fall back to steepest descent
        exact = False
    else:
        exact = True
    vals, vecs = np.linalg.eigh(Hf)
    vmax = float(np.max(np.abs(vals)))
    floor = max(vmax, 1e-300) * 1e-7
    exact = exact and bool(np.all(vals >= floor))
    vals = np.maximum(np.abs(vals), floor)
    return -(vecs @ ((vecs.T @ g) / vals)), exact


def _fine_step(
    grad: np.ndarray, hess: np.ndarray, flat: float, tol: float, sc: float, ctl: NewtonControl
) -> tuple[np.ndarray, bool]:
    """Newton step over every component with ``|g_j| > flat`` or still moving along real
    curvature (:func:`_moving`), zero elsewhere.

    The flag is True when that block of the Hessian is positive definite, so the step is an
    exact Newton step and quadratic convergence applies.
    """
    step = np.zeros_like(grad)
    fp = (np.abs(grad) > flat) | _moving(grad, hess, tol, sc, ctl)
    exact = True
    if np.any(fp):
        step[fp], exact = _newton_step_pd(grad[fp], hess[np.ix_(fp, fp)])
    return step, exact


# log(theta) search interval of nb (NegBin.ext_bounds) and the tolerance of every profile
LOG_THETA_BOUNDS = (-7.0, 12.0)
LOG_THETA_XTOL = 1e-7


def _polish_ext(
    prob: Problem,
    runs: dict[float, tuple[NewtonResult, Problem]],
    at: Any,
    t_best: float,
    lo: float,
    hi: float,
) -> float:
    """Secant steps on the profile's slope after Brent.

    Brent locates the minimum from REML values alone, which the inner rho iteration knows
    to about 1e-10 relative: along the flat bottom of the profile that leaves ``t`` some
    1e-5 off (tw on airquality: the REML scale then 1.3e-5 off mgcv's). The slope
    ``dV*/dt`` is the partial derivative at that ``t``'s optimal rho (envelope theorem),
    taken by central differences at fixed rho, which does not carry that noise; its zero is
    found by secant steps. The polished ``t`` is kept when its profiled REML is not above
    Brent's best beyond rounding (an optimum at the interval's edge keeps Brent's).
    """
    fam = prob.family
    h = 1e-4

    def slope(t: float) -> float:
        at(t)
        r, _ = runs[t]
        rho, beta = r.final.rho, r.final.fit.beta
        vp = evaluate(
            dataclasses.replace(prob, family=fam.with_ext(t + h)), rho, beta, hessian=False
        )
        vm = evaluate(
            dataclasses.replace(prob, family=fam.with_ext(t - h)), rho, beta, hessian=False
        )
        return float((vp.score - vm.score) / (2.0 * h))

    if not (lo + 2 * h < t_best < hi - 2 * h):
        return t_best
    try:
        t0, g0 = t_best, slope(t_best)
        t1 = float(np.clip(t0 - np.sign(g0) * 1e-3, lo + 2 * h, hi - 2 * h))
        g1 = slope(t1)
        for _ in range(6):
            if not (np.isfinite(g0) and np.isfinite(g1)) or g1 == g0:
                break
            t2 = t1 - g1 * (t1 - t0) / (g1 - g0)
            if not (lo + 2 * h < t2 < hi - 2 * h) or abs(t2 - t_best) > 0.5:
                break
            t0, g0 = t1, g1
            t1, g1 = float(t2), slope(float(t2))
            if abs(t1 - t0) < 1e-6:  # REML moves by ~1e-12 relative per 1e-6 in t here
                break
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return t_best
    best = runs[t_best][0].final.score
    if t1 in runs and runs[t1][0].final.score <= best + 1e-10 * abs(best):
        return t1
    return t_best


def _scan_ext(
    at: Any,
    runs: dict[float, tuple[NewtonResult, Problem]],
    scan: tuple[float, ...],
    lo: float,
    hi: float,
    opts: dict[str, float],
) -> None:
    """A cold profile search's second look: the family's scan points (tw: p from 1.01 to
    1.018, where the profile is multimodal); when the best of them is clearly below the best
    REML found so far, bounded Brent between its neighbours among every point evaluated."""
    from scipy.optimize import minimize_scalar

    if not scan:
        return
    best = min(r.final.score for r, _ in runs.values())
    for t in scan:
        if lo <= t <= hi:
            at(t)
    t_scan = min((t for t in scan if t in runs), key=lambda t: runs[t][0].final.score)
    v_scan = runs[t_scan][0].final.score
    if not (np.isfinite(v_scan) and v_scan < best - 1e-6 * max(1.0, abs(best))):
        return
    if t_scan == lo and at(lo + 0.05) >= v_scan:
        return  # the optimum is at the bound (tw: p within 1.4e-11 of a): no Brent along it
    known = sorted({lo, hi, *runs})
    k = known.index(t_scan)
    a, b = known[max(k - 1, 0)], known[min(k + 1, len(known) - 1)]
    if b > a:  # to 1e-4 in theta: the secant polish that follows refines an inner optimum
        minimize_scalar(at, bounds=(a, b), method="bounded", options={**opts, "xatol": 1e-4})


def profile_theta(
    prob: Problem,
    rho0: np.ndarray,
    beta0: np.ndarray | None = None,
    *,
    ext0: np.ndarray | None = None,
    control: NewtonControl | None = None,
    inner_cap: InnerCap | None = None,
    on_iterate: OnIterate | None = None,
) -> NewtonResult:
    """REML fit of an extended family with one parameter estimated: nb's ``log(theta)``,
    tw's ``theta = log((p - a)/(b - p))`` (the family's ``with_ext`` and ``ext_bounds``).

    mgcv estimates that parameter jointly with rho in its outer Newton iteration. Here the
    REML score is profiled instead: ``V*(t) = min_rho V(rho, t)`` is minimised over ``t`` by
    bounded Brent search, each ``V*(t)`` a :func:`newton` over rho (the scale profiled
    inside, for tw) started from the previous candidate's rho and beta. The minimum of the
    profile is the joint minimum, so the optimum (REML, rho, the parameter, fitted values) is
    mgcv's; only the path differs. ``ext0`` (a stored value) starts the search: Brent first
    brackets around it (a warm start costs fewer profile points, never a different answer
    beyond the tolerance).
    """
    from scipy.optimize import minimize_scalar

    fam = prob.family
    if fam.n_ext != 1:
        raise ValueError(f"profile_theta needs a family with one parameter estimated, got {fam!r}")
    ctl = control or NewtonControl()
    state: dict[str, Any] = {"rho": np.asarray(rho0, dtype=np.float64), "beta": beta0}
    runs: dict[float, tuple[NewtonResult, Problem]] = {}
    totals = [0, 0]

    def at(t: float) -> float:
        t = float(t)
        if t in runs:
            return runs[t][0].final.score
        p = dataclasses.replace(prob, family=fam.with_ext(t))
        r = newton(p, state["rho"], state["beta"], control=ctl, inner_cap=inner_cap)
        totals[0] += r.n_pirls_calls
        totals[1] += r.n_pirls_iters
        runs[t] = (r, p)
        if np.isfinite(r.final.score):
            state["rho"], state["beta"] = r.final.rho, r.final.fit.beta
        return r.final.score

    lo, hi = fam.ext_bounds()
    t0 = None if ext0 is None else float(np.asarray(ext0, dtype=np.float64).ravel()[0])
    opts = {"xatol": LOG_THETA_XTOL}
    if t0 is not None and np.isfinite(t0) and lo + 0.5 < t0 < hi - 0.5:
        # a warm start searches near the stored value; an optimum at the edge of that
        # interval means it was not there, and the full interval is searched (cold)
        opt = minimize_scalar(at, bounds=(t0 - 0.5, t0 + 0.5), method="bounded", options=opts)
        if abs(opt.x - (t0 - 0.5)) < 1e-3 or abs(opt.x - (t0 + 0.5)) < 1e-3:
            minimize_scalar(at, bounds=(lo, hi), method="bounded", options=opts)
    elif fam.ext_first_bounds() is not None:
        # a cold search over a family's usual range first (tw: p in 1.03..1.97, where the
        # series is cheap), the full interval only when the optimum is at its edge
        a, b = fam.ext_first_bounds()  # type: ignore[misc]
        opt = minimize_scalar(at, bounds=(a, b), method="bounded", options=opts)
        if abs(opt.x - a) < 1e-3 or abs(opt.x - b) < 1e-3:
            minimize_scalar(at, bounds=(lo, hi), method="bounded", options=opts)
        _scan_ext(at, runs, fam.ext_scan(), lo, hi, opts)
    else:
        minimize_scalar(at, bounds=(lo, hi), method="bounded", options=opts)
    t_best = min(runs, key=lambda k: runs[k][0].final.score)
    if fam.polish_ext:
        t_best = _polish_ext(prob, runs, at, t_best, lo, hi)
    best, p_best = runs[t_best]
    # polish rho at the chosen theta from its own optimum (reports its iterate to the caller,
    # with the log theta it was computed at, so a session checkpoint stores both)
    report: OnIterate | None = None
    if on_iterate is not None:
        ext_best = np.array([t_best])
        callback = on_iterate

        def report(it: Iterate) -> None:
            callback(dataclasses.replace(it, ext=ext_best))

    final = newton(p_best, best.final.rho, best.final.fit.beta, control=ctl, on_iterate=report)
    return dataclasses.replace(
        final,
        n_pirls_calls=final.n_pirls_calls + totals[0],
        n_pirls_iters=final.n_pirls_iters + totals[1],
        n_outer=final.n_outer + sum(r.n_outer for r, _ in runs.values()),
        ext=np.array([t_best]),
        prob=p_best,
    )
