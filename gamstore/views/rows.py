"""One stored entry flattened into a row of the many-fits view, and the per-keyspace layouts.

A :class:`FitRow` is the store-independent, record-independent middle step between a decoded
entry and the padded :class:`xarray.Dataset` built by :mod:`gamstore.views.fits`. Keeping it
pure (no I/O, no xarray) lets the Dataset assembly be tested without a store.

Each keyspace has a :class:`KeyspaceLayout` (in the store's keyspace registry,
:data:`gamstore.store.REGISTRY`) that says which ragged arrays a row carries:

* ``nested`` arrays are ragged twice: one vector per *group* (term or block), each of its own
  length, e.g. ``rho(term, penalty)`` of a fit artifact;
* ``flat`` arrays are one vector per fit, e.g. ``rho(penalty)`` of a session iterate;
* ``labels`` are strings along the group dimension, e.g. the term names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamstore.store import REGISTRY, KeyspaceLayout, keyspace_info

__all__ = ["FitRow", "KeyspaceLayout", "LAYOUTS", "PROVENANCE", "layout_for"]

#: Provenance strings of a row (see :mod:`gamstore.store.provenance`).
PROVENANCE: tuple[str, ...] = (
    "response",
    "covariates",
    "subject_column",
    "held_out",
    "run_id",
    "gamstore_version",
)


#: keyspace -> view layout, from the store's keyspace registry (the one list of keyspaces).
LAYOUTS: dict[str, KeyspaceLayout] = {name: ks.layout for name, ks in REGISTRY.items()}


def layout_for(keyspace: str) -> KeyspaceLayout:
    """Return the view layout of ``keyspace`` (from :data:`gamstore.store.REGISTRY`).

    Raises
    ------
    TypeError
        If ``keyspace`` is not a str.
    ValueError
        If ``keyspace`` is not a known keyspace.
    """
    return keyspace_info(keyspace).layout


def _vector(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D float vector, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class FitRow:
    """One stored entry as a row of the many-fits view.

    Parameters
    ----------
    entry_id, key, keyspace, kind, producer : str
        Entry identity and metadata as stored.
    created : int
        Creation time in ns since the epoch.
    nbytes : int
        Stored bytes of the entry (-1 when unknown).
    family, descriptor_key : str
        Model family and the fold-invariant descriptor key (empty when not applicable).
    objective : float
        Optimizer objective (NaN when unknown).
    n_rows, iterations : int
        Data rows and optimizer iterations (-1 when unknown).
    converged : bool
        Whether the stored state is a converged optimum.
    response, covariates, subject_column, held_out, run_id, gamstore_version : str
        Provenance of the entry (``covariates`` comma-joined; ``held_out`` empty for a
        full-data fit; all empty for entries written before provenance was stored).
    labels : mapping of str to sequence of str
        One string per group for each label of the layout.
    nested : mapping of str to sequence of 1-D arrays
        One vector per group for each nested array of the layout.
    flat : mapping of str to 1-D array
        One vector for each flat array of the layout.
    penalty_names : sequence of str
        One name per entry of a flat ``rho`` (``FitResult.rho_names``), when the entry says
        which ρ is which but its layout has no block names (``outer``, ``inner``, ``from``:
        from the fit's terms in its provenance); empty when unknown.
    """

    entry_id: str
    key: str
    keyspace: str
    created: int
    kind: str
    producer: str = ""
    nbytes: int = -1
    family: str = ""
    descriptor_key: str = ""
    objective: float = math.nan
    n_rows: int = -1
    iterations: int = -1
    converged: bool = False
    response: str = ""
    covariates: str = ""
    subject_column: str = ""
    held_out: str = ""
    run_id: str = ""
    gamstore_version: str = ""
    labels: Mapping[str, Sequence[str]] = field(default_factory=dict)
    nested: Mapping[str, Sequence[np.ndarray]] = field(default_factory=dict)
    flat: Mapping[str, np.ndarray] = field(default_factory=dict)
    penalty_names: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name in ("entry_id", "key", "keyspace", "kind", "producer", "family", *PROVENANCE):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"FitRow.{name}: expected a str")
        if not isinstance(self.descriptor_key, str):
            raise TypeError("FitRow.descriptor_key: expected a str")
        for name in ("created", "nbytes", "n_rows", "iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"FitRow.{name}: expected an int, got {type(value).__name__}")
        layout = layout_for(self.keyspace)
        self._check_arrays(layout)

    def _check_arrays(self, layout: KeyspaceLayout) -> None:
        if set(self.flat) != set(layout.flat):
            raise ValueError(
                f"FitRow.flat: expected arrays {sorted(layout.flat)} for keyspace "
                f"{layout.keyspace!r}, got {sorted(self.flat)}"
            )
        if set(self.nested) != set(layout.nested):
            raise ValueError(
                f"FitRow.nested: expected arrays {sorted(layout.nested)} for keyspace "
                f"{layout.keyspace!r}, got {sorted(self.nested)}"
            )
        if set(self.labels) != set(layout.labels):
            raise ValueError(
                f"FitRow.labels: expected labels {sorted(layout.labels)} for keyspace "
                f"{layout.keyspace!r}, got {sorted(self.labels)}"
            )
        flat = {name: _vector(f"FitRow.flat[{name!r}]", v) for name, v in self.flat.items()}
        object.__setattr__(self, "flat", flat)
        n_groups: int | None = None
        nested: dict[str, list[np.ndarray]] = {}
        for name, vectors in self.nested.items():
            vecs = [_vector(f"FitRow.nested[{name!r}][{i}]", v) for i, v in enumerate(vectors)]
            if n_groups is not None and len(vecs) != n_groups:
                raise ValueError(
                    f"FitRow.nested[{name!r}]: expected {n_groups} vectors (one per "
                    f"{layout.group_dim}), got {len(vecs)}"
                )
            n_groups = len(vecs)
            nested[name] = vecs
        object.__setattr__(self, "nested", nested)
        labels: dict[str, list[str]] = {}
        for name, values in self.labels.items():
            vals = list(values)
            if not all(isinstance(v, str) for v in vals):
                raise TypeError(f"FitRow.labels[{name!r}]: expected a sequence of str")
            if n_groups is not None and len(vals) != n_groups:
                raise ValueError(
                    f"FitRow.labels[{name!r}]: expected {n_groups} labels (one per "
                    f"{layout.group_dim}), got {len(vals)}"
                )
            n_groups = len(vals) if n_groups is None else n_groups
            labels[name] = vals
        object.__setattr__(self, "labels", labels)
        names = tuple(self.penalty_names)
        if names:
            if not all(isinstance(v, str) for v in names):
                raise TypeError("FitRow.penalty_names: expected a sequence of str")
            rho = flat.get("rho")
            if layout.flat.get("rho") != "penalty" or rho is None or rho.size != len(names):
                raise ValueError(
                    f"FitRow.penalty_names: expected one name per entry of a flat rho, got "
                    f"{len(names)} names for keyspace {layout.keyspace!r}"
                )
        object.__setattr__(self, "penalty_names", names)

    @property
    def n_groups(self) -> int:
        """Number of groups (terms or blocks); 0 for layouts without groups."""
        for vectors in self.nested.values():
            return len(vectors)
        for values in self.labels.values():
            return len(values)
        return 0
