"""Reference fitter: cold fit vs each warm-start level, and R mgcv on the same data.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/bench_fit.py [--reps N] [--no-mgcv] [--no-large]``

Per family on the Appendix B simulation (n = 2000, 3 smooths, k = 10):

* cold        - ``GAM.fit`` from mgcv's initial.sp, no store
* exact       - refit of the same data with its block record in a local store
* session     - refit with only the outer session (block record deleted before each rep)
* cross-fit   - leave-one-subject-out fold (knots frozen) started from the full-data
                artifact, against the cold fit of the same fold (means over the 10 folds)
* mgcv        - ``gam(y ~ s(x0,bs="ps") + ..., method="REML")`` timed inside R over a loop

Wall times are medians over reps, in the same process; ratios are against the cold fit of
the same data. Also a single large fit (n = 200 000, 4 smooths) with its peak memory.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import gamstore as gs  # noqa: E402
from gamstore.fit import GAM, FitResult, s  # noqa: E402
from gamstore.fit._mgcv import mgcv_available, run_mgcv  # noqa: E402
from gamstore.fit.simulate import FAMILIES, simulate  # noqa: E402


@dataclass(frozen=True)
class Timing:
    """Medians over reps of wall and process CPU seconds (CPU time is what the fitter
    itself costs when other processes share the cores)."""

    wall: float
    cpu: float

    def cell(self) -> str:
        return f"{self.wall * 1e3:.2f} / {self.cpu * 1e3:.2f}"

    def ratio(self, base: Timing) -> str:
        return f"{self.wall / base.wall:.2f} / {self.cpu / base.cpu:.2f}"


def timed(
    fn: Callable[[], FitResult], reps: int, before: Callable[[], None] | None = None
) -> tuple[Timing, FitResult]:
    walls, cpus = [], []
    res = None
    for _ in range(reps):
        if before is not None:
            before()
        c0, t0 = time.process_time(), time.perf_counter()
        res = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    assert res is not None
    return Timing(statistics.median(walls), statistics.median(cpus)), res


def delete_keyspace(store: Any, keyspace: str) -> None:
    for info in list(store.entries(keyspace)):
        store.delete_entry(info)


def check(warm: FitResult, cold: FitResult) -> float:
    """|dREML| relative; raises if the warm fit left the cold optimum."""
    d = abs(warm.reml - cold.reml) / abs(cold.reml)
    fit = np.max(np.abs(warm.fitted - cold.fitted)) / np.max(np.abs(cold.fitted))
    if d > 1e-6 or fit > 1e-5:
        raise AssertionError(f"warm optimum differs: dREML {d:.2e}, fitted {fit:.2e}")
    return d


STORE_KIND = "file"
_n_mem = 0


def open_bench_store(tmp: str) -> Any:
    """A local directory store, or a fresh in-memory store with ``--store memory``."""
    global _n_mem
    if STORE_KIND == "memory":
        _n_mem += 1
        return gs.open_store(f"memory://bench-fit-{_n_mem}")
    return gs.open_store(os.path.join(tmp, "st"))


def bench_family(family: str, reps: int, with_mgcv: bool) -> list[str]:
    df = simulate(family)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family)
    model.fit(df, y="y")  # warm-up (imports, caches)
    t_cold, cold = timed(lambda: model.fit(df, y="y"), reps)
    rows = []

    def row(
        level: str, r: FitResult, t: Timing, ratio_to: Timing, drem: float, note: str = ""
    ) -> str:
        return (
            f"| {family} | {level} | {r.n_outer} | {r.n_pirls_calls} | {r.n_pirls_iters} | "
            f"{t.cell()} | {t.ratio(ratio_to)} | {drem:.1e} | {note} |"
        )

    rows.append(row("cold", cold, t_cold, t_cold, 0.0))
    with tempfile.TemporaryDirectory() as tmp:
        store = open_bench_store(tmp)
        first = model.fit(df, y="y", store=store)
        assert first.warm == "cold"
        t_cs, cs = timed(
            lambda: model.fit(df, y="y", store=store),
            reps,
            before=lambda: [delete_keyspace(store, ks) for ks in ("block", "outer", "artifact")],
        )
        assert cs.warm == "cold"
        rows.append(row("cold + store writes", cs, t_cs, t_cold, check(cs, cold), "3 entries"))
        t_ex, ex = timed(lambda: model.fit(df, y="y", store=store), reps)
        assert ex.warm == "exact"
        rows.append(row("exact", ex, t_ex, t_cold, check(ex, cold)))
        t_se, se = timed(
            lambda: model.fit(df, y="y", store=store),
            reps,
            before=lambda: delete_keyspace(store, "block"),
        )
        assert se.warm == "session"
        rows.append(row("session", se, t_se, t_cold, check(se, cold), "rewrites record"))

    # cross-fit: 10 leave-one-subject-out folds, knots frozen at the full-data fit
    full = model.fit(df, y="y")
    stats_c: list[tuple[float, ...]] = []
    stats_w: list[tuple[float, ...]] = []
    worst = 0.0
    for subj in sorted(df["subj"].unique()):
        fold = df[df["subj"] != subj]
        tc, fc = timed(lambda fold=fold: model.fit(fold, y="y", knots=full.knots), reps)
        with tempfile.TemporaryDirectory() as tmp:
            store = open_bench_store(tmp)

            def fresh_parent(store: Any = store) -> None:
                # each rep starts from a store holding only the full-data fit (untimed)
                for ks in ("block", "outer", "artifact"):
                    delete_keyspace(store, ks)
                model.fit(df, y="y", store=store)

            tw, fw = timed(
                lambda fold=fold, store=store: model.fit(
                    fold, y="y", knots=full.knots, store=store
                ),
                reps,
                before=fresh_parent,
            )
        assert fw.warm == "cross-fit", fw.warm
        worst = max(worst, check(fw, fc))
        stats_c.append((fc.n_outer, fc.n_pirls_calls, fc.n_pirls_iters, tc.wall, tc.cpu))
        stats_w.append((fw.n_outer, fw.n_pirls_calls, fw.n_pirls_iters, tw.wall, tw.cpu))
    mc = np.mean(np.array(stats_c), axis=0)
    mw = np.mean(np.array(stats_w), axis=0)
    tmc, tmw = Timing(mc[3], mc[4]), Timing(mw[3], mw[4])
    rows.append(
        f"| {family} | fold cold (mean of 10) | {mc[0]:.1f} | {mc[1]:.1f} | {mc[2]:.1f} | "
        f"{tmc.cell()} | {tmc.ratio(t_cold)} | 0 | knots frozen, no store |"
    )
    rows.append(
        f"| {family} | cross-fit (mean of 10) | {mw[0]:.1f} | {mw[1]:.1f} | {mw[2]:.1f} | "
        f"{tmw.cell()} | {tmw.ratio(t_cold)} | {worst:.1e} | fold vs fold cold: "
        f"{tmw.ratio(tmc)} |"
    )
    if with_mgcv:
        mg = run_mgcv(
            df, y="y", smooths=[("x0", 10), ("x1", 10), ("x2", 10)], family=family, reps=reps
        )
        t_mg = Timing(float(mg["seconds_per_fit"][0]), float(mg["cpu_seconds_per_fit"][0]))
        rows.append(
            f"| {family} | mgcv gam(REML) | {int(mg['outer_iter'][0])} | - | - | "
            f"{t_mg.cell()} | {t_mg.ratio(t_cold)} | "
            f"{abs(mg['reml'][0] - cold.reml) / abs(cold.reml):.1e} | mean over {reps} fits "
            "in an R loop |"
        )
    return rows


FLOOR_HEAD = (
    "| family | design build ms | store path ms (key, lookups) | Newton ms cold / exact "
    "| REML evaluations cold / exact | exact refit / cold (no I/O) "
    "| floor: design + recertifying Newton over design + cold Newton |\n"
    "|---|---|---|---|---|---|---|"
)


def _best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def floor_row(family: str, reps: int) -> str:
    """An exact-record refit part by part, against a cold fit of the same data, on the
    recertifying path (``fit(exact_hit="recertify")``; the default answers an exact hit from
    the record without building the design, the "exact" rows above).

    The refit must build the design (its hash is part of the key, and the stored optimum is
    recertified on it) and run the Newton loop from the stored optimum (one evaluation and a
    certificate); a cold fit builds the same design and runs Newton from initial.sp. The last
    column is the smallest refit/cold ratio reachable with a free store.
    """
    from gamstore.fit.warm import WarmContext

    df = simulate(family)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family)
    with tempfile.TemporaryDirectory() as tmp:
        store = gs.open_store(os.path.join(tmp, "st"))
        model.fit(df, y="y", store=store)
        t_design, (prob, _) = _best(lambda: model.prepare(df, "y"), 5 * reps)
        key = model.store_key(df, "y")  # the fit keys its inputs
        t_path, start = _best(
            lambda: WarmContext(prob, store, model.control, key).find_start(), reps
        )
        assert start is not None and start.source == "exact", start
        rho0 = prob.design.initial_rho.copy()
        t_cold, rc = _best(lambda: model.run(prob, rho0, None), 5 * reps)
        t_ex, rx = _best(lambda: model.run(prob, start.rho, start.beta), 5 * reps)
    return (
        f"| {family} | {1e3 * t_design:.2f} | {1e3 * t_path:.2f} | {1e3 * t_cold:.2f} / "
        f"{1e3 * t_ex:.2f} | {rc.n_pirls_calls} / {rx.n_pirls_calls} | "
        f"{(t_design + t_path + t_ex) / (t_design + t_cold):.2f} | "
        f"**{(t_design + t_ex) / (t_design + t_cold):.2f}** |"
    )


def bench_large(n: int = 200_000) -> str:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(n, 4))
    eta = np.sin(2 * np.pi * x[:, 0]) + x[:, 1] ** 2 + np.cos(3 * x[:, 2])
    y = rng.poisson(np.exp(0.3 * eta)).astype(float)
    data = {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "x3": x[:, 3], "y": y}
    model = GAM([s("x0"), s("x1"), s("x2"), s("x3")], family="poisson")
    t0 = time.perf_counter()
    res = model.fit(data, y="y")
    wall = time.perf_counter() - t0
    tracemalloc.start()
    model.fit(data, y="y")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    design = n * 37 * 8 / 2**20
    return (
        f"| poisson, n={n}, 4 smooths | {res.n_outer} | {res.n_pirls_calls} | "
        f"{res.n_pirls_iters} | {wall:.2f} s | {peak / 2**20:.0f} MiB (design {design:.0f} MiB) | "
        f"{rss:.0f} MiB |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--no-mgcv", action="store_true")
    ap.add_argument("--no-large", action="store_true")
    ap.add_argument("--store", choices=("file", "memory"), default="file")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also break an exact-record refit down part by part (design, store, Newton)",
    )
    args = ap.parse_args()
    global STORE_KIND
    STORE_KIND = args.store
    print(
        f"store: {args.store}; reps: {args.reps}; load average before: "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}\n"
    )
    with_mgcv = not args.no_mgcv and mgcv_available()
    print(
        "| family | level | outer iters | PIRLS calls | PIRLS iters | ms per fit (wall / CPU) | "
        "ratio to cold (wall / CPU) | rel dREML vs cold | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for fam in FAMILIES:
        for line in bench_family(fam, args.reps, with_mgcv):
            print(line, flush=True)
    if not with_mgcv:
        print("\n(mgcv rows skipped: Rscript with mgcv not available or --no-mgcv)")
    if args.floor:
        print("\n### Exact-record refit part by part (best of reps per part)\n")
        print(FLOOR_HEAD)
        for fam in FAMILIES:
            print(floor_row(fam, args.reps), flush=True)
    if not args.no_large:
        print()
        print(
            "| large fit | outer iters | PIRLS calls | PIRLS iters | wall | tracemalloc peak | "
            "process max RSS |"
        )
        print("|---|---|---|---|---|---|---|")
        print(bench_large(), flush=True)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
