"""The reference tlparse 0.4.3 and the comparison of its output tree with tldb's.

This is the repository's own parity harness, so a clone with nothing beside it can prove its
compatibility: the reference is the `tlparse==0.4.3` wheel from PyPI (a maturin wheel that
ships the Rust binary), installed once into a private virtual environment in the user cache.

Comparison rules (the compatibility policy of the README):
- every file tlparse writes exists at the same relative path in tldb's tree;
- data files (everything but .html) are byte-identical, or equal as JSON values for .json;
  files tlparse orders by the file system's listing (LISTING_ORDERED) are equal up to the
  order of their entries;
- pages (`compare_page`): tlparse's visible text, its explanatory prose dropped by position
  (PROSE), is an ordered subsequence of tldb's; the links are the same multiset, tldb's own
  extra pages aside; pages whose body is code hold the same code lines, exactly.
"""

from __future__ import annotations

import bisect
import html.parser
import json
import os
import posixpath
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ORACLE_VERSION = "0.4.3"


def oracle_cache() -> Path:
    """Where the reference is installed: $XDG_CACHE_HOME or ~/.cache, folder tldb-parity."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tldb-parity"


def oracle_command() -> list[str]:
    """The command running tlparse 0.4.3, installing it from PyPI on first use."""
    venv = oracle_cache() / "oracle-venv"
    exe = venv / "bin" / "tlparse"
    if not exe.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, f"tlparse=={ORACLE_VERSION}"], check=True)
    return [str(exe)]


def run_reference(
    oracle: list[str], source: Path, out: Path, *flags: str
) -> subprocess.CompletedProcess:
    """tlparse SOURCE -o OUT --overwrite --no-browser FLAGS (its exit status is not checked)."""
    command = [*oracle, str(source), "-o", str(out), "--overwrite", "--no-browser", *flags]
    return subprocess.run(command, capture_output=True, text=True)


def run_tldb_report(source: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    """tldb report SOURCE -o OUT --overwrite --no-browser FLAGS, as a user runs it."""
    command = [sys.executable, "-m", "tldb", "report", str(source), "-o", str(out)]
    command += ["--overwrite", "--no-browser", *flags]
    return subprocess.run(command, capture_output=True, text=True)


class _VisibleText(html.parser.HTMLParser):
    """Collects the visible text of a page, one entry per non-blank line, spaces collapsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        for line in data.splitlines():
            words = " ".join(line.split())
            if words:
                self.lines.append(words)


def _parse(path: Path) -> _VisibleText:
    parser = _VisibleText()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


def html_lines(path: Path) -> list[str]:
    """The visible text lines of a page, in order (script and style content excluded)."""
    return _parse(path).lines


def page_links(path: Path) -> list[str]:
    """Every href of every <a> of a page, in order."""
    return parse_page(path).links


@dataclass
class TreeComparison:
    """What differs between tlparse's tree (ref) and tldb's (got)."""

    missing: list[str] = field(default_factory=list)  # in ref, not in got
    differ: list[str] = field(default_factory=list)  # data files whose content differs
    extra: list[str] = field(default_factory=list)  # in got only (tldb's additions)
    pages: list[str] = field(default_factory=list)  # .html files present in both


#: Files tlparse orders by the file system's listing order (multi-rank mode); tldb orders them
#: by rank and graph folder name, so they equal tlparse's only up to the order of their entries.
LISTING_ORDERED = (
    "runtime_estimations.json",
    "collective_schedules.json",
    "chromium_trace_with_runtime.json",
    "collectives_parity.json",
)


def canonical_listing(path: Path):
    """A listing-ordered file's content with its entries sorted (and tlparse's hash-map thread
    sort indexes blanked), so that only the order may differ."""
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data["graphs"] = sorted(data["graphs"], key=lambda g: g["graph"])
        return data
    for event in data:
        if event.get("name") == "thread_sort_index":
            event["args"] = {}
    return sorted(data, key=lambda e: json.dumps(e, sort_keys=True))


