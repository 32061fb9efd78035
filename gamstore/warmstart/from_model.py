"""Explicit resume from a saved model: the ``from`` keyspace (spec §4.6, ``warm_start_from``).

A caller that holds a fitted model's outer point (ρ and the flat β produced at it) saves it
with :func:`save_resume_point`; a later fit of the same formula loads it with
:func:`load_resume_point` and starts its outer search there.

* **Key.** The formula with all whitespace removed (``"y ~ s(x0) + s(x1)"`` and
  ``"y~s(x0)+s(x1)"`` are the same key); the store maps it to its folder in the ``from``
  keyspace and compares the key string on load.
* **Payload.** One :class:`~gamstore.records.IteratePayload` (ρ, β, no Hessian) written as
  a ``final`` entry, iteration 0; older points of the same formula are then removed, so one
  entry remains (the loader reads the newest either way). A resume point carries no objective: the
  resuming fit recomputes its criterion at ρ (spec §4.4, "resume and recertify"), so the
  payload's ``cost`` is 0.0 and the entry objective is null.
* **Dimensions.** The loader states the ρ and β dimensions of the fit it is about to start;
  a stored point of other dimensions is refused by name with a ``ValueError`` (a resume was
  asked for explicitly, so a silent cold start would hide the mistake).
* **Best effort.** With no store, :func:`save_resume_point` writes nothing and returns False
  and :func:`load_resume_point` returns None; a storage problem does the same (logged once by
  the store capability); a missing, corrupt or foreign entry loads as None. Bad arguments
  (a formula that is not a non-empty string, non-finite ρ or β) are a ``TypeError`` or
  ``ValueError`` naming the argument.

The ``store`` argument is anything :func:`gamstore.warmstart.capability.warm_store` accepts
(None, a URL or path, a :class:`gamstore.store.Store`, a ``WarmStartStore``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from gamstore.fingerprint import key_fingerprint
from gamstore.records import (
    ITERATE_PAYLOAD_SCHEMA,
    FloatArray,
    IteratePayload,
    as_count,
    as_float_vector,
)
from gamstore.warmstart.capability import StoreArg, warm_store

__all__ = [
    "FROM_KEYSPACE",
    "ResumePoint",
    "formula_key",
    "load_resume_point",
    "save_resume_point",
]

_log = logging.getLogger("gamstore.warmstart")

#: Keyspace of explicit resume points (disjoint from ``outer`` by construction).
FROM_KEYSPACE = "from"

_WHITESPACE = re.compile(r"\s+")


def formula_key(formula: str) -> str:
    """The key string of ``formula``: the formula with all whitespace removed.

    Parameters
    ----------
    formula : str
        A model formula, e.g. ``"y ~ s(x0) + s(x1, k=12)"``.

    Returns
    -------
    str
        ``"y~s(x0)+s(x1,k=12)"``.

    Raises
    ------
    TypeError
        If ``formula`` is not a str.
    ValueError
        If nothing but whitespace is left.
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula: expected a str, got {type(formula).__name__}")
    key = _WHITESPACE.sub("", str(formula))
    if not key:
        raise ValueError("formula: expected a non-empty model formula, got only whitespace")
    return key


@dataclass(eq=False)
class ResumePoint:
    """A stored outer point to resume from (spec §4.6's required warm start).

    Attributes
    ----------
    formula : str
        The formula key (whitespace removed) the point was stored under.
    rho : numpy.ndarray
        Read-only float64 vector of length :attr:`rho_dim`, finite.
    beta : numpy.ndarray
        Read-only flat float64 coefficients produced at exactly ``rho``, length
        :attr:`beta_dim`, finite.
    created : int
        Creation time of the entry, ns since the epoch.
    consumed : bool
        Set by :meth:`mark_consumed` when a fit attached the point (spec §4.6: the attaching
        route marks it consumed, so an unused explicit resume can be reported).
    """

    formula: str
    rho: FloatArray
    beta: FloatArray
    created: int = 0
    consumed: bool = field(default=False)

    @property
    def rho_dim(self) -> int:
        """Number of smoothing parameters."""
        return int(self.rho.shape[0])

    @property
    def beta_dim(self) -> int:
        """Number of coefficients."""
        return int(self.beta.shape[0])

    def mark_consumed(self) -> None:
        """Record that a fit started from this point."""
        self.consumed = True


def _check_point(rho: ArrayLike, beta: ArrayLike) -> tuple[FloatArray, FloatArray]:
    rho_v = as_float_vector(rho, "rho")
    beta_v = as_float_vector(beta, "beta")
    if beta_v.shape[0] == 0:
        raise ValueError("beta: expected the model's flat coefficients, got an empty vector")
    return rho_v, beta_v


