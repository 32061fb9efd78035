"""xarray views over a gamstore: many fits as one Dataset, one entry as a DataTree."""

from __future__ import annotations
