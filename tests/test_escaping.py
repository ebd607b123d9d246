"""A log full of markup: no page of any mode carries it unescaped."""

from __future__ import annotations

import json

import pytest
from conftest import run_tldb

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
CID = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}


def hostile_log(writer, path):
    stack = [{"filename": 0, "line": 1, "name": EVIL, "loc": EVIL}]
    writer.add({"str": [f"/src/{EVIL}.py", 0]})
    writer.add({"dynamo_start": {"stack": stack}, **CID})
    writer.add(
        {"stack": stack, "chromium_event": {}},
        payload=json.dumps({"name": EVIL, "ph": "i", "ts": 1}),
    )
    writer.add({"dynamo_output_graph": {}, **CID}, payload=f"graph():\n    {EVIL}")
    writer.add({"dynamo_guards": {}, **CID}, payload=json.dumps([{"code": EVIL}]))
    writer.add({"artifact": {"name": EVIL, "encoding": "string"}, **CID}, payload=EVIL)
    writer.add(
        {"artifact": {"name": "dynamo_graph_break_reason", "encoding": "string"}, **CID},
        payload=f"Graph break in user code at {EVIL}:1\nReason: {EVIL}",
    )
    writer.add(
        {"inductor_output_code": {"filename": "/t/cevil.py"}, **CID},
        payload=f"# {EVIL}\nx = '{EVIL}'",
    )
    writer.add({"dump_file": {"name": EVIL}, **CID}, payload=EVIL)
    writer.add({"link": {"name": EVIL, "url": "https://example.com/x"}, **CID})
    writer.add(
        {
            "symbolic_shape_specialization": {
                "symbol": EVIL,
                "sources": [EVIL],
                "value": EVIL,
                "stack": stack,
                "user_stack": stack,
            },
            **CID,
        }
    )
    writer.add({"guard_added_fast": {"expr": EVIL, "stack": stack, "user_stack": stack}, **CID})
    writer.add(
        {
            "compilation_metrics": {
                "co_name": EVIL,
                "co_filename": EVIL,
                "co_firstlineno": 1,
                "fail_type": EVIL,
                "fail_reason": EVIL,
                "fail_user_frame_filename": EVIL,
                "fail_user_frame_lineno": 1,
                "restart_reasons": [EVIL],
                "non_compliant_ops": [EVIL],
                "graph_op_count": 1,
            },
            **CID,
        }
    )
    writer.add({"bwd_compilation_metrics": {"fail_type": EVIL, "fail_reason": EVIL}, **CID})
    writer.add({"exported_program": {}}, payload=EVIL)
    writer.add(
        {
            "guard_added": {
                "expr": EVIL,
                "prefix": "eval",
                "expr_node_id": 1,
                "stack": stack,
                "user_stack": stack,
                "frame_locals": {"locals": {"x": EVIL}},
            }
        }
    )
    writer.add(
        {"propagate_real_tensors_provenance": {"expr": EVIL, "result": EVIL, "expr_node_id": 2}}
    )
    writer.add({"missing_fake_kernel": {"op": EVIL}})
    writer.add({"mismatched_fake_kernel": {"op": EVIL, "reason": EVIL}})
    writer.add(
        {
            "expression_created": {
                "method": EVIL,
                "result": EVIL,
                "result_id": 1,
                "arguments": [EVIL],
                "argument_ids": [],
            }
        }
    )
    writer.add({EVIL: {"x": EVIL}})  # an unknown kind named with markup
    return writer.write(path)


@pytest.mark.parametrize(
    "flags", [[], ["--inductor-provenance"], ["--export"]], ids=["default", "provenance", "export"]
)
def test_no_page_carries_log_markup(tmp_path, log_writer, flags):
    log = hostile_log(log_writer, tmp_path / "evil.log")
    out = tmp_path / "out"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser", *flags)
    assert result.returncode == 0, result.stderr
    pages = list(out.rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        text = page.read_text(errors="replace")
        assert "<script>alert(1)" not in text, page.relative_to(out)
        assert "<img src=x" not in text, page.relative_to(out)
    assert any("alert(1)" in p.read_text(errors="replace") for p in pages)  # shown, escaped
