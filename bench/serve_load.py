#!/usr/bin/env python3
"""Benchmark: `tldb serve` under N concurrent clients on loopback, then one slow query.

Starts `tldb serve PATH --port 0` (PATH: a report folder with its trace.db, by default the
406 MB benchmark log's report in /work/bench-data/big_report), then N clients (default 50),
each sending one request after another for S seconds (default 60; then every client stops
after its current request), chosen by a seeded generator among:

- table pages of tables and of the views users open first (compiles, chromium_spans, guards,
  trace_events, metrics, ...), with row counts as Datasette computes them;
- facets (envelopes by kind and status);
- every canned query of datasette_metadata.yml (parameters filled in);
- ad-hoc SQL;
- report pages and files of the mounted report.

Prints requests, errors (non-2xx answers or failed connections: must be 0, every request is
valid), p50/p99 latency overall and per kind, and the server's RSS (sampled every 0.5 s: peak
and end). Clients are closed-loop with no think time: the worst case for queueing.

Then the slow-query check: one client sends a query that only the time limit stops (a
recursive CTE) while 5 clients send quick queries; prints the slow query's time, the time limit,
and the quick queries' worst latency (the claim: below the time limit, i.e. the slow query
holds one of Datasette's SQL threads, not the server).

    python bench/serve_load.py                         # big report, 50 clients, 60 s
    python bench/serve_load.py PATH --clients 20 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
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
DEFAULT_PATH = Path("/work/bench-data/big_report")
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
SLOW_SQL = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"


def start_server(path: Path, time_limit_ms: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tldb", "serve", str(path), "--port", "0",
         "--setting", "sql_time_limit_ms", str(time_limit_ms)],
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


async def client(http, rng, mix, deadline, results) -> None:
    kinds = [k for k, urls in mix.items() if urls]
    while time.monotonic() < deadline:
        kind = rng.choice(kinds)
        url = rng.choice(mix[kind])
        began = time.monotonic()
        try:
            response = await http.get(url)
            ok = 200 <= response.status_code < 300
            status = response.status_code
        except httpx.HTTPError as exc:
            ok, status = False, type(exc).__name__
        results.append((kind, url, time.monotonic() - began, ok, status))


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc; the server is one process)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


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
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(seconds + 120)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as http:
        sampler = asyncio.create_task(sample_rss(pid, stop, samples))
        deadline = time.monotonic() + seconds
        began = time.monotonic()
        await asyncio.gather(
            *(client(http, random.Random(seed + i), mix, deadline, results) for i in range(clients))
        )
        elapsed = time.monotonic() - began
        stop.set()
        await sampler
    return results, samples, elapsed


async def slow_query_phase(base: str, db: str, quick_clients: int = 5) -> tuple[float, float]:
    """(the slow query's seconds, the worst quick-query latency while it ran)."""
    quick_url = f"/{db}?sql={urllib.parse.quote_plus('select count(*) from logs')}"
    slow_url = f"/{db}?sql={urllib.parse.quote_plus(SLOW_SQL)}"
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await http.get(quick_url)
        done = asyncio.Event()
        worst = 0.0

        async def quick() -> None:
            nonlocal worst
            while not done.is_set():
                began = time.monotonic()
                response = await http.get(quick_url)
                response.raise_for_status()
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
    args = parser.parse_args()
    process, base = start_server(args.path, args.time_limit_ms)
    db = "trace"
    try:
        mix = request_mix(db, args.path)
        results, samples, elapsed = asyncio.run(
            load_phase(base, mix, args.clients, args.seconds, args.seed, process.pid)
        )
        slow, worst_quick = asyncio.run(slow_query_phase(base, db))
    finally:
        process.terminate()
        process.wait(timeout=30)
    latencies = [r[2] for r in results]
    errors = [r for r in results if not r[3]]
    print(f"tldb serve {args.path}: {args.clients} clients, {elapsed:.1f} s (asked {args.seconds})")
    print(f"requests {len(results)} ({len(results) / elapsed:.1f}/s), errors {len(errors)}")
    print(f"latency p50 {percentile(latencies, 0.5):.3f} s, p99 {percentile(latencies, 0.99):.3f} s, "
          f"max {max(latencies, default=float('nan')):.3f} s")  # fmt: skip
    print(f"server RSS peak {max(samples) / 2**20:.0f} MiB, end {samples[-1] / 2**20:.0f} MiB")
    by_kind = defaultdict(list)
    by_url = defaultdict(list)
    for kind, url, seconds, _, _ in results:
        by_kind[kind].append(seconds)
        by_url[url].append(seconds)
    for kind, values in sorted(by_kind.items()):
        print(f"  {kind:7s} {len(values):6d} requests  p50 {percentile(values, 0.5):6.3f} s  "
              f"p99 {percentile(values, 0.99):6.3f} s")  # fmt: skip
    slowest = sorted(by_url.items(), key=lambda item: -statistics.median(item[1]))[:8]
    print("slowest URLs (median):")
    for url, values in slowest:
        print(f"  {statistics.median(values):6.3f} s  x{len(values):<4d} {url[:100]}")
    for kind, url, _, _, status in errors[:10]:
        print(f"  error {status} {kind} {url[:100]}")
    print(f"slow query: stopped after {slow:.2f} s (limit {args.time_limit_ms / 1000:.1f} s); "
          f"quick queries meanwhile: worst {worst_quick:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
