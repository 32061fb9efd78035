"""Cross-fit fit artifacts (record D): a function-space snapshot of a converged fit.

A :class:`FitArtifact` stores, per term, the raw (gauge-free) coefficients and the term's
log smoothing parameters, under a :class:`FitDescriptor` whose key is *structural*: it hashes
the family kind and the sorted term identities, never rows or the response (spec §2.5, §5.3-5.8,
§6.1). A leave-one-subject-out fold therefore finds the full-data parent, while a genuinely
different model (other penalties, labels, widths) does not.

Unlike records A and B, artifact constructors check structure (types, shapes) but accept
non-finite numbers, because finiteness is judged by :meth:`TermArtifact.is_finite` and
:meth:`FitArtifact.is_usable` (a capture that produced NaN must be recognisable as unusable,
spec §5.3, §6.3). Non-finite scalars are stored as JSON null and read back as NaN.

The ρ convention (:data:`gamstore.records.RHO_CONVENTIONS`) is one field of the whole
artifact, not of :class:`GlobalFitSummary` or each term: every term's ``rho_for_term`` comes
from the same fitter, so they share one convention. It is stored as the top-level field
``rho_convention``; artifacts written without it read as ``"mgcv"``. The crate JSON
(:meth:`FitArtifact.to_crate_json`) has no such field and leaves it out.
"""

from __future__ import annotations

import enum
import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from gamstore._validate import (
    as_bool,
    as_count,
    as_float_or_nan,
    as_float_vector,
    as_opt_count,
    as_opt_positive_float,
    as_opt_str,
    as_str,
)
from gamstore.fingerprint import Fingerprint, Fingerprinter
from gamstore.records import (
    DEFAULT_RHO_CONVENTION,
    SCHEMA_TAG,
    Array,
    Checked,
    Field,
    FloatArray,
    FrozenArrays,
    Kind,
    Nested,
    NestedList,
    Record,
    Seq,
    _Fields,
    as_rho_convention,
    from_fields,
    register_record_type,
    to_fields,
)

__all__ = [
    "FIT_ARTIFACT_SCHEMA",
    "BasisMeta",
    "FitArtifact",
    "FitDescriptor",
    "GlobalFitSummary",
    "ResponseSig",
    "RowPopulationTag",
    "TermArtifact",
    "TermIdentity",
    "TermRole",
    "artifact_key",
    "term_identity_from_block",
]

#: Schema of :class:`FitArtifact`; anything else is unusable.
FIT_ARTIFACT_SCHEMA = 1


# --------------------------------------------------------------------------------------------
# identities and roles
# --------------------------------------------------------------------------------------------


class TermIdentity(Fingerprint):
    """Structural identity of one term: a :class:`~gamstore.fingerprint.Fingerprint` newtype.

    Serialised as its 64-char lowercase hex string (:meth:`to_json` / :meth:`from_json`).
    """

    __slots__ = ()

    @classmethod
    def of(cls, fingerprint: Fingerprint) -> TermIdentity:
        """Wrap an existing fingerprint."""
        if not isinstance(fingerprint, Fingerprint):
            raise TypeError(f"TermIdentity: expected a Fingerprint, got {type(fingerprint)}")
        return cls(fingerprint.digest)

    @classmethod
    def parse(cls, value: object, name: str = "identity") -> TermIdentity:
        """Parse a 64-hex string (either case), raising ValueError naming ``name``."""
        if isinstance(value, TermIdentity):
            return value
        if isinstance(value, Fingerprint):
            return cls.of(value)
        if not isinstance(value, str):
            raise TypeError(f"{name}: expected a 64-char hex string, got {type(value).__name__}")
        try:
            return cls(Fingerprint.from_hex(value).digest)
        except ValueError:
            raise ValueError(f"{name}: expected exactly 64 hex characters, got {value!r}") from None

    def __repr__(self) -> str:
        return f"TermIdentity('{self.hex()}')"


