"""The numbered output plan: which files tlparse 0.4.3 writes for each envelope, in log order.

tlparse numbers every compile-directory entry with one global counter, in the order its
parsers run over the log. Numbering is decided here, once, while the log is loaded, and stored
in the `outputs` table; modules then render the contents of the rows they own and never count.
Two plans are made because the counter runs differently in the two report modes: `default`
and `export` (`--export`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from tldb.envelope import CompileId
from tldb.paths import file_stem, safe_component, safe_relpath, with_number
from tldb.reader import OK, Envelope
from tldb.stacks import eval_with_key_id
from tldb.stats import Stats

if TYPE_CHECKING:
    from tldb.module_api import PlanExtension

DEFAULT = "default"
EXPORT = "export"

#: Parsers that save the payload as `{dir}/{key}_{N}.txt`, in tlparse's registration order.
SENTINELS = (
    "optimize_ddp_split_graph",
    "compiled_autograd_graph",
    "aot_forward_graph",
    "aot_backward_graph",
    "aot_inference_graph",
    "aot_joint_graph",
    "inductor_post_grad_graph",
    "inductor_pre_grad_graph",
    "dynamo_cpp_guards_str",
)
#: Envelope keys that make outputs in each mode (anything else is skipped at once).
_DEFAULT_KEYS = frozenset(SENTINELS) | {
    "graph_dump",
    "dynamo_output_graph",
    "dynamo_guards",
    "inductor_output_code",
    "optimize_ddp_split_child",
    "aot_autograd_backward_compilation_metrics",
    "bwd_compilation_metrics",
    "link",
    "artifact",
    "dump_file",
    "compilation_metrics",
}
_SENTINEL_SET = frozenset(SENTINELS)
_EXPORT_KEYS = frozenset({"exported_program", "guard_added", "propagate_real_tensors_provenance"})
READABLE_PREFIX = "inductor_provenance_tracking_kernel_stack_traces"

# Output kinds (as tlparse distinguishes them; they decide raw.jsonl and payloads/).
PAYLOAD = "payload"  # file content is the raw payload
REFORMAT = "reformat"  # file content is the payload reformatted (pretty JSON)
FILE = "file"  # generated content; the payload also goes to payloads/
GLOBAL = "global"  # generated content outside compile folders, never numbered in its name
LINK = "link"  # no file, only a directory entry


@dataclass(slots=True)
class Output:
    """One compile-directory entry, numbered."""

    mode: str
    number: int
    line: int
    kind: str
    parser: str
    path: str | None
    name: str
    url: str
    suffix: str
    compile_key: str
    compile_dir: str
    path_plain: str | None = None
    readable_path: str | None = None


def cache_suffix(path: str) -> str:
    """tlparse's cache icon, decided only from the output path."""
    if "cache_miss" in path:
        return "❌"
    if "cache_hit" in path:
        return "✅"
    if "cache_bypass" in path:
        return "❓"
    return ""


#: Labels and folders of compile ids already seen (every envelope asks for both), by the id
#: object's identity: compile ids are interned (CompileId.from_meta), so this finds them
#: without the dataclass's Python-level __hash__ (a fifth of planning on the 406 MB log).
#: Each entry holds its CompileId, so an identity cannot be reused while it is cached; an
#: equal id that is another object only gets an entry of its own, with the same value.
_KEYS: dict[int, tuple[CompileId, str]] = {}
_DIRS: dict[int, tuple[CompileId, str]] = {}


def _memo(
    cache: dict[int, tuple[CompileId, str]], cid: CompileId, make: Callable[[CompileId], str]
) -> str:
    found = cache.get(id(cid))
    if found is not None and found[0] is cid:
        return found[1]
    if len(cache) > 100_000:  # bounded for hostile logs
        cache.clear()
    value = make(cid)
    cache[id(cid)] = (cid, value)
    return value


def _label(cid: CompileId) -> str:
    return cid.normalized().display()


def compile_key(cid: CompileId | None) -> str:
    """The compile directory key: normalized display form, or `unknown`."""
    return "unknown" if cid is None else _memo(_KEYS, cid, _label)


def compile_dir(cid: CompileId | None, line: int) -> str:
    """Folder of a compile id's files: the raw (not normalized) directory form."""
    return f"unknown_{line}" if cid is None else _memo(_DIRS, cid, CompileId.directory)


