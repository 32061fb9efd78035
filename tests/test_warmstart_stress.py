"""Stress: several processes hammer one local store through the warm-start layer at once
(block records, outer sessions, artifacts). Every load must be a valid record or a miss and
nothing may raise. Excluded from default runs (``-m stress``)."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.stress


def _worker(root: str, wid: int, rounds: int, out: Any) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from test_warmstart_fakes import make_fit

    from gamstore import warmstart as ws

    try:
        fam, specs, opts = make_fit(n=30, seed=wid % 2)  # two fits shared by the workers
        store = ws.warm_store(root, budget_bytes=1 << 20)  # small budget: evictions too
        rng = np.random.default_rng(wid)
        hits = 0
        for r in range(rounds):
            key, warm = ws.load_block_warm_start(store, fam, specs, opts, 3)
            if warm is not None:
                hits += 1
                assert all(np.isfinite(b).all() for b in warm.block_beta)
                assert [b.shape[0] for b in warm.block_beta] == [s.width for s in specs]
            rho = rng.uniform(-3, 3, size=3)
            betas = [rng.normal(size=s.width) for s in specs]
            ws.store_block_warm_start(store, key, specs, ws.BlockWarmStart(rho, betas))
            sess = ws.OuterSession.open(store, fam, specs, opts, block_key=key)
            start = sess.begin(3)
            assert start.kind in ("cold", "seed", "exact-final")
            sess.on_evaluation(rho, np.concatenate(betas), float(r))
            if r % 5 == 4:
                sess.finish(rho, np.concatenate(betas), float(r), True)
        out.put((wid, hits, store.available if store is not None else False, None))
    except BaseException as exc:  # reported to the parent
        out.put((wid, -1, False, f"{type(exc).__name__}: {exc}"))


def test_concurrent_processes_share_one_store(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    root = str(tmp_path / "shared")
    procs = [ctx.Process(target=_worker, args=(root, i, 25, out)) for i in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if r[3] is not None]
    assert not errors, errors
    assert all(r[2] for r in results)  # no worker lost its store to an I/O error
    assert sum(r[1] for r in results) > 0
