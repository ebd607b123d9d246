"""`--export`: the Draft Export Report and its symbolic guard information pages.

Checks parity with the reference on the torch 2.13 export logs of tests/data and on logs
written here, runs tlparse's export conformance tests (8 and 9) on its own inputs (extended
suite), and covers what tldb does where tlparse fails:
missing fields (tlparse panics), log text in HTML (tlparse does not escape it), entries in the
newer frame-locals format (tlparse drops them) and export kinds tlparse ignores.
"""

from __future__ import annotations

import html
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import data_path, run_tldb
from torch213_log import envelopes

NO_COMPILE_ID = "-_-_-_-"
PAGE = "symbolic_guard_information"
H3 = re.compile(r"<h3>(.*?)</h3>")
MARGIN = re.compile(r'class="expr-node" style="margin-left: (\d+)px;"')


#: The torch 2.13 export logs: torch.export with a data-dependent guard, then draft_export (a
#: data-dependent size, a custom op without a fake kernel), and a draft_export whose custom op
#: has a wrong fake kernel (mismatch, no guard entries).
DATA_LOGS = ["export", "draft_export"]
PARITY_LOGS = [*DATA_LOGS, "mismatch"]
#: tlparse's export inputs (extended suite): an older torch's DTRACE format.
CORPUS_LOGS = ["export", "export_guard_added"]


def inputs(corpus: Path) -> Path:
    return corpus / "tlparse-tests" / "inputs"


def export_log(source: str, name: str, request) -> Path:
    """An export log of tests/data, or of the corpus (extended tests only)."""
    if source == "data":
        return data_path(f"torch213/{name}.log")
    return inputs(request.getfixturevalue("corpus")) / f"{name}.log"


#: (source, name) of every export log, the corpus ones in the extended suite.
CORPUS_PARAMS = [
    pytest.param("corpus", name, id=f"corpus-{name}", marks=pytest.mark.extended)
    for name in CORPUS_LOGS
]
EXPORT_LOGS = [pytest.param("data", name, id=name) for name in DATA_LOGS] + CORPUS_PARAMS


