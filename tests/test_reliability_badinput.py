"""Bad input across the public API: clear errors naming the field, and nothing stored.

Hypothesis draws wrong types, wrong shapes, NaN/inf, negative sizes and bad URLs for one
argument at a time (the others valid) of the store, the records, the fitter and the CLI.
Every call must raise ``ValueError``/``TypeError`` (exit code 2 for the CLI) whose message
names the offending argument, and must leave the store exactly as it was.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gamstore
from gamstore.store.testing import block_record

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),  # NaN and inf included
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
    st.just(np.array([[1.0, np.nan]])),
)


def _snapshot(store: gamstore.Store) -> list[tuple[str, int]]:
    return sorted((o.path, o.size) for o in store.backend.list(""))


def _names_field(exc: BaseException, *names: str) -> bool:
    text = str(exc)
    return any(n in text for n in names)


@pytest.fixture(scope="module")
def store() -> gamstore.Store:
    s = gamstore.open_store(f"memory://badinput-{uuid.uuid4().hex}")
    s.save("block", "existing", block_record("existing", 1))
    return s


# -- store ----------------------------------------------------------------------------------

GOOD_SAVE = {
    "keyspace": "block",
    "key": "k",
    "record": block_record("k", 0),
    "objective": 1.0,
    "iteration": 1,
    "kind": "checkpoint",
}


def _bad_for(field: str, value: Any) -> bool:
    """Whether ``value`` is really invalid for ``field`` of Store.save."""
    if field == "keyspace":
        return not (isinstance(value, str) and value in gamstore.store.KEYSPACES)
    if field == "key":
        return not (isinstance(value, str) and value)
    if field == "objective":
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
        return not ok
    if field == "iteration":
        ok = value is None or (type(value) is int and value >= 0)
        return not ok
    if field == "kind":
        return not (isinstance(value, str) and value in ("checkpoint", "final"))
    return not hasattr(value, "to_parts")


@SETTINGS
@given(field=st.sampled_from(sorted(GOOD_SAVE)), value=junk)
def test_store_save_rejects_bad_arguments(store: gamstore.Store, field: str, value: Any) -> None:
    if not _bad_for(field, value):
        return
    before = _snapshot(store)
    kwargs = dict(GOOD_SAVE, **{field: value})
    with pytest.raises((ValueError, TypeError)) as info:
        store.save(
            kwargs["keyspace"],
            kwargs["key"],
            kwargs["record"],
            objective=kwargs["objective"],
            iteration=kwargs["iteration"],
            kind=kwargs["kind"],
        )
    assert _names_field(info.value, field), f"{field}: {info.value}"
    assert _snapshot(store) == before


@SETTINGS
@given(field=st.sampled_from(["keyspace", "key"]), value=junk)
def test_store_lookups_reject_bad_arguments(store: gamstore.Store, field: str, value: Any) -> None:
    if not _bad_for(field, value):
        return
    before = _snapshot(store)
    args = {"keyspace": "block", "key": "existing", field: value}
    for op in (store.lookup, store.lookup_latest):
        with pytest.raises((ValueError, TypeError)) as info:
            op(args["keyspace"], args["key"])
        assert _names_field(info.value, field), str(info.value)
    with pytest.raises((ValueError, TypeError)) as info:
        store.session(args["key"], keyspace=args["keyspace"])
    assert _names_field(info.value, field)
    assert _snapshot(store) == before


@SETTINGS
@given(
    field=st.sampled_from(["budget_bytes", "ttl"]),
    value=st.one_of(
        st.integers(max_value=-1),
        st.floats(max_value=-1e-9),
        st.just(float("nan")),
        st.text(max_size=4),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_open_store_rejects_bad_budget_and_ttl(field: str, value: Any) -> None:
    if field == "ttl" and value is None:
        value = -1.0
    with pytest.raises((ValueError, TypeError)) as info:
        gamstore.open_store(f"memory://bad-{uuid.uuid4().hex}", **{field: value})
    assert _names_field(info.value, field)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/x",
        "gopher://x",
        "s3://",
        "s3://user:pass@bucket/x",
        "file://otherhost/x",
        42,
        3.5,
    ],
)
def test_open_store_rejects_bad_urls(url: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        gamstore.open_store(url)
    assert _names_field(info.value, "url")
    assert "pass" not in str(info.value) or "storage_options" in str(info.value)


def test_local_store_rejects_storage_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="storage_options"):
        gamstore.open_store(str(tmp_path), storage_options={"key": "x"})


# -- records ---------------------------------------------------------------------------------

arrays_bad = st.one_of(
    st.just(np.array([1.0, np.nan])),
    st.just(np.array([np.inf])),
    st.just(np.ones((2, 2))),
    st.just(np.array(["a", "b"])),
    st.just(np.array([1 + 2j])),
    st.just("rho"),
    st.just(None),
    st.just([object()]),
)


@SETTINGS
@given(field=st.sampled_from(["rho", "cost", "eval_id"]), value=st.one_of(arrays_bad, junk))
def test_iterate_payload_rejects_bad_fields(field: str, value: Any) -> None:
    good: dict[str, Any] = {"rho": np.zeros(3), "cost": 1.0, "eval_id": 3}
    args = dict(good, **{field: value})
    try:
        gamstore.IteratePayload(**args)
    except (ValueError, TypeError) as exc:
        assert _names_field(exc, field), f"{field}: {exc}"
        return
    # Accepted: then it must be a value the record really allows. The constructor checks
    # structure only (a stored payload is judged later); non-finite values must then be
    # refused when saving, naming the field, with nothing written.
    if field == "rho":
        arr = np.asarray(value, dtype=float)
        assert arr.ndim == 1
        if not np.isfinite(arr).all():
            s = gamstore.open_store(f"memory://bad-payload-{uuid.uuid4().hex}")
            with pytest.raises(ValueError, match="rho"):
                s.save("outer", "k", gamstore.IteratePayload(**args))
            assert _snapshot(s) == [(o, n) for o, n in _snapshot(s) if o == "zarr.json"]
    elif field == "cost":
        assert value is None or isinstance(value, (int, float))
    else:
        assert isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@SETTINGS
@given(
    field=st.sampled_from(["key", "n_rows", "block_names", "block_dims", "rho", "block_beta"]),
    value=st.one_of(arrays_bad, junk),
)
def test_block_record_rejects_bad_fields(field: str, value: Any) -> None:
    good: dict[str, Any] = {
        "key": "k",
        "n_rows": 10,
        "block_names": ("a", "b"),
        "block_dims": (2, 3),
        "rho": np.zeros(2),
        "block_beta": (np.zeros(2), np.zeros(3)),
    }
    args = dict(good, **{field: value})
    try:
        rec = gamstore.BlockWarmStartRecord(**args)
    except (ValueError, TypeError) as exc:
        assert _names_field(exc, field, field.rstrip("s")), f"{field}: {exc}"
        return
    # Accepted: the store either refuses it naming the field (nothing written) or it
    # round-trips bitwise (so it was valid after all).
    s = gamstore.open_store(f"memory://bad-rec-{uuid.uuid4().hex}")
    before = _snapshot(s)
    try:
        saved = s.save("block", rec.key, rec)
    except (ValueError, TypeError) as exc:
        assert _names_field(exc, field), f"{field}: {exc}"
        assert _snapshot(s) == before
        return
    assert saved is not None
    hit = s.lookup("block", rec.key)
    assert hit is not None and hit.record == rec


# -- fitter ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fit_data() -> Any:
    from gamstore.loso import simulate

    return simulate("gaussian", n=200, n_subjects=2, seed=1)


FIT_CASES: list[tuple[str, Any, tuple[str, ...]]] = [
    ("y", "no_such_column", ("y", "no_such_column")),
    ("y", 3, ("y",)),
    ("weights", "w", ("weights",)),
    ("weights", np.full(5, 1.0), ("weights",)),
    ("weights", -np.ones(200), ("weights",)),
    ("weights", np.full(200, np.nan), ("weights",)),
    ("offset", np.ones(7), ("offset",)),
    ("offset", np.full(200, np.inf), ("offset",)),
    ("knots", {"s(x0)": np.array([np.nan, 1.0])}, ("knots", "x0")),
    ("knots", 5, ("knots",)),
    ("data", 17, ("data",)),
    ("data", "a string", ("data",)),
]


@pytest.mark.parametrize(("field", "value", "names"), FIT_CASES)
def test_fit_rejects_bad_arguments(
    fit_data: Any, field: str, value: Any, names: tuple[str, ...]
) -> None:
    from gamstore.fit import GAM, s

    store = gamstore.open_store(f"memory://bad-fit-{uuid.uuid4().hex}")
    before = _snapshot(store)
    kwargs: dict[str, Any] = {"y": "y", "store": store}
    data = fit_data
    if field == "data":
        data = value
    else:
        kwargs[field] = value
    with pytest.raises((ValueError, TypeError)) as info:
        GAM([s("x0"), s("x1")], family="gaussian").fit(data, **kwargs)
    assert _names_field(info.value, *names), str(info.value)
    assert _snapshot(store) == before


def test_fit_rejects_nan_covariates_and_bad_model(fit_data: Any) -> None:
    from gamstore.fit import GAM, s

    bad = fit_data.copy()
    bad.loc[3, "x0"] = math.nan
    with pytest.raises(ValueError, match="x0"):
        GAM([s("x0")], family="gaussian", na_action="raise").fit(bad, y="y")
    assert GAM([s("x0")], family="gaussian").fit(bad, y="y").n_dropped == 1  # mgcv's na.omit
    with pytest.raises((ValueError, TypeError), match="family"):
        GAM([s("x0")], family="no-such-family")
    with pytest.raises((ValueError, TypeError), match="k"):
        GAM([s("x0", k=-3)], family="gaussian")


def test_fit_rejects_a_store_of_the_wrong_type(fit_data: Any) -> None:
    from gamstore.fit import GAM, s

    with pytest.raises(TypeError, match="store"):
        GAM([s("x0")], family="gaussian").fit(fit_data, y="y", store=12345)


# -- CLI ------------------------------------------------------------------------------------

CLI_CASES = [
    (["evict", "{url}", "--budget", "-5"], "budget"),
    (["evict", "{url}", "--budget", "lots"], "budget"),
    (["evict", "{url}", "--ttl", "-1d"], "ttl"),
    (["gc", "{url}", "--grace", "soon"], "grace"),
    (["ls", "{url}", "--keyspace", "nope"], "keyspace"),
    (["ls", "{url}", "--older-than", "yesterday"], "older"),
    (["ls", "ftp://host/x"], "url"),
    (["ls", "{url}", "-o", "novalue"], "storage-option"),
    (["du", "{url}", "-o", "key=secret"], "storage_options"),
]


@pytest.mark.parametrize(("argv", "needle"), CLI_CASES)
def test_cli_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, argv: list[str], needle: str
) -> None:
    from gamstore.cli import main

    url = str(tmp_path / "store")
    s = gamstore.open_store(url)
    s.save("block", "kept", block_record("kept", 1))
    before = _snapshot(s)
    result = CliRunner().invoke(main, [a.format(url=url) for a in argv])
    out = result.output + (str(result.exception) if result.exception else "")
    assert result.exit_code == 2, out
    assert needle.lower() in out.lower(), out
    assert "Traceback" not in out
    assert "secret" not in out
    assert _snapshot(s) == before
