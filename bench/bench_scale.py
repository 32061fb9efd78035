"""Issue 17's "pays at scale" targets: a large LOSO cold against warm, side by side, per fold.

One LOSO of ``--subjects`` subjects and ``--n`` rows with ``--smooths`` P-spline smooths (k=10)
runs through :func:`gamstore.loso.run_loso` with ``compare_cold=True`` on a local store, so
every subject's warm and cold fold fits alternate in the same process (warm first, then cold).
Then (``--repeat-loso``) the same LOSO again on the store the first one filled (the folds find
their own exact records), again with its cold twins. Every fold outcome is appended to a JSON
lines log as it finishes, so a run cut short by ``--timeout`` still reports its first K folds
(labelled partial, with the per-fold mean scaled to all folds, marked as an extrapolation).

Each family runs in its own child process, so the peak RSS reported (``ru_maxrss`` of the
child) is that run's alone; it covers the cold and warm fits of that process together, since
they alternate. ``--exact-refit`` adds, in the same child, the exact refit of the full-data
fit (the same data and store, an exact hit) against the same fit cold without a store,
alternating, ``--rounds`` rounds (best and median, CPU and wall): the refit under the adaptive
policy and under policy ``always`` (both answered from the record, the design deferred:
``exact_hit="lazy"``), the same refit followed by the first read of the fitted values and
``Vp`` (what the deferred design costs when it is needed), ``exact_hit="eager"`` and
``exact_hit="recertify"`` (the design built and the Newton loop restarted at the record).
Fold events also log the CPU since the previous fold event (``fold_cpu``): the whole fold,
held-out predictions included, which a deferred design moves out of the fit.

The data are the project's simulation (:func:`gamstore.loso.simulate`: three smooth effects of
``x0..x2``) plus ``smooths - 3`` extra uniform covariates ``x3..`` with no effect (their
smooths are shrunk towards zero by REML), seeded. ``--mgcv-folds K`` fits the first K folds
with mgcv ``gam(..., method="REML")`` (cold, same knots: the covariate ranges) and scales their
time to all folds (``--mgcv-method bam`` uses ``bam(..., method="fREML")`` instead, labelled).

Usage::

    OPENBLAS_NUM_THREADS=1 python bench/bench_scale.py --n 1000000 --subjects 100 \
        --families poisson gaussian --repeat-loso --exact-refit --mgcv-folds 1 --timeout 900
"""

from __future__ import annotations

import os

