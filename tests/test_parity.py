"""tests/parity.py, the one home of the mgcv parity suites: its case tables agree with the
fixtures, the live protocol refuses what it cannot send, and a missing R skips locally but
fails under GAMSTORE_CI=1."""

from __future__ import annotations

import subprocess

import parity
import pytest


@pytest.mark.parametrize("name", sorted(parity.SUITES))
def test_suite_fixture_loads_exact_data(name: str) -> None:
    """Every case of every suite has its recorded rows, both mgcv answers, and the data
    gamstore fits on as stored (same row count, columns in order)."""
    su = parity.suite(name)
    cases = su.cases()
    assert cases and su.load()["mgcv_version"] == "1.8.41"
    for case_name, case in cases.items():
        assert case["name"] == case_name
        data = su.frame(case)
        assert len(data) == case["n"], case_name
        assert list(data.columns) == list(case["columns"]), case_name
        assert case["mgcv"]["reml"] and case["mgcv_tight"]["reml"], case_name
        su.model(case)  # every spec builds a gamstore model


@pytest.mark.mgcv
@pytest.mark.parametrize("name", sorted(parity.SUITES))
def test_r_case_table_matches_fixture(name: str) -> None:
    """The R driver's case table of the suite names exactly the fixture's cases, in order:
    a case added to the table without regenerating the fixture (or the reverse) fails."""
    exe = parity.require_mgcv()
    proc = subprocess.run(
        [exe, "--vanilla", str(parity.R_DRIVER), "names", name],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert proc.stdout.split() == list(parity.suite(name).cases())


def test_unknown_suite_is_named() -> None:
    with pytest.raises(ValueError, match="'nope'.*families"):
        parity.suite("nope")


def test_live_spec_refuses_a_tab(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec field the tab-separated live protocol cannot carry is refused before R runs."""
    su = parity.suite("families")
    name, case = next(iter(su.cases().items()))
    monkeypatch.setitem(su.cases(), "bad", {**case, "y": "a\tb"})
    with pytest.raises(ValueError, match="live spec field 'y' of case 'bad'"):
        su.run_live(["bad"])
    assert name in su.cases()


def test_missing_r_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parity, "rscript", lambda: None)
    monkeypatch.setenv("GAMSTORE_CI", "1")
    with pytest.raises(pytest.fail.Exception, match="Rscript with mgcv"):
        parity.require_mgcv()


def test_missing_r_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parity, "rscript", lambda: None)
    monkeypatch.delenv("GAMSTORE_CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Rscript with mgcv"):
        parity.require_mgcv()
