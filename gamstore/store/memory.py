"""In-process memory backend (``memory://<name>`` URLs).

Stores with the same name in one process share their objects (like fsspec's memory file
system), so several :class:`~gamstore.store.Store` handles on ``memory://x`` see each other's
entries. Objects live in a tree of dicts so listings cost the size of the listed folder,
not of the whole store.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Mapping
from typing import Union

from gamstore.store.backend import Backend, ObjectInfo, check_path

__all__ = ["MemoryBackend", "clear_memory_roots"]

_Node = dict[str, Union["_Node", tuple[bytes, int]]]

_ROOTS: dict[str, _Node] = {}
_LOCK = threading.RLock()


def clear_memory_roots(name: str | None = None) -> None:
    """Forget one named memory root, or all of them (tests)."""
    with _LOCK:
        if name is None:
            _ROOTS.clear()
        else:
            _ROOTS.pop(name, None)


class MemoryBackend(Backend):
    """Objects kept in this process's memory.

    Parameters
    ----------
    name : str
        Root name; handles with the same name share objects.
    """

    scheme = "memory"
    flat_listing = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name.strip("/")
        with _LOCK:
            self._tree: _Node = _ROOTS.setdefault(self.name, {})

    @property
    def url(self) -> str:
        return f"memory://{self.name}"

    def _walk(self, path: str, create: bool = False) -> tuple[_Node, str] | None:
        segs = check_path(path).split("/")
        node = self._tree
        for seg in segs[:-1]:
            child = node.get(seg)
            if child is None:
                if not create:
                    return None
                child = node[seg] = {}
            elif not isinstance(child, dict):
                if not create:
                    return None
                raise NotADirectoryError(path)
            node = child
        return node, segs[-1]

    def _folder(self, prefix: str) -> _Node | None:
        node: _Node = self._tree
        if not prefix:
            return node
        for seg in check_path(prefix).split("/"):
            child = node.get(seg)
            if not isinstance(child, dict):
                return None
            node = child
        return node

    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        self.requests["get"] += 1
        with _LOCK:
            found = self._walk(path)
            if found is None:
                return None
            item = found[0].get(found[1])
        if not isinstance(item, tuple):
            return None
        return item[0] if max_bytes is None else item[0][: max_bytes + 1]

    def mtime(self, path: str) -> int | None:
        self.requests["head"] += 1
        with _LOCK:
            found = self._walk(path)
            item = None if found is None else found[0].get(found[1])
        return item[1] if isinstance(item, tuple) else None

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        self.requests["list"] += 1
        out: list[ObjectInfo] = []
        with _LOCK:
            top = self._folder(prefix)
            if top is None:
                return out
            stack: list[tuple[_Node, str]] = [(top, prefix)]
            while stack:
                node, rel = stack.pop()
                for name, item in node.items():
                    r = f"{rel}/{name}" if rel else name
                    if isinstance(item, dict):
                        stack.append((item, r))
                    else:
                        out.append(ObjectInfo(r, len(item[0]), item[1]))
        return out

    def list_prefixed(self, prefix: str, start: str) -> builtins.list[ObjectInfo]:
        if not start or "/" in start:
            raise ValueError(f"start: expected a partial name without '/', got {start!r}")
        self.requests["list"] += 1
        out: list[ObjectInfo] = []
        with _LOCK:
            top = self._folder(prefix)
            if top is None:
                return out
            stack: list[tuple[_Node, str]] = []
            for name, item in top.items():
                if not name.startswith(start):
                    continue
                r = f"{prefix}/{name}" if prefix else name
                if isinstance(item, dict):
                    stack.append((item, r))
                else:
                    out.append(ObjectInfo(r, len(item[0]), item[1]))
            while stack:
                node, rel = stack.pop()
                for name, item in node.items():
                    r = f"{rel}/{name}"
                    if isinstance(item, dict):
                        stack.append((item, r))
                    else:
                        out.append(ObjectInfo(r, len(item[0]), item[1]))
        return out

    def list_dir(self, prefix: str) -> builtins.list[str]:
        self.requests["list"] += 1
        with _LOCK:
            node = self._folder(prefix)
            return [] if node is None else list(node)

    def put(self, path: str, data: bytes) -> None:
        self.requests["put"] += 1
        with _LOCK:
            node, name = self._walk(path, create=True)  # type: ignore[misc]
            if isinstance(node.get(name), dict):
                raise IsADirectoryError(path)
            node[name] = (bytes(data), time.time_ns())

    def put_many(self, items: Mapping[str, bytes]) -> None:
        for path, data in items.items():
            self.put(path, data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self.requests["put_if_absent"] += 1
        with _LOCK:
            node, name = self._walk(path, create=True)  # type: ignore[misc]
            if name in node:
                return False
            node[name] = (bytes(data), time.time_ns())
            return True

    def touch(self, path: str) -> None:
        self.requests["touch"] += 1
        with _LOCK:
            node, name = self._walk(path, create=True)  # type: ignore[misc]
            item = node.get(name)
            data = item[0] if isinstance(item, tuple) else b""
            node[name] = (data, time.time_ns())

    def delete(self, path: str) -> bool:
        self.requests["delete"] += 1
        with _LOCK:
            found = self._walk(path)
            if found is None or not isinstance(found[0].get(found[1]), tuple):
                return False
            del found[0][found[1]]
            return True

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("prefix: refusing to delete the whole root")
        n = len(self.list(prefix))
        self.requests["delete"] += n
        with _LOCK:
            found = self._walk(prefix)
            if found is not None and isinstance(found[0].get(found[1]), dict):
                del found[0][found[1]]
        return n

    def prune_empty(self, prefix: str) -> None:
        if not prefix:
            return
        with _LOCK:
            found = self._walk(prefix)
            if found is not None:
                node = found[0].get(found[1])
                if isinstance(node, dict) and not _holds_objects(node):
                    del found[0][found[1]]

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        """Back door for tests: set an object's modification time."""
        with _LOCK:
            found = self._walk(path)
            if found is None or not isinstance(found[0].get(found[1]), tuple):
                raise FileNotFoundError(path)
            data = found[0][found[1]]
            assert isinstance(data, tuple)
            found[0][found[1]] = (data[0], mtime_ns)


def _holds_objects(node: _Node) -> bool:
    stack = [node]
    while stack:
        for item in stack.pop().values():
            if not isinstance(item, dict):
                return True
            stack.append(item)
    return False


def _from_url(url: str, storage_options: dict[str, object]) -> MemoryBackend:
    if storage_options:
        raise ValueError(
            f"storage_options: memory stores take no options, got {sorted(storage_options)}"
        )
    name = url.split("://", 1)[1].strip("/")
    if not name:
        raise ValueError("url: memory:// needs a name, e.g. 'memory://cache'")
    return MemoryBackend(name)
