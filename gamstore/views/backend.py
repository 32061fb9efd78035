"""xarray backend entry point ``engine="gamstore"`` (registered in pyproject.toml).

``xr.open_dataset(url, engine="gamstore", keyspace="block")`` is :func:`gamstore.open_fits`;
``xr.open_datatree(url, engine="gamstore")`` gives one child per keyspace.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from typing import Any

import xarray as xr
from xarray.backends import BackendEntrypoint

from gamstore.store import KEYSPACES
from gamstore.views.assemble import DEFAULT_MAX_BYTES

__all__ = ["GamstoreBackendEntrypoint"]


def _url(filename_or_obj: Any) -> Any:
    if isinstance(filename_or_obj, os.PathLike):
        return os.fspath(filename_or_obj)
    return filename_or_obj


def _drop(ds: xr.Dataset, drop_variables: str | Iterable[str] | None) -> xr.Dataset:
    if drop_variables is None:
        return ds
    names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
    return ds.drop_vars(names, errors="ignore")


class GamstoreBackendEntrypoint(BackendEntrypoint):
    """Open a gamstore store as a many-fits Dataset (see :func:`gamstore.open_fits`)."""

    description = "Many-fits view of a gamstore (Zarr v3 store of GAM optimizer state)"
    url = "https://github.com/gamstore/gamstore"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "keyspace",
        "storage_options",
        "catalog",
        "ragged",
        "max_bytes",
    )
    supports_groups = True

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        keyspace: str = "artifact",
        storage_options: Mapping[str, Any] | None = None,
        catalog: str = "auto",
        ragged: bool = False,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> xr.Dataset:
        """Return :func:`gamstore.open_fits` of ``filename_or_obj`` (URL, path or store)."""
        from gamstore.views.fits import open_fits

        ds = open_fits(
            _url(filename_or_obj),
            keyspace=keyspace,
            storage_options=storage_options,
            catalog=catalog,
            ragged=ragged,
            max_bytes=max_bytes,
        )
        return _drop(ds, drop_variables)

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        catalog: str = "auto",
        keyspaces: Iterable[str] = KEYSPACES,
        ragged: bool = False,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> xr.DataTree:
        """One child node per keyspace, each the :func:`gamstore.open_fits` Dataset."""
        return xr.DataTree.from_dict(
            self.open_groups_as_dict(
                filename_or_obj,
                drop_variables=drop_variables,
                storage_options=storage_options,
                catalog=catalog,
                keyspaces=keyspaces,
                ragged=ragged,
                max_bytes=max_bytes,
            )
        )

    def open_groups_as_dict(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        catalog: str = "auto",
        keyspaces: Iterable[str] = KEYSPACES,
        ragged: bool = False,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> dict[str, xr.Dataset]:
        """``{"/": empty, "/<keyspace>": open_fits(...)}`` for each keyspace."""
        from gamstore.views.fits import open_fits
        from gamstore.views.source import resolve_store

        store = resolve_store(_url(filename_or_obj), storage_options=storage_options)
        groups: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs={"store_url": store.url})}
        for ks in keyspaces:
            ds = open_fits(store, keyspace=ks, catalog=catalog, ragged=ragged, max_bytes=max_bytes)
            groups[f"/{ks}"] = _drop(ds, drop_variables)
        return groups

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """True for a local directory whose root ``zarr.json`` is a gamstore root."""
        target = _url(filename_or_obj)
        if not isinstance(target, str):
            return False
        path = target[len("file://") :] if target.startswith("file://") else target
        if "://" in path:
            return False  # remote: only on explicit engine="gamstore" (no probing requests)
        meta = os.path.join(os.path.expanduser(path), "zarr.json")
        # Never follow a symlink nor wait on a FIFO: xarray probes every path it is given.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(meta, flags)
        except OSError:
            return False
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            head = os.read(fd, 65536)
        except OSError:
            return False
        finally:
            os.close(fd)
        from gamstore import _json

        try:
            doc = _json.loads(head, root="zarr.json")
            return "layout" in doc["attributes"]["gamstore"]
        except (ValueError, KeyError, TypeError):
            return False
