"""sgan's StyleGAN2 training math against NVIDIA's: one training iteration of stylegan2-ada-pytorch
(tests/fixtures/train_oracle, see its README.md), phase by phase.

For each case (lazy regularisation without and with style mixing, and no lazy regularisation with
mixing) the initial NVIDIA G, D and G_ema are loaded through sgan's importer (sgan.formats.ada), and
every phase runs as NVIDIA's training loop runs it: zero the phase network's gradients, only it
requires grad, StyleGAN2Objective.accumulate(phase, gain) fed the fixture's z and every random
number NVIDIA drew (mixing cutoff/coin/z2, per-layer synthesis noise, path-length noise), nan_to_num,
then torch's Adam (foreach, as training) with the lr and betas sgan.train.plan.lazy_adam
computes for the interval. Compared: the mixing crossover; ws and images of every generator pass;
every reported statistic (scores, signs, losses, penalties per sample); pl_lengths; pl_mean and
w_avg after the phase; EVERY parameter gradient; the optimizer's lr/betas/eps and step count of
every parameter (a parameter NVIDIA steps with a zero gradient must step here too); EVERY parameter
after each Adam step; and G_ema after the two EMA updates of lazy-nomix (the beta formula too).

Tolerance: per tensor, max |ours - ref| / max |ref| <= 1e-5 (`TOL`) for forward values, statistics,
gradients, stepped parameters and G_ema, except the gradients of biases and noise strengths (3e-5,
`TOL_SUM_GRAD`: each element is ONE sum over the batch and every pixel of terms that largely cancel
-- D's biases in Dreg are ~1e-8 where the largest Dreg gradient is ~1e-5 -- so its relative rounding
is that of the sum of magnitudes over the sum, not of a typical element); exactly-zero references
must be exactly zero here; exact equality for crossovers, Adam settings and step counts.
Why not bit-exact: both sides are float32 on CPU, but sgan orders the same arithmetic differently
(the activation gain folded into the demodulation, the noise and the bias; the path-length penalty
written as mean((l - m')^2) - 2 decay (mean(l) - m') mean(l) with m' detached, which has the
official gradient; one backward of the D sum instead of two; channels_last on AVX-512), so float32
rounding (2^-24 = 6e-8 per op, accumulated over ~1e3-term reductions) differs. The ratios reached are printed by
`PYTHONPATH=. python tests/test_train_oracle.py` (docs/train.md lists them): weight gradients at most
2.8e-6, bias and noise-strength gradients 7.9e-6, parameters after Adam 2.2e-6, statistics 1.3e-6,
on the AVX-512 (channels_last), AVX2 (NCHW) and AMX profiles alike; so the tolerances leave a factor
of about 3-4 for other reduction orders, while a wrong gain,
sign, scale, crossover, pl_decay term or Adam beta gives errors of 1e-3 to O(1)
(test_a_wrong_setting_is_caught).

sgan deliberately differs in one place: under several processes the path-length penalty uses the
global-batch mean length (NVIDIA: each process its own); in one process (this test, `reduce_mean`
None) that is NVIDIA's formula.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sgan.formats import ada
from sgan.formats.common import build, new_discriminator, new_generator
from sgan.train.ema import ema_beta, update_ema
from sgan.train.loop import Trainer
from sgan.train.objectives import SG2Draws, StyleGAN2Objective
from sgan.train.objectives import stylegan2 as sg2_objective
from sgan.train.plan import lazy_adam
from sgan.train.regularizers import mixing_cutoff, nan_to_num_grads_, path_length_loss

FIX = Path(__file__).parent / "fixtures" / "train_oracle"
CASES = ("lazy-nomix", "lazy-mix", "both-mix")
TOL = 1e-5
TOL_SUM_GRAD = 3e-5


def is_sum_grad(name: str) -> bool:
    """A bias's or noise strength's gradient: each element one sum over the batch and every pixel."""
    return name.endswith((".bias", ".noise_strength"))
LR, BETAS, EPS = 0.0025, (0.0, 0.99), 1e-8   # train.py --cfg=auto at 32 px (the fixture's hyperparameters)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| / max |ref| (0 when both are exactly zero, inf when only ref is)."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    d = float((ours.double() - ref.double()).abs().max()) if ref.numel() else 0.0
    scale = float(ref.double().abs().max()) if ref.numel() else 0.0
    if scale == 0.0:
        return 0.0 if d == 0.0 else math.inf
    return d / scale


class Report:
    """The worst ratio per quantity, and every tensor over the tolerance."""

    def __init__(self) -> None:
        self.worst: dict[str, float] = {}
        self.failures: list[str] = []

    def check(self, what: str, kind: str, ours: torch.Tensor, ref: torch.Tensor, tol: float = TOL) -> None:
        r = rel_err(ours.detach().reshape(ref.shape) if ours.numel() == ref.numel() else ours.detach(), ref)
        self.worst[kind] = max(self.worst.get(kind, 0.0), r)
        if not r <= tol:
            self.failures.append(f"{what}: max|d|/max|ref| = {r:.3g} > {tol:g}")

    def equal(self, what: str, ours, ref) -> None:
        if ours != ref:
            self.failures.append(f"{what}: {ours!r} != {ref!r}")


def load_case(case: str) -> tuple[dict, dict, dict]:
    meta = json.loads((FIX / "ada-uncond_train_oracle.json").read_text())
    initial = torch.load(FIX / "ada-uncond_train_initial.pt", weights_only=True)
    return meta, initial, torch.load(FIX / f"ada-uncond_train_{case}.pt", weights_only=True)


def networks(meta: dict, initial: dict):
    """G, D, G_ema from NVIDIA state dicts through sgan's StyleGAN2-ADA importer, in train mode."""
    nets = meta["networks"]
    cfg = ada.config_from_kwargs(nets["G_init_kwargs"], nets["D_init_kwargs"], FIX)
    G = build(new_generator(cfg), ada.convert_state(initial["G"], "G"), what="G").train().requires_grad_(False)
    D = build(new_discriminator(cfg), ada.convert_state(initial["D"], "D"), what="D").train().requires_grad_(False)
    G_ema = build(new_generator(cfg), ada.convert_state(initial["G_ema"], "G_ema"), what="G_ema").eval()
    return G, D, G_ema.requires_grad_(False)