class TermRole(enum.Enum):
    """Role of a term; serialised by variant name (``"Mean"``, ``"Slope"``, ``"Generic"``).

    The discriminant (Mean=0, Slope=1, Generic=2) enters term identities. The historical name
    ``"LogSlope"`` is *not* accepted (spec §5.5 version hazard): it reads as a clean
    ``ValueError``, which the store turns into a miss and the fit into a cold start.
    """

    MEAN = "Mean"
    SLOPE = "Slope"
    GENERIC = "Generic"

    @property
    def discriminant(self) -> int:
        """Integer code hashed into term identities."""
        return _ROLE_CODES[self]

    @classmethod
    def from_name(cls, name: object) -> TermRole:
        """Parse a serialised variant name; unknown names raise ``ValueError``."""
        if not isinstance(name, str):
            raise TypeError(f"role: expected a str variant name, got {type(name).__name__}")
        try:
            return cls(name)
        except ValueError:
            raise ValueError(
                f"role: unknown TermRole {name!r} (expected 'Mean', 'Slope' or 'Generic')"
            ) from None

    @classmethod
    def from_block_name(cls, block_name: str) -> TermRole:
        """Guess the role from a block name (spec §5.5); slope words are checked first.

        ``slope``/``scale``/``sigma``/``dispersion``/``disp`` -> Slope, else
        ``mean``/``loc``/``marginal`` -> Mean, else Generic (case-insensitive substring
        matches, so ``"marginal_slope"`` is Slope).
        """
        lowered = as_str(block_name, "block_name").lower()
        if any(w in lowered for w in ("slope", "scale", "sigma", "dispersion", "disp")):
            return cls.SLOPE
        if any(w in lowered for w in ("mean", "loc", "marginal")):
            return cls.MEAN
        return cls.GENERIC


_ROLE_CODES = {TermRole.MEAN: 0, TermRole.SLOPE: 1, TermRole.GENERIC: 2}


def term_identity_from_block(
    role: TermRole,
    block_name: str,
    penalty_labels: Sequence[str | None],
    nullspace_dims: Sequence[int],
    reduced_width: int,
) -> TermIdentity:
    """Term identity v2 (spec §2.5): role, name, penalty labels, null spaces, reduced width.

    Fold-invariant by construction: no penalty values, knots or data rows enter it.

    Parameters
    ----------
    role : TermRole
    block_name : str
    penalty_labels : sequence of (str or None)
        One entry per penalty: its precision label, or None when unlabelled.
    nullspace_dims : sequence of int
    reduced_width : int
        Columns of the block's (reduced) design.

    Returns
    -------
    TermIdentity
    """
    if not isinstance(role, TermRole):
        raise TypeError(f"role: expected TermRole, got {type(role).__name__}")
    if isinstance(penalty_labels, str):
        raise TypeError("penalty_labels: expected a sequence of (str or None), got a str")
    fp = Fingerprinter()
    fp.absorb_tag("fit-artifact-block-identity-v2")
    fp.absorb_u64("role", role.discriminant)
    fp.absorb_str("block_name", as_str(block_name, "block_name"))
    labels = list(penalty_labels)
    fp.absorb_u64("n_penalties", len(labels))
    for i, label in enumerate(labels):
        if label is None:
            fp.absorb_tag("label-none")
        else:
            fp.absorb_str("label", as_str(label, f"penalty_labels[{i}]"))
    dims = [as_count(d, f"nullspace_dims[{i}]") for i, d in enumerate(nullspace_dims)]
    fp.absorb_u64("n_nullspace", len(dims))
    for d in dims:
        fp.absorb_u64("nullspace_dim", d)
    fp.absorb_u64("reduced_width", as_count(reduced_width, "reduced_width"))
    return TermIdentity(fp.finalize().digest)


# --------------------------------------------------------------------------------------------
# small value types
# --------------------------------------------------------------------------------------------


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _opt_count() -> Kind:
    return Kind(as_opt_count, missing=None)


