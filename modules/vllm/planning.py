"""vLLM's files in the central, numbered plan (tlparse runs its vLLM parsers after the default
ones, so their files take numbers from the same counter, right after the envelope's others).

- `vllm_compilation_config`: a second, pretty-printed copy `vllm_compilation_config_N.json`
  (the generic artifact parser wrote the first); a payload that is not JSON fails the parser.
- graph dumps named `vllm_*` leave the generic graph_dump parser; the vLLM ones write the split
  graph, `vllm_submod_*`/`vllm_subgraph_*` and `vllm_post_grad.<idx>.<Pass>` as `.txt`, pattern
  sources `vllm_patterns.<Pass>` as `.py`, and each pass graph that has a baseline also gets
  its diff page `vllm_post_grad.<idx>.<Pass>.diff.html` (unnumbered name, like a GlobalFile).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tldb.module_api import PlanExtension
from tldb.plan import Emit, Output
from tldb.reader import Envelope

from . import state

PARSER_CONFIG = "vllm_compilation_config"
PARSER_SPLIT = "vllm_piecewise_split_graph"
PARSER_PIECEWISE = "vllm_piecewise_compile"
PARSER_PASSES = "vllm_post_grad_pass_diff"


class VllmPlan(PlanExtension):
    keys = frozenset({"artifact", "graph_dump"})

    def __init__(self) -> None:
        self.valid_configs = 0
        self.chain = state.PassChain()

    def replaces(self, parser: str, meta: dict[str, Any]) -> bool:
        name = state.dump_name(meta)
        return parser == "graph_dump" and name is not None and state.is_vllm_dump(name)

    def outputs(self, env: Envelope, meta: dict[str, Any], emit: Emit) -> Iterator[Output]:
        payload = env.payload or ""
        artifact = state.artifact_name(meta)
        if artifact == state.CONFIG:
            if state.parse_config(payload) is not None:
                self.valid_configs += 1
            if state.parse_json(payload) is None:
                emit.failed()
            else:
                yield emit.reformat(PARSER_CONFIG, "vllm_compilation_config.json")
        elif artifact == state.BEFORE_PASSES:
            self.chain.before_passes(self.valid_configs, payload)
        name = state.dump_name(meta)
        if name is None:
            return
        if name == state.SPLIT_GRAPH:
            yield emit.payload(PARSER_SPLIT, f"{name}.txt")
        elif name.startswith(state.SUBMOD_PREFIXES):
            yield emit.payload(PARSER_PIECEWISE, f"{name}.txt")
        elif name.startswith(state.PATTERNS_PREFIX):
            self.chain.patterns(self.valid_configs)
            yield emit.payload(PARSER_PASSES, f"{name}.py")
        elif name.startswith(state.PASS_PREFIX):
            yield emit.payload(PARSER_PASSES, f"{name}.txt")
            if self.chain.after_pass(self.valid_configs, payload) is not None:
                yield emit.global_file(PARSER_PASSES, f"{name}.diff.html")
