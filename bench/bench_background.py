"""Deferred saves against synchronous saves, side by side in one process (issue 17).

``run_loso`` (serial) hands the saves after each fit to a background writer
(:mod:`gamstore.warmstart.background`). This measures what that changes, per workload, in
alternating rounds (median of ``--repeats``): **cold** (no store), then for each policy
(``adaptive``: the cost model cleared first, as a fresh process; ``always``: every lookup and
save) the same run with **deferred** saves (the default) and with **sync** saves (the
deferral switched off, everything else the same). A fresh store per run. Wall and CPU
(``time.process_time``; with ``--s3`` the moto server runs in this process, so its CPU is
counted too). The answers of every warm run are checked against cold (largest relative
ΔREML).

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_background.py [--s3] [--repeats 5]
[--only NAME ...]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_policy import demo_cases, max_rel_dreml, realdata_cases, timed  # noqa: E402

from gamstore.fit import GAM, s  # noqa: E402
from gamstore.loso import run_loso, simulate  # noqa: E402
from gamstore.warmstart import background  # noqa: E402
from gamstore.warmstart import policy as pol  # noqa: E402

MODES = ("cold", "adaptive deferred", "adaptive sync", "always deferred", "always sync")


def run(mode: str, data: Any, model: Any, kw: dict[str, Any], store: str, opts: Any) -> Any:
    if mode == "cold":
        return run_loso(data, model, warm=False, progress=False, **kw)
    policy, saves = mode.split()
    pol.COSTS.clear()  # a fresh process: no history
    old = pol.set_default_policy(policy)
    real = background.deferred_saves
    if saves == "sync":
        background.deferred_saves = lambda enabled=True: real(False)  # type: ignore[assignment]
    try:
        return run_loso(data, model, store=store, storage_options=opts, progress=False, **kw)
    finally:
        background.deferred_saves = real  # type: ignore[assignment]
        pol.set_default_policy(old)


def bench(
    name: str,
    data: Any,
    model: Any,
    kw: dict[str, Any],
    new_store: Callable[[], str],
    repeats: int,
    opts: Any = None,
) -> str:
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    last: dict[str, Any] = {}
    for r in range(repeats):
        order = MODES if r % 2 == 0 else MODES[:1] + MODES[:0:-1]  # alternate the warm order
        for mode in order:
            dt, dc, ds = timed(lambda m=mode: run(m, data, model, kw, new_store(), opts))
            wall[mode].append(dt)
            cpu[mode].append(dc)
            last[mode] = ds
    w = {m: statistics.median(v) for m, v in wall.items()}
    c = {m: statistics.median(v) for m, v in cpu.items()}
    drel = max(max_rel_dreml(last[m], last["cold"]) for m in MODES[1:])
    cells = [f"{1e3 * w['cold']:.0f}"]
    for m in MODES[1:]:
        cells.append(f"{w[m] / w['cold']:.2f} / {c[m] / c['cold']:.2f}")
    return (
        f"| {name} | {int(last['cold'].sizes['fold'])} | " + " | ".join(cells) + f" | {drel:.1e} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realdata", action="store_true", help="the real-data LOSO sets")
    ap.add_argument("--demo", action="store_true", help="the gamstore demo simulations")
    ap.add_argument("--s3", action="store_true", help="examples/dask_loso.py's model on moto S3")
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds (median)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these workload names")
    args = ap.parse_args()
    if not (args.realdata or args.demo or args.s3):
        args.demo = True
    warnings.simplefilter("ignore")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        "| workload | folds | cold ms | adaptive deferred | adaptive sync | always deferred "
        "| always sync | max rel ΔREML |\n|---|---|---|---|---|---|---|---|"
    )
    cases = []
    if args.realdata:
        cases += list(realdata_cases())
    if args.demo:
        cases += list(demo_cases())
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-bg-") as tmp:

        def local() -> str:
            return str(Path(tmp) / uuid.uuid4().hex)

        for name, data, model, kw in cases:
            if args.only and name not in args.only:
                continue
            print(bench(name, data, model, kw, local, args.repeats), flush=True)
    if args.s3:
        import logging

        import boto3
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            opts = {
                "key": "bench-key", "secret": "bench-secret",
                "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }  # fmt: skip
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1",
                aws_access_key_id="bench-key", aws_secret_access_key="bench-secret",
            ).create_bucket(Bucket="bench-background")  # fmt: skip

            def s3() -> str:
                return f"s3://bench-background/{uuid.uuid4().hex}"

            df = simulate("binomial", n=1200, n_subjects=6)
            model = GAM([s("x0"), s("x1"), s("x2")], family="binomial")
            name = "examples/dask_loso.py model, S3 (moto)"
            print(bench(name, df, model, {"subject": "subj"}, s3, args.repeats, opts), flush=True)
        finally:
            server.stop()
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
