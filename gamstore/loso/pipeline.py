"""Leave-one-subject-out (LOSO) cross-validation with warm starts from the full-data fit."""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from gamstore._version import __version__
from gamstore.loso.deviance import family_name
from gamstore.loso.executors import run_dask, run_processes, run_serial
from gamstore.loso.folds import FoldOutcome, FoldTask, StoreSpec, fold_provenance
from gamstore.loso.results import build_dataset
from gamstore.store.provenance import new_run_id
from gamstore.warmstart.policy import fit_hint

#: rows from which run_loso reuses fold designs by default (reuse_designs=None). Measured in
#: fresh processes (BENCHMARKS.md, "fold designs reused"): a cold 10-fold LOSO is 1.16x the
#: rebuild at 6000 rows (building the shared bases is not repaid), 1.00x at 20 000; the gain
#: shows at 100 000 (0.70x Gaussian), so the default starts between the two
REUSE_MIN_ROWS = 50_000

logger = logging.getLogger("gamstore.loso")


def _as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        try:
            return pd.DataFrame({str(k): np.asarray(v) for k, v in data.items()})
        except ValueError as exc:
            raise ValueError(f"data: columns must be 1-D arrays of equal length ({exc})") from exc
    raise TypeError(
        f"data: expected a pandas.DataFrame or a mapping of column name -> 1-D array, "
        f"got {type(data).__name__}"
    )


def _subjects(frame: pd.DataFrame, subject: str) -> list[Any]:
    if not isinstance(subject, str):
        raise TypeError(f"subject: expected a column name (str), got {type(subject).__name__}")
    if subject not in frame.columns:
        raise ValueError(
            f"subject: column {subject!r} not in data (columns: {', '.join(map(str, frame.columns))})"
        )
    col = frame[subject]
    if col.isna().any():
        raise ValueError(f"subject: column {subject!r} has {int(col.isna().sum())} missing labels")
    # plain Python labels: they show up in messages, coordinates and pickles
    labels = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(col)]
    try:
        labels = sorted(labels)
    except TypeError:  # mixed label types: keep order of appearance
        pass
    if len(labels) < 2:
        raise ValueError(
            f"subject: LOSO needs at least 2 distinct subjects in column {subject!r}, "
            f"got {len(labels)}"
        )
    return labels


def response_names(y: Any) -> tuple[str, ...]:
    """``y`` as column names: ``(response,)`` or binomial ``(successes, trials)``."""
    if isinstance(y, str):
        return (y,)
    if isinstance(y, (tuple, list)) and len(y) == 2 and all(isinstance(c, str) for c in y):
        return (str(y[0]), str(y[1]))
    raise ValueError(f"y: expected a response column name or (successes, trials), got {y!r}")


