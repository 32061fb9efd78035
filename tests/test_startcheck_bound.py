"""The start check and null effects: an indefinite Hessian along smoothing parameters at their
bound (a null smooth shrunk to its null space) is a flat tail of REML, not another basin
(issue 17: on a Gaussian LOSO with null smooths the cold check fired on every warm fold)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from gamstore.fit import GAM, s
from gamstore.fit.newton import BOUND_EDF, _only_along, at_bound
from gamstore.fit.reml import evaluate
from gamstore.fit.startcheck import StartCheckPolicy, check_start
from gamstore.loso import simulate


def _data(n: int = 50_000, subjects: int = 50) -> Any:
    df = simulate("gaussian", n=n, n_subjects=subjects)
    rng = np.random.default_rng(17)
    for j in range(3, 6):
        df.insert(j, f"x{j}", rng.uniform(size=n))  # no effect
    return df


MODEL = GAM([s(f"x{j}") for j in range(6)], family="gaussian")


def test_null_smooths_are_at_their_bound_and_real_effects_are_not() -> None:
    df = _data()
    res = MODEL.fit(df, y="y")
    prob, fin = res._problem, res._final
    assert prob is not None and fin is not None
    bound = at_bound(prob, fin)
    assert bound is not None
    # the definition: within BOUND_EDF degrees of freedom of the null-space fit
    ranks = np.array([b.rank for b in prob.design.smooths])
    np.testing.assert_array_equal(bound, ranks - fin.parts["tr"] <= BOUND_EDF)
    assert not bound[:3].any()  # x0..x2 have effects
    assert bound[3:].all()  # the null smooths
    # at a small rho nothing is at its bound
    low = evaluate(prob, np.zeros(6), hessian=False)
    assert not at_bound(prob, low).any()  # type: ignore[union-attr]


def test_only_along() -> None:
    H = np.diag([3.0, 2.0, -1e-3])
    assert _only_along(H, np.array([False, False, True]))
    assert not _only_along(H, np.array([True, False, False]))
    assert not _only_along(np.diag([3.0, 2.0, 1.0]), np.array([True, True, True]))  # PD
    R = np.array([[1.0, 1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, np.sqrt(2.0)]]) / np.sqrt(2.0)
    mixed = R @ np.diag([-1.0, 3.0, 2.0]) @ R.T  # negative curvature along x0 - x1
    assert not _only_along(mixed, np.array([True, False, False]))
    assert _only_along(mixed, np.array([True, True, False]))


def _run(rho: list[float], *, indef: int = 0, bound_indef: int = 0, bound: Any = None) -> Any:
    final = SimpleNamespace(rho=np.asarray(rho, dtype=np.float64), score=10.0)
    return SimpleNamespace(
        final=final,
        n_indefinite=indef,
        n_indefinite_bound=bound_indef,
        at_bound=None if bound is None else np.asarray(bound, dtype=bool),
        converged=True,
    )


@pytest.mark.parametrize(
    ("warm", "reasons", "at"),
    [
        # the null smooth drifted 8 along its flat tail, curvature negative only there
        (_run([0.5, 9.0], indef=2, bound_indef=2, bound=[False, True]), (), (1,)),
        (_run([0.5, 9.0], indef=2, bound_indef=1, bound=[False, True]), ("indefinite",), (1,)),
        (_run([3.5, 9.0], bound=[False, True]), ("moved",), (1,)),
        # without the bound information every component counts (as before)
        (_run([0.5, 9.0], indef=1), ("moved", "indefinite"), ()),
    ],
)
def test_triggers_leave_out_the_bound(warm: Any, reasons: tuple[str, ...], at: Any) -> None:
    cold = _run([0.0, 1.0])
    kept, rec = check_start(
        StartCheckPolicy(), "cross-fit", warm, np.array([0.0, 1.0]), 95, 100, lambda: cold
    )
    assert rec.reasons == reasons
    assert rec.cold_checked == bool(reasons)
    assert rec.at_bound == at
    assert rec.rho_moved == pytest.approx(float(np.max(np.abs(warm.final.rho - [0.0, 1.0]))))


def test_gaussian_loso_with_null_smooths_trusts_the_warm_start() -> None:
    """Warm folds from the full-data fit: no cold check (before: "indefinite" on every fold,
    along the null smooths), and the warm answer is the cold one."""
    from gamstore.store import open_store

    df = _data()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"{tmp}/store")
        full = MODEL.fit(df, y="y", store=store, warm_policy="always")
        for subj in (0, 1, 2):
            train = df[df["subj"] != subj].reset_index(drop=True)
            warm = MODEL.fit(train, y="y", knots=full.knots, store=store, warm_policy="always")
            cold = MODEL.fit(train, y="y", knots=full.knots)
            assert warm.warm == "cross-fit"
            chk = warm.start_check
            assert chk is not None and not chk.cold_checked, chk.reasons
            assert set(chk.at_bound) & {3, 4, 5}
            assert abs(warm.reml - cold.reml) <= 1e-6 * abs(cold.reml)
