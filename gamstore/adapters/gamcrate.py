"""Read the warm-start cache of the Rust crate ``gam`` and import it into a gamstore store.

The crate keeps one directory per 256-bit key under its cache root::

    <root>/<64 hex>/<run_id>.json    metadata (commit marker, written last)
    <root>/<64 hex>/<run_id>.bin     payload bytes (compact JSON of one record)

The payload of an entry is one of four JSON documents: an inner record (A,
``PersistentWarmStartRecord``), a block record (B, ``PersistentBlockWarmStartRecord``),
an outer-iterate payload (C, ``IteratePayload``) or a cross-fit fit artifact (D,
``FitArtifact``). :func:`scan_crate_dir` walks a root, checks every entry the way the crate's
own reader would (meta schema, SHA-256 checksum of the payload, record version walls, the
record's validity rules, and that the key directory is the fingerprint of the record's own
key) and yields either a :class:`CrateEntry` or a :class:`CrateSkip` with a reason.
:func:`import_crate_dir` turns the good entries into gamstore records and saves them, and
returns an :class:`ImportReport` with counts per keyspace and per skip reason.

The reader never modifies the crate directory (the crate's scan deletes corrupt entries; an
importer must not).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
import struct
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gamstore._validate import as_count, as_finite_float, is_finite_number

log = logging.getLogger("gamstore.adapters.gamcrate")

#: Store meta schema the crate writes (``SCHEMA_VERSION``).
STORE_SCHEMA_VERSION = 1
#: ``version`` field of records A and B (``CACHE_VERSION``).
RECORD_VERSION = 1
#: ``schema`` of an outer-iterate payload (``ITERATE_PAYLOAD_SCHEMA``).
ITERATE_PAYLOAD_SCHEMA = 3
#: ``schema`` of a fit artifact (``FIT_ARTIFACT_SCHEMA``).
FIT_ARTIFACT_SCHEMA = 1
#: The crate's per-record cap (``MAX_ENTRY_BYTES``); larger payloads are rejected on load.
MAX_ENTRY_BYTES = 16 * 1024 * 1024
#: The crate schema tag under which the fit-artifact keyspace exists (introduced in v3).
ARTIFACT_SCHEMA_TAGS = ("schema3-unified-fingerprinter-v3",)

#: Crate payload kind -> gamstore keyspace.
KEYSPACE_OF_KIND = {"inner": "inner", "block": "block", "outer": "outer", "artifact": "artifact"}

# Skip reasons. Benign ones describe files that are not (yet) entries; the others are
# entries the crate itself would refuse, or that gamstore could not store.
SKIP_TEMP = "temp-file"
SKIP_FOREIGN_FILE = "foreign-file"
SKIP_ORPHAN_PAYLOAD = "orphan-payload"
SKIP_MISSING_PAYLOAD = "missing-payload"
SKIP_BAD_META = "bad-meta"
SKIP_FOREIGN_STORE_SCHEMA = "foreign-store-schema"
SKIP_OVERSIZE = "oversize"
SKIP_UNREADABLE = "unreadable"
SKIP_CHECKSUM = "checksum-mismatch"
SKIP_BAD_PAYLOAD = "bad-payload"
SKIP_UNKNOWN_PAYLOAD = "unknown-payload"
SKIP_FOREIGN_PAYLOAD_SCHEMA = "foreign-payload-schema"
SKIP_INVALID_RECORD = "invalid-record"
SKIP_KEY_MISMATCH = "key-mismatch"
SKIP_ALREADY_PRESENT = "already-present"
SKIP_CONVERT_FAILED = "convert-failed"
SKIP_SAVE_FAILED = "save-failed"
SKIP_SPECIAL_FILE = "special-file"

#: Reasons that mean "damaged data" (the CLI exits 1 when any of them occurs).
CORRUPT_REASONS = frozenset(
    {
        SKIP_MISSING_PAYLOAD,
        SKIP_BAD_META,
        SKIP_UNREADABLE,
        SKIP_CHECKSUM,
        SKIP_BAD_PAYLOAD,
        SKIP_INVALID_RECORD,
        SKIP_KEY_MISMATCH,
        SKIP_SPECIAL_FILE,
    }
)

#: Largest metadata document read (the crate writes a few hundred bytes).
MAX_META_BYTES = 1024 * 1024
#: Largest integer taken from a crate document: gamstore stores integers as int64.
MAX_INT = 2**63 - 1

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


# ---------------------------------------------------------------------------------------------
# The crate's SHA-256 fingerprint framing (spec section 2.2), needed to check key directories.
# ---------------------------------------------------------------------------------------------

_FRAME_TAG, _FRAME_BYTES, _FRAME_STR, _FRAME_U64 = 0, 1, 2, 3


class CrateFingerprinter:
    """The crate's tagged SHA-256 hasher (``absorb_*`` frames), for key-directory checks.

    Each ``absorb_*`` call writes a frame header (one type byte, the tag length as u32
    little-endian, the tag bytes) and then its payload. This is the crate's hashing, not
    gamstore's (which uses BLAKE3); it is only used to recompute crate key directories.
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def _frame(self, code: int, tag: bytes) -> None:
        self._h.update(bytes((code,)) + struct.pack("<I", len(tag)) + tag)

    def absorb_tag(self, tag: bytes) -> None:
        """Absorb a bare tag (no payload)."""
        self._frame(_FRAME_TAG, tag)

    def absorb_bytes(self, tag: bytes, data: bytes) -> None:
        """Absorb a byte string, length-prefixed (u64 LE)."""
        self._frame(_FRAME_BYTES, tag)
        self._h.update(struct.pack("<Q", len(data)) + data)

    def absorb_str(self, tag: bytes, text: str) -> None:
        """Absorb a UTF-8 string, length-prefixed (u64 LE byte length)."""
        data = text.encode("utf-8")
        self._frame(_FRAME_STR, tag)
        self._h.update(struct.pack("<Q", len(data)) + data)

    def absorb_u64(self, tag: bytes, value: int) -> None:
        """Absorb an unsigned 64-bit integer (8 bytes LE)."""
        self._frame(_FRAME_U64, tag)
        self._h.update(struct.pack("<Q", value))

    def finalize(self) -> bytes:
        """Return the 32-byte digest."""
        return self._h.digest()


