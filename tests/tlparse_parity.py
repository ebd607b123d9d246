"""The reference tlparse 0.4.3 and the comparison of its output tree with tldb's.

This is the repository's own parity harness, so a clone with nothing beside it can prove its
compatibility: the reference is the `tlparse==0.4.3` wheel from PyPI (a maturin wheel that
ships the Rust binary), installed once into a private virtual environment in the user cache.

Comparison rules (the compatibility policy of the README):
- every file tlparse writes exists at the same relative path in tldb's tree;
- data files (everything but .html) are byte-identical, or equal as JSON values for .json;
- pages are compared by the tests with `html_lines` and `page_links` (see test_parity.py).
"""

from __future__ import annotations

import html.parser
import json
import os
import subprocess
import sys
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
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        if tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)

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
    return _parse(path).links


@dataclass
class TreeComparison:
    """What differs between tlparse's tree (ref) and tldb's (got)."""

    missing: list[str] = field(default_factory=list)  # in ref, not in got
    differ: list[str] = field(default_factory=list)  # data files whose content differs
    extra: list[str] = field(default_factory=list)  # in got only (tldb's additions)
    pages: list[str] = field(default_factory=list)  # .html files present in both


def _same_data(ref: Path, got: Path) -> bool:
    a, b = ref.read_bytes(), got.read_bytes()
    if a == b:
        return True
    if ref.suffix != ".json":
        return False
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return False


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def compare_trees(ref: Path, got: Path) -> TreeComparison:
    """Compare two report folders file by file (pages are only listed, see html_lines)."""
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
