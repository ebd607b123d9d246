"""Reading a log with two processes: the line reader in a forked child, the rest here.

Loading is CPU-bound Python. The reader's line-by-line state machine (glog prefixes, envelope
JSON and tlparse's type checks, payload boundaries, the rank filter) must run in log order,
but much of the work per envelope does not depend on it: un-indenting and md5-checking the
payload, decoding it, naming the kind and compile id. So the child runs `Reader(defer=True)`
and sends compact records through a pipe, payloads only as file offsets; this process reads
each payload straight from the file (`os.pread`), finishes the envelopes with a `Completion`
and goes on with planning and SQLite writes while the child reads ahead. Records arrive in
log order, so the loader sees exactly what the in-process Reader would give it.

Memory stays flat: the child blocks when the pipe is full, and a batch is a few hundred
records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import operator
import os
import pickle
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from tldb.errors import InputError, TldbError
from tldb.logfile import is_gzip
from tldb.parallel import can_fork
from tldb.reader import (
    Completion,
    Envelope,
    LogShape,
    RawLine,
    Reader,
    Record,
    open_log,
    parse_metadata,
)
from tldb.stats import Stats

#: Logs smaller than this are read in one process (a fork costs more than it saves).
MIN_PIPELINE_BYTES = 16 << 20
#: Records per message from the reader process.
BATCH = 500

#: Envelope fields sent as a tuple, in this order; `meta` is parsed again from `metadata` on
#: arrival, which costs less than pickling the parsed object.
_SENT = tuple(f.name for f in dataclasses.fields(Envelope) if f.name != "meta")
_META_AT = [f.name for f in dataclasses.fields(Envelope)].index("meta")
_METADATA_AT = _SENT.index("metadata")
_pack_envelope = operator.attrgetter(*_SENT)
_RAW_FIELDS = tuple(f.name for f in dataclasses.fields(RawLine))
_pack_raw = operator.attrgetter(*_RAW_FIELDS)


def _unpack(item: tuple) -> Record:
    if len(item) == len(_RAW_FIELDS):
        return RawLine(*item)
    fields = list(item)
    fields.insert(_META_AT, parse_metadata(fields[_METADATA_AT])[0])
    return Envelope(*fields)


def _produce(path: Path, pipe: Connection, other_end: Connection) -> None:
    """The child: read the log, sending batches of packed records, then the reader's state."""
    # The parent's end, inherited by the fork: with it closed here, a parent that dies makes
    # the next send fail (broken pipe) instead of blocking this process forever.
    other_end.close()
    try:
        position = 0

        def note(done: int) -> None:
            nonlocal position
            position = done

        with open_log(path) as stream:
            reader = Reader(stream, note, defer=True)
            batch: list[tuple] = []
            for record in reader:
                batch.append(
                    _pack_envelope(record) if type(record) is Envelope else _pack_raw(record)
                )
                if len(batch) >= BATCH:
                    pipe.send_bytes(pickle.dumps(("records", batch, position), protocol=5))
                    batch = []
            pipe.send_bytes(pickle.dumps(("records", batch, position), protocol=5))
            end = (reader.stats, reader.shape, reader.expected_rank, reader.strings)
            pipe.send_bytes(pickle.dumps(("end", end), protocol=5))
    except KeyboardInterrupt:
        os._exit(130)
    except BaseException as exc:  # every failure goes back to the loader, if it is there
        with contextlib.suppress(OSError):
            pipe.send_bytes(pickle.dumps(("error", exc)))
    finally:
        pipe.close()


class PipelinedReader:
    """Records of one log, like `Reader`, read by a child process; same attributes at the end."""

    def __init__(self, path: Path, progress: Callable[[int], None] | None = None):
        self._path = path
        self._progress = progress
        self.stats = Stats()
        self.shape = LogShape()
        self.expected_rank: int | None = None
        self.strings: dict[int, str] = {}

    def __iter__(self) -> Iterator[Record]:
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_produce, args=(self._path, send, receive), daemon=True)
        fd = os.open(self._path, os.O_RDONLY)
        completion = Completion(self.stats, span_reader(fd, self._path))
        finished = False
        try:
            child.start()
            send.close()
            while True:
                try:
                    message = pickle.loads(receive.recv_bytes())
                except EOFError:
                    child.join()
                    raise TldbError(
                        f"the reader process died (exit code {child.exitcode})"
                    ) from None
                if message[0] == "records":
                    for item in message[1]:
                        record = _unpack(item)
                        yield completion(record) if type(record) is Envelope else record
                    if self._progress is not None:
                        self._progress(message[2])
                elif message[0] == "end":
                    stats, self.shape, self.expected_rank, self.strings = message[1]
                    self.stats.add(stats)
                    finished = True
                    return
                else:
                    raise message[1]
        finally:
            os.close(fd)
            if not finished and child.is_alive():
                child.terminate()
            child.join()
            receive.close()


def span_reader(fd: int, path: Path) -> Callable[[int, int], bytes]:
    """read_span for a Completion: `length` bytes of the file at `offset`, or a clear error if
    the file was cut short after the reader passed that point."""

    def read_span(offset: int, length: int) -> bytes:
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise InputError(
                f"{path} changed while it was read (it ends before byte {offset + length})"
            )
        return data

    return read_span


def open_reader(
    path: Path, progress: Callable[[int], None] | None = None, pipelined: bool = True
) -> tuple[Reader | PipelinedReader, Callable[[], None]]:
    """A reader for a log file and the function that closes what it opened: pipelined for big
    files when fork is available (and `pipelined`), in this process otherwise. A gzip log is
    always read here: its payloads cannot be re-read by file offset."""
    if pipelined and can_fork() and not is_gzip(path) and path.stat().st_size >= MIN_PIPELINE_BYTES:
        return PipelinedReader(path, progress), lambda: None
    stream = open_log(path)
    return Reader(stream, progress), stream.close
