"""Cross-fit transfer: capture a fit as a :class:`~gamstore.artifact.FitArtifact` and build a
warm start for another fit of the same structure from it (spec §6).

* :func:`capture_artifact` lifts the converged reduced β to raw coordinates through the
  :class:`~gamstore.gauge.Gauge` and packages it with the per-term ρ (checklist 58).
* :func:`build_warm_start` matches the new fit's terms to the parent's by identity, copies ρ
  per term when the slot count matches, and maps each parent raw β into the new fold's
  reduced coordinates (checklist 60-64):

  - ``mode="project"`` (the reference behaviour): the minimum-norm least-squares θ with
    ``T_b θ ≈ β_raw`` (symmetric eigen-decomposition of ``TᵀT`` with the threshold of §6.4);
  - ``mode="transport"`` (beyond the reference, reference-fitter §3.3): when a term's
    centring constraint changed between parent and fold, first shift each raw block along its
    constant direction onto the fold's constraint (``c_new·β = 0``) and add the removed
    constants to the intercept; the projection is then exact and the fold's linear predictor
    ``X·β`` is unchanged. Plain projection drops the constant part instead.

No clamp is applied by default; :meth:`TransferConfig.historical` restores the old saturation
gate (|ρ| ≥ 9 skipped) and interior clamp (±8).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from gamstore.artifact import (
    FIT_ARTIFACT_SCHEMA,
    BasisMeta,
    FitArtifact,
    FitDescriptor,
    GlobalFitSummary,
    ResponseSig,
    RowPopulationTag,
    TermArtifact,
    TermIdentity,
    TermRole,
    term_identity_from_block,
)
from gamstore.gauge import Gauge
from gamstore.records import (
    FloatArray,
    FrozenArrays,
    _readonly,
    as_count,
    as_finite_float,
    as_float_matrix,
    as_float_vector,
    as_str,
)

__all__ = [
    "DescriptorMismatch",
    "ParentUnusable",
    "Provenance",
    "TermBuildContext",
    "TransferConfig",
    "TransferError",
    "TransferResult",
    "build_partial_warm_start",
    "build_warm_start",
    "capture_artifact",
    "per_block_rho_slots",
    "project_beta",
]

logger = logging.getLogger("gamstore.transfer")

_UNIT_ROUNDOFF = 2.0**-53


class Provenance(enum.Enum):
    """What a term received from the parent."""

    COLD = "cold"
    RHO_ONLY = "rho_only"
    PROJECTED = "projected"


class TransferError(ValueError):
    """The parent artifact cannot seed this fit (the caller falls back to a cold start)."""


class ParentUnusable(TransferError):
    """Wrong schema or non-finite numbers in the parent artifact."""


class DescriptorMismatch(TransferError):
    """The parent's descriptor key differs from the new fit's."""


@dataclass(frozen=True)
class TransferConfig:
    """Options of :func:`build_warm_start`.

    Parameters
    ----------
    mode : {"project", "transport"}
        ``"project"``: minimum-norm projection of the raw β (spec §6.4). ``"transport"``:
        exact transport across a changed centring constraint (reference-fitter §3.3) for
        terms whose context carries ``column_means``; other terms are projected.
    rho_saturation : float, optional
        Historical gate: parent ρ with ``|ρ| >= rho_saturation`` is not copied. None (the
        current behaviour) copies every finite value verbatim.
    rho_interior_clamp : float, optional
        Historical clamp: copied ρ is clipped to ``[-c, c]``. None disables it.
    """

    mode: Literal["project", "transport"] = "project"
    rho_saturation: float | None = None
    rho_interior_clamp: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("project", "transport"):
            raise ValueError(
                f"TransferConfig.mode: expected 'project' or 'transport', got {self.mode!r}"
            )
        for name in ("rho_saturation", "rho_interior_clamp"):
            v = getattr(self, name)
            if v is not None and not (as_finite_float(v, f"TransferConfig.{name}") > 0.0):
                raise ValueError(f"TransferConfig.{name}: expected a positive float, got {v!r}")

    @classmethod
    def historical(cls, mode: Literal["project", "transport"] = "project") -> TransferConfig:
        """The removed saturation gate (9) and interior clamp (8), for comparison runs."""
        return cls(mode=mode, rho_saturation=9.0, rho_interior_clamp=8.0)


@dataclass(frozen=True, eq=False)
class TermBuildContext(FrozenArrays):
    """What :func:`build_warm_start` needs to know about one block of the new fit.

    Parameters
    ----------
    identity : TermIdentity
        The block's term identity (matched against the parent's terms).
    rho_slots : sequence of int
        Outer ρ indices of the block's penalties (see :func:`per_block_rho_slots`).
    reduced_width : int
        Columns of the block's reduced design.
    gauge_t_block : array_like, optional
        The block's slab of the new gauge, shape (raw width, reduced width)
        (:meth:`Gauge.block_transform`); None leaves β cold.
    column_means : array_like, optional
        Transport only: the fold's column means of the block's *raw* basis (``c_new``), so
        the new centring constraint is ``c_new·β_raw = 0``.
    constant_direction : array_like, optional
        Transport only: raw coefficients ``u`` that make the basis constant (``B·u = 1``);
        defaults to all ones (B-splines are a partition of unity).
    intercept_column : int, optional
        Transport only: on the parametric block, the raw index of the intercept column,
        which absorbs the constants removed from the shifted blocks.
    """

    identity: TermIdentity
    rho_slots: tuple[int, ...]
    reduced_width: int
    gauge_t_block: FloatArray | None = None
    column_means: FloatArray | None = None
    constant_direction: FloatArray | None = None
    intercept_column: int | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "identity", TermIdentity.parse(self.identity, "TermBuildContext.identity"))
        if isinstance(self.rho_slots, (str, bytes)):
            raise TypeError("TermBuildContext.rho_slots: expected a sequence of ints")
        s(
            self,
            "rho_slots",
            tuple(
                v if type(v) is int and v >= 0 else as_count(v, f"TermBuildContext.rho_slots[{i}]")
                for i, v in enumerate(self.rho_slots)
            ),
        )
        w = self.reduced_width
        if type(w) is not int or w < 0:  # exact non-negative ints pass as they are
            s(self, "reduced_width", as_count(w, "TermBuildContext.reduced_width"))
        if self.gauge_t_block is not None:
            s(
                self,
                "gauge_t_block",
                as_float_matrix(self.gauge_t_block, "TermBuildContext.gauge_t_block", finite=False),
            )
        for name in ("column_means", "constant_direction"):
            v = getattr(self, name)
            if v is not None:
                s(self, name, as_float_vector(v, f"TermBuildContext.{name}", finite=False))
        if self.intercept_column is not None:
            s(
                self,
                "intercept_column",
                as_count(self.intercept_column, "TermBuildContext.intercept_column"),
            )


@dataclass(frozen=True, eq=False)
class TransferResult(FrozenArrays):
    """Outcome of :func:`build_warm_start`.

    Attributes
    ----------
    rho : numpy.ndarray
        Outer ρ: ``rho_default`` with the transferred slots overwritten.
    block_beta : tuple of numpy.ndarray
        Per-block reduced β (zeros where cold).
    provenance : tuple of Provenance
        Per block.
    active_sets : tuple of None
        Always None: a cross-fit warm start carries no active sets.
    cached_inner : None
        Always None: no cached inner mode crosses fits.
    """

    rho: FloatArray
    block_beta: tuple[FloatArray, ...]
    provenance: tuple[Provenance, ...]
    active_sets: tuple[None, ...] = field(default=())
    cached_inner: None = None

    @property
    def n_rho(self) -> int:
        """Blocks that received ρ or β (RhoOnly or Projected)."""
        return sum(p is not Provenance.COLD for p in self.provenance)

    @property
    def n_beta(self) -> int:
        """Blocks whose β was projected."""
        return sum(p is Provenance.PROJECTED for p in self.provenance)

    def warm_start(self, rho_len: int, block_widths: Sequence[int]) -> TransferResult | None:
        """The consumer's final guard (spec §6.3 step 5, checklist 65).

        Returns
        -------
        TransferResult or None
            None when nothing transferred, or when ρ/β are non-finite or do not have the
            expected length and widths; otherwise ``self``.
        """
        if self.n_rho == 0 and self.n_beta == 0:
            return None
        widths = [
            w if type(w) is int and w >= 0 else as_count(w, f"block_widths[{i}]")
            for i, w in enumerate(block_widths)
        ]
        if self.rho.shape[0] != as_count(rho_len, "rho_len") or not np.isfinite(self.rho).all():
            return None
        if len(self.block_beta) != len(widths):
            return None
        for b, w in zip(self.block_beta, widths, strict=True):
            if b.shape[0] != w or not np.isfinite(b).all():
                return None
        return self


def per_block_rho_slots(
    penalty_counts: Sequence[int], physical_to_outer: Sequence[int | None]
) -> list[tuple[int, ...]]:
    """Outer ρ indices of each block's penalties (spec §6.2).

    Walks the physical penalties in block, then penalty order; ``physical_to_outer[i]`` gives
    the outer index of physical penalty ``i`` or None for a fixed penalty. Fixed penalties
    and indices past the end of ``physical_to_outer`` add nothing; penalties sharing a label
    repeat the same outer index across blocks.

    Parameters
    ----------
    penalty_counts : sequence of int
        Number of penalties of each block.
    physical_to_outer : sequence of (int or None)

    Returns
    -------
    list of tuple of int
    """
    table = [
        v if v is None or (type(v) is int and v >= 0) else as_count(v, f"physical_to_outer[{i}]")
        for i, v in enumerate(physical_to_outer)
    ]
    out: list[tuple[int, ...]] = []
    physical = 0
    for b, count in enumerate(penalty_counts):
        slots: list[int] = []
        for _ in range(as_count(count, f"penalty_counts[{b}]")):
            if physical < len(table) and table[physical] is not None:
                slots.append(table[physical])  # type: ignore[arg-type]
            physical += 1
        out.append(tuple(slots))
    return out


def project_beta(t_block: ArrayLike, raw_beta: ArrayLike, reduced_width: int) -> FloatArray | None:
    """Minimum-norm θ minimising ``‖T·θ − β_raw‖`` (spec §6.4, current algorithm).

    ``G = TᵀT = Σ λᵢ vᵢvᵢᵀ``; eigenvalues at or below ``τ = γ_r·max|λ|`` with
    ``γ_r = r·u/(1 − r·u)`` (``u = 2⁻⁵³``, ∞ once ``r·u ≥ 1``) are dropped;
    ``θ = Σ_{λᵢ>τ} (vᵢ·Tᵀβ / λᵢ) vᵢ``.

    Returns
    -------
    numpy.ndarray or None
        None (cold β) when ``T`` is not (len(β_raw), reduced_width), any input is non-finite,
        the decomposition fails, or θ is non-finite. An empty θ when ``reduced_width == 0``.
    """
    return _project_all([(t_block, raw_beta, reduced_width)])[0]


def _project_all(items: Sequence[tuple[ArrayLike, ArrayLike, int]]) -> list[FloatArray | None]:
    """:func:`project_beta` of several blocks; the same θ for each, bit for bit.

    Blocks of the same reduced width share one stacked ``eigh`` call (LAPACK decomposes
    each matrix of the stack exactly as it would alone); a stack that fails to decompose is
    redone block by block, so one failure stays that block's own cold β.
    """
    out: list[FloatArray | None] = [None] * len(items)
    pending: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for i, (t_block, raw_beta, reduced_width) in enumerate(items):
        t = np.asarray(t_block, dtype=np.float64)
        beta = np.asarray(raw_beta, dtype=np.float64)
        r = int(reduced_width)
        if t.ndim != 2 or beta.ndim != 1 or t.shape != (beta.shape[0], r):
            continue
        if not (np.isfinite(t).all() and np.isfinite(beta).all()):
            continue
        if r == 0:
            out[i] = _readonly(np.empty(0))
            continue
        g = t.T @ t
        b = t.T @ beta
        if r == 1:
            # the 1x1 eigenproblem is exact (LAPACK returns λ = g and v = 1): the same θ,
            # bit for bit, without the eigh call (e.g. the intercept-only parametric block)
            lam1 = g[0]  # shape (1,)
            keep1 = lam1[0] > _gamma(1) * abs(float(lam1[0]))
            # "+ 0.0": the matrix products of the general path turn a -0.0 into +0.0
            theta = b / lam1 + 0.0 if keep1 else np.zeros(1)
            out[i] = _readonly(theta) if np.isfinite(theta).all() else None
            continue
        pending.setdefault(r, []).append((i, g, b))
    for r, group in pending.items():
        decomposed: list[tuple[np.ndarray, np.ndarray] | None] = []
        if len(group) > 1:
            try:
                lams, vecss = np.linalg.eigh(np.stack([g for _, g, _ in group]))
                decomposed = [(lams[k], vecss[k]) for k in range(len(group))]
            except np.linalg.LinAlgError:
                decomposed = []
        if not decomposed:
            for _, g, _ in group:
                try:
                    decomposed.append(tuple(np.linalg.eigh(g)))  # type: ignore[arg-type]
                except np.linalg.LinAlgError:
                    decomposed.append(None)
        gamma = _gamma(r)
        for (i, _, b), dec in zip(group, decomposed, strict=True):
            if dec is None:
                continue
            lam, vecs = dec
            tau = gamma * float(np.abs(lam).max())
            keep = lam > tau
            v = vecs[:, keep]
            coef = (v.T @ b) / lam[keep]
            theta = v @ coef
            if np.isfinite(theta).all():
                out[i] = _readonly(np.ascontiguousarray(theta))
    return out


def _gamma(r: int) -> float:
    """``γ_r = r·u/(1 − r·u)``, ∞ once ``r·u ≥ 1`` (spec §6.4)."""
    ru = r * _UNIT_ROUNDOFF
    return math.inf if ru >= 1.0 else ru / (1.0 - ru)


def _copy_rho(
    rho: np.ndarray, slots: tuple[int, ...], parent_rho: np.ndarray, config: TransferConfig
) -> bool:
    """Copy a matched term's ρ into its slots; True if any slot was written (spec §6.3)."""
    if parent_rho.shape[0] != len(slots):
        return False
    copied = False
    for slot, value in zip(slots, parent_rho.tolist(), strict=True):
        if slot >= rho.shape[0] or not math.isfinite(value):
            continue
        if config.rho_saturation is not None and abs(value) >= config.rho_saturation:
            continue
        if config.rho_interior_clamp is not None:
            c = config.rho_interior_clamp
            value = min(max(value, -c), c)
        rho[slot] = value
        copied = True
    return copied


