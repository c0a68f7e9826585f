"""Options and files that would exhaust the machine (issue 23 §2) and small things (§6): video frame
count, class ids in dataset.json, duplicate entries, the rosinality key scan."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sgan.formats.common import count_blocks
from tests.hardening2_helpers import invoke, one_error_line, one_line, run_limited


@pytest.mark.parametrize("args, number", [(["--fps", "1e9"], "2e+09"), (["--seconds-per-seed", "1e9"], "3e+10"),
                                          (["--mode", "noise", "--seconds", "1e9"], "3e+10")])
def test_video_frame_count_is_bounded_up_front(tiny_checkpoint, tmp_path, args, number):
    line = one_error_line(run_limited("video", tiny_checkpoint, "--seeds", "0,1", *args, "--out", tmp_path / "v.mp4"))
    assert "frames" in line and number in line, line


def _images(root, names):
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(p)


@pytest.mark.parametrize("cls", [999_999_999, 10 ** 30])
def test_a_huge_class_id_in_dataset_json_is_refused_naming_the_file(tmp_path, cls):
    src = tmp_path / "src"
    _images(src, ["a.png", "b.png"])
    (src / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0], ["b.png", cls]]}))
    line = one_error_line(run_limited("prepare-dataset", src, tmp_path / "db", "--max-size", "8", "--workers", "1"))
    assert "dataset.json" in line and "b.png" in line, line


def test_a_duplicate_dataset_json_entry_is_refused(tmp_path):
    src = tmp_path / "src"
    _images(src, ["a.png", "b.png"])
    (src / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0], ["b.png", 1], ["a.png", 1]]}))
    one_line(invoke("prepare-dataset", src, tmp_path / "db", "--max-size", "8", "--workers", "1"),
              "a.png is listed twice")


class _CountingDict(dict):
    def __init__(self, *a):
        super().__init__(*a)
        self.iterations = 0

    def __iter__(self):
        for k in super().__iter__():
            self.iterations += 1
            yield k


def test_the_rosinality_block_scan_is_one_pass():
    sd = _CountingDict({f"generator.progression.{i}.conv.weight": 0 for i in range(2000)})
    assert count_blocks(sd, "generator.progression.") == 2000
    assert sd.iterations <= len(sd)
    gap = {"p.0.w": 0, "p.1.w": 0, "p.3.w": 0, "p.10x.w": 0, "p.01.w": 0}
    assert count_blocks(gap, "p.") == 2
