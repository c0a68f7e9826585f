"""fp16 training with loss scaling (sgan.train.scaler), its gates, and the CUDA set-up (sgan.device).

torch's CPU float16 autocast runs (emulated) on any CPU, so the fp16 loops run here for real: the
tests that train pretend the CPU has native float16 (the gate that lets fp16 train off CUDA)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

import sgan.device
from sgan.checkpoint import load_checkpoint
from sgan.device import CudaSetup, check_precision, choose_precision, configure_cuda, cuda_setup, fp16_native
from sgan.errors import UsageError
from sgan.train import Hooks, preset_config, train
from sgan.train.losses import r1_penalty, wgan_gp_penalty
from sgan.train.regularizers import path_lengths
from sgan.train.scaler import BAD, OK, OVERFLOW, LossScaler, fp16_setup
from sgan.train.state import Counters, pack, unpack

CPU = torch.device("cpu")


@pytest.fixture
def native_fp16(monkeypatch):
    monkeypatch.setattr(sgan.device, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2", "avx512_fp16"})


def tiny1(**changes):
    cfg = preset_config("tiny")
    cfg.model = {"fmap_max": 8, "fmap_min": 4, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16}
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


def tiny2(**changes):
    cfg = preset_config("tiny", arch="stylegan2")
    cfg.model = {"channel_max": 8, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16}
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


def _states_equal(a, b):
    for name in ("G", "G_ema", "D"):
        sa, sb = getattr(a, name), getattr(b, name)
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (name, k)


# -- the scaler object -------------------------------------------------------------------------

def _model_and_opt(lr=0.5):
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 1)
    return m, torch.optim.SGD(m.parameters(), lr=lr)


def test_no_op_scaler_steps_as_before():
    s = LossScaler(CPU, "fp32")
    assert not s.enabled and s.penalty_scale == 1.0 and s.state_dict() == {} and s.get_scale() is None
    m, opt = _model_and_opt()
    loss = m(torch.ones(2, 4)).sum()
    assert s.scale(loss) is loss
    loss.backward()
    want = [p.detach() - 0.5 * p.grad for p in m.parameters()]
    assert s.finish(opt, grads_ok=True, loss=loss) and s.last == OK
    assert all(torch.equal(p, w) for p, w in zip(m.parameters(), want))
    before = [p.detach().clone() for p in m.parameters()]
    assert not s.finish(opt, grads_ok=True, loss=torch.tensor(float("nan"))) and s.last == BAD  # no step
    assert all(torch.equal(p, b) for p, b in zip(m.parameters(), before))
    for p in m.parameters():  # StyleGAN2: nan_to_num, then always a step (the official clean-up)
        p.grad = torch.full_like(p, float("nan"))
    assert not s.finish(opt, grads_ok=False, loss=loss, clean=list(m.parameters()))
    assert all(torch.equal(p, b) for p, b in zip(m.parameters(), before))  # nan -> 0: SGD moves nothing


def test_fp16_scaler_unscales_skips_on_overflow_and_backs_off():
    s = LossScaler(CPU, "fp16", init_scale=1024.0, growth_interval=2)
    m, opt = _model_and_opt()
    x = torch.ones(2, 4)
    loss = m(x).sum()
    s.scale(loss).backward()
    assert m.weight.grad[0, 0].item() == pytest.approx(2.0 * 1024)  # scaled
    want = [p.detach() - 0.5 * p.grad / 1024 for p in m.parameters()]
    assert s.finish(opt, grads_ok=True, loss=loss) and s.last == OK
    assert all(torch.allclose(p, w) for p, w in zip(m.parameters(), want))  # stepped with unscaled grads
    before = [p.detach().clone() for p in m.parameters()]
    opt.zero_grad()
    s.scale(m(x).sum()).backward()
    m.weight.grad[0, 1] = float("inf")
    assert s.finish(opt, grads_ok=False, loss=loss) and s.last == OVERFLOW and s.overflows == 1
    assert all(torch.equal(p, b) for p, b in zip(m.parameters(), before)) and s.get_scale() == 512.0
    # a non-finite loss with finite gradients is bad, not an overflow: no step, the scale stays
    opt.zero_grad()
    s.scale(m(x).sum()).backward()
    assert not s.finish(opt, grads_ok=True, loss=torch.tensor(float("inf"))) and s.last == BAD
    assert s.get_scale() == 512.0 and s.overflows == 1
    # the state (scale, growth tracker, overflow count) survives a round trip
    t = LossScaler(CPU, "fp16")
    t.load_state_dict(s.state_dict())
    assert t.get_scale() == 512.0 and t.overflows == 1 and t.state_dict() == s.state_dict()


def test_overflow_at_a_collapsed_scale_is_divergence():
    s = LossScaler(CPU, "fp16", init_scale=0.5)
    m, opt = _model_and_opt()
    loss = m(torch.ones(2, 4)).sum()
    s.scale(loss).backward()
    m.bias.grad[0] = float("nan")
    assert not s.finish(opt, grads_ok=False, loss=loss) and s.last == BAD and s.overflows == 0


def test_penalties_under_a_scale_equal_the_unscaled_ones():
    torch.manual_seed(1)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(),
                            torch.nn.Linear(8 * 8 * 8, 1))
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    ref = r1_penalty(D(x), x, 10.0)
    assert torch.allclose(r1_penalty(D(x), x, 10.0, scale=2.0 ** 16), ref, rtol=1e-5)
    assert torch.allclose(wgan_gp_penalty(D(x), x, scale=2.0 ** 10), wgan_gp_penalty(D(x), x), rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.float16):  # the float16 backward: scaled, then 1/S
        half = r1_penalty(D(x), x, 10.0, scale=2.0 ** 12)
    assert torch.isfinite(half) and torch.allclose(half, ref, rtol=2e-2)
    ws = torch.randn(4, 3, 16, requires_grad=True)
    W = torch.randn(16, 3 * 8 * 8)
    img = (ws.mean(1) @ W).reshape(4, 3, 8, 8)
    y = torch.randn(4, 3, 8, 8)
    assert torch.allclose(path_lengths(img, ws, y, scale=2.0 ** 16), path_lengths(img, ws, y), rtol=1e-5)


def test_scaler_state_pack_unpack_round_trip():
    s = LossScaler(CPU, "fp16", init_scale=256.0)
    s.scale(torch.ones([]))  # the scale tensor exists once a loss was scaled
    st = {"G": s.state_dict(), "D": s.state_dict()}
    extra = pack(counters=Counters(), config={}, opt_G={}, opt_D={}, world_size=1, scalers=st)
    assert unpack(extra, "x").scalers == st
    plain = pack(counters=Counters(), config={}, opt_G={}, opt_D={}, world_size=1)
    assert "grad_scalers" not in plain and unpack(plain, "x").scalers is None


# -- gates ---------------------------------------------------------------------------------------

def test_fp16_gates(monkeypatch):
    monkeypatch.setattr(sgan.device, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2"})
    assert fp16_native(torch.device("cuda")) == (True, "cuda")
    assert fp16_native(CPU, flags={"avx512_fp16"})[0] and not fp16_native(CPU)[0]
    with pytest.raises(UsageError, match="trains on CUDA .* this CPU has neither"):
        check_precision("fp16", CPU, training=True)
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        check_precision("fp16", CPU)
    monkeypatch.setattr(sgan.device, "cpu_flags", lambda path="/proc/cpuinfo": {"amx_fp16"})
    assert check_precision("fp16", CPU, training=True) == "fp16"
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):  # inference commands: CUDA only
        check_precision("fp16", CPU)
    # auto never picks fp16 on a CPU, even where it would time fastest
    timer = lambda run, device, p: {"fp32": 1.0, "bf16": 0.5, "fp16": 0.01}[p]  # noqa: E731
    ch = choose_precision(CPU, lambda: torch.ones(3), native=(False, "no bf16"), timer=timer, training=True)
    assert ch.precision == "fp32" and "fp16" not in ch.timings_ms
    assert preset_config("tiny").precision == "auto"
    tiny1(precision="fp16").validate()  # fp16 is a training precision now


def test_fp16_cli_refused_on_a_cpu_without_float16_before_writing(shapes16, tmp_path, cpu_profile):
    import subprocess
    import sys

    cpu_profile("avx2")   # a CPU without avx512_fp16/amx_fp16, whatever this one has
    r = subprocess.run([sys.executable, "-m", "sgan", "train", str(shapes16), "--out", str(tmp_path / "q"),
                        "--preset", "tiny", "--kimg", "0.008", "--precision", "fp16", "--device", "cpu"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--precision fp16 trains on CUDA" in r.stderr and not (tmp_path / "q" / "config.json").exists()


def test_fp16_setup_sets_conv_clamp_for_stylegan2_only():
    cfg = tiny2(precision="fp16", resolution=16)
    note = fp16_setup(cfg)
    assert "conv_clamp 256" in note and cfg.model["conv_clamp"] == 256.0 and cfg.model_config().conv_clamp == 256.0
    own = tiny2(precision="fp16", resolution=16)
    own.model = {**own.model, "conv_clamp": 64.0}
    assert fp16_setup(own) is None and own.model["conv_clamp"] == 64.0   # the user's own value stays
    for cfg in (tiny2(precision="bf16", resolution=16), tiny1(precision="fp16", resolution=16)):
        assert fp16_setup(cfg) is None and "conv_clamp" not in cfg.model


# -- CUDA set-up ---------------------------------------------------------------------------------

def _fake_backends():
    return SimpleNamespace(cuda=SimpleNamespace(matmul=SimpleNamespace(allow_tf32="untouched")),
                           cudnn=SimpleNamespace(allow_tf32="untouched", benchmark="untouched"))


def test_configure_cuda_is_a_no_op_on_the_cpu():
    b = _fake_backends()
    setup = configure_cuda(CPU, backends=b)
    assert setup == CudaSetup() and setup.to_dict() == {"applied": False, "tf32": False, "cudnn_benchmark": False}
    assert b.cuda.matmul.allow_tf32 == b.cudnn.allow_tf32 == b.cudnn.benchmark == "untouched"
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    configure_cuda(CPU)
    assert before == (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                      torch.backends.cudnn.benchmark)


def test_configure_cuda_flags_on_a_cuda_device():
    cuda = torch.device("cuda", 0)   # only a device object: nothing runs on it
    b = _fake_backends()
    assert configure_cuda(cuda, backends=b).to_dict() == {"applied": True, "tf32": True, "cudnn_benchmark": True}
    assert b.cuda.matmul.allow_tf32 is True and b.cudnn.allow_tf32 is True and b.cudnn.benchmark is True
    configure_cuda(cuda, tf32=False, benchmark=False, backends=b)
    assert b.cuda.matmul.allow_tf32 is False and b.cudnn.allow_tf32 is False and b.cudnn.benchmark is False
    assert cuda_setup(cuda, tf32=False) == CudaSetup(applied=True, tf32=False, cudnn_benchmark=True)


# -- the loops in fp16 ---------------------------------------------------------------------------

def test_stylegan1_fp16_trains_resumes_exactly_and_logs_the_scale(native_fp16, shapes16, tmp_path):
    n = 4  # steps of 8 images; R1 every step (tiny preset)
    cfg = dict(precision="fp16", resolution=16, tick_kimg_base=0.016)
    straight = train(tiny1(total_kimg=2 * n * 8 / 1000, **cfg), shapes16, tmp_path / "a", device="cpu", threads=1)
    half = train(tiny1(total_kimg=n * 8 / 1000, **cfg), shapes16, tmp_path / "b", device="cpu", threads=1)
    saved = load_checkpoint(half.snapshot).extra
    assert set(saved["grad_scalers"]) == {"G", "D"} and saved["grad_scalers"]["D"]["scaler"]["scale"] > 0
    resumed = train(tiny1(**cfg), shapes16, tmp_path / "b", device="cpu", resume="auto", threads=1,
                    resume_overrides={"total_kimg": 2 * n * 8 / 1000})
    a, b = load_checkpoint(straight.snapshot), load_checkpoint(resumed.snapshot)
    assert a.extra["counters"]["step"] == b.extra["counters"]["step"] == 2 * n
    _states_equal(a, b)
    assert a.extra["grad_scalers"] == b.extra["grad_scalers"]
    stats = [json.loads(line) for line in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert all(s["grad_scale"] > 0 and "overflow_steps" in s and s["skipped_steps"] == 0 for s in stats)
    # G's scale stays high: the 4x4 layer (1/std of a near-constant input) runs in fp32 under fp16
    # (in float16 its gradient overflowed at every scale down to 2**5 on this model)
    assert stats[-1]["grad_scale_G"] >= 2.0 ** 14
    assert all(torch.isfinite(t).all() for t in a.G.values())
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["train"]["precision"] == "fp16" and config["cuda"]["applied"] is False


def test_fp16_overflow_skips_do_not_count_as_divergence(native_fp16, shapes16, tmp_path):
    def blow_up(tr):   # a scale far too large at step 2: every fp16 backward overflows until it has halved enough
        if tr.c.step == 2:
            tr.scaler_G.scaler.update(new_scale=2.0 ** 40)
            tr.scaler_D.scaler.update(new_scale=2.0 ** 40)

    cfg = tiny1(precision="fp16", resolution=16, loss="wgan-gp", total_kimg=14 * 8 / 1000, max_bad_steps=2,
                tick_kimg_base=0.016)
    result = train(cfg, shapes16, tmp_path / "r", device="cpu", threads=1, hooks=Hooks(on_step=[blow_up]))
    ck = load_checkpoint(result.snapshot)
    assert ck.extra["counters"]["rollbacks"] == 0 and ck.extra["counters"]["skipped_steps"] == 0
    scalers = ck.extra["grad_scalers"]
    assert scalers["D"]["overflows"] + scalers["G"]["overflows"] > 2   # more than max_bad_steps in a row
    assert scalers["D"]["scaler"]["scale"] < 2.0 ** 40
    assert all(torch.isfinite(t).all() for t in ck.G.values())
    stats = [json.loads(line) for line in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert all(math.isfinite(s[k]) for s in stats for k in ("D_gp", "D_real", "G_loss") if k in s)


def _reg_scales(value):
    def hook(tr):   # the regularisation phases' scales start low enough for this tiny model's penalties
        if tr.c.step == 0:
            for name in ("G_reg", "D_reg"):
                tr.scalers[name].load_state_dict({"scaler": {"scale": value, "growth_factor": 2.0, "backoff_factor": 0.5,
                                                             "growth_interval": 2000, "_growth_tracker": 0}})
    return hook


def test_stylegan2_fp16_trains_with_conv_clamp_and_resumes_exactly(native_fp16, shapes16, tmp_path):
    n = 4   # tiny: path length every 2nd step, R1 every 4th
    lines: list[str] = []
    straight = train(tiny2(precision="fp16", total_kimg=2 * n * 8 / 1000), shapes16, tmp_path / "a", device="cpu",
                     threads=1, hooks=Hooks(log=lines.append, on_step=[_reg_scales(64.0)]))
    assert any("conv_clamp 256" in line for line in lines)
    assert "conv_clamp 256" in (tmp_path / "a" / "log.txt").read_text()
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["model"]["conv_clamp"] == 256.0 and config["train"]["model"]["conv_clamp"] == 256.0
    train(tiny2(precision="fp16", total_kimg=n * 8 / 1000), shapes16, tmp_path / "b", device="cpu", threads=1,
          hooks=Hooks(on_step=[_reg_scales(64.0)]))
    resumed = train(tiny2(precision="fp16"), shapes16, tmp_path / "b", device="cpu", resume="auto", threads=1,
                    resume_overrides={"total_kimg": 2 * n * 8 / 1000})
    a, b = load_checkpoint(straight.snapshot), load_checkpoint(resumed.snapshot)
    _states_equal(a, b)
    assert a.extra["grad_scalers"] == b.extra["grad_scalers"]
    assert set(a.extra["grad_scalers"]) == {"G", "D", "G_reg", "D_reg"}
    assert a.extra["counters"]["pl_mean"] == b.extra["counters"]["pl_mean"] and a.extra["counters"]["pl_mean"] > 0
    assert a.config.conv_clamp == 256.0
    stats = [json.loads(line) for line in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert all(s["grad_scale"] > 0 and s["grad_scale_G_reg"] > 0 and s["skipped_steps"] == 0 for s in stats)
    assert any("G_pl" in s for s in stats) and any("D_r1" in s for s in stats)
    assert all(math.isfinite(s[k]) for s in stats for k in ("G_pl", "D_r1", "G_loss", "D_real") if k in s)


def test_stylegan2_fp16_penalty_overflows_are_skips_not_divergence(native_fp16, shapes16, tmp_path):
    # at the initial scale 2**16 the penalties' float16 gradients may overflow: those phases are
    # skipped and their scale halves; the main phases keep their own scale
    result = train(tiny2(precision="fp16", total_kimg=8 * 8 / 1000, max_bad_steps=1), shapes16, tmp_path / "r",
                   device="cpu", threads=1)
    ck = load_checkpoint(result.snapshot)
    assert ck.extra["counters"]["skipped_steps"] == 0 and ck.extra["counters"]["rollbacks"] == 0
    sc = ck.extra["grad_scalers"]
    assert sc["G_reg"]["scaler"]["scale"] == 2.0 ** 16 / 2 ** sc["G_reg"]["overflows"]
    stats = [json.loads(line) for line in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert all(math.isfinite(s[k]) for s in stats for k in ("G_pl", "D_r1") if k in s)


def test_cli_tf32_switch_and_inference_commands_configure_cuda(shapes16, tiny_checkpoint, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sgan.cli.app import app

    runner = CliRunner()
    r = runner.invoke(app, ["train", str(shapes16), "--out", str(tmp_path / "x"), "--preset", "tiny", "--no-tf32",
                            "--dry-run"])
    assert r.exit_code == 0 and '"tf32": false' in r.output
    r = runner.invoke(app, ["train", str(shapes16), "--out", str(tmp_path / "y"), "--arch", "stylegan2", "--preset",
                            "tiny", "--precision", "fp16", "--dry-run"])
    assert r.exit_code == 0 and json.loads(r.output)["model"]["conv_clamp"] == 256.0
    calls = []
    monkeypatch.setattr(sgan.device, "configure_cuda", lambda device, **kw: calls.append((device, kw)) or CudaSetup())
    r = runner.invoke(app, ["generate", str(tiny_checkpoint), "--seeds", "0-1", "--outdir", str(tmp_path / "g"),
                            "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert calls == [(CPU, {})]


def test_two_gloo_ranks_in_fp16_skip_alike_and_match_one_process(shapes16, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    launch = str(root / "tests" / "fp16_cpu_launch.py")
    common = [str(shapes16), "--preset", "tiny", "--kimg", "0.024", "--batch", "8", "--resolution", "8", "--snap", "1",
              "--tick", "0.016", "--threads", "1", "--device", "cpu", "--precision", "fp16"]
    runs = {}
    for name, cmd, inf in (("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                    "--nproc-per-node", "2", launch], "1:1"),
                           ("one", [sys.executable, launch], "0:1")):
        r = subprocess.run(cmd + ["train", *common, "--out", str(tmp_path / name)], capture_output=True, text=True,
                           env=env | {"SGAN_TEST_INF_RANK": inf}, cwd=root, timeout=240)
        assert r.returncode == 0, r.stderr[-3000:]   # the snapshot's check that all ranks hold the same networks
        runs[name] = load_checkpoint(tmp_path / name)
    a, b = runs["one"], runs["two"]
    assert a.extra["counters"]["step"] == b.extra["counters"]["step"] == 3 and b.extra["world_size"] == 2
    assert a.extra["grad_scalers"] == b.extra["grad_scalers"]   # every overflow decision alike
    for ck in (a, b):   # rank 1's inf reached rank 0 through the all-reduce: (at least) one D overflow skip
        d = ck.extra["grad_scalers"]["D"]
        assert d["overflows"] >= 1 and d["scaler"]["scale"] == 2.0 ** 16 / 2 ** d["overflows"]
        assert ck.extra["counters"]["skipped_steps"] == 0
    # The same training as one process, within the rounding of another summation order. Not per
    # element: Adam (beta1 = 0) scales each parameter's step to about lr whatever its gradient's size,
    # so a parameter whose true gradient is ~0 (a bias before an instance norm) moves by +-lr with the
    # sign of its rounding noise, and one such element of two runs can differ by up to Adam's bound,
    # 2 lr sum_t sqrt((1 - beta2^t) / (1 - beta2)) = 8.3 lr over 3 steps, however the rounding goes:
    # 7.6e-3 (3.8 lr) here in fp32 (Ice Lake avx512, no bf16/fp16), 9.5e-3 on a CPU with native
    # avx512_fp16, whose float16 rounds differently from the emulated path. So the bound is on the whole
    # network's update: ||theta_one - theta_two|| / ||theta_one - theta_init|| measured 0.03 for G and D
    # (fp16 and fp32 alike, the few ~0-gradient elements); one D step skipped moves it to 0.7 (G) and 1.9
    # (D), a rank training on other images than its share to the order of 1.
    tc = json.loads(a.extra["train_config"])
    assert tc["lr_dict"] == {} and tc["adam_betas"][0] == 0.0
    lr, beta2, steps = tc["lr_base"], tc["adam_betas"][1], 3
    adam_bound = 2 * lr * sum(((1 - beta2 ** t) / (1 - beta2)) ** 0.5 for t in range(1, steps + 1))
    init = _initial_networks(a, seed=tc["seed"])
    for name in ("G", "D"):
        sa, sb, s0 = getattr(a, name), getattr(b, name), init[name]
        keys = [k for k in sa if sa[k].is_floating_point()]
        diff = sum(float((sa[k].double() - sb[k].double()).square().sum()) for k in keys) ** 0.5
        update = sum(float((sa[k].double() - s0[k].double()).square().sum()) for k in keys) ** 0.5
        assert update > 0 and diff / update < 0.25, (name, diff / update)
        assert max(float((sa[k].float() - sb[k].float()).abs().max()) for k in keys) <= adam_bound, name
        moved = max(float((sa[k] - s0[k]).abs().max()) for k in init[name + "_params"])
        assert 0 < moved <= adam_bound / 2 * 1.001, (name, moved)   # each parameter within one run's Adam bound


def _initial_networks(ck, *, seed):
    """The G and D a run with this model config and seed starts from (sgan.train.loop.Trainer's init)."""
    from sgan.nn import make_discriminator, make_generator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = make_generator(ck.config)
        D = make_discriminator(ck.config)
    return {"G": G.state_dict(), "D": D.state_dict(), "G_params": [k for k, _ in G.named_parameters()],
            "D_params": [k for k, _ in D.named_parameters()]}
