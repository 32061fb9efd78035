"""The warm-start plan (exact record, then cross-fit artifact; checklist 66, 67), real-store
round trips (local directory and memory), and the package's public names."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import numpy as np
import pytest
from test_warmstart_artifacts import RHO, Model, _betas
from test_warmstart_fakes import Family, assert_unchanged, freeze, make_fit

import gamstore.warmstart as ws_pkg
from gamstore.store import open_store
from gamstore.warmstart.artifacts import capture_fit_artifact
from gamstore.warmstart.blocks import (
    BlockWarmStart,
    CachedInner,
    load_block_warm_start,
    store_block_warm_start,
)
from gamstore.warmstart.capability import WarmStartStore, clear_memo, warm_store
from gamstore.warmstart.keys import UnsupportedFamilyError
from gamstore.warmstart.plan import plan_warm_start
from gamstore.warmstart.records_io import load_record, store_record
from gamstore.warmstart.specs import FitOptions, physical_to_outer


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    clear_memo()


@pytest.fixture(params=["memory", "local"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://ws-plan-{uuid.uuid4().hex}"
    return str(tmp_path / "store")


def test_public_names_resolve() -> None:
    for name in ws_pkg.__all__:
        assert getattr(ws_pkg, name) is not None, name
    with pytest.raises(AttributeError):
        ws_pkg.no_such_name  # noqa: B018


def test_plan_no_store_is_cold_and_needs_no_fingerprint() -> None:
    _, specs, opts = make_fit()
    rho0 = np.array([1.0, 2.0, 3.0])
    snap = freeze(specs, rho0)
    plan = plan_warm_start(None, Family("custom", None), specs, opts, rho0)
    assert_unchanged(snap, specs, rho0)
    assert plan.source == "cold" and plan.key is None and plan.warm is None
    assert not plan.skip_seed_screening
    np.testing.assert_array_equal(plan.rho0, rho0)
    assert plan.rho0 is not rho0


def test_plan_store_without_fingerprint_refused(store_url: str) -> None:
    _, specs, opts = make_fit()
    with pytest.raises(UnsupportedFamilyError):
        plan_warm_start(store_url, Family("custom", None), specs, opts, np.zeros(3))


def test_plan_prefers_exact_then_cross_fit(store_url: str) -> None:
    m = Model()
    fam, specs, gauge = m.fit()
    opts = FitOptions()
    p2o = physical_to_outer(specs)
    rho0 = np.zeros(3)
    snap = freeze(fam, specs, gauge, rho0)
    cold = plan_warm_start(store_url, fam, specs, opts, rho0, gauge=gauge)
    assert_unchanged(snap, fam, specs, gauge, rho0)
    assert cold.source == "cold" and cold.key is not None and not cold.skip_seed_screening
    # a parent artifact exists: the cross-fit transfer is used, ρ0 replaced
    assert capture_fit_artifact(store_url, fam, specs, gauge, _betas(specs), RHO, p2o, 1.0, True)
    cross = plan_warm_start(store_url, fam, specs, opts, rho0, gauge=gauge)
    assert cross.source == "cross-fit" and cross.skip_seed_screening
    np.testing.assert_array_equal(cross.rho0, RHO)
    assert cross.warm is not None and cross.warm.cached_inner is None
    # an exact record beats the artifact
    exact_rho = np.array([0.1, 0.2, 0.3])
    betas = _betas(specs, seed=9)
    assert store_block_warm_start(store_url, cold.key, specs, BlockWarmStart(exact_rho, betas))
    exact = plan_warm_start(store_url, fam, specs, opts, rho0, gauge=gauge)
    assert exact.source == "exact" and exact.skip_seed_screening
    np.testing.assert_array_equal(exact.rho0, exact_rho)
    assert_unchanged(snap, fam, specs, gauge, rho0)  # never modified


def test_plan_cross_fit_needs_non_empty_rho(store_url: str) -> None:
    m = Model()
    fam, specs, gauge = m.fit()
    p2o = physical_to_outer(specs)
    assert capture_fit_artifact(store_url, fam, specs, gauge, _betas(specs), RHO, p2o, 1.0, True)
    empty = np.zeros(0)
    snap = freeze(fam, specs, gauge, empty)
    plan = plan_warm_start(store_url, fam, specs, FitOptions(), empty, gauge=gauge)
    assert plan.source == "cold" and plan.warm is None
    assert_unchanged(snap, fam, specs, gauge, empty)


def test_plan_loso_fold_uses_parent(store_url: str) -> None:
    m = Model()
    fam, specs, gauge = m.fit()
    p2o = physical_to_outer(specs)
    assert capture_fit_artifact(store_url, fam, specs, gauge, _betas(specs), RHO, p2o, 1.0, True)
    ffam, fspecs, fgauge = m.fit(slice(0, 50))
    plan = plan_warm_start(store_url, ffam, fspecs, FitOptions(), np.zeros(3), gauge=fgauge)
    assert plan.source == "cross-fit"
    np.testing.assert_array_equal(plan.rho0, RHO)


def test_plan_rejects_bad_rho0() -> None:
    _, specs, opts = make_fit()
    with pytest.raises(ValueError, match=r"rho0: expected a 1-D vector"):
        plan_warm_start(None, Family(), specs, opts, np.zeros((2, 2)))


# -- real stores --------------------------------------------------------------------------------


def test_block_round_trip_on_real_store(store_url: str) -> None:
    fam, specs, opts = make_fit()
    key, warm = load_block_warm_start(store_url, fam, specs, opts, rho_len=3)
    assert warm is None and key is not None
    rng = np.random.default_rng(1)
    cur = BlockWarmStart(
        rho=np.array([0.5, 1.0, -2.0]),
        block_beta=[rng.normal(size=s.width) for s in specs],
        active_sets=[np.array([4, 2, 2]), None, np.array([], dtype=np.int64)],
        cached_inner=CachedInner(-10.0, 2.0, 4, False, 1.5, 0.5, solved_inner_tol=1e-9),
    )
    before = copy.deepcopy(cur)
    assert store_block_warm_start(store_url, key, specs, cur)
    clear_memo()  # a new "process": reopen the same root
    key2, got = load_block_warm_start(store_url, fam, specs, opts, rho_len=3)
    assert key2 == key and got is not None
    np.testing.assert_array_equal(got.rho, before.rho)
    for a, b in zip(got.block_beta, before.block_beta, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.active_sets[0] is not None and got.active_sets[0].tolist() == [2, 4]
    assert got.active_sets[1] is None and got.active_sets[2] is None
    assert got.cached_inner is not None and got.cached_inner.cycles == 4
    assert got.cached_inner.solved_inner_tol == 1e-9 and got.cached_inner.kkt_residual is None


def test_record_a_on_real_store(store_url: str) -> None:
    from gamstore.records import WarmStartRecord

    rec = WarmStartRecord(
        key="surv-transform-00ff", n_rows=9, n_cols=2, rho=[0.5], beta=[1.0, -1.0],
        prev_rho=[0.25], last_inner_iters=3, last_inner_converged=True,
        last_pirls_lm_lambda=0.01,
    )  # fmt: skip
    assert store_record(store_url, rec)
    clear_memo()
    got = load_record(store_url, rec.key)
    assert got == rec


def test_read_only_real_store_loads_but_never_writes(tmp_path: Path) -> None:
    fam, specs, opts = make_fit()
    root = tmp_path / "ro"
    key, _ = load_block_warm_start(str(root), fam, specs, opts, 3)
    cur = BlockWarmStart(np.zeros(3), [np.ones(s.width) for s in specs])
    assert store_block_warm_start(str(root), key, specs, cur)
    clear_memo()
    ro = warm_store(str(root), read_only=True)
    assert ro is not None
    assert load_block_warm_start(ro, fam, specs, opts, 3)[1] is not None
    assert store_block_warm_start(ro, key, specs, cur) is False
    assert ro.available


def test_unopenable_root_is_cold_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    fam, specs, opts = make_fit()
    ws = WarmStartStore(str(blocker / "store"))
    key, warm = load_block_warm_start(ws, fam, specs, opts, 3)
    assert warm is None and key is not None
    assert not ws.available
    assert store_block_warm_start(ws, key, specs, BlockWarmStart(np.zeros(3), [])) is False


def test_memoized_handle_shares_store(store_url: str) -> None:
    a = warm_store(store_url)
    b = warm_store(store_url)
    assert a is b and a is not None
    st = a.store()
    assert st is not None and st is b.store()
    wrapped = warm_store(open_store(f"memory://ws-plan-{uuid.uuid4().hex}"))
    assert wrapped is not None and wrapped.available


def test_module_docstring_example_runs() -> None:
    import textwrap

    doc = ws_pkg.__doc__ or ""
    block = doc.split("executes it)::\n", 1)[1]
    code = textwrap.dedent(block.split('\n"""', 1)[0])
    clear_memo()
    exec(compile(code, "gamstore.warmstart docstring", "exec"), {})


