"""``fit(store=...)``: the three warm-start levels, through :mod:`gamstore.warmstart` only.

Order of the lookups (first hit wins):

1. **exact** - the block record (record B) of the same data, spec and options: start at its
   ρ and β (working basis) and recertify; the returned optimum is recomputed, never copied.
2. **session** - the outer session under the fit's *exact* session key: a ``final`` resumes
   and recertifies, a checkpoint of an interrupted run seeds ρ (and β when it was produced
   at exactly that ρ).
3. **cross-fit** - the newest fit artifact with the same structural descriptor (e.g. the
   full-data fit seen from a leave-one-subject-out fold, knots frozen with
   ``fit(knots=...)``): ρ copied per term, β transported exactly across the fold's own
   sum-to-zero constraint (reference-fitter §3.3), or ρ only when the knots differ.

A session entry found only under the row-count-free *seed* key (another fit of the same
model) is the last resort, ρ only, and still reported as ``"session"``.

The lookups, their order and what is written after the fit belong to the warm-start
orchestrator (:class:`gamstore.warmstart.plan.FitWarmStart`); this module gives it the
design-specific inputs (block specs, options, gauge, knots check). After the fit, what the
next fit can use and does not already have is written: a fold seeded by a cross-fit artifact never overwrites its parent's artifact,
so every fold of a leave-one-subject-out run transfers from the full-data fit. Session
checkpoints are written during the Newton loop once the fit has run ``checkpoint_interval``
seconds (a millisecond fit is cheaper to redo than to checkpoint).

Nothing here can change the optimum: every start is only a start for the same Newton loop,
and any warm-start failure falls back to a cold start with one log line.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from gamstore.fit.design import Design
from gamstore.fit.newton import (
    RHO_BOUND,
    InnerCap,
    Iterate,
    NewtonControl,
    NewtonResult,
    OnIterate,
)
from gamstore.fit.reml import Problem, evaluate
from gamstore.fit.startcheck import check_start

if TYPE_CHECKING:  # pragma: no cover
    from gamstore.fit.model import GAM, FitResult
    from gamstore.records import BlockWarmStartRecord, ResultSummary
    from gamstore.warmstart.blocks import BlockWarmStart
    from gamstore.warmstart.capability import WarmStartStore
    from gamstore.warmstart.plan import ExactProbe
    from gamstore.warmstart.sessions import OuterSession
    from gamstore.warmstart.specs import BlockSpec, FitOptions

logger = logging.getLogger("gamstore.fit.warm")

# bumped with the end-game stopping rule (2) and the tp basis made independent of LAPACK (3:
# eigenvectors oriented, zero pivots reflected one way; an exact hit evaluates the stored β on
# the rebuilt design, so a record of the former, build-dependent tp basis must not match)
FITTER_TAG = "gamstore.fit/reference-3"


class LikelihoodKey:
    """The warm-start layer's view of a family: its name and a fingerprint of the
    likelihood inputs that are not in the block specs (response and prior weights)."""

    #: it can always fingerprint its likelihood (from the fit's input key, else by hashing
    #: its arrays), so the cross-fit transfer's gate does not derive the fingerprint (and the
    #: input key behind it) for a fit that never saves (gamstore.warmstart.artifacts)
    warm_start_keyable = True

    def __init__(self, prob: Problem, digest: str | None = None) -> None:
        self._prob = prob
        # the inputs are fixed: hash them once per fit; a fit keyed by its inputs passes the
        # fingerprint derived from its input key (which covers response, weights and link),
        # or sets ``digest_of`` to derive it on first use
        self._digest: str | None = digest
        self.digest_of: Callable[[], str | None] | None = None

    @property
    def name(self) -> str:
        """Family kind: the name, with the link unless it is the canonical link of gaussian,
        poisson or binomial (so their keys are unchanged): ``"Gamma(log)"`` and
        ``"Gamma(inverse)"`` are different descriptors and never share a cross-fit artifact."""
        return self._prob.family.kind

    def warm_start_fingerprint(self, specs: Sequence[BlockSpec], options: FitOptions) -> str:
        """64-hex digest of (response, weights, link, fitter)."""
        from gamstore.warmstart.keys import likelihood_fingerprint

        if self._digest is None and self.digest_of is not None:
            self._digest = self.digest_of()
            self.digest_of = None
        if self._digest is None:
            fam = self._prob.family
            d = self._prob.design
            arrays: dict[str, np.ndarray | None] = {"y": self._prob.y, "weights": self._prob.wt}
            scalars: dict[str, str | int | float | bool | None] = {
                "link": fam.link,
                "fitter": FITTER_TAG,
            }
            # only when present, so the keys of complete numeric data are unchanged: the rows
            # omitted for missing values and the factor levels/contrasts (the reference level)
            if d.dropped.size:
                arrays["na_dropped"] = d.dropped.astype(np.float64)
            if d.has_factors:
                from gamstore._json import dumps

                scalars["parametric"] = dumps(
                    {"contrasts": "treatment", "terms": [t.spec() for t in d.linear]}
                )
            self._digest = likelihood_fingerprint(fam.name, arrays, scalars)
        return self._digest


@functools.cache
def _transport_config() -> Any:
    """The cross-fit transfer's configuration (exact transport across the fold's constraint)."""
    from gamstore.transfer import TransferConfig

    return TransferConfig(mode="transport")


def block_specs(prob: Problem) -> list[BlockSpec]:
    """One BlockSpec per block, in the solver's working coordinates (diagonal penalties)."""
    from gamstore.warmstart.specs import BlockSpec, DensePenalty, DiagonalPenalty

    d = prob.design
    X: np.ndarray | None = d.X if d.has_matrix or d.lazy is None else None
    if X is None:
        # a design from moments (its X not formed): the specs carry the shape only, a
        # broadcast zero (no memory). Their designs are hashed only by a store key of the
        # built design (block_key), which a fit without its input key never gets from
        # these specs (WarmContext forms X first).
        X = np.broadcast_to(np.zeros(()), (d.n, d.p))
    name0 = d.block_names[0]
    if d.has_factors:
        # factor levels and contrasts are part of the structure: a fit with another reference
        # level must not even be a cross-fit parent (same widths, different columns)
        name0 = f"{name0}[{','.join(d.param_labels)}]"
    specs = [
        BlockSpec(
            name0,
            X[:, d.block_cols[0]],
            offset=prob.offset,
            penalties=(),
            nullspace_dims=(),
        )
    ]
    for b, js in zip(d.smooths, d.block_slots(), strict=True):
        width = b.cols.stop - b.cols.start
        # a basis other than the P-spline is part of the block's identity (ps keys unchanged):
        # a cr fit never takes a ps fit's artifact as its cross-fit parent
        name = b.label if b.spec.bs in ("ps", "re") else f"{b.label}[bs={b.spec.bs}]"
        # a tensor product: one dense penalty per margin (working basis), one ρ each
        pens: tuple[Any, ...] = (
            tuple(DensePenalty(P) for P in b.pens) if b.pens else (DiagonalPenalty(b.eig),)
        )
        specs.append(
            BlockSpec(
                name,
                X[:, b.cols],
                penalties=pens,
                nullspace_dims=(width - b.rank,) * len(pens),
                initial_log_lambdas=d.initial_rho[js[0] : js[-1] + 1],
            )
        )
    return specs


