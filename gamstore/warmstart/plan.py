"""The warm-start orchestrator: one object per fit against one store (issue 16 item 2).

Every fitter goes through here - the built-in fitter (:mod:`gamstore.fit.warm`), the pyGAM
and statsmodels adapters, and a custom fitter via :func:`plan_warm_start` - so the size
cap, the never-raise rule and the read circuit breaker of
:class:`~gamstore.warmstart.capability.WarmStartStore` apply to all of them.

* :class:`FitWarmStart` - a blockwise fit keyed by (family, block specs, options). The
  store is resolved and the specs are checked once, in the constructor; the block key is
  derived once, on first use. :meth:`FitWarmStart.find` runs the lookups in order (first hit
  wins):

  1. **exact** - the block record (record B) under the fit's block key;
  2. **session** - the outer session under the fit's exact session key (a ``final``
     resumes, a checkpoint of an interrupted run seeds ρ, and β when it was produced at that
     ρ);
  3. **cross-fit** - the newest fit artifact with the same structural descriptor (ρ per
     term, β transported across the fold's constraint);
  4. a session found only under the row-free seed key: ρ only, still ``"session"``.

  :meth:`FitWarmStart.finish` writes what the next fit can use and does not already have.
* :class:`KeyedWarmStart` - a fitter that builds its own key strings (the adapters): an
  exact record (``inner`` or ``block`` keyspace) then the newest payload under a row-free
  seed key, and the matching saves.

Both hand the fitter a :class:`~gamstore.warmstart.blocks.BlockWarmStart` (the one state
type) built over the stored record's arrays, without copies.

:func:`plan_warm_start` is the short form for a custom fitter (exact record, then cross-fit
artifact)::

    plan = plan_warm_start(store, family, specs, options, rho0, gauge=gauge)
    rho = plan.rho0                        # warm ρ, or a copy of the default
    if not plan.skip_seed_screening:
        rho = screen_seeds(rho)            # multi-seed screening only for a cold start
    ...
    store_block_warm_start(store, plan.key, specs, current)   # after each evaluation

Rules: the cross-fit transfer is attempted only when a store is configured (so the family
has a block key), the exact record missed, and ``rho0`` is non-empty; its result replaces
``rho0`` only when the lengths and block widths match and every value is finite. When any warm
start is present, seed screening is skipped (a performance rule; the optimum is the same).
Nothing here can change an optimum: every start is only a start, and any warm-start failure
is a cold start with one log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from gamstore.gauge import Gauge
from gamstore.records import (
    BlockWarmStartRecord,
    InnerSummary,
    IteratePayload,
    ResultSummary,
    WarmStartRecord,
)
from gamstore.transfer import TransferConfig
from gamstore.warmstart import background
from gamstore.warmstart.artifacts import (
    capture_fit_artifact,
    consume_fit_artifact,
    consume_loaded_artifact,
    descriptor_for,
    load_fit_artifact,
)
from gamstore.warmstart.blocks import (
    SATURATION_THRESHOLD,
    BlockWarmStart,
    exact_state,
    store_block_warm_start,
)
from gamstore.warmstart.capability import StoreArg, WarmStartStore, warm_store
from gamstore.warmstart.keys import BLOCK_KEY_RE, block_key, check_specs, family_fingerprint
from gamstore.warmstart.policy import (
    COSTS,
    CostModel,
    FitHint,
    WarmPolicy,
    as_policy,
    current_hint,
)
from gamstore.warmstart.provenance import current_provenance
from gamstore.warmstart.sessions import OuterSession
from gamstore.warmstart.specs import (
    BlockSpec,
    FitOptions,
    WarmStartFamily,
    physical_to_outer,
)

__all__ = [
    "ExactProbe",
    "FitWarmStart",
    "KeyInputError",
    "KeyedWarmStart",
    "WarmPlan",
    "plan_warm_start",
]


class KeyInputError(ValueError):
    """The fitter's own key inputs are wrong (e.g. row-block digests that do not describe the
    data): a caller error, raised through the never-raise rule of the warm-start layer."""


_log = logging.getLogger("gamstore.warmstart")

#: Lookups of one lookup phase that each cost at least a round trip on an existing store
#: (exact record, exact session, cross-fit artifact): a phase answered by an absent store
#: is timed as this many probes, what the phase costs once the store exists.
LOOKUPS_PER_PHASE = 3


def _family_tag(family: Any) -> tuple[str, str]:
    # artifacts are keyed by a descriptor (family and terms, or a structure without levels):
    # its family name is a coarser tag that every fit sharing a descriptor shares
    return ("artifact", str(getattr(family, "name", type(family).__name__)))


def write_tags(key: str, family: Any = None) -> frozenset[Any]:
    """What a fit's deferred save writes: its block record and session (by block key), and
    with ``family`` its artifact (:func:`gamstore.warmstart.background.defer`)."""
    tags: set[Any] = {("block", key), ("outer", key)}
    if family is not None:
        tags.add(_family_tag(family))
    return frozenset(tags)


def read_tags(key: str, family: Any = None) -> frozenset[Any]:
    """What a lookup reads: the block record (and with ``family`` the session of the same
    key and the artifacts of the family)."""
    if family is None:
        return frozenset({("block", key)})
    return write_tags(key, family)


def _usable(rho: Any, betas: Sequence[Any] | None, rho_len: int, widths: Sequence[int]) -> bool:
    """ρ of length ``rho_len`` and (when given) one finite β per block of the given widths."""
    r = np.asarray(rho)
    if r.shape != (rho_len,) or not np.isfinite(r).all():
        return False
    if betas is None:
        return True
    if len(betas) != len(widths):
        return False
    return all(
        np.shape(b) == (w,) and bool(np.isfinite(b).all())
        for b, w in zip(betas, widths, strict=True)
    )


class _Policed:
    """The adaptive policy's bookkeeping shared by both orchestrators (one fit each)."""

    ws: WarmStartStore
    family_tag: str
    n_rows: int

    def _init_policy(self, policy: WarmPolicy | str | None, costs: CostModel | None) -> None:
        self.policy = as_policy(policy)
        self.costs = COSTS if costs is None else costs
        self.decisions: list[str] = []
        self.fit_seconds: float | None = None
        # what the caller knows about this fit (gamstore.warmstart.policy.fit_hint); the
        # policy "always" ignores hints (deterministic store traffic)
        self.hint: FitHint | None = current_hint() if self.policy.mode == "adaptive" else None

    @property
    def _own(self) -> bool:
        return self.hint is None or self.hint.own

    @property
    def _foreign(self) -> bool:
        return self.hint is None or self.hint.foreign

    def _lookup_allowed(self) -> bool:
        d = self.costs.lookup_decision(
            self.policy, self.ws.url, self.family_tag, self.n_rows, self.hint
        )
        self.decisions.append(d.reason)
        return d.go

    def _save_allowed(self) -> bool:
        if self.fit_seconds is None:  # the fitter did not time itself: nothing to compare
            return True
        d = self.costs.save_decision(
            self.policy, self.ws.url, self.fit_seconds, in_run=self.hint is not None
        )
        self.decisions.append(d.reason)
        return d.go

    def observe_fit(self, seconds: float, cold: bool, own: bool = False) -> None:
        """The fit itself took ``seconds`` (what a warm start can shorten and a save must
        beat), ``cold`` or from a looked-up start (``own``: the fit's own exact record or
        session, timed apart from starts from another fit): teaches the family's expected
        times."""
        self.fit_seconds = float(seconds)
        self.costs.observe_fit(
            self.family_tag, self.n_rows, seconds, self.policy, cold=cold, own=own
        )

    def _artifact_allowed(self, record: bool) -> bool | None:
        """The in-run decision on the artifact of a hinted fit (None: no hint, the artifact
        follows the later-run rule of the other saves). Not explained when nothing is
        written anyway (no record, and no fit of this run would start from it)."""
        hint = self.hint
        if hint is None or hint.artifact_uses is None:
            return None
        d = self.costs.artifact_decision(self.policy, self.ws.url, self.family_tag, hint)
        if d.go or record or (hint.artifact_uses or 0) > 0:
            self.decisions.append(d.reason)
        return d.go

    def explain(self) -> str:
        """The policy's decisions for this fit, e.g. ``"looked up (no history yet); saved
        (no history yet)"`` or ``"lookup skipped: fit ~3 ms, store round trip 40 ms"``."""
        return "; ".join(self.decisions)


