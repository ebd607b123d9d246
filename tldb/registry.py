"""Finding report modules and running them.

Modules are found without editing core code, from three places, in this order: the built-in
`modules/` folder, folders given with `--module-path` (each sub-folder with a `module.py`
is a module), and installed packages that register a `tldb.modules` entry point. A later
module with the same id replaces an earlier one, so a user can override a built-in.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path

import sqlite_utils

from tldb.errors import TldbError
from tldb.module_api import (
    DirectoryEntry,
    IndexContribution,
    IndexPage,
    Module,
    ModuleContext,
    ModuleOutput,
    PlanExtension,
)
from tldb.parallel import SharedCounter, run_tasks_forked
from tldb.resources import modules_dir
from tldb.site import Site

ENTRY_POINT_GROUP = "tldb.modules"


def _load_folder(folder: Path) -> Module:
    """Import folder/module.py as `tldb_modules.<folder>.module` (so relative imports work)."""
    source = folder / "module.py"
    package = f"tldb_modules.{folder.name}"
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    if "tldb_modules" not in sys.modules:
        root = types.ModuleType("tldb_modules")
        root.__path__ = []
        sys.modules["tldb_modules"] = root
    holder = types.ModuleType(package)
    holder.__path__ = [str(folder)]
    sys.modules[package] = holder
    try:
        code = importlib.import_module(f"{package}.module")
    except Exception as exc:
        raise TldbError(f"module {source} failed to import: {exc}") from exc
    module = getattr(code, "MODULE", None)
    if not isinstance(module, Module):
        raise TldbError(f"{source} must define MODULE, an instance of tldb.module_api.Module")
    module.folder = folder
    return module


def _scan(root: Path) -> list[Module]:
    if not root.is_dir():
        raise TldbError(f"module path {root} is not a folder")
    return [_load_folder(sub) for sub in sorted(root.iterdir()) if (sub / "module.py").is_file()]


def _from_entry_points() -> list[Module]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        module = obj() if isinstance(obj, type) else obj
        if not isinstance(module, Module):
            raise TldbError(f"entry point {ep.name} does not give a tldb Module")
        if module.folder == Path():
            module.folder = Path(sys.modules[type(module).__module__].__file__ or ".").parent
        found.append(module)
    return found


#: The built-in and installed modules of the last discovery in this process (a report
#: discovers its modules before it loads, in a forked child that inherits them).
_INSTALLED: ModuleRegistry | None = None


class ModuleRegistry:
    """The modules available to a report, by id, in discovery order."""

    def __init__(self, modules: Iterable[Module]):
        self.modules: dict[str, Module] = {}
        for module in modules:
            self.modules[module.id] = module

    @classmethod
    def discover(cls, module_paths: Iterable[Path] = ()) -> ModuleRegistry:
        global _INSTALLED
        built_in, installed = _scan(modules_dir()), _from_entry_points()
        _INSTALLED = cls(built_in + installed)  # reused by plan_extensions (and forked loads)
        found = list(built_in)
        for root in module_paths:
            found.extend(_scan(Path(root)))
        found.extend(installed)
        return cls(found)

    @classmethod
    def installed(cls) -> ModuleRegistry:
        """The built-in and installed modules, as this process last discovered them (else
        discovered now). Importing every module folder again costs ~0.13 s, which `tldb
        serve LOG` would pay between the load and its first page."""
        if _INSTALLED is None:
            return cls.discover()
        return cls(_INSTALLED.modules.values())

    def for_mode(self, mode: str, only: Iterable[str] | None = None) -> list[Module]:
        """The modules that run in a mode (the default set, the export set...), maybe a subset."""
        chosen = [m for m in self.modules.values() if mode in m.modes]
        if only is not None:
            wanted = list(only)
            unknown = [w for w in wanted if w not in self.modules]
            if unknown:
                known = ", ".join(sorted(self.modules))
                raise TldbError(f"unknown module(s): {', '.join(unknown)} (known: {known})")
            chosen = [m for m in chosen if m.id in wanted]
        return sorted(chosen, key=lambda m: m.late)

    def render_all(
        self,
        modules: list[Module],
        ctx: ModuleContext,
        site: Site,
        base_directory: dict[str, list[DirectoryEntry]],
        jobs: int = 1,
        reopen: Callable[[], sqlite_utils.Database] | None = None,
        on_file: Callable[[int], None] | None = None,
    ) -> tuple[dict[str, list[DirectoryEntry]], list]:
        """Run modules, writing their files into site; return the merged directory and sections
        (each module's IndexContributions, then its IndexPage if it returned one).

        Modules that are not late only see the central plan's directory, so they are
        independent of one another: with jobs > 1 (and `reopen`, which opens another
        connection to the same database) they run in forked workers, heaviest first, modules
        with `shards` as that many tasks (each told its part in `ctx.shard`). Late modules
        then run the same way over the directory merged from the early modules' entries
        (each sees those, not another late module's: on the 406 MB log the two built-in ones
        took 0.5 s one after the other with the second core idle). Sections and entries are
        merged in module order whatever the scheduling. `on_file(count)` hears the number of
        files written so far, by all workers.
        """
        early = [m for m in modules if not m.late]
        late = [m for m in modules if m.late]
        workers = jobs if reopen is not None else 1
        written = SharedCounter(shared=workers > 1)
        directory = {key: list(entries) for key, entries in base_directory.items()}
        sections: list = []
        for group in (early, late):
            # The early modules see the plan's directory; the late ones everyone's before them.
            seen = base_directory if group is early else {k: list(v) for k, v in directory.items()}
            rendered = _render_side_by_side(
                group, ctx, seen, site, written, workers, reopen, on_file
            )
            for module_id, result in rendered:
                site.files += result.files
                site.bytes += result.bytes
                _merge(directory, result.directory_entries)
                sections.extend((module_id, c) for c in result.index_html)
        return directory, sections


def _render_side_by_side(
    modules: list[Module],
    ctx: ModuleContext,
    directory: dict[str, list[DirectoryEntry]],
    site: Site,
    written: SharedCounter,
    workers: int,
    reopen: Callable[[], sqlite_utils.Database] | None,
    on_file: Callable[[int], None] | None,
) -> list[tuple[str, _Rendered]]:
    """Render independent modules (all seeing `directory`), in forked workers when `workers`
    > 1, heaviest first, a module with `shards` as that many tasks; (module id, what it
    rendered) for each task, module then shard, whatever the scheduling."""
    tasks = [
        (index, shard, parts)
        for index, module in enumerate(modules)
        for parts in [module.shards if workers > 1 else 1]
        for shard in range(parts)
    ]

    def start(in_child: bool) -> Callable[[int], _Rendered]:
        context = replace(ctx, db=reopen()) if in_child and reopen is not None else ctx
        notify = None if in_child else on_file

        def run(task: int) -> _Rendered:
            index, shard, parts = tasks[task]
            files, size = site.files, site.bytes
            output = _render_module(
                modules[index],
                replace(context, shard=(shard, parts)),
                directory,
                site,
                written,
                notify,
            )
            if not in_child:  # counted in `site` already
                return _Rendered(output.directory_entries, _contributions(output), 0, 0)
            return _Rendered(
                output.directory_entries,
                _contributions(output),
                site.files - files,
                site.bytes - size,
            )

        return run

    progress = (lambda: on_file(written.value)) if on_file is not None else None
    costs = [modules[index].cost / parts for index, _, parts in tasks]
    rendered = run_tasks_forked(len(tasks), start, workers, progress, costs)
    return [
        (modules[index].id, result) for result, (index, _, _) in zip(rendered, tasks, strict=True)
    ]


@dataclass
class _Rendered:
    """What a module's run sends back from a worker (its files are already written)."""

    directory_entries: dict[str, list[DirectoryEntry]]
    index_html: list[IndexContribution | IndexPage]
    files: int
    bytes: int


def _contributions(output: ModuleOutput) -> list[IndexContribution | IndexPage]:
    """A module's index sections, followed by its IndexPage when it has one."""
    return [*output.index_html, *([output.index_page] if output.index_page else [])]


def plan_extensions() -> list[PlanExtension]:
    """Fresh plan extensions for one log, from the built-in and installed modules that have
    one (module order); modules are discovered once per process."""
    if _INSTALLED is None:
        ModuleRegistry.discover()
    assert _INSTALLED is not None
    made = (module.plan_extension() for module in _INSTALLED.modules.values())
    return [extension for extension in made if extension is not None]


def _render_module(
    module: Module,
    ctx: ModuleContext,
    directory: dict[str, list[DirectoryEntry]],
    site: Site,
    written: SharedCounter,
    notify: Callable[[int], None] | None,
) -> ModuleOutput:
    """Render one module and write its files (consuming `output.files`); count each file."""
    output: ModuleOutput = module.render(
        replace(ctx, module_dir=module.folder, directory=directory)
    )
    for relpath, content in output.files:
        site.write(relpath, content)
        total = written.add()
        if notify is not None:
            notify(total)
    return output


def _merge(
    directory: dict[str, list[DirectoryEntry]], entries: dict[str, list[DirectoryEntry]]
) -> None:
    for key, added in entries.items():
        merged = directory.setdefault(key, [])
        merged.extend(added)
        merged.sort(key=lambda e: e.number)
