"""Before/after timing of the listing paths the one walk touches (issue 16), two checkouts.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_layout_ab.py --before DIR [--after DIR]
[--n 2000] [--rounds 5]`` where ``DIR`` is a checkout of gamstore (``git worktree add
--detach /tmp/before <commit>``); ``--after`` defaults to this checkout.

On one shared local store of ``--n`` fit artifacts (the on-storage format is the same for
both), each round times every operation once in a fresh interpreter per checkout, before
and after alternating, so machine load drifts hit both alike; the table shows the medians
and the median of the per-round ratios after/before:

* ``open_fits`` with a current catalog (walk for the signature + catalog objects);
* ``open_fits(catalog="never")`` (walk + every marker and entry read);
* ``store.entries("artifact")`` (the listing alone);
* 200 lookups of absent keys (each a key-folder scan) and 200 of present ones (cold handle);
* 64 saves into the store under new keys (eviction sweeps walk a shard or the whole store);
  the store grows by 64 entries per run, before and after alike, so this row runs last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_PRELUDE = """
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np, xarray as xr
import gamstore, gamstore.views.fits, gamstore.store
from gamstore.store.testing import block_record
xr.Variable(("x",), np.zeros(1))
URL = {url!r}
"""

_OPS = {
    "open_fits (catalog current)": """
t = time.perf_counter(); ds = gamstore.open_fits(URL); dt = time.perf_counter() - t
assert ds.attrs["gamstore"]["source"] == "catalog"
""",
    "open_fits(catalog='never')": """
t = time.perf_counter(); ds = gamstore.open_fits(URL, catalog="never")
dt = time.perf_counter() - t
""",
    "store.entries (listing only)": """
s = gamstore.open_store(URL, read_only=True, ttl=0)
t = time.perf_counter(); n = len(list(s.entries("artifact"))); dt = time.perf_counter() - t
""",
    "200 lookups, absent keys": """
s = gamstore.open_store(URL, read_only=True, ttl=0)
t = time.perf_counter()
for i in range(200):
    assert s.lookup("block", f"absent-{i}") is None
dt = time.perf_counter() - t
""",
    "200 lookups, present keys (cold)": """
s = gamstore.open_store(URL, read_only=True, ttl=0)
t = time.perf_counter()
for i in range(200):
    assert s.lookup("block", f"k{i}") is not None
dt = time.perf_counter() - t
""",
    "64 saves (with eviction sweeps)": """
s = gamstore.open_store(URL, budget_bytes=1 << 40, sweep_every=8)
rec = block_record("x", 1)
tag = time.time_ns()
t = time.perf_counter()
for i in range(64):
    assert s.save("block", f"new-{tag}-{i}", rec) is not None
dt = time.perf_counter() - t
""",
}


def _time(root: Path, url: str, op: str) -> float:
    code = _PRELUDE.format(root=str(root), url=url) + _OPS[op] + "\nprint(json.dumps(dt))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _prepare(root: Path, url: str, n: int) -> None:
    code = (
        _PRELUDE.format(root=str(root), url=url)
        + f"""
from gamstore.views.catalog import write_catalog
from gamstore.views.synthetic import populate
s = gamstore.open_store(URL, budget_bytes=1 << 40)
populate(s, {n}, seed=1, keyspaces=("artifact",))
for i in range(200):
    s.save("block", f"k{{i}}", block_record(f"k{{i}}", i))
write_catalog(s, keyspaces=["artifact"], full=True)
"""
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout of the old commit")
    ap.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--n", type=int, default=2000, help="stored fit artifacts")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ops", default="", help="only operations whose name contains this")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gamstore-ab-"))
    try:
        url = str(tmp / "store")
        _prepare(args.after, url, args.n)
        rows = []
        for op in [o for o in _OPS if args.ops in o]:
            before: list[float] = []
            after: list[float] = []
            for _ in range(args.rounds):
                before.append(_time(args.before, url, op))
                after.append(_time(args.after, url, op))
            ratio = statistics.median(a / b for a, b in zip(after, before, strict=True))
            rows.append((op, statistics.median(before), statistics.median(after), ratio))
            print(f"{op}: {rows[-1][1:]}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n### listing paths before/after, {args.n} artifacts + 200 block entries, local disk"
        f" (medians of {args.rounds} alternating fresh processes)\n"
    )
    print("| operation | before (s) | after (s) | after/before (median of rounds) |")
    print("|---|---:|---:|---:|")
    for op, b, a, r in rows:
        print(f"| {op} | {b:.4f} | {a:.4f} | {r:.2f} |")
    print(json.dumps({op: r for op, _b, _a, r in rows}), file=sys.stderr)


if __name__ == "__main__":
    main()
