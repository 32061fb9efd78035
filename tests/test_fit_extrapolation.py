"""Prediction beyond the fitted range warns (a catchable ExtrapolationWarning).

``predict`` used to extrapolate silently, reaching values like 1e304 far from the data
(issue 13.10); it now continues linearly as mgcv's ``ps`` (tests/test_fit_inference.py
checks the values against mgcv) and says that it extrapolates, which users of mgcv expect.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, ExtrapolationWarning, s

# fixed data (exact binary values, no transcendental functions): y is a polynomial in x
X = np.linspace(0.0, 1.0, 121)
Y = 4.0 * X * (1.0 - X) * (X - 0.3) + np.tile([0.05, -0.03, 0.01, -0.04, 0.02], 25)[:121]
OUTSIDE = np.array([-50.0, -1.0, -0.2, 1.2, 2.0, 5.0, 50.0, 1e6])


@pytest.fixture(scope="module")
def fit() -> object:
    return GAM([s("x", k=10)]).fit(pd.DataFrame({"x": X, "y": Y}), y="y")


def test_predictions_grow_linearly_and_warn(fit: object) -> None:
    with pytest.warns(ExtrapolationWarning, match=r"\(x: 8 of 8 outside \[") as record:
        link = fit.predict({"x": OUTSIDE}, type="link")  # type: ignore[attr-defined]
    assert record[0].filename == __file__  # points at the caller's line
    assert np.isfinite(link).all()
    # beyond the upper end the prediction is a straight line: equal slopes
    up = link[3:]
    slopes = np.diff(up) / np.diff(OUTSIDE[3:])
    np.testing.assert_allclose(slopes, slopes[0], rtol=1e-9)
    down = link[:3]
    slopes = np.diff(down) / np.diff(OUTSIDE[:3])
    np.testing.assert_allclose(slopes, slopes[0], rtol=1e-9)
    assert abs(link[-1]) < 1e8  # the end cubic gave ~1e18 at 1e6


def test_no_warning_inside_the_range(fit: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        fit.predict({"x": X})  # type: ignore[attr-defined]


def test_warning_can_be_silenced_by_category(fit: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ExtrapolationWarning)
        assert np.isfinite(fit.predict({"x": OUTSIDE})).all()  # type: ignore[attr-defined]
