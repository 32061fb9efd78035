"""Gauge: the affine map from a solver's reduced coordinates to raw coefficients (spec §7).

``raw = T @ theta + a``. ``T`` (``t_full``) has shape (Σ raw widths, Σ reduced widths); it is
block-diagonal for independent per-block reductions (e.g. the sum-to-zero constraint of each
smooth, a tall k×(k−1) block) or block-upper-triangular for cross-block residualisation.
Two prefix partitions split rows (raw) and columns (reduced) into blocks.

The constructor only normalises types, so a malformed gauge can be built and then diagnosed by
:meth:`Gauge.validate` (which raises ``ValueError`` with the reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from gamstore.records import (
    FloatArray,
    FrozenArrays,
    _readonly,
    as_count,
    as_float_matrix,
    as_float_vector,
)

__all__ = ["Gauge"]


def _partition(value: Sequence[int], name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected a sequence of non-negative ints")
    return tuple(as_count(v, f"{name}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True, eq=False)
class Gauge(FrozenArrays):
    """Affine lift ``raw = T·θ + a`` with per-block partitions.

    Parameters
    ----------
    t_full : array_like, shape (raw_total, reduced_total)
    affine_shift : array_like, shape (raw_total,)
        Usually zero.
    block_starts_raw : sequence of int
        Length B+1 prefix partition of the rows, starting at 0.
    block_starts_reduced : sequence of int
        Length B+1 prefix partition of the columns, starting at 0.
    """

    t_full: FloatArray
    affine_shift: FloatArray
    block_starts_raw: tuple[int, ...]
    block_starts_reduced: tuple[int, ...]

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "t_full", as_float_matrix(self.t_full, "Gauge.t_full", finite=False))
        s(
            self,
            "affine_shift",
            as_float_vector(self.affine_shift, "Gauge.affine_shift", finite=False),
        )
        s(self, "block_starts_raw", _partition(self.block_starts_raw, "Gauge.block_starts_raw"))
        s(
            self,
            "block_starts_reduced",
            _partition(self.block_starts_reduced, "Gauge.block_starts_reduced"),
        )

    # -- shape ------------------------------------------------------------------------------
    @property
    def n_blocks(self) -> int:
        """``len(block_starts_raw) - 1`` (0 for an empty partition)."""
        return max(len(self.block_starts_raw) - 1, 0)

    @property
    def raw_total(self) -> int:
        """Last raw boundary (0 for an empty partition)."""
        return self.block_starts_raw[-1] if self.block_starts_raw else 0

    @property
    def reduced_total(self) -> int:
        """Last reduced boundary (0 for an empty partition)."""
        return self.block_starts_reduced[-1] if self.block_starts_reduced else 0

    def raw_widths(self) -> tuple[int, ...]:
        """Raw width of each block."""
        p = self.block_starts_raw
        return tuple(p[i + 1] - p[i] for i in range(len(p) - 1))

    def reduced_widths(self) -> tuple[int, ...]:
        """Reduced width of each block."""
        p = self.block_starts_reduced
        return tuple(p[i + 1] - p[i] for i in range(len(p) - 1))

    # -- checks -----------------------------------------------------------------------------
    def problem(self) -> str | None:
        """The first reason this gauge is invalid (spec §7), or None."""
        raw, red = self.block_starts_raw, self.block_starts_reduced
        if len(raw) != len(red):
            return (
                f"partition lengths differ: block_starts_raw has {len(raw)} entries, "
                f"block_starts_reduced has {len(red)}"
            )
        for name, part in (("block_starts_raw", raw), ("block_starts_reduced", red)):
            if not part:
                return f"{name} is empty (expected B+1 boundaries starting at 0)"
            if part[0] != 0:
                return f"{name} must start at 0, starts at {part[0]}"
            for i in range(len(part) - 1):
                if part[i + 1] < part[i]:
                    return f"{name} decreases at index {i + 1} ({part[i]} -> {part[i + 1]})"
        expected = (self.raw_total, self.reduced_total)
        if self.t_full.shape != expected:
            return f"t_full has shape {self.t_full.shape}, partitions give {expected}"
        if self.reduced_total > self.raw_total:
            return f"reduced total {self.reduced_total} exceeds raw total {self.raw_total}"
        if self.affine_shift.shape[0] != self.raw_total:
            return (
                f"affine_shift has length {self.affine_shift.shape[0]}, expected {self.raw_total}"
            )
        if not np.isfinite(self.t_full).all():
            return "t_full has non-finite values"
        if not np.isfinite(self.affine_shift).all():
            return "affine_shift has non-finite values"
        return None

    def validate(self) -> None:
        """Raise ``ValueError`` with the reason when the gauge is malformed (checklist 68)."""
        problem = self.problem()
        if problem is not None:
            raise ValueError(f"Gauge: {problem}")

    def is_valid(self) -> bool:
        """Whether :meth:`validate` would pass."""
        return self.problem() is None

    # -- maps -------------------------------------------------------------------------------
    def lift_block_betas(self, thetas: Sequence[ArrayLike]) -> tuple[FloatArray, ...]:
        """Raw per-block coefficients ``T·θ + a`` split at the raw partition.

        Parameters
        ----------
        thetas : sequence of array_like
            Exactly ``n_blocks`` reduced vectors, block ``b`` of its reduced width.

        Returns
        -------
        tuple of numpy.ndarray
            Read-only raw coefficient vectors, one per block.

        Raises
        ------
        ValueError
            If the gauge is invalid or the block count / widths do not match.
        """
        self.validate()
        thetas = list(thetas)
        if len(thetas) != self.n_blocks:
            raise ValueError(f"thetas: expected {self.n_blocks} blocks, got {len(thetas)}")
        widths = self.reduced_widths()
        parts = [
            as_float_vector(t, f"thetas[{b}]", length=widths[b], finite=False)
            for b, t in enumerate(thetas)
        ]
        theta = np.concatenate(parts) if parts else np.empty(0)
        raw = self.t_full @ theta + self.affine_shift
        p = self.block_starts_raw
        return tuple(_readonly(raw[p[b] : p[b + 1]].copy()) for b in range(self.n_blocks))

    def block_transform(self, b: int) -> FloatArray | None:
        """Diagonal slab ``T[raw range b, reduced range b]`` (a copy), or None.

        None when ``b`` is out of range or the partitions give an inverted or out-of-bounds
        slab (checklist 69). For a triangular gauge the cross-block terms are omitted.
        """
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0:
            return None
        b = int(b)
        raw, red = self.block_starts_raw, self.block_starts_reduced
        if b + 1 >= len(raw) or b + 1 >= len(red):
            return None
        r0, r1, c0, c1 = raw[b], raw[b + 1], red[b], red[b + 1]
        nrows, ncols = self.t_full.shape
        if r1 < r0 or c1 < c0 or r1 > nrows or c1 > ncols:
            return None
        return _readonly(self.t_full[r0:r1, c0:c1].copy())

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def identity(cls, widths: Sequence[int]) -> Gauge:
        """T = I per block (no reduction), zero shift."""
        w = _partition(widths, "widths")
        starts = tuple(int(x) for x in np.concatenate([[0], np.cumsum(w, dtype=np.int64)]))
        n = starts[-1]
        return cls(np.eye(n), np.zeros(n), starts, starts)

    @classmethod
    def block_diagonal(
        cls, blocks: Sequence[ArrayLike], affine_shift: ArrayLike | None = None
    ) -> Gauge:
        """Block-diagonal gauge from per-block ``T_b`` (raw_b × reduced_b) matrices.

        Parameters
        ----------
        blocks : sequence of array_like
            2-D matrices, e.g. ``np.eye(1)`` for an intercept and a k×(k−1) sum-to-zero basis
            for a smooth.
        affine_shift : array_like, optional
            Defaults to zeros.
        """
        mats = [as_float_matrix(t, f"blocks[{i}]", finite=False) for i, t in enumerate(blocks)]
        rows = [m.shape[0] for m in mats]
        cols = [m.shape[1] for m in mats]
        raw_starts = tuple(int(x) for x in np.concatenate([[0], np.cumsum(rows, dtype=np.int64)]))
        red_starts = tuple(int(x) for x in np.concatenate([[0], np.cumsum(cols, dtype=np.int64)]))
        t = np.zeros((raw_starts[-1], red_starts[-1]))
        for i, m in enumerate(mats):
            t[raw_starts[i] : raw_starts[i + 1], red_starts[i] : red_starts[i + 1]] = m
        shift = np.zeros(raw_starts[-1]) if affine_shift is None else affine_shift
        return cls(t, np.asarray(shift), raw_starts, red_starts)
