"""Every script in examples/ runs to completion (exit code 0) in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from requires import require

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))

# optional packages an example needs; missing -> skip (fail under GAMSTORE_CI=1)
NEEDS = {
    "s3_store.py": ("moto", "s3fs"),
    "dask_loso.py": ("distributed",),
}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    missing = [m for m in NEEDS.get(script.name, ()) if importlib.util.find_spec(m) is None]
    require(not missing, f"{missing} (for {script.name})")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,  # examples must not depend on (or litter) the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
    assert proc.stdout.strip(), f"{script.name} printed nothing"


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"custom_fitter_warmstart.py", "s3_store.py", "dask_loso.py"} <= names
