"""Real-data parity suite: gamstore.fit against R mgcv, case by case, with timings.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_parity.py [--reps N] [--no-big] [--no-loso]``

For every case of tests/fixtures/realdata_parity.json (R data sets; the fixture holds the data
and mgcv's answers, written by ``Rscript tests/fixtures/realdata_mgcv.R make tests/fixtures``):

* ref       - the mgcv answer compared with: ``mgcv`` (default control), ``tight`` (mgcv with
              ``gam.control(newton = list(conv.tol = 1e-10), epsilon = 1e-10)``, used where
              gamstore's REML is below mgcv's default answer) or ``multistart`` (mgcv's
              lowest REML over a grid of starts under tight control, where gamstore's REML is
              below the tight answer too)
* ΔREML     - (gamstore - mgcv) / |mgcv|; negative = gamstore's REML is lower
* Δρ        - max |Δ log smoothing parameter| (large values along flat directions only)
* Δfitted   - max |Δfitted| / max |fitted|
* edf       - gamstore's total edf of the smooths
* gamstore ms - wall / process CPU ms of a cold ``GAM.fit``, medians over reps, in this process
* mgcv ms   - wall / process CPU ms per default mgcv fit, timed inside R (repeated for >= 0.5 s):
              by default in one Rscript run just before the gamstore fits, on the same bytes
              (``--recorded-mgcv``: the wall times the fixture script recorded, no CPU time;
              the 200 000-row case uses the recorded time unless ``--big-live``: one mgcv fit
              of it takes a minute or more)
              CPU time is what each side costs when other processes share the cores.
* status    - ok / FAIL (parity criteria of the test suite) / PENDING (known defect, issue 15)

Then, per grouped data set of tests/fixtures/realdata_loso.json: ``run_loso`` (warm) against
cold fits of the same folds, and against mgcv's folds with the same frozen knots. "gamstore
LOSO ms" is the wall time of ``run_loso`` (full-data fit, then every fold warm, in-memory
store); "cold checks" counts the folds whose start check also fitted them cold (the price of
the warm = cold guarantee); "mgcv folds ms" is the sum of mgcv's fold fits as the fixture
script recorded them.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHORT = {"mgcv": "mgcv", "mgcv_tight": "tight", "mgcv_multistart": "multistart"}


def _support() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gamstore_realdata", ROOT / "tests" / "fixtures" / "realdata.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gamstore_realdata"] = mod
    spec.loader.exec_module(mod)
    return mod


def _pending() -> tuple[set[str], set[tuple[str, int]]]:
    """The PENDING_ROBUST lists of the two test modules (read, not imported: no pytest)."""
    import ast

    out: list[Any] = []
    for mod in ("test_realdata_parity.py", "test_realdata_loso.py"):
        tree = ast.parse((ROOT / "tests" / mod).read_text())
        value: Any = {}
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == (
                "PENDING_ROBUST"
            ):
                assert node.value is not None
                value = ast.literal_eval(node.value)
        out.append(set(value))
    return out[0], out[1]


def _num(x: float, width: int) -> str:
    return f"{x:>{width}.1f}" if np.isfinite(x) else f"{'-':>{width}}"


def parity_table(rd: ModuleType, reps: int, big: bool, live: bool, big_live: bool) -> None:
    pending, _ = _pending()
    mgcv_ms = {name: (float(c["mgcv"]["ms"]), np.nan) for name, c in rd.parity_cases().items()}
    if live:
        todo = {
            name: (c, rd.frame(c))
            for name, c in rd.parity_cases().items()
            if c["resample_n"] is None or (big and big_live)
        }
        for name, out in rd.run_live(todo, timed=True).items():
            mgcv_ms[name] = (float(out["ms"]), float(out["cpu_ms"]))
    print(f"mgcv times: {'live, this run' if live else 'recorded by the fixture script'}\n")
    head = (
        f"| {'data set':<18} | {'n':>7} | {'family':<8} | {'ref':<10} | {'ΔREML':>9} | "
        f"{'Δρ':>8} | {'Δfitted':>8} | {'edf':>6} | {'gamstore ms':>15} | {'mgcv ms':>17} | "
        f"{'status':<7} |"
    )
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.strip("|").split("|")) + "|")
    gs_total = mg_total = gs_cpu = mg_cpu_total = 0.0
    for name, case in rd.parity_cases().items():
        if case["resample_n"] is not None and not big:
            continue
        data = rd.frame(case)
        gam = rd.model(case)
        times, cpus = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                res = gam.fit(data, **rd.fit_kwargs(case))
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            cmp = rd.parity(case, data, gam, res)
        ms = statistics.median(times) * 1e3
        cpu = statistics.median(cpus) * 1e3
        mg_ms, mg_cpu = mgcv_ms[name]
        if np.isfinite(mg_cpu):  # sums over the cases timed both ways
            gs_total += ms
            mg_total += mg_ms
            gs_cpu += cpu
            mg_cpu_total += mg_cpu
        edf = sum(v for k, v in res.edf.items() if k != "(parametric)")
        status = "PENDING" if name in pending else ("ok" if cmp.ok else "FAIL")
        print(
            f"| {name:<18} | {len(data):>7} | {case['family']:<8} | "
            f"{SHORT[cmp.reference]:<10} | {cmp.d_reml:>9.1e} | {cmp.d_rho:>8.1e} | "
            f"{cmp.d_fitted:>8.1e} | {edf:>6.2f} | {ms:>7.1f} / {cpu:>5.1f} | "
            f"{mg_ms:>8.1f} / {_num(mg_cpu, 6)} | {status:<7} |",
            flush=True,
        )
        if status != "ok":
            print(f"|   {'; '.join(cmp.failures)[:200]}")
    print(
        f"\nsums over the cases with both times: gamstore {gs_total:.0f} ms wall / "
        f"{gs_cpu:.0f} ms CPU, mgcv {mg_total:.0f} ms wall / {mg_cpu_total:.0f} ms CPU"
    )


def loso_table(rd: ModuleType) -> None:
    from gamstore.loso import run_loso

    _, pending = _pending()
    head = (
        "| data set             | subjects |    n | family   | warm = cold | cold checks "
        "| = mgcv (ref) | max ΔREML vs mgcv | gamstore LOSO ms | mgcv folds ms |"
    )
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.strip("|").split("|")) + "|")
    first = next(iter(rd.loso_cases().values()))
    with warnings.catch_warnings():  # untimed warm-up: imports and first-call costs
        warnings.simplefilter("ignore")
        run_loso(rd.base_frame(first), rd.model(first), subject="subject", y=first["y"])
    for name, case in rd.loso_cases().items():
        data = rd.base_frame(case)
        gam = rd.model(case)
        kw = {"weights": case["weights"], "offset": case["offset"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            ds = run_loso(data, gam, subject="subject", y=case["y"], progress=False, **kw)
            ms = (time.perf_counter() - t0) * 1e3
            full = gam.fit(data, y=case["y"], **kw)
            subjects = sorted({int(v) for v in case["columns"]["subject"]})
            same = match = 0
            refs: dict[str, int] = {}
            worst = 0.0
            for s, rec in zip(subjects, case["folds"], strict=True):
                train = data[data["subject"] != s].reset_index(drop=True)
                cold = gam.fit(train, y=case["y"], knots=full.knots, **kw)
                warm_reml = float(np.ravel(ds.sel(fold=s)["reml"].values)[0])
                same += abs(warm_reml - cold.reml) <= 1e-6 * abs(cold.reml)
                cmp = rd.against_mgcv(case, train, gam, cold, rec, False, full.knots)
                match += cmp.ok or (name, s) in pending
                refs[SHORT[cmp.reference]] = refs.get(SHORT[cmp.reference], 0) + 1
                worst = max(worst, abs(cmp.d_reml))
        k = len(subjects)
        checked = int(np.sum(ds["cold_checked"].values)) if "cold_checked" in ds else 0
        ref = ",".join(f"{v} {r}" for r, v in sorted(refs.items()))
        print(
            f"| {name:<20} | {k:>8} | {len(data):>4} | {case['family']:<8} | "
            f"{same:>5}/{k:<5} | {checked:>11} | {match:>2}/{k:<2} ({ref}) | {worst:>17.1e} | "
            f"{ms:>16.0f} | "
            f"{float(case['folds_ms']):>13.0f} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="gamstore fits per case (median)")
    ap.add_argument("--no-big", action="store_true", help="skip the 200 000-row case")
    ap.add_argument("--no-loso", action="store_true", help="skip the LOSO table")
    ap.add_argument(
        "--recorded-mgcv", action="store_true", help="mgcv times from the fixture, not live"
    )
    ap.add_argument(
        "--big-live", action="store_true", help="time mgcv on the 200 000-row case live too"
    )
    args = ap.parse_args(argv)
    rd = _support()
    live = not args.recorded_mgcv and rd.rscript() is not None
    parity_table(rd, args.reps, not args.no_big, live, args.big_live)
    if not args.no_loso:
        print()
        loso_table(rd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
