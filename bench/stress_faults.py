"""S3 fault matrix: every fault of the proxy on every request kind, transient and persistent.

Run: ``python bench/stress_faults.py`` (moto server + ``tests/faults/proxy.py`` on loopback).
Client settings are the short ones of ``tests/faults/s3.py`` (connect/read timeout 0.3 s,
2 botocore attempts, 1 s3fs try). Prints a markdown table per operation: outcome counts
(right value / miss / wrong value / exception, or committed / not committed / torn) and the
slowest call against the computed bound.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults.proxy import FaultProxy, Rule  # noqa: E402
from faults.s3 import fault_options, open_fault_store, request_bound_seconds  # noqa: E402

import gamstore  # noqa: E402
from gamstore.store.testing import block_record, record_values_ok  # noqa: E402

READ_TARGETS = {
    "list": {"method": "GET", "query_contains": "list-type"},
    "marker GET": {"method": "GET", "path_contains": "zarr.json"},
    "chunk GET": {"method": "GET", "path_contains": "/values/0"},
    "every request": {},
}
SAVE_TARGETS = {
    "payload PUT": {"method": "PUT", "path_contains": "/values/"},
    "marker PUT (If-None-Match)": {"method": "PUT", "header": "If-None-Match"},
    "every request": {},
}
FAULTS = {
    "drop": {"fault": "drop"},
    "drop after forwarding": {"fault": "drop_after"},
    "500 InternalError": {"fault": "status", "status": 500},
    "503 SlowDown": {"fault": "status", "status": 503},
    "truncated body": {"fault": "truncate", "keep": 0.5},
    "delay 0.6 s (> read timeout)": {"fault": "delay", "seconds": 0.6},
    "byte flipped in transit": {"fault": "corrupt"},
}


def main() -> None:
    argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0]).parse_args()
    import botocore.session
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("gamstore").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    ).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/root"
    clean = gamstore.open_store(
        url, storage_options={"endpoint_url": endpoint, "key": "k", "secret": "s"}
    )
    rows = []
    with FaultProxy(endpoint) as proxy:
        opts = fault_options(proxy.endpoint, "k", "s")
        n = 0
        for times, mode in ((1, "transient (1 request)"), (-1, "persistent")):
            for tname, target in READ_TARGETS.items():
                if times == 1 and tname == "every request":
                    continue
                for fname, fault in FAULTS.items():
                    n += 1
                    key = f"r{n}"
                    clean.save("block", key, block_record(key, 1))
                    faulty = open_fault_store(url, opts)
                    proxy.clear()
                    rule = proxy.add(Rule(times=times, **fault, **target))  # type: ignore[arg-type]
                    t0 = time.perf_counter()
                    try:
                        e = faulty.lookup("block", key)
                        out = (
                            "miss"
                            if e is None
                            else ("right" if record_values_ok(e.record, key, 1) else "WRONG")
                        )
                    except Exception as exc:  # noqa: BLE001
                        out = f"EXCEPTION {type(exc).__name__}"
                    took = time.perf_counter() - t0
                    proxy.clear()
                    intact = clean.lookup("block", key) is not None
                    bound = 3 * request_bound_seconds(rule.seconds)
                    rows.append(
                        ("lookup", mode, tname, fname, rule.fired, out, intact, took, bound)
                    )
            for tname, target in SAVE_TARGETS.items():
                if times == 1 and tname == "every request":
                    continue
                for fname, fault in FAULTS.items():
                    if fault["fault"] in ("truncate", "corrupt"):
                        continue  # PUT responses have no body to cut or flip
                    n += 1
                    key = f"s{n}"
                    faulty = open_fault_store(url, opts)
                    proxy.clear()
                    rule = proxy.add(Rule(times=times, **fault, **target))  # type: ignore[arg-type]
                    t0 = time.perf_counter()
                    try:
                        eid = faulty.save("block", key, block_record(key, 2))
                    except Exception as exc:  # noqa: BLE001
                        eid = f"EXCEPTION {type(exc).__name__}"
                    took = time.perf_counter() - t0
                    proxy.clear()
                    got = clean.lookup_latest("block", key)
                    if isinstance(eid, str) and eid.startswith("EXCEPTION"):
                        out = eid
                    elif eid is None:
                        out = (
                            "not committed"
                            if got is None
                            else "whole, unacknowledged (late write landed)"
                        )
                    else:
                        ok = (
                            got is not None
                            and got.entry_id == eid
                            and record_values_ok(got.record, key, 2)
                        )
                        out = "committed" if ok else "ACKED BUT MISSING"
                    bound = 4 * request_bound_seconds(rule.seconds)
                    rows.append(("save", mode, tname, fname, rule.fired, out, True, took, bound))
    report = clean.verify()
    for path in report.corrupt:  # name what went wrong (key, objects present)
        objs = sorted(o.path.rsplit("/", 1)[-1] for o in clean.backend.list(path))
        blob = clean.backend.get(f"{path}/zarr.json") or b""
        key = blob.split(b'"key":"', 1)[-1].split(b'"', 1)[0].decode(errors="replace")
        print(f"corrupt entry: key {key!r}, {len(objs)} objects under {path}", file=sys.stderr)
    gc = clean.gc(grace=0.0)
    server.stop()
    print(
        "| op | fault lifetime | request hit | fault | fired | outcome | entry intact | s | bound s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for op, mode, tname, fname, fired, out, intact, took, bound in rows:
        print(
            f"| {op} | {mode} | {tname} | {fname} | {fired} | {out} | {'yes' if intact else 'NO'} | {took:.2f} | {bound:.1f} |"
        )
    print()
    print(
        f"after the matrix: verify {report.ok}/{report.checked} ok, corrupt {len(report.corrupt)}; "
        f"gc removed {gc.payloads} markerless payloads, {gc.temps} temps"
    )


if __name__ == "__main__":
    main()
