"""sgan.device.choose_precision: the hardware gate, each branch forced with a fake timer, the real
probe of a tiny generator, and the --precision checks."""

import pytest
import torch

from sgan.device import (PrecisionChoice, bf16_native, check_precision, choose_precision, cpu_flags,
                         generator_probe)
from sgan.errors import UsageError
from sgan.nn import ModelConfig, make_generator

CPU = torch.device("cpu")


def fake_timer(ms):
    calls = []

    def timer(run, device, precision):
        calls.append(precision)
        return ms[precision] / 1000.0
    timer.calls = calls
    return timer


def probe():
    x = torch.linspace(-1, 1, 64)
    return lambda: torch.tanh(x * 2)


def test_bf16_chosen_when_native_and_faster():
    t = fake_timer({"fp32": 10.0, "bf16": 4.0})
    ch = choose_precision(CPU, probe(), native=(True, "cpu flags amx_bf16"), timer=t)
    assert ch.precision == "bf16" and t.calls == ["fp32", "bf16"]
    assert ch.timings_ms == {"fp32": 10.0, "bf16": 4.0} and "amx_bf16" in ch.reason


def test_fp32_chosen_when_bf16_is_slower():
    ch = choose_precision(CPU, probe(), native=(True, "x"), timer=fake_timer({"fp32": 4.0, "bf16": 10.0}))
    assert ch.precision == "fp32" and set(ch.timings_ms) == {"fp32", "bf16"}


def test_bf16_not_timed_where_it_is_emulated():
    t = fake_timer({"fp32": 10.0, "bf16": 1.0})
    ch = choose_precision(CPU, probe(), native=(False, "emulated"), timer=t)
    assert ch.precision == "fp32" and t.calls == [] and ch.reason == "emulated"


def test_fast_but_wrong_precision_is_refused():
    """A precision whose output disagrees with fp32 is not chosen however fast it is."""
    def run():
        x = torch.linspace(-1, 1, 64)
        return x * (3.0 if torch.is_autocast_enabled('cpu') else 1.0)
    ch = choose_precision(CPU, run, native=(True, "x"), timer=fake_timer({"fp32": 10.0, "bf16": 1.0}))
    assert ch.precision == "fp32"


def test_forced_and_bad_precisions():
    assert choose_precision(CPU, requested="bf16").precision == "bf16"
    assert choose_precision(CPU, requested="FP32").to_dict()["reason"] == "forced"
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        check_precision("fp16", CPU)
    with pytest.raises(UsageError, match="choose auto, fp32, bf16, fp16"):
        check_precision("half", CPU)


def test_cpu_flags_gate(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    flags = cpu_flags(str(info))
    assert bf16_native(CPU, flags=flags) == (True, "cpu flags avx512_bf16+amx_bf16")
    assert bf16_native(CPU, flags={"avx2", "fma"})[0] is False


def test_auto_on_this_machine_follows_its_flags():
    """Measured, not guessed: without avx512_bf16/amx_bf16 auto is fp32 (this AMD EPYC has avx2 only)."""
    native, _ = bf16_native(CPU)
    cfg = ModelConfig.preset("tiny", 16, arch="stylegan2")
    G = make_generator(cfg)
    ch = choose_precision(CPU, generator_probe(G, batch=2))
    assert isinstance(ch, PrecisionChoice) and ch.precision in ("fp32", "bf16")
    if not native:
        assert ch.precision == "fp32" and ch.timings_ms == {}
    assert "precision" in ch.summary()


@pytest.mark.parametrize("arch", ["stylegan1", "stylegan2"])
def test_real_probe_times_both_and_agrees(arch):
    """The real timer on the real generator: both precisions are timed, bf16 agrees with fp32 within
    the tolerance, and gradients are cleared after the probe's backward."""
    torch.manual_seed(0)
    G = make_generator(ModelConfig.preset("tiny", 16, arch=arch))
    run = generator_probe(G, batch=2)
    ch = choose_precision(CPU, run, native=(True, "forced for the test"))
    assert set(ch.timings_ms) == {"fp32", "bf16"} and all(v > 0 for v in ch.timings_ms.values())
    assert all(p.grad is None for p in G.parameters())
    assert run().shape == (2, 3, 16, 16)


def test_old_amp_configs_load_as_precision():
    from sgan.train import TrainConfig, preset_config

    d = preset_config("tiny").to_dict()
    assert d["precision"] == "auto"
    d.pop("precision")
    for amp, want in (("none", "fp32"), ("bf16", "bf16")):
        assert TrainConfig.from_dict(d | {"amp": amp}).precision == want
    assert TrainConfig.from_dict(d | {"precision": "fp16"}).validate().precision == "fp16"  # loss-scaled


def test_amp_alias_on_the_command_line(tmp_path, cpu_profile):
    """--amp none is --precision fp32 on every CPU; --precision fp16 trains on a CPU with native float16
    (the amx profile: avx512_fp16, amx_fp16; computed in emulated float16 where the real CPU lacks it)
    and is one clear error, before anything is written, on one without (the avx2 profile)."""
    import json
    import subprocess
    import sys

    from sgan.data.prepare import prepare_dataset

    data = tmp_path / "d.lmdb"
    prepare_dataset("builtin:shapes", data, max_size=8, min_size=4, count=16, workers=1)

    def train(out, *opts):
        return subprocess.run([sys.executable, "-m", "sgan", "train", str(data), "--out", str(tmp_path / out),
                               "--preset", "tiny", "--kimg", "0.008", "--device", "cpu", *opts],
                              capture_output=True, text=True)

    r = train("r", "--amp", "none")
    assert r.returncode == 0, r.stderr
    assert "--amp is deprecated; use --precision fp32" in r.stderr
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["train"]["precision"] == "fp32" and cfg["precision"]["requested"] == "fp32"
    cpu_profile("avx2")
    r = train("q", "--precision", "fp16")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("Error: --precision fp16 trains on CUDA (or a CPU with avx512_fp16")
    assert not (tmp_path / "q" / "config.json").exists()
    cpu_profile("amx")
    r = train("h", "--precision", "fp16")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path / "h" / "config.json").read_text())
    assert cfg["train"]["precision"] == "fp16" and cfg["precision"]["requested"] == "fp16"


