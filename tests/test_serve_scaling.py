"""`tldb serve` under many users: counts computed once, the page cache, worker processes.

The database is built from a real torch 2.13 log of tests/data; Datasette runs in process for
the counts and the cache (through the same make_datasette as `tldb serve`), and as a real
`tldb serve` process for the workers. Expected counts come from SQLite directly.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import data_path, run_tldb
from datasette import hookimpl
from datasette.plugins import pm
from live_server import serve

from tldb import serve_cache, serve_counts
from tldb.loader import build_database
from tldb.serve import make_datasette, plan_serve
from tldb.serve_cache import CACHE_HEADER, FolderStore, ResponseCache

HEADER = CACHE_HEADER.decode()


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scaling") / "dynamo.db"
    build_database([data_path("torch213/dynamo.log")], path)
    return path


def _relations(path: Path) -> dict[str, tuple[str, int]]:
    """{name: (table or view, row count)} read with plain sqlite3."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
        return {n: (t, conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n, t in rows}
    finally:
        conn.close()


# ---------------------------------------------------------------------------- counts


@pytest.mark.asyncio
async def test_primed_counts_are_used_for_views_and_tables_stay_tables(db_path):
    relations = _relations(db_path)
    ds = make_datasette(plan_serve([db_path]), {"trace_debug": True})
    serve_counts.prime(ds)
    counts = ds.inspect_data["dynamo"]["tables"]
    assert {name: entry["count"] for name, entry in counts.items()} == {
        name: count for name, (_, count) in relations.items()
    }
    for view in ("compiles", "envelope_kinds", "trace_events"):
        page = (await ds.client.get(f"/dynamo/{view}.json?_trace=1")).json()
        assert page["filtered_table_rows_count"] == relations[view][1]
        ran = [t["sql"].strip().lower() for t in page["_trace"]["traces"]]
        assert f"select count(*) from {view}" not in ran, ran
    # the database page lists tables as tables and views as views, as without counts
    listing = (await ds.client.get("/dynamo.json")).json()
    tables = {n for n, (kind, _) in relations.items() if kind == "table"}
    assert {t["name"] for t in listing["tables"]} == tables
    assert {v["name"] for v in listing["views"]} == set(relations) - tables


def test_a_count_past_the_time_limit_is_left_to_datasette(db_path):
    relations = _relations(db_path)
    full, tables = serve_counts.count_rows(db_path)
    assert full == {name: count for name, (_, count) in relations.items()}
    assert tables == {n for n, (kind, _) in relations.items() if kind == "table"}
    limited, _ = serve_counts.count_rows(db_path, time_limit_s=0.0)
    assert len(limited) < len(full)  # the views over envelopes need more than one check
    assert all(full[name] == count for name, count in limited.items())


# ---------------------------------------------------------------------------- page cache


class Counting:
    """An ASGI app wrapper counting the requests that reach the app behind the cache."""

    def __init__(self, app) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.asyncio
async def test_a_page_is_rendered_once_then_served_from_the_cache(db_path, tmp_path):
    behind = Counting(make_datasette(plan_serve([db_path])).app())
    cache = ResponseCache(behind, FolderStore(tmp_path))
    async with _client(cache) as http:
        first = await http.get("/dynamo/compiles")
        second = await http.get("/dynamo/compiles")
        assert (first.status_code, second.status_code) == (200, 200)
        assert (first.headers[HEADER], second.headers[HEADER]) == ("miss", "hit")
        assert second.content == first.content
        assert second.headers["content-type"] == first.headers["content-type"]
        assert behind.calls == 1
        # another query string, another actor (Authorization, Cookie): other pages
        for kwargs in (
            {"url": "/dynamo/compiles?_size=5"},
            {"url": "/dynamo/compiles", "headers": {"Authorization": "Bearer x"}},
            {"url": "/dynamo/compiles", "headers": {"Cookie": "ds_actor=y"}},
            {"url": "https://t/dynamo/compiles"},
        ):
            response = await http.get(**kwargs)
            assert response.headers[HEADER] == "miss", kwargs
        assert behind.calls == 5
        again = await http.get("/dynamo/compiles", headers={"Authorization": "Bearer x"})
        assert again.headers[HEADER] == "hit"


@pytest.mark.asyncio
async def test_errors_and_live_pages_are_never_cached(db_path, tmp_path):
    behind = Counting(make_datasette(plan_serve([db_path])).app())
    cache = ResponseCache(behind, FolderStore(tmp_path))
    async with _client(cache) as http:
        for url, status in (
            ("/dynamo/no_such_table", 404),
            ("/dynamo?sql=select+no_such_column+from+logs", 400),
            ("/-/versions.json", 200),
            ("/dynamo/compiles.json?_trace=1", 200),
        ):
            for _ in range(2):
                response = await http.get(url)
                assert response.status_code == status, url
                assert response.headers.get(HEADER, "miss") == "miss", url
    assert behind.calls == 8
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]


