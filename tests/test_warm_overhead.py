"""The warm path's fixed-cost shortcuts give exactly what the long way gives.

Each shortcut of the per-fit warm-start overhead (the 1x1 projection, memoized descriptor keys, the loaded-parent transfer, the live error counter,
the options memo) is checked against the computation it replaces: same bytes, same keys,
same bits, same cold fallbacks.
"""

from __future__ import annotations

import math
import struct
import uuid
from typing import Any

import blake3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_warmstart_artifacts import Model, _capture

import gamstore.fingerprint as fpmod
from gamstore.artifact import FitDescriptor, ResponseSig, TermRole, term_identity_from_block
from gamstore.fingerprint import Fingerprinter
from gamstore.records import as_float_matrix
from gamstore.store import open_store
from gamstore.transfer import TransferConfig, project_beta
from gamstore.warmstart.artifacts import (
    consume_fit_artifact,
    consume_loaded_artifact,
    descriptor_for,
    load_fit_artifact,
)
from gamstore.warmstart.capability import WarmStartStore, _error_count, clear_memo
from gamstore.warmstart.keys import block_key
from gamstore.warmstart.specs import BlockSpec, FitOptions, physical_to_outer

CANON_NAN = {4: 0x7FC00000, 8: 0x7FF8000000000000}


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


def _u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def _ref_encoding(a: np.ndarray) -> bytes:
    """Array encoding written out by hand: dtype, ndim, shape, canonical C-order values."""
    le = a.dtype.newbyteorder("<")
    dt = le.str.encode()
    out = _u64(len(dt)) + dt + _u64(a.ndim) + b"".join(_u64(d) for d in a.shape)
    c = np.array(a, dtype=le, order="C", copy=True).reshape(-1)
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            c[c == 0] = 0.0
        c.view(f"<u{c.itemsize}")[np.isnan(c)] = CANON_NAN[c.itemsize]
    return out + c.tobytes()


# -- mid-sized arrays behind pending frame bytes hash the reference stream --------------------


@pytest.mark.parametrize("prefix", ["", "a", "abcdefg", "x" * 5000])
@pytest.mark.parametrize(
    "layout",
    ["C", "colslice", "rowslice", "rowrev", "colrev", "F", "big-endian", "f4", "int", "width1"],
)
def test_mid_sized_arrays_hash_the_reference_stream(prefix: str, layout: str) -> None:
    rng = np.random.default_rng(len(prefix))
    base = rng.standard_normal((1500, 31))  # 372 KB: above the small-array path
    base[3, 4], base[7, 9], base[11, 2] = -0.0, np.nan, -np.nan
    base.view(np.uint64)[20, 5] = 0x7FF0000000000001  # a signalling NaN payload
    with np.errstate(invalid="ignore"):
        f4 = base.astype(np.float32)
    a = {
        "C": base,
        "colslice": base[:, 3:17],  # row-major view of a wider matrix (a design block)
        "rowslice": base[::2],
        "F": np.asfortranarray(base[:, :20]),
        "big-endian": base.astype(">f8"),
        "f4": f4,
        "rowrev": base[::-1, 2:20],  # negative row stride
        "colrev": base[:, ::-1],  # negative column stride: elementwise copy
        "int": np.arange(46_500, dtype=np.int64).reshape(1500, 31)[:, 3:17],
        "width1": base[:, 5:6],  # one column: too narrow for the row copy
    }[layout]
    got = Fingerprinter().write_str(prefix).write_array(a).write_u64(7).finalize().digest
    ref = _u64(len(prefix)) + prefix.encode() + _ref_encoding(a) + _u64(7)
    assert got == blake3.blake3(ref).digest()


