"""Databases that did not come from tldb, given to every command that reads a database.

`report`, `serve`, `combine`, `diff` and `search` on: a file that is not SQLite, a truncated
and a corrupted database, another schema, another schema version, an unfinished load, and
tldb databases edited by hand (triggers and views added, a view replaced; markup in every text
column and output paths with `..`, absolute paths and NUL bytes; a 100 MB value). Each gives a
one-line error or a confined, escaped report: never a traceback, never a file outside the
output folder, never a change to the input file (SHA-256 before and after).

(test_robustness.py covers hostile *logs*; this file covers hostile *databases*.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import data_path
from live_server import serve

from tldb.cli import cli
from tldb.loader import build_database

MARKUP = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>"

#: Cases every reader must refuse with one line, and the words that line holds.
REFUSED = {
    "not_sqlite": "is not a tldb database (file is not a database)",
    "truncated": "is not a tldb database",
    "corrupted": "is not a tldb database",
    "other_schema": "is not a tldb database (no such table: meta)",
    "old_version": "has schema version 3, this tldb reads",
    "unfinished": "is from a load that did not finish",
}
#: tldb databases edited after the load: accepted, and must not hurt.
EDITED = ("triggers", "markup", "huge_value")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _edit(path: Path, statements: list[tuple[str, dict]]) -> None:
    conn = sqlite3.connect(path)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _make_cases(base: Path, folder: Path, outside: Path) -> dict[str, Path]:
    """Every hostile database, made from `base` (a real tldb database); `outside` is where an
    escaping output path would land."""
    data = base.read_bytes()
    cases = {name: folder / f"{name}.db" for name in (*REFUSED, *EDITED)}
    cases["not_sqlite"].write_bytes(b"this is a text file, not SQLite\n" * 100)
    cases["truncated"].write_bytes(data[: len(data) // 3])
    corrupted = bytearray(data)
    for offset in range(8192, len(corrupted), 4096):  # every page but the first two
        corrupted[offset + 100 : offset + 400] = bytes(range(256))[:300]
    cases["corrupted"].write_bytes(bytes(corrupted))
    _edit(cases["other_schema"], [("CREATE TABLE t (x)", {}), ("INSERT INTO t VALUES (1)", {})])
    for name in ("old_version", "unfinished", *EDITED):
        shutil.copyfile(base, cases[name])
    _edit(cases["old_version"], [("UPDATE meta SET value = '3' WHERE key = 'schema_version'", {})])
    _edit(cases["unfinished"], [("DELETE FROM meta WHERE key = 'load_complete'", {})])
    _edit(
        cases["triggers"],
        [
            ("CREATE TABLE evil (x)", {}),
            ("CREATE TRIGGER t1 AFTER INSERT ON meta BEGIN DELETE FROM envelopes; END", {}),
            ("CREATE TRIGGER t2 BEFORE DELETE ON envelopes BEGIN INSERT INTO evil VALUES (1); END", {}),
            ("DROP TABLE graph_breaks", {}),  # held as a table too
            ("CREATE VIEW graph_breaks AS SELECT 1 AS unrelated", {}),
            ("DROP TABLE compiles", {}),  # a view the load held as a table
            ("CREATE VIEW compiles AS SELECT 1 AS unrelated", {}),
            ("CREATE VIEW cross_join AS SELECT * FROM envelopes a, envelopes b", {}),
        ],
    )  # fmt: skip
    up = "../" * (len(outside.parts) + 2)
    m = {"m": MARKUP, "up": f"{up}{str(outside).lstrip('/')}/escaped_", "abs": f"{outside}/abs_"}
    _edit(
        cases["markup"],
        [
            ("UPDATE outputs SET path = :up || number || '.txt' WHERE number % 3 = 0", m),
            ("UPDATE outputs SET path = :abs || number || '.txt' WHERE number % 3 = 1", m),
            ("UPDATE outputs SET path = 'a' || char(0) || 'b/' || number WHERE number % 3 = 2", {}),
            ("UPDATE outputs SET name = :m, url = 'javascript:alert(3)', compile_id = :m", m),
            ("UPDATE envelopes SET compile_id = :m, compile_dir = :up || id WHERE id % 2 = 0", m),
            ("UPDATE strings SET value = :m", m),
            ("UPDATE logs SET path = :m, name = '../' || :m", m),
            ("UPDATE payloads SET text = :m || text", m),
        ],
    )
    _edit(
        cases["huge_value"],
        [
            (
                "UPDATE payloads SET text = :t, size = length(:t) "
                "WHERE id = (SELECT min(id) FROM payloads)",
                {"t": "x" * 100_000_000},
            )
        ],
    )
    return cases


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(the hostile databases, their hashes, a folder no command may write to)."""
    root = tmp_path_factory.mktemp("hostile_dbs")
    base = root / "base.db"
    # Loaded for serving (analysis views held as tables), as a database a server shows.
    build_database([data_path("torch213/dynamo.log")], base, serving_tables=True)
    outside = root / "outside"
    outside.mkdir()
    (root / "cases").mkdir()
    cases = _make_cases(base, root / "cases", outside)
    hashes = {name: _sha256(path) for name, path in cases.items()}
    return cases, hashes, outside


