"""Warm starts from an S3 store (s3fs).

Fits the Appendix B Poisson model twice against ``s3://<bucket>/gamstore``: the first fit
starts cold and saves its state, the second finds it and converges at once. Prints the S3
requests the store made.

Without ``--endpoint`` the script starts its own moto S3 server on 127.0.0.1 (dummy
credentials, nothing leaves the machine). Against real S3, pass ``--endpoint`` (or leave the
endpoint to your AWS configuration with ``--endpoint aws``) and a bucket you own; credentials
come from the usual AWS environment/configuration, never from this script.

Run: ``python examples/s3_store.py [--endpoint URL|aws] [--bucket NAME]``
"""

from __future__ import annotations

import argparse
from typing import Any

import gamstore
from gamstore.fit import GAM, s
from gamstore.loso import simulate


def start_moto() -> tuple[Any, str, dict[str, Any]]:
    """A loopback moto server with a fresh bucket; returns (server, bucket, storage_options)."""
    import botocore.session
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {"endpoint_url": endpoint, "key": "example-key", "secret": "example-secret"}
    client = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=options["key"],
        aws_secret_access_key=options["secret"],
    )
    bucket = "gamstore-example"
    client.create_bucket(Bucket=bucket)
    return server, bucket, options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default=None, help="S3 endpoint URL, or 'aws' (default: moto)")
    ap.add_argument("--bucket", default=None, help="bucket (required with --endpoint)")
    args = ap.parse_args()
    server = None
    if args.endpoint is None:
        server, bucket, options = start_moto()
    else:
        if not args.bucket:
            ap.error("--bucket is required with --endpoint")
        bucket = args.bucket
        options = {} if args.endpoint == "aws" else {"endpoint_url": args.endpoint}
    try:
        store = gamstore.open_store(f"s3://{bucket}/gamstore", storage_options=options)
        df = simulate("poisson")
        model = GAM([s("x0"), s("x1"), s("x2")], family="poisson")
        first = model.fit(df, y="y", store=store)
        second = model.fit(df, y="y", store=store)
        print(f"store: {store.url}")
        for label, res in (("first", first), ("second", second)):
            print(
                f"{label:>6} fit: start={res.warm:<9} outer={res.n_outer} "
                f"PIRLS iters={res.n_pirls_iters} REML={res.reml:.6f} "
                f"time={1e3 * res.wall_time:.1f} ms"
            )
        print("entries:", sorted({info.keyspace for info in store.entries()}))
        stats = store.stats().as_dict()
        print("requests:", stats.get("requests", stats))
        assert first.warm == "cold" and second.warm == "exact"
        assert abs(second.reml - first.reml) <= 1e-6 * abs(first.reml)
        assert second.n_outer <= first.n_outer
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
