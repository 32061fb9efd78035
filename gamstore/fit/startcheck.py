"""When a warm start from *another* fit is trusted, and the cold check when it is not.

A start from another fit (a cross-fit artifact: the full-data fit seen from a LOSO fold, or
a session seed left by a sibling fit) starts the Newton loop in the basin of the *other*
fit's optimum. When the fold's REML surface has another, lower basin (concurve smooths,
folds that drop a large share of the rows), the warm fit converges there and a cold fit
does not: same data, two answers. The policy below decides, per fit, whether the warm
result is trusted; otherwise the fit is repeated from the cold start (mgcv's
``initial.spg``) and the lower REML is returned, both being recorded on
``FitResult.start_check``. See docs/warm-start.md ("Warm never worse than cold").

A start from the *same* fit (``"exact"``, an exact-key ``"session"``) is never checked: it
resumes a fit that was itself checked when it was first made.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gamstore.fit.newton import NewtonResult

CheckMode = Literal["auto", "always", "never"]
CHECK_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class StartCheckPolicy:
    """When a fit started from another fit's optimum is also fitted cold.

    Attributes
    ----------
    mode : {"auto", "always", "never"}
        ``"auto"``: check when one of the triggers below fires; ``"always"``: check every fit
        that started from another fit (warm never worse than cold, at the price of a cold
        fit); ``"never"``: trust every warm start (the fastest; disagreement is possible and
        goes unreported).
    max_drop_share : float
        Trigger ``"rows"``: the fit has fewer than ``(1 - max_drop_share)`` of the parent
        fit's rows (or the parent's row count is unknown). A fold that drops a large share of
        the rows can move its optimum into another basin while staying close to the start.
        The default 0.15 checks every fold of a LOSO with fewer than about 7 equal subjects.
    max_move : float
        Trigger ``"moved"``: some log smoothing parameter moved farther than this from the
        start (a factor e^2 = 7.4 in lambda by default): the start was not informative. A
        smoothing parameter at its bound at the start or at the optimum
        (:func:`gamstore.fit.newton.at_bound`: a null effect shrunk to its null space, or a
        penalty with no effect) does not count: REML is flat there, so it drifts without
        the start being uninformative.

        Trigger ``"bound"`` (always on under ``"auto"``): some smoothing parameter was deep in
        its flat tail (:data:`gamstore.fit.newton.TAIL_EDF`) both at the start and at the
        warm optimum. The run started in a flat tail and
        never searched that parameter (no gradient there), so a lower interior basin goes
        unseen; a start from another fit's optimum with a smooth shrunk to its null space
        is therefore checked unless the warm run left that bound.
    rel_tol : float
        Relative REML difference above which warm and cold count as disagreeing.
    """

    mode: CheckMode = "auto"
    max_drop_share: float = 0.15
    max_move: float = 2.0
    rel_tol: float = 1e-6

    def __post_init__(self) -> None:
        if self.mode not in CHECK_MODES:
            raise ValueError(f"start_check mode must be one of {CHECK_MODES}, got {self.mode!r}")
        for name in ("max_drop_share", "max_move", "rel_tol"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not np.isfinite(v)
                or v < 0
            ):
                raise ValueError(f"StartCheckPolicy.{name} must be a finite number >= 0, got {v!r}")


def as_policy(value: StartCheckPolicy | str | None) -> StartCheckPolicy:
    """A policy from a mode name, a policy, or None (the default ``"auto"``)."""
    if value is None:
        return StartCheckPolicy()
    if isinstance(value, StartCheckPolicy):
        return value
    if isinstance(value, str):
        return StartCheckPolicy(mode=value)  # type: ignore[arg-type]
    raise TypeError(
        f"start_check must be 'auto', 'always', 'never' or a StartCheckPolicy, got {value!r}"
    )


@dataclass(frozen=True)
class StartCheck:
    """How a fit started and what the cold check found (``FitResult.start_check``).

    Attributes
    ----------
    level : str
        Where the start came from (``FitResult.warm`` of the warm run).
    rho_start : numpy.ndarray
        The starting log smoothing parameters.
    rho_moved : float
        ``max |rho_warm - rho_start|``: how far the warm run moved.
    drop_share : float
        ``1 - n / n_parent`` for a start from another fit (NaN when not known).
    reasons : tuple of str
        The triggers that fired (``"rows"``, ``"moved"``, ``"indefinite"``,
        ``"not-converged"``, ``"bound"``, ``"always"``); empty when the start was
        trusted. ``"indefinite"``
        counts only Newton steps whose non-positive curvature lay along some smoothing
        parameter not at its bound; ``"moved"`` only those not at their bound.
    at_bound : tuple of int
        The smoothing parameters (rho indices) at their bound at the start or at the warm
        optimum, left out of the ``"moved"`` and ``"indefinite"`` triggers.
    cold_checked : bool
        Whether the cold fit ran.
    warm_reml, cold_reml : float
        REML of the warm run and of the cold check (NaN when it did not run).
    warm_rho, cold_rho : numpy.ndarray
        Optima of both runs (``cold_rho`` empty when the check did not run).
    disagree : bool
        The two REML scores differ by more than ``rel_tol`` (relative).
    kept : {"warm", "cold"}
        Which run the fit returns: the lower REML (warm on a tie).
    check_seconds : float
        Wall time of the cold check.
    """

    level: str
    rho_start: np.ndarray
    rho_moved: float
    drop_share: float
    reasons: tuple[str, ...] = ()
    at_bound: tuple[int, ...] = ()
    cold_checked: bool = False
    warm_reml: float = float("nan")
    cold_reml: float = float("nan")
    warm_rho: np.ndarray = field(default_factory=lambda: np.empty(0))
    cold_rho: np.ndarray = field(default_factory=lambda: np.empty(0))
    disagree: bool = False
    kept: str = "warm"
    check_seconds: float = 0.0


# levels that start from *another* fit's optimum ("session-seed": a sibling's session)
FOREIGN_LEVELS = ("cross-fit", "session-seed")


def triggers(
    policy: StartCheckPolicy,
    nres: NewtonResult,
    rho_start: np.ndarray,
    n_rows: int,
    parent_rows: int | None,
    tail_probe: TailProbe | None = None,
) -> tuple[tuple[str, ...], float, float]:
    """The reasons to check a start from another fit, the move and the dropped share.

    The move is over every smoothing parameter; the ``"moved"`` trigger compares
    ``policy.max_move`` with the move of those not at their bound (``nres.at_bound``).
    ``tail_probe`` (see :func:`left_tail_is_lower`) decides the ``"bound"`` trigger; without
    it that trigger never fires.
    """
    delta = np.abs(nres.final.rho - rho_start) if rho_start.size else np.zeros(0)
    moved = float(np.max(delta)) if delta.size else 0.0
    bound = getattr(nres, "at_bound", None)
    if bound is not None and np.shape(bound) == delta.shape:
        delta = delta[~np.asarray(bound, dtype=bool)]
    moved_free = float(np.max(delta)) if delta.size else 0.0
    drop = float("nan")
    if parent_rows is not None and parent_rows > 0:
        drop = 1.0 - n_rows / parent_rows
    if policy.mode == "never":
        return (), moved, drop
    if policy.mode == "always":
        return ("always",), moved, drop
    reasons = []
    if not (drop <= policy.max_drop_share):  # NaN (unknown parent) checks too
        reasons.append("rows")
    if moved_free > policy.max_move:
        reasons.append("moved")
    if nres.n_indefinite > getattr(nres, "n_indefinite_bound", 0):
        reasons.append("indefinite")
    if not nres.converged:
        reasons.append("not-converged")
    if tail_probe is not None and left_tail_is_lower(policy, nres, tail_probe):
        reasons.append("bound")
    return tuple(reasons), moved, drop


#: the ``"bound"`` trigger's probe: ``probe(j, f)`` is REML (one evaluation, no Newton run)
#: at the warm optimum with smoothing parameter ``j`` moved the fraction ``f`` of the way
#: back to its cold start (``f = 1``: the cold start's value)
TailProbe = Callable[[int, float], float]

#: where the ``"bound"`` trigger probes REML between a tail and the cold start (mtcars by cyl,
#: fold 3: lower at 0.75 and 0.5 of the way, higher at the cold start itself)
TAIL_PROBES = (0.75, 0.5, 1.0)


def left_tail_is_lower(policy: StartCheckPolicy, nres: NewtonResult, probe: TailProbe) -> bool:
    """Trigger ``"bound"``: some smoothing parameter stayed deep in its flat tail
    (:func:`stayed_at_bound`) and REML is lower out of it.

    For each such smoothing parameter in turn, REML is evaluated at the warm optimum with
    that one moved back towards the cold start's value (mgcv's ``initial.spg``;
    :data:`TAIL_PROBES`). A null effect (its tail is the optimum) gives a higher REML there
    and is trusted (a few REML evaluations per parameter in its tail); a tail that hides a
    lower interior basin gives a lower one, and the fit is checked cold. A probe that fails
    or is not finite checks cold too.
    """
    if not stayed_at_bound(nres):
        return False
    warm = float(nres.final.score)
    if not np.isfinite(warm):
        return True
    below = warm - policy.rel_tol * max(abs(warm), 1.0)
    for j in np.flatnonzero(_tail_mask(nres)):
        for f in TAIL_PROBES:
            try:
                out = float(probe(int(j), f))
            except Exception:  # noqa: BLE001 - a probe problem checks cold, never fails a fit
                return True
            if not np.isfinite(out) or out < below:
                return True
    return False


def _tail_mask(nres: NewtonResult) -> np.ndarray:
    start = np.asarray(getattr(nres, "tail_start", None), dtype=bool)
    end = np.asarray(getattr(nres, "tail_end", None), dtype=bool)
    return start & end


def stayed_at_bound(nres: NewtonResult) -> bool:
    """Whether some smoothing parameter was deep in its flat tail (within
    :data:`gamstore.fit.newton.TAIL_EDF` of its null space) both at the start and at the
    optimum.

    REML is flat in the tail where a smooth is shrunk to its null space, so a run that starts
    there has no gradient to leave it: it never searched that smoothing parameter, and a
    lower interior basin (the cold start's) stays unseen. A LOSO fold started from a sibling
    fold's optimum with a smooth at its bound kept REML 33.0043 against the cold 32.9796
    (mtcars by cylinders, fold 3; mgcv 32.9796).
    """
    start = getattr(nres, "tail_start", None)
    end = getattr(nres, "tail_end", None)
    if start is None or end is None or np.shape(start) != np.shape(end):
        return False
    return bool(np.any(np.asarray(start, dtype=bool) & np.asarray(end, dtype=bool)))


def foreseen(policy: StartCheckPolicy, n_rows: int, parent_rows: int | None) -> tuple[str, ...]:
    """The triggers that will fire for a start from another fit whatever the warm run does:
    known before fitting, from the row counts alone.

    ``("always",)`` under ``mode="always"``; ``("rows",)`` under ``"auto"`` when the fit has
    fewer than ``1 - max_drop_share`` of the parent's rows (or the parent's count is
    unknown); ``()`` otherwise (``"moved"``, ``"indefinite"`` and ``"not-converged"`` are
    known only after the warm run). A start from another fit with a foreseen check costs a
    warm run *and* the cold fit: the caller can fit cold instead and get the answer the check
    would keep at the least (a fold fitted cold is trivially never worse than cold).
    """
    if policy.mode == "never":
        return ()
    if policy.mode == "always":
        return ("always",)
    drop = float("nan")
    if parent_rows is not None and parent_rows > 0:
        drop = 1.0 - n_rows / parent_rows
    return () if drop <= policy.max_drop_share else ("rows",)


def check_start(
    policy: StartCheckPolicy,
    level: str,
    warm: NewtonResult,
    rho_start: np.ndarray,
    n_rows: int,
    parent_rows: int | None,
    run_cold: Callable[[], NewtonResult],
    tail_probe: TailProbe | None = None,
) -> tuple[NewtonResult, StartCheck]:
    """Apply the policy to a finished warm run; returns the run to keep and the record.

    ``run_cold`` fits from the cold start (called only when a trigger fires). The kept run is
    the one with the lower REML; on a tie (within ``rel_tol``) the warm run is kept.
    ``tail_probe(j, f)``: REML at the warm optimum with smoothing parameter ``j`` moved the
    fraction ``f`` of the way back to its cold start (the ``"bound"`` trigger,
    :func:`left_tail_is_lower`).
    """
    rho_start = np.asarray(rho_start, dtype=np.float64)
    if level not in FOREIGN_LEVELS:
        moved = float(np.max(np.abs(warm.final.rho - rho_start))) if rho_start.size else 0.0
        record = StartCheck(
            level,
            rho_start.copy(),
            moved,
            float("nan"),
            warm_reml=float(warm.final.score),
            warm_rho=warm.final.rho.copy(),
        )
        return warm, record
    reasons, moved, drop = triggers(policy, warm, rho_start, n_rows, parent_rows, tail_probe)
    bound = getattr(warm, "at_bound", None)
    base = StartCheck(
        level,
        rho_start.copy(),
        moved,
        drop,
        reasons,
        () if bound is None else tuple(int(j) for j in np.flatnonzero(bound)),
        warm_reml=float(warm.final.score),
        warm_rho=warm.final.rho.copy(),
    )
    if not reasons:
        return warm, base
    t0 = time.perf_counter()
    cold = run_cold()
    seconds = time.perf_counter() - t0
    w, c = float(warm.final.score), float(cold.final.score)
    scale = max(abs(w), abs(c), 1.0)
    disagree = bool(abs(w - c) > policy.rel_tol * scale)
    keep_cold = bool(np.isfinite(c) and (not np.isfinite(w) or (disagree and c < w)))
    record = dataclasses.replace(
        base,
        cold_checked=True,
        cold_reml=c,
        cold_rho=cold.final.rho.copy(),
        disagree=disagree,
        kept="cold" if keep_cold else "warm",
        check_seconds=seconds,
    )
    return (cold if keep_cold else warm), record


__all__ = [
    "CHECK_MODES",
    "StartCheck",
    "StartCheckPolicy",
    "as_policy",
    "check_start",
    "TAIL_PROBES",
    "TailProbe",
    "foreseen",
    "left_tail_is_lower",
    "stayed_at_bound",
    "triggers",
]
