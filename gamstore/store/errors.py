"""Exceptions raised by the storage layer."""

from __future__ import annotations

__all__ = ["ReadOnlyStoreError", "StoreError"]


class StoreError(OSError):
    """A storage operation failed (I/O, network, permissions).

    The message never contains credentials: backends build it from the store URL with the
    secrets already stripped.
    """


class ReadOnlyStoreError(PermissionError):
    """A write was attempted on a store opened with ``read_only=True``."""
