"""One LOSO fold: what a worker receives, what it sends back, and the code it runs.

Everything here is picklable and importable in a fresh (spawned) interpreter. Workers never
receive a live store: they get its :class:`~gamstore.store.StoreSpec` (URL, ``storage_options``,
settings) and open the store themselves, once per process, because fsspec/s3fs filesystems
are not fork-safe.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gamstore.loso.deviance import deviance, family_name
from gamstore.store.spec import StoreSpec
from gamstore.warmstart.policy import fit_hint

__all__ = ["STATUS_FAILED", "STATUS_OK", "FoldOutcome", "FoldTask", "StoreSpec", "run_fold"]

logger = logging.getLogger("gamstore.loso")

STATUS_OK = "ok"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class FoldTask:
    """One fit of one fold.

    ``mode`` is ``"warm"`` (fit with the store, so the fitter may start from the full-data
    fit) or ``"cold"`` (no store: the fitter's heuristic ``initial.sp`` start).
    """

    subject: Any
    mode: str
    y: Any  # a response column, or binomial (successes, trials) columns
    subject_column: str
    knots: dict[str, np.ndarray] | None
    store: StoreSpec | None
    family: str
    attempt: int = 1
    weights: str | None = None
    offset: str | None = None
    run_id: str = ""  # provenance: the LOSO run every entry this fold saves belongs to
    #: read the fold's raw basis rows from the full data's (gamstore.fit.foldview) instead
    #: of evaluating them: the same design; False is the plain rebuild (the reference path)
    reuse_design: bool = True
    #: the subjects in canonical order (gamstore.fit.inputkey): the fold fits the remaining
    #: subjects' rows in this order, each subject's rows in data order; None: data order
    order: tuple[Any, ...] | None = None
    #: digests of the full data per subject (GAM.row_block_digests); the fold's store key is
    #: derived from them minus the held-out subject, without hashing a row
    row_blocks: Any = None
    #: what the run knows about this fold's warm start before fitting it
    #: (gamstore.warmstart.policy.FitHint, e.g. its start check will refit it cold)
    hint: Any = None


@dataclass
class FoldOutcome:
    """What one fold fit reports back (plain numbers and strings, cheap to pickle)."""

    subject: Any
    mode: str
    status: str = STATUS_FAILED
    error: str = ""
    attempts: int = 1
    rho: np.ndarray = field(default_factory=lambda: np.empty(0))
    edf: dict[str, float] = field(default_factory=dict)
    #: one name per entry of ``rho`` (``FitResult.rho_names``; empty when the fitter has none)
    rho_names: list[str] = field(default_factory=list)
    reml: float = float("nan")
    scale: float = float("nan")
    #: negative binomial theta of the fold's fit (its held-out rows are scored at it); NaN
    #: for the other families
    theta: float = float("nan")
    #: Tweedie power p of the fold's fit (its held-out rows are scored at it and at the
    #: fold's scale); NaN for the other families
    power: float = float("nan")
    n_outer: int = -1
    n_pirls_calls: int = -1
    n_pirls_iters: int = -1
    wall_time: float = float("nan")
    cpu_time: float = float("nan")
    warm_source: str = ""
    warm_decision: str = ""
    converged: bool = False
    heldout_deviance: float = float("nan")
    heldout_n: int = 0
    train_n: int = 0
    worker: str = ""
    #: per held-out row (positions in the LOSO data): predictions on the link and response
    #: scales with standard errors (NaN where the fitter gives none)
    heldout_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pred_link: np.ndarray = field(default_factory=lambda: np.empty(0))
    pred_response: np.ndarray = field(default_factory=lambda: np.empty(0))
    se_link: np.ndarray = field(default_factory=lambda: np.empty(0))
    se_response: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: the failure may heal on a retry (I/O, network, timeout, a lost worker); a
    #: deterministic error (bad data, an unidentifiable term) is reported at once
    retryable: bool = False
    # the start check (gamstore.fit.startcheck) and the fit's warnings
    rho_moved: float = float("nan")
    cold_checked: bool = False
    check_reasons: str = ""
    start_disagree: bool = False
    warm_reml: float = float("nan")
    cold_check_reml: float = float("nan")
    kept: str = ""
    fit_warnings: str = ""

    @property
    def ok(self) -> bool:
        """True when the fold fit and scored without error."""
        return self.status == STATUS_OK


# per-process caches: a store is opened once per worker, the shared data set once per pool
_STORES: dict[tuple[Any, ...], Any] = {}
_WORKER_STATE: dict[str, Any] = {}


def open_worker_store(spec: StoreSpec) -> Any:
    """Open (once per process) the store a worker writes to."""
    key = spec.cache_key()
    store = _STORES.get(key)
    if store is None:
        store = spec.open()
        _STORES[key] = store
    return store


def _worker_store_or_none(task: FoldTask) -> Any:
    """The worker's store, or None (a cold fit) when it cannot be opened here.

    As for the parent's store in :func:`~gamstore.loso.run_loso`: an unreachable cache
    never fails a fit, the fold runs without it (``warm_source`` says so) and a warning
    names the reason.
    """
    assert task.store is not None
    try:
        return open_worker_store(task.store)
    except Exception as exc:  # noqa: BLE001 - any failure to open means "no cache"
        logger.warning(
            "LOSO fold %r: store %s unavailable in worker %s (%s: %s); fitting without it",
            task.subject,
            task.store.url,
            _worker_label(),
            type(exc).__name__,
            exc,
        )
        return None


def _worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry can cure: I/O and network failures, timeouts.

    ``OSError`` covers the store's :class:`~gamstore.store.StoreError`, connection resets
    and ``TimeoutError``; a refused permission (a read-only store included) will not change
    on a retry. botocore's connection errors are not ``OSError`` subclasses.
    """
    if isinstance(exc, PermissionError):
        return False
    if isinstance(exc, OSError):
        return True
    botocore = sys.modules.get("botocore.exceptions")  # only if S3 is in use at all
    if botocore is not None:
        kinds = tuple(
            getattr(botocore, n)
            for n in ("ConnectionError", "HTTPClientError")
            if hasattr(botocore, n)
        )
        return bool(kinds) and isinstance(exc, kinds)
    return False


def model_columns(model: Any) -> list[tuple[str, str]]:
    """(term label, covariate column) of every smooth and linear term the model declares."""
    out = []
    for sm in getattr(model, "smooths", ()) or ():
        label = getattr(sm, "label", None)
        # a tensor product's margins, else the covariate; and a by variable
        cols = getattr(sm, "margins", ()) or (getattr(sm, "term", None),)
        for term in (*cols, getattr(sm, "by", None)):
            if isinstance(term, str):
                out.append((label if isinstance(label, str) else f"s({term})", term))
    for name in getattr(model, "linear", ()) or ():
        if isinstance(name, str):
            out.append((name, name))
    return out


def check_identifiable(
    model: Any,
    train: pd.DataFrame,
    subject: Any,
    test: pd.DataFrame | None = None,
    constant: Callable[[str], bool | None] | None = None,
) -> None:
    """Raise if dropping ``subject`` leaves a term without information.

    A covariate that is constant on the remaining rows makes its term unidentifiable: a
    linear term becomes collinear with the intercept, a centred smooth becomes zero. A
    factor level that only the held-out rows have (``test``) has no coefficient in the fold
    fit, so those rows cannot be predicted: reported before fitting.

    ``constant(column)``, when given, says whether a numeric column is constant on ``train``
    without scanning it (None: not known, scan): a LOSO fold answers from the full data's
    extremes and its held-out rows (:meth:`gamstore.fit.foldview.FullRawBases.column_range`).
    """
    # a random effect predicts a level it has not seen at zero (mgcv's predict.gam): its
    # held-out subject is exactly what a LOSO by that factor leaves out
    random = {
        sm.term for sm in getattr(model, "smooths", ()) or () if getattr(sm, "bs", None) == "re"
    }
    for label, column in model_columns(model):
        if column not in train.columns:
            continue  # the fitter reports missing columns itself
        known = None
        if constant is not None and not _is_factor(train[column]):
            known = constant(column)
        if known is None:
            values = train[column].to_numpy()
            known = bool(len(values) and np.all(values == values[0]))
        if known:
            raise ValueError(
                f"term {label} is unidentifiable without subject {subject!r}: "
                f"covariate {column!r} is constant on the remaining rows"
            )
        if (
            test is not None
            and column not in random
            and column in test.columns
            and _is_factor(train[column])
        ):
            seen = set(train[column].dropna().tolist())
            only = sorted({str(v) for v in test[column].dropna().tolist() if v not in seen})
            if only:
                raise ValueError(
                    f"factor {column!r}: level(s) {only} occur only in subject {subject!r}; "
                    "the fold fit has no coefficient for them, so its rows cannot be predicted"
                )


def _is_factor(col: pd.Series) -> bool:
    """A column the fitter codes as a factor (strings, category, booleans)."""
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def heldout_response(
    test: pd.DataFrame, y: Any, weights: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Observed response and prior weights of held-out rows, as the fit sees them.

    ``y`` is a response column or binomial ``(successes, trials)`` columns (proportion,
    weights = trials times any prior weights).
    """
    wt = None if weights is None else test[weights].to_numpy(dtype=np.float64)
    if isinstance(y, str):
        return test[y].to_numpy(dtype=np.float64), wt
    succ = test[y[0]].to_numpy(dtype=np.float64)
    trials = test[y[1]].to_numpy(dtype=np.float64)
    prop = np.divide(succ, trials, out=np.zeros_like(succ), where=trials > 0)
    return prop, trials if wt is None else wt * trials


def fold_provenance(subject_column: str, held_out: Any, run_id: str) -> Any:
    """Provenance of a LOSO fit's entries (``held_out=None``: the full-data fit)."""
    from gamstore.store.provenance import MAX_TEXT, provenance

    return provenance(
        subject_column=str(subject_column)[:MAX_TEXT],
        held_out=None if held_out is None else str(held_out)[:MAX_TEXT],
        run_id=run_id or None,
    )


def _predict_heldout(res: Any, test: pd.DataFrame, out: FoldOutcome) -> None:
    """Held-out predictions with standard errors (a fitter without ``se_fit``: NaN SEs)."""
    n = len(test)
    try:
        link = res.predict(test, type="link", se_fit=True)
        resp = res.predict(test, type="response", se_fit=True)
    except TypeError:  # another fitter's predict: values only
        out.pred_response = np.asarray(res.predict(test, type="response"), dtype=np.float64)
        try:
            out.pred_link = np.asarray(res.predict(test, type="link"), dtype=np.float64)
        except Exception:  # the link scale is optional for foreign fitters
            out.pred_link = np.full(n, np.nan)
        out.se_link = out.se_response = np.full(n, np.nan)
        return
    out.pred_link = np.asarray(link[0], dtype=np.float64)
    out.se_link = np.asarray(link[1], dtype=np.float64)
    out.pred_response = np.asarray(resp[0], dtype=np.float64)
    out.se_response = np.asarray(resp[1], dtype=np.float64)


def fold_positions(
    data: pd.DataFrame, subject_column: str, held: np.ndarray, order: tuple[Any, ...] | None
) -> np.ndarray:
    """Positions in ``data`` of the rows a fold fits, in the order it fits them.

    All but the held-out rows, subjects in canonical ``order`` (the order its store key
    describes, :mod:`gamstore.fit.inputkey`), each subject's rows in data order; data already
    grouped by subject in that order (the usual case) is only filtered. ``order=None``: data
    order.
    """
    if order is not None:
        col = data[subject_column]
        try:
            grouped = list(order) == sorted(order) and bool(col.is_monotonic_increasing)
        except TypeError:  # labels of mixed types: the general path
            grouped = False
        if not grouped:
            from gamstore.fit.inputkey import canonical_blocks

            _, perm = canonical_blocks(col.to_numpy(), list(order))
            if perm is not None:
                return perm[~held[perm]]
    return np.flatnonzero(~held)


def fold_train(
    data: pd.DataFrame, subject_column: str, held: np.ndarray, order: tuple[Any, ...] | None
) -> pd.DataFrame:
    """The rows a fold fits, as a frame (see :func:`fold_positions`)."""
    return data.iloc[fold_positions(data, subject_column, held, order)].reset_index(drop=True)


def run_fold(data: pd.DataFrame, model: Any, task: FoldTask, store: Any = None) -> FoldOutcome:
    """Fit one fold (all rows but the held-out subject's) and score the held-out rows.

    Never raises for a failing fit: the error ends up in the outcome's ``status`` and
    ``error`` so one bad fold cannot sink a run.

    Parameters
    ----------
    data : pandas.DataFrame
        The full data set.
    model : object
        A fitter with ``fit(data, y=..., knots=..., store=...)`` (the Fitter API).
    task : FoldTask
        Which subject to hold out and how to start.
    store : Store, optional
        A live store (serial runs); when None and ``task.store`` is set, the worker opens it.

    Returns
    -------
    FoldOutcome
    """
    out = FoldOutcome(
        subject=task.subject, mode=task.mode, attempts=task.attempt, worker=_worker_label()
    )
    try:
        held = (data[task.subject_column] == task.subject).to_numpy()
        keep = fold_positions(data, task.subject_column, held, task.order)
        train = data.iloc[keep].reset_index(drop=True)
        test = data.loc[held].reset_index(drop=True)
        out.train_n, out.heldout_n = len(train), len(test)
        held_rows = np.flatnonzero(held)
        check_identifiable(
            model,
            train,
            task.subject,
            test,
            _fold_constant(data, model, keep, held_rows) if task.reuse_design else None,
        )
        fit_store = None
        if task.mode == "warm":
            if store is not None:
                fit_store = store
            elif task.store is not None:
                fit_store = _worker_store_or_none(task)
        t0, c0 = time.perf_counter(), time.process_time()
        extra: dict[str, Any] = {
            k: v for k, v in (("weights", task.weights), ("offset", task.offset)) if v
        }
        raw_rows = fold_raw_rows(data, model, keep, task, held_rows) if task.reuse_design else None
        if raw_rows is not None:
            extra["raw_rows"] = raw_rows
        if task.row_blocks is not None and fit_store is not None:
            extra["row_blocks"] = task.row_blocks.without(task.subject)
        with (
            fold_provenance(task.subject_column, task.subject, task.run_id),
            fit_hint(task.hint if fit_store is not None else None),
        ):
            res = model.fit(train, y=task.y, knots=task.knots, store=fit_store, **extra)
        out.wall_time = time.perf_counter() - t0
        out.cpu_time = time.process_time() - c0
        out.rho = np.asarray(res.rho, dtype=np.float64).ravel()
        out.edf = {str(k): _as_float(v) for k, v in dict(res.edf).items()}
        out.rho_names = [str(v) for v in getattr(res, "rho_names", None) or ()]
        out.reml = _as_float(res.reml)
        out.scale = _as_float(getattr(res, "scale", float("nan")))
        theta = getattr(res, "theta", None)
        out.theta = float("nan") if theta is None else _as_float(theta)
        power = getattr(res, "power", None)
        out.power = float("nan") if power is None else _as_float(power)
        out.n_outer = _as_int(res.n_outer)
        out.n_pirls_calls = _as_int(res.n_pirls_calls)
        out.n_pirls_iters = _as_int(res.n_pirls_iters)
        out.warm_source = str(getattr(res, "warm", ""))
        out.warm_decision = str(getattr(res, "warm_decision", ""))
        out.converged = bool(getattr(res, "converged", True))
        _record_check(out, res)
        out.heldout_rows = held_rows.astype(np.int64)
        _predict_heldout(res, test, out)
        mu = out.pred_response
        y_obs, wt = heldout_response(test, task.y, task.weights)
        fam = family_name(task.family)
        theta = out.theta if fam == "nb" else None  # nb: the fold's own theta
        power = out.power if fam == "tw" else None  # tw: the fold's own p
        out.heldout_deviance = deviance(fam, y_obs, mu, wt, theta=theta, power=power)
        out.status = STATUS_OK
    except Exception as exc:  # a failing fold is data, not a crash
        out.status = STATUS_FAILED
        out.error = f"{type(exc).__name__}: {exc}"
        out.retryable = is_transient(exc)
        logger.info(
            "LOSO fold %r (%s, attempt %d) failed: %s\n%s",
            task.subject,
            task.mode,
            task.attempt,
            out.error,
            traceback.format_exc(limit=4),
        )
    return out


def _fold_constant(
    data: pd.DataFrame, model: Any, keep: np.ndarray, held: np.ndarray
) -> Callable[[str], bool | None] | None:
    """Whether a numeric column is constant on a fold's rows, from the full data's extremes
    (read once per process with the shared raw bases) and the held-out rows; None for a
    fitter other than gamstore's GAM (its folds do not share the raw bases)."""
    from gamstore.fit.foldview import shared_raw_bases
    from gamstore.fit.model import GAM

    if not isinstance(model, GAM):
        return None
    full = shared_raw_bases(data)

    def constant(column: str) -> bool | None:
        if full.n != keep.size + held.size:
            return None
        col = full.column_range(column)
        if col is None:
            return None  # not a finite numeric column: scan it
        lo, hi = col.fold_range(held, keep)
        return bool(keep.size) and lo == hi

    return constant


def fold_raw_rows(
    data: pd.DataFrame,
    model: Any,
    keep: np.ndarray,
    task: FoldTask,
    held: np.ndarray | None = None,
) -> Any:
    """The fold's rows of the full data's raw bases, for ``GAM.fit(raw_rows=...)``.

    ``held`` (the held-out rows) is given when the fit's data are ``data.iloc[keep]``, as
    :func:`run_fold` makes them: a Gaussian fold then reads none of its own columns, only
    the full data's (checked once) and the held-out rows' (``FoldRows.gaussian_fold``).

    The full raw bases are evaluated once per process and data set (a worker: on its first
    fold, from the data it already holds; nothing is shipped per fold) and shared by every
    fold; a Gaussian fit also downdates the full data's ``X'WX`` by the held-out rows. See
    :mod:`gamstore.fit.foldview`. None for a fitter other than gamstore's GAM.
    """
    from gamstore.fit.foldview import shared_raw_bases
    from gamstore.fit.model import GAM

    if not isinstance(model, GAM):
        return None
    response = (task.y, task.weights, task.offset) if isinstance(task.y, str) else None
    # the fold's rows, in the order it fits them
    return shared_raw_bases(data).rows(keep, response, held)


def _record_check(out: FoldOutcome, res: Any) -> None:
    """Copy the start check and the warnings of a fit result (any Fitter: all optional)."""
    check = getattr(res, "start_check", None)
    if check is not None:
        out.rho_moved = _as_float(getattr(check, "rho_moved", float("nan")))
        out.cold_checked = bool(getattr(check, "cold_checked", False))
        out.check_reasons = ",".join(str(r) for r in getattr(check, "reasons", ()))
        out.start_disagree = bool(getattr(check, "disagree", False))
        out.warm_reml = _as_float(getattr(check, "warm_reml", float("nan")))
        out.cold_check_reml = _as_float(getattr(check, "cold_reml", float("nan")))
        out.kept = str(getattr(check, "kept", ""))
    notes = getattr(res, "warnings", None) or ()
    out.fit_warnings = "; ".join(f"{type(w).__name__}: {w}" for w in notes)


def init_worker(data: pd.DataFrame, model: Any) -> None:
    """Process-pool initializer: keep the data set and the model for every task."""
    _WORKER_STATE["data"] = data
    _WORKER_STATE["model"] = model


def run_fold_in_worker(task: FoldTask) -> FoldOutcome:
    """Process-pool entry point: run a task against the state set by :func:`init_worker`."""
    return run_fold(_WORKER_STATE["data"], _WORKER_STATE["model"], task)


def run_fold_remote(data: pd.DataFrame, model: Any, task: FoldTask) -> FoldOutcome:
    """Dask entry point (the data set arrives as a scattered future, resolved by dask)."""
    return run_fold(data, model, task)
