"""A log full of markup: every page of every mode shows it as text, and none lets it act.

Each hostile field carries its own name and the same payload: tags (`<script>`, `<img
onerror=...>`), quotes that would end an attribute (`" onmouseover="...`, `' onfocus='...`), a
`</script>` that would end an inline script, and a comment opener. A page is safe when no
element gains an event-handler attribute, no link target can run code, and the payload is not
there as markup; a field is shown when the page's visible text holds it whole.
"""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest
from conftest import run_tldb
from tlparse_parity import html_lines

HOSTILE = (
    "<script>alert(1)</script><img src=x onerror=alert(2)>"
    "\" onmouseover=\"alert(3)' onfocus='alert(4)</script><!--"
)
#: Attributes the payload would create if it were inserted unescaped (in text or attribute).
INJECTED_ATTRIBUTES = {"onerror", "onmouseover", "onfocus"}
CID = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
#: `link` envelope urls that would run code or show made-up content when clicked, spelled
#: as browsers still read them (any case, leading space, a tab inside the scheme).
ACTIVE_URLS = (
    "javascript:alert(7)",
    " JaVaScRiPt:alert(8)",
    "java\tscript:alert(9)",
    "data:text/html,<script>alert(10)</script>",
    "vbscript:msgbox(11)",
)
HARMLESS_URL = 'https://example.com/x?q="><script>alert(12)</script>'


def evil(field: str) -> str:
    return f"{field}:{HOSTILE}"


def hostile_log(writer, path: Path) -> Path:
    stack = [{"filename": 0, "line": 1, "name": evil("frame_name"), "loc": evil("frame_loc")}]
    writer.add({"str": [evil("str_filename"), 0]})
    writer.add({"dynamo_start": {"stack": stack}, **CID})
    writer.add(
        {"stack": stack, "chromium_event": {}},
        payload=json.dumps({"name": evil("chromium_name"), "ph": "i", "ts": 1}),
    )
    writer.add({"dynamo_output_graph": {}, **CID}, payload=f"graph():\n    {evil('graph')}")
    writer.add({"dynamo_guards": {}, **CID}, payload=json.dumps([{"code": evil("guard_code")}]))
    writer.add(
        {"artifact": {"name": evil("artifact_name"), "encoding": "string"}, **CID},
        payload=evil("artifact_payload"),
    )
    writer.add(
        {"artifact": {"name": "dynamo_graph_break_reason", "encoding": "string"}, **CID},
        payload=f"Graph break in user code at {evil('break_at')}:1\nReason: {evil('break_why')}",
    )
    writer.add(
        {"inductor_output_code": {"filename": "/t/cevil.py"}, **CID},
        payload=f"# {evil('code_comment')}\nx = '{evil('code_string')}'",
    )
    writer.add({"dump_file": {"name": evil("dump_name")}, **CID}, payload=evil("dump_payload"))
    writer.add({"link": {"name": evil("link_name"), "url": HARMLESS_URL}, **CID})
    for number, url in enumerate(ACTIVE_URLS):
        writer.add({"link": {"name": f"active link {number}", "url": url}, **CID})
    writer.add(
        {
            "symbolic_shape_specialization": {
                "symbol": evil("symbol"),
                "sources": [evil("source")],
                "value": evil("value"),
                "stack": stack,
                "user_stack": stack,
            },
            **CID,
        }
    )
    writer.add(
        {
            "guard_added_fast": {"expr": evil("fast_expr"), "stack": stack, "user_stack": stack},
            **CID,
        }
    )
    writer.add(
        {
            "compilation_metrics": {
                "co_name": evil("co_name"),
                "co_filename": evil("co_filename"),
                "co_firstlineno": 1,
                "fail_type": evil("fail_type"),
                "fail_reason": evil("fail_reason"),
                "fail_user_frame_filename": evil("fail_file"),
                "fail_user_frame_lineno": 1,
                "restart_reasons": [evil("restart_reason")],
                "non_compliant_ops": [evil("non_compliant_op")],
                "compliant_custom_ops": [evil("compliant_op")],
                "graph_op_count": 1,
            },
            **CID,
        }
    )
    writer.add(
        {
            "bwd_compilation_metrics": {
                "fail_type": evil("bwd_fail_type"),
                "fail_reason": evil("bwd_fail_reason"),
            },
            **CID,
        }
    )
    writer.add({"exported_program": {}}, payload=evil("exported_program"))
    writer.add(
        {
            "guard_added": {
                "expr": evil("guard_expr"),
                "prefix": "eval",
                "expr_node_id": 1,
                "stack": stack,
                "user_stack": stack,
                "frame_locals": {"locals": {"x": evil("frame_local")}},
            }
        }
    )
    writer.add(
        {
            "propagate_real_tensors_provenance": {
                "expr": evil("real_expr"),
                "result": evil("real_result"),
                "expr_node_id": 2,
            }
        }
    )
    writer.add({"missing_fake_kernel": {"op": evil("missing_op")}})
    writer.add({"mismatched_fake_kernel": {"op": evil("mismatch_op"), "reason": evil("why")}})
    writer.add(
        {
            "expression_created": {
                "method": evil("method"),
                "result": evil("result"),
                "result_id": 1,
                "arguments": [evil("argument")],
                "argument_ids": [],
            }
        }
    )
    writer.add({evil("unknown_kind"): {"x": evil("unknown_value")}})
    return writer.write(path)


