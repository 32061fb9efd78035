"""Local-directory backend (``file://`` URLs and plain paths).

A store is untrusted input, so this backend never follows a symlink and never opens a special
file (FIFO, device, socket) below its root. Every path is walked one folder at a time from an
open descriptor of the root (``openat`` with ``O_DIRECTORY | O_NOFOLLOW``), files are opened
relative to their folder with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` before a
byte is read, and deletes, renames, links and touches are ``*at`` calls on that folder. A
symlink or special file where an object or folder should be is *foreign*: reads treat it as
absent, listings skip it, deletes leave it alone, writes through it fail; each is counted in
:attr:`LocalBackend.foreign` and logged once. The root folder itself (the path the user gave)
may be a symlink: it is resolved once, when it is opened.

Atomicity: :meth:`LocalBackend.put` writes a temp file next to the target and renames it;
:meth:`LocalBackend.put_if_absent` writes a temp file and hard-links it into place
(``link`` fails if the target exists), falling back to ``O_EXCL`` where links are not
supported. Temp names contain ``.tmp.<pid hex>.`` so ``gc`` can recognise strays.

Cost of a save (the hot path of a LOSO fold): the folders of one call are opened once each
(the descriptors are shared by every object of the call), missing ones are made on the way
down (``mkdir`` only after an ``ENOENT``), and each file is one ``open``/``write``/``close``.
No ``stat``/``exists`` calls are issued on the write path: the create-only ``link`` is the
existence check.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from gamstore.store.backend import Backend, ObjectInfo, check_path

__all__ = ["ForeignObjectError", "LocalBackend"]

log = logging.getLogger("gamstore.store")

_MISSING = (FileNotFoundError, NotADirectoryError)
_O_COMMON = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
# NOFOLLOW: a symlink is never opened; NONBLOCK: opening a FIFO never waits for a peer.
_O_SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | _O_COMMON
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _O_SAFE
_READ_FLAGS = os.O_RDONLY | _O_SAFE
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_SAFE
# Temp names are random: create-only, so a (never expected) name clash cannot clobber a file.
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_SAFE
# errno of open(O_NOFOLLOW) on a symlink: ELOOP (Linux, macOS), EMLINK (FreeBSD); ENOTDIR for
# O_DIRECTORY on anything that is not a real folder (symlink, file, FIFO).
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK, errno.ENOTDIR})
# errno of open() on a socket (ENXIO) or a device without a driver (ENODEV): special files.
_SPECIAL_ERRNOS = frozenset({errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP})
#: Deepest folder a listing descends into (a gamstore tree is about 8 levels deep).
MAX_DEPTH = 32
_MAX_LOGGED = 1024


class ForeignObjectError(OSError):
    """A symlink or special file sits where the store expects a plain file or folder."""


def _check_regular(fd: int, what: str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise ForeignObjectError(errno.EINVAL, f"not a regular file: {what}")
    return st


def _write_file(
    name: str, data: bytes, flags: int = _WRITE_FLAGS, dir_fd: int | None = None
) -> None:
    """Write ``data`` to ``name`` (relative to ``dir_fd``); never through a symlink or FIFO."""
    fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    try:
        _check_regular(fd, name)
        n = os.write(fd, data) if data else 0
        if n < len(data):  # a short write (signals, odd file systems): finish the rest
            view = memoryview(data)[n:]
            while view:
                n = os.write(fd, view)
                view = view[n:]
    finally:
        os.close(fd)


def _read_fd(fd: int, size: int, limit: int | None) -> bytes:
    """Read ``fd`` to its end, or to ``limit`` bytes; ``size`` is the ``fstat`` size hint."""
    parts = []
    n = 0
    while limit is None or n < limit:
        want = max(size + 1 - n, 65536)
        chunk = os.read(fd, want if limit is None else min(want, limit - n))
        if not chunk:
            break
        parts.append(chunk)
        n += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _Folders:
    """Descriptors of folders below the root, opened one component at a time.

    A component that is a symlink, a file or a special file raises
    :class:`ForeignObjectError`; a missing one ``FileNotFoundError`` (or, with ``create``,
    is made). Every descriptor is closed on exit.
    """

    def __init__(self, backend: LocalBackend) -> None:
        self._be = backend
        self._fds: dict[str, int] = {}
        self._made: set[str] = set()  # folders made by this walk: nothing exists below them

    def __enter__(self) -> _Folders:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        self._made.clear()
        for fd in fds.values():
            os.close(fd)

    def open(self, rel: str, create: bool = False) -> int:
        fds = self._fds
        fd = fds.get(rel)
        if fd is not None:
            return fd
        segs = rel.split("/") if rel else []
        i = len(segs)
        while i > 0 and "/".join(segs[:i]) not in fds:
            i -= 1
        if i == 0:
            fd = fds.get("")
            if fd is None:
                fd = fds[""] = self._be._open_root(create)
        else:
            fd = fds["/".join(segs[:i])]
        for j in range(i, len(segs)):
            fd = self._sub(fd, segs[j], "/".join(segs[: j + 1]), create)
            fds["/".join(segs[: j + 1])] = fd
        return fd

    def _sub(self, parent: int, name: str, rel: str, create: bool) -> int:
        head = rel.rpartition("/")[0]
        if not (create and head in self._made):  # below a fresh folder: make, no probe
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
            except OSError as exc:
                if exc.errno in _LINK_ERRNOS:
                    self._be._foreign(rel, "not a folder")
                    raise ForeignObjectError(exc.errno, f"not a folder: {rel}") from None
                raise
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
            self._made.add(rel)
        except FileExistsError:
            pass  # a concurrent writer made it
        return self._sub(parent, name, rel, False)

    def parent(self, path: str, create: bool = False) -> tuple[int, str]:
        """(descriptor of the folder of ``path``, last segment) for a checked ``path``."""
        head, _, name = path.rpartition("/")
        return self.open(head, create), name


class LocalBackend(Backend):
    """Objects are files under a root directory.

    Parameters
    ----------
    root : str or Path
        Root directory (created on the first write).

    Attributes
    ----------
    foreign : int
        Symlinks and special files met below the root (skipped, never followed or opened).
    """

    scheme = "file"
    flat_listing = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.root = os.path.abspath(os.fspath(root))
        self.foreign = 0
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return Path(self.root).as_uri()

    def _foreign(self, rel: str, what: str) -> None:
        with self._lock:
            self.foreign += 1
            first = rel not in self._logged and len(self._logged) < _MAX_LOGGED
            if first:
                self._logged.add(rel)
        if first:
            log.warning(
                "gamstore: skipped %s in store %s: %r (never followed)", what, self.url, rel
            )

    def _open_root(self, create: bool) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | _O_COMMON  # the root itself may be a symlink
        try:
            return os.open(self.root, flags)
        except FileNotFoundError:
            if not create:
                raise
        os.makedirs(self.root, exist_ok=True)
        return os.open(self.root, flags)

    def _folders(self) -> _Folders:
        return _Folders(self)

    def _tmp_name(self, name: str) -> str:
        return f".{name}.tmp.{os.getpid():x}.{secrets.token_hex(4)}"

    # -- reads ---------------------------------------------------------------------------
    def get(self, path: str, max_bytes: int | None = None) -> bytes | None:
        check_path(path)
        self.requests["get"] += 1
        with self._folders() as dirs:
            return self._get(dirs, path, max_bytes)

    def get_many(
        self, paths: Sequence[str], max_bytes: Sequence[int | None] | None = None
    ) -> builtins.list[bytes | None]:
        caps = max_bytes if max_bytes is not None else [None] * len(paths)
        for p in paths:
            check_path(p)
        out: builtins.list[bytes | None] = []
        with self._folders() as dirs:  # the folders of an entry are opened once
            for p, cap in zip(paths, caps, strict=True):
                self.requests["get"] += 1
                out.append(self._get(dirs, p, cap))
        return out

    def _get(self, dirs: _Folders, path: str, max_bytes: int | None) -> bytes | None:
        if not path:
            return None
        try:
            parent, name = dirs.parent(path)
            fd = os.open(name, _READ_FLAGS, dir_fd=parent)
        except (*_MISSING, ForeignObjectError):
            return None
        except OSError as exc:
            if exc.errno in _LINK_ERRNOS or exc.errno in _SPECIAL_ERRNOS:
                self._foreign(path, "symlink or special file")
                return None
            raise
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                return None
            if not stat.S_ISREG(st.st_mode):
                self._foreign(path, "special file")
                return None
            return _read_fd(fd, st.st_size, None if max_bytes is None else max_bytes + 1)
        finally:
            os.close(fd)

    def _lstat(self, dirs: _Folders, path: str) -> os.stat_result | None:
        """``lstat`` of ``path`` (None if missing or below a foreign folder)."""
        try:
            parent, name = dirs.parent(path)
            return os.stat(name, dir_fd=parent, follow_symlinks=False)
        except (*_MISSING, ForeignObjectError):
            return None

    def mtime(self, path: str) -> int | None:
        check_path(path)
        self.requests["head"] += 1
        with self._folders() as dirs:
            if not path:
                try:
                    return os.fstat(dirs.open("")).st_mtime_ns
                except _MISSING:
                    return None
            st = self._lstat(dirs, path)
        if st is None:
            return None
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            self._foreign(path, "symlink or special file")
            return None
        return st.st_mtime_ns

    def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        check_path(prefix)
        self.requests["list"] += 1
        out: list[ObjectInfo] = []
        with self._folders() as dirs:
            try:
                fd = dirs.open(prefix)
            except (*_MISSING, ForeignObjectError):
                return out
            self._walk(fd, prefix, out, 0)
        return out

    def list_prefixed(self, prefix: str, start: str) -> builtins.list[ObjectInfo]:
        check_path(prefix)
        if not start or "/" in start:
            raise ValueError(f"start: expected a partial name without '/', got {start!r}")
        self.requests["list"] += 1
        out: list[ObjectInfo] = []
        with self._folders() as dirs:
            try:
                fd = dirs.open(prefix)
            except (*_MISSING, ForeignObjectError):
                return out
            self._walk(fd, prefix, out, 0, start)
        return out

    def _walk(
        self, fd: int, rel: str, out: builtins.list[ObjectInfo], depth: int, start: str = ""
    ) -> None:
        try:
            with os.scandir(fd) as it:
                entries = (
                    [e for e in it if e.name.startswith(start)] if start else builtins.list(it)
                )
        except _MISSING:
            return
        for e in entries:
            r = f"{rel}/{e.name}" if rel else e.name
            if not _utf8(e.name):
                self._foreign(r.encode("utf-8", "replace").decode(), "non-UTF-8 name")
                continue
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth >= MAX_DEPTH:
                        self._foreign(r, "folder nested too deep")
                        continue
                    try:
                        sub = os.open(e.name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as exc:
                        if exc.errno in _LINK_ERRNOS:  # replaced by a symlink since the scan
                            self._foreign(r, "not a folder")
                        continue
                    try:
                        self._walk(sub, r, out, depth + 1)
                    finally:
                        os.close(sub)
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out.append(ObjectInfo(r, st.st_size, st.st_mtime_ns))
                else:
                    self._foreign(r, "symlink or special file")
            except FileNotFoundError:
                continue  # removed while we listed

    def list_dir(self, prefix: str) -> builtins.list[str]:
        check_path(prefix)
        self.requests["list"] += 1
        names: list[str] = []
        with self._folders() as dirs:
            try:
                with os.scandir(dirs.open(prefix)) as it:
                    for e in it:
                        r = f"{prefix}/{e.name}" if prefix else e.name
                        if not _utf8(e.name):
                            self._foreign(r.encode("utf-8", "replace").decode(), "non-UTF-8 name")
                        elif e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False):
                            names.append(e.name)
                        else:
                            self._foreign(r, "symlink or special file")
            except (*_MISSING, ForeignObjectError):
                return []
        return names

    # -- writes --------------------------------------------------------------------------
    def put(self, path: str, data: bytes) -> None:
        check_path(path)
        if not path:
            raise ValueError("path: expected an object path, got the root")
        self.requests["put"] += 1
        with self._folders() as dirs:
            parent, name = dirs.parent(path, create=True)
            tmp = self._tmp_name(name)
            try:
                _write_file(tmp, data, _TEMP_FLAGS, parent)
                os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                _unlink_quiet(tmp, parent)
                raise

    def put_many(self, items: Mapping[str, bytes]) -> None:
        # Fresh paths under an uncommitted entry: plain writes, no rename needed. Folders are
        # opened (or made) once per call, parents first, each relative to its parent.
        for p in items:
            check_path(p)
            if not p:
                raise ValueError("path: expected an object path, got the root")
        with self._folders() as dirs:
            for attempt in (0, 1):
                try:
                    for p, data in items.items():
                        self.requests["put"] += 1
                        parent, name = dirs.parent(p, create=True)
                        _write_file(name, data, _WRITE_FLAGS, parent)
                    return
                except FileNotFoundError:
                    if attempt:
                        raise
                    dirs.close()  # a folder was removed under us (gc of an empty folder)

    def put_if_absent(self, path: str, data: bytes) -> bool:
        check_path(path)
        if not path:
            raise ValueError("path: expected an object path, got the root")
        with self._folders() as dirs:
            return self._put_if_absent(dirs, path, data)

    def put_many_if_absent(self, items: Mapping[str, bytes]) -> builtins.list[bool]:
        # In order, one folder walk for all (a save's level docs and marker share folders).
        for p in items:
            check_path(p)
            if not p:
                raise ValueError("path: expected an object path, got the root")
        with self._folders() as dirs:
            return [self._put_if_absent(dirs, p, d) for p, d in items.items()]

    def _put_if_absent(self, dirs: _Folders, path: str, data: bytes) -> bool:
        self.requests["put_if_absent"] += 1
        parent, name = dirs.parent(path, create=True)
        # No existence check first: link below is the create-only test, and the commit
        # path (fresh entry ids) never meets an existing marker.
        tmp = self._tmp_name(name)
        try:
            _write_file(tmp, data, _TEMP_FLAGS, parent)
            try:
                os.link(tmp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                return self._put_excl(name, data, parent)
            return True
        finally:
            _unlink_quiet(tmp, parent)

    def _put_excl(self, name: str, data: bytes, parent: int) -> bool:
        # No hard links here (some network/FUSE file systems): O_EXCL still gives create-only.
        try:
            _write_file(name, data, _TEMP_FLAGS, parent)
        except FileExistsError:
            return False
        return True

    def touch(self, path: str) -> None:
        self.touch_many([path])

    def touch_many(self, paths: Iterable[str]) -> None:
        paths = [check_path(p) for p in paths]
        with self._folders() as dirs:
            for p in paths:
                self.requests["touch"] += 1
                try:
                    self._touch(dirs, p)
                except ForeignObjectError:
                    continue  # counted and logged; the other touches still land
                except OSError as exc:
                    if exc.errno not in _LINK_ERRNOS and exc.errno not in _SPECIAL_ERRNOS:
                        raise
                    self._foreign(p, "symlink or special file")

    def _touch(self, dirs: _Folders, path: str) -> None:
        # Create or open the touch object (never through a symlink or a FIFO), then bump
        # its mtime through the descriptor.
        parent, name = dirs.parent(path, create=True)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | _O_SAFE, 0o644, dir_fd=parent)
        try:
            _check_regular(fd, path)
            os.utime(fd)
        finally:
            os.close(fd)

    def delete(self, path: str) -> bool:
        check_path(path)
        self.requests["delete"] += 1
        with self._folders() as dirs:
            return self._delete(dirs, path)

    def _delete(self, dirs: _Folders, path: str) -> bool:
        if not path:
            return False
        try:
            parent, name = dirs.parent(path)
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                return False
            if not stat.S_ISREG(st.st_mode):
                self._foreign(path, "symlink or special file")
                return False  # refuse: it is not ours
            os.unlink(name, dir_fd=parent)  # unlinkat never follows the last component
            return True
        except (*_MISSING, ForeignObjectError):
            return False
        except IsADirectoryError:
            return False

    def delete_many(self, paths: Iterable[str]) -> int:
        paths = [check_path(p) for p in paths]
        n = 0
        with self._folders() as dirs:
            for p in paths:
                self.requests["delete"] += 1
                n += self._delete(dirs, p)
        return n

    def delete_prefix(self, prefix: str) -> int:
        if not check_path(prefix):
            raise ValueError("prefix: refusing to delete the whole root")
        n = self.delete_many([o.path for o in self.list(prefix)])
        self.prune_empty(prefix)
        return n

    def prune_empty(self, prefix: str) -> None:
        """Remove the empty folders at and below ``prefix`` (never a file, never a symlink)."""
        check_path(prefix)
        if not prefix:
            return
        with self._folders() as dirs:
            try:
                parent, name = dirs.parent(prefix)
                fd = dirs.open(prefix)
            except (*_MISSING, ForeignObjectError):
                return
            self._remove_empty_dirs(fd, 0)
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError:
                pass  # not empty (a concurrent writer, a foreign object) or gone

    def _remove_empty_dirs(self, fd: int, depth: int) -> None:
        """Remove the empty folders below ``fd`` (bottom-up, never through a symlink)."""
        if depth >= MAX_DEPTH:
            return
        try:
            with os.scandir(fd) as it:
                subs = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for name in subs:
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                self._remove_empty_dirs(sub, depth + 1)
            finally:
                os.close(sub)
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                pass  # not empty (a concurrent writer) or already gone


def _utf8(name: str) -> bool:
    """False for a name that is not valid UTF-8 (``os`` hands those over with surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unlink_quiet(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _from_url(url: str, storage_options: dict[str, object]) -> LocalBackend:
    from gamstore.store.registry import local_path_from_url

    if storage_options:
        raise ValueError(
            f"storage_options: local stores take no options, got {sorted(storage_options)}"
        )
    return LocalBackend(local_path_from_url(url))
