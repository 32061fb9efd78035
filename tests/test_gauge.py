"""Gauge: raw = T·θ + a with block partitions (spec §7, checklist 68-69)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore.gauge import Gauge


def sum_to_zero(k: int, seed: int = 0) -> np.ndarray:
    """A k×(k−1) orthonormal basis of the null space of a random centring row."""
    c = np.random.default_rng(seed).uniform(0.5, 1.5, size=(1, k))
    q, _ = np.linalg.qr(c.T, mode="complete")
    return q[:, 1:]


def test_identity_gauge() -> None:
    g = Gauge.identity([1, 3, 0, 2])
    g.validate()
    assert g.n_blocks == 4 and g.raw_total == 6 and g.reduced_total == 6
    assert g.block_starts_raw == (0, 1, 4, 4, 6)
    betas = [np.array([1.0]), np.array([2.0, 3.0, 4.0]), np.empty(0), np.array([5.0, 6.0])]
    lifted = g.lift_block_betas(betas)
    for a, b in zip(lifted, betas, strict=True):
        assert np.array_equal(a, b)
    assert not lifted[0].flags.writeable


def test_block_diagonal_lift_with_shift() -> None:
    t1 = sum_to_zero(5)
    shift = np.arange(6, dtype=float)
    g = Gauge.block_diagonal([np.eye(1), t1], affine_shift=shift)
    g.validate()
    assert g.t_full.shape == (6, 5)
    assert g.raw_widths() == (1, 5) and g.reduced_widths() == (1, 4)
    theta = [np.array([2.0]), np.array([1.0, -1.0, 0.5, 0.25])]
    raw = g.lift_block_betas(theta)
    full = g.t_full @ np.concatenate(theta) + shift
    assert np.allclose(np.concatenate(raw), full, rtol=0, atol=0)
    # The block product is the same sum as the full product's rows, but BLAS may add the
    # terms in another order on another CPU: equal to rounding, not bit for bit.
    block = t1 @ theta[1] + shift[1:]
    np.testing.assert_allclose(raw[1], block, rtol=0, atol=8 * np.finfo(float).eps * 5)
    assert not np.allclose(raw[1], t1 @ theta[1], rtol=0, atol=1e-6)  # the shift is applied


def test_lift_block_betas_checks_counts_and_widths() -> None:
    g = Gauge.block_diagonal([np.eye(2), sum_to_zero(4)])
    with pytest.raises(ValueError, match="expected 2 blocks, got 1"):
        g.lift_block_betas([np.zeros(2)])
    with pytest.raises(ValueError, match=r"thetas\[1\]: expected length 3, got 4"):
        g.lift_block_betas([np.zeros(2), np.zeros(4)])
    bad = Gauge(np.eye(2), np.zeros(2), (0, 2), (1, 2))
    with pytest.raises(ValueError, match="must start at 0"):
        bad.lift_block_betas([np.zeros(1)])


def _valid() -> dict[str, Any]:
    return dict(
        t_full=np.eye(3)[:, :2],
        affine_shift=np.zeros(3),
        block_starts_raw=(0, 1, 3),
        block_starts_reduced=(0, 1, 2),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"block_starts_raw": (1, 1, 3)}, "block_starts_raw must start at 0"),
        ({"block_starts_reduced": (1, 1, 2)}, "block_starts_reduced must start at 0"),
        ({"block_starts_raw": (0, 2, 1, 3), "block_starts_reduced": (0, 1, 1, 2)}, "decreases"),
        ({"block_starts_reduced": (0, 2, 1)}, "block_starts_reduced decreases at index 2"),
        ({"block_starts_raw": (0, 3)}, "partition lengths differ"),
        ({"block_starts_raw": (), "block_starts_reduced": ()}, "block_starts_raw is empty"),
        ({"t_full": np.eye(3)}, r"t_full has shape \(3, 3\), partitions give \(3, 2\)"),
        (
            {
                "t_full": np.eye(2, 3),
                "block_starts_raw": (0, 1, 2),
                "block_starts_reduced": (0, 1, 3),
            },
            "reduced total 3 exceeds raw total 2",
        ),
        ({"affine_shift": np.zeros(2)}, "affine_shift has length 2, expected 3"),
        ({"t_full": np.array([[1.0, 0.0], [0.0, np.nan], [0.0, 0.0]])}, "t_full has non-finite"),
        ({"affine_shift": np.array([0.0, np.inf, 0.0])}, "affine_shift has non-finite"),
    ],
)
def test_checklist_68_validate_rejects(change: dict[str, Any], message: str) -> None:
    Gauge(**_valid()).validate()
    g = Gauge(**{**_valid(), **change})
    assert not g.is_valid()
    with pytest.raises(ValueError, match=message):
        g.validate()


def test_checklist_69_block_transform_slabs_and_none() -> None:
    t1 = sum_to_zero(4)
    g = Gauge.block_diagonal([np.eye(1), t1])
    slab = g.block_transform(1)
    assert slab is not None and np.array_equal(slab, t1)
    assert not slab.flags.writeable
    assert np.array_equal(g.block_transform(0), np.eye(1))  # type: ignore[arg-type]
    for b in (2, 5, -1):
        assert g.block_transform(b) is None  # index out of range
    inverted_rows = Gauge(np.eye(3), np.zeros(3), (0, 2, 1, 3), (0, 1, 2, 3))
    assert inverted_rows.block_transform(1) is None
    inverted_cols = Gauge(np.eye(3), np.zeros(3), (0, 1, 2, 3), (0, 2, 1, 3))
    assert inverted_cols.block_transform(1) is None
    too_tall = Gauge(np.eye(3), np.zeros(3), (0, 1, 4), (0, 1, 3))
    assert too_tall.block_transform(1) is None  # r1 > nrows
    too_wide = Gauge(np.eye(3), np.zeros(3), (0, 1, 3), (0, 1, 4))
    assert too_wide.block_transform(1) is None  # c1 > ncols
    assert too_wide.block_transform(0) is not None


def test_block_transform_of_triangular_gauge_is_the_diagonal_slab() -> None:
    t = np.array([[1.0, -0.5, 0.2], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    g = Gauge(t, np.zeros(3), (0, 1, 3), (0, 1, 3))
    g.validate()
    assert np.array_equal(g.block_transform(1), t[1:, 1:])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"t_full": np.zeros(3)}, ValueError, r"Gauge\.t_full: expected a 2-D"),
        ({"t_full": [["a"]]}, TypeError, r"Gauge\.t_full: expected real"),
        ({"affine_shift": np.zeros((3, 1))}, ValueError, r"Gauge\.affine_shift: expected a 1-D"),
        ({"block_starts_raw": (0, -1, 3)}, ValueError, r"Gauge\.block_starts_raw\[1\]"),
        ({"block_starts_reduced": "012"}, TypeError, r"Gauge\.block_starts_reduced"),
        ({"block_starts_raw": (0, 1.5, 3)}, TypeError, r"Gauge\.block_starts_raw\[1\]"),
    ],
)
def test_constructor_errors_name_the_field(kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        Gauge(**{**_valid(), **kwargs})


def test_gauge_is_immutable_and_copies() -> None:
    t = np.eye(2)
    g = Gauge(t, np.zeros(2), [0, 2], [0, 2])
    t[0, 0] = 5.0
    assert g.t_full[0, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        g.t_full[0, 0] = 2.0
    assert g == Gauge.identity([2])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.integers(0, 2**31))
def test_lift_matches_dense_product(widths: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    blocks = [sum_to_zero(w + 1, seed) if w > 1 else np.eye(w) for w in widths]
    shift = rng.normal(size=sum(b.shape[0] for b in blocks))
    g = Gauge.block_diagonal(blocks, affine_shift=shift)
    g.validate()
    thetas = [rng.normal(size=b.shape[1]) for b in blocks]
    lifted = np.concatenate(g.lift_block_betas(thetas))
    assert np.allclose(lifted, g.t_full @ np.concatenate(thetas) + shift, atol=1e-14)
    for b, blk in enumerate(blocks):
        assert np.array_equal(g.block_transform(b), blk)  # type: ignore[arg-type]
