"""Reading and importing the Rust crate ``gam``'s warm-start cache (gamstore.adapters.gamcrate).

The tests build crate cache directories to the crate's on-disk format with a small builder
below (key directory = the crate's SHA-256 fingerprint of the key, ``<run_id>.bin`` payload,
``<run_id>.json`` pretty-printed metadata with the payload's SHA-256), including corrupt and
foreign-schema entries that must be skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamstore.adapters import gamcrate as gc

# ---------------------------------------------------------------------------------------------
# An independent implementation of the crate framing (so the library's is checked, not reused)
# ---------------------------------------------------------------------------------------------


def _frame(code: int, tag: bytes) -> bytes:
    return bytes([code]) + len(tag).to_bytes(4, "little") + tag


def _str_frame(tag: bytes, text: str) -> bytes:
    data = text.encode()
    return _frame(2, tag) + len(data).to_bytes(8, "little") + data


def crate_record_dir(key: str) -> str:
    return hashlib.sha256(_str_frame(b"warm-start-key", key)).hexdigest()


def crate_descriptor_key(family_kind: str, ids: list[bytes]) -> str:
    body = _frame(0, b"fit-artifact-descriptor-v1") + _str_frame(b"family_kind", family_kind)
    body += _frame(3, b"n_terms") + struct.pack("<Q", len(ids))
    for ident in sorted(ids):
        body += _frame(1, b"term") + struct.pack("<Q", 32) + ident
    return hashlib.sha256(body).hexdigest()


def crate_artifact_dir(descriptor_hex: str) -> str:
    body = _str_frame(b"fit-artifact-key", "schema3-unified-fingerprinter-v3")
    body += _str_frame(b"fit-artifact-descriptor", descriptor_hex)
    return hashlib.sha256(body).hexdigest()


def crate_outer_dir(key: str) -> str:
    return hashlib.sha256(_str_frame(b"outer-iterate-key", key)).hexdigest()


# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------


class CrateDirBuilder:
    """Writes entries in the crate's layout: ``<root>/<64 hex>/<run_id>.{bin,json}``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def run_id(self) -> str:
        self._n += 1
        return f"r1a2b-{0x17F000000000 + self._n:x}"

    def add(
        self,
        key_dir: str,
        payload: bytes | dict[str, Any],
        *,
        kind: str = "Checkpoint",
        objective: float | None = None,
        iteration: int | None = None,
        run_id: str | None = None,
        meta: dict[str, Any] | None = None,
        write_bin: bool = True,
        write_meta: bool = True,
    ) -> Path:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        run_id = run_id or self.run_id()
        d = self.root / key_dir
        d.mkdir(exist_ok=True)
        doc: dict[str, Any] = {
            "schema_version": 1,
            "producer": "ab" * 32,
            "written_unix_secs": 1_700_000_000 + self._n,
            "written_nanos": 123,
            "objective": objective,
            "iteration": iteration,
            "kind": kind,
            "checksum_hex": hashlib.sha256(data).hexdigest(),
            "payload_bytes": len(data),
            "accessed": False,
            "accessed_unix_secs": 0,
            "accessed_nanos": 0,
        }
        doc.update(meta or {})
        if write_bin:
            (d / f"{run_id}.bin").write_bytes(data)
        if write_meta:
            (d / f"{run_id}.json").write_text(json.dumps(doc, indent=2))
        return d / f"{run_id}.json"

    # typed helpers ---------------------------------------------------------------------------

    def add_record_a(self, rec: dict[str, Any], **kw: Any) -> Path:
        return self.add(crate_record_dir(rec["key"]), rec, **kw)

    def add_record_b(self, rec: dict[str, Any], **kw: Any) -> Path:
        return self.add(crate_record_dir(rec["key"]), rec, **kw)

    def add_artifact(self, art: dict[str, Any], **kw: Any) -> Path:
        d = art["descriptor"]
        ids = [bytes.fromhex(h) for h in d["term_identities"]]
        return self.add(crate_artifact_dir(crate_descriptor_key(d["family_kind"], ids)), art, **kw)

    def add_iterate(self, session_key: str, payload: dict[str, Any], **kw: Any) -> Path:
        return self.add(crate_outer_dir(session_key), payload, **kw)


def record_a(key: str = "surv-transform-0123456789abcdef", **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "version": 1,
        "key": key,
        "package_version": "0.3.122",
        "created_unix_secs": 1_700_000_000,
        "updated_unix_secs": 1_700_000_050,
        "n_rows": 200,
        "n_cols": 4,
        "rho": [0.5, -1.25],
        "beta": [1.0, -2.0, 0.25, 3.5],
        "prev_rho": [0.4, -1.0],
        "prev_beta": None,
        "last_inner_iters": 7,
        "last_inner_converged": True,
        "last_pirls_lm_lambda": 0.001,
        "last_ift_prediction_residual": None,
        "last_pirls_accept_rho": 0.75,
    }
    rec.update(over)
    return rec


