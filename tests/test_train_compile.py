"""`sgan train --compile`: noise drawn ahead equals the forward pass's own draws, the auto rule,
and compiled training steps of both architectures equal to eager ones."""

from __future__ import annotations

import pytest
import torch

from sgan import distributed as dist_utils
from sgan.device import PrecisionChoice, generator_probe
from sgan.nn import ModelConfig, make_generator
from sgan.nn.inputs import draw_noise_maps
from sgan.train import Hooks, preset_config
from sgan.train import compiled as comp
from sgan.train.loop import Trainer
from train_helpers import tiny_config


def _gens(n, seed=0):
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


@pytest.mark.parametrize("arch,lod,shared", [("stylegan1", 0.0, False), ("stylegan1", 0.5, False),
                                             ("stylegan1", 1.0, True), ("stylegan1", 0.25, True),
                                             ("stylegan2", 0.0, False)])
def test_noise_drawn_ahead_equals_the_forward_draws(arch, lod, shared):
    cfg = ModelConfig.preset("tiny", 16, arch=arch)
    if arch == "stylegan1":
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "noise_shared_per_block": shared})
    torch.manual_seed(0)
    G = make_generator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "noise_strength" in name:
                p.normal_()
        ws = G.map(torch.randn(3, cfg.z_dim))
        direct = G.synthesis(ws, lod=lod, noise_mode="random", generator=_gens(3))
        maps = draw_noise_maps(G.synthesis.noise_inputs(lod), _gens(3), device=ws.device, n=3)
        ahead = G.synthesis(ws, lod=lod, noise_mode="random", generator=maps)
        assert torch.equal(direct, ahead)
        one = G.synthesis(ws, lod=lod, noise_mode="random", generator=torch.Generator().manual_seed(5))
        maps1 = draw_noise_maps(G.synthesis.noise_inputs(lod), torch.Generator().manual_seed(5), device=ws.device, n=3)
        assert torch.equal(one, G.synthesis(ws, lod=lod, noise_mode="random", generator=maps1))
    with pytest.raises(ValueError, match="noise map"):
        G.synthesis(ws, lod=lod, noise_mode="random", generator={k: v[:2] for k, v in maps.items()})