# the last control seen and its options: a model fits every fold with the same (frozen)
# control object, so the options are derived once per model, not once per fit
_options_memo: tuple[NewtonControl, FitOptions] | None = None


def fit_options(control: NewtonControl) -> FitOptions:
    """Every optimum-changing setting of the fitter, for the keys."""
    global _options_memo
    memo = _options_memo
    if memo is not None and memo[0] is control:  # identity: == would conflate 0.0 and -0.0
        return memo[1]
    options = _fit_options(control)
    _options_memo = (control, options)
    return options


def _fit_options(control: NewtonControl) -> FitOptions:
    from gamstore.warmstart.specs import FitOptions

    return FitOptions(
        inner_max_cycles=100,
        inner_tol=control.pirls_tol,
        outer_max_iter=control.max_iter,
        outer_tol=control.conv_tol,
        use_reml=True,
        use_outer_hessian=True,
        compute_covariance=False,
        # every control field: a new stopping rule or tolerance must never match records
        # written under another one (the seed's #1048 lesson, keys = data + spec + options)
        extra=(
            ("fitter", FITTER_TAG),
            *((f.name, repr(getattr(control, f.name))) for f in dataclasses.fields(control)),
        ),
    )


def gauge_blocks(d: Design) -> list[np.ndarray]:
    """Per block ``T_b`` of :func:`gauge_of` (read-only): identity, then ``T U`` per smooth."""
    width0 = d.block_cols[0].stop - d.block_cols[0].start
    blocks = [np.eye(width0)] + [b.basis.T @ b.U for b in d.smooths]
    for t in blocks:
        t.flags.writeable = False  # shared as is by the gauge and the transfer contexts
    return blocks


def gauge_of(d: Design) -> Any:
    """Block-diagonal gauge ``raw = T U beta_working`` (identity on the parametric block)."""
    from gamstore.gauge import Gauge

    return Gauge.block_diagonal(gauge_blocks(d))


def basis_metas(d: Design) -> list[Any]:
    """Per block: the basis description (kind, knots, S.scale) or None."""
    from gamstore.artifact import BasisMeta

    metas: list[Any] = [None]
    for b in d.smooths:
        if not b.has_knots:  # a random effect: no knots
            metas.append(None)
            continue
        kind = b.basis.kind
        metas.append(
            BasisMeta(
                kind=kind,
                degree=3 if kind in ("ps", "cr", "cc", "cp") else None,
                num_knots=int(b.basis.knots.size),
                knots=b.basis.knots,
                s_scale=float(b.basis.S_scale),
                penalty_order=2,
                periodic=kind in ("cc", "cp"),
            )
        )
    return metas


