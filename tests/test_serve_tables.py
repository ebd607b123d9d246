"""`tldb serve LOG` loads as `tldb load` does and builds the serving tables while it serves.

Before the tables arrive the views answer; after, the tables. Both answers must be the same:
every report page byte for byte, every SQL answer and canned query row for row, every table
page's rows (a table's page also shows rowids), the counts. The page cache must not answer a
page of the file before the swap after it. A build killed midway leaves the database as it was
(complete, served as before) and is done next time; a reused database that lacks the tables
gets them the same way.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest
from conftest import data_path
from live_server import serve

from tldb import db as dbmod
from tldb.combine import MATERIALIZED_VIEWS
from tldb.loader import build_database
from tldb.module_api import ReportConfig
from tldb.serve import build_metadata, make_datasette, plan_serve, serving_app
from tldb.serve_cache import CACHE_HEADER, FolderStore
from tldb.serve_logs import load_logs
from tldb.serve_tables import MARK, TableBuild, build, lacks_tables, temporary

LOG = "torch213/dynamo.log"  # rows in every serving table but cache_events and collectives
NAME = "dynamo"


def _kinds(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(MATERIALIZED_VIEWS))
        sql = f"SELECT type FROM sqlite_master WHERE name IN ({marks})"
        return {kind for (kind,) in conn.execute(sql, MATERIALIZED_VIEWS)}


def _rows(db: Path) -> dict[str, Counter]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            name: Counter(conn.execute(f'SELECT * FROM "{name}"')) for name in MATERIALIZED_VIEWS
        }
    finally:
        conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """The fixture log at a path of its own (the served database is named after its stem)."""
    path = tmp_path_factory.mktemp("log") / f"{NAME}.log"
    path.write_bytes(data_path(LOG).read_bytes())
    return path


@pytest.fixture(scope="module")
def reference(log, tmp_path_factory) -> Path:
    """What `tldb load --serving-tables` makes of the log (the tables built inside the load)."""
    path = tmp_path_factory.mktemp("reference") / "reference.db"
    build_database([log], path, serving_tables=True)
    return path


def _canned(plan) -> list[str]:
    queries = build_metadata(plan)["databases"][NAME].get("queries", {})
    return sorted(name for name, query in queries.items() if not query.get("params"))


def _stable(page: bytes) -> bytes:
    """A page without the time its queries took (Datasette's footer)."""
    return re.sub(rb"Queries took [0-9.]+ms", b"Queries took ...", page)


def _without_rowid(body: bytes) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "rowid"} for row in json.loads(body)]


async def _fetch(client: httpx.AsyncClient, urls: list[str]) -> dict[str, httpx.Response]:
    answers = {}
    for url in urls:
        answer = await client.get(url)
        assert answer.status_code == 200, (url, answer.text[:300])
        answers[url] = answer
    return answers


