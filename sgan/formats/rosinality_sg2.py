"""rosinality/stylegan2-pytorch checkpoints (StyleGAN2) -> sgan StyleGAN2.

Layouts: train.py's `NNNNNN.pt` {g, d, g_ema, g_optim, d_optim, args[, ada_aug_p]}, a bare
g_ema state dict, and convert_weight.py's output {g_ema, latent_avg[, g, d]} (the usual
`stylegan2-ffhq-config-f.pt`). g_ema becomes G_ema. The math is StyleGAN2-ADA's (same mapping with
learning-rate multiplier 0.01 at run time, modulation bias used directly, same up-conv kernel
orientation, same [1,3,3,1] resampling, ToRGB weight gain folded into the styles), so this is a
renaming: `style.{i}` -> mapping.fc{i-1}; `conv1`, `convs.{2k}`, `convs.{2k+1}` -> b4.conv1,
b{8*2^k}.conv0/conv1 (weight[0], modulation -> affine, noise.weight -> noise_strength,
activate.bias -> bias); `to_rgb1`, `to_rgbs.{k}` -> torgb; `noises.noise_{i}` -> the noise_const
of conv layer i; D `convs.0` -> fromrgb, ResBlocks `convs.{i}` -> b{R/2^(i-1)}, `final_*` -> b4.
Two differences do not change the images: rosinality scales the conv weight by 1/sqrt(fan_in) before
demodulating (only the 1e-8 inside the rsqrt notices), and it never clamps (conv_clamp None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from sgan.formats.common import (ImportFormatError, Imported, build, check_fir, count_blocks, fit_channels,
                                 mean_w, new_discriminator, new_generator, tensor)
from sgan.formats.safe_pickle import ArgsNamespace
from sgan.nn import ModelConfig


def _count(sd: Mapping[str, Any], prefix: str) -> int:
    return count_blocks(sd, prefix)


def convert(data: Mapping[str, Any], *, path: Path) -> Imported:
    bare = "input.input" in data
    g_ema = data if bare else data.get("g_ema")
    if not isinstance(g_ema, Mapping) or "input.input" not in g_ema:
        raise ImportFormatError(f"{path}: no g_ema generator in this rosinality file.")
    args = data.get("args") if not bare else None
    args = args.as_dict() if isinstance(args, ArgsNamespace) else {}
    if args.get("arch", "stylegan2") != "stylegan2":
        raise ImportFormatError(f"{path}: a rosinality {args['arch']} model; sgan imports the stylegan2 architecture.")
    cfg = infer_config(g_ema, path)
    G_ema = build(new_generator(cfg), generator_state(g_ema, cfg, path), what=f"{path} g_ema")
    found = ["g_ema (the moving average) -> G_ema"]
    notes = []
    latent_avg = None if bare else data.get("latent_avg")
    with torch.no_grad():
        if latent_avg is not None:
            G_ema.mapping.w_avg.copy_(tensor(latent_avg).reshape(-1))
            found.append("latent_avg -> w_avg")
        else:
            G_ema.mapping.w_avg.copy_(mean_w(G_ema))
            notes.append("w_avg (for truncation) = mean of mapping(z) over 10240 z (torch seed 0); rosinality's "
                         "generate.py estimates mean_latent from 4096 random z on every run")
    G = D = None
    left: list[str] = []
    if not bare:
        if isinstance(data.get("g"), Mapping):
            G = build(new_generator(cfg), generator_state(data["g"], cfg, path), what=f"{path} g")
            G.mapping.w_avg.copy_(G_ema.mapping.w_avg)
            found.append("g (the training generator, with its own noise maps) -> G")
        if isinstance(data.get("d"), Mapping):
            D = build(new_discriminator(cfg), discriminator_state(data["d"], cfg, path), what=f"{path} d")
            found.append("d -> D")
        known = {"g", "d", "g_ema", "latent_avg"}
        for k in data:
            if k in ("g_optim", "d_optim"):
                left.append(f"{k} (optimizer state)")
            elif k == "args":
                left.append("args (train.py's options)")
            elif k == "ada_aug_p":
                left.append(f"ada_aug_p = {data[k]} (the augmentation probability)")
            elif k not in known:
                left.append(f"{k} (unknown key)")
    notes.append("rosinality's generate.py draws z with torch.randn and fresh noise per call; no seed convention "
                 "to match (sgan uses its own: z from numpy RandomState(seed))")
    return Imported(format="rosinality-sg2", source=path, config=cfg, G_ema=G_ema, G=G, D=D, found=found,
                    left_behind=left, notes=notes,
                    defaults={"truncation_psi": 1.0, "truncation_cutoff": None, "noise_mode": "random"})


def infer_config(g: Mapping[str, Any], path: Path) -> ModelConfig:
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in g:
        n_mlp += 1
    if n_mlp == 0:
        raise ImportFormatError(f"{path}: no style.1.weight; not a rosinality stylegan2 Generator.")
    style_dim = int(g["style.1.weight"].shape[1])
    res_log2 = 2 + _count(g, "to_rgbs.")
    widths = {4: int(g["input.input"].shape[1])}
    for k in range(res_log2 - 2):
        widths[8 * 2 ** k] = int(g[f"convs.{2 * k + 1}.conv.weight"].shape[1])
    base, cmax = fit_channels(widths, what=str(path))
    return ModelConfig(arch="stylegan2", resolution=2 ** res_log2, z_dim=style_dim, w_dim=style_dim,
                       mapping_layers=n_mlp, mapping_fmaps=style_dim, mapping_lrmul=0.01, const_init="randn",
                       channel_base=base, channel_max=cmax, g_architecture="skip", d_architecture="resnet",
                       mbstd_group_size=4, mbstd_num_features=1, conv_clamp=None)


def generator_state(g: Mapping[str, Any], cfg: ModelConfig, path: Path) -> dict[str, torch.Tensor]:
    for k, v in g.items():
        if k.endswith("kernel"):
            check_fir(v, what=f"{path} {k}")
    sd: dict[str, torch.Tensor] = {}
    for i in range(cfg.mapping_layers):
        sd[f"mapping.fc{i}.weight"] = tensor(g[f"style.{i + 1}.weight"])
        sd[f"mapping.fc{i}.bias"] = tensor(g[f"style.{i + 1}.bias"])
    sd["mapping.w_avg"] = torch.zeros(cfg.w_dim)
    sd["synthesis.b4.const"] = tensor(g["input.input"])[0]

    def conv(dst: str, src: str, noise: int) -> None:
        sd[f"{dst}.weight"] = tensor(g[f"{src}.conv.weight"])[0]
        sd[f"{dst}.affine.weight"] = tensor(g[f"{src}.conv.modulation.weight"])
        sd[f"{dst}.affine.bias"] = tensor(g[f"{src}.conv.modulation.bias"])
        sd[f"{dst}.noise_strength"] = tensor(g[f"{src}.noise.weight"]).reshape([])
        sd[f"{dst}.bias"] = tensor(g[f"{src}.activate.bias"])
        sd[f"{dst}.noise_const"] = tensor(g[f"noises.noise_{noise}"])

    def torgb(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = tensor(g[f"{src}.conv.weight"])[0]
        sd[f"{dst}.affine.weight"] = tensor(g[f"{src}.conv.modulation.weight"])
        sd[f"{dst}.affine.bias"] = tensor(g[f"{src}.conv.modulation.bias"])
        sd[f"{dst}.bias"] = tensor(g[f"{src}.bias"]).reshape(-1)

    conv("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for k in range(cfg.resolution_log2 - 2):
        r = 8 * 2 ** k
        conv(f"synthesis.b{r}.conv0", f"convs.{2 * k}", 2 * k + 1)
        conv(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        torgb(f"synthesis.b{r}.torgb", f"to_rgbs.{k}")
    return sd


def discriminator_state(d: Mapping[str, Any], cfg: ModelConfig, path: Path) -> dict[str, torch.Tensor]:
    for k, v in d.items():
        if k.endswith("kernel"):
            check_fir(v, what=f"{path} d.{k}")
    sd: dict[str, torch.Tensor] = {}
    R = cfg.resolution
    sd[f"b{R}.fromrgb.weight"] = tensor(d["convs.0.0.weight"])
    sd[f"b{R}.fromrgb.bias"] = tensor(d["convs.0.1.bias"])
    for i in range(1, cfg.resolution_log2 - 1):
        r = R // 2 ** (i - 1)
        sd[f"b{r}.conv0.weight"] = tensor(d[f"convs.{i}.conv1.0.weight"])
        sd[f"b{r}.conv0.bias"] = tensor(d[f"convs.{i}.conv1.1.bias"])
        sd[f"b{r}.conv1.weight"] = tensor(d[f"convs.{i}.conv2.1.weight"])
        sd[f"b{r}.conv1.bias"] = tensor(d[f"convs.{i}.conv2.2.bias"])
        sd[f"b{r}.skip.weight"] = tensor(d[f"convs.{i}.skip.1.weight"])
    sd["b4.conv.weight"] = tensor(d["final_conv.0.weight"])
    sd["b4.conv.bias"] = tensor(d["final_conv.1.bias"])
    for j, name in enumerate(("fc", "out")):
        sd[f"b4.{name}.weight"] = tensor(d[f"final_linear.{j}.weight"])
        sd[f"b4.{name}.bias"] = tensor(d[f"final_linear.{j}.bias"])
    return sd
