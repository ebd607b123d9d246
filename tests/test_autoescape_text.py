"""autoescape_text: HTML a module builds in Python must escape exactly as the templates do.

compilation_metrics writes its "Output files" lines and Other Metrics rows outside Jinja (for
speed, issue 17); a page must not change because a cell was escaped by another function.
"""

from __future__ import annotations

import jinja2
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from tldb.module_api import _replace_escape, autoescape_text

TEMPLATE = jinja2.Environment(autoescape=True).from_string("{{ value }}")


def test_every_special_character():
    text = "a&b<c>d'e\"f &amp; &#39;"
    assert autoescape_text(text) == TEMPLATE.render(value=text)
    assert autoescape_text(text) == "a&amp;b&lt;c&gt;d&#39;e&#34;f &amp;amp; &amp;#39;"


@given(st.text(alphabet=st.sampled_from("&<>'\"a;#é\n\x00"), max_size=40) | st.text())
def test_same_as_markupsafe(text):
    assert autoescape_text(text) == str(escape(text)) == TEMPLATE.render(value=text)


@given(st.text(alphabet=st.sampled_from("&<>'\"a;#é\n\x00"), max_size=40) | st.text())
def test_fallback_same_as_markupsafe(text):
    """autoescape_text runs markupsafe's C escaping when it can import it; the five
    replacements it falls back to must escape the same way."""
    assert _replace_escape(text) == str(escape(text)) == autoescape_text(text)