def test_mid_sized_arrays_leave_no_pending_bytes_behind() -> None:
    a = np.arange(20_000, dtype=np.float64).reshape(1000, 20)[:, 2:15]
    f = Fingerprinter().write_str("k").write_matrix(a).write_matrix(a)
    ref = _u64(1) + b"k" + _ref_encoding(a) + _ref_encoding(a)
    assert f.finalize().digest == blake3.blake3(ref).digest()
    # the input is never written to and the result does not depend on the chunk size
    before = a.copy()
    small = Fingerprinter().write_str("k").write_matrix(a)
    assert np.array_equal(a, before)
    old = fpmod.CHUNK_BYTES
    try:
        fpmod.CHUNK_BYTES = 4096  # too small to stage: the streaming path
        streamed = Fingerprinter().write_str("k").write_matrix(a)
    finally:
        fpmod.CHUNK_BYTES = old
    assert small.finalize() == streamed.finalize()


class _Fam:
    name = "poisson"

    def __init__(self, y: np.ndarray) -> None:
        self.y = y

    def warm_start_fingerprint(self, specs: Any, options: Any) -> str:
        from gamstore.warmstart.keys import likelihood_fingerprint

        return likelihood_fingerprint(self.name, {"y": self.y})


def test_block_key_with_unhashable_extra_still_keys() -> None:
    rng = np.random.default_rng(0)
    specs = [BlockSpec("(parametric)", rng.normal(size=(20, 2)))]
    opts = FitOptions()
    key = block_key(_Fam(np.ones(20)), specs, opts)
    object.__setattr__(opts, "extra", [("a", "b")])  # a list: not hashable, not cacheable
    other = block_key(_Fam(np.ones(20)), specs, opts)
    assert key != other and other.startswith("cf-")


# -- 1x1 projection --------------------------------------------------------------------------


def _project_by_eigh(t: np.ndarray, beta: np.ndarray) -> np.ndarray | None:
    """The general algorithm of ``project_beta`` for one reduced column, spelled out."""
    with np.errstate(all="ignore"):
        g, b = t.T @ t, t.T @ beta
        lam, vecs = np.linalg.eigh(g)
        ru = 2.0**-53
        tau = ru / (1.0 - ru) * float(np.max(np.abs(lam)))
        keep = lam > tau
        theta = vecs[:, keep] @ ((vecs[:, keep].T @ b) / lam[keep])
    return theta if np.isfinite(theta).all() else None


_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(1, 4),
    data=st.data(),
)
def test_one_column_projection_is_bitwise_the_eigh_one(rows: int, data: st.DataObject) -> None:
    t = np.array(data.draw(st.lists(_finite, min_size=rows, max_size=rows))).reshape(rows, 1)
    beta = np.array(data.draw(st.lists(_finite, min_size=rows, max_size=rows)))
    want = _project_by_eigh(t, beta)
    with np.errstate(all="ignore"):
        got = project_beta(t, beta, 1)
    if want is None:
        assert got is None
    else:
        assert got is not None and got.tobytes() == want.tobytes()  # incl. the sign of zero


def test_one_column_projection_edge_values() -> None:
    for t, b in [([[0.0]], [1.0]), ([[1.0]], [-0.0]), ([[-2.0]], [0.0]), ([[1e-320]], [1.0])]:
        ta, ba = np.array(t), np.array(b)
        want = _project_by_eigh(ta, ba)
        with np.errstate(all="ignore"):
            got = project_beta(ta, ba, 1)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got.tobytes() == want.tobytes()
    assert project_beta(np.array([[np.nan]]), np.array([1.0]), 1) is None


# -- memoized descriptor keys, shared frozen matrices ----------------------------------------


