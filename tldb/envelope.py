"""What tlparse 0.4.3 accepts as an envelope, and how it names compile ids.

tlparse deserializes each envelope into a strict typed struct: one wrongly typed known field
rejects the whole line (`fail_json`), while unknown keys are merely counted. The statistics tldb
prints must equal tlparse's, so these rules are reproduced here as small validators. The rules
are facts about tlparse's behaviour (field names and types); tldb itself keeps every line.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], bool]

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def u32(v: Any) -> bool:
    return _is_int(v) and 0 <= v <= U32_MAX


def i32(v: Any) -> bool:
    return _is_int(v) and -(2**31) <= v < 2**31


def u64(v: Any) -> bool:
    return _is_int(v) and 0 <= v <= U64_MAX


def i64(v: Any) -> bool:
    return _is_int(v) and -(2**63) <= v < 2**63


def f64(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and not isinstance(v, bool)


def string(v: Any) -> bool:
    return isinstance(v, str)


def boolean(v: Any) -> bool:
    return isinstance(v, bool)


def sym_int(v: Any) -> bool:
    """torch SymInt as logged: an i64 or a symbolic expression string."""
    return i64(v) or isinstance(v, str)


def opt(check: Check) -> Check:
    """An optional field: absent or JSON null are both fine."""
    return lambda v: v is None or check(v)


def list_of(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def map_of(check: Check) -> Check:
    return lambda v: isinstance(v, dict) and all(check(x) for x in v.values())


def struct(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A JSON object whose listed fields pass their checks; other keys are ignored."""
    if not fields and not required:
        return _is_object  # e.g. chromium_event: {} (the most frequent kind)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return False
        for name in required:
            if v.get(name) is None and not (name in v and fields[name](None)):
                return False
        for name, field_check in fields.items():
            if name in v and not field_check(v[name]):
                return False
        return True

    return check


def _is_object(v: Any) -> bool:
    return isinstance(v, dict)


def _required(check: Check) -> Check:
    return lambda v: v is not None and check(v)


frame = struct(
    {
        "filename": _required(u32),
        "line": _required(i32),
        "name": _required(string),
        "loc": opt(string),
        "uninterned_filename": opt(string),
    },
    required=("filename", "line", "name"),
)
stack = list_of(frame)
empty = struct({})
_frame_locals = struct({"locals": opt(map_of(opt(string))), "symbols": opt(map_of(opt(string)))})
_sym_provenance = struct(
    {
        "expr": opt(string),
        "result": opt(string),
        "user_stack": opt(stack),
        "stack": opt(stack),
        "expr_node_id": opt(u64),
        "symbol_to_sources": opt(map_of(_required(string))),
        "frame_locals": opt(_frame_locals),
        "prefix": opt(string),
    }
)
_fake_kernel = struct({"op": opt(string), "reason": opt(string)})


def _named(*names: str) -> Check:
    return struct({n: _required(string) for n in names}, required=names)


_TENSOR_FLAGS = (
    "is_inference is_leaf requires_grad is_sparse is_mkldnn is_functorch_wrapped "
    "is_batchedtensor is_legacy_batchedtensor is_gradtrackingtensor is_view is_nested "
    "is_traceable_wrapper_subclass is_functional is_conj is_neg is_parameter"
).split()
_TENSOR_IDS = "storage crow_indices col_indices ccol_indices row_indices values unwrapped base grad"

_tensor_fields: dict[str, Check] = {
    "id": _required(u64),
    "describer_id": _required(u64),
    "ndim": _required(u64),
    "dtype": _required(string),
    "device": _required(string),
    "size": _required(list_of(sym_int)),
    "dynamo_dynamic_indices": opt(list_of(u64)),
    "layout": _required(string),
    "stride": opt(list_of(sym_int)),
    "storage_offset": _required(sym_int),
    "sparse_dim": opt(u64),
    "dense_dim": opt(u64),
    "is_coalesced": opt(boolean),
    "bdim": opt(u64),
    "attrs": opt(map_of(_required(u64))),
    "creation_meta": opt(string),
    **{flag: _required(boolean) for flag in _TENSOR_FLAGS},
    **{name: opt(u64) for name in _TENSOR_IDS.split()},
}