def _valid_guards(payload: str) -> bool:
    """tlparse's dynamo_guards payload: a JSON array of objects with a string `code`."""
    try:
        guards = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(guards, list) and all(
        isinstance(g, dict) and isinstance(g.get("code"), str) for g in guards
    )


def _readable_ok(payload: str) -> bool:
    """Kernel stack traces tlparse can render: an object mapping kernels to lists of strings."""
    try:
        traces = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(traces, dict) and all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in traces.values()
    )


class Emit:
    """How a plan extension (tldb.module_api.PlanExtension) makes the outputs of one envelope:
    each call takes the next number of the default plan, names the file `{dir}/{name}` with
    the name confined to the compile folder, and numbers it as tlparse's output kind does."""

    def __init__(self, planner: Planner, env: Envelope, key: str, folder: str):
        self._planner, self._env, self._key, self._folder = planner, env, key, folder

    def _output(self, kind: str, parser: str, name: str) -> Output:
        path = f"{self._folder}/{safe_relpath(name)}"
        return self._planner._entry(DEFAULT, self._env, kind, parser, path, self._key, self._folder)

    def payload(self, parser: str, name: str) -> Output:
        """A file holding the raw payload (tlparse's PayloadFile): `name_N.ext`."""
        return self._output(PAYLOAD, parser, name)

    def reformat(self, parser: str, name: str) -> Output:
        """The payload pretty-printed as JSON (PayloadReformatFile): `name_N.ext`."""
        return self._output(REFORMAT, parser, name)

    def global_file(self, parser: str, name: str) -> Output:
        """A generated page that keeps its name (GlobalFile); it still takes a number."""
        return self._output(GLOBAL, parser, name)

    def failed(self) -> None:
        """A parser that failed on this envelope: no output, no number (tlparse's count)."""
        self._planner.stats.fail_parser += 1