def phase_draws(G, phase: dict, prob: float,
                cutoff_shift: int = 0) -> tuple[list[SG2Draws], list[int], torch.Tensor | None]:
    """The phase's draws per generator pass (z = the phase's gen_z, its first half for the path-length
    pass), the crossovers sgan derives from the raw cutoff/coin draws, and the path-length noise."""
    calls: dict[int, dict] = {}
    pl_noise = None
    for info, value in zip(phase["rng_info"], phase["rng_draws"]):
        role = info["role"]
        if role == "pl_noise_raw":
            pl_noise = value / math.sqrt(value.shape[2] * value.shape[3])
            continue
        call = calls.setdefault(info["run_G_call"], {"noise": {}})
        if role == "synthesis_noise":
            layer = G.get_submodule(info["layer"].removeprefix("G."))
            call["noise"][layer.layer_idx] = value
        else:
            call[role] = value
    out, cutoffs = [], []
    for i, run in enumerate(phase["run_G"]):
        call = calls[i]
        cutoff = G.num_ws
        if "style_mixing_cutoff" in call:
            cutoff = mixing_cutoff(int(call["style_mixing_cutoff"]), float(call["style_mixing_coin"]),
                                   num_ws=G.num_ws, prob=prob)
        cutoffs.append(cutoff)
        cutoff = min(cutoff + cutoff_shift, G.num_ws)
        out.append(SG2Draws(z=run["z"], c=None, z2=call.get("style_mixing_z2"), cutoff=cutoff, noise=call["noise"]))
    return out, cutoffs, pl_noise


