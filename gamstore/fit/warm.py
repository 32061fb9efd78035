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

After the fit, what the next fit can use and does not already have is written (see
:func:`_save`): a fold seeded by a cross-fit artifact never overwrites its parent's artifact,
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
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
from gamstore.fit.reml import Problem
from gamstore.fit.startcheck import check_start

if TYPE_CHECKING:  # pragma: no cover
    from gamstore.fit.model import GAM, FitResult
    from gamstore.warmstart.blocks import BlockWarmStart
    from gamstore.warmstart.capability import WarmStartStore
    from gamstore.warmstart.sessions import OuterSession
    from gamstore.warmstart.specs import BlockSpec, FitOptions

logger = logging.getLogger("gamstore.fit.warm")

FITTER_TAG = "gamstore.fit/reference-2"  # bumped with the end-game stopping rule


class LikelihoodKey:
    """The warm-start layer's view of a family: its name and a fingerprint of the
    likelihood inputs that are not in the block specs (response and prior weights)."""

    def __init__(self, prob: Problem) -> None:
        self._prob = prob
        self._digest: str | None = None  # the inputs are fixed: hash them once per fit

    @property
    def name(self) -> str:
        """Family kind: the name, with the link unless it is the canonical link of gaussian,
        poisson or binomial (so their keys are unchanged): ``"Gamma(log)"`` and
        ``"Gamma(inverse)"`` are different descriptors and never share a cross-fit artifact."""
        return self._prob.family.kind

    def warm_start_fingerprint(self, specs: Sequence[BlockSpec], options: FitOptions) -> str:
        """64-hex digest of (response, weights, link, fitter)."""
        from gamstore.warmstart.keys import likelihood_fingerprint

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
    from gamstore.warmstart.specs import BlockSpec, DiagonalPenalty

    d = prob.design
    name0 = d.block_names[0]
    if d.has_factors:
        # factor levels and contrasts are part of the structure: a fit with another reference
        # level must not even be a cross-fit parent (same widths, different columns)
        name0 = f"{name0}[{','.join(d.param_labels)}]"
    specs = [
        BlockSpec(
            name0,
            d.X[:, d.block_cols[0]],
            offset=prob.offset,
            penalties=(),
            nullspace_dims=(),
        )
    ]
    for j, b in enumerate(d.smooths):
        width = b.cols.stop - b.cols.start
        # a basis other than the P-spline is part of the block's identity (ps keys unchanged):
        # a cr fit never takes a ps fit's artifact as its cross-fit parent
        name = b.spec.label if b.spec.bs == "ps" else f"{b.spec.label}[bs={b.spec.bs}]"
        specs.append(
            BlockSpec(
                name,
                d.X[:, b.cols],
                penalties=(DiagonalPenalty(b.eig),),
                nullspace_dims=(width - b.rank,),
                initial_log_lambdas=d.initial_rho[j : j + 1],
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


@dataclass
class Start:
    """Where the outer loop starts."""

    rho: np.ndarray
    beta: np.ndarray | None
    level: str  # "cold" | "exact" | "session" | "cross-fit"
    warm: BlockWarmStart | None = None
    final: bool = False  # resumed from a stored final (nothing new to finalize if no step)
    seed: bool = False  # a session of *another* fit of the same model (row-free seed key)
    parent_rows: int | None = None  # rows of the fit a cross-fit start came from


class WarmContext:
    """Keys and handles of one fit against one store."""

    def __init__(self, prob: Problem, store: Any, control: NewtonControl) -> None:
        from gamstore.warmstart.capability import warm_store

        self.prob = prob
        ws = warm_store(store)
        if ws is None:
            raise ValueError("store: expected a store, URL or path, got None")
        self.ws: WarmStartStore = ws
        self.family = LikelihoodKey(prob)
        self.specs = block_specs(prob)
        self.options = fit_options(control)
        self.key: str | None = None
        self._session: OuterSession | None = None
        self.checkpoints = 0

    # the gauge and ρ slots serve only the cross-fit transfer and the artifact capture: an
    # exact hit never builds them
    @cached_property
    def gauge(self) -> Any:
        """The fit's gauge (see :func:`gauge_of`)."""
        return gauge_of(self.prob.design)

    @cached_property
    def p2o(self) -> list[int | None]:
        """Outer ρ index of every physical penalty."""
        from gamstore.warmstart.specs import physical_to_outer

        return physical_to_outer(self.specs)

    @cached_property
    def descriptor(self) -> Any:
        """The fit's structural descriptor (cross-fit artifact key), derived once."""
        from gamstore.warmstart.artifacts import descriptor_for

        return descriptor_for(self.family, self.specs)

    @property
    def session(self) -> OuterSession:
        """The fit's outer session, opened on first use (an exact hit never needs it)."""
        from gamstore.warmstart.sessions import OuterSession

        if self._session is None:
            # no mirror on the row-free seed key: folds find their parent through the
            # cross-fit artifact (ρ and exactly transported β), which beats a ρ-only seed
            self._session = OuterSession.open(
                self.ws, self.family, self.specs, self.options, mirror=False, block_key=self.key
            )
        return self._session

    # -- lookups -----------------------------------------------------------------------------
    def _usable(self, rho: Any, betas: Sequence[Any] | None) -> bool:
        d = self.prob.design
        r = np.asarray(rho, dtype=np.float64)
        if r.shape != (d.n_sp,) or not np.isfinite(r).all():
            return False
        if betas is None:
            return True
        if len(betas) != len(d.block_cols):
            return False
        return all(
            np.asarray(b).shape == (c.stop - c.start,) and bool(np.isfinite(b).all())
            for b, c in zip(betas, d.block_cols, strict=True)
        )

    def find_start(self) -> Start:
        """Exact record, then exact session, then cross-fit artifact, then seed session."""
        from gamstore.warmstart.blocks import load_block_warm_start

        d = self.prob.design
        cold = Start(d.initial_rho.copy(), None, "cold")
        key, warm = load_block_warm_start(self.ws, self.family, self.specs, self.options, d.n_sp)
        self.key = key
        if warm is not None and self._usable(warm.rho, warm.block_beta):
            return Start(
                np.array(warm.rho, dtype=np.float64),
                np.concatenate([np.asarray(b, dtype=np.float64) for b in warm.block_beta]),
                "exact",
                warm,
            )
        start = self.session.begin(d.n_sp)
        seed_fallback: Start | None = None
        if start.warm and start.rho is not None and self._usable(start.rho, None):
            rho = np.array(start.rho, dtype=np.float64)
            beta = start.beta_for(start.rho) if start.source == "exact" else None
            if beta is not None and beta.shape != (d.p,):
                beta = None
            sess = Start(rho, beta, "session", final=start.kind == "exact-final")
            if start.source == "exact":
                return sess
            # another fit of the same model: ρ only, after cross-fit
            seed_fallback = dataclasses.replace(sess, seed=True)
        cross = self._cross_fit()
        if cross is not None:
            return cross
        return seed_fallback or cold

    def _cross_fit(self) -> Start | None:
        from gamstore.warmstart.artifacts import consume_loaded_artifact, load_fit_artifact

        d = self.prob.design
        if d.n_sp == 0:
            return None
        # the parent is read once: the transfer and the knot check below both use it
        parent = load_fit_artifact(self.ws, self.descriptor)
        if parent is None:
            return None
        means: list[Any] = [None] + [b.basis.col_means for b in d.smooths]
        # the gauge's diagonal slabs, without building the full gauge (only a capture needs it)
        warm = consume_loaded_artifact(
            self.ws,
            self.family,
            self.specs,
            gauge_blocks(d),
            self.p2o,
            d.initial_rho,
            options=self.options,
            config=_transport_config(),
            column_means=means,
            intercept_column=0,
            descriptor=self.descriptor,
            parent=parent,
        )
        if warm is None or not self._usable(warm.rho, warm.block_beta):
            return None
        beta: np.ndarray | None = np.concatenate(
            [np.asarray(b, dtype=np.float64) for b in warm.block_beta]
        )
        # the artifact's β is in the parent's raw B-spline coordinates: it transfers only when
        # the knots are the same (frozen); otherwise keep ρ only
        if not self._same_knots(parent):
            beta = None
        rows = getattr(getattr(parent, "global_", None), "n_rows", None)
        return Start(
            np.array(warm.rho, dtype=np.float64),
            beta,
            "cross-fit",
            warm,
            parent_rows=rows if isinstance(rows, int) else None,
        )

    def _same_knots(self, parent: Any) -> bool:
        d = self.prob.design
        terms = getattr(parent, "terms", ())
        if len(terms) != len(d.block_cols):
            return False
        for term, b in zip(terms[1:], d.smooths, strict=True):
            if b.basis.impl is not None and not b.basis.impl.same_coordinates_as_knots:
                return False  # tp: centred and scaled on each fit's rows, ρ only
            knots = getattr(term.basis_meta, "knots", None)
            if knots is None or np.shape(knots) != b.basis.knots.shape:
                return False
            # |Δ| <= 1e-12 everywhere (a NaN compares False)
            if not float(np.abs(np.asarray(knots) - b.basis.knots).max()) <= 1e-12:
                return False
        return True

    # -- progress and results -----------------------------------------------------------------
    def checkpoint(self, it: Iterate) -> None:
        """Rate-limited session checkpoint of an accepted outer iterate."""
        self.session.on_evaluation(it.rho, it.beta, it.score)
        self.checkpoints += 1

    def save(
        self,
        final: Any,
        n_outer: int,
        converged: bool,
        *,
        session: bool = True,
        artifact: bool = True,
    ) -> None:
        """Block record, and when asked the session final and the cross-fit artifact."""
        from gamstore.warmstart.artifacts import capture_fit_artifact
        from gamstore.warmstart.blocks import (
            BlockWarmStart,
            CachedInner,
            store_block_warm_start,
        )

        d = self.prob.design
        betas = split_beta(d, final.fit.beta)
        cached = CachedInner(
            log_likelihood=final.loglik,
            penalty_value=final.fit.penalty,
            cycles=final.fit.iterations,
            converged=final.fit.converged,
            block_logdet_h=final.logdet_h,
            block_logdet_s=final.logdet_s,
            solved_inner_tol=self.options.inner_tol,
        )
        store_block_warm_start(
            self.ws,
            self.key,
            self.specs,
            BlockWarmStart(final.rho.copy(), betas, [], cached),
            saturation_threshold=RHO_BOUND,  # our box; the seed's 9 would drop real optima
        )
        if session:
            self.session.finish(
                final.rho,
                final.fit.beta,
                final.score,
                converged,
                hessian=final.hess,
                beta_rho=final.rho,
                iterations=n_outer,
            )
        if converged and artifact:
            capture_fit_artifact(
                self.ws,
                self.family,
                self.specs,
                self.gauge,
                betas,
                final.rho,
                self.p2o,
                final.score,
                converged,
                options=self.options,
                basis_metas=basis_metas(d),
            )


def fit_with_store(
    model: GAM,
    prob: Problem,
    off_col: str | None,
    store: Any,
    t0: float,
    inner_cap: InnerCap | None,
    on_iterate: OnIterate | None,
) -> FitResult:
    """Fit with warm starts from ``store`` (see the module docstring).

    Raises
    ------
    TypeError
        When ``store`` is not a store, URL or path (a configuration error, not a warm-start
        problem: it is raised, never turned into a cold fit).
    """
    from gamstore.warmstart.capability import warm_store
    from gamstore.warmstart.keys import UnsupportedFamilyError

    warm_store(store)  # resolves (memoized) or raises TypeError naming ``store``
    try:
        ctx: WarmContext | None = WarmContext(prob, store, model.control)
        assert ctx is not None
        start = ctx.find_start()
    except UnsupportedFamilyError:
        raise  # the one documented configuration error
    except Exception as exc:  # a warm-start problem never fails a fit
        logger.info("warm start unavailable (%s: %s); fitting cold", type(exc).__name__, exc)
        ctx = None
        start = Start(prob.design.initial_rho.copy(), None, "cold")
    if start.level != "cold":
        logger.debug("warm start level %s", start.level)

    cap_state = None
    if start.warm is not None and start.warm.cached_inner is not None:
        from gamstore.warmstart.inner_cap import InnerCap as SeedInnerCap

        cap_state = SeedInnerCap(full_budget=100)
        cached = start.warm.cached_inner
        cap_state.update(int(cached.cycles), bool(cached.converged))

    def cap(i: int) -> int | None:
        caps = [c for c in (inner_cap(i) if inner_cap else None, cap_state and cap_state.cap) if c]
        return min(caps) if caps else None

    last_checkpoint = t0

    def iterate(it: Iterate) -> None:
        nonlocal last_checkpoint
        if cap_state is not None and start.warm is not None and start.warm.cached_inner:
            cached = start.warm.cached_inner
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

    beta0 = start.beta
    if beta0 is not None and (beta0.shape != (prob.design.p,) or not np.isfinite(beta0).all()):
        beta0 = None
    nres = model.run(prob, start.rho, beta0, inner_cap=cap, on_iterate=iterate)
    runs = [nres]

    def run_cold() -> NewtonResult:
        runs.append(model.run(prob, prob.design.initial_rho.copy(), None, inner_cap=inner_cap))
        return runs[-1]

    kept, check = check_start(
        model.start_check,
        "session-seed" if start.seed else start.level,
        nres,
        start.rho,
        prob.design.n,
        start.parent_rows,
        run_cold,
    )
    if check.cold_checked:
        logger.info(
            "%s start checked cold (%s): REML warm %.10g, cold %.10g%s",
            start.level,
            ",".join(check.reasons),
            check.warm_reml,
            check.cold_reml,
            "; they disagree, keeping the lower" if check.disagree else "",
        )
    # the run not kept is work this fit did all the same
    extra_calls = sum(r.n_pirls_calls for r in runs if r is not kept)
    extra_iters = sum(r.n_pirls_iters for r in runs if r is not kept)
    if ctx is not None:
        _save(ctx, start, kept)
    return model.make_result(
        prob,
        off_col,
        kept,
        start.level,
        t0,
        extra_calls=extra_calls,
        extra_iters=extra_iters,
        start_check=check,
    )


def _save(ctx: WarmContext, start: Start, nres: Any) -> None:
    """Write what the next fit can use, and nothing it already has.

    * cold, or a warm start that needed Newton steps: block record, session final, artifact;
    * exact hit recertified without a step: nothing;
    * resumed from a session final without a step: the block record only;
    * a fold seeded by a cross-fit artifact: block record, plus the session final only if
      the fit checkpointed (long fits); never the artifact, so every fold keeps transferring
      from the full-data fit rather than from another fold.
    * a completely separated fit (``nres.separated``): nothing.
    """
    stepped = nres.n_outer > 0
    if start.level == "exact" and not stepped:
        return
    if getattr(nres, "separated", False):
        # no finite optimum to resume: PIRLS started from this beta goes on towards the
        # separation and returns another REML (faithful: -28.877 vs the cold -28.278), so
        # store nothing and every refit is the cold fit
        return
    if not ctx.ws.writable:
        return  # read-only or disabled store: do not build records nobody can save
    session = not (start.level == "session" and start.final and not stepped)
    artifact = session
    if start.level == "cross-fit":
        session = ctx.checkpoints > 0
        artifact = False
    try:
        ctx.save(nres.final, nres.n_outer, nres.converged, session=session, artifact=artifact)
    except Exception as exc:
        logger.info("warm-start save failed (%s: %s)", type(exc).__name__, exc)
