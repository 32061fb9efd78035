"""Small synthetic records of every keyspace, for examples, benchmarks and tests of the views.

The values are deterministic functions of ``(seed, index)`` so a test can recompute what it
stored; they look like a P-spline GAM fit (a parametric block plus smooths of k coefficients)
but no model is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SyntheticFit", "synthetic_fit", "populate"]

FAMILIES = ("gaussian", "poisson", "binomial")


@dataclass(frozen=True)
class SyntheticFit:
    """Arrays of one synthetic fit (what :func:`synthetic_fit` returns).

    Attributes
    ----------
    family : str
    block_names : tuple of str
        ``"(parametric)"`` then ``"s(x0)"``, ``"s(x1)"``, ...
    rho : list of numpy.ndarray
        Log smoothing parameters per block (empty for the parametric block).
    beta : list of numpy.ndarray
        Coefficients per block.
    objective : float
    n_rows : int
    """

    family: str
    block_names: tuple[str, ...]
    rho: list[np.ndarray]
    beta: list[np.ndarray]
    objective: float
    n_rows: int

    @property
    def rho_flat(self) -> np.ndarray:
        """All smoothing parameters, block order."""
        return np.concatenate([np.zeros(0), *self.rho])

    @property
    def beta_flat(self) -> np.ndarray:
        """All coefficients, block order."""
        return np.concatenate([np.zeros(0), *self.beta])


def synthetic_fit(seed: int, index: int, *, n_smooths: int | None = None) -> SyntheticFit:
    """Deterministic arrays of fit ``index`` (1 to 3 smooths of 6 to 12 coefficients)."""
    rng = np.random.default_rng([seed, index])
    n_s = int(rng.integers(1, 4)) if n_smooths is None else int(n_smooths)
    names = ("(parametric)", *(f"s(x{j})" for j in range(n_s)))
    rho = [np.zeros(0)] + [rng.normal(0.0, 2.0, size=1) for _ in range(n_s)]
    beta = [rng.normal(size=int(rng.integers(1, 3)))] + [
        rng.normal(size=int(rng.integers(6, 13))) for _ in range(n_s)
    ]
    return SyntheticFit(
        family=FAMILIES[index % len(FAMILIES)],
        block_names=names,
        rho=rho,
        beta=beta,
        objective=float(1000.0 + rng.normal(0.0, 10.0)),
        n_rows=int(rng.integers(200, 2000)),
    )


def artifact_record(fit: SyntheticFit, label: str) -> tuple[str, Any]:
    """A :class:`~gamstore.artifact.FitArtifact` of ``fit`` and its artifact key."""
    from gamstore.artifact import (
        BasisMeta,
        FitArtifact,
        FitDescriptor,
        GlobalFitSummary,
        ResponseSig,
        RowPopulationTag,
        TermArtifact,
        TermIdentity,
        TermRole,
        artifact_key,
    )
    from gamstore.fingerprint import Fingerprinter

    terms = []
    for name, rho, beta in zip(fit.block_names, fit.rho, fit.beta, strict=True):
        # the label enters the identity so that every synthetic fit gets its own key
        ident = Fingerprinter().absorb_str("synthetic-term", f"{label}/{name}").finalize()
        kind = "parametric" if name == "(parametric)" else "ps"
        terms.append(
            TermArtifact(
                identity=TermIdentity.of(ident),
                role=TermRole.MEAN,
                basis_meta=BasisMeta(kind=kind, n_centers=beta.size),
                raw_beta=beta,
                rho_for_term=rho,
            )
        )
    descriptor = FitDescriptor(
        family_kind=fit.family,
        term_identities=tuple(t.identity for t in terms),
        response_signature=ResponseSig(fit.family, 1),
        row_population=RowPopulationTag(fit.n_rows, label),
    )
    record = FitArtifact(
        descriptor=descriptor,
        terms=tuple(terms),
        global_=GlobalFitSummary(fit.objective, True, fit.n_rows),
    )
    return artifact_key(descriptor), record


def block_record(fit: SyntheticFit, key: str) -> Any:
    """A :class:`~gamstore.records.BlockWarmStartRecord` of ``fit``."""
    from gamstore.records import BlockWarmStartRecord, InnerSummary

    return BlockWarmStartRecord(
        key=key,
        n_rows=fit.n_rows,
        block_names=fit.block_names,
        block_dims=tuple(b.size for b in fit.beta),
        rho=fit.rho_flat,
        block_beta=tuple(fit.beta),
        active_sets=(None,) * len(fit.beta),
        inner=InnerSummary(
            log_likelihood=-fit.objective,
            penalty_value=1.0,
            cycles=3,
            converged=True,
            block_logdet_h=0.5,
            block_logdet_s=0.25,
        ),
    )


def iterate_record(fit: SyntheticFit, eval_id: int) -> Any:
    """An :class:`~gamstore.records.IteratePayload` of ``fit``."""
    from gamstore.records import IteratePayload

    return IteratePayload(rho=fit.rho_flat, cost=fit.objective, eval_id=eval_id, beta=fit.beta_flat)


def populate(
    store: Any,
    n_fits: int,
    *,
    seed: int = 0,
    keyspaces: tuple[str, ...] = ("artifact", "block", "outer"),
) -> dict[str, list[str]]:
    """Write ``n_fits`` synthetic fits into ``store`` under each of ``keyspaces``.

    Returns
    -------
    dict
        keyspace -> entry ids written, in order of ``index``.
    """
    written: dict[str, list[str]] = {ks: [] for ks in keyspaces}
    for i in range(n_fits):
        fit = synthetic_fit(seed, i)
        label = f"fit-{seed}-{i}"
        for ks in keyspaces:
            if ks == "artifact":
                key, record = artifact_record(fit, label)
                eid = store.save("artifact", key, record)
            elif ks == "block":
                eid = store.save("block", f"block/{label}", block_record(fit, f"block/{label}"))
            elif ks in ("outer", "from"):
                eid = store.save(
                    ks,
                    f"{ks}/{label}",
                    iterate_record(fit, i),
                    objective=fit.objective,
                    iteration=i,
                    kind="final",
                )
            else:
                raise ValueError(f"keyspaces: synthetic records for {ks!r} are not supported")
            if eid is None:
                raise RuntimeError(f"populate: saving {ks} entry {label} failed")
            written[ks].append(eid)
    return written
