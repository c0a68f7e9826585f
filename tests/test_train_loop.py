"""The training loop end to end on a tiny model: run folder, exact resume, style-mixing range."""

from __future__ import annotations

import json

import pytest
import torch

from train_helpers import AMX_FLAGS, fake_cpu, tiny_config

from sgan.checkpoint import load_checkpoint, load_generator
from sgan.train import Hooks, train
from sgan.train.loop import Trainer
from sgan import distributed as dist_utils
from sgan.train.state import unpack


def tiny(**changes):
    return tiny_config("stylegan1", **{"minibatch_repeats": 4, **changes})


def test_run_folder_and_inference(shapes16, tmp_path):
    out = tmp_path / "run"
    lines: list[str] = []
    result = train(tiny(total_kimg=0.16, snap_kimg=0.08, tick_kimg_base=0.04), shapes16, out, device="cpu",
                   hooks=Hooks(log=lines.append))
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "stats.jsonl", "log.txt", "reals.png", "latest.json", "losses.png"} <= names
    assert any(n.startswith("fakes") and n.endswith(".png") for n in names)
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 1 and config["train"]["preset"] == "tiny" and config["model"]["resolution"] == 16
    assert "torch_version" in config and config["command_line"]
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(stats) >= 4 and all({"kimg", "resolution", "alpha", "G_loss", "D_real", "images_per_s"} <= set(s) for s in stats)
    assert stats[-1]["kimg"] == pytest.approx(0.16)
    assert result.steps == 20 and result.snapshot.is_file()
    G = load_generator(out)  # the run folder works wherever a snapshot does
    assert G(torch.randn(2, 16), lod=1.0).shape == (2, 3, 8, 8)
    assert any(line.startswith("tick") for line in lines)
    with pytest.raises(Exception, match="already holds a training run"):
        train(tiny(total_kimg=0.16), shapes16, out, device="cpu")


def _state(path):
    ckpt = load_checkpoint(path)
    st = unpack(ckpt.extra, ckpt.path)
    return ckpt, st


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_resume_is_bit_identical_mid_fade(shapes16, tmp_path):
    # 8 px for 0.08 kimg, fade to 16 px over 0.08 kimg, batch 8 -> the fade spans steps 10..20.
    # Stop after 14 steps (inside the fade, mid minibatch_repeats group), resume, run to 28 steps.
    n = 14
    phases = {"lod_training_kimg": 0.08, "lod_transition_kimg": 0.08, "mirror": True}
    straight = train(tiny(total_kimg=2 * n * 8 / 1000, **phases), shapes16, tmp_path / "a", device="cpu")
    half = train(tiny(total_kimg=n * 8 / 1000, **phases), shapes16, tmp_path / "b", device="cpu")
    _, st_half = _state(half.snapshot)
    assert st_half.counters.step == n and 0.0 < st_half.counters.prev_lod % 1 < 1.0  # inside the fade-in
    resumed = train(tiny(), shapes16, tmp_path / "b", device="cpu", resume="auto",
                    resume_overrides={"total_kimg": 2 * n * 8 / 1000})
    a, st_a = _state(straight.snapshot)
    b, st_b = _state(resumed.snapshot)
    assert st_a.counters.step == st_b.counters.step == 2 * n
    for name in ("G", "G_ema", "D"):
        _assert_same(getattr(a, name), getattr(b, name))
    _assert_same(st_a.opt_G, st_b.opt_G)
    _assert_same(st_a.opt_D, st_b.opt_D)
    assert st_a.counters.cur_nimg == st_b.counters.cur_nimg and st_a.counters.data_position == st_b.counters.data_position


def test_resume_errors(shapes16, tmp_path):
    from sgan.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no such file"):
        train(tiny(), shapes16, tmp_path / "r", device="cpu", resume=str(tmp_path / "missing.pt"))
    # auto without a run starts fresh
    res = train(tiny(total_kimg=0.016), shapes16, tmp_path / "r", device="cpu", resume="auto")
    assert res.steps == 2


