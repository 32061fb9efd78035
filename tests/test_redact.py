"""Credential masking in text (gamstore._redact): URLs, signed headers, log records."""

from __future__ import annotations

import io
import logging

import pytest

from gamstore._redact import MASK, RedactingFilter, RedactingFormatter, redact, redact_error

TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN/with+base64=="
KEY_ID = "ASIAEXAMPLEKEYID1234"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("url=http://bob:hunter2@127.0.0.1:9000/b", "hunter2"),
        ("https://only-user@minio.example.org/x", "only-user"),
        (f"headers={{'X-Amz-Security-Token': b'{TOKEN}', 'User-Agent': b'x'}}", TOKEN),
        (f"'Authorization': b'AWS4-HMAC-SHA256 Credential={KEY_ID}/20261207/s3, Sig=ab'", KEY_ID),
        (f"CanonicalRequest:\nx-amz-security-token:{TOKEN}\nhost:h", TOKEN),
        (f"GET /b?X-Amz-Security-Token={TOKEN}&X-Amz-Signature=abcdef01", TOKEN),
        ("GET /b?X-Amz-Signature=abcdef0123&x=1", "abcdef0123"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
        (f"found key {KEY_ID} in env", KEY_ID),
        ("{'password': 'p4ss w0rd'}", "p4ss w0rd"),
    ],
)
def test_redact_masks_credentials(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_redact_keeps_ordinary_text() -> None:
    for text in (
        "gamstore: save to s3://bucket/root failed (StoreError: timeout)",
        "lookup block cf-0123456789abcdef: miss (objective 1.5, key=cf-1)",
        "http://127.0.0.1:9000/bucket/root/zarr.json",
        "",
    ):
        assert redact(text) == text


def test_redact_error_hides_endpoint_urls() -> None:
    exc = ConnectionError('Could not connect to the endpoint URL: "http://u:pw@10.0.0.5:9000/b/k"')
    text = redact_error(exc)
    assert text == 'ConnectionError: Could not connect to the endpoint URL: "<endpoint_url>"'


def test_filter_and_formatter_mask_records_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(RedactingFormatter("%(name)s: %(message)s"))
    log = logging.getLogger("gamstore.test_redact")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("headers %s", {"X-Amz-Security-Token": TOKEN})
        try:
            raise OSError(f"endpoint http://bob:hunter2@h/ refused (token={TOKEN})")
        except OSError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    out = stream.getvalue()
    assert TOKEN not in out and "hunter2" not in out
    assert out.count(MASK) >= 3
    assert "failed" in out and "Traceback" in out
