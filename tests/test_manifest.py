"""manifest.json agrees with the rest of the report and with the log itself."""

from __future__ import annotations

import json

from conftest import run_tldb


def _report(log, out):
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    return json.loads((out / "manifest.json").read_text())


def test_manifest_matches_compile_directory(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "cache_hit_miss.log"
    manifest = _report(log, tmp_path / "o")
    directory = json.loads((tmp_path / "o" / "compile_directory.json").read_text())
    assert manifest["version"] == "2.1"
    assert sorted(c["id"] for c in manifest["compile_ids"]) == sorted(directory)
    for entry in manifest["compile_ids"]:
        assert entry["files"] == len(directory[entry["id"]]["artifacts"])
    suffixes = [a["suffix"] for v in directory.values() for a in v["artifacts"]]
    cache = manifest["cache"]
    assert (cache["hits"], cache["misses"], cache["bypasses"]) == (
        suffixes.count("✅"),
        suffixes.count("❌"),
        suffixes.count("❓"),
    )
    assert cache["misses"] > 0
    missed = {c["id"] for c in manifest["compile_ids"] if c["cache_status"] == "miss"}
    assert missed == {
        k for k, v in directory.items() if any(a["suffix"] == "❌" for a in v["artifacts"])
    }


def test_manifest_failures_come_from_the_metrics(corpus, tmp_path):
    log = corpus / "tlparse-tests" / "inputs" / "comp_failure.log"
    manifest = _report(log, tmp_path / "o")
    failing = [
        line
        for line in log.read_text().splitlines()
        if '"compilation_metrics"' in line and '"fail_type": "' in line
    ]
    assert manifest["failures"]["failures"] == len(failing) > 0
    assert {c["status"] for c in manifest["compile_ids"] if c["has_metrics"]} >= {"error"}
    assert manifest["stats"]["ok"] == 13
    assert manifest["stack_trie"][0]["children"] or manifest["stack_trie"][0]["compile_ids"]


def test_manifest_on_every_single_rank_corpus_log(corpus, tmp_path):
    """No log of the corpus breaks the manifest (null restart lists, no metrics, no stacks)."""
    logs = sorted((corpus / "tlparse-tests" / "inputs").glob("*.*"))
    for index, log in enumerate(logs):
        out = tmp_path / str(index)
        manifest = _report(log, out)
        directory = json.loads((out / "compile_directory.json").read_text())
        assert sorted(c["id"] for c in manifest["compile_ids"]) == sorted(directory), log.name
        rows = manifest["failures"]["rows"]
        assert manifest["failures"]["restarts"] == sum(r["type"] == "restart" for r in rows)