def split_beta(d: Design, beta_w: np.ndarray) -> list[np.ndarray]:
    """Flat working-basis β -> per-block arrays."""
    return [np.array(beta_w[cols]) for cols in d.block_cols]


LEVEL_KINDS = ("re", "by-factor")


def structure_descriptor(family_kind: str, d: Design, specs: Sequence[BlockSpec]) -> Any:
    """The artifact key of a design whose blocks change with the levels present, or None.

    A random effect's width, a factor ``by``'s blocks and a parametric factor's contrasts
    depend on which levels the rows contain, so a LOSO fold that drops a subject can have
    other blocks than the full-data fit, and another descriptor. Such a design stores and
    finds its cross-fit artifacts under this descriptor instead: every such term is named
    once, without its levels (``s(g)[re]``, ``s(x):f[by]``, ``(parametric)[f[ref=A],z]``), every
    other block keeps its identity. The transfer then matches block by block
    (:func:`gamstore.transfer.build_partial_warm_start`): what has the parent's identity is
    transferred, the changed blocks start cold. None (the plain descriptor) for a design
    without factors.
    """
    from gamstore.artifact import FitDescriptor, ResponseSig, TermRole, term_identity_from_block
    from gamstore.warmstart.artifacts import block_term_identity

    levels = [
        b.extra is not None and (b.extra.kind in LEVEL_KINDS or b.extra.by_factor)
        for b in d.smooths
    ]
    if not any(levels) and not d.has_factors:
        return None

    def named(name: str) -> Any:
        return term_identity_from_block(TermRole.GENERIC, name, [], [], 0)

    # a parametric factor by its name and its reference level: a fold that lacks another
    # level shares the key (that block then starts cold), another reference level does not
    # (other columns of the same width: not even a cross-fit parent)
    par = [t.name if t.levels is None else f"{t.name}[ref={t.spec()[1][0]}]" for t in d.linear]
    idents = [named(f"(parametric)[{','.join(par)}]")]
    seen: set[str] = set()
    for spec, b, lv in zip(specs[1:], d.smooths, levels, strict=True):
        if not lv:
            idents.append(block_term_identity(spec))
            continue
        assert b.extra is not None
        name = f"{b.spec.label}[re]" if b.extra.kind == "re" else f"{b.spec.label}:{b.spec.by}[by]"
        if name not in seen:
            seen.add(name)
            idents.append(named(name))
    return FitDescriptor(
        family_kind=family_kind,
        term_identities=tuple(idents),
        response_signature=ResponseSig(family_kind, 1),
    )


