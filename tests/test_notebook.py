"""notebooks/inspect_loso.ipynb executes top to bottom (so it cannot rot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from requires import require

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "inspect_loso.ipynb"


def _kernel_available() -> bool:
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return False
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False
    return True


def test_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = [m for m in ("nbclient", "nbformat", "ipykernel", "matplotlib") if not _importable(m)]
    if missing or not _kernel_available():
        why = f"missing {missing}" if missing else "no python3 kernelspec"
        require(False, f"nbclient/ipykernel for the notebook test ({why})")
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",  # "python" in the kernelspec resolves to this interpreter
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the figure and the Datasets were rendered
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "\n".join(str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in outputs)
    assert "max relative |REML warm - REML cold| over folds" in text
    assert "fold" in text and "warm / cold" in text


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
