"""Decoded store entries -> :class:`~gamstore.views.rows.FitRow` (one rule per record type).

The rules read record attributes only (never storage), so they work the same for entries
read from local disk, memory, S3 or an HDF5 export.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gamstore.rhonames import rho_labels_for_blocks
from gamstore.views.rows import PROVENANCE, FitRow

__all__ = ["row_from_entry", "row_from_record", "UnsupportedRecordError"]


class UnsupportedRecordError(ValueError):
    """The entry holds a record type the views do not know how to tabulate."""


def _objective(entry_objective: float | None, fallback: float) -> float:
    if entry_objective is not None and math.isfinite(entry_objective):
        return float(entry_objective)
    return float(fallback) if math.isfinite(fallback) else math.nan


def _term_names(prov: Any, n: int) -> list[str]:
    # the artifact itself names no terms; the fit that wrote it recorded its model's terms
    names = prov.get("terms") if isinstance(prov, Mapping) else None
    if isinstance(names, list) and len(names) == n:
        return [str(s) for s in names]
    return [""] * n


def _rho_names(prov: Any, rho: Any) -> tuple[str, ...]:
    # a record without block names: the fit that wrote it recorded its blocks (model order)
    names = prov.get("terms") if isinstance(prov, Mapping) else None
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        return ()
    return tuple(rho_labels_for_blocks(names, int(np.asarray(rho).size)) or ())


def _provenance_fields(prov: Any) -> dict[str, Any]:
    if not isinstance(prov, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name in PROVENANCE:
        value = prov.get(name)
        if isinstance(value, list):
            out[name] = ",".join(str(v) for v in value)
        elif isinstance(value, str):
            out[name] = value
    return out


def _artifact(record: Any, meta: dict[str, Any]) -> dict[str, Any]:
    desc = record.descriptor
    terms = record.terms
    return {
        "family": str(desc.family_kind),
        "descriptor_key": desc.descriptor_key().hex(),
        "objective": _objective(meta["objective"], record.global_.outer_objective),
        "n_rows": int(record.global_.n_rows),
        "converged": bool(record.global_.converged),
        "iterations": -1 if meta["iteration"] is None else int(meta["iteration"]),
        "labels": {
            "term_name": _term_names(meta.get("provenance"), len(terms)),
            "term_identity": [t.identity.hex() for t in terms],
            "term_role": [t.role.value for t in terms],
            "term_basis": [t.basis_meta.kind for t in terms],
        },
        "nested": {
            "rho": [np.asarray(t.rho_for_term) for t in terms],
            "beta": [np.asarray(t.raw_beta) for t in terms],
        },
    }


def _block(record: Any, meta: dict[str, Any]) -> dict[str, Any]:
    inner = record.inner
    iterations = meta["iteration"]
    if iterations is None:
        iterations = -1 if inner is None else int(inner.cycles)
    return {
        "objective": _objective(meta["objective"], math.nan),
        "n_rows": int(record.n_rows),
        "converged": bool(inner is not None and inner.converged),
        "iterations": int(iterations),
        "labels": {"block_name": [str(n) for n in record.block_names]},
        "nested": {"block_beta": [np.asarray(b) for b in record.block_beta]},
        "flat": {"rho": np.asarray(record.rho)},
    }


def _iterate(record: Any, meta: dict[str, Any]) -> dict[str, Any]:
    iteration = meta["iteration"]
    return {
        "objective": _objective(meta["objective"], record.cost),
        "converged": meta["kind"] == "final",  # only a converged, certified run finalizes
        "iterations": int(record.eval_id if iteration is None else iteration),
        "flat": {"rho": np.asarray(record.rho), "beta": np.asarray(record.beta)},
        "penalty_names": _rho_names(meta.get("provenance"), record.rho),
    }


def _warm_start(record: Any, meta: dict[str, Any]) -> dict[str, Any]:
    iteration = meta["iteration"]
    return {
        "objective": _objective(meta["objective"], math.nan),
        "n_rows": int(record.n_rows),
        "converged": bool(record.last_inner_converged),
        "iterations": int(record.last_inner_iters if iteration is None else iteration),
        "flat": {"rho": np.asarray(record.rho), "beta": np.asarray(record.beta)},
        "penalty_names": _rho_names(meta.get("provenance"), record.rho),
    }


_RULES: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "fit_artifact": _artifact,
    "block_warm_start": _block,
    "iterate": _iterate,
    "warm_start": _warm_start,
}


def row_from_record(
    record: Any,
    *,
    keyspace: str,
    key: str,
    entry_id: str,
    created: int,
    kind: str,
    producer: str = "",
    nbytes: int = -1,
    objective: float | None = None,
    iteration: int | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> FitRow:
    """Tabulate one record with its entry metadata (and the entry's provenance, if any).

    Raises
    ------
    UnsupportedRecordError
        If the record type has no rule, or does not fit the keyspace's layout.
    """
    record_type = getattr(type(record), "RECORD_TYPE", None)
    rule = _RULES.get(record_type) if isinstance(record_type, str) else None
    if rule is None:
        raise UnsupportedRecordError(
            f"record: no view rule for record type {record_type!r} (entry {entry_id})"
        )
    meta = {"objective": objective, "iteration": iteration, "kind": kind, "provenance": provenance}
    values = rule(record, meta)
    values.update(_provenance_fields(provenance))
    n_rows = provenance.get("n_rows") if isinstance(provenance, Mapping) else None
    if "n_rows" not in values and isinstance(n_rows, int) and not isinstance(n_rows, bool):
        values["n_rows"] = n_rows  # records without a row count: the fit's, from provenance
    try:
        return FitRow(
            entry_id=entry_id,
            key=key,
            keyspace=keyspace,
            created=int(created),
            kind=kind,
            producer=producer,
            nbytes=int(nbytes),
            **values,
        )
    except (TypeError, ValueError) as exc:
        raise UnsupportedRecordError(
            f"record: a {record_type!r} record does not fit keyspace {keyspace!r} ({exc})"
        ) from exc


def row_from_entry(entry: Any) -> FitRow:
    """Tabulate one decoded :class:`gamstore.store.Entry`."""
    return row_from_record(
        entry.record,
        keyspace=entry.keyspace,
        key=entry.key,
        entry_id=entry.entry_id,
        created=entry.created,
        kind=entry.kind,
        producer=entry.producer,
        nbytes=entry.nbytes,
        objective=entry.objective,
        iteration=entry.iteration,
        provenance=getattr(entry, "provenance", None),
    )