def record_b(key: str = "cf-00112233aabbccdd", **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "version": 1,
        "key": key,
        "package_version": "0.3.122",
        "created_unix_secs": 1_700_000_000,
        "updated_unix_secs": 1_700_000_000,
        "n_rows": 500,
        "block_names": ["mean", "log_sigma"],
        "block_dims": [3, 2],
        "rho": [1.5, -0.5, 2.0],
        "block_beta": [[0.1, 0.2, 0.3], [-1.0, 1.0]],
        "active_sets": [None, [3, 1, 1]],
        "inner": {
            "log_likelihood": -812.5,
            "penalty_value": 3.25,
            "cycles": 4,
            "converged": True,
            "block_logdet_h": 12.0,
            "block_logdet_s": -3.0,
        },
    }
    rec.update(over)
    return rec


def iterate_payload(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "schema": 3,
        "rho": [2.7, 5.1, -1.5],
        "beta": [0.5, 0.25],
        "hessian": [2.0, 0.1, 0.0, 0.1, 3.0, 0.0, 0.0, 0.0, 1.0],
        "hessian_dim": 3,
        "cost": 2172.037987,
        "eval_id": 9,
    }
    p.update(over)
    return p


def fit_artifact(**over: Any) -> dict[str, Any]:
    ids = [hashlib.sha256(b"term-a").hexdigest(), hashlib.sha256(b"term-b").hexdigest()]
    art: dict[str, Any] = {
        "schema": 1,
        "created_unix_secs": 1_700_000_100,
        "descriptor": {
            "family_kind": "gam::families::GaussianLocationScale",
            "term_identities": ids,
            "response_signature": {
                "family_kind": "gam::families::GaussianLocationScale",
                "n_response_channels": 1,
            },
            "row_population": {"n_rows": 500, "label": None},
        },
        "terms": [
            {
                "identity": ids[0],
                "role": "Mean",
                "basis_meta": {
                    "kind": "block-spec",
                    "degree": None,
                    "num_knots": None,
                    "n_centers": 3,
                    "nullspace_order": None,
                    "matern_nu": None,
                    "periodic": False,
                },
                "joint_null_rotation": None,
                "raw_beta": [0.1, -0.2, 0.3],
                "rho_for_term": [1.5],
            },
            {
                "identity": ids[1],
                "role": "Slope",
                "basis_meta": {
                    "kind": "block-spec",
                    "degree": None,
                    "num_knots": None,
                    "n_centers": 2,
                    "nullspace_order": None,
                    "matern_nu": None,
                    "periodic": False,
                },
                "joint_null_rotation": {"nrows": 1, "ncols": 2, "data": [0.6, 0.8]},
                "raw_beta": [-1.0, 1.0],
                "rho_for_term": [-0.5, 2.0],
            },
        ],
        "global": {"outer_objective": -42.0, "converged": True, "n_rows": 500},
    }
    art.update(over)
    return art


def _scan(root: Path) -> tuple[list[gc.CrateEntry], list[gc.CrateSkip]]:
    good: list[gc.CrateEntry] = []
    bad: list[gc.CrateSkip] = []
    for item in gc.scan_crate_dir(root):
        (good if isinstance(item, gc.CrateEntry) else bad).append(item)
    return good, bad


# ---------------------------------------------------------------------------------------------
# Fingerprint framing
# ---------------------------------------------------------------------------------------------


def test_key_dirs_match_independent_framing() -> None:
    for key in ("cf-00112233aabbccdd", "surv-transform-ffff", "", "ключ/ü"):
        assert gc.record_key_dir(key) == crate_record_dir(key)
        assert gc.outer_key_dir(key) == crate_outer_dir(key)
    ids = [hashlib.sha256(b"z").digest(), hashlib.sha256(b"a").digest()]
    dk = gc.descriptor_key("Fam", ids)
    assert dk == crate_descriptor_key("Fam", ids)
    assert dk == gc.descriptor_key("Fam", ids[::-1])  # sorted: order-free
    assert dk != gc.descriptor_key("Fam2", ids)
    assert gc.artifact_key_dir(dk) == crate_artifact_dir(dk)
    # tags separate keyspaces
    assert gc.record_key_dir("k") != gc.outer_key_dir("k")


# ---------------------------------------------------------------------------------------------
# Scanning valid entries
# ---------------------------------------------------------------------------------------------


