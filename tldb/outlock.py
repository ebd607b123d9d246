"""One writer per output folder: an exclusive flock on the folder itself while a report runs.

Two `tldb report` runs into the same folder would otherwise interleave their files (and the
second's --overwrite would move the first's half-written pages away). The lock is taken on the
folder's own directory handle, not on a lock file: a file in the folder would be one more file
in a report that must match tlparse's file for file, and a file beside it would be litter in
the user's folder. The lock goes away with the process however it ends (even kill -9), and
the rank workers a run forks hold it too, so a rerun cannot start while orphans still write.
File systems without flock (some network mounts) run unlocked rather than not at all.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from tldb.errors import TldbError


class OutputBusyError(TldbError):
    """Another tldb run is writing the output folder."""


def lock_folder(folder: Path) -> int | None:
    """Hold an exclusive lock on folder (which exists); the descriptor to release, or None
    where the file system has no locks. Raises OutputBusyError if another run holds it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise OutputBusyError(
                f"{folder} is busy: another tldb run is writing to it; wait for it to finish"
            ) from None
        return None  # ENOLCK, EINVAL...: no locking on this file system
    return fd


def unlock(fd: int | None) -> None:
    """Release a lock_folder lock (closing the descriptor releases it)."""
    if fd is not None:
        os.close(fd)
