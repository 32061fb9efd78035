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

from gamstore.records import BlockWarmStartRecord, InnerSummary, normalize_active_sets
from gamstore.warmstart.capability import StoreArg, warm_store
from gamstore.warmstart.keys import block_key, check_specs
from gamstore.warmstart.records_io import load_block_record, store_block_record
from gamstore.warmstart.specs import BlockSpec, FitOptions, WarmStartFamily, cache_shape

__all__ = [
    "SATURATION_THRESHOLD",
    "BlockWarmStart",
    "CachedInner",
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
    """A warm start for a blockwise fit (the seed's ``ConstrainedWarmStart``).

    Attributes
    ----------
    rho : ndarray, shape (n_outer,)
        Outer log smoothing parameters.
    block_beta : list of ndarray
        Per-block coefficients in the solver's (reduced) coordinates, ``len == n_blocks``.
    active_sets : list of (ndarray of int or None)
        Per-block active constraint sets; None when there is none. An empty list means
        "None for every block".
    cached_inner : CachedInner or None
        The cached inner mode; None for a cross-fit transfer or when not available.
    """

    rho: np.ndarray
    block_beta: list[np.ndarray]
    active_sets: list[np.ndarray | None] = field(default_factory=list)
    cached_inner: CachedInner | None = None


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
    record = load_block_record(ws, key)
    if record is None:
        return key, None
    n_rows, names, dims = cache_shape(blocks)
    if not record.is_compatible(
        key, n_rows, names, dims, int(rho_len), rho_convention=rho_convention
    ):
        _log.info("warm-start block record %s incompatible with this fit; starting cold", key)
        return key, None
    active = [None if a is None else np.array(a) for a in normalize_active_sets(record.active_sets)]
    cached = None if record.inner is None else CachedInner.from_summary(record.inner)
    status = "missing" if cached is None else ("converged" if cached.converged else "partial")
    _log.info("warm-start restored block record key=%s inner=%s", key, status)
    return key, BlockWarmStart(
        rho=np.array(record.rho),
        block_beta=[np.array(b) for b in record.block_beta],
        active_sets=active,
        cached_inner=cached,
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
    inner = None if warm_start.cached_inner is None else warm_start.cached_inner.summary()
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
        )
    except (TypeError, ValueError) as exc:
        _log.debug("warm-start block record %s not persisted: %s", key, exc)
        return False
    return store_block_record(ws, record)
