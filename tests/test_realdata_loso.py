"""Leave-one-subject-out on grouped real data sets: warm = cold, and every fold = mgcv.

11 grouped data sets from R's ``datasets`` and ``nlme`` (3 to 50 subjects; concurve smooths in
mtcars hp/wt, Oxboys age/Occasion, airquality Temp/Wind/Solar.R, Seatbelts t/PetrolPrice;
Gaussian and Poisson with an offset). tests/fixtures/realdata_loso.json holds the data and
mgcv's answer for the full data and for every fold refitted with the knots frozen at the
full-data knots (``gam(..., knots = list(x = full$smooth[[i]]$knots))``), as gamstore's
``run_loso`` freezes them; written by ``Rscript tests/fixtures/realdata_mgcv.R make
tests/fixtures``.

Every warm fold of ``run_loso`` must equal the cold fit of the same fold (REML within 1e-6
relative) or, where its start check found a lower optimum, report the disagreement and return
the lower REML (never a worse one than cold), and every fold must match mgcv by the criteria of the parity suite (with mgcv
under tight control, or mgcv's best answer over a grid of starts, where gamstore's REML is
lower than mgcv's default answer).
"""

from __future__ import annotations

import warnings
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import parity
import pytest

from gamstore.loso import run_loso


def _support() -> ModuleType:
    """tests/fixtures/realdata.py, through the parity suites' module."""
    return parity.realdata()


rd = _support()
CASES: dict[str, dict[str, Any]] = rd.loso_cases()

# (data set, held-out subject code; 0 = the full-data fit) of fits that fail today because of
# the known outer-iteration defects of issue 15 (being fixed separately): their comparison
# with mgcv is NOT run here (warm = cold still is). Move an entry out when it passes.
PENDING_ROBUST: dict[tuple[str, int], str] = {}


@cache
def _loso(name: str) -> tuple[Any, Any, list[Any]]:
    """run_loso (warm) on a data set, the full-data fit, and a cold fit of every fold."""
    case = CASES[name]
    data = rd.base_frame(case)
    gam = rd.model(case)
    kw = {"weights": case["weights"], "offset": case["offset"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mgcv warns about some of these folds too
        ds = run_loso(data, gam, subject="subject", y=case["y"], progress=False, **kw)
        full = gam.fit(data, y=case["y"], **kw)
        colds = [
            gam.fit(_train(data, s), y=case["y"], knots=full.knots, **kw) for s in _subjects(case)
        ]
    return ds, full, colds


def _subjects(case: dict[str, Any]) -> list[int]:
    return sorted({int(v) for v in case["columns"]["subject"]})


def _train(data: pd.DataFrame, subject: int) -> pd.DataFrame:
    return data[data["subject"] != subject].reset_index(drop=True)


def test_suite_covers_the_brief() -> None:
    assert len(CASES) >= 8
    n_subjects = [len(_subjects(c)) for c in CASES.values()]
    assert sum(5 <= k <= 16 for k in n_subjects) >= 5, n_subjects
    assert {c["family"] for c in CASES.values()} >= {"gaussian", "poisson"}
    assert sum(len(c["smooths"]) >= 2 for c in CASES.values()) >= 4  # concurve candidates
    for name, case in CASES.items():
        assert len(case["folds"]) == len(_subjects(case)) == len(case["subject_labels"]), name


@pytest.mark.parametrize("name", list(CASES))
def test_frozen_knots_are_mgcvs(name: str) -> None:
    """run_loso freezes the full-data knots; they are the knots mgcv's folds used."""
    _, full, _ = _loso(name)
    for term, kn in CASES[name]["full"]["knots"].items():
        kn = np.asarray(kn)
        np.testing.assert_allclose(full.knots[term], kn, rtol=0, atol=1e-12 * np.max(np.abs(kn)))


@pytest.mark.parametrize("name", [n for n in CASES if (n, 0) not in PENDING_ROBUST])
def test_full_fit_matches_mgcv(name: str) -> None:
    case = CASES[name]
    _, full, _ = _loso(name)
    rec = {
        "mgcv": case["full"],
        "mgcv_tight": case["full_tight"],
        "mgcv_multistart": case["full_multistart"],
    }
    cmp = rd.against_mgcv(case, rd.base_frame(case), rd.model(case), full, rec, False)
    assert cmp.ok, (name, cmp.reference, cmp.failures)


@pytest.mark.parametrize("name", list(CASES))
def test_warm_fold_equals_cold_fold(name: str) -> None:
    ds, _, colds = _loso(name)
    subjects = _subjects(CASES[name])
    assert [int(v) for v in ds["fold"].values] == subjects
    sources = {str(v) for v in np.ravel(ds["warm_source"].values)}
    assert sources - {"cold"}, f"no fold of {name} started warm: {sources}"
    bad = []
    for s, cold in zip(subjects, colds, strict=True):
        warm = ds.sel(fold=s)

        def value(var: str, warm: Any = warm) -> Any:
            return np.ravel(warm[var].values)[0]

        assert str(value("status")) == "ok", (name, s)
        got = float(value("reml"))
        tol = 1e-6 * abs(cold.reml)
        if got > cold.reml + tol:  # never a worse optimum than the cold fit
            bad.append((s, "worse than cold", got, cold.reml))
        elif got < cold.reml - tol:
            # a lower optimum than cold is allowed only as the start check's reported
            # disagreement, returning the lower of its two runs
            runs = [float(value("warm_reml")), float(value("cold_check_reml"))]
            if not (bool(value("start_disagree")) and got == min(runs)):
                bad.append((s, "lower than cold, not reported", got, cold.reml))
    assert not bad, (name, bad)


@pytest.mark.parametrize("name", list(CASES))
def test_every_fold_matches_mgcv(name: str) -> None:
    case = CASES[name]
    ds, full, colds = _loso(name)
    data = rd.base_frame(case)
    gam = rd.model(case)
    failures = {}
    for s, cold, rec in zip(_subjects(case), colds, case["folds"], strict=True):
        if (name, s) in PENDING_ROBUST:
            continue
        train = _train(data, s)
        assert int(rec["subject"]) == s
        cmp = rd.against_mgcv(case, train, gam, cold, rec, with_fitted=False, knots=full.knots)
        if not cmp.ok:
            failures[s] = cmp.failures
            continue
        # the warm fold too: its REML and rho are those of the reference mgcv fit
        ref_fit = rec[cmp.reference]
        warm_reml = float(np.ravel(ds.sel(fold=s)["reml"].values)[0])
        mg_reml = float(ref_fit["reml"][0])
        if abs(warm_reml - mg_reml) > 1e-6 * abs(mg_reml):
            failures[s] = [f"warm REML {warm_reml!r} vs {cmp.reference} {mg_reml!r}"]
    assert not failures, (name, failures)
