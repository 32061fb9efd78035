"""Log output of the ``gamstore`` command: gamstore's loggers only, credentials masked.

``-v`` and ``-vv`` raise the ``gamstore`` logger to INFO and DEBUG; third-party loggers
(botocore, s3fs, aiobotocore, urllib3, ...) stay at WARNING, because botocore's DEBUG log
prints signed request headers, session tokens included. ``-vvv`` also turns those on for
debugging a connection; every line still goes through :mod:`gamstore._redact`.
"""

from __future__ import annotations

import logging

from gamstore._redact import RedactingFilter, RedactingFormatter

__all__ = ["FORMAT", "configure_logging"]

FORMAT = "%(levelname)s %(name)s: %(message)s"
_TAG = "_gamstore_cli_handler"


def configure_logging(verbose: int) -> logging.Handler:
    """Install the CLI's stderr handler on the root logger (replacing one installed before).

    Parameters
    ----------
    verbose : int
        0: warnings; 1: gamstore INFO; 2: gamstore DEBUG; 3 or more: every logger at DEBUG.

    Returns
    -------
    logging.Handler
        The installed handler (masks credentials in every record it writes).
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _TAG, False)]:
        root.removeHandler(old)  # main() may run many times in one process (tests)
    handler = logging.StreamHandler()  # the current sys.stderr
    setattr(handler, _TAG, True)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(RedactingFormatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose >= 3 else logging.WARNING)
    own = logging.getLogger("gamstore")
    own.setLevel(logging.WARNING - 10 * min(max(verbose, 0), 2))
    for h in own.handlers:  # handlers someone put on gamstore's logger mask too
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    return handler
