"""LOSO benchmark: cold (mgcv ``initial.sp`` start) against warm (full-data fit from the store).

Runs the Appendix B simulation (10 subjects, n = 2000) for three families through
:func:`gamstore.loso.run_loso` with ``compare_cold=True`` and a local store, and, when
``Rscript`` with mgcv is present, the same folds through mgcv (cold, and warm with
``in.out = list(sp = sp_full, scale = sig2_full)``) in the same run. Prints markdown tables:
per-fold and total outer iterations, PIRLS calls/iterations and wall time, the warm/cold
ratios, and the largest relative |ΔREML| between cold and warm optima.

``--big`` adds a 100-subject Gaussian LOSO with n = 100 000 rows (mgcv on the first
``--mgcv-folds`` folds only: each of its fits takes seconds there).

``--designs`` compares fold designs reused from the full data's raw bases
(``run_loso(reuse_designs=True)``, :mod:`gamstore.fit.foldview`) with designs rebuilt from
each fold's covariates (``reuse_designs=False``), side by side in this process: the design
build per fold (``GAM.prepare``, plus ``X'WX`` for a Gaussian fit; CPU time, best of 3,
interleaved, first 20 folds) and the total LOSO time (wall and CPU, alternating runs, best
of ``--repeat``), at n = 100 000 (100 subjects) and on the real ChickWeight and
airquality data sets (tests/fixtures). ``--rss`` adds the peak RSS of a cold LOSO at
n = 1 000 000 (10 subjects), each variant in a fresh child process.

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/bench_loso.py [--big] [--no-mgcv] [--families ...]
"""

from __future__ import annotations

import os