async def _cookie_app(scope, receive, send) -> None:
    """A page that sets a cookie (as Datasette's login and CSRF do)."""
    headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"a=b")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.asyncio
async def test_a_response_that_sets_a_cookie_and_the_report_mounts_pass_through(tmp_path):
    behind = Counting(_cookie_app)
    cache = ResponseCache(behind, FolderStore(tmp_path), skip_prefixes=["report"])
    async with _client(cache) as http:
        for _ in range(2):
            assert (await http.get("/login")).headers[HEADER] == "miss"
            assert HEADER not in (await http.get("/report/index.html")).headers
    assert behind.calls == 4


class _SlowFunction:
    """A Datasette plugin giving every connection slow(x): x, after 2 ms (no SQLite step runs
    meanwhile, so only the time limit's next check stops the query: deterministic)."""

    __name__ = "tldb_test_slow"  # Datasette lists plugins by module name

    @hookimpl
    def prepare_connection(self, conn):
        conn.create_function("slow", 1, lambda x: time.sleep(0.002) or x)


@pytest.fixture
def slow_db(db_path, tmp_path) -> Path:
    """A copy of the database with a view over a slow function, as a user could add one."""
    copy = tmp_path / "slow" / "slowdb.db"
    copy.parent.mkdir()
    shutil.copy(db_path, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("CREATE VIEW slow_kinds AS SELECT id, slow(kind) AS kind FROM envelopes")
    conn.close()
    plugin = _SlowFunction()
    pm.register(plugin, name="tldb-test-slow")
    yield copy
    pm.unregister(plugin)


@pytest.mark.asyncio
async def test_a_page_whose_facet_hit_the_time_limit_is_kept_only_a_while(
    slow_db, tmp_path, monkeypatch
):
    # 241 rows x 2 ms: the facet needs about 0.5 s, the page's own 5 rows 10 ms
    ds = make_datasette(plan_serve([slow_db]), {"facet_time_limit_ms": 100})
    behind = Counting(ds.app())
    folder = tmp_path / "cache"
    folder.mkdir()
    cache = ResponseCache(behind, FolderStore(folder))
    url = "/slowdb/slow_kinds?_facet=kind&_size=5"
    async with _client(cache) as http:
        monkeypatch.setattr(serve_cache, "PARTIAL_TTL_S", -1.0)  # due again at once
        for _ in range(2):
            page = await http.get(url)
            assert page.status_code == 200
            assert "These facets timed out: kind" in page.text
            assert page.headers[HEADER] == "miss"
        (kept,) = [serve_cache.Entry.decode(f.read_bytes()) for f in folder.iterdir()]
        assert kept.expires is not None  # partial: kept for a while only
        monkeypatch.setattr(serve_cache, "PARTIAL_TTL_S", 3600.0)
        assert [(await http.get(url)).headers[HEADER] for _ in range(2)] == ["miss", "hit"]
        assert behind.calls == 3
        # the same page without the facet is whole, and kept for good
        answers = [await http.get("/slowdb/slow_kinds?_size=5") for _ in range(2)]
        assert [a.headers[HEADER] for a in answers] == ["miss", "hit"]


@pytest.mark.asyncio
async def test_the_cache_keeps_to_its_budget(db_path, tmp_path):
    store = FolderStore(tmp_path, max_bytes=200_000)
    behind = Counting(make_datasette(plan_serve([db_path])).app())
    cache = ResponseCache(behind, store)
    urls = [f"/dynamo/envelopes?_size={n}" for n in range(20, 40)]
    async with _client(cache) as http:
        for url in urls:
            assert (await http.get(url)).headers[HEADER] == "miss"
        kept = sum(p.stat().st_size for p in tmp_path.iterdir())
        assert 0 < kept <= 200_000
        assert (await http.get(urls[-1])).headers[HEADER] == "hit"  # the newest stays
        assert (await http.get(urls[0])).headers[HEADER] == "miss"  # the oldest went


class Slow:
    """A page that renders once released (status 200, or `status`), counting renders; each
    render yields to the event loop, so that concurrent renders overlap."""

    def __init__(self, status: int = 200) -> None:
        self.calls = 0
        self.status = status
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        await self.release.wait()
        await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"rendered"})


