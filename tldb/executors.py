"""Where rank steps run: local processes or a Dask cluster, behind one `Executor` interface.

A many-rank report is a list of independent steps (load a rank, render a rank). Both engines
are driven through `concurrent.futures.Executor`, so there is one code path:
- locally, a `ProcessPoolExecutor` (forked workers, which reuse the imported modules and keep
  their module registry from one rank to the next);
- on a cluster, `distributed.Client(ADDRESS).get_executor()` (the optional `tldb[dask]` extra):
  logs and output must be on a file system every worker sees, and tldb installed on each worker.

`run_steps` submits steps costliest first, retries a failed step once (a worker may have been
lost), and names the rank and the error when a step fails twice. Results come back in step
order, so the output never depends on which worker ran what.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import multiprocessing
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from tldb.errors import InputError, TldbError
from tldb.parallel import can_fork, heaviest_first, terminate_pool

#: Seconds to wait for a Dask scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = 10


class StepFailed(TldbError):
    """A rank step failed on its retry too."""


class _InProcess(Executor):
    """Runs each step at once in this process (one job, or no fork on this platform)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def rank_executor(
    jobs: int, scheduler: str | None = None, started: Executor | None = None
) -> Iterator[Executor]:
    """The executor for rank steps: `started` when given (forked_early), a Dask cluster's
    when `scheduler` is given, else `jobs` local processes (this process alone when jobs
    is 1)."""
    if started is not None:
        yield started
        return
    if scheduler:
        with _dask_executor(scheduler) as executor:
            yield executor
        return
    if jobs <= 1 or not can_fork():
        yield _InProcess()
        return
    sys.stdout.flush()  # a forked worker must not write out what this process had buffered
    sys.stderr.flush()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as executor:
        try:
            yield executor
        except BaseException:
            terminate_pool(executor)
            raise


@contextlib.contextmanager
def forked_early(jobs: int, scheduler: str | None = None) -> Iterator[Executor | None]:
    """rank_executor's local pool with its workers forked now, before this process builds
    anything per rank; None for a Dask cluster or one job. A forked worker's resident size
    starts at its parent's: forked after a thousand ranks' listing and keys (and the
    allocator's high-water of building them, 2 to 4 MB), each worker carried them to the
    end, so the process tree's peak grew by three times what the parent had grown."""
    if scheduler or jobs <= 1 or not can_fork():
        yield None
        return
    with rank_executor(jobs) as executor:
        executor.submit(int).result()  # a fork pool starts all its workers with its first task
        yield executor


@contextlib.contextmanager
def _dask_executor(address: str) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "--scheduler needs the Dask distributed package: pip install 'tldb[dask]'"
        ) from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
    try:
        # pure=False: a step submitted again (a retry) must run again, not return the same
        # failed result from the cluster's cache of task keys.
        executor = client.get_executor(pure=False)
        _CLUSTER_THREADS[id(executor)] = sum(client.nthreads().values())
        try:
            yield executor
        finally:
            _CLUSTER_THREADS.pop(id(executor), None)
    finally:
        client.close()


@dataclass
class Step:
    """One unit of work: `function(*args)`, known to the user by `label` (e.g. "rank 3 load")."""

    label: str
    function: Callable
    args: tuple
    cost: float = 0


class LazySteps(Sequence[Step]):
    """Steps made when submitted, from their costs and a function of the step's position:
    a many-rank run holds one float per rank instead of a Step, its label and arguments
    (about 600 bytes a rank in the driving process for the whole stage)."""

    def __init__(self, costs: Sequence[float], make: Callable[[int], Step]) -> None:
        self.costs = list(costs)
        self._make = make

    def __len__(self) -> int:
        return len(self.costs)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._make(range(len(self))[i])


def give_back_memory(collect: bool = True) -> None:
    """Hand the memory freed so far back to the system: the C allocator keeps freed blocks
    for reuse, so a process's resident size stays at its high-water mark (a load phase's
    records, a combine's SQLite cache) long after the objects are gone. With `collect`,
    cycles are collected first. A no-op where the C library has no malloc_trim."""
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _same(result: Any) -> Any:
    return result


#: Steps submitted and not finished, at most, unless the executor's workers need more (a
#: Dask cluster's: see window). A future and its queued call cost about 3 KB of the driving
#: process's memory, which it keeps: all 1,024 ranks' steps submitted at once made the driver
#: grow with the number of ranks.
IN_FLIGHT = 64


def window(executor: Executor) -> int:
    """How many steps to keep submitted: IN_FLIGHT, or twice the worker threads of a larger
    Dask cluster (so none of them waits for work)."""
    return max(IN_FLIGHT, 2 * _CLUSTER_THREADS.get(id(executor), 0))


#: Worker threads of the Dask cluster behind an executor of _dask_executor, by id(executor).
_CLUSTER_THREADS: dict[int, int] = {}


def run_steps(
    executor: Executor,
    steps: Sequence[Step],
    on_done: Callable[[int], None] | None = None,
    retries: int = 1,
    keep: Callable[[Any], Any] = _same,
) -> list:
    """Results of every step, in step order, each as `keep(result)` (what the caller keeps of
    it, taken as it arrives: a thousand ranks' full results would grow the caller with every
    rank). Steps are submitted costliest first, at most window(executor) at a time; a failed
    step is submitted again up to `retries` times; `on_done(count)` hears each completion."""
    costs = steps.costs if isinstance(steps, LazySteps) else [step.cost for step in steps]
    order = iter(heaviest_first(costs))
    attempts = [0] * len(steps)
    results: list = [None] * len(steps)
    pending: dict[Future, int] = {}
    limit = window(executor)

    def submit(i: int) -> None:
        step = steps[i]
        attempts[i] += 1
        pending[executor.submit(step.function, *step.args)] = i

    def fill() -> None:
        while len(pending) < limit:
            i = next(order, None)
            if i is None:
                return
            submit(i)

    fill()
    done_count = 0
    try:
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                i = pending.pop(future)
                error = future.exception()
                if error is None:
                    results[i] = keep(future.result())
                    done_count += 1
                    if on_done is not None:
                        on_done(done_count)
                elif attempts[i] <= retries and not isinstance(error, TldbError):
                    submit(i)
                else:
                    raise StepFailed(f"{steps[i].label} failed: {_one_line(error)}") from error
            fill()
    finally:
        for future in pending:
            future.cancel()
    return results


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