def test_scan_reads_all_four_payload_kinds(tmp_path: Path) -> None:
    b = CrateDirBuilder(tmp_path / "warm")
    b.add_record_a(record_a())
    b.add_record_b(record_b(), kind="Checkpoint")
    b.add_iterate("sess-1", iterate_payload(), kind="Final", objective=2172.037987, iteration=5)
    b.add_artifact(fit_artifact())
    good, bad = _scan(tmp_path / "warm")
    assert bad == []
    by_kind = {e.payload_kind: e for e in good}
    assert set(by_kind) == {"inner", "block", "outer", "artifact"}

    a = by_kind["inner"]
    assert a.key == "surv-transform-0123456789abcdef"
    assert a.keyspace == "inner"
    assert a.payload["beta"] == [1.0, -2.0, 0.25, 3.5]
    assert a.payload["prev_beta"] is None and a.payload["prev_rho"] == [0.4, -1.0]

    blk = by_kind["block"]
    assert blk.key == "cf-00112233aabbccdd"
    # the crate's load normalisation: sorted, deduplicated, empty -> None
    assert blk.payload["active_sets"] == [None, [1, 3]]
    assert blk.payload["inner"]["cycles"] == 4

    o = by_kind["outer"]
    assert o.key is None and o.key_dir == crate_outer_dir("sess-1")
    assert o.meta.kind == "Final" and o.meta.iteration == 5
    assert o.meta.objective == pytest.approx(2172.037987)
    assert o.payload["hessian_dim"] == 3

    art = by_kind["artifact"]
    ids = [bytes.fromhex(h) for h in art.payload["descriptor"]["term_identities"]]
    assert art.key == crate_descriptor_key("gam::families::GaussianLocationScale", ids)
    assert [t["role"] for t in art.payload["terms"]] == ["Mean", "Slope"]
    assert art.payload["terms"][1]["joint_null_rotation"]["data"] == [0.6, 0.8]
    assert art.meta.written_ns == art.meta.written_unix_secs * 10**9 + 123


def test_missing_optional_fields_take_crate_defaults(tmp_path: Path) -> None:
    b = CrateDirBuilder(tmp_path)
    rec = record_b()
    del rec["inner"]  # serde(default)
    b.add_record_b(rec, meta={"producer": None})
    p = iterate_payload()
    for name in ("beta", "hessian", "hessian_dim"):
        del p[name]
    d = b.add_iterate("s", p)
    meta = json.loads(d.read_text())
    for name in ("producer", "written_nanos", "accessed", "accessed_unix_secs", "accessed_nanos"):
        meta.pop(name)
    d.write_text(json.dumps(meta))
    good, bad = _scan(tmp_path)
    # producer: null is not a string -> that one meta is bad; the other entry reads fine
    assert [s.reason for s in bad] == [gc.SKIP_BAD_META]
    (o,) = good
    assert o.payload == {
        "schema": 3,
        "rho": [2.7, 5.1, -1.5],
        "beta": [],
        "hessian": [],
        "hessian_dim": 0,
        "cost": 2172.037987,
        "eval_id": 9,
    }
    assert o.meta.producer == "" and o.meta.written_nanos == 0 and o.meta.accessed is False


def test_newer_inner_summary_fields_are_kept_or_dropped_never_fatal(tmp_path: Path) -> None:
    b = CrateDirBuilder(tmp_path)
    rec = record_b()
    rec["inner"].update(
        solved_inner_tol=1e-8, block_log_lambdas=[1.5, -0.5], joint_log_lambdas=[[1.0], [2.0]]
    )
    b.add_record_b(rec)
    (e,) = list(gc.scan_crate_dir(tmp_path))
    assert isinstance(e, gc.CrateEntry)
    assert e.payload["inner"]["solved_inner_tol"] == 1e-8
    assert e.payload["inner"]["block_log_lambdas"] == [1.5, -0.5]
    assert "joint_log_lambdas" not in e.payload["inner"]  # nested: unknown shape, dropped
    summary = gc.to_record(e).inner
    np.testing.assert_array_equal(summary.block_log_lambdas, [1.5, -0.5])
    assert summary.solved_inner_tol == 1e-8 and summary.joint_log_lambdas is None


def test_inconsistent_hessian_is_scrubbed_not_rejected(tmp_path: Path) -> None:
    b = CrateDirBuilder(tmp_path)
    b.add_iterate("a", iterate_payload(hessian_dim=2))  # 2*2 != 9
    b.add_iterate("b", iterate_payload(hessian=[1.0, None, 0, 0, 1, 0, 0, 0, 1]))
    good, bad = _scan(tmp_path)
    assert bad == [] and len(good) == 2
    assert all(e.payload["hessian"] == [] and e.payload["hessian_dim"] == 0 for e in good)