class WarmContext:
    """The fitter's side of one fit against one store: the design-specific inputs of the
    warm-start orchestrator (:class:`gamstore.warmstart.plan.FitWarmStart`), which owns the
    store, the keys and the lookup order."""

    def __init__(
        self,
        prob: Problem,
        store: Any,
        control: NewtonControl,
        key: str | Callable[[], str | None] | None = None,
        policy: Any = None,
        probe: ExactProbe | None = None,
    ) -> None:
        from gamstore.warmstart.keys import input_likelihood_fingerprint
        from gamstore.warmstart.plan import FitWarmStart

        self.prob = prob
        # key: the fit's block key from its inputs (gamstore.fit.inputkey), or a callable
        # deriving it on first use (a fit whose lookups and saves are skipped never hashes
        # its inputs); None keys the built design (block_key of the specs)
        d = prob.design
        if not d.has_matrix and d.lazy is not None:
            # a design from moments: its specs hold no design values, so the key must be
            # the input key; without one the design is keyed, and X formed for it
            if callable(key):
                from gamstore.warmstart.plan import KeyInputError

                try:
                    key = key()
                except ValueError as exc:  # as FitWarmStart.input_key reports it
                    raise KeyInputError(str(exc)) from exc
            if key is None:
                _ = d.X
        self.family = LikelihoodKey(prob)
        specs = block_specs(prob)
        self.plan = FitWarmStart(
            store,
            self.family,
            specs,
            fit_options(control),
            key=key,
            policy=policy,
            structure=structure_descriptor(self.family.name, prob.design, specs),
            probe=probe,
        )
        plan = self.plan

        def digest() -> str | None:
            k = plan.input_key
            return None if k is None else input_likelihood_fingerprint(k)

        self.family.digest_of = digest
        self.ws: WarmStartStore = self.plan.ws

    @property
    def key(self) -> str:
        """The fit's block key."""
        return self.plan.key

    @property
    def specs(self) -> list[BlockSpec]:
        """The fit's block specs (checked once by the orchestrator)."""
        return self.plan.specs

    @property
    def session(self) -> OuterSession:
        """The fit's outer session (opened on first use)."""
        return self.plan.session

    @property
    def p2o(self) -> list[int | None]:
        """Outer ρ index of every physical penalty."""
        return self.plan.p2o

    @property
    def checkpoints(self) -> int:
        """Session checkpoints written by this fit."""
        return self.plan.checkpoints

    # the gauge serves only the artifact capture: an exact hit never builds it
    @cached_property
    def gauge(self) -> Any:
        """The fit's gauge (see :func:`gauge_of`)."""
        return gauge_of(self.prob.design)

    def find_start(self) -> BlockWarmStart | None:
        """Exact record, then exact session, then cross-fit artifact, then seed session."""
        return self.plan.find(self.prob.design.initial_rho, self._cross_fit)

    def _cross_fit(self) -> BlockWarmStart | None:
        d = self.prob.design
        if d.n_sp == 0:
            return None
        # the artifact's β is in the parent's raw B-spline coordinates: it transfers only
        # when the knots are the same (frozen); otherwise ρ only
        return self.plan.cross_fit(
            d.initial_rho,
            gauge_blocks(d),  # the gauge's diagonal slabs, without building the full gauge
            config=_transport_config(),
            # exact transport shifts a block along its constant direction into the
            # intercept: only a plain centred smooth has that direction (a by-level's is
            # its level's indicator, a random effect has none)
            column_means=[None]
            + [b.basis.col_means if b.extra is None else None for b in d.smooths],
            intercept_column=0,
            beta_transfers=self._same_knots,
        )

    def _same_knots(self, parent: Any) -> bool:
        d = self.prob.design
        terms = list(getattr(parent, "terms", ()))
        if self.plan.structure is not None:
            # blocks may differ from the parent's: compare the knots of the blocks that match
            # a parent term (the others start cold anyway)
            by_id = {t.identity: t for t in terms}
            ids = self.plan.descriptor.term_identities
            found = [(by_id.get(ids[i + 1]), b) for i, b in enumerate(d.smooths)]
            pairs: list[tuple[Any, Any]] = [(t, b) for t, b in found if t is not None]
        elif len(terms) != len(d.block_cols):
            return False
        else:
            pairs = list(zip(terms[1:], d.smooths, strict=True))
        for term, b in pairs:
            if not b.has_knots:
                if getattr(term, "basis_meta", None) is not None:
                    return False
                continue
            parts = None if b.extra is None else b.extra.tensor
            if parts is not None and not all(m.same_coordinates_as_knots for m in parts.margins):
                return False  # a tp margin: centred and scaled on each fit's rows, ρ only
            if b.basis.impl is not None and not b.basis.impl.same_coordinates_as_knots:
                return False  # tp: centred and scaled on each fit's rows, ρ only
            knots = getattr(term.basis_meta, "knots", None)
            if knots is None or np.shape(knots) != b.basis.knots.shape:
                return False
            # |Δ| <= 1e-12 everywhere (a NaN compares False)
            if not float(np.abs(np.asarray(knots) - b.basis.knots).max()) <= 1e-12:
                return False
        return True

    def checkpoint(self, it: Iterate) -> None:
        """Rate-limited session checkpoint of an accepted outer iterate."""
        self.plan.checkpoint(it.rho, it.beta, it.score, ext=it.ext)

    def save(
        self,
        start: BlockWarmStart | None,
        nres: Any,
        result: Callable[[], ResultSummary | None] | None = None,
    ) -> None:
        """Hand the outcome to the orchestrator (it decides what is worth writing);
        ``result`` builds the summary kept with the block record (converged fits)."""
        from gamstore.records import InnerSummary

        final = nres.final
        if not self.ws.writable:
            return  # read-only or disabled store: do not build records nobody can save

        def inner() -> InnerSummary | None:
            # built only when a block record is written (never for an exact recertification)
            try:
                return InnerSummary.persistable(
                    log_likelihood=float(final.loglik),
                    penalty_value=float(final.fit.penalty),
                    cycles=int(final.fit.iterations),
                    converged=bool(final.fit.converged),
                    block_logdet_h=float(final.logdet_h),
                    block_logdet_s=float(final.logdet_s),
                    solved_inner_tol=self.plan.options.inner_tol,
                )
            except (TypeError, ValueError) as exc:
                logger.debug("inner summary not persisted: %s", exc)
                return None

        self.plan.finish(
            start,
            rho=final.rho,
            beta=final.fit.beta,
            score=final.score,
            n_outer=nres.n_outer,
            converged=nres.converged,
            separated=bool(getattr(nres, "separated", False)),
            inner=inner,
            hessian=final.hess,
            gauge=lambda: self.gauge,
            basis_metas=lambda: basis_metas(self.prob.design),
            saturation_threshold=RHO_BOUND,  # our box; the seed's 9 would drop real optima
            ext=getattr(nres, "ext", None),  # nb: [log theta], stored with rho
            result=result,
        )


