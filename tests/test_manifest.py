"""manifest.json agrees with the rest of the report and with the log itself."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import data_logs, data_path, run_tldb
from torch213_log import envelopes

CACHE_ICONS = {"hits": "✅", "misses": "❌", "bypasses": "❓"}


def _report(log, out):
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    return json.loads((out / "manifest.json").read_text())


def _assert_agrees_with_compile_directory(manifest: dict, out) -> dict:
    """Compile ids, file counts, cache counts and restarts are those of the report's files."""
    directory = json.loads((out / "compile_directory.json").read_text())
    assert manifest["version"] == "2.1"
    assert sorted(c["id"] for c in manifest["compile_ids"]) == sorted(directory)
    for entry in manifest["compile_ids"]:
        assert entry["files"] == len(directory[entry["id"]]["artifacts"])
    suffixes = [a["suffix"] for v in directory.values() for a in v["artifacts"]]
    for count, icon in CACHE_ICONS.items():
        assert manifest["cache"][count] == suffixes.count(icon), count
    missed = {c["id"] for c in manifest["compile_ids"] if c["cache_status"] == "miss"}
    assert missed == {
        k for k, v in directory.items() if any(a["suffix"] == "❌" for a in v["artifacts"])
    }
    rows = manifest["failures"]["rows"]
    assert manifest["failures"]["restarts"] == sum(r["type"] == "restart" for r in rows)
    return directory


@pytest.mark.parametrize(("name", "outcome"), [("cache_1", "misses"), ("cache_2", "hits")])
def test_manifest_matches_compile_directory(tmp_path, name, outcome):
    """The first run of the cache scenario misses the caches, the second hits them."""
    manifest = _report(data_path(f"torch213/{name}.log"), tmp_path / "o")
    _assert_agrees_with_compile_directory(manifest, tmp_path / "o")
    assert manifest["cache"][outcome] > 0


def test_manifest_failures_come_from_the_metrics(oracle, tmp_path):
    log = data_path("torch213/dynamo.log")
    manifest = _report(log, tmp_path / "o")
    failing = [
        meta
        for kind, meta, _ in envelopes("dynamo")
        if kind == "compilation_metrics"
        if meta["compilation_metrics"].get("fail_type")
    ]
    assert manifest["failures"]["failures"] == len(failing) > 0
    assert {c["status"] for c in manifest["compile_ids"] if c["has_metrics"]} >= {"error"}
    reference = subprocess.run(
        [*oracle, str(log), "-o", str(tmp_path / "ref"), "--no-browser"],
        capture_output=True,
        text=True,
    )
    ok = re.search(r"Stats \{ ok: (\d+)", reference.stderr)
    assert ok is not None, reference.stderr
    assert manifest["stats"]["ok"] == int(ok.group(1))
    assert manifest["stack_trie"][0]["children"] or manifest["stack_trie"][0]["compile_ids"]


@pytest.mark.parametrize("name", data_logs())
def test_manifest_of_every_data_log(tmp_path, name):
    out = tmp_path / "o"
    _assert_agrees_with_compile_directory(_report(data_path(name), out), out)


def test_manifest_of_a_log_with_odd_metrics(log_writer, tmp_path):
    """Null and missing restart lists, compiles without metrics, metrics without a stack."""
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    log_writer.add({"compilation_metrics": {"restart_reasons": None, "graph_op_count": 1}, **cid})
    log_writer.add({"compilation_metrics": {"fail_type": "X", "fail_reason": "y"}, "frame_id": 1})
    log_writer.add({"dynamo_output_graph": {}, "frame_id": 2, "frame_compile_id": 0}, "graph")
    manifest = _report(log_writer.write(tmp_path / "odd.log"), tmp_path / "o")
    _assert_agrees_with_compile_directory(manifest, tmp_path / "o")
    statuses = {c["id"]: (c["has_metrics"], c["status"]) for c in manifest["compile_ids"]}
    # tlparse's colours: a null restart list counts as missing, which is a restart ("break").
    assert statuses == {
        "[0/0]": (True, "break"),
        "[1/-]": (True, "error"),
        "[2/0]": (False, "missing"),
    }
    # ... but there is no restart row to list (tlparse's failures page has only the failure).
    assert manifest["failures"]["rows"] == [{"compile_id": "[1/-]", "reason": "y", "type": "X"}]
    assert (manifest["failures"]["failures"], manifest["failures"]["restarts"]) == (1, 0)


@pytest.mark.extended
def test_manifest_on_every_single_rank_corpus_log(corpus, tmp_path):
    """No log of tlparse's inputs breaks the manifest (older torch versions' envelopes)."""
    logs = sorted((corpus / "tlparse-tests" / "inputs").glob("*.*"))
    for index, log in enumerate(logs):
        out = tmp_path / str(index)
        _assert_agrees_with_compile_directory(_report(log, out), out)