def _transport_shifts(
    terms: Sequence[TermBuildContext], matched: Sequence[TermArtifact | None]
) -> list[np.ndarray | None]:
    """Raw β of each matched block, shifted onto the fold's centring constraint.

    Blocks with ``column_means`` are moved along their constant direction ``u`` by
    ``s = (c·β)/(c·u)`` so that ``c·β' = 0``; the sum of the removed constants is added to
    the intercept column of the parametric block. Blocks without transport information keep
    the parent's raw β. Returns None for unmatched blocks.
    """
    out: list[np.ndarray | None] = [
        None if m is None else np.array(m.raw_beta, dtype=np.float64) for m in matched
    ]
    total = 0.0
    for ctx, beta in zip(terms, out, strict=True):
        if beta is None or ctx.column_means is None or ctx.gauge_t_block is None:
            continue
        c = ctx.column_means
        u = np.ones_like(c) if ctx.constant_direction is None else ctx.constant_direction
        if c.shape != beta.shape or u.shape != beta.shape:
            logger.debug("transport skipped for a block: column means / raw width mismatch")
            continue
        cu = float(c @ u)
        if not math.isfinite(cu) or abs(cu) <= 1e-300:
            logger.debug("transport skipped for a block: constant direction is constrained")
            continue
        s = float(c @ beta) / cu
        if not math.isfinite(s):
            continue
        beta -= s * u
        total += s
    if total != 0.0:
        for ctx, beta in zip(terms, out, strict=True):
            ic = ctx.intercept_column
            if beta is not None and ic is not None and ic < beta.shape[0]:
                beta[ic] += total
                break
        else:
            logger.debug("transport: no intercept block to absorb constant %.3g", total)
    return out