def fit_with_store(
    model: GAM,
    prob: Problem,
    off_col: str | None,
    store: Any,
    t0: float,
    inner_cap: InnerCap | None,
    on_iterate: OnIterate | None,
    *,
    key: str | Callable[[], str | None] | None = None,
    policy: Any = None,
    probe: ExactProbe | None = None,
) -> FitResult:
    """Fit with warm starts from ``store`` (see the module docstring).

    ``key`` is the fit's block key from its inputs (:func:`gamstore.fit.inputkey.fit_key`);
    None keys the built design instead. ``probe``: the exact record was already looked up
    before the design was built (:func:`answer_exact`).

    Raises
    ------
    TypeError
        When ``store`` is not a store, URL or path (a configuration error, not a warm-start
        problem: it is raised, never turned into a cold fit).
    """
    from gamstore.warmstart.capability import warm_store
    from gamstore.warmstart.keys import UnsupportedFamilyError
    from gamstore.warmstart.plan import KeyInputError

    store = warm_store(store)  # resolves (memoized) or raises TypeError naming ``store``
    d = prob.design
    ctx: WarmContext | None = None
    start: BlockWarmStart | None = None
    skipped = _lookup_skipped(store, prob, policy)
    if skipped is not None:
        # the policy skips every lookup (the store has been slower than the fit, or the caller
        # knows no start can pay, e.g. a LOSO fold its start check would refit cold): fit
        # cold, and build the warm-start context only if the fit turns out worth saving
        if probe is not None:  # its read (if any) was this fit's lookup phase
            probe.learn(family_tag(prob))
            if probe.probed:
                _observe_probe(store, probe, policy)
        return _fit_without_lookups(
            model, prob, off_col, store, t0, inner_cap, on_iterate, key, policy, skipped
        )
    try:
        ctx = WarmContext(prob, store, model.control, key, policy, probe)
        start = ctx.find_start()
    except UnsupportedFamilyError:
        raise  # the one documented configuration error
    except KeyInputError:
        raise  # the caller's key inputs (e.g. row-block digests) do not describe the data
    except Exception as exc:  # a warm-start problem never fails a fit
        logger.info("warm start unavailable (%s: %s); fitting cold", type(exc).__name__, exc)
        ctx, start = None, None
    level = "cold" if start is None else start.source
    if start is not None:
        logger.debug("warm start level %s", level)

    cached = None if start is None else start.cached_inner
    cap_state = None
    if cached is not None:
        from gamstore.warmstart.inner_cap import InnerCap as SeedInnerCap

        cap_state = SeedInnerCap(full_budget=100)
        cap_state.update(int(cached.cycles), bool(cached.converged))

    def cap(i: int) -> int | None:
        caps = [c for c in (inner_cap(i) if inner_cap else None, cap_state and cap_state.cap) if c]
        return min(caps) if caps else None

    last_checkpoint = t0

    def iterate(it: Iterate) -> None:
        nonlocal last_checkpoint
        if cap_state is not None and cached is not None:
            cap_state.update(
                int(cached.cycles), bool(cached.converged), float(np.abs(it.grad).max())
            )
        # checkpoint accepted steps of fits long enough to be worth resuming; a fit of a few
        # milliseconds is cheaper to redo than to checkpoint (it is still finalized)
        now = time.perf_counter()
        if (
            ctx is not None
            and it.iteration > 0
            and now - last_checkpoint >= model.checkpoint_interval
        ):
            last_checkpoint = now
            try:
                ctx.checkpoint(it)
            except Exception as exc:  # pragma: no cover - the layer is best-effort already
                logger.debug("session checkpoint failed: %s", exc)
        if on_iterate is not None:
            on_iterate(it)

    rho0 = d.initial_rho.copy() if start is None else start.rho
    beta0 = None if start is None else start.flat_beta()
    if beta0 is not None and (beta0.shape != (d.p,) or not np.isfinite(beta0).all()):
        beta0 = None
    # the cost model's clock (a test injects its own): the policy's numbers stay deterministic
    clock = ctx.plan.costs.clock if ctx is not None else time.perf_counter
    t_run = clock()
    # a stored extended-family parameter (nb: log theta) starts its search like rho
    ext0 = None if start is None else start.ext
    if ext0 is not None and (np.shape(ext0) != (prob.family.n_ext,) or not np.isfinite(ext0).all()):
        ext0 = None
    nres = model.run(prob, rho0, beta0, inner_cap=cap, on_iterate=iterate, ext0=ext0)
    runs = [nres]

    def run_cold() -> NewtonResult:
        runs.append(model.run(prob, d.initial_rho.copy(), None, inner_cap=inner_cap))
        return runs[-1]

    def tail_probe(j: int, f: float) -> float:
        # REML at the warm optimum with rho_j moved the share f back to the cold start
        rho = np.asarray(nres.final.rho, dtype=np.float64).copy()
        rho[j] += f * (float(d.initial_rho[j]) - rho[j])
        at = nres.prob if nres.prob is not None else prob
        return float(evaluate(at, rho, nres.final.fit.beta, hessian=False).score)

    kept, check = check_start(
        model.start_check,
        "session-seed" if start is not None and start.seed else level,
        nres,
        rho0,
        d.n,
        None if start is None else start.parent_rows,
        run_cold,
        tail_probe,
    )
    if check.cold_checked:
        logger.info(
            "%s start checked cold (%s): REML warm %.10g, cold %.10g%s",
            level,
            ",".join(check.reasons),
            check.warm_reml,
            check.cold_reml,
            "; they disagree, keeping the lower" if check.disagree else "",
        )
    # the run not kept is work this fit did all the same
    extra_calls = sum(r.n_pirls_calls for r in runs if r is not kept)
    extra_iters = sum(r.n_pirls_iters for r in runs if r is not kept)
    fit_seconds = clock() - t_run
    res = model.make_result(
        prob,
        off_col,
        kept,
        level,
        t0,
        extra_calls=extra_calls,
        extra_iters=extra_iters,
        start_check=check,
    )
    if ctx is not None:
        # the outer loop(s) only: what a warm start can shorten, and what a save must beat
        # the fit's own state (an exact record, an exact-key session) needs few or no Newton
        # steps and is never checked: timed apart from starts from another fit
        own = start is not None and level in ("exact", "session") and not start.seed
        ctx.plan.observe_fit(fit_seconds, start is None, own)
        ctx.save(start, kept, functools.partial(result_summary, res, kept))
        res.wall_time = time.perf_counter() - t0  # the writes are part of the fit
    res.warm_decision = ctx.plan.explain() if ctx is not None else "warm start unavailable"
    return res


