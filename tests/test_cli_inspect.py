"""The inspection CLI on real stores: output values, filters, maintenance and exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import gamstore
from gamstore.cli import EXIT_OK, EXIT_PROBLEM, EXIT_STORAGE, EXIT_USAGE, main
from gamstore.cli.inspect import parse_duration, parse_size, parse_storage_options
from gamstore.views.synthetic import populate, synthetic_fit


def run(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    populate(gamstore.open_store(path), 3, seed=31)
    return path


def test_ls_json_and_filters(store_dir: Path) -> None:
    result = run("ls", store_dir, "--json")
    assert result.exit_code == EXIT_OK, result.output
    rows = json.loads(result.output)
    assert len(rows) == 9
    assert {r["keyspace"] for r in rows} == {"artifact", "block", "outer"}
    outer = [r for r in rows if r["keyspace"] == "outer"]
    assert [r["key"] for r in outer] == [f"outer/fit-31-{i}" for i in range(3)]
    assert [r["objective"] for r in outer] == [synthetic_fit(31, i).objective for i in range(3)]
    assert all(r["kind"] == "final" and r["nbytes"] > 0 for r in outer)
    families = {r["family"] for r in rows if r["keyspace"] == "artifact"}
    assert families == {synthetic_fit(31, i).family for i in range(3)}

    def count(*extra: str) -> int:
        res = run("ls", store_dir, "--json", *extra)
        assert res.exit_code == EXIT_OK, res.output
        return len(json.loads(res.output))

    assert count("-k", "outer", "-k", "block") == 6
    assert count("--family", synthetic_fit(31, 0).family) == 1
    assert count("--kind", "final") == 3
    assert count("--older-than", "1h") == 0
    assert count("--newer-than", "1h") == 9
    table = run("ls", store_dir, "-k", "outer")
    assert table.exit_code == EXIT_OK and "outer/fit-31-2" in table.output
    assert "3 entries" in table.output


def test_show_by_key_and_entry_id(store_dir: Path) -> None:
    result = run("show", store_dir, "outer/fit-31-1", "--json")
    assert result.exit_code == EXIT_OK, result.output
    doc = json.loads(result.output)
    assert doc["metadata"]["kind"] == "final" and doc["metadata"]["iteration"] == 1
    assert doc["arrays"]["beta"]["values"] == synthetic_fit(31, 1).beta_flat.tolist()
    assert doc["arrays"]["rho"]["dims"] == ["rho"]
    entry_id = doc["metadata"]["entry_id"]
    by_id = run("show", store_dir, entry_id, "--json")
    assert json.loads(by_id.output)["metadata"]["key"] == "outer/fit-31-1"
    table = run("show", store_dir, "block/fit-31-0", "-k", "block")
    assert table.exit_code == EXIT_OK and "block_beta/0" in table.output
    # the same key string in two keyspaces needs --keyspace
    from gamstore.views.synthetic import iterate_record

    s = gamstore.open_store(store_dir)
    s.save("from", "outer/fit-31-1", iterate_record(synthetic_fit(31, 1), 1), kind="final")
    ambiguous = run("show", store_dir, "outer/fit-31-1")
    assert ambiguous.exit_code == EXIT_USAGE and "--keyspace" in ambiguous.output
    chosen = run("show", store_dir, "outer/fit-31-1", "-k", "from", "--json")
    assert json.loads(chosen.output)["metadata"]["keyspace"] == "from"


def test_du_counts_bytes(store_dir: Path) -> None:
    result = run("du", store_dir, "--json")
    assert result.exit_code == EXIT_OK, result.output
    doc = json.loads(result.output)
    store = gamstore.open_store(store_dir)
    for ks in ("artifact", "block", "outer"):
        infos = list(store.entries(ks))
        assert doc["keyspaces"][ks] == {"entries": 3, "bytes": sum(i.nbytes for i in infos)}
    assert doc["keyspaces"]["inner"] == {"entries": 0, "bytes": 0}
    assert doc["total"]["entries"] == 9
    assert "total" in run("du", store_dir).output


def test_catalog_then_open_fits_uses_it(store_dir: Path) -> None:
    result = run("catalog", store_dir)
    assert result.exit_code == EXIT_OK, result.output
    assert "artifact 3" in result.output
    assert gamstore.open_fits(store_dir).attrs["gamstore"]["source"] == "catalog"
    assert json.loads(run("du", store_dir, "--json").output)["keyspaces"]["catalog"]["bytes"] > 0


def test_verify_fix_and_exit_codes(store_dir: Path) -> None:
    assert run("verify", store_dir).exit_code == EXIT_OK
    store = gamstore.open_store(store_dir)
    info = sorted(store.entries("outer"), key=lambda i: i.created)[0]
    chunk = store_dir / info.path / "values" / "0"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0x10
    chunk.write_bytes(bytes(data))
    found = run("verify", store_dir, "--json")
    assert found.exit_code == EXIT_PROBLEM
    assert json.loads(found.output)["corrupt"] == [info.path]
    fixed = run("verify", store_dir, "--fix")
    assert fixed.exit_code == EXIT_OK and "1 fixed" in fixed.output
    assert run("verify", store_dir).exit_code == EXIT_OK
    assert len(json.loads(run("ls", store_dir, "--json", "-k", "outer").output)) == 2


def test_gc_removes_crashed_writes(store_dir: Path) -> None:
    crashed = store_dir / "outer" / "ab" / ("ab" * 32) / "0000000000000001-00000000-00000000"
    (crashed / "beta").mkdir(parents=True)
    (crashed / "beta" / "0").write_bytes(b"\0" * 16)
    old = time.time() - 7200
    os.utime(crashed / "beta" / "0", (old, old))
    result = run("gc", store_dir, "--grace", "1h", "--json")
    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.output)["payloads"] == 1
    assert not (crashed / "beta" / "0").exists()
    assert run("gc", store_dir, "--grace", "soon").exit_code == EXIT_USAGE


def test_evict_to_budget(store_dir: Path) -> None:
    result = run("evict", store_dir, "--budget", "0", "--json")
    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.output)["removed"] == 9
    assert json.loads(run("ls", store_dir, "--json").output) == []
    assert run("evict", store_dir, "--budget", "lots").exit_code == EXIT_USAGE


def test_export_import_round_trip(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fits.h5"
    exported = run("export", store_dir, "--to", out)
    assert exported.exit_code == EXIT_OK, exported.output
    assert "exported 9 entries" in exported.output
    target = tmp_path / "copy"
    imported = run("import", target, "--from", out)
    assert imported.exit_code == EXIT_OK, imported.output
    assert "imported 9 entries" in imported.output
    a = json.loads(run("ls", store_dir, "--json").output)
    b = json.loads(run("ls", target, "--json").output)
    drop = ("age_s", "last_access")
    assert [{k: v for k, v in r.items() if k not in drop} for r in a] == [
        {k: v for k, v in r.items() if k not in drop} for r in b
    ]
    assert run("import", target, "--from", tmp_path / "nope.h5").exit_code == EXIT_USAGE
    junk = tmp_path / "junk.h5"
    junk.write_text("junk")
    assert run("import", target, "--from", junk).exit_code == EXIT_USAGE


def test_bad_input_exit_codes(store_dir: Path, tmp_path: Path) -> None:
    missing = run("ls", tmp_path / "missing")
    assert missing.exit_code == EXIT_USAGE and "no store directory" in missing.output
    assert run("ls", store_dir, "-k", "bogus").exit_code == EXIT_USAGE
    assert run("ls", "ftp://x/y").exit_code == EXIT_USAGE
    assert run("ls", store_dir, "--older-than", "yesterday").exit_code == EXIT_USAGE
    assert run("ls", store_dir, "-o", "novalue").exit_code == EXIT_USAGE
    nothing = run("show", store_dir, "outer/nope")
    assert nothing.exit_code == EXIT_USAGE and "no entry" in nothing.output
    assert run("show", store_dir, "0" * 16 + "-00000000-00000000").exit_code == EXIT_USAGE
    assert run("gc", tmp_path / "missing").exit_code == EXIT_USAGE
    assert run("catalog", tmp_path / "missing").exit_code == EXIT_USAGE


def test_progress_bar_and_help(store_dir: Path) -> None:
    forced = CliRunner().invoke(main, ["du", str(store_dir), "--progress"])
    assert forced.exit_code == EXIT_OK, forced.output
    assert "total" in forced.output
    helptext = run("verify", "--help").output
    assert "1 corrupt entries remain" in helptext


def test_helpers() -> None:
    assert parse_duration("90", "x") == 90 and parse_duration("2h", "x") == 7200
    assert parse_duration("1.5d", "x") == 1.5 * 86400
    assert parse_size("1000", "x") == 1000 and parse_size("2G", "x") == 2 * 1024**3
    assert parse_size("500MiB", "x") == 500 * 1024**2
    assert parse_storage_options(("anon=true", "max_concurrency=1", "endpoint_url=http://h:1")) == {
        "anon": True,
        "max_concurrency": 1,
        "endpoint_url": "http://h:1",
    }
    with pytest.raises(ValueError, match="--storage-option"):
        parse_storage_options(("=x",))
    with pytest.raises(ValueError, match="duration"):
        parse_duration("-1s", "--ttl")


@pytest.mark.s3
def test_s3_commands(s3_store_url: str, s3_options: dict[str, Any], tmp_path: Path) -> None:
    populate(gamstore.open_store(s3_store_url, storage_options=s3_options), 2, seed=9)
    opts = [item for k, v in s3_options.items() for item in ("-o", f"{k}={v}")]
    listed = run("ls", s3_store_url, "--json", *opts)
    assert listed.exit_code == EXIT_OK, listed.output
    assert len(json.loads(listed.output)) == 6
    assert s3_options["secret"] not in listed.output
    assert run("catalog", s3_store_url, *opts).exit_code == EXIT_OK
    ds = gamstore.open_fits(s3_store_url, "block", storage_options=s3_options)
    assert ds.attrs["gamstore"]["source"] == "catalog" and ds.sizes["fit"] == 2
    out = tmp_path / "s3.h5"
    assert run("export", s3_store_url, "--to", out, *opts).exit_code == EXIT_OK
    assert run("verify", s3_store_url, *opts).exit_code == EXIT_OK
    assert run("du", s3_store_url, "--json", *opts).exit_code == EXIT_OK
    shown = run("show", s3_store_url, "outer/fit-9-1", "--json", *opts)
    assert (
        json.loads(shown.output)["arrays"]["beta"]["values"]
        == synthetic_fit(9, 1).beta_flat.tolist()
    )
    copy = s3_store_url + "-copy"
    imported = run("import", copy, "--from", out, *opts)
    assert imported.exit_code == EXIT_OK and "imported 6 entries" in imported.output
    assert run("gc", copy, "--json", *opts).exit_code == EXIT_OK
    evicted = run("evict", copy, "--budget", "0", "--json", *opts)
    assert evicted.exit_code == EXIT_OK and json.loads(evicted.output)["removed"] == 6
    missing_bucket = run("du", "s3://no-such-bucket-here/x", *opts)
    assert missing_bucket.exit_code == EXIT_STORAGE, missing_bucket.output
