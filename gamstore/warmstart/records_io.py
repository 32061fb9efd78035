"""Record keyspaces A (``inner``) and B (``block``): best-effort load and store (spec §5.9).

* ``store_*`` writes a fresh entry each time (objective None, kind ``checkpoint``) and
  ``load_*`` returns the newest; ``store_*`` returns True only when an entry was written. With no
  store, a record over the 16 MiB cap, a read-only store or a storage failure it writes
  nothing and returns False (logged once by the capability), never raising.
* ``load_*`` returns the record or None (miss, store unavailable, oversize entry, foreign
  record type, or a key-string mismatch).

The ``store`` argument is anything :func:`gamstore.warmstart.capability.warm_store` accepts.
"""

from __future__ import annotations

import logging
from typing import Any

from gamstore.records import BlockWarmStartRecord, WarmStartRecord
from gamstore.warmstart.capability import StoreArg, WarmStartStore, warm_store

__all__ = [
    "BLOCK_KEYSPACE",
    "INNER_KEYSPACE",
    "load_block_record",
    "load_record",
    "read_record",
    "store_block_record",
    "store_record",
]

_log = logging.getLogger("gamstore.warmstart")

INNER_KEYSPACE = "inner"
BLOCK_KEYSPACE = "block"


def _load(store: StoreArg, keyspace: str, key: str, cls: type) -> Any:
    ws = warm_store(store)
    if ws is None:
        return None
    if not isinstance(key, str):
        raise TypeError(f"key: expected str, got {type(key).__name__}")
    return read_record(ws, keyspace, key, cls)


def read_record(ws: WarmStartStore, keyspace: str, key: str, cls: type) -> Any:
    """The newest ``cls`` record under ``key`` through an already resolved store, or None."""
    # records carry no objective and are all checkpoints, so "best" means "newest"; asking
    # for the newest says so directly and never depends on other writers' objectives
    entry = ws.lookup_latest(keyspace, key)
    if entry is None:
        return None
    record = getattr(entry, "record", None)
    if not isinstance(record, cls):
        _log.debug("warm-start %s entry under %s is not a %s", keyspace, key, cls.__name__)
        return None
    if getattr(record, "key", None) != key:  # collision guard: the key string itself
        _log.debug("warm-start %s entry key mismatch for %s", keyspace, key)
        return None
    return record


def _store(store: StoreArg, keyspace: str, record: Any, cls: type) -> bool:
    ws = warm_store(store)
    if ws is None:
        return False
    if not isinstance(record, cls):
        raise TypeError(f"record: expected {cls.__name__}, got {type(record).__name__}")
    key = str(getattr(record, "key", ""))
    return ws.save(keyspace, key, record, objective=None, kind="checkpoint") is not None


def load_record(store: StoreArg, key: str) -> WarmStartRecord | None:
    """Load the newest record A stored under ``key`` (keyspace ``inner``), or None.

    Callers still check :meth:`WarmStartRecord.is_compatible` against their problem.
    """
    return _load(store, INNER_KEYSPACE, key, WarmStartRecord)  # type: ignore[no-any-return]


def store_record(store: StoreArg, record: WarmStartRecord) -> bool:
    """Persist record A under ``record.key``; True when an entry was written.

    Raises
    ------
    TypeError
        If ``record`` is not a :class:`WarmStartRecord` (a programming error).
    """
    return _store(store, INNER_KEYSPACE, record, WarmStartRecord)


def load_block_record(store: StoreArg, key: str) -> BlockWarmStartRecord | None:
    """Load the newest record B stored under ``key`` (keyspace ``block``), or None.

    Callers still check :meth:`BlockWarmStartRecord.is_compatible` (see
    :func:`gamstore.warmstart.blocks.load_block_warm_start`, which does).
    """
    return _load(store, BLOCK_KEYSPACE, key, BlockWarmStartRecord)  # type: ignore[no-any-return]


def store_block_record(store: StoreArg, record: BlockWarmStartRecord) -> bool:
    """Persist record B under ``record.key``; True when an entry was written.

    Raises
    ------
    TypeError
        If ``record`` is not a :class:`BlockWarmStartRecord` (a programming error).
    """
    return _store(store, BLOCK_KEYSPACE, record, BlockWarmStartRecord)