def report(log: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return run_tldb("report", str(log), "-o", str(out), "--no-browser", "--export", *flags)


def compare_with_tlparse(oracle, parity_tool, log: Path, tmp_path: Path) -> dict:
    """Both tools on one log with --export; the shared parity tool's comparison of the trees,
    checked: every file of tlparse's is there, data files are identical, and every visible
    line of each of tlparse's pages is in tldb's page."""
    ref, got = tmp_path / "tlparse", tmp_path / "tldb"
    subprocess.run(
        [*oracle, str(log), "-o", str(ref), "--no-browser", "--export"],
        check=True,
        capture_output=True,
    )
    result = report(log, got)
    assert result.returncode == 0, result.stderr
    comparison = parity_tool.compare(ref, got)
    assert comparison["missing"] == []
    assert comparison["differ"] == []
    assert "index.html" in comparison["pages"]
    for page in comparison["pages"]:
        mine = "\n".join(parity_tool.html_lines(got / page))
        theirs = parity_tool.html_lines(ref / page)
        assert theirs and [line for line in theirs if line not in mine] == [], page
    return comparison


def _tree(nodes: dict[int, tuple[str, list[int]]], root: int) -> list[tuple[str, int]]:
    """Depth-first from root along argument ids, each node once: (result, depth)."""
    tree: list[tuple[str, int]] = []
    stack, seen = [(root, 0)], set()
    while stack:
        node, depth = stack.pop()
        if node in seen or node not in nodes:
            continue
        seen.add(node)
        tree.append((nodes[node][0], depth))
        stack.extend((argument, depth + 1) for argument in reversed(nodes[node][1]))
    return tree


def provenance_tree(name: str, line_kind: str) -> list[tuple[str, int]]:
    """(result, depth) of the expression tree of the log's first `line_kind` entry, read from
    the log with plain json: depth-first from its expr_node_id along argument_ids, each node
    once, among the expressions and unbacked symbols logged before the entry."""
    nodes: dict[int, tuple[str, list[int]]] = {}
    for kind, meta, _ in envelopes(name):
        entry = meta[kind] if isinstance(meta.get(kind), dict) else {}
        if kind == "expression_created":
            nodes[entry["result_id"]] = (entry["result"], entry.get("argument_ids") or [])
        elif kind == "create_unbacked_symbol":
            nodes[entry["node_id"]] = (entry["symbol"], [])
        elif kind == line_kind and entry.get("prefix", "eval") == "eval":
            return _tree(nodes, entry["expr_node_id"])
    raise AssertionError(f"no {line_kind} in {name}")


def files_of(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def html_of(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(out.rglob("*.html")))


def frame(line: int, loc: str) -> dict:
    return {"line": line, "name": "forward", "filename": 0, "loc": loc}


def expression(result_id, result, method, arguments=(), argument_ids=()) -> dict:
    return {
        "expression_created": {
            "method": method,
            "result": result,
            "result_id": result_id,
            "arguments": list(arguments),
            "argument_ids": list(argument_ids),
            "user_stack": [frame(10, f"{result} = ...")],
            "stack": [frame(20, "torch internals")],
        }
    }


def propagate(expr: str, node_id: int, result: str = "False", **extra) -> dict:
    return {
        "propagate_real_tensors_provenance": {
            "expr": expr,
            "result": result,
            "expr_node_id": node_id,
            "user_stack": [frame(30, "return z[:a]")],
            **extra,
        }
    }


def eval_guard(expr: str, node_id: int, **extra) -> dict:
    return {"guard_added": {"expr": expr, "prefix": "eval", "expr_node_id": node_id, **extra}}


@pytest.fixture
def model_log(log_writer):
    """A small draft-export log: an unbacked symbol, expressions built on it, two issues."""
    log_writer.add({"str": ["/src/model.py", 0]})
    log_writer.add(
        {"create_unbacked_symbol": {"symbol": "u0", "node_id": 1, "user_stack": [frame(5, "a")]}}
    )
    log_writer.add(expression(2, "-u0", "neg", ["u0"], [1]))
    log_writer.add(expression(3, "Eq(-u0, 1)", "eq", ["-u0", "1"], [2, 1, 2]))
    log_writer.add(propagate("Eq(-u0, 1)", 3))
    log_writer.add({"guard_added": {"expr": "u0 >= 0", "prefix": "runtime_assert"}})
    log_writer.add(eval_guard("Ne(-u0, 7)", 4))  # its expression is only logged afterwards
    log_writer.add(expression(4, "Ne(-u0, 7)", "ne", ["-u0", "7"], [2]))
    log_writer.add({"missing_fake_kernel": {"op": "mylib.foo"}})
    log_writer.add({"mismatched_fake_kernel": {"op": "mylib.bar", "reason": "wrong dtype"}})
    log_writer.add({"exported_program": {}}, payload="ExportedProgram:\n    graph()")
    return log_writer


# --- tlparse's conformance tests 8 and 9, and parity with the reference ----------------------


@pytest.mark.parametrize(("source", "name"), EXPORT_LOGS)
def test_export_report_files(request, tmp_path, source, name):
    out = tmp_path / "out"
    result = report(export_log(source, name, request), out)
    assert result.returncode == 0, result.stderr
    files = files_of(out)
    for prefix in (f"{NO_COMPILE_ID}/exported_program", "index.html", f"{NO_COMPILE_ID}/{PAGE}"):
        assert any(f.startswith(prefix) for f in files), (prefix, files)
    # The export report is only the draft-export pages, like tlparse's.
    for absent in ("compile_directory.json", "raw.jsonl", "failures_and_restarts.html"):
        assert absent not in files


@pytest.mark.parametrize(
    ("source", "name"),
    [pytest.param("data", name, id=name) for name in PARITY_LOGS] + CORPUS_PARAMS,
)
def test_export_parity(request, oracle, parity_tool, tmp_path, source, name):
    log = export_log(source, name, request)
    compare_with_tlparse(oracle, parity_tool, log, tmp_path)


def _assert_strict_fails_after_writing(log: Path, out: Path) -> None:
    result = report(log, out, "--strict")
    assert result.returncode == 1
    assert "fail_payload_md5" in result.stderr
    assert (out / "index.html").is_file()
    assert (out / NO_COMPILE_ID / f"{PAGE}_0.html").is_file()


def test_strict_applies_in_export_mode(model_log, tmp_path):
    """A payload whose md5 does not match: --strict fails after writing the report."""
    model_log.add({"export": {}}, payload="start!", bad_md5=True)
    _assert_strict_fails_after_writing(model_log.write(tmp_path / "t.log"), tmp_path / "out")


@pytest.mark.extended
@pytest.mark.parametrize("name", ["export.log", "export_guard_added.log"])
def test_strict_applies_in_export_mode_of_corpus_log(corpus, tmp_path, name):
    """tlparse's export inputs both have a payload whose md5 does not match."""
    _assert_strict_fails_after_writing(inputs(corpus) / name, tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "kind"),
    [("draft_export", "propagate_real_tensors_provenance"), ("export", "guard_added")],
)
def test_provenance_tree_of_a_real_export(tmp_path, name, kind):
    """torch 2.13's entry (frame locals as lists: tlparse drops it) gets tldb's page, whose
    tree is the log's, from the entry's expression down to where its symbols came from."""
    out = tmp_path / "out"
    assert report(data_path(f"torch213/{name}.log"), out).returncode == 0
    (page,) = (out / NO_COMPILE_ID).glob(f"{PAGE}_line*.html")
    index = (out / "index.html").read_text()
    assert f'href="{NO_COMPILE_ID}/{page.name}"' in index
    text = page.read_text()
    expected = provenance_tree(name, kind)
    assert expected
    assert [html.unescape(node) for node in H3.findall(text)] == [r for r, _ in expected]
    assert [int(m) for m in MARGIN.findall(text)] == [20 * depth for _, depth in expected]
    assert "Locals:<pre>" in text and "Symbols:<pre>" in text


@pytest.mark.parametrize(
    ("name", "kind"),
    [("draft_export", "missing_fake_kernel"), ("mismatch", "mismatched_fake_kernel")],
)
def test_fake_kernel_issues_of_a_real_export(tmp_path, name, kind):
    """The custom op (and the mismatch) torch reported, as the log says, in the issue table."""
    out = tmp_path / "out"
    assert report(data_path(f"torch213/{name}.log"), out).returncode == 0
    index = (out / "index.html").read_text()
    entries = [meta[kind] for k, meta, _ in envelopes(name) if k == kind]
    assert entries
    assert f"<b>{len(entries)} issue(s) were found during export</b>" in index
    title = kind.replace("_", " ").title()
    assert index.count(f"<td>{title}</td>") == len(entries)
    for entry in entries:
        assert f"<code>torch.ops.{html.escape(entry['op'])}</code>" in index
        assert html.escape(entry.get("reason", "")) in index


@pytest.mark.extended
def test_data_dependent_error_of_export_log(corpus, tmp_path):
    out = tmp_path / "out"
    assert report(inputs(corpus) / "export.log", out).returncode == 0
    index = (out / "index.html").read_text()
    assert "<b>1 issue(s) were found during export</b>" in index
    assert "<td>Data Dependent Error</td>" in index
    assert f'href="{NO_COMPILE_ID}/{PAGE}_0.html"' in index
    assert f'href="{NO_COMPILE_ID}/exported_program_1.txt"' in index
    page = (out / NO_COMPILE_ID / f"{PAGE}_0.html").read_text()
    nodes = H3.findall(page)
    # The tree starts at the erroring expression and ends at the unbacked symbol it came from.
    assert nodes[0] == "Eq((((-u0)//3)) + 5, 0)"
    assert nodes[-1] == "u0"
    depths = [int(m) for m in MARGIN.findall(page)]
    assert depths == [20 * i for i in range(len(nodes))]
    assert "Locals:<pre>" in page and "Symbols:<pre>" in page


# --- behaviour on generated logs ----------------------------------------------------------


def test_issues_and_provenance_trees(model_log, tmp_path):
    out = tmp_path / "out"
    result = report(model_log.write(tmp_path / "t.log"), out)
    assert result.returncode == 0, result.stderr
    index = (out / "index.html").read_text()
    assert "<b>4 issue(s) were found during export</b>" in index
    titles = re.findall(r"<tr>\n<td>([^<]+)</td>", index)
    assert titles == [
        "Data Dependent Error",
        "Guard Evaluated",
        "Missing Fake Kernel",
        "Mismatched Fake Kernel",
    ]  # log order; the runtime_assert guard is not an issue
    assert "<code>torch.ops.mylib.foo</code>" in index
    assert "wrong dtype" in index
    first = (out / NO_COMPILE_ID / f"{PAGE}_0.html").read_text()
    # Each node once, even though the argument ids repeat and loop back.
    assert H3.findall(first) == ["Eq(-u0, 1)", "-u0", "u0"]
    assert [int(m) for m in MARGIN.findall(first)] == [0, 20, 40]
    # A guard only sees expressions logged before it.
    second = (out / NO_COMPILE_ID / f"{PAGE}_1.html").read_text()
    assert H3.findall(second) == []
    assert "No expression with id 4 was logged before this entry" in second
    assert f'href="{NO_COMPILE_ID}/exported_program_2.txt"' in index


def test_generated_log_matches_tlparse(model_log, oracle, parity_tool, tmp_path):
    log = model_log.write(tmp_path / "t.log")
    comparison = compare_with_tlparse(oracle, parity_tool, log, tmp_path)
    assert f"{NO_COMPILE_ID}/{PAGE}_0.html" in comparison["pages"]


def test_no_issues(log_writer, tmp_path):
    log_writer.add({"guard_added": {"expr": "s0 > 1", "prefix": "runtime_assert"}})
    out = tmp_path / "out"
    result = report(log_writer.write(tmp_path / "t.log"), out, "--custom-header-html", "<i>hdr</i>")
    assert result.returncode == 0, result.stderr
    index = (out / "index.html").read_text()
    assert "Congratulations! No issues are found during export" in index
    assert "<table" not in index
    assert "<i>hdr</i>" in index
    assert "exported program: no link, as the log holds none." in index
    assert files_of(out) == ["index.html", "trace.db"]


# --- where tlparse panics: missing fields ---------------------------------------------------

MISSING = [
    ("guard_added", {"prefix": "eval", "expr_node_id": 1}, "expr"),
    ("guard_added", {"prefix": "eval", "expr": "Eq(s0, 3)"}, "expr_node_id"),
    ("propagate_real_tensors_provenance", {"result": "False", "expr_node_id": 1}, "expr"),
    ("propagate_real_tensors_provenance", {"expr": "Eq(u0, 1)", "expr_node_id": 1}, "result"),
    ("propagate_real_tensors_provenance", {"expr": "Eq(u0, 1)", "result": "True"}, "expr_node_id"),
    ("missing_fake_kernel", {}, "op"),
    ("mismatched_fake_kernel", {"reason": "bad strides"}, "op"),
    ("mismatched_fake_kernel", {"op": "mylib.bar"}, "reason"),
    ("expression_created", {"method": "add", "result": "s0 + 1"}, "result_id"),
    ("create_unbacked_symbol", {"symbol": "u0"}, "node_id"),
]


def _missing_log(log_writer, tmp_path, kind, entry) -> Path:
    log_writer.add({kind: entry})
    log_writer.add(propagate("Eq(u1, 2)", 1))  # a later entry still gets its page
    return log_writer.write(tmp_path / "t.log")


@pytest.mark.parametrize(("kind", "entry", "field"), MISSING, ids=lambda v: str(v))
def test_missing_field_is_reported(log_writer, tmp_path, kind, entry, field):
    out = tmp_path / "out"
    result = report(_missing_log(log_writer, tmp_path, kind, entry), out)
    assert result.returncode == 0, result.stderr
    index = (out / "index.html").read_text()
    if kind in ("guard_added", "propagate_real_tensors_provenance"):
        page = (out / NO_COMPILE_ID / f"{PAGE}_0.html").read_text()
        assert f"has no\n<code>{field}</code>" in page
        assert (out / NO_COMPILE_ID / f"{PAGE}_1.html").is_file()
    if kind in ("expression_created", "create_unbacked_symbol"):
        assert f"<code>{kind}</code> without <code>{field}</code>" in index
    else:
        assert f"has no <code>{field}</code> field" in index


@pytest.mark.parametrize(("kind", "entry", "field"), MISSING, ids=lambda v: str(v))
def test_tlparse_panics_on_missing_field(oracle, log_writer, tmp_path, kind, entry, field):
    """The reference really fails on these logs: the difference above is deliberate."""
    log = _missing_log(log_writer, tmp_path, kind, entry)
    proc = subprocess.run(
        [*oracle, str(log), "-o", str(tmp_path / "ref"), "--no-browser", "--export"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "panicked" in proc.stderr


# --- where tlparse injects log text into HTML -----------------------------------------------

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_log_text_is_escaped(log_writer, tmp_path):
    log_writer.add({"str": [f"/src/{EVIL}.py", 0]})
    log_writer.add({"create_unbacked_symbol": {"symbol": EVIL, "node_id": 1}})
    log_writer.add(expression(2, EVIL, EVIL, [EVIL], [1]))
    locals_ = {"locals": {EVIL: EVIL}, "symbols": {"s0": EVIL}}
    log_writer.add(propagate(EVIL, 2, result=EVIL, frame_locals=locals_))
    log_writer.add(eval_guard(EVIL, 2, user_stack=[frame(1, EVIL)]))
    log_writer.add({"missing_fake_kernel": {"op": EVIL}})
    log_writer.add({"mismatched_fake_kernel": {"op": EVIL, "reason": EVIL}})
    log_writer.add({"guard_on_data_dependent_error": {"expr": EVIL}})
    out = tmp_path / "out"
    result = report(log_writer.write(tmp_path / "t.log"), out)
    assert result.returncode == 0, result.stderr
    text = html_of(out)
    assert "<script>alert" not in text
    index = (out / "index.html").read_text()
    assert index.count(ESCAPED) >= 6
    page = (out / NO_COMPILE_ID / f"{PAGE}_0.html").read_text()
    assert f"<h1>More detailed information on <code>{ESCAPED}</code></h1>" in page
    assert f"    {ESCAPED}: {ESCAPED}\n" in page
    assert f"<h3>{ESCAPED}</h3>" in page


# --- entries tlparse cannot read, and kinds it ignores --------------------------------------


@pytest.fixture
def new_format_log(log_writer):
    """torch 2.13 DTRACE writes frame locals as lists of strings: tlparse drops the entry."""
    log_writer.add({"str": ["/src/model.py", 0]})
    log_writer.add(expression(1, "u0 + 5", "add", ["u0", "5"]))
    listed = {"locals": {"a": ["u0 + 5", "tensor"]}, "symbols": {}}
    log_writer.add(propagate("Eq(u0 + 5, 0)", 1, frame_locals=listed))
    log_writer.add(eval_guard("Eq(s0, 3)", 1, frame_locals={"locals": {"b": "s0"}}))
    log_writer.add({"guard_added": {"expr": "s0 > 2", "prefix": "x", "frame_locals": listed}})
    log_writer.add({"exported_program": {}}, payload="ExportedProgram")
    return log_writer


def test_unreadable_entries_are_shown_without_renumbering(new_format_log, tmp_path):
    out = tmp_path / "out"
    log = new_format_log.write(tmp_path / "t.log")
    result = report(log, out)
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(out / "trace.db")
    statuses = [s for (s,) in db.execute("SELECT status FROM envelopes ORDER BY id")]
    assert statuses == ["intern", "ok", "bad_type", "ok", "bad_type", "ok"]
    files = files_of(out)
    # Only the readable guard is numbered, as tlparse numbers it.
    assert [f for f in files if re.search(rf"{PAGE}_\d+\.html$", f)] == [
        f"{NO_COMPILE_ID}/{PAGE}_0.html"
    ]
    extra = f"{NO_COMPILE_ID}/{PAGE}_line3.html"
    assert extra in files
    index = (out / "index.html").read_text()
    assert "<b>1 issue(s) were found during export</b>" in index
    assert "Entries tlparse cannot read" in index
    assert "<code>Eq(u0 + 5, 0)</code>" in index and f'href="{extra}"' in index
    assert "1 <code>guard_added</code>" in index  # the non-eval one, counted
    page = (out / extra).read_text()
    assert "    a: u0 + 5, tensor\n" in page
    assert H3.findall(page) == ["u0 + 5"]


def test_unreadable_entries_number_like_tlparse(new_format_log, oracle, parity_tool, tmp_path):
    log = new_format_log.write(tmp_path / "t.log")
    comparison = compare_with_tlparse(oracle, parity_tool, log, tmp_path)
    assert sorted(comparison["extra"]) == [f"{NO_COMPILE_ID}/{PAGE}_line3.html", "trace.db"]


def test_ignored_export_kinds_are_listed(log_writer, tmp_path):
    log_writer.add({"export": {}}, payload="start!")
    log_writer.add({"propagate_real_tensors": {"expr": "Eq(u0, 1)", "result": "True"}})
    log_writer.add(
        {"guard_on_data_dependent_error": {"expr": "Eq(u2, 3)", "unhinted_expr": "Eq(u2, 3)"}}
    )
    out = tmp_path / "out"
    assert report(log_writer.write(tmp_path / "t.log"), out).returncode == 0
    index = (out / "index.html").read_text()
    assert "Other export entries" in index
    for kind in ("export", "propagate_real_tensors", "guard_on_data_dependent_error"):
        assert f"<td><code>{kind}</code></td>" in index
    assert "payload: <code>start!</code>" in index
    assert "expr: <code>Eq(u0, 1)</code><br>result: <code>True</code>" in index
    assert "unhinted_expr: <code>Eq(u2, 3)</code>" in index
