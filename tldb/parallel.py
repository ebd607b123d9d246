"""Running independent tasks in forked worker processes, results in task order.

Rendering a report is a handful of modules that share nothing but the read-only database and
the output folder, so on a machine with several cores they can run side by side. The workers
are a `concurrent.futures.ProcessPoolExecutor` with the fork start method: forked, they inherit
the modules, the manifest and the plan without pickling them (only task numbers and results
cross the pipe). Workers take the heaviest tasks first, one at a time: a thread of the calling
process hands a worker its next task only when it is idle. The calling process works too,
taking the lightest tasks from the other end, so every task no worker has started is still
there for it (a pool queues tasks ahead to its workers, which the caller could then only watch
them run). Results are returned in task order, which keeps the output independent of the
number of workers and of scheduling.

Each process, the caller's included, builds its own task runner with `start(in_child)`: a child
must open its own database connection (an SQLite connection must not cross a fork).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from tldb.errors import TldbError

R = TypeVar("R")

#: How often the caller's `poll` runs while it waits for workers (seconds).
POLL_SECONDS = 0.2
#: How long terminate_pool waits for a stopped pool's manager thread to end (seconds).
MANAGER_JOIN_SECONDS = 10


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, as `taskset` or a container sets it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class SharedCounter:
    """A count several processes add to (files written), read by the caller for progress."""

    def __init__(self, shared: bool = True) -> None:
        """`shared=False` when no worker will be forked: a shared value costs a lock and a
        memory map (~1 ms), noticeable once per rank of a many-rank report."""
        fork = shared and can_fork()
        self._value = multiprocessing.get_context("fork").Value("q", 0) if fork else None
        self._local = 0

    def add(self, n: int = 1) -> int:
        if self._value is None:
            self._local += n
            return self._local
        with self._value.get_lock():
            self._value.value += n
            return self._value.value

    @property
    def value(self) -> int:
        return self._local if self._value is None else self._value.value


#: The task runner of a worker process, made once by `_start_worker` when it is forked.
_WORKER_RUN: Callable[[int], Any] | None = None


def _start_worker(start: Callable[[bool], Callable[[int], Any]]) -> None:
    """Executor initializer, in each forked worker: build its task runner. Ctrl-C is left to
    the calling process, which stops the workers (no traceback from every worker)."""
    global _WORKER_RUN
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_RUN = start(True)


def _run_in_worker(index: int) -> Any:
    assert _WORKER_RUN is not None, "a task ran in a worker that was not started"
    return _WORKER_RUN(index)


class _Ends:
    """Task positions heaviest first, taken from both ends under a lock: workers take the
    heaviest left, the calling process the lightest."""

    def __init__(self, order: list[int]):
        self._order = order
        self._front = 0
        self._back = len(order)
        self._lock = threading.Lock()
        #: Set when no task is to start any more (a task failed).
        self.stopped = False

    def front(self) -> int | None:
        with self._lock:
            if self.stopped or self._front >= self._back:
                return None
            self._front += 1
            return self._order[self._front - 1]

    def back(self) -> int | None:
        with self._lock:
            if self.stopped or self._front >= self._back:
                return None
            self._back -= 1
            return self._order[self._back]


def _feed(executor: ProcessPoolExecutor, ends: _Ends, futures: dict[Future, int]) -> None:
    """Hand each worker its next task as soon as it finishes one (a thread of the calling
    process). A task is submitted only to an idle worker: a task queued ahead could no longer
    be taken by the calling process, which would then sit idle while a worker works through
    the queue (two modules at the end of a report, seconds on a big log)."""
    running = set(futures)
    try:
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:
                    ends.stopped = True
                    return
                index = ends.front()
                if index is not None:
                    new = executor.submit(_run_in_worker, index)
                    futures[new] = index
                    running.add(new)
    except Exception:  # the pool was stopped (BrokenProcessPool, shut down): the caller knows
        ends.stopped = True


def run_tasks_forked(
    count: int,
    start: Callable[[bool], Callable[[int], R]],
    jobs: int,
    poll: Callable[[], None] | None = None,
    costs: Sequence[float] | None = None,
) -> list[R]:
    """Results of tasks 0..count-1, in task order, run on up to `jobs` processes (this one
    included), the costliest first when `costs` are given.

    `start(in_child)` gives the function that runs task i in the calling process. Falls back to
    running everything here, in task order, when jobs is 1, there is a single task, or fork is
    unavailable. An exception in any task is raised here, after the workers are stopped.
    """
    workers = min(jobs, count) - 1 if can_fork() else 0
    if workers <= 0:
        run = start(False)
        return [run(i) for i in range(count)]
    ends = _Ends(heaviest_first(costs) if costs is not None else list(range(count)))
    sys.stdout.flush()  # a child must not write out what the parent had buffered
    sys.stderr.flush()
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(start,),
    )
    results: dict[int, R] = {}
    futures: dict[Future, int] = {}
    feeder: threading.Thread | None = None
    try:
        # Each worker's first task is submitted before any thread of ours exists: the pool
        # forks its workers on the first submission.
        for _ in range(workers):
            index = ends.front()
            if index is not None:
                futures[executor.submit(_run_in_worker, index)] = index
        feeder = threading.Thread(target=_feed, args=(executor, ends, futures), daemon=True)
        feeder.start()
        run = start(False)
        while (index := ends.back()) is not None:
            results[index] = run(index)
            if poll is not None:
                poll()
        while feeder.is_alive():
            feeder.join(POLL_SECONDS)
            if poll is not None:
                poll()
        # Every future is done, unless one failed (others may still run: not waited for).
        failed = [f.exception() for f in futures if f.done() and f.exception() is not None]
        if failed:
            error = failed[0]
            if not isinstance(error, BrokenProcessPool):
                error.add_note("raised in a worker process (its traceback is above)")
            raise error
        for future, index in futures.items():
            results[index] = future.result()
    except BrokenProcessPool:
        _stop(executor, ends)
        raise TldbError("a worker process died (killed, or out of memory?)") from None
    except BaseException:
        _stop(executor, ends)
        raise
    executor.shutdown(wait=True)
    return [results[i] for i in range(count)]


def _stop(executor: ProcessPoolExecutor, ends: _Ends) -> None:
    """Stop the workers now, tasks running or not (an error or Ctrl-C must not wait for the
    other modules). Python 3.14's Executor.terminate_workers does this; before it, the pool's
    worker processes are only reachable through its `_processes` attribute."""
    ends.stopped = True  # the feeder thread submits nothing more
    terminate_pool(executor)


def terminate_pool(executor: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now and wait until they are gone, tasks running or not: after
    an error nothing may go on writing (a rank step into a staging folder being removed).
    `shutdown(wait=False)` alone leaves running tasks to finish, and a later `shutdown(wait=True)`
    (the pool's `with` block) no longer waits for them."""
    terminate = getattr(executor, "terminate_workers", None)
    if terminate is not None:  # pragma: no cover - Python 3.14+
        terminate()
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    manager = getattr(executor, "_executor_manager_thread", None)
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join()
    # The pool's manager thread sees its workers gone and ends, closing its wake-up pipe.
    # Waited for here: at interpreter exit concurrent.futures wakes every manager thread
    # still listed, and one closing its pipe at that moment made a one-line error exit print
    # "Bad file descriptor" and a traceback (Python 3.11; seen once in CI).
    if manager is not None:
        manager.join(timeout=MANAGER_JOIN_SECONDS)


def heaviest_first(costs: Sequence[float]) -> list[int]:
    """Task positions ordered by falling cost, ties in their given order."""
    return sorted(range(len(costs)), key=lambda i: -costs[i])
