#!/usr/bin/env python3
"""Benchmark: `--all-ranks-html` on 64, 256 and 1,024 ranks, tlparse 0.4.3 and tldb side by side.

Builds one folder of N rank logs per size from real rank logs (by default the two 2.5 MB
torch 2.13 rank logs of ../shared/corpus/torch213/g_2ranks, else the repository's
tests/data/torch213/ranks2), each copy with its envelopes' `"rank"` rewritten to its own
number, then runs, alternating, tlparse and tldb on each folder into fresh output folders and
prints per size:

- wall time and the ratio tldb / tlparse (target at 256 ranks: at most 0.35);
- the peak memory of the whole process tree (RSS summed over the command and all its workers,
  sampled every 20 ms), and tldb's 1,024-rank figure against its 64-rank one (target: within 10%);
- the bytes each output folder holds (target: tldb at most 1.2x tlparse's);
- tldb's time per stage (load, render, combine, cross-rank analyses), from `-v` output;
- first, how many cores' worth two busy processes get on this machine (bench/machine.py):
  tlparse keeps one core busy and tldb two, so the wall ratio depends on it.

    python bench/many_ranks.py                      # 64, 256 and 1024 ranks, one run each
    python bench/many_ranks.py --ranks 64 256 --runs 3 --jobs 2
    python bench/many_ranks.py --no-tlparse          # tldb only (stage table)

Only ratios within one run mean anything: the machine's speed varies from day to day.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_RANKS = ROOT.parent / "shared" / "corpus" / "torch213" / "g_2ranks"
_RANK_KEY = re.compile(rb'"rank": \d+')
_STAGE = re.compile(r"^stage ([\w ()-]+?): ([0-9.]+) s$", re.MULTILINE)


def _bench_helpers():
    """The process-tree sampler of report_vs_tlparse.py (one implementation for both benches)."""
    spec = importlib.util.spec_from_file_location(
        "rvt", Path(__file__).with_name("report_vs_tlparse.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_logs(given: list[Path]) -> list[Path]:
    if given:
        return given
    for folder in (SHARED_RANKS, ROOT / "tests" / "data" / "torch213" / "ranks2"):
        logs = sorted(folder.glob("dedicated_log_torch_trace_rank_*.log"))
        if logs:
            return logs
    sys.exit("no rank logs found: pass --source LOG...")


def build_folder(folder: Path, ranks: int, sources: list[Path]) -> int:
    """N rank logs, rank r a copy of sources[r % len] with `"rank": r`; total bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    bodies = [s.read_bytes() for s in sources]
    total = 0
    for rank in range(ranks):
        data = _RANK_KEY.sub(f'"rank": {rank}'.encode(), bodies[rank % len(bodies)])
        (folder / f"dedicated_log_torch_trace_rank_{rank}.log").write_bytes(data)
        total += len(data)
    return total


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


#: Sample values for the parameters of canned queries (every rank, the first compile).
QUERY_PARAMS = {"compile_id": "[0/0]", "rank": ""}


def canned_query_times(db_path: Path) -> dict[str, float]:
    """Seconds each canned query of datasette_metadata.yml takes on a combined database, run
    as Datasette runs it (read-only connection, the query's own SQL and parameters)."""
    import sqlite3

    import yaml

    metadata = yaml.safe_load((ROOT / "datasette_metadata.yml").read_text())
    queries = metadata["databases"]["trace"]["queries"]
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    times = {}
    for name, query in queries.items():
        params = {p: QUERY_PARAMS.get(p, "") for p in query.get("params", [])}
        start = time.perf_counter()
        conn.execute(query["sql"], params).fetchmany(1001)  # Datasette's default page of rows
        times[name] = time.perf_counter() - start
    conn.close()
    return times


