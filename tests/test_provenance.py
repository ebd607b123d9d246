"""Provenance tracking pages (`-i`): parity with tlparse on logs written here (JIT and AOT code,
the older graph names, AOT wrapper code as a graph_dump, kernel names with several colons,
kernel stack traces), tlparse's conformance tests 10-18 on its own inputs (extended suite), and
what tldb adds.

The line mappings are checked against the reference tlparse's own pages, read at test time (the
`oracle` fixture), plus a few literal values from the reference notes. tldb's page is its own
(escaped text, its own script), so only the embedded mapping JSON is compared, and the page is
checked for what makes it work: listings aligned with the mapping numbers, nothing from the log
able to close a tag.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT, data_path, run_tldb

INPUTS = Path("tlparse-tests") / "inputs"
MAPPINGS = re.compile(r'<script id="lineMappings" type="application/json">(.*?)</script>', re.S)
LISTING = re.compile(
    r'<div class="code" data-kind="(\w+)" data-shift="(-?\d+)">\n((?:<div class="l">.*?</div>\n)*)</div>'
)
LINE = re.compile(r'<div class="l">(.*?)</div>')
INDEX_LINK = re.compile(r"<a href='(provenance_tracking_[^']*)'>([^<]*)</a>")


def _load_line_mappings():
    path = ROOT / "modules" / "provenance" / "line_mappings.py"
    spec = importlib.util.spec_from_file_location("provenance_line_mappings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lm = _load_line_mappings()


def mappings_of(page: Path) -> dict:
    found = MAPPINGS.search(page.read_text(encoding="utf-8"))
    assert found, f"no lineMappings script in {page}"
    return json.loads(found.group(1))


def listings_of(page: Path) -> dict[str, tuple[int, list[str]]]:
    """kind -> (shift, displayed lines as text) of a tldb provenance page."""
    text = page.read_text(encoding="utf-8")
    return {
        kind: (int(shift), [html.unescape(line) for line in LINE.findall(body)])
        for kind, shift, body in LISTING.findall(text)
    }


def pages(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("provenance_tracking_*.html"))


def report_pair(oracle, source: Path, tmp_path: Path, *flags: str) -> tuple[Path, Path]:
    """The reference's and tldb's reports of the same input with the same flags."""
    ref, got = tmp_path / "tlparse", tmp_path / "tldb"
    common = ["--overwrite", "--no-browser", *flags]
    subprocess.run([*oracle, str(source), "-o", str(ref), *common], check=True, capture_output=True)
    result = run_tldb("report", str(source), "-o", str(got), *common)
    assert result.returncode == 0, result.stderr
    return ref, got


def assert_same_pages(ref: Path, got: Path) -> None:
    """Same provenance pages, same mapping JSON in each, same index links in the same order."""
    assert pages(got) == pages(ref)
    for name in pages(ref):
        assert mappings_of(got / name) == mappings_of(ref / name), name
    index = INDEX_LINK.findall((got / "index.html").read_text(encoding="utf-8"))
    assert index == INDEX_LINK.findall((ref / "index.html").read_text(encoding="utf-8"))


def assert_listings_follow_mappings(page: Path) -> None:
    """Every mapped line number lands on a real line of the right listing."""
    mappings = mappings_of(page)
    listings = listings_of(page)
    sources = {
        "preToPost": "pre",
        "postToPre": "post",
        "pyCodeToPost": "py",
        "postToPyCode": "post",
        "cppCodeToPost": "cpp",
        "postToCppCode": "post",
    }
    for key, kind in sources.items():
        for number in mappings.get(key, {}):
            shift, lines = listings[kind]
            index = int(number) - 1 + shift
            assert 0 <= index < len(lines), (key, number)
            assert lines[index].strip(), (key, number)


# Conformance tests 10-16: (input, files that must exist, the page, literal spot checks).
CASES = {
    "aot_cuda": (
        "inductor_provenance_aot_cuda_log.txt",
        [
            "-_-_-_-/before_pre_grad_graph_0.txt",
            "-_-_-_-/after_post_grad_graph_6.txt",
            "-_-_-_-/inductor_provenance_tracking_node_mappings_12.json",
        ],
        "provenance_tracking_-_-_-_-.html",
        {
            ("cppCodeToPost", "1060"): [14, 27, 24],
            ("cppCodeToPost", "1084"): [35, 31, 28, 34, 33, 32],
            ("preToPost", "8"): [11, 14, 15],
            ("cppCodeToPost", "*"): [1060, 1064, 1071, 1079, 1084],
            ("pyCodeToPost", "*"): [],
            ("postToPyCode", "*"): [],
        },
    ),
    "aot_debug_handle": (
        "inductor_provenance_aot_debug_handle_log.txt",
        [
            "-_-_-_-/before_pre_grad_graph_0.txt",
            "-_-_-_-/after_post_grad_graph_6.txt",
            "-_-_-_-/inductor_provenance_tracking_node_mappings_10.json",
        ],
        "provenance_tracking_-_-_-_-.html",
        {("cppCodeToPost", "*"): [1074, 1079, 1087, 1096, 1102]},
    ),
    "aot": (
        "inductor_provenance_aot_log.txt",
        ["-_-_-_-/inductor_provenance_tracking_node_mappings_11.json"],
        "provenance_tracking_-_-_-_-.html",
        {("cppCodeToPost", "*"): [813, 821, 829, 834]},
    ),
    "aot_old": (
        "inductor_provenance_aot_log_old.txt",
        [
            "-_-_-_-/inductor_pre_grad_graph_0.txt",
            "-_-_-_-/inductor_post_grad_graph_8.txt",
            "-_-_-_-/inductor_provenance_tracking_node_mappings_11.json",
        ],
        "provenance_tracking_-_-_-_-.html",
        {("cppCodeToPost", "*"): [704, 717]},
    ),
    "jit_cuda": (
        "inductor_provenance_jit_cuda_log.txt",
        [
            "-_0_0_0/before_pre_grad_graph_1.txt",
            "-_0_0_0/after_post_grad_graph_8.txt",
            "-_0_0_0/inductor_provenance_tracking_node_mappings_14.json",
        ],
        "provenance_tracking_-_0_0_0.html",
        {
            ("pyCodeToPost", "*"): [186, 192, 197, 201, 207],
            ("cppCodeToPost", "*"): [],
            ("postToCppCode", "*"): [],
        },
    ),
    "jit": (
        "inductor_provenance_jit_log.txt",
        ["-_0_0_0/inductor_provenance_tracking_node_mappings_13.json"],
        "provenance_tracking_-_0_0_0.html",
        {("pyCodeToPost", "*"): [132, 138, 142, 147]},
    ),
    "jit_debug_handle": (
        "inductor_provenance_jit_debug_handle_log.txt",
        [
            "-_0_0_0/after_post_grad_graph_11.txt",
            "-_0_0_0/inductor_provenance_tracking_node_mappings_14.json",
        ],
        "provenance_tracking_-_0_0_0.html",
        {("pyCodeToPost", "*"): [197, 204, 211, 216, 223]},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_provenance_tracking(case, corpus, oracle, tmp_path):
    """Tests 10-16 on tlparse's inputs (CUDA and CPU, JIT and AOT, debug handles, the old
    graph names): the files exist and the mapping JSON equals tlparse's exactly."""
    log, files, page, spots = CASES[case]
    ref, got = report_pair(oracle, corpus / INPUTS / log, tmp_path, "--inductor-provenance")
    for name in files:
        assert (got / name).is_file(), name
    assert (got / page).is_file()
    assert_same_pages(ref, got)
    mappings = mappings_of(got / page)
    for (key, line), expected in spots.items():
        if line == "*":
            assert sorted(int(n) for n in mappings[key]) == expected, key
        else:
            assert mappings[key][line] == expected, (key, line)
    assert_listings_follow_mappings(got / page)


