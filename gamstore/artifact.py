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

from gamstore.fingerprint import Fingerprint, Fingerprinter
from gamstore.records import (
    DEFAULT_RHO_CONVENTION,
    SCHEMA_TAG,
    ArrayPart,
    FloatArray,
    FrozenArrays,
    RecordParts,
    _Arrays,
    _Fields,
    as_bool,
    as_count,
    as_float_matrix,
    as_float_vector,
    as_opt_finite_float,
    as_rho_convention,
    as_str,
    register_record_type,
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


def _opt_count(value: Any, name: str) -> int | None:
    return None if value is None else as_count(value, name)


def _float_or_nan(value: Any, name: str) -> float:
    """A real number (non-finite allowed); JSON null reads as NaN."""
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:  # an int like 10**400
        raise ValueError(f"{name}: int beyond the float64 range") from None


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, eq=False)
class BasisMeta(FrozenArrays):
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

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "kind", as_str(self.kind, "BasisMeta.kind"))
        for name in ("degree", "num_knots", "n_centers", "nullspace_order", "matern_nu",
                     "penalty_order"):  # fmt: skip
            s(self, name, _opt_count(getattr(self, name), f"BasisMeta.{name}"))
        s(self, "periodic", as_bool(self.periodic, "BasisMeta.periodic"))
        if self.knots is not None:
            s(self, "knots", as_float_vector(self.knots, "BasisMeta.knots"))
        if self.constraint is not None:
            s(self, "constraint", as_float_vector(self.constraint, "BasisMeta.constraint"))
        scale = as_opt_finite_float(self.s_scale, "BasisMeta.s_scale")
        if scale is not None and scale <= 0.0:
            raise ValueError(f"BasisMeta.s_scale: expected > 0, got {scale!r}")
        s(self, "s_scale", scale)

    @classmethod
    def block_spec(cls, reduced_width: int) -> BasisMeta:
        """The custom family's stub: kind ``"block-spec"``, ``n_centers`` = reduced width."""
        return cls(kind="block-spec", n_centers=reduced_width)

    def _fields(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "degree": self.degree,
            "num_knots": self.num_knots,
            "n_centers": self.n_centers,
            "nullspace_order": self.nullspace_order,
            "matern_nu": self.matern_nu,
            "periodic": self.periodic,
            "s_scale": self.s_scale,
            "penalty_order": self.penalty_order,
            "has_knots": self.knots is not None,
            "has_constraint": self.constraint is not None,
        }

    @classmethod
    def _from(cls, fields: Mapping[str, Any], name: str, arrays: _Arrays, prefix: str) -> Self:
        f = _Fields(fields, name)
        return cls(
            kind=f.string("kind"),
            degree=_opt_count(f.raw("degree", None), f.name("degree")),
            num_knots=_opt_count(f.raw("num_knots", None), f.name("num_knots")),
            n_centers=_opt_count(f.raw("n_centers", None), f.name("n_centers")),
            nullspace_order=_opt_count(f.raw("nullspace_order", None), f.name("nullspace_order")),
            matern_nu=_opt_count(f.raw("matern_nu", None), f.name("matern_nu")),
            periodic=f.flag("periodic"),
            s_scale=f.opt_number("s_scale"),
            penalty_order=_opt_count(f.raw("penalty_order", None), f.name("penalty_order")),
            knots=arrays.vector(f"{prefix}/knots") if f.flag("has_knots", False) else None,
            constraint=arrays.vector(f"{prefix}/constraint")
            if f.flag("has_constraint", False)
            else None,
        )


@dataclass(frozen=True, eq=False)
class GlobalFitSummary:
    """Whole-fit summary (spec §5.8); only the objective's finiteness matters."""

    outer_objective: float
    converged: bool
    n_rows: int

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "outer_objective",
          _float_or_nan(self.outer_objective, "GlobalFitSummary.outer_objective"))  # fmt: skip
        s(self, "converged", as_bool(self.converged, "GlobalFitSummary.converged"))
        s(self, "n_rows", as_count(self.n_rows, "GlobalFitSummary.n_rows"))

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
class ResponseSig:
    """Response signature (diagnostic, excluded from the descriptor key)."""

    family_kind: str
    n_response_channels: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "family_kind", as_str(self.family_kind, "ResponseSig.family_kind"))
        object.__setattr__(
            self,
            "n_response_channels",
            as_count(self.n_response_channels, "ResponseSig.n_response_channels"),
        )


@dataclass(frozen=True)
class RowPopulationTag:
    """Row population (diagnostic, excluded from the descriptor key)."""

    n_rows: int
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_rows", as_count(self.n_rows, "RowPopulationTag.n_rows"))
        if self.label is not None:
            object.__setattr__(self, "label", as_str(self.label, "RowPopulationTag.label"))


