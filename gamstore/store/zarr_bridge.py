"""A ``zarr.abc.store.Store`` on a gamstore root, for plain zarr and xarray readers.

Every root (local, ``memory://``, any object store) is exposed through
:class:`BackendZarrStore`, a read-mostly adapter over the backend's sync calls: one path for
all backends, with the backend's own client, caps and checks (so a local store read through
zarr never follows a symlink or opens a FIFO either).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype

from gamstore.store.backend import Backend

__all__ = ["BackendZarrStore", "zarr_store_for"]


class BackendZarrStore(Store):
    """Expose a :class:`~gamstore.store.backend.Backend` as a zarr store."""

    supports_writes = True
    supports_deletes = True
    supports_listing = True
    supports_partial_writes = False

    def __init__(self, backend: Backend, *, read_only: bool = True) -> None:
        super().__init__(read_only=read_only)
        self._be = backend

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BackendZarrStore) and other._be.url == self._be.url

    def __repr__(self) -> str:
        return f"BackendZarrStore({self._be.url!r})"

    def with_read_only(self, read_only: bool = False) -> BackendZarrStore:
        return BackendZarrStore(self._be, read_only=read_only)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        data = await asyncio.to_thread(self._be.get, key)
        if data is None:
            return None
        if isinstance(byte_range, RangeByteRequest):
            data = data[byte_range.start : byte_range.end]
        elif isinstance(byte_range, OffsetByteRequest):
            data = data[byte_range.offset :]
        elif isinstance(byte_range, SuffixByteRequest):
            data = data[-byte_range.suffix :] if byte_range.suffix else b""
        return prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return [await self.get(k, prototype, r) for k, r in key_ranges]

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._be.mtime, key) is not None

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()
        await asyncio.to_thread(self._be.put, key, value.to_bytes())

    async def delete(self, key: str) -> None:
        self._check_writable()
        await asyncio.to_thread(self._be.delete, key)

    async def list(self) -> AsyncIterator[str]:
        for o in await asyncio.to_thread(self._be.list, ""):
            yield o.path

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        folder = prefix.rstrip("/")
        for o in await asyncio.to_thread(self._be.list, folder):
            if o.path.startswith(prefix):
                yield o.path

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        for name in await asyncio.to_thread(self._be.list_dir, prefix.rstrip("/")):
            yield name


def zarr_store_for(backend: Backend, *, read_only: bool = True) -> Store:
    """A zarr store on ``backend``'s root.

    Every root goes through the backend (not zarr's ``LocalStore``, which follows symlinks
    and opens FIFOs, nor a second fsspec client for object stores): a store is untrusted
    input, and the backend already holds the client and its settings.
    """
    return BackendZarrStore(backend, read_only=read_only)
