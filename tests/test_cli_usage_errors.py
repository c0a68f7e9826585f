"""Click's usage errors (a bad option value, an unknown option, a missing argument) are one `Error:`
line with exit code 2, as sgan's own errors are; latent .npy files are judged by their header before
any array is allocated (issue 23 §5)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from sgan.cli import app
from sgan.cli.app import oom_hint
from sgan.errors import DataError
from sgan.latent import load_latent

runner = CliRunner()


def only_error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("args, needle", [
    (["generate", "x", "--seeds", "1", "--trunc", "abc"], "Invalid value for '--trunc'"),
    (["generate", "x", "--bogus"], "No such option: --bogus"),
    (["generate"], "Missing argument 'CKPT'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["train", "data.lmdb"], "Missing option '--out'"),
])
def test_usage_errors_are_one_line(args, needle):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = only_error_line(result)
    assert needle in line and "--help" in line, line
    assert "╭" not in result.output and "Usage:" not in result.output


def test_help_and_version_still_exit_zero():
    assert runner.invoke(app, ["generate", "--help"]).exit_code == 0
    assert runner.invoke(app, ["--version"]).exit_code == 0


def _npy_with_header(path, header: str, data: bytes = b""):
    header = header + " " * (118 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
    return path


def test_latent_headers_are_checked_before_loading(tmp_path):
    huge = _npy_with_header(tmp_path / "huge.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 512), }",
                            b"\0" * 64)
    with pytest.raises(DataError, match=r"claims \[100000000, 512\] float32 but the file holds only 64 bytes"):
        load_latent(huge, num_ws=8, w_dim=512)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects") as err:
        load_latent(objects, num_ws=8, w_dim=512)
    assert "allow_pickle" not in str(err.value)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not an array at all" * 4)
    with pytest.raises(DataError, match="not a .npy latent"):
        load_latent(garbage, num_ws=8, w_dim=512)
    good = tmp_path / "good.npy"
    np.save(good, np.zeros([8, 512], np.float32))
    assert load_latent(good, num_ws=8, w_dim=512).shape == (8, 512)


def test_out_of_memory_hints_name_the_options_that_help():
    assert "--scale" in oom_hint("figure") and "--scale" in oom_hint("edit")