def _same_data(ref: Path, got: Path) -> bool:
    a, b = ref.read_bytes(), got.read_bytes()
    if a == b:
        return True
    if ref.suffix != ".json":
        return False
    try:
        if ref.name in LISTING_ORDERED:
            return canonical_listing(ref) == canonical_listing(got)
        return json.loads(a) == json.loads(b)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def files_under(root: Path) -> set[str]:
    """Every file below root, as a relative POSIX path."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def compare_trees(ref: Path, got: Path) -> TreeComparison:
    """Compare two report folders file by file (pages are only listed: see compare_page)."""
    theirs, ours = files_under(ref), files_under(got)
    result = TreeComparison(extra=sorted(ours - theirs))
    for rel in sorted(theirs):
        if rel not in ours:
            result.missing.append(rel)
        elif rel.endswith(".html"):
            result.pages.append(rel)
        elif not _same_data(ref / rel, got / rel):
            result.differ.append(rel)
    return result


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextLine:
    """A visible line of a page and where it stands in the page's structure."""

    text: str
    #: The last <h1>-<h4> before the line, spaces collapsed ("" before the first heading).
    heading: str
    #: 1-based number of the paragraph (<p> or <ol>) after that heading that holds the line;
    #: 0 outside any paragraph.
    paragraph: int
    #: Position of the line inside its paragraph (0-based).
    index: int
    #: Whether the line is inside a <pre>.
    pre: bool = False


_HEADINGS = frozenset({"h1", "h2", "h3", "h4"})
#: Elements that end an open <p> when they start, as in a browser: tlparse leaves some <p>
#: unclosed (`<p>Restart Reasons:<p>`, `<p>Entire Frame ...</div>`).
_CLOSES_P = frozenset({"div", "ul", "ol", "table", "pre", "details", "hr", *_HEADINGS})
_LINE_SPAN = re.compile(r"L\d+$")
#: The three panes of a provenance page (ids shared by tlparse's template and tldb's).
PANES = ("preGradGraph", "postGradGraph", "generatedCode")


