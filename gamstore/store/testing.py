"""Reusable conformance tests for gamstore stores (like ``zarr.testing.store.StoreTests``).

Subclass :class:`StoreConformance` in a test module and provide a ``make_store`` fixture: a
callable ``make_store(name="a", **options) -> Store`` that opens a store on a fresh root
private to the test (the same ``name`` reopens the same root, another name gives another
root)::

    class TestMemoryStore(StoreConformance):
        @pytest.fixture
        def make_store(self, request):
            tag = uuid.uuid4().hex
            return lambda name="a", **kw: gamstore.open_store(f"memory://{tag}-{name}", **kw)

Tests tamper with stored objects through the back door ``store.backend`` (plain get/put/
delete that bypass every check). Names of tests that adapt the reference checklist carry
the item number (``test_item25_final_beats_checkpoint``).

:class:`BackendConformance` is the same idea one level down, for a new
:class:`~gamstore.store.backend.Backend`: get/put round trips, read caps, create-only writes
(including a race of several handles), recursive and one-level listings, touch, deletes and
path range checks. Provide ``make_backend(name="a") -> Backend``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gamstore.records import BlockWarmStartRecord, IteratePayload
from gamstore.store import codec
from gamstore.store.backend import Backend
from gamstore.store.core import Store
from gamstore.store.errors import ReadOnlyStoreError
from gamstore.store.layout import MARKER, access_path, key_folder, key_prefix
from gamstore.store.types import Entry, VerifyReport

__all__ = [
    "BackendConformance",
    "StoreConformance",
    "block_record",
    "iterate_payload",
    "record_values_ok",
]

MakeStore = Callable[..., Store]


def block_record(
    key: str, seed: int = 0, n_blocks: int = 5, width: int = 50
) -> BlockWarmStartRecord:
    """A block record whose values are derived from (key, seed), so readers can check them."""
    base = float(sum(key.encode()) % 997) + 1000.0 * seed
    return BlockWarmStartRecord(
        key=key,
        n_rows=100 + seed,
        block_names=tuple(f"s(x{i})" for i in range(n_blocks)),
        block_dims=(width,) * n_blocks,
        rho=np.linspace(-1.0, 1.0, 4) + base,
        block_beta=tuple(np.arange(width, dtype=float) * (i + 1) + base for i in range(n_blocks)),
        created_unix_secs=1_700_000_000 + seed,  # fixed: the default is "now"
        updated_unix_secs=1_700_000_000 + seed,
    )


def record_values_ok(rec: Any, key: str, seed: int) -> bool:
    """True when ``rec`` holds exactly the values :func:`block_record` derives."""
    exp = block_record(key, seed, n_blocks=len(rec.block_beta), width=rec.block_dims[0])
    return bool(rec == exp)


def iterate_payload(cost: float, n_rho: int = 3) -> IteratePayload:
    """A small outer-iterate payload."""
    return IteratePayload(
        rho=np.arange(n_rho, dtype=float) + cost, cost=cost, eval_id=int(cost * 10) % 1000
    )


def _payload_paths(store: Store, entry_path: str) -> list[str]:
    return sorted(o.path for o in store.backend.list(entry_path))


def _entry_path(store: Store, keyspace: str, key: str, entry_id: str) -> str:
    return store._entry_path(keyspace, key_folder(keyspace, key), entry_id)


def _layout1_store(make_store: MakeStore, name: str = "a") -> Store:
    """A new store whose root says layout 1 (as an older gamstore made it): it keeps
    writing layout 1 (``<ks>/<kk>/<key64>/<entry id>``) until upgraded."""
    from gamstore.store.cache import clear_states

    s = make_store(name)
    s.backend.put(MARKER, codec.group_meta_bytes({"gamstore": {"layout": 1}}))
    clear_states()  # a new process reads the root doc again
    s = make_store(name)
    assert s.layout == 1
    return s


class StoreConformance:
    """Behaviour every backend must show. Subclasses provide the ``make_store`` fixture."""

    @pytest.fixture
    def make_store(self) -> MakeStore:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses provide make_store")

    @pytest.fixture
    def store(self, make_store: MakeStore) -> Store:
        return make_store()

    # ------------------------------------------------------------------ basics
    def test_root_group_created_once(self, make_store: MakeStore) -> None:
        s = make_store()
        doc = s.backend.get(MARKER)
        assert doc is not None
        from gamstore import _json

        parsed = _json.loads(doc)
        assert parsed["node_type"] == "group" and parsed["zarr_format"] == 3
        assert parsed["attributes"] == {"gamstore": {"layout": 2}}
        s2 = make_store()  # reopening is idempotent
        assert s2.backend.get(MARKER) == doc

    def test_roundtrip_block_record(self, store: Store) -> None:
        rec = block_record("k1")
        eid = store.save("block", "k1", rec, objective=12.5, iteration=7)
        assert isinstance(eid, str)
        e = store.lookup("block", "k1")
        assert isinstance(e, Entry)
        assert e.record == rec
        assert (e.entry_id, e.key, e.keyspace, e.kind) == (eid, "k1", "block", "checkpoint")
        assert e.objective == 12.5 and e.iteration == 7
        assert e.producer == store.producer and e.nbytes > 0

    def test_roundtrip_iterate_payload_with_empty_arrays(self, store: Store) -> None:
        p = iterate_payload(2.0)
        assert p.beta.size == 0 and p.hessian.shape == (0, 0)
        store.save("outer", "sess", p, objective=2.0)
        e = store.lookup("outer", "sess")
        assert e is not None and e.record == p
        assert e.record.hessian.shape == (0, 0)

    def test_item13_save_returns_sortable_entry_id(self, store: Store) -> None:
        ids = [store.save("block", "k", block_record("k", i)) for i in range(3)]
        assert all(isinstance(i, str) for i in ids)
        assert ids == sorted(ids)  # type: ignore[type-var]
        assert len(list(store.entries("block"))) == 3

    def test_item16_nonfinite_objective_stored_as_null(self, store: Store) -> None:
        store.save("block", "k", block_record("k"), objective=math.nan)
        e = store.lookup("block", "k")
        assert e is not None and e.objective is None
        info = next(iter(store.entries("block")))
        marker = store.read_marker(info)
        assert marker is not None and marker["objective"] is None

    def test_item21_missing_key_is_a_miss_and_creates_nothing(self, store: Store) -> None:
        before = sorted(o.path for o in store.backend.list(""))
        assert store.lookup("block", "absent") is None
        assert store.lookup_latest("inner", "absent") is None
        assert sorted(o.path for o in store.backend.list("")) == before
        assert store.stats().misses == 2

    def test_item12_keyspaces_are_disjoint(self, store: Store) -> None:
        store.save("block", "same", block_record("same"))
        assert store.lookup("inner", "same") is None
        assert store.lookup("block", "same") is not None
        assert key_folder("block", "same") != key_folder("inner", "same")

    # ------------------------------------------------------------------ ranking
    def test_item25_final_beats_checkpoint(self, store: Store) -> None:
        store.save("block", "k", block_record("k", 1), objective=10.0, kind="final")
        store.save("block", "k", block_record("k", 2), objective=1.0)
        e = store.lookup("block", "k")
        assert e is not None and e.kind == "final" and e.objective == 10.0

    def test_item26_newest_final_wins(self, store: Store) -> None:
        store.save("block", "k", block_record("k", 1), objective=1.0, kind="final")
        store.save("block", "k", block_record("k", 2), objective=50.0, kind="final")
        e = store.lookup("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 2)

    def test_item27_checkpoints_by_objective_with_tie(self, store: Store) -> None:
        store.save("block", "k", block_record("k", 1), objective=5.0)
        store.save("block", "k", block_record("k", 2), objective=3.0)
        store.save("block", "k", block_record("k", 3), objective=4.0)
        e = store.lookup("block", "k")
        assert e is not None and e.objective == 3.0 and record_values_ok(e.record, "k", 2)
        store.save("block", "k", block_record("k", 4), objective=3.0 + 1e-13)  # tie -> newer
        e = store.lookup("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 4)

    def test_item27_objective_beats_none_and_newer_without(self, store: Store) -> None:
        store.save("block", "k", block_record("k", 1))
        store.save("block", "k", block_record("k", 2), objective=99.0)
        store.save("block", "k", block_record("k", 3))
        e = store.lookup("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 2)
        store.save("block", "j", block_record("j", 1))
        store.save("block", "j", block_record("j", 2))
        e = store.lookup("block", "j")
        assert e is not None and record_values_ok(e.record, "j", 2)

    def test_item28_latest_ignores_objective_and_kind(self, store: Store) -> None:
        store.save("block", "k", block_record("k", 1), objective=1.0, kind="final")
        store.save("block", "k", block_record("k", 2), objective=100.0)
        e = store.lookup_latest("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 2)
        best = store.lookup("block", "k")
        assert best is not None and record_values_ok(best.record, "k", 1)

    def test_item29_foreign_final_reads_as_checkpoint(self, make_store: MakeStore) -> None:
        other = make_store(producer="someone-else")
        other.save("block", "k", block_record("k", 1), objective=10.0, kind="final")
        mine = make_store()
        mine.save("block", "k", block_record("k", 2), objective=1.0)
        e = mine.lookup("block", "k")
        # the foreign final is just a checkpoint here, so the lower objective wins
        assert e is not None and e.objective == 1.0
        latest = mine.lookup_latest("block", "k")
        assert latest is not None and latest.kind == "checkpoint"
        only_final = make_store(producer="someone-else").lookup("block", "k")
        assert only_final is not None and only_final.kind == "final"
        # payload and objective unchanged by the downgrade
        infos = [i for i in mine.entries("block")]
        foreign = [mine.read_entry(i) for i in infos]
        kinds = sorted(e.kind for e in foreign if e is not None)
        assert kinds == ["checkpoint", "checkpoint"]

    def test_item30_producer_identity_stable_and_nonempty(self, make_store: MakeStore) -> None:
        a, b = make_store(), make_store()
        assert a.producer and a.producer == b.producer

    # ------------------------------------------------------------------ visibility / caches
    def test_item34_new_entry_by_other_handle_is_seen(self, make_store: MakeStore) -> None:
        a, b = make_store(), make_store()
        a.save("block", "k", block_record("k", 1), objective=5.0)
        e = b.lookup("block", "k")
        assert e is not None and e.objective == 5.0
        a.save("block", "k", block_record("k", 2), objective=1.0)
        e = b.lookup("block", "k")
        assert e is not None and e.objective == 1.0 and record_values_ok(e.record, "k", 2)

    def test_item35_roots_do_not_share_caches(self, make_store: MakeStore) -> None:
        a, b = make_store("a"), make_store("b")
        a.save("block", "k", block_record("k", 1))
        assert a.lookup("block", "k") is not None
        assert b.lookup("block", "k") is None

    def test_repeated_hit_served_from_cache(self, store: Store) -> None:
        store.save("block", "k", block_record("k"))
        assert store.lookup("block", "k") is not None
        gets = store.stats().requests["get"]
        for _ in range(5):
            e = store.lookup("block", "k")
            assert e is not None and record_values_ok(e.record, "k", 0)
        assert store.stats().requests["get"] == gets

    def test_deleted_entry_not_served_from_cache(self, make_store: MakeStore) -> None:
        a, b = make_store(), make_store()
        a.save("block", "k", block_record("k", 1), objective=1.0)
        a.save("block", "k", block_record("k", 2), objective=2.0)
        assert b.lookup("block", "k") is not None
        best = next(i for i in b.entries("block") if b.read_marker(i)["objective"] == 1.0)  # type: ignore[index]
        assert a.delete_entry(best)
        e = b.lookup("block", "k")
        assert e is not None and e.objective == 2.0

    # ------------------------------------------------------------------ commit protocol
    def test_item15_payload_without_marker_is_invisible(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        store.backend.delete(f"{path}/{MARKER}")
        fresh = type(store)(store.backend, producer="reader-2")
        assert fresh.lookup("block", "k") is None
        assert list(fresh.entries("block")) == []
        report = store.gc(grace=0)
        assert report.payloads == 1
        assert _payload_paths(store, path) == []

    def test_gc_respects_grace(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        store.backend.delete(f"{path}/{MARKER}")
        assert store.gc(grace=3600).payloads == 0
        assert _payload_paths(store, path) != []

    def test_item19_key_folder_never_deleted_listing_still_works(self, store: Store) -> None:
        for i in range(3):
            store.save("block", "k", block_record("k", i))
        for info in list(store.entries("block")):
            store.delete_entry(info)
        assert store.lookup("block", "k") is None
        store.gc(grace=0)
        eid = store.save("block", "k", block_record("k", 9))
        e = store.lookup("block", "k")
        assert e is not None and e.entry_id == eid

    def test_delete_entry_removes_marker_and_payload(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        assert store.lookup("block", "k") is not None
        store.flush()
        info = next(iter(store.entries("block")))
        assert info.entry_id == eid
        assert store.delete_entry(info)
        assert _payload_paths(store, info.path) == []
        assert store.backend.get(access_path(info.path)) is None
        assert store.lookup("block", "k") is None

    # ------------------------------------------------------------------ corruption
    @pytest.mark.parametrize("how", ["delete", "truncate", "flip", "marker_json"])
    def test_corruption_of_every_object_is_a_miss_or_previous(
        self, make_store: MakeStore, how: str
    ) -> None:
        writer = make_store()
        writer.save("block", "k", block_record("k", 1, n_blocks=2), objective=2.0)
        victim = writer.save("block", "k", block_record("k", 2, n_blocks=2), objective=1.0)
        assert victim is not None
        path = _entry_path(writer, "block", "k", victim)
        objects = _payload_paths(writer, path)
        # entry format 2: values and offsets (metadata + chunk each) and the marker
        assert f"{path}/{MARKER}" in objects and len(objects) == 5
        snapshot = {o: writer.backend.get(o) for o in objects}
        for obj in objects:
            if how == "marker_json" and not obj.endswith(f"{path}/{MARKER}"):
                continue
            original = snapshot[obj]
            assert original is not None
            if how == "delete":
                writer.backend.delete(obj)
            elif how == "truncate":
                writer.backend.put(obj, original[: len(original) // 2])
            elif how == "flip":
                pos = len(original) // 2
                writer.backend.put(
                    obj, original[:pos] + bytes([original[pos] ^ 0x10]) + original[pos + 1 :]
                )
            else:
                writer.backend.put(obj, b"{not json")
            reader = type(writer)(writer.backend, producer=f"reader-{how}")
            reader._state.forget(path)
            e = reader.lookup("block", "k")
            assert e is None or (e.objective == 2.0 and record_values_ok(e.record, "k", 1)), (
                obj,
                e,
            )
            assert reader.backend.get(f"{path}/{MARKER}") is None, f"not cleaned up: {obj}"
            if how == "delete" and obj.endswith(f"{path}/{MARKER}"):
                assert reader.stats().corrupt == 0  # just uncommitted now: gc's business
            else:
                assert reader.stats().corrupt >= 1
            # restore the victim (payload first, marker last) for the next object
            for o, data in snapshot.items():
                if not o.endswith(f"{path}/{MARKER}"):
                    assert data is not None
                    writer.backend.put(o, data)
            marker = snapshot[f"{path}/{MARKER}"]
            assert marker is not None
            writer.backend.put(f"{path}/{MARKER}", marker)
            writer._state.forget(path)
            again = type(writer)(writer.backend, producer="check").lookup("block", "k")
            assert again is not None and record_values_ok(again.record, "k", 2)

    def test_backend_reads_are_capped(self, store: Store) -> None:
        be = store.backend
        be.put("x/big", b"a" * 100_000)
        be.put("x/empty", b"")
        assert be.get("x/big", 10) == b"a" * 11  # cap + 1: oversize is detectable
        assert be.get("x/big") == b"a" * 100_000
        assert be.get("x/empty", 10) == b""
        assert be.get("x/missing", 10) is None
        assert be.get_many(["x/big", "x/missing"], [0, 5]) == [b"a", None]

    def test_oversize_object_is_a_miss_without_loading_it(self, store: Store) -> None:
        store.save("block", "k", block_record("k", 1), objective=2.0)
        eid = store.save("block", "k", block_record("k", 2), objective=1.0)
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        chunk = store.backend.get(f"{path}/values/0")
        assert chunk is not None
        store.backend.put(f"{path}/values/0", chunk + b"\0" * 1_000_000)
        store._state.forget(path)
        gets = store.stats().bytes_read
        e = store.lookup("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 1)
        assert store.stats().bytes_read - gets < 100_000  # the 1 MB object was not read

    def test_foreign_marker_is_a_miss(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        store.backend.put(f"{path}/{MARKER}", codec.group_meta_bytes({"other": 1}))
        store._state.forget(path)
        assert store.lookup("block", "k") is None
        assert store.stats().corrupt == 1

    def test_item24_other_schema_is_deleted_and_never_returned(self, store: Store) -> None:
        from gamstore import _json

        eid = store.save("block", "k", block_record("k"))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        doc = _json.loads(store.backend.get(f"{path}/{MARKER}"))  # type: ignore[arg-type]
        doc["attributes"]["gamstore"]["schema"] = "gamstore-schema-0"
        store.backend.put(f"{path}/{MARKER}", _json.dumps_bytes(doc))
        store._state.forget(path)
        assert store.lookup("block", "k") is None
        assert store.backend.get(f"{path}/{MARKER}") is None

    def test_verify_reports_and_fixes(self, store: Store) -> None:
        store.save("block", "a", block_record("a"))
        eid = store.save("block", "b", block_record("b"))
        assert eid is not None
        path = _entry_path(store, "block", "b", eid)
        chunk = f"{path}/values/0"
        data = store.backend.get(chunk)
        assert data is not None
        store.backend.put(chunk, data[:-1] + bytes([data[-1] ^ 1]))
        rep = store.verify()
        assert rep.checked == 2 and rep.ok == 1 and rep.corrupt == (path,) and rep.fixed == 0
        assert store.backend.get(f"{path}/{MARKER}") is not None  # report only
        rep = store.verify(fix=True)
        assert rep.fixed == 1
        assert store.verify().checked == 1
        # an unparsable marker is reported too (not silently dropped), and fixed on request
        eid = store.save("block", "c", block_record("c"))
        assert eid is not None
        bad = _entry_path(store, "block", "c", eid)
        store.backend.put(f"{bad}/{MARKER}", b"{")
        store._state.forget(bad)
        rep = store.verify()
        assert rep.corrupt == (bad,) and rep.checked == 2
        assert store.backend.get(f"{bad}/{MARKER}") is not None
        assert store.verify(fix=True).fixed == 1
        assert store.verify().corrupt == ()

    @pytest.mark.parametrize(
        ("damage", "expected"),
        [
            ("flip_chunk", "array 'values': chunk values/0 fails its BLAKE3 digest check"),
            ("drop_chunk", "array 'offsets': chunk offsets/0 missing"),
            ("grow_chunk", "array 'values': chunk values/0 has more than 84 bytes, expected 84"),
            ("cut_chunk", "array 'values': chunk values/0 has 83 bytes, expected 84"),
            ("array_meta", "array 'values': object values/zarr.json differs from the metadata"),
            ("drop_meta", "array 'offsets': object offsets/zarr.json missing"),
            ("parts_shape", "array 'offsets' does not match the parts' shapes"),
            ("marker_json", "marker: invalid JSON"),
            ("marker_kind", "marker: unknown kind 'done'"),
        ],
    )
    def test_item13_10_verify_says_which_object_and_check(
        self, store: Store, damage: str, expected: str
    ) -> None:
        store.save("block", "fine", block_record("fine", n_blocks=2))
        eid = store.save("block", "k", block_record("k", n_blocks=2, width=3))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        be = store.backend
        if damage in ("flip_chunk", "grow_chunk", "cut_chunk"):
            data = be.get(f"{path}/values/0")
            # the packed float64 arrays: 2 blocks x 3 + 4 rho, + crc32c
            assert data is not None and len(data) == 84
            new = {
                "flip_chunk": data[:3] + bytes([data[3] ^ 1]) + data[4:],
                "grow_chunk": data + b"\0\0",
                "cut_chunk": data[:-1],
            }[damage]
            be.put(f"{path}/values/0", new)
        elif damage == "drop_chunk":
            be.delete(f"{path}/offsets/0")
        elif damage == "array_meta":
            meta = be.get(f"{path}/values/zarr.json")
            assert meta is not None
            be.put(f"{path}/values/zarr.json", meta.replace(b'"value"', b'"tau"'))
        elif damage == "drop_meta":
            be.delete(f"{path}/offsets/zarr.json")
        elif damage == "parts_shape":  # the marker's parts no longer add up to the offsets
            from gamstore import _json

            doc = _json.loads(be.get(f"{path}/{MARKER}") or b"")
            doc["attributes"]["gamstore"]["parts"]["block_beta/0"]["shape"] = [2]
            be.put(f"{path}/{MARKER}", _json.dumps_bytes(doc))
        else:
            marker = be.get(f"{path}/{MARKER}")
            assert marker is not None
            bad = b"{" if damage == "marker_json" else marker.replace(b'"checkpoint"', b'"done"')
            be.put(f"{path}/{MARKER}", bad)
        store._state.forget(path)
        rep = store.verify()
        assert rep.corrupt == (path,) and rep.ok == 1
        (why,) = rep.reasons
        assert why.startswith(expected), why

    # ------------------------------------------------------------------ bad input
    def _assert_nothing_written(self, store: Store, before: list[str]) -> None:
        assert sorted(o.path for o in store.backend.list("")) == before

    def test_bad_input_rejected_nothing_written(self, store: Store) -> None:
        before = sorted(o.path for o in store.backend.list(""))
        rec = block_record("k")
        with pytest.raises(ValueError, match="keyspace"):
            store.save("nope", "k", rec)
        with pytest.raises(ValueError, match="key"):
            store.save("block", "", rec)
        with pytest.raises(TypeError, match="key"):
            store.save("block", 3, rec)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="kind"):
            store.save("block", "k", rec, kind="done")
        with pytest.raises(ValueError, match="iteration"):
            store.save("block", "k", rec, iteration=-1)
        with pytest.raises(TypeError, match="objective"):
            store.save("block", "k", rec, objective="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="record"):
            store.save("block", "k", {"rho": [1.0]})
        with pytest.raises(ValueError, match="keyspace"):
            store.lookup("nope", "k")
        self._assert_nothing_written(store, before)

    def test_nonfinite_and_wrong_shapes_rejected(self, store: Store) -> None:
        from gamstore.records import ArrayPart, RecordParts

        before = sorted(o.path for o in store.backend.list(""))

        class Raw:
            RECORD_TYPE = "raw_test"

            def __init__(self, arrays: dict[str, Any]) -> None:
                self.arrays = arrays

            def to_parts(self) -> Any:
                return RecordParts(fields={}, arrays=self.arrays)

        with pytest.raises(ValueError, match=r"arrays\['rho'\]: contains non-finite"):
            store.save("block", "k", Raw({"rho": ArrayPart(np.array([1.0, np.nan]), ("rho",))}))
        with pytest.raises(ValueError, match=r"arrays\['rho'\]: contains non-finite"):
            store.save("block", "k", Raw({"rho": ArrayPart(np.array([np.inf]), ("rho",))}))
        with pytest.raises(ValueError, match="nests"):
            store.save(
                "block",
                "k",
                Raw({"b": ArrayPart(np.ones(2), ("n",)), "b/0": ArrayPart(np.ones(2), ("n",))}),
            )

        class Part:  # duck-typed part with inconsistent dims (ArrayPart would refuse it)
            def __init__(self, data: np.ndarray, dims: tuple[str, ...]) -> None:
                self.data, self.dims = data, dims

        class Loose(Raw):
            def to_parts(self) -> Any:
                return type("P", (), {"fields": {}, "arrays": self.arrays})()

        with pytest.raises(ValueError, match="dimension names"):
            store.save("block", "k", Loose({"rho": Part(np.ones((2, 2)), ("rho",))}))
        with pytest.raises(TypeError, match="dtype"):
            store.save("block", "k", Loose({"rho": Part(np.ones(2, dtype=np.float32), ("rho",))}))
        with pytest.raises(ValueError, match="names"):
            store.save("block", "k", Loose({"../x": Part(np.ones(2), ("rho",))}))
        self._assert_nothing_written(store, before)

    def test_oversize_record_rejected(self, store: Store) -> None:
        before = sorted(o.path for o in store.backend.list(""))
        big = IteratePayload(rho=np.ones(3), cost=1.0, eval_id=1, beta=np.ones(2_100_000))
        with pytest.raises(ValueError, match="cap"):
            store.save("outer", "big", big)
        self._assert_nothing_written(store, before)

    # ------------------------------------------------------------------ read-only
    def test_read_only_refuses_writes(self, make_store: MakeStore) -> None:
        w = make_store()
        w.save("block", "k", block_record("k"))
        ro = make_store(read_only=True)
        assert ro.read_only
        before = sorted(o.path for o in ro.backend.list(""))
        e = ro.lookup("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 0)
        ro.flush()
        info = next(iter(ro.entries("block")))
        for call in (
            lambda: ro.save("block", "k", block_record("k")),
            lambda: ro.evict(),
            lambda: ro.gc(),
            lambda: ro.verify(fix=True),
            lambda: ro.delete_entry(info),
            lambda: ro.put_raw("x", b"1"),
            lambda: ro.session("s").finalize(iterate_payload(1.0), 1.0),
        ):
            with pytest.raises(ReadOnlyStoreError, match="read-only"):
                call()
        assert sorted(o.path for o in ro.backend.list("")) == before  # no touches either

    # ------------------------------------------------------------------ TTL / access
    def test_item31_hit_records_access_without_changing_created(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        info0 = next(iter(store.entries("block")))
        assert info0.last_access is None
        assert store.lookup("block", "k") is not None
        store.flush()
        fresh = type(store)(store.backend, producer="lister")
        fresh._state.last_access.clear()
        info1 = next(iter(fresh.entries("block")))
        assert info1.last_access is not None and info1.created == info0.created
        assert info1.entry_id == eid

    def test_touches_are_rate_limited(self, store: Store) -> None:
        store.save("block", "k", block_record("k"))
        for _ in range(10):
            store.lookup("block", "k")
        store.flush()
        assert store.stats().requests["touch"] == 1

    def test_item32_ttl_expiry_and_refresh(self, make_store: MakeStore) -> None:
        s = make_store(ttl=100.0, touch_interval=0.0)
        s.save("block", "old", block_record("old"))
        s.save("block", "read", block_record("read"))
        t0 = s._clock()
        s._clock = lambda: t0 + int(60e9)
        assert s.lookup("block", "read") is not None  # refreshes "read"
        s.flush()
        s._clock = lambda: t0 + int(130e9)
        assert s.lookup("block", "old") is None  # expired and deleted
        assert s.lookup("block", "read") is not None  # 70 s since its last access
        assert s.stats().expired == 1
        assert [i.path for i in s.entries("block")] == [
            i.path for i in s.entries("block") if "old" not in i.path
        ]
        assert len(list(s.entries("block"))) == 1

    def test_item32_ttl_zero_disables(self, make_store: MakeStore) -> None:
        s = make_store(ttl=0)
        s.save("block", "k", block_record("k"))
        t0 = s._clock()
        s._clock = lambda: t0 + int(1e9 * 86400 * 3650)
        assert s.lookup("block", "k") is not None
        assert s.evict() == 0

    def test_ttl_uses_other_processes_touches(self, make_store: MakeStore) -> None:
        a = make_store(ttl=100.0)
        a.save("block", "k", block_record("k"))
        b = make_store(ttl=100.0, producer="other-reader", touch_interval=0.0)
        b._state.last_access.clear()
        assert b.lookup("block", "k") is not None
        b.flush()
        a._state.last_access.clear()
        t_touch = a.backend.mtime(access_path(next(iter(a.entries("block"))).path))
        assert t_touch is not None
        a._state.last_access.clear()
        a._clock = lambda: t_touch + int(99e9)
        assert a.lookup("block", "k") is not None

    # ------------------------------------------------------------------ eviction
    def test_item36_eviction_order(self, make_store: MakeStore) -> None:
        s = make_store(budget_bytes=1 << 40, touch_interval=0.0)
        for k in ("a", "b", "c", "d"):
            s.save("block", k, block_record(k))
        size = max(i.nbytes for i in s.entries("block"))
        assert s.lookup("block", "a") is not None  # a accessed -> evicted last
        s.flush()
        s.budget_bytes = 2 * size + size // 2
        removed = s.evict()
        assert removed == 2
        left = {s.read_marker(i)["key"] for i in s.entries("block")}  # type: ignore[index]
        assert left == {"a", "d"}  # never-accessed oldest (b, c) went first

    def test_item38_size_bound_holds(self, make_store: MakeStore) -> None:
        s = make_store(budget_bytes=4096)
        keys = [f"key{i}" for i in range(20)]
        for k in keys:
            s.save("outer", k, iterate_payload(float(len(k))))
        total = sum(i.nbytes for i in s.entries())
        assert total <= 2 * 4096
        assert s.lookup("outer", keys[-1]) is not None
        assert s.lookup("outer", keys[0]) is None
        s.evict()
        assert sum(i.nbytes for i in s.entries()) <= 4096
        assert s.stats().evictions > 0

    def test_item20_first_save_and_every_nth_sweep(self, make_store: MakeStore) -> None:
        s = make_store(sweep_every=4)
        s.save("block", "k0", block_record("k0"))
        assert s.stats().sweeps == 1
        for i in range(1, 8):
            s.save("block", f"k{i}", block_record(f"k{i}"))
        assert s.stats().sweeps == 2  # saves #0 and #4 (throttle shared by handles)
        t = make_store(sweep_every=4)
        t.save("block", "k8", block_record("k8"))
        assert t.stats().sweeps == 1  # save #8 of this root

    def test_stats_counts(self, store: Store) -> None:
        store.save("block", "k", block_record("k"))
        store.lookup("block", "k")
        store.lookup("block", "nope")
        st = store.stats()
        assert (st.saves, st.hits, st.misses) == (1, 1, 1)
        assert st.bytes_written > 0 and st.bytes_read > 0
        d = st.as_dict()
        assert d["requests"]["put_if_absent"] >= 1

    # ------------------------------------------------------------------ sessions
    def test_item40_checkpoint_rate_limit(self, store: Store) -> None:
        sess = store.session("fit-1")
        assert sess.checkpoint(iterate_payload(5.0), 5.0, 1)
        assert not sess.checkpoint(iterate_payload(5.0), 5.0, 2)  # no improvement, < 2 s
        assert not sess.checkpoint(iterate_payload(5.0), None, 3)  # None never improves
        assert sess.checkpoint(iterate_payload(4.0), 4.0, 4)  # improves
        t = sess._monotonic()
        sess._monotonic = lambda: t + 2.5
        assert sess.checkpoint(iterate_payload(6.0), 6.0, 5)  # interval passed
        assert len(list(store.entries("outer"))) == 1  # one slot

    def test_item41_finalize_bypasses_rate_limit(self, store: Store) -> None:
        sess = store.session("fit-1")
        assert sess.checkpoint(iterate_payload(5.0), 5.0, 1)
        assert sess.finalize(iterate_payload(4.5), 4.5, 9)
        e = sess.load()
        assert e is not None and e.kind == "final" and e.iteration == 9
        assert e.record == iterate_payload(4.5)
        assert len(list(store.entries("outer"))) == 1

    def test_item14_session_slot_leaves_exactly_one_entry(self, store: Store) -> None:
        # adapted: entries are immutable; a session writes a new entry, then drops its old one
        sess = store.session("fit")
        for i in range(4):
            assert sess.checkpoint(iterate_payload(10.0 - i), 10.0 - i, i)
        infos = list(store.entries("outer"))
        assert len(infos) == 1 and infos[0].entry_id == sess.entry_id

    def test_item39_session_entries_are_sortable_ids(self, store: Store) -> None:
        from gamstore.store.ids import ENTRY_ID_RE, parse_created

        sess = store.session("fit")
        sess.checkpoint(iterate_payload(1.0), 1.0, 1)
        first = sess.entry_id
        sess.finalize(iterate_payload(0.5), 0.5, 2)
        assert first is not None and sess.entry_id is not None
        assert ENTRY_ID_RE.match(sess.entry_id) and sess.entry_id > first
        assert parse_created(sess.entry_id) is not None

    def test_item22_tampered_payload_is_a_miss_and_deleted(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        chunk = store.backend.get(f"{path}/values/0")
        assert chunk is not None
        store.backend.put(f"{path}/values/0", chunk[:8] + bytes([chunk[8] ^ 1]) + chunk[9:])
        store._state.forget(path)
        assert store.lookup("block", "k") is None
        assert _payload_paths(store, path) == []  # marker and payload gone

    def test_item23_unparsable_marker_deleted_with_payload(self, store: Store) -> None:
        eid = store.save("block", "k", block_record("k"))
        assert eid is not None
        path = _entry_path(store, "block", "k", eid)
        store.backend.put(f"{path}/{MARKER}", b"\x00garbage")
        store._state.forget(path)
        assert store.lookup("block", "k") is None
        assert _payload_paths(store, path) == []

    def test_item42_second_session_sees_first(self, make_store: MakeStore) -> None:
        a = make_store().session("fit")
        a.checkpoint(iterate_payload(3.0), 3.0, 1)
        b = make_store(producer="process-2").session("fit")
        e = b.load()
        assert e is not None and e.objective == 3.0

    # ------------------------------------------------------------------ interop
    def test_plain_zarr_reads_entry(self, store: Store) -> None:
        import zarr

        rec = block_record("k")
        store.save("block", "k", rec, objective=1.5)
        info = next(iter(store.entries("block")))
        g = zarr.open_group(store.zarr_store(), path=info.path, mode="r", zarr_format=3)
        attrs: Any = g.attrs.asdict()["gamstore"]
        assert attrs["key"] == "k" and attrs["objective"] == 1.5
        # entry format 2: the packs are plain arrays with dimension names, split at offsets
        for name, dim in (("values", "value"), ("offsets", "part_edge")):
            arr = g[name]
            assert isinstance(arr, zarr.Array)
            assert arr.metadata.dimension_names == (dim,)  # type: ignore[union-attr]
        parts = codec.group_parts(g)
        np.testing.assert_array_equal(parts["rho"], rec.rho)
        for i, beta in enumerate(rec.block_beta):
            np.testing.assert_array_equal(parts[f"block_beta/{i}"], beta)
            assert attrs["parts"][f"block_beta/{i}"]["dims"] == [f"coef_{i}"]

    def _walk_zarr(self, store: Store) -> dict[str, Any]:
        """Every node of the store as plain zarr sees it, with ZarrUserWarning an error."""
        import warnings

        import zarr

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            root = zarr.open_group(store.zarr_store(), mode="r", zarr_format=3)
            nodes = dict(root.members(max_depth=None))
            root.tree()  # renders without warnings too
        return nodes

    def test_item13_7_every_level_is_a_zarr_group(self, store: Store) -> None:
        import zarr

        from gamstore.store.layout import ACCESS_DIR, CATALOG_DIR

        eid = store.save("block", "k", block_record("k", n_blocks=2), objective=1.0)
        store.save("outer", "s", iterate_payload(2.0))
        assert eid is not None and store.lookup("block", "k") is not None
        store.flush()  # writes a touch under .access
        store.put_raw("v1/zarr.json", b"{}")  # a (broken) catalog object under .catalog
        nodes = self._walk_zarr(store)
        folder = key_folder("block", "k")
        kk = folder[:2]
        levels = {
            "block": {"level": "keyspace", "keyspace": "block"},
            f"block/{kk}": {"level": "shard", "keyspace": "block", "shard": kk},
        }
        for path, attrs in levels.items():
            node = nodes[path]
            assert isinstance(node, zarr.Group)
            assert node.attrs.asdict() == {"gamstore": attrs}
        # layout 2: the entry is a group right inside its shard, no key folder
        assert isinstance(nodes[f"block/{kk}/{folder}.{eid}"], zarr.Group)
        assert f"block/{kk}/{folder}.{eid}/values" in nodes
        assert f"block/{kk}/{folder}" not in nodes
        outer = key_folder("outer", "s")
        assert nodes[f"outer/{outer[:2]}"].attrs["gamstore"]["level"] == "shard"
        # the bookkeeping folders are leaves (zero-length arrays): nothing below is walked
        for top in (ACCESS_DIR, CATALOG_DIR):
            leaf = nodes[top]
            assert isinstance(leaf, zarr.Array) and leaf.shape == (0,)
            leaf_attrs: Any = leaf.attrs.asdict()["gamstore"]
            assert leaf_attrs["level"] == top.lstrip(".")
            assert not [p for p in nodes if p.startswith(f"{top}/")]
        assert [p for p, _, _ in store.list_raw()] == ["v1/zarr.json"]

    def test_item13_7_shard_folder_opens_as_a_datatree(self, store: Store) -> None:
        import warnings

        import xarray as xr

        rec = block_record("k", n_blocks=2)
        eid = store.save("block", "k", rec, objective=1.0, kind="final")
        assert eid is not None
        folder = key_folder("block", "k")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tree = xr.open_datatree(
                store.zarr_store(), engine="zarr", group=f"block/{folder[:2]}", consolidated=False
            )
        assert tree.attrs["gamstore"]["level"] == "shard"
        node = tree[f"{folder}.{eid}"]
        assert node["values"].dims == ("value",) and node["offsets"].dims == ("part_edge",)
        parts = codec.group_parts(node)  # the packs split at offsets, as the parts say
        np.testing.assert_array_equal(parts["rho"], rec.rho)
        np.testing.assert_array_equal(parts["block_beta/1"], rec.block_beta[1])

    def test_item13_7_level_docs_written_once_per_folder(self, make_store: MakeStore) -> None:
        from gamstore.store.cache import clear_states

        s = make_store()
        reqs = s.backend.requests
        s.save("block", "a", block_record("a"))  # keyspace and shard docs + marker
        assert reqs["put_if_absent"] == 1 + 3  # + the root doc when the store opened
        kk = key_folder("block", "a")[:2]
        other = next(f"b{i}" for i in range(999) if key_folder("block", f"b{i}")[:2] != kk)
        same = next(f"c{i}" for i in range(999) if key_folder("block", f"c{i}")[:2] == kk)
        # layout 2: a new key in a known shard writes no level doc (no key folder)
        for key, extra in [("a", 0), ("a", 0), (same, 0), (other, 1), (other, 0)]:
            before = reqs["put_if_absent"]
            assert s.save("block", key, block_record(key)) is not None
            assert reqs["put_if_absent"] - before == 1 + extra, key
        docs = {p: s.backend.get(f"{p}/{MARKER}") for p in ["block", f"block/{kk}"]}
        # a new process meets existing docs: create-only, so they stay as they are
        clear_states()
        t = make_store()
        before = t.backend.requests["put_if_absent"]
        assert t.save("block", "a", block_record("a", 1)) is not None
        assert t.backend.requests["put_if_absent"] - before == 1 + 2
        assert s.backend.get(f"block/{kk}/{MARKER}") == docs[f"block/{kk}"]
        assert s.backend.get(f"block/{MARKER}") == docs["block"]

    def test_put_many_if_absent_is_create_only_and_in_order(self, store: Store) -> None:
        be = store.backend
        assert be.put_if_absent("block/aa/zarr.json", b"first")
        got = be.put_many_if_absent(
            {"block/aa/zarr.json": b"second", "block/aa/x/zarr.json": b"new", "y/zarr.json": b"y"}
        )
        assert got == [False, True, True]
        assert be.get("block/aa/zarr.json") == b"first"
        assert be.get("block/aa/x/zarr.json") == b"new" and be.get("y/zarr.json") == b"y"
        assert be.put_many_if_absent({}) == []

    # ------------------------------------------------------------------ export / import
    def test_export_import_round_trip_is_byte_identical(self, make_store: MakeStore) -> None:
        src, dst = make_store("a"), make_store("b")
        src.save("block", "k", block_record("k", 1), objective=3.0, kind="final")
        src.save("outer", "sess", iterate_payload(2.0), objective=2.0)
        src.flush()
        for info in sorted(src.entries(), key=lambda i: i.path):
            ex = src.export_entry(info)
            assert ex.info == info and ex.attrs["entry_id"] == info.entry_id
            arrays = {n: np.asarray(p.data) for n, p in ex.arrays.items()}
            res = dst.import_entry(ex.attrs, arrays, path=info.path)
            assert (res.status, res.path, res.reason) == ("imported", info.path, "")
            # a second import leaves the entry alone
            assert dst.import_entry(ex.attrs, arrays).status == "exists"
            got = {o.path: src.backend.get(o.path) for o in src.backend.list(info.path)}
            assert got == {o.path: dst.backend.get(o.path) for o in dst.backend.list(info.path)}
        e = dst.lookup("block", "k")
        assert e is not None and record_values_ok(e.record, "k", 1) and e.kind == "final"
        for ks in ("block", "outer"):  # every level is a Zarr group, as after a save
            assert dst.backend.get(f"{ks}/{MARKER}") is not None

    def test_import_refuses_bad_entries_and_writes_nothing(self, make_store: MakeStore) -> None:
        src, dst = make_store("a"), make_store("b")
        src.save("block", "k", block_record("k", 1), objective=3.0)
        src.flush()
        info = next(iter(src.entries("block")))
        ex = src.export_entry(info)
        arrays = {n: np.asarray(p.data) for n, p in ex.arrays.items()}
        name = next(n for n, a in arrays.items() if a.size)
        before = sorted(o.path for o in dst.backend.list(""))

        def attrs_with(**changes: Any) -> dict[str, Any]:
            import copy

            out = copy.deepcopy(ex.attrs)
            out.update(changes)
            return out

        other = key_folder("block", "other")
        bad_path = f"block/{other[:2]}/{other}.{info.entry_id}"
        cases: list[tuple[dict[str, Any], dict[str, np.ndarray], str | None, str]] = [
            (ex.attrs, {**arrays, name: arrays[name] + 1.0}, None, "digest"),
            (ex.attrs, {**arrays, name: arrays[name][:-1]}, None, "shape"),
            (ex.attrs, {n: a for n, a in arrays.items() if n != name}, None, "differ"),
            (attrs_with(key="other"), arrays, info.path, "key folder"),
            (ex.attrs, arrays, bad_path, "key folder"),
            (attrs_with(entry_id="not-an-id"), arrays, None, "entry id"),
            (attrs_with(created=1), arrays, None, "creation time"),
            (attrs_with(keyspace="nope"), arrays, None, "keyspace"),
            (attrs_with(nbytes=10**400), arrays, None, "int64"),
            (attrs_with(kind="bogus"), arrays, None, "kind"),
        ]
        for attrs, arrs, path, reason in cases:
            res = dst.import_entry(attrs, arrs, path=path)
            assert res.status == "refused" and reason in res.reason, (reason, res)
        assert sorted(o.path for o in dst.backend.list("")) == before
        assert list(dst.entries()) == []

    def test_export_refuses_a_corrupt_entry(self, store: Store) -> None:
        store.save("block", "k", block_record("k"))
        store.flush()
        info = next(iter(store.entries("block")))
        chunk = next(o.path for o in store.backend.list(info.path) if not o.path.endswith(MARKER))
        blob = store.backend.get(chunk)
        assert blob is not None
        store.backend.put(chunk, bytes([blob[0] ^ 1]) + blob[1:])
        with pytest.raises(ValueError, match="unreadable or corrupt"):
            fresh_info = next(iter(store.entries("block")))
            type(store)(store.backend).export_entry(fresh_info)

    def test_import_on_read_only_store_raises(self, make_store: MakeStore) -> None:
        src = make_store("a")
        src.save("block", "k", block_record("k"))
        src.flush()
        info = next(iter(src.entries("block")))
        ex = src.export_entry(info)
        arrays = {n: np.asarray(p.data) for n, p in ex.arrays.items()}
        make_store("b")
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            make_store("b", read_only=True).import_entry(ex.attrs, arrays)

    def test_item13_7_existing_level_doc_is_kept(self, store: Store) -> None:
        kp = f"block/{key_folder('block', 'k')[:2]}"
        foreign = codec.group_meta_bytes({"gamstore": {"level": "shard", "note": "first"}})
        store.backend.put(f"{kp}/{MARKER}", foreign)
        assert store.save("block", "k", block_record("k")) is not None
        assert store.backend.get(f"{kp}/{MARKER}") == foreign  # create-only
        assert store.lookup("block", "k") is not None

    def test_item13_7_previous_layout_without_level_docs_reads(self, make_store: MakeStore) -> None:
        from gamstore.store.cache import clear_states
        from gamstore.store.layout import is_level_doc

        s = _layout1_store(make_store)
        ids: dict[str, Any] = {
            k: s.save("block", k, block_record(k), objective=1.0) for k in ("a", "b")
        }
        s.save("outer", "s", iterate_payload(2.0))
        assert s.lookup("block", "a") is not None
        s.flush()
        # the first layout had no level docs and no bookkeeping placeholders
        for o in s.backend.list(""):
            if is_level_doc(o.path):
                s.backend.delete(o.path)
        assert not [o for o in s.backend.list("") if is_level_doc(o.path)]
        clear_states()  # a new process with the new code
        t = make_store()
        hit = t.lookup("block", "b")
        assert hit is not None and hit.entry_id == ids["b"] and record_values_ok(hit.record, "b", 0)
        assert sorted(i.entry_id for i in t.entries("block")) == sorted(ids.values())
        rep = t.verify()
        assert rep.ok == 3 and rep.corrupt == () and rep.uncommitted == 0
        assert len(list(t.entries())) == 3
        # the next save under an old key adds that key's levels; the others stay missing
        assert t.save("block", "a", block_record("a", 1)) is not None
        ka = key_prefix("block", key_folder("block", "a"))
        kb = key_prefix("block", key_folder("block", "b"))
        assert t.backend.get(f"{ka}/{MARKER}") is not None
        assert t.backend.get(f"{kb}/{MARKER}") is None
        assert t.lookup("block", "a") is not None and t.lookup("block", "b") is not None
        # gc upgrades the rest: every folder of a committed entry gets its level doc
        clear_states()
        u = make_store()
        u.flush()
        gc_rep = u.gc(grace=0)
        assert gc_rep.payloads == 0 and gc_rep.access == 0  # nothing of a whole store removed
        assert gc_rep.level_docs >= 5  # b's key, outer's keyspace, shard and key, .access
        assert len(list(u.entries())) == 4
        assert u.backend.get(f"{kb}/{MARKER}") is not None
        nodes = self._walk_zarr(u)  # no warnings
        assert nodes[kb].attrs["gamstore"]["key"] == "b"
        assert u.gc(grace=0).level_docs == 0  # nothing left to add

    def test_layout1_store_upgrades_in_place_and_reads_both_shapes(
        self, make_store: MakeStore
    ) -> None:
        from gamstore.store.cache import clear_states
        from gamstore.store.layout import split_entry_path

        s = _layout1_store(make_store)
        old_a = s.save("block", "a", block_record("a", 0), objective=5.0)
        old_b = s.save("block", "b", block_record("b", 0), objective=5.0, kind="final")
        assert old_a is not None and old_b is not None
        fa = key_folder("block", "a")
        assert s.backend.get(f"block/{fa[:2]}/{fa}/{old_a}/{MARKER}") is not None  # layout 1
        assert s.upgrade() == (1, 2) and s.layout == 2
        assert s.upgrade() == (2, 2)  # nothing left to do
        clear_states()  # a new process reads the upgraded root
        t = make_store()
        assert t.layout == 2
        new_a = t.save("block", "a", block_record("a", 1), objective=1.0)
        assert new_a is not None
        assert t.backend.get(f"block/{fa[:2]}/{fa}.{new_a}/{MARKER}") is not None  # layout 2
        # one key, both shapes: the lookup ranks them together (lowest objective)
        hit = t.lookup("block", "a")
        assert hit is not None and hit.entry_id == new_a and record_values_ok(hit.record, "a", 1)
        latest_b = t.lookup("block", "b")
        assert latest_b is not None and latest_b.entry_id == old_b
        infos = sorted(t.entries("block"), key=lambda i: i.entry_id)
        assert [i.entry_id for i in infos] == sorted([old_a, old_b, new_a])
        assert {len(i.path.split("/")) for i in infos} == {3, 4}
        assert all(split_entry_path(i.path) == ("block", i.folder, i.entry_id) for i in infos)
        t.flush()
        assert t.verify() == VerifyReport(checked=3, ok=3)
        rep = t.gc(grace=0)
        assert (rep.payloads, rep.temps, rep.access) == (0, 0, 0)
        self._walk_zarr(t)  # the mixed store is one Zarr hierarchy, no warnings
        # deleting an old-shape entry works as before, and the other shape stays
        old_info = next(i for i in infos if i.entry_id == old_a)
        assert t.delete_entry(old_info)
        assert sorted(i.entry_id for i in t.entries("block")) == sorted([old_b, new_a])
        assert t.lookup("block", "a") is not None
        # an old gamstore would refuse the upgraded root; this one refuses a later layout
        t.backend.put(MARKER, codec.group_meta_bytes({"gamstore": {"layout": 3}}))
        clear_states()
        with pytest.raises(ValueError, match="layout 3"):
            make_store()

    def test_catalog_raw_objects(self, store: Store) -> None:
        assert store.put_raw("shards/00.json", b"{}")
        assert not store.put_raw("shards/00.json", b"{1}", if_absent=True)
        assert store.get_raw("shards/00.json") == b"{}"
        assert [p for p, _, _ in store.list_raw()] == ["shards/00.json"]
        assert store.delete_raw("shards/00.json")
        assert store.get_raw("missing") is None
        with pytest.raises(ValueError):
            store.get_raw("../escape")


# ---------------------------------------------------------------------- backends
MakeBackend = Callable[..., Backend]


class BackendConformance:
    """Behaviour every :class:`~gamstore.store.backend.Backend` must show (one level below
    :class:`StoreConformance`: the object-storage contract the store builds on).

    Subclasses provide a ``make_backend`` fixture: ``make_backend(name="a") -> Backend`` on a
    fresh root private to the test (the same ``name`` opens another handle on the same root,
    another name another root). Override ``backend_secrets`` to list option values (keys,
    connection strings) that must never appear in the backend's text::

        class TestMemoryBackend(BackendConformance):
            @pytest.fixture
            def make_backend(self):
                tag = uuid.uuid4().hex
                return lambda name="a": open_backend(f"memory://{tag}-{name}")
    """

    @pytest.fixture
    def make_backend(self) -> MakeBackend:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses provide make_backend")

    @pytest.fixture
    def backend_secrets(self) -> list[str]:
        return []

    @pytest.fixture
    def be(self, make_backend: MakeBackend) -> Backend:
        return make_backend()

    # ------------------------------------------------------------------ get / put
    def test_missing_object_is_none(self, be: Backend) -> None:
        assert be.get("absent/zarr.json") is None
        assert be.get("absent/zarr.json", max_bytes=10) is None
        assert be.mtime("absent/zarr.json") is None
        assert be.get_many(["a/x", "b/y"]) == [None, None]

    def test_put_get_round_trip_every_byte_value(self, be: Backend) -> None:
        data = bytes(range(256)) * 5
        be.put("f/one.bin", data)
        assert be.get("f/one.bin") == data
        be.put("f/one.bin", b"replaced")  # put replaces
        assert be.get("f/one.bin") == b"replaced"
        be.put("f/empty", b"")
        assert be.get("f/empty") == b""

    def test_large_object_round_trip(self, be: Backend) -> None:
        data = np.arange(1 << 17, dtype="<f8").tobytes()  # 1 MiB
        be.put("big/c/0", data)
        assert be.get("big/c/0") == data

    def test_read_caps(self, be: Backend) -> None:
        be.put("cap/obj", b"0123456789")
        be.put("cap/empty", b"")
        # a cap reads at most cap + 1 bytes: an oversize object shows without loading it
        assert be.get("cap/obj", max_bytes=3) == b"0123"
        assert be.get("cap/obj", max_bytes=0) == b"0"
        assert be.get("cap/obj", max_bytes=9) == b"0123456789"
        assert be.get("cap/obj", max_bytes=1000) == b"0123456789"
        assert be.get("cap/empty", max_bytes=10) == b""  # a range on an empty object
        got = be.get_many(["cap/obj", "cap/none", "cap/empty", "cap/obj"], [2, 5, 4, None])
        assert got == [b"012", None, b"", b"0123456789"]

    def test_get_many_keeps_order(self, be: Backend) -> None:
        items = {f"m/{i:02d}": f"value-{i}".encode() for i in range(40)}
        be.put_many(items)
        paths = list(reversed(items))
        assert be.get_many(paths) == [items[p] for p in paths]
        assert be.get_many([]) == []

    # ------------------------------------------------------------------ create-only
    def test_put_if_absent_creates_once(self, be: Backend) -> None:
        assert be.put_if_absent("c/zarr.json", b"first")
        assert not be.put_if_absent("c/zarr.json", b"second")
        assert be.get("c/zarr.json") == b"first"
        be.put("c/other", b"x")
        assert not be.put_if_absent("c/other", b"y")  # also over a plain put
        assert be.get("c/other") == b"x"

    def test_put_many_if_absent_in_order(self, be: Backend) -> None:
        be.put("pm/b", b"old")
        got = be.put_many_if_absent({"pm/a": b"1", "pm/b": b"2", "pm/c": b"3"})
        assert got == [True, False, True]
        assert be.get_many(["pm/a", "pm/b", "pm/c"]) == [b"1", b"old", b"3"]

    def test_put_if_absent_race_has_one_winner(self, make_backend: MakeBackend) -> None:
        import threading

        handles = [make_backend() for _ in range(6)]
        barrier = threading.Barrier(len(handles))
        won: list[bool] = [False] * len(handles)
        errors: list[BaseException] = []

        def race(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                won[i] = handles[i].put_if_absent("race/zarr.json", f"writer-{i}".encode())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(handles))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert sum(won) == 1  # exactly one create-only write succeeds ...
        winner = won.index(True)
        # ... and every handle reads the winner's bytes
        assert {h.get("race/zarr.json") for h in handles} == {f"writer-{winner}".encode()}

    # ------------------------------------------------------------------ listing
    def test_list_is_recursive_with_sizes_and_mtimes(self, be: Backend) -> None:
        import time

        before = time.time_ns()
        be.put_many({"l/a/x": b"1", "l/a/b/y": b"22", "l/c": b"333", "lx/z": b"4", "l/e": b""})
        got = {o.path: o.size for o in be.list("l")}
        # "lx" shares the name prefix but is another folder
        assert got == {"l/a/x": 1, "l/a/b/y": 2, "l/c": 3, "l/e": 0}
        assert {o.path for o in be.list("l/a")} == {"l/a/x", "l/a/b/y"}
        assert {o.path for o in be.list("")} == {"l/a/x", "l/a/b/y", "l/c", "l/e", "lx/z"}
        assert be.list("missing") == [] and be.list("l/a/x/deeper") == []
        for o in be.list(""):
            # services keep whole seconds; clocks of one host agree within a minute
            assert before - 60 * 10**9 <= o.mtime <= time.time_ns() + 60 * 10**9

    def test_list_prefixed_takes_a_partial_name(self, be: Backend) -> None:
        # a key's entries in its shard: "<key>.<id>/..." (layout 2) and "<key>/<id>/..." (1)
        be.put_many(
            {
                "s/ab.1/zarr.json": b"1",
                "s/ab.1/values/0": b"22",
                "s/ab/2/zarr.json": b"3",
                "s/abc.3/zarr.json": b"4",  # another name with the same start: included
                "s/b.4/zarr.json": b"5",
                "s/zarr.json": b"6",
                "t/ab.5/zarr.json": b"7",
            }
        )
        got = {o.path: o.size for o in be.list_prefixed("s", "ab")}
        assert got == {"s/ab.1/zarr.json": 1, "s/ab.1/values/0": 2, "s/ab/2/zarr.json": 1,
                       "s/abc.3/zarr.json": 1}  # fmt: skip
        assert {o.path for o in be.list_prefixed("s", "ab.")} == {
            "s/ab.1/zarr.json",
            "s/ab.1/values/0",
        }
        assert be.list_prefixed("s", "zz") == [] and be.list_prefixed("none", "ab") == []
        with pytest.raises(ValueError, match="start"):
            be.list_prefixed("s", "a/b")

    def test_list_dir_names_children(self, be: Backend) -> None:
        be.put_many({"d/k1/e/zarr.json": b"1", "d/k2/zarr.json": b"2", "d/zarr.json": b"3"})
        assert sorted(be.list_dir("d")) == ["k1", "k2", "zarr.json"]
        assert sorted(be.list_dir("d/k1")) == ["e"]
        assert be.list_dir("d/none") == []

    def test_listing_sees_other_handles(self, make_backend: MakeBackend) -> None:
        a, b = make_backend(), make_backend()
        assert a.list("s") == []
        b.put("s/new", b"n")
        assert [o.path for o in a.list("s")] == ["s/new"]  # no stale listing cache
        b.delete("s/new")
        assert a.list("s") == [] and a.get("s/new") is None

    def test_roots_are_isolated(self, make_backend: MakeBackend) -> None:
        a, b = make_backend("a"), make_backend("b")
        a.put("iso/x", b"a")
        assert b.get("iso/x") is None and b.list("") == []
        assert a.url != b.url

    # ------------------------------------------------------------------ mtime / touch
    def test_touch_creates_and_bumps(self, be: Backend) -> None:
        be.touch("t/access")
        assert be.get("t/access") == b""
        first = be.mtime("t/access")
        assert first is not None
        be.touch_many(["t/access", "t/other"])
        again = be.mtime("t/access")
        assert again is not None and again >= first
        assert be.get("t/other") == b""

    # ------------------------------------------------------------------ delete
    def test_delete(self, be: Backend) -> None:
        be.put("del/x", b"1")
        assert be.delete("del/x")
        assert be.get("del/x") is None and be.list("del") == []
        be.delete("del/x")  # deleting a missing object does not raise

    def test_delete_many_and_prefix_keep_siblings(self, be: Backend) -> None:
        objs = {f"p/a/{i}": b"x" for i in range(25)}
        objs.update({"p/ab/keep": b"k", "p/b/keep": b"k"})
        be.put_many(objs)
        assert be.delete_many([]) == 0
        be.delete_many(["p/a/0", "p/a/1", "p/a/missing"])
        assert be.get("p/a/0") is None and be.get("p/a/2") == b"x"
        be.delete_prefix("p/a")
        assert {o.path for o in be.list("p")} == {"p/ab/keep", "p/b/keep"}
        with pytest.raises(ValueError):
            be.delete_prefix("")  # never the whole root

    # ------------------------------------------------------------------ range checks
    @pytest.mark.parametrize(
        "bad", ["../up", "a/../../b", "/abs", "a//b", "a/./b", "a\\b", "nul\x00", "a/"]
    )
    def test_paths_outside_the_root_are_refused(self, be: Backend, bad: str) -> None:
        for call in (
            lambda: be.get(bad),
            lambda: be.put(bad, b"x"),
            lambda: be.put_if_absent(bad, b"x"),
            lambda: be.list(bad),
            lambda: be.delete(bad),
            lambda: be.mtime(bad),
        ):
            with pytest.raises(ValueError, match="path"):
                call()
        assert be.list("") == []  # nothing was written anywhere

    # ------------------------------------------------------------------ identity
    def test_url_requests_and_text_hold_no_secret(
        self, be: Backend, backend_secrets: list[str]
    ) -> None:
        n = sum(be.requests.values())
        be.put("r/x", b"1")
        assert be.get("r/x") == b"1"
        assert sum(be.requests.values()) >= n + 2  # every backend counts its requests
        assert "://" in be.url or be.scheme == "file"
        for text in (be.url, repr(be), str(getattr(be, "cache_key", ""))):
            for secret in backend_secrets:
                assert secret not in text
        be.close()


# ---------------------------------------------------------------------- process workloads
def mixed_workload(
    url: str,
    storage_options: dict[str, Any] | None,
    seed: int,
    n_ops: int = 300,
    n_keys: int = 12,
    budget_bytes: int = 1 << 30,
) -> dict[str, Any]:
    """Random saves, lookups and evictions on overlapping keys (run in a worker process).

    Values are derived from (key, objective), so every reader can check what it gets.
    Returns counts plus the text of any exception and any wrong value seen.
    """
    import random
    import traceback

    from gamstore.store import open_store

    rng = random.Random(seed)
    out: dict[str, Any] = {
        "errors": [],
        "wrong": [],
        "hits": 0,
        "misses": 0,
        "saves": 0,
        "failed_saves": 0,
    }
    try:
        store = open_store(
            url, storage_options=storage_options, budget_bytes=budget_bytes, sweep_every=8
        )
    except Exception:  # noqa: BLE001 - reported to the parent
        out["errors"].append(traceback.format_exc())
        return out
    for _ in range(n_ops):
        key = f"key-{rng.randrange(n_keys)}"
        op = rng.random()
        try:
            if op < 0.45:
                s = rng.randrange(1, 10_000)
                eid = store.save(
                    "block", key, block_record(key, s, n_blocks=2, width=20), objective=float(s)
                )
                out["saves" if eid else "failed_saves"] += 1
            elif op < 0.95:
                e = store.lookup("block", key) if op < 0.8 else store.lookup_latest("block", key)
                if e is None:
                    out["misses"] += 1
                    continue
                out["hits"] += 1
                if (
                    e.key != key
                    or e.objective is None
                    or not record_values_ok(e.record, key, int(e.objective))
                ):
                    out["wrong"].append(f"{key}: {e.entry_id} objective={e.objective}")
            else:
                store.evict()
        except Exception:  # noqa: BLE001 - reported to the parent
            out["errors"].append(traceback.format_exc())
    store.close()
    return out


def crash_writer(url: str, n_saves: int, ready: Any) -> None:
    """Save ``n_saves`` entries as fast as possible (a parent kills this process)."""
    from gamstore.store import open_store

    store = open_store(url, sweep_every=10**9)
    ready.set()
    for i in range(n_saves):
        store.save(
            "block",
            f"crash-{i % 7}",
            block_record(f"crash-{i % 7}", i, n_blocks=3),
            objective=float(i),
        )