async def _five_at_once(cache: ResponseCache, behind: Slow) -> list[httpx.Response]:
    """Five requests for one page sent while its first render waits, then released."""
    async with _client(cache) as http:
        requests = [asyncio.create_task(http.get("/page")) for _ in range(5)]
        while behind.calls == 0:
            await asyncio.sleep(0.01)
        behind.release.set()
        return await asyncio.gather(*requests)


@pytest.mark.asyncio
async def test_concurrent_requests_for_one_page_render_it_once(tmp_path):
    behind = Slow()
    answers = await _five_at_once(ResponseCache(behind, FolderStore(tmp_path)), behind)
    assert behind.calls == 1
    assert sorted(a.headers[HEADER] for a in answers) == ["hit"] * 4 + ["miss"]
    assert {a.content for a in answers} == {b"rendered"}


@pytest.mark.asyncio
async def test_concurrent_requests_for_a_page_that_cannot_be_kept_are_all_answered(tmp_path):
    behind = Slow(status=500)
    cache = ResponseCache(behind, FolderStore(tmp_path))
    answers = await _five_at_once(cache, behind)
    assert [a.status_code for a in answers] == [500] * 5
    assert behind.calls == 5  # the first, then each waiting one on its own
    assert not cache.pending
    async with _client(cache) as http:
        assert (await http.get("/page")).status_code == 500


