"""Rank steps of `--all-ranks-html`: reuse of complete ranks, batch shares (`--only-ranks`),
and a real Dask cluster on loopback (`--scheduler`), each compared byte for byte with a plain
local run."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, run_tldb
from torch213_log import envelopes

from tldb.combine import AGGREGATE_VIEWS, MATERIALIZED_VIEWS, VIEW_INPUTS
from tldb.errors import OutputExistsError
from tldb.module_api import ReportConfig
from tldb.multirank import run_multi_rank
from tldb.rankstep import RECORD
from tldb.report import ReportRequest

#: Three real torch 2.13 logs used as the logs of ranks 0-2 (file names give the ranks).
SOURCES = ("dynamo.log", "cache_2.log", "regional.log")
#: Files whose bytes legitimately differ between runs: databases (they record load times) and
#: step records (they record the log's modification time).
NOT_COMPARED = (".db", RECORD)


def rank_folder(target: Path) -> Path:
    target.mkdir(parents=True)
    for rank, name in enumerate(SOURCES):
        shutil.copyfile(
            DATA / "torch213" / name, target / f"dedicated_log_torch_trace_rank_{rank}.log"
        )
    return target


def tree(root: Path) -> dict[str, bytes]:
    """Every report file under root by relative path (see NOT_COMPARED)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(NOT_COMPARED)
    }


def report(source: Path, out: Path, **options) -> object:
    request = ReportRequest(source=source, out_dir=out, jobs=2, **options)
    return run_multi_rank(request)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """One plain local run over a fresh folder: the tree every other run must equal."""
    base = tmp_path_factory.mktemp("reference")
    logs = rank_folder(base / "logs")
    result = run_tldb(
        "report", str(logs), "-o", str(base / "out"), "--all-ranks-html", "--no-browser"
    )
    assert result.returncode == 0, result.stderr
    return logs, tree(base / "out")


def test_second_run_reuses_every_rank_and_writes_the_same_report(reference, tmp_path):
    logs, expected = reference
    out = tmp_path / "out"
    first = report(logs, out)
    assert (first.reused_loads, first.reused_renders) == ([], [])
    second = report(logs, out)  # no --overwrite needed: OUT holds tldb's own rank outputs
    assert second.reused_loads == [0, 1, 2]
    assert second.reused_renders == [0, 1, 2]
    assert tree(out) == expected


def test_a_changed_log_and_an_incomplete_rank_are_redone(reference, tmp_path):
    logs, expected = reference
    local = tmp_path / "logs"
    shutil.copytree(logs, local)
    out = tmp_path / "out"
    report(local, out)
    (out / "rank_0" / RECORD).unlink()  # as if the step was killed before it finished
    changed = local / "dedicated_log_torch_trace_rank_2.log"
    changed.write_bytes(changed.read_bytes())  # same bytes, newer file: redone all the same
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (out / "rank_1" / "index.html").write_text("stale")  # a rank's page edited by hand...
    again = report(local, out)
    assert again.reused_loads == [1]  # ...is not detected: records say rank 1 is complete
    assert tree(out)["rank_0/index.html"] == expected["rank_0/index.html"]
    assert tree(out)["rank_2/index.html"] == expected["rank_2/index.html"]


def test_a_reused_rank_whose_database_was_replaced_is_a_one_line_error(reference, tmp_path):
    """The combine trusts the databases of ranks the run recorded complete (it does not open
    each one again first); one replaced since must still be named in a one-line error."""
    logs, _ = reference
    out = tmp_path / "out"
    report(logs, out)
    (out / "rank_1" / "trace.db").write_bytes(b"not a database, but the record says it is")
    result = run_tldb("report", str(logs), "-o", str(out), "--all-ranks-html", "--no-browser")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]  # after the ranks' summary lines
    assert error.startswith("Error: ") and "rank_1" in error and "trace.db" in error


def test_other_options_are_not_reused(reference, tmp_path):
    logs, _ = reference
    out = tmp_path / "out"
    report(logs, out)
    with pytest.raises(OutputExistsError):  # nothing in OUT is reusable: it is not replaced...
        report(logs, out, config=ReportConfig(plain_text=True))
    plain = report(logs, out, config=ReportConfig(plain_text=True), overwrite=True)
    assert (plain.reused_loads, plain.reused_renders) == ([], [])  # ...unless asked to


