"""`tldb serve BIG.log`: load time, time to the first pages, latency of every page, memory.

    python bench/serve_on_demand.py [--log /work/bench-data/big.log]
        [--static /work/bench-data/big_report] [--work DIR]

1. `tldb load LOG --db W/load.db` and `tldb load LOG --serving-tables --db W/load_st.db`,
   timed: wall and CPU seconds (user + system of the command and every process it waited
   for). `tldb load` is the reference: `tldb serve LOG` must load no slower; the serving
   tables (issue 18) come after its load, while it serves.
2. `tldb serve LOG --db W/serve.db --port 0`, timed from start: the load's end (its statistics
   line on stderr; CPU seconds of the server and the processes it waited for until then, from
   /proc), the server's banner, the first answer of an on-demand page (polled from
   the banner on) and of index.html (which waits for the cached render), and when the serving
   tables are in place (the server's "serving tables ... in place" line on stderr).
   The long files (chromium_events.json, raw.jsonl, raw.log) are fetched once right after
   the first page, while the cached render runs (streamed: time to the first byte and to the
   last), and once more after index.html (sent from the files made ahead).
3. Every file of the static report (--static, read only; without it, files are listed from a
   `tldb report` of the log into W/static) is fetched once, in random order (seed 17), one at a
   time; the latency of each is the time to its last byte; sizes are checked against the
   static files.
   Files over 1 s also show their time to the first byte (streamed files).
4. Memory: the server process's RSS (VmRSS, sampled every 20 ms) and, apart, the peak RSS of
   its children (the cached render and its workers, the serving tables' build).
With --quick, steps 3 and the long files of step 2 are skipped (loads and first pages only).
With --repeat N, step 1 and the load of step 2 run N times, alternating (all but the last
server stopped at the end of its load), and the load figures are the medians.
The load average is printed at the start and at the end: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of the children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            for child in map(int, text):
                found += [child, *children(child)]
    except OSError:
        pass
    return found


class Sampler(threading.Thread):
    """Peak RSS of the server, and of its children summed, every 20 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.server = 0.0
        self.kids = 0.0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            self.server = max(self.server, rss_mb(self.pid))
            self.kids = max(self.kids, sum(rss_mb(c) for c in children(self.pid)))
            time.sleep(0.02)


def fetch(url: str) -> tuple[float, int, float]:
    """Seconds to the last byte, size, seconds to the first byte."""
    start = time.perf_counter()
    first = None
    with urllib.request.urlopen(url, timeout=600) as response:
        size = 0
        while chunk := response.read(1 << 16):
            first = first or time.perf_counter() - start
            size += len(chunk)
    return time.perf_counter() - start, size, first or time.perf_counter() - start


def poll(url: str, limit: float = 600) -> float:
    """Time when url first answers 200 (polling every 10 ms)."""
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        try:
            fetch(url)
            return time.perf_counter()
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"{url} never answered")