METRICS_FIELDS: dict[str, Check] = {
    "co_name": opt(string),
    "co_filename": opt(string),
    "co_firstlineno": opt(i32),
    **{
        k: opt(u64)
        for k in (
            "cache_size accumulated_cache_size guard_count shape_env_guard_count "
            "graph_op_count graph_node_count graph_input_count"
        ).split()
    },
    **{
        k: opt(f64)
        for k in (
            "start_time entire_frame_compile_time_s backend_compile_time_s "
            "inductor_compile_time_s code_gen_time_s dynamo_time_before_restart_s"
        ).split()
    },
    "fail_type": opt(string),
    "fail_reason": opt(string),
    "fail_user_frame_filename": opt(string),
    "fail_user_frame_lineno": opt(u32),
    "non_compliant_ops": opt(list_of(_required(string))),
    "compliant_custom_ops": opt(list_of(_required(string))),
    "restart_reasons": opt(list_of(_required(string))),
}

#: Every top-level envelope key tlparse 0.4.3 models, with the check its value must pass.
KIND_CHECKS: dict[str, Check] = {
    "dynamo_start": struct({"stack": opt(stack)}),
    "dynamo_output_graph": empty,
    "optimize_ddp_split_graph": empty,
    "optimize_ddp_split_child": _named("name"),
    "compiled_autograd_graph": empty,
    "dynamo_guards": empty,
    "aot_forward_graph": empty,
    "aot_backward_graph": empty,
    "aot_inference_graph": empty,
    "aot_joint_graph": empty,
    "inductor_pre_grad_graph": empty,
    "inductor_post_grad_graph": empty,
    "dynamo_cpp_guards_str": empty,
    "inductor_output_code": struct({"filename": opt(string)}),
    "compilation_metrics": struct(METRICS_FIELDS),
    "bwd_compilation_metrics": struct(
        {
            "inductor_compile_time_s": opt(f64),
            "code_gen_time_s": opt(f64),
            "fail_type": opt(string),
            "fail_reason": opt(string),
        }
    ),
    "aot_autograd_backward_compilation_metrics": struct(
        {
            "start_time": opt(f64),
            "elapsed_time": opt(f64),
            "fail_type": opt(string),
            "fail_reason": opt(string),
        }
    ),
    "graph_dump": _named("name"),
    "link": _named("name", "url"),
    "symbolic_shape_specialization": struct(
        {
            "symbol": opt(string),
            "sources": opt(list_of(_required(string))),
            "value": opt(string),
            "reason": opt(string),
            "stack": opt(stack),
            "user_stack": opt(stack),
        }
    ),
    "propagate_real_tensors_provenance": _sym_provenance,
    "guard_added": _sym_provenance,
    "create_unbacked_symbol": struct(
        {
            "symbol": opt(string),
            "node_id": opt(u64),
            "user_stack": opt(stack),
            "stack": opt(stack),
            "vr": opt(string),
        }
    ),
    "expression_created": struct(
        {
            "method": opt(string),
            "result": opt(string),
            "result_id": opt(u64),
            "arguments": opt(list_of(_required(string))),
            "argument_ids": opt(list_of(_required(u64))),
            "user_stack": opt(stack),
            "stack": opt(stack),
        }
    ),
    "missing_fake_kernel": _fake_kernel,
    "mismatched_fake_kernel": _fake_kernel,
    "artifact": _named("name", "encoding"),
    "describe_storage": struct(
        {"id": _required(u64), "describer_id": _required(u64), "size": _required(u64)},
        required=("id", "describer_id", "size"),
    ),
    "describe_tensor": struct(
        _tensor_fields, required=("id", "describer_id", "ndim", "dtype", "device", "size")
    ),
    "describe_source": struct(
        {"describer_id": _required(u64), "id": _required(u64), "source": _required(string)},
        required=("describer_id", "id", "source"),
    ),
    "dump_file": _named("name"),
    "chromium_event": empty,
    "guard_added_fast": struct(
        {"expr": opt(string), "stack": opt(stack), "user_stack": opt(stack)}
    ),
    "exported_program": empty,
}

