"""Inspect a gamstore with xarray, export it to HDF5 and import it back.

Run: ``python examples/inspect_and_export.py`` (writes only to a temporary directory).

1. make a small local store with a few synthetic fit artifacts, block records and
   finalized outer sessions;
2. open every fit artifact as one xarray Dataset (``gamstore.open_fits``) and one entry as
   a DataTree (``gamstore.open_entry``), and do a little analysis with plain xarray;
3. write the consolidated catalog, so the next ``open_fits`` reads one small data set;
4. export everything to one HDF5 file, import it into a fresh store, and check that the
   two stores hold identical entries.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

import gamstore
from gamstore.views.catalog import write_catalog
from gamstore.views.hdf5 import export_hdf5, import_hdf5
from gamstore.views.synthetic import populate


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = gamstore.open_store(root / "store")
        populate(store, 8, seed=2024)  # 8 fits x (artifact, block, outer)

        # -- many fits as one Dataset -----------------------------------------------------
        fits = gamstore.open_fits(store)  # keyspace="artifact"
        print(f"{fits.sizes['fit']} fit artifacts, dims {dict(fits.sizes)}")
        # mean log smoothing parameter of each smooth term, over the fits that have it
        smooth_rho = fits["rho"].where(fits["rho_mask"]).isel(penalty=0)
        print("mean rho per term position:", np.round(smooth_rho.mean("fit").values, 3))
        by_family = fits["objective"].groupby("family").mean()
        for family, value in zip(by_family["family"].values, by_family.values, strict=True):
            print(f"  mean objective, {family}: {value:.2f}")

        # the same through xarray's own entry point
        outer = xr.open_dataset(root / "store", engine="gamstore", keyspace="outer")
        print(
            f"outer sessions: {outer.sizes['fit']}, all final: {bool((outer.kind == 'final').all())}"
        )

        # -- one entry as a DataTree ------------------------------------------------------
        key = str(fits["key"].values[0])
        tree = gamstore.open_entry(store, "artifact", key)
        print(f"entry {tree.attrs['entry_id']}: family {tree.attrs['family']}, "
              f"{len(tree['terms'].children)} terms")  # fmt: skip

        # -- catalog: open_fits now reads one consolidated data set ------------------------
        info = write_catalog(store)
        again = gamstore.open_fits(store)
        assert again.attrs["gamstore"]["source"] == "catalog"
        xr.testing.assert_identical(again.drop_attrs(), fits.drop_attrs())
        print(f"catalog {info.folder}: {info.nbytes} bytes, open_fits reads it when current")

        # -- HDF5 export and import -------------------------------------------------------
        h5 = root / "fits.h5"
        exported = export_hdf5(store, h5)
        copy = gamstore.open_store(root / "copy")
        imported = import_hdf5(copy, h5)
        print(f"exported {exported.exported} entries to {h5.name}, imported {imported.imported}")
        for info_ in store.entries():
            a, b = store.read_entry(info_), copy.read_entry(info_)
            assert b is not None and a.record == b.record and a.entry_id == b.entry_id
        xr.testing.assert_identical(
            gamstore.open_fits(copy, "block").drop_attrs(),
            gamstore.open_fits(store, "block").drop_attrs(),
        )
        print("round trip: identical entries in both stores")


if __name__ == "__main__":
    main()
