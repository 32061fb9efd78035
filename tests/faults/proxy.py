"""A small fault-injecting HTTP/1.1 proxy for loopback S3 (moto) tests.

The proxy listens on 127.0.0.1 (random free port) and forwards every request to one
upstream ``http://127.0.0.1:<port>`` endpoint. Rules pick requests by method, path and
query substring and apply one fault to the next ``times`` matching requests:

``drop``
    Close the client connection without forwarding (the request never happens).
``drop_after``
    Forward the request (it takes effect upstream), then close the client connection
    without a response (the client cannot know it succeeded).
``delay``
    Sleep ``seconds`` before forwarding (long delays look like a black hole).
``status``
    Answer ``status`` with an S3 XML error body (``500 InternalError``,
    ``503 SlowDown``) without forwarding.
``truncate``
    Forward, then send the response headers (full ``Content-Length``) and only the first
    ``keep`` fraction of the body before closing the connection.
``corrupt``
    Forward, then flip one byte in the middle of the response body (length unchanged, so
    HTTP cannot notice: only the reader's own checks can).
``drip``
    Forward, then send the headers at once and the body ``chunk`` bytes at a time with
    ``seconds`` between writes: a server that trickles its answer. Each write arrives well
    inside a per-read socket timeout, so only a wall-clock deadline can cut it short.

The proxy logs every request as ``(method, path, fault)`` in :attr:`FaultProxy.log`, so
tests can assert which faults actually fired. Loopback only: it refuses non-loopback
upstreams.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FAULTS", "FaultProxy", "Rule"]

FAULTS = ("drop", "drop_after", "delay", "status", "truncate", "corrupt", "drip")
_REASON = {500: "Internal Server Error", 503: "Slow Down"}
_CODE = {500: "InternalError", 503: "SlowDown"}
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


@dataclass
class Rule:
    """Apply ``fault`` to the next ``times`` requests matching all given filters.

    Parameters
    ----------
    fault : str
        One of :data:`FAULTS`.
    method : str, optional
        HTTP method to match (``GET``, ``PUT``, ``HEAD``, ``DELETE``, ``POST``).
    path_contains, query_contains : str, optional
        Substrings of the request path (bucket and key) / query string to match.
    header : str, optional
        A header name that must be present (e.g. ``If-None-Match`` for create-only PUTs).
    times : int
        How many matching requests get the fault (-1: all of them).
    skip : int
        Let this many matching requests through untouched first.
    seconds : float
        Delay of ``delay``; pause between the writes of ``drip``.
    status : int
        Status of ``status`` (500 or 503).
    keep : float
        Fraction of the body kept by ``truncate``.
    chunk : int
        Bytes per write of ``drip``.
    """

    fault: str
    method: str | None = None
    path_contains: str | None = None
    query_contains: str | None = None
    header: str | None = None
    times: int = 1
    skip: int = 0
    seconds: float = 0.0
    status: int = 503
    keep: float = 0.5
    chunk: int = 1
    fired: int = field(default=0, init=False)
    seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"fault: expected one of {FAULTS}, got {self.fault!r}")

    def matches(self, method: str, path: str, query: str, headers: Any) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.path_contains is not None and self.path_contains not in path:
            return False
        if self.query_contains is not None and self.query_contains not in query:
            return False
        return self.header is None or headers.get(self.header) is not None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # quiet: the proxy keeps its own log

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        method = self.command
        body = self._read_body()
        rule = self.server.owner._pick(method, parts.path, parts.query, self.headers)
        fault = rule.fault if rule is not None else None
        self.server.owner._record(method, parts.path, parts.query, fault)
        if fault == "drop":
            self._hangup()
            return
        if fault == "delay":
            assert rule is not None
            time.sleep(rule.seconds)
        if fault == "status":
            assert rule is not None
            self._send_error(rule.status)
            return
        status, reason, headers, data = self._forward(method, body)
        if fault == "drop_after":
            self._hangup()
            return
        if fault == "corrupt" and data and 200 <= status < 300:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0x01]) + data[mid + 1 :]
        self.send_response_only(status, reason)
        for k, v in headers:
            if k.lower() not in _HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method == "HEAD":
            return
        if fault == "truncate" and data:
            assert rule is not None
            self.wfile.write(data[: int(len(data) * rule.keep)])
            self.wfile.flush()
            self._hangup()
            return
        if fault == "drip" and data:
            assert rule is not None
            step = max(1, rule.chunk)
            for i in range(0, len(data), step):
                self.wfile.write(data[i : i + step])
                self.wfile.flush()
                time.sleep(rule.seconds)
            return
        self.wfile.write(data)
        self.wfile.flush()

    def _forward(self, method: str, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.server.owner.upstream
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() in _HOP or k.lower() == "content-length":
                    continue
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _send_error(self, status: int) -> None:
        code = _CODE.get(status, "InternalError")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>injected fault</Message>"
            "<RequestId>faultproxy</RequestId></Error>"
        ).encode()
        self.send_response_only(status, _REASON.get(status, "Error"))
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _hangup(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client gave up (its timeout): not our fault

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 - stdlib names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FaultProxy


class FaultProxy:
    """Forward loopback HTTP to ``upstream``, injecting the faults of :attr:`rules`.

    Use as a context manager; :attr:`endpoint` is the URL clients connect to.

    Parameters
    ----------
    upstream : str
        ``http://127.0.0.1:<port>`` of the real server (loopback only).
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError(f"upstream: expected http://127.0.0.1:<port>, got {upstream!r}")
        self.upstream: tuple[str, int] = (parts.hostname, parts.port)
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` of the proxy."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, rule: Rule) -> Rule:
        """Install ``rule`` (rules are tried in order; the first live match fires)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule and forget the log."""
        with self._lock:
            self.rules.clear()
            self.log.clear()

    @contextmanager
    def fault(self, rule: Rule) -> Iterator[Rule]:
        """Install ``rule`` for the duration of a ``with`` block."""
        self.add(rule)
        try:
            yield rule
        finally:
            with self._lock:
                if rule in self.rules:
                    self.rules.remove(rule)

    def fired(self, fault: str | None = None) -> int:
        """How many requests got ``fault`` (any fault when None)."""
        with self._lock:
            return sum(1 for _m, _p, f in self.log if f is not None and fault in (None, f))

    def requests(self, method: str | None = None) -> int:
        """How many requests arrived (optionally of one method)."""
        with self._lock:
            return sum(1 for m, _p, _f in self.log if method in (None, m))

    def _pick(self, method: str, path: str, query: str, headers: Any) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.times != -1 and rule.fired >= rule.times:
                    continue
                if not rule.matches(method, path, query, headers):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                rule.fired += 1
                return rule
        return None

    def _record(self, method: str, path: str, query: str, fault: str | None) -> None:
        with self._lock:
            self.log.append((method, path + ("?" + query if query else ""), fault))