def test_descriptor_key_memo_is_value_keyed_and_order_free() -> None:
    ids = tuple(
        term_identity_from_block(TermRole.MEAN, f"s(x{i})", [None], [1], 5 + i) for i in range(3)
    )
    a = FitDescriptor("poisson", ids, ResponseSig("poisson", 1))
    b = FitDescriptor("poisson", ids[::-1], ResponseSig("poisson", 1))
    c = FitDescriptor("gaussian", ids, ResponseSig("gaussian", 1))
    fp = Fingerprinter().absorb_tag("fit-artifact-descriptor-v1")
    fp.absorb_str("family_kind", "poisson").absorb_u64("n_terms", 3)
    for d in sorted(t.digest for t in ids):
        fp.absorb_bytes("term", d)
    assert a.descriptor_key() == b.descriptor_key() == fp.finalize()
    assert c.descriptor_key() != a.descriptor_key()


def test_as_float_matrix_shares_only_frozen_owned_arrays() -> None:
    frozen = np.arange(6.0).reshape(2, 3).copy()  # owned (a reshape alone is a view)
    frozen.flags.writeable = False
    assert as_float_matrix(frozen, "m", finite=False) is frozen
    live = np.arange(6.0).reshape(2, 3)
    out = as_float_matrix(live, "m")
    assert out is not live and not out.flags.writeable and np.array_equal(out, live)
    view = frozen[:, :2]
    assert as_float_matrix(view, "m") is not view  # a view: copied
    with pytest.raises(ValueError, match="finite"):
        bad = np.array([[np.nan]])
        bad.flags.writeable = False
        as_float_matrix(bad, "m")


# -- the loaded-parent transfer ------------------------------------------------------------------


def _ws() -> WarmStartStore:
    return WarmStartStore(store=open_store(f"memory://ws-over-{uuid.uuid4().hex}"))


def test_loaded_parent_transfer_equals_consume_fit_artifact() -> None:
    ws, m = _ws(), Model()
    assert _capture(ws, m)[0]
    fam, specs, gauge = m.fit(slice(6, None))
    p2o, rho0 = physical_to_outer(specs), np.zeros(3)
    desc = descriptor_for(fam, specs)
    parent = load_fit_artifact(ws, desc)
    assert parent is not None
    blocks = [gauge.block_transform(b) for b in range(gauge.n_blocks)]
    for cfg in (None, TransferConfig(mode="transport")):
        means = [None] + [np.full(s.width + 1, 0.2) for s in specs[1:]]
        kw: dict[str, Any] = {"config": cfg, "column_means": means, "intercept_column": 0}
        want = consume_fit_artifact(ws, fam, specs, gauge, p2o, rho0, **kw)
        got = consume_loaded_artifact(
            ws, fam, specs, blocks, p2o, rho0, descriptor=desc, parent=parent, **kw
        )
        assert want is not None and got is not None
        assert got.rho.tobytes() == want.rho.tobytes()
        for a, b in zip(got.block_beta, want.block_beta, strict=True):
            assert a.tobytes() == b.tobytes()
        assert got.active_sets == want.active_sets and got.cached_inner is None


def test_loaded_parent_transfer_cold_fallbacks() -> None:
    ws, m = _ws(), Model()
    assert _capture(ws, m)[0]
    fam, specs, gauge = m.fit(slice(6, None))
    p2o, rho0 = physical_to_outer(specs), np.zeros(3)
    desc = descriptor_for(fam, specs)
    parent = load_fit_artifact(ws, desc)
    assert parent is not None
    blocks = [gauge.block_transform(b) for b in range(gauge.n_blocks)]

    def run(**over: Any) -> Any:
        args: dict[str, Any] = {
            "descriptor": desc,
            "parent": parent,
            "rho_default": rho0,
            "block_transforms": blocks,
        }
        args.update(over)
        return consume_loaded_artifact(ws, fam, specs, physical_to_outer=p2o, **args)

    assert run() is not None
    assert run(parent="not an artifact") is None
    assert run(block_transforms=blocks[:2]) is None  # a missing slab: cold, never raised
    assert run(rho_default=np.zeros(0)) is None
    assert run(rho_convention="pygam-lam") is None
    assert run(config="transport") is None  # not a TransferConfig
    assert consume_loaded_artifact(None, fam, specs, blocks, p2o, rho0, descriptor=desc,
                                   parent=parent) is None  # fmt: skip
    # a descriptor of the wrong length is re-derived, a wrong type too
    short = FitDescriptor(desc.family_kind, desc.term_identities[:1], desc.response_signature)
    assert run(descriptor=short) is not None
    assert run(descriptor="x") is not None
    # ρ only when no slab is given
    rho_only = run(block_transforms=[None] * len(blocks))
    assert rho_only is not None and all(not np.any(b) for b in rho_only.block_beta)


