"""`sgan prepare-dataset` and `sgan dataset info|preview|verify` end to end from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import lmdb
import numpy as np
from PIL import Image
from typer.testing import CliRunner

from sgan.cli import app
from sgan.data import layout

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _photos(root, n=4):
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / f"p{i}.jpg", quality=90)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    return root


def test_prepare_info_preview_verify_on_builtin_shapes(tmp_path):
    db = tmp_path / "shapes.lmdb"
    result = invoke("prepare-dataset", "builtin:shapes", db, "--max-size", 16, "--count", 30, "--workers", 2)
    assert result.exit_code == 0, result.output
    assert "30 images" in result.output and (db / "data.mdb").exists()
    result = invoke("dataset", "info", db, "--json")
    info = json.loads(result.stdout)
    assert result.exit_code == 0 and info["count"] == 30 and info["sizes"] == [4, 8, 16]
    assert invoke("dataset", "info", db).exit_code == 0
    grid = tmp_path / "grid.png"
    result = invoke("dataset", "preview", db, "--size", 16, "--count", 16, "--out", grid)
    assert result.exit_code == 0, result.output
    assert Image.open(grid).size == (4 * 16 + 6, 4 * 16 + 6)
    result = invoke("dataset", "verify", db)
    assert result.exit_code == 0 and "ok (30 images" in result.output


def test_prepare_a_folder_reports_skips(tmp_path):
    src = _photos(tmp_path / "photos")
    db = tmp_path / "photos.lmdb"
    result = invoke("prepare-dataset", src, db, "--max-size", 32, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "4 images" in result.output and "skipped" in result.output
    manifest = json.loads((db / "manifest.json").read_text())
    assert [e["file"] for e in manifest["skipped"]] == ["broken.jpg"]
    result = invoke("prepare-dataset", src, db, "--max-size", 32, "--strict", "--overwrite")
    assert result.exit_code == 1 and "broken.jpg" in result.output and "Traceback" not in result.output


def test_user_mistakes_are_one_line_errors(tmp_path):
    db = tmp_path / "s.lmdb"
    cases = [
        (["prepare-dataset", tmp_path / "missing", db], "does not exist"),
        (["prepare-dataset", "builtin:shapes", db, "--max-size", 30], "power of two"),
        (["prepare-dataset", "builtin:shapes", db, "--format", "gif"], "--format"),
        (["prepare-dataset", "builtin:nothing", db], "unknown built-in"),
        (["prepare-dataset", "builtin:shapes", db, "--background", "plaid"], "--background"),
        (["dataset", "info", tmp_path / "nope.lmdb"], "does not exist"),
    ]
    for args, needle in cases:
        result = invoke(*args)
        assert result.exit_code != 0, args
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], (args, result.output)
    invoke("prepare-dataset", "builtin:shapes", db, "--max-size", 8, "--count", 4, "--workers", 1)
    result = invoke("prepare-dataset", "builtin:shapes", db, "--max-size", 8, "--count", 4)
    assert result.exit_code == 1 and "--overwrite" in result.output
    result = invoke("dataset", "preview", db, "--size", 64, "--out", tmp_path / "g.png")
    assert result.exit_code == 2 and "choose --size from 4, 8" in result.output


def test_verify_exits_1_on_a_damaged_database(tmp_path):
    db = tmp_path / "d.lmdb"
    assert invoke("prepare-dataset", "builtin:shapes", db, "--max-size", 8, "--count", 3, "--workers", 1).exit_code == 0
    layout.close_env(db)
    with lmdb.open(str(db), map_size=1 << 30) as env, env.begin(write=True) as txn:
        txn.put(b"8-00001", b"garbage")
    result = invoke("dataset", "verify", db)
    assert result.exit_code == 1 and "8-00001" in result.output
    layout.close_env(db)


def test_verify_reports_checksums(tmp_path):
    db = tmp_path / "d.lmdb"
    assert invoke("prepare-dataset", "builtin:shapes", db, "--max-size", 8, "--count", 3, "--workers", 1).exit_code == 0
    result = invoke("dataset", "verify", db)
    assert result.exit_code == 0 and "every record matches its checksum" in result.output
    layout.close_env(db)


def test_help_has_examples():
    for args in (["prepare-dataset"], ["dataset", "info"], ["dataset", "preview"], ["dataset", "verify"], ["dataset"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0 and "Example" in result.output and "sgan " in result.output, args


def test_console_script_runs_in_a_fresh_process(tmp_path):
    db = tmp_path / "p.lmdb"
    proc = subprocess.run([sys.executable, "-m", "sgan", "prepare-dataset", "builtin:shapes", str(db),
                           "--max-size", "8", "--count", "10", "--workers", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "10 images" in proc.stdout and "images written" in proc.stderr
