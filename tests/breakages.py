"""Break tldb on purpose and check that the tests notice.

A test that cannot fail proves nothing. This script copies the repository to a scratch
folder (without .venv and .git), checks that the tests of the copy pass and that they run the
copy's tldb, then applies each breakage of BREAKAGES in turn (a small textual patch that must
apply exactly once), runs the test files that should catch it and restores the files:

    python tests/breakages.py                 # the working tree as it is
    python tests/breakages.py --head          # the last commit (git archive HEAD)
    python tests/breakages.py --only md5_check_off
    python tests/breakages.py --every         # no -x: every test a breakage fails

Output: one line per breakage with its name, the test files run and FAILED-as-expected (with
the failing test: the first, or all with --every) or STILL-GREEN. The exit status is 1 when a breakage left the tests
green, or when the unbroken copy is not green to begin with, 0 otherwise.

The copy sits in the temp folder, away from ../shared/corpus, so the extended suite is
deselected there: the in-repo tests alone must catch every breakage. Not collected by pytest
(no test_ prefix).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Never copied: environments, caches and version control.
SKIPPED = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}


@dataclass(frozen=True)
class Patch:
    """Replace `old` by `new` in `path` (relative to the repository); `old` must occur once."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Breakage:
    name: str
    why: str
    patches: tuple[Patch, ...]
    #: The test files that must catch it, run in this order with -x.
    tests: tuple[str, ...]


BREAKAGES = (
    Breakage(
        "index_links_wrong_folder",
        "every build-product link of index.html points into a folder that does not exist",
        (
            Patch(
                "modules/compile_directory/module.py",
                """f'<li><a href="{autoescape_text(safe_href(entry.url))}">'""",
                """f'<li><a href="broken/{autoescape_text(safe_href(entry.url))}">'""",
            ),
        ),
        ("tests/test_parity.py", "tests/test_escaping.py", "tests/test_multi_rank.py"),
    ),
    Breakage(
        "site_write_unconfined",
        "Site.write joins the path as given, and payloads/{has_payload}.txt takes the log's "
        "has_payload raw: a `..` in a log climbs out of the output folder",
        (
            Patch(
                "tldb/site.py",
                "target = os.path.join(self._root, safe_relpath(relpath))",
                "target = os.path.join(self._root, relpath)",
            ),
            Patch(
                "tldb/paths.py",
                'return f"payloads/{safe_component(has_payload)}.txt"',
                'return f"payloads/{has_payload}.txt"',
            ),
        ),
        ("tests/test_robustness.py",),
    ),
    Breakage(
        "guard_count_extra_digit",
        "every compilation metrics page shows its Guard Count with a 7 appended",
        (
            Patch(
                "modules/compilation_metrics/compilation_metrics.html",
                "<p>Guard Count: {{ m.guard_count|num }}</p>",
                "<p>Guard Count: {{ m.guard_count|num }}7</p>",
            ),
        ),
        ("tests/test_compilation_metrics.py",),
    ),
    Breakage(
        "md5_check_off",
        "any payload md5 is accepted (fail_payload_md5 never counted)",
        (
            Patch(
                "tldb/reader.py",
                "    if digest != envelope.has_payload:\n",
                "    if False and digest != envelope.has_payload:\n",
            ),
        ),
        ("tests/test_robustness.py",),
    ),
    Breakage(
        "confinement_off",
        "safe_relpath returns names from the log unchanged (absolute paths, `..`)",
        (
            Patch(
                "tldb/paths.py",
                '    parts = [p for p in path.split("/") if p not in ("", ".", "..")]\n',
                '    return path\n    parts = [p for p in path.split("/") if p not in ("", ".", "..")]\n',
            ),
        ),
        ("tests/test_robustness.py",),
    ),
    Breakage(
        "load_in_place",
        "the loader builds the database at its final name instead of a temporary file renamed "
        "into place at the end",
        (
            Patch(
                "tldb/db.py",
                'tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")',
                "tmp = target",
            ),
        ),
        ("tests/test_loader.py",),
    ),
    Breakage(
        "worker_failure_swallowed",
        "an error sent back by a parallel worker is ignored by the caller",
        (
            Patch(
                "tldb/parallel.py",
                "        failed = [f.exception() for f in futures if f.done() and f.exception() is not None]\n",
                "        failed = []\n",
            ),
            Patch(
                "tldb/parallel.py",
                "            results[index] = future.result()\n",
                "            results[index] = None if future.exception() else future.result()\n",
            ),
        ),
        ("tests/test_parallel.py",),
    ),
)


def repository_files(head: bool) -> list[str] | None:
    """The files to copy, relative to ROOT: git's tracked and untracked-but-not-ignored files
    of the working tree, or None to copy the folder as it is (no git)."""
    if head or not (ROOT / ".git").exists():
        return None
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (ROOT / name).is_file()]


def copy_repository(target: Path, head: bool) -> None:
    """The repository at target: the last commit (head), git's files of the working tree, or
    the whole folder without SKIPPED."""
    if head:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        target.mkdir(parents=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return
    files = repository_files(head)
    if files is None:
        shutil.copytree(ROOT, target, ignore=lambda _, names: [n for n in names if n in SKIPPED])
        return
    for name in files:
        if SKIPPED.intersection(Path(name).parts):
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)


