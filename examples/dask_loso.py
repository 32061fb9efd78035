"""A leave-one-subject-out run on a dask cluster.

Starts a LocalCluster with 2 worker processes (or connects to ``--scheduler ADDRESS``), fits
the Appendix B binomial model on all rows, then every fold on the workers, cold and warm.
Each worker opens the store itself from its URL (fsspec filesystems are not fork-safe, so no
live store object is ever shipped), so the store must be reachable from every worker: a
shared directory, or ``s3://...`` with ``--storage-option KEY=VALUE``.

Run: ``python examples/dask_loso.py [--store URL] [--scheduler ADDRESS]``
"""

from __future__ import annotations

import argparse
import tempfile

from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="store URL (default: a temporary directory)")
    ap.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    args = ap.parse_args()
    options = dict(item.split("=", 1) for item in args.storage_option) or None

    from distributed import Client, LocalCluster

    df = simulate("binomial", n=1200, n_subjects=6)
    model = GAM([s("x0"), s("x1"), s("x2")], family="binomial")
    with tempfile.TemporaryDirectory(prefix="gamstore-dask-") as tmp:
        if args.scheduler:
            cluster = None
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        try:
            ds = run_loso(
                df,
                model,
                subject="subj",
                store=args.store or tmp,
                storage_options=options,
                executor=client,
                compare_cold=True,
            )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    warm, cold = ds.sel(start="warm"), ds.sel(start="cold")
    print(f"{ds.sizes['fold']} folds on {len(set(ds.worker.values.ravel()))} workers")
    print(f"status: {sorted(set(ds.status.values.ravel()))}")
    print(
        f"outer iterations cold {int(cold.n_outer.sum())} -> warm {int(warm.n_outer.sum())}; "
        f"fit time cold {cold.wall_time.sum().item():.3f} s -> warm {warm.wall_time.sum().item():.3f} s"
    )
    drel = float((abs(warm.reml - cold.reml) / abs(cold.reml)).max())
    print(f"largest relative REML difference warm vs cold: {drel:.1e}")
    assert (ds.status == "ok").all() and drel <= 1e-6


if __name__ == "__main__":
    main()
