"""Two commits side by side in one run: the same public-API workload timed on each, alternately.

``python bench/compare_commits.py BASE [HEAD] --rounds 5`` checks out ``BASE`` (and ``HEAD``,
default: this working tree) into temporary git worktrees, then runs the workload below in a
fresh process per (commit, round), alternating A, B, A, B ... so that drift of the machine (other
load, thermal state) hits both commits alike. Each operation's time is the median over rounds of
the per-round median; the table gives B/A and flags operations more than 10% slower.

The workload uses only the public API that both sides share (``gamstore.fit.GAM``,
``gamstore.loso.run_loso``, ``gamstore.open_fits``, ``gamstore.hash_array``), so it measures
what a user notices, whatever moved inside. BLAS is pinned to one thread.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]


# ---------------------------------------------------------------- workload (child process)


def _median_time(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def workload(quick: bool) -> dict[str, float]:
    """Time each operation once per call (medians over a few repetitions inside)."""
    import numpy as np

    import gamstore
    from gamstore.fit import GAM, s
    from gamstore.loso import run_loso, simulate

    out: dict[str, float] = {}
    reps = 2 if quick else 5
    big = np.random.default_rng(1).standard_normal(8 << 20 if quick else 32 << 20)
    out[f"hash_array (C, {big.nbytes >> 20} MB)"] = _median_time(
        lambda: gamstore.hash_array(big), reps
    )

    for family, n in (("gaussian", 20_000), ("poisson", 5_000)):
        df = simulate(family, n=n, n_subjects=10)
        model = GAM([s("x0"), s("x1"), s("x2")], family=family)
        out[f"fit cold, {family} n={n}"] = _median_time(lambda m=model, d=df: m.fit(d, y="y"), reps)
        with tempfile.TemporaryDirectory(prefix="gamstore-cmp-") as tmp:
            model.fit(df, y="y", store=tmp)  # first fit fills the store
            out[f"fit warm exact refit, {family} n={n}"] = _median_time(
                lambda m=model, d=df, t=tmp: m.fit(d, y="y", store=t), reps
            )

    df = simulate("poisson", n=3_000 if quick else 6_000, n_subjects=10)
    model = GAM([s("x0"), s("x1"), s("x2")], family="poisson")
    out["LOSO cold, poisson 10 folds"] = _median_time(
        lambda: run_loso(df, model, subject="subj", warm=False, progress=False), 1
    )
    with tempfile.TemporaryDirectory(prefix="gamstore-cmp-") as tmp:
        t0 = time.perf_counter()
        run_loso(df, model, subject="subj", store=tmp, progress=False)
        out["LOSO warm (empty store), poisson 10 folds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_loso(df, model, subject="subj", store=tmp, progress=False)
        out["LOSO warm (repeat), poisson 10 folds"] = time.perf_counter() - t0
        out["open_fits(artifact) on that store"] = _median_time(
            lambda: gamstore.open_fits(tmp, catalog="never"), reps
        )
    return out


# ---------------------------------------------------------------- driver


def _checkout(ref: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), ref],
        check=True,
        capture_output=True,
    )
    return where


def _run_once(tree: Path, quick: bool) -> dict[str, float]:
    env = dict(
        os.environ,
        PYTHONPATH=str(tree),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    cmd = [sys.executable, str(HERE), "--workload"] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"workload failed on {tree.name}:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", nargs="?", help="git ref of the baseline (A)")
    ap.add_argument("head", nargs="?", default=None, help="git ref of B (default: this tree)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.workload:
        print(json.dumps(workload(args.quick)))
        return 0
    if not args.base:
        ap.error("BASE is required")
    with tempfile.TemporaryDirectory(prefix="gamstore-cmp-trees-") as tmp:
        trees = {"A": _checkout(args.base, Path(tmp) / "a")}
        trees["B"] = _checkout(args.head, Path(tmp) / "b") if args.head else REPO
        try:
            runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
            for r in range(args.rounds):
                order = ("A", "B") if r % 2 == 0 else ("B", "A")
                for side in order:
                    runs[side].append(_run_once(trees[side], args.quick))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            for side in ("A", "B"):
                if trees[side] != REPO:
                    subprocess.run(
                        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees[side])],
                        capture_output=True,
                    )
    a_label, b_label = args.base, args.head or "working tree"
    print(f"\nA = {a_label}, B = {b_label}; {args.rounds} rounds, alternating; medians\n")
    print("| operation | A (ms) | B (ms) | B/A |")
    print("|---|---:|---:|---:|")
    worst = 0.0
    for op in runs["A"][0]:
        a = statistics.median(run[op] for run in runs["A"]) * 1e3
        b = statistics.median(run[op] for run in runs["B"] if op in run) * 1e3
        ratio = b / a
        worst = max(worst, ratio)
        flag = " **slower**" if ratio > 1.10 else ""
        print(f"| {op} | {a:.1f} | {b:.1f} | {ratio:.2f}{flag} |")
    print(f"\nworst B/A: {worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
