"""Cross-fit artifacts (record D): capture after a converged fit, consume at the start of
another fit of the same structure - typically a leave-one-subject-out fold finding the
full-data fit (spec §6).

* :func:`descriptor_for` - the fit's structural descriptor: family name plus one term
  identity per block (role from the block name, penalty labels, nullspace dims, reduced
  width). No rows, response or penalty values enter its key, so a fold's descriptor key equals
  the full-data one.
* :func:`capture_fit_artifact` - per-block ρ slots from ``physical_to_outer``, the gauge lift
  of the reduced β to raw β, finite guards; stored under the descriptor key only when the
  artifact is usable.
* :func:`consume_fit_artifact` - loads the newest artifact under the descriptor key
  (``lookup_latest``: objectives of different folds are not comparable), builds the warm start
  with :func:`gamstore.transfer.build_warm_start` (ρ per matched term, β projected through the
  new gauge's diagonal slab), counts ρ- and β-transferred terms and returns None when nothing
  transferred or the iterate is non-finite or mis-sized. The warm start has no active sets
  and no cached inner mode.

Both are gated on the family fingerprinting itself (#1607: families without a data
fingerprint drifted from run to run by seeding off their own artifacts); with a store
configured that is the same configuration error as for the block key. Neither ever raises
otherwise: every anomaly is a skipped capture or a cold start.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gamstore.artifact import (
    FitArtifact,
    FitDescriptor,
    ResponseSig,
    RowPopulationTag,
    TermIdentity,
    TermRole,
    artifact_key,
    term_identity_from_block,
)
from gamstore.fingerprint import Fingerprint
from gamstore.gauge import Gauge
from gamstore.records import as_float_vector
from gamstore.transfer import (
    Provenance,
    TermBuildContext,
    TransferConfig,
    TransferError,
    _build_from_usable,
    capture_artifact,
)
from gamstore.transfer import per_block_rho_slots as _slots_by_counts
from gamstore.warmstart.blocks import BlockWarmStart
from gamstore.warmstart.capability import StoreArg, warm_store
from gamstore.warmstart.keys import check_specs, family_fingerprint
from gamstore.warmstart.specs import (
    BlockSpec,
    FitOptions,
    WarmStartFamily,
    penalty_label,
)

__all__ = [
    "ARTIFACT_KEYSPACE",
    "block_term_identity",
    "capture_fit_artifact",
    "consume_fit_artifact",
    "consume_loaded_artifact",
    "descriptor_for",
    "load_fit_artifact",
    "per_block_rho_slots",
    "store_fit_artifact",
]

_log = logging.getLogger("gamstore.warmstart")

ARTIFACT_KEYSPACE = "artifact"


def _family_kind(family: Any) -> str:
    name = getattr(family, "name", None)
    return name if isinstance(name, str) and name else type(family).__qualname__


@functools.lru_cache(maxsize=1024)
def _term_identity(
    name: str, labels: tuple[str | None, ...], dims: tuple[int, ...], width: int
) -> TermIdentity:
    # keyed on the identity's own (immutable) inputs, so a hit is the same pure value
    return term_identity_from_block(
        TermRole.from_block_name(name), name, list(labels), list(dims), width
    )


def block_term_identity(spec: BlockSpec) -> TermIdentity:
    """Fold-invariant identity of a block (term identity v2, spec §2.5)."""
    return _term_identity(*_identity_inputs(spec))


def descriptor_for(family: WarmStartFamily | str, specs: Sequence[BlockSpec]) -> FitDescriptor:
    """The fit's :class:`~gamstore.artifact.FitDescriptor` (family kind = family name).

    The row population is recorded for diagnostics but is not part of the key.
    """
    blocks = check_specs(specs)
    kind = family if isinstance(family, str) else _family_kind(family)
    n_rows = blocks[0].n_rows if blocks else 0
    return _descriptor(kind, tuple(_identity_inputs(s) for s in blocks), n_rows)


def _identity_inputs(spec: BlockSpec) -> tuple[str, tuple[str | None, ...], tuple[int, ...], int]:
    return (
        spec.name,
        tuple(penalty_label(p) for p in spec.penalties),
        tuple(int(d) for d in spec.nullspace_dims),
        int(spec.width),
    )


@functools.lru_cache(maxsize=256)
def _descriptor(
    kind: str,
    blocks: tuple[tuple[str, tuple[str | None, ...], tuple[int, ...], int], ...],
    n_rows: int,
) -> FitDescriptor:
    # value-keyed on immutable inputs, and a FitDescriptor is immutable: every fold of a
    # LOSO run with the same row count shares one
    return FitDescriptor(
        family_kind=kind,
        term_identities=tuple(_term_identity(*b) for b in blocks),
        response_signature=ResponseSig(kind, 1),
        row_population=RowPopulationTag(n_rows),
    )


def per_block_rho_slots(
    specs: Sequence[BlockSpec], physical_to_outer: Sequence[int | None]
) -> list[tuple[int, ...]]:
    """Outer ρ indices of each block's penalties (fixed penalties have none, spec §6.2)."""
    return _slots_by_counts([len(s.penalties) for s in specs], physical_to_outer)


