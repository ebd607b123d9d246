"""Running independent tasks in forked worker processes, results in task order.

Rendering a report is a handful of modules that share nothing but the read-only database and
the output folder, so on a machine with several cores they can run side by side. Workers are
forked (they inherit the modules, the manifest and the plan without pickling them) and pull the
next task from a shared counter, so a slow task never holds up a queue of others: callers list
the heaviest tasks first. Results come back pickled and are returned in task order, which
keeps the output independent of the number of workers and of scheduling.

Each process, the caller's included, builds its own task runner with `start(in_child)`: a child
must open its own database connection (an SQLite connection must not cross a fork).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from tldb.errors import TldbError

R = TypeVar("R")

#: How often the caller's `poll` runs while it waits for workers (seconds).
POLL_SECONDS = 0.2


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


def _take(counter, order: list[int]) -> int | None:
    """The next task to run (tasks are handed out in `order`), or None when all are taken."""
    with counter.get_lock():
        position = counter.value
        if position >= len(order):
            return None
        counter.value = position + 1
        return order[position]


def _child(start, counter, order: list[int], pipe: Connection, other_end: Connection) -> None:
    """A worker: run tasks until none is left, then send [(index, result)] or the error."""
    other_end.close()  # so that a dead parent means a broken pipe here, not a blocked send
    try:
        run = start(True)
        done = []
        while (index := _take(counter, order)) is not None:
            done.append((index, run(index)))
        message: tuple[str, Any] = ("ok", done)
    except KeyboardInterrupt:
        os._exit(130)
    except BaseException as exc:  # every failure goes back to the caller
        exc.add_note("raised in a worker process:\n" + "".join(traceback.format_exc()))
        message = ("error", exc)
    try:
        payload = pickle.dumps(message)
    except Exception:  # an unpicklable error still reaches the caller as text
        text = "".join(traceback.format_exception(message[1]))
        payload = pickle.dumps(("error", TldbError(f"a worker failed:\n{text}")))
    with contextlib.suppress(OSError):
        pipe.send_bytes(payload)
    pipe.close()


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
    unavailable. An exception in any task is raised here, after the other workers are stopped.
    """
    workers = min(jobs, count) - 1 if can_fork() else 0
    if workers <= 0:
        run = start(False)
        return [run(i) for i in range(count)]
    order = heaviest_first(costs) if costs is not None else list(range(count))
    context = multiprocessing.get_context("fork")
    counter = context.Value("i", 0)
    sys.stdout.flush()  # a child must not write out what the parent had buffered
    sys.stderr.flush()
    children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    results: dict[int, R] = {}
    finished = False
    try:
        for _ in range(workers):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(start, counter, order, send, receive))
            process.start()
            send.close()
            children.append((process, receive))
        run = start(False)
        while (index := _take(counter, order)) is not None:
            results[index] = run(index)
        pending = {receive: process for process, receive in children}
        while pending:
            for receive in wait(list(pending), timeout=POLL_SECONDS):
                process = pending.pop(receive)
                try:
                    status, value = pickle.loads(receive.recv_bytes())
                except EOFError:
                    process.join()
                    raise TldbError(
                        f"a worker process died (exit code {process.exitcode})"
                    ) from None
                if status == "error":
                    raise value
                results.update(value)
            if poll is not None:
                poll()
        finished = True
    finally:
        for process, receive in children:
            if not finished and process.is_alive():
                process.terminate()
            process.join()
            receive.close()
    return [results[i] for i in range(count)]


def heaviest_first(costs: Sequence[float]) -> list[int]:
    """Task positions ordered by falling cost, ties in their given order."""
    return sorted(range(len(costs)), key=lambda i: -costs[i])
