"""Paths of the on-storage layout (DESIGN §3), relative to the store root.

Layout 2 (what this version writes into a layout-2 root)::

    zarr.json                                   root group, attrs {"gamstore": {"layout": 2}}
    <keyspace>/zarr.json                        level group {"gamstore": {"level": "keyspace", ...}}
    <keyspace>/<kk>/zarr.json                   level group {"gamstore": {"level": "shard", ...}}
    <keyspace>/<kk>/<key64>.<entry>/zarr.json   commit marker (group metadata, written last)
    <keyspace>/<kk>/<key64>.<entry>/<array>/... the entry's arrays
    .access/zarr.json                           a zero-length placeholder array (a Zarr leaf)
    .access/<entry path>                        touch objects (mtime = last access)
    .catalog/zarr.json                          a zero-length placeholder array (a Zarr leaf)
    .catalog/...                                free-form objects of the catalog (views layer)

Layout 1 had one more folder level per key, ``<keyspace>/<kk>/<key64>/`` (with its own level
doc naming the key) holding ``<entry>/`` folders. Every reader here understands both entry
shapes, side by side in one store: a layout-1 root keeps being written in layout 1 (an older
gamstore may share it) until :meth:`Store.upgrade <gamstore.store.Store.upgrade>` flips its
root doc to 2; its old entries stay where they are and read as before.

The level groups make the whole store one Zarr hierarchy; they are written create-only, once
per folder, and readers never need them (stores of the first layout have none). The two
bookkeeping folders hold objects that are not Zarr nodes, so each declares itself a Zarr
*array* of shape ``(0,)``: a Zarr walk treats it as a leaf and never lists what is below.

Keys never become path segments: a key string maps to the 64-hex folder
``key_fingerprint(keyspace, key).hex()`` (:mod:`gamstore.fingerprint`), so user strings
cannot inject paths.
"""

from __future__ import annotations

import functools

from gamstore.fingerprint import key_fingerprint
from gamstore.store.keyspaces import KEYSPACES

__all__ = [
    "ACCESS_DIR",
    "CATALOG_DIR",
    "LAYOUT_VERSION",
    "MARKER",
    "READABLE_LAYOUTS",
    "access_path",
    "bookkeeping_attrs",
    "check_keyspace",
    "entry_prefix",
    "flat_entry_name",
    "key_folder",
    "is_folder_name",
    "is_level_doc",
    "is_shard_name",
    "key_prefix",
    "level_attrs",
    "split_entry_path",
    "split_flat_name",
]

#: Layout of the stores this version creates (entries ``<ks>/<kk>/<key64>.<entry id>``).
LAYOUT_VERSION = 2
#: Layouts this version reads and writes (1: ``<ks>/<kk>/<key64>/<entry id>``).
READABLE_LAYOUTS = (1, 2)
MARKER = "zarr.json"
ACCESS_DIR = ".access"
CATALOG_DIR = ".catalog"


def check_keyspace(keyspace: object) -> str:
    """Return ``keyspace`` if it is known, else raise ValueError naming the choices."""
    if not isinstance(keyspace, str) or keyspace not in KEYSPACES:
        raise ValueError(
            f"keyspace: unknown keyspace {keyspace!r}; expected one of {sorted(KEYSPACES)}"
        )
    return keyspace


def key_folder(keyspace: str, key: str) -> str:
    """Return the 64-hex folder of ``key`` in ``keyspace``.

    Equal to ``gamstore.fingerprint.key_fingerprint(keyspace, key).hex()``: the keyspace and
    the key are separate tagged frames, so keyspaces are disjoint.
    """
    if not isinstance(key, str):
        raise TypeError(f"key: expected str, got {type(key).__name__}")
    if not key:
        raise ValueError("key: expected a non-empty string")
    return _folder_of(check_keyspace(keyspace), str(key))


@functools.lru_cache(maxsize=4096)
def _folder_of(keyspace: str, key: str) -> str:
    # A fold looks a key up and then saves under it: hash each (keyspace, key) once.
    return key_fingerprint(keyspace, key).hex()


def key_prefix(keyspace: str, folder: str) -> str:
    """``"<keyspace>/<kk>/<folder>"``: the key folder of layout 1, and in layout 2 the
    name prefix every entry folder of the key starts with (inside its shard)."""
    return f"{keyspace}/{folder[:2]}/{folder}"


