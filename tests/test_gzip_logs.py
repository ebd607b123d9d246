"""gzip-compressed logs (tlparse's later versions, §e): a `.gz` log reads as its decompressed
text, streamed, with the same report; raw.log holds the text; `.log.gz` rank logs work with
--all-ranks-html and --latest; a damaged archive is a one-line error."""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import DATA, ROOT, data_path, run_tldb

PACKED = DATA / "torch213" / "provenance.log.gz"


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_report_equals_the_decompressed_logs(tmp_path):
    plain = tmp_path / "provenance.log"
    plain.write_bytes(gzip.decompress(PACKED.read_bytes()))
    ours, theirs = tmp_path / "gz", tmp_path / "plain"
    for log, out in ((PACKED, ours), (plain, theirs)):
        result = run_tldb("report", str(log), "-o", str(out))
        assert result.returncode == 0, result.stderr
    files = tree(theirs)
    assert tree(ours) == files
    assert (ours / "raw.log").read_bytes() == plain.read_bytes()
    # Everything but the database and the manifest (which names the input file) is identical.
    same = sorted(files - {"trace.db", "manifest.json"})
    match, mismatch, errors = filecmp.cmpfiles(ours, theirs, same, shallow=False)
    assert mismatch == [] and errors == []
    assert len(match) > 20


def test_damaged_archives_are_one_line_errors(tmp_path):
    packed = PACKED.read_bytes()
    cases = {"not_gzip.log.gz": b"V1130 plain text, not gzip\n", "cut.log.gz": packed[:20000]}
    for name, data in cases.items():
        log = tmp_path / name
        log.write_bytes(data)
        result = run_tldb("report", str(log), "-o", str(tmp_path / f"out_{name}"))
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert "gzip" in lines[0] and "Traceback" not in result.stderr


def test_rank_folder_of_gzip_logs(tmp_path):
    folder = tmp_path / "ranks"
    folder.mkdir()
    for rank in (0, 1):
        name = f"dedicated_log_torch_trace_rank_{rank}.log.gz"
        shutil.copy(DATA / "torch213" / "ranks2" / name, folder / name)
    out = tmp_path / "out"
    result = run_tldb("report", str(folder), "--all-ranks-html", "-o", str(out))
    assert result.returncode == 0, result.stderr
    landing = (out / "index.html").read_text(encoding="utf-8")
    for rank in (0, 1):
        assert f'href="rank_{rank}/index.html"' in landing
        plain = data_path(f"torch213/ranks2/dedicated_log_torch_trace_rank_{rank}.log")
        assert (out / f"rank_{rank}" / "raw.log").read_bytes() == plain.read_bytes()
    # --latest takes the newest file of the folder, compressed or not.
    os.utime(folder / "dedicated_log_torch_trace_rank_0.log.gz", (2_000_000_000, 2_000_000_000))
    latest = tmp_path / "latest"
    result = run_tldb("report", str(folder), "--latest", "-o", str(latest))
    assert result.returncode == 0, result.stderr
    plain = data_path("torch213/ranks2/dedicated_log_torch_trace_rank_0.log")
    assert (latest / "raw.log").read_bytes() == plain.read_bytes()


#: Reads a log with tldb's reader in a fresh process; prints envelopes, text bytes and the
#: growth of the peak resident set while reading (KiB on Linux).
_MEASURE = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from tldb.reader import Reader, open_log
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open_log(Path(sys.argv[1])) as stream:
        reader = Reader(stream)
        envelopes = sum(1 for r in reader if hasattr(r, "metadata"))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(envelopes, reader.shape.size, reader.stats.fail_payload_md5, after - before)
    """
)


def test_gzip_logs_are_streamed(tmp_path):
    """A 64 MiB log packed into a small .gz reads with a bounded peak memory (loosely: under a
    third of the text), every payload checked."""
    log = tmp_path / "big.log.gz"
    count, size = 1024, 64 << 10
    written = 0
    filler = "x" * 40
    with gzip.open(log, "wb", compresslevel=1) as packed:
        for i in range(count):
            payload = "\n".join(f"line {i} {j:05d} {filler}" for j in range(size // 56))
            meta = {"artifact": {"name": f"a{i}", "encoding": "string"}, "frame_id": 0}
            meta["has_payload"] = hashlib.md5(payload.encode()).hexdigest()
            header = f"V1130 06:00:00.000000 1 torch/x.py:{i + 1}] " + json.dumps(meta) + "\n"
            body = "".join(f"\t{line}\n" for line in payload.split("\n"))
            chunk = (header + body).encode()
            packed.write(chunk)
            written += len(chunk)
    assert written > 60 << 20 and log.stat().st_size < 8 << 20
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(log)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    envelopes, text_bytes, bad_md5, growth_kib = map(int, result.stdout.split())
    assert (envelopes, text_bytes, bad_md5) == (count, written, 0)
    assert growth_kib < (written // 3) >> 10
