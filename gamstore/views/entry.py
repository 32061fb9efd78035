"""``open_entry``: one stored entry as an :class:`xarray.DataTree`.

The tree mirrors the record, not the storage bytes: the root holds the entry metadata as
attributes and the record's scalar summary as 0-d variables; vectors keep their own
dimension names; per-term / per-block vectors live in child nodes (``terms/0``,
``blocks/1``, ...) so siblings of different lengths never clash (DataTree alignment rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from gamstore.rhonames import block_label, block_rho_labels, rho_labels_for_blocks
from gamstore.store import KEYSPACES
from gamstore.views.attrs import variable_attrs
from gamstore.views.listing import as_stored
from gamstore.views.rows import layout_for
from gamstore.views.source import resolve_store

__all__ = ["open_entry", "find_entry", "entry_tree", "EntryNotFoundError"]

_WHICH = ("best", "latest")


class EntryNotFoundError(LookupError):
    """No committed, readable entry matches the request."""


def find_entry(
    store: Any,
    keyspace: str | None = None,
    key: str | None = None,
    *,
    entry_id: str | None = None,
    which: str = "best",
) -> Any:
    """Find one entry by key string (best or latest) or by entry id.

    Parameters
    ----------
    store : Store
    keyspace : str, optional
        Required with ``key``; with ``entry_id`` it narrows the search (default: all).
    key : str, optional
        The caller's key string.
    entry_id : str, optional
        An entry id as listed by ``gamstore ls`` / the ``fit`` coordinate of ``open_fits``.
    which : {"best", "latest"}
        Lookup rule for ``key`` (``store.lookup`` or ``store.lookup_latest``).

    Returns
    -------
    gamstore.store.Entry

    Raises
    ------
    ValueError
        Bad arguments (neither or both of key/entry_id, unknown keyspace or rule).
    EntryNotFoundError
        Nothing matches.
    """
    if (key is None) == (entry_id is None):
        raise ValueError("key/entry_id: give exactly one of key or entry_id")
    if which not in _WHICH:
        raise ValueError(f"which: expected 'best' or 'latest', got {which!r}")
    if keyspace is not None:
        layout_for(keyspace)
    if key is not None:
        if keyspace is None:
            raise ValueError("keyspace: required when looking up by key")
        if not isinstance(key, str) or not key:
            raise ValueError("key: expected a non-empty string")
        found = (
            store.lookup(keyspace, key) if which == "best" else store.lookup_latest(keyspace, key)
        )
        if found is None:
            raise EntryNotFoundError(f"no readable entry for key {key!r} in keyspace {keyspace!r}")
        return as_stored(found)
    assert entry_id is not None
    if not isinstance(entry_id, str) or not entry_id:
        raise ValueError("entry_id: expected a non-empty string")
    spaces = [keyspace] if keyspace is not None else list(KEYSPACES)
    for ks in spaces:
        for info in store.entries(ks):
            if info.entry_id == entry_id:
                entry = store.read_entry(info)
                if entry is None:
                    raise EntryNotFoundError(f"entry {entry_id} is listed but unreadable (corrupt)")
                return as_stored(entry)
    where = f"keyspace {keyspace!r}" if keyspace is not None else "any keyspace"
    raise EntryNotFoundError(f"no entry with id {entry_id!r} in {where}")


def _var(name: str, dims: tuple[str, ...], data: Any, **extra: str) -> xr.Variable:
    attrs = variable_attrs(name)
    attrs.update(extra)
    return xr.Variable(dims, np.asarray(data), attrs=attrs)


def _scalar(value: Any) -> Any:
    # attrs hold plain JSON-like values; None becomes an empty string (netCDF has no null)
    return "" if value is None else value


def _entry_attrs(entry: Any) -> dict[str, Any]:
    created = np.datetime64(int(entry.created), "ns")
    return {
        "title": f"gamstore {entry.keyspace} entry {entry.entry_id}",
        "entry_id": entry.entry_id,
        "key": entry.key,
        "keyspace": entry.keyspace,
        "kind": entry.kind,
        "record_type": str(getattr(type(entry.record), "RECORD_TYPE", type(entry.record).__name__)),
        "created": str(np.datetime_as_string(created, unit="ns")) + "Z",
        "created_ns": int(entry.created),
        "producer": entry.producer,
        "nbytes": int(entry.nbytes),
        "objective": math.nan if entry.objective is None else float(entry.objective),
        "iteration": -1 if entry.iteration is None else int(entry.iteration),
    }


def _artifact_tree(
    record: Any,
) -> tuple[dict[str, xr.Variable], dict[str, Any], dict[str, xr.Dataset]]:
    g = record.global_
    desc = record.descriptor
    root = {
        "objective": _var("objective", (), g.outer_objective),
        "n_rows": _var("n_rows", (), g.n_rows),
        "converged": _var("converged", (), g.converged),
    }
    row = desc.row_population
    attrs = {
        "family": desc.family_kind,
        "descriptor_key": desc.descriptor_key().hex(),
        "response_family": desc.response_signature.family_kind,
        "n_response_channels": desc.response_signature.n_response_channels,
        "row_population_label": "" if row is None or row.label is None else row.label,
        "schema": record.schema,
        "created_unix_secs": record.created_unix_secs,
    }
    children: dict[str, xr.Dataset] = {}
    for i, t in enumerate(record.terms):
        bm = t.basis_meta
        data = {
            "rho": _var("rho", ("penalty",), t.rho_for_term),
            "beta": _var("beta", ("coef",), t.raw_beta),
        }
        if bm.knots is not None:
            data["knots"] = _var("knots", ("knot",), bm.knots, long_name="knot vector")
        if bm.constraint is not None:
            cdim = "coef" if bm.constraint.shape == t.raw_beta.shape else "constraint"
            data["constraint"] = _var(
                "constraint", (cdim,), bm.constraint, long_name="centring constraint row"
            )
        if t.joint_null_rotation is not None:
            data["joint_null_rotation"] = _var(
                "joint_null_rotation", ("rot_row", "rot_col"), t.joint_null_rotation
            )
        tattrs = {
            "term_index": i,
            "identity": t.identity.hex(),
            "role": t.role.value,
            "basis_kind": bm.kind,
        }
        for name in ("degree", "num_knots", "n_centers", "nullspace_order", "matern_nu",
                     "penalty_order", "s_scale"):  # fmt: skip
            value = getattr(bm, name)
            if value is not None:
                tattrs[name] = value
        tattrs["periodic"] = int(bm.periodic)
        children[f"terms/{i}"] = xr.Dataset(data, attrs=tattrs)
    return root, attrs, children


def _block_tree(
    record: Any,
) -> tuple[dict[str, xr.Variable], dict[str, Any], dict[str, xr.Dataset]]:
    root = {
        "rho": _var("rho", ("penalty",), record.rho),
        "n_rows": _var("n_rows", (), record.n_rows),
    }
    names = rho_labels_for_blocks([str(n) for n in record.block_names], len(record.rho))
    if names is not None:
        root["penalty"] = _var("penalty", ("penalty",), _strings(names))
    attrs = {"version": record.version, "package_version": record.package_version}
    children: dict[str, xr.Dataset] = {}
    for i, (name, dim, beta) in enumerate(
        zip(record.block_names, record.block_dims, record.block_beta, strict=False)
    ):
        data = {"beta": _var("block_beta", ("coef",), beta)}
        active = record.active_sets[i] if i < len(record.active_sets) else None
        if active is not None:
            data["active_set"] = _var(
                "active_set", ("active",), active, long_name="active constraint indices"
            )
        children[f"blocks/{i}"] = xr.Dataset(
            data, attrs={"block_index": i, "block_name": name, "block_dim": int(dim)}
        )
    inner = record.inner
    if inner is not None:
        data = {
            name: _var(name, (), getattr(inner, name), long_name=name.replace("_", " "))
            for name in (
                "log_likelihood",
                "penalty_value",
                "cycles",
                "converged",
                "block_logdet_h",
                "block_logdet_s",
            )  # fmt: skip
        }
        for name in ("block_log_lambdas", "joint_log_lambdas"):
            value = getattr(inner, name)
            if value is not None:
                data[name] = _var(
                    name, (name.rstrip("s"),), value, long_name=name.replace("_", " ")
                )
        iattrs = (
            {} if inner.solved_inner_tol is None else {"solved_inner_tol": inner.solved_inner_tol}
        )
        children["inner"] = xr.Dataset(data, attrs=iattrs)
    return root, attrs, children


def _iterate_tree(
    record: Any,
) -> tuple[dict[str, xr.Variable], dict[str, Any], dict[str, xr.Dataset]]:
    root = {
        "rho": _var("rho", ("penalty",), record.rho),
        "beta": _var("beta", ("coef",), record.beta),
        "cost": _var("objective", (), record.cost, long_name="objective at rho (cost)"),
        "eval_id": _var("eval_id", (), record.eval_id, long_name="evaluation counter"),
    }
    if record.hessian_dim:
        root["hessian"] = _var(
            "hessian", ("penalty", "penalty_2"), record.hessian, long_name="outer Hessian"
        )
    return root, {"schema": record.schema}, {}


def _warm_start_tree(
    record: Any,
) -> tuple[dict[str, xr.Variable], dict[str, Any], dict[str, xr.Dataset]]:
    root = {
        "rho": _var("rho", ("penalty",), record.rho),
        "beta": _var("beta", ("coef",), record.beta),
        "n_rows": _var("n_rows", (), record.n_rows),
        "n_cols": _var("n_cols", (), record.n_cols, long_name="number of columns"),
        "iterations": _var("iterations", (), record.last_inner_iters),
        "converged": _var("converged", (), record.last_inner_converged),
    }
    if record.prev_rho is not None:
        root["prev_rho"] = _var("prev_rho", ("penalty",), record.prev_rho, long_name="previous rho")
    if record.prev_beta is not None:
        root["prev_beta"] = _var(
            "prev_beta", ("coef",), record.prev_beta, long_name="previous beta"
        )
    attrs = {"version": record.version, "package_version": record.package_version}
    return root, attrs, {}


def _generic_tree(
    record: Any,
) -> tuple[dict[str, xr.Variable], dict[str, Any], dict[str, xr.Dataset]]:
    # unknown record type: one node per array, named by its storage path
    parts = record.to_parts()
    children = {
        name: xr.Dataset({"values": xr.Variable(part.dims, np.asarray(part.data))})
        for name, part in parts.arrays.items()
    }
    return {}, {}, children


def _strings(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _name_terms(children: dict[str, xr.Dataset], prov: Any) -> None:
    # an artifact names no terms; the fit that wrote it recorded its blocks in provenance
    terms = prov.get("terms") if isinstance(prov, Mapping) else None
    nodes = [children[k] for k in children if k.startswith("terms/")]
    if not isinstance(terms, list) or len(terms) != len(nodes):
        return
    for name, node in zip(terms, nodes, strict=True):
        label = block_label(str(name))
        node.attrs["term_name"] = label
        names = block_rho_labels(label, node.sizes.get("penalty", 0))
        if names:
            node.coords["penalty"] = _var("penalty", ("penalty",), _strings(names))


_TREES = {
    "fit_artifact": _artifact_tree,
    "block_warm_start": _block_tree,
    "iterate": _iterate_tree,
    "warm_start": _warm_start_tree,
}


def entry_tree(entry: Any) -> xr.DataTree:
    """Build the DataTree of one decoded :class:`gamstore.store.Entry` (no I/O)."""
    rtype = getattr(type(entry.record), "RECORD_TYPE", None)
    build = _TREES.get(rtype, _generic_tree) if isinstance(rtype, str) else _generic_tree
    root_vars, rattrs, children = build(entry.record)
    prov = getattr(entry, "provenance", None)
    if rtype == "fit_artifact":
        _name_terms(children, prov)
    elif rtype in ("iterate", "warm_start") and "rho" in root_vars:
        # no block names in the record: the fit's terms from its provenance
        terms = prov.get("terms") if isinstance(prov, Mapping) else None
        if isinstance(terms, list) and all(isinstance(t, str) for t in terms):
            names = rho_labels_for_blocks(terms, root_vars["rho"].size)
            if names is not None:
                root_vars["penalty"] = _var("penalty", ("penalty",), _strings(names))
    attrs = _entry_attrs(entry)
    attrs.update({k: _scalar(v) for k, v in rattrs.items()})
    tree: dict[str, xr.Dataset] = {"/": xr.Dataset(root_vars, attrs=attrs)}
    tree.update({f"/{path}": ds for path, ds in children.items()})
    return xr.DataTree.from_dict(tree)


def open_entry(
    url_or_store: Any,
    keyspace: str = "artifact",
    key: str | None = None,
    *,
    entry_id: str | None = None,
    which: str = "best",
    storage_options: Mapping[str, Any] | None = None,
) -> xr.DataTree:
    """Open one stored entry as a DataTree.

    Parameters
    ----------
    url_or_store : str, os.PathLike or Store
        Store URL or an open store.
    keyspace : str
        Keyspace of the entry (``artifact``, ``block``, ``outer``, ``inner``, ``from``).
    key : str, optional
        The caller's key string; the ``best`` (or ``latest``) entry of that key is opened.
    entry_id : str, optional
        Open this exact entry instead (searched in ``keyspace``).
    which : {"best", "latest"}
        Lookup rule for ``key``.
    storage_options : mapping, optional
        fsspec options for remote URLs.

    Returns
    -------
    xarray.DataTree
        Root attributes: ``entry_id``, ``key``, ``keyspace``, ``kind``, ``record_type``,
        ``created`` (ISO 8601, UTC), ``objective``, ``iteration``, ``producer``, ``nbytes``
        and the record's own metadata. Fit artifacts have one child per term under
        ``terms/<i>`` (``rho(penalty)``, ``beta(coef)``, ...); block records one per block
        under ``blocks/<i>`` plus ``inner``; iterate and inner records keep ``rho`` and
        ``beta`` at the root.

    Raises
    ------
    ValueError
        Bad arguments or URL.
    EntryNotFoundError
        No readable entry matches (a ``LookupError``).
    """
    store = resolve_store(url_or_store, storage_options=storage_options)
    entry = find_entry(store, keyspace, key, entry_id=entry_id, which=which)
    return entry_tree(entry)