# the cost model's fit family of the last fit of a model (its description, no data): an
# exact probe, made before the design exists, decides on the family its fit will have
_FIT_FAMILIES: dict[str, str] = {}


class ExactProbe(_Policed):
    """The exact block record of a fit looked up *before* the fit builds its design.

    A fitter that keys its inputs (``GAM.fit``: :mod:`gamstore.fit.inputkey`) knows its
    block key before it builds anything, so an exact refit (same data, model and store) can
    be answered from the record alone when the record carries what the fit reported
    (:class:`~gamstore.records.ResultSummary`, written by converged fits). On a miss the
    fit goes on as usual and its orchestrator (:class:`FitWarmStart` with ``probe=``) does
    not read the record again; the probe's read counts towards its lookup phase.

    The adaptive policy (:mod:`gamstore.warmstart.policy`) decides the probe with the
    numbers it decides the fit's lookups with - the store's round trip and the expected
    cold fit of the fit family of the model's last fit in this process (learned by
    :class:`FitWarmStart`; none yet: "no history", the probe is made) - but with its own
    rule: an exact hit saves the whole fit, so the probe is skipped only when the store is
    slower than a cold fit (``lookup_ratio`` times it), not when warm starts have been
    saving little (cross-fit starts checked by cold refits). An exact hit teaches the store's
    round trip (its read) and nothing about warm fits: the family's warm fit times stay those
    of the starts the fit's own lookups find (session, cross-fit), which an exact hit says
    nothing about.

    Parameters
    ----------
    store : StoreArg
        The user's ``store=`` (not None).
    model_tag : str
        The model's description (no data), under which its fit family is remembered.
    n_rows : int
        Rows of the data (the cost model's per-row scale).
    key : str or callable
        The fit's block key from its inputs, or a zero-argument callable deriving it
        (None: no key, no probe).
    policy, costs
        As for :class:`FitWarmStart`.
    """

    def __init__(
        self,
        store: StoreArg,
        model_tag: str,
        n_rows: int,
        key: str | Callable[[], str | None],
        *,
        policy: WarmPolicy | str | None = None,
        costs: CostModel | None = None,
    ) -> None:
        ws = store if isinstance(store, WarmStartStore) else warm_store(store)
        if ws is None:
            raise ValueError("store: expected a store, URL or path, got None")
        self.ws = ws
        self.model_tag = str(model_tag)
        self.family_tag = _FIT_FAMILIES.get(self.model_tag, self.model_tag)
        self.n_rows = int(n_rows)
        self._key_arg = key
        self.key: str | None = None
        self._init_policy(policy, costs)
        #: the probe read the store and found no block record under the key
        self.missed = False
        #: seconds the probe's read took (0 when it did not read)
        self.seconds = 0.0
        self.probed = False

    def learn(self, family_tag: str) -> None:
        """The fit family the model's fit has (told by its orchestrator)."""
        _FIT_FAMILIES[self.model_tag] = family_tag

    def find(self) -> BlockWarmStartRecord | None:
        """The block record under the fit's key when it can answer the fit alone (it
        carries a result summary and is self-consistent: :func:`answerable`), else None.

        Raises
        ------
        KeyInputError
            When deriving the key found the caller's key inputs wrong (nothing else).
        """
        if not self._probe_allowed():
            return None
        arg = self._key_arg
        key: str | None
        if callable(arg):
            try:
                key = arg()
            except ValueError as exc:
                raise KeyInputError(str(exc)) from exc
        else:
            key = arg
        if key is None or not isinstance(key, str) or not BLOCK_KEY_RE.fullmatch(key):
            return None
        self.key = key
        # read your writes: an earlier fit's deferred save of this record lands first
        background.settle(read_tags(key))
        clock = self.costs.clock
        t0 = clock()
        try:
            from gamstore.warmstart.records_io import BLOCK_KEYSPACE, read_record

            rec = read_record(self.ws, BLOCK_KEYSPACE, key, BlockWarmStartRecord)
        except Exception as exc:  # a warm-start problem never fails a fit
            _log.info("exact probe under %s failed (%s: %s)", key, type(exc).__name__, exc)
            rec = None
        self.seconds = clock() - t0
        self.probed = True
        if rec is None:
            self.missed = True
            return None
        why = answerable(rec)
        if why is not None:
            _log.info("exact record %s cannot answer the fit alone (%s); fitting", key, why)
            return None
        return rec

    def _probe_allowed(self) -> bool:
        from gamstore.warmstart.policy import Decision, ms

        policy, costs = self.policy, self.costs
        if policy.mode == "always":
            d = Decision(True, "looked up (policy always)")
        elif not self._own:  # the caller knows the store holds no record of this fit
            d = Decision(False, f"exact probe skipped: {self.hint.reason if self.hint else ''}")
        else:
            fit = costs.expected_fit(self.family_tag, self.n_rows)
            rtt = costs.lookup_time(self.ws.url)
            if fit is None or rtt is None:
                d = Decision(True, "looked up (no history yet)")
            elif rtt >= policy.lookup_ratio * fit:
                d = Decision(
                    False, f"exact probe skipped: fit ~{ms(fit)}, store round trip {ms(rtt)}"
                )
            else:
                d = Decision(True, f"looked up: fit ~{ms(fit)} cold, store round trip {ms(rtt)}")
        self.decisions.append(d.reason)
        return d.go

    def observe_hit(self) -> None:
        """The fit was answered from the record: its lookup phase was the probe's read."""
        self.costs.observe_lookup(self.ws.url, self.seconds, self.policy)


