"""Wall time of loading 8 rank logs into their databases with 1 worker and with 2.

The 8 logs are built from the corpus's rank logs (multi_rank_runtime ranks 0-6 and the
collectives_parity rank), each repeated --repeat times so a load is long enough to measure
(the default makes 8 logs of 17-37 MB, 257 MB in all). Two figures, through the rank steps'
executor as `tldb report DIR --all-ranks-html` runs them: one worker (each load reading its log
in a second process, what `-j 1` does) and two workers.

    python bench/multirank_load.py [--repeat 20] [--runs 3] [--report]

--report also times the whole `--all-ranks-html` report (load, render, combine, landing).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tldb import rankstep
from tldb.executors import rank_executor
from tldb.module_api import ReportConfig
from tldb.multirank import load_ranks, run_multi_rank
from tldb.rankfiles import discover
from tldb.report import ReportRequest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tlparse-tests" / "inputs"


def build_logs(folder: Path, repeat: int) -> int:
    sources = [
        CORPUS / "multi_rank_runtime" / f"dedicated_log_torch_trace_rank_{r}.log" for r in range(7)
    ]
    sources.append(CORPUS / "collectives_parity" / "dedicated_log_torch_trace_rank_0.log")
    total = 0
    for rank, source in enumerate(sources):
        data = source.read_bytes()
        if not data.endswith(b"\n"):
            data += b"\n"
        target = folder / f"dedicated_log_torch_trace_rank_{rank}.log"
        target.write_bytes(data * repeat)
        total += len(data) * repeat
    return total


def _cpu() -> float:
    """CPU seconds of this process and its finished workers."""
    own, workers = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def timed(action, runs: int) -> tuple[float, str]:
    """Median wall time over runs, and a text with the median CPU time (all processes) beside
    it: on a busy machine the two tell contention from the work itself."""
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), _cpu()
        action()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    wall = statistics.median(walls)
    return wall, f"{wall:.2f} s wall ({statistics.median(cpus):.2f} s CPU)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="copies of each log in its file")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median shown)")
    parser.add_argument("--report", action="store_true", help="also time the whole report")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tldb-bench-"))
    try:
        logs = work / "logs"
        logs.mkdir()
        size = build_logs(logs, args.repeat)
        folder = discover(logs)
        print(f"8 rank logs, {size / 1e6:.1f} MB in all; {os.cpu_count()} cores")
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        walls = {}
        keys = {
            log.rank: rankstep.step_key(log.path, ReportConfig(), None, []) for log in folder.logs
        }
        for label, workers in (("1 worker (pipelined reads)", 1), ("2 workers", 2)):
            out = work / "load"

            def load(out: Path = out, workers: int = workers) -> None:
                shutil.rmtree(out, ignore_errors=True)
                with rank_executor(workers) as executor:
                    load_ranks(folder, out, executor, keys, workers, current={})

            walls[label], text = timed(load, args.runs)
            print(f"load, {label:26s}: {text}")
        speedup = walls["1 worker (pipelined reads)"] / walls["2 workers"]
        print(f"speedup of 2 workers over one process: {speedup:.2f}x (target >= 1.7)")
        if args.report:
            for workers in (1, 2):
                request = ReportRequest(
                    source=logs,
                    out_dir=work / f"report{workers}",
                    config=ReportConfig(),
                    overwrite=True,
                )

                def report(r: ReportRequest = request, w: int = workers) -> None:
                    with contextlib.redirect_stdout(io.StringIO()):
                        run_multi_rank(r, w)

                print(f"whole report, {workers} worker(s): {timed(report, args.runs)[1]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
