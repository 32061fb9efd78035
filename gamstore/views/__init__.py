"""xarray views over a gamstore: many fits as one Dataset, one entry as a DataTree.

* :func:`open_fits` -- every entry of a keyspace as one :class:`xarray.Dataset`, NaN-padded or
  (``ragged=True``) CF contiguous ragged arrays, refused past ``max_bytes`` with
  :class:`ViewTooLargeError` (also ``xr.open_dataset(url, engine="gamstore")``);
  :func:`ragged_row` gives one row's vectors of a ragged Dataset;
* :func:`open_entry` -- one entry as an :class:`xarray.DataTree`;
* :mod:`gamstore.views.catalog` -- the consolidated catalog ``open_fits`` reads when current;
* :mod:`gamstore.views.hdf5` -- export to / import from HDF5 (netCDF-4 layout, via h5py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ViewTooLargeError", "open_entry", "open_fits", "ragged_row"]


def __getattr__(name: str) -> Any:
    # xarray-heavy modules load on first use only
    if name == "open_fits":
        from gamstore.views.fits import open_fits

        return open_fits
    if name == "open_entry":
        from gamstore.views.entry import open_entry

        return open_entry
    if name in ("ragged_row", "ViewTooLargeError"):
        from gamstore.views import assemble

        return getattr(assemble, name)
    raise AttributeError(f"module 'gamstore.views' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from gamstore.views.assemble import ViewTooLargeError, ragged_row
    from gamstore.views.entry import open_entry
    from gamstore.views.fits import open_fits
