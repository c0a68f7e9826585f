"""The CPU profiles (SGAN_CPU_PROFILE, `pytest --cpu-profile`), every branch of the precision `auto`
choice under both CPU families the issue names (AVX2 only; AVX-512 BF16 + FP16 + AMX) with faked
flags and timers, and probes that leave the caller's model, hooks and RNG as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sgan.device
from sgan.cpu_profiles import ENV, NOMINAL_FP32_MS, PROFILES
from sgan.device import (autocast, autocast_module, bf16_native, check_precision, choose_precision, cpu_flags,
                         fp16_native, generator_probe, module_device, probe_copy, probe_of, time_call)
from sgan.errors import UsageError
from sgan.nn import ModelConfig, make_generator

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["avx2", "amx"])
def profile(request, cpu_profile):
    """Each test that takes it runs once as on an AVX2-only CPU and once as on an AMX one."""
    return cpu_profile(request.param)


def fake_timer(ms):
    def timer(run, device, precision):
        timer.calls.append(precision)
        return ms[precision] / 1000.0
    timer.calls = []
    return timer


def pin_flags(monkeypatch, *flags):
    monkeypatch.setattr(sgan.device, "cpu_flags", lambda path=None: set(flags))


def ramp():
    x = torch.linspace(-1, 1, 256)
    return lambda: torch.tanh(3 * x) * 0.7


def sg2_generator():
    torch.manual_seed(0)
    return make_generator(ModelConfig.preset("tiny", 16, arch="stylegan2"))


# -- the profiles themselves ------------------------------------------------------------------------

def test_profile_flags_and_timer(cpu_profile, tmp_path):
    amx = cpu_profile("amx")
    assert {"avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16", "amx_tile", "avx2"} <= cpu_flags()
    assert bf16_native(CPU) == (True, "cpu flags avx512_bf16+amx_bf16")
    assert fp16_native(CPU) == (True, "cpu flags avx512_fp16+amx_fp16")
    calls = []
    assert time_call(lambda: calls.append(1), CPU, "bf16") == pytest.approx(amx.speed["bf16"] * NOMINAL_FP32_MS / 1e3)
    assert time_call(lambda: calls.append(1), CPU, "fp32") == pytest.approx(NOMINAL_FP32_MS / 1e3) and calls == []
    cpu_profile("avx2")
    flags = cpu_flags()
    assert {"avx2", "fma", "f16c"} <= flags and not any(f.startswith(("avx512", "amx")) for f in flags)
    assert not bf16_native(CPU)[0] and not fp16_native(CPU)[0]
    assert time_call(lambda: None, CPU, "bf16") > time_call(lambda: None, CPU, "fp32")   # emulated: slower
    info = tmp_path / "cpuinfo"   # an explicit file is read as it is, whatever the profile
    info.write_text("processor: 0\nflags\t\t: fpu avx2 amx_bf16\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "amx_bf16"}
    cpu_profile("native")
    assert os.environ.get(ENV) is None and sgan.device.cpu_profile() is None
    calls.clear()
    assert time_call(lambda: calls.append(1), CPU, "fp32", repeats=2) > 0 and len(calls) == 3  # warm-up + 2, real


def test_unknown_profile_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(ENV, "m1")
    with pytest.raises(UsageError, match=r"SGAN_CPU_PROFILE='m1' is not a CPU profile; use one of native, avx2"):
        cpu_flags()
    monkeypatch.setenv(ENV, "native")
    assert sgan.device.cpu_profile() is None


def test_the_session_profile_is_in_the_environment(request):
    """Whatever the session's --cpu-profile, SGAN_CPU_PROFILE says it (os.environ: `sgan` subprocesses
    inherit it) and cpu_flags() follows it."""
    name = request.config.getoption("--cpu-profile")
    if name is not None:
        assert os.environ.get(ENV) == (None if name == "native" else name)
    if os.environ.get(ENV):
        assert cpu_flags() == set(PROFILES[os.environ[ENV]].flags)


def test_the_pytest_option_sets_the_profile_and_the_header():
    env = {k: v for k, v in os.environ.items() if k != ENV} | {"PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cpu-profile", "amx",
                        "tests/test_cpu_profiles.py::test_the_session_profile_is_in_the_environment"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "sgan cpu profile: amx (" in r.stdout and "1 passed" in r.stdout


# -- every branch of precision auto, under both profiles ----------------------------------------------

def test_bf16_native_faster_and_chosen_computes_in_bf16(profile, monkeypatch):
    """bf16 where it is native and faster: chosen, and really computed in bfloat16 (emulated autocast
    on a CPU without it): its output differs from fp32's by bf16 rounding, within the tolerance."""
    pin_flags(monkeypatch, "avx2", "avx512_bf16")
    G = sg2_generator()
    run = generator_probe(G, batch=2)
    t = fake_timer({"fp32": 10.0, "bf16": 4.0})
    ch = choose_precision(CPU, run, timer=t)
    assert ch.precision == "bf16" and t.calls == ["fp32", "bf16"] and "agrees with fp32" in ch.reason
    fp32 = run()
    with autocast(CPU, "bf16"):
        bf16 = run()
    rel = float((bf16.float() - fp32).pow(2).mean().sqrt() / fp32.pow(2).mean().sqrt())
    assert 0 < rel < 0.1