class _PageParser(html.parser.HTMLParser):
    """Reads a page once: visible text lines with their place, links, <base> and code.

    A text line is a run of visible text between two tags with its spaces collapsed, as a
    browser shows it: how a sentence is wrapped in the HTML source is not visible. Inside
    <pre>, where line breaks are visible, each line of the run is a line. Script and style
    content is not visible text.

    Code is read exactly: each outermost <pre> is a block of lines (a dump_file page's
    `<span id="L{n}">` elements are lines too). On provenance pages each pane (PANES) is read
    as lines: its <pre> lines (tlparse) or its elements of class `l` (tldb, one per line).
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[TextLine] = []
        self.links: list[str] = []
        self.base = ""
        #: The text of each outermost <pre>, one entry per line, exactly as shown.
        self.code: list[list[str]] = []
        #: The code lines of each provenance pane, by pane id.
        self.panes: dict[str, list[str]] = {}
        self._hidden = 0
        self._pre = 0
        self._pre_start = False
        self._run: list[str] = []
        self._code: list[str] = []
        self._heading_text: list[str] | None = None
        self._heading = ""
        self._paragraph = 0
        self._open_p = False
        self._ol = 0
        self._index = 0
        self._pane: tuple[str, str, int] | None = None  # id, tag, open elements of that tag
        self._code_line: tuple[str, int, list[str]] | None = None  # tag, depth, text

    def _in_paragraph(self) -> bool:
        return self._open_p or self._ol > 0

    def _start_paragraph(self) -> None:
        self._paragraph += 1
        self._index = 0

    def _flush(self) -> None:
        text, self._run = "".join(self._run), []
        pieces = text.split("\n") if self._pre else [text]
        for piece in pieces:
            words = " ".join(piece.split())
            if not words:
                continue
            paragraph = self._paragraph if self._in_paragraph() else 0
            line = TextLine(words, self._heading, paragraph, self._index, self._pre > 0)
            self.lines.append(line)
            self._index += 1

    def _track_code(self, tag: str, values: dict[str, str | None]) -> None:
        """Code structure: <pre> blocks, provenance panes and their line elements."""
        if self._pane is None and values.get("id") in PANES:
            self._pane = (values["id"] or "", tag, 0)
            self.panes[self._pane[0]] = []
        if self._pane is not None and tag == self._pane[1]:
            self._pane = (self._pane[0], tag, self._pane[2] + 1)
        if self._code_line is not None and tag == self._code_line[0]:
            self._code_line = (tag, self._code_line[1] + 1, self._code_line[2])
        elif self._pane is not None and "l" in (values.get("class") or "").split():
            self._code_line = (tag, 1, [])
        if tag == "pre":
            if not self._pre:
                self._code = []
            self._pre += 1
            self._pre_start = True  # a browser drops a line break right after <pre>
        elif (
            tag == "span"
            and self._pre
            and _LINE_SPAN.match(values.get("id") or "")
            and self._code
            and not self._code[-1].endswith("\n")
        ):
            self._code.append("\n")  # dump_file pages: one <span id="L{n}"> per line

    def _end_code(self, tag: str) -> None:
        if self._code_line is not None and tag == self._code_line[0]:
            depth = self._code_line[1] - 1
            if depth:
                self._code_line = (tag, depth, self._code_line[2])
            else:
                if self._pane is not None:
                    self.panes[self._pane[0]].append("".join(self._code_line[2]))
                self._code_line = None
        if tag == "pre" and self._pre:
            self._pre -= 1
            if not self._pre:
                # A final line break ends the last line rather than starting an empty one.
                text = "".join(self._code).removesuffix("\n")
                block = text.split("\n") if text else []
                self.code.append(block)
                if self._pane is not None:
                    self.panes[self._pane[0]].extend(block)
        if self._pane is not None and tag == self._pane[1]:
            depth = self._pane[2] - 1
            self._pane = (self._pane[0], tag, depth) if depth else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._flush()
        self._pre_start = False
        values = dict(attrs)
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        elif tag == "base" and values.get("href"):
            self.base = values["href"] or ""
        self._track_code(tag, values)
        if tag in _CLOSES_P or tag == "p":
            self._open_p = False
        if tag in _HEADINGS:
            self._heading_text = []
        elif tag == "p":
            self._open_p = True
            if not self._ol:
                self._start_paragraph()
        elif tag == "ol":
            if not self._ol:
                self._start_paragraph()
            self._ol += 1

    def handle_endtag(self, tag: str) -> None:
        self._flush()
        self._pre_start = False
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1
        elif tag == "p":
            self._open_p = False
        elif tag == "ol" and self._ol:
            self._ol -= 1
        elif tag in _HEADINGS and self._heading_text is not None:
            self._heading = " ".join("".join(self._heading_text).split())
            self._heading_text = None
            self._paragraph = 0
        self._end_code(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if self._pre_start:
            data = data.removeprefix("\n")
            self._pre_start = False
        self._run.append(data)
        if self._pre:
            self._code.append(data)
        if self._code_line is not None:
            self._code_line[2].append(data)
        if self._heading_text is not None:
            self._heading_text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def parse_page(path: Path) -> _PageParser:
    """A page's visible text lines, links, <base> and code blocks (see _PageParser)."""
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


#: Kinds of pages, by file name (see page_kind).
_KINDS = (
    (re.compile(r"(^|/)dump_file/[^/]+\.html$"), "dump_file"),
    (re.compile(r"(^|/)inductor_output_code_[^/]*\.html$"), "output_code"),
    (re.compile(r"_readable\.html$"), "readable_traces"),
    (re.compile(r"(^|/)provenance_tracking_[^/]*\.html$"), "provenance"),
    (re.compile(r"(^|/)bwd_compilation_metrics_\d+\.html$"), "bwd_compilation_metrics"),
    (re.compile(r"(^|/)aot_autograd_backward_compilation_metrics_\d+\.html$"), "aot_metrics"),
    (re.compile(r"(^|/)compilation_metrics_\d+\.html$"), "compilation_metrics"),
    (re.compile(r"(^|/)failures_and_restarts\.html$"), "failures_and_restarts"),
    (re.compile(r"(^|/)dynamo_guards_\d+\.html$"), "dynamo_guards"),
    (re.compile(r"(^|/)symbolic_guard_information_\d+\.html$"), "symbolic_guard"),
)
#: Kinds whose body is code: compared line by line, exactly (compare_page).
CODE_KINDS = frozenset({"dump_file", "output_code", "readable_traces", "provenance"})


