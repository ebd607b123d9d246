"""The contract between the core and report modules.

A module reads the database with SQL and renders files with Jinja2 templates from its own
folder. It never reads the log, never writes files itself and never talks to another module:
it returns a `ModuleOutput`, and the core writes the files, merges directory entries and
assembles `index.html` from the index contributions.
"""

from __future__ import annotations

import functools
import html
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import jinja2
import sqlite_utils
from markupsafe import Markup

from tldb import jsonfmt
from tldb.logfile import is_gzip
from tldb.resources import templates_dir
from tldb.site import Content, CopyFile

if TYPE_CHECKING:
    from tldb.plan import Emit, Output
    from tldb.reader import Envelope

T = TypeVar("T")

#: Report modes a module can take part in.
DEFAULT_MODE = "default"
EXPORT_MODE = "export"
MULTI_RANK_MODE = "multi_rank"

#: Index sections in page order; sections with other names follow, in module order.
SECTION_ORDER = (
    "triage",
    "stack_trie",
    "failures",
    "ir_dumps",
    "chromium",
    "collectives",
    "directory",
    "provenance",
    "unknown_stacks",
)


@dataclass(frozen=True)
class DirectoryEntry:
    """One line of a compile id's list in the index and in compile_directory.json."""

    name: str
    url: str
    suffix: str
    number: int
    readable_url: str | None = None


@dataclass(frozen=True)
class IndexContribution:
    """HTML for one section of index.html (already escaped by the module's template)."""

    section: str
    html: str


@dataclass(frozen=True)
class IndexPage:
    """A page that takes the place of `index.html`, the report's first page, while the usual
    index (every module's sections) is still written, as `moved_to`. This is for a report
    whose log calls for another first page (tlparse shows its vLLM summary there when the log
    has vLLM artifacts, and keeps its own index as tlparse_index.html). The page should link
    to `moved_to`. When several modules return one, the first in module order wins."""

    html: str
    moved_to: str


@dataclass
class ModuleOutput:
    """What a module produces. `files` may be a generator: the core writes as it iterates."""

    files: Iterable[tuple[str, Content]] = ()
    directory_entries: dict[str, list[DirectoryEntry]] = field(default_factory=dict)
    index_html: list[IndexContribution] = field(default_factory=list)
    #: Set only when the module's page is to be the report's first page (see IndexPage).
    index_page: IndexPage | None = None


@dataclass(frozen=True)
class ReportConfig:
    """Report options, as given on the command line."""

    plain_text: bool = False
    custom_header_html: str = ""
    export_mode: bool = False
    inductor_provenance: bool = False
    verbose: bool = False

    @property
    def mode(self) -> str:
        return EXPORT_MODE if self.export_mode else DEFAULT_MODE


@dataclass(frozen=True)
class CompileInfo:
    """A compile id of the report, in first-appearance order."""

    key: str
    label: str
    status: str
    cache_status: str
    has_metrics: bool
    has_graphs: bool
    has_guards: bool


@dataclass(frozen=True)
class Manifest:
    compiles: tuple[CompileInfo, ...]


def lines_of(text: str) -> list[str]:
    """Split like Rust's str::lines: on \n, dropping one trailing \r per line and a final empty."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def encode_text(value: Any) -> str:
    """Escape only `< > &`, as tlparse's html_escape::encode_text (quotes stay)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _replace_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


try:  # markupsafe's own escaping, in C: ~3x faster than five str.replace passes
    from markupsafe import _escape_inner as _markupsafe_escape
except ImportError:  # an older or pure-Python markupsafe
    _markupsafe_escape = _replace_escape


def autoescape_text(text: str) -> str:
    """`text` escaped exactly as a template's autoescape (markupsafe) escapes it: `& < > ' "`.

    For HTML a module builds in Python, line by line, where markupsafe's `escape` (a Markup
    object per call) costs more than the line: thousands of lines a page on a big log. The
    function markupsafe's `escape` itself runs is used when there is one (it returns a plain
    str), else the same five replacements."""
    return _markupsafe_escape(text)