def environment(scratch: Path) -> dict[str, str]:
    """The environment of every command run in the copy: its folder first on the path, so
    `import tldb` and `python -m tldb` (the tests' subprocesses) load the copy's tldb."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(scratch), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_tldb_is_the_copy(scratch: Path) -> None:
    """`python -m tldb` must run the copy's tldb, from the copy's folder and from elsewhere
    (tests run tldb in other working folders), its modules and SQL included: the editable
    install of the original repository must not win. Proved with a canary: the copy's
    version is changed for a moment and `python -m tldb --version` must print it."""
    init = scratch / "tldb" / "__init__.py"
    original = init.read_text(encoding="utf-8")
    version = re.search(r'^__version__ = "([^"]+)"$', original, re.MULTILINE)
    if version is None:
        raise SystemExit(f"no __version__ line in {init}")
    canary = f"{version.group(1)}+breakages.copy"
    init.write_text(original.replace(version.group(0), f'__version__ = "{canary}"'), "utf-8")
    probe = "import tldb.resources as r; print(r.modules_dir()); print(r.__file__)"
    try:
        for cwd in (scratch, Path(tempfile.gettempdir())):
            shown = subprocess.run(
                [sys.executable, "-m", "tldb", "--version"],
                cwd=cwd,
                env=environment(scratch),
                capture_output=True,
                text=True,
            )
            if canary not in shown.stdout:
                raise SystemExit(
                    f"python -m tldb in {cwd} does not run the copy's tldb: "
                    f"{shown.stdout.strip()} {shown.stderr.strip()}"
                )
            paths = subprocess.run(
                [sys.executable, "-c", probe],
                cwd=cwd,
                env=environment(scratch),
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            for path in paths:
                if not Path(path).resolve().is_relative_to(scratch.resolve()):
                    raise SystemExit(f"the copy's tldb reads files of another tree: {path}")
    finally:
        init.write_text(original, encoding="utf-8")


def run_tests(scratch: Path, files: tuple[str, ...], stop_first: bool = True) -> tuple[int, str]:
    """pytest on files in the copy: (exit status, the failing tests or pytest's summary)."""
    command = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider"]
    command += (["-x"] if stop_first else []) + list(files)
    result = subprocess.run(
        command, cwd=scratch, env=environment(scratch), capture_output=True, text=True
    )
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
    summary = result.stdout.strip().splitlines()[-1:] or result.stderr.strip().splitlines()[-1:]
    return result.returncode, ", ".join(failed) if failed else " ".join(summary)


def apply(scratch: Path, breakage: Breakage) -> dict[Path, str]:
    """Apply the breakage's patches; return the original texts of the files it changed."""
    originals: dict[Path, str] = {}
    for patch in breakage.patches:
        path = scratch / patch.path
        text = path.read_text(encoding="utf-8")
        originals.setdefault(path, text)
        count = text.count(patch.old)
        if count != 1:
            restore(originals)
            raise SystemExit(
                f"{breakage.name}: the patch of {patch.path} applies {count} times, not once "
                f"(the code changed? update BREAKAGES):\n{patch.old}"
            )
        path.write_text(text.replace(patch.old, patch.new), encoding="utf-8")
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", action="store_true", help="copy the last commit, not the tree")
    parser.add_argument("--only", action="append", default=[], help="run only this breakage")
    parser.add_argument("--keep", action="store_true", help="leave the scratch copy behind")
    parser.add_argument(
        "--every", action="store_true", help="run the files whole (no -x): list every failure"
    )
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKAGES if not args.only or b.name in args.only]
    unknown = set(args.only) - {b.name for b in BREAKAGES}
    if unknown:
        parser.error(f"unknown breakage(s): {', '.join(sorted(unknown))}")
    base = Path(tempfile.mkdtemp(prefix="tldb-breakages-"))
    scratch = base / "repo"
    try:
        copy_repository(scratch, args.head)
        check_tldb_is_the_copy(scratch)
        print(f"copy: {scratch} (tldb imported from the copy)", flush=True)
        files = tuple(dict.fromkeys(f for b in chosen for f in b.tests))
        status, summary = run_tests(scratch, files, stop_first=False)
        if status != 0:
            print(f"baseline: the unbroken copy is not green ({summary})")
            return 1
        print(f"baseline: green ({summary})", flush=True)
        green = []
        for breakage in chosen:
            originals = apply(scratch, breakage)
            try:
                status, summary = run_tests(scratch, breakage.tests, stop_first=not args.every)
            finally:
                restore(originals)
            if status == 1:
                verdict = f"FAILED-as-expected ({summary})"
            elif status == 0:
                verdict = "STILL-GREEN"
                green.append(breakage.name)
            else:  # interrupted, internal error, usage error, nothing collected
                verdict = f"STILL-GREEN (pytest exit {status}, no test failed: {summary})"
                green.append(breakage.name)
            print(f"{breakage.name}: {' '.join(breakage.tests)}: {verdict}", flush=True)
        return 1 if green else 0
    finally:
        if args.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
