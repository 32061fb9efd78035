"""Does a warm start ever cost? LOSO warm against cold, as a user runs it (issue 17 item 4).

For each workload, in one process and alternating rounds (median of ``--repeats``):

* **cold** - ``run_loso(..., warm=False)``: no store at all;
* **adaptive** - ``run_loso(..., store=<fresh store>)`` under the adaptive warm-start policy
  with the cost model cleared first (a fresh process: the full-data fit has no history, so it
  looks up and saves, and measures what the fold decisions then use);
* **always** - the same with ``policy="always"`` (every lookup and save: the behaviour before
  the policy).

Wall and CPU time of the whole call (full-data fit, folds, predictions, saves). Workloads: the
real-data LOSO sets of ``tests/test_realdata_loso.py`` (``--realdata``), the ``gamstore demo``
simulations (Appendix B, n = 2000, 10 subjects: gaussian; and poisson n = 1000, 5 subjects:
``--demo``), and examples/dask_loso.py's binomial model on S3 (moto on loopback, ``--s3``:
serial executor, the store on S3). Prints one markdown table with warm/cold ratios; the
answers of adaptive and always are checked equal to cold (largest relative ΔREML).

``--s3-latency-ms 20`` puts a delaying proxy (tests/faults/proxy.py) in front of moto: every
request then takes 20 ms more, the round trip of a remote store.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_policy.py --realdata --demo [--s3]
[--s3-latency-ms 20]``
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gamstore.fit import GAM, s  # noqa: E402
from gamstore.loso import run_loso, simulate  # noqa: E402
from gamstore.warmstart import policy as pol  # noqa: E402


def realdata_cases() -> Iterator[tuple[str, Any, Any, dict[str, Any]]]:
    """(name, data, model, run_loso keywords) of every real-data LOSO set."""
    path = ROOT / "tests" / "fixtures" / "realdata.py"
    spec = importlib.util.spec_from_file_location("gamstore_realdata", path)
    assert spec is not None and spec.loader is not None
    rd = importlib.util.module_from_spec(spec)
    sys.modules["gamstore_realdata"] = rd
    spec.loader.exec_module(rd)
    for name, case in rd.loso_cases().items():
        kw = {"subject": "subject", "y": case["y"]}
        kw.update({k: case[k] for k in ("weights", "offset") if case.get(k)})
        yield name, rd.base_frame(case), rd.model(case), kw


def demo_cases() -> Iterator[tuple[str, Any, Any, dict[str, Any]]]:
    """``make demo`` (gaussian, n = 2000, 10 subjects) and the poisson demo of the issue."""
    terms = [s("x0"), s("x1"), s("x2")]
    yield (
        "demo gaussian (make demo)",
        simulate("gaussian", n=2000, n_subjects=10, seed=1),
        GAM(terms),
        {"subject": "subj"},
    )
    yield (
        "demo poisson n=1000, 5 subjects",
        simulate("poisson", n=1000, n_subjects=5, seed=1),
        GAM(terms, family="poisson"),
        {"subject": "subj"},
    )


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``fn()`` (serial executor: all the work is this process's;
    CPU time is the steadier number on a loaded machine), and its result."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def max_rel_dreml(a: Any, b: Any) -> float:
    ra, rb = np.asarray(a["reml"].values, float), np.asarray(b["reml"].values, float)
    return float(np.nanmax(np.abs(ra - rb) / np.maximum(np.abs(rb), 1.0)))


def bench(
    name: str,
    data: Any,
    model: Any,
    kw: dict[str, Any],
    new_store: Callable[[], Any],
    repeats: int,
    storage_options: dict[str, Any] | None = None,
    modes: tuple[str, ...] = ("cold", "adaptive", "always"),
) -> str:
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for mode in modes:
            if mode == "cold":
                dt, dc, ds = timed(lambda: run_loso(data, model, warm=False, progress=False, **kw))
            else:
                pol.COSTS.clear()  # a fresh process: no history
                old = pol.set_default_policy(mode)
                store = new_store()
                try:
                    dt, dc, ds = timed(
                        lambda st=store: run_loso(
                            data,
                            model,
                            store=st,
                            storage_options=storage_options,
                            progress=False,
                            **kw,
                        )  # fmt: skip
                    )
                finally:
                    pol.set_default_policy(old)
            times[mode].append(dt)
            cpu[mode].append(dc)
            last[mode] = ds
    nan = float("nan")
    med = {k: statistics.median(v) for k, v in times.items()}
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    for k in ("adaptive", "always"):
        med.setdefault(k, nan)
        mc.setdefault(k, nan)
    ad = last["adaptive"]
    folds = int(ad.sizes["fold"])
    drem = max(max_rel_dreml(last[m], last["cold"]) for m in modes if m != "cold")
    return (
        f"| {name} | {folds} | {1e3 * med['cold']:.0f} | {1e3 * med['adaptive']:.0f} "
        f"| {med['adaptive'] / med['cold']:.2f} | {1e3 * med['always']:.0f} "
        f"| {med['always'] / med['cold']:.2f} | {mc['adaptive'] / mc['cold']:.2f} "
        f"| {mc['always'] / mc['cold']:.2f} | {ad.attrs.get('warm_decisions', '')} "
        f"| {drem:.1e} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realdata", action="store_true", help="the real-data LOSO sets")
    ap.add_argument("--demo", action="store_true", help="the gamstore demo simulations")
    ap.add_argument("--s3", action="store_true", help="examples/dask_loso.py's model on moto S3")
    ap.add_argument(
        "--s3-latency-ms",
        type=float,
        default=0.0,
        help="with --s3: delay every request by this much (a delaying proxy in front of moto: "
        "the round trip of a remote store; moto on loopback alone answers in a few ms)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds (median)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these workload names")
    ap.add_argument(
        "--no-always",
        action="store_true",
        help="time cold and adaptive only (the always column is then nan)",
    )
    args = ap.parse_args()
    modes = ("cold", "adaptive") if args.no_always else ("cold", "adaptive", "always")
    if not (args.realdata or args.demo or args.s3):
        args.realdata = args.demo = True
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        "| workload | folds | cold ms | adaptive ms | adaptive/cold | always ms | always/cold "
        "| CPU adaptive/cold | CPU always/cold | adaptive fold decisions | max rel ΔREML |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    warnings.simplefilter("ignore")
    cases: list[tuple[str, Any, Any, dict[str, Any]]] = []
    if args.realdata:
        cases += list(realdata_cases())
    if args.demo:
        cases += list(demo_cases())
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-policy-") as tmp:

        def local() -> str:
            return str(Path(tmp) / uuid.uuid4().hex)

        for name, data, model, kw in cases:
            if args.only and name not in args.only:
                continue
            print(bench(name, data, model, kw, local, args.repeats, modes=modes), flush=True)
    if args.s3:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        proxy = None
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            if args.s3_latency_ms > 0:
                sys.path.insert(0, str(ROOT / "tests"))
                from faults.proxy import FaultProxy, Rule

                proxy = FaultProxy(endpoint).start()
                proxy.add(Rule("delay", seconds=args.s3_latency_ms / 1e3, times=-1))
                endpoint = proxy.endpoint
            opts = {
                "key": "bench-key", "secret": "bench-secret",
                "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }  # fmt: skip
            import logging

            import boto3

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
            boto3.client(
                "s3", endpoint_url=endpoint, region_name="us-east-1",
                aws_access_key_id="bench-key", aws_secret_access_key="bench-secret",
            ).create_bucket(Bucket="bench-policy")  # fmt: skip

            def s3() -> str:
                return f"s3://bench-policy/{uuid.uuid4().hex}"

            df = simulate("binomial", n=1200, n_subjects=6)
            model = GAM([s("x0"), s("x1"), s("x2")], family="binomial")
            name = "examples/dask_loso.py model, S3 (moto)"
            if proxy is not None:
                name = f"examples/dask_loso.py model, S3 (moto, +{args.s3_latency_ms:g} ms/request)"
            print(
                bench(name, df, model, {"subject": "subj"}, s3, args.repeats, opts, modes),
                flush=True,
            )
        finally:
            if proxy is not None:
                proxy.stop()
            server.stop()
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