def _artifact_key_of(descriptor: FitDescriptor | Fingerprint | str) -> str:
    if isinstance(descriptor, str):
        return artifact_key(Fingerprint.from_hex(descriptor))
    return artifact_key(descriptor)


def store_fit_artifact(
    store: StoreArg, artifact: FitArtifact, key_descriptor: FitDescriptor | None = None
) -> bool:
    """Persist a usable artifact under its descriptor key; True when written.

    An unusable artifact (wrong schema, non-finite numbers) is never stored.
    ``key_descriptor``: store it under this descriptor's key instead (a fitter's structure
    key for designs whose blocks change between folds; see
    :func:`gamstore.transfer.build_partial_warm_start`).
    """
    ws = warm_store(store)
    if ws is None:
        return False
    if not isinstance(artifact, FitArtifact):
        raise TypeError(f"artifact: expected FitArtifact, got {type(artifact).__name__}")
    if not artifact.is_usable():
        _log.debug("fit artifact not stored: %s", artifact.unusable_reason())
        return False
    key = artifact_key(artifact.descriptor if key_descriptor is None else key_descriptor)
    # a converged fit's snapshot is its final state (lookups take the newest either way)
    kind = "final" if artifact.global_.converged else "checkpoint"
    return ws.save(ARTIFACT_KEYSPACE, key, artifact, objective=None, kind=kind) is not None


def load_fit_artifact(
    store: StoreArg, descriptor: FitDescriptor | Fingerprint | str
) -> FitArtifact | None:
    """The newest usable artifact under a descriptor key, or None.

    Parameters
    ----------
    store : StoreArg
    descriptor : FitDescriptor, Fingerprint or str
        The descriptor, its :meth:`~gamstore.artifact.FitDescriptor.descriptor_key`, or that
        key's 64-hex form.
    """
    ws = warm_store(store)
    if ws is None:
        return None
    key = _artifact_key_of(descriptor)
    entry = ws.lookup_latest(ARTIFACT_KEYSPACE, key)
    if entry is None:
        return None
    record = getattr(entry, "record", None)
    if not isinstance(record, FitArtifact):
        return None
    if not record.is_usable():  # finite guard on the way out: never poison a fit
        _log.debug("fit artifact under %s unusable: %s", key, record.unusable_reason())
        return None
    return record


def _check_gated(family: WarmStartFamily, specs: Sequence[BlockSpec], options: Any) -> None:
    # #1607 gate; raises UnsupportedFamilyError for a family that cannot key itself. A family
    # that declares it always can (gamstore's GAM: gamstore.fit.warm.LikelihoodKey) is not
    # asked here: its fingerprint, derived from the fit's input key, is made when a key is
    if getattr(family, "warm_start_keyable", False) is True:
        return
    family_fingerprint(family, specs, options if options is not None else FitOptions())


