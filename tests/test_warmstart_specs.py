"""Typed block / penalty / option specs of the warm-start layer."""

from __future__ import annotations

import numpy as np
import pytest

from gamstore.warmstart.specs import (
    BlockSpec,
    BlockwisePenalty,
    DensePenalty,
    DiagonalPenalty,
    FitOptions,
    FixedPenalty,
    KroneckerPenalty,
    LabeledPenalty,
    cache_shape,
    penalty_dim,
    penalty_label,
    physical_to_outer,
)


def test_block_spec_keeps_float64_arrays_without_copy() -> None:
    x = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    spec = BlockSpec("s(x)", x, penalties=[DensePenalty(np.eye(3))])
    assert spec.design is x  # no copy of a float64 design, layout kept
    assert spec.offset is not None and np.array_equal(spec.offset, np.zeros(4))
    assert spec.n_rows == 4 and spec.width == 3
    assert spec.initial_log_lambdas is not None and spec.initial_log_lambdas.shape == (0,)


def test_block_spec_casts_integer_design() -> None:
    spec = BlockSpec("b", np.arange(6).reshape(3, 2))
    assert spec.design.dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"design": np.zeros(3)}, ValueError, r"design: expected a 2-D array of shape \(n, p\)"),
        ({"design": np.zeros((3, 2)), "offset": np.zeros(4)}, ValueError, r"offset.*\(3,\)"),
        (
            {"design": np.zeros((3, 2)), "penalties": [DensePenalty(np.eye(3))]},
            ValueError,
            r"penalties\[0\].*width 2",
        ),
        (
            {"design": np.zeros((3, 2)), "penalties": DensePenalty(np.eye(2))},
            TypeError,
            "sequence of penalties",
        ),
        ({"design": np.zeros((3, 2)), "penalties": [np.eye(2)]}, TypeError, r"penalties\[0\]"),
        ({"design": np.zeros((3, 2)), "nullspace_dims": [-1]}, ValueError, "nullspace_dims"),
        (
            {"design": np.zeros((3, 2)), "initial_log_lambdas": [np.nan]},
            ValueError,
            "initial_log_lambdas",
        ),
        ({"design": np.array([["a"]])}, TypeError, "design"),
    ],
)
def test_block_spec_rejects_bad_input(kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        BlockSpec("blk", **kwargs)


def test_penalty_validation_and_dims() -> None:
    with pytest.raises(ValueError, match=r"DensePenalty.matrix: expected a square"):
        DensePenalty(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="col_start <= col_end"):
        BlockwisePenalty(np.eye(2), 3, 1, 5)
    with pytest.raises(ValueError, match=r"BlockwisePenalty.local: expected shape \(2, 2\)"):
        BlockwisePenalty(np.eye(3), 1, 3, 5)
    with pytest.raises(TypeError, match="LabeledPenalty.inner"):
        LabeledPenalty("a", np.eye(2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FixedPenalty.log_lambda"):
        FixedPenalty("1", DensePenalty(np.eye(2)))  # type: ignore[arg-type]
    assert penalty_dim(KroneckerPenalty(np.eye(2), np.eye(3))) == 6
    assert penalty_dim(BlockwisePenalty(np.eye(2), 1, 3, 5)) == 5
    assert penalty_dim(DiagonalPenalty(np.ones(4))) == 4
    fixed = FixedPenalty(1.5, LabeledPenalty("tau", DiagonalPenalty(np.ones(4))))
    assert penalty_dim(fixed) == 4
    assert penalty_label(fixed) == "tau"
    assert penalty_label(DensePenalty(np.eye(2))) is None


def test_fit_options_validation() -> None:
    FitOptions()
    with pytest.raises(ValueError, match="FitOptions.inner_max_cycles"):
        FitOptions(inner_max_cycles=0)
    with pytest.raises(ValueError, match="FitOptions.inner_tol"):
        FitOptions(inner_tol=float("nan"))
    with pytest.raises(TypeError, match="FitOptions.use_reml"):
        FitOptions(use_reml=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"FitOptions.extra\[0\]"):
        FitOptions(extra=(("a", 1),))  # type: ignore[arg-type]


def test_physical_to_outer_layout() -> None:
    eye = np.eye(2)
    specs = [
        BlockSpec("(parametric)", np.ones((3, 1))),
        BlockSpec(
            "s(a)",
            np.ones((3, 2)),
            penalties=[DensePenalty(eye), FixedPenalty(0.0, DensePenalty(eye))],
        ),
        BlockSpec(
            "s(b)",
            np.ones((3, 2)),
            penalties=[LabeledPenalty("shared", DensePenalty(eye)), DiagonalPenalty(np.ones(2))],
        ),
        BlockSpec("s(c)", np.ones((3, 2)), penalties=[LabeledPenalty("shared", DensePenalty(eye))]),
    ]
    assert physical_to_outer(specs) == [0, None, 1, 2, 1]
    assert cache_shape(specs) == (3, ["(parametric)", "s(a)", "s(b)", "s(c)"], [1, 2, 2, 2])
    assert cache_shape([]) == (0, [], [])
