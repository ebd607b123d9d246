"""sql/kinds.sql: every envelope kind of real torch 2.13 traces lands in a typed view.

The traces are the logs under tests/data/torch213, made by tests/data/generate_traces.py. Expected
values are read from the log lines here, with plain json, independently of tldb's loader.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from conftest import data_logs, data_path
from torch213_log import TRACES, envelopes

from tldb.loader import build_database

#: Every torch 2.13 log, by its name under torch213/ without `.log` (as envelopes() takes it).
LOGS = [
    name.removeprefix("torch213/").removesuffix(".log")
    for name in data_logs()
    if name.startswith("torch213/")
]

#: Kinds PyTorch 2.8-2.14 writes (reference/trace-format.md), including those tlparse ignores.
CATALOGUE_KINDS = """str dynamo_start dynamo_output_graph optimize_ddp_split_graph
optimize_ddp_split_child compiled_autograd_graph dynamo_guards dynamo_cpp_guards_str
aot_joint_graph aot_forward_graph aot_backward_graph aot_inference_graph
aot_forward_graph_pre_saved_tensors_hooks aot_backward_graph_pre_saved_tensors_hooks
aot_forward_graph_pre_assert_saved_tensors_hooks aot_backward_graph_pre_assert_saved_tensors_hooks
inductor_pre_grad_graph inductor_post_grad_graph inductor_output_code graph_dump
compilation_metrics bwd_compilation_metrics compilation_metrics_runtime
bwd_compilation_metrics_runtime aot_autograd_backward_compilation_metrics chromium_event artifact
link dump_file describe_storage describe_tensor describe_source symbolic_shape_specialization
create_symbol create_unbacked_symbol guard_added_fast guard_added propagate_real_tensors
propagate_real_tensors_provenance guard_on_data_dependent_error expression_created
missing_fake_kernel mismatched_fake_kernel export exported_program""".split()
#: Names computed at run time (they contain a space).
COMPUTED_KINDS = ["aot_saved_tensors_hooks_pack my_hook", "aot_saved_tensors_hooks_unpack my_hook"]


def log_path(name: str) -> Path:
    return data_path(f"torch213/{name}.log")


def log_kinds(name: str) -> Counter:
    """Envelope kinds of a log, counted from its lines: the first key that is not context."""
    return Counter(kind for kind, _, _ in envelopes(name))


@pytest.fixture(scope="module")
def dbs(tmp_path_factory) -> dict[str, sqlite3.Connection]:
    folder = tmp_path_factory.mktemp("kinds")
    conns = {}
    for name in LOGS:
        path = folder / f"{name.replace('/', '_')}.db"
        build_database([log_path(name)], path)
        conns[name] = sqlite3.connect(path)
    yield conns
    for conn in conns.values():
        conn.close()


def view_of(conn: sqlite3.Connection, kind: str) -> str | None:
    row = conn.execute(
        "SELECT typed_view FROM envelope_catalogue WHERE ? GLOB kind", [kind]
    ).fetchone()
    return row[0] if row else None


def test_traces_are_committed_and_small():
    assert {"cache_1", "cache_2", "dynamo", "export", "draft_export", "regional"} <= set(LOGS)
    assert sum(p.stat().st_size for p in TRACES.rglob("*") if p.is_file()) < 3 * 1024 * 1024


@pytest.mark.parametrize("log", LOGS)
def test_every_kind_has_its_rows_in_a_typed_view(dbs, log):
    conn = dbs[log]
    kinds = log_kinds(log)
    assert kinds, "no envelope read from the log"
    for kind, count in kinds.items():
        view = view_of(conn, kind)
        assert view is not None, f"{kind} is not in envelope_catalogue"
        rows = conn.execute(f"SELECT count(*) FROM [{view}] WHERE kind = ?", [kind]).fetchone()
        assert rows[0] == count, f"{kind}: {rows[0]} rows in {view}, {count} in the log"


@pytest.mark.parametrize("log", LOGS)
def test_nothing_unrecognised_in_the_torch_traces(dbs, log):
    assert dbs[log].execute("SELECT kind FROM unrecognised_kinds").fetchall() == []


def test_traces_cover_what_tlparse_ignores(dbs):
    """The generated traces exercise the kinds and keys tlparse 0.4.3 leaves out."""
    seen = Counter()
    for log in LOGS:
        seen.update(log_kinds(log))
    for kind in ("create_symbol", "export", "guard_on_data_dependent_error", "guard_added"):
        assert seen[kind] > 0, kind
    text = log_path("regional").read_text(encoding="utf-8")
    expected = text.count('"subgraph_name": ')
    assert expected > 0
    got = dbs["regional"].execute("SELECT count(*) FROM subgraphs").fetchone()[0]
    assert got == expected


def test_catalogue_covers_every_kind_torch_writes(dbs):
    conn = next(iter(dbs.values()))
    for kind in CATALOGUE_KINDS + COMPUTED_KINDS:
        view = view_of(conn, kind)
        assert view is not None, kind
        conn.execute(f"SELECT * FROM [{view}] LIMIT 0")  # the view exists and compiles
    assert view_of(conn, "not_a_torch_kind") is None


def test_compilation_metrics_has_every_field_as_a_column(dbs):
    conn = dbs["cache_1"]
    columns = {r[1] for r in conn.execute("PRAGMA table_info(compilation_metrics)")}
    for log in LOGS:
        for line in log_path(log).read_text(encoding="utf-8").splitlines():
            if '"compilation_metrics": {' not in line:
                continue
            fields = json.loads(line[line.index("] {") + 2 :])["compilation_metrics"]
            missing = {f for f in fields if f != "compile_id"} - columns
            assert not missing, f"{log}: no column for {sorted(missing)}"
    assert "metrics_compile_id" in columns
    assert len(columns) >= 99


def test_compilation_metrics_values_match_the_log(dbs):
    conn = dbs["dynamo"]
    expected = []
    for line in log_path("dynamo").read_text(encoding="utf-8").splitlines():
        if '{"compilation_metrics": {' in line:
            m = json.loads(line[line.index("] {") + 2 :])["compilation_metrics"]
            expected.append((m["co_name"], m["fail_type"], m["duration_us"], m["num_graph_breaks"]))
    rows = conn.execute(
        "SELECT co_name, fail_type, duration_us, num_graph_breaks FROM compilation_metrics "
        "WHERE kind = 'compilation_metrics' ORDER BY envelope_id"
    ).fetchall()
    assert rows == expected
    assert any(r[1] == "Unsupported" for r in rows)


def test_shape_env_events_fields(dbs):
    symbols = []
    for line in log_path("cache_1").read_text(encoding="utf-8").splitlines():
        if '{"create_symbol": {' in line:
            m = json.loads(line[line.index("] {") + 2 :])["create_symbol"]
            symbols.append((m["symbol"], m["val"], m["vr"], m["source"]))
    assert symbols
    rows = (
        dbs["cache_1"]
        .execute(
            "SELECT symbol, value, value_range, source FROM shape_env_events "
            "WHERE kind = 'create_symbol' ORDER BY envelope_id"
        )
        .fetchall()
    )
    assert rows == symbols
    errors = (
        dbs["export"]
        .execute(
            "SELECT expr, unhinted_expr FROM shape_env_events "
            "WHERE kind = 'guard_on_data_dependent_error'"
        )
        .fetchall()
    )
    assert errors and all(e[0] for e in errors)


def test_rows_tlparse_rejects_are_kept(dbs):
    """guard_added with a 64-bit expr_node_id fails tlparse's types; the typed view keeps it."""
    rows = (
        dbs["export"]
        .execute("SELECT status, expr, node_id FROM shape_env_events WHERE kind = 'guard_added'")
        .fetchall()
    )
    assert rows
    assert all(r[1] for r in rows)