def capture_fit_artifact(
    store: StoreArg,
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    gauge: Gauge,
    reduced_block_beta: Sequence[Any],
    rho: Any,
    physical_to_outer: Sequence[int | None],
    outer_objective: float,
    converged: bool,
    *,
    options: FitOptions | None = None,
    basis_metas: Sequence[Any] | None = None,
    key_descriptor: FitDescriptor | None = None,
    ext: Any = None,
) -> bool:
    """Capture and persist a converged fit as a cross-fit artifact (lifecycle step 7).

    Parameters
    ----------
    store : StoreArg
        None: no-op.
    family, specs
        The fit's family and blocks.
    gauge : Gauge
        The fit's gauge ``raw = T·θ + a`` (one block per spec).
    reduced_block_beta : sequence of array_like
        Converged reduced β per block.
    rho : array_like
        Converged outer ρ.
    physical_to_outer : sequence of (int or None)
        Outer index of every physical penalty (block then penalty order), None when fixed;
        see :func:`gamstore.warmstart.specs.physical_to_outer`.
    outer_objective : float
    converged : bool
    options : FitOptions, optional
        Passed to the family's fingerprint (the #1607 gate).
    basis_metas : sequence of BasisMeta, optional
        Per block (knots, penalty scale, ...); default: the ``"block-spec"`` stub.
    key_descriptor : FitDescriptor, optional
        Store under this descriptor's key rather than the fit's own (a structure key, for
        blocks that change between folds; see :func:`store_fit_artifact`).
    ext : array_like, optional
        Extended-family parameters (negative binomial: ``[log theta]``), stored with ρ.

    Returns
    -------
    bool
        True when an artifact was stored. A fit that did not converge is never captured (it
        would seed other fits with a point it never certified); any anomaly (count or width
        mismatch, invalid gauge, non-finite lifted β, ρ or objective) skips the capture.

    Raises
    ------
    UnsupportedFamilyError
        When a store is configured but the family cannot fingerprint itself.
    """
    ws = warm_store(store)
    if ws is None:
        return False
    blocks = check_specs(specs)
    _check_gated(family, blocks, options)
    if not converged:
        _log.debug("fit artifact capture skipped: the fit did not converge")
        return False
    try:
        slots = per_block_rho_slots(blocks, physical_to_outer)
        artifact = capture_artifact(
            family_kind=_family_kind(family),
            block_names=[s.name for s in blocks],
            penalty_labels=[[penalty_label(p) for p in s.penalties] for s in blocks],
            nullspace_dims=[list(s.nullspace_dims) for s in blocks],
            gauge=gauge,
            reduced_block_beta=list(reduced_block_beta),
            rho=np.asarray(rho, dtype=np.float64),
            rho_slots=slots,
            outer_objective=float(outer_objective),
            converged=bool(converged),
            n_rows=blocks[0].n_rows if blocks else 0,
            basis_metas=basis_metas,
        )
    except (TypeError, ValueError) as exc:
        _log.debug("fit artifact capture skipped: %s", exc)
        return False
    if artifact is None:
        return False
    if ext is not None:
        try:
            artifact = dataclasses.replace(artifact, ext=np.asarray(ext, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            _log.debug("fit artifact ext not stored: %s", exc)
    return store_fit_artifact(ws, artifact, key_descriptor)


def consume_fit_artifact(
    store: StoreArg,
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    gauge: Gauge | None,
    physical_to_outer: Sequence[int | None],
    rho_default: Any,
    *,
    options: FitOptions | None = None,
    config: TransferConfig | None = None,
    column_means: Sequence[Any | None] | None = None,
    intercept_column: int | None = None,
    rho_convention: str = "mgcv",
    descriptor: FitDescriptor | None = None,
    parent: FitArtifact | None = None,
) -> BlockWarmStart | None:
    """Build a warm start from the newest parent artifact with the same descriptor key.

    Call only when the exact block record missed. ρ transfers per matched term (when the
    parent's per-term ρ count equals the block's slot count); β is projected from the
    parent's raw coefficients onto this fit's reduced coordinates through the block's slab
    of ``gauge`` (ρ only when the gauge does not partition into the blocks).

    Parameters
    ----------
    store : StoreArg
        None: returns None.
    family, specs
        The fit's family and blocks.
    gauge : Gauge or None
        This fit's gauge; None transfers ρ only.
    physical_to_outer : sequence of (int or None)
        As for :func:`capture_fit_artifact`.
    rho_default : array_like
        This fit's starting ρ; slots that receive nothing keep these values. Empty ρ
        means no cross-fit transfer (returns None).
    options : FitOptions, optional
        Passed to the family's fingerprint (the #1607 gate).
    config : TransferConfig, optional
        Projection mode and the optional historical ρ gate/clamp.
    column_means : sequence of (array_like or None), optional
        Per block, this fit's raw column means (``mode="transport"`` only).
    intercept_column : int, optional
        Raw index of the intercept in block 0 (``mode="transport"`` only).
    rho_convention : str
        What this fitter's ρ means; a parent stored under another convention is not used.
    descriptor : FitDescriptor, optional
        ``descriptor_for(family, specs)`` when the caller already has it (saves deriving the
        term identities again).
    parent : FitArtifact, optional
        The artifact :func:`load_fit_artifact` just returned for this fit's descriptor, when
        the caller needs it too (e.g. to compare knots); skips the store lookup. It is still
        checked for usability.

    Returns
    -------
    BlockWarmStart or None
        ρ in outer coordinates (same length as ``rho_default``), per-block reduced β, active
        sets None, no cached inner mode; None for a cold start. Inputs are never modified.

    Raises
    ------
    UnsupportedFamilyError
        When a store is configured but the family cannot fingerprint itself.
    """
    ws = warm_store(store)
    if ws is None:
        return None
    ready = _consume_inputs(family, specs, options, rho_default, descriptor)
    if ready is None:
        return None
    blocks, rho0, descriptor = ready
    if parent is None:
        parent = load_fit_artifact(ws, descriptor)
        if parent is None:
            return None
    elif not isinstance(parent, FitArtifact) or not parent.is_usable():
        _log.debug("cross-fit artifact passed in is unusable; cold start")
        return None

    def t_block_of(b: int) -> Any:
        aligned = gauge is not None and gauge.n_blocks == len(blocks)
        return gauge.block_transform(b) if aligned and gauge is not None else None

    return _transfer(
        blocks,
        t_block_of,
        physical_to_outer,
        rho0,
        config=config,
        column_means=column_means,
        intercept_column=intercept_column,
        rho_convention=rho_convention,
        descriptor=descriptor,
        parent=parent,
    )


def _consume_inputs(
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    options: FitOptions | None,
    rho_default: Any,
    descriptor: FitDescriptor | None,
) -> tuple[list[BlockSpec], np.ndarray, FitDescriptor] | None:
    """Checked blocks, the default ρ and the fit's descriptor; None when there is no ρ."""
    blocks = check_specs(specs)
    _check_gated(family, blocks, options)
    rho0 = np.asarray(rho_default, dtype=np.float64)
    if rho0.ndim != 1 or rho0.size == 0:
        return None  # nothing to warm: the cross-fit transfer needs ρ (spec §6.3 step 6)
    if not isinstance(descriptor, FitDescriptor) or len(descriptor.term_identities) != len(blocks):
        descriptor = descriptor_for(family, blocks)
    return blocks, rho0, descriptor


def consume_loaded_artifact(
    store: StoreArg,
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    block_transforms: Sequence[Any | None],
    physical_to_outer: Sequence[int | None],
    rho_default: Any,
    *,
    descriptor: FitDescriptor,
    parent: FitArtifact,
    options: FitOptions | None = None,
    config: TransferConfig | None = None,
    column_means: Sequence[Any | None] | None = None,
    intercept_column: int | None = None,
    rho_convention: str = "mgcv",
    partial: bool = False,
) -> BlockWarmStart | None:
    """:func:`consume_fit_artifact` for a parent that :func:`load_fit_artifact` just returned.

    The same transfer and the same cold fallbacks, without the work a fitter already did:
    the parent is not checked for usability a second time (``load_fit_artifact`` only
    returns usable artifacts, and they are immutable), and the per-block gauge slabs are
    given directly (``block_transforms[b]`` is what ``gauge.block_transform(b)`` returns for
    a block-diagonal gauge; None leaves that block's β cold), so no full gauge is built.

    Parameters
    ----------
    store, family, specs, physical_to_outer, rho_default, options, config, column_means,
    intercept_column, rho_convention
        As for :func:`consume_fit_artifact`.
    block_transforms : sequence of (array_like or None)
        One per block: the block's slab ``T_b`` (raw width × reduced width).
    descriptor : FitDescriptor
        ``descriptor_for(family, specs)``.
    parent : FitArtifact
        The artifact ``load_fit_artifact(store, descriptor)`` returned (not None).
    partial : bool
        The parent was found under a structure key and its blocks may differ from this
        fit's: match term by term, the rest cold
        (:func:`gamstore.transfer.build_partial_warm_start`).

    Raises
    ------
    UnsupportedFamilyError
        When a store is configured but the family cannot fingerprint itself.
    """
    ws = warm_store(store)
    if ws is None:
        return None
    ready = _consume_inputs(family, specs, options, rho_default, descriptor)
    if ready is None:
        return None
    blocks, rho0, descriptor = ready
    if not isinstance(parent, FitArtifact):
        _log.debug("cross-fit artifact passed in is unusable; cold start")
        return None
    transforms = list(block_transforms)
    return _transfer(
        blocks,
        transforms.__getitem__,  # a missing entry is an IndexError: a cold fallback
        physical_to_outer,
        rho0,
        config=config,
        column_means=column_means,
        intercept_column=intercept_column,
        rho_convention=rho_convention,
        descriptor=descriptor,
        parent=parent,
        partial=partial,
    )


def _transfer(
    blocks: list[BlockSpec],
    t_block_of: Callable[[int], Any],
    physical_to_outer: Sequence[int | None],
    rho0: np.ndarray,
    *,
    config: TransferConfig | None,
    column_means: Sequence[Any | None] | None,
    intercept_column: int | None,
    rho_convention: str,
    descriptor: FitDescriptor,
    parent: FitArtifact,
    partial: bool = False,
) -> BlockWarmStart | None:
    """The transfer itself, from a usable parent (shared by both consume entry points)."""
    if parent.rho_convention != rho_convention:
        _log.info(
            "cross-fit artifact uses rho convention %r, this fit %r; starting cold",
            parent.rho_convention,
            rho_convention,
        )
        return None
    try:
        cfg = TransferConfig() if config is None else config
        if not isinstance(cfg, TransferConfig):
            raise TypeError("config: expected TransferConfig")
        if not isinstance(descriptor, FitDescriptor):
            raise TypeError("descriptor: expected FitDescriptor")
        slots = per_block_rho_slots(blocks, physical_to_outer)
        contexts = []
        for b, (spec, sl) in enumerate(zip(blocks, slots, strict=True)):
            means = None if column_means is None else column_means[b]
            contexts.append(
                TermBuildContext(
                    identity=descriptor.term_identities[b],  # = block_term_identity(spec)
                    rho_slots=sl,
                    reduced_width=spec.width,
                    gauge_t_block=t_block_of(b),
                    column_means=means,
                    intercept_column=intercept_column if b == 0 else None,
                )
            )
        # build_warm_start minus its parent check: the parent is usable (checked on load or
        # by the caller above) and immutable
        rho = np.array(as_float_vector(rho0, "rho_default", finite=False))
        result = _build_from_usable(None if partial else descriptor, contexts, rho, parent, cfg)
    except TransferError as exc:
        _log.debug("cross-fit transfer: cold fallback (%s)", exc)
        return None
    except (TypeError, ValueError, IndexError) as exc:
        _log.debug("cross-fit transfer: cold fallback (%s: %s)", type(exc).__name__, exc)
        return None
    n_rho = sum(p in (Provenance.RHO_ONLY, Provenance.PROJECTED) for p in result.provenance)
    n_beta = sum(p is Provenance.PROJECTED for p in result.provenance)
    if n_rho == 0 and n_beta == 0:
        _log.debug("cross-fit transfer: nothing matched; cold start")
        return None
    if result.warm_start(rho0.shape[0], [s.width for s in blocks]) is None:
        _log.debug("cross-fit transfer skipped: non-finite or mis-sized warm iterate")
        return None
    if _log.isEnabledFor(logging.INFO):  # the descriptor hex is only worth it when logged
        _log.info(
            "warm-start cross-fit transfer descriptor=%s terms=%d rho_warm=%d beta_projected=%d",
            descriptor.descriptor_key().finish_hex(),
            len(blocks),
            n_rho,
            n_beta,
        )
    return BlockWarmStart(
        rho=np.array(result.rho),
        block_beta=[np.array(b) for b in result.block_beta],
        active_sets=[None] * len(blocks),
        cached_inner=None,
    )
