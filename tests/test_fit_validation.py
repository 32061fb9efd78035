"""Bad input gives a ValueError/TypeError that names the column and what was expected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, BasisDimensionWarning, NonIntegerResponseWarning, s
from gamstore.fit.simulate import simulate


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return simulate("poisson", n=300, S=10, seed=3)


def _fit(data: Any, family: str = "poisson", **kw: Any) -> Any:
    return GAM([s("x0", k=6), s("x1", k=6)], family=family).fit(data, y="y", **kw)


def test_nan_in_covariate_names_column(df: pd.DataFrame) -> None:
    bad = df.copy()
    bad.loc[7, "x1"] = np.nan
    with pytest.raises(ValueError, match=r"'x1'.*NaN.*row 7"):
        GAM([s("x0", k=6), s("x1", k=6)], family="poisson", na_action="raise").fit(bad, y="y")
    # mgcv's default (na.omit) drops the row instead
    assert _fit(bad).n_dropped == 1


def test_nan_in_response_names_column(df: pd.DataFrame) -> None:
    bad = df.copy()
    bad.loc[3, "y"] = np.inf
    with pytest.raises(ValueError, match=r"'y' \(response\)"):
        _fit(bad)


def test_non_binary_binomial_response(df: pd.DataFrame) -> None:
    bad = df.assign(y=np.where(df["y"] > 0, 1.0, 0.0))
    bad.loc[0, "y"] = 0.5
    with pytest.raises(ValueError, match=r"'y'.*binary"):
        _fit(bad, family="binomial")
    bad.loc[0, "y"] = 2.0
    with pytest.raises(ValueError, match=r"'y'.*0/1"):
        _fit(bad, family="binomial")


def test_degenerate_responses(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"'y'.*gaussian response is constant"):
        _fit(df.assign(y=3.0), family="gaussian")
    with pytest.raises(ValueError, match=r"'y'.*all zero"):
        _fit(df.assign(y=0.0))
    with pytest.raises(ValueError, match=r"'y'.*single outcome"):
        _fit(df.assign(y=1.0), family="binomial")


def test_binomial_non_integer_successes_warn(df: pd.DataFrame) -> None:
    ok = df.assign(y=np.where(df["y"] > 1, 1.0, 0.0), w=1.5)
    with pytest.warns(NonIntegerResponseWarning, match="whole numbers"):
        res = _fit(ok, family="binomial", weights="w")
    assert res.converged
    assert [type(w) for w in res.warnings] == [NonIntegerResponseWarning]


def test_binomial_proportions_with_trials_are_accepted(df: pd.DataFrame) -> None:
    ok = df.assign(y=np.where(df["y"] > 1, 0.5, 0.0), m=2.0)
    res = _fit(ok, family="binomial", weights="m")
    assert res.converged


def test_negative_poisson_counts(df: pd.DataFrame) -> None:
    bad = df.copy()
    bad.loc[5, "y"] = -1.0
    with pytest.raises(ValueError, match=r"'y'.*non-negative"):
        _fit(bad)


def test_constant_covariate(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"'x0' is constant"):
        _fit(df.assign(x0=0.5))


def test_too_few_unique_values_for_k_fits_with_a_warning(df: pd.DataFrame) -> None:
    # mgcv's P-splines fit with k above the number of unique values (the penalty identifies
    # the coefficients) and warn "basis dimension is larger than number of unique covariates"
    with pytest.warns(BasisDimensionWarning, match=r"s\(x1\): basis dimension k = 6 .* \(4\)"):
        res = _fit(df.assign(x1=np.round(df["x1"] * 3) / 3))
    assert res.converged
    assert any(isinstance(w, BasisDimensionWarning) for w in res.warnings)


def test_unknown_columns(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown column 'x9'"):
        GAM([s("x9")]).fit(df, y="y")
    with pytest.raises(ValueError, match=r"unknown column 'y' \(response\)"):
        _fit(df.rename(columns={"y": "yy"}))
    with pytest.raises(ValueError, match=r"unknown column 'zz'.*linear"):
        GAM([s("x0")], linear=["zz"]).fit(df, y="y")
    with pytest.raises(ValueError, match=r"unknown column 'w'.*weights"):
        _fit(df, weights="w")


def test_weights_offset_shapes_and_signs(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"shape \(300,\)"):
        _fit(df, weights=np.ones(10))
    with pytest.raises(ValueError, match="non-negative"):
        _fit(df, weights=-np.ones(300))
    with pytest.raises(ValueError, match=r"offset.*NaN"):
        _fit(df, offset=np.full(300, np.nan))


def test_non_numeric_and_bad_specs(df: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match=r"'x0'.*numeric"):
        _fit(df.assign(x0="a"))
    with pytest.raises(ValueError, match="k must be an integer >= 4"):
        s("x0", k=3)
    with pytest.raises(TypeError, match="term"):
        s("")
    with pytest.raises(ValueError, match="one smooth"):
        GAM([s("x0"), s("x0")])
    with pytest.raises(ValueError, match="repeat"):
        GAM([s("x0")], linear=["x0"])
    with pytest.raises(TypeError, match="data must be"):
        _fit([1, 2, 3])
    with pytest.raises(ValueError, match="not smooth terms"):
        _fit(df, knots={"x2": [0, 1]})
    with pytest.raises(ValueError, match="rho0 must be 2 finite values"):
        _fit(df, rho0=[1.0])
    with pytest.raises(ValueError, match=r"beta0 must have shape \(11,\)"):
        _fit(df, beta0=np.zeros(3))


def test_mapping_of_arrays_is_accepted(df: pd.DataFrame) -> None:
    data = {c: df[c].to_numpy() for c in df.columns}
    res = _fit(data)
    res_df = _fit(df)
    assert res.reml == res_df.reml
    with pytest.raises(ValueError, match="different lengths"):
        _fit({**data, "x1": data["x1"][:10]})


def test_category_column_is_reported_as_category(df: pd.DataFrame) -> None:
    """A pandas ``category`` smooth covariate used to be reported as "dtype object"."""
    labels = pd.Categorical(np.where(df["x0"] > 0.5, "hi", "lo"))
    with pytest.raises(
        TypeError, match=r"'x0' \(covariate of s\(x0\)\) must be numeric, got dtype category"
    ):
        _fit(df.assign(x0=labels))
