"""The report of a database made page by page, when each page is asked for (`tldb serve LOG`).

A static report of a big log is tens of thousands of files and more than a gigabyte, of which a
reader opens a handful. Here nothing is written but the database: each request is answered
with exactly the bytes `tldb report` would have written at that path.

- Modules with `on_demand` (see tldb/module_api.py) list their files once (`file_keys`, no
  content) and make one file per request (`render_file`); long files (raw.log, raw.jsonl,
  chromium_events.json) are streamed as they are made, never held whole.
- The other modules (pages that depend on one another, index.html, compile_directory.json)
  are rendered once by the ordinary report code (`render_report`, workers and all) into a
  cache folder, in a separate process started with the server, so the server's memory stays
  that of one page. A request for one of their files waits for that process if it is still
  running; the on-demand modules take part in it only with their index sections and
  directory entries (their files are not made there).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import mimetypes
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tldb import db as dbmod
from tldb.errors import TldbError
from tldb.module_api import Manifest, Module, ModuleContext, ModuleOutput, ReportConfig
from tldb.parallel import can_fork, cpu_count
from tldb.paths import safe_relpath
from tldb.registry import ModuleRegistry
from tldb.site import Content, CopyFile, gathered


def content_type(path: str) -> str:
    """The Content-Type of a report file, as the static mount sends it."""
    kind = mimetypes.guess_type(path.rpartition("/")[2])[0] or "text/plain"
    if kind.startswith("text/") or kind == "application/json":
        kind += "; charset=utf-8"
    return kind


#: Bytes gathered from a streamed file before each send.
STREAM_CHUNK = 1 << 20
#: Bytes read from a file on disk per send.
SEND_CHUNK = 1 << 20
#: The folder, beside the cache folder, of the long files made ahead (Module.long_files).
AHEAD = "ahead"
#: How much lower than the server the cached render runs (os.nice increment).
CACHE_NICENESS = 10
#: The file, beside the cache folder, that holds why its render failed.
ERROR_FILE = "error.txt"
#: The file, beside the cache folder, made once its render has finished.
DONE_FILE = "done"


#: A relative path that Site.write keeps as it is (most are): short plain components.
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]{1,200}(?:/[A-Za-z0-9_.~-]{1,200})*")
_DOT_PART = re.compile(r"(?:^|/)\.\.?(?:/|$)")


def as_written(path: str) -> str:
    """The path a file is written at (safe_relpath), quickly for the plain paths of a plan."""
    dotted = path.startswith(".") or "/." in path
    if _PLAIN.fullmatch(path) and not (dotted and _DOT_PART.search(path)):
        return path
    return safe_relpath(path)


def folders_of(paths) -> set[str]:
    """Every folder above the given file paths ("a/b/c.txt" -> "a", "a/b")."""
    folders: set[str] = set()
    for path in paths:
        folder = path.rpartition("/")[0]
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    return folders


def write_whole(path: Path, content: Content) -> None:
    """Write content to path through a temporary name: the path exists only once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as f:
        if isinstance(content, str | bytes):
            f.write(content.encode() if isinstance(content, str) else content)
        else:
            for piece in gathered(content, STREAM_CHUNK):
                f.write(piece)
    os.replace(partial, path)


class SectionsOnly(Module):
    """An on-demand module as the cached render runs it: its index sections and directory
    entries, but none of its files (the server makes those one at a time)."""

    def __init__(self, inner: Module):
        self.inner = inner
        self.id = inner.id  # type: ignore[misc]
        self.name = inner.name  # type: ignore[misc]
        self.modes = inner.modes  # type: ignore[misc]
        self.late = inner.late  # type: ignore[misc]
        self.cost = 1  # type: ignore[misc]
        self.folder = inner.folder

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        output = self.inner.render(ctx)
        close = getattr(output.files, "close", None)
        if close is not None:
            close()  # a generator never started: nothing was made
        return ModuleOutput((), output.directory_entries, output.index_html)