def test_batch_shares_then_landing_page_equal_a_local_run(reference, tmp_path):
    logs, expected = reference
    out = tmp_path / "out"
    for share in ("2", "0-1"):  # two tasks of an array, in any order
        result = run_tldb(
            "report", str(logs), "-o", str(out), "--all-ranks-html", "--only-ranks", share
        )
        assert result.returncode == 0, result.stderr
        assert not (out / "index.html").exists()
    final = report(logs, out)
    assert final.reused_loads == [0, 1, 2]
    assert tree(out) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("5", "no log for rank(s) 5"), ("1-x", "'1-x' is not a rank or a range"), ("3-1", "empty")],
)
def test_only_ranks_errors_are_one_line(reference, tmp_path, spec, message):
    logs, _ = reference
    result = run_tldb(
        "report", str(logs), "-o", str(tmp_path / "o"), "--all-ranks-html", "--only-ranks", spec
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


FAILING_MODULE = """
from pathlib import Path
from tldb.module_api import Module, ModuleOutput

class Flaky(Module):
    id = "flaky"
    name = "Fails on rank 1 (once, or always)"

    def render(self, ctx):
        # Files beside this module, not environment variables: Dask workers do not inherit
        # the environment of the command that sends them work.
        marker = Path(__file__).parent / "marker"
        always = (Path(__file__).parent / "always").exists()
        if ctx.out_dir.name == "rank_1" and (always or not marker.exists()):
            marker.write_text("failed once")
            raise RuntimeError("flaky module failed on purpose")
        return ModuleOutput()

MODULE = Flaky()
"""


@pytest.fixture(scope="module")
def dask_cluster():
    """A real Dask scheduler and two worker processes on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    )  # fmt: skip
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_dask_cluster_run_equals_local_run(reference, dask_cluster, tmp_path):
    logs, expected = reference
    out = tmp_path / "out"
    result = run_tldb(
        "report", str(logs), "-o", str(out), "--all-ranks-html", "--no-browser",
        "--scheduler", dask_cluster,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert tree(out) == expected


def _with_flaky_module(tmp_path: Path, always: bool) -> tuple[list[str], Path]:
    """--module-path flags adding the flaky module, and the file it leaves when it fails."""
    modules = tmp_path / "mods" / "flaky"
    modules.mkdir(parents=True)
    (modules / "module.py").write_text(FAILING_MODULE)
    if always:
        (modules / "always").touch()
    return ["--module-path", str(tmp_path / "mods")], modules / "marker"


@pytest.mark.parametrize("always", [False, True])
def test_dask_failed_rank_is_retried_once_then_reported(reference, dask_cluster, tmp_path, always):
    logs, _ = reference
    flags, marker = _with_flaky_module(tmp_path, always)
    command = [sys.executable, "-m", "tldb", "report", str(logs), "-o", str(tmp_path / "out")]
    command += ["--all-ranks-html", "--scheduler", dask_cluster, *flags]
    result = subprocess.run(command, capture_output=True, text=True)
    assert marker.exists()  # the module did fail on rank 1's worker
    if always:
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            "Error: rank 1 (render) failed: RuntimeError: flaky module failed on purpose"
        )
        assert "Traceback" not in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "out" / "rank_1" / "index.html").is_file()


def test_unreachable_scheduler_is_a_one_line_error(reference, tmp_path):
    pytest.importorskip("distributed")
    logs, _ = reference
    result = run_tldb(
        "report", str(logs), "-o", str(tmp_path / "out"), "--all-ranks-html",
        "--scheduler", "tcp://127.0.0.1:9",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_combined_database_is_not_a_second_copy(reference, tmp_path):
    """ranks.db keeps the payload texts cross-rank questions read (output code among them)
    and drops the others (graphs, cache entries, chromium events: their spans are computed in
    the rank databases), which stay in the rank databases; the all-rank chromium trace is
    still every rank's events."""
    logs, _ = reference
    out = tmp_path / "out"
    report(logs, out)
    combined = sqlite3.connect(out / "ranks.db")
    texts = dict(
        combined.execute(
            "SELECT e.kind, count(p.text) FROM envelopes e JOIN payloads p "
            "ON p.rank = e.rank AND p.id = e.payload_id GROUP BY e.kind"
        )
    )
    assert texts["inductor_output_code"] > 0
    assert texts["dynamo_output_graph"] == 0 and texts["chromium_event"] == 0
    spans = combined.execute("SELECT count(*) FROM chromium_spans").fetchone()[0]
    assert spans > 0
    tables = {name for (name,) in combined.execute("SELECT name FROM sqlite_master")}
    assert not tables & set(VIEW_INPUTS)  # read by views ranks.db holds as tables
    rank_db = sqlite3.connect(out / "rank_0" / "trace.db")
    graphs = rank_db.execute(
        "SELECT count(p.text) FROM envelopes e JOIN payloads p ON p.id = e.payload_id "
        "WHERE e.kind = 'dynamo_output_graph'"
    ).fetchone()[0]
    assert graphs > 0
    databases = dict(combined.execute("SELECT rank, value FROM meta WHERE key = 'rank_database'"))
    assert databases == {r: f"rank_{r}/trace.db" for r in range(len(SOURCES))}
    events = json.loads((out / "chromium_events.json").read_text())
    expected = [
        rank
        for rank, name in enumerate(SOURCES)
        for kind, _meta, payload in envelopes(Path(name).stem)
        if kind == "chromium_event" and payload is not None
    ]
    assert [event["pid"] for event in events] == expected


def test_progress_on_a_terminal_names_the_stage_and_counts_ranks(reference, tmp_path):
    """On a terminal, a many-rank run shows `loading ranks ... 3/3` then `rendering ranks`."""
    logs, _ = reference
    main, terminal = pty.openpty()
    command = [sys.executable, "-m", "tldb", "report", str(logs), "-o", str(tmp_path / "out")]
    command += ["--all-ranks-html", "--no-browser"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the command has ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert process.wait() == 0
    text = shown.decode(errors="replace")
    assert re.search(r"loading ranks.*3/3", text), text[-500:]
    assert re.search(r"rendering ranks.*3/3", text), text[-500:]


def test_combined_database_holds_heavy_views_as_tables_with_the_same_rows(reference, tmp_path):
    """The views canned queries read are tables in ranks.db (so they answer within Datasette's
    time limit at a thousand ranks), holding exactly each rank database's view rows."""
    logs, _ = reference
    out = tmp_path / "out"
    report(logs, out)
    combined = sqlite3.connect(out / "ranks.db")
    for name in MATERIALIZED_VIEWS:
        kind = combined.execute("SELECT type FROM sqlite_master WHERE name = ?", [name]).fetchone()
        assert kind == ("table",), name
        if name in AGGREGATE_VIEWS:  # no rank column: compared in the test below
            continue
        for rank in range(len(SOURCES)):
            own = sqlite3.connect(out / f"rank_{rank}" / "trace.db")
            want = own.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            got = combined.execute(f"SELECT count(*) FROM {name} WHERE rank = ?", [rank])
            if name == "guards" and want:  # a table with no rank column of its own
                got = combined.execute(
                    f"SELECT count(*) FROM {name} g JOIN logs l ON l.id = g.log_id "
                    "WHERE l.rank = ?",
                    [rank],
                )
            assert got.fetchone()[0] == want, (name, rank)
    assert combined.execute("SELECT count(*) FROM chromium_spans").fetchone()[0] > 0


def test_combined_envelope_kinds_count_every_ranks_envelopes(reference, tmp_path):
    """envelope_kinds, held as a table in ranks.db, counts the envelopes of all ranks: per
    kind, the sums of each rank database's own envelope_kinds rows."""
    logs, _ = reference
    out = tmp_path / "out"
    report(logs, out)
    columns = "envelopes, accepted, unknown"
    expected: dict[str, list[int]] = {}
    for rank in range(len(SOURCES)):
        own = sqlite3.connect(out / f"rank_{rank}" / "trace.db")
        for kind, *counts in own.execute(f"SELECT kind, {columns} FROM envelope_kinds"):
            expected[kind] = [
                a + b for a, b in zip(expected.get(kind, [0, 0, 0]), counts, strict=True)
            ]
        own.close()
    combined = sqlite3.connect(out / "ranks.db")
    got = {kind: counts for kind, *counts in combined.execute(
        f"SELECT kind, {columns} FROM envelope_kinds")}  # fmt: skip
    assert len(got) > 3 and got == expected


def test_steps_are_submitted_a_window_at_a_time_heaviest_first_results_in_order():
    """run_steps keeps at most window(executor) steps submitted (the driver's memory must not
    grow with the number of ranks), starts the costliest first, retries a failure once and
    returns results in step order; here on a real thread pool that counts what it holds."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tldb.executors import IN_FLIGHT, Step, run_steps, window

    class Counting(ThreadPoolExecutor):
        def __init__(self) -> None:
            super().__init__(max_workers=2)
            self.lock = threading.Lock()
            self.held = self.most = 0
            self.started: list[int] = []

        def submit(self, fn, /, *args, **kwargs):
            with self.lock:
                self.held += 1
                self.most = max(self.most, self.held)
                self.started.append(args[0])
            future = super().submit(fn, *args, **kwargs)
            future.add_done_callback(self._release)
            return future

        def _release(self, _future) -> None:
            with self.lock:
                self.held -= 1

    flaky = {7}

    def work(i: int) -> int:
        if i in flaky:
            flaky.discard(i)
            raise OSError("worker lost")
        return i * i

    count = 3 * IN_FLIGHT + 5
    steps = [Step(f"step {i}", work, (i,), cost=i % 10) for i in range(count)]
    with Counting() as executor:
        assert window(executor) == IN_FLIGHT
        results = run_steps(executor, steps)
    assert results == [i * i for i in range(count)]
    assert executor.most <= IN_FLIGHT
    heaviest = sorted((step.cost for step in steps), reverse=True)[:IN_FLIGHT]
    assert sorted((i % 10 for i in executor.started[:IN_FLIGHT]), reverse=True) == heaviest
    assert executor.started.count(7) == 2
