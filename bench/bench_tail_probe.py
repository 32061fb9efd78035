"""What the start check's ``"bound"`` trigger costs and what it catches.

* **cost** - warm LOSO folds from the full-data fit of a Gaussian model with three null smooths
  (tests/test_startcheck_bound.py's data, n = 50 000, 50 subjects; the null smooths stay in
  their flat tail, so the trigger probes REML there and trusts them): CPU time of the fold
  fits with the probes against the same fits with none (``TAIL_PROBES = ()``), alternating
  rounds in one process, a fresh store per round;
* **catch** - mtcars by cylinders, fold 3 started from a fit on fold 2's rows (both smooths in
  their tail): REML of the warm fit, the cold fit, and the start check's reasons.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_tail_probe.py [--rounds 4] [--folds 6]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import gamstore.fit.startcheck as sc  # noqa: E402
from gamstore.fit import GAM, s  # noqa: E402
from gamstore.loso import simulate  # noqa: E402


def null_smooth_data(n: int = 50_000, subjects: int = 50) -> Any:
    df = simulate("gaussian", n=n, n_subjects=subjects)
    rng = np.random.default_rng(17)
    for j in range(3, 6):
        df.insert(j, f"x{j}", rng.uniform(size=n))  # no effect
    return df


def cost(rounds: int, folds: int) -> str:
    model = GAM([s(f"x{j}") for j in range(6)], family="gaussian")
    df = null_smooth_data()
    knots = model.fit(df, y="y").knots
    trains = [df[df["subj"] != k].reset_index(drop=True) for k in range(folds)]
    probes = sc.TAIL_PROBES
    cpu: dict[str, list[float]] = {"probes": [], "none": []}
    n_probe = 0
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-tail-") as tmp:
        for r in range(rounds):
            for mode in ("probes", "none") if r % 2 == 0 else ("none", "probes"):
                sc.TAIL_PROBES = probes if mode == "probes" else ()
                store = f"{tmp}/{r}-{mode}"
                model.fit(df, y="y", store=store, warm_policy="always")
                c0 = time.process_time()
                for t in trains:
                    res = model.fit(t, y="y", knots=knots, store=store, warm_policy="always")
                    chk = res.start_check
                    assert res.warm == "cross-fit" and chk is not None and not chk.cold_checked
                cpu[mode].append(time.process_time() - c0)
        sc.TAIL_PROBES = probes
        # how many probe evaluations one pass makes
        orig = sc.left_tail_is_lower

        def counting(pol: Any, nres: Any, probe: Any) -> bool:
            def p(j: int, f: float) -> float:
                nonlocal n_probe
                n_probe += 1
                return float(probe(j, f))

            return orig(pol, nres, p)

        sc.left_tail_is_lower = counting  # type: ignore[assignment]
        try:
            store = f"{tmp}/count"
            model.fit(df, y="y", store=store, warm_policy="always")
            for t in trains:
                model.fit(t, y="y", knots=knots, store=store, warm_policy="always")
        finally:
            sc.left_tail_is_lower = orig
    mp, mn = statistics.median(cpu["probes"]), statistics.median(cpu["none"])
    return (
        f"null smooths, {folds} warm folds (n = {len(trains[0])}): CPU with probes "
        f"{1e3 * mp:.0f} ms, without {1e3 * mn:.0f} ms, ratio {mp / mn:.3f} "
        f"(rounds {[round(x, 3) for x in cpu['probes']]} / {[round(x, 3) for x in cpu['none']]}); "
        f"probe evaluations: {n_probe}"
    )


def catch() -> str:
    import parity

    rd = parity.realdata()
    case = rd.loso_cases()["mtcars_by_cyl"]
    data, model = rd.base_frame(case), rd.model(case)
    knots = model.fit(data, y="mpg").knots
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-tail-") as tmp:
        store = f"{tmp}/s"
        sib = data[data["subject"] != 2]
        model.fit(sib, y="mpg", knots=knots, store=store, warm_policy="always")
        train = data[data["subject"] != 3]
        warm = model.fit(train, y="mpg", knots=knots, store=store, warm_policy="always")
        cold = model.fit(train, y="mpg", knots=knots)
    chk = warm.start_check
    assert chk is not None
    return (
        f"mtcars by cyl, fold 3 from fold 2's optimum: warm run REML {chk.warm_reml:.8f}, "
        f"start {warm.warm}, kept {warm.reml:.8f} ({chk.kept}, reasons {chk.reasons}), "
        f"cold {cold.reml:.8f}, "
        f"mgcv tight {case['folds'][2]['mgcv_tight']['reml'][0]:.8f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds (median)")
    ap.add_argument("--folds", type=int, default=6, help="warm folds per round")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(catch(), flush=True)
    print(cost(args.rounds, args.folds), flush=True)
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
