"""The training precision (sgan.train.precision): decided once before the first step by a probe of
the step itself that touches nothing of the run, recorded, and re-decided on resume where the
recorded precision is emulated or unsupported. CPU flags and timers are faked (train_helpers.fake_cpu):
AMX (bf16 native, timed faster), AVX2 (bf16 emulated, nothing timed), AVX2 + avx512_fp16."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from train_helpers import AMX_FLAGS, AVX2_FLAGS, fake_cpu, tiny_config

from sgan import distributed as dist_utils
from sgan.checkpoint import load_checkpoint
from sgan.train import Hooks, train
from sgan.train.loop import Trainer
from sgan.train.precision import step_probe

CPU = torch.device("cpu")
FP16_FLAGS = AVX2_FLAGS | {"avx512_fp16"}
STEPS = 4   # steps of 8 images per half of a run


def tiny(arch="stylegan1", **changes):
    """A tiny run at 16 px whose bf16 agrees with fp32 (a random const, as the cpu preset's; the tiny
    preset's constant of ones makes the first instance norm amplify rounding, so bf16 disagrees)."""
    cfg = tiny_config(arch, resolution=16, tick_kimg_base=0.016, **changes)
    if arch == "stylegan1":
        cfg.model = {**cfg.model, "const_init": "randn"}
    return cfg


def make(arch, path, shapes16, **changes):
    return Trainer(tiny(arch, **changes), shapes16, path, device=CPU, info=dist_utils.DistInfo(), hooks=Hooks(), threads=1)


def kimg(steps):
    return steps * 8 / 1000


def _state(tr):
    return {"G": {k: v.clone() for k, v in tr.G.state_dict().items()},
            "D": {k: v.clone() for k, v in tr.D.state_dict().items()},
            "G_ema": {k: v.clone() for k, v in tr.G_ema.state_dict().items()},
            "opt": (repr(tr.opt_G.state_dict()), repr(tr.opt_D.state_dict())), "counters": repr(tr.c),
            "rng": torch.get_rng_state().clone(), "grads": [p.grad for p in tr.G.parameters()] + [p.grad for p in tr.D.parameters()]}


@pytest.mark.parametrize("arch", ["stylegan1", "stylegan2"])
def test_step_refuses_an_undecided_precision(arch, shapes16, tmp_path):
    tr = make(arch, tmp_path / "r", shapes16)
    assert tr.cfg.precision == "auto"
    with pytest.raises(RuntimeError, match="still 'auto'.*resolve_precision"):
        tr.step(False)
    assert tr.c.step == 0 and tr.c.cur_nimg == 0


@pytest.mark.parametrize("arch", ["stylegan1", "stylegan2"])
def test_the_probe_touches_nothing_of_the_run(arch, shapes16, tmp_path, monkeypatch):
    """AMX: the probe runs (bf16 is chosen); no hook of G or D fires, and weights, buffers (w_avg),
    G_ema, optimizers, counters, gradients and the global RNG are exactly as before."""
    timed = fake_cpu(monkeypatch, AMX_FLAGS)
    tr = make(arch, tmp_path / "p", shapes16)
    fired = []
    for m in list(tr.G.modules()) + list(tr.D.modules()):
        m.register_forward_hook(lambda *a: fired.append(1))
    tr.G.mapping.forward = lambda *a, **k: fired.append("patched") or 1 / 0   # a patched forward is not copied
    before = _state(tr)
    tp = tr.resolve_precision()
    assert tp.precision == "bf16" and timed == ["fp32", "bf16"] and not fired
    after = _state(tr)
    for key in ("G", "D", "G_ema"):
        assert all(torch.equal(before[key][k], after[key][k]) for k in before[key])
    assert before["opt"] == after["opt"] and before["counters"] == after["counters"]
    assert torch.equal(before["rng"], after["rng"]) and all(g is None for g in after["grads"])
    assert tr.c.train_seconds == 0.0   # the driver, not resolve_precision, puts the probe on the clock


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("arch,loss", [("stylegan1", "logistic"), ("stylegan1", "wgan-gp"), ("stylegan2", "logistic")])
def test_the_probe_is_one_g_and_d_forward_and_backward_at_the_run_batch(arch, loss, shapes16, tmp_path):
    tr = make(arch, tmp_path / "b", shapes16, batch_base=8, loss=loss)
    calls = {"G": 0, "D": 0, "D_backward": 0}
    import sgan.train.precision as prec

    real_twin = prec._twin

    def counting_twin(module, build, device):
        twin = real_twin(module, build, device)
        name = "D" if module is tr.D else "G"
        twin.register_forward_hook(lambda *a: calls.__setitem__(name, calls[name] + 1))
        if name == "D":   # fires on the gradient of D's output (no input needs one in the D step)
            twin.register_full_backward_hook(lambda *a: calls.__setitem__("D_backward", calls["D_backward"] + 1))
        return twin

    prec._twin = counting_twin
    try:
        run, probe = step_probe(tr)
    finally:
        prec._twin = real_twin
    res = tr.point.resolution
    assert probe["batch"] == 8 and probe["resolution"] == res and probe["what"] == "G+D forward and backward"
    img = run()
    assert img.shape == (8, 3, res, res) and img.dtype == torch.float32
    # G once with its graph (StyleGAN2: and once more without, as its Dmain), D on reals + fakes (WGAN-GP:
    # and on their mix, for its penalty) and on fakes
    d_calls = 3 if loss == "wgan-gp" else 2
    assert calls == {"G": 2 if arch == "stylegan2" else 1, "D": d_calls, "D_backward": d_calls}
    with torch.no_grad():
        assert torch.equal(run(), img)   # fixed inputs and noise: fp32's reference is reproducible


def test_auto_in_a_run_times_the_step_and_records_it(shapes16, tmp_path, monkeypatch):
    """AMX: the first line says bf16 with both timings of the G+D step; config.json and log.txt record
    it; the probe's seconds are on the training clock (what --minutes counts)."""
    fake_cpu(monkeypatch, AMX_FLAGS)
    lines, clocks = [], []

    def on_snapshot(path, kimg):   # the kimg-0 snapshot, written before the first step
        clocks.append(load_checkpoint(path).extra["counters"]["train_seconds"])

    train(tiny(total_kimg=kimg(STEPS)), shapes16, tmp_path / "a", device="cpu", threads=1,
          hooks=Hooks(log=lines.append, on_snapshot=[on_snapshot]))
    first = next(line for line in lines if line.startswith("training"))
    assert ("precision bf16 (auto: cpu flags avx512_bf16+amx_bf16; fastest that agrees with fp32; "
            "fp32 20.0 ms, bf16 10.0 ms per G+D step of 8 at 8 px)") in first
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    rec = config["precision"]
    assert rec["precision"] == "bf16" and rec["timings_ms"] == {"fp32": 20.0, "bf16": 10.0}
    assert rec["probe"]["batch"] == 8 and rec["probe"]["resolution"] == 8 and rec["probe"]["seconds"] > 0
    assert config["train"]["precision"] == "bf16" and config["starts"][-1]["precision"] == "bf16"
    assert first in (tmp_path / "a" / "log.txt").read_text()
    assert clocks[0] == pytest.approx(rec["probe"]["seconds"], abs=1e-6)


def test_auto_on_avx2_times_nothing(shapes16, tmp_path, monkeypatch):
    timed = fake_cpu(monkeypatch, AVX2_FLAGS)
    lines = []
    train(tiny(total_kimg=kimg(2)), shapes16, tmp_path / "a", device="cpu", threads=1, hooks=Hooks(log=lines.append))
    assert "bf16" not in timed
    assert any("precision fp32 (auto: cpu has no avx512_bf16/amx_bf16" in line for line in lines)
    assert "probe" not in json.loads((tmp_path / "a" / "config.json").read_text())["precision"]


@pytest.mark.parametrize("arch", ["stylegan1", "stylegan2"])
def test_a_bf16_run_resumes_in_fp32_on_an_avx2_cpu(arch, shapes16, tmp_path, monkeypatch):
    fake_cpu(monkeypatch, AMX_FLAGS)
    out = tmp_path / "run"
    train(tiny(arch, total_kimg=kimg(STEPS)), shapes16, out, device="cpu", threads=1)
    assert json.loads((out / "config.json").read_text())["train"]["precision"] == "bf16"
    timed = fake_cpu(monkeypatch, AVX2_FLAGS)
    lines = []
    result = train(tiny(arch), shapes16, out, device="cpu", resume="auto", threads=1, hooks=Hooks(log=lines.append),
                   resume_overrides={"total_kimg": kimg(2 * STEPS)})
    note = ("note: the run trained in bf16, which this CPU emulates (4-12x slower); resuming in fp32 "
            "(auto: cpu has no avx512_bf16/amx_bf16 (bf16 would be emulated))")
    assert note in lines and "bf16" not in timed   # (compile auto may time its own precision)
    assert note in (out / "log.txt").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["precision"]["precision"] == "fp32" and config["precision"]["changed_from"] == "bf16"
    assert "probe" not in config["precision"]
    assert config["precision"]["note"] == note and [s["precision"] for s in config["starts"]] == ["bf16", "fp32"]
    snap = load_checkpoint(result.snapshot).extra
    assert json.loads(snap["train_config"])["precision"] == "fp32" and snap["counters"]["step"] == 2 * STEPS
    assert all(torch.isfinite(t).all() for t in load_checkpoint(result.snapshot).G.values())


def test_an_fp16_run_resumes_on_a_cpu_without_fp16(shapes16, tmp_path, monkeypatch):
    """Trained in fp16 where the CPU has avx512_fp16, resumed on a plain AVX2 CPU: decided again
    (fp32), the loss scalers' state dropped with the note; the run goes on, in fp32, without them."""
    fake_cpu(monkeypatch, FP16_FLAGS)
    out = tmp_path / "run"
    half = train(tiny(total_kimg=kimg(STEPS), precision="fp16"), shapes16, out, device="cpu", threads=1)
    assert set(load_checkpoint(half.snapshot).extra["grad_scalers"]) == {"G", "D"}
    fake_cpu(monkeypatch, AVX2_FLAGS)
    lines = []
    result = train(tiny(), shapes16, out, device="cpu", resume="auto", threads=1, hooks=Hooks(log=lines.append),
                   resume_overrides={"total_kimg": kimg(2 * STEPS)})
    assert ("note: the run trained in fp16, which this CPU cannot train in (no avx512_fp16/amx_fp16); resuming in "
            "fp32 (auto: cpu has no avx512_bf16/amx_bf16 (bf16 would be emulated)); the fp16 loss scalers' state "
            "is dropped") in lines
    snap = load_checkpoint(result.snapshot).extra
    assert json.loads(snap["train_config"])["precision"] == "fp32" and "grad_scalers" not in snap
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert "grad_scale" in stats[0] and "grad_scale" not in stats[-1] and stats[-1]["step"] == 2 * STEPS


def test_explicit_precision_on_resume_is_honoured(shapes16, tmp_path, monkeypatch):
    """fp32 -> fp16 (a CPU with avx512_fp16) starts fresh scalers; fp16 -> bf16 asked for on a CPU
    that emulates bf16 is honoured (the user's choice) and drops the scalers."""
    fake_cpu(monkeypatch, FP16_FLAGS)
    out = tmp_path / "run"
    train(tiny(total_kimg=kimg(STEPS), precision="fp32"), shapes16, out, device="cpu", threads=1)
    lines = []
    mid = train(tiny(), shapes16, out, device="cpu", resume="auto", threads=1, hooks=Hooks(log=lines.append),
                resume_overrides={"total_kimg": kimg(2 * STEPS), "precision": "fp16"})
    assert "note: the run trained in fp32; resuming in fp16 as --precision asks; fp16 starts fresh loss scalers" in lines
    assert not any("ignored" in line for line in lines)
    snap = load_checkpoint(mid.snapshot).extra
    assert json.loads(snap["train_config"])["precision"] == "fp16" and set(snap["grad_scalers"]) == {"G", "D"}
    lines.clear()
    end = train(tiny(), shapes16, out, device="cpu", resume="auto", threads=1, hooks=Hooks(log=lines.append),
                resume_overrides={"total_kimg": kimg(3 * STEPS), "precision": "bf16"})
    assert ("note: the run trained in fp16; resuming in bf16 as --precision asks; the fp16 loss scalers' state "
            "is dropped") in lines
    snap = load_checkpoint(end.snapshot).extra
    assert json.loads(snap["train_config"])["precision"] == "bf16" and "grad_scalers" not in snap
    config = json.loads((out / "config.json").read_text())
    assert [s["precision"] for s in config["starts"]] == ["fp32", "fp16", "bf16"]
    assert config["precision"]["reason"] == "forced" and config["precision"]["changed_from"] == "fp16"


def test_a_run_resumed_in_its_own_precision_keeps_its_record(shapes16, tmp_path, monkeypatch):
    """AMX both times: bf16 is native, so the resumed run keeps bf16 without timing again or a note,
    and continues bit-exactly (the probe of the first start changed nothing of the run)."""
    fake_cpu(monkeypatch, AMX_FLAGS)
    straight = train(tiny(total_kimg=kimg(2 * STEPS)), shapes16, tmp_path / "a", device="cpu", threads=1)
    out = tmp_path / "run"
    train(tiny(total_kimg=kimg(STEPS)), shapes16, out, device="cpu", threads=1)
    first = json.loads((out / "config.json").read_text())["precision"]
    timed = fake_cpu(monkeypatch, AMX_FLAGS)
    lines = []
    resumed = train(tiny(), shapes16, out, device="cpu", resume="auto", threads=1, hooks=Hooks(log=lines.append),
                    resume_overrides={"total_kimg": kimg(2 * STEPS)})
    assert "fp32" not in timed and not any(line.startswith("note") for line in lines)
    assert json.loads((out / "config.json").read_text())["precision"] == first and first["precision"] == "bf16"
    a, b = load_checkpoint(straight.snapshot), load_checkpoint(resumed.snapshot)
    for name in ("G", "G_ema", "D"):
        assert all(torch.equal(getattr(a, name)[k], getattr(b, name)[k]) for k in getattr(a, name))


def test_cli_resume_with_precision(shapes16, tmp_path, monkeypatch):
    """`sgan train --resume auto --precision fp32` continues a bf16 run in fp32 (no `ignored` note)."""
    from sgan.cli.app import app

    fake_cpu(monkeypatch, AMX_FLAGS)
    out = tmp_path / "run"
    base = ["train", str(shapes16), "--out", str(out), "--preset", "tiny", "--device", "cpu", "--threads", "1"]
    runner = CliRunner()
    r = runner.invoke(app, base + ["--kimg", "0.016", "--precision", "bf16"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, base + ["--kimg", "0.032", "--resume", "auto", "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    assert "resuming in fp32 as --precision asks" in r.output and "ignored" not in r.output
    assert json.loads((out / "config.json").read_text())["train"]["precision"] == "fp32"
