"""Unit tests of the LOSO building blocks that need no fitter: simulation, deviance, Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requires import require

from gamstore.loso import deviance, simulate
from gamstore.loso.folds import FoldOutcome
from gamstore.loso.results import build_dataset, term_names


def test_simulate_is_appendix_b() -> None:
    df = simulate("gaussian")
    assert list(df.columns) == ["x0", "x1", "x2", "y", "subj"]
    assert len(df) == 2000
    assert np.array_equal(np.bincount(df["subj"]), np.full(10, 200))
    # the first draws of default_rng(20240601) are the covariates, row by row
    rng = np.random.default_rng(20240601)
    x = rng.uniform(size=(2000, 3))
    np.testing.assert_array_equal(df[["x0", "x1", "x2"]].to_numpy(), x)
    # the noise is the next draw: y - eta is N(0, 0.7^2) exactly as the reference draws it
    f1 = np.exp(2 * x[:, 1])
    f2 = (
        0.2 * x[:, 2] ** 11 * (10 * (1 - x[:, 2])) ** 6
        + 10 * (10 * x[:, 2]) ** 3 * (1 - x[:, 2]) ** 10
    )
    eta = np.sin(2 * np.pi * x[:, 0]) + (f1 - f1.mean()) / f1.std() + (f2 - f2.mean()) / f2.std()
    np.testing.assert_allclose(df["y"] - eta, rng.normal(scale=0.7, size=2000), atol=1e-12)


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_simulate_discrete_families(family: str) -> None:
    df = simulate(family, n=300, n_subjects=3, seed=1)
    y = df["y"].to_numpy()
    assert np.all(y == np.round(y)) and np.all(y >= 0)
    if family == "binomial":
        assert set(np.unique(y)) <= {0.0, 1.0}
    assert df.equals(simulate(family, n=300, n_subjects=3, seed=1))
    assert not df.equals(simulate(family, n=300, n_subjects=3, seed=2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"family": "gamma"}, "family"),
        ({"n_subjects": 1}, "n_subjects"),
        ({"n": 1001, "n_subjects": 10}, "n"),
    ],
)
def test_simulate_bad_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        simulate(**kwargs)  # type: ignore[arg-type]


def _statsmodels():  # type: ignore[no-untyped-def]
    """statsmodels as an independent deviance oracle (skip without it, fail under CI)."""
    try:
        import statsmodels.api as sm
    except ImportError:
        require(False, "statsmodels")
        raise
    return sm


finite = st.floats(min_value=0.01, max_value=50.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), finite), min_size=1, max_size=30))
def test_poisson_deviance_matches_statsmodels(pairs: list[tuple[int, float]]) -> None:
    sm = _statsmodels()

    y = np.array([p[0] for p in pairs], dtype=float)
    mu = np.array([p[1] for p in pairs])
    expected = sm.families.Poisson().deviance(y, mu)
    assert deviance("poisson", y, mu) == pytest.approx(expected, rel=1e-10, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 1.0]), st.floats(0.001, 0.999)), min_size=1, max_size=30
    )
)
def test_binomial_deviance_matches_statsmodels(pairs: list[tuple[float, float]]) -> None:
    sm = _statsmodels()

    y = np.array([p[0] for p in pairs])
    mu = np.array([p[1] for p in pairs])
    expected = sm.families.Binomial().deviance(y, mu)
    assert deviance("binomial", y, mu) == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_gaussian_deviance_and_support() -> None:
    assert deviance("gaussian", [1.0, 2.0], [0.0, 4.0]) == 5.0
    assert deviance("gaussian", [1.0, 2.0], [0.0, 4.0], weights=[2.0, 1.0]) == 6.0
    assert deviance("poisson", [3.0], [0.0]) == float("inf")
    with pytest.raises(ValueError, match="mu"):
        deviance("gaussian", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="family"):
        deviance("tweedie", [1.0], [1.0])  # gamma is supported since the families work


def test_term_names() -> None:
    edf = {"(parametric)": 1.0, "s(x0)": 3.0, "s(x1)": 2.0}
    assert term_names(np.zeros(2), edf) == ["s(x0)", "s(x1)"]
    assert term_names(np.zeros(3), edf) == ["sp0", "sp1", "sp2"]


def _outcome(subject: int, mode: str, ok: bool) -> FoldOutcome:
    out = FoldOutcome(subject=subject, mode=mode, attempts=1 if ok else 2)
    if ok:
        out.status = "ok"
        out.rho = np.array([1.0 + subject, 2.0])
        out.edf = {"(parametric)": 1.0, "s(a)": 3.5, "s(b)": 2.5}
        out.reml, out.n_outer, out.n_pirls_calls, out.n_pirls_iters = 10.0 + subject, 2, 3, 4
        out.wall_time, out.warm_source, out.converged = 0.01, mode, True
        out.heldout_deviance, out.heldout_n = 5.0, 7
    else:
        out.error = "ValueError: unidentifiable"
    return out


def test_build_dataset_layout_and_failures() -> None:
    full = {
        "rho": np.array([1.5, 2.5]),
        "edf": {"(parametric)": 1.0, "s(a)": 4.0, "s(b)": 3.0},
        "reml": 100.0,
        "scale": 0.5,
        "n_outer": 5,
        "n_pirls_calls": 6,
        "n_pirls_iters": 7,
        "wall_time": 0.02,
        "warm_source": "cold",
    }
    outcomes = [
        _outcome(s, m, ok=(s, m) != (2, "cold")) for s in (3, 1, 2) for m in ("cold", "warm")
    ]
    ds = build_dataset([1, 2, 3], ["warm", "cold"], outcomes, full, {"family": "gaussian"})
    assert dict(ds.sizes) == {"fold": 3, "start": 2, "term": 2, "penalty": 2}
    assert list(ds["fold"].values) == [1, 2, 3]
    assert list(ds["term"].values) == ["s(a)", "s(b)"]
    np.testing.assert_array_equal(ds["rho"].sel(start="warm").values[:, 0], [2.0, 3.0, 4.0])
    failed = ds.sel(fold=2, start="cold")
    assert str(failed["status"].values) == "failed"
    assert "unidentifiable" in str(failed["error"].values)
    assert int(failed["attempts"]) == 2
    assert np.isnan(failed["rho"]).all() and np.isnan(float(failed["reml"]))
    assert ds.attrs["n_failed"] == 1
    assert float(ds["full_reml"]) == 100.0 and ds.attrs["full_reml"] == 100.0
    np.testing.assert_array_equal(ds["full_edf"].values, [4.0, 3.0])
    assert float(ds["edf_total"].sel(fold=1, start="warm")) == 7.0


def test_plot_loso_rejects_other_datasets() -> None:
    import xarray as xr

    from gamstore.plotting import plot_loso

    with pytest.raises(TypeError, match="ds: expected the xarray.Dataset"):
        plot_loso({"rho": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing variables"):
        plot_loso(xr.Dataset({"rho": ("x", [1.0])}))


def test_plot_loso_draws_every_fold(tmp_path: Path) -> None:
    outcomes = [
        _outcome(s, m, ok=(s, m) != (2, "cold")) for s in (1, 2, 3) for m in ("cold", "warm")
    ]
    full = {
        "rho": np.array([1.5, 2.5]),
        "edf": {"(parametric)": 1.0, "s(a)": 4.0, "s(b)": 3.0},
        "reml": 100.0,
        "scale": 0.5,
        "n_outer": 5,
        "n_pirls_calls": 6,
        "n_pirls_iters": 7,
        "wall_time": 0.02,
        "warm_source": "cold",
    }
    ds = build_dataset([1, 2, 3], ["warm", "cold"], outcomes, full, {"family": "gaussian"})
    from gamstore.plotting import plot_loso

    fig = plot_loso(ds, tmp_path / "p.png")
    ax_rho, ax_it, ax_t = fig.axes
    assert len(ax_rho.lines) == 2 * 2  # per term: the fold points and the full-data line
    assert [len(c) for c in ax_it.containers] == [3, 3]  # warm and cold bars per fold
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
