"""Key derivation of the warm-start layer (spec §2.5, "keys for whole fits" of §1).

Three kinds of key string, each a pure function of (data, specs, options) - nothing lazily
filled or θ-dependent ever enters (#1048), and the schema tag is in every one so bumping it
walls off old entries:

* :func:`block_key` - ``"cf-<16 hex>"``, the exact block-record key (record B). It covers
  the family (name + likelihood fingerprint), the Jeffreys/Firth strength τ, every block's
  name, design (streamed in row chunks by :meth:`Fingerprinter.write_matrix`), offset,
  penalties of every kind, nullspace dimensions and initial log λ, and every option that
  changes the optimum.
* :func:`session_keys` - the outer-session keys: ``exact`` =
  ``"<schema>/family=<name>/dims=<n>x<p>/shape=<16 hex>"`` (same content as the block key)
  and the row-count-free, data-free ``seed`` = ``"<schema>/family=<name>/seed/<16 hex>"``
  (structure + options only), shared by every fold of a LOSO run.
* :func:`likelihood_fingerprint` - a helper for families: a 64-hex digest of the response,
  weights and other likelihood inputs, for ``warm_start_fingerprint``.
* :func:`input_block_key` - the block key of a fitter that builds its own design from data
  (``gamstore.fit.GAM``): a digest of the model's description and of the data's
  :class:`RowBlockDigests` (one leaf per row block, e.g. per LOSO subject, combined in
  order), never of the built design; a fold's key is derived from the full data's leaves in
  O(blocks) (:meth:`RowBlockDigests.without`). Key version :data:`KEY_VERSION`.

Arrays are hashed by value (dtype, shape, values in logical C order with -0.0 and NaN
canonicalised), so F-ordered, strided or byte-swapped copies of the same values give the same
key. The design chunking never affects the digest.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gamstore.fingerprint import DIGEST_SIZE, Fingerprint, Fingerprinter
from gamstore.records import SCHEMA_TAG
from gamstore.warmstart.specs import (
    BlockSpec,
    BlockwisePenalty,
    DensePenalty,
    DiagonalPenalty,
    FitOptions,
    FixedPenalty,
    KroneckerPenalty,
    LabeledPenalty,
    Penalty,
    WarmStartFamily,
    penalty_dim,
    penalty_label,
)

__all__ = [
    "BLOCK_KEY_NAMESPACE",
    "BLOCK_KEY_RE",
    "INPUT_KEY_NAMESPACE",
    "KEY_VERSION",
    "SCHEMA_TAG",
    "RowBlockDigests",
    "SessionKeys",
    "UnsupportedFamilyError",
    "block_key",
    "check_specs",
    "exact_session_key",
    "family_fingerprint",
    "input_block_key",
    "input_likelihood_fingerprint",
    "label_text",
    "leaf_digest",
    "likelihood_fingerprint",
    "row_block_digests",
    "session_keys",
]

#: leading namespace string of the block key stream
BLOCK_KEY_NAMESPACE = "gamstore-persistent-block-warm-start"
_SESSION_EXACT_NAMESPACE = "gamstore-outer-session-exact"
_SESSION_SEED_NAMESPACE = "gamstore-outer-session-seed"
_LIKELIHOOD_DOMAIN = "gamstore-likelihood-fingerprint-v1"
#: the shape of a block key, ``"cf-<16 hex>"``
BLOCK_KEY_RE = re.compile(r"cf-[0-9a-f]{16}")
_F64_BITS = struct.Struct("<d")
_U64 = struct.Struct("<Q")


class UnsupportedFamilyError(ValueError):
    """A store is configured but the family cannot fingerprint its likelihood (PR #4148).

    Without a likelihood fingerprint two different problems with the same designs would
    share records, so the fit is refused instead of silently persisting unsafely. Either give
    the family a ``warm_start_fingerprint`` or fit without a store.
    """


class CheckedSpecs(list[BlockSpec]):
    """A block list that passed :func:`check_specs` (checked once per fit, not per call)."""


def check_specs(specs: Sequence[BlockSpec]) -> list[BlockSpec]:
    """Validate a block list: ``BlockSpec`` instances with one common row count.

    Returns a :class:`CheckedSpecs`; passing that back returns it as is (the warm-start
    orchestrator checks a fit's blocks once and hands the checked list to every step).

    Raises
    ------
    TypeError
        If an element is not a :class:`BlockSpec`.
    ValueError
        If the blocks' designs have different numbers of rows.
    """
    if type(specs) is CheckedSpecs:
        return specs
    if isinstance(specs, BlockSpec):
        raise TypeError("specs: expected a sequence of BlockSpec, got a single BlockSpec")
    out = CheckedSpecs(specs)
    for i, spec in enumerate(out):
        if not isinstance(spec, BlockSpec):
            raise TypeError(f"specs[{i}]: expected a BlockSpec, got {type(spec).__name__}")
    if out:
        n = out[0].n_rows
        for i, spec in enumerate(out):
            if spec.n_rows != n:
                raise ValueError(
                    f"specs[{i}].design: expected {n} rows like specs[0] (shape ({n}, p)), "
                    f"got {spec.n_rows}"
                )
    return out


def _family_name(family: object) -> str:
    name = getattr(family, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(family).__qualname__


def family_fingerprint(
    family: WarmStartFamily, specs: Sequence[BlockSpec], options: FitOptions
) -> str:
    """Return the family's likelihood fingerprint string.

    Raises
    ------
    UnsupportedFamilyError
        If the family has no ``warm_start_fingerprint``, returns None or a non-string, or
        the method raises (the cause is chained). The message names the family.
    """
    name = _family_name(family)
    method = getattr(family, "warm_start_fingerprint", None)
    if not callable(method):
        raise UnsupportedFamilyError(
            f"family {name!r} has no warm_start_fingerprint(specs, options) method; it cannot "
            "be used with a warm-start store (fit with store=None, or give the family a "
            "likelihood fingerprint)"
        )
    try:
        value = method(specs, options)
    except Exception as exc:
        raise UnsupportedFamilyError(
            f"family {name!r}: warm_start_fingerprint raised {type(exc).__name__}: {exc}"
        ) from exc
    if value is None:
        raise UnsupportedFamilyError(
            f"family {name!r} cannot fingerprint its likelihood (warm_start_fingerprint "
            "returned None); a warm-start store is configured, so the fit is refused rather "
            "than sharing records between different problems (fit with store=None)"
        )
    if not isinstance(value, str):
        raise UnsupportedFamilyError(
            f"family {name!r}: warm_start_fingerprint returned {type(value).__name__}, expected str"
        )
    return value


def _write_penalty(fp: Fingerprinter, penalty: Penalty) -> None:
    # One variant tag per kind, then its parameters; Labeled/Fixed recurse.
    if isinstance(penalty, DensePenalty):
        fp.write_str("dense").write_matrix(penalty.matrix)
    elif isinstance(penalty, DiagonalPenalty):
        fp.write_str("diagonal").write_array(penalty.diagonal)
    elif isinstance(penalty, KroneckerPenalty):
        fp.write_str("kron").write_matrix(penalty.left).write_matrix(penalty.right)
    elif isinstance(penalty, BlockwisePenalty):
        fp.write_str("blockwise")
        fp.write_usize(penalty.col_start).write_usize(penalty.col_end)
        fp.write_usize(penalty.total_dim).write_matrix(penalty.local)
    elif isinstance(penalty, LabeledPenalty):
        fp.write_str("labeled").write_str(penalty.label)
        _write_penalty(fp, penalty.inner)
    elif isinstance(penalty, FixedPenalty):
        # raw IEEE bits (no -0.0 folding), as the seed does for a fixed log λ
        bits = _U64.unpack(_F64_BITS.pack(penalty.log_lambda))[0]
        fp.write_str("fixed").write_u64(bits)
        _write_penalty(fp, penalty.inner)
    else:  # pragma: no cover - BlockSpec validates penalty types
        raise TypeError(f"unknown penalty type {type(penalty).__name__}")


def _write_penalty_structure(fp: Fingerprinter, penalty: Penalty) -> None:
    # Structure only (no values): kind, width, label, fixed-ness; for the seed key.
    if isinstance(penalty, LabeledPenalty):
        fp.write_str("labeled").write_str(penalty.label)
        _write_penalty_structure(fp, penalty.inner)
        return
    if isinstance(penalty, FixedPenalty):
        fp.write_str("fixed")
        _write_penalty_structure(fp, penalty.inner)
        return
    kind = {
        DensePenalty: "dense",
        DiagonalPenalty: "diagonal",
        KroneckerPenalty: "kron",
        BlockwisePenalty: "blockwise",
    }[type(penalty)]
    fp.write_str(kind).write_usize(penalty_dim(penalty))
    if isinstance(penalty, KroneckerPenalty):
        fp.write_usize(penalty.left.shape[0]).write_usize(penalty.right.shape[0])
    if isinstance(penalty, BlockwisePenalty):
        fp.write_usize(penalty.col_start).write_usize(penalty.col_end)


def _write_optional_f64(fp: Fingerprinter, value: float | None) -> None:
    fp.write_bool(value is not None)
    if value is not None:
        fp.write_f64(value)


def _encode_options(fp: Fingerprinter, options: FitOptions) -> None:
    fp.write_usize(options.inner_max_cycles).write_f64(options.inner_tol)
    fp.write_usize(options.outer_max_iter).write_f64(options.outer_tol)
    _write_optional_f64(fp, options.outer_rel_cost_tol)
    fp.write_f64(options.ridge_floor).write_str(options.ridge_policy)
    fp.write_bool(options.use_reml).write_bool(options.use_outer_hessian)
    fp.write_bool(options.compute_covariance)
    _write_optional_f64(fp, options.early_exit_threshold)
    # the seed hashed only the presence of a subsample; its size moves the optimum too
    fp.write_bool(options.outer_score_subsample is not None)
    if options.outer_score_subsample is not None:
        fp.write_usize(options.outer_score_subsample)
    fp.write_bool(options.auto_outer_subsample)
    fp.write_usize(len(options.extra))
    for name, value in options.extra:
        fp.write_str(name).write_str(value)


def _write_blocks(fp: Fingerprinter, specs: Sequence[BlockSpec]) -> None:
    fp.write_usize(len(specs))
    for spec in specs:
        fp.write_str(spec.name)
        fp.write_matrix(spec.design)  # streamed through a reused buffer, layout-free
        assert spec.offset is not None and spec.initial_log_lambdas is not None
        fp.write_array(spec.offset)
        fp.write_usize(len(spec.penalties))
        for pen in spec.penalties:
            _write_penalty(fp, pen)
        fp.write_usize(len(spec.nullspace_dims))
        for dim in spec.nullspace_dims:
            fp.write_usize(dim)
        fp.write_array(spec.initial_log_lambdas)


def _check_options(options: FitOptions) -> None:
    if not isinstance(options, FitOptions):
        raise TypeError(f"options: expected FitOptions, got {type(options).__name__}")


def block_key(family: WarmStartFamily, specs: Sequence[BlockSpec], options: FitOptions) -> str:
    """Derive the exact block-record key ``"cf-<16 hex>"`` of a fit.

    Parameters
    ----------
    family : WarmStartFamily
        Anything with ``name`` and ``warm_start_fingerprint(specs, options) -> str | None``.
    specs : sequence of BlockSpec
        The fit's blocks (common row count).
    options : FitOptions
        The fit options.

    Returns
    -------
    str
        ``"cf-"`` followed by 16 lowercase hex characters.

    Raises
    ------
    UnsupportedFamilyError
        If the family cannot fingerprint itself (see :func:`family_fingerprint`). Callers
        with no store configured never need a key and should not call this.
    TypeError, ValueError
        For malformed ``specs`` or ``options``.
    """
    blocks = check_specs(specs)
    _check_options(options)
    fam_fp = family_fingerprint(family, blocks, options)
    fp = Fingerprinter()
    fp.write_str(BLOCK_KEY_NAMESPACE).write_str(SCHEMA_TAG)
    fp.write_str(_family_name(family)).write_str(fam_fp)
    fp.write_f64(options.jeffreys_tau)  # τ moves the mode (#2612)
    _write_blocks(fp, blocks)
    _encode_options(fp, options)
    return f"cf-{fp.finish_hex()}"


@dataclass(frozen=True)
class SessionKeys:
    """The two outer-session keys of a fit: ``exact`` (data-specific) and ``seed``
    (row-count-free, shared by every fold of the same model)."""

    exact: str
    seed: str


def session_keys(
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    options: FitOptions,
    *,
    block_key_hint: str | None = None,
) -> SessionKeys:
    """Derive the outer-session keys of a fit (spec §1, "keys for whole fits").

    ``exact`` is derived from the fit's :func:`block_key` (so an exact session hit means the
    same data, spec and options) and embeds ``dims=<n_rows>x<total width>``; ``seed`` hashes
    only the family name, the block structure (names, widths, penalty kinds/labels/widths,
    nullspace dims) and the options - no rows, no data, no penalty values - so a LOSO fold
    finds the full-data fit's session.

    Parameters
    ----------
    family, specs, options
        As for :func:`block_key`.
    block_key_hint : str, optional
        The block key already computed for exactly these inputs (e.g. returned by
        ``load_block_warm_start``), to skip hashing the designs a second time.

    Raises
    ------
    UnsupportedFamilyError
        As :func:`block_key`.
    ValueError
        If ``block_key_hint`` is not a ``"cf-<16 hex>"`` string.
    """
    blocks = check_specs(specs)
    exact = exact_session_key(family, blocks, options, block_key_hint=block_key_hint)
    name = _family_name(family)
    seed = Fingerprinter()
    seed.write_str(_SESSION_SEED_NAMESPACE).write_str(SCHEMA_TAG)
    seed.write_str(name).write_f64(options.jeffreys_tau)
    seed.write_usize(len(blocks))
    for spec in blocks:
        seed.write_str(spec.name).write_usize(spec.width)
        seed.write_usize(len(spec.penalties))
        for pen in spec.penalties:
            _write_penalty_structure(seed, pen)
            label = penalty_label(pen)
            seed.write_bool(label is not None)
        seed.write_usize(len(spec.nullspace_dims))
        for dim in spec.nullspace_dims:
            seed.write_usize(dim)
    _encode_options(seed, options)
    return SessionKeys(exact=exact, seed=f"{SCHEMA_TAG}/family={name}/seed/{seed.finish_hex()}")


def exact_session_key(
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    options: FitOptions,
    *,
    block_key_hint: str | None = None,
) -> str:
    """The ``exact`` outer-session key of :func:`session_keys` alone.

    For a session opened without the seed mirror, which never needs the seed key.

    Raises
    ------
    UnsupportedFamilyError
        As :func:`block_key`.
    ValueError
        If ``block_key_hint`` is not a ``"cf-<16 hex>"`` string.
    """
    blocks = check_specs(specs)
    _check_options(options)
    if block_key_hint is None:
        bkey = block_key(family, blocks, options)
    else:
        if not isinstance(block_key_hint, str) or not BLOCK_KEY_RE.fullmatch(block_key_hint):
            raise ValueError(
                f"block_key_hint: expected a 'cf-<16 hex>' block key, got {block_key_hint!r}"
            )
        family_fingerprint(family, blocks, options)  # same refusal as without a hint
        bkey = block_key_hint
    name = _family_name(family)
    n_rows = blocks[0].n_rows if blocks else 0
    n_cols = sum(b.width for b in blocks)
    exact = Fingerprinter()
    exact.write_str(_SESSION_EXACT_NAMESPACE).write_str(SCHEMA_TAG).write_str(bkey)
    return f"{SCHEMA_TAG}/family={name}/dims={n_rows}x{n_cols}/shape={exact.finish_hex()}"


def likelihood_fingerprint(
    family: str,
    arrays: Mapping[str, np.ndarray | None] | None = None,
    scalars: Mapping[str, str | int | float | bool | None] | None = None,
) -> str:
    """A 64-hex digest of a family's likelihood inputs, for ``warm_start_fingerprint``.

    The fingerprint must cover every likelihood input not in the block specs (#3697): the
    response, prior weights, binomial trial counts, a fixed scale, link, ... Arrays are
    hashed by value (layout-free); names are sorted so argument order does not matter.

    Parameters
    ----------
    family : str
        Family name (e.g. ``"poisson"``).
    arrays : mapping of str to ndarray or None
        Named arrays; None is hashed as "absent" (different from an empty array).
    scalars : mapping of str to str, int, float, bool or None
        Named scalar settings.

    Returns
    -------
    str
        64 lowercase hex characters.

    Examples
    --------
    >>> import numpy as np
    >>> a = likelihood_fingerprint("poisson", {"y": np.array([1.0, 2.0]), "weights": None})
    >>> len(a)
    64
    """
    if not isinstance(family, str):
        raise TypeError(f"family: expected str, got {type(family).__name__}")
    fp = Fingerprinter().absorb_tag(_LIKELIHOOD_DOMAIN).absorb_str("family", family)
    arrays = dict(arrays or {})
    scalars = dict(scalars or {})
    fp.absorb_u64("n_arrays", len(arrays))
    for key in sorted(arrays):
        value = arrays[key]
        fp.absorb_str("name", key)
        if value is None:
            fp.absorb_tag("absent")
        else:
            fp.absorb_array("array", value)
    _absorb_scalars(fp, scalars)
    return fp.finalize().hex()


def _absorb_scalars(
    fp: Fingerprinter, scalars: Mapping[str, str | int | float | bool | None]
) -> None:
    fp.absorb_u64("n_scalars", len(scalars))
    for key in sorted(scalars):
        sval = scalars[key]
        fp.absorb_str("name", key)
        if sval is None:
            fp.absorb_tag("absent")
        elif isinstance(sval, bool):
            fp.absorb_u64("bool", int(sval))
        elif isinstance(sval, int):
            if sval < 0:
                fp.absorb_str("negative-int", str(sval))
            else:
                fp.absorb_u64("int", sval)
        elif isinstance(sval, float):
            fp.absorb_f64("float", sval)
        elif isinstance(sval, str):
            fp.absorb_str("str", sval)
        else:
            raise TypeError(
                f"scalars[{key!r}]: expected str, int, float, bool or None, "
                f"got {type(sval).__name__}"
            )


# --------------------------------------------------------------------------------------------
# keys from a fit's inputs (issue 17 item 1): per-row-block data digests, Merkle-combined
# --------------------------------------------------------------------------------------------

#: version of the input-derived keys (bumped once, when keys stopped hashing built designs:
#: every key of the built-in fitter written before is a miss, which is harmless)
KEY_VERSION = 2
INPUT_KEY_NAMESPACE = "gamstore-input-fit-key"
_LEAF_NAMESPACE = "gamstore-row-block-leaf"
_ROOT_NAMESPACE = "gamstore-row-blocks-root"
_INPUT_LIKELIHOOD_NAMESPACE = "gamstore-likelihood-of-input-key"


def label_text(label: object) -> str:
    """The text a row block's label is hashed as: ``"<type>:<repr>"``.

    numpy scalars count as the Python value they hold (``np.int64(3)`` is ``"int:3"``), so a
    label read from a column and the same label typed by hand agree; ``3``, ``3.0`` and
    ``"3"`` are three different labels.
    """
    if isinstance(label, np.generic):
        label = label.item()
    return f"{type(label).__name__}:{label!r}"


@dataclass(frozen=True)
class RowBlockDigests:
    """Digests of a fit's data, one per row block, in the row order the fit reads.

    A leaf is the BLAKE3 digest of one block's rows of every hashed column (:func:`leaf_digest`);
    the data digest (:meth:`root`) hashes the column names and, per block in order, its label,
    its row count and its leaf. Dropping a block (a LOSO fold: the full data minus one
    subject) is :meth:`without`, O(blocks): no row is hashed again.

    Attributes
    ----------
    columns : tuple of str
        Names of the hashed columns, sorted.
    labels : tuple of str
        Per block, its label as :func:`label_text`.
    sizes : tuple of int
        Rows per block.
    leaves : tuple of bytes
        Per block, its 32-byte leaf digest.
    """

    columns: tuple[str, ...]
    labels: tuple[str, ...]
    sizes: tuple[int, ...]
    leaves: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not (len(self.labels) == len(self.sizes) == len(self.leaves)):
            raise ValueError(
                f"RowBlockDigests: labels, sizes and leaves must have one entry per block, got "
                f"{len(self.labels)}, {len(self.sizes)} and {len(self.leaves)}"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("RowBlockDigests.labels: a label occurs twice")
        if any(not isinstance(s, int) or s < 0 for s in self.sizes):
            raise ValueError("RowBlockDigests.sizes: expected non-negative integers")
        if any(not isinstance(b, bytes) or len(b) != DIGEST_SIZE for b in self.leaves):
            raise ValueError(f"RowBlockDigests.leaves: expected {DIGEST_SIZE}-byte digests")
        if list(self.columns) != sorted(set(self.columns)):
            raise ValueError("RowBlockDigests.columns: expected sorted, distinct names")

    @property
    def n_rows(self) -> int:
        """Total rows over the blocks."""
        return sum(self.sizes)

    def without(self, label: object) -> RowBlockDigests:
        """The digests of the same data minus the block ``label`` (order kept).

        Raises
        ------
        KeyError
            If no block has that label.
        """
        text = label_text(label)
        try:
            i = self.labels.index(text)
        except ValueError:
            raise KeyError(f"RowBlockDigests.without: no block labelled {text!r}") from None
        return RowBlockDigests(
            self.columns,
            self.labels[:i] + self.labels[i + 1 :],
            self.sizes[:i] + self.sizes[i + 1 :],
            self.leaves[:i] + self.leaves[i + 1 :],
        )

    def root(self) -> Fingerprint:
        """The data digest: columns, then (label, rows, leaf) of every block in order."""
        fp = Fingerprinter().write_str(_ROOT_NAMESPACE).write_usize(KEY_VERSION)
        fp.write_usize(len(self.columns))
        for name in self.columns:
            fp.write_str(name)
        fp.write_usize(len(self.leaves))
        for text, size, leaf in zip(self.labels, self.sizes, self.leaves, strict=True):
            fp.write_str(text).write_usize(size).write_bytes(leaf)
        return fp.finalize()


def leaf_digest(columns: Mapping[str, np.ndarray], rows: slice | np.ndarray | None = None) -> bytes:
    """The 32-byte leaf digest of one row block: its row count, then per column (sorted by
    name) the name and the array encoding of ``column[rows]`` (dtype, shape, values).

    Parameters
    ----------
    columns : mapping of str to ndarray
        Equal-length 1-D arrays (numeric or boolean; encode anything else as numbers first).
    rows : slice or integer index array, optional
        The block's rows, in the order the fit reads them; None: every row.
    """
    names = sorted(columns)
    fp = Fingerprinter().write_str(_LEAF_NAMESPACE).write_usize(len(names))
    n_block: int | None = None
    for name in names:
        col = columns[name]
        part = col if rows is None else col[rows]
        if n_block is None:
            n_block = int(part.shape[0])
            fp.write_usize(n_block)
        fp.write_str(name).write_array(part)
    return fp.finalize().digest


def row_block_digests(
    columns: Mapping[str, np.ndarray],
    blocks: Sequence[tuple[object, slice | np.ndarray]] | None = None,
) -> RowBlockDigests:
    """Hash a fit's data once per row block (the leaves of :class:`RowBlockDigests`).

    Parameters
    ----------
    columns : mapping of str to ndarray
        Every column the fit reads, as equal-length 1-D numeric or boolean arrays.
    blocks : sequence of (label, rows), optional
        The blocks in the fit's row order (``rows``: a slice or an integer index array into
        the columns). None: one block labelled None holding every row (a plain fit).

    Returns
    -------
    RowBlockDigests

    Raises
    ------
    ValueError
        If the columns have different lengths or are not 1-D.
    """
    lengths = {name: np.shape(col) for name, col in columns.items()}
    if any(len(shape) != 1 for shape in lengths.values()):
        raise ValueError(f"columns: expected 1-D arrays of shape (n,), got shapes {lengths}")
    if len({shape[0] for shape in lengths.values()}) > 1:
        raise ValueError(f"columns: expected one common length (n,), got shapes {lengths}")
    n = next(iter(lengths.values()))[0] if lengths else 0
    if blocks is None:
        blocks = [(None, slice(0, n))]
    labels, sizes, leaves = [], [], []
    for label, rows in blocks:
        labels.append(label_text(label))
        leaves.append(leaf_digest(columns, rows))
        sizes.append(len(range(*rows.indices(n))) if isinstance(rows, slice) else len(rows))
    return RowBlockDigests(tuple(sorted(columns)), tuple(labels), tuple(sizes), tuple(leaves))


def input_block_key(
    family: str,
    spec: str,
    data: RowBlockDigests,
    options: FitOptions,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> str:
    """The exact block-record key ``"cf-<16 hex>"`` of a fit, from its inputs.

    What a fitter that builds its own design from data uses instead of :func:`block_key`
    (which hashes the built designs): the model is described by ``spec`` (a canonical text,
    e.g. strict JSON with sorted keys, naming the terms, bases, family, link, the response
    and weight/offset roles and the fitter version), ``arrays`` (e.g. frozen knots) and
    ``options``; the data by its :class:`RowBlockDigests` root. O(blocks) once the leaves
    exist: a LOSO fold's key is derived from the full data's leaves without hashing a row.

    Parameters
    ----------
    family : str
        Family name (with the link when not canonical).
    spec : str
        Canonical description of the model (everything but the data and ``arrays``).
    data : RowBlockDigests
        The data's row-block digests, in the row order the fit reads.
    options : FitOptions
        The fit options (tolerances, the fitter tag in ``extra``).
    arrays : mapping of str to ndarray, optional
        Named model arrays (hashed by value, sorted by name).

    Returns
    -------
    str
        ``"cf-"`` followed by 16 lowercase hex characters.
    """
    _check_options(options)
    if not isinstance(data, RowBlockDigests):
        raise TypeError(f"data: expected RowBlockDigests, got {type(data).__name__}")
    fp = Fingerprinter()
    fp.write_str(INPUT_KEY_NAMESPACE).write_str(SCHEMA_TAG).write_usize(KEY_VERSION)
    fp.write_str(family).write_str(spec)
    named = dict(arrays or {})
    fp.write_usize(len(named))
    for name in sorted(named):
        fp.write_str(name).write_array(named[name])
    fp.write_f64(options.jeffreys_tau)
    _encode_options(fp, options)
    fp.write_bytes(data.root().digest)
    return f"cf-{fp.finish_hex()}"


def input_likelihood_fingerprint(key: str) -> str:
    """A family's likelihood fingerprint (64 hex) for a fit keyed by :func:`input_block_key`.

    The input key already covers the response, weights and link, so the fingerprint that
    ``warm_start_fingerprint`` must return is derived from it instead of hashing them again.
    """
    if not isinstance(key, str) or not BLOCK_KEY_RE.fullmatch(key):
        raise ValueError(f"key: expected a 'cf-<16 hex>' block key, got {key!r}")
    return Fingerprinter().write_str(_INPUT_LIKELIHOOD_NAMESPACE).write_str(key).finalize().hex()
