"""Mixed-operation load workers shared by the load tests and ``bench/stress_load.py``.

Every worker process opens the same store root with a small budget (so eviction runs all
the time) and performs a random mix of operations on a small key set, checking every value
it reads against the value the writer derived from the key:

* ``save`` a block record whose numbers derive from ``(key, seed)``;
* ``lookup`` / ``lookup_latest``: a hit must decode to exactly ``block_record(key, seed)`` for
  the seed recorded in it (``n_rows = 100 + seed``), under the right key;
* ``session``: checkpoint/finalize an iterate payload whose ``rho`` derives from its cost,
  then ``load`` it back and check the same relation;
* ``evict``: an explicit full sweep.

A worker never lets an exception escape: it counts them (first messages kept) so the
parent can assert zero.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Operation mix (weights).
MIX = {"lookup": 40, "lookup_latest": 15, "save": 30, "session": 10, "evict": 5}


@dataclass
class LoadResult:
    """Counters of one worker (summed by :func:`merge`)."""

    ops: int = 0
    by_op: dict[str, int] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    saves: int = 0
    save_none: int = 0
    wrong: int = 0
    exceptions: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _payload_ok(entry: Any, key: str) -> bool:
    p = entry.record
    rho = np.asarray(p.rho)
    return bool(
        entry.key == key
        and rho.shape == (3,)
        and np.array_equal(rho, np.arange(3, dtype=float) + p.cost)
        and p.eval_id == int(p.cost * 10) % 1000
    )


def run_worker(
    url: str,
    storage_options: dict[str, Any] | None,
    n_ops: int,
    seed: int,
    n_keys: int = 24,
    budget_bytes: int = 256 * 1024,
) -> dict[str, Any]:
    """Run ``n_ops`` mixed operations on ``url``; return :class:`LoadResult` as a dict."""
    from gamstore import open_store
    from gamstore.store.testing import block_record, iterate_payload, record_values_ok

    rng = random.Random(seed)
    res = LoadResult()
    store = open_store(url, storage_options=storage_options, budget_bytes=budget_bytes)
    ops, weights = zip(*MIX.items(), strict=True)
    keys = [f"load-{i}" for i in range(n_keys)]
    t0 = time.perf_counter()
    for _ in range(n_ops):
        op = rng.choices(ops, weights)[0]
        key = rng.choice(keys)
        res.ops += 1
        res.by_op[op] = res.by_op.get(op, 0) + 1
        try:
            if op in ("lookup", "lookup_latest"):
                entry = getattr(store, op)("block", key)
                if entry is None:
                    res.misses += 1
                else:
                    res.hits += 1
                    rec = entry.record
                    seed_of = int(rec.n_rows) - 100
                    if entry.key != key or not record_values_ok(rec, key, seed_of):
                        res.wrong += 1
            elif op == "save":
                got = store.save("block", key, block_record(key, rng.randrange(10)))
                res.saves += got is not None
                res.save_none += got is None
            elif op == "session":
                sess = store.session(f"sess-{key}")
                cost = round(rng.uniform(1.0, 50.0), 1)
                if rng.random() < 0.2:
                    sess.finalize(iterate_payload(cost), cost, 1)
                else:
                    sess.checkpoint(iterate_payload(cost), cost, 0)
                back = sess.load()
                if back is not None and not _payload_ok(back, f"sess-{key}"):
                    res.wrong += 1
            else:
                store.evict()
        except Exception as exc:  # counted: the parent asserts there were none
            res.exceptions += 1
            if len(res.errors) < 5:
                res.errors.append(f"{op}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    store.close()
    res.seconds = time.perf_counter() - t0
    return asdict(res)


def _star(args: tuple[Any, ...]) -> dict[str, Any]:
    return run_worker(*args)


def run_load(
    url: str,
    storage_options: dict[str, Any] | None,
    n_procs: int,
    n_ops: int,
    *,
    budget_bytes: int = 256 * 1024,
    n_keys: int = 24,
    seed: int = 0,
) -> dict[str, Any]:
    """Run ``n_procs`` spawned workers of ``n_ops`` each; return merged counters + wall time."""
    ctx = multiprocessing.get_context("spawn")
    args = [
        (url, storage_options, n_ops, seed * 1000 + i, n_keys, budget_bytes) for i in range(n_procs)
    ]
    t0 = time.perf_counter()
    with ctx.Pool(n_procs) as pool:
        parts = pool.map(_star, args)
    wall = time.perf_counter() - t0
    out = merge(parts)
    out["wall"] = wall
    out["ops_per_s"] = out["ops"] / wall if wall > 0 else float("nan")
    return out


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum worker counters."""
    total: dict[str, Any] = {"by_op": {}, "errors": []}
    for p in parts:
        for k, v in p.items():
            if k == "by_op":
                for op, n in v.items():
                    total["by_op"][op] = total["by_op"].get(op, 0) + n
            elif k == "errors":
                total["errors"] += v
            elif k == "seconds":
                total["max_worker_seconds"] = max(total.get("max_worker_seconds", 0.0), v)
            else:
                total[k] = total.get(k, 0) + v
    return total


def store_bytes(url: str, storage_options: dict[str, Any] | None) -> tuple[int, int, int]:
    """(committed entry bytes, all object bytes, committed entries) of the store at ``url``."""
    from gamstore import open_store

    store = open_store(url, storage_options=storage_options, read_only=True)
    infos = list(store.entries())
    total = sum(o.size for o in store.backend.list(""))
    return sum(i.nbytes for i in infos), total, len(infos)
