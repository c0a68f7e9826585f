"""The training schedule, tables, EMA, style-mixing range and loss formulas against the paper."""

from __future__ import annotations

import math

import pytest
import torch

from sgan.train import losses
from sgan.train.config import TrainConfig
from sgan.train.presets import PAPER_BATCH, PAPER_LR, preset_config
from sgan.train.ema import ema_beta, update_ema
from sgan.train.schedule import build_phases, official_lod, optimizer_reset_needed, point_at


@pytest.mark.parametrize("final", [32, 1024])
def test_lod_matches_official_formula(final):
    phases = build_phases(8, final, 600.0, 600.0)
    log2 = int(math.log2(final))
    for kimg in [0, 1, 300, 599.9, 600, 600.1, 750, 900, 1199.9, 1200, 1800, 2100, 2399, 2400, 5000, 9000, 30000]:
        want = official_lod(kimg, resolution_log2=log2)
        got = point_at(kimg, phases, final)
        assert got.lod == pytest.approx(want, abs=1e-9), kimg
        # the official rule: the new resolution's tables apply as soon as the fade starts
        assert got.resolution == 2 ** (log2 - math.floor(want))
        assert got.alpha == pytest.approx(1 - (want - math.floor(want)))


def test_fade_is_linear_and_per_resolution_lengths():
    phases = build_phases(8, 32, {8: 10, 16: 20, 32: 0}, {16: 5, 32: 40})
    assert [(p.resolution, p.kind, p.start) for p in phases] == [
        (8, "stabilize", 0.0), (16, "fade", 10.0), (16, "stabilize", 15.0), (32, "fade", 35.0), (32, "stabilize", 75.0)]
    assert point_at(12.5, phases, 32).lod == pytest.approx(1.5)
    assert point_at(45, phases, 32).lod == pytest.approx(0.75)
    assert point_at(1e9, phases, 32).lod == 0.0
    assert point_at(12.5, phases, 32).phase == "fade" and point_at(16, phases, 32).phase == "stabilize"


def test_optimizer_reset_rule():
    assert not optimizer_reset_needed(None, 2.0)
    assert not optimizer_reset_needed(2.0, 2.0)
    assert optimizer_reset_needed(2.0, 1.99)        # a fade-in starts
    assert not optimizer_reset_needed(1.99, 1.5)     # within a fade-in
    assert optimizer_reset_needed(1.01, 1.0)         # the fade-in ends


