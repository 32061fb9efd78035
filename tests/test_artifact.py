"""Fit artifacts (record D): identities, descriptor key, usability and the store codec."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore import _json
from gamstore.artifact import (
    FIT_ARTIFACT_SCHEMA,
    BasisMeta,
    FitArtifact,
    FitDescriptor,
    GlobalFitSummary,
    ResponseSig,
    RowPopulationTag,
    TermArtifact,
    TermIdentity,
    TermRole,
    artifact_key,
    term_identity_from_block,
)
from gamstore.fingerprint import Fingerprint
from gamstore.records import RECORD_TYPES, SCHEMA_TAG, get_record_type


def through_store(record: Any) -> Any:
    parts = record.to_parts()
    fields = _json.loads(_json.dumps_bytes(parts.fields))
    arrays = {k: np.frombuffer(v.data.tobytes(), v.data.dtype).reshape(v.data.shape)
              for k, v in parts.arrays.items()}  # fmt: skip
    return type(record).from_parts(fields, arrays)


def ident(
    name: str = "s(x)", width: int = 9, labels: Any = (None,), null: Any = (1,)
) -> TermIdentity:
    return term_identity_from_block(
        TermRole.from_block_name(name), name, list(labels), list(null), width
    )


def make_artifact(
    family: str = "poisson",
    rho: Any = (0.5,),
    objective: float = -42.0,
    raw_beta: Any = None,
    n_rows: int = 500,
    schema: int = FIT_ARTIFACT_SCHEMA,
) -> FitArtifact:
    i0 = ident("(parametric)", 1, (), ())
    i1 = ident("s(x)", 9)
    beta = np.linspace(-1.0, 1.0, 10) if raw_beta is None else raw_beta
    return FitArtifact(
        descriptor=FitDescriptor(
            family, (i0, i1), ResponseSig(family, 1), RowPopulationTag(n_rows)
        ),
        terms=(
            TermArtifact(i0, TermRole.GENERIC, BasisMeta.block_spec(1), [0.3], []),
            TermArtifact(
                i1,
                TermRole.GENERIC,
                BasisMeta(
                    "ps",
                    degree=3,
                    num_knots=14,
                    knots=np.arange(14.0),
                    s_scale=16.0,
                    penalty_order=2,
                    constraint=np.full(10, 0.1),
                ),  # fmt: skip
                beta,
                list(rho),
            ),
        ),
        global_=GlobalFitSummary(objective, True, n_rows),
        schema=schema,
        created_unix_secs=1_700_000_000,
    )


# ------------------------------------------------------------------------------------------
# identities and roles
# ------------------------------------------------------------------------------------------


def test_checklist_10_term_identity_changes_with_every_structural_input() -> None:
    base = term_identity_from_block(TermRole.MEAN, "s(x)", [None, "a"], [1, 2], 9)
    assert isinstance(base, TermIdentity) and isinstance(base, Fingerprint)
    assert base == term_identity_from_block(TermRole.MEAN, "s(x)", (None, "a"), (1, 2), 9)
    variants = [
        term_identity_from_block(TermRole.SLOPE, "s(x)", [None, "a"], [1, 2], 9),
        term_identity_from_block(TermRole.MEAN, "s(z)", [None, "a"], [1, 2], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", [None, "a", None], [1, 2], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", ["a", None], [1, 2], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", [None, "b"], [1, 2], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", [None, ""], [1, 2], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", [None, "a"], [2, 1], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", [None, "a"], [1], 9),
        term_identity_from_block(TermRole.MEAN, "s(x)", [None, "a"], [1, 2], 10),
    ]
    digests = {v.digest for v in variants} | {base.digest}
    assert len(digests) == len(variants) + 1


def test_term_identity_serialises_as_hex() -> None:
    i = ident()
    assert len(i.hex()) == 64 and i.to_json() == i.hex()
    assert TermIdentity.parse(i.hex()) == i
    assert TermIdentity.parse(i.hex().upper()) == i
    assert repr(i).startswith("TermIdentity('")
    with pytest.raises(ValueError, match=r"identity: expected exactly 64 hex"):
        TermIdentity.parse("abc")
    with pytest.raises(TypeError, match="identity: expected a 64-char hex string"):
        TermIdentity.parse(12)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("marginal_slope", TermRole.SLOPE),
        ("LogScale", TermRole.SLOPE),
        ("sigma(x)", TermRole.SLOPE),
        ("dispersion", TermRole.SLOPE),
        ("disp_block", TermRole.SLOPE),
        ("Mean", TermRole.MEAN),
        ("location", TermRole.MEAN),
        ("marginal", TermRole.MEAN),
        ("s(x0)", TermRole.GENERIC),
        ("(parametric)", TermRole.GENERIC),
    ],
)
def test_term_role_from_block_name(name: str, role: TermRole) -> None:
    assert TermRole.from_block_name(name) is role


def test_term_role_names_and_discriminants() -> None:
    assert [r.discriminant for r in (TermRole.MEAN, TermRole.SLOPE, TermRole.GENERIC)] == [0, 1, 2]
    assert TermRole.from_name("Slope") is TermRole.SLOPE
    with pytest.raises(ValueError, match="unknown TermRole 'LogSlope'"):
        TermRole.from_name("LogSlope")
    with pytest.raises(TypeError, match="role: expected a str"):
        TermRole.from_name(1)


def test_checklist_11_descriptor_key_invariances() -> None:
    a, b, c = ident("s(a)"), ident("s(b)"), ident("s(c)")
    d1 = FitDescriptor("fam", (a, b, c), ResponseSig("fam", 1), RowPopulationTag(100))
    d2 = FitDescriptor("fam", (c, a, b), ResponseSig("other", 3), RowPopulationTag(7, "fold-3"))
    d3 = FitDescriptor("fam", (b, c, a), ResponseSig("fam"), None)
    assert d1.descriptor_key() == d2.descriptor_key() == d3.descriptor_key()
    assert (
        FitDescriptor("fam2", (a, b, c), ResponseSig("fam")).descriptor_key() != d1.descriptor_key()
    )
    assert FitDescriptor("fam", (a, b), ResponseSig("fam")).descriptor_key() != d1.descriptor_key()
    # duplicates are kept (a multiset, not a set)
    assert (
        FitDescriptor("fam", (a, a, b), ResponseSig("fam")).descriptor_key()
        != FitDescriptor("fam", (a, b, b), ResponseSig("fam")).descriptor_key()
    )


def test_artifact_key_contains_schema_tag_and_descriptor_hex() -> None:
    art = make_artifact()
    key = artifact_key(art.descriptor)
    assert key.startswith(SCHEMA_TAG + "/") and key.endswith(art.descriptor.descriptor_key().hex())
    assert artifact_key(art.descriptor.descriptor_key()) == key


# ------------------------------------------------------------------------------------------
# usability (checklist 59) and codec
# ------------------------------------------------------------------------------------------


def test_checklist_59_usable_only_when_schema_and_numbers_check_out() -> None:
    assert make_artifact().is_usable() and make_artifact().unusable_reason() is None
    assert not make_artifact(schema=2).is_usable()
    assert not make_artifact(objective=math.nan).is_usable()
    assert not make_artifact(objective=math.inf).is_usable()
    assert not make_artifact(rho=(np.nan,)).is_usable()
    bad_beta = np.linspace(-1.0, 1.0, 10)
    bad_beta[3] = np.inf
    art = make_artifact(raw_beta=bad_beta)
    assert not art.is_usable() and "term 1" in (art.unusable_reason() or "")
    rot = TermArtifact(ident(), TermRole.MEAN, BasisMeta.block_spec(2), [1.0], [],
                       joint_null_rotation=[[1.0, np.nan]])  # fmt: skip
    assert not rot.is_finite()
    # registered as a record type, found through the lazy registry too
    assert RECORD_TYPES["fit_artifact"] is FitArtifact
    assert get_record_type("fit_artifact") is FitArtifact


def test_round_trip_artifact_with_all_options() -> None:
    art = make_artifact()
    back = through_store(art)
    assert back == art
    assert back.terms[1].basis_meta.knots is not None
    assert back.terms[1].basis_meta.s_scale == 16.0
    assert back.descriptor.descriptor_key() == art.descriptor.descriptor_key()
    parts = art.to_parts()
    assert "terms/1/raw_beta" in parts.arrays and "terms/0/rho_for_term" in parts.arrays
    assert parts.arrays["terms/0/rho_for_term"].data.shape == (0,)  # empty arrays are kept
    assert parts.arrays["terms/1/constraint"].dims == ("raw_coef_1",)
    assert parts.fields["global"]["outer_objective"] == -42.0


def test_round_trip_unusable_artifact_keeps_it_unusable() -> None:
    art = make_artifact(objective=math.nan, rho=(np.inf,))
    parts = art.to_parts()
    assert parts.fields["global"]["outer_objective"] is None  # strict JSON: null, not NaN
    back = through_store(art)
    assert not back.is_usable()
    assert math.isnan(back.global_.outer_objective) and np.isinf(back.terms[1].rho_for_term[0])


finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def artifacts(draw: Any) -> FitArtifact:
    n_terms = draw(st.integers(0, 3))
    terms = []
    for i in range(n_terms):
        width = draw(st.integers(0, 5))
        rot = None
        if draw(st.booleans()):
            r, c = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            rot = np.array(draw(st.lists(finite, min_size=r * c, max_size=r * c))).reshape(r, c)
        meta = BasisMeta(
            kind=draw(st.text(max_size=5)),
            degree=draw(st.none() | st.integers(0, 9)),
            num_knots=draw(st.none() | st.integers(0, 99)),
            n_centers=draw(st.none() | st.integers(0, 99)),
            nullspace_order=draw(st.none() | st.integers(0, 4)),
            matern_nu=draw(st.none() | st.sampled_from([1, 3, 5, 7, 9])),
            periodic=draw(st.booleans()),
            knots=draw(st.none() | st.lists(finite, max_size=6).map(np.array)),
            s_scale=draw(st.none() | st.floats(min_value=1e-6, max_value=1e6)),
            penalty_order=draw(st.none() | st.integers(1, 3)),
            constraint=draw(st.none() | st.lists(finite, max_size=6).map(np.array)),
        )
        terms.append(
            TermArtifact(
                identity=ident(f"s(x{i})", width),
                role=draw(st.sampled_from(list(TermRole))),
                basis_meta=meta,
                raw_beta=np.array(draw(st.lists(finite, max_size=6)), dtype=float),
                rho_for_term=np.array(draw(st.lists(finite, max_size=3)), dtype=float),
                joint_null_rotation=rot,
            )
        )
    fam = draw(st.text(max_size=8))
    return FitArtifact(
        descriptor=FitDescriptor(
            fam,
            tuple(t.identity for t in terms),
            ResponseSig(fam, draw(st.integers(0, 3))),
            draw(
                st.none()
                | st.builds(
                    RowPopulationTag, st.integers(0, 10**6), st.none() | st.text(max_size=5)
                )
            ),  # fmt: skip
        ),
        terms=tuple(terms),
        global_=GlobalFitSummary(draw(finite), draw(st.booleans()), draw(st.integers(0, 10**6))),
        schema=draw(st.integers(0, 2)),
        created_unix_secs=draw(st.integers(0, 2**40)),
    )


@settings(max_examples=200, deadline=None)
@given(artifacts())
def test_round_trip_artifact_property(art: FitArtifact) -> None:
    back = through_store(art)
    assert back == art
    for x, y in zip(back.terms, art.terms, strict=True):
        assert x.raw_beta.tobytes() == y.raw_beta.tobytes()


def test_crate_json_round_trip_and_legacy_role() -> None:
    art = make_artifact()
    obj = _json.loads(_json.dumps(art.to_crate_json()))
    back = FitArtifact.from_crate_json(obj)
    assert back.descriptor == art.descriptor
    assert [t.identity for t in back.terms] == [t.identity for t in art.terms]
    assert np.array_equal(back.terms[1].raw_beta, art.terms[1].raw_beta)
    assert back.is_usable()
    obj["terms"][0]["role"] = "LogSlope"
    with pytest.raises(ValueError, match=r"crate_artifact\.terms\[0\]\.role: unknown TermRole"):
        FitArtifact.from_crate_json(obj)
    obj["terms"][0]["role"] = "Generic"
    obj["terms"][1]["joint_null_rotation"] = {"nrows": 2, "ncols": 2, "data": [1.0, 0.0, 0.0]}
    with pytest.raises(ValueError, match=r"joint_null_rotation\.data: expected length 4"):
        FitArtifact.from_crate_json(obj)
    with pytest.raises(ValueError, match="cannot export non-finite"):
        make_artifact(objective=math.nan).to_crate_json()


# ------------------------------------------------------------------------------------------
# errors name the field
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "exc", "pattern"),
    [
        (lambda: BasisMeta(3), TypeError, r"BasisMeta\.kind"),
        (lambda: BasisMeta("ps", degree=-1), ValueError, r"BasisMeta\.degree"),
        (lambda: BasisMeta("ps", periodic=None), TypeError, r"BasisMeta\.periodic"),
        (lambda: BasisMeta("ps", knots=[np.nan]), ValueError, r"BasisMeta\.knots"),
        (lambda: BasisMeta("ps", s_scale=0.0), ValueError, r"BasisMeta\.s_scale: expected > 0"),
        (lambda: BasisMeta("ps", constraint=[[1.0]]), ValueError, r"BasisMeta\.constraint"),
        (lambda: GlobalFitSummary("x", True, 1), TypeError, r"GlobalFitSummary\.outer_objective"),
        (lambda: GlobalFitSummary(1.0, 1, 1), TypeError, r"GlobalFitSummary\.converged"),
        (lambda: GlobalFitSummary(1.0, True, -1), ValueError, r"GlobalFitSummary\.n_rows"),
        (lambda: ResponseSig(None), TypeError, r"ResponseSig\.family_kind"),
        (lambda: ResponseSig("f", -2), ValueError, r"ResponseSig\.n_response_channels"),
        (lambda: RowPopulationTag(1, 5), TypeError, r"RowPopulationTag\.label"),
        (lambda: FitDescriptor("f", "abc", ResponseSig("f")), TypeError, r"term_identities"),
        (lambda: FitDescriptor("f", ["zz"], ResponseSig("f")), ValueError, r"term_identities\[0\]"),
        (lambda: FitDescriptor("f", [], "sig"), TypeError, r"FitDescriptor\.response_signature"),
        (lambda: FitDescriptor("f", [], ResponseSig("f"), 3), TypeError, r"row_population"),
        (
            lambda: TermArtifact(ident(), "Mean", BasisMeta("k"), [], []),
            TypeError,
            r"TermArtifact\.role",
        ),
        (
            lambda: TermArtifact(ident(), TermRole.MEAN, {}, [], []),
            TypeError,
            r"TermArtifact\.basis_meta",
        ),
        (
            lambda: TermArtifact(ident(), TermRole.MEAN, BasisMeta("k"), [[1.0]], []),
            ValueError,
            r"TermArtifact\.raw_beta: expected a 1-D",
        ),
        (
            lambda: TermArtifact(ident(), TermRole.MEAN, BasisMeta("k"), [], [], [1.0]),
            ValueError,
            r"TermArtifact\.joint_null_rotation: expected a 2-D",
        ),
        (lambda: FitArtifact("d", ()), TypeError, r"FitArtifact\.descriptor"),
        (
            lambda: FitArtifact(make_artifact().descriptor, (1,)),
            TypeError,
            r"FitArtifact\.terms\[0\]",
        ),
        (
            lambda: FitArtifact(make_artifact().descriptor, (), schema=-1),
            ValueError,
            r"FitArtifact\.schema",
        ),
        (
            lambda: term_identity_from_block("Mean", "s", [], [], 1),
            TypeError,
            "role: expected TermRole",
        ),
        (
            lambda: term_identity_from_block(TermRole.MEAN, "s", "ab", [], 1),
            TypeError,
            "penalty_labels",
        ),
        (
            lambda: term_identity_from_block(TermRole.MEAN, "s", [3], [], 1),
            TypeError,
            r"penalty_labels\[0\]",
        ),
        (
            lambda: term_identity_from_block(TermRole.MEAN, "s", [], [-1], 1),
            ValueError,
            r"nullspace_dims\[0\]",
        ),
        (
            lambda: term_identity_from_block(TermRole.MEAN, "s", [], [], -3),
            ValueError,
            "reduced_width",
        ),
    ],
)
def test_constructor_errors_name_the_field(factory: Any, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        factory()


def _parts(art: FitArtifact) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    p = art.to_parts()
    return _json.loads(_json.dumps(p.fields)), {k: v.data for k, v in p.arrays.items()}


@pytest.mark.parametrize(
    ("mutate", "exc", "pattern"),
    [
        (
            lambda f, a: f["terms"][0].update(role="LogSlope"),
            ValueError,
            r"terms\[0\]\.role: unknown",
        ),
        (lambda f, a: f["terms"][1].update(identity="xyz"), ValueError, r"terms\[1\]\.identity"),
        (lambda f, a: f["terms"].append({}), ValueError, r"terms\[2\]\.has_joint_null_rotation"),
        (lambda f, a: f.update(terms={}), TypeError, r"FitArtifact\.terms: expected a list"),
        (lambda f, a: f["global"].pop("n_rows"), ValueError, r"global\.n_rows: missing"),
        (lambda f, a: f["descriptor"].update(term_identities="x"), TypeError, r"term_identities"),
        (lambda f, a: f["descriptor"].pop("response_signature"), ValueError, "response_signature"),
        (
            lambda f, a: f["terms"][1]["basis_meta"].update(degree=-2),
            ValueError,
            r"basis_meta\.degree",
        ),
        (lambda f, a: a.pop("terms/1/knots"), ValueError, r"terms/1/knots: missing array"),
        (lambda f, a: a.update({"terms/5/raw_beta": np.zeros(1)}), ValueError, "unexpected arrays"),
        (lambda f, a: a.update({"terms/0/raw_beta": np.zeros((1, 1))}), ValueError, "expected 1-D"),
    ],
)
def test_from_parts_errors_name_the_field(mutate: Any, exc: type, pattern: str) -> None:
    fields, arrays = _parts(make_artifact())
    mutate(fields, arrays)
    with pytest.raises(exc, match=pattern):
        FitArtifact.from_parts(fields, arrays)


def test_every_record_type_round_trips_through_a_real_store() -> None:
    import uuid

    import gamstore
    from gamstore.records import BlockWarmStartRecord, InnerSummary, IteratePayload, WarmStartRecord

    store = gamstore.open_store(f"memory://model-roundtrip-{uuid.uuid4().hex}")
    block = BlockWarmStartRecord(
        "cf-1", 7, ["(parametric)", "s(x)"], [1, 3], rho=[0.1, -0.0],
        block_beta=[[1.0], [5e-324, 1.0, 2.0]], active_sets=[None, [2, 0]],
        inner=InnerSummary(1.0, 2.0, 3, True, 4.0, 5.0, 1e-9, [0.5], [0.25]),
    )  # fmt: skip
    flat = WarmStartRecord("surv-1", 3, 2, rho=[1.0], beta=[2.0, 3.0], prev_beta=[0.0, 0.0])
    payload = IteratePayload.encode([1.0, 2.0], 3.0, 4, beta=[1.0], hessian=np.eye(2))
    art = make_artifact()
    cases = [("block", "cf-1", block), ("inner", "surv-1", flat), ("outer", "s", payload),
             ("artifact", artifact_key(art.descriptor), art)]  # fmt: skip
    for keyspace, key, record in cases:
        assert store.save(keyspace, key, record) is not None
        entry = store.lookup_latest(keyspace, key)
        assert entry is not None and type(entry.record) is type(record)
        assert entry.record == record
