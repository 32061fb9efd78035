"""Entry ids and the producer identity of this process.

An entry id is ``"<created ns, 16 hex>-<producer short id, 8 hex>-<random, 8 hex>"``: it sorts
by creation time, so "newest" needs no metadata read, and it is unique across processes
without coordination.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time

import blake3

__all__ = [
    "ENTRY_ID_RE",
    "is_entry_id",
    "new_entry_id",
    "parse_created",
    "producer_identity",
    "producer_short",
]

ENTRY_ID_RE = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{8}\Z")

_producer: str = ""
_short: str = ""


def is_entry_id(name: str) -> bool:
    """Whether ``name`` has the shape of an entry id (the one test every walker uses)."""
    return ENTRY_ID_RE.match(name) is not None


def _reset_producer() -> None:
    # A forked child is a different producer: its finals must not certify the parent's.
    global _producer, _short
    host = socket.gethostname() or "host"
    _producer = f"{host}:{os.getpid():x}:{secrets.token_hex(6)}"
    _short = blake3.blake3(_producer.encode("utf-8")).hexdigest()[:8]


_reset_producer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_producer)


def producer_identity() -> str:
    """Return this process's producer identity (stable within the process, never empty)."""
    return _producer


def producer_short(producer: str | None = None) -> str:
    """Return the 8-hex short id of ``producer`` (default: this process)."""
    if producer is None:
        return _short
    return blake3.blake3(producer.encode("utf-8")).hexdigest()[:8]


def new_entry_id(producer: str | None = None, now_ns: int | None = None) -> str:
    """Allocate a fresh, sortable entry id."""
    ns = time.time_ns() if now_ns is None else now_ns
    return f"{ns:016x}-{producer_short(producer)}-{secrets.token_hex(4)}"


def parse_created(entry_id: str) -> int | None:
    """Return the creation ns encoded in ``entry_id``, or None if it is not an entry id."""
    if not ENTRY_ID_RE.match(entry_id):
        return None
    created = int(entry_id[:16], 16)
    # 16 hex digits reach 2**64 - 1; readers keep creation times as int64 (datetime64[ns]).
    return created if created < 2**63 else None
