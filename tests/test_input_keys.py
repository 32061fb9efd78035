"""Store keys from a fit's inputs, per-subject digests combined Merkle-style (issue 17 item 1).

A fold's key is derived from the full data's per-subject leaves minus the held-out subject,
and must equal the key computed from the fold's own data; one changed value changes exactly
the keys of the folds that contain it; rows moved between subjects' blocks (each subject's
own order kept) change nothing, because every fold reads its rows in canonical order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore.fit import GAM, s
from gamstore.fit.inputkey import canonical_blocks, fit_key, subject_order
from gamstore.loso import run_loso, simulate
from gamstore.loso.folds import fold_train
from gamstore.store import open_store
from gamstore.warmstart.keys import (
    KEY_VERSION,
    RowBlockDigests,
    input_block_key,
    label_text,
    leaf_digest,
    row_block_digests,
)

MODEL = GAM([s("x", 5)], linear=["z"])
KNOTS = {"x": np.linspace(-0.5, 1.5, 9)}

# -- strategies -------------------------------------------------------------------------------

_value = st.floats(-1e3, 1e3, allow_nan=False, width=64)
_row = st.tuples(_value, _value, _value)  # x, z, y


@st.composite
def grouped_data(draw: st.DrawFn) -> tuple[pd.DataFrame, list[Any]]:
    """A frame of 2-5 subjects (int or str labels), 1-5 rows each, subjects interleaved in a
    drawn order; returns it and its per-subject rows (the subject-local truth)."""
    n_subj = draw(st.integers(2, 5))
    labels: list[Any] = draw(
        st.sampled_from(
            [
                list(range(10, 10 + n_subj)),
                [f"s{i}" for i in range(n_subj)],
                list(range(n_subj))[::-1],
            ]
        )
    )
    per = {lab: draw(st.lists(_row, min_size=1, max_size=5)) for lab in labels}
    return interleave(per, draw(st.randoms(use_true_random=False))), labels


def interleave(per: dict[Any, list[tuple[float, float, float]]], rnd: Any) -> pd.DataFrame:
    """Rows of every subject, subjects interleaved at random, each subject's order kept."""
    seq = [lab for lab, rows in per.items() for _ in rows]
    rnd.shuffle(seq)
    taken = dict.fromkeys(per, 0)
    out = []
    for lab in seq:
        x, z, y = per[lab][taken[lab]]
        taken[lab] += 1
        out.append({"subj": lab, "x": x, "z": z, "y": y})
    return pd.DataFrame(out)


def fold_keys(df: pd.DataFrame) -> dict[Any, str]:
    """Per held-out subject: the fold's key from the full data's leaves (run_loso's way)."""
    full = MODEL.row_block_digests(df, "y", groups="subj")
    order = tuple(subject_order(df["subj"]))
    out = {}
    for subj in order:
        held = (df["subj"] == subj).to_numpy()
        train = fold_train(df, "subj", held, order)
        out[subj] = fit_key(MODEL, train, "y", None, None, KNOTS, full.without(subj))
    return out


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(grouped_data(), st.data())
def test_prop_fold_key_from_leaves_equals_key_of_the_folds_own_data(
    case: tuple[pd.DataFrame, list[Any]], data: st.DataObject
) -> None:
    df, labels = case
    subj = data.draw(st.sampled_from(labels))
    full = MODEL.row_block_digests(df, "y", groups="subj")
    order = tuple(subject_order(df["subj"]))
    held = (df["subj"] == subj).to_numpy()
    train = fold_train(df, "subj", held, order)
    merkle = fit_key(MODEL, train, "y", None, None, KNOTS, full.without(subj))
    own = MODEL.row_block_digests(train, "y", groups="subj")
    assert own == full.without(subj)
    assert merkle == fit_key(MODEL, train, "y", None, None, KNOTS, own)
    # the fold reads its rows in canonical order: subjects sorted, each in data order
    expected = pd.concat(
        [df[df["subj"] == lab] for lab in sorted(set(labels) - {subj})], ignore_index=True
    )
    pd.testing.assert_frame_equal(train, expected)
    # a plain fit of the same rows is one block: another key, by definition
    assert merkle != fit_key(MODEL, train, "y", None, None, KNOTS, None)


