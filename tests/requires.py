"""The one skip-or-fail policy for tests that need an optional tool (R + mgcv, dask, h5netcdf, ...).

Locally a missing tool skips the test; under ``GAMSTORE_CI=1`` (set by ``.ci/run``, which
installs every tool) it fails, so no check is ever skipped in CI.
"""

from __future__ import annotations

import os

import pytest


def require(available: bool, what: str, *, module_level: bool = False) -> None:
    """Return when ``available``; otherwise fail under GAMSTORE_CI=1, else skip."""
    if available:
        return
    if os.environ.get("GAMSTORE_CI") == "1":
        pytest.fail(f"{what} is required under GAMSTORE_CI=1 but is not available")
    pytest.skip(f"{what} is not available", allow_module_level=module_level)
