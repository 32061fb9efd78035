"""A small in-process store following the Store contract, with fault injection.

Used by the warm-start tests to exercise failure paths (I/O errors, failed saves, read-only
refusals, codec errors) that a real store cannot be made to produce on demand. Real-store
round trips live in the other ``test_warmstart_*`` files. Records go through
``to_parts``/``from_parts`` so the tests see what a real store would give back.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

from gamstore.records import get_record_type
from gamstore.store.errors import ReadOnlyStoreError, StoreError


@dataclass(frozen=True)
class FakeEntry:
    record: Any
    keyspace: str
    key: str
    entry_id: str
    kind: str
    objective: float | None
    iteration: int | None
    created: int
    producer: str
    nbytes: int


class FakeStore:
    """Contract-following store; set the ``fail_*`` attributes to inject faults."""

    url = "memory://fake"

    def __init__(self) -> None:
        self.entries: list[FakeEntry] = []
        self._ids = itertools.count()
        self.fail_save: BaseException | None = None
        self.fail_lookup: BaseException | None = None
        self.save_returns_none = False
        self.read_only = False
        self.fake_nbytes: int | None = None
        self.calls: list[str] = []

    def _decode(self, e: FakeEntry) -> FakeEntry:
        parts = e.record
        cls = get_record_type(parts[0])
        rec = cls.from_parts(parts[1], parts[2])
        return FakeEntry(
            rec, e.keyspace, e.key, e.entry_id, e.kind, e.objective, e.iteration,
            e.created, e.producer, e.nbytes,
        )  # fmt: skip

    def save(
        self,
        keyspace: str,
        key: str,
        record: Any,
        *,
        objective: float | None = None,
        iteration: int | None = None,
        kind: str = "checkpoint",
        _replace: str | None = None,
    ) -> str | None:
        self.calls.append(f"save:{keyspace}")
        if self.read_only:
            raise ReadOnlyStoreError("read-only store")
        if self.fail_save is not None:
            raise self.fail_save
        if self.save_returns_none:
            return None
        parts = record.to_parts()
        arrays = {k: v.data.copy() for k, v in parts.arrays.items()}
        eid = f"{time.time_ns():016x}-{next(self._ids):06d}"
        if objective is not None and not math.isfinite(objective):
            objective = None
        entry = FakeEntry(
            (type(record).RECORD_TYPE, parts.fields, arrays), keyspace, key, eid, kind,
            objective, iteration, time.time_ns(), "me",
            self.fake_nbytes if self.fake_nbytes is not None else parts.nbytes,
        )  # fmt: skip
        if _replace is not None:
            self.entries = [e for e in self.entries if e.entry_id != _replace]
        self.entries.append(entry)
        return eid

    def _matching(self, keyspace: str, key: str) -> list[FakeEntry]:
        return [e for e in self.entries if e.keyspace == keyspace and e.key == key]

    def lookup(self, keyspace: str, key: str) -> FakeEntry | None:
        self.calls.append(f"lookup:{keyspace}")
        if self.fail_lookup is not None:
            raise self.fail_lookup
        es = self._matching(keyspace, key)
        if not es:
            return None
        finals = [e for e in es if e.kind == "final"]
        if finals:
            return self._decode(max(finals, key=lambda e: e.entry_id))

        def rank(e: FakeEntry) -> tuple[int, float, str]:
            has = e.objective is not None
            return (0 if has else 1, e.objective if has else 0.0, "")

        best = min(es, key=rank)
        ties = [
            e
            for e in es
            if rank(e)[0] == rank(best)[0] and abs(rank(e)[1] - rank(best)[1]) <= 1e-12
        ]
        return self._decode(max(ties, key=lambda e: e.entry_id))

    def lookup_latest(self, keyspace: str, key: str) -> FakeEntry | None:
        self.calls.append(f"lookup_latest:{keyspace}")
        if self.fail_lookup is not None:
            raise self.fail_lookup
        es = self._matching(keyspace, key)
        return self._decode(max(es, key=lambda e: e.entry_id)) if es else None

    def session(self, key: str, keyspace: str = "outer") -> FakeSession:
        return FakeSession(self, key, keyspace)


class FakeSession:
    """One slot per session; checkpoints rate-limited to 2 s unless improving by > 1e-12."""

    def __init__(self, store: FakeStore, key: str, keyspace: str) -> None:
        self.store = store
        self.key = key
        self.keyspace = keyspace
        self.slot: str | None = None
        self.last_write: float | None = None
        self.best_seen: float | None = None

    def load(self) -> FakeEntry | None:
        return self.store.lookup(self.keyspace, self.key)

    def checkpoint(self, payload: Any, objective: float | None, iteration: int | None) -> bool:
        improves = objective is not None and (
            self.best_seen is None or objective < self.best_seen - 1e-12
        )
        now = time.monotonic()
        if not improves and self.last_write is not None and now - self.last_write < 2.0:
            return False
        eid = self.store.save(
            self.keyspace, self.key, payload, objective=objective, iteration=iteration,
            _replace=self.slot,
        )  # fmt: skip
        if eid is None:
            return False
        self.slot = eid
        self.last_write = now
        if objective is not None:
            self.best_seen = objective if self.best_seen is None else min(self.best_seen, objective)
        return True

    def finalize(self, payload: Any, objective: float | None, iteration: int | None) -> bool:
        eid = self.store.save(
            self.keyspace, self.key, payload, objective=objective, iteration=iteration,
            kind="final", _replace=self.slot,
        )  # fmt: skip
        if eid is None:
            return False
        self.slot = eid
        return True


__all__ = ["FakeEntry", "FakeSession", "FakeStore", "StoreError"]


# -- shared fit fixtures ------------------------------------------------------------------


class Family:
    """A minimal family: its likelihood fingerprint hashes the response."""

    def __init__(self, name: str = "poisson", y: Any = None) -> None:
        self.name = name
        self.y = y

    def warm_start_fingerprint(self, specs: Any, options: Any) -> str | None:
        from gamstore.warmstart.keys import likelihood_fingerprint

        if self.y is None:
            return None
        return likelihood_fingerprint(self.name, {"y": self.y})


def make_fit(n: int = 40, seed: int = 7, widths: tuple[int, ...] = (2, 5, 4)) -> Any:
    """(family, specs, options) of a small 3-block fit: parametric + two smooths."""
    import numpy as np

    from gamstore.warmstart.specs import BlockSpec, DensePenalty, FitOptions, LabeledPenalty

    rng = np.random.default_rng(seed)
    y = rng.poisson(2.0, n).astype(float)
    specs = [BlockSpec("(parametric)", rng.normal(size=(n, widths[0])))]
    for j, w in enumerate(widths[1:], start=1):
        d = np.diff(np.eye(w), 2, axis=0)
        pens: list[Any] = [DensePenalty(d.T @ d)]
        if j == 2:
            pens.append(LabeledPenalty("ridge", DensePenalty(np.eye(w))))
        specs.append(
            BlockSpec(f"s(x{j})", rng.normal(size=(n, w)), penalties=pens, nullspace_dims=[2])
        )
    return Family("poisson", y), specs, FitOptions(inner_max_cycles=50)


def freeze(*objs: Any) -> Any:
    """Make every array reachable from ``objs`` read-only (an in-place write then raises)
    and return a deep snapshot to compare against afterwards."""
    import copy

    import numpy as np

    def walk(o: Any) -> None:
        if isinstance(o, np.ndarray):
            o.flags.writeable = False
        elif isinstance(o, list | tuple):
            for x in o:
                walk(x)
        elif hasattr(o, "__dict__") or hasattr(o, "__dataclass_fields__"):
            for v in vars(o).values() if hasattr(o, "__dict__") else ():
                walk(v)

    snap = copy.deepcopy(objs)
    for o in objs:
        walk(o)
    return snap


def assert_unchanged(snap: Any, *objs: Any) -> None:
    """Compare ``objs`` with a :func:`freeze` snapshot, arrays bitwise."""
    import numpy as np

    def same(a: Any, b: Any) -> None:
        if isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
            assert a.tobytes() == b.tobytes()
        elif isinstance(a, list | tuple):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                same(x, y)
        elif hasattr(a, "__dict__"):
            same(list(vars(a).values()), list(vars(b).values()))
        else:
            assert a == b or (a != a and b != b)

    same(list(snap), list(objs))