def build_warm_start(
    descriptor: FitDescriptor,
    terms: Sequence[TermBuildContext],
    rho_default: ArrayLike,
    parent: FitArtifact,
    config: TransferConfig | None = None,
) -> TransferResult:
    """Build a warm (ρ, β) start for a fit from a parent artifact (spec §6.3).

    Parameters
    ----------
    descriptor : FitDescriptor
        The new fit's descriptor; its key must equal the parent's.
    terms : sequence of TermBuildContext
        One per block of the new fit, in block order.
    rho_default : array_like
        The new fit's starting ρ (outer coordinates); unmatched slots keep these values.
    parent : FitArtifact
    config : TransferConfig, optional

    Returns
    -------
    TransferResult

    Raises
    ------
    ParentUnusable
        Wrong schema or non-finite numbers in ``parent``.
    DescriptorMismatch
        Different descriptor keys.
    TypeError, ValueError
        For malformed arguments.

    Notes
    -----
    As in the reference, the new gauge's affine shift ``a`` is not subtracted before the
    projection (only the linear part ``T_b`` is used); with the usual zero shift this is
    exact. Each new term takes the first parent term with an equal identity; unmatched
    terms keep their default ρ slots and a zero β (Cold), and other slots are never touched.
    """
    cfg = TransferConfig() if config is None else config
    if not isinstance(cfg, TransferConfig):
        raise TypeError("config: expected TransferConfig")
    if not isinstance(descriptor, FitDescriptor):
        raise TypeError("descriptor: expected FitDescriptor")
    if not isinstance(parent, FitArtifact):
        raise TypeError("parent: expected FitArtifact")
    contexts = list(terms)
    for i, ctx in enumerate(contexts):
        if not isinstance(ctx, TermBuildContext):
            raise TypeError(f"terms[{i}]: expected TermBuildContext")
    rho = np.array(as_float_vector(rho_default, "rho_default", finite=False))
    reason = parent.unusable_reason()
    if reason is not None:
        raise ParentUnusable(f"parent artifact unusable: {reason}")
    return _build_from_usable(descriptor, contexts, rho, parent, cfg)


