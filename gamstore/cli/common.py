"""What every ``gamstore`` command shares: option parsing, error exits and the console.

One owner per concept: every command that takes ``-o/--storage-option`` parses it with
:func:`parse_storage_options`, prints tables through :func:`console` and reports bad input
with :func:`fail`, so the commands agree on types, widths and messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn

import click

from gamstore._redact import redact

__all__ = ["console", "fail", "parse_storage_options", "storage_option"]

_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_WORDS = {"true": True, "false": False, "null": None, "none": None}

#: Width of tables written to a pipe or file: wide enough that no column is cut short
#: (entry ids are 35 characters, REML values 12+), so scripts read whole numbers.
PIPE_WIDTH = 200


def fail(code: int, message: str) -> NoReturn:
    """Print ``Error: message`` on stderr (credentials masked) and exit with ``code``."""
    click.echo(f"Error: {redact(message)}", err=True)  # messages may quote a client's error
    raise click.exceptions.Exit(code)


def parse_storage_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs -> fsspec ``storage_options``.

    Values are text unless they read as something else: ``true``/``false`` become booleans,
    ``null``/``none`` become None (any letter case), integers and decimals become numbers,
    and a value starting with ``{`` or ``[`` is read as JSON (``config_kwargs={"connect_timeout": 5}``).

    Raises
    ------
    ValueError
        An item without ``=``, an empty key, a key given twice or malformed JSON.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--storage-option: expected KEY=VALUE, got {item!r}")
        if key in out:
            raise ValueError(f"--storage-option: {key!r} given twice")
        out[key] = _convert(key, value)
    return out


def _convert(key: str, value: str) -> Any:
    word = value.strip().lower()
    if word in _WORDS:
        return _WORDS[word]
    if _NUMBER.match(word):
        return float(word) if any(c in word for c in ".e") else int(word)
    if value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"--storage-option {key}: value is not valid JSON ({exc})") from None
    return value


def storage_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """The ``-o/--storage-option KEY=VALUE`` option (repeatable), one definition for all."""
    return click.option(
        "-o",
        "--storage-option",
        "storage_option",
        multiple=True,
        metavar="KEY=VALUE",
        help="fsspec storage option (repeatable), e.g. endpoint_url=http://127.0.0.1:5555; "
        "true/false/null, numbers and JSON values are converted.",
    )(f)


def console(stderr: bool = False) -> Any:
    """A rich console: the terminal's width on a terminal, :data:`PIPE_WIDTH` elsewhere.

    Off a terminal rich would assume 80 columns and cut table cells to ``90802.39…``;
    output meant for a pipe or a file keeps every digit instead.
    """
    from rich.console import Console

    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH)
