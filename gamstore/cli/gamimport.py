"""``gamstore import-gam DIR URL``: import a Rust ``gam`` crate warm-start cache.

Reads the crate's cache root ``DIR`` (``<DIR>/<64 hex>/<run_id>.json`` + ``.bin``), verifies
every payload's SHA-256 checksum and the record formats, and saves records A and B, outer
iterate payloads and fit artifacts into the gamstore store at ``URL``, so the cache can be
inspected with xarray (``gamstore.open_fits``/``open_entry``). Prints the counts: imported
per keyspace and skipped per reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from gamstore.cli.common import fail, parse_storage_options, storage_option

log = logging.getLogger("gamstore.cli")


def _open_store(url: str, *, read_only: bool, storage_options: dict[str, Any]) -> object:
    import gamstore

    return gamstore.open_store(url, read_only=read_only, storage_options=storage_options)


@click.command("import-gam")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.argument("url")
@storage_option
@click.option("--dry-run", is_flag=True, help="Validate and count, write nothing.")
@click.option(
    "--no-key-check",
    is_flag=True,
    help="Accept records whose key directory is not the crate fingerprint of their key.",
)
@click.option(
    "--reimport",
    is_flag=True,
    help="Save entries even when an identical record is already stored under the key.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--details", is_flag=True, help="List every skipped file with its reason.")
def import_gam(
    directory: Path,
    url: str,
    storage_option: tuple[str, ...],
    dry_run: bool,
    no_key_check: bool,
    reimport: bool,
    as_json: bool,
    details: bool,
) -> None:
    """Import the gam crate cache at DIR into the gamstore store at URL.

    Exit status 1 when some entries were corrupt (bad checksum, unreadable or invalid
    metadata/payload, wrong key directory); foreign-schema and temp files are skipped and
    counted without failing.
    """
    from gamstore.adapters import gamcrate
    from gamstore.cli import EXIT_PROBLEM, EXIT_STORAGE, EXIT_USAGE

    if directory.is_symlink():
        fail(EXIT_USAGE, f"DIR is a symlink; give the directory itself: {directory}")
    if not directory.is_dir():
        fail(EXIT_USAGE, f"DIR is not a directory: {directory}")
    try:
        options = parse_storage_options(storage_option)
        store = _open_store(url, read_only=dry_run, storage_options=options)
    except (ValueError, TypeError) as exc:
        fail(EXIT_USAGE, f"cannot open store URL: {exc}")
    except OSError as exc:
        fail(EXIT_STORAGE, f"storage unreachable: {exc}")
    try:
        report = gamcrate.import_crate_dir(
            directory,
            store,
            verify_keys=not no_key_check,
            skip_existing=not reimport,
            dry_run=dry_run,
        )
    except OSError as exc:  # includes the store's ReadOnlyStoreError (a PermissionError)
        fail(EXIT_STORAGE, f"storage error during import: {exc}")

    if as_json:
        doc = report.as_dict()
        if details:
            doc["skips"] = [
                {"path": s.path, "reason": s.reason, "detail": s.detail} for s in report.skips
            ]
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        verb = "would import" if dry_run else "imported"
        click.echo(f"{verb} {report.n_imported} entries")
        for keyspace, n in sorted(report.imported.items()):
            click.echo(f"  {keyspace:<10} {n}")
        click.echo(f"skipped {report.n_skipped}")
        for reason, n in sorted(report.skipped.items()):
            mark = " (corrupt)" if reason in gamcrate.CORRUPT_REASONS else ""
            click.echo(f"  {reason:<22} {n}{mark}")
        if details:
            for s in report.skips:
                click.echo(f"  - {s.path}: {s.reason}: {s.detail}")
    if report.n_corrupt:
        raise click.exceptions.Exit(EXIT_PROBLEM)


def register(main: click.Group) -> None:
    """Add the ``import-gam`` command to the ``gamstore`` group."""
    main.add_command(import_gam)