#: Schemes a link target taken from the log may have; others (javascript:, data:, vbscript:)
#: would run code or show made-up content when the link is clicked.
LINK_SCHEMES = frozenset({"http", "https"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
#: What browsers skip before reading a URL (C0 controls and space) and drop inside it.
_URL_LEADING = "".join(map(chr, range(0x21)))
_URL_DROPPED = re.compile(r"[\t\n\r]")


def safe_href(value: Any) -> str:
    """A link target that cannot act: tlparse writes a `link` envelope's url verbatim as the
    href of its index entry, so `javascript:...` from a log would run when clicked. Targets
    without a scheme (the report's own files) and http(s) URLs stay as they are; any other
    becomes `#`. The scheme is read as a browser reads it (leading spaces and control
    characters skipped, tabs and newlines dropped, any case)."""
    text = "" if value is None else str(value)
    found = _SCHEME.match(_URL_DROPPED.sub("", text).lstrip(_URL_LEADING))
    if found and found.group(1).lower() not in LINK_SCHEMES:
        return "#"
    return text


@functools.cache
def _environment(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(folder), jinja2.FileSystemLoader(str(templates_dir()))]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,  # templates do not change during a run: no stat() per page
    )
    env.filters["num"] = jsonfmt.format_number
    env.filters["text"] = lambda v: Markup(encode_text(v))
    env.filters["href"] = safe_href
    env.globals["escape"] = html.escape
    return env


@functools.lru_cache(maxsize=512)
def _sql_text(path: Path) -> str:
    """A module's SQL file, read once per process (a many-rank report runs every query once
    per rank; module files do not change while tldb runs)."""
    return path.read_text(encoding="utf-8")


@dataclass
class ModuleContext:
    """Everything a module may use: the database (read-only), config, manifest, templates."""

    db: sqlite_utils.Database
    out_dir: Path
    config: ReportConfig
    manifest: Manifest
    log_id: int
    module_dir: Path
    directory: Mapping[str, list[DirectoryEntry]] = field(default_factory=dict)
    #: (part, parts) of a module with `shards`: render only the files of this part.
    shard: tuple[int, int] = (0, 1)
    #: Multi-rank mode: where each rank's own database is, when the core knows (else the
    #: combined database's `rank_database` meta rows say); see rank_database.
    rank_databases: Mapping[int, Path] = field(default_factory=dict)
    #: Values shared by the modules of one render in one process (see `shared`); None where
    #: contexts outlive a render (`tldb serve`), which then shares nothing.
    memo: dict[str, Any] | None = None

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """`make()`, computed once per render and process and handed to every module that
        asks for `key` (without a memo, computed on each call).

        For work several modules repeat on the same rows (parsing the chromium events:
        tldb/chromium_events.py): one rank's render runs its modules one after the other in
        one process, where the second parse was ~10% of the render. `make` must depend only
        on the database, the log and the config, never on the module asking; name keys
        `package.thing`; treat the value as read-only (other modules get the same object);
        and keep it small, or bounded: it lives until the render ends."""
        if self.memo is None:
            return make()
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def sql(self, name: str) -> str:
        """The text of `name.sql` from the module's folder."""
        return _sql_text(self.module_dir / f"{name}.sql")

    def rows(self, name: str, **params: Any) -> sqlite3.Cursor:
        """Rows of the module's `name.sql` as tuples in its column order, with `:log_id` and
        the given parameters bound: for a loop over tens of thousands of rows that unpacks
        them (a dict a row, as `query` makes, costs more than the fields read)."""
        return self.db.conn.execute(self.sql(name), {"log_id": self.log_id, **params})

    def query(self, name: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Rows of the module's `name.sql`, with `:log_id` and the given parameters bound."""
        cursor = self.rows(name, **params)
        columns = [c[0] for c in cursor.description]
        for row in cursor:
            yield dict(zip(columns, row, strict=True))

    def original_log(self) -> Path | None:
        """The loaded log file, if it is still there unchanged (to copy instead of rebuild);
        never a gzip log, whose text (what raw.log holds) is not its bytes."""
        row = self.db.conn.execute(
            "SELECT path, size, mtime_ns FROM logs WHERE id = ?", [self.log_id]
        ).fetchone()
        path = Path(row[0])
        if is_gzip(path):
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        return path if (stat.st_size, stat.st_mtime_ns) == (row[1], row[2]) else None

    def raw_log(self) -> Content:
        """The loaded log's bytes: a copy of the file when unchanged, else rebuilt from the DB."""
        from tldb.rebuild import log_bytes

        original = self.original_log()
        return CopyFile(original) if original else log_bytes(self.db, self.log_id)

    def rank_report_file(self, rank: int, name: str) -> Path | None:
        """Multi-rank mode: the file `name` that rank `rank`'s own report wrote under
        OUT/rank_N (rendered before the landing), or None when there is no such regular file.
        The landing may reuse what a rank's render already formatted instead of formatting it
        again; it must still work without the file (from the database). `name` is a path
        relative to the rank's folder and cannot leave it."""
        rank_dir = self.out_dir / f"rank_{int(rank)}"
        path = rank_dir / name
        try:
            if path.is_symlink() or not path.is_file():
                return None
            if not path.resolve().is_relative_to(rank_dir.resolve()):
                return None
        except OSError:
            return None
        return path

    def rank_database(self, rank: int) -> sqlite_utils.Database | None:
        """Multi-rank mode: rank `rank`'s own database (read-only; the caller closes it), found
        through the combined database's `rank_database` meta row, or None when it is gone or
        unreadable. The combined database keeps only the payload texts cross-rank questions
        read (tldb/combine.py); a landing needing another one reads it there."""
        from tldb import db as dbmod
        from tldb.errors import TldbError

        path = self.rank_databases.get(int(rank))
        if path is None:
            row = self.db.conn.execute(
                "SELECT value FROM meta WHERE rank = ? AND key = 'rank_database'", [int(rank)]
            ).fetchone()
            files = [
                f for _, name, f in self.db.conn.execute("PRAGMA database_list") if name == "main"
            ]
            if row is None or not files or not files[0]:
                return None
            path = Path(files[0]).parent / row[0]
        try:
            return dbmod.open_readonly(path)
        except (TldbError, OSError):
            return None

    def render(self, template: str, **values: Any) -> str:
        """Render a template of the module's folder (or a shared one) with autoescape on."""
        env = _environment(str(self.module_dir))
        return env.get_template(template).render(config=self.config, **values)


class Module:
    """Base class of report modules. Subclasses set the class attributes and `render`."""

    #: Short id, used in --modules and file names.
    id: ClassVar[str] = ""
    #: Human-readable name.
    name: ClassVar[str] = ""
    #: Tables and views the module reads.
    subscriptions: ClassVar[tuple[str, ...]] = ()
    #: Report modes in which the module runs.
    modes: ClassVar[frozenset[str]] = frozenset({DEFAULT_MODE})
    #: Late modules run after the others and see their merged directory entries (not one
    #: another's: late modules run side by side, like the others).
    late: ClassVar[bool] = False
    #: Rough relative render time on a big log. When modules render in parallel the costly
    #: ones start first, so that no worker is left with a long module at the end.
    cost: ClassVar[int] = 1
    #: Parts the module's files can be split into, to render on several cores at once. When
    #: above 1, render() may be called once per part with ctx.shard = (part, parts); each
    #: call must write only its part's files (e.g. those whose number % parts == part), and
    #: only part 0 should contribute index sections and directory entries.
    shards: ClassVar[int] = 1
    #: True when the module can make any one of its files alone, at about the cost of that
    #: file: `tldb serve LOG` then makes each file when it is asked for, from `file_keys` and
    #: `render_file`, instead of rendering the whole module. Such a module's `render` must
    #: return its files lazily (a generator, or lazy contents), because the server calls it
    #: for its index sections and directory entries without taking the files. A module whose
    #: pages depend on one another (each metrics page lists what came before it) leaves this
    #: False: the server renders it once, on first need, into a cache folder on disk.
    #: `file_keys` and `render_file` get an empty manifest and compile directory: a file
    #: made alone must not depend on the whole report.
    on_demand: ClassVar[bool] = False
    #: Paths of an on-demand module's files too long to make within a request (hundreds of
    #: megabytes of JSON made line by line): `tldb serve LOG` makes them once in the
    #: background after its cached render, and sends the finished file from then on.
    long_files: ClassVar[frozenset[str]] = frozenset()
    #: Set by the registry: the folder the module was found in.
    folder: Path = Path()

    def render(self, ctx: ModuleContext) -> ModuleOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def plan_extension(self) -> PlanExtension | None:
        """A fresh extension of the central output plan for one log, or None (the default).

        Most modules render rows the core planned. A module reproducing parsers that tlparse
        runs after its default ones (vLLM's) needs their files in tlparse's single numbering,
        which is decided while the log is loaded: its extension takes part in that plan. It is
        asked for once per loaded log, so it may keep state across the log's envelopes.
        Extensions come from the built-in modules and installed ones (entry points), not from
        `--module-path` folders, since `tldb load` knows no report options."""
        return None

    def file_keys(self, ctx: ModuleContext) -> Iterator[tuple[str, Any]]:
        """Every file `render` would write, as (path, key), without making any content; a
        later pair with the same path replaces an earlier one, as a later write would. The
        key is whatever `render_file` needs to make that one file (small: the server keeps
        one per file). This default suits a module with a few files of lazy contents: the
        key is the file's position in `render(ctx).files`."""
        for position, (path, _) in enumerate(self.render(ctx).files):
            yield path, position

    def render_file(self, ctx: ModuleContext, key: Any) -> Content:
        """The content of the file `file_keys` gave `key`: exactly what `render` writes there."""
        for position, (_, content) in enumerate(self.render(ctx).files):
            if position == key:
                return content
        raise KeyError(key)


class PlanExtension:
    """Outputs a module adds to the central plan, numbered by the core's one counter.

    The planner calls `outputs` for every accepted envelope having one of `keys`, in log order,
    after the outputs of tlparse's default parsers for that envelope (in default mode only).
    `replaces(parser, meta)` lets the extension take an envelope away from a default parser
    (tlparse's generic graph_dump parser skips the dumps vLLM's parsers handle). Names from the
    log are confined by the planner (`emit`), never here."""

    #: Envelope keys the extension looks at: other envelopes never reach it (the hot path).
    keys: ClassVar[frozenset[str]] = frozenset()

    def replaces(self, parser: str, meta: dict[str, Any]) -> bool:
        """Whether the default parser `parser` is to leave this envelope to the extension."""
        return False

    def outputs(self, env: Envelope, meta: dict[str, Any], emit: Emit) -> Iterator[Output]:
        """The envelope's extra outputs, made with `emit` (which takes their numbers)."""
        return iter(())