#: torch 2.13 CPU runs with INDUCTOR_PROVENANCE=1 (tests/data): a JIT compile (C++ kernels
#: called from the Python wrapper) and an AOT Inductor package (C++ wrapper, no compile id):
#: name -> (its provenance page, the code mapping that must not be empty).
DATA_CASES = {
    "provenance": ("provenance_tracking_-_0_0_0.html", "pyCodeToPost"),
    "aoti": ("provenance_tracking_-_-_-_-.html", "cppCodeToPost"),
}


@pytest.mark.parametrize("flags", [(), ("--plain-text",)], ids=["html", "plain"])
@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_provenance_of_real_compiles(name, flags, oracle, tmp_path):
    """The mapping JSON equals tlparse's, the listings follow it, and the kernel stack
    traces' readable page is tlparse's, byte for byte."""
    page, code = DATA_CASES[name]
    log = data_path(f"torch213/{name}.log")
    ref, got = report_pair(oracle, log, tmp_path, "-i", *flags)
    assert_same_pages(ref, got)
    mappings = mappings_of(got / page)
    assert mappings[code] and mappings["preToPost"] and mappings["postToPre"]
    assert_listings_follow_mappings(got / page)
    readable = sorted(p.relative_to(ref).as_posix() for p in ref.rglob("*_readable.html"))
    assert readable
    for rel in readable:
        assert (got / rel).read_bytes() == (ref / rel).read_bytes(), rel