# ---------------------------------------------------------------------------------------------
# Corrupt and foreign entries: skipped and counted, never raised
# ---------------------------------------------------------------------------------------------


def _build_messy(root: Path) -> CrateDirBuilder:
    b = CrateDirBuilder(root)
    # 3 good entries
    b.add_record_a(record_a())
    b.add_record_b(record_b())
    b.add_iterate("s", iterate_payload())
    # checksum mismatch: payload bytes changed after the meta was written
    p = b.add_record_b(record_b(key="cf-1111111111111111"))
    binf = p.with_suffix(".bin")
    binf.write_bytes(binf.read_bytes().replace(b"0.1", b"0.9"))
    # meta without payload, payload without meta
    b.add_record_a(record_a(key="surv-transform-2"), write_bin=False)
    b.add_record_a(record_a(key="surv-transform-3"), write_meta=False)
    # unparsable meta, meta with a wrong field type
    p = b.add_record_a(record_a(key="surv-transform-4"))
    p.write_text("{ not json")
    b.add_record_a(record_a(key="surv-transform-5"), meta={"kind": "Done"})
    # foreign store schema; foreign payload schemas
    b.add_record_a(record_a(key="surv-transform-6"), meta={"schema_version": 2})
    b.add_record_a(record_a(key="surv-transform-7", version=2))
    b.add_iterate("s2", iterate_payload(schema=2))
    b.add_artifact(fit_artifact(schema=2))
    # the historical role name LogSlope: renamed without a schema bump, unreadable for the crate
    old = fit_artifact()
    old["terms"][1]["role"] = "LogSlope"
    old["descriptor"]["family_kind"] = "OldFamily"
    b.add_artifact(old)
    # invalid records: NaN written by serde_json as null, wrong β length, non-finite objective
    b.add_record_b(record_b(key="cf-2222222222222222", rho=[1.0, None, 2.0]))
    b.add_record_a(record_a(key="surv-transform-8", beta=[1.0]))
    b.add_artifact(
        fit_artifact(**{"global": {"outer_objective": None, "converged": True, "n_rows": 1}})
    )
    # a valid record in the wrong key directory (unreachable for the crate)
    b.add(crate_record_dir("somewhere-else"), record_a(key="surv-transform-9"))
    # unknown JSON document, non-JSON payload
    b.add(crate_record_dir("x"), {"hello": "world"})
    b.add(crate_record_dir("y"), b"\x00\x01binary")
    # in-flight temps and foreign files
    kd = root / crate_record_dir("surv-transform-0123456789abcdef")
    (kd / "r1-2.bin.tmp.4242.77.0").write_bytes(b"partial")
    (kd / "r1-2.json.touch.tmp.4242.99").write_bytes(b"{}")
    (kd / "notes.txt").write_text("hi")
    (root / "README").write_text("not a key dir")
    (root / "not-hex").mkdir()
    return b


EXPECTED_SKIPS = {
    gc.SKIP_CHECKSUM: 1,
    gc.SKIP_MISSING_PAYLOAD: 1,
    gc.SKIP_ORPHAN_PAYLOAD: 1,
    gc.SKIP_BAD_META: 2,
    gc.SKIP_FOREIGN_STORE_SCHEMA: 1,
    gc.SKIP_FOREIGN_PAYLOAD_SCHEMA: 4,
    gc.SKIP_INVALID_RECORD: 3,
    gc.SKIP_KEY_MISMATCH: 1,
    gc.SKIP_UNKNOWN_PAYLOAD: 1,
    gc.SKIP_BAD_PAYLOAD: 1,
    gc.SKIP_TEMP: 2,
    gc.SKIP_FOREIGN_FILE: 3,
}


def test_corrupt_and_foreign_entries_are_skipped_and_counted(tmp_path: Path) -> None:
    _build_messy(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    good, bad = _scan(tmp_path)
    assert sorted(e.payload_kind for e in good) == ["block", "inner", "outer"]
    counts: dict[str, int] = {}
    for s in bad:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    assert counts == EXPECTED_SKIPS
    # details name the problem
    (ck,) = [s for s in bad if s.reason == gc.SKIP_CHECKSUM]
    assert "SHA-256" in ck.detail
    (nan,) = [s for s in bad if "rho[1]" in s.detail]
    assert nan.reason == gc.SKIP_INVALID_RECORD
    # the reader never changes the crate directory
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_key_check_can_be_disabled(tmp_path: Path) -> None:
    b = CrateDirBuilder(tmp_path)
    b.add(crate_record_dir("elsewhere"), record_a())
    assert [type(x) for x in gc.scan_crate_dir(tmp_path)] == [gc.CrateSkip]
    (e,) = list(gc.scan_crate_dir(tmp_path, verify_keys=False))
    assert isinstance(e, gc.CrateEntry) and e.key == record_a()["key"]


def test_oversize_payload_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "MAX_ENTRY_BYTES", 64)
    CrateDirBuilder(tmp_path).add_record_b(record_b())
    (s,) = list(gc.scan_crate_dir(tmp_path))
    assert isinstance(s, gc.CrateSkip) and s.reason == gc.SKIP_OVERSIZE


