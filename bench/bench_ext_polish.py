"""Cost and effect of the secant polish of an extended family's parameter (nb's log theta,
tw's theta) after the Brent profile search (``gamstore.fit.newton._polish_ext``).

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_ext_polish.py [--rounds N]``

For every case of the parity suites ``extended`` (nb) and ``tweedie`` (tw), cold fits with the
polish (B) and without it (A, the profile's Brent answer as before), alternating A/B in this
process for ``--rounds`` rounds; prints per case the median process CPU ms of each, B/A, and
|ext - tight mgcv's| for each (the polish's point: Brent's REML values alone leave the
parameter ~1e-5 off along the profile's flat bottom). The polish runs only for families with
``Family.polish_ext`` (tw): the nb rows are the same code in both arms (a check of the timing
noise).
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="alternating A/B rounds per case")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import parity

    import gamstore.fit.newton as nt

    real = nt._polish_ext

    def off(prob: Any, runs: Any, at: Any, t_best: float, lo: float, hi: float) -> float:
        return t_best

    print("| case | A: Brent only, CPU ms | B: + polish, CPU ms | B/A | A Δext | B Δext |")
    print("|---|---|---|---|---|---|")
    for suite in ("extended", "tweedie"):
        su = parity.suite(suite)
        for name, case in su.cases().items():
            data, gam = su.frame(case), su.model(case)
            cpu: dict[str, list[float]] = {"A": [], "B": []}
            ext: dict[str, float] = {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(max(1, args.rounds)):
                    for arm in ("A", "B"):
                        nt._polish_ext = off if arm == "A" else real  # type: ignore[assignment]
                        c0 = time.process_time()
                        res = gam.fit(data, **su.fit_kwargs(case))
                        cpu[arm].append(1e3 * (time.process_time() - c0))
                        ext[arm] = abs(float(res.ext[0]) - case["mgcv_tight"]["ext"][0])
            nt._polish_ext = real  # type: ignore[assignment]
            a, b = statistics.median(cpu["A"]), statistics.median(cpu["B"])
            print(
                f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f} | {ext['A']:.1e} | {ext['B']:.1e} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
