"""Families and links: gamstore.fit against R mgcv on real data, case by case, with timings.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_families.py [--reps N] [--recorded-mgcv]
[--extended]``

``--extended``: the extended-family cases of tests/fixtures/families/extended.json instead
(nb() with theta estimated; written by ``families_mgcv.R make-ext``), with a Δθ column
(|log theta - mgcv's|, against ``ref``).

For every case of tests/fixtures/families/families.json (R ``datasets``; the fixture holds the
data and mgcv 1.8-41's answers, written by
``Rscript tests/fixtures/families/families_mgcv.R make tests/fixtures/families``):

* ref         - the mgcv answer compared with: ``mgcv`` (default control) or ``tight``
                (``gam.control(newton = list(conv.tol = 1e-10), epsilon = 1e-10)``, used where
                gamstore's REML is below mgcv's default answer: mgcv stopped early along a flat
                direction)
* ΔREML       - (gamstore - mgcv) / |mgcv| against the default answer; negative = lower
* Δρ, Δfitted, Δedf - against ``ref`` (Δρ large only along flat directions, which the parity
                criteria check by the REML change)
* gamstore ms - wall / process CPU ms of a cold ``GAM.fit``, medians over reps, in this process
* mgcv ms     - wall / process CPU ms per default mgcv fit, timed inside R (repeated for
                >= 0.5 s) in one Rscript run just before the gamstore fits, on the same bytes
                (``--recorded-mgcv``: the wall times the fixture script recorded)
* status      - ok / FAIL (the parity criteria of tests/test_fit_families.py)
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
SHORT = {"mgcv": "mgcv", "mgcv_tight": "tight"}


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
    parser.add_argument(
        "--extended", action="store_true", help="the extended-family cases (nb, theta estimated)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rd = _load("gamstore_realdata", ROOT / "tests" / "fixtures" / "realdata.py")
    fs = _load("gamstore_families", ROOT / "tests" / "fixtures" / "families" / "support.py")
    cases = fs.extended_cases() if args.extended else fs.cases()
    live: dict[str, Any] = (
        {} if args.recorded_mgcv else fs.run_live(list(cases), timed=True, table=cases)
    )
    theta_col = " Δθ |" if args.extended else ""
    head = (
        "| case | family | n | ref | ΔREML | Δρ |" + theta_col + " Δfitted | Δedf "
        "| gamstore ms (wall/CPU) | mgcv ms (wall/CPU) | status |"
    )
    print(head)
    print("|" + "---|" * (12 if args.extended else 11))
    bad = 0
    for name, case in cases.items():
        data, gam = fs.frame(case), fs.model(case)
        walls, cpus = [], []
        res = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(max(1, args.reps)):
                t0, c0 = time.perf_counter(), time.process_time()
                res = gam.fit(data, y=case["y"], weights=case["weights"])
                walls.append(1e3 * (time.perf_counter() - t0))
                cpus.append(1e3 * (time.process_time() - c0))
            assert res is not None
            recorded = case
            cmp = rd.against_mgcv(fs.suite_case(case), data, gam, res, recorded)
        theta = ""
        if args.extended:
            ref_ext = recorded[cmp.reference]["ext"][0]
            d_theta = abs(float(res.ext[0]) - ref_ext)
            theta = f" {d_theta:.1e} |"
            if not d_theta <= 1e-3:  # the criterion of tests/test_fit_extfam.py
                cmp.ok = False
                cmp.failures.append(f"log theta {res.ext[0]:.6g} vs {ref_ext:.6g}")
        d_reml = (res.reml - case["mgcv"]["reml"][0]) / abs(case["mgcv"]["reml"][0])
        if args.recorded_mgcv:
            mg_ms = f"{case['mgcv']['ms']:.1f}"
        else:
            mg = live[name]
            mg_ms = f"{mg['ms']:.1f} / {mg['cpu_ms']:.1f}"
        status = "ok" if cmp.ok else "FAIL " + "; ".join(cmp.failures)
        bad += not cmp.ok
        print(
            f"| {name} | {case['family']} | {case['n']} | {SHORT[cmp.reference]} | "
            f"{d_reml:+.1e} | {cmp.d_rho:.1e} |{theta} {cmp.d_fitted:.1e} | {cmp.d_edf:.1e} | "
            f"{statistics.median(walls):.1f} / {statistics.median(cpus):.1f} | {mg_ms} | "
            f"{status} |"
        )
    print(f"\n{len(cases) - bad}/{len(cases)} cases within the parity criteria")
    return 1 if bad else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
