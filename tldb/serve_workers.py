"""Several `tldb serve` processes answering on one listening socket (pre-fork).

Datasette renders pages in Python under the global interpreter lock: one process uses one
core however many users wait. The databases are immutable and the server keeps no state that
requests change, so N copies of the same server, forked after the socket is bound and the
Datasette instance is made, answer alike: the kernel hands each new connection to one of the
processes waiting in accept() on the shared socket. Forking after the instance is made keeps
what must be the same in every worker the same: the access token and Datasette's signing
secret (a login cookie set by one worker is honoured by the others). Nothing is forked after
a thread is started; each worker starts its own (SQL threads, the count thread).

Each worker listens on a socket of its own bound to the same address (SO_REUSEPORT), not on
the one inherited: on one shared socket the first process to wake accepts a burst of
connections, and browsers and clients keep their connections open, so one worker ends up
with most of them (40 of 50 keep-alive connections with 2 workers, in a measurement). With a
socket each, the kernel spreads new connections across the workers by their addresses (30
and 20 in the same measurement). SO_REUSEPORT would also let another server of the same user bind
the port silently; so the port is first bound without it, which fails as before when the port
is taken (by anything, including another tldb serve), then released and bound again with it
at once (a window of microseconds in which another program could take it).

Workers die with the first process: it stops them with SIGTERM when it stops, and each asks
the kernel for SIGTERM should the first process die without doing so (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

#: Most workers chosen by default (more processes cost memory and rarely help past this).
MAX_DEFAULT_WORKERS = 4
#: Seconds a worker is given to stop after SIGTERM before SIGKILL.
STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1
#: Whether SO_REUSEPORT spreads connections over the sockets (Linux; on BSD and macOS the last
#: socket bound gets them all, so workers share the one socket there).
_SPREADS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def default_workers(cores: int, has_on_demand: bool) -> int:
    """One per core up to MAX_DEFAULT_WORKERS; one when a report is made on request (its
    renderer and page cache live in the serving process)."""
    return 1 if has_on_demand else max(1, min(cores, MAX_DEFAULT_WORKERS))


def listen_shared(family: int, address: tuple) -> socket.socket:
    """A listening socket on address that own_socket can join; OSError when the address is
    taken (checked without SO_REUSEPORT first, see the module docstring)."""
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        address = probe.getsockname()  # the port chosen for port 0
        if not _SPREADS:
            probe.listen(128)
            probe.set_inheritable(True)
            return probe
    except BaseException:
        probe.close()
        raise
    probe.close()
    return _listen(family, address)


def _listen(family: int, address: tuple) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def own_socket(shared: socket.socket) -> socket.socket:
    """In a worker: a socket of its own on the shared socket's address, the inherited one
    closed; the shared one where the port cannot be joined (no SO_REUSEPORT on it)."""
    try:
        if not _SPREADS or not shared.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
            return shared
        own = _listen(shared.family, shared.getsockname())
    except (OSError, AttributeError):
        return shared
    shared.close()
    return own


def die_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when `parent` dies, even by kill -9: a child
    of the server (a worker, a table build) never outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def can_fork() -> bool:
    """Whether workers can be forked: not where other threads run (a fork copies their locks,
    held or not), nor where there is no fork."""
    return hasattr(os, "fork") and threading.active_count() == 1


def fork_workers(count: int, serve: Callable[[], None]) -> list[int]:
    """Fork count workers that each run serve() and exit; returns their pids. The caller
    serves too, and calls stop_workers when it stops. None where can_fork() says no: the
    caller then serves alone."""
    if count < 1 or not can_fork():
        return []
    parent = os.getpid()
    pids = []
    for _ in range(count):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                die_with_parent(parent)
                serve()
            except KeyboardInterrupt:
                pass
            except BaseException:  # a worker must never return into the CLI
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    return pids


def stop_workers(pids: list[int], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every worker, wait up to grace_s for all, then SIGKILL the rest."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            waiting.discard(pid)
        if waiting:
            time.sleep(0.05)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