def _check_role(value: Any, name: str) -> TermRole:
    if not isinstance(value, TermRole):
        raise TypeError(f"{name}: expected TermRole, got {type(value)}")
    return value


def _load_role(value: Any, name: str) -> TermRole:
    try:
        return TermRole.from_name(value)
    except (TypeError, ValueError) as exc:  # "role: unknown TermRole ..." -> "<name>: ..."
        raise type(exc)(f"{name}{str(exc)[len('role') :]}") from None


#: a term identity: parsed from 64 hex characters, stored as lowercase hex
_IDENTITY = Kind(lambda v, name: TermIdentity.parse(v, name), dump=lambda t: t.hex())


@dataclass(frozen=True, eq=False)
class BasisMeta(Checked, FrozenArrays):
    """Diagnostic basis description of a term (spec §5.7); never used for matching.

    Parameters
    ----------
    kind : str
        E.g. ``"ps"`` (P-spline) or ``"block-spec"`` (the custom-family stub).
    degree, num_knots, n_centers, nullspace_order, matern_nu : int, optional
    periodic : bool
    knots : array_like, optional
        Frozen knot vector (P-splines), so a refit can reuse the exact basis.
    s_scale : float, optional
        The penalty scaling (mgcv ``S.scale``): ρ is meaningless without it.
    penalty_order : int, optional
        Difference order of the P-spline penalty.
    constraint : array_like, optional
        The centring row C (raw column means) the parent's gauge was built from.
    """

    kind: str
    degree: int | None = None
    num_knots: int | None = None
    n_centers: int | None = None
    nullspace_order: int | None = None
    matern_nu: int | None = None
    periodic: bool = False
    knots: FloatArray | None = None
    s_scale: float | None = None
    penalty_order: int | None = None
    constraint: FloatArray | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("kind", Kind(as_str)),
        Field("degree", _opt_count()),
        Field("num_knots", _opt_count()),
        Field("n_centers", _opt_count()),
        Field("nullspace_order", _opt_count()),
        Field("matern_nu", _opt_count()),
        Field("periodic", Kind(as_bool)),
        Field("s_scale", Kind(as_opt_positive_float, missing=None)),
        Field("penalty_order", _opt_count()),
        # stored beside the term's arrays (terms/<i>/knots), named after the term's index
        Field("knots", Array("knot_{i}", optional=True, flag_missing=False)),
        Field(
            "constraint",
            Array("constraint_{i}", optional=True, flag_missing=False, share="raw_beta"),
        ),
    )

    @classmethod
    def block_spec(cls, reduced_width: int) -> BasisMeta:
        """The custom family's stub: kind ``"block-spec"``, ``n_centers`` = reduced width."""
        return cls(kind="block-spec", n_centers=reduced_width)


@dataclass(frozen=True, eq=False)
class GlobalFitSummary(Checked):
    """Whole-fit summary (spec §5.8); only the objective's finiteness matters."""

    outer_objective: float
    converged: bool
    n_rows: int

    FIELDS: ClassVar[tuple[Field, ...]] = (
        # non-finite allowed (an unusable capture); stored as JSON null, read back as NaN
        Field("outer_objective", Kind(as_float_or_nan, dump=_json_float)),
        Field("converged", Kind(as_bool)),
        Field("n_rows", Kind(as_count)),
    )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlobalFitSummary):
            return NotImplemented
        return (
            np.float64(self.outer_objective).tobytes()
            == np.float64(other.outer_objective).tobytes()
            or (math.isnan(self.outer_objective) and math.isnan(other.outer_objective))
        ) and (self.converged, self.n_rows) == (other.converged, other.n_rows)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ResponseSig(Checked):
    """Response signature (diagnostic, excluded from the descriptor key)."""

    family_kind: str
    n_response_channels: int = 1

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("family_kind", Kind(as_str)),
        Field("n_response_channels", Kind(as_count)),
    )


@dataclass(frozen=True)
class RowPopulationTag(Checked):
    """Row population (diagnostic, excluded from the descriptor key)."""

    n_rows: int
    label: str | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("n_rows", Kind(as_count)),
        Field("label", Kind(as_opt_str, missing=None)),
    )


