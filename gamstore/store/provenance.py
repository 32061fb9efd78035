"""Provenance of stored entries: which fit, on which data, in which run wrote an entry.

Every entry's marker carries ``attrs["gamstore"]["provenance"]``, a small dict of the fields
below. The fitter and the LOSO pipeline know them; the warm-start layer between them and the
store does not, so they travel in a context variable: :func:`provenance` sets fields for
the code inside its ``with`` block (nested blocks add to and override the outer ones), and
:meth:`gamstore.store.Store.save` stores the fields current at the save, plus the gamstore
version. Context variables follow the code, not the process: a LOSO worker sets them itself
around its fold fit.

=================  =========================  ==============================================
field              type                       meaning
=================  =========================  ==============================================
``response``       str                        response column (binomial: ``"succ,trials"``)
``covariates``     list of str                covariate columns, in model order
``terms``          list of str                model terms (blocks) in model order, e.g.
                                              ``["(Intercept)", "s(x0)"]``: the names of a
                                              fit artifact's terms
``n_rows``         int >= 0                   data rows the fit used
``subject_column`` str                        LOSO: the subject column
``held_out``       str or null                LOSO: label of the held-out subject (``str``
                                              of the value); null for the full-data fit
``run_id``         str                        one id per ``GAM.fit`` call, or per
                                              ``run_loso`` call for all of its fits
``gamstore_version`` str                      version of the gamstore that wrote the entry
=================  =========================  ==============================================

A marker is untrusted input: :func:`check_provenance` accepts only these fields with these
types and sizes (anything else makes the entry corrupt).
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "PROVENANCE_FIELDS",
    "check_provenance",
    "current_provenance",
    "new_run_id",
    "provenance",
]

#: Longest string value (a column name, a label, an id) and most covariates kept.
MAX_TEXT = 256
MAX_COVARIATES = 1024

_STR = "str"
_STR_OR_NULL = "str|null"
_COUNT = "int"
_NAMES = "list[str]"

#: Field name -> accepted type.
PROVENANCE_FIELDS: dict[str, str] = {
    "response": _STR,
    "covariates": _NAMES,
    "terms": _NAMES,
    "n_rows": _COUNT,
    "subject_column": _STR,
    "held_out": _STR_OR_NULL,
    "run_id": _STR,
    "gamstore_version": _STR,
}

_CURRENT: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "gamstore_provenance", default=None
)


def new_run_id() -> str:
    """A fresh run id (16 hex digits)."""
    return secrets.token_hex(8)


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"provenance.{name}: expected a str, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"provenance.{name}: at most {MAX_TEXT} characters, got {len(value)}")
    return value


def check_provenance(value: Any) -> dict[str, Any]:
    """Return ``value`` as a provenance dict, checking every field's type and size.

    Parameters
    ----------
    value : mapping
        Field name -> value (see the module table); unknown fields are refused.

    Returns
    -------
    dict
        A new dict holding the same fields (covariates as a list).

    Raises
    ------
    TypeError, ValueError
        Naming the field and what was expected.
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"provenance: expected a mapping, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for name, v in value.items():
        kind = PROVENANCE_FIELDS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise ValueError(
                f"provenance: unknown field {name!r:.80}; expected {sorted(PROVENANCE_FIELDS)}"
            )
        if kind == _STR:
            out[name] = _check_text(name, v)
        elif kind == _STR_OR_NULL:
            out[name] = None if v is None else _check_text(name, v)
        elif kind == _COUNT:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53:
                raise ValueError(f"provenance.{name}: expected an int in [0, 2**53), got {v!r:.80}")
            out[name] = int(v)
        else:
            if isinstance(v, str) or not isinstance(v, (list, tuple)):
                raise TypeError(
                    f"provenance.{name}: expected a list of str, got {type(v).__name__}"
                )
            if len(v) > MAX_COVARIATES:
                raise ValueError(f"provenance.{name}: at most {MAX_COVARIATES} names, got {len(v)}")
            out[name] = [_check_text(f"{name}[{i}]", s) for i, s in enumerate(v)]
    return out


def current_provenance() -> dict[str, Any]:
    """The provenance fields set by the enclosing :func:`provenance` blocks (a copy)."""
    cur = _CURRENT.get()
    return dict(cur) if cur else {}


@contextlib.contextmanager
def provenance(**fields: Any) -> Iterator[dict[str, Any]]:
    """Set provenance fields for every entry saved inside the ``with`` block.

    Fields given as None are left as the enclosing block set them (``held_out=None`` is
    the exception: it means "the full-data fit"). Yields the fields now current.

    Raises
    ------
    TypeError, ValueError
        For an unknown field or a value of the wrong type (see :func:`check_provenance`).

    Examples
    --------
    >>> from gamstore.store.provenance import current_provenance, provenance
    >>> with provenance(subject_column="subj", held_out="3", run_id="r1"):
    ...     with provenance(response="y", n_rows=90):
    ...         sorted(current_provenance())
    ['held_out', 'n_rows', 'response', 'run_id', 'subject_column']
    """
    given = {k: v for k, v in fields.items() if v is not None or k == "held_out"}
    merged = {**current_provenance(), **check_provenance(given)}
    token = _CURRENT.set(merged)
    try:
        yield dict(merged)
    finally:
        _CURRENT.reset(token)
