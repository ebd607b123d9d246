"""`tldb run -- CMD ...` and `tldb report --serve`: from tlparse's later versions (0.4.4+ and
#162), registered by `tldb.cli`.

`tldb run` is the one-step workflow people ask for: run a program with TORCH_TRACE pointing at
a fresh folder, then report what it wrote. The program's exit status is kept (tldb exits with
it, and says it), and the report is written even when the program failed: a crash is when the
trace is wanted most.

`--serve` makes `tldb report` serve its output folder when done, with the same server as
`tldb serve OUT` (the report beside Datasette). Unlike tlparse it listens on loopback unless
--host says otherwise; without --port it takes the first free port from 8000 to 8099, as
tlparse does. It never opens a browser.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from tldb.errors import InputError, TldbError
from tldb.folder_hint import LOG_SUFFIXES
from tldb.module_api import ReportConfig
from tldb.rankfiles import rank_in_name

#: Where `tldb run` leaves the trace folders it creates (one per run, kept for later use).
TRACE_PREFIX = "tldb-trace-"


def serve_folder(out_dir: Path, host: str, port: int | None) -> None:
    """Serve a report folder as `tldb serve OUT` would, until Ctrl-C or SIGTERM."""
    from tldb.serve import bind_first_free, plan_serve, run

    plan = plan_serve([out_dir])
    sock = bind_first_free(host) if port is None else None
    run(plan, host, port or 0, {}, open_browser=False, sock=sock)


def _add_serve_options(report: click.Command) -> None:
    """Give `tldb report` --serve, --port and --host, wrapping its callback: report first,
    then serve OUT (the browser is never opened when serving)."""
    report.params += [
        click.Option(
            ["--serve"],
            is_flag=True,
            help="When done, serve OUT (report and Datasette, as tldb serve OUT); no browser.",
        ),
        click.Option(
            ["--port", "serve_port"],
            type=click.IntRange(0, 65535),
            default=None,
            help="With --serve: the port (default: the first free one from 8000 to 8099).",
        ),
        click.Option(
            ["--host", "serve_host"],
            default="127.0.0.1",
            show_default=True,
            help="With --serve: the address to listen on.",
        ),
    ]
    write_report = report.callback
    assert write_report is not None

    @functools.wraps(write_report)
    def report_then_serve(serve: bool, serve_port: int | None, serve_host: str, **options):
        if not serve and serve_port is not None:
            raise TldbError("--port goes with --serve")
        if serve:
            options["no_browser"] = True
        write_report(**options)
        if serve:
            serve_folder(options["out_dir"], serve_host, serve_port)

    report.callback = report_then_serve


def _trace_logs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(LOG_SUFFIXES))


def _exit_status(returncode: int) -> int:
    """The shell's convention: a program killed by signal N exits 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def report_trace(folder: Path, out_dir: Path, overwrite: bool, all_ranks: bool) -> str:
    """Report what a run wrote into `folder`; returns what was reported (for the summary)."""
    from tldb.report import ReportRequest, run_report

    logs = _trace_logs(folder)
    if not logs:
        raise InputError(f"the command wrote no trace log into {folder}")
    ranked = [log for log in logs if rank_in_name(log.name) is not None]
    if not all_ranks and len(logs) > 1:
        raise InputError(
            f"the command wrote {len(logs)} logs into {folder}"
            + (" (ranks): run again with --all-ranks-html" if ranked else "")
            + f", or report one with tldb report {folder}/NAME"
        )
    request = ReportRequest(
        source=folder if all_ranks else logs[0],
        out_dir=out_dir,
        config=ReportConfig(),
        overwrite=overwrite,
    )
    if all_ranks:
        from tldb.multirank import run_multi_rank

        run_multi_rank(request)
        return f"{len(ranked)} rank log(s)"
    run_report(request)
    return logs[0].name


@click.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--all-ranks-html",
    "all_ranks",
    is_flag=True,
    help="The command writes one log per rank: report them all, with the landing page.",
)
def run_command(command: tuple[str, ...], out_dir: Path, overwrite: bool, all_ranks: bool):
    """Run COMMAND with TORCH_TRACE set to a fresh folder, then report what it wrote.

    \b
    tldb run -- python train.py --epochs 1
    tldb run --all-ranks-html -o out -- torchrun --nproc-per-node 2 train.py

    The trace folder is kept (its path is printed). tldb exits with COMMAND's exit status;
    the report is written even when COMMAND fails.
    """
    if out_dir.exists() and not overwrite:
        raise TldbError(
            f"Directory {out_dir} already exists; pass --overwrite to replace it or use -o OUTDIR"
        )
    folder = Path(tempfile.mkdtemp(prefix=TRACE_PREFIX))
    env = {**os.environ, "TORCH_TRACE": str(folder)}
    click.echo(f"tldb run: TORCH_TRACE={folder}", err=True)
    try:
        returncode = subprocess.run(list(command), env=env).returncode
    except OSError as exc:
        folder.rmdir()  # still empty: nothing ran
        raise TldbError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    status = _exit_status(returncode)
    click.echo(f"tldb run: {command[0]} {_describe(returncode)}", err=True)
    try:
        what = report_trace(folder, out_dir, overwrite, all_ranks)
    except TldbError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(status or 1)
    click.echo(f"tldb run: report of {what} written to {out_dir}", err=True)
    sys.exit(status)


def register(group: click.Group) -> None:
    report = group.commands["report"]
    # -o and --overwrite mean what they mean for `tldb report`: the same option objects.
    shared = [p for p in report.params if p.name in ("out_dir", "overwrite")]
    assert len(shared) == 2
    run_command.params[:0] = shared
    _add_serve_options(report)
    group.add_command(run_command)
