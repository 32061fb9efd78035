"""The adaptive warm-start policy (issue 17 item 4): skip what cannot pay.

A warm start costs store round trips (key hashing, lookups, transfer) before the fit and
writes after it; it can at best save the fit's own outer loop. The orchestrator measures
both online, per process, and decides before each step:

* **lookups** are skipped when the store has been slower than the fit it would shorten:
  the lookup phase's exponentially weighted mean time on this store URL is at least
  ``lookup_ratio`` times the expected cold fit time of this fit family (its EWMA seconds per
  row times the fit's rows) - or, once warm-started fits of the family have been timed too,
  at least ``lookup_ratio`` times what a warm start saved (expected cold minus expected warm
  time; a warm start that is checked by a cold refit saves nothing, and is skipped);
* **saves** are skipped when the fit was cheaper than a save: the EWMA save time on this
  store URL is at least ``save_ratio`` times this fit's own time (before any save was timed
  on the store, ``save_per_lookup`` times its lookup time stands in). Inside a pipeline run
  (a fit with a :class:`FitHint`, e.g. the fits of ``run_loso``) a save serves a later run
  only and is insurance: ``run_save_ratio`` (0.05) bounds it to a few percent of the fit;
  the one save the run itself needs (the full-data fit's artifact the folds start from) is
  decided by what it saves in this run (:meth:`CostModel.artifact_decision`).

With no history there is nothing to go on, so the step runs (and is measured): the first fit
of a fresh process always looks up, and saves unless those lookups suggest a save costs more
than the fit. In a leave-one-subject-out run the full-data
fit (cold) measures the fit cost per row and the store's lookup and save costs, so fold 1
already decides from real numbers, and each fold refines them.

The policy is data (:class:`WarmPolicy`); ``policy="always"`` is the old behaviour (every
lookup and save), for runs that need deterministic store traffic. A skipped step never
changes an answer: a fit without a warm start is the cold fit. The decision is explained in
``FitResult.warm_decision`` (e.g. ``"lookup skipped: fit ~3 ms, store round trip 40 ms"``).

**Hints from the caller** (:class:`FitHint`, set with :func:`fit_hint` around a fit): a
pipeline knows things about a fit that the fit itself does not, before it runs. A
leave-one-subject-out run knows which folds its start check will refit cold anyway (a fold
that drops a large share of the rows, :func:`gamstore.fit.startcheck.foreseen`): a start from
the full-data fit cannot pay there, so such a fold does not look for one (and does not look
up at all when the full-data fit found no record of its own, i.e. the store holds none of
this data's fits); and it knows how many folds will start from the full-data fit's artifact,
which is what that artifact's save must pay for *in this run*. Before any warm start of the
family has been timed, a hinted fit also decides from a prior (a cross-fit start saves about
``prior_cross_fit`` of the cold fit, an exact record ``prior_exact``) instead of looking up
blindly. Hints apply to the adaptive policy only; ``"always"`` ignores them.

Tests inject a :class:`CostModel` with their own clock; the process-wide model is
:data:`COSTS`, the process-wide default policy :func:`default_policy` (``GAMSTORE_WARM_POLICY``
= ``always`` or ``adaptive`` in the environment sets it for worker processes too).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "COSTS",
    "CostModel",
    "Decision",
    "FitHint",
    "HintReport",
    "WarmPolicy",
    "as_policy",
    "current_hint",
    "default_policy",
    "fit_hint",
    "set_default_policy",
]


@dataclass(frozen=True)
class WarmPolicy:
    """When the warm-start layer looks up and saves.

    Parameters
    ----------
    mode : {"adaptive", "always"}
        ``"always"``: every lookup and save (the behaviour before the policy existed).
    lookup_ratio : float
        Skip lookups while the store's lookup time is at least this times the expected fit.
    save_ratio : float
        Skip saves while the store's save time is at least this times the fit just done.
    run_save_ratio : float
        The same for the fits of a pipeline run (hinted, :class:`FitHint`: ``run_loso``'s),
        whose saves only a later run can use: insurance, at most about this share of a fit
        (default 0.05, so a LOSO run with a fresh store stays within ~5% of one without;
        ``1.0`` saves whenever a save is cheaper than the fit, for LOSO runs that are
        repeated). The save the run itself needs (the full-data fit's artifact that the folds
        start from) is decided by what it saves in this run instead.
    weight : float
        Weight of the newest sample in the exponentially weighted means, in (0, 1].
    prior_cross_fit, prior_exact : float
        Share of the cold fit a start from another fit's artifact (a LOSO fold from the
        full-data fit), and from the fit's own exact record, are expected to save before any
        such start has been timed; used only for fits with a :class:`FitHint` (measured
        cross-fit savings: 0.2-0.55 of the outer loop on the real-data LOSO sets; exact:
        0.15-0.3 Gaussian, 0.7-0.8 Poisson/binomial).
    save_per_lookup : float
        Before a save has been timed on a store, a save is estimated at this many times the
        lookup phase just timed (a local store measured 3.5-5.8x: a save writes a record's
        and an artifact's objects, a lookup lists and misses).
    save_explore : float
        A fit outside a pipeline run saves once to time the store (no save timed on it yet)
        while that estimate is below this many times the fit: the first lookup phase of a
        process is inflated by first-use costs, so an estimate near the fit's time says
        little, and a skipped save costs every later exact refit its record.
    artifact_margin : float
        The full-data fit's artifact is written when the folds that start from it are
        expected to save at least this many times its save (the saving is a prior or a few
        samples, and a fold's start check may still refit it cold: a margin keeps a
        marginal artifact from making the run slower).
    """

    mode: Literal["adaptive", "always"] = "adaptive"
    lookup_ratio: float = 1.0
    save_ratio: float = 1.0
    run_save_ratio: float = 0.05
    weight: float = 0.3
    prior_cross_fit: float = 0.3
    prior_exact: float = 0.5
    save_per_lookup: float = 4.0
    save_explore: float = 4.0
    artifact_margin: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in ("adaptive", "always"):
            raise ValueError(f"mode: expected 'adaptive' or 'always', got {self.mode!r}")
        for name in ("prior_cross_fit", "prior_exact"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise ValueError(f"{name}: expected a float in [0, 1], got {v!r}")
        for name in (
            "lookup_ratio",
            "save_ratio",
            "run_save_ratio",
            "save_per_lookup",
            "save_explore",
            "artifact_margin",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
                raise ValueError(f"{name}: expected a finite float > 0, got {v!r}")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w <= 1:
            raise ValueError(f"weight: expected a float in (0, 1], got {w!r}")


_ENV_POLICIES = {"always": WarmPolicy(mode="always"), "adaptive": WarmPolicy()}


def _env_policy() -> WarmPolicy:
    mode = os.environ.get("GAMSTORE_WARM_POLICY", "adaptive").strip().lower()
    return _ENV_POLICIES["always" if mode == "always" else "adaptive"]


_default: WarmPolicy | None = None


def default_policy() -> WarmPolicy:
    """The process-wide default (``GAMSTORE_WARM_POLICY`` unless :func:`set_default_policy`)."""
    return _default if _default is not None else _env_policy()


def set_default_policy(policy: WarmPolicy | str | None) -> WarmPolicy | None:
    """Set the process-wide default policy (None: back to the environment); returns the old."""
    global _default
    old = _default
    _default = None if policy is None else as_policy(policy)
    return old


def as_policy(policy: WarmPolicy | str | None) -> WarmPolicy:
    """A :class:`WarmPolicy` from a policy, ``"always"``/``"adaptive"`` or None (default).

    Raises
    ------
    ValueError
        For another string; TypeError for another type.
    """
    if policy is None:
        return default_policy()
    if isinstance(policy, WarmPolicy):
        return policy
    if isinstance(policy, str):
        if policy in _ENV_POLICIES:
            return _ENV_POLICIES[policy]
        return WarmPolicy(mode=policy)  # type: ignore[arg-type]  # validated there
    raise TypeError(f"policy: expected a WarmPolicy, 'always' or 'adaptive', got {policy!r}")


@dataclass(frozen=True)
class Decision:
    """Whether a step runs, and why (one phrase for the fit result)."""

    go: bool
    reason: str


@dataclass
class HintReport:
    """What a hinted fit did that its caller plans with (filled in by the fit).

    Attributes
    ----------
    artifact : bool or None
        Whether the fit wrote its cross-fit artifact (None: it made no save decision).
    """

    artifact: bool | None = None


@dataclass(frozen=True)
class FitHint:
    """What a caller knows about one fit before it runs (see the module docstring).

    Attributes
    ----------
    foreign : bool
        Look for a start from another fit (a cross-fit artifact, a sibling's session seed).
        False when such a start cannot pay: e.g. the start check would refit it cold.
    own : bool
        Look for the fit's own state (exact record, exact session). With ``foreign`` also
        False the fit does not look up at all (nor derive its key for it).
    expect : {"cross-fit", "exact"} or None
        What a lookup will find at best, for the prior of the lookup decision while no warm
        start of the family has been timed (None: no prior, look up and learn).
    artifact_uses : int or None
        Fits of this run that will start from this fit's artifact (a LOSO's full-data fit:
        the folds whose start is not checked cold anyway); 0 skips the artifact; None: no
        in-run use known (the artifact follows the later-run rule).
    artifact_rows : int
        Rows of one such fit (to estimate what its warm start saves).
    reason : str
        Why lookups are restricted, for ``FitResult.warm_decision``.
    artifact_reason : str
        Why no fit of this run starts from the artifact (with ``artifact_uses=0``).
    report : HintReport
        Filled in by the fit (what it wrote).
    """

    foreign: bool = True
    own: bool = True
    expect: str | None = None
    artifact_uses: int | None = None
    artifact_rows: int = 0
    reason: str = ""
    artifact_reason: str = ""
    report: HintReport = field(default_factory=HintReport, compare=False)


_hint: contextvars.ContextVar[FitHint | None] = contextvars.ContextVar(
    "gamstore_fit_hint", default=None
)


def current_hint() -> FitHint | None:
    """The hint of the enclosing :func:`fit_hint` block (None outside one)."""
    return _hint.get()


@contextlib.contextmanager
def fit_hint(hint: FitHint | None) -> Iterator[FitHint | None]:
    """Hint every fit inside the block (None: no hint); yields the hint (its ``report``)."""
    token = _hint.set(hint)
    try:
        yield hint
    finally:
        _hint.reset(token)


def ms(seconds: float) -> str:
    """``3.2 ms``-style rendering of a duration."""
    return f"{seconds * 1e3:.3g} ms"


class _Ewma:
    __slots__ = ("n", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.n = 0

    def add(self, x: float, weight: float) -> None:
        self.value = x if self.n == 0 else (1.0 - weight) * self.value + weight * x
        self.n += 1


class CostModel:
    """Online costs of fits and stores (exponentially weighted means), one per process.

    Parameters
    ----------
    clock : callable, optional
        Seconds, monotonic (default :func:`time.perf_counter`); tests pass a fake clock.

    Notes
    -----
    Keys: a store URL for its lookup-phase and save times; a fit family (the family name and
    block structure, no data) for its cold fit time per row. Thread-safe.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = time.perf_counter if clock is None else clock
        self._lock = threading.Lock()
        self._lookup: dict[str, _Ewma] = {}
        self._save: dict[str, _Ewma] = {}
        self._fit: dict[str, _Ewma] = {}
        self._warm: dict[str, _Ewma] = {}
        self._own: dict[str, _Ewma] = {}

    def _add(self, table: dict[str, _Ewma], key: str, x: float, weight: float) -> None:
        if not (math.isfinite(x) and x >= 0):
            return
        with self._lock:
            table.setdefault(key, _Ewma()).add(x, weight)

    def observe_lookup(self, url: str, seconds: float, policy: WarmPolicy) -> None:
        """One lookup phase (keys, reads, transfer) on ``url`` took ``seconds``."""
        self._add(self._lookup, url, seconds, policy.weight)

    def observe_save(self, url: str, seconds: float, policy: WarmPolicy) -> None:
        """The writes after one fit on ``url`` took ``seconds``."""
        self._add(self._save, url, seconds, policy.weight)

    def observe_fit(
        self,
        family: str,
        n_rows: int,
        seconds: float,
        policy: WarmPolicy,
        *,
        cold: bool = True,
        own: bool = False,
    ) -> None:
        """A fit of ``family`` on ``n_rows`` rows took ``seconds`` (the fit itself, with any
        cold check of its start); ``cold``: it started cold, else from a looked-up start:
        its own state (``own``: an exact record or exact session, which needs few or no
        Newton steps) or another fit's (a cross-fit artifact, a seed), timed apart."""
        table = self._fit if cold else (self._own if own else self._warm)
        self._add(table, family, seconds / max(int(n_rows), 1), policy.weight)

    def lookup_time(self, url: str) -> float | None:
        """EWMA lookup-phase seconds on ``url`` (None: never measured)."""
        e = self._lookup.get(url)
        return None if e is None else e.value

    def save_time(self, url: str) -> float | None:
        """EWMA save seconds on ``url`` (None: never measured)."""
        e = self._save.get(url)
        return None if e is None else e.value

    def expected_fit(
        self, family: str, n_rows: int, *, cold: bool = True, own: bool = False
    ) -> float | None:
        """Expected cold (or warm-started: from its own state with ``own``, else from another
        fit's) fit seconds of ``family`` on ``n_rows`` rows (None: no history)."""
        table = self._fit if cold else (self._own if own else self._warm)
        e = table.get(family)
        return None if e is None else e.value * max(int(n_rows), 1)

    def lookup_decision(
        self,
        policy: WarmPolicy,
        url: str,
        family: str,
        n_rows: int,
        hint: FitHint | None = None,
    ) -> Decision:
        """Look up unless the store has been slower than the fit a warm start would shorten,
        or (``hint``) the start it can find cannot pay."""
        if policy.mode == "always":
            return Decision(True, "looked up (policy always)")
        if hint is not None and not hint.foreign and not hint.own:
            return Decision(False, f"lookup skipped: {hint.reason}")
        head = "" if hint is None or hint.foreign else f"cross-fit start skipped ({hint.reason}); "
        fit = self.expected_fit(family, n_rows)
        rtt = self.lookup_time(url)
        if fit is None or rtt is None:
            return Decision(True, f"{head}looked up (no history yet)")
        if rtt >= policy.lookup_ratio * fit:  # not even a free warm fit could pay
            return Decision(
                False, f"{head}lookup skipped: fit ~{ms(fit)}, store round trip {ms(rtt)}"
            )
        own = self.expected_fit(family, n_rows, cold=False, own=True)
        other = self.expected_fit(family, n_rows, cold=False)
        warm: float | None
        if hint is None:
            # a plain fit may find either: its own record is not a cross-fit start (an exact
            # hit needs no Newton loop), so the better of the two timed kinds counts
            known = [w for w in (own, other) if w is not None]
            if not known:
                return Decision(True, "looked up (no warm history yet)")
            warm, kind, prior = min(known), "warm", False
        elif not hint.foreign or hint.expect == "exact":
            warm, kind, prior = own, "exact", own is None
        else:
            warm, kind, prior = other, "warm", other is None
        if prior:
            share = policy.prior_exact if kind == "exact" else policy.prior_cross_fit
            what = "an exact record" if kind == "exact" else "a cross-fit start"
            saving = share * fit
            costs = (
                f"fit ~{ms(fit)} cold, {what} saves ~{ms(saving)} (prior {share:.0%}), "
                f"store round trip {ms(rtt)}"
            )
        else:
            assert warm is not None
            saving = fit - warm
            costs = f"fit ~{ms(fit)} cold, ~{ms(warm)} {kind}, store round trip {ms(rtt)}"
        if rtt >= policy.lookup_ratio * saving:
            return Decision(False, f"{head}lookup skipped: {costs}")
        return Decision(True, f"{head}looked up: {costs}")

    def save_decision(
        self, policy: WarmPolicy, url: str, fit_seconds: float, *, in_run: bool = False
    ) -> Decision:
        """Save unless the fit just done was cheaper than a save on this store (times
        ``save_ratio``; ``in_run``: a fit of a pipeline run, ``run_save_ratio``)."""
        if policy.mode == "always":
            return Decision(True, "saved (policy always)")
        ratio = policy.run_save_ratio if in_run else policy.save_ratio
        save = self.save_time(url)
        if save is None:
            # no save timed on this store yet: estimated from the lookups just timed (a save
            # writes a record's and an artifact's objects and markers against a listing and a
            # few reads: save_per_lookup times a lookup phase, 3.5-5.8x measured locally)
            rtt = self.lookup_time(url)
            if rtt is None:
                return Decision(True, "saved (no history yet)")
            est = policy.save_per_lookup * rtt
            if not in_run and ratio * fit_seconds <= est < policy.save_explore * fit_seconds:
                return Decision(
                    True,
                    f"saved to time this store: store save ~{ms(est)} (estimated from a "
                    f"round trip of {ms(rtt)}), fit {ms(fit_seconds)}",
                )
            if est >= ratio * fit_seconds:
                return Decision(
                    False,
                    f"save skipped: fit {ms(fit_seconds)}, store save ~{ms(est)} "
                    f"(estimated from a round trip of {ms(rtt)})",
                )
            return Decision(
                True,
                f"saved: store save ~{ms(est)} (estimated from a round trip of {ms(rtt)}), "
                f"fit {ms(fit_seconds)}",
            )
        if save >= ratio * fit_seconds:
            return Decision(False, f"save skipped: fit {ms(fit_seconds)}, store save {ms(save)}")
        return Decision(True, f"saved: store save {ms(save)}, fit {ms(fit_seconds)}")

    def artifact_decision(
        self, policy: WarmPolicy, url: str, family: str, hint: FitHint
    ) -> Decision:
        """Write the artifact that ``hint.artifact_uses`` fits of this run will start from
        when what they save together beats ``artifact_margin`` times its save: each saves its
        expected cold fit minus its expected warm fit (or ``prior_cross_fit`` of the cold fit
        before a warm start was timed), minus its own lookup phase."""
        if policy.mode == "always":
            return Decision(True, "artifact saved (policy always)")
        uses = int(hint.artifact_uses or 0)
        if uses <= 0:
            why = f" ({hint.artifact_reason})" if hint.artifact_reason else ""
            return Decision(False, f"artifact skipped: no fit of this run starts from it{why}")
        fold = self.expected_fit(family, hint.artifact_rows)
        rtt = self.lookup_time(url)
        if fold is None or rtt is None:
            return Decision(True, "artifact saved (no history yet)")
        warm = self.expected_fit(family, hint.artifact_rows, cold=False)
        if warm is None:
            saving = policy.prior_cross_fit * fold
            what = f"~{ms(saving)} (prior {policy.prior_cross_fit:.0%} of ~{ms(fold)})"
        else:
            saving = fold - warm
            what = f"~{ms(saving)}"
        save = self.save_time(url)
        est = "" if save is not None else " (estimated)"
        if save is None:
            save = policy.save_per_lookup * rtt
        costs = (
            f"{uses} fits start from it, each saves {what} for a lookup of {ms(rtt)}; "
            f"store save {ms(save)}{est}"
        )
        if uses * (saving - policy.lookup_ratio * rtt) > policy.artifact_margin * save:
            return Decision(True, f"artifact saved: {costs}")
        return Decision(False, f"artifact skipped: {costs}")

    def clear(self) -> None:
        """Forget every measurement (tests)."""
        with self._lock:
            self._lookup.clear()
            self._save.clear()
            self._fit.clear()
            self._warm.clear()
            self._own.clear()


#: The process-wide cost model.
COSTS = CostModel()
