"""The pyGAM and statsmodels adapters go through the warm-start layer (issue 16 item 2).

So the layer's guarantees hold for them as for the built-in fitter: the entry size cap, the
never-raise rule (a broken store means a cold fit and a log line, never an exception) and the
read circuit breaker.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import numpy as np
import pytest
from requires import require_module

pygam = require_module("pygam", module_level=True)
sm = require_module("statsmodels.api", module_level=True)
from statsmodels.gam.api import BSplines, GLMGam  # noqa: E402

import gamstore  # noqa: E402
from gamstore.adapters import pygam as ap  # noqa: E402
from gamstore.adapters import statsmodels as ad  # noqa: E402
from gamstore.loso.simulate import simulate  # noqa: E402
from gamstore.warmstart import WarmStartStore  # noqa: E402
from gamstore.warmstart import capability as cap  # noqa: E402


def _xy(n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    df = simulate("gaussian", n=n, n_subjects=5, seed=3)
    return df[["x0", "x1", "x2"]].to_numpy(), df["y"].to_numpy()


def _pygam_fit(store: Any, **kw: Any) -> Any:
    X, y = _xy()
    sk: dict[str, Any] = {"n_splines": 6, "edge_knots": [0, 1]}
    gam = pygam.LinearGAM(pygam.s(0, **sk) + pygam.s(1, **sk) + pygam.s(2, **sk))
    return ap.gridsearch(
        gam, X, y, store=store, factors=(0.5, 1.0, 2.0), max_rounds=1, default_grid=[0.1, 10.0],
        **kw,
    )  # fmt: skip


def _sm_fit(store: Any, **kw: Any) -> Any:
    X, y = _xy()
    bs = BSplines(X, df=[6, 6, 6], degree=[3, 3, 3], constraints="center")
    model = GLMGam(y, exog=np.ones((len(y), 1)), smoother=bs, family=sm.families.Gaussian())
    return ad.select_penweight(model, store=store, criterion="aic", **kw)


ADAPTERS = {"pygam": (_pygam_fit, "inner"), "statsmodels": (_sm_fit, "block")}


class BrokenStore:
    """Every store call raises an I/O error (a vanished mount, a dead endpoint)."""

    url = "memory://broken"

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise OSError(5, "Input/output error")

    save = lookup = lookup_latest = session = _fail


class FailingReads:
    """A real store whose reads fail the way a real store reports them: a miss plus
    ``read_errors`` (gamstore's Store never raises on lookup)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.url = inner.url
        self.read_errors = 0
        self.reads = 0

    def lookup(self, keyspace: str, key: str) -> Any:
        self.reads += 1
        self.read_errors += 1
        return None

    lookup_latest = lookup

    def error_count(self, counter: str) -> int:
        return self.read_errors if counter == "read_errors" else 0

    def save(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.save(*args, **kwargs)

    def session(self, key: str, keyspace: str = "outer") -> Any:
        return self.inner.session(key, keyspace=keyspace)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_a_store_that_always_raises_still_lets_the_fit_complete_cold(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    run, _ = ADAPTERS[name]
    cold = run(None)
    broken = BrokenStore()
    with caplog.at_level(logging.INFO, logger="gamstore"):
        fit = run(broken)
    assert broken.calls >= 1  # the store was tried ...
    assert fit.warm == "cold"  # ... and the fit went on cold, with the cold answer
    np.testing.assert_allclose(fit.rho, cold.rho, rtol=1e-10, atol=1e-12)
    assert all(v is None for v in fit.saved.values())
    disabled = [r for r in caplog.records if "disabled for this process" in r.getMessage()]
    assert len(disabled) == 1 and disabled[0].levelno == logging.WARNING
    assert "Input/output error" in disabled[0].getMessage()


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_the_entry_size_cap_applies_to_adapter_saves_and_lookups(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    run, keyspace = ADAPTERS[name]
    store = gamstore.open_store(f"memory://adapters-cap-{uuid.uuid4().hex}")
    cold = run(store)  # under the real cap: written
    assert cold.warm == "cold" and cold.saved[keyspace] is not None
    assert run(store).warm == "exact"
    monkeypatch.setattr(cap, "MAX_ENTRY_BYTES", 64)  # smaller than any adapter record
    other = gamstore.open_store(f"memory://adapters-cap-{uuid.uuid4().hex}")
    with caplog.at_level(logging.INFO, logger="gamstore.warmstart"):
        capped = run(other)
        # the existing entry (written under the real cap) is now over it: a miss
        reread = run(store)
    assert capped.saved[keyspace] is None and list(other.entries(keyspace)) == []
    assert "exceeds the 64-byte entry cap" in caplog.text
    assert reread.warm == "cold"
    assert "entry ignored" in caplog.text


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_the_read_circuit_breaker_applies_to_adapters(name: str) -> None:
    run, _ = ADAPTERS[name]
    failing = FailingReads(gamstore.open_store(f"memory://adapters-brk-{uuid.uuid4().hex}"))
    fits = [run(failing) for _ in range(3)]  # a plain store, as a user passes it
    assert all(f.warm == "cold" for f in fits)
    ws = cap.warm_store(failing)  # the process-wide capability the adapters went through
    assert isinstance(ws, WarmStartStore)
    # two reads per call (exact, then seed) until three failures in a row open the breaker;
    # after that no read reaches the store
    assert failing.reads == 3
    assert ws.reads_paused and ws.reads_skipped >= 3
    # saves are not affected by the read breaker
    assert all(f.saved and all(v is not None for v in f.saved.values()) for f in fits)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_the_adaptive_policy_applies_to_adapters(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every phase measures the same 2**-10 s (an injected clock): after a first call has
    timed them, a lookup cannot beat the search it would shorten, nor the search a save; the
    answer is the same cold one."""
    import gamstore.warmstart.plan as plan_mod
    from gamstore.warmstart.policy import CostModel

    run, keyspace = ADAPTERS[name]
    t = [0.0]

    def clock() -> float:
        t[0] += 2.0**-10
        return t[0]

    monkeypatch.setattr(plan_mod, "COSTS", CostModel(clock=clock))
    store = gamstore.open_store(f"memory://adapters-policy-{uuid.uuid4().hex}")
    first = run(store, warm_policy="always")  # every lookup and save, timed all the same
    assert first.warm_decision == "looked up (policy always); saved (policy always)"
    assert first.saved[keyspace] is not None
    again = run(store, warm_policy="adaptive")
    assert again.warm == "cold"  # the exact record is there, but not worth a round trip
    assert again.warm_decision == (
        "lookup skipped: fit ~0.977 ms, store round trip 0.977 ms; "
        "save skipped: fit 0.977 ms, store save 0.977 ms"
    )
    assert again.saved == {}
    np.testing.assert_array_equal(again.rho, first.rho)
    assert run(store, warm_policy="always").warm == "exact"