# -- live error counters ---------------------------------------------------------------------


def test_live_error_counter_equals_stats() -> None:
    store = open_store(f"memory://ws-cnt-{uuid.uuid4().hex}")
    for counter in ("read_errors", "save_errors"):
        assert _error_count(store, counter) == getattr(store.stats(), counter)
    store._stats.read_errors += 2  # what a failed read does
    assert _error_count(store, "read_errors") == store.stats().read_errors == 2

    class Other:
        def stats(self) -> Any:
            return type("S", (), {"read_errors": 5})()

    assert _error_count(Other(), "read_errors") == 5
    assert _error_count(object(), "read_errors") is None
    with pytest.raises(ValueError, match="counter"):
        store.error_count("misses")


# -- fit options memo ------------------------------------------------------------------------


def test_fit_options_memo_is_by_identity() -> None:
    import dataclasses

    from gamstore.fit.newton import NewtonControl
    from gamstore.fit.warm import _fit_options, fit_options

    c = NewtonControl()
    assert fit_options(c) is fit_options(c)
    assert fit_options(c) == _fit_options(c)
    floats = [f.name for f in dataclasses.fields(c) if isinstance(getattr(c, f.name), float)]
    other = dataclasses.replace(c, **{floats[0]: getattr(c, floats[0]) * 2})
    assert fit_options(other) == _fit_options(other) != fit_options(c)
    assert fit_options(c) == _fit_options(c)
    assert math.isfinite(fit_options(c).inner_tol)


# -- batched projections, zero offsets, one-scan usability, shared descriptors ---------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6))
def test_batched_projections_equal_one_by_one(seed: int, n: int) -> None:
    from gamstore.transfer import _project_all

    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        r = int(rng.integers(0, 6))
        t = rng.normal(size=(r + int(rng.integers(0, 3)), r)) * 10.0 ** int(rng.integers(-3, 4))
        if r > 1 and rng.random() < 0.3:
            t[:, -1] = t[:, 0]  # rank deficient: a dropped eigenvalue
        if r > 0 and rng.random() < 0.1:
            t[0, 0] = np.nan
        items.append((t, rng.normal(size=t.shape[0]), r))
    items.append((np.ones((3, 2)), np.ones(4), 2))  # mis-sized: None
    with np.errstate(all="ignore"):
        got = _project_all(items)
        want = [project_beta(*it) for it in items]
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is not None and w is not None:
            assert g.tobytes() == w.tobytes() and not g.flags.writeable


def test_usability_in_one_scan_matches_per_term_checks() -> None:
    import dataclasses

    ws, m = _ws(), Model()
    assert _capture(ws, m)[0]
    fam, specs, _ = m.fit()
    art = load_fit_artifact(ws, descriptor_for(fam, specs))
    assert art is not None and art.is_usable()
    for i in range(len(art.terms)):
        for field in ("raw_beta", "rho_for_term"):
            bad = np.array(getattr(art.terms[i], field))
            if bad.size == 0:
                continue
            bad[-1] = np.inf
            terms = list(art.terms)
            terms[i] = dataclasses.replace(terms[i], **{field: bad})
            broken = dataclasses.replace(art, terms=tuple(terms))
            assert not broken.is_usable()
            assert broken.unusable_reason() == f"term {i} has non-finite values"
    rot = dataclasses.replace(art.terms[0], joint_null_rotation=np.array([[np.nan]]))
    assert not dataclasses.replace(art, terms=(rot, *art.terms[1:])).is_usable()
    assert dataclasses.replace(art, terms=()).is_usable()


