"""Writing the report folder: every file goes through here, confined to the output folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tldb.errors import OutputExistsError, TldbError
from tldb.outlock import lock_folder, unlock
from tldb.paths import confined, safe_relpath


def prepare_output(
    out_dir: Path, overwrite: bool, keep: Path | Iterable[Path] | None = None
) -> Callable[[], None]:
    """Create the output folder; an existing one needs --overwrite and is then emptied.

    `keep` names paths inside the folder to preserve (a database being re-rendered, rank
    folders being reused). The old content is moved aside at once (renames) and deleted by a
    background process while the new report is written: deleting thousands of files is slow
    I/O. The folder is locked against other tldb runs (outlock.py) until the returned function
    is called: it waits for that deletion and releases the lock; call it before exiting.
    """
    if out_dir.exists() or out_dir.is_symlink():
        if not overwrite:
            raise OutputExistsError(
                f"Directory {out_dir} already exists; pass --overwrite to replace it or use -o OUTDIR"
            )
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise TldbError(f"{out_dir} exists and is not a folder; refusing to replace it")
        lock = lock_folder(out_dir)
        try:
            gone = _empty(out_dir, keep)
        except BaseException:
            unlock(lock)
            raise
        return lambda: _release(gone, lock)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_folder(out_dir)
    return lambda: unlock(lock)


def _release(gone: Callable[[], None], lock: int | None) -> None:
    try:
        gone()
    finally:
        unlock(lock)


def _empty(out_dir: Path, keep: Path | Iterable[Path] | None) -> Callable[[], None]:
    """Move out_dir's content aside, but what `keep` names; the function waiting for its
    deletion."""
    trash = out_dir / f".tldb-replaced-{os.getpid()}"
    kept = [keep] if isinstance(keep, Path) else list(keep or ())
    kept = [path.resolve() for path in kept]
    children = [
        child
        for child in out_dir.iterdir()
        # What is kept stays, and so does a folder holding it.
        if not any(path.is_relative_to(child.resolve()) for path in kept)
    ]
    if not children:
        return _nothing
    trash.mkdir()
    for child in children:
        os.rename(child, trash / child.name)
    return _remove_in_background(trash)


def _nothing() -> None:
    pass


def _remove_in_background(folder: Path) -> Callable[[], None]:
    """Delete folder with `rm -rf` in the background (a few MB, where a forked Python would
    hold as much memory as this process); return the function that waits for it. Without an
    `rm` (Windows), delete it here and now."""
    rm = shutil.which("rm")
    if rm is None:
        shutil.rmtree(folder, ignore_errors=True)
        return _nothing
    remover = subprocess.Popen(
        [rm, "-rf", "--", str(folder)], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return lambda: _finish_removal(remover.wait(), folder)


def _finish_removal(status: int, folder: Path) -> None:
    """After `rm`: whatever it could not delete, try once more here (and ignore failures)."""
    if status != 0:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class CopyFile:
    """File content to be copied from an existing file (the original log, for raw.log)."""

    source: Path


Content = str | bytes | CopyFile | Iterable[str | bytes]


class Site:
    """Writes files under one folder; a later write to the same path replaces the earlier.

    A report is tens of thousands of small files, so writing goes straight to `os.open` and
    `os.write` on string paths: pathlib and buffered file objects cost more than the write.
    """

    def __init__(self, root: Path, unlink_first: bool = False):
        self.root = root.resolve()
        #: Remove an existing file before writing it, rather than truncating it: it may be a
        #: hard link into another report (rankstaging.py), which must not change.
        self.unlink_first = unlink_first
        self._root = str(self.root)
        self._made: set[str] = {self._root}
        self.files = 0
        self.bytes = 0

    def path(self, relpath: str) -> Path:
        return confined(self.root, relpath)

    def write(self, relpath: str, content: Content) -> None:
        """Write a file; content is text, bytes, a `CopyFile`, or an iterable of str/bytes chunks."""
        target = os.path.join(self._root, safe_relpath(relpath))  # confined: see paths.confined
        parent = os.path.dirname(target)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        self.files += 1
        if self.unlink_first:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        if isinstance(content, CopyFile):
            shutil.copyfile(content.source, target)
            self.bytes += os.stat(target).st_size
            return
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            if isinstance(content, str | bytes):
                self.bytes += _write_all(fd, content)
            else:
                for data in gathered(content, _FLUSH_BYTES):
                    self.bytes += _write_all(fd, data)
        finally:
            os.close(fd)


def gathered(content: Iterable[str | bytes], size: int) -> Iterator[bytes]:
    """A streamed content's chunks, encoded and joined into pieces of `size` bytes or more
    (the last may be smaller): one write, or one send, per piece is worth its cost."""
    pending: list[bytes] = []
    total = 0
    for chunk in content:
        data = chunk.encode() if isinstance(chunk, str) else chunk
        pending.append(data)
        total += len(data)
        if total >= size:
            yield b"".join(pending)
            pending, total = [], 0
    if pending:
        yield b"".join(pending)


#: Chunks of a streamed file are gathered up to this size before a write.
_FLUSH_BYTES = 1 << 20


def _write_all(fd: int, content: str | bytes) -> int:
    """Write everything (os.write may write less than asked); return the byte count."""
    data = content.encode() if isinstance(content, str) else content
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)