def build_partial_warm_start(
    terms: Sequence[TermBuildContext],
    rho_default: ArrayLike,
    parent: FitArtifact,
    config: TransferConfig | None = None,
) -> TransferResult:
    """A warm start from a parent whose blocks differ from the new fit's (changing blocks).

    A leave-one-subject-out fold can lack a level the full-data fit had: a random effect
    ``s(g, bs="re")`` then has one column fewer, a factor ``by`` one block fewer, a factor in
    the parametric block one contrast fewer. Those blocks' identities (which include the
    width) differ from the parent's, so the descriptors differ. This matches term by term
    instead: a block whose identity equals a parent term's receives that term's ρ and its β
    (projected or transported exactly as in :func:`build_warm_start`); every other block
    starts cold (its default ρ slots, zero β). The caller decides that the parent is a fit of
    the same model (the fitter's structure key, which names such terms without their levels).

    Parameters
    ----------
    terms, rho_default, parent, config
        As for :func:`build_warm_start` (no descriptor: nothing is compared as a whole).

    Returns
    -------
    TransferResult

    Raises
    ------
    ParentUnusable
        Wrong schema or non-finite numbers in ``parent``.
    """
    cfg = TransferConfig() if config is None else config
    if not isinstance(cfg, TransferConfig):
        raise TypeError("config: expected TransferConfig")
    if not isinstance(parent, FitArtifact):
        raise TypeError("parent: expected FitArtifact")
    contexts = list(terms)
    for i, ctx in enumerate(contexts):
        if not isinstance(ctx, TermBuildContext):
            raise TypeError(f"terms[{i}]: expected TermBuildContext")
    rho = np.array(as_float_vector(rho_default, "rho_default", finite=False))
    reason = parent.unusable_reason()
    if reason is not None:
        raise ParentUnusable(f"parent artifact unusable: {reason}")
    return _build_from_usable(None, contexts, rho, parent, cfg)


