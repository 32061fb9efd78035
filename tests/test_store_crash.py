"""A writer killed with SIGKILL mid-save leaves no visible torn entry; gc removes leftovers."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sys
from pathlib import Path

import pytest
from requires import require

from gamstore.store import open_store
from gamstore.store.layout import ACCESS_DIR, MARKER, is_level_doc
from gamstore.store.testing import crash_writer, record_values_ok


@pytest.fixture(autouse=True)
def _needs_sigkill() -> None:
    # POSIX only; CI (Linux) must run these, so a missing SIGKILL fails there
    require(hasattr(signal, "SIGKILL"), f"SIGKILL (absent on {sys.platform})")


def test_sigkill_during_saves_leaves_no_torn_entry(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    open_store(url)  # root exists before the writers start
    ctx = mp.get_context("spawn")
    rng = random.Random(1234)
    kills = 0
    for _ in range(4):
        ready = ctx.Event()
        proc = ctx.Process(target=crash_writer, args=(url, 50, ready))
        proc.start()
        assert ready.wait(60)
        # 50 saves take ~20-100 ms here: kill somewhere inside them
        proc.join(timeout=rng.uniform(0.0, 0.05))
        if proc.is_alive():
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.join(30)
    assert kills >= 1

    store = open_store(url)
    # every visible entry is complete and right
    rep = store.verify()
    assert rep.corrupt == ()
    for i in range(7):
        e = store.lookup("block", f"crash-{i}")
        assert e is None or record_values_ok(e.record, f"crash-{i}", int(e.objective or 0))
    for info in store.entries():
        e = store.read_entry(info)
        assert e is not None and record_values_ok(e.record, e.key, int(e.objective or 0))

    store.gc(grace=0)
    committed = {info.path for info in store.entries()}
    for o in store.backend.list(""):
        if o.path == MARKER or o.path.startswith(f"{ACCESS_DIR}/") or is_level_doc(o.path):
            continue
        entry = "/".join(o.path.split("/")[:3])  # layout 2: <ks>/<kk>/<key64>.<entry id>
        assert entry in committed, f"leftover after gc: {o.path}"
    assert store.verify().uncommitted == 0
