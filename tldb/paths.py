"""Turn names taken from a log into relative paths that stay inside the output folder.

Artifact, graph_dump and dump_file names and `has_payload` values are untrusted. tlparse uses
them verbatim (an absolute dump_file name makes it write outside its output folder); tldb keeps
ordinary names unchanged, so paths match tlparse's, and neutralises the rest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MAX_COMPONENT_BYTES = 240  # below the usual 255-byte file name limit, leaving room for suffixes


def safe_component(name: str) -> str:
    """One path component: no separators, no `.`/`..`, no NUL, not over-long."""
    cleaned = name.replace("/", "_").replace("\x00", "_").replace("\\", "_")
    if cleaned in ("", ".", ".."):
        cleaned = cleaned.replace(".", "_") or "_"
    encoded = cleaned.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_COMPONENT_BYTES:
        digest = hashlib.sha1(encoded, usedforsecurity=False).hexdigest()[:12]
        head = encoded[: MAX_COMPONENT_BYTES - 13].decode("utf-8", "ignore")
        cleaned = f"{head}~{digest}"
    return cleaned


def saved_payload_path(has_payload: str) -> str:
    """Where tlparse saves a payload no parser wrote as a file: payloads/{md5}.txt."""
    return f"payloads/{safe_component(has_payload)}.txt"


def safe_relpath(path: str) -> str:
    """A relative path: `/` splits components; empty, `.` and `..` parts are dropped."""
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return "/".join(safe_component(p) for p in parts) or "_"


def confined(root: Path, relpath: str) -> Path:
    """The path of relpath under root (an absolute, resolved folder).

    Confinement holds by construction: safe_relpath leaves no absolute part, no `..` and no
    empty component, and tldb creates every folder under root itself (no symlinks), so no
    per-file resolve() on disk is needed.
    """
    return root / safe_relpath(relpath)


def with_number(path: str, number: int) -> str:
    """`dir/name.ext` -> `dir/name_{number}.ext`; the stem ends at the last dot of the name."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    numbered = f"{stem}_{number}.{ext}" if dot and stem else f"{name}_{number}"
    return f"{folder}/{numbered}" if folder else numbered


def file_stem(path: str) -> str:
    """Rust's Path::file_stem: the name without its last extension (`.x` stays whole)."""
    name = path.rstrip("/").rpartition("/")[2]
    if name.startswith(".") and name.count(".") == 1:
        return name
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name
