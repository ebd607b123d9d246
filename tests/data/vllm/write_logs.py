"""Writes the hand-made vLLM logs of this folder (run it from anywhere; it rewrites them).

No vLLM run is possible here (vLLM needs a GPU), so these logs are written by hand, with the
envelope kinds and payload fields vLLM logs (configuration, piecewise compile starts, compile
events, split graph, submodule, pass and pattern dumps): every payload below was typed for
these tests; the script only adds the glog prefixes, the tab-indented payload lines and the
md5 each envelope declares. Rerunning it gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PID = 40117


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.clock = 0

    def add(self, meta: dict, payload: str | None = None, where: str = "backends.py:600") -> None:
        self.clock += 37
        meta = {**meta, "rank": 0}
        if payload is not None:
            meta["has_payload"] = hashlib.md5(payload.encode()).hexdigest()
        seconds = 10 + self.clock // 1000
        stamp = f"V0312 09:41:{seconds:02d}.{self.clock % 1000:03d}000"
        self.lines.append(f"{stamp} {PID} vllm/compilation/{where}] {json.dumps(meta)}")
        if payload is not None:
            self.lines.extend("\t" + line for line in payload.split("\n"))

    def write(self, name: str) -> None:
        (HERE / name).write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def frame(frame_id: int) -> dict:
    return {"frame_id": frame_id, "frame_compile_id": 0, "attempt": 0}


def artifact(name: str, encoding: str = "json") -> dict:
    return {"artifact": {"name": name, "encoding": encoding}}


def dump(name: str) -> dict:
    return {"graph_dump": {"name": name}}


def config(prefix: str, sizes: str = "4, 8", passes: str = "fuse_norm_quant") -> str:
    return json.dumps(
        {
            "model": "acme/tiny-llama-2l",
            "prefix": prefix,
            "mode": "3",
            "backend": "inductor",
            "custom_ops": "none",
            "splitting_ops": "vllm::unified_attention, vllm::unified_attention_with_output",
            "cudagraph_mode": "FULL_AND_PIECEWISE",
            "compile_sizes": sizes,
            "compile_ranges_endpoints": "8192",
            "use_inductor_graph_partition": False,
            "inductor_passes": "",
            "enabled_passes": passes,
            "dynamic_shapes_type": "DynamicShapesType.BACKED",
            "dynamic_shapes_evaluate_guards": True,
        }
    )


def start(index: int, submod: str | None, low: int, high: int) -> str:
    fields = {"piecewise_index": index}
    if submod is not None:
        fields["submod_name"] = submod
    fields.update(
        total_piecewise_compiles=6,
        compile_range_start=low,
        compile_range_end=high,
        is_single_size=low == high,
        is_cudagraph_capture_size=low == high,
    )
    return json.dumps(fields)


SPLIT_GRAPH = """class GraphModule(torch.nn.Module):
    def forward(self, s72: "Sym(s72)", input_ids: "i32[s72]", positions: "i64[s72]"):
        submod_0 = self.submod_0(input_ids, s72);  input_ids = None
        submod_1 = self.submod_1(submod_0, positions);  submod_0 = None
        submod_2 = self.submod_2(submod_1, s72);  submod_1 = None
        return (submod_2,)

    class submod_0(torch.nn.Module):
        def forward(self, input_ids: "i32[s72]", s72: "Sym(s72)"):
            embedding: "bf16[s72, 256]" = torch.ops.aten.embedding.default(w, input_ids)
            return embedding"""

SUBMOD_0 = """class GraphModule(torch.nn.Module):
    def forward(self, input_ids: "i32[s72]", s72: "Sym(s72)"):
        embedding: "bf16[s72, 256]" = torch.ops.aten.embedding.default(w, input_ids)
        rms_norm: "bf16[s72, 256]" = torch.ops._C.rms_norm.default(embedding, w1, 1e-05)
        return (rms_norm,)"""

SUBMOD_2 = """class GraphModule(torch.nn.Module):
    def forward(self, attn_out: "bf16[s72, 256]", s72: "Sym(s72)"):
        o_proj: "bf16[s72, 256]" = torch.ops.aten.mm.default(attn_out, w_o)
        add: "bf16[s72, 256]" = torch.ops.aten.add.Tensor(o_proj, residual)
        return (add,)"""

POST_GRAD = """def forward(self, arg0_1: "bf16[s72, 256]"):
    mm: "bf16[s72, 256]" = torch.ops.aten.mm.default(arg0_1, w_o)
    add: "bf16[s72, 256]" = torch.ops.aten.add.Tensor(mm, residual)
    return (add,)"""

BEFORE_PASSES = """def forward(self, arg0_1: "bf16[s72, 256]"):
    rms_norm = torch.ops._C.rms_norm.default(arg0_1, w1, 1e-05)
    quant = torch.ops._C.static_scaled_fp8_quant.default(rms_norm, scale)
    view = torch.ops.aten.view.default(quant, [-1, 256])
    mm = torch.ops.aten.mm.default(view, w_o)
    return (mm,)"""

AFTER_FUSION = """def forward(self, arg0_1: "bf16[s72, 256]"):
    fused = torch.ops._C.rms_norm_static_fp8_quant.default(arg0_1, w1, scale, 1e-05)
    view = torch.ops.aten.view.default(fused, [-1, 256])
    mm = torch.ops.aten.mm.default(view, w_o)
    return (mm,)"""

AFTER_NOOP = """def forward(self, arg0_1: "bf16[s72, 256]"):
    fused = torch.ops._C.rms_norm_static_fp8_quant.default(arg0_1, w1, scale, 1e-05)
    mm = torch.ops.aten.mm.default(fused, w_o)
    return (mm,)"""

PATTERNS = """# Patterns of RMSNormQuantFusionPass
def rms_norm_quant_pattern(x, weight, scale):
    normed = torch.ops._C.rms_norm.default(x, weight, 1e-05)
    return torch.ops._C.static_scaled_fp8_quant.default(normed, scale)"""

METRICS = {
    "compile_id": "0/0",
    "co_name": "forward",
    "co_filename": "vllm/model_executor/models/llama.py",
    "co_firstlineno": 412,
    "cache_size": 0,
    "accumulated_cache_size": 0,
    "guard_count": 12,
    "shape_env_guard_count": 1,
    "graph_op_count": 21,
    "graph_node_count": 25,
    "graph_input_count": 4,
    "entire_frame_compile_time_s": 2.5,
    "backend_compile_time_s": 1.25,
    "restart_reasons": [],
    "dynamo_time_before_restart_s": 0.0,
    "has_guarded_code": True,
}


def dynamo_part(log: Log, frame_id: int, prefix: str) -> None:
    """What vLLM's backend logs while Dynamo compiles the model: the FX graph, the
    configuration, the split graph, the guards and the compile's metrics."""
    cid = frame(frame_id)
    log.add({"dynamo_output_graph": {"sizes": {"l_input_ids_": ["s72"]}}, **cid}, SUBMOD_0)
    log.add({**artifact("vllm_compilation_config"), **cid}, config(prefix))
    log.add({**dump("vllm_piecewise_split_graph"), **cid}, SPLIT_GRAPH)
    log.add({"dynamo_cpp_guards_str": {}, **cid}, "TREE_GUARD_MANAGER:\n+- RootGuardManager")
    metrics = {**METRICS, "compile_id": f"{frame_id}/0"}
    log.add({"compilation_metrics": metrics, **cid}, where="utils.py:1724")