# --------------------------------------------------------------------------------------------
# descriptor
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitDescriptor(Checked):
    """What a fit *is*, structurally (spec §5.4).

    Parameters
    ----------
    family_kind : str
        Fold-invariant family name.
    term_identities : sequence of TermIdentity
        One per term, in block order (the key sorts them).
    response_signature : ResponseSig
    row_population : RowPopulationTag, optional
    """

    family_kind: str
    term_identities: tuple[TermIdentity, ...]
    response_signature: ResponseSig
    row_population: RowPopulationTag | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("family_kind", Kind(as_str)),
        Field("term_identities", Seq(_IDENTITY)),
        Field("response_signature", Nested(ResponseSig)),
        Field("row_population", Nested(RowPopulationTag, optional=True)),
    )

    def descriptor_key(self) -> Fingerprint:
        """Structural key: family kind and the identities sorted as bytes (spec §2.5).

        Invariant to term order, row population and response signature; duplicates are kept.
        """
        return _descriptor_key(
            self.family_kind, tuple(sorted(t.digest for t in self.term_identities))
        )


@functools.lru_cache(maxsize=256)
def _descriptor_key(family_kind: str, sorted_digests: tuple[bytes, ...]) -> Fingerprint:
    # a pure function of immutable values (str, bytes): every fit of a LOSO run asks for the
    # same key several times (artifact lookup, transfer check, log line)
    fp = Fingerprinter()
    fp.absorb_tag("fit-artifact-descriptor-v1")
    fp.absorb_str("family_kind", family_kind)
    fp.absorb_u64("n_terms", len(sorted_digests))
    for digest in sorted_digests:
        fp.absorb_bytes("term", digest)
    return fp.finalize()


def artifact_key(descriptor: FitDescriptor | Fingerprint) -> str:
    """Key string of the ``artifact`` keyspace for a descriptor (schema tag + key hex).

    The store hashes it with the keyspace tag into the folder name; including
    :data:`~gamstore.records.SCHEMA_TAG` walls artifacts off on a schema bump (spec §5.0).
    """
    fp = descriptor.descriptor_key() if isinstance(descriptor, FitDescriptor) else descriptor
    if not isinstance(fp, Fingerprint):
        raise TypeError("descriptor: expected FitDescriptor or Fingerprint")
    return f"{SCHEMA_TAG}/fit-artifact-descriptor/{fp.hex()}"


# --------------------------------------------------------------------------------------------
# terms and the artifact
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TermArtifact(Checked, FrozenArrays):
    """One term of a fit artifact (spec §5.6).

    Parameters
    ----------
    identity : TermIdentity
    role : TermRole
    basis_meta : BasisMeta
    raw_beta : array_like
        Raw (lifted, gauge-free) coefficients in the term's raw column order.
    rho_for_term : array_like
        Converged log smoothing parameters, penalty order, fixed penalties omitted.
    joint_null_rotation : array_like, optional
        2-D rotation (the custom family always writes None).
    """

    identity: TermIdentity
    role: TermRole
    basis_meta: BasisMeta
    raw_beta: FloatArray
    rho_for_term: FloatArray
    joint_null_rotation: FloatArray | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field(
            "joint_null_rotation",
            Array("rot_row_{i}", "rot_col_{i}", finite=False, optional=True),
        ),
        Field("role", Kind(_check_role, dump=lambda r: r.value, load=_load_role)),
        Field("identity", _IDENTITY),
        Field("basis_meta", Nested(BasisMeta)),
        Field("raw_beta", Array("raw_coef_{i}", finite=False)),
        Field("rho_for_term", Array("term_rho_{i}", finite=False)),
    )

    def is_finite(self) -> bool:
        """raw β, ρ and the rotation (when present) are all finite."""
        return (
            bool(np.isfinite(self.raw_beta).all())
            and bool(np.isfinite(self.rho_for_term).all())
            and (
                self.joint_null_rotation is None
                or bool(np.isfinite(self.joint_null_rotation).all())
            )
        )