COMPILE_ID_KEYS = ("compiled_autograd_id", "frame_id", "frame_compile_id", "attempt")
#: A CompileId's parts in COMPILE_ID_KEYS order, in one C call (the loader asks per envelope).
compile_id_parts = operator.attrgetter(*COMPILE_ID_KEYS)
#: Keys that describe the envelope rather than name its kind.
CONTEXT_KEYS = frozenset({"rank", "has_payload", "stack", "str", *COMPILE_ID_KEYS})
KNOWN_KEYS = frozenset(KIND_CHECKS) | CONTEXT_KEYS
#: Context keys torch writes that tlparse 0.4.3 does not know (it counts them as unknown).
_NOT_A_KIND = frozenset({"subgraph_name"})


def _str_entry(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and u32(v[1])


#: The check of every key tlparse reads at the top level (compile id parts are read leniently:
#: a wrong one makes the id unknown, it does not reject the line).
_TOP_CHECKS: dict[str, Check | None] = {
    **KIND_CHECKS,
    "rank": u32,
    "has_payload": string,
    "stack": stack,
    "str": _str_entry,
    **dict.fromkeys(COMPILE_ID_KEYS),
}


def tlparse_accepts(meta: dict[str, Any]) -> bool:
    """True when tlparse 0.4.3's typed Envelope would deserialize this JSON object."""
    checks = _TOP_CHECKS
    for key, value in meta.items():
        if value is not None:
            check = checks.get(key)
            if check is not None and not check(value):
                return False
    return True


def unknown_keys(meta: dict[str, Any]) -> list[str]:
    """Top-level keys tlparse does not model (it counts each one in `unknown`), in log order."""
    if KNOWN_KEYS.issuperset(meta):
        return []  # the usual case, decided without a Python loop
    return [k for k in meta if k not in KNOWN_KEYS]


def kind_of(meta: dict[str, Any]) -> str | None:
    """The envelope's kind: its first key that is not context (compile id, rank, payload...)."""
    for key in meta:
        if key not in CONTEXT_KEYS and key not in _NOT_A_KIND:
            return key
    if "str" in meta:
        return "str"
    if "stack" in meta:
        return "stack"
    return None


#: Compile ids seen, by their parts (all ints or None), bounded for hostile logs.
_INTERNED: dict[tuple[int | None, ...], CompileId] = {}
_INTERNED_MAX = 100_000


@dataclass(frozen=True, slots=True)
class CompileId:
    """A compile id as tlparse reads it: four optional parts."""

    compiled_autograd_id: int | None = None
    frame_id: int | None = None
    frame_compile_id: int | None = None
    attempt: int | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> CompileId | None:
        """Parts from the envelope; None when a part has the wrong type (tlparse: unknown).

        Equal compile ids come back as one shared instance (logs repeat a few ids thousands
        of times), which also makes the caches keyed by compile id cheap.
        """
        parts = (
            meta.get("compiled_autograd_id"),
            meta.get("frame_id"),
            meta.get("frame_compile_id"),
            meta.get("attempt"),
        )
        for value in parts:
            if value is not None and (type(value) is not int or not 0 <= value <= U32_MAX):
                return None  # bool, float, negative, too big: tlparse's u32 rejects it
        found = _INTERNED.get(parts)
        if found is None:
            if len(_INTERNED) >= _INTERNED_MAX:
                _INTERNED.clear()
            found = _INTERNED[parts] = cls(*parts)
        return found

    def normalized(self) -> CompileId:
        """The compile directory groups `[x/y]` without attempt under attempt 0."""
        if self.frame_compile_id is not None and self.attempt is None:
            return CompileId(self.compiled_autograd_id, self.frame_id, self.frame_compile_id, 0)
        return self

    def display(self) -> str:
        """tlparse's label, e.g. `[0/0]`, `[0/0_1]`, `[!3/1/2_4]`, `[-/-]`."""
        ca = f"!{self.compiled_autograd_id}/" if self.compiled_autograd_id is not None else ""
        frame = "-" if self.frame_id is None else self.frame_id
        fcid = "-" if self.frame_compile_id is None else self.frame_compile_id
        attempt = f"_{self.attempt}" if self.attempt else ""
        return f"[{ca}{frame}/{fcid}{attempt}]"

    def directory(self) -> str:
        """tlparse's folder name, e.g. `-_0_0_0`, `3_-_-_-`."""
        return "_".join("-" if p is None else str(p) for p in self.parts())

    def parts(self) -> tuple[int | None, int | None, int | None, int | None]:
        return compile_id_parts(self)
