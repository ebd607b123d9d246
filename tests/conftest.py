"""Shared fixtures: the in-repo fixture corpus (tests/data), the reference tlparse, tiny logs,
and the extended suite over ../shared/corpus (run where it exists, deselected elsewhere)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import tlparse_parity

ROOT = Path(__file__).resolve().parent.parent
#: The repository's own fixture corpus: logs from real torch 2.13 CPU runs and hand-written logs.
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"
#: The extended corpus beside the project (not part of a clone): only `extended` tests read it.
CORPUS = SHARED / "corpus"


def pytest_report_header(config):
    extended = CORPUS if CORPUS.is_dir() else "absent (extended tests deselected)"
    return [f"sqlite: {sqlite3.sqlite_version}", f"extended corpus: {extended}"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "extended: reads ../shared/corpus; deselected where it is absent"
    )


def _is_extended(item: pytest.Item) -> bool:
    return item.get_closest_marker("extended") is not None or "corpus" in getattr(
        item, "fixturenames", ()
    )


def pytest_collection_modifyitems(config, items):
    """Without ../shared/corpus, the extended suite is deselected (not skipped): a clone's run
    shows only tests that ran, and the header says the extended corpus is absent."""
    if CORPUS.is_dir():
        return
    extended = [item for item in items if _is_extended(item)]
    if extended:
        config.hook.pytest_deselected(items=extended)
        items[:] = [item for item in items if not _is_extended(item)]


def _unpacked_root() -> Path:
    root = Path(tempfile.gettempdir()) / f"tldb-test-data-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _gunzip(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.part")
    with gzip.open(source, "rb") as packed, open(partial, "wb") as plain:
        shutil.copyfileobj(packed, plain)
    os.replace(partial, target)


def data_path(relative: str) -> Path:
    """A file or folder of tests/data as plain logs: `.gz` files are decompressed (once, into
    a cache in the temp folder) because tlparse 0.4.3 reads only plain text. `relative` names
    the plain file (`x.log` finds `x.log.gz`) or a folder (its `.gz` files are unpacked)."""
    source = DATA / relative
    if source.is_file():
        return source
    packed = DATA / (relative + ".gz")
    if packed.is_file():
        target = _unpacked_root() / relative
        _gunzip(packed, target)
        return target
    if source.is_dir():
        if not any(p.suffix == ".gz" for p in source.iterdir()):
            return source
        target = _unpacked_root() / relative
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(source.iterdir()):
            if entry.suffix == ".gz":
                _gunzip(entry, target / entry.name[:-3])
            elif entry.is_file():
                shutil.copyfile(entry, target / entry.name)
        return target
    raise FileNotFoundError(f"no fixture {relative} under {DATA}")


def data_logs() -> list[str]:
    """Every log of tests/data, by the name data_path takes (`x.log` for `x.log.gz`), so tests
    that hold for any log run on all of them, including logs added later."""
    names = set()
    for path in DATA.rglob("*"):
        relative = path.relative_to(DATA).as_posix()
        if path.is_file() and relative.endswith((".log", ".log.gz")):
            names.add(relative.removesuffix(".gz"))
    return sorted(names)


def data_cases() -> list[dict]:
    """The in-repo parity cases (tests/data/cases.json): name, input, flags."""
    return json.loads((DATA / "cases.json").read_text(encoding="utf-8"))


def corpus_logs() -> list[Path]:
    """Every log file of the corpus (skipping the case list)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in (".log", ".txt"))


def log_id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS} (it lives in ../shared beside the project)")
    return CORPUS


@pytest.fixture(scope="session")
def parity_tool():
    """The repository's parity harness (tests/tlparse_parity.py) with the older call shapes:
    `compare(ref, got)` as a dict and `html_lines(page)`."""

    def compare(ref: Path, got: Path) -> dict:
        return vars(tlparse_parity.compare_trees(ref, got))

    return SimpleNamespace(compare=compare, html_lines=tlparse_parity.html_lines)


@pytest.fixture(scope="session")
def oracle() -> list[str]:
    """Command of the reference tlparse 0.4.3, installed from PyPI into the user cache on first
    use. A failed install fails the tests that need it: parity is the project's promise."""
    return tlparse_parity.oracle_command()


def run_tldb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tldb", *args], capture_output=True, text=True, cwd=cwd
    )


class LogWriter:
    """Builds small TORCH_TRACE logs in tests: envelopes with correct payload md5s."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.source_line = 100

    def add(self, meta: dict, payload: str | None = None, bad_md5: bool = False) -> LogWriter:
        meta = dict(meta)
        if payload is not None:
            digest = hashlib.md5(payload.encode()).hexdigest()
            meta["has_payload"] = "0" * 32 if bad_md5 else digest
        self.source_line += 1
        self.lines.append(
            f"V0516 11:47:27.901000 1234 torch/_dynamo/x.py:{self.source_line}] " + json.dumps(meta)
        )
        if payload is not None:
            self.lines.extend("\t" + line for line in payload.split("\n"))
        return self

    def raw(self, line: str) -> LogWriter:
        self.lines.append(line)
        return self

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")
        return path


@pytest.fixture
def log_writer() -> LogWriter:
    return LogWriter()
