"""Eviction policy: TTL from last activity, then a byte budget (DESIGN §5).

Eviction order: never-accessed entries first, then the oldest activity
(``max(created, last access)``), then the path (deterministic tie-break).

Sweeps are throttled by the store: the first save of a process, every ``sweep_every``-th
save, and any save that pushes the estimated total over budget. Keys are spread evenly over
the 256 ``<kk>`` shards by their hash, so a sweep of a large store lists one shard and holds
it to ``budget / 256``; a full reconciliation runs only for small stores (at most
``FULL_SWEEP_MAX_ENTRIES``) or every ``FULL_EVERY`` sweeps. Once shards hold more than
``sweep_every`` entries each, the sweep interval grows to the entries per shard, so the
listings per save stay constant as the store grows. The first sweep of a process samples
one shard and extrapolates (it only walks the whole store when that estimate is small). A
sweep triggered by an estimated overflow evicts down to ``LOW_WATER`` of the budget, so a
cache at capacity pays one shard listing per many saves, not per save.
"""

from __future__ import annotations

from collections.abc import Iterable

from gamstore.store.types import EntryInfo

__all__ = [
    "FULL_EVERY",
    "FULL_SWEEP_MAX_ENTRIES",
    "LOW_WATER",
    "N_SHARDS",
    "activity",
    "eviction_order",
    "is_expired",
    "plan_eviction",
]

N_SHARDS = 256
#: Stores with at most this many entries are always swept whole (cheap, exact).
FULL_SWEEP_MAX_ENTRIES = 128
#: Sweeps triggered by an estimated overflow evict down to this fraction of the budget.
LOW_WATER = 0.9
#: A large store is reconciled whole once every this many shard sweeps (8192 sweeps of 32
#: saves each by default; shard sweeps keep every shard near budget / 256 in between).
FULL_EVERY = 8192


def activity(info: EntryInfo) -> int:
    """Last activity of an entry: ``max(created, last access)`` in ns."""
    return info.created if info.last_access is None else max(info.created, info.last_access)


def is_expired(info: EntryInfo, now_ns: int, ttl_ns: int) -> bool:
    """True when ``ttl_ns > 0`` and the entry's activity is at least ``ttl_ns`` old."""
    return ttl_ns > 0 and now_ns - activity(info) >= ttl_ns


def eviction_order(infos: Iterable[EntryInfo]) -> list[EntryInfo]:
    """Entries in the order they are evicted."""
    return sorted(infos, key=lambda i: (i.last_access is not None, activity(i), i.path))


def plan_eviction(
    infos: Iterable[EntryInfo], budget: int, *, keep: str | None = None
) -> list[EntryInfo]:
    """The entries to delete, in order, so that the rest fits in ``budget`` bytes.

    ``keep`` (an entry path) is never deleted but counts towards the total: the entry a save
    just wrote, which has had no chance to be accessed yet (never-accessed entries go
    first), stays and older ones make room for it.
    """
    ordered = eviction_order(infos)
    total = sum(i.nbytes for i in ordered)
    out: list[EntryInfo] = []
    for info in ordered:
        if info.path == keep:
            continue
        if total <= budget:
            break
        out.append(info)
        total -= info.nbytes
    return out
