"""Local-directory backend (``file://`` URLs and plain paths).

Atomicity: :meth:`LocalBackend.put` writes a temp file next to the target and renames it;
:meth:`LocalBackend.put_if_absent` writes a temp file and hard-links it into place
(``os.link`` fails if the target exists), falling back to ``O_EXCL`` where links are not
supported. Temp names contain ``.tmp.<pid hex>.`` so ``gc`` can recognise strays.

Cost of a save (the hot path of a LOSO fold): an entry's folder is made below the deepest
folder known to exist (kept per backend; on a miss, deepest first, walking up only on
``ENOENT``), the folders inside it without any existence checks (nothing exists below a folder
made just now), and each file is one ``open``/``write``/``close``. No ``stat``/``exists`` calls
are issued on the write path: the create-only ``link`` is the existence check.
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
_MAX_KNOWN_FOLDERS = 8192
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
# Temp names are random: create-only, so a (never expected) name clash cannot clobber a file.
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _write_file(full: str, data: bytes, flags: int = _WRITE_FLAGS) -> None:
    fd = os.open(full, flags, 0o644)
    try:
        n = os.write(fd, data) if data else 0
        if n < len(data):  # a short write (signals, odd file systems): finish the rest
            view = memoryview(data)[n:]
            while view:
                n = os.write(fd, view)
                view = view[n:]
    finally:
        os.close(fd)


def _make_dir(full: str) -> bool:
    """Create folder ``full`` and any missing parents; return whether ``full`` is new.

    Deepest first: one ``mkdir`` when the parent exists (the common case), walking up only
    on ``ENOENT`` — no ``stat`` calls, unlike ``os.makedirs``.
    """
    missing = []
    d = full
    while True:
        try:
            os.mkdir(d)
            break
        except FileExistsError:
            if d == full:
                return False
            break  # a parent appeared (a concurrent writer): make the rest below it
        except FileNotFoundError:
            parent = os.path.dirname(d)
            if parent == d:
                raise
            missing.append(d)
            d = parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if d == full:
                return False
    return True


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
        # os.path.join(root, path) for a checked relative path, as one concatenation
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        # Folders this backend made or met (root, keyspace, shard and key folders): a save
        # under a known key folder makes its entry folder with one mkdir and no probes. Only
        # a hint: gamstore never removes these folders, and if someone else does, the mkdir
        # below one fails with ENOENT and the cache is dropped.
        self._folders: set[str] = set()

    @property
    def url(self) -> str:
        return Path(self.root).as_uri()

    def _full(self, path: str) -> str:
        check_path(path)
        return self._prefix + path if path else self.root

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
        self._make_folder(os.path.dirname(full))

    def _make_folder(self, full: str, *, keep: bool = True) -> None:
        """Create folder ``full`` and its missing parents, below the deepest known folder.

        With ``keep=False`` only its parents are remembered (an entry folder is never made
        twice, so remembering it would only crowd the key folders out of the cache).
        """
        known = self._folders
        chain = [full]  # always made (or found existing): a cached fact may be stale
        d = os.path.dirname(full)
        while d not in known:
            if len(d) <= len(self.root):  # nothing known yet: probe deepest first
                _make_dir(full)
                break
            chain.append(d)
            d = os.path.dirname(d)
        else:
            for c in reversed(chain):
                try:
                    os.mkdir(c)
                except FileExistsError:
                    pass
                except FileNotFoundError:  # a known folder was removed by someone else
                    known.clear()
                    _make_dir(full)
                    break
        self._remember(full if keep else os.path.dirname(full))

    def _remember(self, full: str) -> None:
        known = self._folders
        if len(known) >= _MAX_KNOWN_FOLDERS:
            known.clear()
        d = full
        while len(d) >= len(self.root) and d not in known:
            known.add(d)
            d = os.path.dirname(d)

    def put(self, path: str, data: bytes) -> None:
        self.requests["put"] += 1
        full = self._full(path)
        tmp = self._tmp_name(full)
        try:
            try:
                _write_file(tmp, data, _TEMP_FLAGS)
            except FileNotFoundError:
                self._ensure_parent(full)
                _write_file(tmp, data, _TEMP_FLAGS)
            os.replace(tmp, full)
        except BaseException:
            _unlink_quiet(tmp)
            raise

    def put_many(self, items: Mapping[str, bytes]) -> None:
        # Fresh paths under an uncommitted entry: plain writes, no rename needed. The folders
        # are planned in relative paths: the deepest folder common to all of them is made
        # first (deepest first, see _make_dir); the ones below it follow parents first, one
        # mkdir each and no existence checks (below a folder made just now nothing exists).
        for p in items:
            check_path(p)
        dirs = {p.rpartition("/")[0] for p in items}  # "" is the root itself
        if dirs:
            top = _common_folder(dirs)
            below: set[str] = set()
            for d in dirs:
                while d != top:
                    below.add(d)
                    d = d.rpartition("/")[0]
            prefix = self._prefix
            self._make_folder(prefix + top if top else self.root, keep=False)
            for d in sorted(below):  # a parent sorts before its children (it is a prefix)
                try:
                    os.mkdir(prefix + d)
                except FileExistsError:
                    pass  # the common folder already existed (not a fresh entry)
                except FileNotFoundError:
                    _make_dir(prefix + d)  # removed under us (gc of an empty folder)
        prefix = self._prefix
        for p, data in items.items():
            self.requests["put"] += 1
            _write_file(prefix + p, data)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        self.requests["put_if_absent"] += 1
        full = self._full(path)
        # No existence check first: os.link below is the create-only test, and the commit
        # path (fresh entry ids) never meets an existing marker.
        tmp = self._tmp_name(full)
        try:
            try:
                _write_file(tmp, data, _TEMP_FLAGS)
            except FileNotFoundError:
                self._ensure_parent(full)
                _write_file(tmp, data, _TEMP_FLAGS)
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
        try:
            os.utime(full, None)  # touched before: bump the mtime
            return
        except FileNotFoundError:
            pass
        parent = os.path.dirname(full)
        if parent not in self._folders:  # a first touch in a new key folder
            self._make_folder(parent)
        for _ in range(4):  # a concurrent cleaner may remove an empty parent in between
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


def _common_folder(dirs: set[str]) -> str:
    """Deepest folder (relative, ``""`` for the root) that contains every one of ``dirs``."""
    it = iter(dirs)
    common = next(it).split("/")
    for d in it:
        segs = d.split("/")
        n = 0
        for a, b in zip(common, segs, strict=False):
            if a != b:
                break
            n += 1
        del common[n:]
    return "/".join(common)


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