# one BLAS thread before numpy loads (the machine is shared; ratios need a pinned baseline)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(mgcv))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); fam <- args[2]; out <- args[3]; max_folds <- as.integer(args[4])
method <- args[5]; ns <- as.integer(args[6])
family <- switch(fam, gaussian = gaussian(), poisson = poisson())
xs <- paste0("x", seq_len(ns) - 1)
form <- as.formula(paste("y ~", paste0("s(", xs, ", bs = 'ps', k = 10)", collapse = " + ")))
kn <- lapply(xs, function(x) range(d[[x]])); names(kn) <- xs
subjects <- sort(unique(d$subj))[seq_len(max_folds)]
rows <- list()
for (s in subjects) {
  fd <- d[d$subj != s, ]
  t0 <- proc.time()
  b <- if (method == "bam") {
    bam(form, data = fd, family = family, method = "fREML", knots = kn)
  } else {
    gam(form, data = fd, family = family, method = "REML", knots = kn)
  }
  t1 <- proc.time()
  rows[[length(rows) + 1]] <- data.frame(subj = s, time = t1[["elapsed"]] - t0[["elapsed"]],
    outer = if (is.null(b$outer.info$iter)) NA else b$outer.info$iter)
}
res <- do.call(rbind, rows)
res$maxrss_note <- "R process"
write.csv(res, out, row.names = FALSE)
"""


def make_data(family: str, n: int, subjects: int, smooths: int) -> pd.DataFrame:
    """The project simulation plus ``smooths - 3`` seeded null covariates."""
    from gamstore.loso import simulate

    df = simulate(family, n=n, n_subjects=subjects)
    rng = np.random.default_rng(17)
    for j in range(3, smooths):
        df.insert(j, f"x{j}", rng.uniform(size=n))
    return df


def maxrss_mb() -> float:
    """Peak RSS of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args: argparse.Namespace) -> None:
    """One family's LOSO (and repeated LOSO, exact refit) in this process; logs JSON lines."""
    import gamstore.loso.pipeline as pipeline
    from gamstore.fit import GAM, s
    from gamstore.loso import run_loso
    from gamstore.store import open_store

    log = open(args.log, "a", buffering=1)  # noqa: SIM115 - line-buffered, lives with the child
    phase = {"name": ""}
    last = {"t": time.perf_counter(), "cpu": time.process_time()}

    def emit(rec: dict[str, Any]) -> None:
        rec["maxrss_mb"] = maxrss_mb()
        log.write(json.dumps(rec) + "\n")

    orig = pipeline.run_serial

    def logged_serial(frame: Any, model: Any, tasks: Any, store: Any, report: Any) -> Any:
        def rep(out: Any) -> None:
            now, cpu = time.perf_counter(), time.process_time()
            emit(
                {
                    "kind": "fold",
                    "phase": phase["name"],
                    "subject": int(out.subject),
                    "mode": out.mode,
                    "status": out.status,
                    "wall": out.wall_time,
                    "cpu": out.cpu_time,
                    "outer": out.n_outer,
                    "reml": out.reml,
                    "source": out.warm_source,
                    "decision": out.warm_decision,
                    "since_last": now - last["t"],
                    "fold_cpu": cpu - last["cpu"],
                    "checked": bool(getattr(out, "cold_checked", False)),
                    "reasons": str(getattr(out, "check_reasons", "")),
                }
            )
            last["t"], last["cpu"] = now, cpu
            report(out)

        if phase["name"] == "rebuild":  # the reference path on the first folds only
            tasks = [t for t in tasks if t.subject in set(rebuild_subjects)]
        return orig(frame, model, tasks, store, rep)

    rebuild_subjects: list[Any] = []
    pipeline.run_serial = logged_serial  # type: ignore[assignment]

    t0 = time.perf_counter()
    df = make_data(args.family, args.n, args.subjects, args.smooths)
    model = GAM([s(f"x{j}") for j in range(args.smooths)], family=args.family)
    emit({"kind": "data", "seconds": time.perf_counter() - t0})
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-scale-") as tmp:
        store = open_store(str(Path(tmp) / "store"))
        phases = [] if args.no_loso else ["first", "repeated"] if args.repeat_loso else ["first"]
        for name in phases:
            phase["name"] = name
            last["t"], last["cpu"] = time.perf_counter(), time.process_time()
            t1 = time.perf_counter()
            ds = run_loso(df, model, subject="subj", store=store, compare_cold=True, progress=False)
            emit(
                {
                    "kind": "loso",
                    "phase": name,
                    "seconds": time.perf_counter() - t1,
                    "full_wall": float(ds["full_wall_time"]),
                    "full_source": str(ds["full_warm_source"].item()),
                }
            )
            del ds
        if args.rebuild_folds and not args.no_loso:
            # the plain reference path (every fold design built from its covariates, as
            # before fold designs were reused), cold, on the first folds: what the new warm
            # and cold folds replace
            rebuild_subjects.extend(sorted(df["subj"].unique())[: args.rebuild_folds])
            phase["name"] = "rebuild"
            last["t"], last["cpu"] = time.perf_counter(), time.process_time()
            run_loso(df, model, subject="subj", warm=False, reuse_designs=False, progress=False)
        if args.exact_refit:
            if args.no_loso:  # the full-data fit to refit
                model.fit(df, y="y", store=store, warm_policy="always")
            # alternate: cold fit without a store; the exact refit under the default adaptive
            # policy (after a LOSO it has timed warm starts: it may skip the lookup); the exact
            # refit with every lookup (policy "always"); the same and the first read of what
            # needs the design; the eager and the recertifying exact refit
            variants: dict[str, dict[str, Any]] = {
                "cold": {},
                "adaptive": {"store": store, "warm_policy": "adaptive"},
                "always": {"store": store, "warm_policy": "always"},
                "always+read": {"store": store, "warm_policy": "always"},
                "eager": {"store": store, "warm_policy": "always", "exact_hit": "eager"},
                "recertify": {"store": store, "warm_policy": "always", "exact_hit": "recertify"},
            }
            wall: dict[str, list[float]] = {k: [] for k in variants}
            cpu: dict[str, list[float]] = {k: [] for k in variants}
            drel, dfit, decisions = 0.0, 0.0, {}
            for _ in range(args.rounds):
                rc = None
                for name, kw in variants.items():
                    t1, c1 = time.perf_counter(), time.process_time()
                    rw = model.fit(df, y="y", **kw)
                    if name == "always+read":
                        _ = rw.fitted, rw.Vp
                    wall[name].append(time.perf_counter() - t1)
                    cpu[name].append(time.process_time() - c1)
                    if rc is None:
                        rc = rw
                        continue
                    drel = max(drel, abs(rw.reml - rc.reml) / max(abs(rc.reml), 1.0))
                    if name == "always+read":
                        d = np.max(np.abs(rw.fitted - rc.fitted)) / np.max(np.abs(rc.fitted))
                        dfit = max(dfit, float(d))
                    decisions[name] = f"{getattr(rw, 'warm', '')}: {rw.warm_decision}"
                    del rw
                del rc
            emit(
                {
                    "kind": "exact",
                    **{k: min(v) for k, v in wall.items()},
                    "cpu": {k: min(v) for k, v in cpu.items()},
                    "cpu_median": {k: float(np.median(v)) for k, v in cpu.items()},
                    "rounds": args.rounds,
                    "drel": drel,
                    "dfit": dfit,
                    "decisions": decisions,
                    "load": os.getloadavg(),
                }
            )
    emit({"kind": "done"})