def test_style_mixing_crossover_range(shapes16, tmp_path):
    """One mixing draw per minibatch (official G_style and StyleGAN2-ADA): every sample of a step
    shares the crossover; P(mixing) 0.9 over steps; crossover uniform in [1, cur_layers)."""
    cfg = tiny()
    cfg.resolution = 16
    tr = Trainer(cfg, shapes16, tmp_path / "m", device=torch.device("cpu"), info=dist_utils.DistInfo(), hooks=Hooks())
    num_ws = tr.model_cfg.num_ws
    assert num_ws == 6
    for lod, cur_layers in ((1.0, 4), (0.5, 6), (0.0, 6)):
        cuts = []
        for step in range(400):
            tr.c.step = step
            crossover = tr.arch.latents(tr._step_generator(1), 4, num_ws - 2 * int(lod // 1))["crossover"]
            assert crossover.shape == (4,) and bool((crossover == crossover[0]).all())   # one per minibatch
            cuts.append(int(crossover[0]))
        cuts = torch.tensor(cuts)
        mixed = cuts[cuts < num_ws]
        assert 0.85 < len(mixed) / len(cuts) < 0.95                # mixing probability 0.9
        assert mixed.min() == 1 and mixed.max() == cur_layers - 1  # crossover uniform in [1, cur_layers)


@pytest.mark.parametrize("fresh", [True, False])
def test_w_avg_tracks_every_mapping_pass_and_g_ema_updates_with_the_d_step(shapes16, tmp_path, fresh, monkeypatch):
    """Official StyleGAN: dlatent_avg moves in every G forward that trains (the D step's fakes and the
    G step's), and training_loop.py runs Gs_update_op together with D_train_op, before the G step.
    On a CPU where `auto` picks bf16 (faked: AMX flags, bf16 timed faster) the precision probe runs
    after the hook is in place and reaches neither it nor w_avg nor G_ema; the step runs in bf16."""
    from sgan.train.ema import ema_beta

    fake_cpu(monkeypatch, AMX_FLAGS)
    cfg = tiny(style_mixing_prob=0.0, fresh_g_latents=fresh)
    cfg.model = {**cfg.model, "const_init": "randn"}   # as the cpu preset (a constant of ones: bf16 disagrees)
    cfg.resolution = 16
    tr = Trainer(cfg, shapes16, tmp_path / "w", device=torch.device("cpu"), info=dist_utils.DistInfo(), hooks=Hooks())
    seen: list[torch.Tensor] = []
    tr.G.mapping.register_forward_hook(lambda mod, inp, out: seen.append(out.detach().float().mean(dim=0)))
    g_before = [p.detach().clone() for p in tr.G.parameters()]
    ema_before = [p.detach().clone() for p in tr.G_ema.parameters()]
    w_avg = tr.G.mapping.w_avg.clone()
    batch = cfg.batch_at(tr.point.resolution)
    assert tr.resolve_precision().precision == "bf16" and not seen   # decided before the step, by the probe
    assert torch.equal(tr.G.mapping.w_avg, w_avg) and all(torch.equal(a, b) for a, b in zip(tr.G_ema.parameters(), ema_before))
    tr.step(False)
    assert len(seen) == (2 if fresh else 1)
    for w in seen:
        w_avg = w.lerp(w_avg, tr.model_cfg.w_avg_beta)
    assert torch.allclose(tr.G.mapping.w_avg, w_avg, atol=1e-6)
    beta = ema_beta(batch, cfg.ema_kimg, cur_nimg=0, rampup=cfg.ema_rampup)
    for p_ema, g0, e0, g1 in zip(tr.G_ema.parameters(), g_before, ema_before, tr.G.parameters()):
        assert torch.allclose(p_ema, g0.lerp(e0, beta), atol=1e-6)   # G before its step, not after
    assert any(not torch.equal(g0, g1) for g0, g1 in zip(g_before, tr.G.parameters()))


def test_real_and_fake_in_one_batch_equals_two_calls(shapes16, tmp_path):
    cfg = tiny()
    cfg.resolution = 16
    tr = Trainer(cfg, shapes16, tmp_path / "p", device=torch.device("cpu"), info=dist_utils.DistInfo(), hooks=Hooks())
    g = torch.Generator().manual_seed(3)
    reals, fakes = torch.randn(8, 3, 16, 16, generator=g), torch.randn(8, 3, 16, 16, generator=g) * 0.3
    for lod in (0.0, 0.4):
        joint_r, joint_f = tr._d_pair(reals, fakes, lod)
        assert torch.allclose(joint_r, tr.D(reals, lod=lod), atol=1e-5)
        assert torch.allclose(joint_f, tr.D(fakes, lod=lod), atol=1e-5)
