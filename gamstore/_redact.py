"""Keep credentials out of text a user sees: log lines, error messages, tracebacks.

gamstore never logs a credential itself; the risks are other people's text that passes
through ours: botocore's DEBUG log prints signed request headers (``x-amz-security-token``,
``Authorization``), and an exception from the HTTP client quotes the endpoint URL, which may
carry ``user:password@``. :func:`redact` removes those patterns from any text;
:class:`RedactingFilter` and :class:`RedactingFormatter` apply it to log records (the CLI
installs both on its handler), :func:`redact_error` to the text of an exception that a
backend wraps into its own error.
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "RedactingFilter", "RedactingFormatter", "redact", "redact_error"]

MASK = "***"

# scheme://user[:password]@host -> scheme://***@host (any scheme, any userinfo)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
# Signed-URL query parameters (SigV4 presigned URLs, SigV2) and their values.
_SIGNED_QUERY = re.compile(
    r"(?i)\b(?P<name>X-Amz-(?:Security-Token|Signature|Credential)|Signature|AWSAccessKeyId|"
    r"access_token|token|sig)=(?P<value>[^&\s'\",<>]+)"
)
# Header-like "name: value" / "name=value" / "'name': b'value'" pairs whose value is a secret.
_SECRET_NAMES = (
    r"x-amz-security-token|x-amz-signature|x-amz-credential|authorization|"
    r"aws_secret_access_key|aws_access_key_id|aws_session_token|secret_access_key|"
    r"access_key_id|session_token|secret|password|passwd|token|credential|signature|"
    # Azure: account keys, SAS tokens and connection strings' AccountKey=...
    r"accountkey|account_key|sas_token|sharedaccesssignature"
)
_QUOTED_PAIR = re.compile(
    r"(?i)(?P<head>(?P<q>['\"])(?:" + _SECRET_NAMES + r")(?P=q)\s*:\s*b?)"
    r"(?P<vq>['\"])(?P<value>.*?)(?P=vq)"
)
_PLAIN_PAIR = re.compile(
    r"(?i)(?P<head>\b(?:" + _SECRET_NAMES + r")\b\s*[:=]\s*)(?!\*\*\*)(?P<value>[^\s,;'\"}\]]+)"
)
# AWS access key ids (long-term AKIA..., temporary ASIA...), wherever they appear.
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b")
# http(s) URLs: an endpoint in an error message (it may be a private host, and it came from
# storage_options, which never appear in errors)
_HTTP_URL = re.compile(r"(?i)\bhttps?://[^\s'\"<>]+")


def redact(text: str) -> str:
    """Return ``text`` with credentials masked.

    Masks URL userinfo (``http://user:pw@host`` -> ``http://***@host``), signed-URL query
    values, secret-looking header and option values (``x-amz-security-token``,
    ``Authorization``, ``aws_secret_access_key``, ``password``, ...) and AWS access key ids.

    Parameters
    ----------
    text : str
        Any text (a log message, an error message, a traceback).

    Returns
    -------
    str
        The same text with every match replaced by ``***``.
    """
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    out = _SIGNED_QUERY.sub(lambda m: f"{m.group('name')}={MASK}", out)
    out = _QUOTED_PAIR.sub(lambda m: f"{m.group('head')}{m.group('vq')}{MASK}{m.group('vq')}", out)
    out = _PLAIN_PAIR.sub(lambda m: f"{m.group('head')}{MASK}", out)
    return _KEY_ID.sub(MASK, out)


def redact_error(exc: BaseException) -> str:
    """``"<type>: <message>"`` of an exception, credentials and endpoint URLs masked.

    For wrapping a client library's exception into a gamstore error: HTTP(S) URLs (the
    endpoint, from ``storage_options``) become ``<endpoint_url>``.
    """
    text = _HTTP_URL.sub("<endpoint_url>", str(exc))
    return f"{type(exc).__name__}: {redact(text)}"


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in each record's message (never drops one).

    The message is formatted once (``record.getMessage()``); when masking changed it, the
    record carries the masked text and no arguments afterwards.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's own problem
            return True
        masked = redact(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, traceback, stack) goes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
