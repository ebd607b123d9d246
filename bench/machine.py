#!/usr/bin/env python3
"""How much two busy processes get out of this machine's cores, for reading the other benches.

tlparse runs in one process; tldb keeps two (or one per core) busy. On a machine whose cores
are not independent (virtual CPUs sharing physical cores, a host that is oversubscribed), two
processes get less than twice the work of one done, and a ratio of wall times measured here
does not carry over to a machine where they do. This script times a fixed piece of pure
Python work (the same each time, no I/O) in one process, then in N processes started together,
alternating, and prints how many cores' worth the N processes got.

    python bench/machine.py              # 1 process against 2, three rounds
    python bench/machine.py --processes 4 --rounds 5

The benches import `parallel_cores()` to print it beside their figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

#: Iterations of the work unit: about a second of one core on this machine.
WORK = 3_000_000


def _work(iterations: int = WORK) -> float:
    """A fixed amount of interpreter work (integer arithmetic and a dict, like a parser's);
    returns the seconds it took in this process."""
    start = time.perf_counter()
    seen: dict[int, int] = {}
    value = 0
    for i in range(iterations):
        value = (value * 31 + i) & 0xFFFF
        seen[value] = i
    return time.perf_counter() - start


def _together(processes: int) -> float:
    """Seconds until `processes` copies of the work, started at once, have all finished."""
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    with context.Pool(processes) as pool:
        pool.map(_work, [WORK] * processes)
    return time.perf_counter() - start


def parallel_cores(processes: int = 2, rounds: int = 3) -> tuple[float, float, float]:
    """(seconds of one process alone, seconds of `processes` together, cores' worth they got),
    medians of alternated rounds. A machine with independent cores gives `processes`."""
    alone, together = [], []
    for _ in range(rounds):
        alone.append(_work())
        together.append(_together(processes))
    one, many = statistics.median(alone), statistics.median(together)
    return one, many, processes * one / many


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    one, many, cores = parallel_cores(args.processes, args.rounds)
    print(
        f"one process: {one:.2f} s; {args.processes} at once: {many:.2f} s; "
        f"they got {cores:.2f} cores' worth (of {args.processes})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