def test_layer_adds_no_storage_requests() -> None:
    # the warm-start layer costs exactly the store's own requests (no extra lookups/HEADs)
    from gamstore.records import BlockWarmStartRecord

    fam, specs, opts = make_fit()
    rng = np.random.default_rng(2)
    warm = BlockWarmStart(np.array([0.1, 0.2, 0.3]), [rng.normal(size=s.width) for s in specs])
    st_a = open_store(f"memory://ws-req-a-{uuid.uuid4().hex}")
    st_b = open_store(f"memory://ws-req-b-{uuid.uuid4().hex}")
    key = "cf-00000000000000aa"
    rec = BlockWarmStartRecord(
        key=key, n_rows=40, block_names=tuple(s.name for s in specs),
        block_dims=tuple(s.width for s in specs), rho=warm.rho, block_beta=warm.block_beta,
        active_sets=(None,) * 3,
    )  # fmt: skip
    wa = WarmStartStore(store=st_a)
    assert store_block_warm_start(wa, key, specs, warm)  # first saves may sweep
    assert st_b.save("block", key, rec)
    before_a, before_b = dict(st_a.stats().requests), dict(st_b.stats().requests)
    assert store_block_warm_start(wa, key, specs, warm)
    assert st_b.save("block", key, rec)
    delta_a = {k: v - before_a.get(k, 0) for k, v in st_a.stats().requests.items()}
    delta_b = {k: v - before_b.get(k, 0) for k, v in st_b.stats().requests.items()}
    used = {k: v for k, v in delta_a.items() if v}
    assert used and used == {k: v for k, v in delta_b.items() if v}
