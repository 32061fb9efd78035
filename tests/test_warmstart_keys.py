"""Block-record and session key derivation (spec §2.5; checklist 8, 9, 12)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gamstore.fingerprint import key_fingerprint
from gamstore.warmstart import keys as keys_mod
from gamstore.warmstart.keys import (
    UnsupportedFamilyError,
    block_key,
    exact_session_key,
    likelihood_fingerprint,
    session_keys,
)
from gamstore.warmstart.specs import (
    BlockSpec,
    BlockwisePenalty,
    DensePenalty,
    DiagonalPenalty,
    FitOptions,
    FixedPenalty,
    KroneckerPenalty,
    LabeledPenalty,
)

KEY_RE = re.compile(r"cf-[0-9a-f]{16}\Z")


@dataclasses.dataclass
class Fam:
    """A family whose fingerprint is the hash of its response."""

    name: str = "poisson"
    y: np.ndarray | None = None

    def warm_start_fingerprint(self, specs: Sequence[BlockSpec], options: FitOptions) -> str | None:
        if self.y is None:
            return None
        return likelihood_fingerprint(self.name, {"y": self.y})


def _rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def make_inputs(
    n: int = 30,
) -> tuple[Fam, list[BlockSpec], FitOptions]:
    rng = _rng()
    y = rng.poisson(3.0, n).astype(float)
    x0 = np.column_stack([np.ones(n), rng.normal(size=n)])
    x1 = rng.normal(size=(n, 4))
    x2 = rng.normal(size=(n, 6))
    s1 = rng.normal(size=(4, 4))
    s1 = s1 @ s1.T
    specs = [
        BlockSpec("(parametric)", x0, offset=rng.normal(size=n)),
        BlockSpec(
            "s(x1)",
            x1,
            penalties=[DensePenalty(s1), DiagonalPenalty(np.arange(1.0, 5.0))],
            nullspace_dims=[1, 0],
            initial_log_lambdas=np.array([0.5, -1.0]),
        ),
        BlockSpec(
            "te(x2,x3)",
            x2,
            penalties=[
                KroneckerPenalty(np.eye(2) * 2.0, np.arange(9.0).reshape(3, 3)),
                BlockwisePenalty(np.eye(3) * 3.0, 1, 4, 6),
                LabeledPenalty("shared", DensePenalty(np.eye(6))),
                FixedPenalty(1.25, DensePenalty(np.eye(6) * 0.5)),
            ],
            nullspace_dims=[2],
            initial_log_lambdas=np.array([0.0, 1.0, 2.0]),
        ),
    ]
    return Fam(y=y), specs, FitOptions()


def _replace_block(specs: list[BlockSpec], i: int, **changes: Any) -> list[BlockSpec]:
    out = list(specs)
    old = out[i]
    kwargs = {
        "name": old.name,
        "design": old.design,
        "offset": old.offset,
        "penalties": old.penalties,
        "nullspace_dims": old.nullspace_dims,
        "initial_log_lambdas": old.initial_log_lambdas,
    }
    kwargs.update(changes)
    out[i] = BlockSpec(**kwargs)
    return out


def _bumped(a: np.ndarray, idx: tuple[int, ...], delta: float = 1e-9) -> np.ndarray:
    b = np.array(a, copy=True)
    b[idx] += delta
    return b


def _set_pen(specs: list[BlockSpec], i: int, j: int, pen: Any) -> list[BlockSpec]:
    pens = list(specs[i].penalties)
    pens[j] = pen
    return _replace_block(specs, i, penalties=pens)


Mut = Callable[[Fam, list[BlockSpec], FitOptions], tuple[Fam, list[BlockSpec], FitOptions]]

SPEC_MUTATIONS: dict[str, Mut] = {
    "family name": lambda f, s, o: (Fam("gaussian", f.y), s, o),
    "family fingerprint (response)": lambda f, s, o: (
        Fam(f.name, _bumped(f.y, (0,), 1.0)),
        s,
        o,
    ),
    "block name": lambda f, s, o: (f, _replace_block(s, 1, name="s(x1b)"), o),
    "design value": lambda f, s, o: (
        f,
        _replace_block(s, 1, design=_bumped(s[1].design, (7, 2))),
        o,
    ),
    "design value in last row": lambda f, s, o: (
        f,
        _replace_block(s, 2, design=_bumped(s[2].design, (29, 5))),
        o,
    ),
    "offset": lambda f, s, o: (f, _replace_block(s, 0, offset=_bumped(s[0].offset, (3,))), o),
    "offset None vs value": lambda f, s, o: (f, _replace_block(s, 0, offset=None), o),
    "dense penalty value": lambda f, s, o: (
        f,
        _set_pen(s, 1, 0, DensePenalty(_bumped(s[1].penalties[0].matrix, (0, 1)))),
        o,
    ),
    "diagonal penalty value": lambda f, s, o: (
        f,
        _set_pen(s, 1, 1, DiagonalPenalty(np.array([1.0, 2.0, 3.0, 4.5]))),
        o,
    ),
    "diagonal vs dense of same values": lambda f, s, o: (
        f,
        _set_pen(s, 1, 1, DensePenalty(np.diag(np.arange(1.0, 5.0)))),
        o,
    ),
    "kronecker left": lambda f, s, o: (
        f,
        _set_pen(s, 2, 0, KroneckerPenalty(np.eye(2) * 2.5, np.arange(9.0).reshape(3, 3))),
        o,
    ),
    "kronecker right": lambda f, s, o: (
        f,
        _set_pen(s, 2, 0, KroneckerPenalty(np.eye(2) * 2.0, np.arange(9.0).reshape(3, 3) + 1)),
        o,
    ),
    "kronecker factors swapped shape": lambda f, s, o: (
        f,
        _set_pen(s, 2, 0, KroneckerPenalty(np.eye(3) * 2.0, np.eye(2))),
        o,
    ),
    "blockwise column range": lambda f, s, o: (
        f,
        _set_pen(s, 2, 1, BlockwisePenalty(np.eye(3) * 3.0, 2, 5, 6)),
        o,
    ),
    "blockwise local": lambda f, s, o: (
        f,
        _set_pen(s, 2, 1, BlockwisePenalty(np.eye(3) * 3.5, 1, 4, 6)),
        o,
    ),
    "label": lambda f, s, o: (
        f,
        _set_pen(s, 2, 2, LabeledPenalty("other", DensePenalty(np.eye(6)))),
        o,
    ),
    "labeled vs unlabeled": lambda f, s, o: (f, _set_pen(s, 2, 2, DensePenalty(np.eye(6))), o),
    "fixed log lambda": lambda f, s, o: (
        f,
        _set_pen(s, 2, 3, FixedPenalty(1.5, DensePenalty(np.eye(6) * 0.5))),
        o,
    ),
    "fixed inner": lambda f, s, o: (
        f,
        _set_pen(s, 2, 3, FixedPenalty(1.25, DensePenalty(np.eye(6) * 0.25))),
        o,
    ),
    "penalty dropped": lambda f, s, o: (
        f,
        _replace_block(s, 2, penalties=list(s[2].penalties[:3])),
        o,
    ),
    "penalty order": lambda f, s, o: (
        f,
        _replace_block(s, 1, penalties=list(reversed(s[1].penalties))),
        o,
    ),
    "nullspace dims": lambda f, s, o: (f, _replace_block(s, 1, nullspace_dims=[2, 0]), o),
    "nullspace count": lambda f, s, o: (f, _replace_block(s, 1, nullspace_dims=[1, 0, 0]), o),
    "initial log lambda": lambda f, s, o: (
        f,
        _replace_block(s, 1, initial_log_lambdas=np.array([0.5, -1.5])),
        o,
    ),
    "block dropped": lambda f, s, o: (f, s[:2], o),
    "block order": lambda f, s, o: (f, [s[1], s[0], s[2]], o),
    "rows subset": lambda f, s, o: (
        Fam(f.name, f.y[:-1]),
        [
            BlockSpec(
                b.name,
                b.design[:-1],
                b.offset[:-1] if b.offset is not None else None,
                b.penalties,
                b.nullspace_dims,
                b.initial_log_lambdas,
            )
            for b in s
        ],
        o,
    ),
}


def _option_mutations() -> dict[str, Mut]:
    changed: dict[str, Any] = {
        "inner_max_cycles": 101,
        "inner_tol": 2e-8,
        "outer_max_iter": 201,
        "outer_tol": 2e-6,
        "outer_rel_cost_tol": 1e-9,
        "ridge_floor": 1e-12,
        "ridge_policy": "always",
        "use_reml": False,
        "use_outer_hessian": False,
        "compute_covariance": False,
        "early_exit_threshold": 0.5,
        "outer_score_subsample": 1000,
        "auto_outer_subsample": True,
        "jeffreys_tau": 0.5,
        "extra": (("link", "log"),),
    }
    names = {f.name for f in dataclasses.fields(FitOptions)}
    assert names == set(changed), "every FitOptions field must have a key-change test"
    out: dict[str, Mut] = {}
    for name, value in changed.items():
        out[f"option {name}"] = lambda f, s, o, _n=name, _v=value: (
            f,
            s,
            dataclasses.replace(o, **{_n: _v}),
        )
    out["option subsample size"] = lambda f, s, o: (
        f,
        s,
        dataclasses.replace(o, outer_score_subsample=999),
    )
    return out


ALL_MUTATIONS = {**SPEC_MUTATIONS, **_option_mutations()}


def test_key_format_and_determinism() -> None:
    fam, specs, opts = make_inputs()
    k = block_key(fam, specs, opts)
    assert KEY_RE.match(k)
    fam2, specs2, opts2 = make_inputs()
    assert block_key(fam2, specs2, opts2) == k


@pytest.mark.parametrize("what", sorted(ALL_MUTATIONS))
def test_each_input_changes_the_key(what: str) -> None:
    fam, specs, opts = make_inputs()
    base = block_key(fam, specs, opts)
    f2, s2, o2 = ALL_MUTATIONS[what](fam, specs, opts)
    assert block_key(f2, s2, o2) != base


def test_all_mutations_give_distinct_keys() -> None:
    fam, specs, opts = make_inputs()
    keys = {"base": block_key(fam, specs, opts)}
    for what, mut in ALL_MUTATIONS.items():
        keys[what] = block_key(*mut(fam, specs, opts))
    assert len(set(keys.values())) == len(keys)


def test_schema_tag_enters_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    fam, specs, opts = make_inputs()
    base = block_key(fam, specs, opts)
    base_sessions = session_keys(fam, specs, opts)
    monkeypatch.setattr(keys_mod, "SCHEMA_TAG", "gamstore-schema-999")
    assert block_key(fam, specs, opts) != base
    bumped = session_keys(fam, specs, opts)
    assert bumped.exact != base_sessions.exact and bumped.seed != base_sessions.seed
    assert bumped.exact.startswith("gamstore-schema-999/")


def test_fixed_log_lambda_signed_zero_is_distinct() -> None:
    # the seed hashes the raw bits of a fixed log λ (no -0.0 folding)
    fam, specs, opts = make_inputs()
    a = _set_pen(specs, 2, 3, FixedPenalty(0.0, DensePenalty(np.eye(6))))
    b = _set_pen(specs, 2, 3, FixedPenalty(-0.0, DensePenalty(np.eye(6))))
    assert block_key(fam, a, opts) != block_key(fam, b, opts)


def _relayout(a: np.ndarray, how: str) -> np.ndarray:
    if how == "F":
        return np.asfortranarray(a)
    if how == "strided":
        big = np.zeros((a.shape[0] * 2,) + a.shape[1:], dtype=a.dtype)
        big[::2] = a
        view = big[::2]
        assert a.shape[0] <= 1 or a.size == 0 or not view.flags.c_contiguous
        return view
    if how == "byteswapped":
        return a.astype(a.dtype.newbyteorder(">"))
    if how == "negzero":
        b = a.copy()
        b[b == 0.0] = -0.0
        return b
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["F", "strided", "byteswapped", "negzero"])
def test_key_unchanged_under_layout_changes(how: str) -> None:
    fam, specs, opts = make_inputs()
    base = block_key(fam, specs, opts)
    relaid = [
        BlockSpec(
            b.name,
            _relayout(b.design, how),
            _relayout(b.offset, how) if b.offset is not None else None,
            [
                DensePenalty(_relayout(p.matrix, how)) if isinstance(p, DensePenalty) else p
                for p in b.penalties
            ],
            b.nullspace_dims,
            _relayout(b.initial_log_lambdas, how) if b.initial_log_lambdas is not None else None,
        )
        for b in specs
    ]
    fam2 = Fam(fam.name, _relayout(fam.y, how) if fam.y is not None else None)
    assert block_key(fam2, relaid, opts) == base
    assert session_keys(fam2, relaid, opts) == session_keys(fam, specs, opts)


def test_large_design_streams_and_is_layout_free() -> None:
    # a design bigger than the fingerprint scratch buffer exercises the chunked paths
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 12))  # ~1.9 MB
    fam = Fam(y=np.ones(20_000))
    opts = FitOptions()
    k_c = block_key(fam, [BlockSpec("b", x)], opts)
    k_f = block_key(fam, [BlockSpec("b", np.asfortranarray(x))], opts)
    k_s = block_key(fam, [BlockSpec("b", x.astype(">f8"))], opts)
    assert k_c == k_f == k_s
    x2 = x.copy()
    x2[19_999, 11] += 1e-12
    assert block_key(fam, [BlockSpec("b", x2)], opts) != k_c


@given(
    design=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    how=st.sampled_from(["F", "strided", "byteswapped", "negzero"]),
)
def test_property_layout_invariance(design: np.ndarray, how: str) -> None:
    fam = Fam(y=np.ones(design.shape[0]))
    opts = FitOptions()
    a = block_key(fam, [BlockSpec("b", design)], opts)
    b = block_key(fam, [BlockSpec("b", _relayout(design, how))], opts)
    assert a == b


def test_key_does_not_mutate_inputs() -> None:
    fam, specs, opts = make_inputs()
    before = [(b.design.copy(), b.offset.copy()) for b in specs]  # type: ignore[union-attr]
    flags = [b.design.flags.writeable for b in specs]
    block_key(fam, specs, opts)
    session_keys(fam, specs, opts)
    for b, (d, o), w in zip(specs, before, flags, strict=True):
        np.testing.assert_array_equal(b.design, d)
        np.testing.assert_array_equal(b.offset, o)  # type: ignore[arg-type]
        assert b.design.flags.writeable == w


# -- family without a fingerprint (PR #4148, checklist 9) --------------------------------


class NoFingerprint:
    name = "negbin-custom"

    def warm_start_fingerprint(self, specs: Sequence[BlockSpec], options: FitOptions) -> None:
        return None


class NoMethod:
    name = "plain-family"


class Raising:
    name = "broken-family"

    def warm_start_fingerprint(self, specs: Sequence[BlockSpec], options: FitOptions) -> str:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("family", "match"),
    [
        (NoFingerprint(), r"'negbin-custom' cannot fingerprint"),
        (NoMethod(), r"'plain-family' has no warm_start_fingerprint"),
        (Raising(), r"'broken-family'.*RuntimeError: boom"),
    ],
)
def test_family_without_fingerprint_is_refused(family: Any, match: str) -> None:
    _, specs, opts = make_inputs()
    with pytest.raises(UnsupportedFamilyError, match=match):
        block_key(family, specs, opts)
    with pytest.raises(UnsupportedFamilyError, match=match):
        session_keys(family, specs, opts)
    assert issubclass(UnsupportedFamilyError, ValueError)


def test_bad_specs_and_options() -> None:
    fam, specs, opts = make_inputs()
    with pytest.raises(TypeError, match=r"specs\[1\]"):
        block_key(fam, [specs[0], "x"], opts)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single BlockSpec"):
        block_key(fam, specs[0], opts)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"specs\[1\].design: expected 30 rows"):
        block_key(fam, [specs[0], BlockSpec("b", np.ones((29, 2)))], opts)
    with pytest.raises(TypeError, match="options: expected FitOptions"):
        block_key(fam, specs, {"inner_tol": 1e-8})  # type: ignore[arg-type]


# -- session keys ---------------------------------------------------------------------------


def test_session_key_formats() -> None:
    fam, specs, opts = make_inputs()
    sk = session_keys(fam, specs, opts)
    assert re.fullmatch(
        r"gamstore-schema-\d+/family=poisson/dims=30x12/shape=[0-9a-f]{16}", sk.exact
    )
    assert re.fullmatch(r"gamstore-schema-\d+/family=poisson/seed/[0-9a-f]{16}", sk.seed)


def test_seed_key_is_fold_invariant_exact_key_is_not() -> None:
    fam, specs, opts = make_inputs()
    full = session_keys(fam, specs, opts)
    fold = session_keys(*SPEC_MUTATIONS["rows subset"](fam, specs, opts))
    assert fold.seed == full.seed
    assert fold.exact != full.exact
    # data and penalty values do not enter the seed key either
    for what in ("design value", "offset", "dense penalty value", "family fingerprint (response)"):
        other = session_keys(*SPEC_MUTATIONS[what](fam, specs, opts))
        assert other.seed == full.seed, what
        assert other.exact != full.exact, what


@pytest.mark.parametrize(
    "what",
    [
        "family name",
        "block name",
        "label",
        "labeled vs unlabeled",
        "penalty dropped",
        "nullspace dims",
        "block dropped",
        "option use_reml",
        "option jeffreys_tau",
        "blockwise column range",
    ],
)
def test_seed_key_changes_with_structure(what: str) -> None:
    fam, specs, opts = make_inputs()
    assert (
        session_keys(*ALL_MUTATIONS[what](fam, specs, opts)).seed
        != session_keys(fam, specs, opts).seed
    )


def test_session_and_block_keys_map_to_disjoint_folders() -> None:
    # checklist 12: the same key string under two keyspaces never shares a folder
    fam, specs, opts = make_inputs()
    k = block_key(fam, specs, opts)
    folders = {key_fingerprint(ks, k) for ks in ("inner", "block", "outer", "artifact", "from")}
    assert len(folders) == 5


# -- likelihood fingerprint ---------------------------------------------------------------


def test_likelihood_fingerprint() -> None:
    y = np.array([1.0, 2.0, 0.0])
    w = np.array([1.0, 1.0, 2.0])
    a = likelihood_fingerprint("binomial", {"y": y, "weights": w}, {"link": "logit", "n": 3})
    b = likelihood_fingerprint("binomial", {"weights": w, "y": y}, {"n": 3, "link": "logit"})
    assert a == b and re.fullmatch(r"[0-9a-f]{64}", a)
    assert (
        likelihood_fingerprint(
            "binomial",
            {"y": y[::-1].copy()[::-1], "weights": w},
            {
                "link": "logit",
                "n": 3,
            },
        )
        == a
    )
    variants = {
        a,
        likelihood_fingerprint("poisson", {"y": y, "weights": w}, {"link": "logit", "n": 3}),
        likelihood_fingerprint("binomial", {"y": y, "weights": None}, {"link": "logit", "n": 3}),
        likelihood_fingerprint(
            "binomial", {"y": y, "weights": np.zeros(0)}, {"link": "logit", "n": 3}
        ),
        likelihood_fingerprint("binomial", {"y": y, "weights": w}, {"link": "probit", "n": 3}),
        likelihood_fingerprint("binomial", {"y": y, "weights": w}, {"link": "logit", "n": 3.0}),
        likelihood_fingerprint("binomial", {"y": y, "weights": w}, {"link": "logit", "n": -3}),
        likelihood_fingerprint("binomial", {"y": y, "weights": w}, {"link": "logit", "n": True}),
        likelihood_fingerprint("binomial", {"y": y, "wts": w}, {"link": "logit", "n": 3}),
    }
    assert len(variants) == 9
    with pytest.raises(TypeError, match=r"scalars\['bad'\]"):
        likelihood_fingerprint("x", {}, {"bad": [1]})  # type: ignore[dict-item]


def test_session_keys_block_key_hint() -> None:
    fam, specs, opts = make_inputs()
    k = block_key(fam, specs, opts)
    assert session_keys(fam, specs, opts, block_key_hint=k) == session_keys(fam, specs, opts)
    # the exact session key follows the block key (same data <=> same exact key)
    other = session_keys(fam, specs, opts, block_key_hint="cf-0000000000000000")
    assert other.exact != session_keys(fam, specs, opts).exact
    assert other.seed == session_keys(fam, specs, opts).seed
    with pytest.raises(ValueError, match="block_key_hint"):
        session_keys(fam, specs, opts, block_key_hint="cf-XYZ")
    with pytest.raises(UnsupportedFamilyError):
        session_keys(NoFingerprint(), specs, opts, block_key_hint=k)


def test_exact_session_key_equals_the_session_keys_exact() -> None:
    fam, specs, opts = make_inputs()
    k = block_key(fam, specs, opts)
    assert exact_session_key(fam, specs, opts) == session_keys(fam, specs, opts).exact
    assert (
        exact_session_key(fam, specs, opts, block_key_hint=k)
        == session_keys(fam, specs, opts).exact
    )
    with pytest.raises(ValueError, match="block_key_hint"):
        exact_session_key(fam, specs, opts, block_key_hint="cf-XYZ")
    with pytest.raises(UnsupportedFamilyError):
        exact_session_key(NoFingerprint(), specs, opts, block_key_hint=k)