PROFILES = {"avx2": {"fpu", "sse2", "avx", "avx2", "fma"},
            "avx512": {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"},
            "amx": {"avx2", "avx512f", "avx512bw", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile"}}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_choose_compile_forced_and_auto(monkeypatch, profile):
    import sgan.device

    monkeypatch.setattr(sgan.device, "cpu_flags", lambda *a, **k: set(PROFILES[profile]))
    assert comp.cpu_family() == profile
    cpu = torch.device("cpu")
    calls = []

    def seconds(s):
        return lambda: calls.append(s) or s

    pick = {"device": cpu, "arch": "stylegan1", "channels": 32}
    assert comp.choose_compile("on", run_seconds=seconds(1.0), **pick).compile
    assert not comp.choose_compile("off", run_seconds=seconds(1e9), **pick).compile
    monkeypatch.setattr(comp, "EXPECTED", {})
    off = comp.choose_compile("auto", run_seconds=seconds(1e9), **pick)
    assert not off.compile and "not measured" in off.reason and f"cpu ({profile})" in off.reason
    assert calls == []   # no probe where nothing is known
    other = next(f for f in PROFILES if f != profile)   # another family's figures do not apply here
    monkeypatch.setattr(comp, "EXPECTED", {(other, "stylegan1", "narrow"): (2.0, 1.0)})
    assert not comp.choose_compile("auto", run_seconds=seconds(1e9), **pick).compile and calls == []
    monkeypatch.setattr(comp, "EXPECTED", {(profile, "stylegan1", "narrow"): (1.25, 60.0)})
    # saved = run * (1 - 1/1.25) = run / 5: pays from 300 s on
    short = comp.choose_compile("auto", run_seconds=seconds(290.0), **pick)
    long = comp.choose_compile("auto", run_seconds=seconds(310.0), **pick)
    assert not short.compile and long.compile and calls == [290.0, 310.0]
    assert long.to_dict()["estimate"]["saved_s"] == pytest.approx(62.0)
    assert "compile on (auto:" in long.summary()
    # bf16 / fp16 autocast on a CPU: never compiled, forced or not (LOW_PRECISION_CPU), with the reason
    for precision in ("bf16", "fp16"):
        for mode in ("on", "auto"):
            low = comp.choose_compile(mode, run_seconds=seconds(1e9), precision=precision, **pick)
            assert not low.compile and low.requested == mode and f"{precision} on cpu" in low.reason
    assert calls == [290.0, 310.0]
    wide = comp.choose_compile("auto", run_seconds=seconds(1e9), device=cpu, arch="stylegan1", channels=512)
    assert not wide.compile and "wide" in wide.reason
    monkeypatch.setattr(comp, "EXPECTED", {(profile, "stylegan1", "narrow"): (0.9, 60.0)})
    assert not comp.choose_compile("auto", run_seconds=seconds(1e9), **pick).compile
    with pytest.raises(Exception, match="--compile"):
        comp.choose_compile("yes", run_seconds=seconds(1.0), **pick)


def test_the_measured_rule_per_cpu_family(monkeypatch):
    """The shipped figures: where compile measured no faster (StyleGAN 1 on every family measured) or
    was not measured (StyleGAN2 on AMX), auto stays eager without a probe; StyleGAN2 pays only in long
    runs: from 32 minutes on AVX2, from 75 on AVX-512 (Ice Lake)."""
    import sgan.device

    cpu, never = torch.device("cpu"), (lambda: pytest.fail("no probe expected"))
    for profile, flags in PROFILES.items():
        monkeypatch.setattr(sgan.device, "cpu_flags", lambda *a, f=flags, **k: set(f))
        sg1 = comp.choose_compile("auto", device=cpu, arch="stylegan1", channels=32, run_seconds=never)
        assert not sg1.compile and f"cpu ({profile})" in sg1.reason, sg1.reason
    for profile, (short, long) in {"avx2": (30, 34), "avx512": (70, 80)}.items():
        monkeypatch.setattr(sgan.device, "cpu_flags", lambda *a, f=PROFILES[profile], **k: set(f))
        sg2 = {m: comp.choose_compile("auto", device=cpu, arch="stylegan2", channels=32,
                                      run_seconds=lambda m=m: m * 60.0) for m in (20, short, long)}
        assert not sg2[20].compile and not sg2[short].compile and sg2[long].compile, profile
    monkeypatch.setattr(sgan.device, "cpu_flags", lambda *a, **k: set(PROFILES["amx"]))
    amx = comp.choose_compile("auto", device=cpu, arch="stylegan2", channels=32, run_seconds=never)
    assert not amx.compile and "not measured" in amx.reason


def _isa_config(isa):
    """Inductor's C++ vector ISA for the test: the machine's own (None), or a narrower one forced
    (avx2 on an AVX-512 CPU); skipped where the CPU cannot run it."""
    if isa is None:
        return {}
    from torch._inductor.cpu_vec_isa import valid_vec_isa_list

    widths = {isa_.bit_width() for isa_ in valid_vec_isa_list()}
    bits = {"avx2": 256, "avx512": 512}[isa]
    if bits not in widths:
        pytest.skip(f"this CPU cannot run inductor's {isa} code")
    return {"cpp.simdlen": bits}


def _sg1(shapes16, path):
    # tiny model, 4 -> 8 px: two resolutions and the fade-in between them (tiny: 0.2 kimg per phase)
    cfg = tiny_config("stylegan1", resolution=8, start_resolution=4, r1_interval=2)
    cfg.model = {**cfg.model, "const_init": "randn"}   # as the cpu preset: the tiny preset's constant of ones with
    #   zero noise makes the first instance norm normalise a constant (variance 0 up to rounding, times
    #   rsqrt(1e-8)), where any change of summation order shows, eager against eager as well
    return Trainer(cfg, shapes16, path, device=torch.device("cpu"), info=dist_utils.DistInfo(), hooks=Hooks(),
                   threads=1)


def _sg2(shapes16, path):
    cfg = tiny_config("stylegan2", resolution=8, g_reg_interval=2, r1_interval=2)
    return Trainer(cfg, shapes16, path, device=torch.device("cpu"), info=dist_utils.DistInfo(),
                            hooks=Hooks(), threads=1)


# fp32 on both sides; the compiled kernels sum in another order (fused var_mean, reductions, the
# backward of fused element-wise chains), and a leaky ReLU input within rounding of 0 can take the other
# slope. Gradients (one step at lr 0, so that every phase sees equal parameters), relative over each
# network: measured 3e-7 to 7e-7 here (tiny model, 8-16 px, AVX-512 and AVX2 code on an Ice Lake Xeon),
# 8e-7 at the cpu preset's 8 px, 4.7e-4 at its 32 px (benchmarks/compile.py); GRAD_RTOL 1e-3. Updates:
# Adam moves each weight by about lr whatever its gradient's size, so elements whose gradient cancels to
# ~0 (a bias before an instance norm) can move differently: measured up to 8e-3 of the update's norm
# at the cpu preset (5e-6 here); UPDATE_RTOL 0.05. A real error (a wrong noise map, a missing term, an
# eager/compiled mix-up, bf16 against fp32) changes a gradient by 1e-2 to O(1) relative.
GRAD_RTOL = 1e-3
UPDATE_RTOL = 0.05

# The phases of the StyleGAN 1 run: 4 px, the 4 -> 8 fade-in, 8 px (the StyleGAN2 run: its first steps)
POINTS = {"stylegan1": [0, 300, 450], "stylegan2": [0]}


def _sync(dst, src):
    for name in ("G", "D", "G_ema", "opt_G", "opt_D"):
        getattr(dst, name).load_state_dict(getattr(src, name).state_dict())


def _profile_isa():
    """The vector ISA inductor is made to use: AVX2 code under `--cpu-profile avx2` (so that an AVX-512
    machine checks the other family's kernels too: `make test-profiles` runs it), else the machine's own."""
    from sgan.device import cpu_profile

    profile = cpu_profile()
    return "avx2" if profile is not None and profile.name == "avx2" else None


# In the default run, once per suite run with the ISA of _profile_isa. Measured on the 2-core Ice Lake
# machine, shared (load ~3): 4.5-15 s per case with inductor's cache warm; from a cold cache 88-137 s
# per case (both ISAs, four cases: 459 s).
@pytest.mark.parametrize("arch", ["stylegan1", "stylegan2"])
def test_compiled_steps_equal_eager_steps(arch, shapes16, tmp_path):
    from torch._dynamo.utils import counters

    isa = _profile_isa()

    make = _sg1 if arch == "stylegan1" else _sg2
    eager, comp_tr = make(shapes16, tmp_path / "e"), make(shapes16, tmp_path / "c")
    for tr in (eager, comp_tr):
        tr.resolve_precision(PrecisionChoice("fp32", "fp32", {}, "forced"))   # once, before compiling
    breaks0 = sum(counters["graph_break"].values())
    with torch._inductor.config.patch(_isa_config(isa)):
        comp.apply_choice(comp_tr, comp.CompileChoice(True, "on", "forced"))
        assert comp_tr.compiled and "forward" in vars(comp_tr.D if arch == "stylegan2" else comp_tr.D.epilogue)
        lods = []
        for nimg in POINTS[arch]:
            for tr in (eager, comp_tr):
                tr.c.cur_nimg = tr.c.data_position = nimg
            _sync(comp_tr, eager)
            for tr in (eager, comp_tr):
                with comp.frozen_lr(tr):         # lr 0: the later phases' gradients see equal parameters
                    tr.step(False)               # with R1 (and path length): eager double-backward passes
            lods.append(eager.point.lod)
            for net in ("G", "D"):
                rel = comp.grad_rel_diff(getattr(eager, net), getattr(comp_tr, net))
                assert rel <= GRAD_RTOL, (nimg, net, rel)
            before = {net: {k: v.detach().clone() for k, v in getattr(eager, net).named_parameters()}
                      for net in ("G", "D")}
            for tr in (eager, comp_tr):
                tr.step(False)                   # without R1: every D and G pass compiled
            for net in ("G", "D"):
                rel = comp.update_rel_diff(getattr(eager, net), getattr(comp_tr, net), before[net])
                assert rel <= UPDATE_RTOL, (nimg, net, rel)
            for k in ("G_loss", "D_real", "D_fake"):
                assert eager.stats.totals()[k] == pytest.approx(comp_tr.stats.totals()[k], rel=1e-4, abs=1e-5)
    if arch == "stylegan1":
        assert lods == [1.0, pytest.approx(0.5), 0.0]   # 4 px, the fade-in blend, 8 px
    # No graph breaks, and every piece compiled once per variant it meets, never per step or lod: StyleGAN 1
    # G's pieces once, D's three times (trainable on the reals+fakes pair, 2N, and on the fakes alone in
    # an R1 step, N; frozen in the G step, N); StyleGAN2 G's and D's twice (trainable in their own
    # phase, frozen in the other's). Far from the recompile limit (8 per piece) at any number of resolutions.
    assert sum(counters["graph_break"].values()) == breaks0
    entries = {**{f"G.{k}": v for k, v in comp.compile_entries(dict(comp_tr.G.named_modules())).items()},
               **{f"D.{k}": v for k, v in comp.compile_entries(dict(comp_tr.D.named_modules())).items()}}
    if arch == "stylegan2":
        expected = {"G.mapping": 2, "G.synthesis": 2, "D.": 2}
    else:
        expected = {**{f"G.{k}": 1 for k in ["mapping", "synthesis.blocks.0", "synthesis.blocks.1"]},
                    **{f"D.{k}": 3 for k in ["fromrgbs.0", "fromrgbs.1", "blocks.0", "epilogue"]}}
    assert entries == expected
    for net in ("G", "D", "G_ema"):
        a, b = getattr(eager, net).state_dict(), getattr(comp_tr, net).state_dict()
        assert a.keys() == b.keys() and not any("_orig_mod" in k for k in b)
    # A call that draws its own noise (the precision probe's) runs the synthesis pieces' eager code: the
    # same images (up to the compiled mapping's summation order), no graph compiled for them.
    _sync(comp_tr, eager)
    assert torch.allclose(generator_probe(eager.G, batch=3)(), generator_probe(comp_tr.G, batch=3)(), rtol=1e-4,
                          atol=1e-5)
    after = comp.compile_entries(dict(comp_tr.G.named_modules()))
    assert {k: v for k, v in after.items() if k != "mapping"} == {k[2:]: v for k, v in entries.items()
                                                                 if k.startswith("G.") and k != "G.mapping"}


def test_cli_rejects_a_bad_compile_mode_and_auto_is_the_default(shapes16, tmp_path):
    import json

    from typer.testing import CliRunner

    from sgan.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["train", str(shapes16), "--out", str(tmp_path / "x"), "--compile", "maybe"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--compile 'maybe': choose auto, on, off" in lines[0], result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["train", str(shapes16), "--out", str(tmp_path / "x"), "--dry-run"])
    assert json.loads(result.output)["train"]["compile"] == "auto"
    assert "--compile" in runner.invoke(app, ["train", "--help"]).output


def test_a_short_auto_run_stays_eager_and_says_why(shapes16, tmp_path):
    import json

    from sgan.train import train

    cfg = preset_config("tiny")
    cfg.total_kimg = 0.016
    lines = []
    train(cfg, shapes16, tmp_path / "r", device="cpu", hooks=Hooks(log=lines.append), threads=1)
    choice = json.loads((tmp_path / "r" / "config.json").read_text())["compile"]
    assert choice["requested"] == "auto" and choice["compile"] is False and choice["reason"]
    assert any(line.startswith("training ") and "; compile off (auto: " in line for line in lines)


@pytest.mark.slow   # two compiled runs (15-35 s with inductor's cache warm, minutes cold)
@pytest.mark.parametrize("arch", ["stylegan1", "stylegan2"])
def test_compiled_run_snapshots_plain_keys_and_resumes_compiled(arch, shapes16, tmp_path):
    import json

    from sgan.checkpoint import load_checkpoint
    from sgan.train import train

    def cfg(kimg):
        c = preset_config("tiny", arch=arch)
        if arch == "stylegan2":
            c.model = {"channel_max": 8, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16}
        c.total_kimg, c.compile, c.tick_kimg_base = kimg, "on", 0.048
        return c

    out = tmp_path / "run"
    lines = []
    first = train(cfg(0.096), shapes16, out, device="cpu", hooks=Hooks(log=lines.append), threads=1)
    assert any("; compile on (on: forced)" in line for line in lines)
    ck = load_checkpoint(first.snapshot)
    for sd in (ck.G, ck.G_ema, ck.D):
        assert not any("_orig_mod" in k for k in sd)
    res = train(cfg(0.192), shapes16, out, device="cpu", hooks=Hooks(), resume="auto", threads=1,
                resume_overrides={"total_kimg": 0.192, "compile": "on"})
    assert res.kimg == pytest.approx(0.192, abs=0.01)
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert all(s["compiled_frames"] > 0 for s in stats)
    assert stats[-1]["compiled_frames"] == stats[-2]["compiled_frames"]   # no recompiles once warm
    assert json.loads((out / "config.json").read_text())["compile"]["compile"] is True
