"""Every benchmark script in bench/ is known to bench/run_all.py and still starts (--help)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "run_all.py")


def test_run_all_lists_every_script() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    assert sorted([*run_all.SCRIPTS, *run_all.AB_TOOLS]) == SCRIPTS
    assert not set(run_all.SCRIPTS) & set(run_all.AB_TOOLS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_starts(name: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / name), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage" in out.stdout.lower()
