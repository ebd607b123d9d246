"""Generate the torch 2.13 CPU TORCH_TRACE logs under tests/data/torch213/.

Run it with a Python that has the CPU build of torch 2.13.0 (CI does not have torch; the tests
only read the committed logs):

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0
    /tmp/torchvenv/bin/python tests/data/generate_traces.py

Each scenario runs in its own Python process (tracing is set up from the environment when torch
is imported) and leaves one log, copied to tests/data/torch213/<name>.log untouched:

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

Every Inductor compile writes ~250 kB (its config travels in the cache entry, two chromium
events and the metrics), so only the cache scenario and the regional one use Inductor. The
programs are kept small so that the logs stay small; nothing is trimmed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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


def run(name: str, program: str, trace_var: str, cache_dir: Path, work: Path) -> list[Path]:
    """Run one program with tracing on; return the logs it wrote, oldest first."""
    trace_dir = work / name
    env = dict(os.environ)
    env.pop("TORCH_TRACE", None)
    env.pop("TORCH_DTRACE", None)
    env.update(
        {
            trace_var: str(trace_dir),
            "TORCHINDUCTOR_CACHE_DIR": str(cache_dir),
            "TORCH_COMPILE_DEBUG": "0",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
        }
    )
    script = work / f"{name}.py"
    script.write_text(program, encoding="utf-8")
    subprocess.run([sys.executable, str(script)], env=env, check=True, cwd=work)
    return sorted(trace_dir.glob("*.log"), key=lambda p: p.stat().st_mtime_ns)


def main() -> None:
    import torch

    if not torch.__version__.startswith("2.13."):
        raise SystemExit(f"needs torch 2.13, found {torch.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tldb-traces-") as tmp:
        work = Path(tmp)
        cache = work / "inductor_cache"
        # (scenario, program, variable, cache folder, the names of the logs it writes)
        plan = [
            ("cache_1", CACHED, "TORCH_TRACE", cache, ["cache_1"]),
            ("cache_2", CACHED, "TORCH_TRACE", cache, ["cache_2"]),
            ("dynamo", DYNAMO, "TORCH_TRACE", work / "dynamo_cache", ["dynamo"]),
            # draft_export writes its own second log file
            ("export", EXPORT, "TORCH_DTRACE", work / "export_cache", ["export", "draft_export"]),
            ("regional", REGIONAL, "TORCH_TRACE", work / "regional_cache", ["regional"]),
        ]
        wanted = set(sys.argv[1:])  # e.g. `export regional`; the cache pair always runs together
        for name, program, var, cache_dir, names in plan:
            if (
                wanted
                and name not in wanted
                and not (name.startswith("cache_") and "cache" in wanted)
            ):
                continue
            logs = run(name, program, var, cache_dir, work)
            if len(logs) != len(names):
                raise SystemExit(f"{name}: expected {len(names)} log(s), found {logs}")
            for log, target in zip(logs, names, strict=True):
                shutil.copyfile(log, OUT / f"{target}.log")
                print(f"{target}.log: {(OUT / f'{target}.log').stat().st_size} bytes")


if __name__ == "__main__":
    main()
