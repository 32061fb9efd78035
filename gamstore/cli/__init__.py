"""The ``gamstore`` command line.

Each group of commands lives in its own module under ``gamstore/cli/`` and registers itself
on :data:`main` through :func:`_load_commands`; a module whose optional dependencies are
missing is skipped with a note in ``--help``.

Exit codes (documented in ``gamstore --help``):

* 0 - success
* 1 - the command ran but found a problem (e.g. ``verify`` found corrupt entries)
* 2 - bad usage or bad input (unknown option, unreadable file, bad URL)
* 3 - storage unreachable or refused (network, permissions, read-only store)
* 130 - interrupted (Ctrl-C), as shells report SIGINT (128 + 2)
"""

from __future__ import annotations

import importlib

import click

from gamstore._version import __version__

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_STORAGE = 3
EXIT_INTERRUPTED = 130

# modules under gamstore.cli that define commands; each exposes `register(main)`
_COMMAND_MODULES = ("demo", "loso", "inspect", "gamimport")


class _Group(click.Group):
    """The command group; Ctrl-C in any command exits 130 quietly, not click's 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # click would print "Aborted!" and exit 1, the code for "a problem was found"
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok, 1 problem found, 2 bad usage or input, 3 storage error, "
    "130 interrupted.",
)
@click.version_option(__version__, prog_name="gamstore")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output from gamstore (-v info, -vv debug; -vvv also other libraries'). "
    "Credentials are masked.",
)
def main(verbose: int) -> None:
    """Persistent warm starts for GAM fits, stored as Zarr v3."""
    from gamstore.cli._logging import configure_logging

    configure_logging(verbose)


def _load_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"gamstore.cli.{name}")
        except ModuleNotFoundError as exc:
            # an optional extra is missing, or the module is not written yet
            if exc.name and exc.name.startswith("gamstore.cli"):
                continue
            raise
        module.register(main)


_load_commands()
