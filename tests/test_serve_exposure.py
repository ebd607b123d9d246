"""Serving beyond loopback: a warning that the data is model code, and a generated token that
every request needs (unless --public). Real servers on 0.0.0.0, reached over TCP."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from conftest import data_path
from live_server import serve

from tldb.report import ReportRequest, run_report

#: Pages of every kind: home, database, table, view, ad-hoc SQL, canned query, Datasette's
#: own metadata, tldb's marker and the mounted report.
PAGES = [
    "/",
    "/trace",
    "/trace/envelopes?_size=2",
    "/trace/compiles.json",
    "/trace.json?sql=" + urllib.parse.quote("select count(*) from payloads"),
    "/trace/distinct_graph_breaks.json",
    "/-/metadata.json",
    "/-/tldb.json",
    "/report/",
    "/report/index.html",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("exposure") / "out"
    run_report(ReportRequest(source=data_path("torch213/dynamo.log"), out_dir=out))
    return out


def _token(server) -> str:
    found = re.search(r"^Access token: (\S+)$", "\n".join(server.banner), re.M)
    assert found, server.banner
    return found.group(1)


def test_loopback_needs_no_token(report):
    with serve(str(report)) as server:
        assert not any("Warning" in line or "token" in line for line in server.banner)
        for page in PAGES:
            assert server.get(page)[0] == 200, page


def test_any_address_warns_and_needs_the_token(report):
    with serve(str(report), "--host", "0.0.0.0") as server:
        text = "\n".join(server.banner)
        assert "Warning: listening on 0.0.0.0" in text and "model's code" in text
        token = _token(server)
        assert len(token) >= 40
        for page in PAGES:
            assert server.get(page)[0] == 403, page
            wrong = {"Authorization": f"Bearer {token[:-1]}x"}
            assert server.get(page, wrong)[0] == 403, page
            status, body, _ = server.get(page, {"Authorization": f"Bearer {token}"})
            assert status == 200, (page, body[:200])
            assert token.encode() not in body, page
        # A browser logs in once; Datasette's signed actor cookie carries it from then on.
        assert server.get(f"/-/tldb-login?token={token[:-1]}x")[0] == 403
        assert server.get("/-/tldb-login")[0] == 403
        status, _, headers = server.get(f"/-/tldb-login?token={token}")
        assert status == 302
        cookie = headers["set-cookie"].split(";")[0]
        assert cookie.startswith("ds_actor=") and token not in cookie
        for page in PAGES:
            assert server.get(page, {"Cookie": cookie})[0] == 200, page
        assert server.get("/", {"Cookie": "ds_actor=forged"})[0] == 403


def test_public_serves_everyone_with_a_warning(report):
    with serve(str(report), "--host", "0.0.0.0", "--public") as server:
        text = "\n".join(server.banner)
        assert "model's code" in text and "--public: no token" in text
        assert "Access token" not in text
        for page in PAGES:
            assert server.get(page)[0] == 200, page


def test_each_server_makes_its_own_token(report):
    tokens = set()
    for _ in range(2):
        with serve(str(report), "--host", "0.0.0.0") as server:
            tokens.add(_token(server))
    assert len(tokens) == 2
