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
from collections.abc import Iterable
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

from tldb.errors import TldbError
from tldb.module_api import DirectoryEntry, Module, ModuleContext, ModuleOutput
from tldb.resources import modules_dir

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


class ModuleRegistry:
    """The modules available to a report, by id, in discovery order."""

    def __init__(self, modules: Iterable[Module]):
        self.modules: dict[str, Module] = {}
        for module in modules:
            self.modules[module.id] = module

    @classmethod
    def discover(cls, module_paths: Iterable[Path] = ()) -> ModuleRegistry:
        found = _scan(modules_dir())
        for root in module_paths:
            found.extend(_scan(Path(root)))
        found.extend(_from_entry_points())
        return cls(found)

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
        write,
        base_directory: dict[str, list[DirectoryEntry]],
    ) -> tuple[dict[str, list[DirectoryEntry]], list]:
        """Run modules in order, writing their files; return the merged directory and sections.

        `write(relpath, content)` is called for every file as modules produce it. Directory
        entries contributed by modules are merged into the central plan's, kept in number order.
        """
        directory = {key: list(entries) for key, entries in base_directory.items()}
        sections = []
        for module in modules:
            output: ModuleOutput = module.render(
                replace(ctx, module_dir=module.folder, directory=directory)
            )
            for relpath, content in output.files:
                write(relpath, content)
            for key, entries in output.directory_entries.items():
                merged = directory.setdefault(key, [])
                merged.extend(entries)
                merged.sort(key=lambda e: e.number)
            sections.extend((module.id, c) for c in output.index_html)
        return directory, sections
