"""Every built-in report module is exercised by the in-repo parity cases.

tests/test_parity.py compares tldb's report with tlparse's on tests/data/cases.json; a module
that writes nothing on any of those cases is compared on nothing. So, for every module of
tldb's registry and every report mode it runs in, some in-repo case must make it write a file
or an index section. A module (or a mode) added without a fixture that exercises it fails here.

"Writes something" is observed through the module API itself: the case is reported with
`tldb report` (which leaves its database), then each module renders over that database with
the context the core gives it, and its `ModuleOutput` is inspected.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conftest import data_cases, data_path, run_tldb

from tldb import db as dbmod
from tldb.cli import report as report_command
from tldb.directory import build_manifest, plan_directory
from tldb.module_api import (
    MULTI_RANK_MODE,
    DirectoryEntry,
    IndexContribution,
    Manifest,
    Module,
    ModuleContext,
    ModuleOutput,
    ReportConfig,
)
from tldb.registry import ModuleRegistry
from tldb.resources import modules_dir


def built_in_modules(registry: ModuleRegistry) -> list[Module]:
    """The modules tldb ships (modules/), as its registry finds them."""
    return [m for m in registry.modules.values() if m.folder.parent == modules_dir()]


#: Modules that follow a later tlparse than the parity reference (0.4.3), so no parity case
#: can exercise them: what they write is checked against their reference by their own tests.
LATER_THAN_PARITY = {
    ("vllm", "default"): "tlparse 0.4.8's vLLM summary; tests/test_vllm.py",
}


def wanted_pairs(modules: list[Module]) -> set[tuple[str, str]]:
    """(module id, mode) for every mode each module runs in, but LATER_THAN_PARITY's."""
    pairs = {(module.id, mode) for module in modules for mode in module.modes}
    return pairs - set(LATER_THAN_PARITY)


def config_of(flags: list[str]) -> tuple[ReportConfig, bool]:
    """The report options a command line gives (parsed by tldb's own CLI), and whether it is a
    multi-rank report."""
    params = report_command.make_context("report", ["IN", "-o", "OUT", *flags]).params
    config = ReportConfig(
        plain_text=params["plain_text"],
        custom_header_html=params["custom_header_html"],
        export_mode=params["export_mode"],
        inductor_provenance=params["inductor_provenance"],
        verbose=params["verbose"],
    )
    return config, params["all_ranks_html"]


def writes_something(output: ModuleOutput) -> bool:
    """Whether a module's output has a file or a non-empty index section."""
    return any(True for _ in output.files) or any(c.html.strip() for c in output.index_html)


def _merged(
    directory: dict[str, list[DirectoryEntry]], added: dict[str, list[DirectoryEntry]]
) -> dict[str, list[DirectoryEntry]]:
    """The compile directory late modules see: the plan's entries and every module's."""
    merged = {key: list(entries) for key, entries in directory.items()}
    for key, entries in added.items():
        merged.setdefault(key, []).extend(entries)
        merged[key].sort(key=lambda e: e.number)
    return merged


def modules_writing(
    registry: ModuleRegistry, database: Path, out_dir: Path, config: ReportConfig, mode: str
) -> set[str]:
    """Ids of the modules of `mode` that write something when rendering `database`.

    The context is the one the core builds (tldb/report.py, tldb/multirank.py): early modules
    see the planned compile directory, late ones the directory merged from the early ones.
    """
    db = dbmod.open_readonly(database)
    try:
        if mode == MULTI_RANK_MODE:
            ctx = ModuleContext(db, out_dir, config, Manifest(()), 0, Path())
            directory: dict[str, list[DirectoryEntry]] = {}
        else:
            (log_id,) = db.conn.execute("SELECT id FROM logs").fetchone()
            ctx = ModuleContext(db, out_dir, config, build_manifest(db, log_id), log_id, Path())
            directory = plan_directory(db, log_id, mode, config.plain_text)
        merged = directory
        writing = set()
        for module in registry.for_mode(mode):
            seen = merged if module.late else directory
            output = module.render(replace(ctx, module_dir=module.folder, directory=seen))
            merged = _merged(merged, output.directory_entries)
            if writes_something(output):
                writing.add(module.id)
        return writing
    finally:
        db.conn.close()


