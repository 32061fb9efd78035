"""Outer-iterate sessions (spec §4): where the outer (smoothing-parameter) search starts and
how its progress is checkpointed.

An :class:`OuterSession` binds one fit to two keys of the ``outer`` keyspace
(:func:`gamstore.warmstart.keys.session_keys`): the *exact* key (same data, spec and
options) and the row-count-free *seed* key shared by every fold of the same model. Usage::

    sess = OuterSession.open(store, family, specs, options)
    start = sess.begin(rho_dim)           # OuterStart: cold | exact-final | seed
    rho = start.rho if start.rho is not None else rho0
    ...                                   # for every finite outer evaluation:
    sess.on_evaluation(rho, beta, cost)   # rate-limited checkpoint (exact + mirror)
    ...
    sess.finish(rho, beta_at_rho, cost, converged, hessian)

Rules carried over from the seed:

* ``begin`` reads the exact key's best entry: an own ``final`` is ``exact-final`` (resume
  at its ρ and *recertify*; never ship cached values), anything else well-formed a ``seed``.
  If the exact key has nothing usable, the newest entry under the seed key (``lookup_latest``:
  objectives of different folds are not comparable) can only ever be a ``seed``.
  Malformed entries are discarded with a reason (``payload-shape-mismatch``,
  ``non-finite-payload``) and the search starts cold. ρ is never clamped.
* A seed's outer Hessian is offered only when it is square, finite and of dimension
  ``rho_dim``, and only if the caller declares an analytic outer Hessian (#2253).
* Cached β is bound to its ρ: the fitter installs it only at a start bitwise equal to
  ``start.rho`` (:meth:`OuterStart.beta_for`).
* ``on_evaluation`` checkpoints finite evaluations (finite cost, finite β when given) to the
  exact session and the mirror session on the seed key, each rate-limited independently
  (2 s unless the objective improves by > 1e-12).
* ``finish`` finalizes only a finite, converged, certified result. β goes into the final
  payload only when it was produced at exactly the final ρ (bitwise, #2486); otherwise the
  payload is ρ-only. The exact and mirror sessions receive the same payload.

Everything is best-effort: without a store every call is a no-op, and storage trouble only
costs the warm start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gamstore.records import (
    Discard,
    EntrySource,
    ExactFinal,
    IteratePayload,
    Seed,
    classify_entry,
)
from gamstore.warmstart.capability import CapabilitySession, StoreArg, WarmStartStore, warm_store
from gamstore.warmstart.keys import exact_session_key, session_keys
from gamstore.warmstart.specs import BlockSpec, FitOptions, WarmStartFamily

__all__ = [
    "OUTER_KEYSPACE",
    "Discard",
    "ExactFinal",
    "OuterSession",
    "OuterStart",
    "Seed",
    "classify_outer_entry",
    "decode_iterate",
    "encode_iterate",
]

_log = logging.getLogger("gamstore.warmstart")

OUTER_KEYSPACE = "outer"

StartKind = Literal["cold", "exact-final", "seed"]


def encode_iterate(
    rho: Any,
    cost: float,
    eval_id: int,
    beta: Any = None,
    hessian: Any = None,
    ext: Any = None,
) -> IteratePayload | None:
    """Build the payload of one outer iterate, or None when it must not be persisted.

    ρ, cost and β (when given) must be finite; the Hessian is kept only when square and
    finite (otherwise it is scrubbed to empty, which does not prevent the write); ``ext``
    (negative binomial ``[log theta]``) only when finite.
    """
    try:
        return IteratePayload.encode(rho, cost, eval_id, beta=beta, hessian=hessian, ext=ext)
    except (TypeError, ValueError) as exc:
        _log.debug("outer iterate not persisted: %s", exc)
        return None


def decode_iterate(payload: Any, rho_dim: int) -> IteratePayload | None:
    """The payload if it decodes for a ρ of dimension ``rho_dim`` (spec §4.2), else None.

    Rejects a foreign record, schema ≠ 3, a wrong ρ length, non-finite ρ or cost, and
    non-finite β. A malformed Hessian was already scrubbed when the payload was read.
    """
    if not isinstance(payload, IteratePayload):
        return None
    return payload.decode(rho_dim)


def classify_outer_entry(
    entry: Any, rho_dim: int, source: EntrySource | str = EntrySource.EXACT
) -> ExactFinal | Seed | Discard:
    """Classify a loaded ``outer`` entry (spec §4.3): ExactFinal, Seed or Discard(reason).

    Parameters
    ----------
    entry : gamstore.Entry
        The loaded entry (``record``, ``kind``, ``objective``, ``iteration``).
    rho_dim : int
        Current ρ dimension.
    source : EntrySource or str
        ``"exact"`` for the fit's own key; ``"preloaded"`` for a near-match from the seed key
        (whose finals are never terminal certificates).
    """
    kind = str(getattr(entry, "kind", "checkpoint"))
    if kind not in ("final", "checkpoint"):
        return Discard("payload-shape-mismatch")
    return classify_entry(
        getattr(entry, "record", None),
        kind,
        source,
        getattr(entry, "objective", None),
        rho_dim,
        entry_iteration=getattr(entry, "iteration", None),
    )


@dataclass(frozen=True, eq=False)
class OuterStart:
    """Where the outer search starts.

    Attributes
    ----------
    kind : {"cold", "exact-final", "seed"}
        ``exact-final``: resume at ``rho`` and recertify. ``seed``: start at ``rho``.
    rho : ndarray or None
        Starting ρ (None when cold).
    beta : ndarray or None
        Flat β produced at exactly ``rho`` (None when absent); see :meth:`beta_for`.
    hessian : ndarray or None
        Initial outer Hessian (seed only; square, finite, ``rho_dim`` wide).
    iteration : int
        Iterations recorded with the entry (0 when cold).
    source : {"none", "exact", "seed-key"}
        Which key the start came from.
    reason : str or None
        For a cold start: ``"no-store"``, ``"miss"``, or the discard reason.
    ext : ndarray or None
        Extended-family parameters stored with ``rho`` (negative binomial ``[log theta]``),
        finite and 1-D, else None.
    """

    kind: StartKind
    rho: np.ndarray | None = None
    beta: np.ndarray | None = None
    hessian: np.ndarray | None = None
    iteration: int = 0
    source: Literal["none", "exact", "seed-key"] = "none"
    reason: str | None = None
    ext: np.ndarray | None = None

    @property
    def warm(self) -> bool:
        """True unless the start is cold."""
        return self.kind != "cold"

    def beta_for(self, rho: Any) -> np.ndarray | None:
        """The cached β if ``rho`` is bitwise equal to the cached ρ, else None (#2486)."""
        if self.rho is None or self.beta is None:
            return None
        cand = np.asarray(rho, dtype=np.float64)
        if cand.shape != self.rho.shape or cand.tobytes() != self.rho.tobytes():
            return None
        return self.beta.copy()


def _cold(reason: str) -> OuterStart:
    return OuterStart(kind="cold", reason=reason)


def _bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _as_vector(x: Any) -> np.ndarray | None:
    try:
        arr = np.array(x, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None


class OuterSession:
    """Outer-iterate checkpoints of one fit (exact key + mirror on the seed key).

    Parameters
    ----------
    store : StoreArg
        None for a disk-silent fit (every method is then a no-op).
    exact_key : str or None
        The exact session key (None: disk-silent).
    seed_key : str or None
        The row-count-free seed key; None disables near-match seeding and the mirror.
    analytic_hessian : bool
        Whether the objective declares analytic second-order geometry; a seed's Hessian is
        offered only then.
    mirror_checkpoints : bool
        Also checkpoint every evaluation to the mirror (the seed's behaviour, default). With
        False the mirror receives only the final entry, which halves the per-evaluation
        storage cost; folds then seed only from finished fits.
    """

    def __init__(
        self,
        store: StoreArg,
        exact_key: str | None,
        seed_key: str | None = None,
        *,
        analytic_hessian: bool = True,
        mirror_checkpoints: bool = True,
    ) -> None:
        self._ws: WarmStartStore | None = warm_store(store) if exact_key is not None else None
        self.exact_key = exact_key
        self.seed_key = seed_key
        self.analytic_hessian = bool(analytic_hessian)
        self.mirror_checkpoints = bool(mirror_checkpoints)
        self._exact: CapabilitySession | None = None
        self._mirror: CapabilitySession | None = None
        self._opened = False
        self._evals = 0
        self._rho_dim: int | None = None
        self._last_rho: np.ndarray | None = None
        self._last_beta: np.ndarray | None = None

    @classmethod
    def open(
        cls,
        store: StoreArg,
        family: WarmStartFamily,
        specs: Sequence[BlockSpec],
        options: FitOptions,
        *,
        mirror: bool = True,
        analytic_hessian: bool = True,
        mirror_checkpoints: bool = True,
        block_key: str | None = None,
    ) -> OuterSession:
        """The session of a fit, keyed by :func:`~gamstore.warmstart.keys.session_keys`.

        Without a store no key is derived (a family without a fingerprint is fine). Pass the
        fit's ``block_key`` (from ``load_block_warm_start``) to avoid hashing the designs
        again.

        Raises
        ------
        UnsupportedFamilyError
            When a store is configured but the family cannot fingerprint itself.
        """
        if warm_store(store) is None:
            return cls(None, None)
        if not mirror:  # the seed key would go unused
            exact = exact_session_key(family, specs, options, block_key_hint=block_key)
            return cls(
                store,
                exact,
                None,
                analytic_hessian=analytic_hessian,
                mirror_checkpoints=mirror_checkpoints,
            )
        keys = session_keys(family, specs, options, block_key_hint=block_key)
        return cls(
            store,
            keys.exact,
            keys.seed,
            analytic_hessian=analytic_hessian,
            mirror_checkpoints=mirror_checkpoints,
        )

    @property
    def enabled(self) -> bool:
        """Whether a store is attached and still available."""
        return self._ws is not None and self._ws.available

    @property
    def evaluations(self) -> int:
        """Finite evaluations seen by :meth:`on_evaluation`."""
        return self._evals

    def _sessions(self) -> list[CapabilitySession]:
        if self._ws is None:
            return []
        if not self._opened:
            self._opened = True
            if self.exact_key is not None:
                self._exact = self._ws.session(self.exact_key, keyspace=OUTER_KEYSPACE)
            if self.seed_key is not None and self.seed_key != self.exact_key:
                self._mirror = self._ws.session(self.seed_key, keyspace=OUTER_KEYSPACE)
        return [s for s in (self._exact, self._mirror) if s is not None]

    # -- start ---------------------------------------------------------------------------------
    def begin(self, rho_dim: int) -> OuterStart:
        """Look up where to start the outer search (never raises).

        Parameters
        ----------
        rho_dim : int
            Number of outer parameters of this fit.
        """
        if isinstance(rho_dim, bool) or not isinstance(rho_dim, int) or rho_dim < 0:
            raise ValueError(f"rho_dim: expected an int >= 0, got {rho_dim!r}")
        self._rho_dim = rho_dim
        if self._ws is None:
            return _cold("no-store")
        self._sessions()
        reason = "miss"
        if self._exact is not None:
            entry = self._exact.load()
            if entry is not None:
                start = self._start_from(entry, rho_dim, EntrySource.EXACT, "exact")
                if start.warm:
                    return start
                reason = start.reason or reason
        if self.seed_key is not None:
            entry = self._ws.lookup_latest(OUTER_KEYSPACE, self.seed_key)
            if entry is not None:
                start = self._start_from(entry, rho_dim, EntrySource.PRELOADED, "seed-key")
                if start.warm:
                    return start
                reason = start.reason or reason
        _log.debug("outer session %s: cold start (%s)", self.exact_key, reason)
        return _cold(reason)

    def _start_from(
        self,
        entry: Any,
        rho_dim: int,
        source: EntrySource,
        label: Literal["exact", "seed-key"],
    ) -> OuterStart:
        try:
            verdict = classify_outer_entry(entry, rho_dim, source)
        except (TypeError, ValueError) as exc:
            _log.debug("outer entry unusable: %s", exc)
            return _cold("payload-shape-mismatch")
        if isinstance(verdict, Discard):
            _log.info("outer session %s: entry discarded (%s)", self.exact_key, verdict.reason)
            return _cold(verdict.reason)
        beta = np.array(verdict.beta) if verdict.beta.size else None
        rho = np.array(verdict.rho)
        ext = _as_vector(getattr(getattr(entry, "record", None), "ext", None))
        if ext is not None and not (ext.size and np.isfinite(ext).all()):
            ext = None  # a malformed ext costs its warm start only, never the rho start
        if isinstance(verdict, ExactFinal):
            _log.info("outer session %s: exact final, resume and recertify", self.exact_key)
            return OuterStart("exact-final", rho, beta, None, verdict.iterations, label, ext=ext)
        hessian = None
        if (
            self.analytic_hessian
            and verdict.hessian is not None
            and verdict.hessian.shape == (rho_dim, rho_dim)
        ):
            hessian = np.array(verdict.hessian)
        _log.info("outer session %s: seeded from %s entry", self.exact_key, label)
        return OuterStart("seed", rho, beta, hessian, verdict.iteration, label, ext=ext)

    # -- progress ------------------------------------------------------------------------------
    def on_evaluation(self, rho: Any, beta: Any, cost: float, ext: Any = None) -> bool:
        """Checkpoint one outer evaluation (rate-limited); True when the exact key was written.

        Non-finite cost, ρ or β is never persisted. ``beta`` may be None (ρ-only). The
        (ρ, β) pair is remembered for :meth:`finish`. ``ext``: extended-family parameters
        at this evaluation (negative binomial ``[log theta]``), stored with ρ.
        """
        rho_v = _as_vector(rho)
        if rho_v is None or not np.isfinite(rho_v).all():
            return False
        try:
            cost_f = float(cost)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(cost_f):
            return False
        beta_v = None if beta is None else _as_vector(beta)
        if beta is not None and (beta_v is None or not np.isfinite(beta_v).all()):
            return False
        self._evals += 1
        self._last_rho, self._last_beta = rho_v, beta_v
        sessions = self._sessions()
        if not self.mirror_checkpoints:
            sessions = [s for s in sessions if s is not self._mirror]
        if not sessions:
            return False
        payload = encode_iterate(rho_v, cost_f, self._evals, beta=beta_v, ext=ext)
        if payload is None:
            return False
        written = [s.checkpoint(payload, cost_f, self._evals) for s in sessions]
        return bool(self._exact is not None and written[0])

    def finish(
        self,
        rho: Any,
        beta_at_rho: Any,
        cost: float,
        converged: bool,
        hessian: Any = None,
        *,
        beta_rho: Any = None,
        iterations: int | None = None,
        certified: bool = True,
        ext: Any = None,
    ) -> bool:
        """Finalize the session at the end of a fit; True when the exact key was written.

        Parameters
        ----------
        rho : array_like
            The final ρ.
        beta_at_rho : array_like or None
            Flat β at the final ρ. If None, the β of the last :meth:`on_evaluation` is used
            when that evaluation's ρ is bitwise equal to ``rho``.
        cost : float
            The final objective (must be finite).
        converged : bool
            Whether the outer search converged (nothing is finalized otherwise).
        hessian : array_like, optional
            The final outer Hessian (kept when square and finite).
        beta_rho : array_like, optional
            The ρ at which ``beta_at_rho`` was produced, when the caller is not sure it is
            ``rho``; β is then kept only if it is bitwise equal to ``rho``.
        iterations : int, optional
            Outer iterations (default: the evaluation count).
        certified : bool
            Whether the result carries a valid certificate (nothing is finalized otherwise).
        ext : array_like, optional
            Extended-family parameters of the final fit (negative binomial ``[log theta]``),
            stored with ρ so a session start resumes them too.
        """
        sessions = self._sessions()
        if not sessions or not converged or not certified:
            return False
        rho_v = _as_vector(rho)
        if rho_v is None or not np.isfinite(rho_v).all():
            return False
        if self._rho_dim is not None and rho_v.shape[0] != self._rho_dim:
            _log.debug("outer session: final rho has the wrong dimension; not finalized")
            return False
        beta_v: np.ndarray | None = None
        if beta_at_rho is not None:
            beta_v = _as_vector(beta_at_rho)
            if beta_rho is not None:
                at = _as_vector(beta_rho)
                if at is None or not _bitwise_equal(at, rho_v):
                    beta_v = None  # produced at another ρ: ρ-only payload
        elif self._last_rho is not None and _bitwise_equal(self._last_rho, rho_v):
            beta_v = self._last_beta
        if beta_v is not None and not np.isfinite(beta_v).all():
            beta_v = None
        n_iter = self._evals if iterations is None else int(iterations)
        payload = encode_iterate(rho_v, cost, n_iter, beta=beta_v, hessian=hessian, ext=ext)
        if payload is None:
            return False
        written = [s.finalize(payload, float(cost), n_iter) for s in sessions]
        return bool(self._exact is not None and written[0])
