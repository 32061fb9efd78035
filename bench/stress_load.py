"""Load under eviction: N processes x M mixed operations on one store (local and S3/moto).

Run: ``OPENBLAS_NUM_THREADS=1 python bench/stress_load.py`` (full: 8 x 2 000 local, 4 x 500
S3) or ``--quick`` (4 x 200 local, 2 x 100 S3). Prints a markdown table: operations per
second, wrong values, exceptions, committed bytes before and after a final sweep against
the budget, and ``verify`` results. The workload is ``tests/faults/load.py`` (shared with
``tests/test_reliability_load.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults.load import run_load, store_bytes  # noqa: E402

import gamstore  # noqa: E402

BUDGET = 256 * 1024


def _moto() -> tuple[Any, str]:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _bucket(endpoint: str) -> str:
    import botocore.session

    name = f"stress-{uuid.uuid4().hex[:10]}"
    client = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench-key",
        aws_secret_access_key="bench-secret",
    )
    client.create_bucket(Bucket=name)
    return name


def one(label: str, url: str, options: dict[str, Any] | None, procs: int, ops: int) -> str:
    out = run_load(url, options, procs, ops, budget_bytes=BUDGET)
    before, _all, n_before = store_bytes(url, options)
    store = gamstore.open_store(url, storage_options=options, budget_bytes=BUDGET)
    report = store.verify()
    store.evict()
    after, total, n_after = store_bytes(url, options)
    errs = "; ".join(e.splitlines()[0] for e in out["errors"][:2]) or "-"
    return (
        f"| {label} | {procs} x {ops} | {out['ops']} | {out['ops_per_s']:.0f} | "
        f"{out['ops'] / out['max_worker_seconds']:.0f} | "
        f"{out['hits']}/{out['misses']} | {out['saves']} | {out['wrong']} | {out['exceptions']} | "
        f"{before / 1024:.0f} KiB ({n_before}) | {after / 1024:.0f} KiB ({n_after}) | "
        f"{BUDGET // 1024} KiB | {report.ok}/{report.checked}, corrupt {len(report.corrupt)} | "
        f"{out['wall']:.1f} | {errs} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 x 200 local, 2 x 100 S3")
    ap.add_argument("--no-s3", action="store_true", help="skip the moto S3 run")
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    local = (4, 200) if args.quick else (8, 2000)
    s3 = (2, 100) if args.quick else (4, 500)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(one("local", os.path.join(tmp, "store"), None, *local))
    if not args.no_s3:
        server, endpoint = _moto()
        try:
            opts = {"endpoint_url": endpoint, "key": "bench-key", "secret": "bench-secret"}
            rows.append(one("s3 (moto)", f"s3://{_bucket(endpoint)}/root", opts, *s3))
        finally:
            server.stop()
    print(
        "| store | procs x ops | ops | ops/s (wall, incl. spawn) | ops/s (in workers) | hits/misses | saves | wrong | exceptions | "
        "committed before final sweep (entries) | after (entries) | budget | verify ok/checked | "
        "wall s | first errors |"
    )
    print("|---" * 15 + "|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