def piecewise_log() -> None:
    """One compile call: a range and two sizes, submodule dumps, an FX cache hit."""
    log = Log()
    dynamo_part(log, 0, "backbone")
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 1, 8192))
    log.add(dump("vllm_submod_0"), SUBMOD_0)
    log.add({"inductor_post_grad_graph": {}}, POST_GRAD)
    log.add(artifact("vllm_piecewise_compile_start"), start(1, "submod_2", 1, 8192))
    log.add(dump("vllm_submod_2"), SUBMOD_2)
    log.add(artifact("fx_graph_cache_hit"), json.dumps({"key": "f3k2", "cache_state": "hit"}))
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 4, 4))
    log.add(dump("vllm_subgraph_0_size_4"), SUBMOD_0)
    log.add(artifact("vllm_piecewise_compile_start"), start(1, None, 4, 4))
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 8, 8))
    # Not a compile start tlparse accepts (no piecewise_index): ignored, still vLLM.
    log.add(artifact("vllm_piecewise_compile_start"), json.dumps({"submod_name": "submod_9"}))
    log.write("piecewise.log")


def passes(log: Log, baseline: bool) -> None:
    """Post-grad pass graphs of one subgraph compile, chained pass after pass."""
    if baseline:
        log.add(artifact("before_post_grad_graph", "string"), BEFORE_PASSES)
    log.add(dump("vllm_post_grad.0.RMSNormQuantFusionPass"), AFTER_FUSION)
    log.add(dump("vllm_post_grad.1.NoOpEliminationPass"), AFTER_NOOP)
    log.add(dump("vllm_post_grad.2.FixFunctionalizationPass"), AFTER_NOOP)


def compile_calls_log() -> None:
    """Two compile calls with one shared configuration; the second is an AOT cache hit."""
    log = Log()
    log.add(artifact("vllm_compile_event"), json.dumps({"type": "fresh_compile"}))
    dynamo_part(log, 0, "backbone")
    log.add({**dump("vllm_patterns.RMSNormQuantFusionPass"), **frame(0)}, PATTERNS)
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 1, 8192))
    log.add(dump("vllm_submod_0"), SUBMOD_0)
    passes(log, baseline=True)
    log.add(artifact("vllm_piecewise_compile_start"), start(1, "submod_2", 1, 8192))
    log.add(dump("vllm_submod_2"), SUBMOD_2)
    log.add(artifact("vllm_compile_event"), json.dumps({"type": "aot_cache_hit"}))
    dynamo_part(log, 1, "backbone")
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 1, 8192))
    log.write("compile_calls.log")


def two_models_log() -> None:
    """Two compile calls with different configurations (a model and its draft head); the
    pass chain starts again in the second call, whose first pass has no baseline."""
    log = Log()
    dynamo_part(log, 0, "backbone")
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 1, 8192))
    passes(log, baseline=True)
    dynamo_part(log, 1, "eagle_head")
    log.add(artifact("vllm_piecewise_compile_start"), start(0, "submod_0", 1, 8192))
    passes(log, baseline=False)
    log.write("two_models.log")


if __name__ == "__main__":
    piecewise_log()
    compile_calls_log()
    two_models_log()