def _omit_incomplete(
    frame: pd.DataFrame,
    model: Any,
    y: Any,
    weights: str | None,
    offset: str | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop the rows with a missing model value when the model omits them (mgcv's default).

    Done once before the folds so that every fold and its held-out rows are complete; the
    positions dropped are returned (``n_dropped`` in the result). A model without
    ``complete_rows`` (another fitter) or with ``na_action="raise"`` sees the rows as given.
    A missing subject label is never omitted: it is an error (see :func:`_subjects`).
    """
    none = np.zeros(0, dtype=np.int64)
    finder = getattr(model, "complete_rows", None)
    if getattr(model, "na_action", None) != "omit" or finder is None:
        return frame, none
    bad = finder(frame, y, weights, offset)
    mask = np.zeros(len(frame), dtype=bool)
    if bad is not None:
        mask[bad] = True
    if not mask.any():
        return frame, none
    dropped = np.flatnonzero(mask)
    logger.info("LOSO: %d row(s) with missing values omitted", dropped.size)
    return frame.loc[~mask].reset_index(drop=True), dropped.astype(np.int64)


def _row_info(
    frame: pd.DataFrame, y: Any, subject: str, weights: str | None, dropped: np.ndarray
) -> dict[str, Any]:
    """Per row of the LOSO data: observed response, weights, subject, input position."""
    from gamstore.loso.folds import heldout_response

    y_obs, wt = heldout_response(frame, y, weights)
    keep = np.setdiff1d(np.arange(len(frame) + dropped.size), dropped)
    return {
        "y": y_obs,
        "weights": wt,
        "subject": frame[subject].to_numpy(),
        "input_row": keep,
    }


def _row_blocks(
    model: Any, frame: pd.DataFrame, y: Any, weights: str | None, offset: str | None, subject: str
) -> Any:
    """Per-subject digests of the data for the store keys, when the model makes them
    (``GAM.row_block_digests``); None otherwise, or when they cannot be made (the fits then
    hash their own data: a key problem never fails a run)."""
    make = getattr(model, "row_block_digests", None)
    if not callable(make):
        return None
    try:
        return make(frame, y, weights, offset, groups=subject)
    except Exception as exc:  # noqa: BLE001 - the full-data fit reports bad input itself
        logger.info("LOSO: per-subject digests unavailable (%s: %s)", type(exc).__name__, exc)
        return None


def _fold_hints(
    model: Any, frame: pd.DataFrame, subject: str, subjects: list[Any]
) -> tuple[Any, dict[Any, tuple[str, str]]] | None:
    """What the run knows about the warm starts before fitting (adaptive policy only).

    Per subject: the start-check triggers its fold will fire whatever its warm run does
    (:func:`gamstore.fit.startcheck.foreseen`, e.g. ``"rows"``: the fold drops more than
    ``max_drop_share`` of the rows), with the phrase for the decision string; and the
    full-data fit's hint: how many folds will start from its artifact. None when the policy is
    ``"always"`` or the model has no start check (another fitter).
    """
    from gamstore.fit.startcheck import StartCheckPolicy, foreseen
    from gamstore.warmstart.policy import FitHint, default_policy

    check = getattr(model, "start_check", None)
    if default_policy().mode != "adaptive" or not isinstance(check, StartCheckPolicy):
        return None
    n = len(frame)
    counts = frame[subject].value_counts(sort=False)
    checked: dict[Any, tuple[str, str]] = {}
    rows_of_users: list[int] = []
    for s in subjects:
        rows = n - int(counts[s])
        reasons = foreseen(check, rows, n)
        if reasons:
            why = (
                f"the start check would refit a cross-fit start cold ({','.join(reasons)}: "
                f"the fold drops {1 - rows / n:.0%} of the rows)"
            )
            checked[s] = (",".join(reasons), why)
        else:
            rows_of_users.append(rows)
    full = FitHint(
        artifact_uses=len(rows_of_users),
        artifact_rows=int(np.mean(rows_of_users)) if rows_of_users else 0,
        artifact_reason="the start check would refit every fold's cross-fit start cold",
    )
    return full, checked


def _new_local_store(store: Any) -> bool:
    """A local directory (path or ``file://`` URL) that does not exist yet: the store this
    run opens there is new, so nothing in it can be looked up."""
    import os

    if not isinstance(store, str | os.PathLike):
        return False
    text = os.fspath(store)
    if "://" in text:
        if not text.startswith("file://"):
            return False
        text = text[len("file://") :]
    return bool(text) and not os.path.lexists(text)


#: a lookup phase (a block key, three listings and reads that miss) against the open of a new
#: local store (a directory and its root metadata), measured 4-6x on a local disk
LOOKUP_PER_OPEN = 5.0


def _new_store_hint(full: Any, url: str, open_seconds: float) -> Any:
    """The full-data fit's hint in a store this run created, when no fold starts from its
    artifact: no lookups (there is nothing to find); the store's round trip, which the
    later-run save decision needs, is estimated from its open (``LOOKUP_PER_OPEN`` times it,
    a single noisy sample: it only decides whether the record is left for a later run) until
    a lookup or save is timed. When folds may start from the artifact, the full-data fit's
    lookups (misses) measure the round trip its in-run decision needs."""
    import gamstore.warmstart.plan as plan_mod
    from gamstore.warmstart.policy import default_policy

    costs = plan_mod.COSTS
    if costs.lookup_time(url) is None and np.isfinite(open_seconds) and open_seconds > 0:
        costs.observe_lookup(url, LOOKUP_PER_OPEN * open_seconds, default_policy())
    return replace(full, foreign=False, own=False, reason="the store is new: nothing to find")


def _fold_hint(
    s: Any,
    plan: tuple[Any, dict[Any, tuple[str, str]]],
    own_found: bool,
    artifact: bool | None,
    new_store: bool = False,
) -> Any:
    """The hint of the fold holding out ``s`` (see :func:`_fold_hints`); ``new_store``: the
    run created the store, so nothing in it but what this run wrote."""
    from gamstore.warmstart.policy import FitHint

    full, checked = plan
    # a fold's artifact is never a parent in this run: every fold starts from the full fit's
    fold = FitHint(artifact_uses=0, artifact_reason="folds start from the full-data fit's")
    why = checked[s][1] if s in checked else ""
    if not why and artifact is False:
        why = "the full-data fit wrote no artifact"
    if not why and new_store and not own_found:
        # a store this run created holds no record or session of the fold (folds save
        # after their own fit): only the full-data fit's artifact is looked up, and the
        # fold's input key is not derived for lookups that can only miss
        return replace(
            fold, own=False, expect="cross-fit", reason="the store is new: no record of the fold"
        )
    if not why:  # the full-data fit's artifact: the prior of a cross-fit start
        return replace(fold, expect="exact" if own_found else "cross-fit")
    if own_found:  # a repeated run: the fold's own record may be there
        return replace(fold, foreign=False, expect="exact", reason=why)
    # no record of the full data in the store: none of its folds' either (a run that saved
    # the folds saved the full-data fit too), so a lookup would only miss
    tail = " and found" if s not in checked else ", and the full-data fit found"
    return replace(fold, foreign=False, own=False, reason=f"{why}{tail} no record of its own")


def _is_remote(store: Any) -> bool:
    """Whether ``store`` is an object store (its requests are round trips)."""
    from gamstore.warmstart.capability import warm_store

    try:
        ws = warm_store(store)
    except TypeError:
        return False
    return ws is not None and ws.remote


def _executor_kind(executor: Any) -> str:
    if executor is None or executor == "serial":
        return "serial"
    if executor == "processes":
        return "processes"
    if hasattr(executor, "submit") and hasattr(executor, "scatter"):
        return "dask"
    raise TypeError(
        "executor: expected None, 'serial', 'processes' or a dask.distributed Client, "
        f"got {executor!r}"
    )


def _fit_summary(res: Any, wall_time: float) -> dict[str, Any]:
    return {
        "rho": np.asarray(res.rho, dtype=np.float64).ravel(),
        "edf": {str(k): float(v) for k, v in dict(res.edf).items()},
        "rho_names": [str(v) for v in getattr(res, "rho_names", None) or ()],
        "reml": float(res.reml),
        "scale": float(getattr(res, "scale", np.nan)),
        "theta": float(getattr(res, "theta", None) or np.nan),
        "power": float(getattr(res, "power", None) or np.nan),
        "n_outer": int(res.n_outer),
        "n_pirls_calls": int(res.n_pirls_calls),
        "n_pirls_iters": int(res.n_pirls_iters),
        "wall_time": wall_time,
        "warm_source": str(getattr(res, "warm", "")),
        "warm_decision": str(getattr(res, "warm_decision", "")),
    }


def _worker_spec(
    store: Any, storage_options: Mapping[str, Any] | None, *, read_only: bool
) -> StoreSpec:
    """How the fold workers reopen ``store``: its own spec, unless options were given."""
    make = getattr(store, "spec", None)
    if callable(make):
        spec = make(read_only=read_only)
        if isinstance(spec, StoreSpec):
            if storage_options is not None:
                spec = replace(spec, storage_options=dict(storage_options) or None)
            return spec
    # a store-like object without spec(): its URL plus the caller's options
    options = dict(storage_options) if storage_options else None
    return StoreSpec(url=str(store.url), storage_options=options, read_only=read_only)


def run_loso(
    data: Any,
    model: Any,
    *,
    subject: str,
    y: str | tuple[str, str] = "y",
    store: Any = None,
    storage_options: dict[str, Any] | None = None,
    executor: Any = None,
    warm: bool = True,
    compare_cold: bool = False,
    progress: bool | None = None,
    max_workers: int | None = None,
    save_folds: bool = True,
    weights: str | None = None,
    offset: str | None = None,
    reuse_designs: bool | None = None,
) -> xr.Dataset:
    """Leave-one-subject-out cross-validation of a GAM, warm-started from the full-data fit.

    The model is first fitted to all rows (saving its state to ``store``); then each subject
    is held out in turn and the model refitted with the knots frozen at the full-data knots,
    so the fold fits find the full-data fit in the store and start next to their optimum.

    Parameters
    ----------
    data : pandas.DataFrame or mapping of str to 1-D array
        All rows, with the response, covariates and the subject column.
    model : gamstore.fit.GAM
        The model (anything with the Fitter API: ``fit(data, y=, knots=, store=)`` returning
        a result with ``rho``, ``edf``, ``reml``, ``n_outer``, ``predict`` ...).
    subject : str
        Name of the column holding subject labels (at least two distinct, none missing).
    y : str or (str, str)
        Name of the response column, or binomial ``(successes, trials)`` columns.
    store : str, gamstore.Store or None
        Where warm-start state lives. A URL (``"./dir"``, ``"file://..."``, ``"s3://b/p"``)
        or an open store. Workers of ``"processes"`` / dask executors open the store
        themselves from :meth:`Store.spec() <gamstore.store.Store.spec>` (URL, the
        ``storage_options`` it was opened with, its settings), so it must be reachable from
        them (not ``memory://``). None: a private in-memory store (serial), a temporary
        directory (``"processes"``); dask needs an explicit shared store.
    storage_options : dict, optional
        fsspec options for a ``store`` given as a URL (e.g. ``{"endpoint_url": ...}`` for
        S3). With an open store they are not needed (the store hands its own to the
        workers); given anyway, they replace the store's for the workers.
    executor : None, "serial", "processes" or dask.distributed.Client
        Where the folds run: in this process, in a spawned process pool, or on a dask cluster
        (local or remote).
    warm : bool
        Fit the folds with the store (warm starts). False fits them cold.
    compare_cold : bool
        Also fit every fold cold (no store, mgcv's ``initial.sp`` start); the result then has
        ``start = ["warm", "cold"]``.
    progress : bool or None
        Show a tqdm progress bar on stderr; None shows it only when stderr is a terminal.
    max_workers : int, optional
        Worker processes for ``executor="processes"`` (default: one per fold, at most the
        CPU count).
    save_folds : bool
        Let the warm fold fits write their own state (block record, session, artifact) so a
        repeated LOSO on the same data starts from it (the default). False opens the store
        read-only for the folds: every fold then starts from the full-data fit whatever the
        order or executor, and no fold pays for writes.
    weights, offset : str, optional
        Columns of prior weights (binomial: trials, with ``y`` a proportion) and of a
        link-scale offset, passed to every fit; the held-out deviance uses the weights and
        the predictions the offset.
    reuse_designs : bool or None
        Build each fold's design from the full data's raw bases, evaluated once per
        process: the fold's rows are selected and its own centring constraints absorbed
        again (:mod:`gamstore.fit.foldview`), giving the design a rebuild from the fold's
        covariates gives; a Gaussian fold also downdates the full data's ``X'WX``. False
        rebuilds every fold's design from its covariates (the plain reference path). None
        (the default): reuse from ``REUSE_MIN_ROWS`` (50 000) rows on; below, building the
        shared bases is not repaid by the cheaper fold designs.

    Returns
    -------
    xarray.Dataset
        Rows with a missing model value are omitted first when the model does so
        (``GAM(na_action="omit")``, the default); their count is ``attrs["n_dropped"]``.
        Dimensions ``fold`` (coordinate: the held-out subject), ``start`` and ``term``;
        per-fold ρ, edf, REML, iterations, wall time, warm source, held-out deviance,
        status and error, plus the full-data fit as ``full_*`` variables and attributes.
        Failed folds have ``status == "failed"`` and their error message; they never raise.

    Raises
    ------
    ValueError, TypeError
        Bad input (missing columns, fewer than two subjects, unusable store/executor pair).
    Exception
        Whatever the full-data fit raises: without it there are no knots to freeze.
    """
    frame = _as_frame(data)
    y_cols = response_names(y)
    for y_col in y_cols:
        if y_col not in frame.columns:
            raise ValueError(f"y: response column {y_col!r} not in data")
    subjects = _subjects(frame, subject)
    for role, column in (("weights", weights), ("offset", offset)):
        if column is not None and (not isinstance(column, str) or column not in frame.columns):
            raise ValueError(f"{role}: expected the name of a column of data, got {column!r}")
    frame, dropped = _omit_incomplete(frame, model, y, weights, offset)
    subjects = _subjects(frame, subject)  # again: omitting rows may remove a subject
    kind = _executor_kind(executor)
    if not warm and not compare_cold:
        starts = ["cold"]
    elif warm and compare_cold:
        starts = ["warm", "cold"]
    elif warm:
        starts = ["warm"]
    else:
        starts = ["cold"]
    family = family_name(getattr(model, "family", "gaussian"))
    run_id = new_run_id()  # provenance of every entry of this run (and in the result attrs)

    from gamstore.fit.inputkey import DeferredRowBlocks
    from gamstore.store import open_store
    from gamstore.warmstart.background import deferred_saves
    from gamstore.warmstart.capability import open_lazily

    tmp: tempfile.TemporaryDirectory[str] | None = None
    store_obj: Any = None
    fit_store: Any = None  # what the fits get: the store, or its lazily opened capability
    spec: StoreSpec | None = None
    url = ""
    try:
        # a store this run creates holds nothing: its full-data fit need not look up
        new_store = store is None or _new_local_store(store)
        # the adaptive policy's run-level knowledge: which folds the start check will refit
        # cold whatever their warm start, so which use the full-data fit's artifact
        hints = _fold_hints(model, frame, subject, subjects) if "warm" in starts else None
        # a new local or memory store is made by its first save, unless the full-data fit's
        # lookups (misses) must time it for the in-run artifact decision (folds may start from
        # the artifact): free misses on a store not made yet would time nothing but the key
        lazy_local = hints is None or not hints[0].artifact_uses
        t_open = time.perf_counter()
        if store is None and not warm:
            pass  # cold folds only: nothing to store, nothing to read
        elif store is None:
            if kind == "serial":
                # made by the first save: a run that saves nothing makes no store
                store_obj, fit_store = open_lazily(
                    f"memory://gamstore-loso-{uuid.uuid4().hex}", local=lazy_local
                )
            elif kind == "processes":
                tmp = tempfile.TemporaryDirectory(prefix="gamstore-loso-")
                store_obj = open_store(tmp.name)
            else:
                raise ValueError(
                    "store: a dask executor needs a store every worker can reach "
                    "(a shared directory or an s3:// URL with storage_options)"
                )
        elif isinstance(store, str):
            try:
                # a new store's root (object store, new local directory) is created by the
                # first save, not up front: it holds nothing to look up, and a run that saves
                # nothing leaves nothing behind (gamstore.warmstart.capability.open_lazily)
                store_obj, fit_store = open_lazily(
                    store, storage_options=storage_options, local=lazy_local
                )
            except (ValueError, TypeError, ImportError):
                raise  # a bad URL or missing extra is the caller's to fix
            except Exception as exc:  # unreachable cache: the run goes on cold
                logger.warning("LOSO store %s unavailable (%s); folds run cold", store, exc)
                store_obj = None
        else:
            store_obj = store
        if fit_store is None:
            fit_store = store_obj
        t_open = time.perf_counter() - t_open
        if store_obj is not None:
            url = str(store_obj.url)
            if kind != "serial" and url.startswith("memory://"):
                raise ValueError(
                    f"store: {url!r} lives in this process only; executor={kind!r} needs a "
                    "directory or object-store URL"
                )
            spec = _worker_spec(store_obj, storage_options, read_only=not save_folds)

        # serial, on an object store: the saves after each fit go to a background writer
        # (the next fit does not wait for their round trips); flushed before run_loso
        # returns. A local or memory save is no round trip: synchronous, as before (deferring
        # it measured no faster; BENCHMARKS.md). Worker processes open the store themselves
        # and must find the full-data fit's entries: saved synchronously there.
        remote = fit_store is not None and _is_remote(fit_store)
        with deferred_saves(kind == "serial" and remote):
            t0 = time.perf_counter()
            extra: dict[str, Any] = {
                k: v for k, v in (("weights", weights), ("offset", offset)) if v
            }
            plan = hints if store_obj is not None else None
            if plan is not None and new_store and not plan[0].artifact_uses:
                # nothing to find, and no in-run artifact to decide on (which would need the
                # store's measured round trip): the full-data fit does not look up
                plan = (_new_store_hint(plan[0], url, t_open), plan[1])
            with (
                fold_provenance(subject, None, run_id),
                fit_hint(None if plan is None else plan[0]),
            ):
                # the full-data fit is a plain fit (the same key as model.fit(data) by hand)
                full_res = model.fit(frame, y=y, knots=None, store=fit_store, **extra)
            full = _fit_summary(full_res, time.perf_counter() - t0)
            knots = {
                str(k): np.asarray(v, dtype=np.float64) for k, v in dict(full_res.knots).items()
            }
            own_found = str(getattr(full_res, "warm", "")) in ("exact", "session")
            # the full-data fit started from an artifact already in the store (a repeated
            # run whose first run wrote it): the folds can start from it too, whether or not
            # this run writes another
            artifact_found = str(getattr(full_res, "warm", "")) == "cross-fit"
            # the result keeps its n x p design (for inference): let it go before the folds,
            # which hold their own and the full raw bases (gamstore.fit.foldview)
            del full_res
            logger.info(
                "LOSO full-data fit: reml=%.6f n_outer=%d (%s)",
                full["reml"],
                full["n_outer"],
                full["warm_source"],
            )

            # every fold reads its rows in canonical order (subjects sorted, each subject's rows
            # in data order), so its store key comes from the full data's per-subject digests
            # minus its own subject, O(subjects) (gamstore.fit.inputkey). The digests are made
            # when the first fold needs its key (a lookup or a save), not up front: a run whose
            # folds skip both never hashes its data (worker processes receive them made)
            row_blocks = None
            if store_obj is not None and "warm" in starts:
                row_blocks = DeferredRowBlocks(
                    functools.partial(_row_blocks, model, frame, y, weights, offset, subject)
                )
            tasks = [
                FoldTask(
                    subject=s,
                    mode=mode,
                    y=y,
                    subject_column=subject,
                    knots=knots,
                    store=spec if mode == "warm" else None,
                    family=family,
                    weights=weights,
                    offset=offset,
                    run_id=run_id,
                    reuse_design=(
                        len(frame) >= REUSE_MIN_ROWS
                        if reuse_designs is None
                        else bool(reuse_designs)
                    ),
                    order=tuple(subjects),
                    row_blocks=row_blocks if mode == "warm" else None,
                    hint=(
                        _fold_hint(
                            s,
                            plan,
                            own_found,
                            True if artifact_found else plan[0].report.artifact,
                            new_store,
                        )
                        if mode == "warm" and plan is not None
                        else None
                    ),
                )
                for s in subjects
                for mode in starts
            ]
            fold_store = fit_store
            if store_obj is not None and not save_folds and kind == "serial":
                # a read-only twin on the same root: the folds read the full-data fit only
                fold_store = spec.open() if spec is not None else None
            outcomes = _dispatch(
                frame, model, tasks, kind, executor, fold_store, progress, max_workers
            )
    finally:
        if tmp is not None:
            tmp.cleanup()
        from gamstore.fit.foldview import release_raw_bases

        release_raw_bases(frame)  # serial folds shared them in this process

    attrs = {
        "title": "gamstore leave-one-subject-out fit",
        "family": family,
        "response": y if isinstance(y, str) else ",".join(y_cols),
        "subject_column": subject,
        "store_url": "" if tmp is not None else url,
        "executor": kind,
        "save_folds": int(save_folds),
        "n_rows": len(frame),
        "n_dropped": int(dropped.size),
        "n_subjects": len(subjects),
        "gamstore_version": __version__,
        "run_id": run_id,
    }
    return build_dataset(
        subjects, starts, outcomes, full, attrs, rows=_row_info(frame, y, subject, weights, dropped)
    )


def _dispatch(
    frame: pd.DataFrame,
    model: Any,
    tasks: list[FoldTask],
    kind: str,
    executor: Any,
    store_obj: Any,
    progress: bool | None,
    max_workers: int | None,
) -> list[FoldOutcome]:
    from tqdm import tqdm

    # disable=None lets tqdm hide itself when stderr is not a terminal
    bar = tqdm(
        total=len(tasks),
        desc="LOSO folds",
        unit="fit",
        file=sys.stderr,
        disable=None if progress is None else not progress,
        leave=False,
    )

    def report(out: FoldOutcome) -> None:
        bar.update(1)
        if not out.ok:
            logger.warning(
                "LOSO fold %r (%s) failed after %d attempt%s: %s",
                out.subject,
                out.mode,
                out.attempts,
                "" if out.attempts == 1 else "s",
                out.error,
            )

    try:
        if kind == "serial":
            return run_serial(frame, model, tasks, store_obj, report)
        if kind == "processes":
            return run_processes(frame, model, tasks, report, max_workers=max_workers)
        return run_dask(frame, model, tasks, executor, report)
    finally:
        bar.close()
