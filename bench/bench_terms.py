"""Model terms: gamstore.fit against R mgcv on real data, case by case, with timings.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_terms.py [--reps N] [--recorded-mgcv]``

For every case of tests/fixtures/terms/terms.json (R ``datasets``; random effects
``s(g, bs="re")``, factor and numeric ``by``, ``te()``, ``ti()``; the fixture holds the data
and mgcv 1.8-41's answers, written by
``Rscript tests/fixtures/terms/terms_mgcv.R make tests/fixtures/terms``):

* term        - the term the case is about
* ref         - the mgcv answer compared with: ``mgcv`` (default control) or ``tight``
                (``gam.control(newton = list(conv.tol = 1e-10), epsilon = 1e-10)``, used where
                gamstore's REML is below mgcv's default answer: mgcv stopped early)
* ΔREML       - (gamstore - mgcv) / |mgcv| against the default answer; negative = lower
* Δρ, Δfitted, Δedf - against ``ref`` (max |Δlog sp|, max |Δfitted| / max |fitted|, max
                |Δedf| per smooth)
* gamstore ms - wall / process CPU ms of a cold ``GAM.fit``, medians over reps, in this process
* mgcv ms     - wall / process CPU ms per default mgcv fit, timed inside R (repeated for
                >= 0.5 s) in one Rscript run just before the gamstore fits, on the same bytes
                (``--recorded-mgcv``: the wall times the fixture script recorded)
* status      - ok / FAIL (the parity criteria of tests/test_fit_terms.py)
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


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="gamstore fits per case (median)")
    parser.add_argument(
        "--recorded-mgcv", action="store_true", help="use the fixture's mgcv times (no R run)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    sup = _load("gamstore_terms_support", ROOT / "tests" / "fixtures" / "terms" / "support.py")
    tt = _load("gamstore_test_fit_terms", ROOT / "tests" / "test_fit_terms.py")
    cases = sup.cases()
    live: dict[str, Any] = {} if args.recorded_mgcv else sup.run_live(list(cases), timed=True)
    head = (
        "| term | case | n | ref | ΔREML | Δρ | Δfitted | Δedf | gamstore ms (wall/CPU) "
        "| mgcv ms (wall/CPU) | status |"
    )
    print(head)
    print("|" + "---|" * 11)
    bad = 0
    for name, case in cases.items():
        data, gam = sup.frame(case), sup.model(case)
        walls, cpus = [], []
        res = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(max(1, args.reps)):
                t0, c0 = time.perf_counter(), time.process_time()
                res = gam.fit(data, y=case["y"])
                walls.append(1e3 * (time.perf_counter() - t0))
                cpus.append(1e3 * (time.process_time() - c0))
        assert res is not None
        fail = tt.check(case, res, case["mgcv"])
        ref = "mgcv"
        if fail and res.reml < float(case["mgcv"]["reml"][0]):
            fail, ref = tt.check(case, res, case["mgcv_tight"]), "tight"
        d = sup.compare(case, res, case["mgcv" if ref == "mgcv" else "mgcv_tight"])
        d_reml = sup.compare(case, res, case["mgcv"])["reml"]
        if args.recorded_mgcv:
            mg_ms = f"{case['mgcv']['ms']:.1f}"
        else:
            mg = live[name]
            mg_ms = f"{mg['ms']:.1f} / {mg['cpu_ms']:.1f}"
        status = "ok" if not fail else "FAIL " + "; ".join(fail)
        bad += bool(fail)
        term = ", ".join(sorted(tt._kind(case)))
        print(
            f"| {term} | {name} | {case['n']} | {ref} | {d_reml:+.1e} | {d['rho']:.1e} | "
            f"{d['fitted']:.1e} | {d['edf']:.1e} | "
            f"{statistics.median(walls):.1f} / {statistics.median(cpus):.1f} | {mg_ms} | "
            f"{status} |"
        )
    print(f"\n{len(cases) - bad}/{len(cases)} cases within the parity criteria")
    return 1 if bad else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