@pytest.mark.parametrize("case", ["jit", "aot"])
def test_plain_text_mappings_match(case, corpus, oracle, tmp_path):
    """With -p the Python lines are counted on the raw code, as tlparse does (tlparse's
    inputs; the in-repo logs are checked with -p above)."""
    log = corpus / INPUTS / CASES[case][0]
    ref, got = report_pair(oracle, log, tmp_path, "--inductor-provenance", "--plain-text")
    assert_same_pages(ref, got)
    assert_listings_follow_mappings(got / CASES[case][2])


CID = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
#: Stack traces of two kernels, one written with literal backslash-n sequences (as tlparse's
#: input does), one with real newlines, trailing newlines and markup.
STACK_TRACES = {
    "triton_poi_fused_add_0": ['File "model.py", line 1, in f\\n  foo(<x>)\\n'],
    "cpp_fused_mul_1": ['File "model.py", line 2, in g\n  bar()\n\n', "second & trace"],
}


def test_provenance_stack_trace_readable(log_writer, oracle, tmp_path):
    """Test 18's rules: kernel stack traces get a readable page with real newlines, also without
    -i; a payload that is not JSON gets none. The page equals tlparse's."""
    traces = artifact("inductor_provenance_tracking_kernel_stack_traces", "json", **CID)
    log_writer.add(traces, json.dumps(STACK_TRACES))
    log_writer.add(traces, "{not json")
    log = log_writer.write(tmp_path / "traces.log")
    for flags in ((), ("-i",)):
        ref, got = report_pair(oracle, log, tmp_path / "-".join(flags or ("plain",)), *flags)
        readable = sorted(p.relative_to(got).as_posix() for p in got.rglob("*_readable.html"))
        assert readable == sorted(
            p.relative_to(ref).as_posix() for p in ref.rglob("*_readable.html")
        )
        assert len(readable) == 1
        text = (got / readable[0]).read_text(encoding="utf-8")
        assert text == (ref / readable[0]).read_text(encoding="utf-8")
        assert "line 1, in f\n  foo(&lt;x&gt;)</pre>" in text and "\\n" not in text
        assert "  bar()</pre>" in text and "second &amp; trace" in text
        index = (got / "index.html").read_text(encoding="utf-8")
        assert '_readable.html">readable_html</a>' in index