def answerable(rec: BlockWarmStartRecord, rho_convention: str = "mgcv") -> str | None:
    """Why ``rec`` cannot answer an exact refit without the design (None: it can).

    The checks that need no design: the record's version and convention, a result summary,
    one finite β of the recorded width and one active-set entry per block, one summary label
    per block, and a valid inner summary when present. A record under the fit's key that
    passes them was written by a converged fit of the same inputs.
    """
    from gamstore.records import CACHE_VERSION

    if rec.result is None:
        return "no result summary"
    if rec.version != CACHE_VERSION or rec.rho_convention != rho_convention:
        return "version or rho convention"
    dims = rec.block_dims
    if len(rec.block_beta) != len(dims) or len(rec.active_sets) != len(dims):
        return "block count"
    if any(b.shape != (d,) for b, d in zip(rec.block_beta, dims, strict=True)):
        return "block widths"
    if len(rec.result.block_labels) != len(dims):
        return "result blocks"
    if not (np.isfinite(rec.rho).all() and all(np.isfinite(b).all() for b in rec.block_beta)):
        return "non-finite values"
    if rec.inner is not None and not rec.inner.is_valid():
        return "inner summary"
    if rec.ext is not None:
        return "extended-family parameters"
    return None


class FitWarmStart(_Policed):
    """The warm start of one blockwise fit against one store (see the module docstring).

    Parameters
    ----------
    store : StoreArg
        The user's ``store=`` (not None): resolved here, once per fit.
    family : WarmStartFamily
        The fit's family (``name`` and ``warm_start_fingerprint``).
    specs : sequence of BlockSpec
        The fit's blocks: checked here, once per fit.
    options : FitOptions
        Every optimum-changing setting.
    rho_convention : str
        What the fitter's ρ means; records under another convention are misses.
    key : str or callable, optional
        The fit's block key when the fitter derives it from its inputs
        (:func:`~gamstore.warmstart.keys.input_block_key`, as ``GAM.fit`` does), or a
        zero-argument callable deriving it on first use (returning None: key the specs);
        default :func:`~gamstore.warmstart.keys.block_key` of the specs (hashes the designs).
    policy : WarmPolicy, "always", "adaptive" or None
        When to look up and save (:mod:`gamstore.warmstart.policy`); None: the default.
    costs : CostModel, optional
        Where costs are measured and read (default: the process-wide model).
    structure : FitDescriptor, optional
        For a design whose blocks change between the folds of a LOSO run (the levels of a
        random effect or a factor): its cross-fit artifacts are stored and looked up under
        this descriptor (which names such terms without their levels) and transfer term by
        term, the changed blocks starting cold
        (:func:`gamstore.transfer.build_partial_warm_start`).
    probe : ExactProbe, optional
        The exact record was already probed before the design was built: on a miss it is
        not looked up again, and the probe's time counts towards the lookup phase.

    Raises
    ------
    TypeError
        When ``store`` is none of the accepted types.
    ValueError
        When ``store`` is None, or the specs are malformed.
    """

    def __init__(
        self,
        store: StoreArg,
        family: WarmStartFamily,
        specs: Sequence[BlockSpec],
        options: FitOptions,
        *,
        rho_convention: str = "mgcv",
        key: str | Callable[[], str | None] | None = None,
        policy: WarmPolicy | str | None = None,
        costs: CostModel | None = None,
        structure: Any = None,
        probe: ExactProbe | None = None,
    ) -> None:
        # resolved once per fit: the fitter passes the capability it already resolved
        ws = store if isinstance(store, WarmStartStore) else warm_store(store)
        if ws is None:
            raise ValueError("store: expected a store, URL or path, got None")
        self.ws: WarmStartStore = ws
        self.family = family
        self.specs: list[BlockSpec] = check_specs(specs)
        self.options = options
        self.rho_convention = rho_convention
        self.structure = structure
        self.probe = probe
        self.widths = [s.width for s in self.specs]
        self.checkpoints = 0
        self._session: OuterSession | None = None
        if key is not None and not callable(key):
            self._check_key(key)
        # a callable is derived on first use: a fit whose lookups and saves the policy skips
        # never hashes its inputs
        self._input_key = key
        self._init_policy(policy, costs)
        # the fit family of the cost model: structure only (family, block names and widths)
        self.family_tag = f"{getattr(family, 'name', type(family).__name__)}|" + ",".join(
            f"{sp.name}:{sp.width}" for sp in self.specs
        )
        self.n_rows = self.specs[0].n_rows if self.specs else 0

    @cached_property
    def key(self) -> str:
        """The block key: the one given (a fitter that keys its inputs,
        :func:`~gamstore.warmstart.keys.input_block_key`), else :func:`block_key` of the
        specs (hashes the designs once per fit).

        Raises
        ------
        UnsupportedFamilyError
            When the family cannot fingerprint itself.
        """
        key = self.input_key
        if key is not None:
            family_fingerprint(self.family, self.specs, self.options)  # block_key's refusal
            return key
        return block_key(self.family, self.specs, self.options)

    @cached_property
    def input_key(self) -> str | None:
        """The key the fitter derived from its inputs (None: key the specs instead).

        Raises
        ------
        KeyInputError
            When deriving it found the caller's key inputs wrong.
        """
        key = self._input_key
        if callable(key):
            try:
                key = key()
            except ValueError as exc:
                raise KeyInputError(str(exc)) from exc
        if key is not None:
            self._check_key(key)
        return key

    @staticmethod
    def _check_key(key: object) -> None:
        if not isinstance(key, str) or not BLOCK_KEY_RE.fullmatch(key):
            raise ValueError(f"key: expected a 'cf-<16 hex>' block key, got {key!r}")

    @cached_property
    def p2o(self) -> list[int | None]:
        """Outer ρ index of every physical penalty."""
        return physical_to_outer(self.specs)

    @cached_property
    def descriptor(self) -> Any:
        """The fit's structural descriptor (cross-fit artifact key)."""
        return descriptor_for(self.family, self.specs)

    @property
    def session(self) -> OuterSession:
        """The fit's outer session on its exact key, opened on first use."""
        if self._session is None:
            # no mirror on the row-free seed key: folds find their parent through the
            # cross-fit artifact (ρ and exactly transported β), which beats a ρ-only seed
            self._session = OuterSession.open(
                self.ws, self.family, self.specs, self.options, mirror=False, block_key=self.key
            )
        return self._session

    # -- lookups ----------------------------------------------------------------------------
    def exact(self, rho_len: int) -> BlockWarmStart | None:
        """The exact block record as a start (its own arrays), or None."""
        warm = exact_state(self.ws, self.key, self.specs, int(rho_len), self.rho_convention)
        if warm is None or not _usable(warm.rho, warm.block_beta, rho_len, self.widths):
            return None
        return warm

    def session_start(self, rho_len: int) -> BlockWarmStart | None:
        """The outer session's start (``seed=True`` when only the row-free key had one)."""
        start = self.session.begin(rho_len)
        if not (start.warm and start.rho is not None and _usable(start.rho, None, rho_len, ())):
            return None
        beta = start.beta_for(start.rho) if start.source == "exact" else None
        if beta is not None and beta.shape != (sum(self.widths),):
            beta = None
        return BlockWarmStart(
            start.rho,
            [],
            source="session",
            beta=beta,
            final=start.kind == "exact-final",
            seed=start.source != "exact",
            ext=start.ext,  # nb: the session's log theta starts the theta search
        )

    def cross_fit(
        self,
        rho_default: np.ndarray,
        block_transforms: Sequence[Any | None],
        *,
        config: TransferConfig | None = None,
        column_means: Sequence[Any | None] | None = None,
        intercept_column: int | None = None,
        beta_transfers: Callable[[Any], bool] | None = None,
    ) -> BlockWarmStart | None:
        """A start transferred from the newest fit artifact of the same structure, or None.

        ``beta_transfers(parent)`` says whether the parent's β is in this fit's coordinates
        (e.g. the same knots); when it says no, the start is ρ only.
        """
        if rho_default.size == 0:
            return None
        found_under = self.descriptor if self.structure is None else self.structure
        parent = load_fit_artifact(self.ws, found_under)  # read once for both uses
        if parent is None:
            return None
        warm = consume_loaded_artifact(
            self.ws,
            self.family,
            self.specs,
            block_transforms,
            self.p2o,
            rho_default,
            options=self.options,
            config=config,
            column_means=column_means,
            intercept_column=intercept_column,
            rho_convention=self.rho_convention,
            descriptor=self.descriptor,
            parent=parent,
            partial=self.structure is not None,
        )
        if warm is None or not _usable(warm.rho, warm.block_beta, rho_default.size, self.widths):
            return None
        rows = getattr(getattr(parent, "global_", None), "n_rows", None)
        keep_beta = beta_transfers is None or beta_transfers(parent)
        return replace(
            warm,
            block_beta=warm.block_beta if keep_beta else [],
            source="cross-fit",
            parent_rows=rows if isinstance(rows, int) else None,
            ext=getattr(parent, "ext", None),  # nb: the full fit's log theta
        )

    def find(
        self,
        rho_default: np.ndarray,
        cross_fit: Callable[[], BlockWarmStart | None] | None = None,
    ) -> BlockWarmStart | None:
        """Exact record, exact session, cross-fit (``cross_fit()``), seed session; None: cold.

        A :class:`~gamstore.warmstart.policy.FitHint` may restrict them: ``foreign=False``
        stops after the fit's own state, ``own=False`` starts at the cross-fit artifact.
        """
        probe = self.probe
        probed = 0.0 if probe is None or not probe.probed else probe.seconds
        if probe is not None:
            probe.learn(self.family_tag)
        if not self._lookup_allowed():
            if probe is not None and probe.probed:
                estimate = self._absent_estimate()
                seconds = probed if estimate is None else estimate
                self.costs.observe_lookup(self.ws.url, seconds, self.policy)
            return None
        if self.ws.absent:
            background.settle()  # a deferred save may be creating the store: it lands first
        estimate = self._absent_estimate()
        clock = self.costs.clock
        t0 = clock()
        try:
            # an absent store holds nothing: no key is derived, no request sent
            return None if estimate is not None else self._find(rho_default, cross_fit)
        finally:
            seconds = clock() - t0 + probed if estimate is None else estimate
            self.costs.observe_lookup(self.ws.url, seconds, self.policy)

    def _absent_estimate(self) -> float | None:
        """The time of a lookup phase on an absent store
        (:func:`~gamstore.warmstart.capability.open_lazily`), which answers without a
        request: what the phase costs once the store exists, from the probe that found it
        missing (the store's measured round trip); None when the store is not absent."""
        rtt = self.ws.probe_seconds
        if not self.ws.absent or rtt is None:
            return None
        return LOOKUPS_PER_PHASE * rtt

    def _find(
        self,
        rho_default: np.ndarray,
        cross_fit: Callable[[], BlockWarmStart | None] | None,
    ) -> BlockWarmStart | None:
        n = int(rho_default.shape[0])
        # read your writes: an earlier fit's deferred saves of what this fit reads land first
        # (only the family's artifacts when the fit's own state is not looked for: its key is
        # then not derived, a fit that skips its saves too never hashes its inputs)
        background.settle(
            read_tags(self.key, self.family) if self._own else frozenset({_family_tag(self.family)})
        )
        sess = None
        if self._own:
            missed = self.probe is not None and self.probe.missed
            warm = None if missed else self.exact(n)  # a probed miss is not read twice
            if warm is not None:
                return warm
            if self._foreign and cross_fit is not None and self.ws.parallel_reads:
                # an object store: each read is a round trip, so the session and the
                # cross-fit artifact are read side by side (the order of preference is kept
                # below; the artifact is read even when the session answers, which is rare:
                # a cold fit writes no session final under the adaptive policy)
                sess, cross = background.run_concurrently(
                    [lambda: self.session_start(n), cross_fit]
                )
                if sess is not None and not sess.seed:
                    return sess
                return cross if cross is not None else sess
            sess = self.session_start(n)
            if sess is not None and not sess.seed:
                return sess
        if not self._foreign:  # a start from another fit cannot pay (FitHint)
            return None
        cross = None if cross_fit is None else cross_fit()
        return cross if cross is not None else sess

    # -- progress and results ---------------------------------------------------------------
    def checkpoint(self, rho: Any, beta: Any, score: float, ext: Any = None) -> None:
        """Rate-limited session checkpoint of an accepted outer iterate (``ext``: the
        extended-family parameters at it, negative binomial ``[log theta]``)."""
        self.session.on_evaluation(rho, beta, score, ext=ext)
        self.checkpoints += 1

    def finish(
        self,
        start: BlockWarmStart | None,
        *,
        rho: np.ndarray,
        beta: np.ndarray,
        score: float,
        n_outer: int,
        converged: bool,
        separated: bool = False,
        inner: Callable[[], InnerSummary | None] | None = None,
        hessian: Any = None,
        gauge: Callable[[], Gauge],
        basis_metas: Callable[[], Sequence[Any]] | None = None,
        saturation_threshold: float | None = SATURATION_THRESHOLD,
        ext: np.ndarray | None = None,
        result: Callable[[], ResultSummary | None] | None = None,
    ) -> None:
        """Write what the next fit can use, and nothing it already has (never raises).

        * cold, or a warm start that needed outer steps: block record, session final,
          artifact;
        * an exact hit recertified without a step: nothing;
        * resumed from a session final without a step: the block record only;
        * a fold seeded by a cross-fit artifact: block record, plus the session final only
          if the fit checkpointed (long fits); never the artifact, so every fold keeps
          transferring from the full-data fit rather than from another fold; nor does any
          LOSO fold (provenance ``held_out`` set) that started otherwise (cold, its lookups
          skipped);
        * a completely separated fit: nothing (PIRLS from its β goes on towards the
          separation, so every refit must be the cold fit).

        Under the adaptive policy a session final that would only duplicate the block record
        just written (no checkpoints to close) is not written, and a fit hinted with
        ``artifact_uses`` (:class:`~gamstore.warmstart.policy.FitHint`: the full-data fit of a
        LOSO run) writes its artifact when the fits of this run that start from it save more
        than it costs, whatever the later-run rule decides for the record.

        ``result`` (what the converged fit reported, kept with the block record so that an
        exact refit can answer without building the design: :meth:`probe_exact`), ``inner``,
        ``gauge`` and ``basis_metas`` are called only when what they build is
        written (an exact recertification builds none of them). Under the adaptive policy the
        writes are skipped when this fit (:meth:`observe_fit`) was cheaper than a save on this
        store has been; the time of the writes is measured.
        """
        level = "cold" if start is None else start.source
        stepped = n_outer > 0
        if (level == "exact" and not stepped) or separated or not self.ws.writable:
            return
        record = self._save_allowed()
        # a hinted fit whose artifact other fits of this run start from: decided by what
        # they save, not by the later-run rule (FitHint.artifact_uses)
        in_run = self._artifact_allowed(record) if level != "cross-fit" else None
        artifact = record if in_run is None else in_run
        if self.hint is not None:
            self.hint.report.artifact = bool(artifact and converged and level != "cross-fit")
        if not (record or artifact):
            return
        clock = self.costs.clock
        if background.deferring():
            self._defer_write(
                start, level, rho=rho, beta=beta, score=score, n_outer=n_outer,
                converged=converged, inner=inner, hessian=hessian, gauge=gauge,
                basis_metas=basis_metas, saturation_threshold=saturation_threshold, ext=ext,
                result=result, record=record, publish=artifact,
            )  # fmt: skip
            return
        t0 = clock()
        try:
            self._write(
                start, level, rho=rho, beta=beta, score=score, n_outer=n_outer,
                converged=converged, inner=inner, hessian=hessian, gauge=gauge,
                basis_metas=basis_metas, saturation_threshold=saturation_threshold, ext=ext,
                result=result, record=record, publish=artifact,
            )  # fmt: skip
        finally:
            self.costs.observe_save(self.ws.url, clock() - t0, self.policy)

    def _defer_write(
        self,
        start: BlockWarmStart | None,
        level: str,
        *,
        rho: np.ndarray,
        beta: np.ndarray,
        score: float,
        n_outer: int,
        converged: bool,
        inner: Callable[[], InnerSummary | None] | None,
        hessian: Any,
        gauge: Callable[[], Gauge],
        basis_metas: Callable[[], Sequence[Any]] | None,
        saturation_threshold: float | None,
        ext: np.ndarray | None,
        result: Callable[[], ResultSummary | None] | None = None,
        record: bool = True,
        publish: bool = True,
    ) -> None:
        """:meth:`_write` on the background writer (inside
        :func:`~gamstore.warmstart.background.deferred_saves`). What the writes read from the
        caller is fixed first, in this thread: the key (it hashes the caller's data), copies
        of the arrays the result hands out, the inner and result summaries; the records, the gauge and the
        I/O are built and sent in the background. Never raises (a key error of the caller's
        inputs excepted, as in the synchronous path)."""
        try:
            _ = self.key
            summary = None if inner is None else inner()
            outcome = None if result is None else result()  # reads the caller's FitResult
        except KeyInputError:
            raise
        except Exception as exc:  # a warm-start problem never fails a fit
            _log.info("warm-start save failed (%s: %s)", type(exc).__name__, exc)
            return
        rho, beta = np.array(rho, dtype=np.float64), np.array(beta, dtype=np.float64)
        hessian = None if hessian is None else np.array(hessian, dtype=np.float64)
        ext = None if ext is None else np.array(ext, dtype=np.float64)
        clock = self.costs.clock
        may_write_artifact = level != "cross-fit" and current_provenance().get("held_out") is None
        tags = write_tags(self.key, self.family if may_write_artifact else None)

        def job() -> None:
            t0 = clock()
            try:
                self._write(
                    start, level, rho=rho, beta=beta, score=score, n_outer=n_outer,
                    converged=converged, inner=lambda: summary, hessian=hessian, gauge=gauge,
                    basis_metas=basis_metas, saturation_threshold=saturation_threshold,
                    ext=ext, result=lambda: outcome, record=record, publish=publish,
                )  # fmt: skip
            finally:
                self.costs.observe_save(self.ws.url, clock() - t0, self.policy)

        background.defer(f"{level} fit under {self.key} on {self.ws.url}", job, tags)

    def _write(
        self,
        start: BlockWarmStart | None,
        level: str,
        *,
        rho: np.ndarray,
        beta: np.ndarray,
        score: float,
        n_outer: int,
        converged: bool,
        inner: Callable[[], InnerSummary | None] | None,
        hessian: Any,
        gauge: Callable[[], Gauge],
        basis_metas: Callable[[], Sequence[Any]] | None,
        saturation_threshold: float | None,
        ext: np.ndarray | None = None,
        result: Callable[[], ResultSummary | None] | None = None,
        record: bool = True,
        publish: bool = True,
    ) -> None:
        stepped = n_outer > 0
        final = start is not None and start.final
        session = not (level == "session" and final and not stepped)
        artifact = session and publish
        if level == "cross-fit":
            session = self.checkpoints > 0
            artifact = False
        if current_provenance().get("held_out") is not None:
            # a LOSO fold never writes an artifact, whatever its start: one that fitted cold
            # (its lookups skipped by the policy) would otherwise become the newest parent of
            # the later folds, whose drop share it hides from the start check
            artifact = False
        session = session and record
        try:
            betas = [beta[sl] for sl in _slices(self.widths)]
            stored = record and store_block_warm_start(
                self.ws,
                self.key,
                self.specs,
                BlockWarmStart(
                    rho,
                    betas,
                    [],
                    None if inner is None else inner(),
                    ext=ext,
                    result=None if result is None else result(),
                ),
                saturation_threshold=saturation_threshold,
            )
            if session and stored and self.checkpoints == 0 and self.policy.mode == "adaptive":
                # the block record just written holds the same start and is looked up first:
                # a session final would only duplicate it (one write that cannot pay)
                session = False
            if session:
                self.session.finish(
                    rho, beta, score, converged, hessian=hessian, beta_rho=rho,
                    iterations=n_outer, ext=ext,
                )  # fmt: skip
            if converged and artifact:
                capture_fit_artifact(
                    self.ws,
                    self.family,
                    self.specs,
                    gauge(),
                    betas,
                    rho,
                    self.p2o,
                    score,
                    converged,
                    options=self.options,
                    basis_metas=None if basis_metas is None else basis_metas(),
                    key_descriptor=self.structure,
                    ext=ext,
                )
        except KeyInputError:
            raise  # the caller's key inputs: their error, not a warm-start problem
        except Exception as exc:  # a warm-start problem never fails a fit
            _log.info("warm-start save failed (%s: %s)", type(exc).__name__, exc)


