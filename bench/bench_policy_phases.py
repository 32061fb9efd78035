"""Where a warm LOSO's extra time goes: per-phase timers around one ``run_loso`` call.

Wraps (for the length of the script) the store open, the warm-start lookups
(``FitWarmStart.exact``/``session_start``/``cross_fit``/``find``), the writes
(``FitWarmStart.finish``), the input keys (``GAM._input_key``), the per-subject row digests,
the warm-start contexts (``WarmContext.__init__``), the design build (``GAM.prepare``), the
outer loops (``GAM.run``) and the start check's cold refit, and prints wall ms per LOSO (mean
of ``--runs``) for cold (``warm=False``) against adaptive (a fresh local store and cost model
per run), with the number of calls per LOSO. Workloads as bench/bench_policy.py; names match
by substring.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_policy_phases.py Orange Indometh Theoph poisson``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import functools  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_policy as bp  # noqa: E402

import gamstore.store as gst  # noqa: E402
from gamstore.fit import model as gm  # noqa: E402
from gamstore.fit import warm as fw  # noqa: E402
from gamstore.loso import pipeline, run_loso  # noqa: E402
from gamstore.warmstart import plan  # noqa: E402
from gamstore.warmstart import policy as pol  # noqa: E402

ACC: dict[str, float] = collections.defaultdict(float)
CNT: collections.Counter[str] = collections.Counter()


def wrap(obj: Any, attr: str, label: str) -> None:
    f = getattr(obj, attr)

    @functools.wraps(f)
    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            ACC[label] += time.perf_counter() - t0
            CNT[label] += 1

    setattr(obj, attr, timed)


def instrument() -> None:
    wrap(plan.FitWarmStart, "exact", "lookup: exact record")
    wrap(plan.FitWarmStart, "session_start", "lookup: session")
    wrap(plan.FitWarmStart, "cross_fit", "lookup: cross-fit artifact")
    wrap(plan.FitWarmStart, "find", "lookup phase (all)")
    wrap(plan.FitWarmStart, "finish", "saves")
    wrap(gm.GAM, "_input_key", "input keys")
    wrap(gm.GAM, "prepare", "design build")
    wrap(gm.GAM, "run", "outer loops (incl. cold refits)")
    wrap(pipeline, "_row_blocks", "row digests")
    wrap(gst, "open_store", "store open")
    wrap(fw.WarmContext, "__init__", "warm-start contexts")
    check = fw.check_start

    def check_start(*args: Any) -> Any:
        *head, run_cold = args

        def cold() -> Any:
            t0 = time.perf_counter()
            try:
                return run_cold()
            finally:
                ACC["start check: cold refit"] += time.perf_counter() - t0
                CNT["start check: cold refit"] += 1

        return check(*head, cold)

    fw.check_start = check_start  # type: ignore[assignment]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="workload name substrings")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    instrument()
    cases = list(bp.realdata_cases()) + list(bp.demo_cases())
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-phases-") as tmp:
        for name, data, model, kw in cases:
            if not any(n in name for n in args.names):
                continue
            run_loso(data, model, warm=False, progress=False, **kw)  # first-use imports
            out = {}
            for mode in ("cold", "adaptive"):
                ACC.clear()
                CNT.clear()
                total = 0.0
                for _ in range(args.runs):
                    pol.COSTS.clear()
                    t0 = time.perf_counter()
                    if mode == "cold":
                        run_loso(data, model, warm=False, progress=False, **kw)
                    else:
                        store = str(Path(tmp) / uuid.uuid4().hex)
                        run_loso(data, model, store=store, progress=False, **kw)
                    total += time.perf_counter() - t0
                out[mode] = ({**ACC, "TOTAL": total}, dict(CNT))
            print(f"== {name}: wall ms per LOSO (mean of {args.runs}), cold | adaptive (calls)")
            (ca, cc), (aa, ac) = out["cold"], out["adaptive"]
            for k in sorted(set(ca) | set(aa)):
                print(
                    f"  {k:34s} {1e3 * ca.get(k, 0) / args.runs:8.2f} | "
                    f"{1e3 * aa.get(k, 0) / args.runs:8.2f}   "
                    f"({cc.get(k, 0) / args.runs:g} | {ac.get(k, 0) / args.runs:g})"
                )
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
