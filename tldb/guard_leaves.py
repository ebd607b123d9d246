"""The leaves of dynamo_cpp_guards_str guard trees, split once at load time (table guard_leaves).

WHY: the `guards` view split each guard tree into lines with json_each over the quoted payload
and parsed every leaf with SQLite string functions each time it was read (~4.5 ms a 2.5 MB
rank, computed for every rank of a combine). The loader holds the payload as a Python string,
so it splits it here once. The rules are SQLite's, done the same way in Python: lines are the
payload split at newlines; a leaf is a line whose text after its `|` and space indentation
starts with `+- `; its node is the rest; the guard type is the node before its first colon,
non-empty, starting with an ASCII capital and unchanged by ASCII upper-casing (SQLite's
upper() folds ASCII only); the code is what follows the colon without surrounding spaces;
the depth is half the indentation's length. A payload with a NUL or a \\x01 character (the
view swapped backslashes for \\x01; SQLite's length() stops at NUL) is split by SQLite itself.
"""

from __future__ import annotations

import sqlite3
import string

_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)

#: The view's own splitting, for the payloads Python leaves to SQLite: (type, code, depth).
_SQL = """
WITH g AS MATERIALIZED (
    SELECT j.id, substr(ltrim(replace(j.value, char(1), '\\'), '| '), 4) AS node,
           (length(j.value) - length(ltrim(j.value, '| '))) / 2 AS depth
    FROM json_each('[' || replace(json_quote(replace(?1, '\\', char(1))), '\\n', '","') || ']') j
    WHERE ltrim(j.value, '| ') LIKE '+- %'
)
SELECT substr(node, 1, instr(node, ':') - 1), trim(substr(node, instr(node, ':') + 1)), depth
FROM g
WHERE instr(node, ':') > 1
  AND substr(node, 1, instr(node, ':') - 1) = upper(substr(node, 1, instr(node, ':') - 1))
  AND substr(node, 1, 1) GLOB '[A-Z]'
ORDER BY id
"""


def leaves(conn: sqlite3.Connection, text: str) -> list[tuple[str, str, int]]:
    """(guard type, code, depth) of each leaf of a guard tree payload, in line order."""
    if "\x00" in text or "\x01" in text:
        return conn.execute(_SQL, [text]).fetchall()
    found = []
    for line in text.split("\n"):
        stripped = line.lstrip("| ")
        if not stripped.startswith("+- "):
            continue
        node = stripped[3:]
        colon = node.find(":")
        if colon < 1 or not "A" <= node[0] <= "Z":
            continue
        kind = node[:colon]
        if kind.translate(_ASCII_UPPER) == kind:
            found.append((kind, node[colon + 1 :].strip(" "), (len(line) - len(stripped)) // 2))
    return found