def test_paper_tables():
    cfg = preset_config("paper", world_size=1)
    assert [cfg.batch_at(r) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == [128, 128, 128, 64, 32, 16, 8, 4, 4]
    assert [cfg.lr_at(r) for r in (64, 128, 256, 512, 1024)] == [0.001, 0.0015, 0.002, 0.003, 0.003]
    assert cfg.adam_betas == (0.0, 0.99) and cfg.adam_eps == 1e-8
    assert (cfg.r1_gamma, cfg.ema_kimg, cfg.style_mixing_prob, cfg.loss) == (10.0, 10.0, 0.9, "logistic")
    assert (cfg.lod_training_kimg, cfg.lod_transition_kimg, cfg.start_resolution) == (600.0, 600.0, 8)
    eight = preset_config("paper", world_size=8)
    assert eight.batch_at(8, 8) == PAPER_BATCH[8][1][8] == 256 and eight.batch_at(1024, 8) == 32
    assert PAPER_LR[1024] == 0.003
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_ema_beta_half_life():
    assert ema_beta(32, 10.0) == pytest.approx(0.5 ** (32 / 10000))
    # 10 kimg worth of steps halves the weight of the old average, whatever the batch
    for batch in (4, 32, 128):
        assert ema_beta(batch, 10.0) ** (10000 / batch) == pytest.approx(0.5)
    assert ema_beta(32, 10.0, cur_nimg=1000, rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    ema, model = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    old = ema.weight.detach().clone()
    update_ema(ema, model, 0.9)
    assert torch.allclose(ema.weight, 0.9 * old + 0.1 * model.weight)


def test_losses_formulas():
    real = torch.tensor([[0.5], [-1.0]])
    fake = torch.tensor([[2.0], [0.0]])
    sp = torch.nn.functional.softplus
    t = losses.d_loss_terms("logistic", real, fake)
    assert t["D_real"] == pytest.approx(sp(-real).mean().item()) and t["D_fake"] == pytest.approx(sp(fake).mean().item())
    assert losses.g_loss("logistic", fake) == pytest.approx(sp(-fake).mean().item())
    t = losses.d_loss_terms("wgan-gp", real, fake, wgan_drift=0.001)
    assert t["D_real"] + t["D_fake"] == pytest.approx((fake - real).mean().item())
    assert t["D_drift"] == pytest.approx(0.001 * (real ** 2).mean().item())
    t = losses.d_loss_terms("hinge", real, fake)
    assert t["D_real"] == pytest.approx(((1 - real).clamp(min=0)).mean().item())
    assert t["D_fake"] == pytest.approx(((1 + fake).clamp(min=0)).mean().item())
    assert losses.g_loss("hinge", fake) == pytest.approx(-fake.mean().item())


def test_gradient_penalties_on_a_linear_critic():
    w = torch.tensor([0.3, -1.2, 2.0, 0.5])
    x = torch.randn(6, 4, 1, 1, requires_grad=True)
    critic = (x.flatten(1) * w).sum(1, keepdim=True)
    r1 = losses.r1_penalty(critic, x, gamma=10.0)
    assert r1.item() == pytest.approx(10.0 / 2 * w.square().sum().item(), rel=1e-5)
    y = torch.randn(6, 4, 1, 1, requires_grad=True)
    gp = losses.wgan_gp_penalty((y.flatten(1) * w).sum(1, keepdim=True), y, lam=10.0)
    assert gp.item() == pytest.approx(10.0 * (w.norm().item() - 1.0) ** 2, rel=1e-5)
    u = torch.tensor([0.0, 1.0])
    mixed = losses.interpolate(torch.zeros(2, 1, 1, 1), torch.ones(2, 1, 1, 1), u)
    assert mixed.flatten().tolist() == [0.0, 1.0]


def test_cpu_threads_one_for_small_convolutions_all_for_large():
    from sgan.train.threads import cpu_threads

    # cpu preset (32 channels, batch 16): one thread at 8 and 16 px, all at 32 px
    assert cpu_threads(batch=16, channels=32, resolution=8, max_threads=2) == 1
    assert cpu_threads(batch=16, channels=32, resolution=16, max_threads=2) == 1
    assert cpu_threads(batch=16, channels=32, resolution=32, max_threads=2) == 2
    # paper widths are large at every resolution
    assert cpu_threads(batch=128, channels=512, resolution=8, max_threads=8) == 8


@pytest.mark.parametrize("preset, resolution", [("paper", 64), ("tiny", 16), ("tiny", 32), ("cpu", 64)])
def test_minutes_keeps_progressive_growing_for_every_preset(preset, resolution):
    """--minutes must not silently drop the growing phases: every phase is a positive share of the
    time, they sum to 60% (the rest stabilises the last resolution), kimg proportions kept."""
    from sgan.train.config import TIME_GROWING_SHARE
    from sgan.train.presets import preset_config

    cfg = preset_config(preset)
    cfg.resolution, cfg.minutes = resolution, 10.0
    cfg.validate()
    train, trans = cfg.phase_lengths()
    phases = build_phases(cfg.start_resolution, resolution, train, trans)
    kinds = [(p.resolution, p.kind) for p in phases]
    res, expected = cfg.start_resolution, []
    while res < resolution:
        expected += [(res, "stabilize"), (res * 2, "fade")]
        res *= 2
    assert kinds == expected + [(resolution, "stabilize")]
    assert sum(p.length for p in phases[:-1]) == pytest.approx(TIME_GROWING_SHARE * 600.0)
    ratio = cfg.lod_training_kimg / cfg.lod_transition_kimg
    assert phases[0].length / phases[1].length == pytest.approx(ratio)


def test_cpu_preset_keeps_its_own_time_split():
    from sgan.train.presets import preset_config

    cfg = preset_config("cpu")
    cfg.resolution = 32
    cfg.validate()
    train, trans = cfg.phase_lengths()
    assert train == {8: 120.0, 16: 300.0, 32: 0.0} and trans == {8: 0.0, 16: 120.0, 32: 180.0}
