"""Opening a log file for reading: plain, or gzip-compressed.

A log whose name ends in `.gz` (as tlparse's later versions accept, and as people keep traces
of long jobs) is read as its decompressed text, streamed: the reader asks for a few MB at a
time and gzip inflates just that much, so memory stays flat however large the log. What the
reader, the database and the report see is the decompressed text, byte for byte the same as
for the log gunzipped by hand. A damaged archive is an InputError (one line), not a traceback.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

from tldb.errors import InputError

#: Read buffer of the file underneath (the reader is line-bound; large reads are cheaper).
BUFFER = 1 << 20


def is_gzip(path: Path) -> bool:
    """Whether a log is read through gzip: tlparse's rule, the name ends in `.gz`."""
    return path.name.endswith(".gz")


class GzipLog:
    """A gzip log as a binary stream of its decompressed bytes; read errors become InputError."""

    def __init__(self, path: Path):
        self._path = path
        self._raw = path.open("rb", buffering=BUFFER)
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="rb")

    def read(self, size: int = -1) -> bytes:
        try:
            return self._gzip.read(size)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InputError(f"{self._path} is not a readable gzip file: {exc}") from None

    def close(self) -> None:
        self._gzip.close()
        self._raw.close()

    def __enter__(self) -> GzipLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_log(path: Path) -> BinaryIO:
    """Open a log for streaming its (decompressed) bytes."""
    if is_gzip(path):
        return GzipLog(path)  # type: ignore[return-value]  # read/close/context: all it needs
    return path.open("rb", buffering=BUFFER)


def text_size(path: Path) -> int:
    """The size of a log's text, for progress: the file's size, or for gzip the size its
    trailer records (modulo 4 GiB, as gzip keeps it; an estimate for progress only)."""
    size = path.stat().st_size
    if not is_gzip(path) or size < 18:
        return size
    with path.open("rb") as stream:
        stream.seek(-4, 2)
        recorded = int.from_bytes(stream.read(4), "little")
    return max(recorded, size)