def test_the_profile_timer_alone_decides_like_that_cpu(profile):
    """No fake timer: the profile's own. On the AMX profile auto takes bf16 (computed, emulated where the
    CPU lacks it); on the AVX2 one bf16 is emulated, so it is not even timed."""
    ch = choose_precision(CPU, generator_probe(sg2_generator(), batch=2))
    if profile.name == "amx":
        assert ch.precision == "bf16" and set(ch.timings_ms) == {"fp32", "bf16"}
        assert ch.timings_ms["bf16"] < ch.timings_ms["fp32"] and "timings of CPU profile amx" in ch.reason
    else:
        assert ch.precision == "fp32" and ch.timings_ms == {} and "emulated" in ch.reason


def test_bf16_slower_is_not_chosen(profile, monkeypatch):
    pin_flags(monkeypatch, "avx2", "amx_bf16")
    ch = choose_precision(CPU, ramp(), timer=fake_timer({"fp32": 4.0, "bf16": 10.0}))
    assert ch.precision == "fp32" and set(ch.timings_ms) == {"fp32", "bf16"} and "fastest" in ch.reason


def test_bf16_disagreeing_with_fp32_is_not_chosen(profile, monkeypatch):
    pin_flags(monkeypatch, "avx2", "amx_bf16")

    def run():   # a "model" whose bf16 result is 0.2 relative RMS off (tolerance 0.1)
        x = torch.linspace(-1, 1, 64)
        return x * (1.2 if torch.is_autocast_enabled("cpu") else 1.0)
    ch = choose_precision(CPU, run, timer=fake_timer({"fp32": 10.0, "bf16": 1.0}))
    assert ch.precision == "fp32" and "bf16 faster but off fp32 by more than 0.1" in ch.reason
    assert choose_precision(CPU, run, timer=fake_timer({"fp32": 10.0, "bf16": 1.0}), tol=0.25).precision == "bf16"
    nan = choose_precision(CPU, lambda: torch.tensor([1.0, float("nan") if torch.is_autocast_enabled("cpu") else 2.0]),
                           timer=fake_timer({"fp32": 10.0, "bf16": 1.0}))
    assert nan.precision == "fp32"   # not finite: refused too


def test_bf16_not_native_is_not_timed(profile, monkeypatch):
    pin_flags(monkeypatch, "avx2", "avx512f", "avx512_fp16")   # pinned flags win over the profile's
    t = fake_timer({"fp32": 10.0, "bf16": 1.0})
    ch = choose_precision(CPU, ramp(), timer=t)
    assert ch.precision == "fp32" and t.calls == [] and ch.timings_ms == {} and "emulated" in ch.reason


def test_auto_never_picks_fp16_off_cuda(profile, monkeypatch):
    pin_flags(monkeypatch, "avx2", "avx512_bf16", "avx512_fp16", "amx_fp16")
    t = fake_timer({"fp32": 10.0, "bf16": 5.0, "fp16": 0.1})
    for training in (False, True):
        ch = choose_precision(CPU, ramp(), timer=t, training=training)
        assert ch.precision == "bf16" and "fp16" not in ch.timings_ms


