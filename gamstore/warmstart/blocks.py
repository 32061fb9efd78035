"""Exact block warm start (record B): the seed's load/store of the custom-family glue.

:func:`load_block_warm_start` derives the block key, loads record B and accepts it only when
it is compatible with the current fit (spec §5.2: version, key, rows, block names and widths,
ρ length, finite ρ and β, one active-set entry per block, valid inner summary). Active sets
come back sorted, deduplicated and with empty sets as None; the restored cached inner mode
carries no KKT residual or active-constraint data (the next solve rebuilds them).

:func:`store_block_warm_start` writes the current (ρ, β, active sets, inner summary) after an
outer evaluation. It skips (returns False) when shapes mismatch, any value is non-finite, or
the saturation gate trips: by default no record is persisted while any ``|ρ_i| ≥ 9``, the
historical gate of the seed (such iterates sit at the optimizer's box and make poor seeds).
Pass ``saturation_threshold=None`` to disable it (the current upstream behaviour, which caches
β with a boundary ρ instead) or another positive value to move it. The inner summary is
stored only when its log-likelihood, penalty and both log-determinants are finite.

All arrays passed in are only read; the warm start returned by a load holds fresh, writable
copies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gamstore.records import (
    BlockWarmStartRecord,
    InnerSummary,
    ResultSummary,
    normalize_active_sets,
)
from gamstore.warmstart.capability import StoreArg, WarmStartStore, warm_store
from gamstore.warmstart.keys import block_key, check_specs
from gamstore.warmstart.records_io import BLOCK_KEYSPACE, read_record, store_block_record
from gamstore.warmstart.specs import BlockSpec, FitOptions, WarmStartFamily, cache_shape

__all__ = [
    "SATURATION_THRESHOLD",
    "BlockWarmStart",
    "CachedInner",
    "exact_state",
    "load_block_warm_start",
    "normalize_active_sets",
    "store_block_warm_start",
]

_log = logging.getLogger("gamstore.warmstart")

#: default saturation gate: no block record is persisted while any |ρ_i| ≥ this
SATURATION_THRESHOLD = 9.0


@dataclass
class CachedInner:
    """The inner mode a warm start carries (the seed's ``CachedInnerMode``).

    The first six fields (plus the optional smoothing state) are persisted when finite.
    ``kkt_residual`` and ``active_constraints`` are in-memory diagnostics of a live solve;
    they are never persisted, and a restored mode always has them as None.
    """

    log_likelihood: float
    penalty_value: float
    cycles: int
    converged: bool
    block_logdet_h: float
    block_logdet_s: float
    solved_inner_tol: float | None = None
    block_log_lambdas: np.ndarray | None = None
    joint_log_lambdas: np.ndarray | None = None
    kkt_residual: float | None = None
    active_constraints: np.ndarray | None = None

    def summary(self) -> InnerSummary | None:
        """The persistable summary, or None when a core value is not finite."""
        try:
            return InnerSummary.persistable(
                log_likelihood=float(self.log_likelihood),
                penalty_value=float(self.penalty_value),
                cycles=int(self.cycles),
                converged=bool(self.converged),
                block_logdet_h=float(self.block_logdet_h),
                block_logdet_s=float(self.block_logdet_s),
                solved_inner_tol=self.solved_inner_tol,
                block_log_lambdas=self.block_log_lambdas,
                joint_log_lambdas=self.joint_log_lambdas,
            )
        except (TypeError, ValueError) as exc:
            _log.debug("inner summary not persisted: %s", exc)
            return None

    @classmethod
    def from_summary(cls, s: InnerSummary) -> CachedInner:
        """A restored mode: the summary's values, no KKT or active-constraint data."""
        return cls(
            log_likelihood=s.log_likelihood,
            penalty_value=s.penalty_value,
            cycles=s.cycles,
            converged=s.converged,
            block_logdet_h=s.block_logdet_h,
            block_logdet_s=s.block_logdet_s,
            solved_inner_tol=s.solved_inner_tol,
            block_log_lambdas=None if s.block_log_lambdas is None else s.block_log_lambdas.copy(),
            joint_log_lambdas=None if s.joint_log_lambdas is None else s.joint_log_lambdas.copy(),
        )


@dataclass
class BlockWarmStart:
    """A warm start for a blockwise fit: the one state type from the store to the fitter.

    The orchestrator (:mod:`gamstore.warmstart.plan`) builds it straight from the stored
    record (record B, an outer-session payload or a cross-fit transfer) without copying the
    record's (read-only) arrays, and the fitter starts from it as is.

    Attributes
    ----------
    rho : ndarray, shape (n_outer,)
        Outer log smoothing parameters.
    block_beta : list of ndarray
        Per-block coefficients in the solver's (reduced) coordinates, ``len == n_blocks``;
        empty for a ρ-only start.
    active_sets : list of (ndarray of int or None)
        Per-block active constraint sets; None when there is none. An empty list means
        "None for every block".
    cached_inner : CachedInner, InnerSummary or None
        The cached inner mode (a restored record carries its
        :class:`~gamstore.records.InnerSummary` as is); None for a cross-fit transfer or when
        not available. Both expose ``cycles`` and ``converged``.
    source : str
        Where it came from: ``"exact"`` (block record), ``"session"`` (outer session),
        ``"cross-fit"`` (fit artifact) or ``"seed"`` (an adapter's row-free seed key).
    beta : ndarray or None
        Flat β when the source stores it flat (a session payload, an adapter seed);
        see :meth:`flat_beta`.
    hessian : ndarray or None
        A stored outer Hessian (square, finite; seeds only).
    final : bool
        Resumed from a stored session ``final`` (nothing new to finalize without a step).
    seed : bool
        A session of *another* fit of the same model (the row-free seed key).
    parent_rows : int or None
        Rows of the fit a cross-fit start came from.
    """

    rho: np.ndarray
    block_beta: list[np.ndarray]
    active_sets: list[np.ndarray | None] = field(default_factory=list)
    cached_inner: CachedInner | InnerSummary | None = None
    source: str = "exact"
    beta: np.ndarray | None = None
    hessian: np.ndarray | None = None
    final: bool = False
    seed: bool = False
    parent_rows: int | None = None
    ext: np.ndarray | None = None  # extended-family parameters (nb: [log theta]) or None
    # what the converged fit reported (records.ResultSummary), persisted with the record
    result: ResultSummary | None = None

    def flat_beta(self) -> np.ndarray | None:
        """β as one vector (``beta``, else the blocks concatenated), or None when ρ-only."""
        if self.beta is not None:
            return self.beta
        if not self.block_beta:
            return None
        return np.concatenate([np.asarray(b, dtype=np.float64) for b in self.block_beta])


def _shape_ok(specs: Sequence[BlockSpec], warm: BlockWarmStart) -> str | None:
    """Why ``warm`` cannot be persisted for ``specs`` (None when it can)."""
    rho = np.asarray(warm.rho)
    if rho.ndim != 1 or rho.dtype.kind not in "fiu":
        return f"rho: expected a 1-D real vector, got shape {rho.shape}"
    if not np.isfinite(rho).all():
        return "rho: non-finite"
    if len(warm.block_beta) != len(specs):
        return f"block_beta: expected {len(specs)} blocks, got {len(warm.block_beta)}"
    for i, (beta, spec) in enumerate(zip(warm.block_beta, specs, strict=True)):
        b = np.asarray(beta)
        if b.ndim != 1 or b.shape[0] != spec.width or b.dtype.kind not in "fiu":
            return f"block_beta[{i}]: expected shape ({spec.width},), got {b.shape}"
        if not np.isfinite(b).all():
            return f"block_beta[{i}]: non-finite"
    if warm.active_sets and len(warm.active_sets) != len(specs):
        return f"active_sets: expected {len(specs)} entries, got {len(warm.active_sets)}"
    return None


def load_block_warm_start(
    store: StoreArg,
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    options: FitOptions,
    rho_len: int,
    *,
    rho_convention: str = "mgcv",
) -> tuple[str | None, BlockWarmStart | None]:
    """Exact resume from record B (lifecycle step 2).

    Parameters
    ----------
    store : StoreArg
        None for a disk-silent fit (then nothing is computed and ``(None, None)`` returned).
    family, specs, options
        As in :func:`gamstore.warmstart.keys.block_key`.
    rho_len : int
        Number of outer smoothing parameters of the current fit.
    rho_convention : str
        What the fitter's ρ means (see :data:`gamstore.records.RHO_CONVENTIONS`); a record
        written under another convention is a miss.

    Returns
    -------
    key : str or None
        The block key (pass it to :func:`store_block_warm_start`); None without a store.
    warm : BlockWarmStart or None
        The restored warm start, or None on a miss / incompatible record.

    Raises
    ------
    UnsupportedFamilyError
        When a store is configured but the family cannot fingerprint itself.
    """
    ws = warm_store(store)
    if ws is None:
        return None, None
    blocks = check_specs(specs)
    key = block_key(family, blocks, options)
    warm = exact_state(ws, key, blocks, int(rho_len), rho_convention)
    if warm is None:
        return key, None
    # the public load hands out fresh, writable copies (the orchestrator's fitter path
    # starts from the record's own read-only arrays instead)
    inner = warm.cached_inner
    return key, BlockWarmStart(
        rho=np.array(warm.rho),
        block_beta=[np.array(b) for b in warm.block_beta],
        active_sets=[None if a is None else np.array(a) for a in warm.active_sets],
        cached_inner=CachedInner.from_summary(inner) if isinstance(inner, InnerSummary) else None,
    )


def exact_state(
    ws: WarmStartStore, key: str, blocks: Sequence[BlockSpec], rho_len: int, rho_convention: str
) -> BlockWarmStart | None:
    """Record B under ``key`` as a :class:`BlockWarmStart` over the record's own arrays.

    None on a miss or an incompatible record (logged). ``blocks`` must be checked.
    """
    record = read_record(ws, BLOCK_KEYSPACE, key, BlockWarmStartRecord)
    if record is None:
        return None
    n_rows, names, dims = cache_shape(blocks)
    if not record.is_compatible(key, n_rows, names, dims, rho_len, rho_convention=rho_convention):
        _log.info("warm-start block record %s incompatible with this fit; starting cold", key)
        return None
    inner = record.inner
    status = "missing" if inner is None else ("converged" if inner.converged else "partial")
    _log.info("warm-start restored block record key=%s inner=%s", key, status)
    return BlockWarmStart(
        rho=record.rho,
        block_beta=list(record.block_beta),
        active_sets=list(normalize_active_sets(record.active_sets)),
        cached_inner=inner,
        ext=record.ext,
    )


def store_block_warm_start(
    store: StoreArg,
    key: str | None,
    specs: Sequence[BlockSpec],
    warm_start: BlockWarmStart,
    *,
    saturation_threshold: float | None = SATURATION_THRESHOLD,
) -> bool:
    """Persist the current block warm start under ``key`` (lifecycle step 6).

    Every call writes a fresh entry (the newest is loaded next time; eviction bounds the
    total). One call with the converged state at the end of a fit is enough for the next
    identical fit; calling it after every derivative-bearing outer evaluation, as the seed
    does, also leaves a restart point if the fit dies, at one entry write per call (see
    ``bench/bench_warmstart.py`` for the cost).

    Parameters
    ----------
    store : StoreArg
        None: no-op.
    key : str or None
        The key returned by :func:`load_block_warm_start`; None: no-op.
    specs : sequence of BlockSpec
        The fit's blocks (for the record's shape).
    warm_start : BlockWarmStart
        Current ρ, per-block β, active sets and cached inner mode. Only read.
    saturation_threshold : float or None
        Skip persisting when any ``|ρ_i| ≥ saturation_threshold`` (default 9, the seed's
        gate); None disables the gate.

    Returns
    -------
    bool
        True when a record was written.
    """
    ws = warm_store(store)
    if ws is None or key is None:
        return False
    blocks = check_specs(specs)
    problem = _shape_ok(blocks, warm_start)
    if problem is not None:
        _log.debug("warm-start block record %s not persisted: %s", key, problem)
        return False
    rho = np.asarray(warm_start.rho, dtype=np.float64)
    if saturation_threshold is not None and rho.size:
        inf_norm = float(np.max(np.abs(rho)))
        if inf_norm >= saturation_threshold:
            _log.debug(
                "warm-start block record %s not persisted: rho saturated "
                "(threshold ±%.1f, |rho|_inf=%.3e)",
                key,
                saturation_threshold,
                inf_norm,
            )
            return False
    n_rows, names, dims = cache_shape(blocks)
    active = warm_start.active_sets or [None] * len(blocks)
    cached = warm_start.cached_inner
    inner = cached if isinstance(cached, InnerSummary) or cached is None else cached.summary()
    now = int(time.time())  # created == updated, as the seed writes them
    try:
        record = BlockWarmStartRecord(
            key=key,
            n_rows=n_rows,
            block_names=tuple(names),
            block_dims=tuple(dims),
            rho=rho,
            block_beta=tuple(np.asarray(b, dtype=np.float64) for b in warm_start.block_beta),
            active_sets=tuple(active),
            inner=inner,
            created_unix_secs=now,
            updated_unix_secs=now,
            ext=warm_start.ext,
            result=warm_start.result,
        )
    except (TypeError, ValueError) as exc:
        _log.debug("warm-start block record %s not persisted: %s", key, exc)
        return False
    return store_block_record(ws, record)