def cached_modules(config: ReportConfig) -> tuple[ModuleRegistry, list[Module]]:
    """The report's modules as the cached render runs them (on-demand ones: sections only)."""
    registry = ModuleRegistry.installed()
    modules = registry.for_mode(config.mode)
    return registry, [SectionsOnly(m) if m.on_demand else m for m in modules]


def only_log(db) -> int:
    ids = [r[0] for r in db.conn.execute("SELECT id FROM logs ORDER BY id")]
    if len(ids) != 1:
        raise TldbError(f"the database holds {len(ids)} logs; a report renders exactly one")
    return ids[0]


def open_report_db(db_path: Path, inherited: dict[int, str] | None = None):
    """A read-only connection to a report's database; a rank of a folder also sees the string
    table entries the ranks listed before it left behind (tlparse's shared table)."""
    from tldb.rankstep import shadow_strings

    db = dbmod.open_readonly(db_path)
    if inherited:
        shadow_strings(db, only_log(db), inherited)
    return db


def render_cached(
    db_path: Path,
    out_dir: Path,
    config: ReportConfig,
    jobs: int,
    inherited: dict[int, str] | None = None,
) -> None:
    """Write every file of the report that no on-demand module makes, and index.html."""
    from tldb.report import render_report

    registry, modules = cached_modules(config)
    out_dir.mkdir(parents=True, exist_ok=True)  # render_report writes into it as it is
    db = open_report_db(db_path, inherited)
    try:
        render_report(
            db,
            only_log(db),
            out_dir,
            config,
            registry,
            modules,
            jobs=jobs,
            reopen=lambda: open_report_db(db_path, inherited),
        )
    finally:
        db.conn.close()


def _stop_group(signum, frame) -> None:
    """SIGTERM in a cached render: end its whole process group (it and its workers) now. Its
    workers inherit the handler: one of them stopped alone dies of the signal as before."""
    if os.getpgid(0) == os.getpid():  # the cached render itself, the group's leader
        os.killpg(0, signal.SIGKILL)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


class CachedRender:
    """Files rendered once, in a forked process, into a temporary folder deleted by close().

    Started before the server runs (no thread exists yet, so forking is safe, and nothing is
    imported again); a request that needs the files waits for them. `after` is more work for
    the same process once the files are there (the long files made ahead): requests do not
    wait for it, and it failing only leaves its files unmade."""

    def __init__(self, render: Callable[[Path], None], after: Callable[[Path], None] | None = None):
        self._render = render
        self._after = after
        self.root: Path | None = None  # the temporary folder; the files are in `folder`
        self.folder = Path()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._error: str | None = None

    def start(self) -> None:
        if self.root is not None:
            return
        self.root = Path(tempfile.mkdtemp(prefix="tldb-pages-"))
        self.folder = self.root / "report"
        self.folder.mkdir()
        if not can_fork():  # pragma: no cover - Windows: render here and now
            try:
                self._render(self.folder)
            except TldbError as exc:
                self._error = str(exc)
            return
        context = multiprocessing.get_context("fork")
        self._server = os.getpid()
        # Not a daemon: it forks render workers of its own.
        self._process = context.Process(target=self._child, daemon=False)
        self._process.start()

    def _child(self) -> None:
        # A process group of its own, with the render workers it forks: close() stops them
        # all (stopping this process alone left its workers waiting for tasks for good).
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        # Stopped (close(), or the server killed: die_with_parent), it stops its workers too.
        signal.signal(signal.SIGTERM, _stop_group)
        from tldb.serve_workers import die_with_parent

        die_with_parent(self._server)
        # Below the server in the scheduler (its workers inherit it): on two cores the
        # render would otherwise delay the first pages asked for while it runs.
        with contextlib.suppress(OSError, AttributeError):
            os.nice(CACHE_NICENESS)
        try:
            self._render(self.folder)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            self.folder.with_name(ERROR_FILE).write_text(error, encoding="utf-8")
            sys.exit(1)  # the server tells the user, on the page that needed the files
        self.folder.with_name(DONE_FILE).touch()
        if self._after is not None:
            with contextlib.suppress(Exception):
                self._after(self.folder)

    def _rendered(self) -> bool:
        return self.folder.with_name(DONE_FILE).exists()

    async def ready(self) -> Path:
        """The folder, once its render has finished (raises if it failed)."""
        self.start()
        if self._process is not None:
            while self._process.exitcode is None and not self._rendered():
                await asyncio.sleep(0.01)
            if not self._rendered():
                error = self.folder.with_name(ERROR_FILE)
                self._error = error.read_text(encoding="utf-8") if error.is_file() else "?"
        if self._error is not None:
            raise TldbError(f"rendering the report's cached pages failed: {self._error}")
        return self.folder

    def join(self) -> None:
        """Wait until the process has done everything, `after` included."""
        if self._process is not None:
            self._process.join()

    def close(self) -> None:
        process = self._process
        if process is not None and process.pid is not None:
            if process.exitcode is None:
                process.terminate()
            with contextlib.suppress(OSError):  # its workers, still running or waiting
                os.killpg(process.pid, signal.SIGTERM)
            process.join()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


