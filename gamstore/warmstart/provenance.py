"""Provenance of the entries a fit saves, for fitters (they reach the store only through
this layer). See :mod:`gamstore.store.provenance` for the fields and their types."""

from __future__ import annotations

from gamstore.store.provenance import (
    MAX_COVARIATES,
    MAX_TEXT,
    PROVENANCE_FIELDS,
    current_provenance,
    new_run_id,
    provenance,
)

__all__ = [
    "MAX_COVARIATES",
    "MAX_TEXT",
    "PROVENANCE_FIELDS",
    "current_provenance",
    "new_run_id",
    "provenance",
]