@pytest.mark.extended
def test_provenance_stack_trace_readable_of_corpus_log(corpus, tmp_path):
    """Test 18 on its own input."""
    out = tmp_path / "out"
    log = corpus / INPUTS / "inductor_provenance_extended_log.txt"
    result = run_tldb("report", str(log), "-o", str(out), "--no-browser", "-i")
    assert result.returncode == 0, result.stderr
    names = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert any(
        "inductor_provenance_tracking_kernel_stack_traces" in n and n.endswith(".json")
        for n in names
    )
    readable = [n for n in names if n.endswith("_readable.html")]
    assert readable
    text = (out / readable[0]).read_text(encoding="utf-8")
    assert "line 1\n  foo()" in text
    assert "\\n" not in text
    assert '_readable.html">readable_html</a>' in (out / "index.html").read_text(encoding="utf-8")


# A small log of tldb's own: unknown, raw-folder and two real compile ids, hostile text.
HOSTILE = "</script><script>alert(1)</script><!--"
PRE_GRAPH = f"""class GraphModule(torch.nn.Module):
    def forward(self, L_x_: "f32[4]"):
        l_x_ = L_x_
        # {HOSTILE}
        add: "f32[4]" = l_x_ + 1;  l_x_ = None
        mm: "f32[4, 4]" = torch.mm(add, add)
        return (mm,)
"""
POST_GRAPH = """class <lambda>(torch.nn.Module):
    def forward(self, arg0_1: "f32[4]"):
        add: "f32[4]" = torch.ops.aten.add.Tensor(arg0_1, 1);  arg0_1 = None

        mm: "f32[4, 4]" = torch.ops.aten.mm.default(add, add)
        return (mm,)
"""
PY_CODE = f"""
# AOT ID: ['0_inference']
import torch
triton_poi_fused_add_0 = async_compile.triton('triton_poi_fused_add_0', '''
def triton_poi_fused_add_0(in_ptr0, out_ptr0):  # <b>not bold</b> & {HOSTILE}
''')

def call(args):
    arg0_1, = args
    buf0 = empty_strided((4, ), (1, ))
    triton_poi_fused_add_0.run(arg0_1, buf0)
    # Topologically Sorted Source Nodes: [mm] extern_kernels.mm:3
    buf1 = empty_strided((4, 4), (4, 1))
    extern_kernels.mm(buf0, buf0, out=buf1)
    return (buf1, )
"""
CPP_CODE = """

#include <torch/csrc/inductor/aoti_include/cpu.h>
static inline void triton_poi_fused_mul_0:7(float* x) {}
void AOTInductorModel::run_impl(
    AtenTensorHandle* input_handles) {
    // Topologically Sorted Source Nodes: [mul] triton_poi_fused_mul_0:7
    int64_t triton_poi_fused_mul_0_xnumel = 16;
    int64_t triton_poi_fused_mul_0_xnumel_1 = 16;
    call_triton_poi_fused_mul_0(buf0, 16L);
    call_triton_poi_fused_mul_0(buf1, 16L);
} // AOTInductorModel::run_impl
"""
CPP_PRE = 'class M(torch.nn.Module):\n    def forward(self, x):\n        mul: "f32[4]" = x * 2\n'
CPP_POST = (
    'class <lambda>(torch.nn.Module):\n    def forward(self, a: "f32[4]"):\n'
    '        mul: "f32[4]" = torch.ops.aten.mul.Tensor(a, 2)\n'
)


def artifact(name: str, encoding: str = "string", **cid) -> dict:
    return {**cid, "artifact": {"name": name, "encoding": encoding}}


