"""What stands between a served log's load and its first page, made cheap (issue 17).

Each test pins one of the shortcuts so that it cannot be lost without a failure: the module
registry reused instead of imported again, the metadata parsed once and handed out as
independent copies, the folder index and the written paths as the slow definitions give them,
and the cached render running below the server in the scheduler.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tldb import serve
from tldb.ondemand import CACHE_NICENESS, CachedRender, as_written, folders_of
from tldb.paths import safe_relpath
from tldb.registry import ModuleRegistry
from tldb.serve import ServedDatabase, ServePlan, build_metadata, warm_metadata


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