def test_scan_rejects_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        list(gc.scan_crate_dir(tmp_path / "nope"))


def test_parse_meta_and_payload_name_the_field() -> None:
    with pytest.raises(ValueError, match="checksum_hex"):
        gc.parse_meta(
            json.dumps(
                {
                    "schema_version": 1,
                    "written_unix_secs": 1,
                    "objective": None,
                    "iteration": None,
                    "kind": "Final",
                    "checksum_hex": "zz",
                    "payload_bytes": 0,
                }
            ).encode()
        )
    with pytest.raises(ValueError, match="foreign-store-schema"):
        gc.parse_meta(b'{"schema_version": 7}')
    with pytest.raises(ValueError, match="block_beta\\[1\\]"):
        gc.parse_payload(json.dumps(record_b(block_beta=[[0.1, 0.2, 0.3], [1.0]])).encode())
    with pytest.raises(ValueError, match="bad-payload"):
        gc.parse_payload(b'{"rho": NaN, "schema": 3, "cost": 1}')


# strict JSON documents of arbitrary shape
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
_fields = st.sampled_from(
    sorted(set(record_a()) | set(record_b()) | set(iterate_payload()) | set(fit_artifact()))
)


@given(
    base=st.sampled_from([record_a(), record_b(), iterate_payload(), fit_artifact()]),
    edits=st.dictionaries(_fields, _json, max_size=3),
)
def test_parse_payload_never_raises_anything_but_valueerror(
    base: dict[str, Any], edits: dict[str, Any]
) -> None:
    doc = {**base, **edits}
    try:
        kind, payload = gc.parse_payload(json.dumps(doc).encode())
    except ValueError as exc:
        reason = str(exc).split(":", 1)[0]
        assert reason in {
            gc.SKIP_BAD_PAYLOAD,
            gc.SKIP_UNKNOWN_PAYLOAD,
            gc.SKIP_FOREIGN_PAYLOAD_SCHEMA,
            gc.SKIP_INVALID_RECORD,
        }
        return
    # whatever is accepted is finite and strict JSON again
    text = json.dumps(payload, allow_nan=False)
    assert kind in gc.KEYSPACE_OF_KIND
    floats = [
        float(v)
        for v in np.asarray(_leaves(json.loads(text)), dtype=object)
        if isinstance(v, float)
    ]
    assert all(math.isfinite(v) for v in floats)


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _leaves(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _leaves(v)]
    return [obj]


# ---------------------------------------------------------------------------------------------
# Import into a gamstore store
# ---------------------------------------------------------------------------------------------


def _memory_store(name: str) -> Any:
    import gamstore

    return gamstore.open_store(f"memory://adapters-gamcrate-{name}")