@settings(max_examples=40, deadline=None)
@given(grouped_data(), st.data())
def test_prop_one_changed_value_changes_exactly_the_folds_containing_it(
    case: tuple[pd.DataFrame, list[Any]], data: st.DataObject
) -> None:
    df, labels = case
    before = fold_keys(df)
    row = data.draw(st.integers(0, len(df) - 1))
    column = data.draw(st.sampled_from(["x", "z", "y"]))
    new = data.draw(_value.filter(lambda v: v != df.at[row, column] or v == 0.0))
    if new == df.at[row, column]:  # 0.0 against -0.0 hash alike: not a change of value
        return
    changed = df.copy()
    changed.at[row, column] = new
    after = fold_keys(changed)
    owner = df.at[row, "subj"]
    for subj in labels:
        if subj == owner:
            assert after[subj] == before[subj]  # the fold without that subject never saw it
        else:
            assert after[subj] != before[subj]


@settings(max_examples=40, deadline=None)
@given(grouped_data(), st.randoms(use_true_random=False))
def test_prop_rows_permuted_across_subjects_keep_every_fold_key(
    case: tuple[pd.DataFrame, list[Any]], rnd: Any
) -> None:
    df, labels = case
    per = {
        lab: list(df.loc[df["subj"] == lab, ["x", "z", "y"]].itertuples(index=False, name=None))
        for lab in labels
    }
    other = interleave(per, rnd)
    assert fold_keys(other) == fold_keys(df)
    # ... while a permutation within one subject is another fold data set
    lab = next((k for k, rows in per.items() if len(set(rows)) > 1), None)
    if lab is None:
        return
    per[lab] = per[lab][1:] + per[lab][:1]  # rotate: some row moves to another position
    moved = fold_keys(interleave(per, rnd))
    base = fold_keys(df)
    assert all((moved[k] == base[k]) == (k == lab) for k in labels)


# -- the key's model part ---------------------------------------------------------------------


def _df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "x": rng.uniform(size=60),
            "z": rng.normal(size=60),
            "y": rng.poisson(3.0, size=60).astype(float),
            "w": rng.uniform(0.5, 2.0, size=60),
            "g": rng.choice(["a", "b", "c"], size=60),
        }
    )


def test_every_model_input_enters_the_key() -> None:
    df = _df()
    base = GAM([s("x", 5)], linear=["z"], family="poisson")
    key = base.store_key(df, "y")
    others = [
        GAM([s("x", 6)], linear=["z"], family="poisson").store_key(df, "y"),
        GAM([s("x", 5)], linear=["z"], family="poisson(sqrt)").store_key(df, "y"),
        GAM([s("x", 5)], linear=["z"], family="quasipoisson").store_key(df, "y"),
        GAM([s("x", 5)], family="poisson").store_key(df, "y"),
        GAM([s("x", 5)], linear=["z"], family="poisson", na_action="raise").store_key(df, "y"),
        base.store_key(df, "y", weights="w"),
        base.store_key(df, "y", weights=df["w"].to_numpy()),
        base.store_key(df, "y", offset="w"),
        base.store_key(df, "y", knots={"x": (-1.0, 2.0)}),
        base.store_key(df, "y", knots={"x": (-1.0, 2.5)}),
        base.store_key(df.assign(x=df["x"] * 0.5), "y"),
        base.store_key(df.assign(y=df["y"] + 1.0), "y"),
        base.store_key(df.iloc[::-1].reset_index(drop=True), "y"),  # row order is data
    ]
    assert len({key, *others}) == len(others) + 1
    # a column the fit does not read, and the data's container, do not matter
    assert base.store_key(df.assign(unused=1.0), "y") == key
    assert base.store_key({c: df[c].to_numpy() for c in df.columns}, "y") == key
    assert base.store_key(df, "y") == key  # deterministic


def test_factor_levels_and_missing_values_enter_the_key() -> None:
    df = _df()
    model = GAM([s("x", 5)], linear=["g"])
    plain = model.store_key(df, "y")
    cat = df.assign(g=pd.Categorical(df["g"], categories=["a", "b", "c"]))
    other_ref = df.assign(g=pd.Categorical(df["g"], categories=["b", "a", "c"]))
    keys = {plain, model.store_key(cat, "y"), model.store_key(other_ref, "y")}
    assert len(keys) == 3
    y = df["y"].to_numpy().copy()
    y[[4]] = np.nan
    y2 = df["y"].to_numpy().copy()
    y2[[5]] = np.nan
    assert model.store_key(df.assign(y=y), "y") != model.store_key(df.assign(y=y2), "y")
    g = df["g"].to_numpy().copy()
    g[0] = "c" if g[0] != "c" else "a"
    assert model.store_key(df.assign(g=g), "y") != plain


def test_fitter_settings_enter_the_key() -> None:
    from gamstore.fit.newton import NewtonControl

    df = _df()
    a = GAM([s("x", 5)]).store_key(df, "y")
    b = GAM([s("x", 5)], control=NewtonControl(conv_tol=1e-5)).store_key(df, "y")
    assert a != b