#: Fields a default report shows as text, each on the page that tlparse (or tldb's own pages:
#: envelope kinds, triage) gives it. Payload files (.txt, .json) are data, not pages.
DEFAULT_SHOWN = {
    "str_filename",  # stacks (index, metrics page)
    "frame_name",
    "frame_loc",
    "guard_code",  # dynamo_guards page
    "artifact_name",  # index entry
    "break_at",  # triage page
    "break_why",
    "code_comment",  # output code page
    "code_string",
    "dump_name",  # index entry
    "dump_payload",  # its dump_file page
    "link_name",  # index entry
    "symbol",  # compilation metrics tables
    "source",
    "value",
    "fast_expr",
    "co_name",  # compilation metrics, failures
    "co_filename",
    "fail_type",
    "fail_reason",
    "fail_file",
    "restart_reason",
    "non_compliant_op",
    "compliant_op",
    "bwd_fail_type",
    "bwd_fail_reason",
    "guard_expr",  # envelope kinds page (export kinds in a default report)
    "real_expr",
    "real_result",
    "missing_op",
    "mismatch_op",
    "why",
    "method",
    "result",
    "unknown_kind",  # index (envelope kinds section)
}
#: Fields shown inside a JSON value (the envelope kinds page), with the value they sit in.
DEFAULT_SHOWN_AS_JSON = {
    "frame_local": {"locals": {"x": evil("frame_local")}},
    "argument": [evil("argument")],
}
#: An export report: the draft-export page, its symbolic guard pages and their stacks.
EXPORT_SHOWN = {
    "str_filename",
    "frame_name",
    "frame_loc",
    "frame_local",
    "guard_expr",
    "real_expr",
    "real_result",
    "missing_op",
    "mismatch_op",
    "why",
}
MODES = {
    "default": ([], DEFAULT_SHOWN, DEFAULT_SHOWN_AS_JSON),
    "provenance": (["--inductor-provenance"], DEFAULT_SHOWN, DEFAULT_SHOWN_AS_JSON),
    "export": (["--export"], EXPORT_SHOWN, {}),
}


class _Elements(html.parser.HTMLParser):
    """Every start tag's attributes, as a browser's parser would build the elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.extend((tag, name, value) for name, value in attrs)


def elements(page: Path) -> list[tuple[str, str, str | None]]:
    parser = _Elements()
    parser.feed(page.read_text(errors="replace"))
    parser.close()
    return parser.attributes


def runs_code(url: str) -> bool:
    """Whether a browser would run or render the url's content itself (its scheme read after
    skipping leading spaces and control characters and dropping tabs and newlines)."""
    squeezed = "".join(c for c in url if c not in "\t\n\r").lstrip("".join(map(chr, range(33))))
    return squeezed.lower().startswith(("javascript:", "data:", "vbscript:"))


@pytest.mark.parametrize("mode", MODES)
def test_log_markup_is_shown_and_never_acts(tmp_path, log_writer, mode):
    flags, shown, shown_as_json = MODES[mode]
    log = hostile_log(log_writer, tmp_path / "evil.log")
    out = tmp_path / "out"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser", *flags)
    assert result.returncode == 0, result.stderr
    pages = sorted(out.rglob("*.html"))
    assert len(pages) >= 3
    visible: set[str] = set()
    for page in pages:
        where = page.relative_to(out)
        text = page.read_text(errors="replace")
        assert "<script>alert(" not in text and "<img src=x" not in text, where
        for tag, name, value in elements(page):
            assert name not in INJECTED_ATTRIBUTES, (where, tag, name, value)
            if name in ("href", "src") and value is not None:
                assert not runs_code(value), (where, tag, name, value)
        visible.update(html_lines(page))
    everything = "\n".join(visible)
    missing = sorted(field for field in shown if evil(field) not in everything)
    assert missing == []
    for field, value in shown_as_json.items():
        assert json.dumps(value, separators=(",", ":")) in everything, field


def test_links_keep_their_target_unless_it_would_run_code(tmp_path, log_writer):
    """An http(s) link keeps tlparse's href (its quotes escaped); the others point nowhere
    but are still listed with their names."""
    log = hostile_log(log_writer, tmp_path / "evil.log")
    out = tmp_path / "out"
    assert run_tldb("report", str(log), "-o", str(out), "--no-browser").returncode == 0
    index = out / "index.html"
    links = [value for tag, name, value in elements(index) if tag == "a" and name == "href"]
    assert HARMLESS_URL in links
    assert links.count("#") == len(ACTIVE_URLS)
    lines = html_lines(index)
    assert all(f"active link {n}" in lines for n in range(len(ACTIVE_URLS)))