def covered_by(registry: ModuleRegistry, case: dict, work: Path) -> set[tuple[str, str]]:
    """(module id, mode) of every module that writes something on the case."""
    config, multi_rank = config_of(case["flags"])
    out = work / case["name"]
    result = run_tldb("report", str(data_path(case["input"])), "-o", str(out), "--overwrite",
                      "--no-browser", *case["flags"])  # fmt: skip
    assert result.returncode == case.get("exit", 0), result.stderr
    found = set()
    if multi_rank:
        ranks = sorted(out.glob("rank_*/trace.db"))
        assert ranks, f"{case['name']}: no rank databases"
        for rank_db in ranks:
            writing = modules_writing(registry, rank_db, rank_db.parent, config, config.mode)
            found |= {(module, config.mode) for module in writing}
        writing = modules_writing(registry, out / "ranks.db", out, config, MULTI_RANK_MODE)
        found |= {(module, MULTI_RANK_MODE) for module in writing}
    else:
        writing = modules_writing(registry, out / "trace.db", out, config, config.mode)
        found |= {(module, config.mode) for module in writing}
    return found


def new_options_first(cases: list[dict]) -> list[dict]:
    """The cases, the first of each distinct set of options first: the modes and options that
    modules depend on are reached early, so the search for coverage stops early."""
    seen: set[tuple[str, ...]] = set()
    first = []
    for case in cases:
        options = tuple(sorted(case["flags"]))
        if options not in seen:
            seen.add(options)
            first.append(case)
    return first + [case for case in cases if case not in first]


def uncovered(
    registry: ModuleRegistry, modules: list[Module], cases: list[dict], work: Path
) -> list[tuple[str, str]]:
    """(module id, mode) pairs of `modules` that none of `cases` makes write anything."""
    wanted = wanted_pairs(modules)
    covered: set[tuple[str, str]] = set()
    for case in new_options_first(cases):
        if wanted <= covered:
            break
        covered |= covered_by(registry, case, work)
    return sorted(wanted - covered)


def test_every_module_writes_something_on_some_in_repo_case(tmp_path):
    """Each (built-in module, mode it runs in) writes a file or an index section on at least
    one case of tests/data/cases.json, so the parity tests compare its output."""
    registry = ModuleRegistry.discover()
    modules = built_in_modules(registry)
    assert len(modules) >= 10  # the registry found the built-in modules
    assert uncovered(registry, modules, data_cases(), tmp_path) == []


EXTRA_MODULE = """
from tldb.module_api import Module, ModuleOutput


class Extra(Module):
    id = "{name}"
    name = "A module added for the test"

    def render(self, ctx):
        return ModuleOutput(files={files})


MODULE = Extra()
"""


def test_a_module_without_a_fixture_is_uncovered(tmp_path):
    """Of two modules added to the registry, the one that writes nothing on the cases is
    reported and the one that writes a file is not."""
    for name, files in (("silent", "()"), ("loud", "[('loud.txt', 'x')]")):
        folder = tmp_path / "extra" / name
        folder.mkdir(parents=True)
        (folder / "module.py").write_text(EXTRA_MODULE.format(name=name, files=files))
    registry = ModuleRegistry.discover([tmp_path / "extra"])
    added = [registry.modules["silent"], registry.modules["loud"]]
    cases = [next(c for c in data_cases() if "--all-ranks-html" not in c["flags"])]
    assert uncovered(registry, added, cases, tmp_path / "work") == [("silent", "default")]


def test_what_counts_as_writing_something():
    """A file or a non-blank index section counts; an empty output does not."""
    assert not writes_something(ModuleOutput())
    assert not writes_something(ModuleOutput(files=iter(())))
    assert writes_something(ModuleOutput(files=[("a.txt", "x")]))
    assert writes_something(ModuleOutput(index_html=[IndexContribution("triage", "<p>x</p>")]))
    assert not writes_something(ModuleOutput(index_html=[IndexContribution("triage", "\n")]))
