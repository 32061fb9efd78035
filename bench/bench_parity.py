"""mgcv parity suites: gamstore.fit against R mgcv, case by case, with timings.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_parity.py [--suite S] [--reps N]
[--recorded-mgcv] [--no-big] [--no-loso] [--big-live]``

``--suite``: ``realdata`` (default; the real-data suite and its LOSO table, below) or one of
the suites of tests/parity.py: ``families`` (families and links), ``extended`` (nb() with
theta estimated: a Δθ column, |log theta - mgcv's| against ``ref``), ``tweedie`` (tw() with p
estimated: Δθ of tw's theta, gamstore's p and Δp against ``ref``), ``bases`` (tp, cr, cc,
cp; tp coefficients compared sign-aligned, an unidentified tp smooth by its contribution) or
``terms``
(random effects, ``by``, ``te()``, ``ti()``). Their fixtures are written by
``Rscript tests/fixtures/parity_mgcv.R make <suite> tests/fixtures/<dir>``; their table has
the columns below (``ref`` ``mgcv`` or ``tight``; Δρ, Δfitted, Δedf against ``ref``;
``status`` the criteria of the suite's tests), with the case's family, bases or terms.

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


def _parity_module() -> ModuleType:
    """tests/parity.py (tests/ on sys.path: it reads tests/requires.py when R is required)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("parity", ROOT / "tests" / "parity.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["parity"] = mod
    spec.loader.exec_module(mod)
    return mod


def _support() -> ModuleType:
    """tests/fixtures/realdata.py, the real-data suite."""
    mod: ModuleType = _parity_module().realdata()
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


def suite_table(name: str, reps: int, recorded: bool) -> int:
    """The case table of a suite of tests/parity.py; returns the number of failing cases."""
    su = _parity_module().suite(name)
    cases = su.cases()
    live: dict[str, Any] = {} if recorded else su.run_live(list(cases), timed=True)
    what = {"bases": "bases", "terms": "terms"}.get(name, "family")
    theta_col = {"extended": " Δθ |", "tweedie": " Δθ | p | Δp |"}.get(name, "")
    print(
        f"| case | {what} | n | ref | ΔREML | Δρ |{theta_col} Δfitted | Δedf "
        "| gamstore ms (wall/CPU) | mgcv ms (wall/CPU) | status |"
    )
    print("|" + "---|" * (11 + theta_col.count("|")))
    bad = 0
    for case_name, case in cases.items():
        data, gam = su.frame(case), su.model(case)
        walls, cpus = [], []
        res: Any = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(max(1, reps)):
                t0, c0 = time.perf_counter(), time.process_time()
                res = gam.fit(data, **su.fit_kwargs(case))
                walls.append(1e3 * (time.perf_counter() - t0))
                cpus.append(1e3 * (time.process_time() - c0))
            if name == "terms":
                fail, ref = su.failures(case, res, case["mgcv"], case["mgcv_tight"])
                d = su.compare(case, res, case[ref])
                d_rho, d_fitted, d_edf = d["rho"], d["fitted"], d["edf"]
                detail = ", ".join(sorted(su.kind(case)))
            else:
                cmp = su.against_mgcv(case, data, gam, res, case)
                fail, ref = list(cmp.failures), cmp.reference
                d_rho, d_fitted, d_edf = cmp.d_rho, cmp.d_fitted, cmp.d_edf
                detail = "+".join(case["bs"]) if name == "bases" else case["family"]
        theta = ""
        if theta_col:
            ref_ext = case[ref]["ext"][0]
            d_theta = abs(float(res.ext[0]) - ref_ext)
            theta = f" {d_theta:.1e} |"
            if not d_theta <= 1e-3:  # the criterion of tests/test_fit_extfam.py
                fail.append(f"log theta {res.ext[0]:.6g} vs {ref_ext:.6g}")
            if name == "tweedie":  # p = (b + a e^-theta)/(1 + e^-theta), (a, b) = (1.01, 1.99)
                from gamstore.fit.tweedie import p_of_theta

                d_p = abs(float(res.power) - p_of_theta(ref_ext))
                theta += f" {res.power:.4f} | {d_p:.1e} |"
                if not d_p <= 1e-4:  # the criterion of tests/test_fit_tweedie.py
                    fail.append(f"p {res.power:.6g} vs {p_of_theta(ref_ext):.6g}")
        mg0 = float(case["mgcv"]["reml"][0])
        d_reml = (res.reml - mg0) / abs(mg0)
        if recorded:
            mg_ms = f"{case['mgcv']['ms']:.1f}"
        else:
            mg_ms = f"{live[case_name]['ms']:.1f} / {live[case_name]['cpu_ms']:.1f}"
        status = "ok" if not fail else "FAIL " + "; ".join(fail)
        if name == "tweedie" and fail and d_reml < -1e-6:
            # a lower optimum than mgcv's tw() (p driven to 1.01, tests/test_fit_tweedie.py
            # checks it against mgcv with p fixed there): not a parity failure
            status = f"lower optimum (p {res.power:.4f})"
            fail = []
        bad += bool(fail)
        print(
            f"| {case_name} | {detail} | {case['n']} | {SHORT[ref]} | {d_reml:+.1e} | "
            f"{d_rho:.1e} |{theta} {d_fitted:.1e} | {d_edf:.1e} | "
            f"{statistics.median(walls):.1f} / {statistics.median(cpus):.1f} | {mg_ms} | "
            f"{status} |",
            flush=True,
        )
    print(f"\n{len(cases) - bad}/{len(cases)} cases within the parity criteria")
    return bad


def main(argv: list[str] | None = None) -> int:
    # realdata, then every suite tests/parity.py registers (a new one needs no edit here)
    suites = ("realdata", *_parity_module().SUITES)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--suite",
        choices=(*suites, "all"),
        default="realdata",
        help="which parity suite (default realdata; all: every suite in turn)",
    )
    ap.add_argument("--reps", type=int, default=5, help="gamstore fits per case (median)")
    ap.add_argument("--no-big", action="store_true", help="realdata: skip the 200 000-row case")
    ap.add_argument("--no-loso", action="store_true", help="realdata: skip the LOSO table")
    ap.add_argument(
        "--recorded-mgcv", action="store_true", help="mgcv times from the fixture, not live"
    )
    ap.add_argument(
        "--big-live", action="store_true", help="time mgcv on the 200 000-row case live too"
    )
    args = ap.parse_args(argv)
    bad = 0
    for suite in suites if args.suite == "all" else (args.suite,):
        if args.suite == "all":
            print(f"\n## suite {suite}\n", flush=True)
        if suite != "realdata":
            with np.errstate(all="ignore"):
                bad += suite_table(suite, args.reps, args.recorded_mgcv)
            continue
        rd = _support()
        live = not args.recorded_mgcv and rd.rscript() is not None
        parity_table(rd, args.reps, not args.no_big, live, args.big_live)
        if not args.no_loso:
            print()
            loso_table(rd)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
