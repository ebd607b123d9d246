"""`tldb report --serve [--port N] [--host H]` (tlparse 0.4.4+, §a): after writing, the output
folder is served as `tldb serve OUT` serves it, on loopback unless --host says otherwise, on
the first free port from 8000 to 8099 unless --port says otherwise. Each test starts the real
command, fetches pages over HTTP and stops it with SIGTERM (a normal stop, exit status 0)."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator

from conftest import DATA, ROOT, data_path, run_tldb

#: How long to wait for the banner before giving up (a hung server fails instead of hanging).
START_TIMEOUT = 120
BANNER = re.compile(r"tldb serve: Datasette (http://([^/]+):(\d+))/")


@contextlib.contextmanager
def serving(*args: str) -> Iterator[tuple[str, str, int, list[str]]]:
    """`tldb report ARGS --serve` running: (base URL, host, port, stdout lines so far)."""
    command = [sys.executable, "-m", "tldb", "report", *args, "--serve"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT)
            assert line is not None, f"server ended: {proc.wait()} {proc.stderr.read()}"
            seen.append(line)
            found = BANNER.search(line)
            if found:
                break
        yield found.group(1), found.group(2), int(found.group(3)), seen
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=60)
        rest = []
        while (line := lines.get(timeout=10)) is not None:
            rest.append(line)
        seen.extend(rest)
    assert status == 0, proc.stderr.read()
    assert seen[-1].strip() == "Stopped."


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.read()


def test_serves_the_report_on_the_first_free_default_port(tmp_path):
    out = tmp_path / "out"
    held = None
    for port in range(8000, 8100):  # take the first free port of the range ourselves
        with contextlib.suppress(OSError):
            held = socket.create_server(("127.0.0.1", port))
            break
    assert held is not None
    with held, serving(str(data_path("torch213/dynamo.log")), "-o", str(out)) as found:
        base, host, port, _ = found
        assert host == "127.0.0.1"  # loopback by default
        assert 8000 <= port < 8100 and port != held.getsockname()[1]
        assert fetch(f"{base}/report/") == (out / "index.html").read_bytes()
        page = next(out.glob("*/compilation_metrics_*.html"))
        rel = page.relative_to(out).as_posix()
        assert fetch(f"{base}/report/{rel}") == page.read_bytes()
        tables = json.loads(fetch(f"{base}/trace.json"))
        assert "envelopes" in {t["name"] for t in tables["tables"]}


def test_serves_a_multi_rank_report_on_the_given_port_and_host(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        free = probe.getsockname()[1]
    out = tmp_path / "out"
    folder = DATA / "torch213" / "ranks2"  # .log.gz rank logs, read as they are
    args = (str(folder), "--all-ranks-html", "-o", str(out), "--port", str(free))
    with serving(*args, "--host", "127.0.0.1") as (base, host, port, _):
        assert (host, port) == ("127.0.0.1", free)
        landing = fetch(f"{base}/report/").decode()
        assert 'href="rank_0/index.html"' in landing
        assert (
            fetch(f"{base}/report/rank_1/index.html")
            == (out / "rank_1" / "index.html").read_bytes()
        )


def test_port_without_serve_is_refused(tmp_path):
    result = run_tldb(
        "report",
        str(data_path("torch213/mismatch.log")),
        "-o",
        str(tmp_path / "o"),
        "--port",
        "8000",
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: --port goes with --serve"
