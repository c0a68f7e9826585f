"""StyleGAN2 with --aug, --cond, --freeze-d and --init (tiny models, 16 px)."""

from __future__ import annotations

import copy

import pytest
import torch

from sgan.checkpoint import load_checkpoint
from sgan.errors import CheckpointError
from sgan.train import Hooks, train
from sgan.train.finetune import d_layer_groups
from sgan.train.state import unpack
from tests.test_train_sg2 import _same, tiny


@pytest.mark.parametrize("aug", ["ada", "diffaug"])
def test_sg2_resume_is_exact_with_augmentation_and_labels(shapes16, tmp_path, aug):
    n = 5
    opts = dict(aug=aug, aug_kimg=0.2, aug_interval=2, aug_target=0.01, cond=True)
    straight = train(tiny(total_kimg=2 * n * 8 / 1000, **opts), shapes16, tmp_path / "a", device="cpu", threads=1)
    train(tiny(total_kimg=n * 8 / 1000, **opts), shapes16, tmp_path / "b", device="cpu", threads=1)
    resumed = train(tiny(), shapes16, tmp_path / "b", device="cpu", resume="auto", threads=1,
                    resume_overrides={"total_kimg": 2 * n * 8 / 1000})
    a, b = load_checkpoint(straight.snapshot), load_checkpoint(resumed.snapshot)
    for name in ("G", "G_ema", "D"):
        _same(getattr(a, name), getattr(b, name))
    _same(unpack(a.extra, a.path).opt_D, unpack(b.extra, b.path).opt_D)
    _same(a.extra["augment"], b.extra["augment"])
    assert a.extra["augment"]["batches"] == 2 * n and a.config.c_dim == 4 and a.config.arch == "stylegan2"
    assert "D.mapping.embed.weight" not in a.D and "mapping.embed.weight" in a.D


def test_sg2_freeze_d_counts_blocks_top_down(shapes16, tmp_path):
    from sgan.nn import make_discriminator

    tc = tiny()
    tc.resolution = 32
    D = make_discriminator(tc.model_config())
    names = [n for n, _ in d_layer_groups(D)]
    assert names == ["b32.fromrgb", "b32.conv0", "b32.conv1", "b32.skip", "b16.conv0", "b16.conv1", "b16.skip",
                     "b8.conv0", "b8.conv1", "b8.skip"]
    seen = []
    hook = Hooks(on_step=[lambda tr: seen.append(copy.deepcopy(tr.D.state_dict())) if tr.c.step == 0 else None])
    res = train(tiny(total_kimg=0.032, freeze_d=2), shapes16, tmp_path / "fz", device="cpu", threads=1, hooks=hook)
    first, last = seen[0], load_checkpoint(res.snapshot).D
    for k in first:
        if k.startswith(("b16.fromrgb.", "b16.conv0.")):
            assert torch.equal(first[k], last[k]), k
        elif k.startswith(("b16.conv1.", "b8.", "b4.")) and "filter" not in k:
            assert not torch.equal(first[k], last[k]), k


def test_sg2_init_from_a_run_and_refusal(shapes16, tmp_path):
    src = train(tiny(total_kimg=0.016), shapes16, tmp_path / "src", device="cpu", threads=1)
    seen = []
    hook = Hooks(on_step=[lambda tr: seen.append(copy.deepcopy(tr.G.state_dict())) if tr.c.step == 0 else None])
    train(tiny(total_kimg=0.008, init=str(tmp_path / "src")), shapes16, tmp_path / "ft", device="cpu", threads=1,
          hooks=hook)
    _same(seen[0], load_checkpoint(src.snapshot).G)
    with pytest.raises(CheckpointError, match=r"mapping\.embed\.weight"):
        train(tiny(init=str(src.snapshot), cond=True), shapes16, tmp_path / "bad", device="cpu", threads=1)
