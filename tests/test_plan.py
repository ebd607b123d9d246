"""Central numbering equals tlparse's on generated edge cases (checked against the reference)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import run_tldb

CID = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
#: Files of a default-mode report that tlparse does not write (trace.db aside).
TLDB_EXTRAS = {"manifest.json", "triage.html"}


def _files(root):
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != "trace.db"
    )


def _both(oracle, log, tmp_path, *flags):
    ref, got = tmp_path / "ref", tmp_path / "got"
    subprocess.run(
        [*oracle, str(log), "-o", str(ref), "--no-browser", *flags], check=True, capture_output=True
    )
    result = run_tldb("report", str(log), "-o", str(got), "--no-browser", *flags)
    assert result.returncode == 0, result.stderr
    return ref, got


def test_default_mode_numbering_edge_cases(oracle, log_writer, tmp_path):
    traces = {"triton_poi_0": ['  File "x.py", line 1\\n    foo()']}
    w = log_writer
    w.add({"dynamo_output_graph": {}, **CID}, payload="graph")
    w.add({"dynamo_guards": {}, **CID}, payload="not json")  # fails: no number
    w.add({"dynamo_guards": {}, **CID}, payload=json.dumps([{"code": "x < 1"}]))
    w.add({"artifact": {"name": "odd", "encoding": "base64"}, **CID}, payload="x")  # fail_parser
    name = "inductor_provenance_tracking_kernel_stack_traces"
    w.add({"artifact": {"name": name, "encoding": "json"}, **CID}, payload=json.dumps(traces))
    w.add({"artifact": {"name": name, "encoding": "json"}, **CID}, payload="")  # no readable page
    w.add({"link": {"name": "profile", "url": "https://example.com/p"}, **CID})
    w.add({"artifact": {"name": "fx_graph_cache_miss", "encoding": "json"}, **CID}, payload="{}")
    w.add({"dump_file": {"name": "<eval_with_key>.7"}, **CID}, payload="def f():\n    pass")
    w.add({"inductor_output_code": {"filename": "/tmp/abc/cxyz.py"}, **CID}, payload="x = 1")
    w.add({"compilation_metrics": {"graph_op_count": 1, "restart_reasons": []}, **CID})
    w.add(
        {"artifact": {"name": "after", "encoding": "string"}, "frame_id": 1, "frame_compile_id": 0}
    )
    log = w.write(tmp_path / "edge.log")
    ref, got = _both(oracle, log, tmp_path)
    # Every file of tlparse at the same path, and no other numbered file: tldb adds only its
    # own two pages of a default report.
    assert set(_files(got)) - set(_files(ref)) == TLDB_EXTRAS
    assert set(_files(ref)) <= set(_files(got))
    assert json.loads((got / "compile_directory.json").read_text()) == json.loads(
        (ref / "compile_directory.json").read_text()
    )
    assert (got / "raw.jsonl").read_text() == (ref / "raw.jsonl").read_text()


def test_export_mode_numbers_guard_and_provenance_pages(oracle, log_writer, tmp_path):
    w = log_writer
    w.add({"exported_program": {}}, payload="graph():\n    return x")
    w.add(
        {
            "guard_added": {"expr": "Eq(s0, 3)", "prefix": "eval", "expr_node_id": 1},
            "propagate_real_tensors_provenance": {
                "expr": "u0 > 0",
                "result": "True",
                "expr_node_id": 2,
            },
        }
    )
    w.add(
        {
            "propagate_real_tensors_provenance": {
                "expr": "u1 > 0",
                "result": "False",
                "expr_node_id": 3,
            }
        }
    )
    log = w.write(tmp_path / "export.log")
    ref, got = _both(oracle, log, tmp_path, "--export")
    assert _files(got) == _files(ref)  # an export report has no tldb-only file
    # One page for the guard_added and one per propagate_real_tensors_provenance, in both.
    pages = [f for f in _files(got) if "symbolic_guard_information" in f]
    assert pages == [f for f in _files(ref) if "symbolic_guard_information" in f]
    assert len(pages) == 3


@pytest.mark.parametrize("flag", ["--plain-text"])
def test_plain_text_output_code_is_a_payload_file(oracle, log_writer, tmp_path, flag):
    log_writer.add({"inductor_output_code": {"filename": "/t/cabc.py"}, **CID}, payload="y = 2")
    log = log_writer.write(tmp_path / "plain.log")
    ref, got = _both(oracle, log, tmp_path, flag)
    assert _files(ref) == [f for f in _files(got) if f != "manifest.json"]
    assert (got / "raw.jsonl").read_text() == (ref / "raw.jsonl").read_text()
