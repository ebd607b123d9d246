#!/usr/bin/env python3
"""Benchmark: tldb against tlparse 0.4.3 on the big benchmark log (issue 7's figures).

Builds the ~406 MB log with ../shared/tools/make_big_log.sh (REPS=60) unless --log is given,
then runs, alternating, `tlparse LOG -o A`, `tldb report LOG -o B` and a re-render
`tldb report B/trace.db -o C` (median of --runs), then `tldb load`, the reader against a bare Python loop
(split lines, parse the JSON envelopes: the floor for Python), and, with --double, the memory
of a log twice as large. Prints wall time, the peak memory of the whole process tree (RSS
summed over the command and its workers, sampled; PSS beside it) and the ratios to the
targets; first, how many cores' worth two busy processes get on this machine (bench/machine.py:
tlparse keeps one core busy, tldb two).

  python bench/report_vs_tlparse.py                 # everything, 3 runs each
  python bench/report_vs_tlparse.py --runs 1 --log /tmp/big.log
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc (parent pid is the 4th field of /proc/PID/stat)."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    return kids


def _tree_memory(root: int) -> tuple[int, int]:
    """(RSS, PSS) in kB summed over root and all its descendants, now. RSS counts pages
    shared by forked processes once per process (an upper bound); PSS splits them."""
    kids, stack, rss, pss = _children(), [root], 0, 0
    while stack:
        pid = stack.pop()
        stack.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def run(cmd: list[str], env=None) -> tuple[float, float, float, float, float]:
    """(wall seconds, peak RSS and peak PSS of the whole process tree in MB, CPU seconds of
    the tree: user + system, its waited-for descendants included, and of those the system
    seconds) of one command.

    The tree (the command, its workers and their children) is sampled every 20 ms; a peak
    shorter than that can be missed, so the largest single process's ru_maxrss is taken
    too and the RSS figure is the larger of the two.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, pss = _tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, max(peak[0], usage.ru_maxrss) / 1024, peak[1] / 1024, cpu, usage.ru_stime


