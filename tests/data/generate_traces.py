"""Generate the torch 2.13 CPU TORCH_TRACE logs under tests/data/torch213/.

Run it with a Python that has the CPU build of torch 2.13.0 (CI does not have torch; the tests
only read the committed logs). tests/data/README.md says what each log covers:

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    /tmp/torchvenv/bin/pip install numpy
    /tmp/torchvenv/bin/python tests/data/generate_traces.py            # every scenario
    /tmp/torchvenv/bin/python tests/data/generate_traces.py shapes ddp # only these ("cache": the
                                                                       # pair, "latest": the copies,
                                                                       # "pairs": the diff pairs)

Each scenario runs in its own Python process (tracing is set up from the environment when torch
is imported) and leaves its logs, copied untouched to tests/data/torch213/<target>: plain when
small, gzip-compressed (`<target>.gz`) above GZIP_OVER bytes. Multi-process scenarios (DDP and
the gloo ranks) spawn their ranks themselves; their logs are found by rank.

- cache_1.log, cache_2.log: one Inductor-compiled function called with three sizes, run twice
  with one Inductor cache folder: the first run misses the caches and recompiles when automatic
  dynamic shapes make the size symbolic (create_symbol); the second run hits the FX graph and
  AOTAutograd caches (and starts dynamic, from the profile the first run saved).
- dynamo.log (aot_eager backend): a graph break, a recompile on a dtype change, an unbacked
  symbol from `.item()`, a module run forward and backward, and a compile failure (a graph
  break under fullgraph=True).
- export.log, draft_export.log (TORCH_DTRACE): export with an automatic dynamic dimension and an
  export that fails on a data-dependent guard, then draft_export (which writes a log file of its
  own) of a module with a data-dependent size and a custom op without a fake kernel: the
  export-only envelopes (export, guard provenance, expressions, real-tensor propagation,
  data-dependent errors, the missing fake kernel, the exported program).
- regional.log: regional Inductor (envelopes carrying the `subgraph_name` key).
- provenance.log: Inductor with provenance tracking (INDUCTOR_PROVENANCE=1): node mappings,
  kernel stack traces, pre/post grad graphs, output code.
- aoti.log: AOT Inductor (export, then aoti_compile_and_package) with provenance tracking: the
  C++ wrapper and kernel code (graph_dump) and C++ kernel node mappings.
- compiled_autograd.log: compiled autograd (backward called inside a compiled function):
  envelopes with `compiled_autograd_id`, compiled_autograd_graph.
- bypass.log: Inductor with a custom post-grad pass that is not a CustomGraphPass: the FX graph
  cache and the AOTAutograd cache bypass.
- shapes.log (aot_eager, dynamic=True): symbolic_shape_specialization, guard_added_fast,
  dynamo_guards (a storage-overlap guard), dump_file (Dynamo tracing an FX GraphModule).
- ddp.log: DistributedDataParallel (gloo, one rank) around a compiled module: the DDP optimizer
  splits the graph (optimize_ddp_split_graph, optimize_ddp_split_child); the torch_version
  artifact has no rank, so tlparse counts one other_rank (a failure for --strict).
- mismatch.log (TORCH_DTRACE): draft_export of a custom op whose fake kernel has the wrong
  shape (mismatched_fake_kernel).
- ranks2/, ranks4/ (dedicated_log_torch_trace_rank_<N>.log): gloo ranks compiling functional
  collectives with Inductor, with runtime estimates and the graph execution order (see
  MULTI_RANK for the divergences).
- latest/: copies of two small logs for --latest (see LATEST).
- pairs/: pairs of runs for `tldb diff A B` and `tldb check`, each one program in two versions
  (a graph break fixed, a new recompile, a changed guard, an input made dynamic, a cold and a
  warm Inductor cache; see
  pair_runs), always gzip-compressed; `pairs` on the command line runs them all.

Every Inductor compile writes ~250 kB (its config travels in the cache entry, two chromium
events and the metrics), so the programs are kept tiny; nothing is trimmed afterwards.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "torch213"

CACHED = r"""
import torch


def scaled(x):
    return torch.relu(x) * x.shape[0] + x.mean()


f = torch.compile(scaled)
for size in (4, 8, 16):
    f(torch.randn(size))
"""

DYNAMO = r"""
import torch
import torch._dynamo

torch._dynamo.config.capture_scalar_outputs = True


