"""The index's "Stack trie" and "Unknown stacks" sections (modules/stack_trie).

Checks the tries against the reference tlparse on every in-repo log with compiles, on tlparse's
inputs (extended suite) and on logs written here that hit
the status quirks (metrics filed under attempt 0, dynamo_start without an attempt, missing
restart lists), the convert_frame suffix stripping, and escaping of log text in frames.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import data_logs, data_path, run_tldb
from torch213_log import envelopes

DETAILS = re.compile(r"<details><summary>Stack</summary>.*?</details>", re.S)
TERMINAL = re.compile(r"<a href='#([^']*)' class='(status-[a-z]+)'>")


def report(log: Path, out: Path) -> str:
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser")
    assert result.returncode == 0, result.stderr
    return (out / "index.html").read_text()


def tries(index_html: str) -> list[str]:
    return DETAILS.findall(index_html)


def stack(*names: str, filename: int = 0) -> list[dict]:
    return [
        {"filename": filename, "line": 10 + i, "name": n, "loc": f"x = {n}()"}
        for i, n in enumerate(names)
    ]


def cid(frame: int, fcid: int | None = 0, attempt: int | None = 0) -> dict:
    parts = {"frame_id": frame, "frame_compile_id": fcid, "attempt": attempt}
    return {k: v for k, v in parts.items() if v is not None}


def metrics(**fields) -> dict:
    return {"compilation_metrics": {"graph_op_count": 1, "restart_reasons": [], **fields}}


def status_log(log_writer, path: Path) -> Path:
    """One compile id per colour, plus tlparse's lookup quirks."""
    w = log_writer
    w.add({"str": ["/src/model.py", 0]})
    w.add({"dynamo_start": {"stack": stack("main", "ok")}, **cid(0)})
    w.add({**metrics(), **cid(0)})
    # a restart: [1/0_1] is filed under [1/0], so [1/0] shows the break
    w.add({"dynamo_start": {"stack": stack("main", "restarted")}, **cid(1)})
    w.add({**metrics(restart_reasons=["graph break"]), **cid(1, attempt=1)})
    w.add({"dynamo_start": {"stack": stack("main", "restarted")}, **cid(1, attempt=1)})
    w.add({**metrics(), **cid(1)})
    w.add({"dynamo_start": {"stack": stack("main", "empty")}, **cid(2)})
    w.add({**metrics(graph_op_count=0), **cid(2)})
    w.add({"dynamo_start": {"stack": stack("main", "failed")}, **cid(3)})
    w.add({**metrics(fail_type="BackendCompilerFailed", fail_reason="boom"), **cid(3)})
    # no attempt on the dynamo_start: its metrics are never found
    w.add({"dynamo_start": {"stack": stack("main", "no_attempt")}, **cid(4, attempt=None)})
    w.add({**metrics(), **cid(4, attempt=None)})
    # restart_reasons missing counts as a restart
    w.add({"dynamo_start": {"stack": stack("main", "no_list")}, **cid(5)})
    w.add({"compilation_metrics": {"graph_op_count": 3}, **cid(5)})
    # no metrics at all; a frame-only id matches its metrics without any attempt
    w.add({"dynamo_start": {"stack": stack("main", "never")}, **cid(6)})
    w.add({"dynamo_start": {"stack": stack("main", "frame_only")}, "frame_id": 7})
    w.add({**metrics(), "frame_id": 7})
    return w.write(path)


def test_status_colours_follow_tlparse_rules(log_writer, tmp_path):
    index = report(status_log(log_writer, tmp_path / "s.log"), tmp_path / "out")
    found = TERMINAL.findall(tries(index)[0])
    assert found == [
        ("[0/0]", "status-ok"),
        ("[1/0]", "status-break"),
        ("[1/0_1]", "status-missing"),
        ("[2/0]", "status-empty"),
        ("[3/0]", "status-error"),
        ("[4/0]", "status-missing"),
        ("[5/0]", "status-break"),
        ("[6/0]", "status-missing"),
        ("[7/-]", "status-ok"),
    ]
    for label in ("[Success]", "[Success with restart (e.g., graph break)]", "[Empty graph]"):
        assert label in index
    assert "[Error]" in index and "[Metrics were missing]" in index
    assert "Unknown stacks" not in index


def test_generated_tries_equal_tlparse(oracle, log_writer, tmp_path):
    log = status_log(log_writer, tmp_path / "s.log")
    log_writer.add({"stack": stack("worker", "log_here")})
    log_writer.add({"stack": stack("worker", "elsewhere"), "frame_id": "not a number"})
    log_writer.add({"dynamo_start": {"stack": stack("main", "unknown_id")}, "frame_id": -1})
    log_writer.write(log)
    ours = tries(report(log, tmp_path / "out"))
    ref = tmp_path / "ref"
    subprocess.run([*oracle, str(log), "-o", str(ref), "--no-browser"], capture_output=True)
    assert len(ours) == 2
    assert ours == tries((ref / "index.html").read_text())


def assert_tries_equal_tlparse(oracle, log: Path, tmp_path: Path) -> list[str]:
    ours = tries(report(log, tmp_path / "out"))
    ref = tmp_path / "ref"
    subprocess.run(
        [*oracle, str(log), "-o", str(ref), "--no-browser"], check=True, capture_output=True
    )
    assert ours == tries((ref / "index.html").read_text())
    return ours


