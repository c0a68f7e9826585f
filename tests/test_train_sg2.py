"""The StyleGAN2 loop on a tiny model: exact resume (pl_mean included), the official phases,
w_avg tracking, one style-mixing crossover per minibatch, EMA buffers, faults."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from train_helpers import AMX_FLAGS, assert_same, fake_cpu, tiny_config

from sgan import distributed as dist_utils
from sgan.checkpoint import load_checkpoint, load_generator
from sgan.train import Hooks, TrainingDiverged, train
from sgan.train.loop import Trainer
from sgan.train.state import unpack


tiny = functools.partial(tiny_config, "stylegan2")


def trainer(shapes16, path, resolve=True, **changes):
    """A tiny StyleGAN2 trainer at 16 px; `resolve`: its precision decided (as the driver does first)."""
    cfg = tiny(**changes)
    cfg.resolution = 16
    tr = Trainer(cfg, shapes16, path, device=torch.device("cpu"), info=dist_utils.DistInfo(),
                          hooks=Hooks(), threads=1)
    if resolve:
        tr.resolve_precision()
    return tr


_same = assert_same


def test_resume_is_bit_identical(shapes16, tmp_path):
    # tiny: path length every 2nd and R1 every 4th step; batch 8. Stop after 5 steps, resume, run to 10.
    n = 5
    straight = train(tiny(total_kimg=2 * n * 8 / 1000, mirror=True), shapes16, tmp_path / "a", device="cpu", threads=1)
    half = train(tiny(total_kimg=n * 8 / 1000, mirror=True), shapes16, tmp_path / "b", device="cpu", threads=1)
    assert load_checkpoint(half.snapshot).extra["counters"]["step"] == n
    resumed = train(tiny(), shapes16, tmp_path / "b", device="cpu", resume="auto", threads=1,
                    resume_overrides={"total_kimg": 2 * n * 8 / 1000})
    a, b = load_checkpoint(straight.snapshot), load_checkpoint(resumed.snapshot)
    sa, sb = unpack(a.extra, a.path), unpack(b.extra, b.path)
    assert sa.counters.step == sb.counters.step == 2 * n
    for name in ("G", "G_ema", "D"):
        _same(getattr(a, name), getattr(b, name))
    _same(sa.opt_G, sb.opt_G)
    _same(sa.opt_D, sb.opt_D)
    assert a.extra["counters"]["pl_mean"] == b.extra["counters"]["pl_mean"] != 0.0
    assert a.config.arch == "stylegan2"
    # Adam took one step per phase: 10 Gmain + 5 Greg, 10 Dmain + 3 Dreg
    assert sa.opt_G["state"][0]["step"].item() == 15 and sa.opt_D["state"][0]["step"].item() == 13


def test_run_folder_stats_and_inference(shapes16, tmp_path):
    out = tmp_path / "run"
    result = train(tiny(total_kimg=0.064, tick_kimg_base=0.016), shapes16, out, device="cpu", threads=1)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "stats.jsonl", "log.txt", "reals.png", "latest.json", "losses.png"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["arch"] == "stylegan2" and config["model"]["arch"] == "stylegan2"
    assert config["schedule"] == [{"resolution": 16, "kind": "stabilize", "start": 0.0, "length": None}]
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 4 and stats[-1]["kimg"] == pytest.approx(0.064)
    assert all({"G_loss", "D_real", "D_fake", "G_pl", "pl_mean"} <= set(s) for s in stats)  # path length every 2nd step
    assert [("D_r1" in s) for s in stats] == [True, False, True, False]                   # R1 every 4th step
    assert all(s["resolution"] == 16 and s["lod"] == 0 for s in stats)
    assert result.steps == 8
    G = load_generator(out)
    assert G(torch.randn(2, 16)).shape == (2, 3, 16, 16)


def test_optimizers_have_the_lazy_correction(shapes16, tmp_path):
    tr = trainer(shapes16, tmp_path / "o")
    (g,), (d,) = tr.opt_G.param_groups, tr.opt_D.param_groups
    k_g, k_d = tr.cfg.g_reg_interval, tr.cfg.r1_interval
    assert g["lr"] == pytest.approx(0.002 * k_g / (k_g + 1)) and g["betas"][1] == pytest.approx(0.99 ** (k_g / (k_g + 1)))
    assert d["lr"] == pytest.approx(0.002 * k_d / (k_d + 1)) and d["betas"][1] == pytest.approx(0.99 ** (k_d / (k_d + 1)))
    assert g["betas"][0] == 0.0 and g["eps"] == 1e-8


def test_w_avg_mixing_and_ema_buffers(shapes16, tmp_path, monkeypatch):
    """One step with style mixing and path length: w_avg follows the first-z mapping passes of
    Gmain, Greg and Dmain in that order; every sample of a minibatch crosses over at the same
    layer; G_ema copies the buffers. On a CPU where `auto` picks bf16 (faked) the precision probe
    runs after the spies are in place and reaches none of them; the step runs in bf16."""
    fake_cpu(monkeypatch, AMX_FLAGS)
    tr = trainer(shapes16, tmp_path / "w", resolve=False, style_mixing_prob=1.0)
    calls, synth = [], []
    mapping_forward, synthesis_forward = tr.G.mapping.forward, tr.G.synthesis.forward

    def spy_mapping(z, c=None):
        w = mapping_forward(z, c)
        calls.append(w.detach().clone())
        return w

    def spy_synthesis(ws, **kw):
        synth.append(ws.detach().clone())
        return synthesis_forward(ws, **kw)

    tr.G.mapping.forward, tr.G.synthesis.forward = spy_mapping, spy_synthesis
    w_avg = tr.G.mapping.w_avg.clone()
    assert tr.resolve_precision().precision == "bf16" and not calls and not synth
    assert torch.equal(tr.G.mapping.w_avg, w_avg)
    tr.step(False)
    assert len(calls) == 6 and len(synth) == 3             # Gmain, Greg, Dmain; two mappings each (mixing)
    assert [len(w) for w in calls] == [8, 8, 4, 4, 8, 8]   # Greg on batch / pl_batch_shrink
    expected = w_avg
    for w in calls[0::2]:                                  # the second z never moves w_avg
        expected = w.float().mean(dim=0).lerp(expected, tr.model_cfg.w_avg_beta)
    assert torch.allclose(tr.G.mapping.w_avg, expected, atol=1e-6)
    num_ws = tr.model_cfg.num_ws
    cuts = []
    for ws, w, w2 in zip(synth, calls[0::2], calls[1::2]):
        first = (ws == w.unsqueeze(1)).all(dim=2)          # [N, num_ws]: layer from the first z
        second = (ws == w2.unsqueeze(1)).all(dim=2)
        assert (first | second).all()
        cut = int(first[0].sum())
        assert 1 <= cut < num_ws and first[:, :cut].all() and second[:, cut:].all()   # one crossover for all
        cuts.append(cut)
    assert torch.equal(tr.G_ema.mapping.w_avg, tr.G.mapping.w_avg)
    assert tr.c.pl_mean != 0.0 and tr.objective.pl_mean.item() == tr.c.pl_mean


def test_injected_nan_rolls_back_and_recovers(shapes16, tmp_path):
    fired, lines = [], []

    def poison(tr):
        if tr.c.step == 5 and not fired:
            fired.append(True)
            with torch.no_grad():
                for p in tr.D.parameters():
                    p.fill_(float("nan"))

    res = train(tiny(total_kimg=0.12, snap_kimg=0.032, max_bad_steps=2), shapes16, tmp_path / "r", device="cpu",
                threads=1, hooks=Hooks(on_step=[poison], log=lines.append))
    assert fired and any("rolling back" in line for line in lines)
    ckpt = load_checkpoint(res.snapshot)
    assert ckpt.extra["counters"]["rollbacks"] == 1 and ckpt.extra["counters"]["skipped_steps"] >= 2
    assert all(torch.isfinite(t).all() for sd in (ckpt.G, ckpt.G_ema, ckpt.D) for t in sd.values())


def test_persistent_nan_stops_with_last_good_snapshot(shapes16, tmp_path):
    def poison(tr):
        if tr.c.step >= 3:
            with torch.no_grad():
                next(tr.G.mapping.parameters()).fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match="last good snapshot"):
        train(tiny(total_kimg=1.0, snap_kimg=0.016, max_bad_steps=2, max_rollbacks=2), shapes16, tmp_path / "r",
              device="cpu", threads=1, hooks=Hooks(on_step=[poison]))
    ckpt = load_checkpoint(tmp_path / "r")
    assert all(torch.isfinite(t).all() for sd in (ckpt.G, ckpt.G_ema, ckpt.D) for t in sd.values())


def test_reals_and_fakes_in_one_D_call_equal_two_calls(shapes16, tmp_path):
    tr = trainer(shapes16, tmp_path / "p")
    g = torch.Generator().manual_seed(3)
    reals, fakes = torch.randn(8, 3, 16, 16, generator=g), torch.randn(8, 3, 16, 16, generator=g) * 0.3
    joint_r, joint_f = tr._d_pair(reals, fakes, 0.0)
    assert torch.allclose(joint_r, tr.D(reals), atol=1e-5) and torch.allclose(joint_f, tr.D(fakes), atol=1e-5)
