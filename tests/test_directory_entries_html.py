"""The compile directory's list lines, made in Python (compile_directory.entries_html), are
the text the template loop they replace made, on generated entries: names and links with
characters to escape, `javascript:` links, subgraph headers and readable pages or not."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tldb.module_api import DirectoryEntry, _environment
from tldb.registry import ModuleRegistry

#: The loop the module's directory.html had (and the page's text around one compile id).
TEMPLATE_LOOP = """<ul>
{% for group, e in entries %}
{% if group is not none %}<li style="margin-top: 0.5em">{% if group %}Subgraph Name: {{ group }}{% endif %}</li>
{% endif %}<li><a href="{{ e.url|href }}">{{ e.name }}</a>{% if e.readable_url %} (<a href="{{ e.readable_url }}">readable_html</a>){% endif %} {{ e.suffix }} ({{ e.number }})</li>
{% endfor %}
</ul>
"""


@pytest.fixture(scope="module")
def directory_module():
    ModuleRegistry.discover()
    return importlib.import_module("tldb_modules.compile_directory.module")


TEXT = st.text(alphabet=st.sampled_from("ab/<>&'\" :.é❌\t"), max_size=12) | st.sampled_from(
    ["javascript:alert(1)", " JavaScript:x", "https://x/y?a=1&b=2", "-_0_0_0/x.txt", ""]
)
ENTRY = st.builds(
    DirectoryEntry,
    name=TEXT,
    url=TEXT,
    suffix=st.sampled_from(["", "❌", "✅", "❓", "<b>"]),
    number=st.integers(min_value=-1, max_value=10**6),
    readable_url=st.none() | TEXT,
)


@settings(deadline=None)  # a loaded machine must not fail a correct example
@given(st.lists(st.tuples(st.none() | TEXT, ENTRY), max_size=6))
def test_entries_html_is_what_the_template_loop_wrote(directory_module, entries):
    env = _environment(str(directory_module.MODULE.folder))
    expected = env.from_string(TEMPLATE_LOOP).render(entries=entries)
    made = env.from_string("<ul>\n{{ entries }}\n</ul>\n").render(
        entries=directory_module.entries_html(entries)
    )
    assert made == expected
