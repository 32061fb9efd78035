"""The one skip-or-fail policy for tests that need an optional tool (R + mgcv, dask, h5netcdf, ...).

Locally a missing tool skips the test; under ``GAMSTORE_CI=1`` (set by ``.ci/run``, which
installs every tool) it fails, so no check is ever skipped in CI.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(available: bool, what: str, *, module_level: bool = False) -> None:
    """Return when ``available``; otherwise fail under GAMSTORE_CI=1, else skip."""
    if available:
        return
    if os.environ.get("GAMSTORE_CI") == "1":
        pytest.fail(f"{what} is required under GAMSTORE_CI=1 but is not available")
    pytest.skip(f"{what} is not available", allow_module_level=module_level)


def require_module(name: str, *, module_level: bool = False) -> ModuleType:
    """Import ``name``; when it is missing, fail under GAMSTORE_CI=1, else skip."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, f"the Python package {name!r}", module_level=module_level)
        raise  # unreachable: require() skipped or failed