def test_descriptors_are_shared_by_value() -> None:
    m = Model()
    fam, specs, _ = m.fit()
    a, b = descriptor_for(fam, specs), descriptor_for("poisson", specs)
    assert a is b
    assert descriptor_for(fam, m.fit(slice(2, None))[1]).row_population.n_rows == m.n - 2


def _likelihood_uncached(family: str, arrays: dict[str, Any], scalars: dict[str, Any]) -> str:
    from gamstore.warmstart.keys import _LIKELIHOOD_DOMAIN, _absorb_scalars

    fp = Fingerprinter().absorb_tag(_LIKELIHOOD_DOMAIN).absorb_str("family", family)
    fp.absorb_u64("n_arrays", len(arrays))
    for key in sorted(arrays):
        fp.absorb_str("name", key).absorb_array("array", arrays[key])
    _absorb_scalars(fp, scalars)
    return fp.finalize().hex()


@pytest.mark.parametrize(
    "scalars",
    [
        {},
        {"link": "log", "fitter": "gamstore.fit/reference-2"},
        {"a": True},
        {"a": 1},
        {"a": 1.0},
        {"a": -0.0},
        {"a": 0.0},
        {"a": float("nan")},
        {"a": None},
        {"a": -3},
        {"b": "x", "a": 2.5, "c": False},
    ],
)
def test_likelihood_fingerprint_equals_an_independent_encoding(scalars: dict[str, Any]) -> None:
    from gamstore.warmstart.keys import likelihood_fingerprint

    y = np.arange(5.0)
    want = _likelihood_uncached("poisson", {"y": y}, scalars)
    assert likelihood_fingerprint("poisson", {"y": y}, scalars) == want


def test_likelihood_scalar_types_stay_distinct_and_checked() -> None:
    from gamstore.warmstart.keys import likelihood_fingerprint

    fps = {likelihood_fingerprint("f", None, {"a": v}) for v in (True, 1, 1.0, "1", None)}
    assert len(fps) == 5
    assert likelihood_fingerprint("f", None, {"a": np.float64(1.0)}) == likelihood_fingerprint(
        "f", None, {"a": 1.0}
    )
    with pytest.raises(TypeError, match=r"scalars\['a'\]: expected str, int, float, bool"):
        likelihood_fingerprint("f", None, {"a": [1]})
    with pytest.raises(TypeError):
        likelihood_fingerprint("f", None, {1: "x"})  # type: ignore[dict-item]


# -- record fields: plain builtins take the fast strict-JSON check ----------------------------

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["\ud800", np.float64(1.5), np.int64(3), np.bool_(True), np.float64("nan")]),
)
_json_value = st.recursive(
    _json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.lists(kids, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=4), st.just("\udfff")), kids, max_size=4),
    ),
    max_leaves=20,
)


def _same_json(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=4), _json_value, max_size=5))
def test_record_parts_fields_equal_the_canonical_check(fields: dict[str, Any]) -> None:
    from gamstore import _json
    from gamstore.records import RecordParts

    try:
        want: Any = _json.canonical(dict(fields), root="fields")
    except ValueError as exc:
        with pytest.raises(type(exc)) as info:
            RecordParts(fields, {})
        assert str(info.value) == str(exc)
        return
    assert _same_json(RecordParts(fields, {}).fields, want)


def test_record_parts_deep_nesting_is_still_refused() -> None:
    from gamstore.records import RecordParts

    deep: Any = 1
    for _ in range(70):
        deep = [deep]
    with pytest.raises(ValueError, match="nesting deeper"):
        RecordParts({"x": deep}, {})
    ok: Any = 1
    for _ in range(62):
        ok = [ok]
    assert RecordParts({"x": ok}, {}).fields == {"x": ok}