@pytest.mark.parametrize("flags,allowed", [({"avx2"}, False), ({"avx2", "avx512f", "avx512_bf16"}, False),
                                           ({"avx2", "avx512_fp16"}, True), ({"amx_fp16"}, True)])
def test_forced_fp16_trains_only_with_native_fp16(profile, monkeypatch, flags, allowed):
    pin_flags(monkeypatch, *flags)
    if allowed:
        assert check_precision("fp16", CPU, training=True) == "fp16"
        assert choose_precision(CPU, requested="fp16", training=True).precision == "fp16"
    else:
        with pytest.raises(UsageError, match="fp16 trains on CUDA .* this CPU has neither"):
            check_precision("fp16", CPU, training=True)
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):   # inference: CUDA only, everywhere
        check_precision("fp16", CPU)


def test_profile_alone_gates_fp16_training(cpu_profile):
    cpu_profile("amx")
    assert check_precision("fp16", CPU, training=True) == "fp16"
    cpu_profile("avx2")
    with pytest.raises(UsageError, match="this CPU has neither"):
        check_precision("fp16", CPU, training=True)


@pytest.mark.parametrize("onednn", [True, False])
def test_without_cpuinfo_onednn_decides(profile, monkeypatch, onednn):
    """No /proc/cpuinfo (macOS, Windows): no flags, so torch's oneDNN query decides."""
    pin_flags(monkeypatch)   # what cpu_flags() gives without the file
    asked = []
    monkeypatch.setattr(sgan.device, "onednn_supports", lambda p: asked.append(p) or onednn)
    assert bf16_native(CPU) == (onednn, "oneDNN reports native bf16" if onednn else "oneDNN reports no native bf16")
    assert fp16_native(CPU)[0] is onednn and asked == ["bf16", "fp16"]
    t = fake_timer({"fp32": 10.0, "bf16": 4.0})
    ch = choose_precision(CPU, ramp(), timer=t)
    assert ch.precision == ("bf16" if onednn else "fp32") and t.calls == (["fp32", "bf16"] if onednn else [])
    assert sgan.device.cpu_flags.__name__ == "<lambda>"
    monkeypatch.undo()
    assert cpu_flags(path=str(Path("/nonexistent/cpuinfo"))) == set()
    assert isinstance(sgan.device.onednn_supports("bf16"), bool)   # the real query answers, True or False


# -- probes without side effects -------------------------------------------------------------------

class Fixed(torch.nn.Module):
    """A generator without parameters or buffers (every layer a fixed function)."""
    z_dim, c_dim = 8, 0

    def forward(self, z, c=None, *, noise_mode="random", generator=None):
        noise = torch.randn(z.shape, generator=generator, device=z.device)
        return torch.tanh(z + 0.1 * noise).reshape(-1, 2, 2, 2)


class Stateful(torch.nn.Module):
    """A generator with state a forward changes: a pass counter and a running average of w (as a
    mapping network's w_avg in training mode), and one that draws from the global RNG."""
    z_dim, c_dim = 8, 0

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.register_buffer("passes", torch.zeros([], dtype=torch.long))
        self.register_buffer("w_avg", torch.zeros(8))

    def forward(self, z, c=None, *, noise_mode="random", generator=None):
        w = self.lin(z)
        if self.training:
            self.passes += 1
            self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, 0.9))
        return (w + 0.01 * torch.randn(w.shape)).reshape(-1, 2, 2, 2)   # global RNG, on purpose


def test_probe_of_a_generator_without_parameters():
    G = Fixed()
    assert module_device(G) == CPU
    run = generator_probe(G, batch=3)
    assert run().shape == (3, 2, 2, 2) and torch.equal(run(), run())
    ch = choose_precision(CPU, run, native=(True, "x"), timer=fake_timer({"fp32": 2.0, "bf16": 1.0}))
    assert ch.precision == "bf16"


