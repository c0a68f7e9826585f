"""Outputs that cannot be written and out-of-range --trunc (issue 23 §4), atomic-write hygiene (§6):
one `Error:` line, never a traceback."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from sgan.fileio import STALE_TMP_SECONDS, OutputError, atomic_write_bytes
from tests.hardening2_helpers import invoke, one_line

TF32 = Path(__file__).parent / "fixtures" / "import" / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl"
UNWRITABLE = ["/sys/x.pt", "/proc/x.pt"]


@pytest.fixture
def a_file(tmp_path):
    p = tmp_path / "file"
    p.write_text("x")
    return p


@pytest.mark.parametrize("where", UNWRITABLE + ["FILE/x.pt", "DIR"])
def test_import_to_an_unwritable_place(tmp_path, a_file, where):
    out = {"FILE/x.pt": a_file / "x.pt", "DIR": tmp_path}.get(where, where)
    one_line(invoke("import", TF32, "--out", out, "--force"), str(out))


@pytest.mark.parametrize("cmd", ["generate", "mix"])
def test_generate_and_mix_to_an_unwritable_place(tiny_checkpoint, cmd):
    args = (["generate", tiny_checkpoint, "--seeds", "0", "--outdir", "/sys/sgan-x"] if cmd == "generate" else
            ["mix", tiny_checkpoint, "--rows", "1", "--cols", "2", "--out", "/sys/x.png"])
    one_line(invoke(*args), "/sys/")


def test_detector_train_to_an_unwritable_place(tmp_path):
    from sgan.data.prepare import prepare_dataset

    db = tmp_path / "s.lmdb"
    prepare_dataset("builtin:shapes", db, max_size=16, min_size=16, count=24, workers=1)
    one_line(invoke("detector", "train", db, "--out", "/sys/x.pt", "--epochs", "1"), "/sys/x.pt")


@pytest.mark.parametrize("value", ["1e39", "-1e39", "1000"])
def test_trunc_outside_a_sane_range(tiny_checkpoint, tmp_path, value):
    one_line(invoke("generate", tiny_checkpoint, "--seeds", "0", "--trunc", value, "--outdir", tmp_path / "g"), "--trunc")
    one_line(invoke("mix", tiny_checkpoint, "--rows", "1", "--cols", "2", "--trunc", value, "--out", tmp_path / "m.png"),
             "--trunc")
    one_line(invoke("figure", "truncation", tiny_checkpoint, "--psi", f"1,{value}", "--out", tmp_path / "f.png"), "--psi")
    one_line(invoke("video", tiny_checkpoint, "--seeds", "0,1", "--trunc", value, "--out", tmp_path / "v.mp4"), "--trunc")


def test_atomic_write_removes_stale_tmps_of_its_name_and_follows_the_umask(tmp_path):
    target = tmp_path / "snap.pt"
    stale = tmp_path / ".snap.pt.abc123.tmp"
    fresh = tmp_path / ".snap.pt.def456.tmp"            # another writer, still busy
    other = tmp_path / ".other.pt.abc123.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"x" * 10)
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    mask = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"data")
    finally:
        os.umask(mask)
    assert not stale.exists() and fresh.exists() and other.exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_into_a_file_path_is_one_error(tmp_path, a_file):
    with pytest.raises(OutputError, match="part of the path is a file"):
        atomic_write_bytes(a_file / "x.bin", b"data")
