"""What the warm-start check costs: LOSO folds under ``start_check`` never / auto / always.

For each data set the full-data fit is saved to one in-memory store per policy (read-only
for the folds, so every fold starts from the full-data fit), then every fold is fitted
cold (no store) and warm under each policy, interleaved fold by fold in this process, best
of ``--reps``. Prints per data set: folds, folds the ``auto`` policy checked, folds where
warm and cold disagreed (and where ``never`` returned a worse REML than cold), and the
summed fold wall time of each policy against cold and against ``never``.

Data sets: airquality (R, complete rows, 5 months, Poisson, 3 smooths; from the test
fixture) and the Appendix B simulation (n = 2000, 3 smooths) with 10 and 5 subjects for
Poisson, binomial and Gaussian.

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/bench_startcheck.py [--reps 3] [--quick]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gamstore.fit import GAM, GamFitWarning, s  # noqa: E402
from gamstore.loso import simulate  # noqa: E402
from gamstore.store import open_store  # noqa: E402

POLICIES = ("never", "auto", "always")
FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/robust/airquality_loso.json"


def datasets(quick: bool) -> list[tuple[str, pd.DataFrame, list[str], str, str, str]]:
    case = json.loads(FIXTURE.read_text())
    aq = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in case["data"].items()})
    out = [("airquality (5 months)", aq, ["Temp", "Wind", "Solar.R"], "poisson", "Ozone", "Month")]
    families = ("poisson",) if quick else ("poisson", "binomial", "gaussian")
    for fam in families:
        for subjects in (10, 5):
            df = simulate(fam, n=2000, n_subjects=subjects)
            out.append((f"sim {fam} ({subjects} subj.)", df, ["x0", "x1", "x2"], fam, "y", "subj"))
    return out


def run(
    name: str, df: pd.DataFrame, terms: list[str], fam: str, y: str, subj: str, reps: int
) -> dict[str, Any]:
    models = {p: GAM([s(t) for t in terms], family=fam, start_check=p) for p in POLICIES}
    cold_model = models["never"]
    full = cold_model.fit(df, y=y)
    stores = {}
    for p, m in models.items():
        url = f"memory://bench-startcheck-{uuid.uuid4().hex}"
        m.fit(df, y=y, store=open_store(url))
        stores[p] = open_store(url, read_only=True)
    subjects = sorted(pd.unique(df[subj]))
    times = {k: 0.0 for k in ("cold", *POLICIES)}
    checked = disagree = worse_never = 0
    max_gap = 0.0
    for sj in subjects:
        fold = df[df[subj] != sj].reset_index(drop=True)
        best: dict[str, float] = {k: np.inf for k in times}
        res: dict[str, Any] = {}
        for _ in range(reps):
            t0 = time.perf_counter()
            res["cold"] = cold_model.fit(fold, y=y, knots=full.knots)
            best["cold"] = min(best["cold"], time.perf_counter() - t0)
            for p in POLICIES:
                t0 = time.perf_counter()
                res[p] = models[p].fit(fold, y=y, knots=full.knots, store=stores[p])
                best[p] = min(best[p], time.perf_counter() - t0)
        for k in times:
            times[k] += best[k]
        chk = res["auto"].start_check
        checked += bool(chk.cold_checked)
        disagree += bool(res["always"].start_check.disagree)
        rel = (res["never"].reml - res["cold"].reml) / abs(res["cold"].reml)
        worse_never += rel > 1e-6
        max_gap = max(max_gap, (res["auto"].reml - res["cold"].reml) / abs(res["cold"].reml))
    return {
        "name": name,
        "folds": len(subjects),
        "checked": checked,
        "disagree": disagree,
        "worse_never": worse_never,
        "max_gap": max_gap,
        **{f"t_{k}": v for k, v in times.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="best of this many fits per fold")
    parser.add_argument("--quick", action="store_true", help="airquality and Poisson only")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", GamFitWarning)
    print(
        "| data set | folds | auto: checked | warm/cold disagree | never worse than cold "
        "| max (auto - cold) / cold REML | cold ms | never | auto | always | auto/never |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for spec in datasets(args.quick):
        r = run(*spec, reps=args.reps)
        c = r["t_cold"]
        print(
            f"| {r['name']} | {r['folds']} | {r['checked']} | {r['disagree']} | "
            f"{r['worse_never']} | {r['max_gap']:.1e} | {1e3 * c:.0f} | "
            f"{r['t_never'] / c:.2f}x | {r['t_auto'] / c:.2f}x | {r['t_always'] / c:.2f}x | "
            f"{r['t_auto'] / r['t_never']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
