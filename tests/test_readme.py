"""Every ```python block of README.md and docs/*.md runs to completion (exit code 0).

Each block runs as a script in a fresh interpreter, in its own empty working directory, so
the documentation cannot depend on earlier blocks, on the repository checkout or on the
user's cache. There is no opt-out: every block runs.

Blocks that mention ``S3_ENDPOINT_URL`` are the S3 snippets: they run against the loopback
moto server of ``tests/conftest.py``, with its endpoint in ``S3_ENDPOINT_URL`` and dummy
credentials in the standard AWS environment variables (exactly how a user would configure
them), after the buckets named in their ``s3://`` URLs are created.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from requires import require

ROOT = Path(__file__).resolve().parent.parent
# docs/architecture.md is the contributors' contract: its ```python blocks are signature
# listings (``store.url  # ...``), not programs, so it is not run here.
NOT_PROGRAMS = {"architecture.md"}
DOCS = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in NOT_PROGRAMS),
]

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_BUCKET = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/|\b)")
S3_MARK = "S3_ENDPOINT_URL"
TIMEOUT = 180


@dataclass(frozen=True)
class Snippet:
    """One ```python block: where it is and its code."""

    path: Path
    line: int
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def needs_s3(self) -> bool:
        return S3_MARK in self.code

    def imports(self, module: str) -> bool:
        return re.search(rf"^\s*(from|import)\s+{re.escape(module)}\b", self.code, re.M) is not None


def extract_snippets(path: Path) -> list[Snippet]:
    """Every ```python block of a markdown file, with its 1-based opening line."""
    text = path.read_text(encoding="utf-8")
    return [
        Snippet(path, text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _FENCE.finditer(text)
    ]


SNIPPETS = [sn for doc in DOCS for sn in extract_snippets(doc)]


def _require(module: str) -> None:
    require(importlib.util.find_spec(module) is not None, module)


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    # nothing from the caller's store configuration or AWS profile leaks into a snippet
    for var in list(env):
        if var.startswith(("AWS_", "GAMSTORE_URL")) or var == "S3_ENDPOINT_URL":
            del env[var]
    env.update(
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),  # the default store stays in tmp
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    return env


def _s3_env(request: pytest.FixtureRequest, snippet: Snippet) -> dict[str, str]:
    options: dict[str, Any] = request.getfixturevalue("s3_options")  # moto, dummy keys
    endpoint, key, secret = options["endpoint_url"], options["key"], options["secret"]
    import botocore.session

    client: Any = botocore.session.Session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    buckets = sorted(set(_BUCKET.findall(snippet.code)))
    assert buckets, f"{snippet.id}: an S3 snippet must name its bucket in an s3:// URL"
    for bucket in buckets:
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
    request.addfinalizer(lambda: _empty(client, buckets))
    return {
        "S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _empty(client: Any, buckets: list[str]) -> None:
    # the moto server is shared by the session: leave no objects behind
    for bucket in buckets:
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            client.delete_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - cleanup must not mask the test result
            pass


def run_snippet(snippet: Snippet, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the block as a script file in ``cwd``; returns the finished process."""
    script = cwd / f"snippet_{uuid.uuid4().hex[:8]}.py"
    script.write_text(snippet.code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, script.name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[sn.id for sn in SNIPPETS])
def test_snippet_runs(snippet: Snippet, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if snippet.imports("distributed"):
        _require("distributed")
    env = _base_env(tmp_path)
    if snippet.needs_s3:
        env.update(_s3_env(request, snippet))
    work = tmp_path / "work"
    work.mkdir()
    proc = run_snippet(snippet, work, env)
    assert proc.returncode == 0, (
        f"{snippet.id} exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-5000:]}"
    )


# ---------------------------------------------------------------- the harness itself


def test_docs_have_snippets() -> None:
    # the README quickstart and each user section carry a runnable block
    readme = [sn for sn in SNIPPETS if sn.path.name == "README.md"]
    assert len(readme) >= 5, [sn.id for sn in readme]
    assert any(sn.needs_s3 for sn in readme), "the S3 snippet must run against moto"


def test_extract_and_run_catch_failures(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n```python\nprint('ok')\n```\n\n```bash\nexit 1\n```\n"
        "```python\nraise SystemExit(4)\n```\n",
        encoding="utf-8",
    )
    found = extract_snippets(doc)
    assert [sn.line for sn in found] == [2, 9]  # the bash block is not a snippet
    env = _base_env(tmp_path)
    assert run_snippet(found[0], tmp_path, env).returncode == 0
    assert run_snippet(found[1], tmp_path, env).returncode == 4  # a failing block is seen
