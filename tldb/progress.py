"""Progress on a terminal for long work; silent when stderr is not a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click


@contextlib.contextmanager
def byte_progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A callback taking bytes done so far, drawing a bar on a TTY; None when piped."""
    if not sys.stderr.isatty() or total < (8 << 20):
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=False) as bar:
        done = 0

        def update(position: int) -> None:
            nonlocal done
            bar.update(position - done)
            done = position

        yield update


@contextlib.contextmanager
def count_progress(expected: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A callback taking the count done so far (e.g. files written); None when piped.

    Only large jobs get a bar (a flash of one on a small report is noise); counts beyond
    `expected` keep the bar full.
    """
    if not sys.stderr.isatty() or expected < 2000:
        yield None
        return
    with click.progressbar(length=expected, label=label, file=sys.stderr, show_pos=True) as bar:
        done = 0

        def update(count: int) -> None:
            nonlocal done
            step = min(count, expected) - done
            if step > 0:
                bar.update(step)
                done += step

        yield update
