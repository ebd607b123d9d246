"""Writing the report folder: every file goes through here, confined to the output folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tldb.errors import OutputExistsError, TldbError
from tldb.paths import confined


def prepare_output(out_dir: Path, overwrite: bool, keep: Path | None = None) -> None:
    """Create the output folder; an existing one needs --overwrite and is then emptied.

    `keep` names a file inside the folder to preserve (a database being re-rendered).
    """
    if out_dir.exists() or out_dir.is_symlink():
        if not overwrite:
            raise OutputExistsError(
                f"Directory {out_dir} already exists; pass --overwrite to replace it or use -o OUTDIR"
            )
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise TldbError(f"{out_dir} exists and is not a folder; refusing to replace it")
        for child in out_dir.iterdir():
            if keep is not None and child.resolve() == keep.resolve():
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class CopyFile:
    """File content to be copied from an existing file (the original log, for raw.log)."""

    source: Path


Content = str | bytes | CopyFile | Iterable[str | bytes]


class Site:
    """Writes files under one folder; a later write to the same path replaces the earlier."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self._made: set[Path] = {self.root}
        self.files = 0
        self.bytes = 0

    def path(self, relpath: str) -> Path:
        return confined(self.root, relpath)

    def write(self, relpath: str, content: Content) -> None:
        """Write a file; content is text, bytes, a `CopyFile`, or an iterable of str/bytes chunks."""
        target = self.path(relpath)
        parent = target.parent
        if parent not in self._made:
            parent.mkdir(parents=True, exist_ok=True)
            self._made.add(parent)
        self.files += 1
        if isinstance(content, CopyFile):
            shutil.copyfile(content.source, target)
            self.bytes += target.stat().st_size
            return
        if isinstance(content, str | bytes):
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
            self.bytes += len(data)
            return
        with target.open("wb") as out:
            for chunk in content:
                data = chunk.encode() if isinstance(chunk, str) else chunk
                out.write(data)
                self.bytes += len(data)