def adam(module: torch.nn.Module, interval: int | None) -> torch.optim.Adam:
    lr, betas = (LR, BETAS) if interval is None else lazy_adam(LR, BETAS, interval)
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, eps=EPS, foreach=True)


def run_case(case: str, *, paired_d: bool = False, objective_kwargs: dict | None = None, adam_betas=None,
             lazy_gain: bool = True, cutoff_shift: int = 0) -> Report:
    """Run one case through sgan and compare everything. `paired_d`: D on reals and fakes in one call
    as the training loop runs it (Trainer._d_pair), else two calls as NVIDIA. The other keywords make
    sgan's side wrong (for the test that shows a mistake is caught): objective settings, Adam betas,
    gain 1 in the lazy regularisation phases, a crossover moved by `cutoff_shift` layers."""
    meta, initial, data = load_case(case)
    hyper, loss_cfg = meta["cases"][case]["hyper"], data["loss"] if isinstance(data.get("loss"), dict) else {}
    prob = float(hyper["loss_kwargs"].get("style_mixing_prob", 0.9))
    k_G, k_D = hyper["G_reg_interval"], hyper["D_reg_interval"]
    G, D, G_ema = networks(meta, initial)
    kw = dict(r1_gamma=hyper["loss_kwargs"]["r1_gamma"], pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2,
              style_mixing_prob=prob, g_reg_interval=k_G, r1_interval=k_D)
    if paired_d:
        pair_of = SimpleNamespace(D=D, model_cfg=G.cfg)
        kw["d_pair"] = lambda r, f, c_r, c_f: Trainer._d_pair(pair_of, r, f, 0.0, c_r, c_f)
    kw.update(objective_kwargs or {})
    obj = StyleGAN2Objective(G, D, **kw)
    if hyper.get("pl_mean_init") is not None:
        obj.load_state_dict({"pl_mean": float(hyper["pl_mean_init"])})
    opts = {"G": adam(G, k_G), "D": adam(D, k_D)}
    if adam_betas is not None:
        for opt in opts.values():
            opt.param_groups[0]["betas"] = adam_betas
    rep = Report()
    reals = initial["real_img"]
    del loss_cfg
    for phase in data["phases"]:
        name, gain = phase["phase"], phase["gain"]
        net_name = name[0]
        net, opt = (G, opts["G"]) if net_name == "G" else (D, opts["D"])
        tag = f"{case} {name}"
        rep.check(f"{tag} pl_mean before", "pl_mean", obj.pl_mean, phase["pl_mean_before"])
        rep.check(f"{tag} w_avg before", "w_avg", G.mapping.w_avg, phase["w_avg_before"])
        draws, cutoffs, pl_noise = phase_draws(G, phase, prob, cutoff_shift)
        for i, (d, cut, run) in enumerate(zip(draws, cutoffs, phase["run_G"])):
            rep.equal(f"{tag} run_G[{i}] crossover", cut, G.num_ws if run["cutoff"] == -1 else run["cutoff"])
            with torch.no_grad():
                img, ws, _ = obj.run_G(d)
            rep.check(f"{tag} run_G[{i}] ws", "ws", ws, run["ws"])
            rep.check(f"{tag} run_G[{i}] img", "img", img, run["img"])
        main = pl = None
        if name in ("Greg", "Gboth"):
            pl = draws[-1]
            pl.pl_noise = pl_noise
            rep.check(f"{tag} pl_noise", "pl_noise", pl_noise, phase["intermediates"]["pl_noise"])
        if name in ("Gmain", "Gboth", "Dmain", "Dboth"):
            main = draws[0]
        opt.zero_grad(set_to_none=True)
        net.requires_grad_(True)
        gain = gain if lazy_gain else 1
        stats = obj.accumulate(name, draws=main, pl_draws=pl, reals=reals if net_name == "D" else None, gain=gain)
        net.requires_grad_(False)
        for key, ref in phase["stats"].items():
            rep.check(f"{tag} {key}", "stats", stats[key], ref)
        for key in ("pl_grads", "pl_lengths", "r1_grads"):
            if key in phase["intermediates"]:
                rep.check(f"{tag} {key}", key, stats[key], phase["intermediates"][key])
        rep.check(f"{tag} pl_mean after", "pl_mean", obj.pl_mean, phase["pl_mean_after"])
        rep.check(f"{tag} w_avg after", "w_avg", G.mapping.w_avg, phase["w_avg_after"])
        params = dict(net.named_parameters())
        nan_to_num_grads_(list(params.values()))
        ref_grads = phase["grads"][net_name]
        rep.equal(f"{tag} parameters with a gradient", sorted(k for k, p in params.items() if p.grad is not None),
                  sorted(ref_grads))
        for key, ref in ref_grads.items():
            g = params[key].grad
            if g is not None:
                rep.check(f"{tag} grad {key}", f"grad {name}", g, ref, tol=TOL_SUM_GRAD if is_sum_grad(key) else TOL)
        opt.step()
        group, ref_opt = opt.param_groups[0], phase["opt"]
        rep.equal(f"{tag} Adam lr", group["lr"], ref_opt["lr"])
        rep.equal(f"{tag} Adam betas", [float(b) for b in group["betas"]], [float(b) for b in ref_opt["betas"]])
        rep.equal(f"{tag} Adam eps", group["eps"], ref_opt["eps"])
        steps = {k: int(opt.state[p]["step"]) if p in opt.state else 0 for k, p in params.items()}
        rep.equal(f"{tag} Adam steps", sorted({k for k, v in steps.items() if v != ref_opt["step_after"]}), [])
        for key, ref in phase["params_after"][net_name].items():
            rep.check(f"{tag} param {key}", f"param {name}", params[key], ref)
    for i, e in enumerate(data.get("ema") or []):
        beta = ema_beta(e["batch_size"], e["ema_kimg"], cur_nimg=e["cur_nimg"], rampup=e["ema_rampup"])
        rep.check(f"{case} ema[{i}] beta", "ema beta", torch.tensor(beta, dtype=torch.float64),
                  torch.tensor(e["ema_beta"], dtype=torch.float64), tol=1e-15)
        ema = copy.deepcopy(G_ema)
        update_ema(ema, G, beta)
        ours = ema.state_dict()
        for key, ref in ada.convert_state(e["G_ema_after"], "G_ema").items():
            rep.check(f"{case} ema[{i}] {key}", "G_ema", ours[key], ref)
    return rep


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """The fixture was made with one thread; one thread is also the fastest here."""


