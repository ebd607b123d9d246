"""The `guards` view: one row per leaf (`+- TYPE: code`) of each dynamo_cpp_guards_str guard
tree, with its depth, and one per entry of an older dynamo_guards list. Checked against the
payloads split here in Python, on real torch 2.13 logs of the repository and a hand-written
tree with backslashes, quotes, non-ASCII code, deep nesting and lines that are not leaves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import LogWriter

from tldb import db as dbmod
from tldb.loader import build_database

DATA = Path(__file__).parent / "data"


#: A leaf line: its `|` and space indentation, `+- `, a type (to the first colon) starting with
#: a capital, and the code. Written as a pattern, unlike tldb/guard_leaves.py's scan, so that
#: the two readings of the documented rule stay independent.
_LEAF = re.compile(r"([| ]*)\+- ([A-Z][^:]*):(.*)", re.DOTALL)


def _leaves(text: str) -> list[tuple[str, str, int]]:
    """(guard type, code, depth) of each leaf line, as the view documents them."""
    found = (_LEAF.fullmatch(line) for line in text.split("\n"))
    return [(m[2], m[3].strip(" "), len(m[1]) // 2) for m in found if m and m[2] == m[2].upper()]


def _expected(db) -> list[tuple]:
    rows = []
    for envelope_id, kind, compile_id, text in db.conn.execute(
        "SELECT e.id, e.kind, e.compile_id, p.text FROM envelopes e "
        "JOIN payloads p ON p.id = e.payload_id WHERE e.status = 'ok' "
        "AND e.kind IN ('dynamo_cpp_guards_str', 'dynamo_guards') ORDER BY e.id"
    ):
        if kind == "dynamo_cpp_guards_str":
            rows += [(envelope_id, compile_id, kind, *leaf) for leaf in _leaves(text)]
        else:
            rows += [
                (envelope_id, compile_id, kind, None, g.get("code"), None) for g in json.loads(text)
            ]
    return rows


def _check(db_path: Path) -> int:
    db = dbmod.open_readonly(db_path)
    try:
        got = db.conn.execute(
            "SELECT envelope_id, compile_id, source, guard_type, code, depth FROM guards"
        ).fetchall()
        expected = _expected(db)
    finally:
        db.conn.close()
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    return len(got)


@pytest.mark.parametrize("log", ["dynamo.log", "regional.log"])
def test_guard_rows_of_real_logs(tmp_path, log):
    db_path = tmp_path / "trace.db"
    build_database([DATA / "torch213" / log], db_path)
    assert _check(db_path) > 10


TREE = "\n".join(
    [
        "TREE_GUARD_MANAGER:",
        "+- RootGuardManager",
        "| +- LAMBDA_GUARD: torch._functorch.aot_autograd.utils.top_saved_tensors_hooks ids == None",
        "| +- GLOBAL_STATE: ___check_global_state()",
        "| +- GuardManager: source=L['x'], accessed_by=DictGetItemGuardAccessor('x')",
        "| | +- TENSOR_MATCH: check_tensor(L['x'], Tensor, DispatchKeySet(CPU), [4, \"4\"])",
        "| | +- NO_HASATTR: hasattr(L['x'], '_dynamo_dynamic_indices') == False",
        "| | | | +- EQUALS_MATCH: L['path'] == 'C:\\\\tmp\\\\n\\\\é'  ",
        "| +- lower_case: not a guard type",
        "| +- NOCOLON guard",
        "| +- : empty type",
        "+- ID_MATCH:___check_obj_id(G['torch'], 140)",
        "   +- TYPE_MATCH: ___check_type_id(L['y'], 9)",
    ]
)


def test_guard_rows_of_an_awkward_tree_and_an_old_list(tmp_path):
    writer = LogWriter()
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    writer.add({"dynamo_cpp_guards_str": {}, **cid}, payload=TREE)
    old = [{"code": "___check_type_id(x, 1)"}, {"code": 'x.size()[0] == 4 \\ "q"'}]
    writer.add({"dynamo_guards": {}, **cid}, payload=json.dumps(old))
    db_path = tmp_path / "trace.db"
    build_database([writer.write(tmp_path / "g.log")], db_path)
    assert _check(db_path) == 7 + 2  # 7 leaves: not GuardManager, lower_case, NOCOLON, ": empty"
