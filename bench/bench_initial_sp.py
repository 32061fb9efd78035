"""Cost of mgcv's ``initial.spg`` start (the weighted design) in ``GAM.prepare``.

Times ``prepare`` of a Poisson model (3 smooths, Appendix B simulation) with the weighted
start (the default: weighted sums taken in the pass that fills the design) against the same
call with the unweighted ``initial.sp`` start (``build_design`` without ``start_weights``),
interleaved in one process, best of several calls.

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/bench_initial_sp.py [--sizes 2000 200000]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gamstore.fit.model as gm  # noqa: E402
from gamstore.fit import GAM, s  # noqa: E402
from gamstore.loso import simulate  # noqa: E402

REAL = gm.build_design


def unweighted(*args: Any, start_weights: Any = None, **kwargs: Any) -> Any:
    """``build_design`` with the unweighted start (the start before initial.spg)."""
    return REAL(*args, **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 200000])
    args = parser.parse_args(argv)
    print("| n | prepare, unweighted start (ms) | weighted start (ms) | difference |")
    print("|---|---|---|---|")
    for n in args.sizes:
        df = simulate("poisson", n=n, n_subjects=10)
        m = GAM([s("x0"), s("x1"), s("x2")], family="poisson")
        res: dict[str, list[float]] = {}
        for _ in range(9 if n <= 20000 else 5):
            for label, fn in (("weighted", REAL), ("unweighted", unweighted)):
                gm.build_design = fn  # type: ignore[assignment]
                t = time.perf_counter()
                m.prepare(df, "y")
                res.setdefault(label, []).append(time.perf_counter() - t)
        gm.build_design = REAL
        pw, pu = min(res["weighted"]), min(res["unweighted"])
        print(
            f"| {n} | {pu * 1e3:.2f} | {pw * 1e3:.2f} | {(pw - pu) * 1e3:+.2f} ms ({pw / pu:.2f}x) |"
        )


if __name__ == "__main__":
    main()
