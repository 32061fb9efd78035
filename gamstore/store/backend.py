"""The small abstract object-storage interface every backend implements.

Paths are ``/``-separated and relative to the backend's root; a *prefix* is a folder path
without a trailing slash (``""`` is the root). Backends are synchronous; an object-store
backend may run its requests concurrently inside :meth:`Backend.get_many` and
:meth:`Backend.put_many`. Every backend counts the requests it issues in
:attr:`Backend.requests` (one count per HTTP request on S3, per file-system call locally).
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["Backend", "ObjectInfo", "check_path"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: relative path, size in bytes, modification time in ns."""

    path: str
    size: int
    mtime: int


def check_path(path: str) -> str:
    """Reject paths that could escape the root (``..``, empty or absolute segments)."""
    if not isinstance(path, str):
        raise TypeError(f"path: expected str, got {type(path).__name__}")
    if path == "":
        return path
    for seg in path.split("/"):
        if seg in ("", ".", "..") or "\\" in seg or "\x00" in seg:
            raise ValueError(f"path: invalid storage path {path!r}")
    return path


class Backend(ABC):
    """Abstract object storage under one root.

    Attributes
    ----------
    scheme : str
        URL scheme handled (``"file"``, ``"memory"``, ``"s3"``).
    flat_listing : bool
        True when a recursive listing costs the same requests as a one-level one (object
        stores): the store then learns marker presence and sizes from one listing.
    requests : collections.Counter
        Requests issued, by kind.
    """

    scheme: ClassVar[str] = ""
    flat_listing: ClassVar[bool] = False

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    @property
    @abstractmethod
    def url(self) -> str:
        """Normalised root URL without credentials."""

    # -- reads ---------------------------------------------------------------------------
    @abstractmethod
    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        """Return the object's bytes, or None if it does not exist.

        With ``max_bytes``, at most ``max_bytes + 1`` bytes are read, so a caller that knows
        the expected size detects an oversize object without loading it.
        """

    def get_many(
        self, paths: Sequence[str], max_bytes: Sequence[int | None] | None = None
    ) -> builtins.list[bytes | None]:
        """Return the bytes of several objects (None for missing ones), in order.

        ``max_bytes`` gives a per-object cap as in :meth:`get`.
        """
        caps = max_bytes if max_bytes is not None else [None] * len(paths)
        return [self.get(p, c) for p, c in zip(paths, caps, strict=True)]

    @abstractmethod
    def mtime(self, path: str) -> int | None:
        """Return the object's modification time in ns, or None if it does not exist."""

    @abstractmethod
    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Return every object below folder ``prefix`` (recursive), with sizes and mtimes."""

    def list_prefixed(self, prefix: str, start: str) -> builtins.list[ObjectInfo]:
        """Every object below folder ``prefix`` whose path below it starts with ``start``.

        ``start`` is a partial name of a direct child of ``prefix`` (no ``/``): the objects
        of every child folder (and the child objects) whose name starts with it, recursive.
        Object stores answer this with one LIST on the key prefix ``<prefix>/<start>``; a
        lookup lists a key's entries (``<key64>.<entry id>`` in a shard) this way. Default:
        filter :meth:`list` (correct everywhere, but lists the whole folder).
        """
        if not start or "/" in start:
            raise ValueError(f"start: expected a partial name without '/', got {start!r}")
        cut = len(prefix) + 1 if prefix else 0
        return [o for o in self.list(prefix) if o.path[cut:].startswith(start)]

    @abstractmethod
    def list_dir(self, prefix: str) -> builtins.list[str]:
        """Return the names of the direct children (objects and folders) of ``prefix``."""

    # -- writes --------------------------------------------------------------------------
    @abstractmethod
    def put(self, path: str, data: bytes) -> None:
        """Create or replace one object atomically (readers see old or new bytes)."""

    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Write several objects at fresh paths that nobody reads before a later commit.

        Per-object atomicity is not required (a torn object has no marker yet).
        """
        for path, data in items.items():
            self.put(path, data)

    @abstractmethod
    def put_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` atomically only if it does not exist; return whether it did."""

    def put_many_if_absent(self, items: Mapping[str, bytes]) -> builtins.list[bool]:
        """:meth:`put_if_absent` of several objects (object stores send them concurrently).

        Returns, in order, whether each object was created.
        """
        return [self.put_if_absent(p, d) for p, d in items.items()]

    @abstractmethod
    def touch(self, path: str) -> None:
        """Create ``path`` (empty) or bump its modification time to now."""

    def touch_many(self, paths: Iterable[str]) -> None:
        """Touch several objects (object stores send the requests concurrently)."""
        for p in paths:
            self.touch(p)

    @abstractmethod
    def delete(self, path: str) -> bool:
        """Delete one object; return False if it did not exist."""

    def delete_many(self, paths: Iterable[str]) -> int:
        """Delete several objects; return how many existed."""
        return sum(1 for p in paths if self.delete(p))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object below ``prefix``; return how many were deleted.

        ``prefix=""`` (the whole root) raises ``ValueError`` on every backend.
        """
        if not check_path(prefix):
            raise ValueError("prefix: refusing to delete the whole root")
        return self.delete_many([o.path for o in self.list(prefix)])

    def prune_empty(self, prefix: str) -> None:  # noqa: B027 - optional hook
        """Remove the folders at and below ``prefix`` that hold no object (never an object).

        Default: nothing (object stores have no folders).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, threads). Default: nothing to release."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