def result_summary(res: FitResult, nres: NewtonResult) -> ResultSummary | None:
    """What an exact refit needs to answer from the record: REML, scale, edf per block and
    the data-determined warnings of a converged fit (None for any other fit; never raises).
    """
    from gamstore.records import ResultSummary

    if not nres.converged or nres.separated or res.ext is not None:
        return None
    try:
        own = [w for w in res.warnings if not any(w is n for n in nres.notes)]
        labels = list(res.edf)
        return ResultSummary(
            reml=float(res.reml),
            scale=float(res.scale),
            reml_scale=float(res.reml_scale),
            block_labels=tuple(labels),
            edf=np.array([res.edf[b] for b in labels], dtype=np.float64),
            warning_kinds=tuple(type(w).__name__ for w in own),
            warning_messages=tuple(str(w) for w in own),
        )
    except (TypeError, ValueError) as exc:  # e.g. a non-finite value: no summary
        logger.debug("result summary not persisted: %s", exc)
        return None


def _warning_of(kind: str, message: str) -> Any:
    from gamstore.fit import diagnostics

    classes = {c.__name__: c for c in diagnostics.WARNING_CLASSES}
    return classes.get(kind, diagnostics.GamFitWarning)(message)


def answer_exact(
    model: GAM,
    store: Any,
    key: str | Callable[[], str | None],
    inputs: tuple[Any, ...],
    t0: float,
    policy: Any,
    mode: str,
    *,
    verify: Callable[[], str | None] | None = None,
) -> tuple[FitResult | None, ExactProbe | None]:
    """An exact refit answered from its block record, before the design is built.

    ``inputs`` are ``GAM.prepare``'s arguments (data, y, weights, offset, knots, raw_rows);
    ``key`` the fit's input key (or the callable deriving it). ``mode``: ``"lazy"`` (ρ, β,
    REML, scale, edf and warnings from the record; the design and everything derived from it
    on first read) or ``"eager"`` (the design built and every field computed from it at the
    stored ρ and β now: the reference the lazy result equals).

    Returns the result (None: no answerable record, the fit goes on) and the probe (None:
    no probe was made), which the fit hands to its orchestrator. Never raises for a
    warm-start problem: any failure here is "no answer". ``verify`` (the key callable when
    the key hashes the data): a lazy result re-derives the key before it reads the data
    again, and refuses data changed in place since the fit.
    """
    from gamstore.fit.data import n_rows
    from gamstore.warmstart.capability import warm_store
    from gamstore.warmstart.plan import ExactProbe

    try:
        ws = warm_store(store)
        if ws is None:
            return None, None
        probe = ExactProbe(ws, repr(model), n_rows(inputs[0]), key, policy=policy)
        try:
            record = probe.find()
        except ValueError:  # the caller's key inputs: the fit itself raises them in order
            return None, None
    except Exception as exc:  # a warm-start problem never fails a fit
        logger.info("exact probe unavailable (%s: %s)", type(exc).__name__, exc)
        return None, None
    if record is None:
        return None, probe
    try:
        res = _exact_result(
            model, record, inputs, t0, mode == "eager", verify=verify, key=probe.key
        )
    except Exception as exc:  # the record does not fit this data after all: fit as usual
        logger.info(
            "exact record %s not usable (%s: %s); fitting", probe.key, type(exc).__name__, exc
        )
        return None, probe
    probe.decisions.append(
        "exact record answered the fit"
        + (" (design built on first use)" if res.deferred else " (design built)")
    )
    res.warm_decision = probe.explain()
    probe.observe_hit()
    return res, probe


