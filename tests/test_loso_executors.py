"""run_loso in a spawned process pool: same numbers as in process; dead workers are retried."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate

NUMERIC = ["rho", "edf", "reml", "n_outer", "n_pirls_calls", "n_pirls_iters", "heldout_deviance"]


class DyingGAM(GAM):
    """Kills its worker process while fitting some folds (a segfault, an OOM kill...).

    ``die_once``: the first fit without that subject kills the process, later ones work (a
    marker file remembers across processes). ``die_always``: every such fit kills it.
    """

    def __init__(self, *args: Any, marker_dir: str, die_once: int, die_always: int, **kw: Any):
        super().__init__(*args, **kw)
        self.marker_dir, self.die_once, self.die_always = marker_dir, die_once, die_always

    def fit(self, data: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        present = set(data["subj"])
        if len(present) > 1 and os.getpid() != int(os.environ.get("LOSO_TEST_PARENT", "0")):
            if self.die_always not in present:
                os._exit(17)
            marker = Path(self.marker_dir) / f"died-{self.die_once}"
            if self.die_once not in present and not marker.exists():
                marker.touch()
                os._exit(17)
        return super().fit(data, *args, **kwargs)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate("binomial", n=600, n_subjects=3, seed=2)


def test_processes_equal_serial(data: pd.DataFrame, tmp_path: Path) -> None:
    # save_folds=False: every warm fold starts from the full-data fit, whatever the process
    # order, so the pooled run must reproduce the serial one to rounding
    model = GAM([s("x0"), s("x1"), s("x2")], family="binomial")
    common: dict[str, Any] = {"subject": "subj", "compare_cold": True, "save_folds": False}
    serial = run_loso(data, model, store=str(tmp_path / "a"), **common)
    pooled = run_loso(
        data, model, store=str(tmp_path / "b"), executor="processes", max_workers=2, **common
    )
    assert pooled.attrs["executor"] == "processes"
    assert (pooled["status"] == "ok").all()
    assert set(pooled["warm_source"].sel(start="warm").values) == {"cross-fit"}
    for name in NUMERIC:
        np.testing.assert_allclose(
            pooled[name].values, serial[name].values, rtol=1e-12, err_msg=name
        )
    # the folds really ran in other processes
    pids = {w.rsplit(":", 1)[1] for w in pooled["worker"].values.ravel()}
    assert str(os.getpid()) not in pids


def test_dead_worker_is_retried_and_reported(
    data: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSO_TEST_PARENT", str(os.getpid()))  # the full-data fit must survive
    model = DyingGAM(
        [s("x0"), s("x1")],
        family="binomial",
        marker_dir=str(tmp_path),
        die_once=1,
        die_always=2,
    )
    ds = run_loso(data, model, subject="subj", warm=False, executor="processes", max_workers=2)
    status = dict(zip(ds["fold"].values, ds["status"].sel(start="cold").values, strict=True))
    assert status == {0: "ok", 1: "ok", 2: "failed"}
    assert int(ds["attempts"].sel(fold=1, start="cold")) == 2
    err = str(ds["error"].sel(fold=2, start="cold").values)
    assert "worker failed" in err and "BrokenProcessPool" in err
    assert (tmp_path / "died-1").exists()
    # the surviving folds have the same optimum as an undisturbed in-process run
    plain = GAM([s("x0"), s("x1")], family="binomial")
    ref = run_loso(data, plain, subject="subj", warm=False)
    np.testing.assert_allclose(
        ds["reml"].sel(fold=[0, 1]).values, ref["reml"].sel(fold=[0, 1]).values, rtol=1e-9
    )


def test_ctrl_c_while_workers_start_is_delivered_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGINT held while workers start reaches the previous handler afterwards."""
    import signal

    from gamstore.loso.executors import _workers_immune_to_ctrl_c

    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        with _workers_immune_to_ctrl_c():
            signal.raise_signal(signal.SIGINT)
            assert seen == []  # held while workers start
        assert seen == [signal.SIGINT]
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with _workers_immune_to_ctrl_c():
            signal.raise_signal(signal.SIGINT)  # ignored before: still ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with pytest.raises(KeyboardInterrupt):
            with _workers_immune_to_ctrl_c():
                signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
