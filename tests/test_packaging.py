"""A wheel built from the repository carries modules/, sql/ and the metadata, and works alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import ROOT, data_path


def test_wheel_installs_and_reports_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("tldb-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tldb/_data/sql/schema.sql" in names
    assert "tldb/_data/modules/compile_directory/module.py" in names
    assert "tldb/_data/datasette_metadata.yml" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "pip", "install", "-q", str(wheel)], check=True, capture_output=True
    )
    out = tmp_path / "report"
    log = data_path("torch213/regional.log")
    result = subprocess.run(
        [venv / "bin" / "tldb", "report", str(log), "-o", str(out), "--no-browser"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "compile_directory.json").is_file()
    assert (out / "index.html").is_file()
