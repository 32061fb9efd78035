"""Where a blockwise fit starts: the exact block record first, then a cross-fit artifact
(lifecycle steps 2-4 of spec §1; checklist 66, 67).

:func:`plan_warm_start` is the one call a fitter needs before its outer loop::

    plan = plan_warm_start(store, family, specs, options, rho0, gauge=gauge)
    rho = plan.rho0                        # warm ρ, or a copy of the default
    if not plan.skip_seed_screening:
        rho = screen_seeds(rho)            # multi-seed screening only for a cold start
    ...
    store_block_warm_start(store, plan.key, specs, current)   # after each evaluation

Rules: the cross-fit transfer is attempted only when a store is configured (so the family
has a block key), the exact record missed, and ``rho0`` is non-empty; its result replaces
``rho0`` only when the lengths and block widths match and every value is finite. When any warm
start is present, seed screening is skipped (a performance rule; the optimum is the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gamstore.gauge import Gauge
from gamstore.transfer import TransferConfig
from gamstore.warmstart.artifacts import consume_fit_artifact
from gamstore.warmstart.blocks import BlockWarmStart, load_block_warm_start
from gamstore.warmstart.capability import StoreArg, warm_store
from gamstore.warmstart.keys import check_specs
from gamstore.warmstart.specs import BlockSpec, FitOptions, WarmStartFamily, physical_to_outer

__all__ = ["WarmPlan", "plan_warm_start"]


@dataclass
class WarmPlan:
    """The outcome of :func:`plan_warm_start`.

    Attributes
    ----------
    key : str or None
        The block key (None without a store); pass it to ``store_block_warm_start``.
    warm : BlockWarmStart or None
        The warm start to seed the inner solver with, or None for a cold start.
    source : {"cold", "exact", "cross-fit"}
        Where ``warm`` came from.
    rho0 : ndarray
        Starting ρ: the warm ρ, or a copy of the default.
    """

    key: str | None
    warm: BlockWarmStart | None
    source: Literal["cold", "exact", "cross-fit"]
    rho0: np.ndarray

    @property
    def skip_seed_screening(self) -> bool:
        """True when a warm start is present: go straight to the outer solver."""
        return self.warm is not None


def _fits(warm: BlockWarmStart, rho0: np.ndarray, specs: Sequence[BlockSpec]) -> bool:
    rho = np.asarray(warm.rho)
    if rho.shape != rho0.shape or not np.isfinite(rho).all():
        return False
    if len(warm.block_beta) != len(specs):
        return False
    return all(
        np.asarray(b).shape == (s.width,) and np.isfinite(b).all()
        for b, s in zip(warm.block_beta, specs, strict=True)
    )


def plan_warm_start(
    store: StoreArg,
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    options: FitOptions,
    rho0: Any,
    *,
    gauge: Gauge | None = None,
    physical_to_outer_map: Sequence[int | None] | None = None,
    config: TransferConfig | None = None,
    column_means: Sequence[Any | None] | None = None,
    intercept_column: int | None = None,
) -> WarmPlan:
    """Find the best available warm start for a blockwise fit.

    Parameters
    ----------
    store : StoreArg
        None: a cold, disk-silent plan (no key; the family need not fingerprint itself).
    family, specs, options
        As for :func:`gamstore.warmstart.keys.block_key`.
    rho0 : array_like, shape (n_outer,)
        The default starting ρ. Never modified.
    gauge : Gauge, optional
        This fit's gauge, for projecting a parent's β (ρ only without it).
    physical_to_outer_map : sequence of (int or None), optional
        Default: :func:`gamstore.warmstart.specs.physical_to_outer` of ``specs``.
    config, column_means, intercept_column
        Passed to :func:`gamstore.warmstart.artifacts.consume_fit_artifact`.

    Returns
    -------
    WarmPlan

    Raises
    ------
    UnsupportedFamilyError
        When a store is configured but the family cannot fingerprint itself.
    ValueError
        If ``rho0`` is not a 1-D vector.
    """
    rho_default = np.array(rho0, dtype=np.float64, copy=True)
    if rho_default.ndim != 1:
        raise ValueError(f"rho0: expected a 1-D vector (n_outer,), got shape {rho_default.shape}")
    ws = warm_store(store)
    if ws is None:
        return WarmPlan(None, None, "cold", rho_default)
    blocks = check_specs(specs)
    key, warm = load_block_warm_start(ws, family, blocks, options, rho_default.shape[0])
    if warm is not None and _fits(warm, rho_default, blocks):
        return WarmPlan(key, warm, "exact", np.array(warm.rho, dtype=np.float64))
    if rho_default.size == 0:
        return WarmPlan(key, None, "cold", rho_default)
    p2o = physical_to_outer(blocks) if physical_to_outer_map is None else physical_to_outer_map
    cross = consume_fit_artifact(
        ws,
        family,
        blocks,
        gauge,
        p2o,
        rho_default,
        options=options,
        config=config,
        column_means=column_means,
        intercept_column=intercept_column,
    )
    if cross is not None and _fits(cross, rho_default, blocks):
        return WarmPlan(key, cross, "cross-fit", np.array(cross.rho, dtype=np.float64))
    return WarmPlan(key, None, "cold", rho_default)
