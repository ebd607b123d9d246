"""Finding the rank logs of a TORCH_TRACE folder, for `tldb report DIR --all-ranks-html`.

tlparse's rule first: regular files named `dedicated_log_torch_trace_rank_<N>[_suffix].log`
(or `.log.gz`, which tlparse's later versions also take),
the rank being the text up to the first `_` after `rank_` read as a u32 (so `rank_0_6u3f.log`
is rank 0); everything else in the folder is ignored.

tldb's fallback, used only when no file name matches: logs renamed by a job scheduler (or
collected from several hosts) often lose that name but keep the rank in every envelope. Then
each regular file of the folder is scanned up to its first envelope with a `rank` key, and that
rank is the file's (what tlparse's own rank filter would settle on for the file). Files without
any ranked envelope are ignored. In both cases two files for one rank are an error, not a
silent overwrite.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from tldb.errors import InputError
from tldb.reader import GLOG, open_log

#: tlparse's name, and the same gzip-compressed (`.log.gz`, read as its decompressed text).
_NAME = re.compile(r"dedicated_log_torch_trace_rank_(.*)\.log(?:\.gz)?", re.DOTALL)
_U32 = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True)
class RankLog:
    rank: int
    path: Path


@dataclass(frozen=True)
class RankFolder:
    """The rank logs of a folder, by rank, and the order the folder lists them in.

    `listing` is the only trace of the file system's order tldb keeps: tlparse processes ranks
    in that order, which leaks its string table from rank to rank (see multirank.py).
    """

    logs: tuple[RankLog, ...]
    listing: tuple[int, ...]
    from_envelopes: bool


def rank_in_name(name: str) -> int | None:
    """tlparse's rank of a file name, or None when the name is not a rank log's."""
    found = _NAME.fullmatch(name)
    if not found:
        return None
    first = found.group(1).split("_")[0]
    if not _U32.fullmatch(first):
        return None
    rank = int(first)
    return rank if rank < 2**32 else None


def rank_in_envelopes(path: Path) -> int | None:
    """The rank of the first envelope of a log that carries one (None if none does)."""
    try:
        with open_log(path) as stream:
            for raw in _lines(stream):
                if b'"rank"' not in raw:
                    continue
                text = raw.decode(errors="replace").rstrip("\r\n")
                match = GLOG.search(text)
                if match is None:
                    continue
                try:
                    meta = orjson.loads(text[match.start("payload") :])
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(meta, dict) or "str" in meta:
                    continue
                rank = meta.get("rank")
                if isinstance(rank, int) and not isinstance(rank, bool) and 0 <= rank < 2**32:
                    return rank
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return None


def _lines(stream) -> Iterator[bytes]:
    """The lines of a binary stream (a gzip log's stream has no line iteration of its own)."""
    pending = b""
    while chunk := stream.read(1 << 20):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def _files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return [Path(e.path) for e in entries if Path(e.path).is_file()]


def _by_rank(found: list[tuple[int, Path]], folder: Path, from_envelopes: bool) -> RankFolder:
    claims: dict[int, list[Path]] = {}
    for rank, path in found:
        claims.setdefault(rank, []).append(path)
    clashes = {r: ps for r, ps in claims.items() if len(ps) > 1}
    if clashes:
        detail = "; ".join(
            f"rank {r}: {', '.join(sorted(p.name for p in ps))}"
            for r, ps in sorted(clashes.items())
        )
        raise InputError(f"Several logs for one rank in {folder} ({detail}); keep one per rank")
    logs = tuple(RankLog(rank, claims[rank][0]) for rank in sorted(claims))
    return RankFolder(logs, tuple(rank for rank, _ in found), from_envelopes)


def discover(folder: Path) -> RankFolder:
    """The rank logs of `folder` (tlparse's names, else the ranks inside the files)."""
    if not folder.is_dir():
        raise InputError(f"Input path {folder} must be a directory when using --all-ranks-html")
    files = _files(folder)
    named = [(rank, path) for path in files if (rank := rank_in_name(path.name)) is not None]
    if named:
        return _by_rank(named, folder, from_envelopes=False)
    ranked = [
        (rank, path)
        for path in files
        if not path.name.startswith(".") and (rank := rank_in_envelopes(path)) is not None
    ]
    if ranked:
        return _by_rank(ranked, folder, from_envelopes=True)
    raise InputError(
        f"No rank log files found in directory {folder} (looked for "
        "dedicated_log_torch_trace_rank_<N>.log files, then for logs whose envelopes carry a rank)"
    )


def parse_rank_list(text: str) -> set[int]:
    """Ranks written as `0-63,70,72-75` (what --only-ranks takes; a SLURM array task can pass
    its share), or an InputError naming the part that is not a rank or a range."""
    ranks: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise InputError(f"--only-ranks: {part!r} is not a rank or a range like 0-63")
        first, last = int(low), int(high or low)
        if last < first:
            raise InputError(f"--only-ranks: {part!r} is an empty range")
        ranks.update(range(first, last + 1))
    return ranks
