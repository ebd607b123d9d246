"""The vLLM compilation summary (tlparse 0.4.8 and its main line): when a log has vLLM
artifacts, index.html is this summary and the usual index is tlparse_index.html.

The summary shows the compilation configuration, the Dynamo files, the piecewise split graph,
the Inductor pass patterns and the piecewise compiles grouped by compile range or size, per
compile call (with its cache-hit mark). Each `vllm_post_grad.<idx>.<Pass>` graph with a
baseline gets a side-by-side diff page. The numbered files come from the central plan, which
this module extends (planning.py); the graph and pattern files themselves are plain payload
files, written by compile_artifacts like any other.
"""

from __future__ import annotations

from collections.abc import Iterator

from tldb.module_api import (
    DEFAULT_MODE,
    IndexPage,
    Module,
    ModuleContext,
    ModuleOutput,
    PlanExtension,
)

from . import state
from .diff import diff_rows
from .planning import PARSER_PASSES, VllmPlan
from .summary import build, entries

#: Where the usual index goes when the summary is the first page.
USUAL_INDEX = "tlparse_index.html"
#: Configuration tables: (label, field) rows of the two blocks.
CORE_SETTINGS = (
    ("Model", "model"),
    ("Mode", "mode"),
    ("Backend", "backend"),
    ("Prefix", "prefix"),
    ("Custom Ops", "custom_ops"),
    ("Splitting Ops", "splitting_ops"),
)
COMPILE_SETTINGS = (
    ("CUDAGraph Mode", "cudagraph_mode"),
    ("Use Inductor Graph Partition", "use_inductor_graph_partition"),
    ("Compile Sizes", "compile_sizes"),
    ("Compile Ranges Endpoints", "compile_ranges_split_points"),
    ("Inductor Passes", "inductor_passes"),
    ("Enabled Passes", "enabled_passes"),
    ("Dynamic Shapes Type", "dynamic_shapes_type"),
    ("Dynamic Shapes Evaluate Guards", "dynamic_shapes_evaluate_guards"),
)

SETTINGS_BLOCKS = (("Core Settings", CORE_SETTINGS), ("Compile Settings", COMPILE_SETTINGS))


def shown(value: object) -> str:
    """A configuration value as tlparse prints it: flags as true/false, absent as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Vllm(Module):
    id = "vllm"
    name = "vLLM compilation summary"
    subscriptions = ("outputs", "envelopes", "payloads")
    modes = frozenset({DEFAULT_MODE})

    def plan_extension(self) -> PlanExtension:
        return VllmPlan()

    def render(self, ctx: ModuleContext) -> ModuleOutput:
        if not next(ctx.query("present"))["present"]:
            return ModuleOutput()
        envelopes = list(ctx.query("envelopes"))
        summary = build(entries(ctx.query("outputs"), envelopes, ctx.config.plain_text))
        files = list(self._diff_pages(ctx, envelopes))
        if not summary.has_vllm:
            return ModuleOutput(files=files)
        page = ctx.render(
            "summary.html",
            summary=summary,
            shared=summary.shared_config(),
            settings_blocks=SETTINGS_BLOCKS,
            shown=shown,
            usual_index=USUAL_INDEX,
        )
        return ModuleOutput(files=files, index_page=IndexPage(page, USUAL_INDEX))

    def _diff_pages(self, ctx: ModuleContext, envelopes: list[dict]) -> Iterator[tuple[str, str]]:
        """Each pass graph against its baseline, replaying the chain the plan numbered."""
        pages = dict(
            ctx.db.conn.execute(
                "SELECT envelope_id, path FROM outputs WHERE log_id = ? AND mode = 'default' "
                "AND parser = ? AND kind = 'global'",
                [ctx.log_id, PARSER_PASSES],
            ).fetchall()
        )
        chain, valid_configs = state.PassChain(), 0
        for row in envelopes:
            payload = row["payload"] or ""
            dump = row["dump"] or ""
            if row["artifact"] == state.CONFIG and state.parse_config(payload) is not None:
                valid_configs += 1
            elif row["artifact"] == state.BEFORE_PASSES:
                chain.before_passes(valid_configs, payload)
            if dump.startswith(state.PATTERNS_PREFIX):
                chain.patterns(valid_configs)
            elif dump.startswith(state.PASS_PREFIX):
                before = chain.after_pass(valid_configs, payload)
                path = pages.get(row["envelope_id"])
                if before is not None and path is not None:
                    name = dump.removeprefix(state.PASS_PREFIX)
                    rows = diff_rows(before, payload)
                    yield path, ctx.render("pass_diff.html", pass_name=name, rows=rows)


MODULE = Vllm()