# --------------------------------------------------------------------------------------------
# descriptor
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitDescriptor:
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

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "family_kind", as_str(self.family_kind, "FitDescriptor.family_kind"))
        if isinstance(self.term_identities, (str, bytes)):
            raise TypeError("FitDescriptor.term_identities: expected a sequence of TermIdentity")
        s(
            self,
            "term_identities",
            tuple(
                TermIdentity.parse(t, f"FitDescriptor.term_identities[{i}]")
                for i, t in enumerate(self.term_identities)
            ),
        )
        if not isinstance(self.response_signature, ResponseSig):
            raise TypeError("FitDescriptor.response_signature: expected ResponseSig")
        if self.row_population is not None and not isinstance(
            self.row_population, RowPopulationTag
        ):
            raise TypeError("FitDescriptor.row_population: expected RowPopulationTag or None")

    def descriptor_key(self) -> Fingerprint:
        """Structural key: family kind and the identities sorted as bytes (spec §2.5).

        Invariant to term order, row population and response signature; duplicates are kept.
        """
        return _descriptor_key(
            self.family_kind, tuple(sorted(t.digest for t in self.term_identities))
        )

    def _fields(self) -> dict[str, Any]:
        row = self.row_population
        return {
            "family_kind": self.family_kind,
            "term_identities": [t.hex() for t in self.term_identities],
            "response_signature": {
                "family_kind": self.response_signature.family_kind,
                "n_response_channels": self.response_signature.n_response_channels,
            },
            "row_population": None if row is None else {"n_rows": row.n_rows, "label": row.label},
        }

    @classmethod
    def _from(cls, fields: Any, name: str) -> Self:
        f = _Fields(fields, name)
        rs = _Fields(f.raw("response_signature"), f"{name}.response_signature")
        row_raw = f.raw("row_population", None)
        row = None
        if row_raw is not None:
            rf = _Fields(row_raw, f"{name}.row_population")
            label = rf.raw("label", None)
            row = RowPopulationTag(
                n_rows=rf.count("n_rows"),
                label=None if label is None else as_str(label, rf.name("label")),
            )
        ids = f.raw("term_identities")
        if not isinstance(ids, list):
            raise TypeError(f"{name}.term_identities: expected a list of hex strings")
        return cls(
            family_kind=f.string("family_kind"),
            term_identities=tuple(
                TermIdentity.parse(t, f"{name}.term_identities[{i}]") for i, t in enumerate(ids)
            ),
            response_signature=ResponseSig(
                rs.string("family_kind"), rs.count("n_response_channels")
            ),  # fmt: skip
            row_population=row,
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
class TermArtifact(FrozenArrays):
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

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "identity", TermIdentity.parse(self.identity, "TermArtifact.identity"))
        if not isinstance(self.role, TermRole):
            raise TypeError(f"TermArtifact.role: expected TermRole, got {type(self.role)}")
        if not isinstance(self.basis_meta, BasisMeta):
            raise TypeError("TermArtifact.basis_meta: expected BasisMeta")
        s(self, "raw_beta", as_float_vector(self.raw_beta, "TermArtifact.raw_beta", finite=False))
        s(
            self,
            "rho_for_term",
            as_float_vector(self.rho_for_term, "TermArtifact.rho_for_term", finite=False),
        )
        if self.joint_null_rotation is not None:
            s(
                self,
                "joint_null_rotation",
                as_float_matrix(
                    self.joint_null_rotation, "TermArtifact.joint_null_rotation", finite=False
                ),
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
class FitArtifact(FrozenArrays):
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
    """

    RECORD_TYPE: ClassVar[str] = "fit_artifact"

    descriptor: FitDescriptor
    terms: tuple[TermArtifact, ...]
    global_: GlobalFitSummary = field(default_factory=_global_summary_default)
    schema: int = FIT_ARTIFACT_SCHEMA
    created_unix_secs: int = field(default_factory=lambda: int(time.time()))
    rho_convention: str = DEFAULT_RHO_CONVENTION

    def __post_init__(self) -> None:
        s = object.__setattr__
        if not isinstance(self.descriptor, FitDescriptor):
            raise TypeError("FitArtifact.descriptor: expected FitDescriptor")
        terms = tuple(self.terms)
        for i, t in enumerate(terms):
            if not isinstance(t, TermArtifact):
                raise TypeError(f"FitArtifact.terms[{i}]: expected TermArtifact")
        s(self, "terms", terms)
        if not isinstance(self.global_, GlobalFitSummary):
            raise TypeError("FitArtifact.global_: expected GlobalFitSummary")
        s(self, "schema", as_count(self.schema, "FitArtifact.schema"))
        s(
            self,
            "created_unix_secs",
            as_count(self.created_unix_secs, "FitArtifact.created_unix_secs"),
        )
        s(
            self,
            "rho_convention",
            as_rho_convention(self.rho_convention, "FitArtifact.rho_convention"),
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

    # -- store protocol --------------------------------------------------------------------
    def to_parts(self) -> RecordParts:
        """Fields and arrays for the store (see ``docs/architecture.md``)."""
        terms_fields = []
        arrays: dict[str, ArrayPart] = {}
        for i, t in enumerate(self.terms):
            terms_fields.append(
                {
                    "identity": t.identity.hex(),
                    "role": t.role.value,
                    "basis_meta": t.basis_meta._fields(),
                    "has_joint_null_rotation": t.joint_null_rotation is not None,
                }
            )
            coef = f"raw_coef_{i}"
            arrays[f"terms/{i}/raw_beta"] = ArrayPart(t.raw_beta, (coef,))
            arrays[f"terms/{i}/rho_for_term"] = ArrayPart(t.rho_for_term, (f"term_rho_{i}",))
            if t.basis_meta.knots is not None:
                arrays[f"terms/{i}/knots"] = ArrayPart(t.basis_meta.knots, (f"knot_{i}",))
            c = t.basis_meta.constraint
            if c is not None:
                dim = coef if c.shape == t.raw_beta.shape else f"constraint_{i}"
                arrays[f"terms/{i}/constraint"] = ArrayPart(c, (dim,))
            if t.joint_null_rotation is not None:
                arrays[f"terms/{i}/joint_null_rotation"] = ArrayPart(
                    t.joint_null_rotation, (f"rot_row_{i}", f"rot_col_{i}")
                )
        fields = {
            "schema": self.schema,
            "created_unix_secs": self.created_unix_secs,
            "descriptor": self.descriptor._fields(),
            "terms": terms_fields,
            "global": {
                "outer_objective": _json_float(self.global_.outer_objective),
                "converged": self.global_.converged,
                "n_rows": self.global_.n_rows,
            },
            "rho_convention": self.rho_convention,
        }
        return RecordParts(fields, arrays)

    @classmethod
    def from_parts(cls, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Self:
        """Rebuild an artifact from stored parts, validating everything.

        Raises
        ------
        ValueError, TypeError
            Naming the field; an unknown role name (e.g. the historical ``"LogSlope"``) is a
            ``ValueError``.
        """
        r = "FitArtifact"
        f = _Fields(fields, r)
        a = _Arrays(arrays, r)
        raw_terms = f.raw("terms")
        if not isinstance(raw_terms, list):
            raise TypeError(f"{r}.terms: expected a list")
        terms = []
        for i, raw in enumerate(raw_terms):
            name = f"{r}.terms[{i}]"
            tf = _Fields(raw, name)
            rot = (
                a.matrix(f"terms/{i}/joint_null_rotation")
                if tf.flag("has_joint_null_rotation")
                else None
            )
            try:
                role = TermRole.from_name(tf.raw("role"))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name}.{exc}") from None
            terms.append(
                TermArtifact(
                    identity=TermIdentity.parse(tf.raw("identity"), f"{name}.identity"),
                    role=role,
                    basis_meta=BasisMeta._from(
                        tf.raw("basis_meta"), f"{name}.basis_meta", a, f"terms/{i}"
                    ),  # fmt: skip
                    raw_beta=a.vector(f"terms/{i}/raw_beta", finite=False),
                    rho_for_term=a.vector(f"terms/{i}/rho_for_term", finite=False),
                    joint_null_rotation=rot,
                )
            )
        g = _Fields(f.raw("global"), f"{r}.global")
        out = cls(
            descriptor=FitDescriptor._from(f.raw("descriptor"), f"{r}.descriptor"),
            terms=tuple(terms),
            global_=GlobalFitSummary(
                outer_objective=_float_or_nan(g.raw("outer_objective"), g.name("outer_objective")),
                converged=g.flag("converged"),
                n_rows=g.count("n_rows"),
            ),
            schema=f.count("schema"),
            created_unix_secs=f.count("created_unix_secs"),
            rho_convention=f.rho_convention(),
        )
        a.finish()
        return out

    # -- the gam crate's serde JSON ----------------------------------------------------------
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
                        degree=_opt_count(bm.raw("degree", None), bm.name("degree")),
                        num_knots=_opt_count(bm.raw("num_knots", None), bm.name("num_knots")),
                        n_centers=_opt_count(bm.raw("n_centers", None), bm.name("n_centers")),
                        nullspace_order=_opt_count(
                            bm.raw("nullspace_order", None), bm.name("nullspace_order")
                        ),
                        matern_nu=_opt_count(bm.raw("matern_nu", None), bm.name("matern_nu")),
                        periodic=bm.flag("periodic", False),
                    ),
                    raw_beta=as_float_vector(tf.raw("raw_beta"), f"{name}.raw_beta"),
                    rho_for_term=as_float_vector(tf.raw("rho_for_term"), f"{name}.rho_for_term"),
                    joint_null_rotation=rot,
                )
            )
        g = _Fields(f.raw("global"), f"{r}.global")
        return cls(
            descriptor=FitDescriptor._from(f.raw("descriptor"), f"{r}.descriptor"),
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
            "descriptor": self.descriptor._fields(),
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