def test_choose_precision_leaves_a_stateful_generator_as_it_was(profile):
    torch.manual_seed(1)
    G = Stateful().train()
    G.lin.weight.grad = torch.full_like(G.lin.weight, 0.5)
    seen = {"forward": 0, "pre": 0, "grad": 0}
    G.register_forward_hook(lambda *a: seen.__setitem__("forward", seen["forward"] + 1))
    G.lin.register_forward_pre_hook(lambda *a: seen.__setitem__("pre", seen["pre"] + 1))
    G.lin.weight.register_hook(lambda g: seen.__setitem__("grad", seen["grad"] + 1))
    state = {k: v.clone() for k, v in G.state_dict().items()}
    rng = torch.get_rng_state()
    ch = choose_precision(CPU, generator_probe(G, batch=4), native=(True, "x"))   # the profile's timer
    assert set(ch.timings_ms) == {"fp32", "bf16"}
    assert seen == {"forward": 0, "pre": 0, "grad": 0}
    assert all(torch.equal(v, state[k]) for k, v in G.state_dict().items()) and int(G.passes) == 0
    assert torch.equal(G.lin.weight.grad, torch.full_like(G.lin.weight, 0.5)) and G.lin.bias.grad is None
    assert torch.equal(torch.get_rng_state(), rng) and G.training
    G(torch.zeros(1, 8))   # the hooks are still there on the original
    assert seen["forward"] == 1 and seen["pre"] == 1 and int(G.passes) == 1


def test_real_generator_untouched_with_the_real_timer(cpu_profile):
    cpu_profile("native")
    G = make_generator(ModelConfig.preset("tiny", 16)).train()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    calls = []
    G.mapping.register_forward_hook(lambda *a: calls.append(1))
    before = {k: v.clone() for k, v in G.state_dict().items()}
    rng = torch.get_rng_state()
    ch = choose_precision(CPU, generator_probe(G, batch=2), native=(True, "forced for the test"))
    assert set(ch.timings_ms) == {"fp32", "bf16"} and calls == []
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    assert all(p.grad is None for p in G.parameters()) and torch.equal(torch.get_rng_state(), rng)


def test_probe_copy_drops_instance_forwards_and_keeps_sharing():
    shared = torch.nn.Linear(4, 4)
    a, b = torch.nn.Sequential(shared, torch.nn.Tanh()), torch.nn.Sequential(shared)
    with autocast_module(shared, CPU, "bf16"):   # an instance forward that closes over the original
        ca, cb = probe_copy(a, b, mode=False)
        assert "forward" not in vars(ca[0]) and ca[0] is cb[0] and ca[0] is not shared and not ca.training
        assert ca[0](torch.ones(1, 4)).dtype == torch.float32
    steps = []

    def step(x, y):
        steps.append((x, y))
        out = y(torch.ones(2, 4)).sum()
        out.backward()
        return out
    run = probe_of(step, a, b)
    run(), run()
    assert steps[0][0] is steps[1][0] and steps[0][1][0] is steps[0][0][0]   # one copy, kept, shared part shared
    assert all(p.grad is None for p in steps[0][0].parameters()) and all(p.grad is None for p in a.parameters())


def test_probe_copy_keeps_an_instance_forward_bound_to_the_module_itself():
    class Doubler(torch.nn.Module):
        def twice(self, x):
            return 2 * x
    m = Doubler()
    m.forward = m.twice   # a method of m itself: the copy's is re-bound to the copy
    (c,) = probe_copy(m)
    assert c.forward.__self__ is c and torch.equal(c(torch.ones(2)), torch.full((2,), 2.0))


def test_training_auto_follows_the_profile_end_to_end(profile, tmp_path):
    """`precision auto` of a real (tiny StyleGAN2) training run: bf16 on the AMX profile, trained in
    bfloat16 autocast (emulated where this CPU lacks it), fp32 on the AVX2 one; config.json says so."""
    import json

    from train_helpers import tiny_config

    from sgan.data.prepare import prepare_dataset
    from sgan.train import train

    prepare_dataset("builtin:shapes", tmp_path / "s.lmdb", max_size=8, min_size=4, count=16, workers=1)
    train(tiny_config("stylegan2", resolution=8, total_kimg=8 / 1000), tmp_path / "s.lmdb", tmp_path / "run",
          device="cpu", threads=1)
    rec = json.loads((tmp_path / "run" / "config.json").read_text())
    want = "bf16" if profile.name == "amx" else "fp32"
    assert rec["train"]["precision"] == want and rec["precision"]["precision"] == want
    assert rec["precision"]["requested"] == "auto"