def test_generate_precision_options(tiny_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from sgan.cli.app import app

    runner = CliRunner()
    base = ["generate", str(tiny_checkpoint), "--seeds", "0-1", "--device", "cpu"]
    auto = runner.invoke(app, base + ["--outdir", str(tmp_path / "a")])
    fp32 = runner.invoke(app, base + ["--outdir", str(tmp_path / "b"), "--precision", "fp32"])
    assert auto.exit_code == 0 and fp32.exit_code == 0, auto.output + fp32.output
    if not bf16_native(CPU)[0]:  # auto is fp32 here: the same pixels
        assert (tmp_path / "a" / "seed0000.png").read_bytes() == (tmp_path / "b" / "seed0000.png").read_bytes()
    bad = runner.invoke(app, base + ["--outdir", str(tmp_path / "c"), "--precision", "fp16"])
    assert bad.exit_code != 0 and "fp16 needs a CUDA device" in bad.output and not (tmp_path / "c").exists()


def test_metrics_precision_checks(tiny_checkpoint):
    from typer.testing import CliRunner

    from sgan.cli.app import app

    runner = CliRunner()
    r = runner.invoke(app, ["metrics", "ppl", str(tiny_checkpoint), "--num", "4", "--precision", "bf16", "--device", "cpu"])
    assert r.exit_code != 0 and "PPL's epsilon differences need fp32" in r.output
    r = runner.invoke(app, ["metrics", "fid", str(tiny_checkpoint), "--data", "x.lmdb", "--precision", "half"])
    assert r.exit_code != 0 and "choose auto, fp32, bf16, fp16" in r.output


def test_autocast_module_casts_inside_and_restores():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    from sgan.device import autocast_module

    with autocast_module(lin, CPU, "bf16"):
        y = lin(x)
    assert y.dtype == torch.float32 and not torch.equal(y, lin(x)) and torch.allclose(y, lin(x), atol=0.05)
    assert "forward" not in vars(lin)


def test_project_in_bf16_writes_its_choice(tiny_checkpoint, tmp_path):
    import json

    import numpy as np
    from PIL import Image
    from typer.testing import CliRunner

    from sgan.checkpoint import load_generator
    from sgan.cli.app import app
    from sgan.play.generate import render_seeds

    photo = tmp_path / "photo.png"
    Image.fromarray(render_seeds(load_generator(tiny_checkpoint), [4]).images[0]).save(photo)
    r = CliRunner().invoke(app, ["project", str(tiny_checkpoint), str(photo), "--out", str(tmp_path / "o"), "--steps",
                                 "3", "--w-avg-samples", "100", "--precision", "bf16", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "o" / "photo.json").read_text())
    assert rec["precision"]["precision"] == "bf16" and rec["precision"]["reason"] == "forced"
    assert np.isfinite(np.load(tmp_path / "o" / "photo.npy")).all()