def page_kind(rel: str, flags: Sequence[str]) -> str:
    """Which of tlparse's templates wrote the page at `rel` in a run with `flags`."""
    if rel.rpartition("/")[2] == "index.html":
        if "--all-ranks-html" in flags and "/" not in rel:
            return "multi_rank_index"
        if "--export" in flags or "-e" in flags:
            return "export_index"
        return "index"
    for pattern, kind in _KINDS:
        if pattern.search(rel):
            return kind
    return "page"


@dataclass(frozen=True)
class Prose:
    """A paragraph of tlparse's explanations that tldb writes in its own words (README
    "Differences"): the `paragraph`-th <p>/<ol> after the heading `heading`, or only its lines
    `start` to `stop` (a slice: negative counts from the paragraph's end)."""

    heading: str
    paragraph: int
    start: int = 0
    stop: int | None = None

    def covers(self, line: TextLine, size: int) -> bool:
        """Whether `line`, in a paragraph of `size` lines, is this prose."""
        if (line.heading, line.paragraph) != (self.heading, self.paragraph):
            return False
        return line.index in range(size)[self.start : self.stop]


#: tlparse's explanatory prose per page kind, found by position. Everything else on a page
#: (headings, labels, legends, data lines, links) must be in tldb's page, in the same order.
PROSE: dict[str, tuple[Prose, ...]] = {
    "index": (
        # "The stack trie is a way of getting a quick orientation on where all the
        # compilations in a model take place..." (what the trie is).
        Prose("Stack trie", 1),
        # "Links to particular compilation are color coded by status:", the sentence that
        # opens the colour legend; the legend's labels that follow are compared.
        Prose("Stack trie", 2, stop=1),
        # "Various issues may cause Dynamo to restart its analysis or give up on compilation
        # entirely...": the sentence before "This run had"; the count and its link are compared.
        Prose("Failures and Restarts", 1, stop=1),
        # "The IR dumps collected dumped intermediate products...", "A compile id uniquely
        # identifies...", "In some situations, the compile id will have an extra signifier...",
        # "When compiled autograd is enabled...", "Here is a high level description of PT2's
        # compilation phases..." and the <ol> of phases that follows it.
        *(Prose("IR dumps", paragraph) for paragraph in range(1, 7)),
        # "View detailed provenance tracking information for each rank and frame:", above the
        # list of provenance pages (--inductor-provenance).
        Prose("Provenance Tracking", 1),
        # "Sometimes, logs are made without a compile id. This makes it difficult to correlate
        # related logs..." (what the unknown-stacks trie is).
        Prose("Unknown stacks", 1),
    ),
    "multi_rank_index": (
        # "shows estimated runtime per operation across all ranks and graphs. Each rank appears
        # as a separate process (PID) in the trace; ... You can download and view this trace
        # in": the text between the trace's link and Perfetto's link.
        Prose("Runtime Trace Visualization", 1, start=1, stop=2),
        # "rank(s) for each compiled graph based on inductor runtime estimates. Shows the delta
        # between the fastest and slowest ranks...": what follows "Runtime variance analysis
        # across all <strong>N</strong>" (the number is compared).
        Prose("Graph Runtime Analysis", 1, start=2),
    ),
}


#: Lines a page kind lists in an order that is not defined: each run of consecutive lines
#: matching the pattern is compared as a multiset (sorted on both sides). tlparse lists the
#: multi-rank divergence groups ("Ranks: 0, 2") in hash-map order, tldb by lowest rank
#: (modules/multi_rank/README.md), like the LISTING_ORDERED files.
UNORDERED: dict[str, re.Pattern[str]] = {"multi_rank_index": re.compile(r"Ranks: ")}


