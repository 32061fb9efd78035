"""Secrets: storage options and credentials never appear in logs, errors, reprs or storage.

A recognisable fake credential goes in through ``storage_options``; the test then drives
the store through successes and injected failures (fault proxy) and looks for the secret in
every log record (DEBUG and up, every logger), every repr/str it can reach, every exception
message and traceback, and every object stored in the bucket.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from faults.proxy import FaultProxy, Rule
from faults.s3 import fault_options, open_fault_store

import gamstore
from gamstore.store.testing import block_record, iterate_payload

pytestmark = pytest.mark.s3

FAKE_KEY = "AKIAFAKEKEY7Q3XSECRETID"
FAKE_SECRET = "fake-secret-9f2c7e1b-DO-NOT-LEAK"
FAKE_TOKEN = "fake-session-token-4d8a-DO-NOT-LEAK"
NEEDLES = (FAKE_KEY, FAKE_SECRET, FAKE_TOKEN)


def _leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_endpoint) as p:
        yield p


@pytest.fixture
def secret_options(proxy: FaultProxy) -> dict[str, Any]:
    opts = fault_options(proxy.endpoint, FAKE_KEY, FAKE_SECRET)
    opts["token"] = FAKE_TOKEN
    opts["config_kwargs"]["retries"] = {"max_attempts": 1}  # failures fast: one attempt each
    return opts


def _all_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    client = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="gamstore-test-key",
        aws_secret_access_key="gamstore-test-secret",
    )
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def test_secrets_never_leak(
    proxy: FaultProxy,
    secret_options: dict[str, Any],
    s3_store_url: str,
    s3_bucket: str,
    moto_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gamstore.warmstart.capability import WarmStartStore, warm_store

    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        store = open_fault_store(s3_store_url, secret_options)
        texts += [repr(store), str(store), store.url, repr(store.backend), str(store.backend)]
        assert store.save("block", "k", block_record("k", 1)) is not None
        sess = store.session("sess")
        sess.finalize(iterate_payload(2.0), 2.0, 3)
        texts += [repr(sess), repr(store.lookup("block", "k")), repr(store.stats())]
        texts += [repr(store.stats().as_dict()), repr(list(store.entries()))]
        texts += [repr(store.zarr_store()), str(store.zarr_store())]
        ws = warm_store(s3_store_url, storage_options=secret_options)
        assert ws is not None
        texts += [
            repr(ws),
            ws.url,
            repr(WarmStartStore(s3_store_url, storage_options=secret_options)),
        ]
        # Failures: every message and traceback the user could see.
        with proxy.fault(Rule("status", status=500, times=-1)):
            assert store.save("block", "k2", block_record("k2", 1)) is None
            assert store.lookup("block", "nope") is None
            try:
                open_fault_store(f"{s3_store_url}-other", secret_options)
            except Exception as exc:  # noqa: BLE001 - the message is what we check
                texts += [str(exc), repr(exc), traceback.format_exc()]
            else:
                pytest.fail("opening through a failing endpoint should raise")
            assert ws.save("block", "k3", block_record("k3", 1)) is None
            texts += [repr(ws), str(ws.disabled_reason)]
        with proxy.fault(Rule("drop", times=-1)):
            assert store.lookup_latest("block", "never-saved") is None
        # An endpoint that refuses connections: the error a user sees on open.
        refused = fault_options("http://127.0.0.1:1", FAKE_KEY, FAKE_SECRET)
        refused["config_kwargs"]["retries"] = {"max_attempts": 1}
        try:
            open_fault_store(s3_store_url + "x", refused)
        except Exception as exc:  # noqa: BLE001
            texts += [str(exc), repr(exc), traceback.format_exc()]
        else:
            pytest.fail("opening a refused endpoint should raise")
    # gamstore's own log lines (botocore's DEBUG log prints signed headers, tokens included:
    # that is the user's choice of log level for a third-party logger)
    records = [
        r.getMessage() + " " + repr(r.args) for r in caplog.records if r.name.startswith("gamstore")
    ]
    assert records, "the failures above should have been logged"
    leaks = [t for t in texts + records if _leaks(t)]
    assert leaks == []
    stored = _all_objects(moto_endpoint, s3_bucket)
    assert stored
    assert [k for k, v in stored.items() if any(n.encode() in v for n in NEEDLES)] == []


def test_loso_task_reprs_hide_storage_options() -> None:
    from gamstore.loso.folds import FoldTask, StoreSpec

    spec = StoreSpec(
        url="s3://bucket/root", storage_options={"key": FAKE_KEY, "secret": FAKE_SECRET}
    )
    task = FoldTask(
        subject=1,
        mode="warm",
        y="y",
        subject_column="subj",
        knots=None,
        store=spec,
        family="gaussian",
    )
    assert _leaks(repr(spec)) == [] and _leaks(repr(task)) == [] and _leaks(str(task)) == []
    assert spec.storage_options is not None and spec.storage_options["secret"] == FAKE_SECRET


def test_credentials_in_url_are_refused_without_echo() -> None:
    url = f"s3://{FAKE_KEY}:{FAKE_SECRET}@bucket/root"
    with pytest.raises(ValueError, match="storage_options") as info:
        gamstore.open_store(url)
    assert _leaks(str(info.value)) == []


# ------------------------------------------------------------------ the CLI at -vv (issue 14)
def _cli_stderr(verbose: str, *args: str) -> tuple[int, str]:
    """Run ``gamstore <verbose> <args>`` in a fresh process with credentials in the
    environment (where botocore finds them), return (exit code, stdout + stderr)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=FAKE_KEY,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_SESSION_TOKEN=FAKE_TOKEN,
        AWS_DEFAULT_REGION="us-east-1",
    )
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "gamstore", verbose, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