def _build_from_usable(
    descriptor: FitDescriptor | None,
    contexts: Sequence[TermBuildContext],
    rho: np.ndarray,
    parent: FitArtifact,
    cfg: TransferConfig,
) -> TransferResult:
    """:func:`build_warm_start` after its argument checks, for a parent known to be usable.

    ``rho`` is a fresh writable copy of the default ρ; it is filled in and returned.
    ``descriptor`` None matches term by term only (:func:`build_partial_warm_start`).
    """
    # each key is a hash over every term identity: skip it when the family and the terms
    # (in order) are the same, which implies equal keys; otherwise hash each side once
    same = descriptor is None or (
        descriptor.family_kind == parent.descriptor.family_kind
        and tuple(descriptor.term_identities) == tuple(parent.descriptor.term_identities)
    )
    if not same:
        assert descriptor is not None
        key_new = descriptor.descriptor_key()
        key_parent = parent.descriptor.descriptor_key()
        if key_parent != key_new:
            raise DescriptorMismatch(f"descriptor key {key_new.hex()} != parent {key_parent.hex()}")

    by_identity: dict[TermIdentity, TermArtifact] = {}
    for t in parent.terms:
        by_identity.setdefault(t.identity, t)  # the first parent term with an identity wins
    matched = [by_identity.get(ctx.identity) for ctx in contexts]
    if cfg.mode == "transport":
        raw_betas = _transport_shifts(contexts, matched)
    else:
        raw_betas = [None if m is None else m.raw_beta for m in matched]

    # every projection first (one stacked eigh per reduced width), then the per-block walk
    todo = [
        i
        for i, (ctx, m, raw) in enumerate(zip(contexts, matched, raw_betas, strict=True))
        if m is not None and raw is not None and ctx.gauge_t_block is not None
    ]
    thetas = dict(
        zip(
            todo,
            _project_all(
                [
                    (contexts[i].gauge_t_block, raw_betas[i], contexts[i].reduced_width)  # type: ignore[misc]
                    for i in todo
                ]
            ),
            strict=True,
        )
    )
    block_beta: list[FloatArray] = []
    provenance: list[Provenance] = []
    for i, (ctx, parent_term, raw) in enumerate(zip(contexts, matched, raw_betas, strict=True)):
        if parent_term is None or raw is None:
            block_beta.append(_readonly(np.zeros(ctx.reduced_width)))
            provenance.append(Provenance.COLD)
            continue
        projected = False
        theta = thetas.get(i)
        if theta is not None:
            beta, projected = theta, True
        else:
            beta = _readonly(np.zeros(ctx.reduced_width))
        copied = _copy_rho(rho, ctx.rho_slots, parent_term.rho_for_term, cfg)
        block_beta.append(beta)
        if projected:
            provenance.append(Provenance.PROJECTED)
        elif copied:
            provenance.append(Provenance.RHO_ONLY)
        else:
            provenance.append(Provenance.COLD)
    return TransferResult(
        rho=_readonly(rho),
        block_beta=tuple(block_beta),
        provenance=tuple(provenance),
        active_sets=(None,) * len(contexts),
    )


