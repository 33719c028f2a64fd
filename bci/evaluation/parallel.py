"""Run the evaluation's independent fits in parallel: joblib on this machine, Dask on a cluster.

The cross-validation harness (:mod:`bci.evaluation.crossval`) hands every batch of fold fits
to ``_run``; :data:`TASK_RUNNER` lets a caller take those batches instead of running them.
:func:`run_calls` uses that to turn a whole sweep of harness calls (subjects x windows x
class sets x schemes, each over methods x folds) into ONE stream of independent
``(subject, method, window, fold)`` fits for ``joblib.Parallel``:

1. each harness call runs once with a runner that *collects* its fold tasks and answers with
   placeholders (no fit; cheap: epoching only); the tasks stream to joblib lazily, so memory
   holds only what is in flight;
2. joblib runs the fits (``n_jobs`` local processes, or a Dask cluster through joblib's
   ``dask`` backend with ``scheduler``) and returns the results in task order;
3. each harness call runs again with a runner that *replays* its results, so the records
   are built by the same code from the same fold results: identical to a serial run.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from bci.errors import BCIError

#: When set, ``crossval._run(tasks, n_jobs)`` returns ``TASK_RUNNER.get()(tasks)``.
TASK_RUNNER: contextvars.ContextVar[Callable[[list], list] | None] = contextvars.ContextVar(
    "bci_evaluation_task_runner", default=None)


@contextlib.contextmanager
def _runner(fn: Callable[[list], list]):
    token = TASK_RUNNER.set(fn)
    try:
        yield
    finally:
        TASK_RUNNER.reset(token)


def _placeholder(task: tuple) -> tuple:
    """What a fold task would return, without fitting: perfect predictions, zero times."""
    y_test = task[-1]
    return np.asarray(y_test).astype(str), 0.0, 0.0


def connect(scheduler: str):
    """A ``dask.distributed.Client`` of the scheduler at ``scheduler`` (BCIError if none).

    Parameters
    ----------
    scheduler : str
        Its address, ``tcp://host:8786`` (what ``dask scheduler``, a ``LocalCluster`` or a
        ``dask_jobqueue.SLURMCluster`` reports as ``scheduler_address``).
    """
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise BCIError(
            f"--scheduler needs dask.distributed ({exc}); install the optional extra: "
            "pip install 'ssvep-exo[cluster]'."
        ) from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, ValueError, TypeError) as exc:
        raise BCIError(f"Cannot reach the Dask scheduler at {scheduler!r}: {exc}. Check the "
                       "address (tcp://host:8786) and that the scheduler runs.") from None


@contextlib.contextmanager
def _backend(scheduler: str | None):
    """joblib's default backend, or its Dask backend on the cluster at ``scheduler``."""
    if scheduler is None:
        yield
        return
    from joblib import parallel_config

    client = connect(scheduler)
    try:
        with parallel_config(backend="dask"):
            yield
    finally:
        client.close()


def run_tasks(tasks, *, jobs: int = 1, scheduler: str | None = None,
              on_result: Callable[[int, Any], None] | None = None) -> list:
    """Run ``(function, *args)`` tasks; return their results in task order.

    Parameters
    ----------
    tasks : iterable of tuple
        ``(function, arg, ...)``; consumed lazily (a generator keeps memory low).
    jobs : int, default=1
        Local worker processes (joblib, loky backend); 1 runs in this process.
    scheduler : str | None
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``): the tasks go to
        its workers through joblib's Dask backend (``jobs`` is then ignored).
    on_result : callable | None
        Called as ``on_result(index, result)`` as each result arrives, in order (progress).

    Returns
    -------
    results : list
    """
    out = []
    if scheduler is None and jobs == 1:
        for i, (fn, *args) in enumerate(tasks):
            out.append(fn(*args))
            if on_result is not None:
                on_result(i, out[-1])
        return out
    from joblib import Parallel, delayed

    with _backend(scheduler):
        par = Parallel(n_jobs=-1 if scheduler else jobs, return_as="generator")
        for i, res in enumerate(par(delayed(fn)(*args) for fn, *args in tasks)):
            out.append(res)
            if on_result is not None:
                on_result(i, res)
    return out


def run_calls(calls: Sequence[Callable[[], list]], *, jobs: int = 1,
              scheduler: str | None = None,
              on_group_done: Callable[[], None] | None = None) -> list[list]:
    """Run harness calls with their fold fits spread over processes or a cluster.

    Parameters
    ----------
    calls : list of callable
        Each returns records (e.g. ``functools.partial(evaluate_within, raws, estimators,
        ...)``) and hands its fits to ``crossval._run``.
    jobs, scheduler
        As in :func:`run_tasks`. ``jobs=1`` without a scheduler runs each call as it is.
    on_group_done : callable | None
        Called once per batch of fits (one method of one call) when its last fit is back.

    Returns
    -------
    records : list of list
        What each call returns, in order; identical to running the calls serially.
    """
    if scheduler is None and jobs == 1:
        out = []
        for call in calls:
            out.append(call())
        return out
    sizes: list[list[int]] = [[] for _ in calls]
    ends: deque[int] = deque()  # index of the last fit of each batch, in stream order

    def stream() -> Iterator[tuple]:
        n = 0
        for i, call in enumerate(calls):
            batches: list[list] = []

            def collect(tasks, batches=batches):
                batches.append(list(tasks))
                return [_placeholder(t) for t in tasks]

            with _runner(collect):  # set and reset within one next(): thread-safe
                call()
            for batch in batches:
                sizes[i].append(len(batch))
                n += len(batch)
                if batch:
                    ends.append(n - 1)
                yield from batch

    def on_result(index: int, _res) -> None:
        while ends and ends[0] <= index:  # results arrive in order
            ends.popleft()
            if on_group_done is not None:
                on_group_done()

    results = run_tasks(stream(), jobs=jobs, scheduler=scheduler, on_result=on_result)
    out, pos = [], 0
    for i, call in enumerate(calls):
        n = sum(sizes[i])
        mine = iter(results[pos:pos + n])
        pos += n

        def replay(tasks, mine=mine):
            return [next(mine) for _ in tasks]

        with _runner(replay):
            out.append(call())
    return out


__all__ = ["TASK_RUNNER", "connect", "run_calls", "run_tasks"]
