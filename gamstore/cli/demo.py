"""``gamstore demo``: the Appendix B simulation through a LOSO run into a local store.

Prints the cold/warm table per family (rich) and writes a PNG per family (ρ per fold
against the full-data ρ; cold against warm iterations and time). While the fitter or the
store are not importable it falls back to a preview that still exercises the real key and
record code: it fingerprints a design matrix and builds (and, if it can, stores) a block
warm-start record.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from gamstore.cli import EXIT_STORAGE

logger = logging.getLogger("gamstore.cli")

FAMILIES = ("gaussian", "poisson", "binomial")


def _fitter_available() -> bool:
    """True when a small fit through an in-memory store works end to end."""
    try:
        from gamstore.fit import GAM, s
        from gamstore.loso.simulate import simulate
        from gamstore.store import open_store

        df = simulate("gaussian", n=200, n_subjects=2, seed=1)
        GAM([s("x0", k=5)]).fit(df, y="y", store=open_store("memory://gamstore-demo-probe"))
    except Exception as exc:  # any missing piece: fall back to the preview
        logger.warning("fitter with store not usable yet (%s): running the preview", exc)
        return False
    return True


def _preview(directory: Path, seed: int) -> None:
    """Fingerprint a design matrix and build a block warm-start record from an OLS fit."""
    import numpy as np
    from rich.table import Table

    from gamstore.cli.common import console as make_console
    from gamstore.fingerprint import hash_array
    from gamstore.loso.simulate import simulate
    from gamstore.records import BlockWarmStartRecord

    console = make_console()
    df = simulate("gaussian", seed=seed)
    blocks = {"(parametric)": np.ones((len(df), 1))}
    for col in ("x0", "x1", "x2"):
        x = df[col].to_numpy()
        # centred cubic polynomial: a stand-in for the P-spline block until the fitter lands
        poly = np.column_stack([x, x**2, x**3])
        blocks[f"s({col})"] = poly - poly.mean(axis=0)
    design = np.column_stack(list(blocks.values()))
    fp = hash_array(design)
    beta, *_ = np.linalg.lstsq(design, df["y"].to_numpy(), rcond=None)
    dims = [b.shape[1] for b in blocks.values()]
    split = np.split(beta, np.cumsum(dims)[:-1])
    record = BlockWarmStartRecord(
        key=f"cf-{fp.finish_hex()}",
        n_rows=len(df),
        block_names=tuple(blocks),
        block_dims=tuple(dims),
        rho=np.zeros(len(blocks) - 1),
        block_beta=tuple(split),
        active_sets=(None,) * len(blocks),
    )
    console.print(f"[bold]design matrix[/bold] {design.shape[0]} x {design.shape[1]}")
    console.print(f"  hash_array -> {fp.hex()}")
    table = Table(title=f"BlockWarmStartRecord {record.key}")
    table.add_column("block")
    table.add_column("dim", justify="right")
    table.add_column("beta")
    for name, dim, b in zip(record.block_names, record.block_dims, record.block_beta, strict=True):
        table.add_row(name, str(dim), np.array2string(np.asarray(b), precision=3))
    console.print(table)
    try:
        from gamstore.store import open_store
    except ImportError:
        console.print("(store not available yet: record not saved)")
        return
    store = open_store(str(directory))
    entry_id = store.save("block", record.key, record)
    hit = store.lookup("block", record.key)
    console.print(f"saved entry {entry_id} in {store.url}", soft_wrap=True)
    console.print(f"lookup hit: {hit is not None}")


def _full_demo(
    directory: Path,
    families: tuple[str, ...],
    n: int,
    subjects: int,
    seed: int,
    plot: bool,
    save_folds: bool,
) -> None:
    from gamstore.cli.loso import print_summary
    from gamstore.fit import GAM, s
    from gamstore.loso import run_loso, simulate
    from gamstore.store import open_store

    try:
        store = open_store(str(directory))
    except OSError as exc:
        click.echo(f"Error: --dir: cannot open a store in {str(directory)!r} ({exc})", err=True)
        raise click.exceptions.Exit(EXIT_STORAGE) from None
    for family in families:
        df = simulate(family, n=n, n_subjects=subjects, seed=seed)
        model = GAM([s("x0"), s("x1"), s("x2")], family=family)
        ds = run_loso(
            df,
            model,
            subject="subj",
            y="y",
            store=store,
            compare_cold=True,
            save_folds=save_folds,
        )
        print_summary(
            ds,
            f"LOSO {family}: n={n}, {subjects} subjects, full-data REML {ds.full_reml.item():.6f}",
        )
        if plot:
            from gamstore.plotting import plot_loso

            path = directory / f"loso_{family}.png"
            plot_loso(ds, path)
            click.echo(f"wrote {path}")
        if _has_h5():
            ds.to_netcdf(directory / f"loso_{family}.nc", engine="h5netcdf")


def _has_h5() -> bool:
    import importlib.util

    return importlib.util.find_spec("h5netcdf") is not None


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("gamstore-demo"),
    show_default=True,
    help="Directory of the demo store and its outputs.",
)
@click.option(
    "--family",
    "family",
    type=click.Choice([*FAMILIES, "all"]),
    default="all",
    show_default=True,
    help="Which simulated family to run.",
)
@click.option("--n", type=click.IntRange(min=100), default=2000, show_default=True, help="Rows.")
@click.option(
    "--subjects",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="Simulated subjects, one LOSO fold each (--n must be a multiple).",
)
@click.option(
    "--seed", type=int, default=20240601, show_default=True, help="Seed of the simulation."
)
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write PNG figures.")
@click.option(
    "--save-folds/--no-save-folds",
    default=False,
    show_default=True,
    help="Let the warm folds write their own state (default: they only read the full-data fit).",
)
@click.option("--preview", is_flag=True, help="Only fingerprint a design and build a record.")
def demo_command(
    directory: Path,
    family: str,
    n: int,
    subjects: int,
    seed: int,
    plot: bool,
    save_folds: bool,
    preview: bool,
) -> None:
    """Run the Appendix B simulation through LOSO, cold against warm, into a local store."""
    if n % subjects:
        raise click.BadParameter(f"must be a multiple of --subjects={subjects}", param_hint="--n")
    directory.mkdir(parents=True, exist_ok=True)
    if preview or not _fitter_available():
        _preview(directory, seed)
        return
    families = FAMILIES if family == "all" else (family,)
    _full_demo(directory, families, n, subjects, seed, plot, save_folds)


def register(main: click.Group) -> None:
    """Add ``demo`` to the ``gamstore`` command group."""
    main.add_command(demo_command)