def with_break(x):
    y = x.sin() + 1
    torch._dynamo.graph_break()
    return y.cos() * 2


def shifted(x):
    return x + 1


def unbacked(x):
    n = x.sum().item()
    return x * n + 1


def strict(x):
    x = x + 1
    torch._dynamo.graph_break()
    return x - 1


torch.compile(with_break, backend="aot_eager")(torch.randn(8))
g = torch.compile(shifted, backend="aot_eager")
g(torch.randn(5))
g(torch.randn(5, dtype=torch.float64))
torch.compile(unbacked, backend="aot_eager")(torch.randn(6))

model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
torch.compile(model, backend="aot_eager")(torch.randn(2, 4)).sum().backward()

try:
    torch.compile(strict, fullgraph=True, backend="aot_eager")(torch.randn(3))
except Exception as exc:
    print("expected failure:", type(exc).__name__)
"""

EXPORT = r"""
import torch


@torch.library.custom_op("tldb_test::count_positive", mutates_args=())
def count_positive(x: torch.Tensor) -> torch.Tensor:
    return (x > 0).sum().reshape(1)


class M(torch.nn.Module):
    def forward(self, x, idx):
        n = idx.item()
        y = x[:n] if n > 2 else x
        return y * 2 + count_positive(x).float().sum()


class Shaped(torch.nn.Module):
    def forward(self, x):
        if x.shape[0] > 2:
            return x.cos()
        return x.sin()


dim = torch.export.Dim.AUTO
torch.export.export(Shaped(), (torch.randn(5),), dynamic_shapes=({0: dim},))
try:
    torch.export.export(M(), (torch.randn(6), torch.tensor(4)))
except Exception as exc:
    print("expected failure:", type(exc).__name__)
# draft_export last: it takes over the trace handler while it runs.
ep = torch.export.draft_export(M(), (torch.randn(6), torch.tensor(4)))
print(ep.module()(torch.randn(6), torch.tensor(4)).shape)
"""

REGIONAL = r"""
import torch
import torch.fx.traceback as fx_traceback
from torch._dynamo.backends.common import aot_autograd
from torch.fx.passes.regional_inductor import regional_inductor


def region(x, y):
    a = x.sin()
    with fx_traceback.annotate({"compile_with_inductor": 0}):
        b = torch.mm(a, y).cos()
    return b + 1


backend = aot_autograd(fw_compiler=regional_inductor, bw_compiler=regional_inductor)
torch.compile(region, backend=backend, fullgraph=True)(torch.randn(4, 4), torch.randn(4, 4))

"""


PROVENANCE = r"""
import torch


def fused(x, w):
    return torch.relu(x @ w) + x.sum()


torch.compile(fused)(torch.randn(4, 4), torch.randn(4, 4))
"""

AOTI = r"""
import torch


class Affine(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x @ x.t()) + 1


ep = torch.export.export(Affine(), (torch.randn(4, 4),))
torch._inductor.aoti_compile_and_package(ep, package_path="affine.pt2")
"""

COMPILED_AUTOGRAD = r"""
import torch

torch._dynamo.config.compiled_autograd = True
model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))


def train_step(x):
    loss = model(x).sum()
    loss.backward()  # compiled autograd is on while a compiled function runs
    return loss


torch.compile(train_step, backend="aot_eager")(torch.randn(2, 4))
"""

BYPASS = r"""
import torch


def custom_pass(graph):
    pass


# A plain function is not a CustomGraphPass: the FX graph cache and the AOTAutograd cache bypass.
torch._inductor.config.post_grad_custom_post_pass = custom_pass


def shifted(x):
    return x.sin() + 1


torch.compile(shifted)(torch.randn(8))
"""

SHAPES = r"""
import torch
import torch.fx


def pick(x):
    if x.shape[0] == 6:
        return x * 2
    return x + 1


def bounded(x):
    if x.shape[0] > 2:
        return x.cos()
    return x.sin()


def overlap(a, b):
    a.add_(1)
    return a + b


class Traced(torch.nn.Module):
    def forward(self, x):
        return torch.tanh(x) * 3