#: What `locate` found: the file was sent, the path is a folder, or a cached file to send.
SENT = "sent"
FOLDER = "folder"
Located = str | Path | None


async def cached_file(cache: CachedRender, wanted: str) -> Located:
    """A file of a cached render (FOLDER for a folder, None when missing or outside)."""
    root = (await cache.ready()).resolve()
    target = (root / wanted).resolve()
    if not target.is_relative_to(root):
        return None
    if target.is_dir():
        return FOLDER
    return target if target.is_file() else None


class ServedReport:
    """What every report made on request has: a cached render, started with the server."""

    cache: CachedRender
    jobs: int

    def start(self, jobs: int | None = None) -> None:
        """Start the cached render (once), on `jobs` processes."""
        self.jobs = jobs or self.jobs
        self.cache.start()

    @property
    def cache_dirs(self) -> list[Path]:
        return [self.cache.folder]

    def close(self) -> None:
        self.cache.close()


class OnDemandReport(ServedReport):
    """One database's report, served from memory-light parts: the on-demand file index and a
    cache folder for the rest. Build it before the server starts (it reads the database)."""

    def __init__(
        self, db_path: Path, config: ReportConfig, inherited: dict[int, str] | None = None
    ):
        self.db_path = db_path
        self.config = config
        self.inherited = inherited
        self.jobs = cpu_count()
        self._pool: list[Any] = []
        self._generation = 0  # of the connections: see refresh()
        db = self._acquire()
        try:
            self.log_id = only_log(db)
            # On-demand files are made one at a time: they cannot depend on the manifest or
            # on the whole compile directory, which cost seconds to build on a big log.
            self._base = ModuleContext(
                db=db,
                out_dir=Path(),
                config=config,
                manifest=Manifest(()),
                log_id=self.log_id,
                module_dir=Path(),
            )
            self.modules = ModuleRegistry.installed().for_mode(config.mode)
            #: path -> (position in self.modules, key), later modules winning as on disk.
            self.files: dict[str, tuple[int, Any]] = {}
            for position, module in enumerate(self.modules):
                if module.on_demand:
                    for path, key in module.file_keys(self._context(module, db)):
                        self.files[as_written(path)] = (position, key)
        finally:
            self._release(db)
        #: Every folder holding an on-demand file (a request without its final slash is
        #: redirected, as for a folder on disk).
        self.folders = folders_of(self.files)
        #: The long files (Module.long_files) among them, made ahead by the cached render.
        self.long = {
            path
            for path, (position, _) in self.files.items()
            if path in self.modules[position].long_files
        }
        self.cache = CachedRender(
            lambda out: render_cached(db_path, out, config, self.jobs, inherited),
            self._make_ahead,
        )

    def _make_ahead(self, out: Path) -> None:
        """After the cached render, in its process: the long files, each into the folder
        beside `out` where made_ahead finds it once complete."""
        # A connection of its own: the server's are not to be used in a forked process.
        db = open_report_db(self.db_path, self.inherited)
        try:
            for relative in sorted(self.long):
                position, key = self.files[relative]
                module = self.modules[position]
                content = module.render_file(self._context(module, db), key)
                if not isinstance(content, CopyFile):  # else the file is there already
                    write_whole(out.with_name(AHEAD) / relative, content)
        finally:
            db.conn.close()

    def made_ahead(self, relative: str) -> Path | None:
        """The finished file made ahead for `relative`, if there is one yet."""
        if relative not in self.long or self.cache.root is None:
            return None
        path = self.cache.root / AHEAD / relative
        return path if path.is_file() else None

    # -- database connections (one per request at a time; SQLite connections are cheap) --

    def _acquire(self):
        if self._pool:
            return self._pool.pop()
        db = open_report_db(self.db_path, self.inherited)
        db.tldb_generation = self._generation
        return db

    def _release(self, db) -> None:
        if db.tldb_generation == self._generation:
            self._pool.append(db)
        else:  # opened on the file the database was before refresh()
            db.conn.close()

    def refresh(self) -> None:
        """The database file was replaced by one with the same rows (serve_tables): connections
        opened from now on read the new file; those in use are closed when released."""
        self._generation += 1
        for db in self._pool:
            db.conn.close()
        self._pool.clear()

    def _context(self, module: Module, db) -> ModuleContext:
        return replace(self._base, db=db, module_dir=module.folder)

    def close(self) -> None:
        """Stop the cached render if it still runs, delete its folder, close connections."""
        super().close()
        for db in self._pool:
            db.conn.close()
        self._pool.clear()

    # -- answering --

    async def locate(self, wanted: str, send) -> Located:
        """Answer `wanted` (a path, index.html for folders) if an on-demand module makes it
        (SENT), else say where it is: FOLDER, a file of the cached render, or None."""
        if await self.send(wanted, send, content_type(wanted)):
            return SENT
        if wanted in self.folders:
            return FOLDER
        return await cached_file(self.cache, wanted)

    async def send(self, relative: str, send, content_type: str) -> bool:
        """Answer with an on-demand file (False when no on-demand module makes it). The file
        is made in a worker thread; a streamed one is sent chunk by chunk as it is made, its
        database connection held until the end."""
        from datasette.utils.asgi import asgi_send_file

        found = self.files.get(relative)
        if found is None:
            return False
        ahead = self.made_ahead(relative)
        if ahead is not None:
            await asgi_send_file(send, ahead, content_type=content_type, chunk_size=SEND_CHUNK)
            return True
        position, key = found
        module = self.modules[position]
        loop = asyncio.get_running_loop()
        db = self._acquire()
        try:
            content = await loop.run_in_executor(
                None, module.render_file, self._context(module, db), key
            )
            if isinstance(content, CopyFile):
                await asgi_send_file(
                    send, content.source, content_type=content_type, chunk_size=SEND_CHUNK
                )
            elif isinstance(content, str | bytes):
                body = content.encode() if isinstance(content, str) else content
                await _start(send, content_type, len(body))
                await send({"type": "http.response.body", "body": body})
            else:
                await _start(send, content_type, None)
                next_chunk = functools.partial(next, gathered(content, STREAM_CHUNK), b"")
                while data := await loop.run_in_executor(None, next_chunk):
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        finally:
            self._release(db)
        return True


async def _start(send, content_type: str, length: int | None) -> None:
    headers = [[b"content-type", content_type.encode()]]
    if length is not None:
        headers.append([b"content-length", str(length).encode()])
    await send({"type": "http.response.start", "status": 200, "headers": headers})
