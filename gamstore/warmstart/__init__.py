"""The warm-start layer: what a fitter calls to start near a previous optimum.

It ports the seeds' persistence glue onto :mod:`gamstore.store`: block-record keys
(``"cf-<16 hex>"``), record load/store with a 16 MiB cap, the block warm start with its
compatibility checks and saturation gate, the inner iteration cap, cross-fit artifacts for
leave-one-subject-out folds, and outer-iterate sessions. Everything here is best-effort: with
no store every call is a no-op, and a storage problem returns None/False, logs once and never
raises into a fit. The only error is a configuration error: a store is configured but the
family cannot fingerprint its likelihood (:class:`UnsupportedFamilyError`).

Modules (one concept each): :mod:`~gamstore.warmstart.specs` (block/penalty/option specs),
:mod:`~gamstore.warmstart.keys` (key derivation), :mod:`~gamstore.warmstart.inner_cap`,
:mod:`~gamstore.warmstart.capability` (the memoized per-root store wrapper),
:mod:`~gamstore.warmstart.records_io` (records A and B), :mod:`~gamstore.warmstart.blocks`
(block warm start), :mod:`~gamstore.warmstart.artifacts` (cross-fit capture/consume),
:mod:`~gamstore.warmstart.plan` (the orchestrator every fitter goes through: exact record,
outer session, cross-fit artifact, and what to save),
:mod:`~gamstore.warmstart.sessions` (outer iterates), :mod:`~gamstore.warmstart.from_model`
(explicit resume points, keyspace ``from``), :mod:`~gamstore.warmstart.background` (saves
deferred to a bounded background writer inside ``deferred_saves``, as ``run_loso`` does, and
side-by-side reads on object stores).

Example
-------
A fitter's outline; runnable as is (``tests/test_warmstart_plan.py`` executes it)::

    import numpy as np
    from gamstore import warmstart as ws
    from gamstore.gauge import Gauge

    class Poisson:                                    # any object with these two members
        name = "poisson"
        def __init__(self, y): self.y = y
        def warm_start_fingerprint(self, specs, options):
            return ws.likelihood_fingerprint(self.name, {"y": self.y})

    rng = np.random.default_rng(0)
    X0, X1, y = np.ones((50, 1)), rng.normal(size=(50, 4)), rng.poisson(2.0, 50) * 1.0
    fam = Poisson(y)
    specs = [ws.BlockSpec("(parametric)", X0),
             ws.BlockSpec("s(x0)", X1, penalties=[ws.DensePenalty(np.eye(4))],
                          nullspace_dims=[0])]
    opts = ws.FitOptions(inner_max_cycles=50)
    gauge = Gauge.identity([1, 4])                    # raw = T·reduced (+ shift)
    store = ws.warm_store("memory://docs-example")    # or a path / Store; None = disk-silent

    plan = ws.plan_warm_start(store, fam, specs, opts, np.zeros(1), gauge=gauge)
    # plan.source: "cold" | "exact" | "cross-fit"; plan.rho0: where to start;
    # plan.skip_seed_screening: True when warm
    sess = ws.OuterSession.open(store, fam, specs, opts, block_key=plan.key)
    start = sess.begin(rho_dim=1)                     # cold | exact-final | seed
    rho = start.rho if start.warm else plan.rho0
    betas = [np.zeros(1), np.zeros(4)]                # ... the outer loop runs here ...
    sess.on_evaluation(rho, np.concatenate(betas), 12.5)         # each evaluation
    ws.store_block_warm_start(store, plan.key, specs, ws.BlockWarmStart(rho, betas))
    sess.finish(rho, np.concatenate(betas), 12.5, converged=True)  # at the end
    ws.capture_fit_artifact(store, fam, specs, gauge, betas, rho,
                            ws.physical_to_outer(specs), 12.5, True)
    assert ws.plan_warm_start(store, fam, specs, opts, np.zeros(1)).source == "exact"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    # specs
    "BlockSpec": "gamstore.warmstart.specs",
    "BlockwisePenalty": "gamstore.warmstart.specs",
    "DensePenalty": "gamstore.warmstart.specs",
    "DiagonalPenalty": "gamstore.warmstart.specs",
    "FitOptions": "gamstore.warmstart.specs",
    "FixedPenalty": "gamstore.warmstart.specs",
    "KroneckerPenalty": "gamstore.warmstart.specs",
    "LabeledPenalty": "gamstore.warmstart.specs",
    "Penalty": "gamstore.warmstart.specs",
    "WarmStartFamily": "gamstore.warmstart.specs",
    "cache_shape": "gamstore.warmstart.specs",
    "physical_to_outer": "gamstore.warmstart.specs",
    # keys
    "UnsupportedFamilyError": "gamstore.warmstart.keys",
    "block_key": "gamstore.warmstart.keys",
    "likelihood_fingerprint": "gamstore.warmstart.keys",
    "session_keys": "gamstore.warmstart.keys",
    "SessionKeys": "gamstore.warmstart.keys",
    "SCHEMA_TAG": "gamstore.warmstart.keys",
    # inner cap
    "InnerCap": "gamstore.warmstart.inner_cap",
    "next_inner_cap": "gamstore.warmstart.inner_cap",
    "update_inner_cap": "gamstore.warmstart.inner_cap",
    # store capability
    "WarmStartStore": "gamstore.warmstart.capability",
    "warm_store": "gamstore.warmstart.capability",
    "MAX_ENTRY_BYTES": "gamstore.warmstart.capability",
    # records
    "load_record": "gamstore.warmstart.records_io",
    "store_record": "gamstore.warmstart.records_io",
    "load_block_record": "gamstore.warmstart.records_io",
    "store_block_record": "gamstore.warmstart.records_io",
    # block warm start
    "BlockWarmStart": "gamstore.warmstart.blocks",
    "CachedInner": "gamstore.warmstart.blocks",
    "SATURATION_THRESHOLD": "gamstore.warmstart.blocks",
    "load_block_warm_start": "gamstore.warmstart.blocks",
    "store_block_warm_start": "gamstore.warmstart.blocks",
    "normalize_active_sets": "gamstore.warmstart.blocks",
    # artifacts
    "capture_fit_artifact": "gamstore.warmstart.artifacts",
    "consume_fit_artifact": "gamstore.warmstart.artifacts",
    "descriptor_for": "gamstore.warmstart.artifacts",
    "per_block_rho_slots": "gamstore.warmstart.artifacts",
    "store_fit_artifact": "gamstore.warmstart.artifacts",
    "load_fit_artifact": "gamstore.warmstart.artifacts",
    # plan (the orchestrator)
    "FitWarmStart": "gamstore.warmstart.plan",
    "KeyedWarmStart": "gamstore.warmstart.plan",
    "WarmPlan": "gamstore.warmstart.plan",
    "plan_warm_start": "gamstore.warmstart.plan",
    # sessions
    "OuterSession": "gamstore.warmstart.sessions",
    "OuterStart": "gamstore.warmstart.sessions",
    "encode_iterate": "gamstore.warmstart.sessions",
    "decode_iterate": "gamstore.warmstart.sessions",
    "classify_outer_entry": "gamstore.warmstart.sessions",
    "ExactFinal": "gamstore.warmstart.sessions",
    "Seed": "gamstore.warmstart.sessions",
    "Discard": "gamstore.warmstart.sessions",
    # explicit resume (keyspace "from")
    "ResumePoint": "gamstore.warmstart.from_model",
    "load_resume_point": "gamstore.warmstart.from_model",
    "save_resume_point": "gamstore.warmstart.from_model",
}

__all__ = [
    "BlockSpec",
    "BlockWarmStart",
    "BlockwisePenalty",
    "CachedInner",
    "DensePenalty",
    "DiagonalPenalty",
    "Discard",
    "ExactFinal",
    "FitOptions",
    "FitWarmStart",
    "FixedPenalty",
    "InnerCap",
    "KeyedWarmStart",
    "KroneckerPenalty",
    "LabeledPenalty",
    "MAX_ENTRY_BYTES",
    "OuterSession",
    "OuterStart",
    "Penalty",
    "ResumePoint",
    "SATURATION_THRESHOLD",
    "SCHEMA_TAG",
    "Seed",
    "SessionKeys",
    "UnsupportedFamilyError",
    "WarmPlan",
    "WarmStartFamily",
    "WarmStartStore",
    "block_key",
    "cache_shape",
    "capture_fit_artifact",
    "classify_outer_entry",
    "consume_fit_artifact",
    "decode_iterate",
    "descriptor_for",
    "encode_iterate",
    "likelihood_fingerprint",
    "load_block_record",
    "load_block_warm_start",
    "load_fit_artifact",
    "load_record",
    "load_resume_point",
    "next_inner_cap",
    "normalize_active_sets",
    "per_block_rho_slots",
    "physical_to_outer",
    "plan_warm_start",
    "save_resume_point",
    "session_keys",
    "store_block_record",
    "store_block_warm_start",
    "store_fit_artifact",
    "store_record",
    "update_inner_cap",
    "warm_store",
]


_SUBMODULES = frozenset(
    {"artifacts", "blocks", "capability", "from_model", "inner_cap", "keys", "plan", "records_io",
     "sessions", "specs"}
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # ``ws.capability`` etc. without an explicit import
        return importlib.import_module(f"gamstore.warmstart.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gamstore.warmstart' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from gamstore.warmstart.artifacts import (
        capture_fit_artifact,
        consume_fit_artifact,
        descriptor_for,
        load_fit_artifact,
        per_block_rho_slots,
        store_fit_artifact,
    )
    from gamstore.warmstart.blocks import (
        SATURATION_THRESHOLD,
        BlockWarmStart,
        CachedInner,
        load_block_warm_start,
        normalize_active_sets,
        store_block_warm_start,
    )
    from gamstore.warmstart.capability import MAX_ENTRY_BYTES, WarmStartStore, warm_store
    from gamstore.warmstart.from_model import ResumePoint, load_resume_point, save_resume_point
    from gamstore.warmstart.inner_cap import InnerCap, next_inner_cap, update_inner_cap
    from gamstore.warmstart.keys import (
        SCHEMA_TAG,
        SessionKeys,
        UnsupportedFamilyError,
        block_key,
        likelihood_fingerprint,
        session_keys,
    )
    from gamstore.warmstart.plan import FitWarmStart, KeyedWarmStart, WarmPlan, plan_warm_start
    from gamstore.warmstart.records_io import (
        load_block_record,
        load_record,
        store_block_record,
        store_record,
    )
    from gamstore.warmstart.sessions import (
        Discard,
        ExactFinal,
        OuterSession,
        OuterStart,
        Seed,
        classify_outer_entry,
        decode_iterate,
        encode_iterate,
    )
    from gamstore.warmstart.specs import (
        BlockSpec,
        BlockwisePenalty,
        DensePenalty,
        DiagonalPenalty,
        FitOptions,
        FixedPenalty,
        KroneckerPenalty,
        LabeledPenalty,
        Penalty,
        WarmStartFamily,
        cache_shape,
        physical_to_outer,
    )
