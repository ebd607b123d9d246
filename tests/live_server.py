"""A real `tldb serve` process for tests: started on a free port, its banner read, stopped."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Served:
    process: subprocess.Popen
    base: str
    banner: list[str]

    def get(self, path: str, headers: dict | None = None, timeout: float = 60):
        """(status, body bytes, response headers) of a GET; connection errors give status 0."""
        request = urllib.request.Request(self.base + path, headers=headers or {})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except OSError:
                body = b""
            return exc.code, body, exc.headers
        except (ConnectionError, urllib.error.URLError) as exc:
            return 0, str(exc).encode(), {}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@contextlib.contextmanager
def serve(*args: str, cwd: Path | None = None) -> Iterator[Served]:
    """Run `tldb serve ARGS --port 0` until its banner ends; stop it (SIGTERM) afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tldb", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )
    banner: list[str] = []
    try:
        for line in process.stdout:
            banner.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        found = re.search(r"Datasette (http://\S+?)/? ", "\n".join(banner))
        assert found, "\n".join(banner)
        yield Served(process, found.group(1), banner)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
