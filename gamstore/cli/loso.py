"""``gamstore loso``: leave-one-subject-out cross-validation of a GAM from a CSV file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from gamstore._redact import redact
from gamstore.cli import EXIT_INTERRUPTED, EXIT_STORAGE, EXIT_USAGE
from gamstore.cli.common import console as _console
from gamstore.cli.common import parse_storage_options, storage_option

logger = logging.getLogger("gamstore.cli")

# gamstore.fit.families.family_names(), spelled out so the CLI starts without numpy/scipy
# (tests/test_fit_families.py checks that the two agree)
# gamstore.fit.bases.basis_names() (spline bases), spelled out for the same reason
BASES = ("ps", "tp", "cr", "cc", "cp")
FAMILIES = (
    "gaussian",
    "gaussian(log)",
    "gaussian(inverse)",
    "poisson",
    "poisson(identity)",
    "poisson(sqrt)",
    "binomial",
    "binomial(probit)",
    "binomial(cloglog)",
    "gamma",
    "gamma(log)",
    "gamma(identity)",
    "inverse.gaussian",
    "inverse.gaussian(log)",
    "inverse.gaussian(inverse)",
    "inverse.gaussian(identity)",
    "quasipoisson",
    "quasipoisson(identity)",
    "quasipoisson(sqrt)",
    "quasibinomial",
    "quasibinomial(probit)",
    "quasibinomial(cloglog)",
    "nb",
    "nb(identity)",
    "nb(sqrt)",
    "tw",
)
# options that take several values: `--smooth x0 x1` is read as `--smooth x0 --smooth x1`
_MULTI = ("--smooth", "--linear")


class _MultiValueCommand(click.Command):
    """A command whose ``--smooth``/``--linear`` take every following non-option word."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current: str | None = None
        for arg in args:
            if arg in _MULTI:
                current = arg
                continue
            if current is not None and not arg.startswith("-"):
                out.extend([current, arg])
                continue
            current = None
            out.append(arg)
        return super().parse_args(ctx, out)


def _bad_input(message: str) -> click.exceptions.Exit:
    click.echo(f"Error: {redact(message)}", err=True)
    return click.exceptions.Exit(EXIT_USAGE)


