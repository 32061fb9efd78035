"""Benchmark the warm-start layer's per-fit and per-evaluation overheads.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_warmstart.py`` (``--quick`` for a smoke run).

A 3-block fit (parametric + two 10-column smooths) on ``n`` rows, side by side with plain
baselines in the same process (median of repeats):

* block key (hashes designs, offsets, penalties, response) vs BLAKE3 over the raw bytes of
  the same arrays (no canonicalisation, no framing);
* ``store_block_warm_start`` (one Zarr entry on a local directory) vs ``np.savez`` of the
  same arrays to one file, and on a memory store vs ``Store.save`` of the prebuilt record
  (the layer's own overhead: checks, record build, capability);
* ``load_block_record`` (warm hit, key known) vs ``np.load`` of that file;
* ``load_block_warm_start`` (key + lookup + compatibility) vs BLAKE3 + ``np.load``;
* ``OuterSession.on_evaluation`` when the checkpoint is written (exact key + mirror, or
  exact key only with ``mirror_checkpoints=False``) and when the rate limit suppresses it;
* ``consume_fit_artifact`` (artifact lookup + per-block projection) on a LOSO fold.

Prints one markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import blake3  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gamstore import warmstart as ws  # noqa: E402
from gamstore.gauge import Gauge  # noqa: E402
from gamstore.records import BlockWarmStartRecord  # noqa: E402
from gamstore.store import open_store  # noqa: E402


class Fam:
    name = "poisson"

    def __init__(self, y: np.ndarray) -> None:
        self.y = y

    def warm_start_fingerprint(self, specs: Any, options: Any) -> str:
        return ws.likelihood_fingerprint(self.name, {"y": self.y})


def median_time(fn: Callable[[], Any], repeats: int, inner: int = 1) -> float:
    """Median seconds per call over ``repeats`` batches of ``inner`` calls."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return statistics.median(out)


def build(n: int, rows: slice = slice(None)) -> tuple[Fam, list[ws.BlockSpec], Gauge]:
    rng = np.random.default_rng(42)
    y = rng.poisson(2.0, n).astype(float)
    x0 = np.column_stack([np.ones(n), rng.normal(size=n)])
    specs = [ws.BlockSpec("(parametric)", x0[rows])]
    zs = [np.eye(2)]
    for j in (1, 2):
        raw = rng.uniform(size=(n, 11))
        raw /= raw.sum(axis=1, keepdims=True)
        c = raw[rows].mean(axis=0)[:, None]
        z = np.linalg.qr(c, mode="complete")[0][:, 1:]
        d = np.diff(np.eye(11), 2, axis=0)
        specs.append(
            ws.BlockSpec(
                f"s(x{j})",
                raw[rows] @ z,
                penalties=[ws.DensePenalty(z.T @ d.T @ d @ z)],
                nullspace_dims=[1],
            )
        )
        zs.append(z)
    return Fam(y[rows]), specs, Gauge.block_diagonal(zs)


