"""Progress on a terminal for long work; silent when stderr is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click


@contextlib.contextmanager
def _bar(
    total: int, label: str, threshold: int, show_pos: bool
) -> Iterator[Callable[[int], None] | None]:
    """A callback taking the amount done so far (capped at `total`), drawing a bar on a TTY;
    None when piped or when the job is smaller than `threshold` (a flash of a bar is noise)."""
    if not sys.stderr.isatty() or total < threshold:
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=show_pos) as bar:
        done = 0

        def update(position: int) -> None:
            nonlocal done
            step = min(position, total) - done
            if step > 0:
                bar.update(step)
                done += step

        yield update


def byte_progress(total: int, label: str) -> contextlib.AbstractContextManager:
    """Bytes read so far, for loads of 8 MiB or more."""
    return _bar(total, label, 8 << 20, show_pos=False)


def count_progress(expected: int, label: str) -> contextlib.AbstractContextManager:
    """A count done so far (e.g. files written), for jobs of 2,000 or more; counts beyond
    `expected` keep the bar full."""
    return _bar(expected, label, 2000, show_pos=True)


def rank_progress(total: int, label: str) -> contextlib.AbstractContextManager:
    """Ranks done so far, `label [###  ] 12/256` (the label names the stage), for two ranks
    or more."""
    return _bar(total, label, 2, show_pos=True)