# one BLAS thread before numpy loads: p is ~30 here, threads only add contention
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gamstore.fit import GAM, s  # noqa: E402
from gamstore.loso import run_loso, simulate  # noqa: E402
from gamstore.store import open_store  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(mgcv))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); fam <- args[2]; out <- args[3]; max_folds <- as.integer(args[4])
family <- switch(fam, gaussian = gaussian(), poisson = poisson(), binomial = binomial())
form <- y ~ s(x0, bs = "ps", k = 10) + s(x1, bs = "ps", k = 10) + s(x2, bs = "ps", k = 10)
kn <- list(x0 = range(d$x0), x1 = range(d$x1), x2 = range(d$x2))
cpu <- function(p) p[["user.self"]] + p[["sys.self"]]
el <- function(expr) {
  t0 <- proc.time(); force(expr); t1 <- proc.time()
  c(t1[["elapsed"]] - t0[["elapsed"]], cpu(t1) - cpu(t0))
}
b <- NULL
t_full <- el(b <- gam(form, data = d, family = family, method = "REML", knots = kn))
subjects <- sort(unique(d$subj))
subjects <- subjects[seq_len(min(length(subjects), max_folds))]
rows <- list()
for (s in subjects) {
  fd <- d[d$subj != s, ]
  bc <- NULL; bw <- NULL
  tc <- el(bc <- gam(form, data = fd, family = family, method = "REML", knots = kn))
  tw <- el(bw <- gam(form, data = fd, family = family, method = "REML", knots = kn,
                     in.out = list(sp = b$sp, scale = b$sig2)))
  rows[[length(rows) + 1]] <- data.frame(
    subj = s, cold_outer = bc$outer.info$iter, cold_time = tc[1], cold_cpu = tc[2],
    cold_reml = bc$gcv.ubre, warm_outer = bw$outer.info$iter, warm_time = tw[1],
    warm_cpu = tw[2], warm_reml = bw$gcv.ubre)
}
res <- do.call(rbind, rows)
res$full_time <- t_full[1]
write.csv(res, out, row.names = FALSE)
"""


def run_mgcv(df: pd.DataFrame, family: str, workdir: Path, max_folds: int) -> pd.DataFrame | None:
    """The same folds through mgcv (cold and ``in.out`` warm); None when R is missing."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    data_csv, out_csv, script = workdir / "d.csv", workdir / "mgcv.csv", workdir / "loso.R"
    df.to_csv(data_csv, index=False)
    script.write_text(R_SCRIPT)
    proc = subprocess.run(
        [rscript, str(script), str(data_csv), family, str(out_csv), str(max_folds)],
        capture_output=True,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        check=False,
    )
    if proc.returncode != 0:
        print(f"mgcv run failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return pd.read_csv(out_csv)


def fold_table(ds: Any) -> str:
    """Markdown: one row per fold, cold and warm side by side."""
    lines = [
        "| fold | cold outer | warm outer | cold PIRLS calls | warm PIRLS calls "
        "| cold PIRLS it | warm PIRLS it | cold ms | warm ms | cold CPU ms | warm CPU ms "
        "| warm source | rel ΔREML |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    c, w = ds.sel(start="cold"), ds.sel(start="warm")
    for i, fold in enumerate(ds["fold"].values):
        ci, wi = c.isel(fold=i), w.isel(fold=i)
        drel = abs(float(wi.reml) - float(ci.reml)) / max(abs(float(ci.reml)), 1.0)
        lines.append(
            f"| {fold} | {int(ci.n_outer)} | {int(wi.n_outer)} | {int(ci.n_pirls_calls)} "
            f"| {int(wi.n_pirls_calls)} | {int(ci.n_pirls_iters)} | {int(wi.n_pirls_iters)} "
            f"| {1e3 * float(ci.wall_time):.1f} | {1e3 * float(wi.wall_time):.1f} "
            f"| {1e3 * float(ci.cpu_time):.1f} | {1e3 * float(wi.cpu_time):.1f} "
            f"| {wi.warm_source.item()} | {drel:.1e} |"
        )
    return "\n".join(lines)


def summary_row(label: str, ds: Any, mg: pd.DataFrame | None) -> str:
    """One markdown row of totals for a family."""
    c, w = ds.sel(start="cold"), ds.sel(start="warm")
    ok = bool((ds.status == "ok").all())
    tot = {
        k: (float(c[k].sum()), float(w[k].sum()))
        for k in ("n_outer", "n_pirls_calls", "n_pirls_iters", "wall_time", "cpu_time")
    }
    drel = float((abs(w.reml - c.reml) / np.maximum(abs(c.reml), 1.0)).max())
    ratio_t = tot["wall_time"][1] / tot["wall_time"][0]
    ratio_c = tot["cpu_time"][1] / tot["cpu_time"][0]
    cells = [
        label,
        f"{int(ds.sizes['fold'])}{'' if ok else ' (failures!)'}",
        f"{tot['n_outer'][0]:.0f} / {tot['n_outer'][1]:.0f}",
        f"{tot['n_pirls_calls'][0]:.0f} / {tot['n_pirls_calls'][1]:.0f}",
        f"{tot['n_pirls_iters'][0]:.0f} / {tot['n_pirls_iters'][1]:.0f}",
        f"{1e3 * tot['wall_time'][0]:.0f} / {1e3 * tot['wall_time'][1]:.0f}",
        f"{1e3 * tot['cpu_time'][0]:.0f} / {1e3 * tot['cpu_time'][1]:.0f}",
        f"**{ratio_t:.2f}** / **{ratio_c:.2f}**",
        f"{drel:.1e}",
    ]
    if mg is not None:
        n_mg = len(mg)
        scale = ds.sizes["fold"] / n_mg  # mgcv may run a subset of folds (--big)
        mg_note = "" if n_mg == ds.sizes["fold"] else f" ({n_mg} folds, scaled)"
        mg_drel = float(
            (abs(mg.warm_reml - mg.cold_reml) / np.maximum(abs(mg.cold_reml), 1.0)).max()
        )
        cells += [
            f"{mg.cold_outer.sum():.0f} / {mg.warm_outer.sum():.0f}{mg_note}",
            f"{1e3 * scale * mg.cold_time.sum():.0f} / {1e3 * scale * mg.warm_time.sum():.0f}",
            f"{1e3 * scale * mg.cold_cpu.sum():.0f} / {1e3 * scale * mg.warm_cpu.sum():.0f}",
            f"{mg.warm_time.sum() / mg.cold_time.sum():.2f}",
            f"{mg_drel:.1e}",
            f"**{tot['wall_time'][1] / (scale * mg.warm_time.sum()):.3f}** / "
            f"**{tot['cpu_time'][1] / max(scale * mg.warm_cpu.sum(), 1e-9):.3f}**",
        ]
    else:
        cells += ["not run"] + [""] * 5
    return "| " + " | ".join(cells) + " |"


SUMMARY_HEAD = (
    "| run | folds | outer it cold / warm | PIRLS calls cold / warm | PIRLS it cold / warm "
    "| fit wall ms cold / warm | fit CPU ms cold / warm | warm/cold wall / CPU "
    "| max rel ΔREML | mgcv outer cold / warm | mgcv wall ms cold / warm "
    "| mgcv CPU ms cold / warm | mgcv warm/cold wall | mgcv max rel ΔREML "
    "| gamstore warm / mgcv warm, wall / CPU |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def bench_one(
    label: str,
    family: str,
    n: int,
    subjects: int,
    use_mgcv: bool,
    mgcv_folds: int,
    show_folds: bool,
    store_kinds: list[str],
    repeats: int,
) -> list[str]:
    """One data set: a LOSO per store kind (same folds), plus mgcv once."""
    df = simulate(family, n=n, n_subjects=subjects)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-loso-") as tmp:
        mg = run_mgcv(df, family, Path(tmp), mgcv_folds) if use_mgcv else None
        for kind in store_kinds:
            best: Any = None
            for rep in range(repeats):
                # a fresh store per variant and repeat: none may find another's fold records
                if kind == "memory":
                    url = f"memory://bench-{family}-{n}-{rep}"
                else:
                    url = str(Path(tmp) / f"store-{kind}-{rep}")
                store = open_store(url)
                ds = run_loso(
                    df,
                    model,
                    subject="subj",
                    store=store,
                    compare_cold=True,
                    progress=False,
                    save_folds=kind != "local-readonly",
                )
                if best is None:
                    best = ds
                else:  # per fit, the fastest of the repeats (the machine is shared)
                    for var in ("wall_time", "cpu_time"):
                        best[var] = np.fmin(best[var], ds[var])
            ds = best
            if show_folds:
                print(f"\n#### {label}, {kind} store: per fold (reference fitter, Newton)\n")
                print(fold_table(ds))
            rows.append(summary_row(f"{label}, {kind} store", ds, mg))
            if kind == "local":
                # the same LOSO again on the store the last repeat filled: exact records
                again = run_loso(
                    df, model, subject="subj", store=store, compare_cold=True, progress=False
                )
                if show_folds:
                    print(f"\n#### {label}, local store, repeated LOSO: per fold\n")
                    print(fold_table(again))
                rows.append(summary_row(f"{label}, local store, repeated LOSO", again, mg))
    if show_folds and mg is not None:
        print(f"\n#### {label}: per fold (mgcv, cold / in.out warm)\n")
        print(mg.to_markdown(index=False, floatfmt=".4g") if _has_tabulate() else mg.to_string())
    return rows


FLOOR_HEAD = (
    "| family | folds | design build ms | warm path ms | Newton ms cold / warm "
    "| REML evaluations cold / warm | fold warm/cold (no save) "
    "| floor: Newton-only warm/cold (design and store free) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _best_of(fn: Any, reps: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def floor_row(family: str, n: int, subjects: int, reps: int) -> str:
    """Where a warm LOSO fold's time goes, part by part, best of ``reps`` per part and fold.

    A fold fit is design build + (warm only) store lookups and transfer + the Newton loop. Both
    starts pay the design build; the Newton loop is run here on the same prepared problem from
    the cold start and from the start the store gives, so its ratio is the smallest warm/cold
    ratio any store could reach with this fitter (the "floor": design build and store access
    free).
    """
    from gamstore.fit.warm import WarmContext

    df = simulate(family, n=n, n_subjects=subjects)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family)
    tot = dict.fromkeys(("design", "warm_path", "cold", "warm"), 0.0)
    evals = [0, 0]
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-floor-") as tmp:
        full = model.fit(df, y="y", store=open_store(tmp))
        ro = open_store(tmp, read_only=True)
        for subj in sorted(df["subj"].unique()):
            train = df[df["subj"] != subj].reset_index(drop=True)
            t_design, (prob, _) = _best_of(
                lambda train=train: model.prepare(train, "y", knots=full.knots), reps
            )
            t_path, start = _best_of(
                lambda prob=prob: WarmContext(prob, ro, model.control).find_start(), reps
            )
            rho0 = prob.design.initial_rho.copy()
            t_cold, rc = _best_of(lambda prob=prob, rho0=rho0: model.run(prob, rho0, None), reps)
            t_warm, rw = _best_of(
                lambda prob=prob, start=start: model.run(prob, start.rho, start.beta), reps
            )
            tot["design"] += t_design
            tot["warm_path"] += t_path
            tot["cold"] += t_cold
            tot["warm"] += t_warm
            evals[0] += rc.n_pirls_calls
            evals[1] += rw.n_pirls_calls
    k = float(subjects)
    cold_fold = tot["design"] + tot["cold"]
    warm_fold = tot["design"] + tot["warm_path"] + tot["warm"]
    cells = [
        f"{family} n={n}",
        str(subjects),
        f"{1e3 * tot['design'] / k:.2f}",
        f"{1e3 * tot['warm_path'] / k:.2f}",
        f"{1e3 * tot['cold'] / k:.2f} / {1e3 * tot['warm'] / k:.2f}",
        f"{evals[0] / k:.1f} / {evals[1] / k:.1f}",
        f"{warm_fold / cold_fold:.2f}",
        f"**{tot['warm'] / tot['cold']:.2f}**",
    ]
    return "| " + " | ".join(cells) + " |"


KEY_PATH_HEAD = (
    "| data | folds timed | fold key ms: built design (v1) / inputs, from the leaves (v2) "
    "| warm path ms (key + lookups + transfer): v1 / v2 | v2 / v1 "
    "| leaves of the full data, once per run ms | plain-fit key of the full data ms |\n"
    "|---|---|---|---|---|---|---|"
)


def key_path_row(family: str, n: int, subjects: int, folds: int, reps: int) -> str:
    """A LOSO fold's warm path, keyed the old way and the new way, side by side.

    v1 is ``WarmContext`` without an input key: the block key hashes the fold's built design
    (``block_key`` of its specs, plus the likelihood fingerprint of y and the weights). v2 is
    what ``GAM.fit(..., row_blocks=...)`` does in a LOSO fold: the key from the full data's
    per-subject digests minus the held-out subject (``fit_key``), then the same lookups. Both
    on the same prepared fold problem and the same read-only store holding the full-data fit;
    interleaved, best of ``reps`` per part and fold.
    """
    from gamstore.fit.inputkey import fit_key
    from gamstore.fit.warm import LikelihoodKey, WarmContext, block_specs, fit_options
    from gamstore.loso.folds import fold_train
    from gamstore.warmstart.keys import block_key

    df = simulate(family, n=n, n_subjects=subjects)
    model = GAM([s("x0"), s("x1"), s("x2")], family=family)
    tot = dict.fromkeys(("key1", "key2", "path1", "path2"), 0.0)
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-keys-") as tmp:
        full = model.fit(df, y="y", store=open_store(tmp))
        ro = open_store(tmp, read_only=True)
        t_leaves, digests = _best_of(lambda: model.row_block_digests(df, "y", groups="subj"), reps)
        t_plain, _ = _best_of(lambda: fit_key(model, df, "y", None, None, None, None), reps)
        order = tuple(sorted(df["subj"].unique().tolist()))
        opts = fit_options(model.control)
        for subj in order[:folds]:
            held = (df["subj"] == subj).to_numpy()
            train = fold_train(df, "subj", held, order)
            prob, _ = model.prepare(train, "y", knots=full.knots)
            part = digests.without(subj)

            def key1(prob: Any = prob) -> str:
                return block_key(LikelihoodKey(prob), block_specs(prob), opts)

            def key2(train: Any = train, part: Any = part) -> str:
                return fit_key(model, train, "y", None, None, full.knots, part)

            def path1(prob: Any = prob) -> Any:
                return WarmContext(prob, ro, model.control).find_start()

            def path2(prob: Any = prob, key2: Any = key2) -> Any:
                return WarmContext(prob, ro, model.control, key2()).find_start()

            best = dict.fromkeys(tot, float("inf"))
            for _ in range(reps):  # interleaved: the same machine state for both
                for name, fn in (
                    ("key1", key1),
                    ("key2", key2),
                    ("path1", path1),
                    ("path2", path2),
                ):
                    t0 = time.perf_counter()
                    fn()
                    best[name] = min(best[name], time.perf_counter() - t0)
            for name in tot:
                tot[name] += best[name]
    k = float(folds)
    cells = [
        f"{family} n={n} S={subjects}",
        str(folds),
        f"{1e3 * tot['key1'] / k:.2f} / {1e3 * tot['key2'] / k:.3f}",
        f"{1e3 * tot['path1'] / k:.2f} / {1e3 * tot['path2'] / k:.2f}",
        f"**{tot['path2'] / tot['path1']:.2f}**",
        f"{1e3 * t_leaves:.1f}",
        f"{1e3 * t_plain:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


DESIGNS_HEAD = (
    "| data set | n | folds | full raw bases: once per process ms / MB "
    "| fold design (+ X'WX if Gaussian) CPU ms rebuild / reuse | reuse/rebuild "
    "| LOSO total wall s rebuild / reuse | LOSO total CPU s rebuild / reuse | reuse/rebuild CPU "
    "| max rel ΔREML reuse vs rebuild |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _realdata_case(name: str) -> tuple[pd.DataFrame, Any, dict[str, Any]]:
    """A grouped real data set of tests/fixtures/realdata_loso.json (data, model, fit args)."""
    import importlib.util

    if "gamstore_realdata" not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "realdata.py"
        spec = importlib.util.spec_from_file_location("gamstore_realdata", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gamstore_realdata"] = mod
        spec.loader.exec_module(mod)
    rd = sys.modules["gamstore_realdata"]
    case = rd.loso_cases()[name]
    return rd.base_frame(case), rd.model(case), rd.fit_kwargs(case)


def designs_row(
    label: str, df: pd.DataFrame, model: Any, kw: dict[str, Any], subject: str, repeat: int
) -> str:
    """Rebuilt against reused fold designs on one data set: per fold and whole LOSO."""
    import warnings

    from gamstore.fit.foldview import FullRawBases

    full = model.fit(df, **kw)
    t0 = time.perf_counter()
    bases = FullRawBases(df)
    for sm in model.smooths:
        bases.block(sm, full.knots[sm.term])
    t_full = time.perf_counter() - t0
    labels = sorted(df[subject].unique())
    args = (kw["y"], kw.get("weights"), kw.get("offset"), full.knots)
    response = (kw["y"], kw.get("weights"), kw.get("offset"))
    gaussian = model.family.identity_gaussian
    per = [0.0, 0.0]
    timed = labels[:20]  # per-fold timing on the first 20 folds
    for lab in timed:
        held = (df[subject] == lab).to_numpy()
        train = df.loc[~held].reset_index(drop=True)
        keep = np.flatnonzero(~held)
        best = [float("inf"), float("inf")]
        for _ in range(3):  # interleaved, best of 3 in CPU time: the machine is shared
            for j in (0, 1):
                rows = bases.rows(keep, response) if j else None
                c0 = time.process_time()
                prob, _ = model.prepare(train, *args, rows)
                if gaussian:
                    prob.gaussian_gram()  # the fold's one n-sized product (downdated: seeded)
                best[j] = min(best[j], time.process_time() - c0)
        per = [per[0] + best[0], per[1] + best[1]]
    tot = [float("inf"), float("inf")]
    cpu = [float("inf"), float("inf")]
    out: list[Any] = [None, None]
    extra = {k: kw[k] for k in ("weights", "offset") if kw.get(k)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            for j in (0, 1):  # alternating: rebuild, reuse
                t0, c0 = time.perf_counter(), time.process_time()
                ds = run_loso(
                    df,
                    model,
                    subject=subject,
                    y=kw["y"],
                    compare_cold=True,
                    progress=False,
                    reuse_designs=bool(j),
                    **extra,
                )
                tot[j] = min(tot[j], time.perf_counter() - t0)
                cpu[j] = min(cpu[j], time.process_time() - c0)
                out[j] = ds
    r0, r1 = out[0]["reml"].values, out[1]["reml"].values
    drel = float(np.max(np.abs(r1 - r0) / np.abs(r0)))
    k = len(timed)
    cells = [
        label,
        str(len(df)),
        str(len(labels)),
        f"{1e3 * t_full:.1f} / {bases.nbytes / 2**20:.1f}",
        f"{1e3 * per[0] / k:.2f} / {1e3 * per[1] / k:.2f}",
        f"**{per[1] / per[0]:.2f}**",
        f"{tot[0]:.2f} / {tot[1]:.2f}",
        f"{cpu[0]:.2f} / {cpu[1]:.2f}",
        f"**{cpu[1] / cpu[0]:.2f}**",
        f"{drel:.1e}",
    ]
    return "| " + " | ".join(cells) + " |"


def rss_child(variant: str, n: int, subjects: int) -> None:
    """In a fresh process: a cold LOSO, then print the peak RSS (MiB) and the wall time."""
    import resource

    from gamstore.fit import foldview

    if variant == "reuse-banded":  # no room for dense full designs: band values only
        foldview.DENSE_BYTES = 0
    df = simulate("gaussian", n=n, n_subjects=subjects)
    model = GAM([s("x0"), s("x1"), s("x2")])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    run_loso(
        df, model, subject="subj", warm=False, progress=False, reuse_designs=variant != "rebuild"
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{variant} {peak / 1024:.0f} {base / 1024:.0f} {wall:.2f}")


def rss_rows(n: int, subjects: int) -> list[str]:
    """Peak RSS of a cold LOSO per variant, each in its own child process."""
    rows = []
    for variant in ("rebuild", "reuse", "reuse-banded"):
        proc = subprocess.run(
            [sys.executable, __file__, "--rss-child", variant, str(n), str(subjects)],
            capture_output=True,
            text=True,
            check=True,
        )
        name, peak, base, wall = proc.stdout.split()[-4:]
        rows.append(f"| {name} | {n} | {subjects} | {peak} | {base} | {float(wall):.1f} |")
    return rows


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="*", default=["gaussian", "poisson", "binomial"])
    ap.add_argument("--big", action="store_true", help="add the 100-subject n=100000 Gaussian run")
    ap.add_argument("--no-mgcv", action="store_true", help="skip the R mgcv comparison")
    ap.add_argument("--mgcv-folds", type=int, default=10, help="mgcv folds in --big (default 10)")
    ap.add_argument("--folds", action="store_true", help="print the per-fold tables")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also break a warm fold down part by part (design, store, Newton) and print the "
        "Newton-only warm/cold ratio: the floor no store could go below",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="LOSO repeats per variant; per fit the fastest"
    )
    ap.add_argument(
        "--key-path",
        action="store_true",
        help="only time a fold's warm path keyed by its built design (v1) against keyed by "
        "its inputs from per-subject digests (v2), n = 2000 and n = 100 000",
    )
    ap.add_argument(
        "--designs",
        action="store_true",
        help="only compare reused fold designs with rebuilt ones (per fold and whole LOSO)",
    )
    ap.add_argument("--rss", action="store_true", help="with --designs: peak RSS at n = 1e6")
    ap.add_argument(
        "--design-sets",
        nargs="*",
        default=list(DESIGN_SETS),
        choices=DESIGN_SETS,
        help="data sets of --designs (simulated n = 100 000, or real LOSO fixtures)",
    )
    ap.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument(
        "--stores",
        nargs="+",
        default=["local", "local-readonly", "memory"],
        choices=["local", "local-readonly", "memory"],
        help="store variants: a local directory (folds save their state), the same with "
        "save_folds=False (folds only read the full-data fit), an in-memory store",
    )
    args = ap.parse_args()
    if args.key_path:
        print("### A LOSO fold's warm path: key of the built design vs key of the inputs\n")
        print(KEY_PATH_HEAD)
        for family in args.families:
            print(key_path_row(family, 2000, 10, 10, 5))
        print(key_path_row("gaussian", 100_000, 100, 5, 3))
        print(key_path_row("poisson", 100_000, 100, 5, 3))
        return
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]), int(args.rss_child[2]))
        return
    if args.designs:
        # the same warm-start decisions in both variants: the adaptive policy learns costs
        # as the process runs, which would make the two LOSO runs differ in more than designs
        os.environ.setdefault("GAMSTORE_WARM_POLICY", "always")
        main_designs(args.repeat, args.rss, args.design_sets)
        return
    print("### LOSO: cold (initial.sp) vs warm (full-data fit from the store)\n")
    print(
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, one process, "
        "folds serial; times are per-fit wall clock summed over folds (per fit the fastest of "
        f"{args.repeat} LOSO repeats, each on a fresh store; --big: one; mgcv: one run).\n"
    )
    rows = []
    for family in args.families:
        rows += bench_one(
            f"{family} n=2000 S=10",
            family,
            2000,
            10,
            not args.no_mgcv,
            10,
            args.folds,
            args.stores,
            args.repeat,
        )
    if args.big:
        rows += bench_one(
            "gaussian n=100000 S=100",
            "gaussian",
            100_000,
            100,
            not args.no_mgcv,
            args.mgcv_folds,
            args.folds,
            args.stores,
            1,
        )
    print()
    print(SUMMARY_HEAD)
    print("\n".join(rows))
    if args.floor:
        print("\n### Where a warm fold's time goes (per fold, best of 5 per part)\n")
        print(FLOOR_HEAD)
        for family in args.families:
            print(floor_row(family, 2000, 10, 5))


DESIGN_SETS = ("gaussian", "poisson", "ChickWeight_by_Chick", "airquality_by_Month")


def main_designs(repeat: int, rss: bool, sets: list[str]) -> None:
    """``--designs``: reused against rebuilt fold designs, side by side."""
    print("### LOSO fold designs: rebuilt from the covariates vs reused from the full data\n")
    print(
        f"GAMSTORE_WARM_POLICY={os.environ.get('GAMSTORE_WARM_POLICY')}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, one process, folds "
        f"serial; LOSO totals: run_loso(compare_cold=True) wall time, alternating, best of "
        f"{repeat}.\n"
    )
    print(DESIGNS_HEAD)
    for name in sets:
        if name in ("gaussian", "poisson"):
            df = simulate(name, n=100_000, n_subjects=100)
            model = GAM([s("x0"), s("x1"), s("x2")], family=name)
            row = designs_row(f"simulated {name}", df, model, {"y": "y"}, "subj", repeat)
        else:
            df, model, kw = _realdata_case(name)
            row = designs_row(name, df, model, kw, "subject", max(repeat, 5))
        print(row, flush=True)
    if rss:
        print("\n| variant | n | folds | peak RSS MiB | RSS before the LOSO MiB | wall s |")
        print("|---|---|---|---|---|---|")
        print("\n".join(rss_rows(1_000_000, 10)))


if __name__ == "__main__":
    main()
