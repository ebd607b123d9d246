"""The vLLM summary's model: compile calls, each with its configuration, Dynamo files, split
graph, pattern files and piecewise subgraphs, rebuilt by replaying the log in order.

tlparse files every output it writes under the vLLM state of that moment: the current compile
call's latest subgraph, or the call's list of files from before its first subgraph. Within one
envelope the default parsers' files come first, then the vLLM parsers change the state, then
their own files follow; the replay keeps that order (so, as in tlparse, the generic copy of a
compile-start artifact is filed before the subgraph it starts).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from tldb.paths import file_stem

from . import state

#: Files of the Dynamo section: names (with their number) starting with one of these.
DYNAMO_PREFIXES = (
    "dynamo_side_effects",
    "dynamo_output_graph",
    "dynamo_cpp_guards_str",
    "compilation_metrics",
)


@dataclass(frozen=True)
class Artifact:
    """A link of the summary: the file's name without extension, its path, its cache icon."""

    name: str
    url: str
    suffix: str

    @property
    def is_pass_file(self) -> bool:
        return state.PASS_PREFIX in self.name


@dataclass
class Call:
    """One vLLM compile call: starts at each valid configuration (the first one fills the
    call made for what came before it)."""

    config: dict[str, Any] | None = None
    event: str | None = None
    split_graph: str | None = None
    before_subgraphs: list[Artifact] = field(default_factory=list)
    subgraphs: list[state.Subgraph] = field(default_factory=list)

    @property
    def cache_hit(self) -> bool:
        return self.event == state.CACHE_HIT

    @property
    def label(self) -> str:
        return (self.config or {}).get("prefix") or ""

    @property
    def dynamo(self) -> list[Artifact]:
        return [a for a in self.before_subgraphs if a.name.startswith(DYNAMO_PREFIXES)]

    @property
    def patterns(self) -> list[Artifact]:
        return [a for a in self.before_subgraphs if a.name.startswith(state.PATTERNS_PREFIX)]

    def groups(self) -> list[tuple[str, list[state.Subgraph]]]:
        """Subgraphs by compile range or size, groups in first-seen order, log order inside."""
        found: dict[str, list[state.Subgraph]] = {}
        for subgraph in self.subgraphs:
            found.setdefault(subgraph.group, []).append(subgraph)
        return list(found.items())


@dataclass
class Summary:
    calls: list[Call] = field(default_factory=list)
    has_vllm: bool = False
    _pending_event: str | None = None

    def _current(self) -> Call:
        if not self.calls:
            self.calls.append(Call())
        return self.calls[-1]

    def add_file(self, artifact: Artifact) -> None:
        call = self._current()
        if artifact.name.startswith(state.SPLIT_GRAPH):
            call.split_graph = artifact.url
        if call.subgraphs:
            call.subgraphs[-1].artifacts.append(artifact)
        else:
            call.before_subgraphs.append(artifact)

    def add_config(self, config: dict[str, Any]) -> None:
        pending, self._pending_event = self._pending_event, None
        if self.calls and self.calls[-1].config is None:
            last = self.calls[-1]
            last.config = config
            last.event = last.event if last.event is not None else pending
        else:
            self.calls.append(Call(config=config, event=pending))

    def shared_config(self) -> dict[str, Any] | None:
        """The one configuration of several calls, when at least two have one and all are
        equal: shown once at the top instead of in each call."""
        configs = [c.config for c in self.calls if c.config is not None]
        if len(self.calls) > 1 and len(configs) >= 2 and all(c == configs[0] for c in configs):
            return configs[0]
        return None

    def apply(self, entry: Entry) -> None:
        """One envelope: its default files, the vLLM state change, then the vLLM files."""
        for artifact in entry.default_files:
            self.add_file(artifact)
        payload = entry.payload
        if entry.artifact == state.COMPILE_EVENT:
            event = state.parse_compile_event(payload)
            if event is not None:
                self._pending_event = event
        elif entry.artifact == state.CONFIG:
            config = state.parse_config(payload)
            if config is not None:
                self.add_config(config)
                self.has_vllm = True
        elif entry.artifact == state.COMPILE_START:
            self.has_vllm = True
            subgraph = state.parse_compile_start(payload)
            if subgraph is not None:
                self._current().subgraphs.append(subgraph)
        dump = entry.dump or ""
        if dump == state.SPLIT_GRAPH or dump.startswith(
            (*state.SUBMOD_PREFIXES, state.PASS_PREFIX, state.PATTERNS_PREFIX)
        ):
            self.has_vllm = True
        for artifact in entry.vllm_files:
            self.add_file(artifact)


@dataclass
class Entry:
    """One envelope as the replay needs it."""

    envelope_id: int
    artifact: str | None = None
    dump: str | None = None
    payload: str | None = None
    default_files: list[Artifact] = field(default_factory=list)
    vllm_files: list[Artifact] = field(default_factory=list)


def artifact_of(row: dict[str, Any], plain_text: bool) -> Artifact:
    path = row["path_plain"] if plain_text and row["path_plain"] else row["path"]
    return Artifact(file_stem(path), path, row["suffix"])


def entries(
    outputs: Iterable[dict[str, Any]], envelopes: Iterable[dict[str, Any]], plain_text: bool
) -> Iterator[Entry]:
    """Merge the plan's files (number order) and the vLLM envelopes (log order) by envelope."""
    merged: dict[int, Entry] = {}
    for envelope_id, rows in groupby(outputs, key=lambda r: r["envelope_id"]):
        entry = merged.setdefault(envelope_id, Entry(envelope_id))
        for row in rows:
            if row["kind"] == "link":
                continue
            files = entry.vllm_files if row["parser"].startswith("vllm_") else entry.default_files
            files.append(artifact_of(row, plain_text))
    for row in envelopes:
        entry = merged.setdefault(row["envelope_id"], Entry(row["envelope_id"]))
        entry.artifact, entry.dump, entry.payload = row["artifact"], row["dump"], row["payload"]
    for envelope_id in sorted(merged):
        yield merged[envelope_id]


def build(entries: Iterable[Entry]) -> Summary:
    summary = Summary()
    for entry in entries:
        summary.apply(entry)
    return summary
