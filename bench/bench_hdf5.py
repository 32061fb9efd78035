"""HDF5 export and import of N block entries, beside saving the same N records directly.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_hdf5.py`` (1 000 and 10 000 entries;
``--sizes 200 1000`` for a quick run).

For each size, in one process and on the same disk: N synthetic block records (1 to 3
smooths, what ``gamstore.views.synthetic`` makes) are built first, then timed

* **direct saves**: ``store.save`` of the N records into a fresh local store (the baseline);
* **export**: ``export_hdf5`` of that store (list, read and verify every entry, write HDF5);
* **import**: ``import_hdf5`` of the file into another fresh local store (read and check
  every entry, commit it, re-read it through the store).

Prints a markdown table: wall and CPU seconds, the ratios to the direct saves, and the time
per entry (constant per entry when export and import are linear). CPU time counts the kernel
time of the file operations too; wall time also counts waits for the shared disk and cores.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gamstore  # noqa: E402
from gamstore.views.hdf5 import export_hdf5, import_hdf5  # noqa: E402
from gamstore.views.synthetic import block_record, synthetic_fit  # noqa: E402


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall s, CPU s) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_size(n: int, workdir: Path) -> dict[str, float]:
    """Time direct saves, export and import of ``n`` block records under ``workdir``."""
    records = []
    for i in range(n):
        key = f"block/bench-{i}"
        records.append((key, block_record(synthetic_fit(7, i), key)))
    src = gamstore.open_store(workdir / "direct")

    def save_all() -> int:
        return sum(1 for key, rec in records if src.save("block", key, rec) is not None)

    saved, save_wall, save_cpu = timed(save_all)
    assert saved == n, f"only {saved} of {n} saves succeeded"
    print(f"{n} entries: direct saves {save_wall:.2f} s wall, {save_cpu:.2f} s CPU", flush=True)
    out = workdir / "export.h5"
    rep, exp_wall, exp_cpu = timed(lambda: export_hdf5(src, out))
    assert rep.exported == n and not rep.skipped, rep
    print(f"{n} entries: export {exp_wall:.2f} s wall, {exp_cpu:.2f} s CPU", flush=True)
    dst = gamstore.open_store(workdir / "imported")
    rep2, imp_wall, imp_cpu = timed(lambda: import_hdf5(dst, out))
    assert rep2.imported == n and not rep2.failed, rep2.failed[:3]
    print(f"{n} entries: import {imp_wall:.2f} s wall, {imp_cpu:.2f} s CPU", flush=True)
    return {
        "n": n,
        "save_wall": save_wall,
        "save_cpu": save_cpu,
        "export_wall": exp_wall,
        "export_cpu": exp_cpu,
        "import_wall": imp_wall,
        "import_cpu": imp_cpu,
        "file_mb": out.stat().st_size / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--dir", default=None, help="work folder (default: a temp folder)")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 shared cores)")
    rows = []
    for n in args.sizes:
        work = Path(tempfile.mkdtemp(prefix=f"gamstore-bench-hdf5-{n}-", dir=args.dir))
        try:
            rows.append(run_size(n, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(
        "\n| entries | direct saves wall / CPU s | export wall / CPU s | import wall / CPU s "
        "| export ÷ saves (wall / CPU) | import ÷ saves (wall / CPU) "
        "| per entry: saves / export / import ms (wall) | file MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        n = r["n"]
        print(
            f"| {n} | {r['save_wall']:.2f} / {r['save_cpu']:.2f} "
            f"| {r['export_wall']:.2f} / {r['export_cpu']:.2f} "
            f"| {r['import_wall']:.2f} / {r['import_cpu']:.2f} "
            f"| {r['export_wall'] / r['save_wall']:.2f} / {r['export_cpu'] / r['save_cpu']:.2f} "
            f"| {r['import_wall'] / r['save_wall']:.2f} / {r['import_cpu'] / r['save_cpu']:.2f} "
            f"| {1e3 * r['save_wall'] / n:.2f} / {1e3 * r['export_wall'] / n:.2f} "
            f"/ {1e3 * r['import_wall'] / n:.2f} | {r['file_mb']:.1f} |"
        )
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        for what in ("save", "export", "import"):
            grow = (b[f"{what}_cpu"] / b["n"]) / (a[f"{what}_cpu"] / a["n"])
            print(f"\n{what}: CPU per entry at {b['n']} ÷ at {a['n']} = {grow:.2f}", end="")
        print()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