def make_log(path: Path, reps: int) -> Path:
    if not path.exists():
        env = {**os.environ, "REPS": str(reps)}
        subprocess.run(
            ["bash", str(SHARED / "tools" / "make_big_log.sh"), str(path)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    return path


def oracle() -> list[str]:
    spec = importlib.util.spec_from_file_location("parity", SHARED / "tools" / "parity.py")
    parity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(parity)
    return parity.oracle_command(), parity


def reader_vs_floor(log: Path, repeat: int = 3) -> tuple[float, float, float]:
    """Seconds for tldb's reader stage (what the reader process of a pipelined load does:
    lines, glog prefixes, envelope JSON and tlparse's type checks, payload boundaries), for
    the whole reader in one process (also un-indenting, md5-checking and decoding payloads,
    kinds and compile ids), and for a bare split-and-parse loop over the log.

    The log is read once first, so that no figure pays for the disk, and each is the best of
    `repeat` runs (CPU-bound work on a shared machine: noise only ever adds time).
    """
    import orjson

    sys.path.insert(0, str(ROOT))
    from tldb.reader import Reader

    def time_reader(defer: bool) -> float:
        start = time.perf_counter()
        with log.open("rb") as stream:
            for _ in Reader(stream, defer=defer):
                pass
        return time.perf_counter() - start

    def time_floor() -> float:
        start = time.perf_counter()
        with log.open("rb") as stream:
            for line in stream:
                if line[:1] != b"\t":
                    at = line.find(b"] ")
                    if at > 0:
                        try:  # noqa: SIM105 - a with-block costs more in this hot loop
                            orjson.loads(line[at + 2 :])
                        except orjson.JSONDecodeError:
                            pass
        return time.perf_counter() - start

    with log.open("rb") as stream:
        while stream.read(1 << 24):
            pass
    stage = min(time_reader(True) for _ in range(repeat))
    whole = min(time_reader(False) for _ in range(repeat))
    floor = min(time_floor() for _ in range(repeat))
    return stage, whole, floor


def machine_line() -> str:
    """How many cores' worth two busy processes get here (bench/machine.py): tlparse keeps one
    busy, tldb two, so the wall ratio depends on it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import parallel_cores

    one, two, cores = parallel_cores()
    return f"machine: two busy processes got {cores:.2f} cores' worth ({one:.2f} s alone, {two:.2f} s together)"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "tldb-bench-big.log")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--double", action="store_true", help="also measure a log twice as large")
    args = ap.parse_args()
    log = make_log(args.log, 60)
    print(machine_line(), flush=True)
    size_mb = log.stat().st_size / 1e6
    tlparse, parity = oracle()
    tldb = [sys.executable, "-m", "tldb"]
    work = Path(tempfile.mkdtemp(prefix="tldb-bench-"))
    try:
        a, b, c = work / "tlparse", work / "tldb", work / "rerender"
        ref, mine, rerender = [], [], []
        # Alternating, so that every command meets the disk in the same state (each writes
        # 1.2 GB and deletes the previous 1.2 GB: back-to-back runs would queue behind the
        # write-back of the one before).
        for _ in range(args.runs):
            ref.append(run([*tlparse, str(log), "-o", str(a), "--overwrite", "--no-browser"]))
            mine.append(
                run([*tldb, "report", str(log), "-o", str(b), "--overwrite", "--no-browser"])
            )
            rerender.append(
                run(
                    [
                        *tldb,
                        "report",
                        str(b / "trace.db"),
                        "-o",
                        str(c),
                        "--overwrite",
                        "--no-browser",
                    ]
                )
            )
        load = run([*tldb, "load", str(log), "--db", str(work / "load.db")])
        double = None
        if args.double:
            # Every child is measured before this process does any work of its own: on Linux a
            # child's ru_maxrss starts from its parent's high-water mark at fork time.
            double_log = make_log(log.with_name(log.stem + "-x2.log"), 120)
            double = run(
                [
                    *tldb,
                    "report",
                    str(double_log),
                    "-o",
                    str(work / "x2"),
                    "--overwrite",
                    "--no-browser",
                ]
            )
        comparison = parity.compare(a, b)
        stage, whole, floor = reader_vs_floor(log)

        def med(rows, i):
            return statistics.median(r[i] for r in rows)

        def memory(rows) -> str:
            return (
                f"CPU {med(rows, 3):6.2f} s  tree RSS {med(rows, 1):5.0f} MB "
                f"(PSS {med(rows, 2):4.0f})"
            )

        t_ref, t_tldb, t_re = med(ref, 0), med(mine, 0), med(rerender, 0)
        print(f"log: {log} ({size_mb:.0f} MB), {args.runs} run(s) each, medians")
        print(f"tlparse report : {t_ref:7.2f} s  {memory(ref)}")
        print(
            f"tldb report    : {t_tldb:7.2f} s  {memory(mine)}  "
            f"ratio {t_tldb / t_ref:.2f} (issue 17 target <= 0.25; memory target <= 150 MB)"
        )
        print(
            f"tldb re-render : {t_re:7.2f} s  {memory(rerender)}  "
            f"ratio {t_re / t_ref:.2f} (issue 17 target <= 0.15)"
        )
        print(f"tldb load      : {load[0]:7.2f} s  {memory([load])}  {size_mb / load[0]:.0f} MB/s")
        print(
            f"reader stage   : {stage:7.2f} s  bare loop {floor:.2f} s  ratio {stage / floor:.2f} "
            f"(target <= 2; best of 3 each); whole reader in one process {whole:.2f} s "
            f"({whole / floor:.2f}x)"
        )
        print(
            f"parity         : {comparison['matched']}/{comparison['total']} files, "
            f"missing {len(comparison['missing'])}, differ {len(comparison['differ'])}"
        )
        if double is not None:
            print(
                f"tldb report x2 : {double[0]:7.2f} s  {memory([double])}  "
                f"(memory x{double[1] / med(mine, 1):.2f} for a log x2; target <= 1.10)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