def save_resume_point(store: StoreArg, formula: str, rho: ArrayLike, beta: ArrayLike) -> bool:
    """Save a model's outer point ``(rho, beta)`` as the resume point of ``formula``.

    Parameters
    ----------
    store : None, str, os.PathLike, Store or WarmStartStore
        Where to write; None writes nothing.
    formula : str
        The model formula; whitespace is ignored.
    rho : array_like
        Log smoothing parameters, 1-D and finite (an empty vector for a model without
        smooths is allowed).
    beta : array_like
        The flat coefficients produced at exactly ``rho``; 1-D, non-empty, finite.

    Returns
    -------
    bool
        True when the entry was written; False with no store, a read-only store or a storage
        failure (never raises for those).

    Raises
    ------
    TypeError, ValueError
        Naming ``formula``, ``rho`` or ``beta`` when it is malformed.
    """
    key = formula_key(formula)
    rho_v, beta_v = _check_point(rho, beta)
    ws = warm_store(store)
    if ws is None:
        return False
    payload = IteratePayload.encode(rho_v, 0.0, 0, beta=beta_v)
    entry_id = ws.save(FROM_KEYSPACE, key, payload, objective=None, iteration=0, kind="final")
    if entry_id is None:
        return False
    _prune_older(ws, key, entry_id)
    _log.debug("resume point saved for %s (rho_dim=%d)", key, rho_v.shape[0])
    return True


def _prune_older(ws: Any, key: str, entry_id: str) -> None:
    """Delete the resume points of ``key`` older than ``entry_id``, so one entry remains.

    Best effort: a leftover older point is harmless (the loader takes the newest), so any
    failure is only logged. Newer entries (another writer racing us) are left alone.
    """
    try:
        st = ws.store()
        if st is None:
            return
        folder = key_fingerprint(FROM_KEYSPACE, key).hex()
        infos = [i for i in st.entries(FROM_KEYSPACE) if i.folder == folder]
        ours = next((i for i in infos if i.entry_id == entry_id), None)
        if ours is None:
            return
        for info in infos:
            if (info.created, info.entry_id) < (ours.created, ours.entry_id):
                st.delete_entry(info)
    except Exception as exc:  # noqa: BLE001 - clutter only; the new point is written
        _log.debug("superseded resume points for %s not removed: %s", key, exc)


def _decode(entry: Any, key: str) -> tuple[IteratePayload, int] | None:
    """The entry's payload when it is a well-formed resume point of ``key``, else None."""
    payload = getattr(entry, "record", None)
    if not isinstance(payload, IteratePayload):
        _log.debug("resume point for %s is not an IteratePayload; ignored", key)
        return None
    if getattr(entry, "key", key) != key:  # the store compares it too; cheap to be sure
        _log.debug("resume point key mismatch for %s; ignored", key)
        return None
    if payload.schema != ITERATE_PAYLOAD_SCHEMA:
        _log.debug("resume point for %s has payload schema %d; ignored", key, payload.schema)
        return None
    if not (np.isfinite(payload.rho).all() and np.isfinite(payload.beta).all()):
        _log.debug("resume point for %s has non-finite values; ignored", key)
        return None
    if payload.beta.shape[0] == 0:
        _log.debug("resume point for %s carries no coefficients; ignored", key)
        return None
    created = getattr(entry, "created", 0)
    return payload, created if isinstance(created, int) and created >= 0 else 0


def load_resume_point(
    store: StoreArg, formula: str, rho_dim: int, beta_dim: int
) -> ResumePoint | None:
    """Load the newest resume point saved for ``formula``.

    Parameters
    ----------
    store : None, str, os.PathLike, Store or WarmStartStore
        Where to read; None reads nothing.
    formula : str
        The model formula; compared with all whitespace removed.
    rho_dim, beta_dim : int
        Dimensions of ρ and flat β of the fit about to resume.

    Returns
    -------
    ResumePoint or None
        None with no store, on a miss, or when the entry is corrupt, foreign or not finite.

    Raises
    ------
    ValueError
        When the stored point has another ρ or β dimension (naming ``rho_dim`` or
        ``beta_dim`` and both values), or for a malformed argument.
    TypeError
        For an argument of the wrong type.
    """
    key = formula_key(formula)
    n_rho = as_count(rho_dim, "rho_dim")
    n_beta = as_count(beta_dim, "beta_dim")
    ws = warm_store(store)
    if ws is None:
        return None
    entry = ws.lookup_latest(FROM_KEYSPACE, key)
    if entry is None:
        return None
    decoded = _decode(entry, key)
    if decoded is None:
        return None
    payload, created = decoded
    if payload.rho.shape[0] != n_rho:
        raise ValueError(
            f"rho_dim: the resume point saved for {key!r} has {payload.rho.shape[0]} "
            f"smoothing parameters, the fit expects {n_rho}"
        )
    if payload.beta.shape[0] != n_beta:
        raise ValueError(
            f"beta_dim: the resume point saved for {key!r} has {payload.beta.shape[0]} "
            f"coefficients, the fit expects {n_beta}"
        )
    return ResumePoint(formula=key, rho=payload.rho, beta=payload.beta, created=created)