def run_mgcv(args: argparse.Namespace, family: str, workdir: Path) -> pd.DataFrame | None:
    """The first ``--mgcv-folds`` folds through mgcv, cold; None when R is missing or fails."""
    rscript = shutil.which("Rscript")
    if rscript is None or args.mgcv_folds <= 0:
        return None
    df = make_data(family, args.n, args.subjects, args.smooths)
    data_csv, out_csv, script = workdir / "d.csv", workdir / "mgcv.csv", workdir / "scale.R"
    df.to_csv(data_csv, index=False)
    del df
    script.write_text(R_SCRIPT)
    cmd = [rscript, str(script), str(data_csv), family, str(out_csv), str(args.mgcv_folds)]
    cmd += [args.mgcv_method, str(args.smooths)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
            check=False,
            timeout=args.mgcv_timeout,
        )
    except subprocess.TimeoutExpired:
        print(f"mgcv ({family}) timed out after {args.mgcv_timeout} s", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"mgcv run failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return pd.read_csv(out_csv)


def summarize(family: str, log: Path, subjects: int, mg: pd.DataFrame | None) -> list[str]:
    """Markdown rows (one per LOSO phase) and notes from a child's JSON lines log."""
    recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    folds = pd.DataFrame([r for r in recs if r["kind"] == "fold"])
    peak = max(r["maxrss_mb"] for r in recs)
    done = any(r["kind"] == "done" for r in recs)
    lines = []
    for name in ("first", "repeated"):
        if folds.empty or name not in set(folds["phase"]):
            continue
        f = folds[folds["phase"] == name]
        w = f[f["mode"] == "warm"].set_index("subject")
        c = f[f["mode"] == "cold"].set_index("subject")
        both = w.index.intersection(c.index)  # folds with both twins finished
        w, c = w.loc[both], c.loc[both]
        k = len(both)
        if k == 0:
            continue
        drel = float((abs(w.reml - c.reml) / np.maximum(abs(c.reml), 1.0)).max())
        loso = [r for r in recs if r["kind"] == "loso" and r["phase"] == name]
        full = f"{loso[0]['full_wall']:.1f} s ({loso[0]['full_source']})" if loso else "?"
        partial = (
            "" if k == subjects else f" (first {k} of {subjects}: extrapolated ×{subjects / k:.1f})"
        )
        scale = subjects / k
        cw, ww = c.wall.sum() * scale, w.wall.sum() * scale
        cells = [
            f"{family}, {'repeated LOSO' if name == 'repeated' else 'LOSO'}",
            f"{k}{partial}",
            full,
            f"{c.wall.mean():.2f} / {w.wall.mean():.2f}",
            f"{cw:.0f} / {ww:.0f}",
            f"**{w.wall.sum() / c.wall.sum():.2f}** / {w.cpu.sum() / c.cpu.sum():.2f}",
            f"{c.outer.mean():.1f} / {w.outer.mean():.1f}",
            ", ".join(f"{s_}×{n_}" for s_, n_ in w.source.value_counts().items()),
            f"{drel:.1e}",
        ]
        if mg is not None and len(mg):
            mg_total = mg.time.mean() * subjects
            cells += [
                f"{mg.time.mean():.2f} s ({len(mg)} folds) → {mg_total:.0f} s scaled",
                f"{ww / mg_total:.3f} / {cw / mg_total:.3f}",
            ]
        else:
            cells += ["not run", ""]
        cells.append(f"{peak:.0f}{'' if done else ' (run cut short)'}")
        lines.append("| " + " | ".join(cells) + " |")
        if "checked" in w:
            reasons = w.loc[w.checked, "reasons"].value_counts().to_dict()
            lines.append(
                f"\n{family} {name}: start check ran on {int(w.checked.sum())} of {k} warm folds "
                f"{reasons or ''}; CPU per fold (fit only) cold {c.cpu.mean():.3f} s, warm "
                f"{w.cpu.mean():.3f} s; whole fold (design, fit, held-out predictions) cold "
                f"{c.fold_cpu.mean():.3f} s, warm {w.fold_cpu.mean():.3f} s"
            )
        rb = folds[folds["phase"] == "rebuild"].set_index("subject") if "phase" in folds else None
        if name == "first" and rb is not None and len(rb):
            sub = rb.index.intersection(both)
            lines.append(
                f"\n{family} reference path (reuse_designs=False), cold, the first {len(sub)} "
                f"folds: fit CPU {rb.loc[sub].cpu.mean():.3f} s a fold, whole fold "
                f"{rb.loc[sub].fold_cpu.mean():.3f} s; the same folds now: cold "
                f"{c.loc[sub].cpu.mean():.3f} s, warm {w.loc[sub].cpu.mean():.3f} s (fit), "
                f"warm / reference cold **{w.loc[sub].cpu.sum() / rb.loc[sub].cpu.sum():.3f}×** "
                f"fit CPU, {w.loc[sub].fold_cpu.sum() / rb.loc[sub].fold_cpu.sum():.3f}× whole "
                "fold"
            )
        if "fold_cpu" in f:
            lines.append(
                f"\n{family} {name} LOSO, whole folds (fit + held-out predictions, CPU since the "
                f"previous fold): cold {c.fold_cpu.sum():.1f} s, warm {w.fold_cpu.sum():.1f} s "
                f"= **{w.fold_cpu.sum() / c.fold_cpu.sum():.2f}×** over {k} folds"
            )
    for r in recs:
        if r["kind"] == "exact" and "adaptive" not in r:  # a log of the first version
            lines.append(
                f"\n{family} exact refit of the full-data fit: cold {1e3 * r['cold']:.0f} ms, "
                f"refit (adaptive policy) {1e3 * r['warm']:.0f} ms = "
                f"**{r['warm'] / r['cold']:.3f}×** (rel ΔREML {r['drel']:.1e})"
            )
        elif r["kind"] == "exact" and "cpu" in r:
            c, m = r["cpu"], r["cpu_median"]
            parts = [
                f"{k} {1e3 * c[k]:.1f} ms (median {1e3 * m[k]:.1f}) = **{c[k] / c['cold']:.3f}×**"
                for k in c
                if k != "cold"
            ]
            lines.append(
                f"\n{family} exact refit of the full-data fit, CPU best of {r['rounds']} "
                f"alternating rounds (load average {', '.join(f'{v:.1f}' for v in r['load'])}): "
                f"cold {1e3 * c['cold']:.0f} ms (median {1e3 * m['cold']:.0f}); "
                + "; ".join(parts)
                + f" (rel ΔREML {r['drel']:.1e}, rel Δfitted {r['dfit']:.1e}; {r['decisions']})"
            )
        elif r["kind"] == "exact":
            lines.append(
                f"\n{family} exact refit of the full-data fit: cold {1e3 * r['cold']:.0f} ms; "
                f"refit, adaptive policy {1e3 * r['adaptive']:.0f} ms = "
                f"**{r['adaptive'] / r['cold']:.3f}×**; refit, policy always "
                f"{1e3 * r['always']:.0f} ms = **{r['always'] / r['cold']:.3f}×** "
                f"(rel ΔREML {r['drel']:.1e}; {r['decisions']})"
            )
    return lines


HEAD = (
    "| run | folds | full-data fit | fold s cold / warm (mean) | folds total s cold / warm "
    "(all folds) | warm/cold wall / CPU | outer it cold / warm | warm sources "
    "| max rel ΔREML | mgcv fold (cold) | gamstore warm / cold vs mgcv | peak RSS MiB |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows")
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--smooths", type=int, default=6, help="smooths x0.. (at least 3)")
    parser.add_argument("--families", nargs="+", default=["poisson", "gaussian"])
    parser.add_argument("--repeat-loso", action="store_true", help="second LOSO, filled store")
    parser.add_argument("--exact-refit", action="store_true", help="exact refit vs cold fit")
    parser.add_argument("--no-loso", action="store_true", help="only the exact refit")
    parser.add_argument("--rounds", type=int, default=3, help="exact refit rounds")
    parser.add_argument(
        "--rebuild-folds",
        type=int,
        default=0,
        help="also fit the first K folds cold on the reference path (reuse_designs=False)",
    )
    parser.add_argument("--mgcv-folds", type=int, default=0, help="mgcv on the first K folds")
    parser.add_argument("--mgcv-method", choices=["gam", "bam"], default="gam")
    parser.add_argument("--mgcv-timeout", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="per family child, s")
    parser.add_argument("--keep-logs", type=Path, help="directory to keep the JSON lines logs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smooths < 3:
        parser.error("--smooths: expected at least 3")
    if args.child:
        args.family = args.child
        child(args)
        return 0
    print(
        f"n = {args.n}, {args.subjects} subjects, {args.smooths} smooths (k=10), local store, "
        f"cold and warm alternating per fold, BLAS threads "
        f"{os.environ.get('OPENBLAS_NUM_THREADS')}\n"
    )
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gamstore-bench-scale-logs-") as tmp:
        logdir = args.keep_logs or Path(tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        for family in args.families:
            log = logdir / f"{family}.jsonl"
            log.write_text("")
            cmd = [sys.executable, __file__, "--child", family, "--log", str(log)]
            cmd += ["--n", str(args.n), "--subjects", str(args.subjects)]
            cmd += ["--smooths", str(args.smooths)]
            cmd += ["--repeat-loso"] * args.repeat_loso + ["--exact-refit"] * args.exact_refit
            cmd += ["--rebuild-folds", str(args.rebuild_folds)]
            cmd += ["--no-loso"] * args.no_loso + ["--rounds", str(args.rounds)]
            try:
                subprocess.run(cmd, check=False, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{family}: child stopped after {args.timeout:.0f} s", file=sys.stderr)
            mg = run_mgcv(args, family, Path(tmp))
            rows += summarize(family, log, args.subjects, mg)
    print(HEAD)
    print("\n".join(r for r in rows if r.startswith("|")))
    print("\n".join(r for r in rows if not r.startswith("|")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
