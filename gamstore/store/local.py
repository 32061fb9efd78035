"""Local-directory backend (``file://`` URLs and plain paths).

Atomicity: :meth:`LocalBackend.put` writes a temp file next to the target and renames it;
:meth:`LocalBackend.put_if_absent` writes a temp file and hard-links it into place
(``os.link`` fails if the target exists), falling back to ``O_EXCL`` where links are not
supported. Temp names contain ``.tmp.<pid hex>.`` so ``gc`` can recognise strays.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from gamstore.store.backend import Backend, ObjectInfo, check_path

__all__ = ["LocalBackend"]

_MISSING = (FileNotFoundError, NotADirectoryError)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def _write_file(full: str, data: bytes, flags: int = _WRITE_FLAGS) -> None:
    fd = os.open(full, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


class LocalBackend(Backend):
    """Objects are files under a root directory.

    Parameters
    ----------
    root : str or Path
        Root directory (created on the first write).
    """

    scheme = "file"
    flat_listing = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.root = os.path.abspath(os.fspath(root))

    @property
    def url(self) -> str:
        return Path(self.root).as_uri()

    def _full(self, path: str) -> str:
        check_path(path)
        return os.path.join(self.root, path) if path else self.root

    def _tmp_name(self, full: str) -> str:
        head, tail = os.path.split(full)
        return os.path.join(head, f".{tail}.tmp.{os.getpid():x}.{secrets.token_hex(4)}")

    # -- reads ---------------------------------------------------------------------------
    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        self.requests["get"] += 1
        try:
            with open(self._full(path), "rb", buffering=0) as f:
                if max_bytes is not None:
                    return _read_upto(f, max_bytes + 1)
                return f.readall()
        except _MISSING:
            return None
        except IsADirectoryError:
            return None

    def mtime(self, path: str) -> int | None:
        self.requests["head"] += 1
        try:
            return os.stat(self._full(path)).st_mtime_ns
        except _MISSING:
            return None

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        self.requests["list"] += 1
        base = self._full(prefix)
        out: list[ObjectInfo] = []
        stack = [(base, prefix)]
        while stack:
            d, rel = stack.pop()
            try:
                it = os.scandir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with it:
                for e in it:
                    r = f"{rel}/{e.name}" if rel else e.name
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append((e.path, r))
                            continue
                        st = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while we listed
                    out.append(ObjectInfo(r, st.st_size, st.st_mtime_ns))
        return out

    def list_dir(self, prefix: str) -> builtins.list[str]:
        self.requests["list"] += 1
        try:
            return os.listdir(self._full(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []

    # -- writes --------------------------------------------------------------------------
    def _ensure_parent(self, full: str) -> None:
        os.makedirs(os.path.dirname(full), exist_ok=True)

    def put(self, path: str, data: bytes) -> None:
        self.requests["put"] += 1
        full = self._full(path)
        tmp = self._tmp_name(full)
        try:
            try:
                _write_file(tmp, data)
            except FileNotFoundError:
                self._ensure_parent(full)
                _write_file(tmp, data)
            os.replace(tmp, full)
        except BaseException:
            _unlink_quiet(tmp)
            raise

    def put_many(self, items: Mapping[str, bytes]) -> None:
        # Fresh paths under an uncommitted entry: plain writes, no rename needed. Folders are
        # made parents-first with one mkdir each (sorted order), makedirs only as a fallback.
        fulls = [(self._full(p), d) for p, d in items.items()]
        for folder in sorted({os.path.dirname(f) for f, _ in fulls}):
            try:
                os.mkdir(folder)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
        for full, data in fulls:
            self.requests["put"] += 1
            _write_file(full, data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self.requests["put_if_absent"] += 1
        full = self._full(path)
        if os.path.lexists(full):
            return False
        tmp = self._tmp_name(full)
        try:
            try:
                _write_file(tmp, data)
            except FileNotFoundError:
                self._ensure_parent(full)
                _write_file(tmp, data)
            try:
                os.link(tmp, full)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                return self._put_excl(full, data)
            return True
        finally:
            _unlink_quiet(tmp)

    def _put_excl(self, full: str, data: bytes) -> bool:
        # No hard links here (some network/FUSE file systems): O_EXCL still gives create-only.
        try:
            _write_file(full, data, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return False
        return True

    def touch(self, path: str) -> None:
        self.requests["touch"] += 1
        full = self._full(path)
        for _ in range(4):  # a concurrent cleaner may remove an empty parent in between
            try:
                os.utime(full, None)
                return
            except FileNotFoundError:
                pass
            try:
                _write_file(full, b"")
                return
            except FileNotFoundError:
                self._ensure_parent(full)
        _write_file(full, b"")

    def delete(self, path: str) -> bool:
        self.requests["delete"] += 1
        try:
            os.unlink(self._full(path))
            return True
        except _MISSING:
            return False
        except IsADirectoryError:
            return False

    def delete_many(self, paths: Iterable[str]) -> int:
        return sum(1 for p in paths if self.delete(p))

    def delete_prefix(self, prefix: str) -> int:
        n = 0
        infos = self.list(prefix)
        for info in infos:
            if self.delete(info.path):
                n += 1
        if prefix:
            self._remove_empty_dirs(self._full(prefix))
        return n

    def _remove_empty_dirs(self, top: str) -> None:
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass  # not empty (a concurrent writer) or already gone


def _read_upto(f: io.RawIOBase, n: int) -> bytes:
    parts = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _from_url(url: str, storage_options: dict[str, object]) -> LocalBackend:
    from gamstore.store.registry import local_path_from_url

    if storage_options:
        raise ValueError(
            f"storage_options: local stores take no options, got {sorted(storage_options)}"
        )
    return LocalBackend(local_path_from_url(url))
