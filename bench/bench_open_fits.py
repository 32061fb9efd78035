"""Benchmark ``gamstore.open_fits`` over many stored fit artifacts (target: 10 000 in <= 2 s).

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_open_fits.py`` (``--n 10000`` by default,
``--quick`` = 1 000 fits; ``--store DIR`` reuses/creates a store there so repeated runs skip
the population step).

Every timing is taken in a fresh interpreter (a subprocess times only the call, after its
imports and xarray's one-off first-use probe, ~0.5 s once per process), because a store
caches parsed markers per process and a second call in the same process would not pay for
the listing. Rows, side by side on the same store:

* ``open_fits`` with a current catalog (the normal case after ``gamstore catalog``): one
  listing for the currency signature + the catalog objects;
* ``open_fits(catalog="never")``: the listing walk (decodes every entry);
* baseline ``xr.open_zarr`` of the same catalog group (generic xarray + zarr read of the
  same bytes);
* baseline ``np.load`` of one ``.npz`` holding the same padded arrays (raw I/O floor);
* baseline ``store.entries`` alone (the listing cost inside ``open_fits``).

A second table times the catalog rebuild itself, full and incremental.

Prints a markdown table (median of ``--repeat`` subprocess runs, and ratios to open_fits).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gamstore  # noqa: E402
from gamstore.views.catalog import read_pointer, write_catalog  # noqa: E402
from gamstore.views.synthetic import populate  # noqa: E402

_SNIPPETS = {
    "open_fits (catalog current)": """
t = time.perf_counter()
ds = gamstore.open_fits(URL)
dt = time.perf_counter() - t
assert ds.attrs["gamstore"]["source"] == "catalog", ds.attrs
n = ds.sizes["fit"]
""",
    "open_fits(catalog='never') (walk)": """
t = time.perf_counter()
ds = gamstore.open_fits(URL, catalog="never")
dt = time.perf_counter() - t
n = ds.sizes["fit"]
""",
    "baseline: xr.open_zarr(catalog group).load()": """
import warnings
warnings.simplefilter("ignore")
t = time.perf_counter()
ds = xr.open_zarr(FOLDER, group="artifact", consolidated=True, zarr_format=3).load()
dt = time.perf_counter() - t
n = ds.sizes["fit"]
""",
    "baseline: np.load(npz of the padded arrays)": """
t = time.perf_counter()
with np.load(NPZ, allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
dt = time.perf_counter() - t
n = arrays["objective"].shape[0]
""",
    "baseline: store.entries (listing only)": """
store = gamstore.open_store(URL, read_only=True, ttl=0)
t = time.perf_counter()
infos = list(store.entries("artifact"))
dt = time.perf_counter() - t
n = len(infos)
""",
}

_PRELUDE = """
import json, time, sys
import numpy as np, xarray as xr
sys.path.insert(0, {root!r})
import gamstore
import gamstore.views.fits, gamstore.store  # imports are not part of the timing
xr.Variable(("x",), np.zeros(1))  # xarray's one-off duck-array probe (imports dask.array)
URL, FOLDER, NPZ = {url!r}, {folder!r}, {npz!r}
"""


def _run(snippet: str, url: str, folder: str, npz: str) -> tuple[float, int]:
    code = _PRELUDE.format(
        root=str(Path(__file__).resolve().parents[1]), url=url, folder=folder, npz=npz
    )
    code += snippet + "\nprint(json.dumps({'dt': dt, 'n': int(n)}))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["dt"]), int(out["n"])


REBUILD: dict[str, float] = {}


def _prepare(path: Path, n: int) -> tuple[str, str, str]:
    store = gamstore.open_store(path, budget_bytes=1 << 40)
    have = sum(1 for _ in store.entries("artifact"))
    if have < n:
        t = time.perf_counter()
        populate(store, n - have, seed=have + 1, keyspaces=("artifact",))
        print(f"populated {n - have} fits in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    t = time.perf_counter()
    write_catalog(store, keyspaces=["artifact"], full=True)
    REBUILD["full rebuild (reads every entry)"] = time.perf_counter() - t
    t = time.perf_counter()
    info = write_catalog(store, keyspaces=["artifact"])
    REBUILD["incremental rebuild, nothing new (reuses every row)"] = time.perf_counter() - t
    print(f"catalog rebuilds: {REBUILD}", file=sys.stderr)
    pointer = read_pointer(store)
    assert pointer is not None and pointer["folder"] == info.folder
    folder = str(path / ".catalog" / info.folder)
    ds = gamstore.open_fits(store)
    npz = str(path.parent / "open_fits_baseline.npz")
    np.savez(
        npz, **{str(k): np.asarray(v.values) for k, v in ds.variables.items() if v.dtype != object}
    )
    return str(path), folder, npz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of stored fits")
    parser.add_argument("--repeat", type=int, default=3, help="subprocess runs per row")
    parser.add_argument("--store", type=Path, default=None, help="store directory to reuse")
    parser.add_argument("--quick", action="store_true", help="1 000 fits, 1 repeat")
    args = parser.parse_args()
    n = 1000 if args.quick else args.n
    repeat = 1 if args.quick else args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        path = args.store if args.store is not None else Path(tmp) / "store"
        path.mkdir(parents=True, exist_ok=True)
        url, folder, npz = _prepare(path, n)
        results: dict[str, tuple[float, int]] = {}
        for name, snippet in _SNIPPETS.items():
            times = []
            count = 0
            for _ in range(repeat):
                dt, count = _run(snippet, url, folder, npz)
                times.append(dt)
            results[name] = (statistics.median(times), count)
    ref = results["open_fits (catalog current)"][0]
    print(
        f"\n### open_fits over {n} stored fit artifacts (local disk, median of {repeat} fresh processes)\n"
    )
    print("| operation | fits | time (s) | ratio to open_fits |")
    print("|---|---:|---:|---:|")
    for name, (dt, count) in results.items():
        print(f"| {name} | {count} | {dt:.3f} | {dt / ref:.2f} |")
    print(f"\n`gamstore catalog` over the same {n} fits (in-process, one run each):\n")
    print("| catalog rebuild | time (s) |")
    print("|---|---:|")
    for name, dt in REBUILD.items():
        print(f"| {name} | {dt:.2f} |")
    verdict = "meets" if ref <= 2.0 else "MISSES"
    print(
        f"\nopen_fits with a current catalog: {ref:.3f} s for {n} fits ({verdict} the <= 2 s target)"
    )


if __name__ == "__main__":
    main()