def _exact_parts(
    model: GAM, record: BlockWarmStartRecord, inputs: tuple[Any, ...], t0: float
) -> FitResult:
    """The full result at the record's ρ and β: the design built, one REML evaluation *at*
    β (no PIRLS step, no Newton step), every field computed from them."""
    from gamstore.fit.newton import NewtonResult
    from gamstore.fit.reml import evaluate

    prob, off_col = model.prepare(*inputs)
    d = prob.design
    beta = np.concatenate([np.asarray(b, dtype=np.float64) for b in record.block_beta])
    rho = np.array(record.rho, dtype=np.float64)
    summary = record.result
    assert summary is not None
    if (
        beta.shape != (d.p,)
        or rho.shape != (d.n_sp,)
        or d.n != record.n_rows
        or tuple(d.block_names) != tuple(summary.block_labels)
    ):
        raise ValueError(
            f"the design (p={d.p}, {d.n_sp} smoothing parameters, n={d.n}) does not match "
            f"the record (p={beta.size}, {rho.size}, n={record.n_rows})"
        )
    fin = evaluate(prob, rho, beta, hessian=False, at_beta=True)
    nres = NewtonResult(fin, 0, 0, 0, True)
    return model.make_result(prob, off_col, nres, "exact", t0, emit=False)


def _exact_result(
    model: GAM,
    record: BlockWarmStartRecord,
    inputs: tuple[Any, ...],
    t0: float,
    eager: bool,
    *,
    verify: Callable[[], str | None] | None = None,
    key: str | None = None,
) -> FitResult:
    from gamstore.fit import diagnostics
    from gamstore.fit.data import n_rows
    from gamstore.fit.model import DEFERRED_FIELDS, FitResult
    from gamstore.fit.startcheck import StartCheck

    summary = record.result
    assert summary is not None
    data, y, weights, offset = inputs[:4]
    kept = n_rows(data)
    if model.na_action == "omit":
        bad = model.complete_rows(data, y, weights, offset)
        kept -= 0 if bad is None else int(bad.size)
    if kept != record.n_rows:
        raise ValueError(f"the data has {kept} complete rows, the record {record.n_rows}")
    rho = np.array(record.rho, dtype=np.float64)
    check = StartCheck("exact", rho.copy(), 0.0, float("nan"), warm_reml=float(summary.reml),
                       warm_rho=rho.copy())  # fmt: skip
    if eager:
        full = _exact_parts(model, record, inputs, t0)
        full.start_check = check
        diagnostics.emit(full.warnings, stacklevel=5)
        full.wall_time = time.perf_counter() - t0
        return full
    notes = [
        _warning_of(k, m)
        for k, m in zip(summary.warning_kinds, summary.warning_messages, strict=True)
    ]
    pending = {name: None for name in DEFERRED_FIELDS}
    res = FitResult(
        family=model.family.name,
        rho=rho,
        edf={b: float(e) for b, e in zip(summary.block_labels, summary.edf, strict=True)},
        reml=float(summary.reml),
        scale=float(summary.scale),
        n_outer=0,
        n_pirls_calls=0,
        n_pirls_iters=0,
        warm="exact",
        converged=True,
        wall_time=0.0,
        n=int(record.n_rows),
        model=model,
        _offset_column=inputs[3] if isinstance(inputs[3], str) else None,
        warnings=notes,
        start_check=check,
        reml_scale=float(summary.reml_scale),
        ext=None,
        **pending,  # type: ignore[arg-type]
    )
    for name in DEFERRED_FIELDS:
        del res.__dict__[name]

    def materialize(target: FitResult) -> None:
        if verify is not None and verify() != key:
            raise RuntimeError(
                "the data of this exact refit changed since the fit (its input key differs): "
                "the deferred fields (fitted values, coefficients, covariances) cannot be "
                "computed; refit, or fit with exact_hit='eager'"
            )
        full = _exact_parts(model, record, inputs, t0)
        # a LOSO fold fitted from moments defers its fitted values itself (formed from the
        # raw bases when read): its pending step is handed on, not computed here
        target.__dict__.update({n: full.__dict__[n] for n in DEFERRED_FIELDS if n in full.__dict__})
        target._problem, target._final = full._problem, full._final
        target.__dict__["_pending"] = full.__dict__.get("_pending")

    res.__dict__["_pending"] = (materialize, threading.Lock())
    diagnostics.emit(notes, stacklevel=5)
    res.wall_time = time.perf_counter() - t0
    return res


def _observe_probe(store: Any, probe: ExactProbe, policy: Any) -> None:
    """Time the exact probe's read as the lookup phase of a fit that looks nothing else up
    (an absent store's: what the phase costs once the store exists, as the orchestrator)."""
    import gamstore.warmstart.plan as plan_mod
    from gamstore.warmstart.policy import as_policy

    rtt = getattr(store, "probe_seconds", None)
    absent = bool(getattr(store, "absent", False))
    seconds = plan_mod.LOOKUPS_PER_PHASE * rtt if absent and rtt is not None else probe.seconds
    plan_mod.COSTS.observe_lookup(store.url, seconds, as_policy(policy))


