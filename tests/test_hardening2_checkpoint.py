"""sgan checkpoints (issue 23 §3): the checksum covers the config JSON, counters and every non-tensor
field; non-finite weights are refused by name; checkpoint does not import formats (layering)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from sgan.checkpoint import load_checkpoint, load_generator, save_checkpoint
from sgan.errors import CheckpointError
from sgan.nn import Discriminator, Generator, ModelConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def snapshot(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 8)
    return save_checkpoint(tmp_path / "s.pt", config=cfg, G=Generator(cfg), G_ema=Generator(cfg), D=Discriminator(cfg),
                           extra={"counters": {"cur_nimg": 600, "step": 15}, "opt": {"exp_avg": torch.ones(3)}})


def _replace_bytes(path, old: bytes, new: bytes):
    raw = path.read_bytes()
    assert raw.count(old) == 1, old
    path.write_bytes(raw.replace(old, new))


def test_one_byte_of_the_config_json_is_caught(snapshot):
    data = torch.load(snapshot, weights_only=True)
    text = data["config"]
    key = '"mapping_lrmul": '
    at = text.index(key) + len(key)
    end = at
    while text[end] in "0123456789.e-":
        end += 1
    old = text[at:end].encode()                    # e.g. 0.01
    new = old[:-1] + (b"9" if old[-1:] != b"9" else b"8")
    _replace_bytes(snapshot, (key.encode() + old), (key.encode() + new))   # a flipped byte in data.pkl (stored)
    with pytest.raises(CheckpointError, match="non-tensor fields"):
        load_checkpoint(snapshot)


def test_counters_are_covered(snapshot):
    data = torch.load(snapshot, weights_only=True)
    data["extra"]["counters"]["cur_nimg"] = 2600
    torch.save(data, snapshot)
    with pytest.raises(CheckpointError, match="counters"):
        load_checkpoint(snapshot)


def test_files_without_the_fields_checksum_load_with_a_note(snapshot, caplog):
    data = torch.load(snapshot, weights_only=True)
    data["checksums"].pop("fields")
    data["extra"]["counters"]["cur_nimg"] = 2600        # not detectable in such a file: loads, unchecked
    torch.save(data, snapshot)
    with caplog.at_level("WARNING", logger="sgan.checkpoint"):
        ckpt = load_checkpoint(snapshot)
    assert ckpt.extra["counters"]["cur_nimg"] == 2600
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "unchecked" in notes[0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_name(snapshot, bad):
    data = torch.load(snapshot, weights_only=True)
    name = next(k for k, v in data["G_ema"].items() if v.is_floating_point() and v.numel() > 1)
    data["G_ema"][name][0] = bad
    data.pop("checksums")                              # a file whose checksums were written after the damage
    torch.save(data, snapshot)
    with pytest.raises(CheckpointError, match=f"G_ema/{name} holds NaN"):
        load_generator(snapshot)


def test_checkpoint_modules_never_import_formats():
    for path in sorted((ROOT / "sgan").glob("checkpoint*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("sgan.formats") for n in names), f"{path.name} imports {names}"
