"""Property tests of the entry codec and the ranking rules (Hypothesis)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import MemoryStore

from gamstore.records import ArrayPart, RecordParts
from gamstore.store import codec
from gamstore.store.ranking import Candidate, rank

WORDS = ["rho", "beta", "hessian", "edf", "block_beta"]


@dataclass(frozen=True)
class AnyRecord:
    RECORD_TYPE: ClassVar[str] = "any_record"
    fields: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def to_parts(self) -> RecordParts:
        return RecordParts(
            fields=self.fields,
            arrays={
                n: ArrayPart(a, tuple(f"d{i}" for i in range(a.ndim)))
                for n, a in self.arrays.items()
            },
        )

    @classmethod
    def from_parts(cls, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> AnyRecord:
        return cls(fields, arrays)


def _array() -> st.SearchStrategy[np.ndarray]:
    shapes = st.one_of(
        st.tuples(st.integers(0, 6)), st.tuples(st.integers(0, 4), st.integers(0, 4))
    )
    floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
    ints = st.integers(-(2**63), 2**63 - 1)

    def build(shape: tuple[int, ...], kind: str, data: st.DataObject) -> np.ndarray:
        n = int(np.prod(shape))
        vals = data.draw(st.lists(floats if kind == "f" else ints, min_size=n, max_size=n))
        return np.array(vals, dtype=np.float64 if kind == "f" else np.int64).reshape(shape)

    return st.builds(build, shapes, st.sampled_from("fi"), st.data())


names = st.one_of(
    st.sampled_from(WORDS),
    st.builds(lambda w, i: f"{w}/{i}", st.sampled_from(["blocks", "sets"]), st.integers(0, 30)),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=8,
)


def _objects(rec: AnyRecord) -> tuple[codec.EncodedEntry, dict[str, bytes]]:
    enc = codec.encode_entry(
        record=rec,
        keyspace="block",
        key="k",
        entry_id="0" * 16 + "-00000000-00000000",
        producer="p",
        created=1,
        objective=None,
        iteration=None,
        kind="checkpoint",
        schema="s",
    )
    return enc, dict(enc.payload, **{"zarr.json": enc.marker})


@settings(max_examples=60, deadline=None)
@given(
    arrays=st.dictionaries(names, _array(), min_size=1, max_size=5),
    fields=st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=4),
)
def test_roundtrip_and_plain_zarr_agree(
    arrays: dict[str, np.ndarray], fields: dict[str, Any]
) -> None:
    rec = AnyRecord(fields, arrays)
    enc, objects = _objects(rec)
    marker = codec.parse_marker(
        enc.marker, keyspace="block", entry_id="0" * 16 + "-00000000-00000000"
    )
    rel = codec.marker_object_paths(marker)
    assert set(rel) | {"zarr.json"} == set(objects)
    back = codec.decode_arrays(marker, {p: objects[p] for p in rel})
    out = codec.decode_record(marker, back, lambda n: AnyRecord)
    assert out.fields == rec.to_parts().fields
    for n, a in arrays.items():
        assert back[n].dtype == a.dtype and back[n].shape == a.shape
        np.testing.assert_array_equal(back[n], a)
    # plain zarr reads the very same bytes
    mem = MemoryStore()
    proto = default_buffer_prototype()

    async def fill() -> None:
        for p, b in objects.items():
            await mem.set(p, proto.buffer.from_bytes(b))

    asyncio.run(fill())
    g = zarr.open_group(mem, mode="r", zarr_format=3)
    plain = plain_zarr_parts(g)
    assert set(plain) == set(arrays)
    for n, a in arrays.items():
        assert plain[n].dtype == a.dtype and plain[n].shape == a.shape
        np.testing.assert_array_equal(plain[n], a)


def plain_zarr_parts(g: zarr.Group) -> dict[str, np.ndarray]:
    """A record's arrays read with plain zarr alone (format 2, docs/storage-layout.md): the
    packs in name order, split at ``offsets``, reshaped as ``attrs["gamstore"]["parts"]``."""
    parts = g.attrs["gamstore"]["parts"]  # type: ignore[index]
    edges = list(g["offsets"][:])  # type: ignore[index]
    out: dict[str, np.ndarray] = {}
    for pack, dtype in (("values", "float64"), ("ints", "int64")):
        members = sorted(n for n, p in parts.items() if p["dtype"] == dtype)
        if pack == "ints" and not members:
            continue
        arr = g[pack]
        assert isinstance(arr, zarr.Array) and arr.metadata.dimension_names is not None
        data = arr[...]
        bounds, edges = edges[: len(members) + 1], edges[len(members) + 1 :]
        for n, lo, hi in zip(members, bounds, bounds[1:], strict=False):
            out[n] = np.asarray(data[lo:hi]).reshape(parts[n]["shape"])
    assert edges == []
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_bit_flip_is_detected(data: st.DataObject) -> None:
    rec = AnyRecord({"a": 1}, {"rho": np.arange(5.0), "blocks/0": np.arange(3, dtype=np.int64)})
    enc, objects = _objects(rec)
    marker = codec.parse_marker(
        enc.marker, keyspace="block", entry_id="0" * 16 + "-00000000-00000000"
    )
    rel = codec.marker_object_paths(marker)
    victim = data.draw(st.sampled_from(sorted(rel)))
    blob = objects[victim]
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    flipped = bytearray(blob)
    flipped[bit // 8] ^= 1 << (bit % 8)
    tampered = {p: (bytes(flipped) if p == victim else objects[p]) for p in rel}
    with pytest.raises(codec.CorruptEntryError):
        codec.decode_arrays(marker, tampered)


cands = st.lists(
    st.builds(
        Candidate,
        path=st.just(""),
        entry_id=st.text("0123456789abcdef", min_size=4, max_size=4),
        created=st.integers(0, 50),
        kind=st.sampled_from(["checkpoint", "final"]),
        objective=st.one_of(st.none(), st.floats(-5, 5)),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda c: c.entry_id,
)


@settings(max_examples=200, deadline=None)
@given(cs=cands, perm=st.randoms())
def test_rank_is_order_independent_and_follows_the_rules(cs: list[Candidate], perm: Any) -> None:
    shuffled = list(cs)
    perm.shuffle(shuffled)
    best = rank(cs)[0]
    assert best == rank(shuffled)[0] or _tie_chain(cs)
    latest = rank(shuffled, "latest")[0]
    assert latest.newer_key() == max(c.newer_key() for c in cs)
    finals = [c for c in cs if c.kind == "final"]
    if finals:
        assert best.kind == "final" and best.newer_key() == max(c.newer_key() for c in finals)
    else:
        with_obj = [c.objective for c in cs if c.objective is not None]
        if with_obj:
            assert best.objective is not None and best.objective <= min(with_obj) + 1e-12


def _tie_chain(cs: list[Candidate]) -> bool:
    # The 1e-12 tie rule is not transitive; order dependence is only allowed then.
    objs = sorted(c.objective for c in cs if c.objective is not None)
    return any(b - a < 1e-12 for a, b in zip(objs, objs[1:], strict=False))
