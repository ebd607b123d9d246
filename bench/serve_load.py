#!/usr/bin/env python3
"""Benchmark: `tldb serve` under N concurrent clients on loopback, then one slow query.

Starts `tldb serve PATH --port 0` (PATH: a report folder with its trace.db; by default
/work/bench-data/report18, the 406 MB benchmark log's report with a database loaded with
serving tables:

    tldb load big.log --db serve18/trace.db --serving-tables
    tldb report serve18/trace.db -o report18 --no-browser
    ln serve18/trace.db report18/trace.db    # a report made from a database has no copy

then N clients (default 50), each sending one request after another on its own keep-alive
connection for S seconds (default 60; then every client stops after its current request),
chosen by a seeded generator among:

- table pages of tables and of the views users open first (compiles, chromium_spans, guards,
  trace_events, metrics, ...), with row counts as Datasette computes them;
- facets (envelopes by kind and status);
- every canned query of datasette_metadata.yml (parameters filled in);
- ad-hoc SQL;
- report pages and files of the mounted report.

Prints requests, errors (non-2xx answers or failed connections: must be 0, every request is
valid), p50/p99 latency overall, per kind, and split: cold (no answer to that URL had arrived
when the request was sent) against warm, and as the server says (`x-tldb-cache`: rendered,
from its page cache, or not cacheable); the server's CPU time and RSS (all its processes,
sampled every 0.5 s: peak and end). Clients are closed-loop with no think time: the worst
case for queueing. The clients speak HTTP/1.1 by hand on asyncio streams (see Connection):
with httpx the client process needed more CPU than the server.

Then the slow-query check: one client sends a query that only the time limit stops (a
recursive CTE) while 5 clients send quick queries; prints the slow query's time, the time limit,
and the quick queries' worst latency (the claim: below the time limit, i.e. the slow query
holds one of Datasette's SQL threads, not the server).

    python bench/serve_load.py                         # report18, 50 clients, 60 s
    python bench/serve_load.py PATH --clients 20 --seconds 20 --workers 1 --cache-mb 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = Path("/work/bench-data/report18")
VIEWS = ["compiles", "chromium_spans", "guards", "trace_events", "metrics", "graph_breaks",
         "recompiles", "cache_events", "envelope_kinds", "failures"]  # fmt: skip
TABLES = ["envelopes", "payloads", "outputs", "strings", "logs"]
ADHOC = [
    "select kind, count(*) from envelopes group by kind order by 2 desc",
    "select compile_id, status, cache_status, duration_s from compiles",
    "select id, line, kind, compile_id from envelopes where kind = 'artifact' limit 50",
    "select md5, size from payloads order by size desc limit 20",
    "select compile_id, count(*) from guards group by compile_id",
]
#: A request not answered in this time counts as an error (a hung server must not hang the bench).
REQUEST_TIMEOUT_S = 60.0
SLOW_SQL = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"


def start_server(path: Path, time_limit_ms: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tldb", "serve", str(path), "--port", "0",
         "--setting", "sql_time_limit_ms", str(time_limit_ms), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    found = re.search(r"Datasette (http://\S+?)/? ", "".join(lines))
    if not found:
        process.kill()
        sys.exit("tldb serve did not start:\n" + "".join(lines))
    return process, found.group(1)


def report_pages(path: Path, limit: int = 200) -> list[str]:
    """Report URLs: the index, and the first `limit` files of the report, sorted."""
    if not (path / "index.html").is_file():
        return []
    files = sorted(
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and p.suffix in (".html", ".json", ".txt") and p.stat().st_size < 5 << 20
    )[:limit]
    return ["/report/"] + [f"/report/{urllib.parse.quote(f)}" for f in files]


def canned_queries(db: str) -> list[str]:
    with (ROOT / "datasette_metadata.yml").open(encoding="utf-8") as f:
        queries = yaml.safe_load(f)["databases"]["trace"].get("queries", {})
    urls = []
    for name, query in queries.items():
        params = {p: ("[0/0]" if p == "compile_id" else "") for p in query.get("params", [])}
        urls.append(f"/{db}/{name}?{urllib.parse.urlencode(params)}")
    return urls


def request_mix(db: str, path: Path) -> dict[str, list[str]]:
    return {
        "table": [f"/{db}/{t}" for t in TABLES] + [f"/{db}/{v}" for v in VIEWS],
        "facet": [f"/{db}/envelopes?_facet=kind&_facet=status", f"/{db}/outputs?_facet=parser"],
        "canned": canned_queries(db),
        "sql": [f"/{db}?sql={urllib.parse.quote_plus(sql)}" for sql in ADHOC],
        "report": report_pages(path),
    }


class Connection:
    """One keep-alive HTTP/1.1 connection, read and written by hand on asyncio streams.

    The load's clients use this rather than httpx: httpx costs several ms of CPU per request,
    and 50 clients of it in one process used more CPU than the server itself (12 s against 8
    s in a 20 s run), so the figures measured the client's queue, not the server's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, url: str) -> tuple[int, str]:
        """(status, x-tldb-cache header or "") of GET url, its body read whole and dropped."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {url} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
        }
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers.get("x-tldb-cache", "")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def client(base, rng, mix, deadline, results, answered: set[str]) -> None:
    """One closed-loop client. A request is cold when no answer to its URL had arrived when
    it was sent (the server cannot have had it ready: first requests of each URL and those
    sent while it was being rendered), warm otherwise."""
    kinds = [k for k, urls in mix.items() if urls]
    parts = urllib.parse.urlsplit(base)
    connection = Connection(parts.hostname, parts.port)
    while time.monotonic() < deadline:
        kind = rng.choice(kinds)
        url = rng.choice(mix[kind])
        cold = url not in answered
        began = time.monotonic()
        cache = ""
        try:
            status, cache = await asyncio.wait_for(connection.get(url), REQUEST_TIMEOUT_S)
            ok = 200 <= status < 300
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            ok, status = False, type(exc).__name__
            connection.close()
        answered.add(url)
        results.append((kind, url, time.monotonic() - began, ok, status, cold, cache))
    connection.close()


def server_pids(pid: int) -> list[int]:
    """The server process and its worker processes (its children; Linux /proc)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [pid, *map(int, f.read().split())]
    except OSError:
        return [pid]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server's processes (Linux /proc)."""
    total = 0.0
    for one in server_pids(pid):
        with open(f"/proc/{one}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of the server's processes, summed (Linux /proc)."""
    total = 0
    for one in server_pids(pid):
        with open(f"/proc/{one}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


async def sample_rss(pid: int, stop: asyncio.Event, samples: list[int]) -> None:
    while not stop.is_set():
        samples.append(rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load_phase(base, mix, clients, seconds, seed, pid):
    results: list = []
    samples: list[int] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, stop, samples))
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    answered: set[str] = set()
    await asyncio.gather(
        *(
            client(base, random.Random(seed + i), mix, deadline, results, answered)
            for i in range(clients)
        )
    )
    elapsed = time.monotonic() - began
    stop.set()
    await sampler
    return results, samples, elapsed


async def slow_query_phase(base: str, db: str, quick_clients: int = 5) -> tuple[float, float]:
    """(the slow query's seconds, the worst quick-query latency while it ran). Every quick
    query is a different SQL text, so that the server renders each (no page cache hit)."""
    numbers = iter(range(1, 1 << 30))

    def quick_url() -> str:
        sql = f"select count(*) from logs where id > -{next(numbers)}"
        return f"/{db}?sql={urllib.parse.quote_plus(sql)}"

    slow_url = f"/{db}?sql={urllib.parse.quote_plus(SLOW_SQL)}"
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await http.get(quick_url())
        done = asyncio.Event()
        worst = 0.0

        async def quick() -> None:
            nonlocal worst
            while not done.is_set():
                began = time.monotonic()
                response = await http.get(quick_url())
                response.raise_for_status()
                assert response.headers.get("x-tldb-cache", "miss") == "miss"
                worst = max(worst, time.monotonic() - began)

        async def slow() -> float:
            began = time.monotonic()
            response = await http.get(slow_url)
            assert response.status_code == 400 and "too long" in response.text, response.text
            done.set()
            return time.monotonic() - began

        results = await asyncio.gather(slow(), *(quick() for _ in range(quick_clients)))
    return results[0], worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--time-limit-ms", type=int, default=5000, help="sql_time_limit_ms")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--workers", type=int, help="tldb serve --workers")
    parser.add_argument("--cache-mb", type=int, help="tldb serve --cache-mb (0: no page cache)")
    args = parser.parse_args()
    extra = [f"--{name.replace('_', '-')}={value}" for name, value in
             (("workers", args.workers), ("cache_mb", args.cache_mb)) if value is not None]  # fmt: skip
    process, base = start_server(args.path, args.time_limit_ms, extra)
    db = "trace"
    try:
        mix = request_mix(db, args.path)
        server_cpu = cpu_seconds(process.pid)
        client_cpu = resource.getrusage(resource.RUSAGE_SELF)
        results, samples, elapsed = asyncio.run(
            load_phase(base, mix, args.clients, args.seconds, args.seed, process.pid)
        )
        server_cpu = cpu_seconds(process.pid) - server_cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = after.ru_utime + after.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime
        slow, worst_quick = asyncio.run(slow_query_phase(base, db))
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies = [r[2] for r in results]
    errors = [r for r in results if not r[3]]
    print(
        f"tldb serve {args.path} {' '.join(extra)}: {args.clients} clients, {elapsed:.1f} s (asked {args.seconds})"
    )
    print(f"requests {len(results)} ({len(results) / elapsed:.1f}/s), errors {len(errors)}")
    print(f"latency p50 {percentile(latencies, 0.5):.3f} s, p99 {percentile(latencies, 0.99):.3f} s, "
          f"max {max(latencies, default=float('nan')):.3f} s")  # fmt: skip
    print(f"server RSS peak {max(samples) / 2**20:.0f} MiB, end {samples[-1] / 2**20:.0f} MiB")
    print(f"CPU during the load: server {server_cpu:.1f} s, this client {client_cpu:.1f} s, "
          f"of {elapsed * (os.cpu_count() or 1):.0f} core-seconds")  # fmt: skip
    groups = {
        "cold (no answer to the URL yet)": [r for r in results if r[5]],
        "warm (URL answered before)": [r for r in results if not r[5]],
        "rendered (x-tldb-cache: miss)": [r for r in results if r[6] == "miss"],
        "from the page cache (hit)": [r for r in results if r[6] == "hit"],
        "not cacheable (report files)": [r for r in results if not r[6]],
    }
    for label, group in groups.items():
        values = [r[2] for r in group]
        print(f"  {label:32s} {len(values):6d} requests  p50 {percentile(values, 0.5):6.3f} s  "
              f"p99 {percentile(values, 0.99):6.3f} s  max {max(values, default=float('nan')):6.3f} s")  # fmt: skip
    by_kind = defaultdict(list)
    by_url = defaultdict(list)
    for kind, url, seconds, *_ in results:
        by_kind[kind].append(seconds)
        by_url[url].append(seconds)
    for kind, values in sorted(by_kind.items()):
        print(f"  {kind:7s} {len(values):6d} requests  p50 {percentile(values, 0.5):6.3f} s  "
              f"p99 {percentile(values, 0.99):6.3f} s")  # fmt: skip
    slowest = sorted(by_url.items(), key=lambda item: -statistics.median(item[1]))[:8]
    print("slowest URLs (median):")
    for url, values in slowest:
        print(f"  {statistics.median(values):6.3f} s  x{len(values):<4d} {url[:100]}")
    print("slowest cold requests:")
    for r in sorted((r for r in results if r[5]), key=lambda r: -r[2])[:8]:
        print(f"  {r[2]:6.3f} s  {r[6] or '-':4s}  {r[1][:100]}")
    for kind, url, _, _, status, *_ in errors[:10]:
        print(f"  error {status} {kind} {url[:100]}")
    print(f"slow query: stopped after {slow:.2f} s (limit {args.time_limit_ms / 1000:.1f} s); "
          f"quick queries meanwhile: worst {worst_quick:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
