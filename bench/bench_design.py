"""Fitter design build: ``GAM.prepare`` (validation + ``build_design``) per call.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_design.py [--reps N] [--quick]
[--old-src DIR --rounds R]``

Cases (BLAS pinned to one thread):

* n = 1 800   - a leave-one-subject-out fold of the Appendix B simulation (3 smooths, k = 10,
                knots frozen at the full-data fit): the design every LOSO fold pays for
* n = 20 000  - the simulation at n = 20 000, 3 smooths, knots from the data
* n = 100 000 and n = 200 000 - 4 smooths (x3 uniform added), knots from the data

Per case, in the same process: ms per ``prepare`` (best of ``--reps`` timing loops), and as a
baseline the raw cost of ``scipy.interpolate.BSpline.design_matrix(x, t, 3).toarray()`` for the
same columns and knots (the spline evaluation alone, no constraint, penalty or rotation); the
ratio says what the whole design costs in units of that evaluation.

``--old-src DIR`` also times another checkout of the package (e.g. ``git archive <rev>
gamstore | tar -x -C DIR``) in subprocesses, alternating with this one for ``--rounds``
rounds, and reports the speed-up (min over rounds of each) and whether the built designs are
bit-identical (SHA-256 over X, initial rho and every block's T, S, U, eigenvalues, S_scale,
knots and column means).
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.interpolate import BSpline  # noqa: E402

from gamstore.fit import GAM, s  # noqa: E402
from gamstore.fit.simulate import simulate  # noqa: E402

CASES = (1_800, 20_000, 100_000, 200_000)
QUICK_CASES = (1_800, 20_000)


def make_case(n: int) -> tuple[GAM, pd.DataFrame, dict[str, np.ndarray] | None]:
    """Model, data and frozen knots (or None) of one case."""
    if n == 1_800:
        df = simulate("gaussian")
        m = GAM([s("x0"), s("x1"), s("x2")], family="gaussian")
        knots = m.fit(df, y="y").knots
        fold = df[df.subj != 3].reset_index(drop=True)
        return m, fold, knots
    df = simulate("gaussian", n=n)
    terms = ["x0", "x1", "x2"]
    if n >= 100_000:
        df["x3"] = np.random.default_rng(n).uniform(size=n)
        terms.append("x3")
    return GAM([s(t) for t in terms], family="gaussian"), df, None


def best_ms(fn: Callable[[], object], reps: int, budget_s: float = 0.25) -> float:
    """Best of ``reps`` timing loops, each long enough to be timed (ms per call)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    loops = max(1, int(budget_s / reps / one))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best * 1e3


def design_digest(m: GAM, data: pd.DataFrame, knots: Any) -> str:
    """SHA-256 over everything the built design holds (bits, not values)."""
    d = m.prepare(data, "y", knots=knots)[0].design
    h = hashlib.sha256()
    for a in (d.X, d.initial_rho):
        h.update(np.ascontiguousarray(a).tobytes())
    for b in d.smooths:
        bb = b.basis
        for a in (bb.knots, bb.T, bb.S_raw, bb.S, bb.col_means, b.U, b.eig):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(np.float64(bb.S_scale).tobytes() + np.float64(b.logdet_S).tobytes())
    return h.hexdigest()


def measure(sizes: tuple[int, ...], reps: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for n in sizes:
        m, data, knots = make_case(n)
        prep = best_ms(lambda m=m, data=data, knots=knots: m.prepare(data, "y", knots=knots), reps)
        d = m.prepare(data, "y", knots=knots)[0].design
        cols = [(data[b.spec.term].to_numpy(), b.basis.knots) for b in d.smooths]

        def scipy_designs(cols: list[tuple[np.ndarray, np.ndarray]] = cols) -> None:
            for x, t in cols:
                BSpline.design_matrix(x, t, 3, extrapolate=True).toarray()

        base = best_ms(scipy_designs, reps)
        out[str(n)] = {
            "n": len(data),
            "smooths": len(d.smooths),
            "p": d.p,
            "prepare_ms": prep,
            "scipy_ms": base,
            "digest": design_digest(m, data, knots),
        }
    return out


def worker(sizes: tuple[int, ...], reps: int, src: str | None) -> dict[str, dict[str, Any]]:
    """Run :func:`measure` in a fresh interpreter, optionally on another package source."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--reps", str(reps)]
    cmd += ["--sizes", *map(str, sizes)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timing loops per case (best of)")
    parser.add_argument("--quick", action="store_true", help="only n = 1 800 and 20 000")
    parser.add_argument("--sizes", type=int, nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--old-src", help="directory holding another gamstore package to compare")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds with --old-src")
    args = parser.parse_args(argv)
    sizes = tuple(args.sizes) if args.sizes else (QUICK_CASES if args.quick else CASES)
    if args.worker:
        print(json.dumps(measure(sizes, args.reps)))
        return 0
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    here = measure(sizes, args.reps)
    print("| n | smooths | p | prepare ms | scipy design_matrix ms | prepare / scipy |")
    print("|---|---|---|---|---|---|")
    for r in here.values():
        print(
            f"| {r['n']} | {r['smooths']} | {r['p']} | {r['prepare_ms']:.3f} | "
            f"{r['scipy_ms']:.3f} | {r['prepare_ms'] / r['scipy_ms']:.2f} |"
        )
    if args.old_src:
        old: dict[str, list[float]] = {str(n): [] for n in sizes}
        new: dict[str, list[float]] = {str(n): [] for n in sizes}
        digests: dict[str, tuple[str, str]] = {}
        for _ in range(args.rounds):
            o = worker(sizes, args.reps, args.old_src)
            w = worker(sizes, args.reps, None)
            for key in old:
                old[key].append(o[key]["prepare_ms"])
                new[key].append(w[key]["prepare_ms"])
                digests[key] = (o[key]["digest"], w[key]["digest"])
        print(f"\nagainst {args.old_src} ({args.rounds} alternating rounds, min of each):\n")
        print("| n | old prepare ms | new prepare ms | speed-up | design bit-identical |")
        print("|---|---|---|---|---|")
        for key in old:
            lo, ln = min(old[key]), min(new[key])
            same = "yes" if digests[key][0] == digests[key][1] else "NO"
            print(f"| {here[key]['n']} | {lo:.3f} | {ln:.3f} | {lo / ln:.2f} | {same} |")
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
