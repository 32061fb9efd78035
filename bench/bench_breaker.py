"""LOSO through an unreachable S3 cache, with and without the warm-start circuit breaker.

Run: ``python bench/bench_breaker.py`` (moto server + ``tests/faults/proxy.py`` on loopback).
The cache is opened while reachable, then every request is dropped (``drop``) or held past
the read timeout (``delay``). Two cases: a read-write cache (a failed save disables the
capability) and a read-only one (only lookups: the breaker is what stops them). Client
settings are the fault tests' short ones (connect/read 0.3 s, 3 botocore tries, 1 s3fs
pass); ``failure_threshold=10**9`` stands for "no breaker". Prints a markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults.proxy import FaultProxy, Rule  # noqa: E402
from faults.s3 import fault_options, open_fault_store  # noqa: E402

import gamstore  # noqa: E402
from gamstore.warmstart.capability import WarmStartStore  # noqa: E402

KEY, SECRET = "gamstore-bench-key", "gamstore-bench-secret"


def _case(
    endpoint: str, bucket: str, data: Any, fault: str, read_only: bool, threshold: int
) -> dict[str, Any]:
    from gamstore.fit import GAM, s
    from gamstore.loso import run_loso

    url = f"s3://{bucket}/{uuid.uuid4().hex[:8]}"
    gamstore.open_store(
        url, storage_options={"endpoint_url": endpoint, "key": KEY, "secret": SECRET}
    )
    with FaultProxy(endpoint) as proxy:
        store = open_fault_store(
            url, fault_options(proxy.endpoint, KEY, SECRET), read_only=read_only
        )
        ws = WarmStartStore(store=store, failure_threshold=threshold)
        proxy.add(Rule(fault, seconds=1.0, times=-1))
        t0 = time.perf_counter()
        ds = run_loso(data, GAM([s("x0"), s("x1")], family="gaussian"), subject="subj", store=ws)
        wall = time.perf_counter() - t0
        st = store.stats()
        return {
            "wall": wall,
            "requests": len(proxy.log),
            "read_errors": st.read_errors,
            "save_errors": st.save_errors,
            "skipped": ws.reads_skipped,
            "ok": bool((ds["status"] == "ok").all()),
        }


def main() -> None:
    argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0]).parse_args()
    import botocore.session
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from gamstore.loso import simulate

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("gamstore").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"gamstore-bench-{uuid.uuid4().hex[:8]}"
    botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    ).create_bucket(Bucket=bucket)
    data = simulate("gaussian", n=600, n_subjects=3, seed=11)
    print(
        "| cache | fault | breaker | wall s | requests sent | read_errors | save_errors | reads skipped | folds ok |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for read_only in (True, False):
            for fault in ("drop", "delay"):
                for threshold in (3, 10**9):
                    r = _case(endpoint, bucket, data, fault, read_only, threshold)
                    print(
                        f"| {'read-only' if read_only else 'read-write'} | {fault} | "
                        f"{'K=3' if threshold == 3 else 'off'} | {r['wall']:.1f} | {r['requests']} | "
                        f"{r['read_errors']} | {r['save_errors']} | {r['skipped']} | {r['ok']} |"
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