PASSWORD = "hunter2-DO-NOT-LEAK"


def test_cli_debug_output_has_no_credentials(moto_endpoint: str, s3_store_url: str) -> None:
    """Before: ``gamstore -vv`` set the root logger to DEBUG, so botocore printed the signed
    headers (x-amz-security-token 4 times, the key id twice per command), an endpoint_url with
    user:password was printed 5 times, and a refused endpoint's URL was in the error."""
    host = moto_endpoint.split("://", 1)[1]
    populate = gamstore.open_store(
        s3_store_url,
        storage_options={"endpoint_url": moto_endpoint, "key": "k", "secret": "s"},
    )
    assert populate.save("block", "k", block_record("k", 1)) is not None
    ok_code, ok_out = _cli_stderr("-vv", "ls", s3_store_url, "-o", f"endpoint_url={moto_endpoint}")
    assert ok_code == 0, ok_out
    assert "1 entries" in ok_out or "1 entry" in ok_out
    assert "DEBUG gamstore" in ok_out or "DEBUG" not in ok_out  # only gamstore's own debug
    assert "botocore" not in ok_out  # third-party loggers stay at WARNING
    cases = [
        ok_out,
        _cli_stderr("-vv", "ls", s3_store_url, "-o", f"endpoint_url=http://bob:{PASSWORD}@{host}")[
            1
        ],
        _cli_stderr("-vv", "ls", s3_store_url, "-o", "endpoint_url=http://127.0.0.1:1")[1],
    ]
    for out in cases:
        assert _leaks(out) == [] and PASSWORD not in out, out[-2000:]
    assert "127.0.0.1:1" not in cases[2] and "<endpoint_url>" in cases[2]  # README promise
    # -vvv asks for every logger: botocore talks, still without a credential
    code, everything = _cli_stderr(
        "-vvv", "ls", s3_store_url, "-o", f"endpoint_url={moto_endpoint}"
    )
    assert code == 0 and "botocore" in everything
    assert _leaks(everything) == [], [n for n in NEEDLES if n in everything]
    assert "***" in everything  # the signed headers were there, masked