@pytest.mark.asyncio
async def test_answers_are_the_same_before_and_after_the_tables_arrive(tmp_path, log, reference):
    db = tmp_path / "served.db"
    plan = plan_serve([log], load_logs([log], db, False), ReportConfig())
    assert _kinds(db) == {"view"}  # loaded as `tldb load` loads: no serving tables yet
    (build_,) = plan.builds
    ds = make_datasette(plan)
    (tmp_path / "pages").mkdir()
    app = serving_app(ds, plan, FolderStore(tmp_path / "pages"))
    (report,) = plan.on_demand.values()
    report.start(1)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    try:
        folder = await report.cache.ready()
        cached_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
        pages = [
            f"/report/{path}"
            for path in sorted(report.files) + cached_files
            if not (folder / path).is_dir()
        ]
        sql = [
            f"/{NAME}.json?_shape=array&sql={quote_plus(f'select * from {view}')}"
            for view in MATERIALIZED_VIEWS
        ]
        canned = [f"/{NAME}/{query}.json?_shape=array" for query in _canned(plan)]
        tables = [f"/{NAME}/{view}.json?_shape=array&_size=max" for view in MATERIALIZED_VIEWS]
        html = [f"/{NAME}/{view}" for view in MATERIALIZED_VIEWS] + [f"/{NAME}"]
        everything = pages + sql + canned + tables + html
        assert len(pages) > 20 and canned
        before = await _fetch(client, everything)
        again = await _fetch(client, html)  # kept by the page cache
        assert {a.headers[CACHE_HEADER.decode()] for a in again.values()} == {"hit"}
        assert not build_.ready()

        build_.start()
        build_.join()  # the tables are in place; the server moves at its next request
        assert build_.ready() and _kinds(db) == {"table"}
        after = await _fetch(client, everything)
        assert not app.pending  # moved
        for url in pages + sql + canned:
            assert after[url].content == before[url].content, url
        for url in tables:
            assert _without_rowid(after[url].content) == json.loads(before[url].content), url
        # No page kept from before answers after: the table pages are rendered anew, and are
        # what a server of the database loaded with --serving-tables shows.
        assert {after[url].headers[CACHE_HEADER.decode()] for url in html} == {"miss"}
        fresh_plan = plan_serve([log], {log: reference}, ReportConfig())
        fresh = make_datasette(fresh_plan)
        fresh_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fresh.app()), base_url="http://t"
        )
        try:
            for url in html + tables:
                other = (await fresh_client.get(url)).content
                assert _stable(after[url].content) == _stable(other), url
        finally:
            await fresh_client.aclose()
            fresh_plan.close()
        assert _rows(db) == _rows(reference)
        # The counts of the file before were dropped; those of the new file are the views'.
        tables_listed = (await client.get(f"/{NAME}.json")).json()["tables"]
        counts = {t["name"]: t["count"] for t in tables_listed if t["name"] in MATERIALIZED_VIEWS}
        assert counts == {view: sum(_rows(reference)[view].values()) for view in MATERIALIZED_VIEWS}
    finally:
        await client.aclose()
        plan.close()
        for database in ds.databases.values():
            database.close()
    assert not list(tmp_path.glob(f".served.db{MARK}*"))


def _killed_build(db: Path, steps: int) -> None:
    """The child: a build killed by SIGKILL after `steps` progress callbacks of its SQL."""

    def before(conn: sqlite3.Connection) -> None:
        count = [0]

        def tick() -> int:
            count[0] += 1
            if count[0] >= steps:
                os.kill(os.getpid(), signal.SIGKILL)
            return 0

        conn.set_progress_handler(tick, 100)

    build(db, before)


@pytest.mark.parametrize("steps", [1, 40, 400])
def test_a_build_killed_midway_leaves_the_database_whole_and_is_done_next_time(
    tmp_path, log, reference, steps
):
    db = tmp_path / "served.db"
    load_logs([log], db, False)
    original = _digest(db)
    child = multiprocessing.get_context("fork").Process(target=_killed_build, args=(db, steps))
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL  # killed inside the build, not after it
    left = temporary(db, child.pid)
    assert left.is_file()  # the dead build's copy, half made
    # The database is as it was, complete, with its views: it is served as before.
    assert _digest(db) == original and _kinds(db) == {"view"}
    dbmod.open_readonly(db).conn.close()
    # Serving the same log again reuses the database and builds the tables the same way.
    plan = plan_serve([log], load_logs([log], db, False), ReportConfig())
    try:
        assert _digest(db) == original  # reused, not loaded again
        assert not left.exists()  # the dead build's copy is removed
        (build_,) = plan.builds
        build_.start()
        build_.join()
        assert build_.ready() and not lacks_tables(db)
    finally:
        plan.close()
    assert _rows(db) == _rows(reference)
    assert [p.name for p in tmp_path.glob(f".served.db{MARK}*")] == []