# dynamic=True makes sizes symbolic: `== 6` specializes s0 (symbolic_shape_specialization),
# `> 2` adds a guard on it (guard_added_fast).
torch.compile(pick, backend="aot_eager", dynamic=True)(torch.randn(6))
torch.compile(bounded, backend="aot_eager", dynamic=True)(torch.randn(5))
# Overlapping views with a mutation under dynamic shapes: AOTAutograd adds a storage-overlap
# guard (dynamo_guards).
base = torch.randn(10)
torch.compile(overlap, backend="aot_eager", dynamic=True)(base[:6], base[4:])
# Dynamo tracing the generated code of an FX GraphModule dumps it (dump_file).
torch.compile(torch.fx.symbolic_trace(Traced()), backend="aot_eager")(torch.randn(3))
"""

DDP = r"""
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

dist.init_process_group("gloo", rank=0, world_size=1)
layers = [torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU()]
model = torch.nn.Sequential(*layers, torch.nn.Linear(512, 8))
# 1 MiB buckets (the smallest the DDP optimizer accepts, its first bucket's size): each 1 MiB
# weight fills a bucket, so the graph is split at bucket boundaries.
# The compiled module runs inside DDP's forward, where Dynamo finds the active DDP module.
ddp = DistributedDataParallel(torch.compile(model, backend="aot_eager"), bucket_cap_mb=1)
ddp(torch.randn(2, 512)).sum().backward()
dist.destroy_process_group()
"""

MISMATCH = r"""
import torch


@torch.library.custom_op("tldb_test::double_rows", mutates_args=())
def double_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x])


@double_rows.register_fake
def _(x):
    return torch.empty_like(x)  # wrong on purpose: the real kernel returns twice the rows


class Doubled(torch.nn.Module):
    def forward(self, x):
        return double_rows(x) * 2


ep = torch.export.draft_export(Doubled(), (torch.randn(3, 2),))
print(ep)
"""

# Each rank compiles with Inductor a step that all-reduces with functional collectives, with
# runtime estimates on (config.log_tlparse; not the LOG_TLPARSE variable, which overrides the
# config) and the graph execution order recorded. Mode "shape": every rank compiles the same
# graph, the last rank's local input is larger (only the tensor metadata and runtime estimates
# diverge). Mode "diverge": the last rank's compiled step also broadcasts (the others broadcast
# eagerly, so the wire traffic matches) and it compiles one more graph (compile ids and cache
# outcomes diverge). The extra graph is compiled without runtime estimates: tlparse reads the
# graph folders of a rank in file-system listing order, which differs between machines, so
# each rank keeps one graph with estimates and schedule.
MULTI_RANK = r"""
import sys

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
import torch.multiprocessing as mp
from torch._inductor.debug import record_and_log_graph_execution_order


def reduce_step(x, local):
    total = funcol.all_reduce(x.sin(), "sum", dist.group.WORLD)
    return total.cos() + local * 2


def reduce_broadcast_step(x, local):
    total = funcol.all_reduce(x.sin(), "sum", dist.group.WORLD)
    shared = funcol.broadcast(total * 2, 0, dist.group.WORLD)
    return shared.cos() + local * 2


def scale(x):
    return x * 3 - 1


def worker(rank, world, mode):
    torch._inductor.config.log_tlparse = True
    dist.init_process_group("gloo", rank=rank, world_size=world)
    last = rank == world - 1
    x = torch.full((8,), float(rank + 1))
    local = torch.randn(2 if mode == "shape" and last else 1, 8)
    with record_and_log_graph_execution_order():
        if mode == "diverge" and last:
            out = torch.compile(reduce_broadcast_step)(x, local)
            with torch._inductor.config.patch(log_tlparse=False):
                torch.compile(scale)(out)
        else:
            out = torch.compile(reduce_step)(x, local)
            if mode == "diverge":
                dist.broadcast(out, 0)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    world, mode = int(sys.argv[1]), sys.argv[2]
    mp.spawn(worker, args=(world, mode), nprocs=world, join=True)
"""

# Pairs of runs for `tldb diff` and `tldb check` (tests/test_rundiff.py): each pair is one
# program in two versions that differ in one thing only, run from the same script path (so the
# compiled frames have the same code object name, file and first line in both runs).
GRAPH_BREAK_PAIR = r"""
import torch
import torch._dynamo


def step(x):
    y = x.sin() + 1
    {middle}
    return y.cos() * 2


f = torch.compile(step, backend="aot_eager")
f(torch.randn(8))
f(torch.randn(8))
"""

RECOMPILE_PAIR = r"""
import torch


def shifted(x):
    return x + 1


f = torch.compile(shifted, backend="aot_eager")
f(torch.randn(5))
f(torch.randn(5, dtype=torch.{dtype}))
"""

GUARD_PAIR = r"""
import torch


