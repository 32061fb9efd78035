"""Inner iteration cap from a warm start (spec §8.2, checklist 70)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamstore.warmstart.inner_cap import InnerCap, next_inner_cap


def test_no_cached_summary_gives_full_budget() -> None:
    cap, g0 = next_inner_cap(100, None, True, 3.0, None)
    assert cap == 100
    assert g0 is None  # the gradient is not even recorded without a summary


def test_converged_cycles_plus_margin_clamped_to_floor() -> None:
    # full 100 -> floor 64; 6 + 5 = 11 is lifted to the floor
    assert next_inner_cap(100, 6, True, None, None)[0] == 64
    # cycles + 5 above the floor passes through
    assert next_inner_cap(200, 80, True, None, None)[0] == 85


def test_unconverged_doubles() -> None:
    # max(2*80, 85) = 160
    assert next_inner_cap(500, 80, False, None, None)[0] == 160
    # small counts: max(2*2, 2+5) = 7 -> floor min(10, 64) = 10 = full
    assert next_inner_cap(10, 2, False, None, None)[0] == 10


def test_small_full_budget_floor_is_full() -> None:
    # full 8 < 64: floor = 8 and cap can never exceed full
    assert next_inner_cap(8, 1, True, None, None)[0] == 8
    assert next_inner_cap(0, 1, True, None, None)[0] == 1  # full = max(0, 1)


def test_clamped_to_full() -> None:
    assert next_inner_cap(100, 300, False, None, None)[0] == 100


def test_gradient_ratio_uncaps() -> None:
    cap, g0 = next_inner_cap(200, 80, True, 5.0, None)
    assert (cap, g0) == (85, 5.0)  # first norm recorded
    cap, g0 = next_inner_cap(200, 80, True, 0.051, g0)
    assert (cap, g0) == (85, 5.0)  # ratio 0.0102 is not below 0.01
    cap, g0 = next_inner_cap(200, 80, True, 0.049, g0)
    assert (cap, g0) == (200, 5.0)  # below 1% of the first norm: full budget


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_non_finite_or_non_positive_gradient_ignored(bad: float) -> None:
    cap, g0 = next_inner_cap(200, 80, True, bad, None)
    assert (cap, g0) == (85, None)


def test_stateful_wrapper_tracks_first_norm() -> None:
    ic = InnerCap(full_budget=200)
    assert ic.cap == 200
    assert ic.update(80, True, 4.0) == 85
    assert ic.initial_gradient_norm == 4.0
    assert ic.update(80, True, 1.0) == 85
    assert ic.update(80, True, 0.01) == 200
    assert ic.update(None, True, 1.0) == 200
    with pytest.raises(TypeError, match="full_budget"):
        InnerCap(full_budget="100")  # type: ignore[arg-type]


@given(
    full=st.integers(0, 2000),
    cycles=st.integers(0, 5000),
    converged=st.booleans(),
)
def test_cap_always_within_bounds(full: int, cycles: int, converged: bool) -> None:
    cap, _ = next_inner_cap(full, cycles, converged, None, None)
    f = max(full, 1)
    assert min(f, 64) <= cap <= f
    expected = cycles + 5 if converged else max(2 * cycles, cycles + 5)
    assert cap == min(max(expected, min(f, 64)), f)