def capture_artifact(
    *,
    family_kind: str,
    block_names: Sequence[str],
    penalty_labels: Sequence[Sequence[str | None]],
    nullspace_dims: Sequence[Sequence[int]],
    gauge: Gauge,
    reduced_block_beta: Sequence[ArrayLike],
    rho: ArrayLike,
    rho_slots: Sequence[Sequence[int]],
    outer_objective: float,
    converged: bool,
    n_rows: int,
    basis_metas: Sequence[BasisMeta | None] | None = None,
    created_unix_secs: int | None = None,
) -> FitArtifact | None:
    """Package a converged fit as a usable :class:`FitArtifact`, or None (spec §6.2).

    Aborts (returns None) when the β count or the gauge's block count differs from the
    number of blocks, the gauge is invalid, a block's β length differs from its reduced
    width, or any lifted raw β, ρ-for-term or the objective is non-finite (checklist 58).
    Out-of-range ρ slots are dropped silently. Roles come from the block names.

    Parameters
    ----------
    family_kind : str
    block_names : sequence of str
    penalty_labels : sequence of sequence of (str or None)
        Per block, the precision label of each penalty.
    nullspace_dims : sequence of sequence of int
        Per block.
    gauge : Gauge
        The fit's gauge (raw = T·θ + a).
    reduced_block_beta : sequence of array_like
        Converged reduced β per block.
    rho : array_like
        Converged outer ρ.
    rho_slots : sequence of sequence of int
        Per block (see :func:`per_block_rho_slots`).
    outer_objective : float
    converged : bool
    n_rows : int
    basis_metas : sequence of (BasisMeta or None), optional
        Per block; None gives the ``"block-spec"`` stub.
    created_unix_secs : int, optional

    Raises
    ------
    ValueError, TypeError
        When the per-block argument lists have different lengths (a programming error).
    """
    names = [as_str(n, f"block_names[{i}]") for i, n in enumerate(block_names)]
    n = len(names)
    per_block = {
        "penalty_labels": penalty_labels,
        "nullspace_dims": nullspace_dims,
        "rho_slots": rho_slots,
    }
    if basis_metas is not None:
        per_block["basis_metas"] = basis_metas  # type: ignore[assignment]
    for key, seq in per_block.items():
        if len(seq) != n:
            raise ValueError(f"{key}: expected {n} entries (one per block), got {len(seq)}")
    if not isinstance(gauge, Gauge):
        raise TypeError("gauge: expected Gauge")
    rho_v = as_float_vector(rho, "rho", finite=False)
    betas = list(reduced_block_beta)
    if len(betas) != n or gauge.n_blocks != n or len(gauge.block_starts_reduced) != n + 1:
        logger.debug("capture skipped: block count mismatch")
        return None
    if not gauge.is_valid():
        logger.debug("capture skipped: invalid gauge (%s)", gauge.problem())
        return None
    widths = gauge.reduced_widths()
    for b, beta in enumerate(betas):
        if np.asarray(beta).shape != (widths[b],):
            logger.debug("capture skipped: block %d beta length != reduced width", b)
            return None
    raw = gauge.lift_block_betas(betas)
    terms: list[TermArtifact] = []
    identities: list[TermIdentity] = []
    for b in range(n):
        if not np.isfinite(raw[b]).all():
            logger.debug("capture skipped: non-finite raw beta in block %d", b)
            return None
        slots = [as_count(s, f"rho_slots[{b}]") for s in rho_slots[b]]
        term_rho = np.array([rho_v[s] for s in slots if s < rho_v.shape[0]], dtype=np.float64)
        if not np.isfinite(term_rho).all():
            logger.debug("capture skipped: non-finite rho for block %d", b)
            return None
        role = TermRole.from_block_name(names[b])
        identity = term_identity_from_block(
            role, names[b], list(penalty_labels[b]), list(nullspace_dims[b]), widths[b]
        )
        meta = None if basis_metas is None else basis_metas[b]
        identities.append(identity)
        terms.append(
            TermArtifact(
                identity=identity,
                role=role,
                basis_meta=BasisMeta.block_spec(widths[b]) if meta is None else meta,
                raw_beta=raw[b],
                rho_for_term=term_rho,
            )
        )
    kind = as_str(family_kind, "family_kind")
    extra = {} if created_unix_secs is None else {"created_unix_secs": created_unix_secs}
    artifact = FitArtifact(
        descriptor=FitDescriptor(
            family_kind=kind,
            term_identities=tuple(identities),
            response_signature=ResponseSig(kind, 1),
            row_population=RowPopulationTag(as_count(n_rows, "n_rows")),
        ),
        terms=tuple(terms),
        global_=GlobalFitSummary(float(outer_objective), bool(converged), n_rows),
        schema=FIT_ARTIFACT_SCHEMA,
        **extra,  # type: ignore[arg-type]
    )
    if not artifact.is_usable():
        logger.debug("capture skipped: %s", artifact.unusable_reason())
        return None
    return artifact
