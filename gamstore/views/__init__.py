"""xarray views over a gamstore: many fits as one Dataset, one entry as a DataTree.

* :func:`open_fits` -- every entry of a keyspace as one padded :class:`xarray.Dataset`
  (also ``xr.open_dataset(url, engine="gamstore")``);
* :func:`open_entry` -- one entry as an :class:`xarray.DataTree`;
* :mod:`gamstore.views.catalog` -- the consolidated catalog ``open_fits`` reads when current;
* :mod:`gamstore.views.hdf5` -- export to / import from HDF5 (netCDF-4 layout, via h5py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["open_entry", "open_fits"]


def __getattr__(name: str) -> Any:
    # xarray-heavy modules load on first use only
    if name == "open_fits":
        from gamstore.views.fits import open_fits

        return open_fits
    if name == "open_entry":
        from gamstore.views.entry import open_entry

        return open_entry
    raise AttributeError(f"module 'gamstore.views' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from gamstore.views.entry import open_entry
    from gamstore.views.fits import open_fits