def test_import_records_and_iterates_round_trip(tmp_path: Path) -> None:
    from gamstore.records import BlockWarmStartRecord, IteratePayload, WarmStartRecord

    b = CrateDirBuilder(tmp_path)
    b.add_record_a(record_a(), objective=None, iteration=None)
    b.add_record_b(record_b())
    b.add_iterate("sess", iterate_payload(), kind="Final", objective=2172.037987, iteration=5)
    b.add_artifact(fit_artifact())
    store = _memory_store("roundtrip")
    report = gc.import_crate_dir(tmp_path, store)
    assert dict(report.imported) == {"inner": 1, "block": 1, "outer": 1, "artifact": 1}
    assert report.n_skipped == 0 and report.n_corrupt == 0

    a = store.lookup("inner", "surv-transform-0123456789abcdef")
    assert isinstance(a.record, WarmStartRecord)
    assert a.record.is_compatible("surv-transform-0123456789abcdef", 200, 4)
    np.testing.assert_array_equal(a.record.beta, [1.0, -2.0, 0.25, 3.5])
    np.testing.assert_array_equal(a.record.prev_rho, [0.4, -1.0])
    assert a.record.prev_beta is None and a.record.last_pirls_lm_lambda == 0.001
    assert a.record.created_unix_secs == 1_700_000_000  # the crate's stamp is kept

    blk = store.lookup("block", "cf-00112233aabbccdd")
    assert isinstance(blk.record, BlockWarmStartRecord)
    assert blk.record.is_compatible("cf-00112233aabbccdd", 500, ["mean", "log_sigma"], [3, 2], 3)
    np.testing.assert_array_equal(blk.record.block_beta[1], [-1.0, 1.0])
    assert blk.record.active_sets[0] is None
    np.testing.assert_array_equal(blk.record.active_sets[1], [1, 3])
    assert blk.record.inner is not None and blk.record.inner.cycles == 4

    key = gc.OUTER_KEY_PREFIX + crate_outer_dir("sess")
    o = store.lookup("outer", key)
    assert isinstance(o.record, IteratePayload)
    assert o.objective == pytest.approx(2172.037987) and o.iteration == 5
    np.testing.assert_array_equal(o.record.rho, [2.7, 5.1, -1.5])
    assert o.record.hessian.shape == (3, 3) and o.record.hessian[1, 1] == 3.0
    from gamstore.artifact import FitArtifact, TermRole, artifact_key

    (akey,) = report.keys["artifact"]
    art = store.lookup_latest("artifact", akey).record
    assert isinstance(art, FitArtifact) and art.is_usable()
    assert akey == artifact_key(art.descriptor)
    assert art.descriptor.family_kind == "gam::families::GaussianLocationScale"
    assert [t.role for t in art.terms] == [TermRole.MEAN, TermRole.SLOPE]
    np.testing.assert_array_equal(art.terms[0].raw_beta, [0.1, -0.2, 0.3])
    np.testing.assert_array_equal(art.terms[1].rho_for_term, [-0.5, 2.0])
    np.testing.assert_array_equal(art.terms[1].joint_null_rotation, [[0.6, 0.8]])
    assert art.global_.outer_objective == -42.0 and art.global_.n_rows == 500
    # the crate's JSON survives the trip (the exporter of artifact.py reproduces it)
    exported = art.to_crate_json()
    assert exported["terms"] == fit_artifact()["terms"]
    assert exported["descriptor"] == fit_artifact()["descriptor"]
    assert report.keys == {
        "inner": {"surv-transform-0123456789abcdef"},
        "block": {"cf-00112233aabbccdd"},
        "outer": {key},
        "artifact": {akey},
    }


def test_import_counts_skips_and_repeated_import_adds_nothing(tmp_path: Path) -> None:
    _build_messy(tmp_path / "crate")
    store = _memory_store("messy")
    report = gc.import_crate_dir(tmp_path / "crate", store)
    assert dict(report.imported) == {"inner": 1, "block": 1, "outer": 1}
    assert dict(report.skipped) == EXPECTED_SKIPS
    assert report.n_corrupt == sum(n for r, n in EXPECTED_SKIPS.items() if r in gc.CORRUPT_REASONS)
    doc = report.as_dict()
    assert json.loads(json.dumps(doc)) == doc
    n_entries = len(list(store.entries()))
    assert n_entries == 3

    again = gc.import_crate_dir(tmp_path / "crate", store)
    assert again.n_imported == 0
    assert again.skipped[gc.SKIP_ALREADY_PRESENT] == 3
    assert len(list(store.entries())) == n_entries

    forced = gc.import_crate_dir(tmp_path / "crate", store, skip_existing=False)
    assert forced.n_imported == 3 and len(list(store.entries())) == 2 * n_entries


def test_refused_saves_are_counted_and_read_only_store_raises(tmp_path: Path) -> None:
    import gamstore
    from gamstore.store import ReadOnlyStoreError

    b = CrateDirBuilder(tmp_path / "crate")
    b.add_record_b(record_b())
    b.add_iterate("s", iterate_payload())

    class Refusing:  # a store whose saves fail softly (the Store API returns None)
        def __init__(self) -> None:
            self.inner = _memory_store("refusing")

        def entries(self, keyspace: str | None = None) -> Any:
            return self.inner.entries(keyspace)

        def read_entry(self, info: Any) -> Any:
            return self.inner.read_entry(info)

        def save(self, *args: Any, **kwargs: Any) -> None:
            return None

    report = gc.import_crate_dir(tmp_path / "crate", Refusing())
    assert report.n_imported == 0 and report.skipped[gc.SKIP_SAVE_FAILED] == 2

    gamstore.open_store(str(tmp_path / "gs"))  # create it, then reopen read-only
    ro = gamstore.open_store(str(tmp_path / "gs"), read_only=True)
    with pytest.raises(ReadOnlyStoreError):
        gc.import_crate_dir(tmp_path / "crate", ro)


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    CrateDirBuilder(tmp_path).add_record_b(record_b())
    store = _memory_store("dry")
    report = gc.import_crate_dir(tmp_path, store, dry_run=True)
    assert report.n_imported == 1 and list(store.entries()) == []


