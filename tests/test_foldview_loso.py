"""LOSO folds on reused designs equal folds on rebuilt designs (the reference path).

On the 11 grouped real data sets of tests/test_realdata_loso.py (same fixtures), a
``run_loso`` whose folds select their rows of the full data's raw bases
(``reuse_designs=True``, the default) must give every fold the answer of the same run with
every fold design rebuilt from its covariates (``reuse_designs=False``): cold and warm, REML
within 1e-9 relative and the same ρ, edf and held-out predictions. The fold designs are the
same value for value (tests/test_foldview.py); a Gaussian fold is built from the full data's
moments (X'WX, X'Wy and column sums downdated by the held-out rows, its n x p matrix never
formed: tests/test_foldview_moments.py) and differs by rounding only.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import numpy as np
import parity
import pytest

from gamstore.fit import GAM, foldview
from gamstore.loso import run_loso
from gamstore.loso.folds import FoldTask, init_worker, run_fold_in_worker


def _support() -> ModuleType:
    """tests/fixtures/realdata.py, through the parity suites' module."""
    return parity.realdata()


rd = _support()
CASES: dict[str, dict[str, Any]] = rd.loso_cases()


def _run(case: dict[str, Any], reuse: bool) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mgcv warns about some of these folds too
        return run_loso(
            rd.base_frame(case),
            rd.model(case),
            subject="subject",
            y=case["y"],
            weights=case["weights"],
            offset=case["offset"],
            compare_cold=True,
            progress=False,
            reuse_designs=reuse,
        )


def test_the_suite_is_the_real_data_loso_suite() -> None:
    assert len(CASES) == 11


@pytest.mark.parametrize("name", list(CASES))
def test_reused_fold_designs_give_the_rebuilt_folds_answers(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    served: list[bool] = []
    plain = foldview.FoldRows.__call__

    def counting(self: Any, sm: Any, t: np.ndarray, x: np.ndarray) -> Any:
        out = plain(self, sm, t, x)
        served.append(out is not None)
        return out

    monkeypatch.setattr(foldview.FoldRows, "__call__", counting)
    moments: list[bool] = []
    plain_moments = foldview.FoldRows.gaussian_design

    def counting_moments(self: Any, *args: Any) -> Any:
        out = plain_moments(self, *args)
        moments.append(out is not None)
        return out

    monkeypatch.setattr(foldview.FoldRows, "gaussian_design", counting_moments)
    folds: list[bool] = []
    plain_fold = foldview.FoldRows.gaussian_fold

    def counting_folds(self: Any, *args: Any) -> Any:
        out = plain_fold(self, *args)
        folds.append(out is not None)
        return out

    monkeypatch.setattr(foldview.FoldRows, "gaussian_fold", counting_folds)
    ref = _run(case, reuse=False)
    assert not served and not moments and not folds  # the reference path evaluates every basis
    got = _run(case, reuse=True)
    n_folds = got.sizes["fold"] * got.sizes["start"]
    gaussian = rd.model(case).family.identity_gaussian
    if gaussian:
        # every Gaussian fold is made from the full data's moments and checks (its X never
        # formed, its own columns never read: no rows served, no per-fold design check)
        assert folds == [True] * n_folds and not served and not moments, name
    else:
        assert len(served) == n_folds * len(case["smooths"]) and all(served), name
        assert not moments and not any(folds), name
    assert not foldview._SHARED  # released when the run ended
    assert list(got["fold"].values) == list(ref["fold"].values)
    assert list(got["start"].values) == ["warm", "cold"]
    assert (got["status"] == "ok").all() and (ref["status"] == "ok").all(), name
    r_ref, r_got = ref["reml"].values, got["reml"].values
    assert np.all(np.abs(r_got - r_ref) <= 1e-9 * np.abs(r_ref)), (name, r_got - r_ref)
    for var in ("rho", "edf", "n_outer", "pred_response", "se_link", "heldout_deviance"):
        a, b = np.asarray(got[var].values), np.asarray(ref[var].values)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{name}: {var}")
    assert (got["warm_source"].values == ref["warm_source"].values).all()


def test_a_worker_builds_the_full_raw_bases_once_from_the_data_it_holds() -> None:
    """A process-pool worker (its initializer state, run in this process): the first fold
    evaluates the full raw bases from the data the worker already holds, later folds reuse
    that one copy; the tasks carry no arrays."""
    case = CASES[next(n for n in CASES if n.startswith("ChickWeight"))]
    data, model = rd.base_frame(case), rd.model(case)
    assert isinstance(model, GAM)
    full = model.fit(data, y=case["y"], weights=case["weights"], offset=case["offset"])
    foldview.release_raw_bases()
    init_worker(data, model)
    subjects = sorted({int(v) for v in case["columns"]["subject"]})[:3]
    seen = []
    try:
        for subject in subjects:
            task = FoldTask(
                subject=subject,
                mode="cold",
                y=case["y"],
                subject_column="subject",
                knots=full.knots,
                store=None,
                family=model.family.name,
                weights=case["weights"],
                offset=case["offset"],
            )
            out = run_fold_in_worker(task)
            assert out.ok, out.error
            (entry,) = foldview._SHARED.values()
            seen.append(entry[1])
        assert all(b is seen[0] for b in seen)
        assert seen[0].nbytes > 0
    finally:
        foldview.release_raw_bases()


def test_by_default_small_data_rebuild_and_large_data_reuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """reuse_designs=None: below REUSE_MIN_ROWS a design costs about a millisecond, so the
    folds rebuild; from it on they reuse the full data's raw bases."""
    from gamstore.loso import pipeline

    served: list[bool] = []
    plain = foldview.FoldRows.__call__

    def counting(self: Any, sm: Any, t: np.ndarray, x: np.ndarray) -> Any:
        out = plain(self, sm, t, x)
        served.append(out is not None)
        return out

    monkeypatch.setattr(foldview.FoldRows, "__call__", counting)
    plain_fold = foldview.FoldRows.gaussian_fold

    def counting_fold(self: Any, *args: Any) -> Any:  # a Gaussian fold: no rows served
        out = plain_fold(self, *args)
        served.append(out is not None)
        return out

    monkeypatch.setattr(foldview.FoldRows, "gaussian_fold", counting_fold)
    case = CASES[next(n for n in CASES if n.startswith("Orange"))]
    data, model = rd.base_frame(case), rd.model(case)
    kw = {"y": case["y"], "progress": False, "warm": False}
    assert len(data) < pipeline.REUSE_MIN_ROWS
    run_loso(data, model, subject="subject", **kw)
    assert not served
    monkeypatch.setattr(pipeline, "REUSE_MIN_ROWS", len(data))
    run_loso(data, model, subject="subject", **kw)
    assert served and all(served)