def plain_load(tldb: list[str], log: Path, db: Path, extra: list[str]) -> tuple[float, float]:
    """(wall, CPU seconds) of `tldb load LOG [extra] --db DB`."""
    db.unlink(missing_ok=True)
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(
        [*tldb, "load", str(log), *extra, "--db", str(db)], check=True, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start, children_cpu() - cpu


def serve_load(tldb: list[str], log: Path, db: Path) -> tuple[float, float]:
    """(wall, CPU seconds) of `tldb serve LOG --db DB` until its load ends (its statistics
    line); the server is stopped then."""
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    server = subprocess.Popen(
        [*tldb, "serve", str(log), "--db", str(db), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    for line in server.stderr:
        if line.startswith("Stats {"):
            result = time.perf_counter() - start, cpu_seconds(server.pid)
            break
    else:
        raise SystemExit("tldb serve ended before its load did")
    server.terminate()  # SIGTERM: stops a server still starting as well as a running one
    try:
        server.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, default=Path("/work/bench-data/big.log"))
    parser.add_argument("--static", type=Path, default=Path("/work/bench-data/big_report"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/tldb-bench-serve"))
    parser.add_argument("--quick", action="store_true", help="loads and first pages only")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of the three loads, alternating (the last with the pages); medians shown",
    )
    args = parser.parse_args()
    print(f"load average at start: {loadavg()}", flush=True)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tldb = [sys.executable, "-m", "tldb"]
    static = args.static
    if not (static / "index.html").is_file():
        static = work / "static"
        subprocess.run(
            [*tldb, "report", str(args.log), "-o", str(static), "--overwrite"], check=True
        )

    rounds: list[dict[str, tuple[float, float]]] = []  # name -> (wall, CPU seconds)
    for n in range(args.repeat):
        rounds.append(
            {
                "load.db": plain_load(tldb, args.log, work / "load.db", []),
                "load_st.db": plain_load(tldb, args.log, work / "load_st.db", ["--serving-tables"]),
            }
        )
        if n < args.repeat - 1:
            rounds[-1]["serve"] = serve_load(tldb, args.log, work / "serve.db")

    # Listed before the server starts: listing 22k files takes a second of its own.
    files = sorted(
        p.relative_to(static).as_posix()
        for p in static.rglob("*")
        if p.is_file() and p.name != "trace.db"
    )
    demand = next(f for f in files if f.endswith(".txt") and "/" in f)
    (work / "serve.db").unlink(missing_ok=True)
    start = time.perf_counter()
    server = subprocess.Popen(
        [*tldb, "serve", str(args.log), "--db", str(work / "serve.db"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = Sampler(server.pid)
    sampler.start()
    load_end: list[float] = []
    load_cpu: list[float] = []
    tables_at: list[float] = []
    tables_building: list[bool] = []

    def watch_stderr() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            if line.startswith("Stats {") and not load_end:
                load_end.append(time.perf_counter())
                load_cpu.append(cpu_seconds(server.pid))
            elif "serving tables" in line and "in place" in line and not tables_at:
                tables_at.append(time.perf_counter())
            elif "serving tables" in line:
                tables_building.append(True)

    threading.Thread(target=watch_stderr, daemon=True).start()
    assert server.stdout is not None
    banner = server.stdout.readline()
    banner_at = time.perf_counter()
    base = banner.split()[3].rstrip("/")
    while not server.stdout.readline().startswith("Press Ctrl-C"):
        pass
    first_answer = poll(f"{base}/-/tldb.json")
    first_demand = poll(f"{base}/report/{urllib.request.quote(demand)}")
    with urllib.request.urlopen(f"{base}/-/tldb.json", timeout=60) as response:
        database = next(iter(json.load(response)["databases"].values()))["url"]
    first_table = poll(f"{base}{database}/compiles")
    long_files = [] if args.quick else ["chromium_events.json", "raw.jsonl", "raw.log"]
    streamed = {name: fetch(f"{base}/report/{name}") for name in long_files}
    first_index = poll(f"{base}/report/")
    ahead_wait = time.perf_counter()
    ahead = {}
    for name in long_files:  # the files made ahead come after the cached pages: wait for them
        while time.perf_counter() - ahead_wait < 120:
            ahead[name] = fetch(f"{base}/report/{name}")
            if ahead[name][0] < 1.0 or name == "raw.log":
                break
            time.sleep(1)
    loaded = load_end[0]
    if args.quick:
        files = []
    else:
        random.Random(17).shuffle(files)
    latencies = []
    first_bytes: dict[str, float] = {}
    wrong = []
    for relative in files:
        seconds, size, first_byte = fetch(f"{base}/report/{urllib.request.quote(relative)}")
        latencies.append((seconds, relative))
        if seconds > 1.0:
            first_bytes[relative] = first_byte
        if size != (static / relative).stat().st_size:
            wrong.append(relative)
    while tables_building and not tables_at and server.poll() is None:
        time.sleep(0.1)  # the serving tables, if still being built
    server.send_signal(2)
    server.wait(timeout=120)
    sampler.stop = True
    latencies.sort()
    n = len(latencies)
    print(f"log: {args.log} ({args.log.stat().st_size / 1e6:.0f} MB), {n} files")
    rounds[-1]["serve"] = (loaded - start, load_cpu[0])
    if len(rounds) > 1:
        for number, measured in enumerate(rounds, 1):
            print(
                f"round {number}: "
                + ", ".join(f"{k} {w:.1f} s wall {c:.1f} s CPU" for k, (w, c) in measured.items())
            )
        print(f"medians of {len(rounds)} rounds:")

    def median(name: str) -> tuple[float, float]:
        return (
            statistics.median(r[name][0] for r in rounds),
            statistics.median(r[name][1] for r in rounds),
        )

    wall, cpu = median("load.db")
    st_wall, st_cpu = median("load_st.db")
    serve_wall, serve_cpu = median("serve")
    print(f"tldb load:                       {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"tldb load --serving-tables:      {st_wall:.1f} s wall, {st_cpu:.1f} s CPU")
    print(
        f"tldb serve LOG, its load:        {serve_wall:.1f} s wall, {serve_cpu:.1f} s CPU "
        f"(server and the processes it waited for, at the end of the load)"
    )
    print(
        f"  serve's load vs tldb load:     {serve_wall / wall:.2f}x wall, "
        f"{serve_cpu / cpu:.2f}x CPU (target: no slower than tldb load)"
    )
    print(
        f"  vs tldb load --serving-tables: {serve_wall / st_wall:.2f}x wall, "
        f"{serve_cpu / st_cpu:.2f}x CPU"
    )
    print(f"  banner (serving)               {banner_at - loaded:+.2f} s after the load")
    print(f"  first answer (/-/tldb.json)    {first_answer - loaded:+.2f} s after the load")
    print(f"  first on-demand page answered  {first_demand - loaded:+.2f} s after the load")
    print(f"  first table page (compiles)    {first_table - loaded:+.2f} s after the load")
    print(f"  index.html answered            {first_index - loaded:+.2f} s after the load")
    if tables_at:
        print(f"  serving tables in place        {tables_at[0] - loaded:+.2f} s after the load")
    else:
        print("  serving tables in place        (no such line: built during the load)")
    for name in long_files:
        (s1, size, f1), (s2, _, f2) = streamed[name], ahead[name]
        print(
            f"  {name} ({size / 1e6:.0f} MB): during the cached render {s1:.2f} s "
            f"(first byte {f1:.3f} s); after it {s2:.2f} s (first byte {f2:.3f} s)"
        )
    if not n:
        print(f"load average at end: {loadavg()}")
        return
    print(
        f"latency over {n} files: p50 {latencies[n // 2][0] * 1e3:.1f} ms, "
        f"p95 {latencies[int(n * 0.95)][0] * 1e3:.1f} ms, max {latencies[-1][0] * 1e3:.0f} ms"
    )
    over = [(s, r) for s, r in latencies if s > 1.0]
    print(
        f"files over 1 s: {len(over)}: "
        + ", ".join(f"{r} {s:.2f} s (first byte {first_bytes[r]:.2f} s)" for s, r in over[-8:])
    )
    print("slowest: " + ", ".join(f"{r} {s * 1e3:.0f} ms" for s, r in latencies[-12:]))
    print(f"server RSS peak {sampler.server:.0f} MB; its children's peak {sampler.kids:.0f} MB")
    print(f"size mismatches: {len(wrong)} {wrong[:5]}")
    print(f"load average at end: {loadavg()}")
    os.sync()


if __name__ == "__main__":
    main()
