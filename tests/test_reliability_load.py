"""Load: several processes hammer one store with mixed operations under a small budget.

Asserted: zero wrong values, zero exceptions, every process finishes, and after a final
sweep the committed bytes are within budget; ``verify`` finds nothing corrupt. The default
run keeps a fast subset (4 x 200 local, 2 x 40 S3: moto answers ~10-20 ms per request); the full sizes (8 x 2 000 local,
4 x 500 S3) run under ``-m stress`` and in ``bench/stress_load.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from faults.load import run_load, store_bytes

import gamstore

BUDGET = 256 * 1024


def _check(url: str, options: dict[str, Any] | None, n_procs: int, n_ops: int) -> dict[str, Any]:
    out = run_load(url, options, n_procs, n_ops, budget_bytes=BUDGET)
    assert out["ops"] == n_procs * n_ops
    assert out["exceptions"] == 0, out["errors"]
    assert out["wrong"] == 0
    assert out["hits"] > 0 and out["saves"] > 0
    assert out["save_none"] == 0  # no storage faults here: every save is acknowledged
    store = gamstore.open_store(url, storage_options=options, budget_bytes=BUDGET)
    report = store.verify()
    assert report.corrupt == ()
    store.evict()
    committed, _total, n_entries = store_bytes(url, options)
    assert committed <= BUDGET
    assert n_entries > 0
    return out


def test_local_load_fast_subset(tmp_path: Any) -> None:
    _check(str(tmp_path / "store"), None, 4, 200)


@pytest.mark.s3
def test_s3_load_fast_subset(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    _check(s3_store_url, s3_options, 2, 40)


@pytest.mark.stress
def test_local_load_full(tmp_path: Any) -> None:
    _check(str(tmp_path / "store"), None, 8, 2000)


@pytest.mark.stress
@pytest.mark.s3
def test_s3_load_full(s3_store_url: str, s3_options: dict[str, Any]) -> None:
    _check(s3_store_url, s3_options, 4, 500)
