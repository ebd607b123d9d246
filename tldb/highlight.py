"""A small, fast Python highlighter for Inductor's output code.

tlparse highlights each output-code file with syntect (and reloads its syntax set every time,
which dominates its run time). Only the layout matters downstream: the page is a `<pre>` whose
line k+1 holds source line k, and stripping the tags gives back the code. A single regex pass
per line keeps that cheap.
"""

from __future__ import annotations

import keyword
import re
from html import escape

_KEYWORDS = "|".join(sorted(keyword.kwlist, key=len, reverse=True))
_TOKEN = re.compile(
    r"(?P<comment>#.*)"
    r"|(?P<triple>[rRbBuUfF]{0,2}(?:\"\"\"|'''))"
    r"|(?P<string>[rRbBuUfF]{0,2}(?:\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'))"
    rf"|(?P<keyword>\b(?:{_KEYWORDS})\b)"
    r"|(?P<number>\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?)\b)"
    r"|(?P<decorator>@[\w.]+)"
)
_STYLE = {
    "comment": "color:#6a737d;font-style:italic",
    "triple": "color:#032f62",
    "string": "color:#032f62",
    "keyword": "color:#d73a49;font-weight:bold",
    "number": "color:#005cc5",
    "decorator": "color:#6f42c1",
}


def _span(kind: str, text: str) -> str:
    return f'<span style="{_STYLE[kind]}">{escape(text)}</span>'


def highlight_lines(code: str) -> list[str]:
    """One HTML string per source line, tokens wrapped in inline-styled spans."""
    out: list[str] = []
    in_triple: str | None = None  # the quote that closes the open triple-quoted string
    for line in code.split("\n"):
        parts: list[str] = []
        pos = 0
        if in_triple is not None:
            end = line.find(in_triple)
            if end < 0:
                out.append(_span("string", line) if line else "")
                continue
            parts.append(_span("string", line[: end + 3]))
            pos = end + 3
            in_triple = None
        while pos < len(line):
            found = _TOKEN.search(line, pos)
            if found is None:
                parts.append(escape(line[pos:]))
                break
            parts.append(escape(line[pos : found.start()]))
            kind = found.lastgroup or ""
            if kind == "triple":
                quote = found.group()[-3:]
                end = line.find(quote, found.end())
                if end < 0:
                    parts.append(_span("string", line[found.start() :]))
                    in_triple = quote
                    pos = len(line)
                    break
                parts.append(_span("string", line[found.start() : end + 3]))
                pos = end + 3
                continue
            parts.append(_span(kind, found.group()))
            pos = found.end()
        out.append("".join(parts))
    return out


def highlight_page(code: str) -> str:
    """The whole page body: `<pre>` opening line, one line per source line, `</pre>`."""
    body = "\n".join(highlight_lines(code))
    return f'<pre style="background-color:#ffffff;">\n{body}\n</pre>\n'
