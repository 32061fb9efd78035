"""Explicit resume points in the ``from`` keyspace (spec §4.6): save, load, refusals."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore import warmstart as ws
from gamstore.records import IteratePayload, WarmStartRecord
from gamstore.store import open_store
from gamstore.warmstart.capability import WarmStartStore, clear_memo
from gamstore.warmstart.from_model import (
    FROM_KEYSPACE,
    ResumePoint,
    formula_key,
    load_resume_point,
    save_resume_point,
)

FORMULA = "y ~ s(x0) + s(x1, k=12) + z"
KEY = "y~s(x0)+s(x1,k=12)+z"
RHO = np.array([0.25, -1.5])
BETA = np.linspace(-1.0, 1.0, 22)


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


@pytest.fixture(params=["memory", "local"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://ws-from-{uuid.uuid4().hex}"
    return str(tmp_path / "store")


def _entries(store: Any) -> list[Any]:
    return list(store.entries(FROM_KEYSPACE))


# -- key ----------------------------------------------------------------------------------


def test_formula_key_removes_all_whitespace() -> None:
    assert formula_key(FORMULA) == KEY
    assert formula_key(" y~s(x0)\t+\ns(x1,  k=12)\r\n+ z ") == KEY
    assert formula_key("y ~\u00a0s(x0)\u2003+ s(x1, k=12) + z") == KEY  # Unicode spaces too
    assert formula_key(KEY) == KEY
    assert formula_key("y ~ s(x0)") != formula_key("y ~ s(x1)")
    with pytest.raises(TypeError, match="formula: expected a str"):
        formula_key(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="formula"):
        formula_key(b"y~x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="formula: expected a non-empty"):
        formula_key(" \t\n")


# -- round trip on real stores ----------------------------------------------------------------


def test_save_and_load_round_trip(url: str) -> None:
    store = open_store(url)
    assert save_resume_point(store, FORMULA, RHO, BETA) is True
    # formula compared with whitespace removed
    point = load_resume_point(store, "y~s(x0) +s(x1,k=12)+ z", rho_dim=2, beta_dim=22)
    assert isinstance(point, ResumePoint)
    assert point.formula == KEY and point.rho_dim == 2 and point.beta_dim == 22
    assert point.rho.tobytes() == RHO.tobytes() and point.beta.tobytes() == BETA.tobytes()
    assert not point.rho.flags.writeable and not point.beta.flags.writeable
    assert point.created > 0
    assert not point.consumed
    point.mark_consumed()
    assert point.consumed
    # one final IteratePayload, iteration 0, under the formula key in keyspace "from"
    (info,) = _entries(store)
    entry = store.read_entry(info)
    assert entry is not None and entry.keyspace == "from" and entry.key == KEY
    assert entry.kind == "final" and entry.iteration == 0 and entry.objective is None
    assert isinstance(entry.record, IteratePayload)
    assert entry.record.eval_id == 0 and entry.record.hessian_dim == 0
    # the keyspaces are disjoint: nothing under "outer" with the same key string
    assert store.lookup("outer", KEY) is None
    # another formula is a miss
    assert load_resume_point(store, "y ~ s(x0)", 2, 22) is None


def test_url_argument_and_reopened_store(url: str) -> None:
    assert save_resume_point(url, FORMULA, RHO, BETA)
    clear_memo()  # a new process: nothing memoized, the entry is read back from storage
    point = load_resume_point(url, FORMULA, 2, 22)
    assert point is not None and point.rho.tobytes() == RHO.tobytes()


def test_newest_point_wins_and_older_ones_are_removed(url: str) -> None:
    store = open_store(url)
    other = "y ~ s(x0)"
    assert save_resume_point(store, other, [1.0], [0.5, 0.5])
    assert save_resume_point(store, FORMULA, RHO, BETA)
    assert save_resume_point(store, FORMULA, RHO + 1.0, BETA * 2.0)
    point = load_resume_point(store, FORMULA, 2, 22)
    assert point is not None
    np.testing.assert_array_equal(point.rho, RHO + 1.0)
    np.testing.assert_array_equal(point.beta, BETA * 2.0)
    # one entry per formula remains; the other formula's point is untouched
    assert len(_entries(store)) == 2
    kept = load_resume_point(store, other, 1, 2)
    assert kept is not None and kept.rho.tolist() == [1.0]


def test_rho_only_model_without_smooths(url: str) -> None:
    store = open_store(url)
    assert save_resume_point(store, "y ~ z", [], [1.0, 2.0])
    point = load_resume_point(store, "y~z", 0, 2)
    assert point is not None and point.rho_dim == 0 and point.beta.tolist() == [1.0, 2.0]


# -- refusals and misses ------------------------------------------------------------------------


def test_dimension_mismatch_is_refused_by_name(url: str) -> None:
    store = open_store(url)
    assert save_resume_point(store, FORMULA, RHO, BETA)
    with pytest.raises(ValueError, match=r"rho_dim: .* has 2 smoothing parameters, .*expects 3"):
        load_resume_point(store, FORMULA, 3, 22)
    with pytest.raises(ValueError, match=r"beta_dim: .* has 22 coefficients, .*expects 21"):
        load_resume_point(store, FORMULA, 2, 21)
    assert load_resume_point(store, FORMULA, 2, 22) is not None


def test_missing_foreign_and_malformed_entries_are_none(url: str) -> None:
    store = open_store(url)
    assert load_resume_point(store, FORMULA, 2, 22) is None  # nothing stored
    # a foreign record type under the key
    store.save(FROM_KEYSPACE, KEY, WarmStartRecord(key=KEY, n_rows=1, n_cols=1, beta=[1.0]))
    assert load_resume_point(store, FORMULA, 2, 22) is None
    # wrong schema, no β: not a usable resume point (the newest entry is the one read)
    bad = [
        IteratePayload(rho=RHO, cost=0.0, eval_id=0, beta=BETA, schema=2),
        IteratePayload(rho=RHO, cost=0.0, eval_id=0),
    ]
    for payload in bad:
        store.save(FROM_KEYSPACE, KEY, payload, iteration=0, kind="final")
        assert load_resume_point(store, FORMULA, 2, 22) is None
    # a good point saved afterwards is found again
    assert save_resume_point(store, FORMULA, RHO, BETA)
    assert load_resume_point(store, FORMULA, 2, 22) is not None


class _OneEntryStore:
    """A store-like object whose newest ``from`` entry is given (the codec itself refuses
    non-finite arrays, so such payloads can only come from another writer or a bug)."""

    def __init__(self, entry: Any) -> None:
        self.entry = entry
        self.url = "fake://one-entry"

    def save(self, *args: Any, **kwargs: Any) -> str | None:
        return None

    def lookup(self, keyspace: str, key: str) -> Any:
        return self.entry

    def lookup_latest(self, keyspace: str, key: str) -> Any:
        return self.entry

    def session(self, key: str, keyspace: str = "outer") -> Any:
        return None


@pytest.mark.parametrize(
    "payload",
    [
        IteratePayload(rho=[np.nan, 0.0], cost=0.0, eval_id=0, beta=BETA),
        IteratePayload(rho=RHO, cost=0.0, eval_id=0, beta=np.r_[BETA[:-1], np.inf]),
    ],
)
def test_non_finite_payload_is_none(payload: IteratePayload) -> None:
    from types import SimpleNamespace

    good = IteratePayload(rho=RHO, cost=0.0, eval_id=0, beta=BETA)
    control = SimpleNamespace(record=good, key=KEY, created=5, nbytes=100)
    assert load_resume_point(_OneEntryStore(control), FORMULA, 2, 22) is not None
    entry = SimpleNamespace(record=payload, key=KEY, created=5, nbytes=100)
    assert load_resume_point(_OneEntryStore(entry), FORMULA, 2, 22) is None
    # an entry whose key string is not the formula's (a folder collision) is refused too
    other = SimpleNamespace(record=good, key="y~x", created=5, nbytes=100)
    assert load_resume_point(_OneEntryStore(other), FORMULA, 2, 22) is None


def test_corrupt_bytes_on_disk_are_a_miss(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = open_store(str(root))
    assert save_resume_point(store, FORMULA, RHO, BETA)
    chunks = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.parent.name == "values"
        and p.name == "0"  # entry format 2: the packed floats
    ]
    assert len(chunks) == 1, chunks
    raw = bytearray(chunks[0].read_bytes())
    raw[0] ^= 0xFF
    chunks[0].write_bytes(bytes(raw))
    clear_memo()
    assert load_resume_point(str(root), FORMULA, 2, 22) is None
    assert load_resume_point(open_store(str(root)), FORMULA, 2, 22) is None


# -- best effort ----------------------------------------------------------------------------


def test_no_store_is_a_no_op() -> None:
    assert save_resume_point(None, FORMULA, RHO, BETA) is False
    assert load_resume_point(None, FORMULA, 2, 22) is None
    # bad arguments are still named without a store
    with pytest.raises(ValueError, match="rho"):
        save_resume_point(None, FORMULA, [np.nan], BETA)
    with pytest.raises(ValueError, match="rho_dim"):
        load_resume_point(None, FORMULA, -1, 22)


def test_read_only_store_refuses_writes_but_reads(url: str) -> None:
    assert save_resume_point(open_store(url), FORMULA, RHO, BETA)
    ro = open_store(url, read_only=True)
    assert save_resume_point(ro, FORMULA, RHO + 1.0, BETA) is False
    point = load_resume_point(ro, FORMULA, 2, 22)
    assert point is not None and point.rho.tobytes() == RHO.tobytes()


def test_unreachable_store_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise OSError("storage unreachable")

    cap = WarmStartStore(opener=broken)
    with caplog.at_level(logging.WARNING, logger="gamstore.warmstart"):
        assert save_resume_point(cap, FORMULA, RHO, BETA) is False
        assert load_resume_point(cap, FORMULA, 2, 22) is None
    assert "could not be opened" in caplog.text


def test_bad_arguments_are_named(url: str) -> None:
    store = open_store(url)
    cases: list[tuple[Any, Any, Any, type, str]] = [
        (1, RHO, BETA, TypeError, "formula"),
        ("  ", RHO, BETA, ValueError, "formula"),
        (FORMULA, [np.inf, 1.0], BETA, ValueError, r"rho: expected finite"),
        (FORMULA, np.ones((2, 2)), BETA, ValueError, r"rho: expected a 1-D vector"),
        (FORMULA, ["a"], BETA, TypeError, "rho"),
        (FORMULA, RHO, [], ValueError, r"beta: expected the model's flat coefficients"),
        (FORMULA, RHO, [1.0, np.nan], ValueError, r"beta: expected finite"),
    ]
    for formula, rho, beta, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            save_resume_point(store, formula, rho, beta)
    assert _entries(store) == []
    for rho_dim, beta_dim, exc, pattern in [
        (-1, 2, ValueError, "rho_dim"),
        (True, 2, TypeError, "rho_dim"),
        (2, 1.5, TypeError, "beta_dim"),
    ]:
        with pytest.raises(exc, match=pattern):
            load_resume_point(store, FORMULA, rho_dim, beta_dim)


def test_exported_from_the_warmstart_package() -> None:
    assert ws.save_resume_point is save_resume_point
    assert ws.load_resume_point is load_resume_point
    assert ws.ResumePoint is ResumePoint
    assert {"save_resume_point", "load_resume_point", "ResumePoint"} <= set(ws.__all__)


# -- property -----------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(["y", "~", "s(x0)", "+", "z", "k=3", ","]), min_size=1,
                    max_size=8),
    gaps=st.lists(st.sampled_from(["", " ", "\t", "\n", "  "]), min_size=9, max_size=9),
    rho=st.lists(finite, max_size=4),
    beta=st.lists(finite, min_size=1, max_size=6),
)  # fmt: skip
def test_property_whitespace_never_matters_and_values_are_bitwise(
    tokens: list[str], gaps: list[str], rho: list[float], beta: list[float]
) -> None:
    spaced = "".join(g + t for g, t in zip(gaps, tokens, strict=False)) + gaps[-1]
    store = open_store(f"memory://ws-from-prop-{uuid.uuid4().hex}")
    assert save_resume_point(store, spaced, rho, beta)
    point = load_resume_point(store, "".join(tokens), len(rho), len(beta))
    assert point is not None and point.formula == "".join(tokens)
    assert point.rho.tobytes() == np.asarray(rho, dtype=np.float64).tobytes()
    assert point.beta.tobytes() == np.asarray(beta, dtype=np.float64).tobytes()