def in_defined_order(texts: list[str], kind: str) -> list[str]:
    """`texts` with each run of lines that the page kind lists in no defined order sorted."""
    pattern = UNORDERED.get(kind)
    if pattern is None:
        return texts
    result: list[str] = []
    run: list[str] = []
    for text in [*texts, None]:
        if text is not None and pattern.match(text):
            run.append(text)
            continue
        result.extend(sorted(run))
        run = []
        if text is not None:
            result.append(text)
    return result


def prose_free(lines: list[TextLine], kind: str) -> list[TextLine]:
    """tlparse's lines of a page without its explanatory prose (PROSE of the page's kind)."""
    rules = PROSE.get(kind, ())
    sizes = Counter((line.heading, line.paragraph) for line in lines)
    return [
        line
        for line in lines
        if not any(rule.covers(line, sizes[line.heading, line.paragraph]) for rule in rules)
    ]


def not_in_order(wanted: Sequence[str], text: Sequence[str]) -> list[int]:
    """Positions of the `wanted` lines that `text` does not hold in that order.

    Empty exactly when `wanted` is a subsequence of `text`: each line is matched to its
    earliest occurrence after the previous match (which finds a subsequence whenever there is
    one); a line that cannot be matched is reported and the search goes on after the previous
    match.
    """
    where: dict[str, list[int]] = {}
    for position, line in enumerate(text):
        where.setdefault(line, []).append(position)
    unmatched, after = [], -1
    for number, line in enumerate(wanted):
        positions = where.get(line, [])
        found = bisect.bisect_right(positions, after)
        if found == len(positions):
            unmatched.append(number)
        else:
            after = positions[found]
    return unmatched


def link_target(page_rel: str, base: str, href: str) -> str | None:
    """The report file a link points to (relative to the report root), None for links out of
    the report (http:, mailto:...) and links inside the page (#...)."""
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:|//|#", href):
        return None
    path = re.split(r"[?#]", href, maxsplit=1)[0]
    folder = posixpath.dirname(page_rel)
    return posixpath.normpath(posixpath.join(folder, base, path))


@dataclass(frozen=True)
class Allowed:
    """A difference of tldb's pages from tlparse's that is not prose, tolerated on pages of
    `kind` in exactly this form: tlparse lines matching `text_missing` may be absent, links
    matching `links_added` may be added."""

    kind: str
    why: str
    text_missing: str = ""
    links_added: str = ""


#: What tldb does differently on purpose, beyond prose (each documented where the note says).
#: Code is never allowed to differ.
ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "provenance",
        "tldb's own provenance page (README): its <title> adds the compile directory",
        text_missing=r"Inductor Provenance Tracking Highlighter$",
    ),
    Allowed(
        "provenance",
        "tldb's own provenance page (README): each pane links the file it shows",
        links_added=r"[^/]+/(before_pre_grad_graph|after_post_grad_graph|inductor_pre_grad_graph"
        r"|inductor_post_grad_graph|inductor_output_code|inductor_aot_wrapper_code)_[^/]*$",
    ),
    Allowed(
        "symbolic_guard",
        "tldb links each symbolic guard page back to the export report",
        links_added=r"index\.html$",
    ),
    Allowed(
        "multi_rank_index",
        "a tensor-metadata divergence also gets a line in the warning box, linking its "
        "section (modules/multi_rank/README.md)",
        links_added=r"#tensor-metadata$",
    ),
)


