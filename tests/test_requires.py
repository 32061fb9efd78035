"""The one skip-or-fail policy (tests/requires.py): a missing tool skips locally, fails in CI."""

from __future__ import annotations

import pytest
from requires import require_module


def test_present_module_is_returned() -> None:
    assert require_module("json").dumps([1]) == "[1]"


def test_missing_module_fails_under_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMSTORE_CI", "1")
    with pytest.raises(pytest.fail.Exception, match="required under GAMSTORE_CI=1"):
        require_module("gamstore_no_such_module")
    monkeypatch.delenv("GAMSTORE_CI")
    with pytest.raises(pytest.skip.Exception):
        require_module("gamstore_no_such_module")
