"""rosinality/style-based-gan-pytorch checkpoints (StyleGAN) -> sgan StyleGAN 1.

Two layouts: `train_step-N.model`, a dict {generator, discriminator, g_optimizer, d_optimizer,
g_running}, and the periodic `NNNNNN.model`, the bare g_running state dict. g_running (the moving
average, what rosinality's generate.py uses) becomes G_ema.

Where rosinality's math differs from the official model the config records it and sgan's networks
honour it: the first conv of a block adds its bias before the blur (`upconv_bias_before_blur`),
instance norm uses eps 1e-5 (`instance_norm_eps`), D's minibatch stddev is one scalar over the
whole batch (`mbstd_whole_batch`) and D blocks widen in their first conv (`d_widen_first`). The rest
is a change of storage: every equalized layer uses gain sqrt(2) (AdaIN affines and to_rgb too, where
sgan's gain is 1: those weights are multiplied by sqrt(2)); noise strengths are themselves
equalized (x sqrt(2/C)); the 4x4 constant layer has no bias; the mapping's 0.01 learning rate lives
in the optimizer (mapping_lrmul 1); the fused up-conv (128 px and up) is stored [in, out, 3, 3] as a
transposed-conv kernel divided by 4 on use (-> transposed, flipped, / 4). Both layers of a block add
the same noise map (`noise_shared_per_block`), so the imported constant noise maps are shared too.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from sgan.formats.common import (ImportFormatError, Imported, build, count_blocks, fit_widths, mean_w,
                                 new_discriminator, new_generator, tensor)
from sgan.nn import ModelConfig

SQRT2 = math.sqrt(2.0)
G_MARK = "generator.progression.0.conv1.input"


def is_checkpoint(data: Any) -> bool:
    return isinstance(data, Mapping) and ("g_running" in data or "generator" in data) and \
        G_MARK in (data.get("g_running") or data.get("generator") or {})


def is_bare(data: Any) -> bool:
    return isinstance(data, Mapping) and G_MARK in data


def _blocks(sd: Mapping[str, Any], prefix: str) -> int:
    return count_blocks(sd, prefix)


def convert(data: Mapping[str, Any], *, path: Path, resolution: int | None = None) -> Imported:
    bare = is_bare(data)
    g_running = data if bare else (data.get("g_running") or data["generator"])
    stored = _blocks(g_running, "generator.progression.")
    if stored < 2:
        raise ImportFormatError(f"{path}: the rosinality generator has {stored} blocks; need 2 or more (8 px).")
    top = 4 * 2 ** (stored - 1)
    notes: list[str] = []
    if resolution is None:
        m = re.search(r"train_step-(\d+)", path.name)
        if m:  # train.py names the file by the step about to start: the model is trained up to step N-1
            resolution = min(2 ** (int(m.group(1)) + 1), top)
            notes.append(f"resolution {resolution} px from the file name (train.py saves train_step-N after training "
                         f"at 4*2^(N-1) px); use --resolution to keep more or fewer of the {stored} stored blocks")
        else:
            resolution = top
            notes.append(f"rosinality files hold all {stored} blocks ({top} px) however far training went; "
                         "use --resolution R to keep only the blocks up to R px")
    if resolution < 8 or resolution > top or resolution & (resolution - 1):
        raise ImportFormatError(f"{path}: --resolution {resolution} must be a power of two from 8 to {top} "
                                "(the blocks the file holds).")
    cfg = infer_config(g_running, resolution, path)
    found = [f"g_running (the moving average) -> G_ema, blocks up to {resolution} px"]
    G_ema = build(new_generator(cfg), generator_state(g_running, cfg), what=f"{path} g_running")
    with torch.no_grad():
        G_ema.mapping.w_avg.copy_(mean_w(G_ema))
    notes.append("w_avg (for truncation) = mean of mapping(z) over 10240 z (torch seed 0), as rosinality's "
                 "generate.py estimates mean_style from 10 x 1024 random z")
    notes.append("rosinality draws fresh noise per call, one map per block shared by its two layers "
                 "(noise_shared_per_block: sgan's noise mode random does the same); the imported constant "
                 "noise maps are random (torch seed 0) and shared per block likewise")
    G = D = None
    left: list[str] = []
    if not bare:
        if "generator" in data and "g_running" in data:
            G = build(new_generator(cfg), generator_state(data["generator"], cfg), what=f"{path} generator")
            G.mapping.w_avg.copy_(G_ema.mapping.w_avg)
            found.append("generator (the training generator) -> G")
        if "discriminator" in data:
            D = build(new_discriminator(cfg), discriminator_state(data["discriminator"], cfg, path),
                      what=f"{path} discriminator")
            found.append("discriminator -> D")
        left += [f"{k} (optimizer state)" for k in ("g_optimizer", "d_optimizer") if k in data]
        left += [f"{k} (unknown key)" for k in data if k not in ("generator", "discriminator", "g_running",
                                                                  "g_optimizer", "d_optimizer")]
    if resolution < top:
        left.append(f"the {stored - cfg.resolution_log2 + 1} blocks above {resolution} px")
    left.append("per-block style mixing (sgan mixes per layer, which includes it: "
                "block i is ws 2i and 2i+1)")
    return Imported(format="rosinality-sg1", source=path, config=cfg, G_ema=G_ema, G=G, D=D, found=found,
                    left_behind=left, notes=notes,
                    defaults={"truncation_psi": 0.7, "truncation_cutoff": None, "noise_mode": "random"})


def infer_config(g: Mapping[str, Any], resolution: int, path: Path) -> ModelConfig:
    res_log2 = int(math.log2(resolution))
    n_mlp = 0
    while f"style.{2 * n_mlp + 1}.linear.weight_orig" in g:
        n_mlp += 1
    if n_mlp == 0:
        raise ImportFormatError(f"{path}: no style.1.linear.weight_orig; not a rosinality StyledGenerator.")
    code = int(g["style.1.linear.weight_orig"].shape[1])
    widths = {1: int(g[G_MARK].shape[1])}
    for i in range(1, res_log2 - 1):
        widths[i + 1] = int(g[f"generator.progression.{i}.conv2.conv.weight_orig"].shape[0])
    base, fmax, fmin = fit_widths(widths, what=str(path))
    return ModelConfig(arch="stylegan1", resolution=resolution, z_dim=code, w_dim=code, mapping_layers=n_mlp,
                       mapping_fmaps=code, mapping_lrmul=1.0, fmap_base=base, fmap_max=fmax, fmap_min=fmin,
                       instance_norm_eps=1e-5, upconv_bias_before_blur=True, mbstd_whole_batch=True,
                       d_widen_first=True, noise_shared_per_block=True)


def generator_state(g: Mapping[str, Any], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for k in range(cfg.mapping_layers):
        sd[f"mapping.layers.{k}.weight"] = tensor(g[f"style.{2 * k + 1}.linear.weight_orig"])
        sd[f"mapping.layers.{k}.bias"] = tensor(g[f"style.{2 * k + 1}.linear.bias"])
    sd["mapping.w_avg"] = torch.zeros(cfg.w_dim)
    noise = torch.Generator().manual_seed(0)
    for i in range(cfg.resolution_log2 - 1):
        r, src, dst = 4 * 2 ** i, f"generator.progression.{i}", f"synthesis.blocks.{i}"
        c = cfg.nf(i + 1)
        if i == 0:
            sd[f"{dst}.const"] = tensor(g[f"{src}.conv1.input"])
            sd[f"{dst}.epi0.bias"] = torch.zeros(c)                       # no bias on the constant layer
        elif f"{src}.conv1.0.weight" in g:                                # fused up-conv, [in, out, 3, 3]
            sd[f"{dst}.conv0.weight"] = tensor(g[f"{src}.conv1.0.weight"]).transpose(0, 1).flip([2, 3]) / 4
            sd[f"{dst}.epi0.bias"] = tensor(g[f"{src}.conv1.0.bias"])
        else:
            sd[f"{dst}.conv0.weight"] = tensor(g[f"{src}.conv1.1.conv.weight_orig"])
            sd[f"{dst}.epi0.bias"] = tensor(g[f"{src}.conv1.1.conv.bias"])
        sd[f"{dst}.conv1.weight"] = tensor(g[f"{src}.conv2.conv.weight_orig"])
        sd[f"{dst}.epi1.bias"] = tensor(g[f"{src}.conv2.conv.bias"])
        shared = torch.randn([1, 1, r, r], generator=noise)
        for j in (0, 1):
            e = f"{dst}.epi{j}"
            sd[f"{e}.noise_strength"] = tensor(g[f"{src}.noise{j + 1}.weight_orig"]).reshape(c) * math.sqrt(2.0 / c)
            sd[f"{e}.affine.weight"] = tensor(g[f"{src}.adain{j + 1}.style.linear.weight_orig"]) * SQRT2
            sd[f"{e}.affine.bias"] = tensor(g[f"{src}.adain{j + 1}.style.linear.bias"])
            sd[f"{e}.noise_const"] = shared.clone()
        sd[f"synthesis.torgbs.{i}.conv.weight"] = tensor(g[f"generator.to_rgb.{i}.conv.weight_orig"]) * SQRT2
        sd[f"synthesis.torgbs.{i}.conv.bias"] = tensor(g[f"generator.to_rgb.{i}.conv.bias"])
    return sd


def discriminator_state(d: Mapping[str, Any], cfg: ModelConfig, path: Path) -> dict[str, torch.Tensor]:
    n = _blocks(d, "progression.")
    last = n - 1                                                          # progression[last] works at 4x4
    if n < cfg.resolution_log2 - 1:
        raise ImportFormatError(f"{path}: the discriminator has {n} blocks, too few for {cfg.resolution} px.")
    sd: dict[str, torch.Tensor] = {}
    for i in range(cfg.resolution_log2 - 1):
        j = last - i
        sd[f"fromrgbs.{i}.conv.weight"] = tensor(d[f"from_rgb.{j}.0.conv.weight_orig"])
        sd[f"fromrgbs.{i}.conv.bias"] = tensor(d[f"from_rgb.{j}.0.conv.bias"])
    for i in range(cfg.resolution_log2 - 2):
        j, dst = last - 1 - i, f"blocks.{i}"
        sd[f"{dst}.conv0.weight"] = tensor(d[f"progression.{j}.conv1.0.conv.weight_orig"])
        sd[f"{dst}.conv0.bias"] = tensor(d[f"progression.{j}.conv1.0.conv.bias"])
        if f"progression.{j}.conv2.1.weight" in d:                        # fused conv + downsample, as is
            sd[f"{dst}.conv1.weight"] = tensor(d[f"progression.{j}.conv2.1.weight"])
            sd[f"{dst}.conv1.bias"] = tensor(d[f"progression.{j}.conv2.1.bias"])
        else:
            sd[f"{dst}.conv1.weight"] = tensor(d[f"progression.{j}.conv2.1.conv.weight_orig"])
            sd[f"{dst}.conv1.bias"] = tensor(d[f"progression.{j}.conv2.1.conv.bias"])
    sd["epilogue.conv.weight"] = tensor(d[f"progression.{last}.conv1.0.conv.weight_orig"])
    sd["epilogue.conv.bias"] = tensor(d[f"progression.{last}.conv1.0.conv.bias"])
    fc = tensor(d[f"progression.{last}.conv2.0.conv.weight_orig"])
    sd["epilogue.fc.weight"] = fc.reshape(fc.shape[0], -1)
    sd["epilogue.fc.bias"] = tensor(d[f"progression.{last}.conv2.0.conv.bias"])
    sd["epilogue.out.weight"] = tensor(d["linear.linear.weight_orig"]) * SQRT2
    sd["epilogue.out.bias"] = tensor(d["linear.linear.bias"])
    return sd