def entry_prefix(keyspace: str, folder: str, entry_id: str, layout: int = LAYOUT_VERSION) -> str:
    """``"<keyspace>/<kk>/<folder>.<entry_id>"`` (layout 2) or
    ``"<keyspace>/<kk>/<folder>/<entry_id>"`` (layout 1)."""
    sep = "." if layout >= 2 else "/"
    return f"{keyspace}/{folder[:2]}/{folder}{sep}{entry_id}"


def flat_entry_name(folder: str, entry_id: str) -> str:
    """``"<folder>.<entry_id>"``: an entry folder's name inside its shard (layout 2)."""
    return f"{folder}.{entry_id}"


def split_flat_name(name: str) -> tuple[str, str] | None:
    """``(folder, entry_id)`` of a layout-2 entry folder name ``<key64>.<entry id>``, or None.

    Only the shape is checked here (64 hex digits, a dot, a rest); the caller checks the
    entry id with :func:`gamstore.store.ids.is_entry_id`.
    """
    if len(name) < 66 or name[64] != "." or not is_folder_name(name[:64]):
        return None
    return name[:64], name[65:]


def access_path(entry_path: str) -> str:
    """Touch object of the entry at ``entry_path``."""
    return f"{ACCESS_DIR}/{entry_path}"


def split_entry_path(path: str) -> tuple[str, str, str] | None:
    """Split an entry path into (keyspace, folder, entry_id), or None.

    Both shapes: ``"<ks>/<kk>/<folder>.<entry>"`` (layout 2) and
    ``"<ks>/<kk>/<folder>/<entry>"`` (layout 1). The entry id's shape is not checked.
    """
    parts = path.split("/")
    if len(parts) == 3:
        ks, kk, name = parts
        flat = split_flat_name(name)
        if flat is None:
            return None
        folder, entry_id = flat
    elif len(parts) == 4:
        ks, kk, folder, entry_id = parts
    else:
        return None
    # hex only: a listed name that is not (e.g. not UTF-8) is no entry of the layout
    if ks not in KEYSPACES or not is_folder_name(folder) or folder[:2] != kk:
        return None
    return ks, folder, entry_id


def level_attrs(
    keyspace: str, folder: str, key: str | None, layout: int = LAYOUT_VERSION
) -> list[tuple[str, dict[str, object]]]:
    """``(folder path, attrs)`` of the level groups above an entry: keyspace and shard, and
    in layout 1 the key folder (``key`` is then required: its doc names the key).

    Top first; each folder's ``zarr.json`` is a plain Zarr group whose attrs say which level
    it is (``{"gamstore": {"level": "shard", "keyspace": "block", "shard": "9a"}}``).
    """
    kk = folder[:2]
    out: list[tuple[str, dict[str, object]]] = [
        (keyspace, {"gamstore": {"level": "keyspace", "keyspace": keyspace}}),
        (f"{keyspace}/{kk}", {"gamstore": {"level": "shard", "keyspace": keyspace, "shard": kk}}),
    ]
    if layout < 2:
        if key is None:
            raise ValueError("key: required for the key folder of layout 1")
        out.append(
            (
                f"{keyspace}/{kk}/{folder}",
                {"gamstore": {"level": "key", "keyspace": keyspace, "key": key}},
            )
        )
    return out


def bookkeeping_attrs(top: str) -> dict[str, object]:
    """Attrs of the placeholder array that hides ``.access`` or ``.catalog`` from Zarr walks."""
    what = {
        ACCESS_DIR: "access touch objects (their mtime is an entry's last access)",
        CATALOG_DIR: "catalog versions and their pointer current.json",
    }[top]
    return {"gamstore": {"level": top.lstrip("."), "holds": what}}


def is_level_doc(path: str) -> bool:
    """True for the ``zarr.json`` of a keyspace, shard or key folder or a bookkeeping top."""
    head, _, name = path.rpartition("/")
    if name != MARKER or not head:
        return False
    parts = head.split("/")
    if len(parts) == 1:
        return parts[0] in KEYSPACES or parts[0] in (ACCESS_DIR, CATALOG_DIR)
    if parts[0] not in KEYSPACES or not is_shard_name(parts[1]):
        return False
    return len(parts) == 2 or (len(parts) == 3 and is_folder_name(parts[2]))


def is_shard_name(name: str) -> bool:
    """True for a ``<kk>`` folder name (two lowercase hex digits)."""
    return len(name) == 2 and all(c in _HEX for c in name)


def is_folder_name(name: str) -> bool:
    """True for a ``<key64>`` folder name (64 lowercase hex digits)."""
    return len(name) == 64 and all(c in _HEX for c in name)


_HEX = frozenset("0123456789abcdef")
