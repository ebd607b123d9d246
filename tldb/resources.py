"""Where the shipped data folders live: the checkout's top level, or inside the wheel.

`modules/`, `sql/` and `datasette_metadata.yml` are top-level folders of the repository. The
wheel carries them under `tldb/_data/` (hatch force-include); a checkout or editable install
reads them in place.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    bundled = _PACKAGE / "_data"
    if (bundled / "sql").is_dir():
        return bundled
    return _PACKAGE.parent


def modules_dir() -> Path:
    return data_root() / "modules"


@cache
def sql_file(name: str) -> str:
    """The text of sql/NAME, read once per process (combine reads its payload filter once per
    rank database, and the files do not change while tldb runs)."""
    return (data_root() / "sql" / name).read_text(encoding="utf-8")


def metadata_file() -> Path:
    return data_root() / "datasette_metadata.yml"


def templates_dir() -> Path:
    return _PACKAGE / "templates"
