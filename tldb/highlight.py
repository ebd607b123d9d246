"""Output-code pages: the code escaped in a `<pre>`, coloured in the browser.

tlparse highlights every output-code file with syntect on the server (and reloads its syntax
set each time, which dominates its run time). tldb writes the code as plain escaped text and
ships a small script that colours it when the page is opened: the page costs one escape per
file to write, reads as plain code without JavaScript, and keeps tlparse's layout that
downstream tools rely on: line k+1 of the file holds source line k, and the text of the page is
exactly the code.
"""

from __future__ import annotations

from html import escape

from tldb.resources import templates_dir

#: The browser-side highlighter, inlined in every output-code page (pages stand alone).
HIGHLIGHT_SCRIPT = (
    "<script>\n"
    + (templates_dir() / "_code_highlight.js").read_text(encoding="utf-8")
    + "</script>\n"
)


def highlight_page(code: str) -> str:
    """The page: `<pre>` on the first line, one line per source line, `</pre>` right after
    the code's last line break (as tlparse ends it), the script."""
    return f'<pre style="background-color:#ffffff;">\n{escape(code, quote=False)}</pre>\n{HIGHLIGHT_SCRIPT}'
