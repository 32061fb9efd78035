"""Checkpoint sessions: one logical slot per in-flight fit (spec §4, adapted to immutable
entries).

A checkpoint writes a *new* entry and then deletes the session's previous one, so a session
leaves one entry under its key; readers always see at least one complete entry. A
non-improving checkpoint within ``checkpoint_interval`` seconds of the last write is
suppressed; ``finalize`` bypasses the rate limit and writes a ``final``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from gamstore.store.layout import key_folder
from gamstore.store.ranking import OBJECTIVE_TIE

if TYPE_CHECKING:
    from gamstore.store.core import Store
    from gamstore.store.types import Entry

__all__ = ["Session"]

log = logging.getLogger("gamstore.store")


class Session:
    """A checkpoint slot bound to ``(store, keyspace, key)``; see :meth:`Store.session`."""

    def __init__(self, store: Store, keyspace: str, key: str) -> None:
        self.store = store
        self.keyspace = keyspace
        self.key = key
        self._folder = key_folder(keyspace, key)
        self._current: str | None = None  # entry id of our latest write
        self._last_write: float | None = None  # monotonic seconds
        self._best_seen: float | None = None
        self._monotonic = time.monotonic

    @property
    def entry_id(self) -> str | None:
        """Id of the entry this session wrote last (None before the first write)."""
        return self._current

    def load(self) -> Entry | None:
        """The best entry under the key (Best mode), or None."""
        return self.store.lookup(self.keyspace, self.key)

    def _improves(self, objective: float | None) -> bool:
        if objective is None or not math.isfinite(objective):
            return False
        return self._best_seen is None or objective < self._best_seen - OBJECTIVE_TIE

    def checkpoint(
        self, payload: Any, objective: float | None, iteration: int | None = None
    ) -> bool:
        """Write a checkpoint unless rate-limited; return whether one was written.

        An objective that improves the best seen by more than 1e-12 always writes; anything
        else is suppressed within ``store.checkpoint_interval`` seconds of the last write.
        """
        improves = self._improves(objective)
        now = self._monotonic()
        if (
            not improves
            and self._last_write is not None
            and now - self._last_write < self.store.checkpoint_interval
        ):
            return False
        if not self._write(payload, objective, iteration, "checkpoint"):
            return False
        self._last_write = now
        if improves:
            assert objective is not None
            self._best_seen = objective
        return True

    def finalize(self, payload: Any, objective: float | None, iteration: int | None = None) -> bool:
        """Write the session's ``final`` entry (no rate limit); return whether it was written."""
        ok = self._write(payload, objective, iteration, "final")
        if ok:
            self._last_write = self._monotonic()
        return ok

    def _write(
        self, payload: Any, objective: float | None, iteration: int | None, kind: str
    ) -> bool:
        new_id = self.store.save(
            self.keyspace, self.key, payload, objective=objective, iteration=iteration, kind=kind
        )
        if new_id is None:
            return False
        old, self._current = self._current, new_id
        if old is not None:
            try:
                self.store._delete_path(self.store._entry_path(self.keyspace, self._folder, old))
            except Exception as exc:  # noqa: BLE001 - a leftover checkpoint is only clutter
                log.debug("gamstore: removing superseded checkpoint failed: %s", exc)
        return True

    def __repr__(self) -> str:
        return f"Session({self.store.url!r}, {self.keyspace!r}, entry={self._current!r})"
