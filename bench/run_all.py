"""Run every benchmark in ``bench/`` one after another and print their tables.

``python bench/run_all.py`` runs the full sizes that BENCHMARKS.md quotes (tens of minutes on
2 cores); ``--quick`` runs each script's small variant (a few minutes), for checking that the
benchmarks still work. BLAS is pinned to one thread for every script. Each script runs in its
own process, so one failing script is reported and the others still run; the exit code is the
number of failed scripts (0 = all ran).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> (full-size arguments, quick arguments)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "bench_fingerprint.py": ([], ["--size-mb", "64", "--no-joblib"]),
    "bench_store.py": ([], ["--quick"]),
    "bench_warmstart.py": ([], ["--quick"]),
    "bench_fit.py": (["--reps", "7"], ["--reps", "3", "--no-large"]),
    "bench_design.py": ([], ["--quick", "--reps", "3"]),
    "bench_loso.py": (["--big"], ["--no-mgcv", "--repeat", "1", "--stores", "local-readonly"]),
    "bench_scale.py": (
        ["--repeat-loso", "--exact-refit", "--mgcv-folds", "1"],
        ["--n", "20000", "--subjects", "4", "--smooths", "3", "--repeat-loso", "--exact-refit"],
    ),
    "bench_open_fits.py": ([], ["--quick"]),
    "bench_view_memory.py": ([], ["--quick"]),
    "bench_adapters.py": ([], ["--quick"]),
    "bench_parity.py": (
        ["--suite", "all"],
        ["--suite", "all", "--no-big", "--recorded-mgcv", "--reps", "1"],
    ),
    "bench_breaker.py": ([], []),
    "bench_ext_polish.py": ([], ["--rounds", "1"]),
    "bench_startcheck.py": ([], ["--quick", "--reps", "1"]),
    "bench_tail_probe.py": ([], ["--rounds", "2", "--folds", "2"]),
    "bench_initial_sp.py": ([], ["--sizes", "2000"]),
    "bench_hdf5.py": ([], ["--sizes", "200", "1000"]),
    "bench_local_safety.py": ([], ["--quick"]),
    "bench_policy.py": (["--realdata", "--demo", "--s3"], ["--demo", "--repeats", "1"]),
    "bench_background.py": (["--realdata", "--demo", "--s3"], ["--demo", "--repeats", "1"]),
    "bench_policy_phases.py": (
        ["Orange", "Indometh", "Theoph", "poisson"],
        ["poisson", "--runs", "1"],
    ),
    "trace_warm_refit.py": ([], []),
    "trace_open_fits.py": ([], ["--repeat", "1"]),
    "stress_load.py": ([], ["--quick"]),
    "stress_faults.py": ([], []),
}

# A/B tools: they compare two checkouts given on the command line, so run_all cannot run them
# unattended (tests/test_bench_scripts.py still checks that they start).
AB_TOOLS: dict[str, str] = {
    "compare_commits.py": "BASE [HEAD] git refs",
    "bench_layout_ab.py": "--before DIR (a checkout)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small variant of every benchmark")
    parser.add_argument("--only", nargs="*", choices=sorted(SCRIPTS), help="run only these")
    args = parser.parse_args(argv)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    failed: list[str] = []
    for name, (full, quick) in SCRIPTS.items():
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / name), *(quick if args.quick else full)]
        print(f"\n## {name} ({' '.join(cmd[2:]) or 'defaults'})\n", flush=True)
        start = time.perf_counter()
        rc = subprocess.call(cmd, env=env)
        print(f"\n({name}: exit {rc}, {time.perf_counter() - start:.1f} s)", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