def hostile_log(log_writer, path: Path) -> Path:
    jit = {"frame_id": 1, "frame_compile_id": 0, "attempt": 0}
    aot = {"frame_id": 2, "frame_compile_id": 0, "attempt": 0}
    raw = {"frame_id": 0, "frame_compile_id": 0}  # written under -_0_0_-, listed as [0/0]
    py_nodes = {
        "preToPost": {"add": ["add"], "mm": ["mm", "nope"], "ghost": ["add"]},
        "postToPre": {"add": ["add"], "mm": ["mm"]},
        "cppCodeToPost": {"triton_poi_fused_add_0": ["add"], "extern_kernels.mm:3": ["mm"]},
        "postToCppCode": {"add": ["triton_poi_fused_add_0"], "mm": ["extern_kernels.mm:3"]},
        "version": 2.0,
    }
    cpp_nodes = {
        "preToPost": {"mul": ["mul"]},
        "postToPre": {"mul": ["mul"]},
        "cppCodeToPost": {"triton_poi_fused_mul_0:7": ["mul"]},
        "postToCppCode": {"mul": ["triton_poi_fused_mul_0:7"]},
    }
    w = log_writer
    w.add(artifact("before_pre_grad_graph", frame_id="x"), PRE_GRAPH)  # unknown compile id
    w.add(artifact("before_pre_grad_graph", **raw), PRE_GRAPH)
    w.add(
        artifact("inductor_provenance_tracking_node_mappings", "json", **raw), json.dumps(py_nodes)
    )
    w.add(artifact("before_pre_grad_graph", **jit), "stale = 1\n")  # replaced by the next one
    w.add(artifact("before_pre_grad_graph", **jit), PRE_GRAPH)
    w.add(artifact("after_post_grad_graph", **jit), POST_GRAPH)
    w.add({**jit, "inductor_output_code": {"filename": "/tmp/t/cabc.py"}}, PY_CODE)
    w.add(
        artifact("inductor_provenance_tracking_node_mappings", "json", **jit), json.dumps(py_nodes)
    )
    w.add({**aot, "inductor_pre_grad_graph": {}}, CPP_PRE)
    w.add({**aot, "inductor_post_grad_graph": {}}, CPP_POST)
    w.add(artifact("inductor_aot_wrapper_code", **aot), CPP_CODE)
    w.add(
        artifact("inductor_provenance_tracking_node_mappings", "json", **aot), json.dumps(cpp_nodes)
    )
    w.add({"chromium_event": {}}, "{}")  # no compile id: [-/-]
    return w.write(path)


@pytest.mark.parametrize("flags", [(), ("--plain-text",)], ids=["html", "plain"])
def test_unknown_raw_folders_and_hostile_text(flags, log_writer, oracle, tmp_path):
    """(unknown), -_-_-_- and raw-folder pages, as tlparse; log text never escapes its <pre>."""
    log = hostile_log(log_writer, tmp_path / "hostile.log")
    ref, got = report_pair(oracle, log, tmp_path, "-i", *flags)
    assert_same_pages(ref, got)
    assert pages(got) == sorted(
        f"provenance_tracking_{d}.html"
        for d in ("(unknown)", "-_0_0_0", "-_1_0_0", "-_2_0_0", "-_-_-_-")
    )
    for empty in ("(unknown)", "-_0_0_0", "-_-_-_-"):
        assert mappings_of(got / f"provenance_tracking_{empty}.html") == {}
    jit, aot = got / "provenance_tracking_-_1_0_0.html", got / "provenance_tracking_-_2_0_0.html"
    assert mappings_of(jit)["pyCodeToPost"]  # the Python kernels were found ...
    # ... and the C++ line after the kernel's name, skipping only `_xnumel = ` (so `_xnumel_1 =`)
    assert mappings_of(aot)["cppCodeToPost"] == {"7": [3]}
    for page in (jit, aot):
        assert_listings_follow_mappings(page)
    text = jit.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<b>not bold" not in text
    assert text.count("</script>") == 2  # the mapping JSON and the page script, nothing else
    _, py = listings_of(jit)["py"]
    assert py == PY_CODE.split("\n")[:-1]  # every line shown, as written
    assert listings_of(jit)["pre"][1] == PRE_GRAPH.split("\n")[:-1]  # the latest graph
    visible = _visible_text(text)
    assert f"# {HOSTILE}" in visible and "<b>not bold</b>" in visible


