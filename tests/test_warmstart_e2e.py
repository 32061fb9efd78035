"""End to end through the warm-start API only: a small penalized Gaussian fitter (GCV over
two log smoothing parameters) run cold, repeated (exact record), and on leave-one-subject-out
folds (cross-fit artifact). Warm starts must never change the optimum."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize

from gamstore import warmstart as ws
from gamstore.gauge import Gauge


class Gaussian:
    name = "gaussian"

    def __init__(self, y: np.ndarray) -> None:
        self.y = y

    def warm_start_fingerprint(self, specs: Any, options: Any) -> str:
        return ws.likelihood_fingerprint(self.name, {"y": self.y})


def simulate(n: int = 240, subjects: int = 6, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(size=n), rng.uniform(size=n)
    y = np.sin(2 * np.pi * x1) + (x2 - 0.5) ** 2 * 4 + rng.normal(scale=0.3, size=n)
    return {"x1": x1, "x2": x2, "y": y, "subj": np.repeat(np.arange(subjects), n // subjects)}


KNOTS = np.linspace(0.0, 1.0, 8)


def hat_basis(x: np.ndarray) -> np.ndarray:
    """Piecewise-linear 'tent' basis on fixed knots (a partition of unity)."""
    h = KNOTS[1] - KNOTS[0]
    return np.clip(1.0 - np.abs(x[:, None] - KNOTS[None, :]) / h, 0.0, None)


def fit(data: dict[str, np.ndarray], rows: np.ndarray, store: Any) -> dict[str, Any]:
    y = data["y"][rows]
    n = y.shape[0]
    raws = [hat_basis(data["x1"][rows]), hat_basis(data["x2"][rows])]
    zs = [np.linalg.qr(b.mean(axis=0)[:, None], mode="complete")[0][:, 1:] for b in raws]
    d = np.diff(np.eye(KNOTS.size), 2, axis=0)
    specs = [ws.BlockSpec("(parametric)", np.ones((n, 1)))]
    for j, (b, z) in enumerate(zip(raws, zs, strict=True)):
        specs.append(
            ws.BlockSpec(
                f"s(x{j + 1})",
                b @ z,
                penalties=[ws.DensePenalty(z.T @ d.T @ d @ z)],
                nullspace_dims=[1],
            )
        )
    gauge = Gauge.block_diagonal([np.eye(1), *zs])
    fam, opts = Gaussian(y), ws.FitOptions(outer_tol=1e-9, use_reml=False)
    X = np.hstack([s.design for s in specs])
    widths = [s.width for s in specs]
    pens = []
    start = 0
    for s in specs:
        for p in s.penalties:
            full = np.zeros((X.shape[1], X.shape[1]))
            full[start : start + s.width, start : start + s.width] = p.matrix
            pens.append(full)
        start += s.width

    def solve(rho: np.ndarray) -> tuple[float, np.ndarray]:
        a = X.T @ X + sum(np.exp(r) * p for r, p in zip(rho, pens, strict=True))
        beta = np.linalg.solve(a, X.T @ y)
        edf = float(np.trace(np.linalg.solve(a, X.T @ X)))
        rss = float(np.sum((y - X @ beta) ** 2))
        return n * rss / (n - edf) ** 2, beta

    plan = ws.plan_warm_start(store, fam, specs, opts, np.full(2, 3.0), gauge=gauge)
    sess = ws.OuterSession.open(store, fam, specs, opts, block_key=plan.key)
    sess.begin(2)
    evals = 0

    def objective(rho: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        score, beta = solve(rho)
        sess.on_evaluation(rho, beta, score)
        return score

    res = minimize(objective, plan.rho0, method="BFGS", options={"gtol": 1e-9})
    rho = np.asarray(res.x, dtype=np.float64)
    score, beta = solve(rho)
    betas = np.split(beta, np.cumsum(widths)[:-1])
    ws.store_block_warm_start(store, plan.key, specs, ws.BlockWarmStart(rho, list(betas)))
    sess.finish(rho, beta, score, converged=True)
    p2o = ws.physical_to_outer(specs)
    ws.capture_fit_artifact(store, fam, specs, gauge, list(betas), rho, p2o, score, True)
    return {
        "source": plan.source, "rho0": plan.rho0, "rho": rho, "score": score, "evals": evals,
    }  # fmt: skip


@pytest.fixture
def store() -> ws.WarmStartStore:
    ws.capability.clear_memo()
    out = ws.warm_store(f"memory://ws-e2e-{uuid.uuid4().hex}")
    assert out is not None
    return out


def test_repeat_fit_is_exact_and_loso_folds_start_cross_fit(store: ws.WarmStartStore) -> None:
    data = simulate()
    everyone = np.arange(data["y"].size)
    cold = fit(data, everyone, None)
    first = fit(data, everyone, store)
    assert first["source"] == "cold"
    assert first["score"] == pytest.approx(cold["score"], rel=1e-12)
    again = fit(data, everyone, store)
    assert again["source"] == "exact"
    assert again["score"] == pytest.approx(cold["score"], rel=1e-9)
    assert again["evals"] < first["evals"]

    parent = first["rho"]
    for s in np.unique(data["subj"]):
        rows = np.flatnonzero(data["subj"] != s)
        c = fit(data, rows, None)
        w = fit(data, rows, store)
        assert w["source"] == "cross-fit"
        assert w["score"] == pytest.approx(c["score"], rel=1e-8)  # same optimum
        np.testing.assert_allclose(w["rho"], c["rho"], atol=1e-3)
        # the newest artifact of this structure seeds the fold: the full-data fit for the
        # first fold, then the previous fold's own capture (lookup_latest, as the seed does)
        np.testing.assert_array_equal(w["rho0"], parent)
        parent = w["rho"]
        # the fold starts much nearer its own optimum than the cold start does
        # (evaluation counts are the optimizer's business: BFGS from an identity metric
        # spends its iterations in the endgame either way, cf. spec §6.6)
        assert np.linalg.norm(w["rho0"] - c["rho"]) < 0.5 * np.linalg.norm(c["rho0"] - c["rho"])
