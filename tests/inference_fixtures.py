"""Load the real-data mgcv fixtures of tests/fixtures/inference (issue 18)."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from requires import require

from gamstore.fit._mgcv import mgcv_available

HERE = Path(__file__).parent / "fixtures" / "inference"
R_SCRIPT = HERE / "make_inference_fixtures.R"
FIXTURE = HERE / "mgcv_inference.json"


def load(path: Path = FIXTURE) -> dict[str, Any]:
    """The fixture file as parsed JSON."""
    return json.loads(path.read_text())


def frame(case: dict[str, Any]) -> pd.DataFrame:
    """A case's data as R fitted it: NaN for NA, factors as ordered pandas categories."""
    cols: dict[str, Any] = {}
    for name, col in case["data"].items():
        vals = col["values"]
        if col["type"] == "numeric":
            cols[name] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        elif col["type"] == "factor":
            cols[name] = pd.Categorical(vals, categories=col["levels"])
        else:
            cols[name] = pd.array(vals, dtype=object)
    return pd.DataFrame(cols)


def model_args(case: dict[str, Any]) -> tuple[Any, list[tuple[str, int]], list[str], str]:
    """(y, smooths, linear, family) of a case."""
    py = case["python"]
    y = py["y"] if isinstance(py["y"], str) else tuple(py["y"])
    return y, [tuple(t) for t in py["smooths"]], list(py["linear"]), case["family"]


def nan_array(values: list[Any]) -> np.ndarray:
    """A JSON list with nulls as a float64 array with NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def require_mgcv() -> None:
    """Skip without Rscript + mgcv, but fail under GAMSTORE_CI=1."""
    require(mgcv_available(), "Rscript with mgcv")


@functools.cache
def live() -> dict[str, Any]:
    """The fixture as R + mgcv computes it now (the shipped script, run once per process)."""
    with tempfile.TemporaryDirectory(prefix="gamstore-mgcv-") as tmp:
        out = Path(tmp) / "live.json"
        subprocess.run(["Rscript", str(R_SCRIPT), str(out)], check=True, timeout=600)
        return load(out)