@pytest.mark.parametrize("case", CASES)
def test_stylegan2_objective_reproduces_nvidia(case):
    rep = run_case(case)
    assert not rep.failures, "\n".join(rep.failures[:20])
    assert {"grad Dmain", "param Gmain"} <= set(rep.worst) or {"grad Dboth", "param Gboth"} <= set(rep.worst)


def test_the_training_loops_paired_D_call_reproduces_nvidia():
    """Training runs D on reals and fakes in one call (each minibatch-stddev group one kind): the same."""
    rep = run_case("lazy-mix", paired_d=True)
    assert not rep.failures, "\n".join(rep.failures[:20])


def _without_mean_term(lengths, pl_mean, *, decay, global_mean=None):
    """path_length_loss with the new pl_mean detached: the right values, not the official gradient."""
    _, new_mean, penalty = path_length_loss(lengths, pl_mean, decay=decay, global_mean=global_mean)
    return (lengths - new_mean).square().mean(), new_mean, penalty


@pytest.mark.parametrize("change", ["pl_decay_term", "lazy_gain", "cutoff", "adam_beta"])
def test_a_wrong_setting_is_caught(change, monkeypatch):
    """The comparison is sharp: each of these mistakes fails it, where it should."""
    if change == "pl_decay_term":
        monkeypatch.setattr(sg2_objective, "path_length_loss", _without_mean_term)
        rep = run_case("lazy-nomix")
        assert any("Greg grad" in f for f in rep.failures)
        assert not any(f.startswith(("lazy-nomix Gmain", "lazy-nomix Greg Loss/", "lazy-nomix Greg pl_"))
                       for f in rep.failures)   # Greg's values are right, only its gradient is wrong
    elif change == "lazy_gain":
        rep = run_case("lazy-mix", lazy_gain=False)
        assert any("Greg grad" in f for f in rep.failures) and any("Dreg grad" in f for f in rep.failures)
    elif change == "cutoff":
        rep = run_case("lazy-mix", cutoff_shift=1)
        assert any("run_G[0] ws" in f for f in rep.failures)
    else:
        rep = run_case("lazy-nomix", adam_betas=(0.0, 0.99))   # the uncorrected beta2 with the lazy lr
        assert any("Adam betas" in f for f in rep.failures) and any("Greg param" in f for f in rep.failures)


