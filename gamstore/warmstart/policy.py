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
  on the store, its lookup time stands in: a save writes at least what a lookup reads).

With no history there is nothing to go on, so the step runs (and is measured): the first fit
of a fresh process always looks up, and saves unless those lookups alone took longer than the
fit. In a leave-one-subject-out run the full-data
fit (cold) measures the fit cost per row and the store's lookup and save costs, so fold 1
already decides from real numbers, and each fold refines them.

The policy is data (:class:`WarmPolicy`); ``policy="always"`` is the old behaviour (every
lookup and save), for runs that need deterministic store traffic. A skipped step never
changes an answer: a fit without a warm start is the cold fit. The decision is explained in
``FitResult.warm_decision`` (e.g. ``"lookup skipped: fit ~3 ms, store round trip 40 ms"``).

Tests inject a :class:`CostModel` with their own clock; the process-wide model is
:data:`COSTS`, the process-wide default policy :func:`default_policy` (``GAMSTORE_WARM_POLICY``
= ``always`` or ``adaptive`` in the environment sets it for worker processes too).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "COSTS",
    "CostModel",
    "Decision",
    "WarmPolicy",
    "as_policy",
    "default_policy",
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
    weight : float
        Weight of the newest sample in the exponentially weighted means, in (0, 1].
    """

    mode: Literal["adaptive", "always"] = "adaptive"
    lookup_ratio: float = 1.0
    save_ratio: float = 1.0
    weight: float = 0.3

    def __post_init__(self) -> None:
        if self.mode not in ("adaptive", "always"):
            raise ValueError(f"mode: expected 'adaptive' or 'always', got {self.mode!r}")
        for name in ("lookup_ratio", "save_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
                raise ValueError(f"{name}: expected a finite float > 0, got {v!r}")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w <= 1:
            raise ValueError(f"weight: expected a float in (0, 1], got {w!r}")


def _env_policy() -> WarmPolicy:
    mode = os.environ.get("GAMSTORE_WARM_POLICY", "adaptive").strip().lower() or "adaptive"
    return WarmPolicy(mode="always" if mode == "always" else "adaptive")


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
        return WarmPolicy(mode=policy)  # type: ignore[arg-type]  # validated there
    raise TypeError(f"policy: expected a WarmPolicy, 'always' or 'adaptive', got {policy!r}")


@dataclass(frozen=True)
class Decision:
    """Whether a step runs, and why (one phrase for the fit result)."""

    go: bool
    reason: str


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
        self, family: str, n_rows: int, seconds: float, policy: WarmPolicy, *, cold: bool = True
    ) -> None:
        """A fit of ``family`` on ``n_rows`` rows took ``seconds`` (the fit itself, with any
        cold check of its start); ``cold``: it started cold, else from a looked-up start."""
        table = self._fit if cold else self._warm
        self._add(table, family, seconds / max(int(n_rows), 1), policy.weight)

    def lookup_time(self, url: str) -> float | None:
        """EWMA lookup-phase seconds on ``url`` (None: never measured)."""
        e = self._lookup.get(url)
        return None if e is None else e.value

    def save_time(self, url: str) -> float | None:
        """EWMA save seconds on ``url`` (None: never measured)."""
        e = self._save.get(url)
        return None if e is None else e.value

    def expected_fit(self, family: str, n_rows: int, *, cold: bool = True) -> float | None:
        """Expected cold (or warm-started) fit seconds of ``family`` on ``n_rows`` rows
        (None: no history)."""
        e = (self._fit if cold else self._warm).get(family)
        return None if e is None else e.value * max(int(n_rows), 1)

    def lookup_decision(self, policy: WarmPolicy, url: str, family: str, n_rows: int) -> Decision:
        """Look up unless the store has been slower than the fit a warm start would shorten."""
        if policy.mode == "always":
            return Decision(True, "looked up (policy always)")
        fit = self.expected_fit(family, n_rows)
        rtt = self.lookup_time(url)
        if fit is None or rtt is None:
            return Decision(True, "looked up (no history yet)")
        if rtt >= policy.lookup_ratio * fit:  # not even a free warm fit could pay
            return Decision(False, f"lookup skipped: fit ~{ms(fit)}, store round trip {ms(rtt)}")
        warm = self.expected_fit(family, n_rows, cold=False)
        if warm is None:
            return Decision(True, "looked up (no warm history yet)")
        costs = f"fit ~{ms(fit)} cold, ~{ms(warm)} warm, store round trip {ms(rtt)}"
        if rtt >= policy.lookup_ratio * (fit - warm):
            return Decision(False, f"lookup skipped: {costs}")
        return Decision(True, f"looked up: {costs}")

    def save_decision(self, policy: WarmPolicy, url: str, fit_seconds: float) -> Decision:
        """Save unless the fit just done was cheaper than a save on this store."""
        if policy.mode == "always":
            return Decision(True, "saved (policy always)")
        save = self.save_time(url)
        if save is None:
            # no save timed on this store yet: a save writes at least what a lookup reads
            # (a record's objects and its marker against a listing and a few reads), so the
            # lookups just timed are a lower bound of its cost
            rtt = self.lookup_time(url)
            if rtt is not None and rtt >= policy.save_ratio * fit_seconds:
                return Decision(
                    False,
                    f"save skipped: fit {ms(fit_seconds)}, store round trip {ms(rtt)} "
                    "(no save timed yet)",
                )
            return Decision(True, "saved (no history yet)")
        if save >= policy.save_ratio * fit_seconds:
            return Decision(False, f"save skipped: fit {ms(fit_seconds)}, store save {ms(save)}")
        return Decision(True, f"saved: store save {ms(save)}, fit {ms(fit_seconds)}")

    def clear(self) -> None:
        """Forget every measurement (tests)."""
        with self._lock:
            self._lookup.clear()
            self._save.clear()
            self._fit.clear()
            self._warm.clear()


#: The process-wide cost model.
COSTS = CostModel()
