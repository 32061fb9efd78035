"""Inspection and maintenance commands: ls, show, du, gc, verify, evict, export, import, catalog.

Every command takes the store URL first (a directory, ``file://``, ``memory://`` or
``s3://bucket/prefix``) and ``-o/--storage-option KEY=VALUE`` (repeatable) for remote stores.
Tables go to stdout (``--json`` for machine-readable output where offered); progress bars go
to stderr and only on a terminal. Exit codes follow :mod:`gamstore.cli`: 0 ok, 1 a problem
was found (corrupt entries remain, entries skipped, catalog busy), 2 bad usage or input
(unknown keyspace, bad URL, missing entry, unreadable file), 3 storage unreachable or refused.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click

from gamstore.cli import EXIT_PROBLEM, EXIT_STORAGE, EXIT_USAGE
from gamstore.cli.common import console as _console
from gamstore.cli.common import fail as _fail
from gamstore.cli.common import parse_storage_options, storage_option
from gamstore.store import KEYSPACES, is_entry_id

__all__ = ["register", "parse_duration", "parse_size", "parse_storage_options"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhdw]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# ------------------------------------------------------------------ parsing helpers
def parse_duration(text: str, name: str) -> float:
    """``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"2w"`` -> seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"{name}: expected a duration like 90s, 15m, 2h, 7d or 2w, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_size(text: str, name: str) -> int:
    """``"1000"``, ``"500M"``, ``"1G"``, ``"2GiB"`` -> bytes (K/M/G/T are powers of 1024)."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"{name}: expected a size like 1000, 500M or 2G, got {text!r}")
    power = " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1024**power)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _human_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


# ------------------------------------------------------------------ console and progress
@contextmanager
def _progress(
    label: str, enabled: bool | None
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yield (advance, set_total) hooks of a rich progress bar on stderr (no-ops off a TTY)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    if not show:
        yield (lambda n: None), (lambda n: None)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda n: bar.update(task, total=n))


# ------------------------------------------------------------------ store opening
def _open(
    url: str,
    storage_option: tuple[str, ...],
    *,
    write: bool = False,
    create: bool = False,
    **kw: Any,
) -> Any:
    """Open the store; map errors to exit codes (2 bad URL/options, 3 storage)."""
    from gamstore.views.source import resolve_store

    try:
        options = parse_storage_options(storage_option)
        if write:
            from gamstore.store import open_store

            if not create:
                resolve_store(url, must_exist=True, storage_options=options).close()
            return open_store(url, storage_options=options, **kw)
        return resolve_store(url, storage_options=options)
    except (ValueError, TypeError) as exc:
        _fail(EXIT_USAGE, str(exc))
    except _storage_exceptions() as exc:
        _fail(EXIT_STORAGE, f"cannot open store {url!r}: {exc}")


def _storage_exceptions() -> tuple[type[BaseException], ...]:
    """OSError plus the S3 client's own errors (connection refused, access denied, ...)."""
    types: list[type[BaseException]] = [OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        types += [BotoCoreError, ClientError]
    except ImportError:  # no S3 support installed: only local errors can happen
        pass
    return tuple(types)


@contextmanager
def _storage_errors(url: str) -> Iterator[None]:
    """Turn storage failures inside a command into exit code 3 (bad input into 2)."""
    from gamstore.views.entry import EntryNotFoundError

    try:
        yield
    except EntryNotFoundError as exc:
        _fail(EXIT_USAGE, str(exc))
    except (ValueError, TypeError) as exc:
        _fail(EXIT_USAGE, str(exc))
    except _storage_exceptions() as exc:
        _fail(EXIT_STORAGE, f"storage error on {url!r}: {exc}")


def _url_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("url")(storage_option(f))


_keyspace_option = click.option(
    "-k",
    "--keyspace",
    "keyspace",
    multiple=True,
    type=click.Choice(tuple(KEYSPACES)),
    help="Only this keyspace (repeatable; default: all).",
)
_progress_option = click.option(
    "--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a TTY)."
)


# ------------------------------------------------------------------ ls
#: Provenance fields shown by ls/show (see gamstore.store.provenance); None when not stored.
_PROVENANCE = (
    "response",
    "covariates",
    "terms",
    "n_rows",
    "subject_column",
    "held_out",
    "run_id",
    "gamstore_version",
)


def _held_out(r: dict[str, Any]) -> str:
    """``"subj=3"`` for a LOSO fold, ``"none (full data)"`` for the run's full fit."""
    if not r.get("subject_column"):
        return ""
    if r.get("held_out") is None:
        return "none (full data)"
    return f"{r['subject_column']}={r['held_out']}"


def _family(marker: dict[str, Any]) -> str:
    record = marker.get("record")
    if marker.get("record_type") == "fit_artifact" and isinstance(record, dict):
        desc = record.get("descriptor")
        if isinstance(desc, dict) and isinstance(desc.get("family_kind"), str):
            return str(desc["family_kind"])
    return ""


def _listing_rows(
    store: Any, keyspaces: tuple[str, ...], advance: Callable[[int], None]
) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    now = time.time_ns()
    infos = [info for ks in keyspaces or tuple(KEYSPACES) for info in store.entries(ks)]
    remote = store.flat_listing

    def row(info: Any) -> dict[str, Any]:
        marker = store.read_marker(info) or {}  # one GET on object stores: run them in parallel
        prov = marker.get("provenance")
        prov = prov if isinstance(prov, dict) else {}
        return {
            "keyspace": info.keyspace,
            "entry_id": info.entry_id,
            "key": marker.get("key", ""),
            "kind": marker.get("kind", ""),
            "record_type": marker.get("record_type", ""),
            "family": _family(marker),
            "created": _iso(info.created),
            "created_ns": info.created,
            "age_s": max(0.0, (now - info.created) / 1e9),
            "last_access": None if info.last_access is None else _iso(info.last_access),
            "objective": marker.get("objective"),
            "iteration": marker.get("iteration"),
            "nbytes": info.nbytes,
            "producer": marker.get("producer", ""),
            "path": info.path,
            **{name: prov.get(name) for name in _PROVENANCE},
        }

    rows = []
    with ThreadPoolExecutor(max_workers=16 if remote else 1) as pool:
        for r in pool.map(row, infos):
            rows.append(r)
            advance(1)
    rows.sort(key=lambda r: (r["keyspace"], r["created_ns"], r["entry_id"]))
    return rows


@click.command("ls")
@_url_argument
@_keyspace_option
@click.option("--family", default=None, help="Only fit artifacts of this family (e.g. poisson).")
@click.option(
    "--kind", type=click.Choice(["checkpoint", "final"]), default=None, help="Only this kind."
)
@click.option(
    "--older-than",
    default=None,
    metavar="AGE",
    help="Only entries older than AGE (90s, 15m, 2h, 7d).",
)
@click.option("--newer-than", default=None, metavar="AGE", help="Only entries newer than AGE.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@_progress_option
def ls_command(
    url: str,
    storage_option: tuple[str, ...],
    keyspace: tuple[str, ...],
    family: str | None,
    kind: str | None,
    older_than: str | None,
    newer_than: str | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """List the committed entries of the store at URL.

    Exit codes: 0 ok, 2 bad URL/option, 3 storage error.
    """
    try:
        older = None if older_than is None else parse_duration(older_than, "--older-than")
        newer = None if newer_than is None else parse_duration(newer_than, "--newer-than")
    except ValueError as exc:
        _fail(EXIT_USAGE, str(exc))
    store = _open(url, storage_option)
    with _storage_errors(url), _progress("listing", progress) as (advance, _total):
        rows = _listing_rows(store, keyspace, advance)
    if family is not None:
        rows = [r for r in rows if r["family"] == family]
    if kind is not None:
        rows = [r for r in rows if r["kind"] == kind]
    if older is not None:
        rows = [r for r in rows if r["age_s"] > older]
    if newer is not None:
        rows = [r for r in rows if r["age_s"] <= newer]
    if as_json:
        click.echo(json.dumps(_jsonable(rows), indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} entries in {store.url}")
    for col, justify in (("keyspace", "left"), ("entry id", "left"), ("key", "left"), ("kind", "left"),
                         ("family", "left"), ("response", "left"), ("held out", "left"),
                         ("run", "left"), ("created (UTC)", "left"), ("age", "right"),
                         ("objective", "right"), ("size", "right")):  # fmt: skip
        table.add_column(col, justify=justify, no_wrap=col in ("entry id", "created (UTC)"))  # type: ignore[arg-type]
    for r in rows:
        key = r["key"] if len(r["key"]) <= 40 else r["key"][:18] + "…" + r["key"][-18:]
        obj = "" if r["objective"] is None else f"{r['objective']:.6g}"
        table.add_row(r["keyspace"], r["entry_id"], key, r["kind"], r["family"],
                      r["response"] or "", _held_out(r), r["run_id"] or "", r["created"],
                      _human_age(r["age_s"]), obj, _human_bytes(r["nbytes"]))  # fmt: skip
    _console().print(table)


# ------------------------------------------------------------------ show
def _penalty_names(entry: Any, arrays: Any) -> dict[str, list[str]]:
    """Smoothing-parameter names per stored ρ array, as ``FitResult.rho_names`` gives them
    (:mod:`gamstore.rhonames`): a block record's ``rho`` from its block names, an artifact's
    ``terms/<i>/rho_for_term`` and an iterate's or record A's ``rho`` from the fit's terms in
    the entry's provenance; none when unknown."""
    from gamstore.rhonames import block_label, block_rho_labels, rho_labels_for_blocks

    record = entry.record
    rtype = getattr(type(record), "RECORD_TYPE", None)
    out: dict[str, list[str]] = {}
    if rtype == "block_warm_start" and "rho" in arrays:
        blocks = [str(b) for b in record.block_names]
        names = rho_labels_for_blocks(blocks, int(arrays["rho"].data.size))
        if names is not None:
            out["rho"] = names
        return out
    prov = getattr(entry, "provenance", None) or {}
    terms = prov.get("terms") if isinstance(prov, Mapping) else None
    if rtype in ("iterate", "warm_start") and "rho" in arrays and isinstance(terms, list):
        names = rho_labels_for_blocks([str(t) for t in terms], int(arrays["rho"].data.size))
        if names is not None:
            out["rho"] = names
    elif rtype == "fit_artifact":
        if isinstance(terms, list) and len(terms) == len(record.terms):
            for i, term in enumerate(terms):
                part = arrays.get(f"terms/{i}/rho_for_term")
                if part is not None and part.data.size:
                    out[f"terms/{i}/rho_for_term"] = block_rho_labels(
                        block_label(str(term)), int(part.data.size)
                    )
    return out


def _entry_payload(entry: Any) -> dict[str, Any]:
    parts = entry.record.to_parts()
    arrays = {
        name: {
            "dims": list(part.dims),
            "shape": list(part.data.shape),
            "dtype": str(part.data.dtype),
            "values": part.data.tolist(),
        }
        for name, part in sorted(parts.arrays.items())
    }
    meta = {
        "keyspace": entry.keyspace,
        "key": entry.key,
        "entry_id": entry.entry_id,
        "kind": entry.kind,
        "record_type": type(entry.record).RECORD_TYPE,
        "created": _iso(entry.created),
        "created_ns": entry.created,
        "objective": entry.objective,
        "iteration": entry.iteration,
        "producer": entry.producer,
        "nbytes": entry.nbytes,
    }
    prov = getattr(entry, "provenance", None) or {}
    return {
        "metadata": meta,
        "provenance": {name: prov.get(name) for name in _PROVENANCE},
        "fields": parts.fields,
        "arrays": arrays,
        "penalty_names": _penalty_names(entry, parts.arrays),
    }


@click.command("show")
@_url_argument
@click.argument("target", metavar="KEY|ENTRY")
@click.option("-k", "--keyspace", type=click.Choice(tuple(KEYSPACES)), default=None,
              help="Keyspace of KEY (tried in every keyspace when omitted).")  # fmt: skip
@click.option("--latest", is_flag=True, help="For a KEY: the newest entry instead of the best.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (all values) instead of tables.")
def show_command(
    url: str,
    storage_option: tuple[str, ...],
    target: str,
    keyspace: str | None,
    latest: bool,
    as_json: bool,
) -> None:
    """Show one entry (metadata, record fields and arrays): by entry id or by key string.

    Exit codes: 0 ok, 2 no such entry / bad URL, 3 storage error.
    """
    from gamstore.views.entry import EntryNotFoundError, find_entry

    store = _open(url, storage_option)
    which = "latest" if latest else "best"
    with _storage_errors(url):
        if is_entry_id(target):
            entry = find_entry(store, keyspace, entry_id=target)
        else:
            found = []
            for ks in [keyspace] if keyspace else list(KEYSPACES):
                try:
                    found.append(find_entry(store, ks, target, which=which))
                except EntryNotFoundError:
                    continue
            if not found:
                where = f"keyspace {keyspace!r}" if keyspace else "any keyspace"
                raise EntryNotFoundError(f"no entry with key or id {target!r} in {where}")
            if len(found) > 1:
                spaces = ", ".join(e.keyspace for e in found)
                raise ValueError(
                    f"KEY: {target!r} exists in several keyspaces ({spaces}); pass --keyspace"
                )
            entry = found[0]
        payload = _entry_payload(entry)
    if as_json:
        click.echo(json.dumps(_jsonable(payload), indent=2))
        return
    import numpy as np
    from rich.table import Table

    console = _console()
    meta = Table(title=f"entry {entry.entry_id}", show_header=False)
    meta.add_column("field", style="bold")
    meta.add_column("value", overflow="fold")
    for name, value in payload["metadata"].items():
        meta.add_row(name, "" if value is None else str(value))
    for name, value in payload["provenance"].items():
        text = ", ".join(value) if isinstance(value, list) else "" if value is None else str(value)
        if name == "held_out" and payload["provenance"].get("subject_column"):
            text = text if value is not None else "none (full data)"
        meta.add_row(name, text)
    console.print(meta)
    fields = Table(title="record fields", show_header=False)
    fields.add_column("field", style="bold")
    fields.add_column("value", overflow="fold")
    for name, value in payload["fields"].items():
        text = value if isinstance(value, str) else json.dumps(_jsonable(value))
        fields.add_row(name, text if len(text) <= 400 else text[:400] + "…")
    console.print(fields)
    arrays = Table(title="arrays")
    for col in ("name", "dims", "shape", "values"):
        arrays.add_column(col, overflow="fold")
    with np.printoptions(precision=6, threshold=12, edgeitems=3, linewidth=10**6):
        for name, spec in payload["arrays"].items():
            values = np.asarray(spec["values"], dtype=spec["dtype"])
            arrays.add_row(name, ", ".join(spec["dims"]), str(tuple(spec["shape"])), str(values))
    console.print(arrays)
    if payload["penalty_names"]:
        pens = Table(title="smoothing parameters")
        for col in ("array", "name", "rho"):
            pens.add_column(col, overflow="fold")
        for name, labels in payload["penalty_names"].items():
            for label, value in zip(labels, payload["arrays"][name]["values"], strict=True):
                pens.add_row(name, label, f"{value:.6g}")
        console.print(pens)


# ------------------------------------------------------------------ du
@click.command("du")
@_url_argument
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_progress_option
def du_command(
    url: str, storage_option: tuple[str, ...], as_json: bool, progress: bool | None
) -> None:
    """Bytes and entry counts by keyspace (from the listing; nothing is decoded).

    Exit codes: 0 ok, 2 bad URL/option, 3 storage error.
    """
    store = _open(url, storage_option)
    usage: dict[str, dict[str, int]] = {}
    with _storage_errors(url), _progress("listing", progress) as (advance, _total):
        for ks in KEYSPACES:
            count = nbytes = 0
            for info in store.entries(ks):
                count += 1
                nbytes += info.nbytes
                advance(1)
            usage[ks] = {"entries": count, "bytes": nbytes}
        catalog = store.list_raw()
    usage["catalog"] = {"entries": 0, "bytes": sum(size for _p, size, _m in catalog)}
    total = {
        "entries": sum(u["entries"] for u in usage.values()),
        "bytes": sum(u["bytes"] for u in usage.values()),
    }
    if as_json:
        click.echo(json.dumps({"url": store.url, "keyspaces": usage, "total": total,
                               "budget_bytes": store.budget_bytes}, indent=2))  # fmt: skip
        return
    from rich.table import Table

    table = Table(title=f"usage of {store.url}")
    table.add_column("keyspace")
    table.add_column("entries", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("size", justify="right")
    for ks, u in usage.items():
        table.add_row(
            ks,
            str(u["entries"]) if ks != "catalog" else "",
            str(u["bytes"]),
            _human_bytes(u["bytes"]),
        )
    table.add_row(
        "total",
        str(total["entries"]),
        str(total["bytes"]),
        _human_bytes(total["bytes"]),
        style="bold",
    )
    _console().print(table)


# ------------------------------------------------------------------ gc / verify / evict
@click.command("gc")
@_url_argument
@click.option("--grace", default="1h", show_default=True, metavar="AGE",
              help="Only remove uncommitted payloads older than this.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gc_command(url: str, storage_option: tuple[str, ...], grace: str, as_json: bool) -> None:
    """Remove crashed writes (markerless payloads, temp files) and orphan access touches.

    Exit codes: 0 ok, 2 bad URL/option, 3 storage error or read-only store.
    """
    try:
        seconds = parse_duration(grace, "--grace")
    except ValueError as exc:
        _fail(EXIT_USAGE, str(exc))
    store = _open(url, storage_option, write=True)
    with _storage_errors(url):
        report = store.gc(grace=seconds)
    data = {"payloads": report.payloads, "temps": report.temps, "access": report.access,
            "bytes_freed": report.bytes_freed, "level_docs": report.level_docs}  # fmt: skip
    if as_json:
        click.echo(json.dumps(data))
    else:
        click.echo(
            f"gc {store.url}: removed {report.payloads} uncommitted payloads, {report.temps} temp "
            f"files, {report.access} orphan touches ({_human_bytes(report.bytes_freed)} freed)"
            + (f"; added {report.level_docs} Zarr level docs" if report.level_docs else "")
        )


@click.command("upgrade")
@_url_argument
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def upgrade_command(url: str, storage_option: tuple[str, ...], as_json: bool) -> None:
    """Make a layout-1 store a layout-2 store (one root write; entries stay in place).

    Exit codes: 0 ok (also when already up to date), 2 bad URL/option, 3 storage error or
    read-only store.
    """
    store = _open(url, storage_option, write=True)
    with _storage_errors(url):
        before, after = store.upgrade()
    if as_json:
        click.echo(json.dumps({"layout_before": before, "layout": after}))
    elif before == after:
        click.echo(f"upgrade {store.url}: already layout {after}, nothing to do")
    else:
        click.echo(
            f"upgrade {store.url}: layout {before} -> {after}; existing entries stay where "
            "they are, new ones are written flat in their shard"
        )


@click.command("verify")
@_url_argument
@click.option("--fix", is_flag=True, help="Delete the corrupt entries found.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_command(url: str, storage_option: tuple[str, ...], fix: bool, as_json: bool) -> None:
    """Decode and check every committed entry; exit 1 when corrupt entries remain.

    Exit codes: 0 all ok (or all fixed), 1 corrupt entries remain, 2 bad URL/option,
    3 storage error.
    """
    store = _open(url, storage_option, write=fix)
    with _storage_errors(url):
        report = store.verify(fix=fix)
    remaining = len(report.corrupt) - report.fixed
    if as_json:
        click.echo(json.dumps({"checked": report.checked, "ok": report.ok, "corrupt": list(report.corrupt),
                               "uncommitted": report.uncommitted, "fixed": report.fixed,
                               "vanished": report.vanished,
                               "reasons": dict(zip(report.corrupt, report.reasons, strict=True))}))  # fmt: skip
    else:
        click.echo(
            f"verify {store.url}: {report.checked} checked, {report.ok} ok, "
            f"{len(report.corrupt)} corrupt, {report.uncommitted} uncommitted, {report.fixed} fixed"
            + (f", {report.vanished} deleted while verifying" if report.vanished else "")
        )
        for path, why in zip(report.corrupt, report.reasons, strict=True):
            click.echo(f"  corrupt: {path}: {why}")
    if remaining > 0:
        raise click.exceptions.Exit(EXIT_PROBLEM)


@click.command("evict")
@_url_argument
@click.option(
    "--budget", default="1G", show_default=True, metavar="SIZE", help="Size budget (e.g. 500M, 2G)."
)
@click.option("--ttl", default="30d", show_default=True, metavar="AGE",
              help="Expire entries idle longer than this (0 = never).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evict_command(
    url: str, storage_option: tuple[str, ...], budget: str, ttl: str, as_json: bool
) -> None:
    """Run an eviction sweep now: expired entries first, then least recently used over budget.

    Exit codes: 0 ok, 2 bad URL/option, 3 storage error.
    """
    try:
        budget_bytes = parse_size(budget, "--budget")
        ttl_s = parse_duration(ttl, "--ttl")
    except ValueError as exc:
        _fail(EXIT_USAGE, str(exc))
    store = _open(url, storage_option, write=True, budget_bytes=budget_bytes, ttl=ttl_s)
    with _storage_errors(url):
        removed = store.evict()
        stats = store.stats()
    if as_json:
        click.echo(
            json.dumps({"removed": removed, "expired": stats.expired, "evicted": stats.evictions})
        )
    else:
        click.echo(
            f"evict {store.url}: removed {removed} entries "
            f"({stats.expired} expired, {stats.evictions} over budget {_human_bytes(budget_bytes)})"
        )


# ------------------------------------------------------------------ export / import / catalog
@click.command("export")
@_url_argument
@click.option(
    "--to", "out", required=True, type=click.Path(dir_okay=False), help="Output HDF5 file."
)
@_keyspace_option
@_progress_option
def export_command(
    url: str,
    storage_option: tuple[str, ...],
    out: str,
    keyspace: tuple[str, ...],
    progress: bool | None,
) -> None:
    """Export every verified entry to one HDF5 file (same hierarchy and attributes).

    Exit codes: 0 ok, 1 some entries were unreadable (skipped), 2 bad URL/option,
    3 storage error.
    """
    from gamstore.views.hdf5 import export_hdf5

    store = _open(url, storage_option)
    with _storage_errors(url), _progress("exporting", progress) as (advance, total):
        report = export_hdf5(
            store, out, keyspaces=keyspace or tuple(KEYSPACES), progress=advance, on_total=total
        )
    click.echo(f"exported {report.exported} entries from {store.url} to {out}")
    for path in report.skipped:
        click.echo(f"  skipped (unreadable): {path}")
    if report.skipped:
        raise click.exceptions.Exit(EXIT_PROBLEM)


@click.command("import")
@_url_argument
@click.option(
    "--from",
    "src",
    required=True,
    type=click.Path(dir_okay=False),
    help="HDF5 file from `gamstore export`.",
)
@_progress_option
def import_command(
    url: str, storage_option: tuple[str, ...], src: str, progress: bool | None
) -> None:
    """Import an HDF5 export into the store at URL (same entry ids; existing ones kept).

    Exit codes: 0 ok, 1 some entries were refused, 2 missing or foreign file / bad URL,
    3 storage error.
    """
    from gamstore.views.hdf5 import check_export_file, import_hdf5

    # check the file before opening (and maybe creating) the target: a refused file
    # leaves no trace at URL
    try:
        check_export_file(src)
    except FileNotFoundError:
        _fail(EXIT_USAGE, f"--from: no such file {src!r}")
    except ValueError as exc:
        _fail(EXIT_USAGE, f"--from: {exc}".replace("--from: path: ", "--from: "))
    store = _open(url, storage_option, write=True, create=True)
    with _storage_errors(url), _progress("importing", progress) as (advance, total):
        report = import_hdf5(store, src, progress=advance, on_total=total)
    click.echo(
        f"imported {report.imported} entries into {store.url} "
        f"({report.existing} already present, {len(report.failed)} failed)"
    )
    for path, reason in report.failed:
        click.echo(f"  failed: {path}: {reason}")
    if report.failed:
        raise click.exceptions.Exit(EXIT_PROBLEM)


@click.command("catalog")
@_url_argument
@_keyspace_option
@click.option("--full", is_flag=True, help="Re-read every entry (default: reuse unchanged rows).")
@_progress_option
def catalog_command(
    url: str,
    storage_option: tuple[str, ...],
    keyspace: tuple[str, ...],
    full: bool,
    progress: bool | None,
) -> None:
    """Rebuild the consolidated catalog that open_fits reads (atomic, single writer).

    Exit codes: 0 ok, 1 another process is rebuilding it, 2 bad URL/option, 3 storage error.
    """
    from gamstore.views.catalog import CatalogBusyError, write_catalog

    store = _open(url, storage_option, write=True)
    try:
        with _storage_errors(url), _progress("cataloguing", progress) as (advance, total):
            info = write_catalog(
                store,
                keyspaces=keyspace or tuple(KEYSPACES),
                full=full,
                progress=advance,
                on_total=total,
            )
    except CatalogBusyError as exc:
        _fail(EXIT_PROBLEM, str(exc))
    fits = ", ".join(f"{ks} {v['fits']}" for ks, v in info.keyspaces.items())
    click.echo(
        f"catalog {info.folder} of {store.url}: {fits} "
        f"({_human_bytes(info.nbytes)}, {info.reused} rows reused)"
    )


_COMMANDS = (
    ls_command,
    show_command,
    du_command,
    gc_command,
    upgrade_command,
    verify_command,
    evict_command,
    export_command,
    import_command,
    catalog_command,
)


def register(main: click.Group) -> None:
    """Add the inspection commands to the ``gamstore`` group."""
    for command in _COMMANDS:
        main.add_command(command)
