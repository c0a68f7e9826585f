"""The loop with --aug, --cond, --init and --freeze-d (tiny models, 8-16 px)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from sgan.checkpoint import load_checkpoint
from sgan.errors import CheckpointError, UsageError
from sgan.train import train
from tests.test_train_loop import _assert_same, _state, tiny


def test_resume_is_exact_with_ada_and_labels(shapes16, tmp_path):
    n = 12
    opts = dict(lod_training_kimg=0.04, lod_transition_kimg=0.04, aug="ada", aug_kimg=0.5, aug_interval=2, aug_target=0.01, cond=True)
    straight = train(tiny(total_kimg=2 * n * 8 / 1000, **opts), shapes16, tmp_path / "a", device="cpu")
    train(tiny(total_kimg=n * 8 / 1000, **opts), shapes16, tmp_path / "b", device="cpu")
    resumed = train(tiny(), shapes16, tmp_path / "b", device="cpu", resume="auto",
                    resume_overrides={"total_kimg": 2 * n * 8 / 1000})
    a, st_a = _state(straight.snapshot)
    b, st_b = _state(resumed.snapshot)
    assert st_a.counters.step == st_b.counters.step == 2 * n
    for name in ("G", "G_ema", "D"):
        _assert_same(getattr(a, name), getattr(b, name))
    _assert_same(st_a.opt_D, st_b.opt_D)
    aug_a, aug_b = a.extra["augment"], b.extra["augment"]
    assert aug_a["batches"] == 2 * n and aug_a["rt"] is not None
    print("p", aug_a["p"], "rt", aug_a["rt"])
    _assert_same(aug_a, aug_b)
    assert a.config.c_dim == 4 and a.extra["classes"] == ["circle", "square", "triangle", "star"]
    stats = [json.loads(s) for s in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert all({"aug_p", "aug_rt", "acc_real", "acc_fake"} <= set(s) for s in stats[1:])


def test_diffaug_run_logs_overfitting_signals(shapes16, tmp_path):
    lines: list[str] = []
    from sgan.train import Hooks

    res = train(tiny(total_kimg=0.064, aug="diffaug", aug_policy="translation,cutout", tick_kimg_base=0.032),
                shapes16, tmp_path / "d", device="cpu", hooks=Hooks(log=lines.append))
    stats = [json.loads(s) for s in (tmp_path / "d" / "stats.jsonl").read_text().splitlines()]
    assert res.steps == 8 and "aug_p" not in stats[-1] and 0 <= stats[-1]["acc_real"] <= 1
    assert any("rt=" in line for line in lines if line.startswith("tick"))


def test_cond_needs_labels(tmp_path):
    from sgan.data.prepare import prepare_dataset

    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16, 3), 50 * i, np.uint8)).save(src / f"{i}.png")
    prepare_dataset(str(src), tmp_path / "db", max_size=16, workers=1)
    with pytest.raises(UsageError, match="no class labels"):
        train(tiny(cond=True), tmp_path / "db", tmp_path / "r", device="cpu")


def test_options_are_checked(shapes16, tmp_path):
    for bad, match in (({"aug": "bogus"}, "--aug"), ({"aug": "ada", "aug_pipe": "x"}, "--aug-pipe"),
                       ({"aug_p": 0.5}, "add --aug ada"), ({"aug": "ada", "aug_p": 1.5}, "probability"),
                       ({"init_ema": True}, "--init"), ({"freeze_d": 99}, "freezable layers")):
        with pytest.raises(UsageError, match=match):
            train(tiny(**bad), shapes16, tmp_path / f"r{len(match)}", device="cpu")


def test_init_copies_weights_and_refuses_a_mismatch(shapes16, tmp_path):
    src = train(tiny(total_kimg=0.032), shapes16, tmp_path / "src", device="cpu")
    source = load_checkpoint(src.snapshot)
    # A new run from the source's G_ema: before its first step it holds the source's weights.
    from sgan.train import Hooks

    seen = []

    def capture(tr):
        if tr.c.step == 0:
            seen.append((copy.deepcopy(tr.G.state_dict()), copy.deepcopy(tr.D.state_dict()), tr.opt_G.state_dict()))

    train(tiny(total_kimg=0.008, init=str(tmp_path / "src"), init_ema=True, start_resolution=16), shapes16,
          tmp_path / "ft", device="cpu", hooks=Hooks(on_step=[capture]))
    G0, D0, opt0 = seen[0]
    _assert_same(G0, source.G_ema)
    _assert_same(D0, source.D)
    assert opt0["state"] == {}
    # A conditional run cannot start from an unconditional model: the extra tensors are named.
    with pytest.raises(CheckpointError, match=r"mapping\.embed\.weight.*Settings that differ.*c_dim"):
        train(tiny(init=str(src.snapshot), cond=True, start_resolution=16), shapes16, tmp_path / "bad", device="cpu")
    with pytest.raises(CheckpointError, match=r"\[8, 32\] vs \[8, 16\]|fmap_max"):
        train(tiny(init=str(src.snapshot), model={**tiny().model, "fmap_max": 16}, start_resolution=16), shapes16,
              tmp_path / "bad2", device="cpu")
    assert not (tmp_path / "bad" / "latest.json").exists()


def test_freeze_d_counts_and_keeps_layers(shapes16, tmp_path):
    from sgan.nn import ModelConfig, make_discriminator
    from sgan.train.finetune import d_layer_groups

    D = make_discriminator(ModelConfig.preset("tiny", 32))
    names = [n for n, _ in d_layer_groups(D)]
    assert names == ["fromrgbs.3", "blocks.2.conv0", "blocks.2.conv1", "fromrgbs.2", "blocks.1.conv0",
                     "blocks.1.conv1", "fromrgbs.1", "blocks.0.conv0", "blocks.0.conv1"]
    from sgan.train import Hooks

    seen = []
    hook = Hooks(on_step=[lambda tr: seen.append(copy.deepcopy(tr.D.state_dict())) if tr.c.step == 0 else None])
    res = train(tiny(total_kimg=0.032, freeze_d=3, start_resolution=16), shapes16, tmp_path / "fz", device="cpu",
                hooks=hook)
    first, last = seen[0], load_checkpoint(res.snapshot).D
    frozen = ("fromrgbs.2.", "blocks.1.conv0.", "blocks.1.conv1.")  # the top (16 px) block
    trained = ("blocks.0.", "epilogue.")  # used at 16 px and not frozen
    for k in first:
        if k.startswith(frozen):
            assert torch.equal(first[k], last[k]), k
        elif k.startswith(trained):
            assert not torch.equal(first[k], last[k]), k
