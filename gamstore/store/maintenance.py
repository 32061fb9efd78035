"""Maintenance: ``gc`` (garbage of crashed writers) and ``verify`` (an fsck of the store).

:meth:`Store.gc <gamstore.store.Store.gc>` and :meth:`Store.verify
<gamstore.store.Store.verify>` check their arguments, the mode and the root, then call these
functions with a :class:`Housekeeping`: the few parts of the store they may use (backend,
per-root caches, clock, record resolver, committed listing, deletion). The entries come
from the store's one walk (:mod:`gamstore.store.walk`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gamstore.store import codec
from gamstore.store.backend import Backend, ObjectInfo
from gamstore.store.cache import RootState
from gamstore.store.codec import CorruptEntryError
from gamstore.store.layout import (
    ACCESS_DIR,
    CATALOG_DIR,
    MARKER,
    bookkeeping_attrs,
    key_folder,
    level_attrs,
    split_entry_path,
)
from gamstore.store.types import EntryInfo, GcReport, VerifyReport
from gamstore.store.walk import walk

__all__ = ["Housekeeping", "gc", "verify"]

log = logging.getLogger("gamstore.store")

#: Largest markerless payload gc keeps in memory while it deletes it (see _remove_uncommitted).
_RESTORE_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Housekeeping:
    """What ``gc`` and ``verify`` use of a store (made by the store; nothing else of it).

    Attributes
    ----------
    backend : Backend
        The store's backend.
    state : RootState
        The per-root caches (entries removed here are forgotten there).
    clock : callable
        Now, in ns.
    resolve : callable
        ``RECORD_TYPE`` name -> record class (or None).
    committed_infos : callable
        ``(uncommitted=list, corrupt=list) -> Iterator[EntryInfo]``: the store's committed
        listing of every keyspace.
    delete_path : callable
        Delete one entry, marker first.
    """

    backend: Backend
    state: RootState
    clock: Callable[[], int]
    resolve: Callable[[str], type | None]
    committed_infos: Callable[..., Iterator[EntryInfo]]
    delete_path: Callable[[str], bool]


def gc(h: Housekeeping, grace: float = 3600.0) -> GcReport:
    """Remove markerless payloads and stray temp files older than ``grace`` seconds,
    and touch objects of entries that no longer exist.

    The caller checked the store is writable, its root, and flushed its touches.

    Returns
    -------
    GcReport
        Counts of what was removed.
    """
    if not grace >= 0:
        raise ValueError(f"grace: expected seconds >= 0, got {grace!r}")
    be = h.backend
    cutoff = h.clock() - int(grace * 1e9)
    payloads = temps = acc = freed = 0
    committed: set[str] = set()
    seen: list[ObjectInfo] = []
    # one listing of the whole root (plus, on folder backends, the walk that finds entry
    # folders of writers killed before their first file: they hold no object at all)
    dirs = list(walk(be, objects=True, seen=seen))
    listed = {o.path for o in seen}
    for o in seen:
        if o.path.startswith(f"{ACCESS_DIR}/") or o.path.startswith(f"{CATALOG_DIR}/"):
            continue
        if ".tmp." in o.path.rsplit("/", 1)[-1]:
            if o.mtime <= cutoff and be.delete(o.path):
                temps += 1
                freed += o.size
    for d in dirs:
        if d.committed:
            committed.add(d.path)
            continue
        if d.newest is None:  # an empty entry folder: its own time says how old it is
            made = be.mtime(d.path)
            if (made is None or made <= cutoff) and _remove_uncommitted(
                h, d.path, cutoff
            ) is not None:
                payloads += 1
        elif d.newest <= cutoff:
            removed = _remove_uncommitted(h, d.path, cutoff)
            if removed is not None:
                payloads += 1
                freed += removed
    for o in seen:
        if not o.path.startswith(f"{ACCESS_DIR}/"):
            continue
        ep = o.path[len(ACCESS_DIR) + 1 :]
        if ep == MARKER:
            continue  # the placeholder that makes .access a Zarr leaf, not a touch
        if ep not in committed and o.mtime <= cutoff and be.delete(o.path):
            acc += 1
    levels = _add_level_docs(h, listed, committed)
    return GcReport(
        payloads=payloads, temps=temps, access=acc, bytes_freed=freed, level_docs=levels
    )


def _add_level_docs(h: Housekeeping, listed: set[str], committed: set[str]) -> int:
    """Write the level docs (create-only) that the folders of committed entries lack.

    Stores written before level docs existed have none; ``gc`` upgrades them from the
    listing it already has. A layout-2 entry needs its keyspace and shard docs; a layout-1
    entry also its key folder's, which names the key (one marker GET per such key folder).
    Returns how many docs were created.
    """
    be = h.backend
    st = h.state
    made = 0

    def missing(p: str) -> bool:
        return f"{p}/{MARKER}" not in listed and p not in st.level_docs

    flat: dict[str, bytes] = {}  # level docs of layout-2 entries (no key string needed)
    todo: dict[str, str] = {}  # layout-1 key folder path -> one committed entry path in it
    for ep in sorted(committed):
        parts = ep.split("/")
        ks, kk = parts[0], parts[1]
        if len(parts) == 3:
            for p, a in level_attrs(ks, parts[2][:64], None, layout=2):
                if missing(p) and f"{p}/{MARKER}" not in flat:
                    flat[f"{p}/{MARKER}"] = codec.group_meta_bytes(a)
            continue
        kp = "/".join(parts[:3])
        if kp not in todo and any(missing(d) for d in (ks, f"{ks}/{kk}", kp)):
            todo[kp] = ep
    if flat:
        made += sum(be.put_many_if_absent(flat))
        listed.update(flat)
        st.remember_levels([d.rsplit("/", 1)[0] for d in flat])
    for kp, ep in todo.items():
        ks, _kk, folder = kp.split("/")
        try:
            m = codec.parse_marker(
                be.get(f"{ep}/{MARKER}", codec.MAX_ENTRY_BYTES) or b"",
                keyspace=ks,
                entry_id=ep.rsplit("/", 1)[1],
            )
            if key_folder(ks, m.key) != folder:
                continue  # not this folder's key: never label a folder with a foreign key
        except (CorruptEntryError, ValueError, TypeError):
            continue  # verify reports it; a level doc can wait
        docs = {
            f"{p}/{MARKER}": codec.group_meta_bytes(a)
            for p, a in level_attrs(ks, folder, m.key, layout=1)
            if missing(p)
        }
        made += sum(be.put_many_if_absent(docs))
        listed.update(docs)
        st.remember_levels([d.rsplit("/", 1)[0] for d in docs])
    for top in (ACCESS_DIR, CATALOG_DIR):
        if f"{top}/{MARKER}" not in listed and any(p.startswith(f"{top}/") for p in listed):
            doc = codec.placeholder_meta_bytes(bookkeeping_attrs(top), top.lstrip("."))
            made += be.put_if_absent(f"{top}/{MARKER}", doc)
            st.remember_levels([top])
    return made


def _remove_uncommitted(h: Housekeeping, ep: str, cutoff: int) -> int | None:
    """Delete the payload of the markerless entry ``ep``; return the bytes freed, or None.

    The listing gc works from is already old when it gets here: a writer may have committed
    the entry since (its marker landed after the listing). So the entry is listed again right
    before anything is deleted, and nothing is deleted if it has a marker now or holds an
    object newer than ``cutoff`` (a writer is still filling it). Only the objects seen in
    that listing are deleted (never a re-listing's newcomers, never a marker), then the
    folders left empty; if a marker appears meanwhile, the payload is put back.
    """
    be = h.backend
    objs = be.list(ep)
    marker = f"{ep}/{MARKER}"
    if any(o.path == marker or o.mtime > cutoff for o in objs):
        return None
    victims = [o for o in objs if ".tmp." not in o.path.rsplit("/", 1)[-1]]
    paths = [o.path for o in victims]
    size = sum(o.size for o in victims)
    # Keep the bytes until we know no writer committed meanwhile (dead writers' payloads
    # are small; a huge one is deleted without this safety net).
    kept = be.get_many(paths, [o.size for o in victims]) if size <= _RESTORE_MAX_BYTES else None
    h.state.forget(ep)
    be.delete_many(paths)
    be.prune_empty(ep)
    if be.mtime(marker) is not None:
        # The writer committed between our check and our deletes: put its payload back
        # (a marker that lands after this check makes the writer rewrite it, see
        # Store._check_payload).
        if kept is not None:
            be.put_many({p: b for p, b in zip(paths, kept, strict=True) if b is not None})
            log.info("gamstore: gc met a commit of %s while deleting; payload restored", ep)
        else:
            log.warning("gamstore: gc raced a commit of %s (payload too big to restore)", ep)
        return None
    return size


def verify(h: Housekeeping, fix: bool = False) -> VerifyReport:
    """Fully decode every committed entry; with ``fix=True`` delete the corrupt ones.

    Every corrupt entry comes with the reason: the object or array and the check that
    failed (marker JSON, metadata, chunk size, BLAKE3 digest, record fields). The caller
    checked the root (and, with ``fix``, that the store is writable).
    """
    be = h.backend
    uncommitted: list[str] = []
    ok = fixed = 0
    listed_corrupt: list[str] = []
    infos = list(h.committed_infos(uncommitted=uncommitted, corrupt=listed_corrupt))
    corrupt: list[tuple[str, str]] = []
    for path in listed_corrupt:  # markers that did not parse while listing: say why
        blob = be.get(f"{path}/{MARKER}", codec.MAX_ENTRY_BYTES)
        corrupt.append((path, _marker_problem(path, blob)))
    vanished = 0
    for info in infos:
        h.state.forget(info.path)
        marker = f"{info.path}/{MARKER}"
        blob = be.get(marker, codec.MAX_ENTRY_BYTES)
        if blob is None:
            vanished += 1  # deleted since the listing (evicted, expired): not corrupt
            continue
        try:
            m = codec.parse_marker(blob, keyspace=info.keyspace, entry_id=info.entry_id)
            rel = codec.marker_object_paths(m)
            blobs = be.get_many([f"{info.path}/{r}" for r in rel], codec.marker_object_sizes(m))
            arrays = codec.decode_arrays(m, dict(zip(rel, blobs, strict=True)))
            codec.decode_record(m, arrays, h.resolve)
        except CorruptEntryError as exc:
            # A delete removes the marker first, then the payload: an entry whose marker
            # is gone now was being evicted while we read it, it is not damaged.
            if be.mtime(marker) is None:
                vanished += 1
                continue
            corrupt.append((info.path, str(exc)))
        else:
            ok += 1
    checked = ok + len(corrupt)
    if fix:
        for p, _why in corrupt:
            h.delete_path(p)
            fixed += 1
    return VerifyReport(
        checked=checked,
        ok=ok,
        corrupt=tuple(p for p, _ in corrupt),
        uncommitted=len(uncommitted),
        fixed=fixed,
        vanished=vanished,
        reasons=tuple(why for _, why in corrupt),
    )


def _marker_problem(path: str, blob: bytes | None) -> str:
    """Why the marker of ``path`` does not parse (it did not while listing)."""
    if blob is None:
        return f"marker {MARKER} vanished"
    where = split_entry_path(path)
    if where is None:
        return "not an entry path"
    keyspace, _folder, entry_id = where
    try:
        codec.parse_marker(blob, keyspace=keyspace, entry_id=entry_id)
    except CorruptEntryError as exc:
        msg = str(exc)
        return msg if msg.startswith("marker") else f"marker {MARKER}: {msg}"
    return "marker did not parse while listing; it does now (rewritten meanwhile)"