def test_row_blocks_must_describe_the_data() -> None:
    df = _df().assign(subj=np.repeat([1, 2, 3], 20))
    model = GAM([s("x", 5)])
    store = open_store("memory://input-keys-bad-blocks")
    digests = model.row_block_digests(df, "y", groups="subj")
    with pytest.raises(ValueError, match="row_blocks: digests of 60 rows, but data has 40"):
        model.fit(df[df["subj"] != 1], y="y", store=store, row_blocks=digests)
    with pytest.raises(ValueError, match="row_blocks: digests of columns"):
        model.fit(df, y="y", weights="w", store=store, row_blocks=digests)
    with pytest.raises(TypeError, match="row_blocks: expected RowBlockDigests"):
        model.fit(df, y="y", store=store, row_blocks="cf-0000")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no block labelled 'int:7'"):
        digests.without(7)


def test_row_block_digests_validate_and_combine() -> None:
    cols = {"a": np.arange(6.0), "b": np.arange(6) % 2 == 0}
    d = row_block_digests(cols, [("p", slice(0, 2)), ("q", np.array([5, 2, 3]))])
    assert d.labels == ("str:'p'", "str:'q'") and d.sizes == (2, 3) and d.n_rows == 5
    assert d.leaves[1] == leaf_digest({"a": np.array([5.0, 2.0, 3.0]), "b": cols["b"][[5, 2, 3]]})
    # the block order, a label and a row count are part of the data digest
    swapped = row_block_digests(cols, [("q", np.array([5, 2, 3])), ("p", slice(0, 2))])
    relabelled = row_block_digests(cols, [("p", slice(0, 2)), ("r", np.array([5, 2, 3]))])
    assert len({d.root(), swapped.root(), relabelled.root()}) == 3
    assert d.without("q").root() == row_block_digests(cols, [("p", slice(0, 2))]).root()
    with pytest.raises(ValueError, match="one common length"):
        row_block_digests({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError, match="a label occurs twice"):
        RowBlockDigests(("a",), ("int:1", "int:1"), (1, 1), (bytes(32), bytes(32)))
    with pytest.raises(ValueError, match="32-byte digests"):
        RowBlockDigests(("a",), ("int:1",), (1,), (b"x",))
    assert label_text(np.int64(3)) == label_text(3) == "int:3"
    assert len({label_text(3), label_text(3.0), label_text("3")}) == 3
    assert KEY_VERSION == 2


def test_input_block_key_binds_every_part() -> None:
    from gamstore.warmstart.specs import FitOptions

    d = row_block_digests({"y": np.arange(4.0)})
    opts = FitOptions()
    base = input_block_key("poisson", "{}", d, opts)
    assert base.startswith("cf-") and len(base) == 19
    variants = {
        input_block_key("gaussian", "{}", d, opts),
        input_block_key("poisson", '{"k":1}', d, opts),
        input_block_key("poisson", "{}", row_block_digests({"y": np.arange(5.0)}), opts),
        input_block_key("poisson", "{}", d, FitOptions(outer_tol=1e-3)),
        input_block_key("poisson", "{}", d, opts, {"knots/x": np.zeros(3)}),
    }
    assert base not in variants and len(variants) == 5


def test_canonical_blocks_of_sorted_and_interleaved_labels() -> None:
    blocks, perm = canonical_blocks(np.array([1, 1, 2, 3, 3]))
    assert perm is None and [b for _, b in blocks] == [slice(0, 2), slice(2, 3), slice(3, 5)]
    blocks, perm = canonical_blocks(np.array(["b", "a", "b", "a"]))
    assert [lab for lab, _ in blocks] == ["a", "b"]
    assert perm is not None and perm.tolist() == [1, 3, 0, 2]
    mixed, _ = canonical_blocks(np.array([2, "a", 2], dtype=object))  # unsortable: appearance
    assert [lab for lab, _ in mixed] == [2, "a"]


# -- hits ---------------------------------------------------------------------------------------


def test_exact_refit_and_repeated_loso_hit_without_hashing_a_design(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gamstore.warmstart.blocks as blocks_mod

    def no_design_hash(*a: Any, **k: Any) -> str:
        raise AssertionError("the built-in fitter hashed its built design")

    monkeypatch.setattr(blocks_mod, "block_key", no_design_hash)
    df = simulate("poisson", n=600, n_subjects=4, seed=2)
    df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # subjects interleaved
    model = GAM([s("x0"), s("x1")], family="poisson", checkpoint_interval=1e9)
    store = open_store("memory://input-keys-hits")
    first = model.fit(df, y="y", store=store)
    again = model.fit(df, y="y", store=store)
    assert (first.warm, again.warm) == ("cold", "exact")
    assert abs(again.reml - first.reml) <= 1e-9 * abs(first.reml)
    a = run_loso(df, model, subject="subj", store=store, compare_cold=True)
    b = run_loso(df, model, subject="subj", store=store)
    assert (a["status"] == "ok").all() and (b["status"] == "ok").all()
    assert set(a["warm_source"].sel(start="warm").values) == {"cross-fit"}
    assert set(b["warm_source"].values.ravel()) == {"exact"}
    assert b["full_warm_source"].item() == "exact"
    # the same optimum as the first run's warm and cold folds (same rows, same order)
    for prev in (a["reml"].sel(start="warm"), a["reml"].sel(start="cold")):
        np.testing.assert_allclose(b["reml"].sel(start="warm"), prev, rtol=1e-9)


# -- deferred digests (run_loso makes them when a fold first needs its key) -------------------


class _CountingGAM(GAM):
    """A GAM counting how often the per-subject digests of a LOSO run are made."""

    made = 0

    def row_block_digests(self, *args: Any, **kwargs: Any) -> RowBlockDigests:
        type(self).made += 1
        return super().row_block_digests(*args, **kwargs)


def test_deferred_digests_give_the_eager_keys_and_are_made_once() -> None:
    import pickle

    from gamstore.fit.inputkey import DeferredRowBlocks

    df = _df().assign(subj=np.repeat([3, 1, 2], 20))
    full = MODEL.row_block_digests(df, "y", groups="subj")
    calls = []

    def make() -> RowBlockDigests:
        calls.append(1)
        return MODEL.row_block_digests(df, "y", groups="subj")

    deferred = DeferredRowBlocks(make)
    order = tuple(subject_order(df["subj"]))
    views = {subj: deferred.without(subj) for subj in order}
    assert not calls and "not made yet" in repr(views[1])
    for subj in order:
        train = fold_train(df, "subj", (df["subj"] == subj).to_numpy(), order)
        eager = fit_key(MODEL, train, "y", None, None, KNOTS, full.without(subj))
        assert fit_key(MODEL, train, "y", None, None, KNOTS, views[subj]) == eager
    assert len(calls) == 1 and deferred.computed
    # a worker process receives the digests themselves
    assert pickle.loads(pickle.dumps(views[2])) == full.without(2)
    assert pickle.loads(pickle.dumps(deferred)) == full
    # digests that cannot be made: the fit hashes its own data (as without row_blocks)
    train = fold_train(df, "subj", (df["subj"] == 1).to_numpy(), order)
    none = DeferredRowBlocks(lambda: None).without(1)
    assert fit_key(MODEL, train, "y", None, None, KNOTS, none) == fit_key(
        MODEL, train, "y", None, None, KNOTS, None
    )
    with pytest.raises(KeyError):
        DeferredRowBlocks(lambda: full).without(7).resolve()
    with pytest.raises(TypeError, match="make: expected a callable"):
        DeferredRowBlocks(full)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", ["always", "adaptive"])
def test_loso_makes_its_digests_only_when_a_fold_needs_its_key(policy: str) -> None:
    from gamstore.warmstart.policy import COSTS, set_default_policy

    df = simulate("poisson", n=400, n_subjects=4, seed=3)
    model = _CountingGAM([s("x0"), s("x1")], family="poisson")
    store = open_store(f"memory://input-keys-deferred-{policy}")
    _CountingGAM.made = 0
    old = set_default_policy(policy)
    try:
        COSTS.clear()  # no history: the adaptive policy skips the new store's lookups
        ds = run_loso(df, model, subject="subj", store=store, progress=False)
    finally:
        set_default_policy(old)
    assert (ds["status"] == "ok").all()
    decisions = str(ds.attrs.get("warm_decisions", ""))
    keyed = any(
        p.strip().startswith(("looked up", "saved")) for p in decisions.split(";") if p.strip()
    )
    assert _CountingGAM.made == int(keyed), decisions
    if policy != "always":
        return
    # every fold saved under the key the eager digests give
    knots = {
        k: np.asarray(v, dtype=np.float64) for k, v in dict(model.fit(df, y="y").knots).items()
    }
    full = model.row_block_digests(df, "y", groups="subj")
    order = tuple(subject_order(df["subj"]))
    for subj in order:
        train = fold_train(df, "subj", (df["subj"] == subj).to_numpy(), order)
        key = fit_key(model, train, "y", None, None, knots, full.without(subj))
        assert store.lookup("block", key) is not None, subj
