"""GAM / FitResult behaviour: coefficients, prediction, frozen knots, explicit warm starts,
callbacks, and memory at n = 200 000."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, ExtrapolationWarning, FitResult, Iterate, s
from gamstore.fit.simulate import FAMILIES, simulate

MODEL = [s("x0"), s("x1"), s("x2")]


@pytest.fixture(scope="module", params=FAMILIES)
def fitted(request: pytest.FixtureRequest) -> tuple[pd.DataFrame, GAM, FitResult]:
    df = simulate(request.param, n=1000, S=10, seed=9)
    model = GAM(MODEL, family=request.param)
    return df, model, model.fit(df, y="y")


def test_result_fields(fitted: tuple[pd.DataFrame, GAM, FitResult]) -> None:
    df, model, res = fitted
    assert res.converged and res.warm == "cold"
    assert res.block_names == ["(parametric)", "s(x0)", "s(x1)", "s(x2)"]
    assert res.rho.shape == (3,)
    assert res.fitted.shape == (len(df),)
    assert res.n_pirls_calls >= res.n_outer + 1
    assert res.n_pirls_iters >= res.n_pirls_calls
    assert set(res.knots) == {"x0", "x1", "x2"} and res.knots["x0"].shape == (14,)
    assert res.edf["(parametric)"] == pytest.approx(1.0)
    assert 1.0 < res.edf["s(x0)"] < 9.0
    assert res.wall_time > 0
    if model.family.name != "gaussian":
        assert res.scale == 1.0
    np.testing.assert_allclose(res.sp, np.exp(res.rho))


def test_raw_and_reduced_coefficients(fitted: tuple[pd.DataFrame, GAM, FitResult]) -> None:
    df, _, res = fitted
    d = res._design
    for b in d.smooths:
        raw = res.beta_raw[b.spec.label]
        red = res.beta_reduced[b.spec.label]
        assert raw.shape == (10,) and red.shape == (9,)
        np.testing.assert_allclose(b.basis.T @ red, raw, atol=1e-12)
        # the raw coefficients satisfy the sum-to-zero constraint on the fit's rows
        B = b.basis.raw_design(df[b.spec.term].to_numpy())
        assert abs(B.mean(axis=0) @ raw) < 1e-10
    np.testing.assert_array_equal(res.beta_raw["(parametric)"], res.beta_reduced["(parametric)"])


def test_predict_reproduces_fitted_and_extrapolates(
    fitted: tuple[pd.DataFrame, GAM, FitResult],
) -> None:
    df, model, res = fitted
    np.testing.assert_allclose(res.predict(df), res.fitted, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.predict(df, type="link"), res.linear_predictor, atol=1e-10)
    np.testing.assert_allclose(
        model.family.mu(res.predict(df, type="link")), res.predict(df, type="response")
    )
    out = pd.DataFrame({"x0": [-0.2, 1.3], "x1": [0.5, 0.5], "x2": [0.5, 0.5]})
    with pytest.warns(ExtrapolationWarning, match="x0: 2 of 2 outside"):
        assert np.all(np.isfinite(res.predict(out)))
    with pytest.raises(ValueError, match="type must be"):
        res.predict(df, type="terms")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown column 'x2'"):
        res.predict(df[["x0", "x1"]])


def test_explicit_warm_start_reaches_the_same_optimum(
    fitted: tuple[pd.DataFrame, GAM, FitResult],
) -> None:
    df, model, cold = fitted
    for rho0, beta0 in (
        (cold.rho + 0.7, None),
        (cold.rho - 0.4, cold.beta_reduced),
        (cold.rho, cold.coef),
    ):
        warm = model.fit(df, y="y", rho0=rho0, beta0=beta0)
        assert warm.warm == "explicit" and warm.converged
        assert abs(warm.reml - cold.reml) <= 1e-6 * abs(cold.reml)
        rel = np.max(np.abs(warm.fitted - cold.fitted)) / np.max(np.abs(cold.fitted))
        assert rel <= 1e-5
    exact = model.fit(df, y="y", rho0=cold.rho, beta0=cold.beta_reduced)
    assert exact.n_outer <= 1 and exact.n_pirls_calls <= 2
    assert exact.n_pirls_calls < cold.n_pirls_calls


def test_frozen_knots_refit_is_identical(fitted: tuple[pd.DataFrame, GAM, FitResult]) -> None:
    df, model, res = fitted
    again = model.fit(df, y="y", knots=res.knots)
    np.testing.assert_allclose(again.rho, res.rho, atol=1e-10)
    sub = df[df["x1"] < 0.8]
    frozen = model.fit(sub, y="y", knots=res.knots)
    np.testing.assert_array_equal(frozen.knots["x1"], res.knots["x1"])
    own = model.fit(sub, y="y")
    assert not np.array_equal(own.knots["x1"], res.knots["x1"])


def test_callbacks_see_every_iterate_and_cap_inner_iterations() -> None:
    df = simulate("poisson", n=600, S=10, seed=2)
    model = GAM([s("x0", k=8), s("x1", k=8)], family="poisson")
    seen: list[Iterate] = []
    calls: list[int] = []

    def cap(i: int) -> int | None:
        calls.append(i)
        return 1 if i == 0 else None

    res = model.fit(df, y="y", inner_cap=cap, on_iterate=seen.append)
    assert [it.iteration for it in seen] == list(range(res.n_outer + 1))
    assert not seen[0].converged
    np.testing.assert_allclose(seen[-1].rho, res.rho)
    assert calls == list(range(res.n_pirls_calls))
    cold = model.fit(df, y="y")
    assert abs(res.reml - cold.reml) <= 1e-6 * abs(cold.reml)


def test_linear_terms_weights_and_offset_prediction() -> None:
    rng = np.random.default_rng(4)
    df = simulate("poisson", n=800, S=10, seed=4)
    df["z"] = rng.normal(size=len(df))
    df["lt"] = np.log(rng.uniform(0.5, 2.0, size=len(df)))
    df["y"] = rng.poisson(np.exp(df["lt"] + 0.3 * df["z"] + np.sin(6 * df["x0"])))
    model = GAM([s("x0"), s("x1", k=6)], family="poisson", linear=["z"])
    res = model.fit(df, y="y", offset="lt")
    assert res.beta_reduced["(parametric)"].shape == (2,)
    assert res.beta_reduced["(parametric)"][1] == pytest.approx(0.3, abs=0.1)
    np.testing.assert_allclose(res.predict(df), res.fitted, rtol=1e-10)
    no_off = res.predict(df.drop(columns=["lt"]))
    np.testing.assert_allclose(no_off * np.exp(df["lt"]), res.fitted, rtol=1e-10)


def test_memory_at_200k_rows_stays_near_one_design_copy() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    x = rng.uniform(size=(n, 4))
    y = np.sin(2 * np.pi * x[:, 0]) + x[:, 1] ** 2 + rng.normal(size=n)
    data = {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "x3": x[:, 3], "y": y}
    model = GAM([s("x0"), s("x1"), s("x2"), s("x3")])
    p = 1 + 4 * 9
    design_bytes = n * p * 8
    tracemalloc.start()
    try:
        res = model.fit(data, y="y")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.converged
    # the design itself plus row-chunk temporaries: no weighted or transposed n x p copies
    assert peak < 1.5 * design_bytes, (peak, design_bytes)
