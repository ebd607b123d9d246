"""`tldb search`: FTS5 over graphs, output code, guards and stack frames of real traces."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

import pytest
from click.testing import CliRunner
from conftest import data_path
from torch213_log import envelopes, label

from tldb import cli_extra, search
from tldb.errors import InputError
from tldb.loader import build_database


def run(command, *args):
    """Invoke a command of tldb/cli_extra.py (what `tldb diff|search ...` runs)."""
    return CliRunner().invoke(command, [str(a) for a in args])


@pytest.fixture
def cache_db(tmp_path):
    path = tmp_path / "trace.db"
    build_database([data_path("torch213/cache_1.log")], path)
    return path


def kinds_containing(name: str, needle: str) -> dict[str, set[str]]:
    """Compile ids and kinds of the graph/code envelopes whose payload contains needle."""
    found = defaultdict(set)
    for kind, meta, payload in envelopes(name):
        if (
            payload
            and needle in payload
            and kind in ("dynamo_output_graph", "aot_inference_graph", "inductor_output_code")
        ):
            found[label(meta)].add(kind)
    return found


def test_no_index_until_the_first_search(cache_db):
    conn = sqlite3.connect(cache_db)
    assert not search.has_index(conn)
    conn.close()
    result = run(cli_extra.search, str(cache_db), "aten.relu")
    assert result.exit_code == 0, result.stderr
    assert "search index built" in result.stderr
    conn = sqlite3.connect(cache_db)
    assert search.has_index(conn)
    conn.close()
    again = run(cli_extra.search, str(cache_db), "aten.relu")
    assert "search index built" not in again.stderr
    assert again.stdout == result.stdout


def test_finds_an_op_with_its_compile_id(cache_db):
    expected = kinds_containing("cache_1", "aten.relu.default")
    assert set(expected) == {"[0/0]", "[0/1]"}
    result = run(cli_extra.search, str(cache_db), "aten.relu", "-n", "500")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    got = defaultdict(set)
    for compile_id, kind, _name, snippet in rows:
        assert "[aten.relu]" in snippet
        got[compile_id].add(kind)
    for compile_id in expected:
        assert "aot_inference_graph" in got[compile_id]
    assert set(got) == set(expected)


def test_searches_guards_code_and_stacks(cache_db):
    search.build_index(cache_db)
    conn = sqlite3.connect(cache_db)
    guard = search.search(conn, "TENSOR_MATCH")
    assert {h.kind for h in guard} == {"dynamo_cpp_guards_str"}
    code = search.search(conn, "cpp_fused")
    assert code and {h.kind for h in code} >= {"inductor_output_code"}
    frames = [h for h in search.search(conn, "scaled") if h.name == "stack"]
    starts = [label(m) for k, m, _ in envelopes("cache_1") if k == "dynamo_start"]
    assert sorted(h.compile_id for h in frames) == sorted(starts)
    assert all("cache_1.py" in h.snippet for h in frames)
    assert search.search(conn, "no_such_identifier_anywhere") == []
    raw = search.search(conn, "relu AND mean", raw=True)
    assert raw
    conn.close()


def test_bad_query_is_one_line(cache_db):
    result = run(cli_extra.search, str(cache_db), "AND (", "--raw")
    assert isinstance(result.exception, InputError)  # `tldb` prints it as one line
    assert str(result.exception).startswith("bad search 'AND (': fts5: syntax")


def test_commands_are_registered():
    from tldb.cli import cli

    assert {"diff", "search"} <= set(cli.commands)
