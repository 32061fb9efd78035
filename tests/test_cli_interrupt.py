"""Ctrl-C during `gamstore loso`: exit 130, no traceback, a hint that a rerun resumes.

It used to exit 1 (the code for failed folds) and, with ``--executor processes``, the
workers printed ``KeyboardInterrupt``/``UnpicklingError`` tracebacks. The signal goes to the
whole process group, as a terminal sends it, so the workers get it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gamstore.loso import simulate

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and groups")


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("executor", "delay"),
    [("serial", 0.3), ("processes", 0.0), ("processes", 0.5), ("processes", 1.5)],
)
def test_ctrl_c_exits_130_without_traceback(tmp_path: Path, executor: str, delay: float) -> None:
    csv = tmp_path / "data.csv"
    simulate("binomial", n=2400, n_subjects=24, seed=11).to_csv(csv, index=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gamstore", "-v", "loso", str(csv), "--y", "y"]
        + ["--smooth", "x0", "x1", "x2", "--subject", "subj", "--family", "binomial"]
        + ["--store", str(tmp_path / "store"), "--executor", executor, "--compare-cold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, as a shell job has
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # -v logs the end of the full-data fit; the folds start then
        lines.append(line)
        if "LOSO full-data fit" in line:
            break
    else:
        pytest.fail(f"no full-data fit logged:\n{''.join(lines)}")
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("gamstore loso did not stop after Ctrl-C")
    err = "".join(lines) + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    assert "rerunning the same command resumes" in err
    deadline = time.monotonic() + 10
    while not _gone(proc.pid) and time.monotonic() < deadline:  # no worker left behind
        time.sleep(0.1)
    assert _gone(proc.pid)