@dataclass
class PageComparison:
    """How a tldb page differs from tlparse's (all empty: the page matches)."""

    #: tlparse's lines (prose dropped) that tldb's page lacks or has in another order.
    text: list[str] = field(default_factory=list)
    #: Link targets of tlparse's page that tldb's lacks (with their multiplicity).
    links_missing: list[str] = field(default_factory=list)
    #: Link targets tldb adds that are not tldb's own extra pages.
    links_added: list[str] = field(default_factory=list)
    #: For code pages: the first line where the code differs, as (tlparse's, tldb's).
    code: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.text or self.links_missing or self.links_added or self.code)

    def describe(self, limit: int = 8) -> str:
        """The differences, one per line (at most `limit` of each sort)."""
        parts = []
        for label, values in (
            ("tlparse's line missing or out of order", self.text),
            ("link missing", self.links_missing),
            ("link added", self.links_added),
            ("code differs (tlparse | tldb)", [f"{a!r} | {b!r}" for a, b in self.code]),
        ):
            parts += [f"  {label}: {value}" for value in values[:limit]]
            if len(values) > limit:
                parts.append(f"  ... {len(values) - limit} more ({label})")
        return "\n".join(parts)


def _first_code_difference(ref: list[list[str]], got: list[list[str]]) -> list[tuple[str, str]]:
    if ref == got:
        return []
    if len(ref) != len(got):
        return [(f"{len(ref)} code blocks", f"{len(got)} code blocks")]
    for block, (theirs, ours) in enumerate(zip(ref, got, strict=True)):
        for number in range(max(len(theirs), len(ours))):
            a = theirs[number] if number < len(theirs) else "<end of code>"
            b = ours[number] if number < len(ours) else "<end of code>"
            if a != b:
                return [(f"block {block} line {number + 1}: {a}", b)]
    return []  # pragma: no cover - the blocks differ somewhere


def compare_page(
    ref: Path,
    got: Path,
    rel: str,
    kind: str,
    extra: Sequence[str] = (),
    allowed: Sequence[Allowed] = ALLOWED,
) -> PageComparison:
    """Compare tlparse's page `ref` with tldb's `got` (both at `rel` in their reports).

    - Text: tlparse's visible lines, its explanatory prose dropped (PROSE), must appear in
      tldb's page in the same order; tldb may add lines anywhere.
    - Links: the same multiset of link targets, except that tldb may add links to its own
      extra files (`extra`: paths relative to the report root, from compare_trees).
    - Code pages (CODE_KINDS): the same code blocks, line by line, exactly.
    Differences listed in `allowed` for the page's kind are not reported.
    """
    rules = [rule for rule in allowed if rule.kind == kind]
    theirs, ours = parse_page(ref), parse_page(got)
    result = PageComparison()
    wanted = prose_free(theirs.lines, kind)
    if kind in CODE_KINDS:  # the code is compared below, as code; the rest is text
        wanted = [line for line in wanted if not line.pre]
    texts = in_defined_order([line.text for line in wanted], kind)
    have = in_defined_order([line.text for line in ours.lines], kind)
    missing = [texts[number] for number in not_in_order(texts, have)]
    result.text = [text for text in missing if not _matches(rules, "text_missing", text)]
    want_links, have_links = Counter(theirs.links), Counter(ours.links)
    result.links_missing = sorted((want_links - have_links).elements())
    extras = set(extra)
    result.links_added = sorted(
        href
        for href in (have_links - want_links).elements()
        if link_target(rel, ours.base, href) not in extras
        and not _matches(rules, "links_added", href)
    )
    if kind in CODE_KINDS:
        expected, blocks = code_blocks(theirs, kind), code_blocks(ours, kind)
        result.code = _first_code_difference(expected, blocks)
    return result


def _matches(rules: list[Allowed], field_name: str, value: str) -> bool:
    return any(
        getattr(rule, field_name) and re.match(getattr(rule, field_name), value) for rule in rules
    )


def _trimmed(lines: list[str]) -> list[str]:
    """Lines without the blank lines that open and close them."""
    first = next((n for n, line in enumerate(lines) if line.strip()), len(lines))
    last = next((n for n in range(len(lines), first, -1) if lines[n - 1].strip()), first)
    return lines[first:last]


def code_blocks(page: _PageParser, kind: str) -> list[list[str]]:
    """The code a page shows, as blocks of lines: its <pre> blocks, or on a provenance page
    the lines of each pane (without the blank lines around them: tlparse's template pads its
    panes)."""
    if kind == "provenance":
        return [_trimmed(page.panes.get(pane, [])) for pane in PANES]
    return page.code
