"""`tldb diff` on real torch 2.13 traces: a recompile pair and the same compile in two runs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import data_path
from torch213_log import envelopes

from tldb import cli_extra
from tldb.diff import normalize_compile_id
from tldb.errors import InputError
from tldb.loader import build_database


def run(command, *args):
    """Invoke a command of tldb/cli_extra.py (what `tldb diff|search ...` runs)."""
    return CliRunner().invoke(command, [str(a) for a in args])


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diff")
    paths = {}
    for name in ("cache_1", "cache_2", "dynamo"):
        paths[name] = folder / f"{name}.db"
        build_database([data_path(f"torch213/{name}.log")], paths[name])
    return paths


def payload_of(name: str, kind: str, compile_id: tuple[int, int]) -> str:
    for k, meta, payload in envelopes(name):
        if k == kind and (meta.get("frame_id"), meta.get("frame_compile_id")) == compile_id:
            return payload
    raise AssertionError(f"no {kind} for {compile_id} in {name}")


def test_compile_ids_in_every_spelling():
    assert normalize_compile_id("0/1") == "[0/1]"
    assert normalize_compile_id(" [0/1] ") == "[0/1]"
    assert normalize_compile_id("0/1_2") == "[0/1_2]"
    assert normalize_compile_id("[0/1_0]") == "[0/1]"
    assert normalize_compile_id("!3/0/1") == "[!3/0/1]"
    with pytest.raises(InputError):
        normalize_compile_id("zero")


def test_recompile_pair_shows_guard_and_graph_changes(dbs):
    """cache_1 recompiles [0/0] as [0/1] with the size made dynamic (automatic dynamic)."""
    result = run(cli_extra.diff, str(dbs["cache_1"]), "0/0", "[0/1]")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    # the log's own guard trees: 0/0 checks a static size, 0/1 a symbolic one
    static = payload_of("cache_1", "dynamo_cpp_guards_str", (0, 0))
    dynamic = payload_of("cache_1", "dynamo_cpp_guards_str", (0, 1))
    removed = [ln for ln in static.splitlines() if "TENSOR_MATCH" in ln and ln not in dynamic]
    added = [ln for ln in dynamic.splitlines() if "TENSOR_MATCH" in ln and ln not in static]
    assert removed and added
    assert "### guards: dynamo_cpp_guards_str (changed)" in out
    assert "-" + removed[0] in out.splitlines()
    assert "+" + added[0] in out.splitlines()
    graph_b = payload_of("cache_1", "dynamo_output_graph", (0, 1))
    signature = next(ln for ln in graph_b.splitlines() if "def forward" in ln)
    assert "### graphs: dynamo_output_graph (changed)" in out
    assert "+" + signature in out.splitlines()
    assert "Sym(s" in signature
    assert "### graphs: aot_inference_graph (changed)" in out
    assert "### graphs: inductor_post_grad_graph (changed)" in out
    assert "### output code: inductor_output_code (changed)" in out
    assert "+recompile_reason: 0/0: tensor 'x' size mismatch" in out


def test_same_compile_in_two_runs(dbs, tmp_path):
    """Run 1 missed the caches, run 2 hit them: same output code, different cache counts."""
    page = tmp_path / "diff.html"
    result = run(
        cli_extra.diff,
        str(dbs["cache_1"]),
        str(dbs["cache_2"]),
        "0/0",
        "--html",
        str(page),
        "--exit-code",
    )
    assert result.exit_code == 1, result.stderr  # something differs
    out = result.stdout
    assert "### output code: inductor_output_code (identical)" in out
    assert "-inductor_fx_local_cache_miss_count: 1" in out.splitlines()
    assert "+inductor_fx_local_cache_hit_count: 1" in out.splitlines()
    text = page.read_text(encoding="utf-8")
    assert "<h1>Compile diff</h1>" in text
    assert 'class="add">+inductor_fx_local_cache_hit_count: 1' in text


def test_identical_compile_and_errors(dbs):
    same = run(cli_extra.diff, str(dbs["dynamo"]), "2/0", "2/0", "--exit-code")
    assert same.exit_code == 0, same.stderr
    assert "changed" not in same.stdout.split("\n\n")[1]
    missing = run(cli_extra.diff, str(dbs["dynamo"]), "2/0", "9/9")
    assert missing.exit_code == 1
    assert isinstance(missing.exception, InputError)  # `tldb` prints it as one line
    assert "no guards, graphs, code or metrics for [9/9]" in str(missing.exception)


def test_dtype_recompile(dbs):
    result = run(cli_extra.diff, str(dbs["dynamo"]), "2/0", "2/1")
    assert result.exit_code == 0, result.stderr
    assert "torch.float32" in result.stdout and "torch.float64" in result.stdout
    assert "+recompile_reason: 2/0: tensor 'x' dtype mismatch" in result.stdout