def test_a_build_does_not_replace_a_database_that_changed_meanwhile(tmp_path, log):
    db = tmp_path / "served.db"
    load_logs([log], db, False)

    def reload(conn: sqlite3.Connection) -> None:  # another load of the log, during the build
        build_database([log], db)  # what `tldb load` does

    assert build(db, reload) is False
    assert _kinds(db) == {"view"} and not list(tmp_path.glob(f".served.db{MARK}*"))


def _processes_naming(path: Path) -> list[int]:
    """Processes whose command line names path (a server and the children it forked)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path) in (proc / "cmdline").read_text():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _lines_until(process, text: str) -> list[str]:
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never printed: {lines}")


def test_a_reused_database_without_the_tables_gets_them_while_served(tmp_path, log):
    db = tmp_path / "served.db"
    build_database([log], db)  # what `tldb load` does: views only
    loaded = _digest(db)
    query = f"/{NAME}.json?_shape=array&sql={quote_plus('select * from compiles')}"
    with serve(str(log), "--db", str(db)) as served:
        text = "\n".join(served.banner)
        assert "reusing" in text and "building its serving tables" in text
        status, first, _ = served.get(query)
        assert status == 200
        _lines_until(served.process, "serving tables built")
        status, second, _ = served.get(query)
        assert status == 200 and json.loads(second) == json.loads(first)
        kind = f"/{NAME}.json?_shape=array&sql=" + quote_plus(
            "select type from sqlite_master where name = 'compiles'"
        )
        # The server moves to the new file at a request once the build's process has ended
        # (just after its line): asked until it has (bounded, not timed).
        for _ in range(600):
            status, body, _ = served.get(kind)
            if json.loads(body) == [{"type": "table"}]:
                break
            time.sleep(0.1)
        assert json.loads(body) == [{"type": "table"}]  # the server reads the new file
        status, third, _ = served.get(query)
        assert status == 200 and json.loads(third) == json.loads(first)
    assert _digest(db) != loaded and not lacks_tables(db)
    assert not list(tmp_path.glob(f".served.db{MARK}*"))
    # Once they are there, the next serve reuses the database as it is.
    with serve(str(log), "--db", str(db)) as served:
        assert "building" not in "\n".join(served.banner)
        assert served.get(query)[0] == 200
    # The server's children (the build, the cached render and its workers) stop with it:
    # signalled as it stops, they may take a moment to exit (bounded, not timed).
    for _ in range(200):
        if not _processes_naming(db):
            break
        time.sleep(0.05)
    assert _processes_naming(db) == []


def test_the_load_is_tldb_loads(tmp_path, log):
    """`tldb serve LOG`'s load makes what `tldb load` makes (and no serving tables)."""
    db = tmp_path / "served.db"
    load_logs([log], db, False)
    plain = tmp_path / "plain.db"
    build_database([log], plain)  # what `tldb load` does
    assert _kinds(db) == {"view"} and TableBuild.needed(db) is not None
    assert _rows(db) == _rows(plain)


def test_a_server_killed_while_building_leaves_no_process_and_a_working_database(tmp_path, log):
    db = tmp_path / "served.db"
    build_database([log], db)  # what `tldb load` does: views only
    with serve(str(log), "--db", str(db)) as served:
        assert "building its serving tables" in "\n".join(served.banner)
        served.process.kill()  # kill -9, whatever the build and the cached render are doing
        served.process.wait()
    # Its children die with it (the build, the cached render and its workers).
    for _ in range(200):
        if not _processes_naming(db):
            break
        time.sleep(0.05)
    assert _processes_naming(db) == []
    # The database works, tables or not, and the next serve of the log completes it.
    dbmod.open_readonly(db).conn.close()
    plan = plan_serve([log], load_logs([log], db, False), ReportConfig())
    try:
        for build_ in plan.builds:
            build_.start()
            build_.join()
    finally:
        plan.close()
    assert not lacks_tables(db) and not list(tmp_path.glob(f".served.db{MARK}*"))
