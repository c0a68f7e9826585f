"""NVIDIA's StyleGAN2 TensorFlow pickles (NVlabs/stylegan2, `stylegan2-*-config-{e,f}.pkl`) -> sgan StyleGAN2.

The same container as StyleGAN 1 (a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` states,
version 4): G/Gs are `G_main` with `mapping` and `synthesis` components, D is `D_stylegan2`. The
conversion is the one NVIDIA's stylegan2-ada-pytorch `legacy.py` performs, into the same module
layout sgan's StyleGAN2 uses: HWIO conv weights -> OIHW, with the up-conv (`Conv0_up`) kernels also
flipped (ADA runs them as a true transposed convolution); [in, out] dense and modulation weights
transposed; modulation bias + 1 (TF adds the 1 in code); `noise{i}` -> the noise_const of the conv
that reads w[i]; `4x4/Const/const[0]`. channel_base = 2 * fmap_base. D's minibatch-stddev group is
TF's (4 unless the pickle says otherwise), not legacy.py's whole batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sgan.formats.common import (ImportFormatError, Imported, build, fit_channels, new_discriminator, new_generator,
                                 tensor)
from sgan.formats.safe_pickle import TFNetworkState
from sgan.formats.tf_stylegan import label_sizes, static_kwargs, variables
from sgan.nn import ModelConfig

_REQUIRED = {"fmap_decay": 1.0, "fmap_min": 1, "nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu",
             "normalize_latents": True, "resample_kernel": [1, 3, 3, 1], "dtype": "float32", "use_noise": True,
             "randomize_noise": True, "fused_modconv": True}


def _check(kw: dict[str, Any], where: str) -> None:
    for key, want in _REQUIRED.items():
        if key in kw and kw[key] != want and not (isinstance(want, list) and list(kw[key]) == want) \
                and key not in ("randomize_noise", "fused_modconv"):
            raise ImportFormatError(f"{where}: static kwarg {key}={kw[key]!r}; sgan reproduces only {key}={want!r}.")
    if int(kw.get("label_size", 0)) > 0:
        raise ImportFormatError(f"{where}: a conditional TensorFlow StyleGAN2 (label_size {kw['label_size']}) "
                                "normalises z and the label together, unlike StyleGAN2-ADA; sgan does not support it.")


def _conv(w: Any, flip: bool = False) -> torch.Tensor:
    t = tensor(w).permute(3, 2, 0, 1)                    # [kh, kw, in, out] -> [out, in, kh, kw]
    return (t.flip([2, 3]) if flip else t).contiguous()


def _dense(w: Any) -> torch.Tensor:
    return tensor(w).t().contiguous()


def convert(data: tuple, *, path: Path) -> Imported:
    G_tf, D_tf, Gs_tf = data
    if Gs_tf.get("build_func_name") != "G_main":
        raise ImportFormatError(f"{path}: this TensorFlow pickle is not a StyleGAN2 G_main network "
                                f"(build function {Gs_tf.get('build_func_name')!r}).")
    syn_net = (Gs_tf.get("components") or {}).get("synthesis")
    if not isinstance(syn_net, TFNetworkState) or syn_net.get("build_func_name") not in (None, "G_synthesis_stylegan2"):
        raise ImportFormatError(f"{path}: the synthesis network is built by {syn_net.get('build_func_name')!r}; sgan "
                                "imports the NVlabs/stylegan2 configs E and F (G_synthesis_stylegan2).")
    kw = static_kwargs(Gs_tf)
    _check({**kw, "label_size": max(label_sizes(Gs_tf))}, str(path))
    v = variables(Gs_tf)
    cfg = _config(v, kw, D_tf, path)
    G_ema = build(new_generator(cfg), generator_state(v, cfg), what=f"{path} Gs")
    found = ["Gs (the moving average) -> G_ema"]
    G = D = None
    if isinstance(G_tf, TFNetworkState) and G_tf.get("build_func_name") == "G_main":
        G = build(new_generator(cfg), generator_state(variables(G_tf), cfg), what=f"{path} G")
        found.append("G (the training generator)")
    if isinstance(D_tf, TFNetworkState) and D_tf.get("build_func_name") == "D_stylegan2":
        D = build(new_discriminator(cfg), discriminator_state(variables(D_tf), cfg), what=f"{path} D")
        found.append("D")
    notes = ["NVIDIA's run_generator.py: z = RandomState(seed).randn(1, z_dim), then every noise map drawn from the "
             "same RandomState, truncation psi 0.5 on all layers; sgan generate uses these by default for this model "
             "(--trunc 0.5, all layers, --noise-mode numpy), so it gives run_generator.py's images"]
    return Imported(format="tf-stylegan2", source=path, config=cfg, G_ema=G_ema, G=G, D=D, found=found,
                    left_behind=["lod (unused by StyleGAN2)"], notes=notes,
                    defaults={"truncation_psi": 0.5, "truncation_cutoff": None, "noise_mode": "numpy"})


def _config(v: dict[str, Any], kw: dict[str, Any], D_tf: Any, path: Path) -> ModelConfig:
    if "synthesis/4x4/Const/const" not in v or "mapping/Dense0/weight" not in v:
        raise ImportFormatError(f"{path}: no synthesis/4x4/Const/const or mapping/Dense0/weight; not a StyleGAN2 G.")
    res_log2 = 2
    while f"synthesis/{2 ** (res_log2 + 1)}x{2 ** (res_log2 + 1)}/Conv1/weight" in v:
        res_log2 += 1
    widths = {4: int(v["synthesis/4x4/Const/const"].shape[1])}
    for r in range(3, res_log2 + 1):
        widths[2 ** r] = int(v[f"synthesis/{2 ** r}x{2 ** r}/Conv1/weight"].shape[3])
    base, cmax = fit_channels(widths, what=str(path))
    layers = 0
    while f"mapping/Dense{layers}/weight" in v:
        layers += 1
    w_dim = int(v[f"mapping/Dense{layers - 1}/weight"].shape[1])
    fmaps = int(v["mapping/Dense0/weight"].shape[1]) if layers > 1 else w_dim
    arch = str(kw.get("architecture", "skip"))
    d = dict(mbstd_group_size=4, mbstd_num_features=1)
    d_arch = "resnet"
    if isinstance(D_tf, TFNetworkState):
        dkw = static_kwargs(D_tf)
        _check(dkw, f"{path} D")
        d = dict(mbstd_group_size=int(dkw.get("mbstd_group_size", 4)),
                 mbstd_num_features=int(dkw.get("mbstd_num_features", 1)))
        d_arch = str(dkw.get("architecture", "resnet"))
    if (arch, d_arch) != ("skip", "resnet"):
        raise ImportFormatError(f"{path}: G architecture {arch!r} with D {d_arch!r}; sgan imports the published "
                                "StyleGAN2 configs E and F (skip G, resnet D).")
    return ModelConfig(arch="stylegan2", resolution=2 ** res_log2, num_channels=int(kw.get("num_channels", 3)),
                       z_dim=int(v["mapping/Dense0/weight"].shape[0]), w_dim=w_dim, mapping_layers=layers,
                       mapping_fmaps=fmaps, mapping_lrmul=float(kw.get("mapping_lrmul", 0.01)),
                       w_avg_beta=float(kw.get("dlatent_avg_beta", 0.995)), const_init="randn",
                       channel_base=base, channel_max=cmax, g_architecture="skip", d_architecture="resnet", **d)


def generator_state(v: dict[str, Any], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for i in range(cfg.mapping_layers):
        sd[f"mapping.fc{i}.weight"] = _dense(v[f"mapping/Dense{i}/weight"])
        sd[f"mapping.fc{i}.bias"] = tensor(v[f"mapping/Dense{i}/bias"])
    sd["mapping.w_avg"] = tensor(v["dlatent_avg"])
    sd["synthesis.b4.const"] = tensor(v["synthesis/4x4/Const/const"])[0]

    def layer(dst: str, scope: str, noise: int | None, *, up: bool = False) -> None:
        sd[f"{dst}.weight"] = _conv(v[f"synthesis/{scope}/weight"], flip=up)
        sd[f"{dst}.affine.weight"] = _dense(v[f"synthesis/{scope}/mod_weight"])
        sd[f"{dst}.affine.bias"] = tensor(v[f"synthesis/{scope}/mod_bias"]) + 1.0
        sd[f"{dst}.bias"] = tensor(v[f"synthesis/{scope}/bias"])
        if noise is not None:
            sd[f"{dst}.noise_strength"] = tensor(v[f"synthesis/{scope}/noise_strength"]).reshape([])
            nmap = tensor(v[f"synthesis/noise{noise}"])
            sd[f"{dst}.noise_const"] = nmap.reshape(1, 1, *nmap.shape[-2:])

    for r_log2 in range(2, cfg.resolution_log2 + 1):
        r = 2 ** r_log2
        pre = f"synthesis.b{r}"
        if r == 4:
            layer(f"{pre}.conv1", "4x4/Conv", 0)
        else:
            layer(f"{pre}.conv0", f"{r}x{r}/Conv0_up", 2 * r_log2 - 5, up=True)
            layer(f"{pre}.conv1", f"{r}x{r}/Conv1", 2 * r_log2 - 4)
        layer(f"{pre}.torgb", f"{r}x{r}/ToRGB", None)                  # skip G: a ToRGB at every resolution
    return sd


def discriminator_state(v: dict[str, Any], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}

    def copy(dst: str, scope: str, *, dense: bool = False, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = _dense(v[f"{scope}/weight"]) if dense else _conv(v[f"{scope}/weight"])
        if bias:
            sd[f"{dst}.bias"] = tensor(v[f"{scope}/bias"])

    copy(f"b{cfg.resolution}.fromrgb", f"{cfg.resolution}x{cfg.resolution}/FromRGB")   # resnet D: at the top only
    for r_log2 in range(cfg.resolution_log2, 2, -1):
        r = 2 ** r_log2
        copy(f"b{r}.conv0", f"{r}x{r}/Conv0")
        copy(f"b{r}.conv1", f"{r}x{r}/Conv1_down")                    # not flipped (a strided conv, as stored)
        copy(f"b{r}.skip", f"{r}x{r}/Skip", bias=False)
    copy("b4.conv", "4x4/Conv")
    copy("b4.fc", "4x4/Dense0", dense=True)
    copy("b4.out", "Output", dense=True)
    return sd