def test_phase_list_state_and_bad_calls():
    meta, initial, _ = load_case("lazy-nomix")
    G, D, _ = networks(meta, initial)
    lazy = StyleGAN2Objective(G, D, r1_gamma=1.0, g_reg_interval=4, r1_interval=16)
    assert lazy.phases() == [("Gmain", "G", 1), ("Greg", "G", 4), ("Dmain", "D", 1), ("Dreg", "D", 16)]
    both = StyleGAN2Objective(G, D, r1_gamma=1.0, g_reg_interval=None, r1_interval=None)
    assert both.phases() == [("Gboth", "G", 1), ("Dboth", "D", 1)]
    assert StyleGAN2Objective(G, D, r1_gamma=0.0, pl_weight=0.0).phases() == [("Gmain", "G", 1), ("Dmain", "D", 1)]
    lazy.load_state_dict({"pl_mean": 0.25})
    assert lazy.state_dict() == {"pl_mean": 0.25} and lazy.pl_mean.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown StyleGAN2 phase"):
        lazy.accumulate("Gpl")
    with pytest.raises(ValueError, match="Dreg needs reals"):
        lazy.accumulate("Dreg")
    with pytest.raises(ValueError, match="style mixing is on"):
        lazy.run_G(SG2Draws(z=torch.zeros([2, G.z_dim])))


def test_explicit_noise_maps_equal_per_sample_generators():
    """Synthesis noise given as explicit per-layer maps {layer_idx: [N, 1, R, R]} (what the oracle
    feeds) gives the images of the per-sample generators training uses when the maps are their draws."""
    from sgan.nn.inputs import draw_noise_maps

    meta, initial, _ = load_case("lazy-nomix")
    G, _, _ = networks(meta, initial)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    ws = G.map(torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(1)))
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]  # noqa: E731
    maps = draw_noise_maps(G.synthesis.noise_inputs(), gens(), device=ws.device, n=2)
    with torch.no_grad():
        a = G.synthesis(ws, noise_mode="random", generator=gens())
        b = G.synthesis(ws, noise_mode="random", generator=maps)
        c = G.synthesis(ws, noise_mode="random", generator={k: v * 0 for k, v in maps.items()})
    assert torch.equal(a, b) and not torch.equal(a, c)


if __name__ == "__main__":   # the ratios reached, for docs/train.md
    torch.set_num_threads(1)
    for name, paired in [(c, False) for c in CASES] + [("lazy-mix", True)]:
        r = run_case(name, paired_d=paired)
        name += " (paired D call)" if paired else ""
        print(f"{name}: {len(r.failures)} failures")
        for kind, v in sorted(r.worst.items()):
            print(f"  {kind:16s} {v:.2e}")
        for f in r.failures[:30]:
            print("  FAIL", f)
