"""Store.spec(): workers reopen an open store with its storage options (issue 13.2).

``run_loso(store=<open S3 store>, executor=...)`` used to hand the workers the URL only
(``getattr(store, "storage_options", None)`` is always None: the attribute is private), so
the workers opened the store without the endpoint and credentials and every warm fold
failed. The spec carries them - and never shows them.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any

import pytest

import gamstore
from gamstore.fit import GAM, s
from gamstore.loso import run_loso, simulate
from gamstore.records import BlockWarmStartRecord
from gamstore.store import StoreSpec
from gamstore.store.testing import block_record

SECRETS = ("gamstore-test-key", "gamstore-test-secret")


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _record(key: str) -> BlockWarmStartRecord:
    return block_record(key, n_blocks=2, width=3)


def test_spec_of_a_local_store_round_trips(tmp_path: Any) -> None:
    store = gamstore.open_store(tmp_path / "s", budget_bytes=10**7, ttl=3600.0)
    spec = store.spec()
    assert spec.url == store.url and spec.storage_options is None
    assert (spec.read_only, spec.budget_bytes, spec.ttl) == (False, 10**7, 3600.0)
    assert store.spec(read_only=True).read_only
    other = pickle.loads(pickle.dumps(spec)).open()
    assert (other.url, other.budget_bytes, other.ttl) == (store.url, 10**7, 3600.0)
    store.save("block", "k", _record("k"), objective=1.0)
    assert other.lookup("block", "k") is not None


@pytest.mark.s3
def test_spec_carries_the_options_and_never_shows_them(
    s3_store_url: str, s3_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = gamstore.open_store(s3_store_url, storage_options=s3_options)
    store.save("block", "k", _record("k"), objective=1.0)
    spec = store.spec(read_only=True)
    assert isinstance(spec, StoreSpec)
    assert dict(spec.storage_options or {}) == s3_options
    texts = [repr(spec), str(spec), f"{spec}", f"{spec!r}", repr(store), str(store)]
    log = logging.getLogger("gamstore.test")
    with caplog.at_level(logging.DEBUG, logger="gamstore.test"):
        log.warning("spec %s / %r", spec, spec)
        log.warning("store %s / %r", store, store)
    texts += [r.getMessage() for r in caplog.records]
    assert [t for t in texts if _leaks(t)] == []
    assert "endpoint_url" in repr(spec) and "secret" in repr(spec)  # key names only
    # a fresh process-like copy reads what the original wrote
    copy = pickle.loads(pickle.dumps(spec))
    reopened = copy.open()
    assert reopened.read_only and reopened.lookup("block", "k") is not None


@pytest.mark.s3
def test_process_pool_loso_with_an_open_s3_store(
    s3_store_url: str, s3_options: dict[str, Any]
) -> None:
    """An open Store object (not a URL), no storage_options argument, spawned workers."""
    data = simulate("poisson", n=400, n_subjects=4, seed=4)
    model = GAM([s("x0", k=6), s("x1", k=6)], family="poisson")
    store = gamstore.open_store(s3_store_url, storage_options=s3_options)
    ds = run_loso(data, model, subject="subj", store=store, executor="processes", max_workers=2)
    assert ds.attrs["executor"] == "processes"
    errors = [str(e) for e in ds["error"].values.ravel() if str(e)]
    assert (ds["status"] == "ok").all(), errors
    # the warm folds found the full-data fit in S3 through the workers' own stores
    sources = set(ds["warm_source"].sel(start="warm").values)
    assert sources and sources <= {"cross-fit", "session"}, sources
    workers = {str(w) for w in ds["worker"].values.ravel()}
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)
    # and saved their own fold state there (save_folds=True): more entries than the
    # full-data fit alone writes
    alone = gamstore.open_store(f"memory://spec-{os.getpid()}")
    model.fit(data, y="y", store=alone)
    assert len(list(store.entries())) > len(list(alone.entries()))
    assert [t for t in errors if _leaks(t)] == []


def test_worker_store_that_cannot_open_means_a_cold_fold(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreachable cache never fails a fit: the fold runs cold and says why."""
    from gamstore.loso.folds import FoldTask, run_fold

    not_a_store = tmp_path / "file"
    not_a_store.write_text("not a directory")
    data = simulate("gaussian", n=120, n_subjects=3, seed=2)
    task = FoldTask(
        subject=0,
        mode="warm",
        y="y",
        subject_column="subj",
        knots=None,
        store=StoreSpec(url=str(not_a_store)),
        family="gaussian",
    )
    with caplog.at_level(logging.WARNING, logger="gamstore.loso"):
        out = run_fold(data, GAM([s("x0", k=5)]), task)
    assert out.ok, out.error
    assert out.warm_source == "cold"
    assert any("unavailable in worker" in r.getMessage() for r in caplog.records)