def test_python_lines_ignore_the_page_script(log_writer, oracle, tmp_path):
    """Kernel names are searched in the code part of the output-code page only, as in tlparse."""
    cid = {"frame_id": 0, "frame_compile_id": 0, "attempt": 0}
    code = "# AOT ID: x\ndef call(args):\n    function(args)\n    return ()\n"
    nodes = {"cppCodeToPost": {"function": ["f"]}, "postToCppCode": {"f": ["function"]}}
    log_writer.add({**cid, "inductor_post_grad_graph": {}}, "class G:\n    f = g(x)\n")
    log_writer.add({**cid, "inductor_output_code": {"filename": "/t/cx.py"}}, code)
    log_writer.add(
        artifact("inductor_provenance_tracking_node_mappings", "json", **cid), json.dumps(nodes)
    )
    ref, got = report_pair(oracle, log_writer.write(tmp_path / "short.log"), tmp_path, "-i")
    assert_same_pages(ref, got)
    assert mappings_of(got / "provenance_tracking_-_0_0_0.html")["pyCodeToPost"] == {"3": [2]}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("script", "style") and self.hidden > 0

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def _visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return "".join(parser.parts)


def test_only_with_the_flag(log_writer, tmp_path):
    """No pages and no index section without -i, nor in export mode (tlparse returns early)."""
    log = hostile_log(log_writer, tmp_path / "hostile.log")
    for flags in ((), ("-i", "--export")):
        out = tmp_path / "-".join(flags or ("plain",))
        result = run_tldb("report", str(log), "-o", str(out), "--no-browser", *flags)
        assert result.returncode == 0, result.stderr
        assert pages(out) == []
        assert "Provenance Tracking" not in (out / "index.html").read_text(encoding="utf-8")
    with_flag = run_tldb("report", str(log), "-o", str(tmp_path / "i"), "--no-browser", "-i")
    assert with_flag.returncode == 0, with_flag.stderr
    assert pages(tmp_path / "i")
    assert "Provenance Tracking" in (tmp_path / "i" / "index.html").read_text(encoding="utf-8")


# An AOT compile as older torch versions log it: no compile id, the inductor_pre/post_grad_graph
# names, the C++ wrapper code as a graph_dump, and namespaced kernel names with debug handles
# (several colons: the C++ name is cut at the last one).
AOT_PRE = (
    "class M(torch.nn.Module):\n    def forward(self, x, w):\n"
    '        mm: "f32[4, 4]" = torch.mm(x, w)\n'
    '        relu: "f32[4, 4]" = torch.relu(mm)\n        return (relu,)\n'
)
AOT_POST = (
    'class <lambda>(torch.nn.Module):\n    def forward(self, a: "f32[4, 4]", b: "f32[4, 4]"):\n'
    '        mm: "f32[4, 4]" = torch.ops.aten.mm.default(a, b)\n'
    '        relu: "f32[4, 4]" = torch.ops.aten.relu.default(mm)\n        return (relu,)\n'
)
AOT_WRAPPER = """

#include <torch/csrc/inductor/aoti_include/cpu.h>
void AOTInductorModel::run_impl(
    AtenTensorHandle* input_handles) {
    // Topologically Sorted Source Nodes: [mm] at::_ops::mm::call:4
    at::_ops::mm::call(buf0, buf1, buf2);
    // Topologically Sorted Source Nodes: [relu] cpp_fused_relu_0:5
    int64_t cpp_fused_relu_0_xnumel = 16;
    cpp_fused_relu_0(buf2);
    at::_ops::mm::call(buf3, buf4, buf5);
} // AOTInductorModel::run_impl
"""
AOT_NODES = {
    "preToPost": {"mm": ["mm"], "relu": ["relu"]},
    "postToPre": {"mm": ["mm"], "relu": ["relu"]},
    "cppCodeToPost": {
        "at::_ops::mm::call:4": ["mm"],
        "cpp_fused_relu_0:5": ["relu"],
        "at::_ops::mm::call": ["mm"],
    },
    "postToCppCode": {"mm": ["at::_ops::mm::call:4"], "relu": ["cpp_fused_relu_0:5"]},
}


