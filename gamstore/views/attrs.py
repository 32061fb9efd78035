"""CF-style attributes (long_name, units, description) of the variables in gamstore views."""

from __future__ import annotations

__all__ = ["VARIABLE_ATTRS", "variable_attrs"]

# units "1" = dimensionless (CF); counts and flags carry no units at all.
VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "fit": {"long_name": "entry id", "description": "Sortable id of the stored entry."},
    "key": {"long_name": "cache key", "description": "The caller's key string of the entry."},
    "keyspace": {"long_name": "keyspace", "description": "Keyspace the entry is stored in."},
    "created": {"long_name": "creation time", "description": "When the entry was written (UTC)."},
    "family": {"long_name": "model family", "description": "Likelihood family of the fit."},
    "descriptor_key": {
        "long_name": "descriptor key",
        "description": "Fold-invariant key of the model descriptor (family and terms).",
    },
    "kind": {
        "long_name": "entry kind",
        "description": "'final' for a converged, finalized fit, else 'checkpoint'.",
    },
    "producer": {"long_name": "producer", "description": "Process that wrote the entry."},
    "nbytes": {"long_name": "stored size", "units": "bytes"},
    "objective": {
        "long_name": "optimizer objective",
        "units": "1",
        "description": "Outer objective (negative log restricted marginal likelihood or session "
        "cost) at the stored point; NaN when unknown.",
    },
    "n_rows": {"long_name": "number of data rows", "description": "-1 when unknown."},
    "converged": {
        "long_name": "converged flag",
        "description": "True when the stored state is a converged optimum.",
    },
    "iterations": {
        "long_name": "optimizer iterations",
        "description": "Outer iterations (or inner cycles for block records); -1 when unknown.",
    },
    "rho": {
        "long_name": "log smoothing parameter",
        "units": "1",
        "description": "Natural log of the smoothing parameters, in penalty order; NaN-padded "
        "(see rho_mask).",
    },
    "beta": {
        "long_name": "coefficients",
        "units": "1",
        "description": "Coefficients on the linear-predictor scale (raw, gauge-free basis for "
        "fit artifacts); NaN-padded (see beta_mask).",
    },
    "block_beta": {
        "long_name": "block coefficients",
        "units": "1",
        "description": "Per-block coefficients in the reduced (constrained) basis; NaN-padded "
        "(see block_beta_mask).",
    },
    "n_coef": {"long_name": "number of coefficients"},
    "n_penalty": {"long_name": "number of smoothing parameters"},
    "n_term": {"long_name": "number of terms"},
    "n_block": {"long_name": "number of blocks"},
    "term_basis": {
        "long_name": "term basis kind",
        "description": "Basis kind of the term, e.g. 'ps' ('' = padding).",
    },
    "term_role": {
        "long_name": "term role",
        "description": "Mean, Slope or Generic ('' = padding).",
    },
    "term_identity": {
        "long_name": "term identity key",
        "description": "64-hex fingerprint identifying the term across folds.",
    },
    "block_name": {"long_name": "block name", "description": "Name of the block ('' = padding)."},
    "penalty_name": {
        "long_name": "smoothing parameter name",
        "description": "Name of the smoothing parameter as FitResult.rho_names gives it: the "
        "block's name, or for a tensor product's one per margin 'te(x,z)[x]' ('' = padding "
        "or unknown).",
    },
    "penalty": {
        "long_name": "smoothing parameter",
        "description": "Smoothing parameter names, when every fit in the view has the same.",
    },
    "term_name": {
        "long_name": "term name",
        "description": "Model term of the fit that wrote the artifact, e.g. 's(x0)' ('' = "
        "padding or unknown).",
    },
    "term": {
        "long_name": "term",
        "description": "Term names, when every fit in the view has the same terms.",
    },
    "block": {
        "long_name": "block",
        "description": "Block names, when every fit in the view has the same blocks.",
    },
    "response": {"long_name": "response", "description": "Response column(s) of the fit."},
    "covariates": {
        "long_name": "covariates",
        "description": "Covariate columns of the fit, comma-separated, in model order.",
    },
    "subject_column": {
        "long_name": "subject column",
        "description": "LOSO: the column holding subject labels ('' = not a LOSO fit).",
    },
    "held_out": {
        "long_name": "held-out subject",
        "description": "LOSO: label of the subject left out ('' = the full-data fit).",
    },
    "run_id": {
        "long_name": "run id",
        "description": "One id per GAM.fit call, or per run_loso call for all of its fits.",
    },
    "gamstore_version": {
        "long_name": "gamstore version",
        "description": "Version of the gamstore that wrote the entry.",
    },
}


def variable_attrs(name: str) -> dict[str, str]:
    """Return a copy of the CF attributes of variable ``name`` (masks get their own)."""
    if name.endswith("_mask"):
        base = name[: -len("_mask")]
        return {
            "long_name": f"validity mask of {base}",
            "description": f"True where {base} holds a stored value, False on padding.",
        }
    return dict(VARIABLE_ATTRS.get(name, {}))