def _slices(widths: Sequence[int]) -> list[slice]:
    out, at = [], 0
    for w in widths:
        out.append(slice(at, at + w))
        at += w
    return out


# ---------------------------------------------------------------------------------------------
# fitters with their own key strings (the adapters)
# ---------------------------------------------------------------------------------------------


class KeyedWarmStart(_Policed):
    """The warm start of a fitter that builds its own key strings (pyGAM, statsmodels).

    Parameters
    ----------
    store : StoreArg
        The user's ``store=`` (not None): resolved here, once per fit.
    exact_key : str
        Key of this exact fit (data, specification, settings).
    seed_key : str
        Row-free key shared with related fits (e.g. the full-data fit for a LOSO fold).
    keyspace : {"inner", "block"}
        Where the exact record lives: ``"inner"`` holds a
        :class:`~gamstore.records.WarmStartRecord` (flat β), ``"block"`` a
        :class:`~gamstore.records.BlockWarmStartRecord` (β per block).
    rho_convention : str
        The fitter's ρ convention; an exact record under another one is a miss
        (:attr:`miss_reason` says so).
    n_rows : int
        Rows of this fit.
    block_names, block_dims : sequence
        The β layout (one block for ``"inner"``).
    rho_len : int
        Number of smoothing parameters.
    seed_width : int, optional
        Length of the flat β a seed payload carries (default: the sum of ``block_dims``).
    policy, costs
        As for :class:`FitWarmStart`; the fitter reports its time with :meth:`observe_fit`.

    Notes
    -----
    Every read and write goes through the store's :class:`WarmStartStore`: the entry size
    cap, the read circuit breaker, and no exception ever reaches the caller (a storage
    problem is a cold start or a skipped save, logged once).
    """

    def __init__(
        self,
        store: StoreArg,
        *,
        exact_key: str,
        seed_key: str,
        keyspace: Literal["inner", "block"],
        rho_convention: str,
        n_rows: int,
        block_names: Sequence[str],
        block_dims: Sequence[int],
        rho_len: int,
        seed_width: int | None = None,
        policy: WarmPolicy | str | None = None,
        costs: CostModel | None = None,
    ) -> None:
        if keyspace not in ("inner", "block"):
            raise ValueError(f"keyspace: expected 'inner' or 'block', got {keyspace!r}")
        ws = warm_store(store)
        if ws is None:
            raise ValueError("store: expected a store, URL or path, got None")
        self.ws: WarmStartStore = ws
        self.exact_key = exact_key
        self.seed_key = seed_key
        self.keyspace = keyspace
        self.rho_convention = rho_convention
        self.n_rows = int(n_rows)
        self.block_names = list(block_names)
        self.block_dims = [int(d) for d in block_dims]
        self.rho_len = int(rho_len)
        self.seed_width = sum(self.block_dims) if seed_width is None else int(seed_width)
        self._init_policy(policy, costs)
        self.family_tag = seed_key  # row-free: the fits of one model share their costs
        #: why the exact record was not used (None: no record, or it was used)
        self.miss_reason: str | None = None

    def _exact(self) -> BlockWarmStart | None:
        entry = self.ws.lookup(self.keyspace, self.exact_key)
        rec = None if entry is None else entry.record
        cls = WarmStartRecord if self.keyspace == "inner" else BlockWarmStartRecord
        if not isinstance(rec, cls):
            return None
        if rec.rho_convention != self.rho_convention:
            # same key string, but its ρ multiplies another S: never reinterpret it
            self.miss_reason = (
                f"rho_convention {rec.rho_convention!r}, expected {self.rho_convention!r}"
            )
            return None
        if isinstance(rec, WarmStartRecord):
            ok = rec.is_compatible(
                self.exact_key, self.n_rows, sum(self.block_dims),
                rho_convention=self.rho_convention,
            ) and rec.rho.shape == (self.rho_len,)  # fmt: skip
            return BlockWarmStart(rec.rho, [rec.beta], source="exact") if ok else None
        if not rec.is_compatible(
            self.exact_key, self.n_rows, self.block_names, self.block_dims, self.rho_len,
            rho_convention=self.rho_convention,
        ):  # fmt: skip
            return None
        return BlockWarmStart(rec.rho, list(rec.block_beta), source="exact")

    def _seed(self) -> BlockWarmStart | None:
        entry = self.ws.lookup_latest("outer", self.seed_key)
        pay = None if entry is None else entry.record
        if not isinstance(pay, IteratePayload):
            return None
        rho = np.asarray(pay.rho, dtype=np.float64)
        if rho.shape != (self.rho_len,) or not np.all(np.isfinite(rho)):
            return None
        beta = np.asarray(pay.beta, dtype=np.float64)
        ok_beta = beta.shape == (self.seed_width,) and bool(np.all(np.isfinite(beta)))
        hess = np.asarray(pay.hessian, dtype=np.float64)
        ok_hess = hess.shape == (self.rho_len, self.rho_len) and bool(np.all(np.isfinite(hess)))
        return BlockWarmStart(
            rho,
            [],
            source="seed",
            beta=beta if ok_beta else None,
            hessian=hess if ok_hess else None,
        )

    def find(self) -> BlockWarmStart | None:
        """The exact record, else the newest seed payload; None: cold. Never raises.

        Under the adaptive policy the lookups are skipped when this store has been slower
        than the fit (see :mod:`gamstore.warmstart.policy`).
        """
        if not self._lookup_allowed():
            return None
        clock = self.costs.clock
        t0 = clock()
        try:
            return self._exact() or (self._seed() if self._foreign else None)
        except Exception as exc:  # a warm-start problem never fails a fit
            _log.info("warm start under %s unavailable (%s: %s); starting cold",
                      self.exact_key, type(exc).__name__, exc)  # fmt: skip
            return None
        finally:
            self.costs.observe_lookup(self.ws.url, clock() - t0, self.policy)

    def save(
        self,
        *,
        rho: np.ndarray,
        beta: np.ndarray,
        objective: float,
        iteration: int,
        publish_seed: bool,
        inner_iters: int = 0,
        hessian: np.ndarray | None = None,
        seed_beta: np.ndarray | None = None,
    ) -> dict[str, str | None]:
        """Write the exact record and (``publish_seed``) the seed payload, as ``final``s.

        ``beta`` is flat in block order; ``seed_beta`` (default ``beta``) is the flat β the
        seed payload carries (the fitter's own parameter order). Returns the entry id per
        keyspace written (None where a save was skipped or failed). Never raises.
        """
        saved: dict[str, str | None] = {}
        if not self._save_allowed():
            return saved
        clock = self.costs.clock
        t0 = clock()
        try:
            now = int(time.time())
            rec: WarmStartRecord | BlockWarmStartRecord
            if self.keyspace == "inner":
                rec = WarmStartRecord(
                    key=self.exact_key, n_rows=self.n_rows, n_cols=beta.size, rho=rho, beta=beta,
                    last_inner_iters=inner_iters, last_inner_converged=True,
                    created_unix_secs=now, updated_unix_secs=now,
                    rho_convention=self.rho_convention,
                )  # fmt: skip
            else:
                rec = BlockWarmStartRecord(
                    key=self.exact_key, n_rows=self.n_rows, block_names=tuple(self.block_names),
                    block_dims=tuple(self.block_dims), rho=rho,
                    block_beta=tuple(beta[sl] for sl in _slices(self.block_dims)),
                    active_sets=(None,) * len(self.block_dims),
                    created_unix_secs=now, updated_unix_secs=now,
                    rho_convention=self.rho_convention,
                )  # fmt: skip
            saved[self.keyspace] = self.ws.save(
                self.keyspace, self.exact_key, rec, objective=objective, iteration=iteration,
                kind="final",
            )  # fmt: skip
            if publish_seed:
                pay = IteratePayload(
                    rho=rho, cost=objective, eval_id=iteration,
                    beta=beta if seed_beta is None else seed_beta,
                    hessian=np.zeros((0, 0)) if hessian is None else hessian,
                )  # fmt: skip
                saved["outer"] = self.ws.save(
                    "outer", self.seed_key, pay, objective=objective, iteration=iteration,
                    kind="final",
                )  # fmt: skip
        except Exception as exc:  # storing is best effort; the fit result stands
            _log.info("warm-start state under %s not stored: %s", self.exact_key, exc)
        self.costs.observe_save(self.ws.url, clock() - t0, self.policy)
        return saved