def test_unknown_kind_is_listed(tmp_path, log_writer):
    log_writer.add({"dynamo_start": {"stack": []}, "frame_id": 0, "frame_compile_id": 0})
    log_writer.add({"brand_new_kind": {"a": 1}, "frame_id": 0, "frame_compile_id": 0}, "x")
    log_writer.add({"brand_new_kind": {"a": 2}, "frame_id": 0, "frame_compile_id": 0}, "y")
    log_writer.add(
        {"aot_saved_tensors_hooks_pack fp8": {}, "frame_id": 0, "frame_compile_id": 0}, "g"
    )
    path = tmp_path / "trace.db"
    build_database([log_writer.write(tmp_path / "new.log")], path)
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT kind, envelopes, with_payload FROM unrecognised_kinds").fetchall()
    assert rows == [("brand_new_kind", 2, 2)]
    hooks = conn.execute("SELECT name, payload FROM graphs").fetchall()
    assert hooks == [("fp8", "g")]
    conn.close()


def _index(log: Path, out: Path) -> str:
    from tldb.report import ReportRequest, run_report

    run_report(ReportRequest(source=log, out_dir=out, overwrite=True, modules=["envelope_kinds"]))
    return (out / "index.html").read_text(encoding="utf-8")


def test_report_section_lists_unrecognised_kinds(tmp_path, log_writer):
    log_writer.add({"dynamo_start": {"stack": []}, "frame_id": 0, "frame_compile_id": 0})
    for n in range(3):
        log_writer.add({"brand_new_kind": {"n": n}, "frame_id": 0, "frame_compile_id": 0})
    index = _index(log_writer.write(tmp_path / "new.log"), tmp_path / "out")
    box = index[index.index('class="warning-box"') :]
    assert "1 envelope kind(s) tldb did not recognise" in box
    assert "<td><code>brand_new_kind</code></td><td>3</td>" in box


@pytest.mark.parametrize("name", ["export", "regional"])
def test_report_shows_what_tlparse_leaves_out(tmp_path, name):
    index = _index(log_path(name), tmp_path / "out")
    assert "Envelope kinds tldb did not recognise: none." in index
    page = (tmp_path / "out" / "envelope_kinds.html").read_text(encoding="utf-8")
    kinds = log_kinds(name)
    if name == "export":
        for kind in ("create_symbol", "export", "guard_on_data_dependent_error"):
            assert f'<h2 id="{kind}"><code>{kind}</code> ({kinds[kind]})</h2>' in page
    else:
        assert 'id="subgraph_name"' in page
