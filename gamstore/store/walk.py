"""The one walk of the layout: every entry folder of a scope, in both entry shapes.

An entry folder is ``<keyspace>/<kk>/<key64>.<entry id>`` (layout 2) or
``<keyspace>/<kk>/<key64>/<entry id>`` (layout 1); a store may hold both (a layout-1 store
upgraded in place keeps its old entries where they are), and every walk yields both.

Everything that needs the entries of a scope takes them from :func:`walk`: the listing
behind :meth:`Store.entries <gamstore.store.Store.entries>` and
:meth:`Store.listing <gamstore.store.Store.listing>`, a lookup's scan of one key folder, the
eviction sweeps, ``gc`` and ``verify``. Nothing else in the package knows the folder levels.

The backend decides how a scope is walked:

* object stores (``flat_listing``): one recursive listing of the scope (of the whole root
  when no keyspace is given) costs the same requests as a one-level one, so every entry
  comes with its marker presence, its bytes and its newest object time;
* folder backends (local disk, memory): a names-only walk, level by level, which reads no
  object; whether an entry is committed is then unknown (``committed is None``) until its
  marker is read. ``objects=True`` asks for the objects anyway (``gc``): one recursive
  listing, plus the names walk for entry folders that hold no object at all (a writer
  killed before its first file).

Only names of the layout are yielded (a known keyspace, a two-hex shard, the 64-hex key under
its own shard, an entry id); temporary files (``.tmp.`` in the name) are no part of an
entry. Entries come in path order. A key's scope (``folder=``) is one listing of its shard
filtered on the name prefix ``<key64>`` (:meth:`Backend.list_prefixed`, one LIST with that
key prefix on object stores), which takes both shapes at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gamstore.store.backend import Backend, ObjectInfo
from gamstore.store.ids import is_entry_id
from gamstore.store.keyspaces import KEYSPACES
from gamstore.store.layout import (
    ACCESS_DIR,
    MARKER,
    is_folder_name,
    is_shard_name,
    split_flat_name,
)

__all__ = ["EntryDir", "touch_times", "walk"]


@dataclass(frozen=True, slots=True)
class EntryDir:
    """One entry folder met by :func:`walk`.

    Attributes
    ----------
    path : str
        ``"<keyspace>/<kk>/<folder>.<entry_id>"`` (layout 2) or
        ``"<keyspace>/<kk>/<folder>/<entry_id>"`` (layout 1).
    keyspace, folder, entry_id : str
        The parts of ``path``.
    committed : bool or None
        Whether its marker was listed; None from a names-only walk (not known).
    nbytes : int
        Bytes of its listed objects (0 when none were listed).
    newest : int or None
        Newest modification time (ns) of its listed objects; None when none were listed.
    """

    path: str
    keyspace: str
    folder: str
    entry_id: str
    committed: bool | None = None
    nbytes: int = 0
    newest: int | None = None


def _tops(keyspace: str | None, shard: str | None) -> list[str]:
    spaces = list(KEYSPACES) if keyspace is None else [keyspace]
    if shard is not None:
        return [f"{ks}/{shard}" for ks in spaces]
    return spaces


def walk(
    backend: Backend,
    keyspace: str | None = None,
    *,
    shard: str | None = None,
    folder: str | None = None,
    objects: bool = False,
    seen: list[ObjectInfo] | None = None,
    levels: set[str] | None = None,
) -> Iterator[EntryDir]:
    """Yield the entry folders of a scope, in path order (see the module notes).

    Parameters
    ----------
    backend : Backend
        The store's backend.
    keyspace : str, optional
        One keyspace (default: every keyspace of the registry).
    shard : str, optional
        One ``<kk>`` shard of each keyspace walked.
    folder : str, optional
        One 64-hex key folder (its shard is implied); needs ``keyspace``.
    objects : bool
        List the objects even on a folder backend (every :class:`EntryDir` then says
        ``committed``, ``nbytes`` and ``newest``).
    seen : list, optional
        Receives every object the listing returned, layout or not (the whole root's,
        ``.access`` and ``.catalog`` included, when no keyspace is given), so a caller that
        needs more of the listing does not list again.
    levels : set, optional
        Receives the shard folders (``<keyspace>/<kk>``) whose level doc a names-only walk
        saw in its listing (a save into them need not write it again).
    """
    if folder is not None and keyspace is None:
        raise ValueError("keyspace: required with folder")
    if backend.flat_listing or objects:
        whole = keyspace is None and shard is None and folder is None
        if folder is not None:
            assert keyspace is not None
            objs = backend.list_prefixed(f"{keyspace}/{folder[:2]}", folder)
        elif whole:
            objs = backend.list("")
        else:
            objs = [o for t in _tops(keyspace, shard) for o in backend.list(t)]
        if seen is not None:
            seen.extend(objs)
        found = _group(objs)
        if not backend.flat_listing:
            # a folder that holds no object is invisible to a recursive listing
            for d in _names(backend, keyspace, shard, folder):
                if d.path not in found:
                    found[d.path] = EntryDir(d.path, d.keyspace, d.folder, d.entry_id, False)
        for path in sorted(found):
            yield found[path]
        return
    yield from _names(backend, keyspace, shard, folder, levels)


def _group(objs: list[ObjectInfo]) -> dict[str, EntryDir]:
    """Entry folders of a recursive listing, with marker presence, bytes and newest time."""
    sizes: dict[str, list[int]] = {}  # entry path -> [nbytes, newest, committed]
    valid: dict[str, tuple[str, str, str] | None] = {}  # shape-checked entry folders
    for o in objs:
        parts = o.path.split("/", 4)
        if len(parts) < 4 or ".tmp." in parts[-1].rsplit("/", 1)[-1]:
            continue
        if len(parts[2]) > 64:  # layout 2: <ks>/<kk>/<key64>.<entry id>/<object>
            ep = "/".join(parts[:3])
            rest = "/".join(parts[3:])
        elif len(parts) == 5:  # layout 1: <ks>/<kk>/<key64>/<entry id>/<object>
            ep = "/".join(parts[:4])
            rest = parts[4]
        else:
            continue
        if ep in valid:
            ok = valid[ep]
        else:
            ok = valid[ep] = _entry_parts(ep)
        if ok is None:
            continue
        acc = sizes.get(ep)
        if acc is None:
            acc = sizes[ep] = [0, o.mtime, 0]
        acc[0] += o.size
        acc[1] = max(acc[1], o.mtime)
        if rest == MARKER:
            acc[2] = 1
    out: dict[str, EntryDir] = {}
    for ep, (nbytes, newest, committed) in sizes.items():
        ks, folder, entry_id = valid[ep]  # type: ignore[misc]
        out[ep] = EntryDir(ep, ks, folder, entry_id, bool(committed), nbytes, newest)
    return out


def _entry_parts(ep: str) -> tuple[str, str, str] | None:
    """(keyspace, folder, entry id) of an entry folder path of either layout, or None."""
    parts = ep.split("/")
    if len(parts) == 3:
        ks, kk, name = parts
        flat = split_flat_name(name)
        if flat is None:
            return None
        folder, entry_id = flat
    else:
        ks, kk, folder, entry_id = parts
        if not is_folder_name(folder):
            return None
    if ks not in KEYSPACES or folder[:2] != kk or not is_entry_id(entry_id):
        return None
    return ks, folder, entry_id


def _names(
    backend: Backend,
    keyspace: str | None,
    shard: str | None,
    folder: str | None,
    levels: set[str] | None = None,
) -> Iterator[EntryDir]:
    """Names-only walk of a folder backend (``list_dir`` per level; reads no object)."""
    for ks in list(KEYSPACES) if keyspace is None else [keyspace]:
        if folder is not None:
            shards = [folder[:2]]
        elif shard is not None:
            shards = [shard]
        else:
            # level docs (zarr.json) sit beside the shard and key folders: skip them
            shards = sorted(filter(is_shard_name, backend.list_dir(ks)))
        for kk in shards:
            sp = f"{ks}/{kk}"
            yield from sorted(_shard_names(backend, sp, kk, folder, levels), key=lambda d: d.path)


def _shard_names(
    backend: Backend, sp: str, kk: str, folder: str | None, levels: set[str] | None
) -> Iterator[EntryDir]:
    """Entry folders of the shard ``sp`` (both layouts), optionally of one key only."""
    ks = sp.split("/", 1)[0]
    names = backend.list_dir(sp)
    if levels is not None and MARKER in names:
        levels.add(sp)
    for name in names:
        if folder is not None and not name.startswith(folder):
            continue
        flat = split_flat_name(name)
        if flat is not None:  # layout 2: <key64>.<entry id>
            f, entry_id = flat
            if f[:2] == kk and is_entry_id(entry_id):
                yield EntryDir(f"{sp}/{name}", ks, f, entry_id)
        elif is_folder_name(name) and name[:2] == kk:  # layout 1: a key folder
            kp = f"{sp}/{name}"
            for eid in sorted(backend.list_dir(kp)):
                if is_entry_id(eid):
                    yield EntryDir(f"{kp}/{eid}", ks, name, eid)


def touch_times(
    backend: Backend,
    keyspace: str | None = None,
    *,
    shard: str | None = None,
    listed: list[ObjectInfo] | None = None,
) -> dict[str, int]:
    """Last access (touch object mtime, ns) by entry path, for a scope.

    ``listed``: objects of a listing of the whole root (from :func:`walk`'s ``seen``), which
    already holds the touch objects; otherwise ``.access/<scope>`` is listed.
    """
    if listed is None:
        listed = [o for t in _tops(keyspace, shard) for o in backend.list(f"{ACCESS_DIR}/{t}")]
    cut = len(ACCESS_DIR) + 1
    return {o.path[cut:]: o.mtime for o in listed if o.path.startswith(f"{ACCESS_DIR}/")}