def record_key_dir(key: str) -> str:
    """Key directory of a record A/B stored under ``key`` (``absorb_str("warm-start-key")``)."""
    fp = CrateFingerprinter()
    fp.absorb_str(b"warm-start-key", key)
    return fp.finalize().hex()


def outer_key_dir(key: str) -> str:
    """Key directory of an outer-iterate session ``key`` (``absorb_str("outer-iterate-key")``)."""
    fp = CrateFingerprinter()
    fp.absorb_str(b"outer-iterate-key", key)
    return fp.finalize().hex()


def descriptor_key(family_kind: str, term_identities: list[bytes]) -> str:
    """Hex descriptor key of a fit descriptor (spec 2.5: sorted identities, rows excluded)."""
    fp = CrateFingerprinter()
    fp.absorb_tag(b"fit-artifact-descriptor-v1")
    fp.absorb_str(b"family_kind", family_kind)
    ordered = sorted(term_identities)  # ascending as byte arrays, duplicates kept
    fp.absorb_u64(b"n_terms", len(ordered))
    for ident in ordered:
        fp.absorb_bytes(b"term", ident)
    return fp.finalize().hex()


def artifact_key_dir(descriptor_hex: str, schema_tag: str = ARTIFACT_SCHEMA_TAGS[0]) -> str:
    """Key directory of the fit artifacts of one descriptor key."""
    fp = CrateFingerprinter()
    fp.absorb_str(b"fit-artifact-key", schema_tag)
    fp.absorb_str(b"fit-artifact-descriptor", descriptor_hex)
    return fp.finalize().hex()


# ---------------------------------------------------------------------------------------------
# Parsed forms
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrateMeta:
    """The metadata JSON of one crate entry (``<run_id>.json``), validated."""

    schema_version: int
    producer: str
    written_unix_secs: int
    written_nanos: int
    objective: float | None
    iteration: int | None
    kind: str  # "Checkpoint" | "Final"
    checksum_hex: str
    payload_bytes: int
    accessed: bool
    accessed_unix_secs: int
    accessed_nanos: int

    @property
    def written_ns(self) -> int:
        """Creation stamp in nanoseconds since the epoch."""
        return self.written_unix_secs * 1_000_000_000 + self.written_nanos


@dataclass(frozen=True)
class CrateEntry:
    """One valid crate entry: its location, metadata and decoded, validated payload.

    ``payload_kind`` is ``"inner"`` (record A), ``"block"`` (record B), ``"outer"``
    (``IteratePayload``) or ``"artifact"`` (``FitArtifact``). ``payload`` is the parsed JSON
    object with defaults filled in (serde defaults of the crate) and the outer payload's
    Hessian scrubbed when inconsistent. ``key`` is the string the crate looks the entry up
    by: the record's own ``key`` (A, B), the descriptor key hex (D), or ``None`` for outer
    sessions, whose key string is not recoverable from disk.
    """

    key_dir: str
    run_id: str
    meta: CrateMeta
    payload_kind: str
    payload: dict[str, Any]
    key: str | None

    @property
    def keyspace(self) -> str:
        """The gamstore keyspace this entry imports into."""
        return KEYSPACE_OF_KIND[self.payload_kind]


@dataclass(frozen=True)
class CrateSkip:
    """A file or entry that was not imported, with the reason and a short explanation."""

    path: str  # relative to the crate root
    reason: str
    detail: str