def _global_summary_default() -> GlobalFitSummary:
    return GlobalFitSummary(math.nan, False, 0)


@register_record_type
@dataclass(frozen=True, eq=False)
class FitArtifact(Record):
    """Cross-fit artifact (record D, keyspace ``artifact``; spec §5.3).

    Parameters
    ----------
    descriptor : FitDescriptor
    terms : sequence of TermArtifact
    global_ : GlobalFitSummary
        Serialised as ``"global"`` (a Python keyword, hence the underscore).
    schema : int
        :data:`FIT_ARTIFACT_SCHEMA` when written by this library.
    created_unix_secs : int
    rho_convention : str
        Which penalty every term's ``rho_for_term`` multiplies, one of
        :data:`gamstore.records.RHO_CONVENTIONS` (default ``"mgcv"``, also what an artifact
        stored without the field reads as).
    ext : array_like, optional
        The fit's extended-family parameters (negative binomial: ``[log theta]``), a fold's
        start like rho. Stored as the array ``ext`` only when present (other artifacts are
        unchanged; an artifact without it reads as None).
    """

    RECORD_TYPE: ClassVar[str] = "fit_artifact"

    descriptor: FitDescriptor
    terms: tuple[TermArtifact, ...]
    global_: GlobalFitSummary = field(default_factory=_global_summary_default)
    schema: int = FIT_ARTIFACT_SCHEMA
    created_unix_secs: int = field(default_factory=lambda: int(time.time()))
    rho_convention: str = DEFAULT_RHO_CONVENTION
    ext: FloatArray | None = None

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("descriptor", Nested(FitDescriptor)),
        Field("terms", NestedList(TermArtifact)),
        Field("global_", Nested(GlobalFitSummary), key="global"),
        Field("schema", Kind(as_count)),
        Field("created_unix_secs", Kind(as_count)),
        # optional: artifacts written before the field existed are mgcv-convention
        Field("rho_convention", Kind(as_rho_convention, missing=DEFAULT_RHO_CONVENTION)),
        Field("ext", Array("ext", optional=True, flag=False)),
    )

    def is_usable(self) -> bool:
        """Schema 1, finite outer objective and every term finite (spec §5.3)."""
        if self.schema != FIT_ARTIFACT_SCHEMA or not math.isfinite(self.global_.outer_objective):
            return False
        # every term's arrays in one finite scan (what all(t.is_finite()) computes)
        parts: list[np.ndarray] = []
        for t in self.terms:
            parts += (t.raw_beta, t.rho_for_term)
            if t.joint_null_rotation is not None:
                parts.append(t.joint_null_rotation.reshape(-1))
        return not parts or bool(np.isfinite(np.concatenate(parts)).all())

    def unusable_reason(self) -> str | None:
        """Why :meth:`is_usable` is False (None when usable)."""
        if self.schema != FIT_ARTIFACT_SCHEMA:
            return f"schema {self.schema} != {FIT_ARTIFACT_SCHEMA}"
        if not math.isfinite(self.global_.outer_objective):
            return "non-finite outer objective"
        for i, t in enumerate(self.terms):
            if not t.is_finite():
                return f"term {i} has non-finite values"
        return None

    @classmethod
    def from_crate_json(cls, obj: Mapping[str, Any]) -> Self:
        """Build an artifact from the ``gam`` crate's serde JSON object (already parsed).

        Roles are variant names (``"LogSlope"`` is refused, as in the crate), identities are
        64-hex strings, ``joint_null_rotation`` is ``{nrows, ncols, data}`` row-major.

        Raises
        ------
        ValueError, TypeError
            Naming the offending field.
        """
        r = "crate_artifact"
        f = _Fields(obj, r)
        terms = []
        raw_terms = f.raw("terms")
        if not isinstance(raw_terms, list):
            raise TypeError(f"{r}.terms: expected a list")
        for i, raw in enumerate(raw_terms):
            name = f"{r}.terms[{i}]"
            tf = _Fields(raw, name)
            bm = _Fields(tf.raw("basis_meta"), f"{name}.basis_meta")
            rot_raw = tf.raw("joint_null_rotation", None)
            rot = None
            if rot_raw is not None:
                rf = _Fields(rot_raw, f"{name}.joint_null_rotation")
                nrows, ncols = rf.count("nrows"), rf.count("ncols")
                data = as_float_vector(rf.raw("data"), rf.name("data"), length=nrows * ncols)
                rot = data.reshape(nrows, ncols)
            try:
                role = TermRole.from_name(tf.raw("role"))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name}.{exc}") from None
            terms.append(
                TermArtifact(
                    identity=TermIdentity.parse(tf.raw("identity"), f"{name}.identity"),
                    role=role,
                    basis_meta=BasisMeta(
                        kind=bm.string("kind"),
                        degree=as_opt_count(bm.raw("degree", None), bm.name("degree")),
                        num_knots=as_opt_count(bm.raw("num_knots", None), bm.name("num_knots")),
                        n_centers=as_opt_count(bm.raw("n_centers", None), bm.name("n_centers")),
                        nullspace_order=as_opt_count(
                            bm.raw("nullspace_order", None), bm.name("nullspace_order")
                        ),
                        matern_nu=as_opt_count(bm.raw("matern_nu", None), bm.name("matern_nu")),
                        periodic=bm.flag("periodic", False),
                    ),
                    raw_beta=as_float_vector(tf.raw("raw_beta"), f"{name}.raw_beta"),
                    rho_for_term=as_float_vector(tf.raw("rho_for_term"), f"{name}.rho_for_term"),
                    joint_null_rotation=rot,
                )
            )
        g = _Fields(f.raw("global"), f"{r}.global")
        return cls(
            descriptor=from_fields(FitDescriptor, f.raw("descriptor"), f"{r}.descriptor"),
            terms=tuple(terms),
            global_=GlobalFitSummary(
                g.number("outer_objective"), g.flag("converged"), g.count("n_rows")
            ),  # fmt: skip
            schema=f.count("schema"),
            created_unix_secs=f.count("created_unix_secs"),
        )

    def to_crate_json(self) -> dict[str, Any]:
        """The ``gam`` crate's serde JSON layout of this artifact (strict JSON values).

        Raises
        ------
        ValueError
            If the artifact holds non-finite numbers (the crate cannot represent them).
        """
        if not (
            math.isfinite(self.global_.outer_objective) and all(t.is_finite() for t in self.terms)
        ):
            raise ValueError("FitArtifact: cannot export non-finite values to crate JSON")
        return {
            "schema": self.schema,
            "created_unix_secs": self.created_unix_secs,
            "descriptor": to_fields(self.descriptor),
            "terms": [
                {
                    "identity": t.identity.hex(),
                    "role": t.role.value,
                    "basis_meta": {
                        "kind": t.basis_meta.kind,
                        "degree": t.basis_meta.degree,
                        "num_knots": t.basis_meta.num_knots,
                        "n_centers": t.basis_meta.n_centers,
                        "nullspace_order": t.basis_meta.nullspace_order,
                        "matern_nu": t.basis_meta.matern_nu,
                        "periodic": t.basis_meta.periodic,
                    },
                    "joint_null_rotation": None
                    if t.joint_null_rotation is None
                    else {
                        "nrows": int(t.joint_null_rotation.shape[0]),
                        "ncols": int(t.joint_null_rotation.shape[1]),
                        "data": t.joint_null_rotation.ravel().tolist(),
                    },
                    "raw_beta": t.raw_beta.tolist(),
                    "rho_for_term": t.rho_for_term.tolist(),
                }
                for t in self.terms
            ],
            "global": {
                "outer_objective": self.global_.outer_objective,
                "converged": self.global_.converged,
                "n_rows": self.global_.n_rows,
            },
        }