def _invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"tldb {' '.join(args)} crashed: {result.exception!r}")
    return result


def _one_line_error(result, words: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines
    assert "Traceback" not in result.output


def _commands(db: Path, tmp: Path) -> dict[str, list[str]]:
    return {
        "report": ["report", str(db), "-o", str(tmp / "out"), "--no-browser"],
        "combine": ["combine", str(db), "-o", str(tmp / "combined.db")],
        "diff": ["diff", str(db), "0/0", "1/0", "--html", str(tmp / "diff.html")],
        "search": ["search", str(db), "add"],
        "serve": ["serve", str(db), "--port", "0"],
    }


@pytest.mark.parametrize("command", ["report", "combine", "diff", "search", "serve"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_foreign_databases_are_refused_in_one_line(world, case, command, tmp_path):
    cases, hashes, outside = world
    result = _invoke(*_commands(cases[case], tmp_path)[command])
    if case == "not_sqlite" and command == "report":
        # `tldb report` takes a log or a database: a file without SQLite's header is a log,
        # reported like tlparse reports any text file (no line has a glog prefix).
        assert result.exit_code == 0 and "Stats { fail_glog: 100 }" in result.stderr
        assert _sha256(cases[case]) == hashes[case]
        return
    _one_line_error(result, REFUSED[case])
    assert _sha256(cases[case]) == hashes[case]
    assert list(outside.iterdir()) == []
    assert not any(p.suffix == ".db" for p in tmp_path.rglob("*"))  # nothing made from it


@pytest.mark.parametrize("case", EDITED)
def test_edited_databases_give_a_confined_escaped_report(world, case, tmp_path):
    cases, hashes, outside = world
    out = tmp_path / "out"
    result = _invoke(*_commands(cases[case], tmp_path)["report"])
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        _one_line_error(result, "")
    else:
        assert (out / "index.html").is_file()
    assert _sha256(cases[case]) == hashes[case]
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if out.exists() else [])
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve()), path
        assert ".." not in path.relative_to(out).parts
        if path.suffix == ".html":
            page = path.read_text(encoding="utf-8", errors="replace")
            assert "<script>alert(1)" not in page and "<img src=x" not in page, path


def test_markup_and_paths_reach_the_report_escaped(world, tmp_path):
    """The markup case's report does show the hostile text (escaped), and its output paths
    with NUL bytes became ordinary names inside the folder."""
    cases, _, _ = world
    out = tmp_path / "out"
    _invoke(*_commands(cases["markup"], tmp_path)["report"])
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert not any("\x00" in str(p) for p in out.rglob("*"))


@pytest.mark.parametrize("command", ["combine", "diff", "search"])
@pytest.mark.parametrize("case", EDITED)
def test_edited_databases_other_commands(world, case, command, tmp_path):
    """One line (or an answer) from each command; the file is only ever changed by search's
    documented index build, which is done first here (`search --build`) on a copy."""
    cases, hashes, outside = world
    db = cases[case]
    if command == "search":
        db = tmp_path / "copy.db"
        shutil.copyfile(cases[case], db)
        built = _invoke("search", str(db), "--build")
        assert built.exit_code in (0, 1), built.output
        before = _sha256(db)
    else:
        before = hashes[case]
    result = _invoke(*_commands(db, tmp_path)[command])
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("Error: ")
    assert _sha256(db) == before
    assert list(outside.iterdir()) == []


def test_server_on_edited_databases_stays_up(world):
    """A real server over the three edited databases: every table and view page answers
    (an error status for the value over serve_guard's size cap and the replaced view, never
    a dropped connection), and the files are unchanged."""
    cases, hashes, _ = world
    paths = [str(cases[name]) for name in EDITED]
    with serve(*paths, "--setting", "sql_time_limit_ms", "500") as server:
        for name in EDITED:
            status, body, _ = server.get(f"/{name}.json")
            assert status == 200, body[:300]
            for relation in json.loads(body)["tables"] + json.loads(body).get("views", []):
                page = relation["name"] if isinstance(relation, dict) else relation
                status, body, _ = server.get(f"/{name}/{page}?_size=5")
                assert status in (200, 400, 500), (name, page, status)
                assert b"<script>alert(1)" not in body
        status, body, _ = server.get("/huge_value.json?sql=select+max(length(text))+from+payloads")
        assert status == 400 and b"string or blob too big" in body  # over serve_guard's cap
        status, body, _ = server.get("/huge_value.json?sql=select+max(size)+from+payloads")
        assert status == 200 and b"100000000" in body
        assert server.process.poll() is None
    for name in EDITED:
        assert _sha256(cases[name]) == hashes[name]


def test_markup_case_holds_hostile_paths(world):
    """Sanity of the fixture itself: the markup case does hold NUL bytes and `..` in paths."""
    cases, _, _ = world
    conn = sqlite3.connect(f"file:{cases['markup']}?mode=ro", uri=True)
    try:
        paths = [row[0] for row in conn.execute("SELECT path FROM outputs")]
    finally:
        conn.close()
    assert any("\x00" in p for p in paths) and any(".." in p for p in paths)
    assert any(os.path.isabs(p) for p in paths)
