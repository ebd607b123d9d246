"""Parallel rendering: the same report whatever the number of jobs; worker failures surface."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from conftest import data_path, run_tldb

from tldb.errors import TldbError
from tldb.parallel import run_tasks_forked


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "trace.db"
    }


@pytest.mark.parametrize("name", ["dynamo", "cache_1"])
def test_jobs_do_not_change_the_report(tmp_path, name):
    log = data_path(f"torch213/{name}.log")
    one, three = tmp_path / "one", tmp_path / "three"
    for out, jobs in ((one, "1"), (three, "3")):
        result = run_tldb("report", str(log), "-o", str(out), "--no-browser", "-j", jobs)
        assert result.returncode == 0, result.stderr
    first, second = _tree(one), _tree(three)
    assert len(first) > 10
    assert first == second


def _slow_then_fast(in_child: bool):
    def run(index: int) -> tuple[int, int]:
        if index == 0:
            time.sleep(0.3)  # the first task is the long one: others go to the other worker
        return index * index, os.getpid()

    return run


def test_results_come_back_in_task_order_from_several_processes():
    results = run_tasks_forked(6, _slow_then_fast, jobs=2)
    assert [value for value, _ in results] == [0, 1, 4, 9, 16, 25]
    assert len({pid for _, pid in results}) == 2  # the work really was shared


def _light_tasks_stay_here(marker: Path):
    """Task 0 (the heaviest) waits until task 1, the last light one, has run."""

    def start(in_child: bool):
        def run(index: int) -> int:
            if index == 0:
                deadline = time.monotonic() + 10
                while not marker.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
            elif index == 1:
                marker.touch()
            else:
                time.sleep(0.2)  # time enough for a pool to queue tasks ahead to its worker
            return os.getpid()

        return run

    return start


def test_the_caller_takes_every_light_task_no_worker_has_started(tmp_path):
    # While the one worker is busy with the heavy task, no light task is queued to it ahead
    # of time: the calling process runs them all (lightest first) instead of waiting.
    pids = run_tasks_forked(
        5, _light_tasks_stay_here(tmp_path / "m"), jobs=2, costs=[10, 1, 1, 1, 1]
    )
    assert pids[0] != os.getpid()
    assert pids[1:] == [os.getpid()] * 4


def _fails_in_child(in_child: bool):
    def run(index: int) -> int:
        if in_child:
            raise TldbError(f"task {index} failed in a worker")
        time.sleep(0.2)
        return index

    return run


def test_a_worker_error_is_raised_in_the_caller():
    with pytest.raises(TldbError, match="failed in a worker"):
        run_tasks_forked(4, _fails_in_child, jobs=2)


#: A module that fails only in a worker process. It is imported by the report's own process
#: before the workers fork, so PARENT is that process. Its two parts are the costliest tasks,
#: so each process's first task is one of them: the report's own process, given a part, holds
#: it until a worker has taken the other part (and failed), so a worker always fails.
BROKEN_MODULE = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from tldb.module_api import Module, ModuleOutput

    PARENT = os.getpid()
    MARKER = Path({marker!r})

    class Broken(Module):
        id = "broken"
        name = "Broken"
        cost = 1000
        shards = 2

        def render(self, ctx):
            if os.getpid() == PARENT:
                deadline = time.monotonic() + 60
                while not MARKER.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
                return ModuleOutput()
            MARKER.touch()
            answer = ctx.db.conn.execute("SELECT 42").fetchone()[0]
            raise RuntimeError(f"broken module in worker: {{answer}}")

    MODULE = Broken()
    """
)


def test_a_failing_module_in_a_worker_fails_the_report(tmp_path, log_writer):
    folder = tmp_path / "extra" / "broken"
    folder.mkdir(parents=True)
    marker = tmp_path / "a-worker-ran-it"
    (folder / "module.py").write_text(BROKEN_MODULE.format(marker=str(marker)))
    log_writer.add({"dynamo_start": {}, "frame_id": 0, "frame_compile_id": 0, "attempt": 0})
    log = log_writer.write(tmp_path / "small.log")
    result = run_tldb(
        "report",
        str(log),
        "-o",
        str(tmp_path / "out"),
        "--no-browser",
        "-j",
        "2",
        "--module-path",
        str(tmp_path / "extra"),
    )
    assert marker.exists()  # a worker ran the module
    assert result.returncode != 0
    # The module could query the database in its worker and its error reached the output.
    assert "broken module in worker: 42" in result.stderr
    assert "raised in a worker process" in result.stderr


