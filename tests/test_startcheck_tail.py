"""The start check and starts deep in a flat tail of REML (trigger ``"bound"``).

A smoothing parameter far in its tail (the smooth shrunk to its null space) has no REML
gradient, so a warm run that starts there stays there, whatever lies in the interior. On
mtcars by cylinders, fold 3 (cyl 8 left out) started from the optimum of a fit on fold 2's
rows (cyl 4 left out: both smooths in their tail) kept REML 33.0043 against the cold 32.9796
(mgcv: 32.9796), with no trigger firing (the fold drops 14% of its parent's rows, nothing
moved): a warm start silently changing the answer. A store holds such a parent when a fit on
a subset of the rows was saved with the model's structure (a user's fit, or a fold artifact
written by a gamstore before folds stopped writing them).
"""

from __future__ import annotations

import warnings
from functools import cache
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import parity
import pytest

from gamstore.fit.startcheck import TAIL_PROBES, StartCheckPolicy, left_tail_is_lower
from gamstore.loso import run_loso


@cache
def _rd() -> ModuleType:
    return parity.realdata()


def _case() -> tuple[Any, Any, dict[str, Any]]:
    case = _rd().loso_cases()["mtcars_by_cyl"]
    return _rd().base_frame(case), _rd().model(case), case


def _fold_rows(data: Any, subject: int) -> Any:
    return data[data["subject"] != subject].reset_index(drop=True)


def _seeded_store(tmp: Any, data: Any, model: Any, knots: Any) -> str:
    """A store whose newest artifact of the model is a fit on fold 2's rows (its optimum has
    both smooths deep in their tail)."""
    store = str(tmp / "store")
    sib = model.fit(_fold_rows(data, 2), y="mpg", knots=knots, store=store, warm_policy="always")
    assert np.all(np.asarray(sib.rho) > 15.0)  # both smooths shrunk to straight lines
    return store


def test_fold_started_in_a_siblings_flat_tail_is_checked_and_keeps_the_cold_optimum(
    tmp_path: Any,
) -> None:
    data, model, case = _case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knots = model.fit(data, y="mpg").knots
        store = _seeded_store(tmp_path, data, model, knots)
        train = _fold_rows(data, 3)
        warm = model.fit(train, y="mpg", knots=knots, store=store, warm_policy="always")
        cold = model.fit(train, y="mpg", knots=knots)
    assert warm.warm == "cross-fit"
    chk = warm.start_check
    assert chk is not None
    # the trap: the warm run stayed where it started, in a worse optimum, and only the new
    # trigger fires (fewer than 15% of the parent's rows dropped, nothing moved)
    assert chk.rho_moved == 0.0
    assert chk.drop_share < StartCheckPolicy().max_drop_share
    assert chk.reasons == ("bound",)
    assert (chk.warm_reml - cold.reml) / abs(cold.reml) > 5e-4
    assert chk.cold_checked and chk.disagree and chk.kept == "cold"
    assert abs(warm.reml - cold.reml) <= 1e-9 * abs(cold.reml)
    mgcv = float(case["folds"][2]["mgcv_tight"]["reml"][0])
    assert abs(warm.reml - mgcv) <= 1e-6 * abs(mgcv)


def test_loso_on_a_store_with_a_sibling_artifact_equals_cold(tmp_path: Any) -> None:
    """The whole LOSO (policy always, as the suite runs): the full-data fit starts from the
    sibling's artifact and does not publish its own, so every fold starts from the sibling."""
    data, model, _ = _case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knots = model.fit(data, y="mpg").knots
        store = _seeded_store(tmp_path, data, model, knots)
        warm = run_loso(data, model, store=store, progress=False, subject="subject", y="mpg")
        cold = run_loso(data, model, warm=False, progress=False, subject="subject", y="mpg")
    rw = np.asarray(warm["reml"].values, float).ravel()
    rc = np.asarray(cold["reml"].values, float).ravel()
    np.testing.assert_allclose(rw, rc, rtol=1e-8)
    assert list(np.asarray(warm["warm_source"].values).ravel()) == ["cross-fit"] * 3
    assert str(np.asarray(warm["kept"].values).ravel()[2]) == "cold"
    assert "bound" in str(np.asarray(warm["check_reasons"].values).ravel()[2])


def _nres(score: float, tail_start: Any, tail_end: Any) -> Any:
    final = SimpleNamespace(rho=np.array([16.0, 16.0]), score=score)
    return SimpleNamespace(
        final=final,
        tail_start=None if tail_start is None else np.asarray(tail_start, dtype=bool),
        tail_end=None if tail_end is None else np.asarray(tail_end, dtype=bool),
    )


def test_left_tail_is_lower_probes_only_what_stayed_in_its_tail() -> None:
    pol = StartCheckPolicy()
    calls: list[tuple[int, float]] = []

    def higher(j: int, f: float) -> float:
        calls.append((j, f))
        return 10.5  # a null effect: its tail is the optimum

    # left its tail (started there, ended inside), never in one, or not known: no probe
    for ts, te in (([True, False], [False, False]), ([False, False], [False, True])):
        assert not left_tail_is_lower(pol, _nres(10.0, ts, te), higher)
    assert not left_tail_is_lower(pol, _nres(10.0, None, None), higher)
    assert calls == []
    assert not left_tail_is_lower(pol, _nres(10.0, [False, True], [False, True]), higher)
    assert calls == [(1, f) for f in TAIL_PROBES]
    # a lower interior point, a failing or non-finite probe: checked
    assert left_tail_is_lower(pol, _nres(10.0, [True, True], [True, True]), lambda j, f: 9.9)
    assert not left_tail_is_lower(  # within rel_tol: a tie, trusted
        pol, _nres(10.0, [True, True], [True, True]), lambda j, f: 10.0 - 1e-7
    )

    def boom(j: int, f: float) -> float:
        raise np.linalg.LinAlgError("singular")

    assert left_tail_is_lower(pol, _nres(10.0, [True, False], [True, False]), boom)
    nan = float("nan")
    assert left_tail_is_lower(pol, _nres(10.0, [True, False], [True, False]), lambda j, f: nan)


@pytest.mark.parametrize("mode", ["never", "always"])
def test_modes_never_and_always_are_unchanged(mode: str, tmp_path: Any) -> None:
    data, model, _ = _case()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knots = model.fit(data, y="mpg").knots
        store = _seeded_store(tmp_path, data, model, knots)
        model.start_check = StartCheckPolicy(mode=mode)  # a fresh model of this test
        warm = model.fit(_fold_rows(data, 3), y="mpg", knots=knots, store=store)
    chk = warm.start_check
    assert chk is not None
    assert chk.reasons == (() if mode == "never" else ("always",))
