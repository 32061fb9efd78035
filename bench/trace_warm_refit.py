"""Call trace of an exact warm refit (issue 16 item 2): how far a reader walks.

Fits a Gaussian GAM (n = 2000, two smooths) into a local store, refits it once (first-use
imports happen there), then traces the next exact refit with :func:`sys.setprofile`,
counting Python-level calls into gamstore modules outside the numerical fitter core (the
warm-start layer, keys, records, the store). Prints the totals, the warm-start layer's share,
how often the store capability is resolved (``warm_store``), the specs are checked
(``check_specs``; a second call is the checked-list fast path) and the stored state is
converted (``from_summary``: the copy a ``CachedInner`` costs), then the calls per module.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/trace_warm_refit.py [--functions]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from types import FrameType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamstore.fit import GAM, s  # noqa: E402
from gamstore.store import open_store  # noqa: E402

# the numerical fitter: what a cold fit runs as well (not the warm-start path)
FIT_CORE = tuple(
    f"gamstore.fit.{m}"
    for m in (
        "newton pirls reml linalg design basis bases data model families inference "
        "startcheck diagnostics _mgcv davies foldview terms"
    ).split()
)
COUNTED = ("warm_store", "check_specs", "block_key", "from_summary", "lookup_latest", "lookup")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", action="store_true", help="also list every function")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n = 2000
    x0, x1 = rng.uniform(size=n), rng.uniform(size=n)
    data = {"x0": x0, "x1": x1, "y": np.sin(6 * x0) + x1**2 + rng.normal(scale=0.3, size=n)}
    with tempfile.TemporaryDirectory(prefix="gamstore-trace-") as tmp:
        store = open_store(tmp)
        model = GAM([s("x0"), s("x1")])
        model.fit(data, y="y", store=store, warm_policy="always")
        model.fit(data, y="y", store=store, warm_policy="always")  # first-use imports
        calls: collections.Counter[tuple[str, str]] = collections.Counter()

        def prof(frame: FrameType, event: str, arg: Any) -> None:
            if event != "call":
                return
            mod = str(frame.f_globals.get("__name__", ""))
            if mod.startswith("gamstore") and not mod.startswith(FIT_CORE):
                calls[(mod, frame.f_code.co_name)] += 1

        sys.setprofile(prof)
        try:
            res = model.fit(data, y="y", store=store, warm_policy="always")
        finally:
            sys.setprofile(None)
    assert res.warm == "exact", res.warm
    mods = {m for m, _ in calls}
    print(
        f"exact warm refit: {sum(calls.values())} calls through {len(calls)} functions "
        f"in {len(mods)} modules"
    )
    layer = {m for m in mods if m.startswith("gamstore.warmstart") or m == "gamstore.fit.warm"}
    print(
        f"  warm-start layer (warmstart/*, fit.warm): "
        f"{sum(c for (m, _), c in calls.items() if m in layer)} calls, "
        f"{sum(1 for (m, _) in calls if m in layer)} functions, {len(layer)} modules"
    )
    for name in COUNTED:
        n_calls = sum(
            c for (m, f), c in calls.items() if f == name and not m.startswith("gamstore.store")
        )
        print(f"  {name}: {n_calls}")
    by_module: collections.Counter[str] = collections.Counter()
    for (m, _), c in calls.items():
        by_module[m] += c
    for m, c in by_module.most_common():
        print(f"    {c:5d} {m}")
    if args.functions:
        for (m, f), c in sorted(calls.items(), key=lambda t: (t[0][0], -t[1])):
            print(f"      {c:4d} {m}.{f}")


if __name__ == "__main__":
    main()