def test_files_written_twice_keep_the_later_content_with_any_jobs(tmp_path, log_writer):
    """Unnumbered paths (dump_file pages, payloads/{md5}.txt) written by several envelopes: the
    last in log order wins, however the files are split between workers."""
    for number in range(6):
        log_writer.add({"dump_file": {"name": "same_name"}}, f"source version {number}")
        # Declares one md5 for different payloads (all but one fail the md5 check).
        log_writer.add({"chromium_event": {}, "frame_id": 0}, None)
        meta = {"unknown_kind": {}, "has_payload": "d41d8cd98f00b204e9800998ecf8427e"}
        log_writer.add(meta, None)
        log_writer.raw(f"\tpayload version {number}")
    log = log_writer.write(tmp_path / "dup.log")
    trees = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run_tldb("report", str(log), "-o", str(out), "--no-browser", "-j", jobs)
        assert result.returncode == 0, result.stderr
        trees.append(_tree(out))
    assert trees[0] == trees[1]
    page = trees[0]["dump_file/same_name.html"].decode()
    assert "source version 5" in page
    saved = trees[0]["payloads/d41d8cd98f00b204e9800998ecf8427e.txt"].decode()
    assert saved == "payload version 5"


LATE_MODULE = textwrap.dedent(
    """
    from tldb.module_api import DirectoryEntry, Module, ModuleOutput

    class Late{n}(Module):
        id = "late_{n}"
        late = {late}

        def render(self, ctx):
            # Which entries this late module saw.
            seen = sorted(e.url for entries in ctx.directory.values() for e in entries)
            mine = {{"late": [DirectoryEntry("late_{n}", "late_{n}.txt", "", 10_000 + {n})]}}
            text = "\\n".join(seen)
            return ModuleOutput(files=[("late_{n}.txt", text)], directory_entries=mine)

    MODULE = Late{n}()
    """
)


def test_late_modules_render_side_by_side_over_the_early_modules_directory(tmp_path):
    """Two late modules with -j 2 (four with the built-in ones, shared by two processes): each
    sees the planned entries and an early module's, neither sees the other's entry (run one
    after the other, late_2 saw late_1's), nor does compile_directory, a late module too."""
    extra = tmp_path / "extra"
    for n, late in ((0, False), (1, True), (2, True)):
        (extra / f"late_{n}").mkdir(parents=True)
        (extra / f"late_{n}" / "module.py").write_text(LATE_MODULE.format(n=n, late=late))
    out = tmp_path / "out"
    log = data_path("torch213/dynamo.log")
    result = run_tldb(
        "report", str(log), "-o", str(out), "--no-browser", "-j", "2", "--module-path", str(extra)
    )
    assert result.returncode == 0, result.stderr
    seen = {n: set((out / f"late_{n}.txt").read_text().split("\n")) for n in (1, 2)}
    assert seen[1] == seen[2]
    assert "late_0.txt" in seen[1]  # the early module's entry
    assert not {"late_1.txt", "late_2.txt"} & seen[1]
    # compile_directory (late too) lists the same entries: the plan's and late_0's.
    listed = orjson.loads((out / "compile_directory.json").read_bytes())
    urls = {e["url"] for groups in listed.values() for group in groups.values() for e in group}
    assert urls == seen[1]
    assert any("/dynamo_output_graph_" in url for url in urls)


def _sleep_long(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_terminated_pool_leaves_no_manager_thread_behind():
    """After terminate_pool (an error in a many-rank run) the pool's manager thread has ended:
    one still closing its pipe when the interpreter exits made a one-line error print a
    traceback ("Bad file descriptor")."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tldb.parallel import terminate_pool

    executor = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork"))
    running = [executor.submit(_sleep_long, 30) for _ in range(2)]
    time.sleep(0.3)  # the workers have started their long tasks
    manager = executor._executor_manager_thread
    assert manager is not None and manager.is_alive()
    terminate_pool(executor)
    assert not manager.is_alive()
    assert all(f.done() for f in running)
