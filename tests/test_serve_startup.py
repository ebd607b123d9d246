"""What stands between a served log's load and its first page, made cheap (issue 17).

Each test pins one of the shortcuts so that it cannot be lost without a failure: the module
registry reused instead of imported again, the metadata parsed once and handed out as
independent copies, the folder index and the written paths as the slow definitions give them,
and the cached render running below the server in the scheduler.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from conftest import data_path

from tldb import serve
from tldb.errors import TldbError
from tldb.module_api import ReportConfig
from tldb.ondemand import CACHE_NICENESS, CachedRender, as_written, folders_of
from tldb.paths import safe_relpath
from tldb.registry import ModuleRegistry
from tldb.report import ReportRequest, run_report
from tldb.serve import (
    ServedDatabase,
    ServePlan,
    build_metadata,
    make_datasette,
    plan_serve,
    warm_metadata,
)
from tldb.serve_logs import load_logs


def test_installed_registry_reuses_the_discovered_modules():
    discovered = ModuleRegistry.discover()
    reused = ModuleRegistry.installed()
    assert list(reused.modules) == list(discovered.modules)
    # The same objects: no module folder was imported again.
    for name, module in discovered.modules.items():
        assert reused.modules[name] is module
    # A registry of its own: changing it leaves the next one whole.
    reused.modules.clear()
    assert list(ModuleRegistry.installed().modules) == list(discovered.modules)


def test_metadata_copies_are_independent(tmp_path):
    plan = ServePlan()
    plan.databases.append(ServedDatabase("a", tmp_path / "a.db", "/report/"))
    first = build_metadata(plan)
    first["databases"]["a"]["tables"] = "changed"
    first["title"] = "changed"
    second = build_metadata(plan)
    assert second["databases"]["a"].get("tables") != "changed"
    assert second.get("title") != "changed"
    assert "Static report made from this database" in second["databases"]["a"]["description_html"]


def test_metadata_is_parsed_once_per_process(tmp_path, monkeypatch):
    warm_metadata()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(serve.yaml, "load", no_parse)
    monkeypatch.setattr(serve.yaml, "safe_load", no_parse)
    plan = ServePlan()
    plan.databases.append(ServedDatabase("a", tmp_path / "a.db"))
    assert "a" in build_metadata(plan)["databases"]


def test_folders_of_lists_every_folder_above_each_file():
    paths = ["index.html", "a/b/c.txt", "a/b/d.txt", "a/e.txt", "x/y/z/w.json", "-_0_0_0/f"]
    slow = {p[:at] for p in paths for at, char in enumerate(p) if char == "/"}
    assert folders_of(paths) == slow == {"a", "a/b", "x", "x/y", "x/y/z", "-_0_0_0"}


@pytest.mark.parametrize(
    "path",
    [
        "a/b.txt",
        "-_0_0_0/after_pre_grad_graph_1.txt",
        ".hidden/x",
        "a/./b",
        "a/../b",
        "a/.b/c",
        "a/b/..",
        "..",
        "a//b",
        "a b/c",
        "a/b.",
    ],
)
def test_as_written_is_safe_relpath(path):
    try:
        expected = safe_relpath(path)
    except Exception as exc:
        with pytest.raises(type(exc)):
            as_written(path)
        return
    assert as_written(path) == expected


def test_cached_render_runs_below_the_server(tmp_path):
    def render(folder: Path) -> None:
        (folder / "niceness").write_text(str(os.nice(0)))

    cache = CachedRender(render)
    try:
        folder = asyncio.run(cache.ready())
        child = int((folder / "niceness").read_text())
        assert child == min(19, os.nice(0) + CACHE_NICENESS)
    finally:
        cache.close()


def test_imports_during_a_served_logs_load_run_below_the_load(monkeypatch):
    """`tldb serve LOG` imports what serving needs while the log loads, in a thread that
    must not take a core from the load: the idle class where Linux allows it, else nice."""
    import threading

    from tldb import serve_logs

    seen: dict[str, int] = {}

    def record() -> None:
        seen["policy"] = os.sched_getscheduler(0)
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    monkeypatch.setattr(serve_logs, "_warm_imports", record)
    threads: list[threading.Thread] = []
    serve_logs._start_warming(threads)
    for thread in threads:
        thread.join()
    if sys.platform == "linux":  # lowering one's own thread needs no privilege there
        assert seen["policy"] == os.SCHED_IDLE
    else:
        assert seen["nice"] >= serve_logs.WARM_NICENESS
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # this thread is left as it was


@pytest.mark.asyncio
async def test_long_files_are_made_ahead_and_sent_from_disk(tmp_path, monkeypatch):
    log = data_path("torch213/cache_2.log")
    static = tmp_path / "static"
    run_report(ReportRequest(log, static, ReportConfig(), jobs=1))
    plan = plan_serve([log], load_logs([log], tmp_path / "cache_2.db", False), ReportConfig())
    ds = make_datasette(plan)
    (report,) = plan.on_demand.values()
    assert report.long == {"raw.jsonl", "raw.log", "chromium_events.json"}
    report.start(1)
    try:
        await report.cache.ready()
        report.cache.join()  # the long files come after the cached pages
        for module in report.modules:  # from now on nothing is made per request
            monkeypatch.setattr(module, "render_file", None)
        assert report.made_ahead("raw.log") is None  # the log itself is sent: no copy
        for name in ("raw.jsonl", "chromium_events.json"):
            assert report.made_ahead(name) is not None
            response = await ds.client.get(f"/report/{name}")
            assert response.status_code == 200
            assert response.content == (static / name).read_bytes(), name
            assert response.headers["content-length"] == str((static / name).stat().st_size)
    finally:
        plan.close()
        for database in ds.databases.values():
            database.close()
    assert not report.cache.root.exists()


def test_cached_pages_do_not_wait_for_the_work_after_them(tmp_path):
    go, done = tmp_path / "go", tmp_path / "done"

    def after(folder: Path) -> None:
        deadline = time.monotonic() + 10
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        done.touch()

    cache = CachedRender(lambda folder: (folder / "page.html").write_text("x"), after)
    try:
        folder = asyncio.run(cache.ready())
        assert (folder / "page.html").read_text() == "x"
        assert not done.exists()  # ready while `after` still runs
        go.touch()
        cache.join()
        assert done.exists()
    finally:
        cache.close()


def test_a_failing_render_is_reported_and_after_does_not_run(tmp_path):
    def render(folder: Path) -> None:
        raise TldbError("no pages today")

    cache = CachedRender(render, lambda folder: (tmp_path / "after").touch())
    try:
        with pytest.raises(TldbError, match="no pages today"):
            asyncio.run(cache.ready())
        cache.join()
        assert not (tmp_path / "after").exists()
    finally:
        cache.close()
