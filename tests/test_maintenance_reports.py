"""Maintenance that says what it found and leaves nothing behind (issue 13 item 10, parts).

* ``gamstore verify`` names, per corrupt entry, the object or array and the check that failed;
* rebuilding the catalog removes the folder trees of the versions it deletes (and empty trees
  left by earlier gamstore versions), only inside ``<root>/.catalog``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

import gamstore
from gamstore.cli import EXIT_OK, EXIT_PROBLEM, main
from gamstore.store.layout import entry_prefix, key_folder
from gamstore.store.testing import block_record
from gamstore.views.catalog import write_catalog


def _folders(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()}


def test_verify_cli_prints_why(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = gamstore.open_store(root)
    store.save("block", "ok", block_record("ok", n_blocks=2))
    eid = store.save("block", "bad", block_record("bad", n_blocks=2))
    assert eid is not None
    chunk = root / entry_prefix("block", key_folder("block", "bad"), eid) / "values" / "0"
    data = chunk.read_bytes()
    chunk.write_bytes(data[:10] + bytes([data[10] ^ 0xFF]) + data[11:])
    runner = CliRunner()
    out = runner.invoke(main, ["verify", str(root)], catch_exceptions=False)
    assert out.exit_code == EXIT_PROBLEM
    assert "array 'values': chunk values/0 fails its BLAKE3 digest check" in out.output
    js = runner.invoke(main, ["verify", str(root), "--json"], catch_exceptions=False)
    report = json.loads(js.output)
    (path,) = report["corrupt"]
    assert report["reasons"] == {path: "array 'values': chunk values/0 fails its "
                                       "BLAKE3 digest check"}  # fmt: skip
    fixed = runner.invoke(main, ["verify", str(root), "--fix"], catch_exceptions=False)
    assert fixed.exit_code == EXIT_OK, fixed.output


def test_catalog_rebuilds_leave_no_empty_folders(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = gamstore.open_store(root)
    outside = tmp_path / "outside-empty"  # an empty folder next to the store: not ours
    outside.mkdir()
    (root / "stray-empty").mkdir()  # an empty folder in the root but outside .catalog
    # an empty tree an earlier gamstore left when it deleted an old version's objects
    (root / ".catalog" / "v0000000000000001-00000000" / "block" / "rho").mkdir(parents=True)
    for i in range(4):
        store.save("block", f"k{i}", block_record(f"k{i}"))
        write_catalog(store)
    versions = sorted(p.name for p in (root / ".catalog").iterdir() if p.is_dir())
    pointer = json.loads((root / ".catalog" / "current.json").read_text())
    assert pointer["folder"] in versions
    assert len(versions) == 2  # the current one and the one it replaced; no empty trees
    for v in versions:  # every folder left holds objects
        for d in (root / ".catalog" / v).rglob("*"):
            if d.is_dir():
                assert any(p.is_file() for p in d.rglob("*")), d
    assert outside.is_dir() and (root / "stray-empty").is_dir()
    ds = gamstore.open_fits(store, "block", catalog="require")
    assert ds.sizes["fit"] == 4
    assert os.listdir(outside) == []
