"""Pure tests of the many-fits Dataset assembly (no store involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamstore.views.assemble import assemble_fits
from gamstore.views.rows import LAYOUTS, FitRow, layout_for


def _artifact_row(
    entry_id: str, created: int, rho: list[list[float]], beta: list[list[float]]
) -> FitRow:
    n = len(rho)
    return FitRow(
        entry_id=entry_id,
        key=f"cf-{entry_id}",
        keyspace="artifact",
        created=created,
        kind="checkpoint",
        family="poisson",
        descriptor_key=f"cf-{entry_id}",
        objective=float(created),
        n_rows=100 + created,
        iterations=created,
        converged=True,
        labels={
            "term_name": [f"s(x{i})" for i in range(n)],
            "term_basis": [f"ps{i}" for i in range(n)],
            "term_role": ["Mean"] * n,
            "term_identity": ["ab" * 32] * n,
        },
        nested={"rho": rho, "beta": beta},
    )


def test_artifact_rows_are_padded_masked_and_sorted() -> None:
    late = _artifact_row("e2", 20, [[0.5], [1.0, 2.0]], [[1.0, 2.0, 3.0], [4.0]])
    early = _artifact_row("e1", 10, [[]], [[9.0]])
    ds = assemble_fits([late, early], "artifact")

    assert list(ds["fit"].values) == ["e1", "e2"]  # sorted by creation time
    assert ds.sizes == {"fit": 2, "term": 2, "penalty": 2, "coef": 3}
    np.testing.assert_array_equal(ds["n_term"].values, [1, 2])
    np.testing.assert_array_equal(ds["n_coef"].values, [[1, 0], [3, 1]])
    np.testing.assert_array_equal(ds["n_penalty"].values, [[0, 0], [1, 2]])
    e2 = ds.sel(fit="e2")
    np.testing.assert_array_equal(e2["beta"].values[0], [1.0, 2.0, 3.0])
    assert e2["beta"].values[1, 0] == 4.0 and np.isnan(e2["beta"].values[1, 1:]).all()
    np.testing.assert_array_equal(e2["rho_mask"].values, [[True, False], [True, True]])
    # the mask is exactly where values were stored
    assert (np.isfinite(ds["beta"].values) == ds["beta_mask"].values).all()
    assert list(ds["term_basis"].sel(fit="e1").values) == ["ps0", ""]
    assert ds["created"].dtype == np.dtype("datetime64[ns]")
    assert ds["created"].values[0] == np.datetime64(10, "ns")
    np.testing.assert_array_equal(ds["objective"].values, [10.0, 20.0])
    np.testing.assert_array_equal(ds["n_rows"].values, [110, 120])
    assert ds["key"].sel(fit="e2").item() == "cf-e2"
    assert ds["rho"].attrs["long_name"] == "log smoothing parameter"
    assert ds["rho"].attrs["units"] == "1"
    assert ds.attrs["gamstore"]["keyspace"] == "artifact"


def test_empty_keyspace_has_all_variables() -> None:
    for keyspace in LAYOUTS:
        ds = assemble_fits([], keyspace)
        assert ds.sizes["fit"] == 0
        for name in layout_for(keyspace).flat:
            assert name in ds and f"{name}_mask" in ds


def test_block_layout() -> None:
    row = FitRow(
        entry_id="b1",
        key="block-key",
        keyspace="block",
        created=1,
        kind="checkpoint",
        labels={"block_name": ["(parametric)", "s(x0)"]},
        nested={"block_beta": [[1.0], [2.0, 3.0, 4.0]]},
        flat={"rho": [0.25]},
    )
    ds = assemble_fits([row], "block")
    assert ds["block_beta"].dims == ("fit", "block", "coef")
    assert ds["rho"].dims == ("fit", "penalty")
    assert list(ds["block_name"].values[0]) == ["(parametric)", "s(x0)"]
    np.testing.assert_array_equal(ds["n_coef"].values, [[1, 3]])
    assert math.isnan(float(ds["objective"].values[0]))


def test_bad_rows_are_rejected_with_field_names() -> None:
    with pytest.raises(ValueError, match="keyspace"):
        layout_for("nope")
    with pytest.raises(ValueError, match=r"FitRow.flat"):
        FitRow("e", "k", "outer", 0, "final", flat={"rho": [1.0]})
    with pytest.raises(ValueError, match=r"nested\['beta'\]"):
        FitRow(
            "e",
            "k",
            "artifact",
            0,
            "final",
            labels={
                "term_name": ["s(x)"],
                "term_basis": ["a"],
                "term_role": ["Mean"],
                "term_identity": ["x"],
            },
            nested={"rho": [[1.0]], "beta": [[1.0], [2.0]]},
        )
    with pytest.raises(ValueError, match="1-D"):
        FitRow("e", "k", "outer", 0, "final", flat={"rho": [[1.0]], "beta": [1.0]})
    row = FitRow("e", "k", "outer", 0, "final", flat={"rho": [1.0], "beta": []})
    with pytest.raises(ValueError, match="rows\\[0\\].keyspace"):
        assemble_fits([row], "inner")
    with pytest.raises(ValueError, match="unique"):
        assemble_fits([row, row], "outer")


vectors = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=6)


@given(st.lists(st.lists(vectors, min_size=0, max_size=4), min_size=0, max_size=6))
def test_padding_round_trips(fits: list[list[list[float]]]) -> None:
    rows = [
        _artifact_row(f"e{i:03d}", i, [v[:2] for v in terms], terms) for i, terms in enumerate(fits)
    ]
    ds = assemble_fits(rows, "artifact")
    for i, terms in enumerate(fits):
        fit = ds.isel(fit=i)
        assert int(fit["n_term"]) == len(terms)
        for t, values in enumerate(terms):
            n = int(fit["n_coef"].values[t])
            assert n == len(values)
            np.testing.assert_array_equal(fit["beta"].values[t, :n], values)
            assert fit["beta_mask"].values[t, :n].all() and not fit["beta_mask"].values[t, n:].any()
            assert np.isnan(fit["beta"].values[t, n:]).all()


@given(st.lists(st.lists(vectors, min_size=0, max_size=4), min_size=0, max_size=6))
def test_dataset_rows_inverts_assembly(fits: list[list[list[float]]]) -> None:
    from gamstore.views.assemble import dataset_rows

    rows = [
        _artifact_row(f"e{i:03d}", i, [v[:2] for v in terms], terms) for i, terms in enumerate(fits)
    ]
    ds = assemble_fits(rows, "artifact")
    back = dataset_rows(ds, "artifact")
    assert [r.entry_id for r in back] == [r.entry_id for r in rows]
    for a, b in zip(rows, back, strict=True):
        assert (a.key, a.kind, a.family, a.n_rows, a.iterations, a.converged) == (
            b.key,
            b.kind,
            b.family,
            b.n_rows,
            b.iterations,
            b.converged,
        )
        assert a.labels == b.labels
        for name in ("rho", "beta"):
            assert len(a.nested[name]) == len(b.nested[name])
            for x, y in zip(a.nested[name], b.nested[name], strict=True):
                np.testing.assert_array_equal(x, y)
    import xarray as xr

    xr.testing.assert_identical(assemble_fits(back, "artifact"), ds)


def test_dataset_rows_flat_layout_and_bad_input() -> None:
    from gamstore.views.assemble import dataset_rows

    row = FitRow(
        "e", "k", "outer", 5, "final", objective=2.0, flat={"rho": [1.0], "beta": [2.0, 3.0]}
    )
    (back,) = dataset_rows(assemble_fits([row], "outer"), "outer")
    np.testing.assert_array_equal(back.flat["beta"], [2.0, 3.0])
    assert back.objective == 2.0 and back.created == 5
    with pytest.raises(ValueError, match="missing"):
        dataset_rows(assemble_fits([row], "outer"), "artifact")
