"""Peak memory of ``open_fits``: padded vs ragged views of unequal vectors (issue 14).

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_view_memory.py`` (``--big 1900000`` values
in one β among ``--small 100`` entries of 20 values; ``--quick`` = a 300 000-value β).

Every case runs in a fresh interpreter on the same local store and reports its peak RSS
(``ru_maxrss``) after the call, side by side with a baseline process that only lists and
decodes the entries (what any view must read):

* baseline: ``read_rows`` (listing + decode of every entry, no Dataset);
* ``open_fits(ragged=True)``: CF contiguous ragged arrays;
* ``open_fits(max_bytes=None)``: the padded view without the cap (what ``open_fits`` did
  before ``max_bytes``: every row as wide as the longest β);
* ``open_fits()`` (default cap): refused before allocating, with the error's size estimate.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PRELUDE = """
import json, resource, sys
import xarray  # every case pays for it
import gamstore
from gamstore.views.listing import list_infos, read_rows
URL = sys.argv[1]
store = gamstore.open_store(URL, read_only=True)
out = {}
"""

CASES = {
    "baseline: read_rows (list + decode, no Dataset)": """
rows, _ = read_rows(store, list_infos(store, "outer"))
out["nbytes"] = sum(r.flat["beta"].nbytes + r.flat["rho"].nbytes for r in rows)
""",
    "open_fits(ragged=True)": """
ds = gamstore.open_fits(store, keyspace="outer", ragged=True, catalog="never")
out["nbytes"] = int(ds.nbytes)
""",
    "open_fits(max_bytes=None) (padded, uncapped: the old behaviour)": """
ds = gamstore.open_fits(store, keyspace="outer", max_bytes=None, catalog="never")
out["nbytes"] = int(ds.nbytes)
""",
    "open_fits() (padded, default 1 GiB cap)": """
from gamstore.views.assemble import ViewTooLargeError
try:
    ds = gamstore.open_fits(store, keyspace="outer", catalog="never")
    out["nbytes"] = int(ds.nbytes)
except ViewTooLargeError as exc:
    out["refused"] = exc.nbytes
""",
}

_EPILOGUE = """
out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
"""


def populate(url: str, n_small: int, big: int) -> None:
    import numpy as np

    import gamstore
    from gamstore.records import IteratePayload

    store = gamstore.open_store(url)
    for i in range(n_small):
        rec = IteratePayload(rho=np.ones(2), cost=float(i), eval_id=i, beta=np.arange(20.0))
        store.save("outer", f"small-{i}", rec, kind="final")
    rec = IteratePayload(rho=np.ones(1), cost=0.0, eval_id=1, beta=np.linspace(0, 1, big))
    store.save("outer", "big", rec, kind="final")


def run_case(code: str, url: str) -> dict[str, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", _PRELUDE + code + _EPILOGUE, url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_900_000, help="values in the long beta")
    parser.add_argument("--small", type=int, default=100, help="entries with 20 values")
    parser.add_argument("--quick", action="store_true", help="--big 300000")
    args = parser.parse_args(argv)
    big = 300_000 if args.quick else args.big
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "store")
        populate(url, args.small, big)
        results = {name: run_case(code, url) for name, code in CASES.items()}
    base = results[next(iter(CASES))]["rss"]
    print(f"{args.small} entries of 20 values + one of {big} (outer keyspace, local store)\n")
    print("| case | peak RSS (MB) | RSS over baseline (MB) | Dataset (MB) |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        size = r.get("nbytes")
        shown = f"{size / 1e6:.1f}" if size is not None else f"refused ({r['refused'] / 1e6:.0f})"
        print(f"| {name} | {r['rss'] / 1e6:.0f} | {round((r['rss'] - base) / 1e6):d} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
