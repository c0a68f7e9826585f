"""StyleGAN2 training: presets and the 'auto' rule, the lazy-regularisation correction, the
regularisers on cases with known answers, and one-line errors for bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sgan.errors import UsageError
from sgan.train import preset_config
from sgan.train.config import SG2_PRESETS
from sgan.train.plan import lazy_adam
from sgan.train.presets import auto_spec
from sgan.train.regularizers import (draw_crossover, mix_at, nan_to_num_grads_, path_length_loss, path_lengths,
                                     pl_noise)


@pytest.mark.parametrize("gpus,res,mb,gamma,ema", [(1, 256, 16, 0.82, 5.0), (1, 1024, 4, 52.4, 1.25),
                                                   (8, 1024, 32, 6.6, 10.0)])
def test_auto_rule_worked_examples(gpus, res, mb, gamma, ema):
    s = auto_spec(res, gpus)
    assert s["mb"] == mb and s["gamma"] == pytest.approx(gamma, abs=0.05) and s["ema_kimg"] == ema
    assert s["gamma"] == pytest.approx(0.0002 * res * res / mb)
    assert s["mbstd"] == min(mb // gpus, 4) and s["map"] == 2 and s["ema_rampup"] == 0.05
    assert s["fmaps"] == (1.0 if res >= 512 else 0.5) and s["lr"] == (0.002 if res == 1024 else 0.0025)
    cfg = preset_config("auto", arch="stylegan2", world_size=gpus, resolution=res).validate()
    assert cfg.batch_base == mb and cfg.r1_gamma == s["gamma"] and cfg.ema_kimg == ema
    model = cfg.model_config()
    assert model.arch == "stylegan2" and model.mapping_layers == 2 and model.mbstd_group_size == s["mbstd"]
    assert model.channel_base == int(s["fmaps"] * 32768) and model.channel_max == 512


def test_auto_rule_caps():
    assert auto_spec(32, 1)["mb"] == 32         # min(4096 // 32, 32)
    assert auto_spec(32, 4)["mb"] == 64         # capped at 64
    assert auto_spec(1024, 32)["mb"] == 64 and auto_spec(1024, 128)["mb"] == 128  # at least one per GPU
    assert auto_spec(512, 1)["fmaps"] == 1.0 and auto_spec(256, 1)["fmaps"] == 0.5


@pytest.mark.parametrize("name,mb,mbstd,base,lr,gamma,ema", [
    ("stylegan2", 32, 4, 32768, 0.002, 10.0, 10.0), ("paper256", 64, 8, 16384, 0.0025, 1.0, 20.0),
    ("paper512", 64, 8, 32768, 0.0025, 0.5, 20.0), ("paper1024", 32, 4, 32768, 0.002, 2.0, 10.0)])
def test_paper_presets(name, mb, mbstd, base, lr, gamma, ema):
    res = {"paper256": 256, "paper512": 512}.get(name, 1024)
    cfg = preset_config(name, arch="stylegan2", resolution=res).validate()
    assert (cfg.batch_base, cfg.lr_base, cfg.r1_gamma, cfg.ema_kimg, cfg.ema_rampup) == (mb, lr, gamma, ema, None)
    assert (cfg.pl_weight, cfg.pl_decay, cfg.pl_batch_shrink, cfg.g_reg_interval, cfg.r1_interval) == (2.0, 0.01, 2, 4, 16)
    assert cfg.style_mixing_prob == 0.9 and tuple(cfg.adam_betas) == (0.0, 0.99) and cfg.adam_eps == 1e-8
    m = cfg.model_config()
    assert (m.channel_base, m.channel_max, m.mapping_layers, m.mbstd_group_size, m.mapping_lrmul) == (base, 512, 8, mbstd, 0.01)
    assert m.channels(res) == min(base // res, 512) and m.num_ws == 2 * int(math.log2(res)) - 2


def test_lazy_regularisation_correction():
    lr, betas = lazy_adam(0.002, (0.0, 0.99), 4)     # G: c = 4/5
    assert lr == pytest.approx(0.0016) and betas == (0.0, pytest.approx(0.99 ** 0.8)) and betas[1] == pytest.approx(0.991992, abs=1e-6)
    lr, betas = lazy_adam(0.002, (0.0, 0.99), 16)    # D: c = 16/17
    assert lr == pytest.approx(0.002 * 16 / 17) and betas[1] == pytest.approx(0.99 ** (16 / 17))


def test_path_length_of_a_linear_generator():
    # img = s * ws reshaped: J^T y = s * y, so the length of sample n is s * |y_n| / sqrt(num_ws).
    n, num_ws, w_dim, s = 4, 6, 8, 3.0
    g = torch.Generator().manual_seed(0)
    ws = torch.randn(n, num_ws, w_dim, generator=g).requires_grad_(True)
    img = s * ws.reshape(n, 3, 4, 4)
    y = pl_noise((n, 3, 4, 4), g)
    assert y.std().item() == pytest.approx(1 / 4, rel=0.3)          # randn / sqrt(H * W)
    lengths = path_lengths(img, ws, y)
    expected = s * y.flatten(1).norm(dim=1) / math.sqrt(num_ws)
    assert torch.allclose(lengths, expected, rtol=1e-5)
    # the penalty: pl_mean' = lerp(pl_mean, mean length, 0.01), penalty (length - pl_mean')^2
    pl_mean = torch.tensor(0.5)
    loss, new_mean, penalty = path_length_loss(lengths, pl_mean, decay=0.01)
    want_mean = 0.5 + 0.01 * (expected.mean() - 0.5)
    assert new_mean.item() == pytest.approx(want_mean.item(), rel=1e-6)
    assert torch.allclose(penalty, (expected - want_mean) ** 2, rtol=1e-5)


def test_path_length_gradient_equals_the_official_formula():
    g = torch.Generator().manual_seed(1)
    lengths = (torch.rand(8, generator=g) + 0.5).requires_grad_(True)
    pl_mean = torch.tensor(0.7)
    loss, _, _ = path_length_loss(lengths, pl_mean, decay=0.01)
    (ours,) = torch.autograd.grad(loss, lengths)
    official_mean = pl_mean.lerp(lengths.mean(), 0.01)   # with its gradient, as loss.py
    (theirs,) = torch.autograd.grad((lengths - official_mean).square().mean(), lengths)
    assert torch.allclose(ours, theirs, atol=1e-7)
    # two halves on two "processes" with their gradients averaged = the whole minibatch
    halves = []
    for part in (lengths[0::2], lengths[1::2]):
        part = part.detach().requires_grad_(True)
        loss, _, _ = path_length_loss(part, pl_mean, decay=0.01, global_mean=lengths.detach().mean())
        halves.append(torch.autograd.grad(loss, part)[0] / 2)
    joined = torch.stack(halves, dim=1).reshape(-1)
    assert torch.allclose(joined, theirs, atol=1e-7)


def test_style_mixing_draw_is_the_official_one():
    num_ws, draws = 10, []
    for seed in range(4000):
        draws.append(draw_crossover(torch.Generator().manual_seed(seed), num_ws, 0.9))
    draws = torch.tensor(draws)
    mixed = draws[draws < num_ws]
    assert 0.87 < len(mixed) / len(draws) < 0.93
    assert mixed.min() == 1 and mixed.max() == num_ws - 1                     # U[1, num_ws)
    counts = torch.bincount(mixed, minlength=num_ws)[1:]
    assert counts.min() > 0.7 * counts.float().mean()
    assert all(draw_crossover(torch.Generator().manual_seed(s), num_ws, 0.0) == num_ws for s in range(50))
    a, b = torch.zeros(2, num_ws, 3), torch.ones(2, num_ws, 3)
    mixed_ws = mix_at(a, b, 4)
    assert mixed_ws[:, :4].eq(0).all() and mixed_ws[:, 4:].eq(1).all() and mix_at(a, b, num_ws) is a


def test_nan_to_num_of_gradients():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([float("nan"), float("inf"), -float("inf"), 2.0])
    nan_to_num_grads_([p])
    assert p.grad.tolist() == [0.0, 1e5, -1e5, 2.0]


def test_presets_of_each_architecture_are_separate():
    for name in SG2_PRESETS:
        if name not in ("cpu", "tiny"):
            with pytest.raises(UsageError, match="add --arch stylegan2"):
                preset_config(name)
    with pytest.raises(UsageError, match="not a StyleGAN2 preset"):
        preset_config("paper", arch="stylegan2")
    with pytest.raises(UsageError, match="not an architecture"):
        preset_config("cpu", arch="stylegan3")
    with pytest.raises(UsageError, match="cannot build 512 px"):
        preset_config("paper256", arch="stylegan2", resolution=512).validate()


def _invoke(args):
    from typer.testing import CliRunner

    from sgan.cli import app

    return CliRunner().invoke(app, ["train", *args])


def test_bad_input_is_one_line_before_anything_is_written(shapes16, tmp_path):
    out = tmp_path / "o"
    cases = [
        (["--arch", "stylegan1", "--preset", "paper256"], 2, "add --arch stylegan2"),
        (["--arch", "stylegan2", "--preset", "paper"], 2, "not a StyleGAN2 preset"),
        (["--arch", "stylegan3"], 2, "not an architecture"),
        (["--arch", "stylegan2", "--preset", "paper256"], 2, "cannot build 16 px"),
        (["--arch", "stylegan2", "--preset", "tiny", "--resolution", "64"], 1, "no 64x64 images"),
        (["--arch", "stylegan2", "--preset", "tiny", "--batch", "6"], 2, "minibatch-stddev group"),
        (["--arch", "stylegan2", "--preset", "tiny", "--start-resolution", "8"], 2, "progressive growing"),
        (["--arch", "stylegan2", "--preset", "tiny", "--loss", "wgan-gp"], 2, "logistic loss only"),
    ]
    for args, code, text in cases:
        result = _invoke([str(shapes16), "--out", str(out), *args])
        assert result.exit_code == code, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and text in lines[0], (args, result.output)
        assert not out.exists(), args


def test_dry_run_prints_the_resolved_values(shapes16, tmp_path):
    result = _invoke([str(shapes16), "--out", str(tmp_path / "o"), "--arch", "stylegan2", "--preset", "auto",
                      "--dry-run"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    r = shown["resolved"]
    assert shown["train"]["arch"] == "stylegan2" and shown["model"]["arch"] == "stylegan2"
    assert shown["train"]["resolution"] == 16 and r["batch"] == 32 and shown["model"]["mapping_layers"] == 2
    assert r["r1_gamma"] == pytest.approx(0.0002 * 16 * 16 / 32) and r["ema_kimg"] == 10.0
    assert r["G_adam"]["lr"] == pytest.approx(0.0025 * 4 / 5) and r["D_adam"]["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert r["G_adam"]["betas"][1] == pytest.approx(0.99 ** 0.8) and r["pl_batch"] == 16