def test_imported_store_opens_with_plain_zarr(tmp_path: Path) -> None:
    import zarr

    import gamstore
    from gamstore.store import codec

    CrateDirBuilder(tmp_path / "crate").add_record_b(record_b())
    store = gamstore.open_store(str(tmp_path / "gs"))
    assert gc.import_crate_dir(tmp_path / "crate", store).n_imported == 1
    (info,) = list(store.entries("block"))
    grp = zarr.open_group(store.zarr_store(read_only=True), path=info.path, mode="r")
    parts = codec.group_parts(grp)  # entry format 2: the packs split at offsets
    np.testing.assert_array_equal(parts["rho"], [1.5, -0.5, 2.0])


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_import_gam(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamstore.cli import main

    _build_messy(tmp_path / "crate")
    url = (tmp_path / "gs").as_uri()
    runner = CliRunner()
    res = runner.invoke(main, ["import-gam", str(tmp_path / "crate"), url, "--json"])
    assert res.exit_code == 1, res.output  # corrupt entries were found
    doc = json.loads(res.output)
    assert doc["imported"] == {"block": 1, "inner": 1, "outer": 1}
    assert doc["skipped"] == dict(sorted(EXPECTED_SKIPS.items()))

    res = runner.invoke(main, ["import-gam", str(tmp_path / "crate"), url])
    assert "imported 0 entries" in res.output and "already-present" in res.output
    assert "checksum-mismatch" in res.output and "(corrupt)" in res.output

    clean = tmp_path / "clean"
    CrateDirBuilder(clean).add_record_b(record_b(key="cf-3333333333333333"))
    res = runner.invoke(main, ["import-gam", str(clean), url, "--details"])
    assert res.exit_code == 0, res.output
    assert "imported 1 entries" in res.output

    res = runner.invoke(main, ["import-gam", str(tmp_path / "missing"), url])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_imported_cache_is_inspectable_with_xarray(tmp_path: Path) -> None:
    import gamstore

    b = CrateDirBuilder(tmp_path / "crate")
    b.add_record_b(record_b())
    b.add_artifact(fit_artifact())
    store = gamstore.open_store(str(tmp_path / "gs"))
    assert gc.import_crate_dir(tmp_path / "crate", store).n_imported == 2
    tree = gamstore.open_entry(store, "block", "cf-00112233aabbccdd")
    np.testing.assert_array_equal(tree["blocks/1"]["beta"].values, [-1.0, 1.0])
    fits = gamstore.open_fits(store)
    assert list(fits["family"].values) == ["gam::families::GaussianLocationScale"]
    np.testing.assert_array_equal(fits["beta"].values[0, 0], [0.1, -0.2, 0.3])


def test_core_imports_no_optional_fitters() -> None:
    """``import gamstore`` / ``gamstore.warmstart`` / the crate importer pull in no adapter extra."""
    code = (
        "import sys, gamstore, gamstore.warmstart, gamstore.adapters, gamstore.adapters.gamcrate\n"
        "import gamstore.cli\n"
        "bad = [m for m in ('statsmodels', 'pygam') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# Hostile crate directories: no crash, no hang, no unbounded read, nothing written for them
# ---------------------------------------------------------------------------------------------


def _hostile_crate(root: Path) -> dict[str, str]:
    """A crate with one good entry and one hostile entry per case; path -> expected reason."""
    import os

    b = CrateDirBuilder(root)
    b.add_record_b(record_b(key="cf-good000000000001"))
    want: dict[str, str] = {}

    def entry(key: str, payload: bytes | dict[str, Any], reason: str, **kw: Any) -> Path:
        meta = b.add(crate_record_dir(key), payload, **kw)
        want[f"{meta.parent.name}/{meta.stem}"] = reason
        return meta

    huge = "1" + "0" * 400  # 10**400 as a JSON integer literal (refused by the parser)
    text = json.dumps(record_b(key="cf-huge000000000001")).replace("1.5", huge, 1)
    entry("cf-huge000000000001", text.encode(), gc.SKIP_BAD_PAYLOAD)
    deep = b"[" * 10_000 + b"]" * 10_000
    entry("cf-deep000000000001", deep, gc.SKIP_BAD_PAYLOAD)
    entry(
        "cf-iter000000000001",
        record_b(key="cf-iter000000000001"),
        gc.SKIP_BAD_META,
        meta={"iteration": 2**64 - 1},
    )
    meta = entry("cf-objv000000000001", record_b(key="cf-objv000000000001"), gc.SKIP_BAD_META)
    meta.write_text(meta.read_text().replace('"objective": null', f'"objective": {huge}'))
    # a FIFO where the payload should be: opening it for reading blocks forever
    meta = entry("cf-fifo000000000001", record_b(key="cf-fifo000000000001"), gc.SKIP_SPECIAL_FILE)
    meta.with_suffix(".bin").unlink()
    os.mkfifo(meta.with_suffix(".bin"))
    # a symlink to /dev/zero: an endless read
    meta = entry("cf-zero000000000001", record_b(key="cf-zero000000000001"), gc.SKIP_SPECIAL_FILE)
    meta.with_suffix(".bin").unlink()
    meta.with_suffix(".bin").symlink_to("/dev/zero")
    # a symlinked metadata file and a FIFO metadata file
    meta = entry("cf-link000000000001", record_b(key="cf-link000000000001"), gc.SKIP_SPECIAL_FILE)
    real = root / "outside.json"
    meta.rename(real)
    meta.symlink_to(real)
    meta = entry("cf-mfif000000000001", record_b(key="cf-mfif000000000001"), gc.SKIP_SPECIAL_FILE)
    meta.unlink()
    os.mkfifo(meta)
    # a sparse 3 GiB metadata file: refused from its size, never read
    meta = entry("cf-big0000000000001", record_b(key="cf-big0000000000001"), gc.SKIP_OVERSIZE)
    with open(meta, "r+b") as fh:
        fh.truncate(3 << 30)
    return want


def test_hostile_crate_is_refused_entry_by_entry(tmp_path: Path) -> None:
    import os

    import gamstore

    want = _hostile_crate(tmp_path / "crate")
    dst = tmp_path / "gs"
    res = subprocess.run(
        [sys.executable, "-m", "gamstore", "import-gam", str(tmp_path / "crate"), str(dst)]
        + ["--json", "--details"],
        capture_output=True,
        text=True,
        timeout=120,  # a hang on a FIFO or /dev/zero fails here
        env={**os.environ, "PYTHONPATH": str(Path(gamstore.__file__).parents[1])},
    )
    assert res.returncode == 1, res.stdout + res.stderr  # damaged entries found
    assert "Traceback" not in res.stderr
    doc = json.loads(res.stdout)
    assert doc["imported"] == {"block": 1}
    got = {s["path"]: s["reason"] for s in doc["skips"]}
    for path, reason in want.items():
        assert got.get(f"{path}.json") == reason, (path, got)
    # only the good entry reached the store
    store = gamstore.open_store(dst)
    assert [e.key for e in (store.read_entry(i) for i in store.entries()) if e] == [
        "cf-good000000000001"
    ]


def test_parse_errors_are_valueerrors_for_hostile_numbers_and_nesting() -> None:
    huge = "1" + "0" * 400
    for doc in (
        json.dumps(record_b()).replace("1.5", huge, 1),
        json.dumps(iterate_payload()).replace('"cost": ', f'"cost": {huge}, "x": ', 1),
        "[" * 10_000 + "]" * 10_000,
        '{"a": ' * 5_000 + "1" + "}" * 5_000,
    ):
        with pytest.raises(ValueError):
            gc.parse_payload(doc.encode())
    text = json.dumps(iterate_payload(hessian=[1.0, 0.0, 0.0, 1.0], hessian_dim=2))
    with pytest.raises(ValueError, match="bad-payload"):
        gc.parse_payload(text.replace("[1.0, 0.0", f"[{huge}, 0.0", 1).encode())
    # behind the parser, a number that does not convert to a finite float is never used
    assert not gc._finite_number(10**400) and not gc._finite_number(True)
    assert gc._finite_number(2) and not gc._finite_number(float("nan"))
    with pytest.raises(gc._Reject, match="must be finite"):
        gc._finite(10**400, "cost")
    with pytest.raises(ValueError, match="bad-meta"):  # beyond int64: refused
        gc.parse_meta(json.dumps(_meta(iteration=2**63)).encode())
    assert gc.parse_meta(json.dumps(_meta(iteration=2**63 - 1)).encode()).iteration == 2**63 - 1


def _meta(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "written_unix_secs": 1,
        "kind": "Final",
        "checksum_hex": "0" * 64,
        "payload_bytes": 0,
    }
    doc.update(over)
    return doc


def test_cli_import_gam_refuses_a_symlinked_root(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gamstore.cli import main

    CrateDirBuilder(tmp_path / "crate").add_record_b(record_b())
    (tmp_path / "link").symlink_to(tmp_path / "crate")
    res = CliRunner().invoke(main, ["import-gam", str(tmp_path / "link"), str(tmp_path / "gs")])
    assert res.exit_code == 2 and res.output.startswith("Error: DIR is a symlink")
    assert not (tmp_path / "gs").exists()
