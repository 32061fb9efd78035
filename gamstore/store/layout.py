"""Paths of the on-storage layout (DESIGN §3), relative to the store root.

::

    zarr.json                                   root group, attrs {"gamstore": {"layout": 1}}
    <keyspace>/<kk>/<key64>/<entry>/zarr.json   commit marker (group metadata, written last)
    <keyspace>/<kk>/<key64>/<entry>/<array>/... the entry's arrays
    .access/<keyspace>/<kk>/<key64>/<entry>     touch objects (mtime = last access)
    .catalog/...                                free-form objects of the catalog (views layer)

Keys never become path segments: a key string maps to the 64-hex folder
``key_fingerprint(keyspace, key).hex()`` (:mod:`gamstore.fingerprint`), so user strings
cannot inject paths.
"""

from __future__ import annotations

import functools

from gamstore.fingerprint import key_fingerprint
from gamstore.store.types import KEYSPACES

__all__ = [
    "ACCESS_DIR",
    "CATALOG_DIR",
    "LAYOUT_VERSION",
    "MARKER",
    "access_path",
    "check_keyspace",
    "entry_prefix",
    "key_folder",
    "key_prefix",
    "split_entry_path",
]

LAYOUT_VERSION = 1
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
    """``"<keyspace>/<kk>/<folder>"``."""
    return f"{keyspace}/{folder[:2]}/{folder}"


def entry_prefix(keyspace: str, folder: str, entry_id: str) -> str:
    """``"<keyspace>/<kk>/<folder>/<entry_id>"``."""
    return f"{keyspace}/{folder[:2]}/{folder}/{entry_id}"


def access_path(entry_path: str) -> str:
    """Touch object of the entry at ``entry_path``."""
    return f"{ACCESS_DIR}/{entry_path}"


def split_entry_path(path: str) -> tuple[str, str, str] | None:
    """Split ``"<ks>/<kk>/<folder>/<entry>"`` into (keyspace, folder, entry_id), or None."""
    parts = path.split("/")
    if len(parts) != 4:
        return None
    ks, kk, folder, entry_id = parts
    if ks not in KEYSPACES or len(folder) != 64 or folder[:2] != kk:
        return None
    return ks, folder, entry_id