# ---------------------------------------------------------------------------------------------
# the short form for a custom fitter
# ---------------------------------------------------------------------------------------------


@dataclass
class WarmPlan:
    """The outcome of :func:`plan_warm_start`.

    Attributes
    ----------
    key : str or None
        The block key (None without a store); pass it to ``store_block_warm_start``.
    warm : BlockWarmStart or None
        The warm start to seed the inner solver with, or None for a cold start.
    source : {"cold", "exact", "cross-fit"}
        Where ``warm`` came from.
    rho0 : ndarray
        Starting ρ: the warm ρ, or a copy of the default.
    """

    key: str | None
    warm: BlockWarmStart | None
    source: Literal["cold", "exact", "cross-fit"]
    rho0: np.ndarray

    @property
    def skip_seed_screening(self) -> bool:
        """True when a warm start is present: go straight to the outer solver."""
        return self.warm is not None


def plan_warm_start(
    store: StoreArg,
    family: WarmStartFamily,
    specs: Sequence[BlockSpec],
    options: FitOptions,
    rho0: Any,
    *,
    gauge: Gauge | None = None,
    physical_to_outer_map: Sequence[int | None] | None = None,
    config: TransferConfig | None = None,
    column_means: Sequence[Any | None] | None = None,
    intercept_column: int | None = None,
) -> WarmPlan:
    """Find the best available warm start for a blockwise fit (exact, then cross-fit).

    Parameters
    ----------
    store : StoreArg
        None: a cold, disk-silent plan (no key; the family need not fingerprint itself).
    family, specs, options
        As for :func:`gamstore.warmstart.keys.block_key`.
    rho0 : array_like, shape (n_outer,)
        The default starting ρ. Never modified.
    gauge : Gauge, optional
        This fit's gauge, for projecting a parent's β (ρ only without it).
    physical_to_outer_map : sequence of (int or None), optional
        Default: :func:`gamstore.warmstart.specs.physical_to_outer` of ``specs``.
    config, column_means, intercept_column
        Passed to :func:`gamstore.warmstart.artifacts.consume_fit_artifact`.

    Returns
    -------
    WarmPlan
        The warm start it holds is a writable copy (the caller owns it).

    Raises
    ------
    UnsupportedFamilyError
        When a store is configured but the family cannot fingerprint itself.
    ValueError
        If ``rho0`` is not a 1-D vector.
    """
    rho_default = np.array(rho0, dtype=np.float64, copy=True)
    if rho_default.ndim != 1:
        raise ValueError(f"rho0: expected a 1-D vector (n_outer,), got shape {rho_default.shape}")
    if warm_store(store) is None:
        return WarmPlan(None, None, "cold", rho_default)
    fws = FitWarmStart(store, family, specs, options)
    background.settle()  # read your writes: every save deferred so far lands first
    n = rho_default.shape[0]
    warm = fws.exact(n)
    if warm is not None:
        own = BlockWarmStart(
            np.array(warm.rho, dtype=np.float64),
            [np.array(b) for b in warm.block_beta],
            [None if a is None else np.array(a) for a in warm.active_sets],
            _restored(warm.cached_inner),
        )
        return WarmPlan(fws.key, own, "exact", np.array(own.rho))
    if rho_default.size == 0:
        return WarmPlan(fws.key, None, "cold", rho_default)
    p2o = fws.p2o if physical_to_outer_map is None else physical_to_outer_map
    cross = consume_fit_artifact(
        fws.ws,
        family,
        fws.specs,
        gauge,
        p2o,
        rho_default,
        options=options,
        config=config,
        column_means=column_means,
        intercept_column=intercept_column,
    )
    if cross is not None and _usable(cross.rho, cross.block_beta, n, fws.widths):
        return WarmPlan(fws.key, cross, "cross-fit", np.array(cross.rho, dtype=np.float64))
    return WarmPlan(fws.key, None, "cold", rho_default)


def _restored(inner: Any) -> Any:
    from gamstore.warmstart.blocks import CachedInner

    return CachedInner.from_summary(inner) if isinstance(inner, InnerSummary) else inner