def raw_blake3(arrays: list[np.ndarray]) -> str:
    h = blake3.blake3()
    for a in arrays:
        h.update(np.ascontiguousarray(a).view(np.uint8).reshape(-1))
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--rows", type=int, default=None)
    args = ap.parse_args()
    n = args.rows or (2_000 if args.quick else 20_000)
    reps = 5 if args.quick else 21

    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    fam, specs, gauge = build(n)
    opts = ws.FitOptions()
    rng = np.random.default_rng(0)
    warm = ws.BlockWarmStart(
        rho=np.array([0.5, -1.0]),
        block_beta=[rng.normal(size=s.width) for s in specs],
        cached_inner=ws.CachedInner(-1e3, 12.0, 6, True, 40.0, 10.0),
    )
    data_arrays = [a for s in specs for a in (s.design, s.offset)] + [fam.y]
    data_arrays += [p.matrix for s in specs for p in s.penalties]
    rows: list[tuple[str, float, str, float]] = []

    with tempfile.TemporaryDirectory(prefix="gamstore-bench-ws-") as tmp:
        store = open_store(os.path.join(tmp, "store"), checkpoint_interval=3600.0)
        wst = ws.warm_store(store)
        key = ws.block_key(fam, specs, opts)

        t_key = median_time(lambda: ws.block_key(fam, specs, opts), reps)
        t_raw = median_time(lambda: raw_blake3(data_arrays), reps)
        rows.append(("block key (all inputs)", t_key, "BLAKE3 of raw bytes", t_raw))

        npz = os.path.join(tmp, "rec.npz")
        payload = {"rho": warm.rho, **{f"b{i}": b for i, b in enumerate(warm.block_beta)}}
        counter = iter(range(10**9))

        def fresh_key() -> str:  # one entry per key, as in real use (one record per fit)
            return f"cf-{next(counter):016x}"

        t_save = median_time(lambda: ws.store_block_warm_start(wst, fresh_key(), specs, warm), reps)
        t_npz_save = median_time(lambda: np.savez(npz, **payload), reps)
        rows.append(("store_block_warm_start (local)", t_save, "np.savez", t_npz_save))

        # the layer's own overhead: same store (memory), prebuilt record saved directly
        mem = open_store(f"memory://bench-ws-{os.getpid()}")
        mws = ws.WarmStartStore(store=mem)
        names, dims = [s.name for s in specs], [s.width for s in specs]

        def record(k: str) -> BlockWarmStartRecord:
            return BlockWarmStartRecord(
                key=k, n_rows=n, block_names=tuple(names), block_dims=tuple(dims),
                rho=warm.rho, block_beta=tuple(warm.block_beta),
                active_sets=(None,) * len(specs),
            )  # fmt: skip

        t_mem = median_time(
            lambda: ws.store_block_warm_start(mws, fresh_key(), specs, warm), reps, 5
        )
        t_raw_save = median_time(lambda: mem.save("block", (k := fresh_key()), record(k)), reps, 5)
        rows.append(
            ("store_block_warm_start (memory)", t_mem, "Store.save + record build", t_raw_save)
        )
        # hits on a key holding exactly one entry
        assert ws.store_block_warm_start(mws, key, specs, warm)
        t_mload = median_time(lambda: ws.load_block_record(mws, key), reps, 5)
        t_raw_load = median_time(lambda: mem.lookup_latest("block", key), reps, 5)
        rows.append(("load_block_record hit (memory)", t_mload, "Store.lookup_latest", t_raw_load))

        def npz_load() -> None:
            with np.load(npz) as z:
                for k in z.files:
                    z[k]

        assert ws.store_block_warm_start(wst, key, specs, warm)
        t_load = median_time(lambda: ws.load_block_record(wst, key), reps, inner=5)
        t_npz_load = median_time(npz_load, reps, inner=5)
        rows.append(("load_block_record hit (local)", t_load, "np.load", t_npz_load))

        t_full = median_time(lambda: ws.load_block_warm_start(wst, fam, specs, opts, 2), reps)
        t_base = median_time(lambda: (raw_blake3(data_arrays), npz_load()), reps)
        rows.append(("load_block_warm_start (key+hit)", t_full, "BLAKE3 + np.load", t_base))

        sess = ws.OuterSession.open(wst, fam, specs, opts)
        sess.begin(2)
        beta_flat = np.concatenate(warm.block_beta)
        cost = [1e6]

        def improving() -> None:
            cost[0] -= 1.0
            sess.on_evaluation(warm.rho, beta_flat, cost[0])

        t_ckpt = median_time(improving, reps)
        sess1 = ws.OuterSession.open(wst, fam, specs, opts, mirror_checkpoints=False)
        sess1.begin(2)

        def improving_exact_only() -> None:
            cost[0] -= 1.0
            sess1.on_evaluation(warm.rho, beta_flat, cost[0])

        t_ckpt1 = median_time(improving_exact_only, reps)
        t_supp = median_time(lambda: sess.on_evaluation(warm.rho, beta_flat, 2e6), reps, 20)
        rows.append(("on_evaluation, checkpoint written", t_ckpt, "np.savez", t_npz_save))
        rows.append(("on_evaluation, written, final-only mirror", t_ckpt1, "np.savez", t_npz_save))
        rows.append(("on_evaluation, rate-limited", t_supp, "np.savez", t_npz_save))

        p2o = ws.physical_to_outer(specs)
        assert ws.capture_fit_artifact(
            wst, fam, specs, gauge, warm.block_beta, warm.rho, p2o, 123.0, True
        )
        ffam, fspecs, fgauge = build(n, slice(0, n - n // 10))
        t_cons = median_time(
            lambda: ws.consume_fit_artifact(wst, ffam, fspecs, fgauge, p2o, np.zeros(2)), reps
        )
        rows.append(("consume_fit_artifact (LOSO fold)", t_cons, "np.load", t_npz_load))
        store.close()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"### warm-start layer overheads (n = {n} rows, 3 blocks, widths 2/10/10)\n")
    print(
        f"median wall time of {reps} repeats; load average before {load0:.2f}, after {load:.2f}\n"
    )
    print("| operation | gamstore | baseline | baseline time | ratio |")
    print("|---|---:|---|---:|---:|")
    for name, t, base, tb in rows:
        print(f"| {name} | {t * 1e3:.3f} ms | {base} | {tb * 1e3:.3f} ms | {t / tb:.2f}x |")


if __name__ == "__main__":
    main()