def _drop_caches(logs: Path) -> None:
    """Write back dirty pages, drop the page, dentry and inode caches, and read the logs back
    in (so neither tool reads them from the disk). Best effort: without root, nothing."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return
    for log in logs.iterdir():
        log.read_bytes()


def _stage_times(stderr: str) -> dict[str, float]:
    """tldb's `-v` lines `stage NAME: S s` (load, render, combine, cross-rank)."""
    return {name: float(seconds) for name, seconds in _STAGE.findall(stderr)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--source", type=Path, nargs="*", default=[])
    parser.add_argument("--no-tlparse", action="store_true")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="before each run, write back and drop the kernel's caches, then read the logs "
        "again (needs root): the system CPU of creating files grew 2-3x over a day of runs "
        "that left gigabytes of cached files behind, whichever tool ran",
    )
    args = parser.parse_args()
    rvt = _bench_helpers()
    print(rvt.machine_line(), flush=True)
    sys.path.insert(0, str(ROOT / "tests"))
    import tlparse_parity

    oracle = None if args.no_tlparse else tlparse_parity.oracle_command()
    sources = source_logs(args.source)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tldb-ranks-", dir=args.work))
    rows = []
    try:
        for ranks in args.ranks:
            logs = work / f"in_{ranks}"
            size = build_folder(logs, ranks, sources)
            # (wall s, peak RSS MB, peak PSS MB, CPU s, of which system s) of each run, per tool
            results: dict[str, list[tuple[float, ...]]] = {"tlparse": [], "tldb": []}
            stages: list[dict[str, float]] = []
            written: dict[str, int] = {}
            for _ in range(args.runs):
                for tool in ("tlparse", "tldb"):
                    if tool == "tlparse" and oracle is None:
                        continue
                    out = work / f"out_{tool}"
                    shutil.rmtree(out, ignore_errors=True)
                    if args.drop_caches:
                        _drop_caches(logs)
                    if tool == "tlparse":
                        command = [*oracle, str(logs), "-o", str(out)]
                    else:
                        command = [sys.executable, "-m", "tldb", "report", str(logs)]
                        command += ["-o", str(out), "-j", str(args.jobs), "-v"]
                    command += ["--all-ranks-html", "--overwrite", "--no-browser"]
                    if tool == "tldb":  # -v prints the stage times on stderr: keep them
                        log = work / "stderr.txt"
                        command = ["sh", "-c", 'exec "$@" 2>"$0"', str(log), *command]
                    wall, rss, pss, cpu, system = rvt.run(command)
                    if tool == "tldb":
                        stages.append(_stage_times(log.read_text()))
                    results[tool].append((wall, rss, pss, cpu, system))
                    written[tool] = folder_bytes(out)
                    if tool == "tldb" and ranks == max(args.ranks):
                        slowest = sorted(
                            canned_query_times(out / "ranks.db").items(), key=lambda x: -x[1]
                        )
                        print(
                            f"  canned queries on ranks.db ({ranks} ranks), slowest first: "
                            + ", ".join(f"{n} {t:.2f} s" for n, t in slowest[:6]),
                            flush=True,
                        )
                    shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(logs, ignore_errors=True)
            median = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
            rows.append((ranks, size, results, written, median))
            _print_row(rows[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_summary(rows)
    return 0


def _median(values: list[tuple[float, ...]], i: int) -> float:
    return statistics.median(v[i] for v in values) if values else float("nan")


def _print_row(row) -> None:
    ranks, size, results, written, stages = row
    t_wall, t_mem = _median(results["tlparse"], 0), _median(results["tlparse"], 1)
    d_wall, d_mem = _median(results["tldb"], 0), _median(results["tldb"], 1)
    ratio = d_wall / t_wall if results["tlparse"] else float("nan")
    bytes_ratio = written["tldb"] / written["tlparse"] if "tlparse" in written else float("nan")
    print(f"{ranks} ranks ({size / 1e6:.0f} MB of logs)", flush=True)
    print(
        f"  tlparse: {t_wall:7.1f} s {t_mem:7.0f} MB  writes {written.get('tlparse', 0) / 1e6:7.0f} MB"
    )
    print(f"  tldb:    {d_wall:7.1f} s {d_mem:7.0f} MB  writes {written['tldb'] / 1e6:7.0f} MB")
    print(f"  ratio:   time {ratio:.2f}   bytes {bytes_ratio:.2f}")
    # CPU seconds (the process and all its workers) and PSS (shared pages counted once): on a
    # shared machine a 2-core run's wall time suffers more than a 1-core run's, CPU does not.
    # The system part (the kernel: file creation, page cache, page faults) shows how much of a
    # gap Python cannot close.
    t_cpu, d_cpu = _median(results["tlparse"], 3), _median(results["tldb"], 3)
    t_sys, d_sys = _median(results["tlparse"], 4), _median(results["tldb"], 4)
    print(
        f"  CPU:     tlparse {t_cpu:.1f} s (system {t_sys:.1f}), tldb {d_cpu:.1f} s "
        f"(system {d_sys:.1f}) (ratio {d_cpu / t_cpu:.2f}; "
        f"on 2 idle cores at best {d_cpu / 2 / t_cpu:.2f} of tlparse's wall);"
        f" tldb PSS {_median(results['tldb'], 2):.0f} MB"
    )
    print("  tldb stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()), flush=True)


def _print_summary(rows) -> None:
    names = sorted({name for row in rows for name in row[4]})
    print(
        "\n| ranks | "
        + " | ".join(names)
        + " | tldb wall | tlparse wall | ratio | tldb MB | bytes ratio |"
    )
    print("|---:|" + "---:|" * (len(names) + 5))
    for ranks, _size, results, written, stages in rows:
        t_wall, d_wall = _median(results["tlparse"], 0), _median(results["tldb"], 0)
        cells = [f"{stages.get(n, float('nan')):.1f}" for n in names]
        bytes_ratio = written["tldb"] / written["tlparse"] if "tlparse" in written else float("nan")
        print(
            f"| {ranks} | "
            + " | ".join(cells)
            + f" | {d_wall:.1f} | {t_wall:.1f} | {d_wall / t_wall:.2f} | {_median(results['tldb'], 1):.0f} | {bytes_ratio:.2f} |"
        )
    mems = {row[0]: _median(row[2]["tldb"], 1) for row in rows}
    psss = {row[0]: _median(row[2]["tldb"], 2) for row in rows}
    if 64 in mems and 1024 in mems:
        print(
            f"memory 1024 vs 64 ranks: x{mems[1024] / mems[64]:.2f} RSS summed over the tree,"
            f" x{psss[1024] / psss[64]:.2f} PSS (target within 10%)"
        )


if __name__ == "__main__":
    sys.exit(main())
