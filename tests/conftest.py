"""Shared fixtures: the corpus beside the project, the reference tlparse, and tiny logs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
PARITY_TOOL = SHARED / "tools" / "parity.py"


def pytest_report_header(config):
    return [
        f"sqlite: {sqlite3.sqlite_version}",
        f"corpus: {CORPUS if CORPUS.is_dir() else 'absent'}",
    ]


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
    """The shared parity tool as a module (it knows how to install the reference tlparse)."""
    if not PARITY_TOOL.is_file():
        pytest.skip(f"parity tool not found at {PARITY_TOOL}")
    spec = importlib.util.spec_from_file_location("parity_tool", PARITY_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def oracle(parity_tool) -> list[str]:
    """Command of the reference tlparse 0.4.3 (installed into a private cache on first use)."""
    try:
        return parity_tool.oracle_command()
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"reference tlparse could not be installed: {exc}")


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
