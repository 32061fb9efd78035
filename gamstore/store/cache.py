"""Per-root, per-process caches and throttle counters, shared by every handle on a root.

Entries are immutable, so a parsed marker or a decoded entry stays valid for as long as the
entry is listed; the caches only need bounding, never invalidation by content. Rows are keyed
by entry path under one root's state, and states are keyed by the root (URL plus endpoint),
so two roots in one process never see each other's entries (#3882).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from gamstore.store.codec import Marker
from gamstore.store.types import Entry

__all__ = ["RootState", "clear_states", "state_for"]

_MAX_MARKERS = 65536
_MAX_DECODED_ROWS = 128
_MAX_DECODED_BYTES = 256 * 1024 * 1024
_MAX_LEVEL_DOCS = 65536


@dataclass
class RootState:
    """Per-root, per-process caches and throttle counters (shared by every handle)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    markers: OrderedDict[str, Marker] = field(default_factory=OrderedDict)
    decoded: OrderedDict[str, Entry] = field(default_factory=OrderedDict)
    decoded_bytes: int = 0
    last_access: dict[str, int] = field(default_factory=dict)  # known access ns, by entry path
    touched: dict[str, int] = field(default_factory=dict)  # when we last wrote the touch
    pending: dict[str, int] = field(default_factory=dict)  # touches not yet written
    root_checked: bool = False
    layout: int = 0  # layout of the root doc (0: not read yet); saves write this layout
    # Folders whose level doc (zarr.json) this process wrote or found: written once per folder.
    level_docs: set[str] = field(default_factory=set)
    save_counter: int = 0
    last_sweep_save: int = 0  # save_counter value at the last throttled sweep
    shard_bytes: list[int] | None = None  # estimated bytes per <kk> shard
    shard_counts: list[int] | None = None  # estimated entries per <kk> shard
    shard_cursor: int = 0
    sweeps_since_full: int = 0

    def remember_marker(self, path: str, marker: Marker) -> None:
        """Cache the parsed marker of a committed entry (LRU-bounded)."""
        with self.lock:
            self.markers[path] = marker
            self.markers.move_to_end(path)
            while len(self.markers) > _MAX_MARKERS:
                self.markers.popitem(last=False)

    def remember_entry(self, path: str, entry: Entry) -> None:
        """Cache a decoded, verified entry (bounded by rows and bytes)."""
        if entry.nbytes > _MAX_DECODED_BYTES:
            return
        with self.lock:
            old = self.decoded.pop(path, None)
            if old is not None:
                self.decoded_bytes -= old.nbytes
            self.decoded[path] = entry
            self.decoded_bytes += entry.nbytes
            while len(self.decoded) > _MAX_DECODED_ROWS or self.decoded_bytes > _MAX_DECODED_BYTES:
                _, dropped = self.decoded.popitem(last=False)
                self.decoded_bytes -= dropped.nbytes

    def remember_levels(self, folders: list[str]) -> None:
        """Note folders whose level doc exists (bounded: a full set starts over)."""
        with self.lock:
            if len(self.level_docs) + len(folders) > _MAX_LEVEL_DOCS:
                self.level_docs.clear()
            self.level_docs.update(folders)

    def forget(self, path: str) -> None:
        """Drop everything known about one entry (deleted, corrupt or expired)."""
        with self.lock:
            self.markers.pop(path, None)
            dropped = self.decoded.pop(path, None)
            if dropped is not None:
                self.decoded_bytes -= dropped.nbytes
            self.last_access.pop(path, None)
            self.touched.pop(path, None)
            self.pending.pop(path, None)


_STATES: dict[str, RootState] = {}
_LOCK = threading.Lock()


def state_for(root_key: str) -> RootState:
    """The shared state of the root identified by ``root_key``."""
    with _LOCK:
        st = _STATES.get(root_key)
        if st is None:
            st = _STATES[root_key] = RootState()
        return st


def clear_states() -> None:
    """Forget every root's caches and counters (a fresh process, for tests and benchmarks)."""
    with _LOCK:
        _STATES.clear()
