"""A bounded cache of `tldb serve`'s Datasette pages, keyed by the whole request, shared by
the server's worker processes.

Why it is sound: every database tldb serves is opened immutable (nothing can change it while
the server runs), so a page is a function of the request alone. Datasette says which parts of
the request a page depends on with `Vary: Cookie, Authorization` (the actor), and the link
headers it sends name the scheme and Host; the key is therefore (scheme, path, query string,
Host, Cookie, Authorization): a token holder and an anonymous user never share an entry. The
one change a server sees is a served file replaced by another (`tldb serve LOG` once its
serving tables are built, serve_swap): the key also holds a generation, changed then, so no
page of the file before is answered after.

Why it is needed: Datasette spends 0.1-0.5 s of CPU rendering a table page of a large log's
database (facets over a view, 100 rows of long text), under Python's global lock: 50 users
asking for the usual pages queue behind each other. Answering a page already rendered costs
about a millisecond.

Where it lives: a private temporary folder (mode 0700) made when the server starts and removed
when it stops, one file per page, so that the worker processes (serve_workers) render a page
once between them, not once each. Each process evicts, oldest first, the pages it wrote beyond
its share of the budget (so the folder holds at most workers x the budget); a page another
process removed is simply a miss. A process about to render a page first claims it (a lock
file made with O_EXCL); the others wait for its answer rather than render it too, in-process
and across processes ("single flight"). A claim whose process is gone is ignored.

What is never cached: anything but a GET answered 200, a response that sets a cookie (the login
page, CSRF tokens), Datasette's own /-/ pages (some report the server's live state), the report
mounts (files sent from disk, cheap already, and the on-demand reports have their own cache),
`_trace` debugging and responses larger than MAX_ENTRY_BYTES. A page during whose rendering a
query hit a time limit is kept only PARTIAL_TTL_S: Datasette's limits are wall time, so on a
busy server a facet or a row count gives up and the page is answered without it
(facets_timed_out, no count), a partial page that must not stay in place of a whole one; nor
may it be rendered for every request while the server is busy, which would keep it busy.
The served databases are TrackedDatabase objects, which note such interruptions for the
request being rendered.

Responses carry `x-tldb-cache: hit` or `miss` so that tests and benchmarks can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable
from contextvars import ContextVar
from pathlib import Path

from datasette.database import Database, QueryInterrupted
from datasette.database import connections as thread_connections

from tldb.staging import alive

#: Largest response kept (bytes of body).
MAX_ENTRY_BYTES = 4 << 20
#: Most bytes of pages one process keeps (its default share of the folder).
MAX_TOTAL_BYTES = 64 << 20
#: Header telling whether the response came from the cache.
CACHE_HEADER = b"x-tldb-cache"
#: How often a process waiting for another's render looks for its page (seconds).
POLL_S = 0.02
#: A claim older than this is ignored even if its process lives (seconds; renders are bounded
#: by Datasette's time limits, a few times 5 s at most).
STALE_CLAIM_S = 120.0
#: How long a partial page (a query of it hit a time limit) is answered before it is rendered
#: again (seconds).
PARTIAL_TTL_S = 10.0

#: The request being rendered notes here that one of its queries was stopped by a time limit
#: (a list shared with the tasks Datasette starts for facets, which copy the context).
_interrupted: ContextVar[list[bool] | None] = ContextVar("tldb_interrupted", default=None)

Key = tuple[bytes, ...]


class Entry:
    """One cached response: status, headers (without the cache header) and body; a partial
    page also has the time.time() after which it is rendered again."""

    __slots__ = ("body", "expires", "headers", "status")

    def __init__(
        self, status: int, headers: list, body: bytes, expires: float | None = None
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.expires = expires

    def encode(self) -> bytes:
        head = {
            "status": self.status,
            "headers": [[k.hex(), v.hex()] for k, v in self.headers],
            "expires": self.expires,
        }
        return json.dumps(head).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        head, _, body = data.partition(b"\n")
        meta = json.loads(head)
        headers = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in meta["headers"]]
        return cls(meta["status"], headers, body, meta.get("expires"))


class TrackedDatabase(Database):
    """Datasette's Database, noting every query stopped by a time limit (see _interrupted).

    It also never queries through another Database object's connection. Datasette keeps one
    connection per database name in each of its SQL threads; when a served file is replaced
    (serve_swap: a build of serving tables), a new object takes the name, and each thread's
    connection to the old file is closed (in that thread, where it was used) and reopened to
    the new one at its next query."""

    async def execute_fn(self, fn):
        def on_own_connection(conn):
            if self.ds.executor is not None and conn not in self._all_file_connections:
                conn.close()
                conn = self.connect()
                self.ds._prepare_connection(conn, self.name)
                setattr(thread_connections, self.name, conn)
            return fn(conn)

        return await super().execute_fn(on_own_connection)

    async def execute(self, *args, **kwargs):
        try:
            return await super().execute(*args, **kwargs)
        except QueryInterrupted:
            interrupted = _interrupted.get()
            if interrupted is not None:
                interrupted.append(True)
            raise


class FolderStore:
    """Pages as files of a folder that several processes share (see the module docstring)."""

    def __init__(self, folder: Path, max_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.written: OrderedDict[str, int] = OrderedDict()  # this process's pages, oldest first
        self.total = 0

    @staticmethod
    def name(key: Key) -> str:
        digest = hashlib.sha256()
        for part in key:
            digest.update(len(part).to_bytes(8, "big") + part)
        return digest.hexdigest()

    def get(self, name: str) -> Entry | None:
        try:
            data = (self.folder / name).read_bytes()
        except OSError:
            return None
        if name in self.written:
            self.written.move_to_end(name)
        try:
            entry = Entry.decode(data)
        except (ValueError, KeyError):
            return None
        if entry.expires is not None and time.time() > entry.expires:
            return None  # a partial page, due to be rendered again
        return entry

    def put(self, name: str, entry: Entry) -> None:
        data = entry.encode()
        temporary = self.folder / f".{name}.{os.getpid()}"
        try:
            temporary.write_bytes(data)
            os.replace(temporary, self.folder / name)
        except OSError:  # a full disk: the page is simply not cached
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        self.total += len(data) - self.written.pop(name, 0)
        self.written[name] = len(data)
        while self.total > self.max_bytes and self.written:
            oldest, size = self.written.popitem(last=False)
            self.total -= size
            with contextlib.suppress(OSError):
                (self.folder / oldest).unlink()

    def drop_written(self) -> None:
        """Delete every page this process wrote."""
        for name in self.written:
            with contextlib.suppress(OSError):
                (self.folder / name).unlink()
        self.written.clear()
        self.total = 0

    def _lock(self, name: str) -> Path:
        return self.folder / f"{name}.lock"

    def claim(self, name: str) -> bool:
        """True when this process may render the page (nobody else is rendering it)."""
        for _ in range(2):
            try:
                fd = os.open(self._lock(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                if self.claimed(name):
                    return False
                with contextlib.suppress(OSError):
                    self._lock(name).unlink()  # a dead process's claim
                continue
            except OSError:
                return True  # cannot claim (full disk...): render without
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return True
        return True

    def claimed(self, name: str) -> bool:
        """Whether a live process other than this one is rendering the page."""
        lock = self._lock(name)
        try:
            pid = int(lock.read_text() or 0)
            age = time.time() - lock.stat().st_mtime
        except (OSError, ValueError):
            return False
        return bool(pid) and pid != os.getpid() and age <= STALE_CLAIM_S and alive(pid)

    def release(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self._lock(name).unlink()


#: Name of the cache folders in the temporary folder: FOLDER_PREFIX + PID + "-" + random.
FOLDER_PREFIX = "tldb-page-cache-"


def make_folder() -> Path:
    """A new private cache folder, named after this process; those left by servers that
    were killed (their process is gone) are removed first."""
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"{FOLDER_PREFIX}*-*"):
        pid = stale.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)) and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=root))


class ResponseCache:
    """ASGI middleware around Datasette's app, keeping pages in `store`; `skip_prefixes`: first
    path segments (report mounts) passed through untouched."""

    def __init__(
        self,
        app,
        store: FolderStore,
        skip_prefixes: Iterable[str] = (),
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.app = app
        self.store = store
        self.skip = frozenset(skip_prefixes) | {"-"}
        self.max_entry = min(max_entry_bytes, store.max_bytes)
        self.pending: dict[str, asyncio.Future] = {}
        #: Part of every key: changed when a served database is replaced (forget_all).
        self.generation = b"0"

    def forget_all(self) -> None:
        """Answer no page kept so far: a served database was replaced by another file
        (serve_swap), whose pages may differ (a view's page is not its table's page). Pages
        being rendered meanwhile are kept under the old generation, never answered again."""
        self.generation = str(int(self.generation) + 1).encode()
        self.store.drop_written()

    def _key(self, scope) -> Key | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path: str = scope["path"]
        if path.split("/", 2)[1] in self.skip or b"_trace" in scope["query_string"]:
            return None
        return (
            self.generation,
            scope.get("scheme", "http").encode(),
            scope.get("raw_path") or path.encode(),
            scope["query_string"],
            *(_all(scope["headers"], name) for name in (b"host", b"cookie", b"authorization")),
        )

    async def __call__(self, scope, receive, send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        name = self.store.name(key)
        while True:
            entry = self.store.get(name)
            if entry is not None:
                await _replay(entry, send)
                return
            waiting = self.pending.get(name)
            if waiting is not None:  # this process renders it: wait, then look again
                await asyncio.shield(waiting)
                if self.store.get(name) is None:  # not cacheable: render this one apart
                    await self._render(name, scope, receive, send, keep=False)
                    return
                continue
            if self.store.claim(name):
                break
            while self.store.claimed(name):  # another process renders it: wait, look again
                await asyncio.sleep(POLL_S)
        future = asyncio.get_running_loop().create_future()
        self.pending[name] = future
        try:
            await self._render(name, scope, receive, send)
        finally:
            self.store.release(name)
            del self.pending[name]
            future.set_result(None)

    async def _render(self, name: str, scope, receive, send, keep: bool = True) -> None:
        """Run Datasette, passing its messages on as they come, and keep the answer if it
        may be kept: for good if whole, for PARTIAL_TTL_S if a query hit a time limit."""
        state = {"status": 0, "headers": [], "body": [], "size": 0, "keep": keep}

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                state["status"] = message["status"]
                state["headers"] = headers
                state["keep"] = (
                    state["keep"]
                    and message["status"] == 200
                    and not any(name.lower() == b"set-cookie" for name, _ in headers)
                )
                message = {**message, "headers": [*headers, (CACHE_HEADER, b"miss")]}
            elif message["type"] == "http.response.body" and state["keep"]:
                body = message.get("body", b"")
                state["size"] += len(body)
                if state["size"] > self.max_entry:
                    state["keep"] = False
                    state["body"] = []
                else:
                    state["body"].append(body)
            await send(message)

        interrupted: list[bool] = []
        token = _interrupted.set(interrupted)
        try:
            await self.app(scope, receive, capture)
        finally:
            _interrupted.reset(token)
        if state["keep"] and state["status"] == 200:
            expires = time.time() + PARTIAL_TTL_S if interrupted else None
            self.store.put(name, Entry(200, state["headers"], b"".join(state["body"]), expires))


def _all(headers: list, name: bytes) -> bytes:
    """Every value of one header, in order (a request may repeat Cookie)."""
    return b"\n".join(value for key, value in headers if key.lower() == name)


async def _replay(entry: Entry, send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": entry.status,
            "headers": [*entry.headers, (CACHE_HEADER, b"hit")],
        }
    )
    await send({"type": "http.response.body", "body": entry.body})