@pytest.mark.asyncio
async def test_a_page_another_process_renders_is_waited_for_and_a_dead_claim_ignored(tmp_path):
    store = FolderStore(tmp_path)
    behind = Slow()
    behind.release.set()
    cache = ResponseCache(behind, store)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        name = store.name((cache.generation, b"http", b"/page", b"", b"t", b"", b""))
        (tmp_path / f"{name}.lock").write_text(str(other.pid))  # the other process renders
        async with _client(cache) as http:
            waiting = asyncio.create_task(http.get("/page"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            FolderStore(tmp_path).put(name, serve_cache.Entry(200, [], b"from the other"))
            store.release(name)
            answer = await waiting
        assert (answer.content, answer.headers[HEADER], behind.calls) == (
            b"from the other",
            "hit",
            0,
        )
    finally:
        other.kill()
        other.wait()
    # a claim left by a process that is gone: rendered here
    name = store.name((cache.generation, b"http", b"/other", b"", b"t", b"", b""))
    (tmp_path / f"{name}.lock").write_text(str(other.pid))
    async with _client(cache) as http:
        answer = await http.get("/other")
    assert (answer.content, answer.headers[HEADER], behind.calls) == (b"rendered", "miss", 1)


# ---------------------------------------------------------------------------- workers


def _children(pid: int, expected: int) -> list[int]:
    """The child processes of pid, once there are `expected` of them (workers are forked just
    after the banner is printed)."""
    deadline = time.monotonic() + 30
    while True:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            found = [int(p) for p in f.read().split()]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _cache_folder(banner: list[str]) -> Path:
    line = next(line for line in banner if "pages cached in" in line)
    return Path(line.split("pages cached in ")[1].split()[0])


def _gone(pid: int, within_s: float = 20) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_share_the_port_and_stop_with_the_server(db_path):
    with serve(str(db_path.parent), "--workers", "3") as server:
        assert any("3 server process(es); pages cached in" in line for line in server.banner)
        workers = _children(server.process.pid, 2)
        assert len(workers) == 2
        cache_folder = _cache_folder(server.banner)
        assert cache_folder.is_dir()
        # many connections at once (each its own): every one answered
        answers = [server.get(f"/dynamo/compiles?_size={n % 7 + 1}") for n in range(30)]
        assert {status for status, _, _ in answers} == {200}
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert all(_gone(pid) for pid in workers)
        assert not cache_folder.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_server_whose_cache_the_next_one_removes(db_path):
    with serve(str(db_path.parent), "--workers", "2") as server:
        (worker,) = _children(server.process.pid, 1)
        cache_folder = _cache_folder(server.banner)
        server.process.kill()
        server.process.wait()
        assert _gone(worker)
        assert cache_folder.is_dir()  # nobody left to remove it
    with serve(str(db_path.parent), "--workers", "1") as server:
        assert server.get("/dynamo/compiles")[0] == 200
        assert not cache_folder.exists()


def test_every_worker_asks_for_the_token_off_loopback(db_path):
    with serve(str(db_path.parent), "--host", "0.0.0.0", "--workers", "3") as server:
        token = next(line.split()[-1] for line in server.banner if line.startswith("Access token"))
        base = server.base.replace("0.0.0.0", "127.0.0.1")
        server.base = base
        for _ in range(12):  # new connections, spread over the workers
            assert server.get("/dynamo/compiles")[0] == 403
            ok = server.get("/dynamo/compiles", headers={"Authorization": f"Bearer {token}"})
            assert ok[0] == 200


def test_a_taken_port_is_still_refused(db_path):
    with serve(str(db_path.parent), "--workers", "2") as server:
        port = server.base.rsplit(":", 1)[1]
        result = run_tldb("serve", str(db_path.parent), "--port", port)
        assert result.returncode == 1
        assert result.stderr.startswith("Error: cannot listen on 127.0.0.1:"), result.stderr
        assert "Traceback" not in result.stderr
        # a plain socket cannot take it either
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", int(port)))
        assert server.get("/dynamo/compiles")[0] == 200


def test_several_workers_for_a_report_made_on_request_are_refused(tmp_path):
    log = data_path("torch213/dynamo.log")
    result = run_tldb("serve", str(log), "--db", str(tmp_path / "d.db"), "--workers", "2")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: --workers: a report made on request is served by one process"
    )
    assert "Traceback" not in result.stderr


def test_sigterm_right_after_the_banner_stops_the_server_and_its_workers(db_path):
    """Whoever waits for the banner may stop the server at once: SIGTERM then, while workers
    are being forked and uvicorn is not yet handling signals, still stops every process
    gracefully ("Stopped.", page cache removed). A KeyboardInterrupt raised by the handler at
    an arbitrary point once left servers that ignored SIGTERM; before that the handler came
    after the banner, and the server died without cleaning up."""
    for _ in range(4):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tldb",
                "serve",
                str(db_path.parent),
                "--port",
                "0",
                "--workers",
                "3",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        banner = []
        for line in process.stdout:
            banner.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        process.terminate()
        try:
            rest = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail("the server ignored SIGTERM")
        assert "Stopped." in rest, [*banner, rest]
        assert not _cache_folder(banner).exists()
        assert process.returncode == 0