def _lookup_skipped(store: Any, prob: Problem, policy: Any) -> str | None:
    """Why the adaptive policy skips every lookup of this fit, decided before any warm-start
    state is built (None: look up, or the policy is "always"; the orchestrator then decides
    again, the same way, and explains it)."""
    import gamstore.warmstart.plan as plan_mod
    from gamstore.warmstart.policy import as_policy, current_hint

    pol = as_policy(policy)
    if pol.mode != "adaptive":
        return None
    d = plan_mod.COSTS.lookup_decision(
        pol, store.url, family_tag(prob), prob.design.n, current_hint()
    )
    return None if d.go else d.reason


def _fit_without_lookups(
    model: GAM,
    prob: Problem,
    off_col: str | None,
    store: Any,
    t0: float,
    inner_cap: InnerCap | None,
    on_iterate: OnIterate | None,
    key: str | Callable[[], str | None] | None,
    policy: Any,
    reason: str,
) -> FitResult:
    """A cold fit whose lookups the policy skips (``reason``): the same fit as without a
    store; the warm-start context (block specs, keys) is built only for a checkpoint or a
    save that the policy allows, so a fit that neither looks up nor saves costs what a fit
    without a store costs."""
    import gamstore.warmstart.plan as plan_mod
    from gamstore.warmstart.keys import UnsupportedFamilyError
    from gamstore.warmstart.plan import KeyInputError
    from gamstore.warmstart.policy import as_policy, current_hint

    d = prob.design
    costs = plan_mod.COSTS
    pol = as_policy(policy)
    ctx: WarmContext | None = None
    failed = False

    def context() -> WarmContext | None:
        nonlocal ctx, failed
        if ctx is None and not failed:
            try:
                ctx = WarmContext(prob, store, model.control, key, policy)
            except (UnsupportedFamilyError, KeyInputError):
                raise
            except Exception as exc:  # a warm-start problem never fails a fit
                logger.info("warm-start context unavailable (%s: %s)", type(exc).__name__, exc)
                failed = True
        return ctx

    last_checkpoint = t0

    def iterate(it: Iterate) -> None:
        nonlocal last_checkpoint
        now = time.perf_counter()
        if it.iteration > 0 and now - last_checkpoint >= model.checkpoint_interval:
            last_checkpoint = now
            c = context()
            if c is not None:
                try:
                    c.checkpoint(it)
                except Exception as exc:  # pragma: no cover - best-effort already
                    logger.debug("session checkpoint failed: %s", exc)
        if on_iterate is not None:
            on_iterate(it)

    clock = costs.clock
    t_run = clock()
    nres = model.run(prob, d.initial_rho.copy(), None, inner_cap=inner_cap, on_iterate=iterate)
    seconds = clock() - t_run
    kept, check = check_start(
        model.start_check, "cold", nres, d.initial_rho, d.n, None, lambda: nres
    )
    decisions = [reason]
    # the cost model's fit family, as the orchestrator names it (family, block names, widths)
    tag = family_tag(prob)
    costs.observe_fit(tag, d.n, seconds, pol)
    writable = bool(getattr(store, "writable", True))
    if writable and not getattr(nres, "separated", False):
        hint = current_hint()
        save = costs.save_decision(pol, store.url, seconds, in_run=hint is not None)
        # the artifact other fits of this run start from (a LOSO full-data fit in a new store)
        uses = 0 if hint is None or pol.mode != "adaptive" else int(hint.artifact_uses or 0)
        art = None
        if hint is not None and uses > 0:
            art = costs.artifact_decision(pol, store.url, tag, hint)
        if ctx is None and not save.go and not (art is not None and art.go):
            decisions.append(save.reason)
            if art is not None:
                decisions.append(art.reason)
            if hint is not None:
                hint.report.artifact = False
        else:
            c = context()
            if c is not None:
                c.plan.fit_seconds = float(seconds)
                c.save(None, kept)
                decisions += c.plan.decisions
    res = model.make_result(prob, off_col, kept, "cold", t0, start_check=check)
    res.warm_decision = "; ".join(decisions)
    return res


def family_tag(prob: Problem) -> str:
    """The cost model's fit family of ``prob`` without building its block specs: the same
    string as :attr:`gamstore.warmstart.plan.FitWarmStart.family_tag`."""
    d = prob.design
    names = [d.block_names[0]]
    if d.has_factors:
        names[0] = f"{names[0]}[{','.join(d.param_labels)}]"
    for b in d.smooths:
        names.append(b.label if b.spec.bs in ("ps", "re") else f"{b.label}[bs={b.spec.bs}]")
    widths = [c.stop - c.start for c in d.block_cols]
    return f"{prob.family.kind}|" + ",".join(f"{n}:{w}" for n, w in zip(names, widths, strict=True))