def read_table(path: str) -> Any:
    """Read the CSV, turning every read failure into a clear usage error (exit code 2)."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise _bad_input(f"data: no such file {path!r}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _bad_input(f"data: cannot read {path!r} as CSV ({exc})") from None


def check_columns(
    frame: Any,
    *,
    y: str,
    smooth: tuple[str, ...],
    linear: tuple[str, ...],
    subject: str,
    extra: dict[str, str | None] | None = None,
) -> None:
    """Validate the columns the LOSO run will use; raise a usage error naming the problem."""
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    optional = [(role, (name,)) for role, name in (extra or {}).items() if name]
    numeric = [("y", (y,)), ("smooth", smooth), *optional]
    # --linear columns may be factors (strings, categories, booleans: treatment contrasts)
    for role, names in [*numeric, ("linear", linear), ("subject", (subject,))]:
        for name in names:
            if name not in frame.columns:
                raise _bad_input(
                    f"--{role}: column {name!r} not in the data (columns: {', '.join(columns)})"
                )
    for role, names in numeric:
        for name in names:
            if not pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(
                frame[name]
            ):
                raise _bad_input(
                    f"--{role}: column {name!r} must be numeric, got dtype {frame[name].dtype}"
                )
    n_subjects = frame[subject].nunique(dropna=True)
    if n_subjects < 2:
        raise _bad_input(
            f"--subject: LOSO needs at least 2 distinct subjects in column {subject!r}, "
            f"got {n_subjects}"
        )


def _attempts(n: Any) -> str:
    return "1 attempt" if int(n) == 1 else f"{int(n)} attempts"


def _cell(values: list[str]) -> str:
    return "/".join(values)


def _ms(seconds: float) -> str:
    ms = 1e3 * float(seconds)
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}"


def _summary_table(ds: Any, title: str) -> Any:
    """A rich table, one row per fold; with several starts a cell reads ``warm/cold``."""
    import numpy as np
    from rich import box
    from rich.table import Table

    starts = [str(s) for s in ds["start"].values]
    ok = ds["status"] == "ok"
    sources = {str(v) for v in ds["warm_source"].isel(start=0).where(ok.isel(start=0)).values}
    sources.discard("nan")
    sources.discard("")
    one_source = len(sources) <= 1
    notes = []
    if len(starts) > 1:
        notes.append(f"a/b cells: {_cell(starts)}; REML and test dev: {starts[0]}")
    if one_source and sources:
        notes.append(f"{starts[0]} start: {next(iter(sources))}")
    if notes:
        title = f"{title}\n({'; '.join(notes)})"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    for name in ("fold", "outer", "PIRLS it", "ms"):
        table.add_column(name, justify="right", no_wrap=True)
    if not one_source:
        table.add_column("source", no_wrap=True)
    table.add_column("REML", justify="right", no_wrap=True)
    table.add_column("test dev", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for i, fold in enumerate(ds["fold"].values):
        sub = ds.isel(fold=i)
        good = [bool(v) for v in ok.isel(fold=i).values]

        def col(name: str, fmt: Any, sub: Any = sub, good: list[bool] = good) -> str:
            vals = sub[name].values
            return _cell([fmt(v) if g else "-" for v, g in zip(vals, good, strict=True)])

        first = sub.isel(start=0)
        row = [
            str(fold),
            col("n_outer", lambda v: f"{int(v)}"),
            col("n_pirls_iters", lambda v: f"{int(v)}"),
            col("wall_time", _ms),
        ]
        if not one_source:
            row.append(str(first["warm_source"].values))
        row += [
            f"{float(first['reml']):.4f}" if good[0] else "-",
            f"{float(first['heldout_deviance']):.3f}" if good[0] else "-",
            "ok" if all(good) else "[red]failed[/red]",
        ]
        table.add_row(*row)
    fold_ok = ok.all("start")
    kept = ds.where(fold_ok)
    total = [
        "total",
        _cell([f"{float(np.nansum(kept['n_outer'].sel(start=s))):.0f}" for s in starts]),
        _cell([f"{float(np.nansum(kept['n_pirls_iters'].sel(start=s))):.0f}" for s in starts]),
        _cell([f"{1e3 * float(np.nansum(kept['wall_time'].sel(start=s))):.0f}" for s in starts]),
    ]
    total += [""] * (2 if one_source else 3)
    total.append(f"{int(fold_ok.sum())}/{ds.sizes['fold']} ok")
    table.add_row(*total, style="bold")
    return table


def print_summary(ds: Any, title: str) -> None:
    """Print the fold table and, with cold and warm both present, the warm/cold ratios."""
    console = _console()
    console.print(_summary_table(ds, title))
    for i, fold in enumerate(ds["fold"].values):
        for start, status, error, attempts in zip(
            ds["start"].values,
            ds["status"].isel(fold=i).values,
            ds["error"].isel(fold=i).values,
            ds["attempts"].isel(fold=i).values,
            strict=True,
        ):
            if status != "ok":
                console.print(
                    f"[red]fold {fold} ({start}) failed after {_attempts(attempts)}:[/red] {error}",
                    highlight=False,
                )
    _print_start_checks(console, ds)
    decisions = str(ds.attrs.get("warm_decisions", ""))
    if decisions:  # what the adaptive warm-start policy did (docs/warm-start.md)
        console.print(f"warm-start policy, folds: {decisions}", highlight=False)
    starts = [str(s) for s in ds["start"].values]
    if "warm" in starts and "cold" in starts:
        import numpy as np

        ok = (ds["status"] == "ok").all("start")
        w, c = ds.sel(start="warm").where(ok), ds.sel(start="cold").where(ok)
        ratio_it = float(np.nansum(w["n_outer"])) / max(float(np.nansum(c["n_outer"])), 1.0)
        ratio_t = float(np.nansum(w["wall_time"])) / max(float(np.nansum(c["wall_time"])), 1e-12)
        drel = np.abs(w["reml"] - c["reml"]) / np.maximum(np.abs(c["reml"]), 1.0)
        console.print(
            f"warm/cold: outer iterations {ratio_it:.2f}x, wall time {ratio_t:.2f}x, "
            f"max |ΔREML| relative {float(drel.max()):.1e}"
        )


def _print_start_checks(console: Any, ds: Any) -> None:
    """Flag the folds whose warm start and cold check disagreed (the lower REML was kept)."""
    if "cold_checked" not in ds:
        return  # a Dataset from an older gamstore
    checked = int(ds["cold_checked"].sum())
    if checked:
        console.print(
            f"start check: {checked} fold fit(s) also fitted cold "
            f"(warm start from another fit, see docs/warm-start.md)",
            highlight=False,
        )
    for i, fold in enumerate(ds["fold"].values):
        for j, start in enumerate(ds["start"].values):
            sub = ds.isel(fold=i, start=j)
            if not bool(sub["start_disagree"]):
                continue
            console.print(
                f"[yellow]fold {fold} ({start}): warm start ({sub['warm_source'].values}) and "
                f"cold check disagree: REML {float(sub['warm_reml']):.6f} vs "
                f"{float(sub['cold_check_reml']):.6f}; kept {sub['kept'].values}[/yellow]",
                highlight=False,
            )


def print_cv_totals(ds: Any) -> None:
    """One line per start: cross-validated deviance, log score, RMSE/AUC, rows scored."""
    import math

    if "cv_deviance" not in ds:
        return
    for start in ds["start"].values:
        sub = ds.sel(start=start)
        parts = [
            f"deviance {float(sub['cv_deviance']):.6g}",
            f"log score {float(sub['cv_log_score']):.6g}",
        ]
        for name, label in (("cv_rmse", "RMSE"), ("cv_auc", "AUC")):
            value = float(sub[name])
            if math.isfinite(value):
                parts.append(f"{label} {value:.4g}")
        click.echo(
            f"cross-validation ({start}, {int(sub['cv_n'])} held-out rows): " + ", ".join(parts)
        )


def write_outputs(ds: Any, out: str | None, plot: str | None) -> None:
    """Write the Dataset (netCDF) and the figure (PNG) if asked to."""
    if out:
        ds.to_netcdf(out, engine="h5netcdf" if _has("h5netcdf") else None)
        click.echo(f"wrote {out}", err=True)
    if plot:
        from gamstore.plotting import plot_loso

        plot_loso(ds, plot)
        click.echo(f"wrote {plot}", err=True)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@click.command("loso", cls=_MultiValueCommand)
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--y", "y", required=True, help="Response column.")
@click.option("--smooth", multiple=True, required=True, help="Smooth columns: --smooth x0 x1 ...")
@click.option("--linear", multiple=True, help="Linear (unpenalised) columns.")
@click.option("--subject", required=True, help="Subject column (one fold per subject).")
@click.option("--weights", default=None, metavar="COLUMN", help="Prior weights column.")
@click.option("--offset", default=None, metavar="COLUMN", help="Offset column (link scale).")
@click.option(
    "--family",
    type=click.Choice(FAMILIES, case_sensitive=False),
    default="gaussian",
    show_default=True,
    help="Family, with a non-default link in parentheses as R writes it: 'Gamma(log)'.",
)
@click.option(
    "-k",
    "--k",
    "k",
    type=click.IntRange(min=4),
    default=10,
    show_default=True,
    help="Basis dimension of every smooth.",
)
@click.option(
    "--bs",
    "bs",
    type=click.Choice(BASES),
    default="ps",
    show_default=True,
    help="Basis of every smooth (mgcv's bs: tp is mgcv's default; cc/cp cyclic over the "
    "data range).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Store URL (directory, file://, s3://); default $GAMSTORE_URL or the user cache.",
)
@storage_option
@click.option(
    "--executor",
    type=click.Choice(["serial", "processes"]),
    default="serial",
    show_default=True,
    help="Where folds run (or use --scheduler for dask).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run folds on the dask.distributed scheduler at ADDRESS.",
)
@click.option("--compare-cold", is_flag=True, help="Also fit every fold cold and compare.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG here.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the result Dataset as netCDF here.",
)
@click.option(
    "--save-folds/--no-save-folds",
    default=True,
    show_default=True,
    help="Let the warm folds save their state (a repeated run starts from it); "
    "--no-save-folds: they only read the full-data fit.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@click.option(
    "--na",
    "na_action",
    type=click.Choice(["omit", "raise"]),
    default="omit",
    show_default=True,
    help="Rows with a missing model value: omit them (mgcv's na.omit) or stop with an error.",
)
@click.option(
    "--plot-smooths",
    "plot_smooths",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a PNG of the full-data fit's smooths (±2 SE bands, rug) here.",
)
@click.option(
    "--summary",
    "show_summary",
    is_flag=True,
    help="Print mgcv's summary.gam table of the full-data fit.",
)
@click.option(
    "--start-check",
    "start_check",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="When a fold started from the full-data fit is also fitted cold (lower REML kept).",
)
@click.option(
    "--trials",
    default=None,
    metavar="COLUMN",
    help="Binomial: number of trials per row; --y is then the number of successes.",
)
def loso_command(
    data: str,
    y: str,
    smooth: tuple[str, ...],
    linear: tuple[str, ...],
    subject: str,
    weights: str | None,
    offset: str | None,
    family: str,
    k: int,
    bs: str,
    store_url: str | None,
    storage_option: tuple[str, ...],
    executor: str,
    scheduler: str | None,
    compare_cold: bool,
    plot: str | None,
    out: str | None,
    save_folds: bool,
    progress: bool | None,
    na_action: str = "omit",
    trials: str | None = None,
    plot_smooths: str | None = None,
    show_summary: bool = False,
    start_check: str = "auto",
) -> None:
    """Leave-one-subject-out fits of y ~ s(smooth...) + linear, warm-started from the store."""
    frame = read_table(data)
    check_columns(
        frame,
        y=y,
        smooth=smooth,
        linear=linear,
        subject=subject,
        extra={"weights": weights, "offset": offset, "trials": trials},
    )
    if trials is not None and not family.lower().startswith(("binomial", "quasibinomial")):
        raise _bad_input("--trials: needs --family binomial or quasibinomial (any link)")
    try:
        options = parse_storage_options(storage_option) or None
    except ValueError as exc:
        raise _bad_input(str(exc)) from None

    from gamstore.fit import GAM, s
    from gamstore.loso import run_loso
    from gamstore.store import open_store

    try:
        model = GAM(
            [s(c, k=k, bs=bs) for c in smooth],
            family=family,
            linear=list(linear),
            na_action=na_action,
            start_check=start_check,
        )
    except (TypeError, ValueError) as exc:
        raise _bad_input(f"model: {exc}") from None
    try:
        store = open_store(store_url, storage_options=options)
    except (TypeError, ValueError) as exc:
        raise _bad_input(f"--store: {exc}") from None
    except OSError as exc:
        click.echo(f"Error: --store: cannot open {store_url!r} ({redact(str(exc))})", err=True)
        raise click.exceptions.Exit(EXIT_STORAGE) from None

    client: Any = None
    try:
        if scheduler:
            from distributed import Client

            client = Client(scheduler)
        ds = run_loso(
            frame,
            model,
            subject=subject,
            y=y if trials is None else (y, trials),
            store=store,
            storage_options=options,
            executor=client if client is not None else executor,
            compare_cold=compare_cold,
            progress=progress,
            weights=weights,
            offset=offset,
            save_folds=save_folds,
        )
    except (TypeError, ValueError) as exc:
        raise _bad_input(str(exc)) from None
    except KeyboardInterrupt:
        # not exit 1 (failed folds) and no traceback: nothing went wrong but the wait
        click.echo(
            f"Interrupted. What finished is saved in the store {store.url}: rerunning the "
            "same command resumes from it (warm starts).",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        if client is not None:
            client.close()
    title = f"LOSO {Path(data).name}: {family}, store {store.url}"
    n_dropped = int(ds.attrs.get("n_dropped", 0))
    if n_dropped:
        title += f"; {n_dropped} row(s) with missing values omitted"
    print_summary(ds, title)
    print_cv_totals(ds)
    write_outputs(ds, out, plot)
    if plot_smooths or show_summary:
        # the full-data fit again: an exact hit in the store, so it costs one recertification
        full = model.fit(
            frame,
            y=y if trials is None else (y, trials),
            weights=weights,
            offset=offset,
            store=store,
        )
        if show_summary:
            click.echo(str(full.summary(show=False)))
        if plot_smooths:
            full.plot(path=plot_smooths)
            click.echo(f"wrote {plot_smooths}", err=True)
    if int(ds.attrs.get("n_failed", 0)):
        raise click.exceptions.Exit(1)


def register(main: click.Group) -> None:
    """Add ``loso`` to the ``gamstore`` command group."""
    main.add_command(loso_command)
