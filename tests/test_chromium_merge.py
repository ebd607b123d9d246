"""The landing's chromium_events.json made from the ranks' own files (pid lines rewritten).

The rewrite must give exactly the bytes of formatting every event again with pid = rank, and
must refuse (so that the landing formats from the database) every file where a substitution
could differ. Both are checked against the formatter itself, and a whole multi-rank report is
compared with and without the ranks' files.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest
from conftest import LogWriter, data_path, run_tldb

from tldb import jsonfmt


def merge():
    from tldb.registry import ModuleRegistry

    ModuleRegistry.discover()
    return importlib.import_module("tldb_modules.multi_rank.chromium_merge")


def _expected(events: list, rank: int) -> bytes:
    """What the landing's formatter writes for these events of `rank` (brackets cut)."""
    moved = [dict(e, pid=rank) if isinstance(e, dict) else e for e in events]
    text = b"".join(jsonfmt.pretty_array(moved))
    return b"" if text == b"[]" else text[2:-2]


def _rank_file(tmp_path: Path, events: list) -> Path:
    path = tmp_path / "chromium_events.json"
    path.write_bytes(b"".join(jsonfmt.pretty_array(events)))
    return path


REWRITABLE = {
    "plain": [{"name": "a", "ph": "B", "pid": 0, "tid": 0, "ts": 1.5}],
    "pid last key and string pid": [{"a": 1, "pid": "worker-3"}, {"b": 2, "pid": 7}],
    "nested pid untouched": [{"args": {"pid": 99, "x": [1, {"pid": 5}]}, "pid": 0, "ts": 2}],
    "float and negative pid": [{"pid": -1.25e3}, {"pid": 0.5}],
    "null and bool pid": [{"pid": None}, {"pid": True}, {"pid": False}],
    "escaped strings": [{"name": 'he said "pid": 0\n', "pid": 1, "z": "\\"}],
    "many": [{"name": f"e{i}", "pid": i % 3, "ph": "X", "dur": i} for i in range(1200)],
}

REFUSED = {
    "event without pid": [{"name": "a", "ph": "B", "pid": 0}, {"name": "b"}],
    "pid is an object": [{"pid": {"p": 1}}],
    "pid is an array": [{"pid": [1, 2]}],
    "scalar element": [{"pid": 0}, 5],
    "array element": [{"pid": 0}, [1, 2]],
    "empty object element": [{"pid": 0}, {}],
    "string element": ["x"],
    "scalar between objects": [{"pid": 0}, 5, {"pid": 1}],
    "empty object between objects": [{"pid": 0}, {}, {"pid": 1}],
    "array between objects": [{"pid": 0}, [{"pid": 2}], {"pid": 1}],
    "scalar first": [5, {"pid": 0}],
}


@pytest.mark.parametrize("case", sorted(REWRITABLE))
@pytest.mark.parametrize("rank", [0, 3, 1023])
def test_rewrite_equals_formatting_again(tmp_path, case, rank):
    events = REWRITABLE[case]
    got = merge().rank_fragment(_rank_file(tmp_path, events), rank)
    assert got == _expected(events, rank)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refuses_what_a_substitution_could_get_wrong(tmp_path, case):
    assert merge().rank_fragment(_rank_file(tmp_path, REFUSED[case]), 4) is None


def test_empty_missing_and_foreign_files(tmp_path):
    m = merge()
    assert m.rank_fragment(_rank_file(tmp_path, []), 2) == b""
    assert m.rank_fragment(None, 2) is None
    assert m.rank_fragment(tmp_path / "absent.json", 2) is None
    compact = tmp_path / "compact.json"
    compact.write_bytes(b'[{"pid": 0}]')
    assert m.rank_fragment(compact, 2) is None


def _rank_folder(tmp_path: Path) -> Path:
    """Three ranks: a real one, one whose events lack a pid, one with no events."""
    folder = tmp_path / "ranks"
    folder.mkdir()
    real = data_path("torch213/ranks2") / "dedicated_log_torch_trace_rank_0.log"
    shutil.copyfile(real, folder / "dedicated_log_torch_trace_rank_0.log")
    odd = LogWriter()
    odd.add({"chromium_event": {}, "rank": 1}, '{"name": "x", "ph": "i", "ts": 5}')
    odd.add({"chromium_event": {}, "rank": 1}, '{"name": "y", "ph": "i", "ts": 6, "pid": 9}')
    odd.write(folder / "dedicated_log_torch_trace_rank_1.log")
    LogWriter().add({"str": ["a.py", 0]}).write(folder / "dedicated_log_torch_trace_rank_2.log")
    return folder


def test_landing_same_with_and_without_the_ranks_files(tmp_path):
    """The whole file: from the ranks' files (rank 1 refused, so from the database) and,
    re-rendered where the ranks' files are absent, entirely from the ranks' own databases."""
    folder = _rank_folder(tmp_path)
    out = tmp_path / "out"
    done = run_tldb("report", str(folder), "--all-ranks-html", "-o", str(out), "--no-browser")
    assert done.returncode == 0, done.stderr
    merged = (out / "chromium_events.json").read_bytes()
    events = jsonfmt.loads_like_serde(merged)
    assert {e["pid"] for e in events} == {0, 1}
    assert [e["name"] for e in events if e["pid"] == 1] == ["x", "y"]

    m = merge()
    rank0 = m.rank_fragment(out / "rank_0" / "chromium_events.json", 0)
    assert rank0 and merged.startswith(b"[\n" + rank0 + b",\n")

    from tldb.module_api import MULTI_RANK_MODE, ReportConfig
    from tldb.multirank import render_landing
    from tldb.registry import ModuleRegistry

    alone = tmp_path / "alone"
    alone.mkdir()
    registry = ModuleRegistry.discover()
    modules = registry.for_mode(MULTI_RANK_MODE, None)
    render_landing(out / "ranks.db", alone, ReportConfig(), registry, modules)
    assert not list(alone.glob("rank_*/chromium_events.json"))
    assert (alone / "chromium_events.json").read_bytes() == merged


def test_landing_in_two_parts_equals_the_landing_in_one(tmp_path):
    """On two workers the multi_rank module renders in two parts (the all-rank
    chromium_events.json apart from the rest); the files are those of one part, byte for byte."""
    from tldb.module_api import MULTI_RANK_MODE, ReportConfig
    from tldb.multirank import render_landing
    from tldb.registry import ModuleRegistry

    folder = _rank_folder(tmp_path)
    out = tmp_path / "out"
    done = run_tldb("report", str(folder), "--all-ranks-html", "-o", str(out), "--no-browser")
    assert done.returncode == 0, done.stderr
    registry = ModuleRegistry.discover()
    modules = registry.for_mode(MULTI_RANK_MODE, None)
    landing = {}
    for jobs in (1, 2):
        copy = tmp_path / f"jobs{jobs}"
        shutil.copytree(out, copy)
        made = [p for p in copy.iterdir() if p.is_file() and p.suffix in (".html", ".json")]
        made += list(copy.glob("rank_*/collectives_parity.json"))
        for path in made:  # the landing's own files: made again below
            path.unlink()
        dbs = {rank: copy / f"rank_{rank}" / "trace.db" for rank in (0, 1, 2)}
        site = render_landing(copy / "ranks.db", copy, ReportConfig(), registry, modules, dbs, jobs)
        assert site.files == len(made)
        landing[jobs] = {p.relative_to(copy): p.read_bytes() for p in made}
    assert landing[1] == landing[2]
    assert b'"pid": 1' in landing[2][Path("chromium_events.json")]
    assert landing[2][Path("index.html")] == (out / "index.html").read_bytes()
