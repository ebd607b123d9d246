"""What vLLM's log entries mean, shared by the plan extension (at load) and the summary (at
render): which payloads tlparse accepts as a configuration, a piecewise compile start or a
compile event, and the pass-diff chain. Both sides must agree exactly, or a diff page would
be numbered at load and not rendered (or the reverse), so the rules live here once.

tlparse reads these payloads into typed Rust structs: a value of the wrong JSON type makes the
whole payload count as absent, which is what the checks below reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tldb import jsonfmt

CONFIG = "vllm_compilation_config"
COMPILE_START = "vllm_piecewise_compile_start"
COMPILE_EVENT = "vllm_compile_event"
BEFORE_PASSES = "before_post_grad_graph"
SPLIT_GRAPH = "vllm_piecewise_split_graph"
SUBMOD_PREFIXES = ("vllm_subgraph_", "vllm_submod_")
PASS_PREFIX = "vllm_post_grad."
PATTERNS_PREFIX = "vllm_patterns."
#: Only this compile event type marks a compile call as a cache hit.
CACHE_HIT = "aot_cache_hit"

#: Configuration fields, as tlparse reads them: text or true/false, each optional.
TEXT_FIELDS = (
    "model",
    "prefix",
    "mode",
    "backend",
    "custom_ops",
    "splitting_ops",
    "cudagraph_mode",
    "compile_sizes",
    "compile_ranges_split_points",
    "compile_ranges_endpoints",
    "inductor_passes",
    "enabled_passes",
    "dynamic_shapes_type",
)
FLAG_FIELDS = ("use_inductor_graph_partition", "dynamic_shapes_evaluate_guards")

_I32 = range(-(2**31), 2**31)
_I64 = range(-(2**63), 2**63)


def parse_json(payload: str | None) -> Any:
    """The payload as JSON, or None when it is not JSON (tlparse's parse then fails)."""
    try:
        return jsonfmt.loads_like_serde(payload or "")
    except ValueError:
        return None


def _is_int(value: Any, bounds: range) -> bool:
    return type(value) is int and value in bounds


def parse_config(payload: str | None) -> dict[str, Any] | None:
    """The configuration tlparse would accept, normalized (an old-style split-points field
    filled from `compile_ranges_endpoints` when absent), or None."""
    value = parse_json(payload)
    if not isinstance(value, dict):
        return None
    config: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            return None
        config[name] = item
    for name in FLAG_FIELDS:
        item = value.get(name)
        if item is not None and not isinstance(item, bool):
            return None
        config[name] = item
    if config["compile_ranges_split_points"] is None:
        config["compile_ranges_split_points"] = config["compile_ranges_endpoints"]
    return config


@dataclass
class Subgraph:
    """One `vllm_piecewise_compile_start`: a submodule compiled for a range or one size."""

    index: int
    submod_name: str | None
    start: int
    end: int
    single_size: bool
    cudagraph_size: bool
    artifacts: list[Any] = field(default_factory=list)

    @property
    def group(self) -> str:
        """tlparse's group key: `size N` for one size, else `range [start, end]`."""
        return f"size {self.start}" if self.single_size else f"range [{self.start}, {self.end}]"

    @property
    def display_name(self) -> str:
        return self.submod_name if self.submod_name is not None else f"subgraph_{self.index}"


def parse_compile_start(payload: str | None) -> Subgraph | None:
    """A compile start tlparse accepts (every field but submod_name required), or None."""
    value = parse_json(payload)
    if not isinstance(value, dict):
        return None
    name = value.get("submod_name")
    fields = [value.get(k) for k in ("is_single_size", "is_cudagraph_capture_size")]
    ok = (
        _is_int(value.get("piecewise_index"), _I32)
        and _is_int(value.get("compile_range_start"), _I64)
        and _is_int(value.get("compile_range_end"), _I64)
        and all(isinstance(f, bool) for f in fields)
        and (name is None or isinstance(name, str))
    )
    if not ok:
        return None
    return Subgraph(
        value["piecewise_index"],
        name,
        value["compile_range_start"],
        value["compile_range_end"],
        fields[0],
        fields[1],
    )


def parse_compile_event(payload: str | None) -> str | None:
    """The `type` of a compile event (aot_cache_hit, fresh_compile...), or None."""
    value = parse_json(payload)
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value["type"]
    return None


def is_vllm_dump(name: str) -> bool:
    """Graph dumps tlparse's generic graph_dump parser leaves to the vLLM parsers."""
    return name.startswith("vllm_")


class PassChain:
    """The baseline each `vllm_post_grad.<idx>.<Pass>` graph is diffed against: the last
    `before_post_grad_graph`, then each pass's graph in turn (pass after pass), forgotten when
    a new compile call starts (a new valid configuration after the first)."""

    def __init__(self) -> None:
        self.baseline: str | None = None
        self._call = 0

    def _at(self, valid_configs: int) -> None:
        call = max(valid_configs - 1, 0)
        if call != self._call:
            self._call, self.baseline = call, None

    def before_passes(self, valid_configs: int, payload: str) -> None:
        self._at(valid_configs)
        self.baseline = payload

    def after_pass(self, valid_configs: int, payload: str) -> str | None:
        """Record a pass's graph; return what it is to be diffed against (None: no diff)."""
        self._at(valid_configs)
        before, self.baseline = self.baseline, payload
        return before

    def patterns(self, valid_configs: int) -> None:
        self._at(valid_configs)


def dump_name(meta: dict[str, Any]) -> str | None:
    dump = meta.get("graph_dump")
    name = dump.get("name") if isinstance(dump, dict) else None
    return name if isinstance(name, str) else None


def artifact_name(meta: dict[str, Any]) -> str | None:
    artifact = meta.get("artifact")
    name = artifact.get("name") if isinstance(artifact, dict) else None
    return name if isinstance(name, str) else None
