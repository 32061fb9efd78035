"""Records A/B, the outer IteratePayload and the record <-> store protocol."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore import _json
from gamstore.records import (
    CACHE_VERSION,
    DEFAULT_RHO_CONVENTION,
    MAX_ENTRY_BYTES,
    RECORD_TYPES,
    RHO_CONVENTIONS,
    SCHEMA_TAG,
    ArrayPart,
    BlockWarmStartRecord,
    Discard,
    EntrySource,
    ExactFinal,
    InnerSummary,
    IteratePayload,
    RecordParts,
    Seed,
    WarmStartRecord,
    as_rho_convention,
    classify_entry,
    get_record_type,
    normalize_active_sets,
    register_record_type,
)

NAME_RE = re.compile(r"[a-z][a-z0-9_]*(/([a-z][a-z0-9_]*|0|[1-9][0-9]*))*\Z")


def through_store(record: Any) -> Any:
    """Simulate the entry codec: fields through canonical JSON, arrays through raw LE bytes."""
    parts = record.to_parts()
    assert isinstance(parts, RecordParts)
    fields = _json.loads(_json.dumps_bytes(parts.fields))
    arrays: dict[str, np.ndarray] = {}
    for name, part in parts.arrays.items():
        assert NAME_RE.match(name), name
        assert part.data.dtype in (np.float64, np.int64)
        assert len(part.dims) == part.data.ndim
        raw = part.data.astype(part.data.dtype.newbyteorder("<")).tobytes()
        arrays[name] = np.frombuffer(raw, dtype=part.data.dtype.newbyteorder("<")).reshape(
            part.data.shape
        )
    return type(record).from_parts(fields, arrays)


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


# ------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)  # includes -0.0 and subnormals
vec = st.lists(finite, max_size=6).map(lambda xs: np.array(xs, dtype=np.float64))
opt_vec = st.none() | vec
opt_float = st.none() | finite
count = st.integers(min_value=0, max_value=2**53)
text = st.text(max_size=12)
conventions = st.sampled_from(sorted(RHO_CONVENTIONS))


@st.composite
def warm_start_records(draw: Any) -> WarmStartRecord:
    return WarmStartRecord(
        key=draw(text),
        n_rows=draw(count),
        n_cols=draw(count),
        rho=draw(vec),
        beta=draw(vec),
        prev_rho=draw(opt_vec),
        prev_beta=draw(opt_vec),
        last_inner_iters=draw(count),
        last_inner_converged=draw(st.booleans()),
        last_pirls_lm_lambda=draw(opt_float),
        last_ift_prediction_residual=draw(opt_float),
        last_pirls_accept_rho=draw(opt_float),
        version=draw(st.integers(0, 3)),
        package_version=draw(text),
        created_unix_secs=draw(count),
        updated_unix_secs=draw(count),
        rho_convention=draw(conventions),
    )


@st.composite
def inner_summaries(draw: Any) -> InnerSummary | None:
    if draw(st.booleans()):
        return None
    return InnerSummary(
        log_likelihood=draw(finite),
        penalty_value=draw(finite),
        cycles=draw(count),
        converged=draw(st.booleans()),
        block_logdet_h=draw(finite),
        block_logdet_s=draw(finite),
        solved_inner_tol=draw(st.none() | st.floats(min_value=1e-300, max_value=1.0)),
        block_log_lambdas=draw(opt_vec),
        joint_log_lambdas=draw(opt_vec),
    )


@st.composite
def block_records(draw: Any) -> BlockWarmStartRecord:
    n = draw(st.integers(0, 4))
    n_beta = draw(st.sampled_from([n, max(n - 1, 0), n + 1]))
    return BlockWarmStartRecord(
        key=draw(text),
        n_rows=draw(count),
        block_names=tuple(draw(st.lists(text, min_size=n, max_size=n))),
        block_dims=tuple(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))),
        rho=draw(vec),
        block_beta=tuple(draw(vec) for _ in range(n_beta)),
        active_sets=tuple(
            draw(st.none() | st.lists(st.integers(0, 50), max_size=5)) for _ in range(n)
        ),
        inner=draw(inner_summaries()),
        package_version=draw(text),
        created_unix_secs=draw(count),
        updated_unix_secs=draw(count),
        rho_convention=draw(conventions),
    )


@st.composite
def iterate_payloads(draw: Any) -> IteratePayload:
    k = draw(st.integers(0, 4))
    rho = np.array(draw(st.lists(finite, min_size=k, max_size=k)), dtype=np.float64)
    hess = None
    if draw(st.booleans()):
        hess = np.array(draw(st.lists(finite, min_size=k * k, max_size=k * k))).reshape(k, k)
    return IteratePayload.encode(rho, draw(finite), draw(count), beta=draw(vec), hessian=hess)


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(warm_start_records())
def test_round_trip_record_a(rec: WarmStartRecord) -> None:
    back = through_store(rec)
    assert back == rec
    assert bits(back.rho) == bits(rec.rho) and bits(back.beta) == bits(rec.beta)
    assert (back.prev_rho is None) == (rec.prev_rho is None)


@settings(max_examples=200, deadline=None)
@given(block_records())
def test_round_trip_record_b(rec: BlockWarmStartRecord) -> None:
    back = through_store(rec)
    assert back == rec
    assert len(back.block_beta) == len(rec.block_beta)
    for x, y in zip(back.block_beta, rec.block_beta, strict=True):
        assert bits(x) == bits(y)


@settings(max_examples=200, deadline=None)
@given(iterate_payloads())
def test_round_trip_iterate_payload(p: IteratePayload) -> None:
    back = through_store(p)
    assert back == p
    assert back.hessian.shape == p.hessian.shape


def test_round_trip_empty_vectors_and_none_options() -> None:
    a = WarmStartRecord.new("k", 0, 0)
    assert through_store(a) == a
    assert a.rho.shape == (0,) and a.prev_rho is None and a.last_pirls_lm_lambda is None
    b = BlockWarmStartRecord.new("cf-0", 0, [], [])
    assert through_store(b) == b
    c = BlockWarmStartRecord(
        "cf-1", 3, ("e",), (0,), rho=[], block_beta=[[]], active_sets=[None], inner=None
    )
    parts = c.to_parts()
    assert parts.arrays["block_beta/0"].data.shape == (0,)  # zero-length arrays are kept
    assert through_store(c) == c
    p = IteratePayload.encode([], 0.0, 0)
    assert "hessian" in p.to_parts().arrays and through_store(p) == p


def test_negative_zero_and_subnormal_bits_survive() -> None:
    rho = np.array([-0.0, 5e-324, -2.2250738585072014e-308, 1e308])
    rec = WarmStartRecord("k", 1, 0, rho=rho, last_pirls_accept_rho=-0.0)
    back = through_store(rec)
    assert bits(back.rho) == bits(rho)
    assert np.signbit(back.last_pirls_accept_rho)


def test_parts_layout_and_dims() -> None:
    rec = BlockWarmStartRecord(
        "cf-a",
        10,
        ("(parametric)", "s(x0)"),
        (1, 2),
        rho=[0.1],
        block_beta=[[1.0], [2.0, 3.0]],
        active_sets=[[4, 2, 2], None],
        inner=InnerSummary(1.0, 2.0, 3, True, 4.0, 5.0, joint_log_lambdas=[0.1]),
    )
    parts = rec.to_parts()
    assert sorted(parts.arrays) == [
        "active_sets/0",
        "block_beta/0",
        "block_beta/1",
        "inner/joint_log_lambdas",
        "rho",
    ]
    assert parts.arrays["rho"].dims == ("rho",)
    assert parts.arrays["block_beta/1"].dims == ("coef_1",)
    assert parts.arrays["active_sets/0"].data.dtype == np.int64
    # user strings live only in fields, never in array names
    assert parts.fields["block_names"] == ["(parametric)", "s(x0)"]
    hp = IteratePayload.encode([1.0, 2.0], 1.0, 1, hessian=np.eye(2)).to_parts()
    assert hp.arrays["hessian"].dims == ("hess_row", "hess_col")
    assert hp.fields["hessian_dim"] == 2


def test_records_are_immutable_and_copy_inputs() -> None:
    rho = np.array([1.0, 2.0])
    rec = WarmStartRecord("k", 1, 2, rho=rho, beta=[0.0, 0.0])
    rho[0] = 99.0
    assert rec.rho[0] == 1.0
    # a read-only *view* of writable memory is still copied
    base = np.array([1.0, 2.0])
    view = base[:]
    view.flags.writeable = False
    rec_v = WarmStartRecord("k", 1, 2, rho=view, beta=[0.0, 0.0])
    base[0] = 42.0
    assert rec_v.rho[0] == 1.0
    # an owned read-only array from another record may be shared (it cannot change)
    assert WarmStartRecord("k", 1, 2, rho=rec.rho, beta=rec.beta).rho is rec.rho
    with pytest.raises(ValueError, match="read-only"):
        rec.rho[0] = 5.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.key = "other"  # type: ignore[misc]
    b = BlockWarmStartRecord("k", 1, ["a"], [1], block_beta=[[1.0]], active_sets=[[0]])
    assert not b.block_beta[0].flags.writeable
    assert b.active_sets[0] is not None and not b.active_sets[0].flags.writeable


def test_record_registry() -> None:
    assert RECORD_TYPES["warm_start"] is WarmStartRecord
    assert RECORD_TYPES["block_warm_start"] is BlockWarmStartRecord
    assert RECORD_TYPES["iterate"] is IteratePayload
    assert get_record_type("iterate") is IteratePayload
    with pytest.raises(ValueError, match="unknown 'nope'"):
        get_record_type("nope")

    @dataclasses.dataclass(frozen=True)
    class Impostor:
        RECORD_TYPE = "iterate"

        def to_parts(self) -> RecordParts:
            raise NotImplementedError

        @classmethod
        def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Any:
            raise NotImplementedError

    with pytest.raises(ValueError, match="already registered"):
        register_record_type(Impostor)

    class BadName:
        RECORD_TYPE = "../x"

    with pytest.raises(ValueError, match="RECORD_TYPE"):
        register_record_type(BadName)

    class NoMethods:
        RECORD_TYPE = "no_methods"

    with pytest.raises(TypeError, match="to_parts"):
        register_record_type(NoMethods)
    assert "no_methods" not in RECORD_TYPES


def test_schema_constants() -> None:
    assert SCHEMA_TAG == "gamstore-schema-1"
    assert CACHE_VERSION == 1
    assert MAX_ENTRY_BYTES == 16 * 1024 * 1024


# ------------------------------------------------------------------------------------------
# protocol validation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../etc", "rho/../x", "Rho", "block_beta/01", "beta/-1", "a//b", "", "s(x0)", "/rho"]
)
def test_record_parts_rejects_unsafe_array_names(name: str) -> None:
    with pytest.raises(ValueError, match="fixed lower-case words"):
        RecordParts({}, {name: ArrayPart(np.zeros(1), ("x",))})


def test_record_parts_rejects_non_json_fields() -> None:
    with pytest.raises(ValueError, match=r"fields\.cost: non-finite"):
        RecordParts({"cost": float("nan")}, {})
    with pytest.raises(TypeError, match="expected ArrayPart"):
        RecordParts({}, {"rho": np.zeros(1)})  # type: ignore[dict-item]


def test_array_part_validation() -> None:
    with pytest.raises(TypeError, match="float64 or int64"):
        ArrayPart(np.zeros(2, dtype=np.float32), ("x",))
    with pytest.raises(TypeError, match="float64 or int64"):
        ArrayPart(np.zeros(2, dtype=bool), ("x",))
    with pytest.raises(ValueError, match="expected 2 names"):
        ArrayPart(np.zeros((2, 2)), ("x",))
    with pytest.raises(ValueError, match="lower-case identifier"):
        ArrayPart(np.zeros(2), ("X Y",))
    assert ArrayPart(np.zeros(0), ["rho"]).dims == ("rho",)  # type: ignore[arg-type]


def test_checklist_55_entry_size_limit() -> None:
    small = WarmStartRecord("k", 1, 3, rho=[0.0], beta=[1.0, 2.0, 3.0]).to_parts()
    assert small.nbytes < MAX_ENTRY_BYTES
    n = MAX_ENTRY_BYTES // 8 + 1
    big = WarmStartRecord("k", 1, n, beta=np.zeros(n)).to_parts()
    assert big.nbytes > MAX_ENTRY_BYTES  # the store skips such a record silently
    # a loaded JSON document over 16 MiB is refused by the decoder's default limit
    with pytest.raises(ValueError, match="exceeds limit"):
        _json.loads(b"[" + b"0," * (MAX_ENTRY_BYTES // 2) + b"0]")


def test_checklist_56_package_version_written_not_compared() -> None:
    rec = WarmStartRecord("k", 2, 1, rho=[0.0], beta=[1.0], package_version="0.0.1-old")
    assert rec.to_parts().fields["package_version"] == "0.0.1-old"
    assert rec.is_compatible("k", 2, 1)
    b = BlockWarmStartRecord(
        "cf", 2, ["a"], [1], rho=[0.0], block_beta=[[1.0]], active_sets=[None],
        package_version="9.9.9",
    )  # fmt: skip
    assert b.to_parts().fields["package_version"] == "9.9.9"
    assert b.is_compatible("cf", 2, ["a"], [1], 1)
    from gamstore._version import __version__

    assert WarmStartRecord.new("k", 1, 1).package_version == __version__


def test_checklist_57_active_sets_normalised_and_summary_has_no_kkt() -> None:
    rec = BlockWarmStartRecord(
        "cf", 1, ["a", "b", "c"], [1, 1, 1],
        block_beta=[[0.0], [0.0], [0.0]],
        active_sets=[[5, 1, 5, 3], [], None],
    )  # fmt: skip
    s0 = rec.active_sets[0]
    assert s0 is not None and s0.tolist() == [1, 3, 5]
    assert rec.active_sets[1] is None and rec.active_sets[2] is None
    back = through_store(rec)
    assert back.active_sets[0] is not None and back.active_sets[0].tolist() == [1, 3, 5]
    assert normalize_active_sets([[2, 2], []])[0].tolist() == [2]  # type: ignore[union-attr]
    names = {f.name for f in dataclasses.fields(InnerSummary)}
    assert not any("kkt" in n or "active" in n or "workspace" in n for n in names)
    with pytest.raises(ValueError, match=r"active_sets\[1\]: expected non-negative"):
        normalize_active_sets([[0], [-1]])


# ------------------------------------------------------------------------------------------
# record A compatibility
# ------------------------------------------------------------------------------------------


def _rec_a(**kw: Any) -> WarmStartRecord:
    base: dict[str, Any] = dict(key="k", n_rows=5, n_cols=2, rho=[0.5], beta=[1.0, 2.0])
    base.update(kw)
    return WarmStartRecord(**base)


def test_record_a_is_compatible_rules() -> None:
    assert _rec_a().is_compatible("k", 5, 2)
    assert not _rec_a(version=2).is_compatible("k", 5, 2)
    assert not _rec_a().is_compatible("k2", 5, 2)
    assert not _rec_a().is_compatible("k", 6, 2)
    assert not _rec_a(n_cols=3).is_compatible("k", 5, 3)  # beta length != n_cols
    assert not _rec_a().is_compatible("k", 5, 3)
    assert _rec_a(rho=[1.0, 2.0, 3.0]).is_compatible("k", 5, 2)  # no rho length check here
    assert _rec_a(prev_rho=[0.4]).is_compatible("k", 5, 2)
    assert not _rec_a(prev_rho=[0.4, 0.1]).is_compatible("k", 5, 2)
    assert _rec_a(prev_beta=[0.0, 0.0]).is_compatible("k", 5, 2)
    assert not _rec_a(prev_beta=[0.0]).is_compatible("k", 5, 2)
    assert not WarmStartRecord.new("k", 5, 2).is_compatible("k", 5, 2)  # empty beta


# ------------------------------------------------------------------------------------------
# record B compatibility (checklist 53)
# ------------------------------------------------------------------------------------------


def _rec_b(**kw: Any) -> BlockWarmStartRecord:
    base: dict[str, Any] = dict(
        key="cf-1",
        n_rows=7,
        block_names=("(parametric)", "s(x)"),
        block_dims=(1, 3),
        rho=[0.1, 0.2],
        block_beta=[[1.0], [0.0, 1.0, 2.0]],
        active_sets=[None, [1]],
        inner=InnerSummary(-3.0, 0.5, 4, True, 1.0, 2.0),
    )
    base.update(kw)
    return BlockWarmStartRecord(**base)


ARGS_B = ("cf-1", 7, ["(parametric)", "s(x)"], [1, 3], 2)


@pytest.mark.parametrize(
    ("overrides", "args"),
    [
        ({"version": 0}, ARGS_B),
        ({}, ("cf-2", *ARGS_B[1:])),
        ({}, ("cf-1", 8, *ARGS_B[2:])),
        ({}, ("cf-1", 7, ["(parametric)", "s(z)"], [1, 3], 2)),
        ({}, ("cf-1", 7, ["(parametric)", "s(x)"], [1, 4], 2)),
        ({}, ("cf-1", 7, ["(parametric)", "s(x)"], [1, 3], 3)),
        ({"block_beta": [[1.0]]}, ARGS_B),
        ({"block_beta": [[1.0], [0.0, 1.0]]}, ARGS_B),
        ({"active_sets": [None]}, ARGS_B),
    ],
)
def test_checklist_53_block_record_incompatible(overrides: dict[str, Any], args: tuple) -> None:
    assert _rec_b().is_compatible(*ARGS_B)
    assert not _rec_b(**overrides).is_compatible(*args)


def test_checklist_53_non_finite_block_record_cannot_be_built_or_loaded() -> None:
    with pytest.raises(ValueError, match=r"BlockWarmStartRecord\.block_beta\[1\]: expected finite"):
        _rec_b(block_beta=[[1.0], [0.0, np.nan, 2.0]])
    with pytest.raises(ValueError, match=r"BlockWarmStartRecord\.rho: expected finite"):
        _rec_b(rho=[0.1, np.inf])
    with pytest.raises(ValueError, match=r"InnerSummary\.block_logdet_h: expected a finite"):
        InnerSummary(-3.0, 0.5, 4, True, np.nan, 2.0)
    # a stored record whose arrays hold NaN is rejected on load (the store counts a miss)
    parts = _rec_b().to_parts()
    arrays = {k: v.data.copy() for k, v in parts.arrays.items()}
    arrays["block_beta/0"][0] = np.nan
    with pytest.raises(ValueError, match=r"block_beta/0: expected finite"):
        BlockWarmStartRecord.from_parts(parts.fields, arrays)


def test_inner_summary_persist_gate() -> None:
    assert InnerSummary.persistable(1.0, 2.0, 3, False, 4.0, np.inf) is None
    s = InnerSummary.persistable(1.0, 2.0, 3, False, 4.0, 5.0, solved_inner_tol=np.nan,
                                 block_log_lambdas=[np.nan], joint_log_lambdas=[1.0])  # fmt: skip
    assert s is not None and s.solved_inner_tol is None and s.block_log_lambdas is None
    assert s.joint_log_lambdas is not None and s.is_valid()


def test_record_b_missing_inner_field_reads_as_none() -> None:
    parts = _rec_b(inner=None).to_parts()
    fields = dict(parts.fields)
    del fields["inner"]
    back = BlockWarmStartRecord.from_parts(fields, parts.arrays)
    assert back.inner is None


# ------------------------------------------------------------------------------------------
# ValueError / TypeError paths naming the field
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "exc", "pattern"),
    [
        (lambda: _rec_a(key=3), TypeError, r"WarmStartRecord\.key: expected a str"),
        (lambda: _rec_a(n_rows=-1), ValueError, r"WarmStartRecord\.n_rows: expected a non-neg"),
        (lambda: _rec_a(n_cols=True), TypeError, r"WarmStartRecord\.n_cols"),
        (lambda: _rec_a(rho=[[1.0]]), ValueError, r"WarmStartRecord\.rho: expected a 1-D"),
        (lambda: _rec_a(rho=["a"]), TypeError, r"WarmStartRecord\.rho: expected real"),
        (lambda: _rec_a(beta=[True, False]), TypeError, r"WarmStartRecord\.beta: expected real"),
        (lambda: _rec_a(beta=[1.0, np.nan]), ValueError, r"WarmStartRecord\.beta: .*beta\[1\]"),
        (lambda: _rec_a(prev_rho=[np.inf]), ValueError, r"WarmStartRecord\.prev_rho"),
        (lambda: _rec_a(prev_beta=np.zeros((1, 2))), ValueError, r"WarmStartRecord\.prev_beta"),
        (lambda: _rec_a(last_inner_iters=1.5), TypeError, r"WarmStartRecord\.last_inner_iters"),
        (lambda: _rec_a(last_inner_converged=1), TypeError, r"last_inner_converged: expected a b"),
        (lambda: _rec_a(last_pirls_lm_lambda=np.nan), ValueError, r"last_pirls_lm_lambda"),
        (lambda: _rec_a(last_ift_prediction_residual="x"), TypeError, r"last_ift_prediction"),
        (lambda: _rec_a(last_pirls_accept_rho=np.inf), ValueError, r"last_pirls_accept_rho"),
        (lambda: _rec_a(package_version=None), TypeError, r"WarmStartRecord\.package_version"),
        (lambda: _rec_a(created_unix_secs=-5), ValueError, r"WarmStartRecord\.created_unix_secs"),
        (lambda: _rec_b(block_names="ab"), TypeError, r"BlockWarmStartRecord\.block_names"),
        (lambda: _rec_b(block_names=["a", 1]), TypeError, r"block_names\[1\]: expected a str"),
        (lambda: _rec_b(block_dims=[1, -3]), ValueError, r"block_dims\[1\]"),
        (lambda: _rec_b(block_beta=np.zeros(3)), ValueError, r"BlockWarmStartRecord\.block_beta"),
        (lambda: _rec_b(active_sets=[None, [0.5]]), TypeError, r"active_sets\[1\]"),
        (lambda: _rec_b(active_sets="x"), TypeError, r"BlockWarmStartRecord\.active_sets"),
        (lambda: _rec_b(inner={"a": 1}), TypeError, r"BlockWarmStartRecord\.inner"),
        (
            lambda: InnerSummary(1.0, 1.0, 1, True, 1.0, 1.0, solved_inner_tol=0.0),
            ValueError,
            r"InnerSummary\.solved_inner_tol: expected > 0",
        ),
        (lambda: InnerSummary(1.0, 1.0, -1, True, 1.0, 1.0), ValueError, r"InnerSummary\.cycles"),
        (
            lambda: InnerSummary(1.0, 1.0, 1, True, 1.0, 1.0, joint_log_lambdas=[np.nan]),
            ValueError,
            r"InnerSummary\.joint_log_lambdas",
        ),
        (lambda: IteratePayload([[1.0]], 0.0, 0), ValueError, r"IteratePayload\.rho: expected a 1"),
        (lambda: IteratePayload([1.0], "x", 0), TypeError, r"IteratePayload\.cost"),
        (lambda: IteratePayload([1.0], 0.0, -1), ValueError, r"IteratePayload\.eval_id"),
        (lambda: IteratePayload.encode([np.nan], 0.0, 0), ValueError, r"IteratePayload\.rho"),
        (lambda: IteratePayload.encode([1.0], np.inf, 0), ValueError, r"IteratePayload\.cost"),
        (
            lambda: IteratePayload.encode([1.0], 0.0, 0, beta=[np.nan]),
            ValueError,
            r"IteratePayload\.beta",
        ),
    ],
)
def test_constructor_errors_name_the_field(factory: Any, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        factory()


def _parts_of(rec: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    parts = rec.to_parts()
    return dict(parts.fields), {k: v.data for k, v in parts.arrays.items()}


@pytest.mark.parametrize(
    ("mutate", "exc", "pattern"),
    [
        (lambda f, a: f.pop("key"), ValueError, r"WarmStartRecord\.key: missing field"),
        (lambda f, a: f.update(n_rows="5"), TypeError, r"WarmStartRecord\.n_rows"),
        (
            lambda f, a: f.update(has_prev_rho=True),
            ValueError,
            r"WarmStartRecord\.prev_rho: missing",
        ),
        (lambda f, a: a.pop("beta"), ValueError, r"WarmStartRecord\.beta: missing array"),
        (lambda f, a: a.update(extra=np.zeros(1)), ValueError, r"unexpected arrays \['extra'\]"),
        (lambda f, a: a.update(rho=np.zeros(1, np.float32)), TypeError, r"rho: expected float64"),
        (lambda f, a: a.update(rho=np.zeros((1, 1))), ValueError, r"rho: expected 1-D"),
        (lambda f, a: a.update(rho=[0.5]), TypeError, r"rho: expected numpy.ndarray"),
        (lambda f, a: f.update(last_pirls_lm_lambda="x"), TypeError, r"last_pirls_lm_lambda"),
    ],
)
def test_from_parts_errors_name_the_field_a(mutate: Any, exc: type, pattern: str) -> None:
    fields, arrays = _parts_of(_rec_a())
    mutate(fields, arrays)
    with pytest.raises(exc, match=pattern):
        WarmStartRecord.from_parts(fields, arrays)


@pytest.mark.parametrize(
    ("mutate", "exc", "pattern"),
    [
        (lambda f, a: f.update(n_block_beta=3), ValueError, r"block_beta/2: missing array"),
        (lambda f, a: f.update(block_names=["a", 2]), TypeError, r"block_names\[1\]"),
        (
            lambda f, a: f.update(active_set_present=[True, True]),
            ValueError,
            r"active_sets/0: miss",
        ),
        (
            lambda f, a: f.update(active_set_present="no"),
            TypeError,
            r"active_set_present: expected a l",
        ),
        (
            lambda f, a: a.update({"active_sets/1": np.array([1.0])}),
            TypeError,
            r"active_sets/1: expected int64",
        ),
        (
            lambda f, a: a.update({"active_sets/1": np.array([-1], dtype=np.int64)}),
            ValueError,
            r"active_sets/1: expected non-negative",
        ),
        (lambda f, a: f.update(inner={"cycles": 1}), ValueError, r"inner\.log_likelihood: missing"),
        (lambda f, a: f.update(inner=[1]), TypeError, r"BlockWarmStartRecord\.inner: fields must"),
        (lambda f, a: f.update(version=-1), ValueError, r"BlockWarmStartRecord\.version"),
    ],
)
def test_from_parts_errors_name_the_field_b(mutate: Any, exc: type, pattern: str) -> None:
    fields, arrays = _parts_of(_rec_b())
    mutate(fields, arrays)
    with pytest.raises(exc, match=pattern):
        BlockWarmStartRecord.from_parts(fields, arrays)


def test_from_parts_rejects_non_mappings() -> None:
    with pytest.raises(TypeError, match="fields must be a dict"):
        WarmStartRecord.from_parts([], {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="arrays must be a dict"):
        WarmStartRecord.from_parts(_parts_of(_rec_a())[0], [])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# IteratePayload (checklist 45-47)
# ------------------------------------------------------------------------------------------


def test_checklist_45_payload_round_trips_rho_beta_hessian() -> None:
    h = np.array([[2.0, 0.5], [0.5, 1.0]])
    p = IteratePayload.encode([0.25, -1.5], 12.5, 9, beta=[1.0, 2.0, 3.0], hessian=h)
    back = through_store(p)
    assert back == p
    assert np.array_equal(back.hessian, h) and back.hessian_dim == 2
    assert back.cost == 12.5 and back.eval_id == 9
    rho_only = IteratePayload.encode([0.25, -1.5], 12.5, 9)
    back = through_store(rho_only)
    assert back.beta.shape == (0,) and back.hessian_dim == 0
    # a rho-only payload written without beta/hessian arrays still decodes with empty beta
    fields, arrays = _parts_of(rho_only)
    del arrays["beta"], arrays["hessian"]
    fields.pop("hessian_dim")
    legacy = IteratePayload.from_parts(fields, arrays)
    assert legacy.beta.shape == (0,) and legacy.hessian_dim == 0


@pytest.mark.parametrize(
    "payload",
    [
        IteratePayload([1.0, 2.0], 1.0, 0, schema=2),
        IteratePayload([1.0], 1.0, 0),
        IteratePayload([1.0, np.nan], 1.0, 0),
        IteratePayload([1.0, 2.0], np.inf, 0),
        IteratePayload([1.0, 2.0], 1.0, 0, beta=[np.nan]),
    ],
)
def test_checklist_46_decode_rejects(payload: IteratePayload) -> None:
    assert payload.decode(2) is None
    with pytest.raises(ValueError, match=r"IteratePayload\.(schema|rho|cost|beta)"):
        payload.validate(2)
    # survives the store (the bad values are judged at decode time, not load time)
    assert through_store(payload).decode(2) is None


def test_checklist_46_decode_scrubs_bad_hessian() -> None:
    ragged = [[1.0, 2.0], [3.0]]
    for bad in (np.ones((2, 3)), np.array([[1.0, np.nan], [0.0, 1.0]]), np.ones(4), [[1j]], ragged):
        p = IteratePayload.encode([1.0, 2.0], 1.0, 0, hessian=bad)
        assert p.hessian_dim == 0 and p.decode(2) is p
    ok = IteratePayload.encode([1.0, 2.0], 1.0, 0, hessian=np.eye(2))
    fields, arrays = _parts_of(ok)
    fields["hessian_dim"] = 3  # dim^2 != len: scrubbed, not rejected
    assert IteratePayload.from_parts(fields, arrays).hessian_dim == 0
    fields, arrays = _parts_of(ok)
    arrays["hessian"] = np.array([[1.0, np.inf], [0.0, 1.0]])
    back = IteratePayload.from_parts(fields, arrays)
    assert back.hessian_dim == 0 and back.decode(2) is back


def test_checklist_47_classification() -> None:
    h = np.eye(2)
    p = IteratePayload.encode([0.1, 0.2], 3.0, 11, beta=[1.0], hessian=h)
    out = p.classify("final", EntrySource.EXACT, 3.0, 2, entry_iteration=4)
    assert isinstance(out, ExactFinal) and out.iterations == 4
    assert np.array_equal(out.rho, [0.1, 0.2]) and np.array_equal(out.beta, [1.0])
    assert p.classify("final", "exact", None, 2).iterations == 11  # type: ignore[union-attr]
    seed = p.classify("checkpoint", "exact", 3.0, 2)
    assert isinstance(seed, Seed) and seed.hessian is not None and seed.iteration == 11
    assert np.array_equal(seed.hessian, h)
    assert isinstance(p.classify("final", EntrySource.PRELOADED, 3.0, 2), Seed)
    assert p.classify("checkpoint", "exact", None, 3) == Discard("payload-shape-mismatch")
    assert IteratePayload([0.1, 0.2], 3.0, 1, schema=2).classify(
        "final", "exact", None, 2
    ) == Discard("payload-shape-mismatch")
    assert p.classify("checkpoint", "exact", float("nan"), 2) == Discard("non-finite-payload")
    assert p.classify("final", "exact", float("inf"), 2) == Discard("non-finite-payload")
    bad_rho = IteratePayload([0.1, np.inf], 3.0, 1)
    assert bad_rho.classify("final", "exact", None, 2) == Discard("non-finite-payload")
    assert classify_entry(object(), "final", "exact", None, 2) == Discard("payload-shape-mismatch")
    # no clamping: a boundary rho is passed through verbatim
    far = IteratePayload.encode([25.0, -30.0], 1.0, 0)
    far_seed = far.classify("checkpoint", "exact", None, 2)
    assert isinstance(far_seed, Seed) and far_seed.rho.tolist() == [25.0, -30.0]
    assert far_seed.hessian is None
    with pytest.raises(ValueError, match="entry_kind"):
        p.classify("Done", "exact", None, 2)


def test_registry_imports_artifact_on_first_miss() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gamstore.records import RECORD_TYPES\n"
        "assert 'gamstore.artifact' not in sys.modules\n"
        "cls = RECORD_TYPES.get('fit_artifact')\n"
        "assert cls is not None and cls.__name__ == 'FitArtifact', cls\n"
        "assert 'nope' not in RECORD_TYPES and RECORD_TYPES.get('nope') is None\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------------------------------
# ρ convention (which S a stored ρ multiplies)
# ------------------------------------------------------------------------------------------


def _artifact(**kw: Any) -> Any:
    from gamstore.artifact import (
        BasisMeta,
        FitArtifact,
        FitDescriptor,
        GlobalFitSummary,
        ResponseSig,
        RowPopulationTag,
        TermArtifact,
        TermRole,
        term_identity_from_block,
    )

    ident = term_identity_from_block(TermRole.from_block_name("s(x)"), "s(x)", [None], [1], 4)
    return FitArtifact(
        descriptor=FitDescriptor("poisson", (ident,), ResponseSig("poisson", 1),
                                 RowPopulationTag(50)),
        terms=(TermArtifact(ident, TermRole.GENERIC, BasisMeta.block_spec(4),
                            [0.1, 0.2, 0.3, 0.4], [1.5]),),
        global_=GlobalFitSummary(-12.0, True, 50),
        created_unix_secs=1_700_000_000,
        **kw,
    )  # fmt: skip


class _Rewritten:
    """Writes a record's parts with ``rho_convention`` replaced (None: left out, as in an
    entry written before the field existed)."""

    RECORD_TYPE = ""

    def __init__(self, record: Any, convention: Any) -> None:
        self.record, self.convention = record, convention

    def to_parts(self) -> RecordParts:
        parts = self.record.to_parts()
        fields = dict(parts.fields)
        del fields["rho_convention"]
        if self.convention is not None:
            fields["rho_convention"] = self.convention
        return RecordParts(fields, parts.arrays)


def _rewritten(record: Any, convention: Any = None) -> Any:
    cls = type("Rewritten", (_Rewritten,), {"RECORD_TYPE": record.RECORD_TYPE})
    return cls(record, convention)


def _all_kinds(**kw: Any) -> list[Any]:
    return [_rec_a(**kw), _rec_b(**kw), _artifact(**kw)]


def test_rho_convention_defaults_to_mgcv_and_is_serialised() -> None:
    assert DEFAULT_RHO_CONVENTION == "mgcv"
    assert set(RHO_CONVENTIONS) == {"mgcv", "statsmodels-alpha", "pygam-lam", "custom"}
    for rec in _all_kinds():
        assert rec.rho_convention == "mgcv"
        assert rec.to_parts().fields["rho_convention"] == "mgcv"
    for conv in RHO_CONVENTIONS:
        for rec in _all_kinds(rho_convention=conv):
            back = through_store(rec)
            assert back.rho_convention == conv and back == rec
            assert rec.to_parts().fields["rho_convention"] == conv
    # the convention is part of record equality: same numbers, other S, not the same record
    assert _rec_a() != _rec_a(rho_convention="pygam-lam")
    assert _rec_b() != _rec_b(rho_convention="statsmodels-alpha")
    assert _artifact() != _artifact(rho_convention="custom")


@pytest.mark.parametrize(
    ("factory", "name"),
    [(_rec_a, "WarmStartRecord"), (_rec_b, "BlockWarmStartRecord"), (_artifact, "FitArtifact")],
)
def test_rho_convention_is_validated_by_name(factory: Any, name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}\.rho_convention: expected one of .*'mgcv'"):
        factory(rho_convention="MGCV")
    with pytest.raises(ValueError, match=rf"{name}\.rho_convention"):
        factory(rho_convention="")
    with pytest.raises(TypeError, match=rf"{name}\.rho_convention: expected a str"):
        factory(rho_convention=None)
    # on load: an unknown or mistyped convention is a ValueError/TypeError naming the field
    parts = factory().to_parts()
    arrays = {k: v.data for k, v in parts.arrays.items()}
    cls = type(factory())
    for bad, exc in (("lambda", ValueError), (3, TypeError)):
        fields = dict(parts.fields, rho_convention=bad)
        with pytest.raises(exc, match=rf"{name}\.rho_convention"):
            cls.from_parts(fields, arrays)


def test_as_rho_convention() -> None:
    for conv in RHO_CONVENTIONS:
        assert as_rho_convention(conv) == conv
    assert as_rho_convention(np.str_("pygam-lam")) == "pygam-lam"
    assert type(as_rho_convention(np.str_("pygam-lam"))) is str
    with pytest.raises(ValueError, match="conv: expected one of"):
        as_rho_convention("statsmodels", "conv")
    with pytest.raises(TypeError, match="rho_convention"):
        as_rho_convention(b"mgcv")


def test_fields_without_rho_convention_read_as_mgcv() -> None:
    for rec in _all_kinds(rho_convention="custom"):
        parts = rec.to_parts()
        fields = dict(parts.fields)
        del fields["rho_convention"]
        back = type(rec).from_parts(fields, {k: v.data for k, v in parts.arrays.items()})
        assert back.rho_convention == "mgcv"
        assert back == dataclasses.replace(rec, rho_convention="mgcv")


@pytest.mark.parametrize("where", ["memory", "local"])
def test_entry_written_without_rho_convention_still_loads(where: str, tmp_path: Any) -> None:
    import uuid

    from gamstore.store import open_store

    url = f"memory://rho-conv-{uuid.uuid4().hex}" if where == "memory" else str(tmp_path)
    store = open_store(url)
    for keyspace, rec in zip(("inner", "block", "artifact"), _all_kinds(), strict=True):
        assert store.save(keyspace, "old", _rewritten(rec)) is not None
        marker = store.read_marker(next(iter(store.entries(keyspace))))
        assert marker is not None and "rho_convention" not in marker["record"]
        entry = store.lookup(keyspace, "old")
        assert entry is not None and type(entry.record) is type(rec)
        assert entry.record.rho_convention == "mgcv" and entry.record == rec
        # and a current entry keeps a non-default convention
        new = dataclasses.replace(rec, rho_convention="statsmodels-alpha")
        assert store.save(keyspace, "new", new) is not None
        got = store.lookup(keyspace, "new")
        assert got is not None and got.record.rho_convention == "statsmodels-alpha"
    # a stored convention nobody knows is a corrupt entry: a miss, never a guess
    bad = _rewritten(_rec_a(), "sm")
    assert store.save("inner", "unknown-conv", bad) is not None
    assert store.lookup("inner", "unknown-conv") is None


def test_is_compatible_checks_rho_convention_when_asked() -> None:
    a = _rec_a(rho_convention="pygam-lam")
    assert a.is_compatible("k", 5, 2)  # not asked: unchanged rules
    assert a.is_compatible("k", 5, 2, rho_convention="pygam-lam")
    assert not a.is_compatible("k", 5, 2, rho_convention="mgcv")
    assert not _rec_a().is_compatible("k", 5, 2, rho_convention="pygam-lam")
    b = _rec_b(rho_convention="statsmodels-alpha")
    assert b.is_compatible(*ARGS_B)
    assert b.is_compatible(*ARGS_B, rho_convention="statsmodels-alpha")
    assert not b.is_compatible(*ARGS_B, rho_convention="mgcv")