@pytest.mark.parametrize("flags", [(), ("--plain-text",)], ids=["html", "plain"])
def test_aot_wrapper_graph_dump_with_namespaced_kernels(flags, log_writer, oracle, tmp_path):
    """Tests 13 and 17's quirks: the fallback graph names, the graph_dump wrapper, several
    colons in a kernel name; the mappings equal tlparse's."""
    log_writer.add({"inductor_pre_grad_graph": {}}, AOT_PRE)
    log_writer.add({"inductor_post_grad_graph": {}}, AOT_POST)
    dump = {"name": "inductor_aot_wrapper_code", "type": "cpp", "filename": "/t/cx.wrapper.cpp"}
    log_writer.add({"graph_dump": dump}, AOT_WRAPPER)
    nodes = artifact("inductor_provenance_tracking_node_mappings", "json")
    log_writer.add(nodes, json.dumps(AOT_NODES))
    ref, got = report_pair(oracle, log_writer.write(tmp_path / "aot.log"), tmp_path, "-i", *flags)
    assert_same_pages(ref, got)
    assert pages(got) == ["provenance_tracking_-_-_-_-.html"]
    page = got / "provenance_tracking_-_-_-_-.html"
    for name in ("inductor_pre_grad_graph_0.txt", "inductor_aot_wrapper_code_2.txt"):
        assert (got / "-_-_-_-" / name).is_file()
    mappings = mappings_of(page)
    assert mappings["cppCodeToPost"] and mappings["preToPost"] and not mappings["pyCodeToPost"]
    assert_listings_follow_mappings(page)


def test_node_lines():
    graph = "class G:\n    # x = 1\n    a: 'f32' = f(b)\n\n    a = g()\n    c = h\n    :skip = 1\n"
    assert lm.node_lines(graph) == {"class G": 1, "a": 5, "c": 6}


def test_python_kernel_names_split_at_the_first_colon():
    code = "# AOT ID: x\ndef call(args):\n    # k:1:2 here\n    k(a)\n    k(b)\n"
    assert lm.python_kernel_lines(code, ["k:1:2", "k", "absent"]) == {"k:1:2": [4], "k": [3, 4, 5]}


def test_python_lines_before_the_aot_id_wrap_like_tlparse():
    code = "def call(args): k()\n\n# AOT ID: late\n"
    assert lm.python_kernel_lines(code, ["k"]) == {"k": [2**64 - 1]}


def test_cpp_kernel_names_split_at_the_last_colon():
    code = "\n".join(
        [
            "",
            "void M::run_impl(",
            "  // a:b:7",
            "  int64_t a:b_xnumel = 4;",
            "  n = a:b_xnumel_2 = 1;",
        ]
    )
    # pure name `a:b`; the line after the full name, skipping only `_xnumel = ` (as 0.4.3 does)
    assert lm.cpp_kernel_lines(code, ["a:b:7"]) == {"a:b:7": [4]}
    # no qualifying follower: tlparse tries the next full-name line, then falls back
    assert lm.cpp_kernel_lines("void M::run_impl(\n  q:1\n", ["q:1"]) == {"q:1": [2]}


def test_invalid_mappings_give_an_empty_object():
    assert lm.line_mappings("", "", "", "", "") == {}
    assert lm.line_mappings("{not json", "a = 1", "a = 1", "", "") == {}
    empty = lm.line_mappings("[1, 2]", "", "", "", "")
    assert set(empty) == {
        "preToPost",
        "postToPre",
        "pyCodeToPost",
        "postToPyCode",
        "cppCodeToPost",
        "postToCppCode",
    } and not any(empty.values())