def pick(x, n):
    if n > 0:
        return x.sin()
    return x.cos()


torch.compile(pick, backend="aot_eager")(torch.randn(4), {n})
"""

DYNAMIC_PAIR = r"""
import torch


def doubled(x):
    return x * 2


x = torch.randn(6)
{mark}
torch.compile(doubled, backend="aot_eager")(x)
"""

CACHE_PAIR = r"""
import torch


def scaled(x):
    return torch.relu(x) * 2 + 1


torch.compile(scaled)(torch.randn(8))
"""


def pair_runs() -> list[Scenario]:
    """The diff pairs, each run twice (before, after) from one script path, logs in pairs/."""
    pairs = [
        (
            "graph_break",
            GRAPH_BREAK_PAIR,
            {"middle": "torch._dynamo.graph_break()"},
            {"middle": "y = y  # no graph break"},
        ),
        ("recompile", RECOMPILE_PAIR, {"dtype": "float32"}, {"dtype": "float64"}),
        ("guard", GUARD_PAIR, {"n": "3"}, {"n": "5"}),
        # the same call, its input's size marked dynamic in the second run
        ("dynamic", DYNAMIC_PAIR, {"mark": "pass"}, {"mark": "torch._dynamo.mark_dynamic(x, 0)"}),
        # one Inductor cache folder: the first run fills it (cold), the second hits it (warm)
        ("cache", CACHE_PAIR, {}, {}),
    ]
    runs = []
    for name, program, before, after in pairs:
        sides = ("cold", "warm") if name == "cache" else ("before", "after")
        for side, values in zip(sides, (before, after), strict=True):
            runs.append(
                Scenario(
                    f"pair_{name}_{side}",
                    program.format(**values),
                    (f"pairs/{name}_{side}.log",),
                    cache=f"pair_{name}_cache",
                    script=f"pair_{name}.py",
                    always_gzip=True,
                )
            )
    return runs


@dataclass(frozen=True)
class Scenario:
    """One program run with tracing on, and where its logs go (relative to torch213/)."""

    name: str
    program: str
    targets: tuple[str, ...]  # one per log it writes, oldest first, or per rank for ranked runs
    trace_var: str = "TORCH_TRACE"
    cache: str = ""  # Inductor cache folder name (scenarios sharing one reuse each other's)
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    ranked: bool = False  # logs named dedicated_log_torch_trace_rank_<N>_*: targets by rank
    script: str = ""  # the program's file name (default <name>.py); the diff pairs share one
    always_gzip: bool = False  # store gzip-compressed whatever the size (the diff pairs)


def ranked_run(world: int, mode: str) -> Scenario:
    """The gloo run of MULTI_RANK with `world` ranks, its logs in ranks<world>/ by rank."""
    targets = tuple(f"ranks{world}/dedicated_log_torch_trace_rank_{n}.log" for n in range(world))
    env = (("MASTER_ADDR", "127.0.0.1"),)
    return Scenario(
        f"ranks{world}", MULTI_RANK, targets, env=env, args=(str(world), mode), ranked=True
    )


SCENARIOS = [
    Scenario("cache_1", CACHED, ("cache_1.log",), cache="inductor_cache"),
    Scenario("cache_2", CACHED, ("cache_2.log",), cache="inductor_cache"),
    Scenario("dynamo", DYNAMO, ("dynamo.log",)),
    # draft_export writes its own second log file
    Scenario("export", EXPORT, ("export.log", "draft_export.log"), trace_var="TORCH_DTRACE"),
    Scenario("regional", REGIONAL, ("regional.log",)),
    Scenario("provenance", PROVENANCE, ("provenance.log",), env=(("INDUCTOR_PROVENANCE", "1"),)),
    Scenario("aoti", AOTI, ("aoti.log",), env=(("INDUCTOR_PROVENANCE", "1"),)),
    Scenario("compiled_autograd", COMPILED_AUTOGRAD, ("compiled_autograd.log",)),
    Scenario("bypass", BYPASS, ("bypass.log",)),
    Scenario("shapes", SHAPES, ("shapes.log",)),
    Scenario("ddp", DDP, ("ddp.log",), env=(("MASTER_ADDR", "127.0.0.1"),), ranked=True),
    Scenario("mismatch", MISMATCH, ("mismatch.log",), trace_var="TORCH_DTRACE"),
    *(ranked_run(world, mode) for world, mode in ((2, "shape"), (4, "diverge"))),
    *pair_runs(),
]

#: Logs over this size are stored gzip-compressed (level 9, no name, time stamp 0, as `gzip
#: -9n`): the whole torch213/ folder must stay under 3 MiB (tests/test_kinds.py).
GZIP_OVER = 100_000
#: The first logs, stored plain whatever their size: some tests read them directly.
KEEP_PLAIN = {"cache_1.log", "cache_2.log", "dynamo.log", "export.log", "draft_export.log"}
KEEP_PLAIN |= {"regional.log"}


def free_port() -> int:
    """A TCP port free right now, for the gloo rendezvous of one scenario."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(scenario: Scenario, work: Path) -> list[Path]:
    """Run one program with tracing on; return the logs it wrote, in target order."""
    trace_dir = work / scenario.name
    env = dict(os.environ)
    env.pop("TORCH_TRACE", None)
    env.pop("TORCH_DTRACE", None)
    env.update(
        {
            scenario.trace_var: str(trace_dir),
            "TORCHINDUCTOR_CACHE_DIR": str(work / (scenario.cache or f"{scenario.name}_cache")),
            "TORCH_COMPILE_DEBUG": "0",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "MASTER_PORT": str(free_port()),
            **dict(scenario.env),
        }
    )
    script = work / (scenario.script or f"{scenario.name}.py")
    script.write_text(scenario.program, encoding="utf-8")
    command = [sys.executable, str(script), *scenario.args]
    subprocess.run(command, env=env, check=True, cwd=work)
    logs = list(trace_dir.glob("*.log"))
    if scenario.ranked:
        rank = re.compile(r"dedicated_log_torch_trace_rank_(\d+)_")
        return sorted(logs, key=lambda p: int(rank.match(p.name).group(1)))
    return sorted(logs, key=lambda p: p.stat().st_mtime_ns)