@dataclass
class ImportReport:
    """Counts of one import: entries imported per keyspace and skipped per reason."""

    imported: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skips: list[CrateSkip] = field(default_factory=list)
    keys: dict[str, set[str]] = field(default_factory=dict)

    @property
    def n_imported(self) -> int:
        """Total number of imported entries."""
        return sum(self.imported.values())

    @property
    def n_skipped(self) -> int:
        """Total number of skipped files/entries."""
        return sum(self.skipped.values())

    @property
    def n_corrupt(self) -> int:
        """Number of skips whose reason is in :data:`CORRUPT_REASONS`."""
        return sum(n for reason, n in self.skipped.items() if reason in CORRUPT_REASONS)

    def add_skip(self, skip: CrateSkip) -> None:
        """Count one skip (and keep it for the detailed listing)."""
        self.skipped[skip.reason] += 1
        self.skips.append(skip)

    def as_dict(self) -> dict[str, Any]:
        """Strict-JSON summary (no per-file details)."""
        return {
            "imported": dict(sorted(self.imported.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "n_imported": self.n_imported,
            "n_skipped": self.n_skipped,
            "n_corrupt": self.n_corrupt,
        }


class _Reject(Exception):
    """Internal: a payload/meta check failed with a skip reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------------------------
# Strict JSON field checks (names in messages are the crate's field names)
# ---------------------------------------------------------------------------------------------


def _loads_strict(data: bytes) -> Any:
    """Parse strict JSON with limits: NaN/Infinity literals, numbers that overflow to
    infinity, duplicate keys and nesting deeper than 64 levels are refused (serde_json never
    writes any of them); a ValueError names the problem."""
    from gamstore import _json

    return _json.loads(data, root="document", max_bytes=max(len(data), 1))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uint(obj: Mapping[str, Any], name: str, *, default: int | None = None, bits: int = 64) -> int:
    if name not in obj:
        if default is None:
            raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} is missing")
        return default
    value = obj[name]
    # u64 fields are capped at the int64 range gamstore stores (no crate value comes close)
    limit = MAX_INT if bits == 64 else _U32_MAX
    try:  # JSON gives exact ints; as_count also refuses bools
        return as_count(value, name, maximum=limit)
    except (TypeError, ValueError):
        shown = repr(value) if not _is_int(value) or value.bit_length() < 128 else "a huge integer"
        raise _Reject(
            SKIP_INVALID_RECORD,
            f"field {name!r} must be a u{bits} integer (at most {limit}), got {shown:.80}",
        ) from None


def _typed(obj: Mapping[str, Any], name: str, kind: type, what: str, default: Any) -> Any:
    """Field ``name`` of the crate JSON, of exactly ``kind`` (``default`` when absent)."""
    if name not in obj:
        if default is None:
            raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} is missing")
        return default
    value = obj[name]
    if not isinstance(value, kind):
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be {what}")
    return value


def _str(obj: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    return str(_typed(obj, name, str, "a string", default))


def _bool(obj: Mapping[str, Any], name: str, *, default: bool | None = None) -> bool:
    return bool(_typed(obj, name, bool, "a boolean", default))


def _finite(value: Any, name: str) -> float:
    # serde_json writes non-finite f64 as null, which the crate then cannot read back
    try:
        return as_finite_float(value, name)
    except TypeError:
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be a finite number") from None
    except ValueError:  # inf/nan, or an integer literal such as 10**400
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be finite") from None


_finite_number = is_finite_number


def _float_list(
    obj: Mapping[str, Any], name: str, *, default: list[float] | None = None
) -> list[float]:
    if name not in obj:
        if default is None:
            raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} is missing")
        return list(default)
    return _float_seq(obj[name], name)


def _float_seq(value: Any, name: str) -> list[float]:
    if not isinstance(value, list):
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be a list of numbers")
    return [_finite(v, f"{name}[{i}]") for i, v in enumerate(value)]


def _opt_float_list(obj: Mapping[str, Any], name: str) -> list[float] | None:
    value = obj.get(name)  # serde: a missing Option field is None
    return None if value is None else _float_seq(value, name)


def _opt_float(obj: Mapping[str, Any], name: str) -> float | None:
    value = obj.get(name)
    return None if value is None else _finite(value, name)


def _uint_list(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(_is_int(v) and 0 <= v <= MAX_INT for v in value):
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be a list of unsigned integers")
    return [int(v) for v in value]


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be a JSON object")
    return value


# ---------------------------------------------------------------------------------------------
# Meta and payload validation
# ---------------------------------------------------------------------------------------------


def parse_meta(data: bytes) -> CrateMeta:
    """Parse and validate one ``<run_id>.json`` metadata document.

    Parameters
    ----------
    data : bytes
        The raw bytes of the metadata file.

    Returns
    -------
    CrateMeta

    Raises
    ------
    ValueError
        With ``args[0]`` naming the failing field. A foreign store schema raises with the
        message starting ``"foreign-store-schema"``.
    """
    try:
        return _parse_meta(data)
    except _Reject as exc:
        raise ValueError(f"{exc.reason}: {exc.detail}") from None


def _parse_meta(data: bytes) -> CrateMeta:
    try:
        obj = _loads_strict(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Reject(SKIP_BAD_META, f"meta is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Reject(SKIP_BAD_META, "meta must be a JSON object")
    try:
        schema = _uint(obj, "schema_version", bits=32)
    except _Reject as exc:
        raise _Reject(SKIP_BAD_META, exc.detail) from None
    if schema != STORE_SCHEMA_VERSION:
        raise _Reject(
            SKIP_FOREIGN_STORE_SCHEMA,
            f"schema_version {schema}, this reader understands {STORE_SCHEMA_VERSION}",
        )
    try:
        objective_raw = obj.get("objective")
        objective = None if objective_raw is None else _finite(objective_raw, "objective")
        iteration_raw = obj.get("iteration")
        iteration = None if iteration_raw is None else _uint(obj, "iteration")
        kind = _str(obj, "kind")
        if kind not in ("Checkpoint", "Final"):
            raise _Reject(SKIP_BAD_META, f"field 'kind' must be Checkpoint or Final, got {kind!r}")
        checksum = _str(obj, "checksum_hex")
        if not _HEX64.match(checksum):
            raise _Reject(SKIP_BAD_META, "field 'checksum_hex' must be 64 hex characters")
        return CrateMeta(
            schema_version=schema,
            producer=_str(obj, "producer", default=""),
            written_unix_secs=_uint(obj, "written_unix_secs"),
            written_nanos=_uint(obj, "written_nanos", default=0, bits=32),
            objective=objective,
            iteration=iteration,
            kind=kind,
            checksum_hex=checksum.lower(),
            payload_bytes=_uint(obj, "payload_bytes"),
            accessed=_bool(obj, "accessed", default=False),
            accessed_unix_secs=_uint(obj, "accessed_unix_secs", default=0),
            accessed_nanos=_uint(obj, "accessed_nanos", default=0, bits=32),
        )
    except _Reject as exc:
        raise _Reject(SKIP_BAD_META, exc.detail) from None


def classify_payload(obj: Mapping[str, Any]) -> str | None:
    """Which crate document a parsed payload is, from its field names (None if unknown)."""
    if "block_names" in obj and "block_beta" in obj:
        return "block"
    if "n_cols" in obj and "beta" in obj and "version" in obj:
        return "inner"
    if "descriptor" in obj and "terms" in obj:
        return "artifact"
    if "schema" in obj and "rho" in obj and "cost" in obj:
        return "outer"
    return None


def _check_inner(obj: dict[str, Any]) -> dict[str, Any]:
    version = _uint(obj, "version", bits=32)
    if version != RECORD_VERSION:
        raise _Reject(SKIP_FOREIGN_PAYLOAD_SCHEMA, f"record version {version}")
    n_cols = _uint(obj, "n_cols")
    out: dict[str, Any] = {
        "version": version,
        "key": _str(obj, "key"),
        "package_version": _str(obj, "package_version"),
        "created_unix_secs": _uint(obj, "created_unix_secs"),
        "updated_unix_secs": _uint(obj, "updated_unix_secs"),
        "n_rows": _uint(obj, "n_rows"),
        "n_cols": n_cols,
        "rho": _float_list(obj, "rho"),
        "beta": _float_list(obj, "beta"),
        "prev_rho": _opt_float_list(obj, "prev_rho"),
        "prev_beta": _opt_float_list(obj, "prev_beta"),
        "last_inner_iters": _uint(obj, "last_inner_iters"),
        "last_inner_converged": _bool(obj, "last_inner_converged"),
        "last_pirls_lm_lambda": _opt_float(obj, "last_pirls_lm_lambda"),
        "last_ift_prediction_residual": _opt_float(obj, "last_ift_prediction_residual"),
        "last_pirls_accept_rho": _opt_float(obj, "last_pirls_accept_rho"),
    }
    # is_compatible rules that do not need the caller's expectations
    if len(out["beta"]) != n_cols:
        raise _Reject(
            SKIP_INVALID_RECORD, f"'beta' has length {len(out['beta'])}, expected n_cols={n_cols}"
        )
    if out["prev_rho"] is not None and len(out["prev_rho"]) != len(out["rho"]):
        raise _Reject(SKIP_INVALID_RECORD, "'prev_rho' must have the length of 'rho'")
    if out["prev_beta"] is not None and len(out["prev_beta"]) != n_cols:
        raise _Reject(SKIP_INVALID_RECORD, f"'prev_beta' must have length n_cols={n_cols}")
    return out


_SUMMARY_FLOATS = ("log_likelihood", "penalty_value", "block_logdet_h", "block_logdet_s")


def _check_block(obj: dict[str, Any]) -> dict[str, Any]:
    version = _uint(obj, "version", bits=32)
    if version != RECORD_VERSION:
        raise _Reject(SKIP_FOREIGN_PAYLOAD_SCHEMA, f"record version {version}")
    names = obj.get("block_names")
    if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
        raise _Reject(SKIP_INVALID_RECORD, "field 'block_names' must be a list of strings")
    dims = _uint_list(obj.get("block_dims"), "block_dims")
    betas_raw = obj.get("block_beta")
    if not isinstance(betas_raw, list):
        raise _Reject(SKIP_INVALID_RECORD, "field 'block_beta' must be a list of lists")
    betas = [_float_seq(b, f"block_beta[{i}]") for i, b in enumerate(betas_raw)]
    sets_raw = obj.get("active_sets")
    if not isinstance(sets_raw, list):
        raise _Reject(SKIP_INVALID_RECORD, "field 'active_sets' must be a list")
    active_sets: list[list[int] | None] = []
    for i, s in enumerate(sets_raw):
        if s is None:
            active_sets.append(None)
            continue
        # load normalisation of the crate: sorted, deduplicated, empty -> None
        norm = sorted(set(_uint_list(s, f"active_sets[{i}]")))
        active_sets.append(norm or None)
    n_blocks = len(dims)
    if not (len(names) == n_blocks == len(betas) == len(active_sets)):
        raise _Reject(
            SKIP_INVALID_RECORD,
            f"block_names/block_dims/block_beta/active_sets lengths differ "
            f"({len(names)}/{n_blocks}/{len(betas)}/{len(active_sets)})",
        )
    for i, (beta, dim) in enumerate(zip(betas, dims, strict=True)):
        if len(beta) != dim:
            raise _Reject(
                SKIP_INVALID_RECORD, f"'block_beta[{i}]' has length {len(beta)}, expected {dim}"
            )
    inner_raw = obj.get("inner")
    inner: dict[str, Any] | None = None
    if inner_raw is not None:
        summary = _object(inner_raw, "inner")
        inner = {name: _finite(summary.get(name), f"inner.{name}") for name in _SUMMARY_FLOATS}
        inner["cycles"] = _uint(summary, "cycles")
        inner["converged"] = _bool(summary, "converged")
        # newer crates add solver-state fields whose exact types are not known here: keep
        # them when they are a positive finite number / a flat finite vector, else drop them
        # (they only refine reuse of the cached mode; the record stands without them)
        tol: Any = summary.get("solved_inner_tol")
        if _finite_number(tol) and float(tol) > 0:
            inner["solved_inner_tol"] = float(tol)
        for extra in ("block_log_lambdas", "joint_log_lambdas"):
            if summary.get(extra) is not None:
                try:
                    inner[extra] = _float_seq(summary[extra], f"inner.{extra}")
                except _Reject:
                    log.debug("gam crate record: dropping inner.%s of unknown shape", extra)
    return {
        "version": version,
        "key": _str(obj, "key"),
        "package_version": _str(obj, "package_version"),
        "created_unix_secs": _uint(obj, "created_unix_secs"),
        "updated_unix_secs": _uint(obj, "updated_unix_secs"),
        "n_rows": _uint(obj, "n_rows"),
        "block_names": list(names),
        "block_dims": dims,
        "rho": _float_list(obj, "rho"),
        "block_beta": betas,
        "active_sets": active_sets,
        "inner": inner,
    }


def _check_outer(obj: dict[str, Any]) -> dict[str, Any]:
    schema = _uint(obj, "schema", bits=32)
    if schema != ITERATE_PAYLOAD_SCHEMA:
        raise _Reject(SKIP_FOREIGN_PAYLOAD_SCHEMA, f"iterate payload schema {schema}")
    rho = _float_list(obj, "rho")
    beta = _float_list(obj, "beta", default=[])
    cost = _finite(obj.get("cost"), "cost")
    eval_id = _uint(obj, "eval_id")
    # the crate scrubs an inconsistent Hessian to empty instead of rejecting the payload
    hessian: list[float] = []
    dim = 0
    raw_h = obj.get("hessian", [])
    raw_dim = obj.get("hessian_dim", 0)
    if (
        isinstance(raw_h, list)
        and _is_int(raw_dim)
        and raw_dim > 0
        and raw_dim * raw_dim == len(raw_h)
        and all(_finite_number(v) for v in raw_h)
    ):
        hessian = [float(v) for v in raw_h]
        dim = int(raw_dim)
    return {
        "schema": schema,
        "rho": rho,
        "beta": beta,
        "hessian": hessian,
        "hessian_dim": dim,
        "cost": cost,
        "eval_id": eval_id,
    }


_ROLES = ("Mean", "Slope", "Generic")
_BASIS_OPT_UINTS = ("degree", "num_knots", "n_centers", "nullspace_order", "matern_nu")


def _hex_identity(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise _Reject(SKIP_INVALID_RECORD, f"field {name!r} must be a 64-hex term identity")
    return value.lower()


def _check_artifact(obj: dict[str, Any]) -> dict[str, Any]:
    schema = _uint(obj, "schema", bits=32)
    if schema != FIT_ARTIFACT_SCHEMA:
        raise _Reject(SKIP_FOREIGN_PAYLOAD_SCHEMA, f"fit artifact schema {schema}")
    desc = _object(obj.get("descriptor"), "descriptor")
    identities_raw = desc.get("term_identities")
    if not isinstance(identities_raw, list):
        raise _Reject(SKIP_INVALID_RECORD, "field 'descriptor.term_identities' must be a list")
    identities = [
        _hex_identity(v, f"descriptor.term_identities[{i}]") for i, v in enumerate(identities_raw)
    ]
    rsig = _object(desc.get("response_signature"), "descriptor.response_signature")
    rpop_raw = desc.get("row_population")
    rpop: dict[str, Any] | None = None
    if rpop_raw is not None:
        rp = _object(rpop_raw, "descriptor.row_population")
        label = rp.get("label")
        if label is not None and not isinstance(label, str):
            raise _Reject(SKIP_INVALID_RECORD, "field 'row_population.label' must be a string")
        rpop = {"n_rows": _uint(rp, "n_rows"), "label": label}
    descriptor = {
        "family_kind": _str(desc, "family_kind"),
        "term_identities": identities,
        "response_signature": {
            "family_kind": _str(rsig, "family_kind"),
            "n_response_channels": _uint(rsig, "n_response_channels"),
        },
        "row_population": rpop,
    }
    terms_raw = obj.get("terms")
    if not isinstance(terms_raw, list):
        raise _Reject(SKIP_INVALID_RECORD, "field 'terms' must be a list")
    terms = []
    for i, t_raw in enumerate(terms_raw):
        t = _object(t_raw, f"terms[{i}]")
        role = t.get("role")
        if role == "LogSlope":
            # renamed to Slope without a schema bump: the current crate cannot read these
            raise _Reject(
                SKIP_FOREIGN_PAYLOAD_SCHEMA, f"'terms[{i}].role' uses the historical LogSlope"
            )
        if role not in _ROLES:
            raise _Reject(SKIP_INVALID_RECORD, f"field 'terms[{i}].role' is unknown: {role!r}")
        bm = _object(t.get("basis_meta"), f"terms[{i}].basis_meta")
        basis: dict[str, Any] = {"kind": _str(bm, "kind")}
        for name in _BASIS_OPT_UINTS:
            basis[name] = None if bm.get(name) is None else _uint(bm, name)
        basis["periodic"] = _bool(bm, "periodic", default=False)
        rot_raw = t.get("joint_null_rotation")
        rotation: dict[str, Any] | None = None
        if rot_raw is not None:
            rot = _object(rot_raw, f"terms[{i}].joint_null_rotation")
            nr, nc = _uint(rot, "nrows"), _uint(rot, "ncols")
            data = _float_list(rot, "data")
            if len(data) != nr * nc:
                raise _Reject(
                    SKIP_INVALID_RECORD,
                    f"'terms[{i}].joint_null_rotation.data' has {len(data)} values, "
                    f"expected nrows*ncols={nr * nc}",
                )
            rotation = {"nrows": nr, "ncols": nc, "data": data}
        terms.append(
            {
                "identity": _hex_identity(t.get("identity"), f"terms[{i}].identity"),
                "role": role,
                "basis_meta": basis,
                "joint_null_rotation": rotation,
                "raw_beta": _float_list(t, "raw_beta"),
                "rho_for_term": _float_list(t, "rho_for_term"),
            }
        )
    glob = _object(obj.get("global"), "global")
    return {
        "schema": schema,
        "created_unix_secs": _uint(obj, "created_unix_secs"),
        "descriptor": descriptor,
        "terms": terms,
        "global": {
            # is_usable(): the outer objective must be finite
            "outer_objective": _finite(glob.get("outer_objective"), "global.outer_objective"),
            "converged": _bool(glob, "converged"),
            "n_rows": _uint(glob, "n_rows"),
        },
    }


_CHECKERS = {
    "inner": _check_inner,
    "block": _check_block,
    "outer": _check_outer,
    "artifact": _check_artifact,
}


def parse_payload(data: bytes) -> tuple[str, dict[str, Any]]:
    """Decode and validate one payload (the ``.bin`` bytes).

    Parameters
    ----------
    data : bytes
        The payload bytes (compact JSON).

    Returns
    -------
    (payload_kind, payload) : tuple[str, dict]
        ``payload_kind`` in ``{"inner", "block", "outer", "artifact"}``; ``payload`` the
        validated document with crate defaults filled in.

    Raises
    ------
    ValueError
        ``"<reason>: <detail>"`` with a reason from the ``SKIP_*`` constants.
    """
    try:
        return _parse_payload(data)
    except _Reject as exc:
        raise ValueError(f"{exc.reason}: {exc.detail}") from None


def _parse_payload(data: bytes) -> tuple[str, dict[str, Any]]:
    try:
        obj = _loads_strict(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Reject(SKIP_BAD_PAYLOAD, f"payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Reject(SKIP_BAD_PAYLOAD, "payload must be a JSON object")
    kind = classify_payload(obj)
    if kind is None:
        raise _Reject(SKIP_UNKNOWN_PAYLOAD, f"unrecognised payload with fields {sorted(obj)[:8]}")
    return kind, _CHECKERS[kind](obj)


def expected_key(payload_kind: str, payload: Mapping[str, Any]) -> str | None:
    """The string the crate looks this payload up by (None for outer sessions)."""
    if payload_kind in ("inner", "block"):
        return str(payload["key"])
    if payload_kind == "artifact":
        desc = payload["descriptor"]
        ids = [bytes.fromhex(h) for h in desc["term_identities"]]
        return descriptor_key(desc["family_kind"], ids)
    return None


def _key_dir_matches(payload_kind: str, key: str | None, key_dir: str) -> bool:
    if payload_kind in ("inner", "block"):
        return key is not None and record_key_dir(key) == key_dir
    if payload_kind == "artifact":
        return key is not None and any(
            artifact_key_dir(key, tag) == key_dir for tag in ARTIFACT_SCHEMA_TAGS
        )
    return True  # an outer session's key string is not on disk; nothing to compare


# ---------------------------------------------------------------------------------------------
# Directory scan
# ---------------------------------------------------------------------------------------------


def scan_crate_dir(
    root: str | os.PathLike[str], *, verify_keys: bool = True
) -> Iterator[CrateEntry | CrateSkip]:
    """Walk a crate cache root and yield every entry, valid or skipped.

    Parameters
    ----------
    root : path-like
        The crate's cache root (the directory holding the 64-hex key directories).
    verify_keys : bool, default True
        Require that a record's key directory is the crate fingerprint of the record's own
        key (A, B) or descriptor key (D). An entry in the wrong directory is unreachable for
        the crate and is skipped as ``"key-mismatch"``.

    Yields
    ------
    CrateEntry or CrateSkip
        In a deterministic order (key directories and run ids sorted).

    Raises
    ------
    ValueError
        If ``root`` is not an existing directory (or is a symlink).

    Notes
    -----
    A crate directory is untrusted input: symlinks and special files (FIFOs, devices) are
    skipped as ``"special-file"`` without being opened, every file is read up to its cap
    (:data:`MAX_META_BYTES`, :data:`MAX_ENTRY_BYTES`) whatever size it claims, JSON is
    parsed with a nesting limit and integers beyond the int64 range are refused.
    """
    base = Path(root)
    if base.is_symlink():
        raise ValueError(f"crate root {str(root)!r} is a symlink; give the directory itself")
    if not base.is_dir():
        raise ValueError(f"crate root {str(root)!r} is not a directory")
    for top in sorted(os.scandir(base), key=lambda e: e.name):
        if not top.is_dir(follow_symlinks=False) or not _HEX64.match(top.name):
            # e.g. README files, unrelated folders: not part of the crate layout
            yield CrateSkip(top.name, SKIP_FOREIGN_FILE, "not a 64-hex key directory")
            continue
        yield from _scan_key_dir(Path(top.path), top.name.lower(), top.name, verify_keys)


def _scan_key_dir(
    path: Path, key_dir: str, rel: str, verify_keys: bool
) -> Iterator[CrateEntry | CrateSkip]:
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        yield CrateSkip(rel, SKIP_UNREADABLE, f"cannot list: {exc.strerror}")
        return
    present = set(names)
    for name in names:
        rel_name = f"{rel}/{name}"
        if ".tmp." in name:
            yield CrateSkip(rel_name, SKIP_TEMP, "in-flight temp file")
            continue
        if name.endswith(".bin"):
            if name[: -len(".bin")] + ".json" not in present:
                yield CrateSkip(rel_name, SKIP_ORPHAN_PAYLOAD, "payload without metadata")
            continue  # read together with its .json
        if not name.endswith(".json"):
            yield CrateSkip(rel_name, SKIP_FOREIGN_FILE, "not a crate entry file")
            continue
        try:
            mode = os.lstat(path / name).st_mode
        except OSError as exc:
            yield CrateSkip(rel_name, SKIP_UNREADABLE, f"cannot stat: {exc.strerror}")
            continue
        if stat.S_ISDIR(mode):
            yield CrateSkip(rel_name, SKIP_FOREIGN_FILE, "not a crate entry file")
            continue
        if not stat.S_ISREG(mode):
            yield CrateSkip(rel_name, SKIP_SPECIAL_FILE, _special_detail(mode))
            continue
        run_id = name[: -len(".json")]
        yield _read_entry(path, key_dir, rel_name, run_id, present, verify_keys)


def _special_detail(mode: int) -> str:
    what = "a symlink" if stat.S_ISLNK(mode) else "not a regular file (FIFO, device, socket)"
    return f"{what}: never opened"


def _read_capped(path: Path, cap: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``cap`` of them.

    The file is opened without following a symlink and without blocking (a FIFO), checked
    to be a regular file on the open descriptor, and read up to ``cap + 1`` bytes whatever
    its size claims (``/proc`` files and growing files report sizes that are not what a
    read returns).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Reject(SKIP_SPECIAL_FILE, _special_detail(stat.S_IFLNK)) from None
        raise _Reject(SKIP_UNREADABLE, f"cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Reject(SKIP_SPECIAL_FILE, _special_detail(st.st_mode))
        if st.st_size > cap:
            raise _Reject(SKIP_OVERSIZE, f"{path.name}: {st.st_size} bytes exceed {cap}")
        chunks: list[bytes] = []
        got = 0
        while got <= cap:
            block = os.read(fd, min(cap + 1 - got, 1 << 20))
            if not block:
                break
            chunks.append(block)
            got += len(block)
        if got > cap:
            raise _Reject(SKIP_OVERSIZE, f"{path.name}: more than {cap} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise _Reject(SKIP_UNREADABLE, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)


def _read_entry(
    path: Path, key_dir: str, rel_name: str, run_id: str, present: set[str], verify_keys: bool
) -> CrateEntry | CrateSkip:
    bin_name = run_id + ".bin"
    try:
        if bin_name not in present:
            raise _Reject(SKIP_MISSING_PAYLOAD, "metadata without payload")
        meta = _parse_meta(_read_capped(path / f"{run_id}.json", MAX_META_BYTES))
        payload_bytes = _read_capped(path / bin_name, MAX_ENTRY_BYTES)
        digest = hashlib.sha256(payload_bytes).hexdigest()
        if digest != meta.checksum_hex:
            raise _Reject(SKIP_CHECKSUM, f"payload SHA-256 {digest[:16]}... != checksum_hex")
        kind, payload = _parse_payload(payload_bytes)
        key = expected_key(kind, payload)
        if verify_keys and not _key_dir_matches(kind, key, key_dir):
            raise _Reject(SKIP_KEY_MISMATCH, "key directory is not the fingerprint of the key")
    except _Reject as exc:
        log.debug("gam crate entry %s skipped: %s (%s)", rel_name, exc.reason, exc.detail)
        return CrateSkip(rel_name, exc.reason, exc.detail)
    return CrateEntry(
        key_dir=key_dir, run_id=run_id, meta=meta, payload_kind=kind, payload=payload, key=key
    )


# ---------------------------------------------------------------------------------------------
# Conversion to gamstore records and import
# ---------------------------------------------------------------------------------------------

#: Key-string prefix of imported outer sessions (the crate's session key string is not on
#: disk, only its fingerprint, so the key directory stands in for it).
OUTER_KEY_PREFIX = "gam-crate-outer/"


def store_key(entry: CrateEntry, record: Any = None) -> str:
    """The gamstore key an entry is imported under.

    Records A and B keep the crate's own key string (``"cf-…"``, ``"surv-transform-…"``), the
    string the crate looks them up by. A fit artifact goes under gamstore's own artifact key
    of its descriptor (:func:`gamstore.artifact.artifact_key`), where gamstore's cross-fit
    lookup and views expect it. An outer session, whose key string the crate does not keep,
    becomes ``"gam-crate-outer/<64 hex key directory>"``.
    """
    if entry.payload_kind == "artifact":
        from gamstore.artifact import artifact_key

        art = record if record is not None else _to_artifact(entry.payload)
        return str(artifact_key(art.descriptor))
    if entry.key is not None:
        return entry.key
    return OUTER_KEY_PREFIX + entry.key_dir


def to_record(entry: CrateEntry) -> Any:
    """Convert a validated crate entry into the matching gamstore record object.

    Parameters
    ----------
    entry : CrateEntry

    Returns
    -------
    WarmStartRecord, BlockWarmStartRecord, IteratePayload or FitArtifact

    Raises
    ------
    ValueError, TypeError
        When the gamstore record type refuses the values (naming the field).
    """
    from gamstore import records  # the model layer; imported lazily

    p = entry.payload
    if entry.payload_kind == "inner":
        return records.WarmStartRecord(
            key=p["key"],
            n_rows=p["n_rows"],
            n_cols=p["n_cols"],
            rho=p["rho"],
            beta=p["beta"],
            prev_rho=p["prev_rho"],
            prev_beta=p["prev_beta"],
            last_inner_iters=p["last_inner_iters"],
            last_inner_converged=p["last_inner_converged"],
            last_pirls_lm_lambda=p["last_pirls_lm_lambda"],
            last_ift_prediction_residual=p["last_ift_prediction_residual"],
            last_pirls_accept_rho=p["last_pirls_accept_rho"],
            version=p["version"],
            package_version=p["package_version"],
            created_unix_secs=p["created_unix_secs"],
            updated_unix_secs=p["updated_unix_secs"],
        )
    if entry.payload_kind == "block":
        inner = p["inner"]
        summary = None
        if inner is not None:
            summary = records.InnerSummary(
                log_likelihood=inner["log_likelihood"],
                penalty_value=inner["penalty_value"],
                cycles=inner["cycles"],
                converged=inner["converged"],
                block_logdet_h=inner["block_logdet_h"],
                block_logdet_s=inner["block_logdet_s"],
                solved_inner_tol=inner.get("solved_inner_tol"),
                block_log_lambdas=inner.get("block_log_lambdas"),
                joint_log_lambdas=inner.get("joint_log_lambdas"),
            )
        return records.BlockWarmStartRecord(
            key=p["key"],
            n_rows=p["n_rows"],
            block_names=tuple(p["block_names"]),
            block_dims=tuple(p["block_dims"]),
            rho=p["rho"],
            block_beta=tuple(p["block_beta"]),
            active_sets=tuple(p["active_sets"]),
            inner=summary,
            version=p["version"],
            package_version=p["package_version"],
            created_unix_secs=p["created_unix_secs"],
            updated_unix_secs=p["updated_unix_secs"],
        )
    if entry.payload_kind == "outer":
        import numpy as np

        dim = p["hessian_dim"]
        hessian = np.asarray(p["hessian"], dtype=np.float64).reshape(dim, dim)
        return records.IteratePayload(
            rho=p["rho"],
            cost=p["cost"],
            eval_id=p["eval_id"],
            beta=p["beta"],
            hessian=hessian,
            schema=p["schema"],
        )
    if entry.payload_kind == "artifact":
        return _to_artifact(p)
    raise ValueError(f"payload_kind: unknown {entry.payload_kind!r}")


def _to_artifact(p: Mapping[str, Any]) -> Any:
    from gamstore.artifact import FitArtifact  # imported lazily: the model layer

    return FitArtifact.from_crate_json(p)


def _parts_equal(a: Any, b: Any) -> bool:
    import numpy as np

    pa, pb = a.to_parts(), b.to_parts()
    if pa.fields != pb.fields or set(pa.arrays) != set(pb.arrays):
        return False
    return all(
        pa.arrays[n].dims == pb.arrays[n].dims
        and np.array_equal(pa.arrays[n].data, pb.arrays[n].data)
        for n in pa.arrays
    )


class _Existing:
    """What a store already holds, to make a repeated import a no-op (per keyspace listing)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._by_folder: dict[str, dict[str, list[Any]]] = {}

    def contains(self, keyspace: str, key: str, record: Any, meta: CrateMeta) -> bool:
        from gamstore.fingerprint import key_fingerprint

        folders = self._by_folder.get(keyspace)
        if folders is None:
            folders = {}
            for info in self._store.entries(keyspace):
                folders.setdefault(info.folder, []).append(info)
            self._by_folder[keyspace] = folders
        for info in folders.get(key_fingerprint(keyspace, key).hex(), ()):
            old = self._store.read_entry(info)
            if (
                old is not None
                and old.key == key
                and old.objective == meta.objective
                and old.iteration == meta.iteration
                and type(old.record) is type(record)
                and _parts_equal(old.record, record)
            ):
                return True
        return False


def import_crate_dir(
    root: str | os.PathLike[str],
    store: Any,
    *,
    verify_keys: bool = True,
    skip_existing: bool = True,
    dry_run: bool = False,
) -> ImportReport:
    """Import every valid entry of a crate cache directory into a gamstore store.

    Parameters
    ----------
    root : path-like
        The crate's cache root (``<root>/<64 hex>/<run_id>.json`` + ``.bin``).
    store : gamstore.store.Store
        Destination, e.g. ``gamstore.open_store("memory://x")``.
    verify_keys : bool, default True
        See :func:`scan_crate_dir`.
    skip_existing : bool, default True
        Do not save an entry whose key already holds an identical record (same record,
        objective and iteration), so importing the same directory twice adds nothing.
        Costs one listing per keyspace plus one read per same-key entry.
    dry_run : bool, default False
        Validate and count, but write nothing.

    Returns
    -------
    ImportReport
        Imported counts per gamstore keyspace, skipped counts per reason, and the list of
        skips with details. ``report.keys`` maps each keyspace to the imported key strings.

    Raises
    ------
    ValueError
        If ``root`` is not a directory.
    OSError
        A storage error of the destination, e.g. ``gamstore.store.ReadOnlyStoreError`` for a
        read-only store. Bad crate entries never raise: they are counted in the report.

    Notes
    -----
    Entries keep their metadata where gamstore has a place for it: the objective, the
    iteration and the kind (``"Final"`` -> ``"final"``). The creation time of the gamstore
    entry is the import time; the crate's own stamps stay in the records' fields
    (``created_unix_secs``) where the record type has them. The crate directory is only read.
    """
    report = ImportReport()
    existing = _Existing(store) if (skip_existing and not dry_run) else None
    for item in scan_crate_dir(root, verify_keys=verify_keys):
        if isinstance(item, CrateSkip):
            report.add_skip(item)
            continue
        rel = f"{item.key_dir}/{item.run_id}"
        try:
            record = to_record(item)
        except (ValueError, TypeError) as exc:
            report.add_skip(CrateSkip(rel, SKIP_CONVERT_FAILED, str(exc)))
            continue
        keyspace, key = item.keyspace, store_key(item, record)
        if existing is not None and existing.contains(keyspace, key, record, item.meta):
            report.add_skip(CrateSkip(rel, SKIP_ALREADY_PRESENT, f"{keyspace}/{key}"))
            continue
        if not dry_run:
            try:
                entry_id = store.save(
                    keyspace,
                    key,
                    record,
                    objective=item.meta.objective,
                    iteration=item.meta.iteration,
                    kind="final" if item.meta.kind == "Final" else "checkpoint",
                )
            except (ValueError, TypeError) as exc:  # the record, not the storage: skip it
                report.add_skip(CrateSkip(rel, SKIP_SAVE_FAILED, str(exc)))
                continue
            if entry_id is None:
                report.add_skip(CrateSkip(rel, SKIP_SAVE_FAILED, "the store refused the save"))
                continue
        report.imported[keyspace] += 1
        report.keys.setdefault(keyspace, set()).add(key)
    log.info(
        "imported %d gam crate entries, skipped %d %s",
        report.n_imported,
        report.n_skipped,
        dict(report.skipped),
    )
    return report
