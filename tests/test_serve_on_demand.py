"""`tldb serve LOG`: the report made page by page on request, byte for byte the static one.

Every single-log case of tests/data/cases.json is reported with `tldb report`, then served from
its log by a real `tldb serve` (a subprocess on a free loopback port, one per set of report
flags, all that set's logs at once), and every file of the static report is fetched over HTTP
and compared byte for byte. The server must write nothing but the databases: its cache folder
is gone once it stops, and the user cache holds only the databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import data_cases, data_path

from tldb.errors import InputError
from tldb.module_api import ReportConfig
from tldb.multirank import run_multi_rank
from tldb.report import ReportRequest, run_report
from tldb.serve import make_datasette, plan_serve
from tldb.serve_logs import load_logs, up_to_date

#: Report flags `tldb serve LOG` takes as they are (--strict changes the exit status only).
SERVE_FLAGS = {"--plain-text", "--export", "--inductor-provenance", "--custom-header-html"}


def _config(flags: tuple[str, ...]) -> ReportConfig:
    header = (
        flags[flags.index("--custom-header-html") + 1] if "--custom-header-html" in flags else ""
    )
    return ReportConfig(
        plain_text="--plain-text" in flags,
        export_mode="--export" in flags,
        inductor_provenance="--inductor-provenance" in flags,
        custom_header_html=header,
    )


def _groups() -> dict[tuple[str, ...], list[str]]:
    """Cases by their report flags (without --strict), inputs in case order: single logs, and
    rank folders (the --all-ranks-html flag kept in the key: `tldb serve RANKS/` needs none)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for case in data_cases():
        flags = tuple(f for f in case["flags"] if f != "--strict")
        folder = "--all-ranks-html" in flags
        if data_path(case["input"]).is_file() == folder:
            continue  # --latest folders
        if not {f for f in flags if f.startswith("--")} <= SERVE_FLAGS | {"--all-ranks-html"}:
            continue
        inputs = groups.setdefault(flags, [])
        if case["input"] not in inputs:
            inputs.append(case["input"])
    return groups


#: Files of a static report that are not pages: its databases and rank step records.
NOT_PAGES = {"trace.db", "ranks.db", ".tldb-step.json"}


GROUPS = _groups()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """`tldb serve ARGS --port 0` as a subprocess; base URL from its first line."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tldb", "serve", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.banner = [self.process.stdout.readline()]
        if not self.banner[0].startswith("tldb serve:"):
            self.stop()
            pytest.fail(f"tldb serve did not start: {self.banner} {self.process.stderr.read()}")
        while not self.banner[-1].startswith("Press Ctrl-C"):
            self.banner.append(self.process.stdout.readline())
        self.base = self.banner[0].split()[3].rstrip("/")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=60)
        return out + err


@pytest.mark.parametrize("flags", list(GROUPS), ids=lambda f: " ".join(f) or "default")
def test_every_file_of_the_static_report_is_served_byte_for_byte(flags, tmp_path):
    config = _config(flags)
    folders = "--all-ranks-html" in flags
    logs = [data_path(name) for name in GROUPS[flags]]
    static = []
    for n, log in enumerate(logs):
        out = tmp_path / f"static_{n}"
        if folders:
            run_multi_rank(ReportRequest(log, out, config), workers=1)
        else:
            run_report(ReportRequest(log, out, config, jobs=1))
        static.append(out)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = Server([*map(str, logs), *(f for f in flags if f != "--all-ranks-html")], env)
    try:
        marker = json.loads(_get(f"{server.base}/-/tldb.json")[1])
        urls = [
            db["report"]
            for name, db in marker["databases"].items()
            if not folders or name.startswith("ranks")
        ]
        assert len(urls) == len(logs)
        for url, out in zip(urls, static, strict=True):
            files = [p for p in out.rglob("*") if p.is_file() and p.name not in NOT_PAGES]
            assert files
            for path in files:
                relative = path.relative_to(out).as_posix()
                status, body = _get(f"{server.base}{url}{urllib.request.quote(relative)}")
                assert status == 200, relative
                assert body == path.read_bytes(), relative
            status, body = _get(f"{server.base}{url}")
            assert (status, body) == (200, (out / "index.html").read_bytes())
            assert _get(f"{server.base}{url}no_such_file.html")[0] == 404
    finally:
        server.stop()
    cache_folders = [
        line.split("cached pages in ")[1].rstrip(")\n")
        for line in server.banner
        if "cached pages in" in line
    ]
    assert len(cache_folders) == len(logs)
    assert not any(Path(folder).exists() for folder in cache_folders)
    written = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert written <= NOT_PAGES  # databases (and rank step records), nothing else


def test_a_served_log_is_loaded_once_and_reused_while_unchanged(tmp_path, log_writer, capsys):
    log = log_writer.add({"str": ["a.py", 0]}).write(tmp_path / "small.log")
    db = tmp_path / "small.db"
    assert load_logs([log], db, False) == {log: db}
    assert "loading into" in capsys.readouterr().err and up_to_date(db, log.resolve())
    built = db.stat().st_mtime_ns
    load_logs([log], db, False)
    assert "reusing" in capsys.readouterr().err and db.stat().st_mtime_ns == built
    with log.open("a") as f:
        f.write("not a glog line\n")
    assert not up_to_date(db, log.resolve())
    load_logs([log], db, False)
    assert "loading into" in capsys.readouterr().err and up_to_date(db, log.resolve())


def test_db_option_names_one_logs_database(tmp_path, log_writer):
    log = log_writer.add({"str": ["a.py", 0]}).write(tmp_path / "small.log")
    with pytest.raises(InputError, match="--db names the database of one log"):
        load_logs([log, log], tmp_path / "x.db", False)


@pytest.mark.asyncio
async def test_on_demand_folders_redirect_and_nothing_outside_answers(tmp_path):
    log = data_path("torch213/cache_2.log")
    db = tmp_path / "cache_2.db"
    plan = plan_serve([log], load_logs([log], db, False), ReportConfig())
    ds = make_datasette(plan)
    (report,) = plan.on_demand.values()
    report.start(1)
    try:
        folder = next(p.partition("/")[0] for p in report.files if "/" in p)
        assert (await ds.client.get(f"/report/{folder}")).status_code == 302
        assert (await ds.client.get("/report")).status_code == 302
        for outside in ("/report/%2e%2e/%2e%2e/etc/passwd", "/report/..%2f..%2fetc%2fpasswd"):
            assert (await ds.client.get(outside)).status_code == 404
        marker = (await ds.client.get("/-/tldb.json")).json()
        assert marker["reports"] == [{"url": "/report/", "databases": ["cache_2"]}]
        index = await ds.client.get("/report/")
        assert index.status_code == 200 and "tldb-datasette" in index.text
    finally:
        plan.close()
        for database in ds.databases.values():
            database.close()
    assert report.cache.root is not None and not report.cache.root.exists()
    # The database named directly, with no report folder around it, brings the same report.
    plan = plan_serve([db], {}, ReportConfig())
    assert [(d.name, d.report_url) for d in plan.databases] == [("cache_2", "/report/")]
    assert set(plan.on_demand["report"].files) == set(report.files)
    plan.close()
