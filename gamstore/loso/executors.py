"""Running fold tasks: in process, in a spawned process pool, or on a dask cluster.

Each runner takes the tasks, runs every one, retries a task that failed for a transient
reason once, and reports each finished task to a callback (the progress bar). A task fails
either inside the fit (the outcome says so, and whether the error is transient: I/O,
network, timeout) or because its worker died (the future raises: always worth a retry). A
deterministic error (bad data, an unidentifiable term) is reported at once: a retry would
only repeat it. Failed folds are reported, never raised.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pandas as pd

from gamstore.loso.folds import (
    STATUS_FAILED,
    FoldOutcome,
    FoldTask,
    init_worker,
    run_fold,
    run_fold_in_worker,
    run_fold_remote,
)

logger = logging.getLogger("gamstore.loso")

Report = Callable[[FoldOutcome], None]


def _died(task: FoldTask, exc: BaseException) -> FoldOutcome:
    """The outcome of a task whose worker (or future) failed outside the fit."""
    return FoldOutcome(
        subject=task.subject,
        mode=task.mode,
        status=STATUS_FAILED,
        error=f"worker failed: {type(exc).__name__}: {exc}",
        attempts=task.attempt,
        retryable=True,  # a lost worker says nothing about the task itself
    )


def _retry(task: FoldTask) -> FoldTask:
    return replace(task, attempt=task.attempt + 1)


def run_serial(
    data: pd.DataFrame, model: Any, tasks: Sequence[FoldTask], store: Any, report: Report
) -> list[FoldOutcome]:
    """Run the tasks one after the other in this process, with the live store."""
    outcomes = []
    for task in tasks:
        out = run_fold(data, model, task, store=store)
        if not out.ok and out.retryable:
            out = run_fold(data, model, _retry(task), store=store)
        report(out)
        outcomes.append(out)
    return outcomes


def _spawn_pool(data: pd.DataFrame, model: Any, max_workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: fsspec/s3fs event loops and threads do not survive a fork
    return ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(data, model),
    )


@contextmanager
def _workers_immune_to_ctrl_c() -> Iterator[None]:
    """Start worker processes with SIGINT blocked; a Ctrl-C meanwhile is raised afterwards.

    A terminal sends Ctrl-C to every process of the foreground group, workers included:
    each would die with a ``KeyboardInterrupt`` traceback (or an ``UnpicklingError`` if it
    was still reading its start-up data). The parent alone handles Ctrl-C and stops the
    workers (:func:`_stop`). A blocked signal mask survives ``fork``/``exec``, so workers
    started inside this block never see SIGINT; in the parent the signal is held and
    delivered to the previous handler (``KeyboardInterrupt`` by default) once the workers
    are started, never half-way.
    """
    if (
        not hasattr(signal, "pthread_sigmask")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield  # no signal masks (Windows) or not the thread Python delivers signals to
        return
    hits: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if hits:  # re-deliver to the restored handler: KeyboardInterrupt, a custom one, or ignored
        signal.raise_signal(signal.SIGINT)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the workers now (Ctrl-C: do not wait for the folds)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if callable(terminate):
        terminate()
        return
    # older Pythons: the pool's own process table (a worker killed mid-save leaves an
    # uncommitted payload, which `gamstore gc` removes; committed entries are never touched)
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=5)


def run_processes(
    data: pd.DataFrame,
    model: Any,
    tasks: Sequence[FoldTask],
    report: Report,
    max_workers: int | None = None,
) -> list[FoldOutcome]:
    """Run the tasks in a spawned :class:`~concurrent.futures.ProcessPoolExecutor`.

    First pass: all tasks concurrently. A worker that dies breaks the whole pool, so every
    task that did not finish (or failed transiently) is retried in a second pass that runs
    one task at a time in a one-worker pool (recreated after each death), which pins a
    death on the task that caused it. Ctrl-C (``KeyboardInterrupt``) stops the workers at
    once and propagates; the workers themselves ignore it.
    """
    workers = max_workers or min(len(tasks), os.cpu_count() or 1)
    done: dict[int, FoldOutcome] = {}
    again: list[int] = []
    pool = _spawn_pool(data, model, max(1, workers))
    try:
        with _workers_immune_to_ctrl_c():  # the pool starts its workers in submit()
            futures: dict[Future[FoldOutcome], int] = {
                pool.submit(run_fold_in_worker, task): i for i, task in enumerate(tasks)
            }
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:  # BrokenProcessPool, pickling errors, ...
                logger.info("LOSO fold %r: %s; retrying", tasks[i].subject, exc)
                again.append(i)
                continue
            if out.ok or not out.retryable:
                done[i] = out
                report(out)
            else:
                again.append(i)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    pool2: ProcessPoolExecutor | None = None
    try:
        for i in sorted(again):
            task = _retry(tasks[i])
            if pool2 is None:
                pool2 = _spawn_pool(data, model, 1)
            try:
                with _workers_immune_to_ctrl_c():
                    future = pool2.submit(run_fold_in_worker, task)
                out = future.result()
            except BrokenProcessPool as exc:
                out = _died(task, exc)
                pool2.shutdown(wait=True)
                pool2 = None
            except Exception as exc:
                out = _died(task, exc)
            done[i] = out
            report(out)
    except BaseException:
        if pool2 is not None:
            _stop(pool2)
            pool2 = None
        raise
    finally:
        if pool2 is not None:
            pool2.shutdown(wait=True)
    return [done[i] for i in range(len(tasks))]


def run_dask(
    data: pd.DataFrame, model: Any, tasks: Sequence[FoldTask], client: Any, report: Report
) -> list[FoldOutcome]:
    """Run the tasks on a ``dask.distributed`` cluster through ``client``.

    The data set is scattered once to every worker; each task opens the store inside the
    worker from its :class:`~gamstore.store.StoreSpec`. Dask itself reschedules the tasks of
    a worker that died; a task that still fails (``KilledWorker``, or a transient error in
    the fit) is resubmitted once.
    """
    from distributed import as_completed as dask_as_completed

    data_future = client.scatter(data, broadcast=True)
    model_future = client.scatter(model, broadcast=True)
    done: dict[int, FoldOutcome] = {}

    def submit(task: FoldTask) -> Any:
        return client.submit(run_fold_remote, data_future, model_future, task, pure=False)

    futures = {submit(task): (i, task) for i, task in enumerate(tasks)}
    pending = dask_as_completed(list(futures))
    for fut in pending:
        i, task = futures[fut]
        try:
            out = fut.result()
        except Exception as exc:
            out = _died(task, exc)
        if not out.ok and out.retryable and task.attempt == 1:
            task2 = _retry(task)
            fut2 = submit(task2)
            futures[fut2] = (i, task2)
            pending.add(fut2)
            continue
        done[i] = out
        report(out)
    return [done[i] for i in range(len(tasks))]