def store(data: bytes, target: Path, always_gzip: bool = False) -> Path:
    """Write a log to the corpus untouched, gzip-compressed (reproducibly) when it is large."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in (target, target.with_name(target.name + ".gz")):
        old.unlink(missing_ok=True)
    if not always_gzip and (len(data) <= GZIP_OVER or target.name in KEEP_PLAIN):
        target.write_bytes(data)
        return target
    packed = target.with_name(target.name + ".gz")
    packed.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    return packed


def stored_bytes(name: str) -> bytes:
    """The plain bytes of a log of the corpus, stored plain or gzip-compressed."""
    plain = OUT / name
    if plain.is_file():
        return plain.read_bytes()
    return gzip.decompress((OUT / (name + ".gz")).read_bytes())


#: The --latest fixture: plain copies of two small logs, oldest first. git does not keep
#: mtimes, so cases.json lists this order ("mtime_order") for the test harness to set before
#: running; the names sort in the same order. Plain, so that conftest's data_path hands the
#: folder itself (it would unpack `.gz` files into a cache, in an order of its own).
LATEST = (("mismatch.log", "latest/1_mismatch.log"), ("bypass.log", "latest/2_bypass.log"))


def make_latest() -> None:
    """(Re)build torch213/latest/ from the logs it copies, written in LATEST's order."""
    for source, target in LATEST:
        (OUT / target).parent.mkdir(parents=True, exist_ok=True)
        (OUT / target).write_bytes(stored_bytes(source))


def main() -> None:
    import torch

    if not torch.__version__.startswith("2.13."):
        raise SystemExit(f"needs torch 2.13, found {torch.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = set(sys.argv[1:])  # e.g. `export regional`; the cache pair always runs together
    with tempfile.TemporaryDirectory(prefix="tldb-traces-") as tmp:
        work = Path(tmp)
        for scenario in SCENARIOS:
            name = scenario.name
            if (
                wanted
                and name not in wanted
                and not (name.startswith("cache_") and "cache" in wanted)
                and not (name.startswith("pair_") and "pairs" in wanted)
            ):
                continue
            logs = run(scenario, work)
            if len(logs) != len(scenario.targets):
                raise SystemExit(f"{name}: expected {len(scenario.targets)} log(s), found {logs}")
            for log, target in zip(logs, scenario.targets, strict=True):
                stored = store(log.read_bytes(), OUT / target, scenario.always_gzip)
                print(f"{stored.relative_to(OUT)}: {stored.stat().st_size} bytes")
        if not wanted or "latest" in wanted:
            make_latest()


if __name__ == "__main__":
    main()
