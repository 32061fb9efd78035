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

A second table, "warm-path overhead per fit", measures what a warm-started fit of one
leave-one-subject-out fold pays on top of a cold fit of the same fold, on the Appendix B
simulation (``n = 2000``, 10 subjects, fold = 1800 rows, 3 smooths): ``WarmContext``
construction, ``find_start`` (block key, three lookups, cross-fit transfer) and the
post-fit ``_save`` against a read-only local store holding the full-data fit (the fold
warm-starts from the cross-fit artifact), and ``_save`` on a writable local directory store
(block record only, as for every cross-fit fold), each in ms and as a ratio to the cold fit
(``GAM.fit`` without a store). ``--family`` picks the families (default gaussian and
poisson).

Prints two markdown tables.
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


def best_time(fn: Callable[[], Any], rounds: int, inner: int) -> float:
    """Best (minimum) mean seconds per call over ``rounds`` batches of ``inner`` calls
    (the fixed cost of a few-hundred-microsecond path, with the noise of a shared
    machine filtered out)."""
    for _ in range(max(3, inner // 4)):  # warm caches and memos
        fn()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t0) / inner)
    return min(out)


def fold_overhead(family: str, quick: bool) -> list[tuple[str, float]]:
    """Warm-path fixed costs of one LOSO fold vs a cold fit of the same fold (seconds)."""
    import shutil

    from gamstore.fit import GAM, s
    from gamstore.fit.warm import WarmContext, _save
    from gamstore.loso import simulate

    rounds, inner = (3, 20) if quick else (9, 200)
    df = simulate(family)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family, checkpoint_interval=1e9)
    out: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-fold-") as tmp:
        root = os.path.join(tmp, "full")
        full = model.fit(df, y="y", store=open_store(root))
        ro = open_store(root, read_only=True)
        fold = df[df["subj"] != 3].reset_index(drop=True)
        prob, _ = model.prepare(fold, "y", knots=full.knots)
        ctx = WarmContext(prob, ro, model.control)
        start = ctx.find_start()
        assert start.level == "cross-fit", start.level
        nres = model.run(prob, start.rho, start.beta)

        cold = best_time(
            lambda: model.fit(fold, y="y", knots=full.knots), rounds, max(3, inner // 20)
        )
        warm = best_time(
            lambda: model.fit(fold, y="y", knots=full.knots, store=ro), rounds, max(3, inner // 20)
        )
        t_ctx = best_time(lambda: WarmContext(prob, ro, model.control), rounds, inner)
        t_both = best_time(lambda: WarmContext(prob, ro, model.control).find_start(), rounds, inner)
        t_ro = best_time(lambda: _save(ctx, start, nres), rounds, inner)

        # the writing path: a fresh writable copy of the store per save (one block record
        # per fold, as in a real run; no entries pile up under one key)
        copies = iter(range(10**9))

        def fresh_ctx() -> WarmContext:
            dst = os.path.join(tmp, f"w{next(copies)}")
            shutil.copytree(root, dst)
            c = WarmContext(prob, open_store(dst), model.control)
            c.key = ctx.key
            return c

        saves = []
        for _ in range(rounds * 3):
            c = fresh_ctx()
            t0 = time.perf_counter()
            _save(c, start, nres)
            saves.append(time.perf_counter() - t0)
        out += [
            ("cold fit (GAM.fit, no store)", cold),
            ("warm fit (GAM.fit, read-only store)", warm),
            ("WarmContext.__init__", t_ctx),
            ("WarmContext.find_start", t_both - t_ctx),
            ("_save, read-only store", t_ro),
            ("ctx + find_start + read-only _save", t_both + t_ro),
            ("_save, writable local directory (block record)", min(saves)),
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument(
        "--family",
        action="append",
        choices=["gaussian", "poisson", "binomial"],
        help="families of the per-fit overhead table (repeatable; default gaussian, poisson)",
    )
    ap.add_argument(
        "--fit-overhead-only",
        action="store_true",
        help="print only the warm-path overhead per fit table",
    )
    args = ap.parse_args()
    if args.fit_overhead_only:
        print_fit_overhead(args.family or ["gaussian", "poisson"], args.quick)
        return
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

    print()
    print_fit_overhead(args.family or ["gaussian", "poisson"], args.quick)


def print_fit_overhead(families: list[str], quick: bool) -> None:
    """The "warm-path overhead per fit" table."""
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tables = {fam: fold_overhead(fam, quick) for fam in families}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("### warm-path overhead per fit (LOSO fold of the Appendix B simulation)\n")
    print(
        "fold = 1800 of 2000 rows, 3 smooths, knots frozen at the full-data fit; store = local "
        "directory holding the full-data fit (the fold starts from its cross-fit artifact); "
        f"best of batches; load average before {load0:.2f}, after {load:.2f}\n"
    )
    print("| family | step | time | ratio to the cold fit |")
    print("|---|---|---:|---:|")
    for fam, fold_rows in tables.items():
        cold = fold_rows[0][1]
        for name, t in fold_rows:
            print(f"| {fam} | {name} | {t * 1e3:.3f} ms | {t / cold:.3f} |")


if __name__ == "__main__":
    main()
