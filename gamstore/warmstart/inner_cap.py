"""Inner iteration cap driven by a restored warm start (spec §8.2).

When a fit resumes from a cached inner mode, the inner solver usually needs only a few
cycles, so each outer evaluation runs with a reduced inner budget derived from the cached
summary. Near the optimum (gradient norm below 1% of its first value) the full budget is
restored so the final certificate is never starved.

Example
-------
>>> cap = InnerCap(full_budget=100)
>>> cap.update(cycles=6, converged=True, gradient_norm=2.0)
64
>>> cap.update(cycles=6, converged=True, gradient_norm=0.01)
100
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "CAP_FLOOR",
    "CAP_MARGIN",
    "GRADIENT_UNCAP_RATIO",
    "InnerCap",
    "next_inner_cap",
    "update_inner_cap",
]

#: cycles added to the cached count (seed's CUSTOM_OUTER_INNER_CAP_MARGIN)
CAP_MARGIN = 5
#: the cap never drops below min(full, CAP_FLOOR)
CAP_FLOOR = 64
#: once |g| / |g0| falls below this, the full budget is restored
GRADIENT_UNCAP_RATIO = 0.01


def next_inner_cap(
    full_budget: int,
    cycles: int | None,
    converged: bool,
    gradient_norm: float | None,
    initial_gradient_norm: float | None,
) -> tuple[int, float | None]:
    """One step of the seed's ``update_custom_outer_inner_cap_from_warm_start``.

    Parameters
    ----------
    full_budget : int
        The inner budget of the options (``FitOptions.inner_max_cycles``); values < 1 count
        as 1.
    cycles : int or None
        Inner cycles of the cached inner summary, or None when the warm start carries no
        cached summary (then the full budget is returned).
    converged : bool
        Whether the cached inner solve converged.
    gradient_norm : float or None
        Current outer gradient norm; ignored unless finite and > 0.
    initial_gradient_norm : float or None
        The first finite positive gradient norm seen so far (None before any).

    Returns
    -------
    cap : int
        The inner cap for the next evaluation, in ``[min(full, 64), full]``, or ``full``.
    initial_gradient_norm : float or None
        The updated first gradient norm (set on the first finite positive one).
    """
    full = max(int(full_budget), 1)
    if cycles is None:
        return full, initial_gradient_norm
    if gradient_norm is not None and math.isfinite(gradient_norm) and gradient_norm > 0.0:
        if initial_gradient_norm is None:
            initial_gradient_norm = float(gradient_norm)
        if initial_gradient_norm > 0.0 and gradient_norm / initial_gradient_norm < (
            GRADIENT_UNCAP_RATIO
        ):
            return full, initial_gradient_norm
    cycles = max(int(cycles), 0)
    if converged:
        nxt = cycles + CAP_MARGIN
    else:
        nxt = max(2 * cycles, cycles + CAP_MARGIN)
    floor = min(full, CAP_FLOOR)
    return min(max(nxt, floor), full), initial_gradient_norm


class _CachedInnerLike(Protocol):
    @property
    def cycles(self) -> int: ...

    @property
    def converged(self) -> bool: ...


def update_inner_cap(
    options: Any,
    warm_start: Any,
    gradient_norm: float | None,
    initial_gradient_norm: float | None,
) -> tuple[int, float | None]:
    """The seed's ``update_custom_outer_inner_cap_from_warm_start`` on the fitter's objects.

    Parameters
    ----------
    options : FitOptions or int
        The fit options (``inner_max_cycles`` is the full budget) or the budget itself.
    warm_start : BlockWarmStart or None
        The warm start in use; its ``cached_inner`` (with ``cycles`` and ``converged``)
        drives the cap. None or no cached summary gives the full budget.
    gradient_norm, initial_gradient_norm : float or None
        As in :func:`next_inner_cap`.

    Returns
    -------
    (cap, initial_gradient_norm)
        Keep the second value and pass it back on the next call.
    """
    full = options if isinstance(options, int) else int(options.inner_max_cycles)
    cached: _CachedInnerLike | None = getattr(warm_start, "cached_inner", None)
    if cached is None:
        return next_inner_cap(full, None, False, gradient_norm, initial_gradient_norm)
    return next_inner_cap(
        full, int(cached.cycles), bool(cached.converged), gradient_norm, initial_gradient_norm
    )


@dataclass
class InnerCap:
    """Stateful wrapper around :func:`next_inner_cap` for one fit.

    Call :meth:`update` after every value-only probe and every derivative-bearing outer
    evaluation; pass the cached inner summary's ``cycles``/``converged`` (``cycles=None``
    when the warm start has no cached summary) and the current gradient norm (None for a
    value-only probe). :attr:`cap` holds the latest cap.
    """

    full_budget: int
    initial_gradient_norm: float | None = None
    cap: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.full_budget, bool) or not isinstance(self.full_budget, int):
            raise TypeError("InnerCap.full_budget: expected an int")
        self.cap = max(self.full_budget, 1)

    def update(
        self, cycles: int | None, converged: bool, gradient_norm: float | None = None
    ) -> int:
        """Recompute and return the cap (see :func:`next_inner_cap`)."""
        self.cap, self.initial_gradient_norm = next_inner_cap(
            self.full_budget, cycles, converged, gradient_norm, self.initial_gradient_norm
        )
        return self.cap