class Planner:
    """Assigns numbers to outputs as envelopes stream past; one counter per mode."""

    def __init__(self, stats: Stats, extensions: Iterable[PlanExtension] = ()):
        self.stats = stats
        self._next = {DEFAULT: 0, EXPORT: 0}
        self.extensions = tuple(extensions)
        self._keys = _DEFAULT_KEYS.union(*(ext.keys for ext in self.extensions))

    def _take(self, mode: str) -> int:
        number = self._next[mode]
        self._next[mode] = number + 1
        return number

    def makes_outputs(self, meta: dict[str, Any] | None) -> bool:
        """Whether an accepted envelope with this metadata can have outputs: the loader asks
        first, so that the many envelopes that have none (chromium events, tensor
        descriptions...) cost two set tests instead of a generator."""
        return meta is not None and not (
            self._keys.isdisjoint(meta) and _EXPORT_KEYS.isdisjoint(meta)
        )

    def plan(self, env: Envelope) -> Iterator[Output]:
        """Outputs of one envelope in both modes (only accepted envelopes produce any)."""
        meta = env.meta
        if env.status != OK or meta is None:
            return
        default = not self._keys.isdisjoint(meta)
        export = not _EXPORT_KEYS.isdisjoint(meta)
        if not (default or export):
            return
        cid = env.compile_id
        key = compile_key(cid)
        folder = compile_dir(cid, env.line)
        if default:
            yield from self._default(env, meta, key, folder)
        if export:
            yield from self._export(env, meta, key, folder)

    def _entry(
        self, mode: str, env: Envelope, kind: str, parser: str, path: str, key: str, folder: str
    ) -> Output:
        number = self._take(mode)
        if kind in (PAYLOAD, REFORMAT, FILE):
            path = with_number(path, number)
        return Output(
            mode, number, env.line, kind, parser, path, path, path, cache_suffix(path), key, folder
        )

    def _default(self, env: Envelope, meta: dict[str, Any], key: str, d: str) -> Iterator[Output]:
        payload = env.payload or ""
        entry = self._entry
        # The keys of this envelope that make default outputs (not null): found once, so the
        # tests below are set lookups, not a dict lookup per parser for every envelope.
        present = {k for k in _DEFAULT_KEYS.intersection(meta) if meta[k] is not None}
        if not _SENTINEL_SET.isdisjoint(present):
            for sentinel in SENTINELS:
                if sentinel in present:
                    yield entry(DEFAULT, env, PAYLOAD, sentinel, f"{d}/{sentinel}.txt", key, d)
        if "graph_dump" in present and not self._replaced("graph_dump", meta):
            name = safe_relpath(meta["graph_dump"]["name"])
            yield entry(DEFAULT, env, PAYLOAD, "graph_dump", f"{d}/{name}.txt", key, d)
        if "dynamo_output_graph" in present:
            path = f"{d}/dynamo_output_graph.txt"
            yield entry(DEFAULT, env, PAYLOAD, "dynamo_output_graph", path, key, d)
        if "dynamo_guards" in present:
            if _valid_guards(payload):
                yield entry(DEFAULT, env, FILE, "dynamo_guards", f"{d}/dynamo_guards.html", key, d)
            else:
                self.stats.fail_dynamo_guards_json += 1
        if "inductor_output_code" in present:
            filename = meta["inductor_output_code"].get("filename")
            stem = safe_component(file_stem(filename)) if filename else ""
            base = f"{d}/inductor_output_code_{stem}" if stem else f"{d}/inductor_output_code"
            out = entry(DEFAULT, env, FILE, "inductor_output_code", f"{base}.html", key, d)
            out.path_plain = with_number(f"{base}.txt", out.number)
            yield out
        if "optimize_ddp_split_child" in present:
            name = safe_component(meta["optimize_ddp_split_child"]["name"])
            path = f"{d}/optimize_ddp_split_child_{name}.txt"
            yield entry(DEFAULT, env, PAYLOAD, "optimize_ddp_split_child", path, key, d)
        for metrics in ("aot_autograd_backward_compilation_metrics", "bwd_compilation_metrics"):
            if metrics in present:
                yield entry(DEFAULT, env, FILE, metrics, f"{d}/{metrics}.html", key, d)
        if "link" in present:
            link = meta["link"]
            number = self._take(DEFAULT)
            yield Output(
                DEFAULT, number, env.line, LINK, "link", None, link["name"], link["url"], "", key, d
            )
        if "artifact" in present:
            yield from self._artifact(env, meta["artifact"], payload, key, d)
        if "dump_file" in present:
            name = meta["dump_file"]["name"]
            fx = eval_with_key_id(name)
            target = f"eval_with_key_{fx}" if fx is not None else safe_relpath(name)
            yield entry(DEFAULT, env, GLOBAL, "dump_file", f"dump_file/{target}.html", key, d)
        if "compilation_metrics" in present:
            path = f"{d}/compilation_metrics.html"
            yield entry(DEFAULT, env, FILE, "compilation_metrics", path, key, d)
        for extension in self.extensions:
            if not extension.keys.isdisjoint(meta):
                yield from extension.outputs(env, meta, Emit(self, env, key, d))

    def _replaced(self, parser: str, meta: dict[str, Any]) -> bool:
        """Whether an extension takes this envelope away from the default parser."""
        return any(ext.replaces(parser, meta) for ext in self.extensions)

    def _artifact(
        self, env: Envelope, artifact: dict[str, Any], payload: str, key: str, d: str
    ) -> Iterator[Output]:
        name = safe_relpath(artifact["name"])
        encoding = artifact["encoding"]
        if encoding == "string":
            yield self._entry(DEFAULT, env, PAYLOAD, "artifact", f"{d}/{name}.txt", key, d)
        elif encoding == "json":
            number = self._take(DEFAULT)
            path = with_number(f"{d}/{name}.json", number)
            out = Output(
                DEFAULT,
                number,
                env.line,
                REFORMAT,
                "artifact",
                path,
                path,
                path,
                cache_suffix(path),
                key,
                d,
            )
            leaf = path.rpartition("/")[2]
            if leaf.startswith(READABLE_PREFIX):
                if _readable_ok(payload):
                    # tlparse numbers the readable page first, then lists the JSON after it.
                    out.number = self._take(DEFAULT)
                    out.readable_path = f"{path.rpartition('/')[0]}/{file_stem(path)}_readable.html"
                else:
                    out.readable_path = ""
            yield out
        else:
            self.stats.fail_parser += 1

    def _export(self, env: Envelope, meta: dict[str, Any], key: str, d: str) -> Iterator[Output]:
        if meta.get("exported_program") is not None:
            path = f"{d}/exported_program.txt"
            yield self._entry(EXPORT, env, PAYLOAD, "exported_program", path, key, d)
        guard = meta.get("guard_added")
        if guard is not None and guard.get("prefix") != "eval":
            return
        for kind in ("guard_added", "propagate_real_tensors_provenance"):
            if meta.get(kind) is not None:  # one page each, guard first, as tlparse
                path = f"{d}/symbolic_guard_information.html"
                yield self._entry(EXPORT, env, FILE, kind, path, key, d)
