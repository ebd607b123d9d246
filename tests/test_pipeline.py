"""Loading with the reader in a second process gives exactly the database of a one-process load."""

from __future__ import annotations

import os

import pytest
from conftest import corpus_logs, data_logs, data_path, log_id
from test_robustness import CASES

from tldb import db as dbmod
from tldb import pipeline
from tldb.errors import InputError, TldbError
from tldb.loader import build_database


def _tables(path) -> dict[str, list]:
    db = dbmod.open_readonly(path)
    try:
        names = [r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: db.conn.execute(f"SELECT * FROM [{name}] ORDER BY 1, 2").fetchall()
            for name in names
            if name != "sqlite_stat1"
        }
    finally:
        db.conn.close()


def _both_ways(log, tmp_path, monkeypatch) -> tuple[dict, dict]:
    monkeypatch.setattr(pipeline, "MIN_PIPELINE_BYTES", 1 << 62)
    build_database([log], tmp_path / "one.db")
    monkeypatch.setattr(pipeline, "MIN_PIPELINE_BYTES", 0)
    monkeypatch.setattr(pipeline, "BATCH", 7)  # many messages, records split across them
    build_database([log], tmp_path / "two.db")
    return _tables(tmp_path / "one.db"), _tables(tmp_path / "two.db")


def _equal_both_ways(log, tmp_path, monkeypatch) -> dict:
    one, two = _both_ways(log, tmp_path, monkeypatch)
    assert one["logs"]  # the comparison is not vacuous (stats, shape, ranks)
    assert one == two
    return one


@pytest.mark.parametrize("name", data_logs())
def test_pipelined_load_equals_one_process_load(name, tmp_path, monkeypatch):
    assert _equal_both_ways(data_path(name), tmp_path, monkeypatch)["envelopes"]


@pytest.mark.extended
@pytest.mark.parametrize("path", corpus_logs(), ids=log_id)
def test_pipelined_load_of_corpus_log(path, tmp_path, monkeypatch):
    """tlparse's own inputs: old torch versions, corrupted JSON, md5 mismatches."""
    _equal_both_ways(path, tmp_path, monkeypatch)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pipelined_load_of_malformed_input(name, tmp_path, monkeypatch):
    log = tmp_path / f"{name}.log"
    log.write_bytes(CASES[name])
    one, two = _both_ways(log, tmp_path, monkeypatch)
    assert one == two


@pytest.mark.parametrize("layout", ["crlf", "mixed"])
def test_crlf_and_blank_lines_inside_payloads(tmp_path, monkeypatch, log_writer, layout):
    log_writer.add({"artifact": {"name": "a", "encoding": "string"}}, "line one\nline two")
    log_writer.add({"chromium_event": {}}, '{"name": "x", "ph": "B", "ts": 1.5}')
    text = "\n".join(log_writer.lines) + "\n"
    if layout == "crlf":
        data = text.replace("\n", "\r\n")
    else:
        data = text.replace("\n", "\r\n", 3).replace("\tline two", "\n\tline two")
    log = tmp_path / "payloads.log"
    log.write_bytes(data.encode())
    one, two = _both_ways(log, tmp_path, monkeypatch)
    assert [row[2] for row in one["envelopes"]] == ([1, 4] if layout == "crlf" else [1, 5])
    assert one["envelopes"][0][-2] == 1  # payload md5 checked and matching
    assert one == two


def _dies(path, pipe):
    os._exit(3)


def test_a_dead_reader_process_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "MIN_PIPELINE_BYTES", 0)
    monkeypatch.setattr(pipeline, "_produce", _dies)
    log = data_path("torch213/regional.log")
    with pytest.raises(TldbError, match="reader process died"):
        build_database([log], tmp_path / "t.db")
    assert not (tmp_path / "t.db").exists()


def test_a_log_cut_short_during_the_load_is_a_clear_error(tmp_path):
    log = tmp_path / "shrinking.log"
    log.write_bytes(b"x" * 1000)
    fd = os.open(log, os.O_RDONLY)
    try:
        read_span = pipeline.span_reader(fd, log)
        assert read_span(10, 5) == b"xxxxx"
        os.truncate(log, 100)  # what a log rotated or rewritten under the loader looks like
        with pytest.raises(InputError, match="changed while it was read"):
            read_span(90, 50)
    finally:
        os.close(fd)
