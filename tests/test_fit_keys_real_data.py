"""Property: factor levels/contrasts and the missing-value pattern are part of the warm-start
keys (issue 18, item 6). Two fits share an exact key only when they are the same model on the
same rows; a different reference level is not even a cross-fit parent."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gamstore.artifact import artifact_key
from gamstore.fit import GAM, s
from gamstore.fit.warm import LikelihoodKey, block_specs, fit_options
from gamstore.warmstart.artifacts import descriptor_for
from gamstore.warmstart.keys import block_key

LEVELS = ["a", "b", "c"]
RNG = np.random.default_rng(7)
N = 90
BASE = pd.DataFrame(
    {
        "x": RNG.uniform(size=N),
        "g": RNG.choice(LEVELS, size=N),
        "y": RNG.normal(size=N),
    }
)
MODEL = GAM([s("x", 5)], linear=["g"])


def keys(order: list[str], missing: frozenset[int]) -> tuple[str, str]:
    df = BASE.assign(g=pd.Categorical(BASE["g"], categories=order))
    y = df["y"].to_numpy().copy()
    y[sorted(missing)] = np.nan
    prob, _ = MODEL.prepare(df.assign(y=y), "y")
    fam = LikelihoodKey(prob)
    specs = block_specs(prob)
    return block_key(fam, specs, fit_options(MODEL.control)), artifact_key(
        descriptor_for(fam, specs)
    )


orders = st.permutations(LEVELS)
patterns = st.frozensets(st.integers(0, N - 1), max_size=3)


@settings(max_examples=25, deadline=None)
@given(orders, patterns, orders, patterns)
def test_keys_separate_reference_levels_and_na_patterns(
    o1: list[str], m1: frozenset[int], o2: list[str], m2: frozenset[int]
) -> None:
    k1, d1 = keys(list(o1), m1)
    k2, d2 = keys(list(o2), m2)
    same_model = list(o1) == list(o2)
    assert (k1 == k2) == (same_model and m1 == m2)
    # the cross-fit artifact key ignores the rows but not the factor coding
    assert (d1 == d2) == same_model


def test_keys_of_complete_numeric_data_are_unchanged_by_the_new_fields() -> None:
    # no factor and no omitted row: the likelihood fingerprint has no extra inputs, so keys
    # written before factors and missing values existed still match
    prob, _ = GAM([s("x", 5)]).prepare(BASE, "y")
    assert prob.design.dropped.size == 0 and not prob.design.has_factors
    assert block_specs(prob)[0].name == "(parametric)"