#: In-repo logs with compiles, hence a stack trie.
TRIE_LOGS = [
    name
    for name in data_logs()
    if '"dynamo_start"' in data_path(name).read_text(encoding="utf-8", errors="replace")
]


@pytest.mark.parametrize("name", TRIE_LOGS)
def test_tries_of_data_logs_equal_tlparse(oracle, tmp_path, name):
    assert assert_tries_equal_tlparse(oracle, data_path(name), tmp_path)


def test_trie_of_a_real_log_shows_failures_and_restarts(oracle, tmp_path):
    """The dynamo log's compiles end in each way its metrics say: one fails, one restarts
    after a graph break, the others succeed; the trie colours them so, as tlparse does."""
    rows = [
        m["compilation_metrics"] for k, m, _ in envelopes("dynamo") if k == "compilation_metrics"
    ]
    assert any(m.get("fail_type") for m in rows) and any(m.get("restart_reasons") for m in rows)
    trie = assert_tries_equal_tlparse(oracle, data_path("torch213/dynamo.log"), tmp_path)[0]
    statuses = {status for _, status in TERMINAL.findall(trie)}
    assert statuses >= {"status-ok", "status-error", "status-break"}


@pytest.mark.extended
@pytest.mark.parametrize(
    "log",
    [
        "tlparse-tests/inputs/comp_metrics.log",
        "tlparse-tests/inputs/cache_hit_miss.log",
        "tlparse-tests/inputs/simple.log",
        "torch213/g_2ranks/dedicated_log_torch_trace_rank_0_5lbcawvb.log",
        "tlparse-tests/inputs/multi_rank_logs/dedicated_log_torch_trace_rank_1.log",
    ],
)
def test_corpus_tries_equal_tlparse(corpus, oracle, tmp_path, log):
    """tlparse's inputs: older torch stacks, several terminals on one frame."""
    assert assert_tries_equal_tlparse(oracle, corpus / log, tmp_path)


def test_unknown_stacks_section(log_writer, tmp_path):
    """`stack` envelopes (torch logs them outside any compile) get their own trie, after the
    build products, with `(unknown)` terminals and no status colour."""
    log_writer.add({"str": ["/src/train.py", 0]})
    log_writer.add({"dynamo_start": {"stack": stack("main", "step")}, **cid(0)})
    log_writer.add({**metrics(), **cid(0)})
    log_writer.add({"dynamo_output_graph": {}, **cid(0)}, "graph")
    log_writer.add({"stack": stack("main", "backward", "hook")})
    index = report(log_writer.write(tmp_path / "u.log"), tmp_path / "out")
    assert "<h2>Unknown stacks</h2>" in index
    unknown = tries(index[index.index("<h2>Unknown stacks</h2>") :])
    assert len(unknown) == 1 and "(unknown) " in unknown[0] and "status-" not in unknown[0]
    assert "in hook" in unknown[0] and "in step" not in unknown[0]
    assert index.index("<h2>Stack trie</h2>") < index.index("Build products below")
    assert index.index("Build products below") < index.index("<h2>Unknown stacks</h2>")


@pytest.mark.extended
def test_corpus_unknown_stacks_section(corpus, tmp_path):
    """A real DDP run's `stack` envelope (torch 2.13, two ranks)."""
    log = corpus / "torch213/g_2ranks/dedicated_log_torch_trace_rank_0_5lbcawvb.log"
    index = report(log, tmp_path / "out")
    unknown = tries(index[index.index("<h2>Unknown stacks</h2>") :])
    assert len(unknown) == 1 and "(unknown) " in unknown[0] and "status-" not in unknown[0]


def test_convert_frame_suffix_is_stripped(log_writer, tmp_path):
    fb = "/data/x-seed-nspid4026531836_cgpid/#link-tree/torch/_dynamo/convert_frame.py"
    log_writer.add({"str": ["/src/model.py", 0]})
    log_writer.add({"str": [fb, 1]})
    log_writer.add({"str": ["/usr/lib/torch/_dynamo/convert_frame.py", 2]})
    dynamo = stack("catch_errors", "_convert_frame", "_convert_frame_assert", filename=1)
    oss = stack("__call__", "__call__", "__call__", filename=2)
    log_writer.add({"dynamo_start": {"stack": stack("main") + dynamo}, **cid(0)})
    log_writer.add({"dynamo_start": {"stack": stack("other") + oss}, **cid(1)})
    trie = tries(report(log_writer.write(tmp_path / "c.log"), tmp_path / "out"))[0]
    assert "_convert_frame_assert" not in trie and "catch_errors" not in trie
    # OSS absolute paths are not simplified, so they never match and stay
    assert trie.count("in __call__") == 3


def test_log_text_in_frames_is_escaped(log_writer, tmp_path):
    log_writer.add({"str": ["/src/<script>alert(1)</script>.py", 0]})
    frames = [{"filename": 0, "line": 1, "name": "<script>f</script>", "loc": "a < b && c"}]
    log_writer.add({"dynamo_start": {"stack": frames}, **cid(0)})
    log_writer.add({"stack": frames})
    index = report(log_writer.write(tmp_path / "h.log"), tmp_path / "out")
    assert "<script>alert" not in index and "<script>f" not in index
    assert (
        "/src/&lt;script&gt;alert(1)&lt;/script&gt;.py:1 in &lt;script&gt;f&lt;/script&gt;" in index
    )
    assert "a &lt; b &amp;&amp; c" in index
