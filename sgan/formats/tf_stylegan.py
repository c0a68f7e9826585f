"""NVIDIA's StyleGAN TensorFlow pickles (NVlabs/stylegan, `karras2019stylegan-*.pkl`) -> sgan StyleGAN 1.

The file is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` states (version 3): G and Gs are
`G_style` with components `mapping` (G_mapping) and `synthesis` (G_synthesis), D is `D_basic`.
Gs (the moving average) becomes G_ema. Layouts: conv weights [kh, kw, in, out] -> [out, in, kh, kw];
dense [in, out] -> [out, in]; StyleMod bias +1 on its scale half (sgan applies the scale directly);
the fused up-conv (`fused_scale`, at 128 px and up by default) is a transposed convolution of the
stored kernel, which equals nearest upsampling then correlation with the kernel flipped, so those
kernels are flipped. Gains, learning-rate multipliers and the noise and bias order are the same as
sgan's (the official model), so nothing else is rescaled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sgan.formats.common import (ImportFormatError, Imported, build, fit_widths, log2_exact, new_discriminator,
                                 new_generator, tensor)
from sgan.formats.safe_pickle import TFNetworkState
from sgan.nn import ModelConfig

# static kwargs that change the math, with the only value sgan reproduces (the official defaults)
_REQUIRED = {"fmap_decay": 1.0, "use_wscale": True, "use_pixel_norm": False, "use_instance_norm": True,
             "use_noise": True, "use_styles": True, "const_input_layer": True, "nonlinearity": "lrelu",
             "mapping_nonlinearity": "lrelu", "normalize_latents": True, "blur_filter": [1, 2, 1],
             "dtype": "float32", "num_channels": 3}


def is_tf_tuple(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkState) for n in data)


def variables(net: TFNetworkState, prefix: str = "") -> dict[str, Any]:
    """Every variable of a network and its components, as 'component/name' (legacy.py's naming)."""
    out = {prefix + name: value for name, value in net.get("variables", [])}
    for key, comp in (net.get("components") or {}).items():
        if isinstance(comp, TFNetworkState):
            out.update(variables(comp, f"{prefix}{key}/"))
    return out


def static_kwargs(net: TFNetworkState) -> dict[str, Any]:
    kw = dict(net.get("static_kwargs") or {})
    for comp in (net.get("components") or {}).values():
        if isinstance(comp, TFNetworkState):
            kw.update(comp.get("static_kwargs") or {})
    return kw


def label_sizes(net: TFNetworkState) -> list[int]:
    """label_size of the network and of each component (any of them says the model is conditional)."""
    out = [int((net.get("static_kwargs") or {}).get("label_size", 0) or 0)]
    for comp in (net.get("components") or {}).values():
        if isinstance(comp, TFNetworkState):
            out += label_sizes(comp)
    return out


def check_kwargs(kw: dict[str, Any], where: str) -> None:
    for key, want in _REQUIRED.items():
        if key in kw and kw[key] != want and not (isinstance(want, list) and list(kw[key]) == want):
            raise ImportFormatError(f"{where}: static kwarg {key}={kw[key]!r}; sgan reproduces only {key}={want!r}.")


def convert(data: tuple, *, path: Path) -> Imported:
    G_tf, D_tf, Gs_tf = data
    if Gs_tf.get("build_func_name") != "G_style" or int(Gs_tf.get("version", 0)) > 3:
        raise ImportFormatError(f"{path}: this TensorFlow pickle is not a StyleGAN 1 G_style network "
                                f"(build function {Gs_tf.get('build_func_name')!r}, version {Gs_tf.get('version')}).")
    kw = static_kwargs(Gs_tf)
    check_kwargs(kw, str(path))
    gs = variables(Gs_tf)
    labels = max(label_sizes(Gs_tf))
    if labels > 0 or any("LabelConcat" in k for k in gs):
        raise ImportFormatError(f"{path}: a conditional TensorFlow StyleGAN (label_size {labels}); "
                                "sgan's StyleGAN 1 networks take no labels yet.")
    cfg = infer_config(gs, kw, path)
    found = ["Gs (the moving average) -> G_ema"]
    G_ema = build(new_generator(cfg), generator_state(gs, cfg, kw), what=f"{path} Gs")
    G = D = None
    if isinstance(G_tf, TFNetworkState) and G_tf.get("build_func_name") == "G_style":
        G = build(new_generator(cfg), generator_state(variables(G_tf), cfg, kw), what=f"{path} G")
        found.append("G (the training generator)")
    if isinstance(D_tf, TFNetworkState) and D_tf.get("build_func_name") == "D_basic":
        dkw = static_kwargs(D_tf)
        check_kwargs(dkw, f"{path} D")
        dcfg = ModelConfig(**{**cfg.to_dict(), "mbstd_group_size": int(dkw.get("mbstd_group_size", 4)),
                              "mbstd_num_features": int(dkw.get("mbstd_num_features", 1))})
        if int(dkw.get("label_size", 0)) > 0:
            raise ImportFormatError(f"{path}: the discriminator is conditional; sgan's StyleGAN 1 takes no labels yet.")
        cfg = dcfg
        D = build(new_discriminator(cfg), discriminator_state(variables(D_tf), cfg, path), what=f"{path} D")
        found.append("D")
    left = ["lod (the progressive-growing level: the imported model runs at full resolution)"]
    notes = ["NVIDIA's Gs.run defaults: truncation psi 0.7 on the first 8 layers (sgan generate's defaults too), "
             "fresh random noise unless randomize_noise=False, which no tool can reproduce; sgan generate uses the "
             "pickled noise maps (noise mode const, what randomize_noise=False uses)"]
    return Imported(format="tf-stylegan", source=path, config=cfg, G_ema=G_ema, G=G, D=D, found=found,
                    left_behind=left, notes=notes, defaults={"truncation_psi": 0.7, "truncation_cutoff": 8,
                                                             "noise_mode": "const"})


def infer_config(v: dict[str, Any], kw: dict[str, Any], path: Path) -> ModelConfig:
    const = v.get("synthesis/4x4/Const/const")
    if const is None or "mapping/Dense0/weight" not in v:
        raise ImportFormatError(f"{path}: no synthesis/4x4/Const/const or mapping/Dense0/weight; not a StyleGAN 1 G.")
    res_log2 = 2
    while f"synthesis/{2 ** (res_log2 + 1)}x{2 ** (res_log2 + 1)}/Conv1/weight" in v:
        res_log2 += 1
    if "resolution" in kw and int(kw["resolution"]) != 2 ** res_log2:
        raise ImportFormatError(f"{path}: static kwargs say resolution {kw['resolution']} but the variables reach "
                                f"{2 ** res_log2} px.")
    widths = {1: int(const.shape[1])}
    for r in range(3, res_log2 + 1):
        widths[r - 1] = int(v[f"synthesis/{2 ** r}x{2 ** r}/Conv1/weight"].shape[3])
    fmap_base, fmap_max, fmap_min = fit_widths(widths, what=str(path))
    layers = 0
    while f"mapping/Dense{layers}/weight" in v:
        layers += 1
    z_dim = int(v["mapping/Dense0/weight"].shape[0])
    w_dim = int(v[f"mapping/Dense{layers - 1}/weight"].shape[1])
    fmaps = int(v["mapping/Dense0/weight"].shape[1]) if layers > 1 else int(kw.get("mapping_fmaps", 512))
    return ModelConfig(arch="stylegan1", resolution=2 ** res_log2, num_channels=int(kw.get("num_channels", 3)),
                       z_dim=z_dim, w_dim=w_dim, mapping_layers=layers, mapping_fmaps=fmaps,
                       mapping_lrmul=float(kw.get("mapping_lrmul", 0.01)), fmap_base=fmap_base, fmap_max=fmap_max,
                       fmap_min=fmap_min, w_avg_beta=float(kw.get("dlatent_avg_beta", 0.995)))


def _conv(w: Any) -> torch.Tensor:
    return tensor(w).permute(3, 2, 0, 1).contiguous()     # [kh, kw, in, out] -> [out, in, kh, kw]


def _dense(w: Any) -> torch.Tensor:
    return tensor(w).t().contiguous()                     # [in, out] -> [out, in]


def generator_state(v: dict[str, Any], cfg: ModelConfig, kw: dict[str, Any]) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for i in range(cfg.mapping_layers):
        sd[f"mapping.layers.{i}.weight"] = _dense(v[f"mapping/Dense{i}/weight"])
        sd[f"mapping.layers.{i}.bias"] = tensor(v[f"mapping/Dense{i}/bias"])
    sd["mapping.w_avg"] = tensor(v["dlatent_avg"])
    fused_scale = kw.get("fused_scale", "auto")
    for k, r_log2 in enumerate(range(2, cfg.resolution_log2 + 1)):
        r = 2 ** r_log2
        pre = f"synthesis.blocks.{k}"
        if r_log2 == 2:
            sd[f"{pre}.const"] = tensor(v["synthesis/4x4/Const/const"])
            scopes = ["4x4/Const", "4x4/Conv"]
            sd[f"{pre}.conv1.weight"] = _conv(v["synthesis/4x4/Conv/weight"])
        else:
            scopes = [f"{r}x{r}/Conv0_up", f"{r}x{r}/Conv1"]
            w0 = _conv(v[f"synthesis/{scopes[0]}/weight"])
            fused = fused_scale is True or (fused_scale == "auto" and r >= 128)
            sd[f"{pre}.conv0.weight"] = w0.flip([2, 3]) if fused else w0
            sd[f"{pre}.conv1.weight"] = _conv(v[f"synthesis/{scopes[1]}/weight"])
        for j, scope in enumerate(scopes):
            e = f"{pre}.epi{j}"
            layer = 2 * k + j
            sd[f"{e}.noise_strength"] = tensor(v[f"synthesis/{scope}/Noise/weight"])
            sd[f"{e}.bias"] = tensor(v[f"synthesis/{scope}/bias"])
            sd[f"{e}.noise_const"] = tensor(v[f"synthesis/noise{layer}"]).reshape(1, 1, r, r)
            sd[f"{e}.affine.weight"] = _dense(v[f"synthesis/{scope}/StyleMod/weight"])
            b = tensor(v[f"synthesis/{scope}/StyleMod/bias"])
            c = b.shape[0] // 2
            sd[f"{e}.affine.bias"] = torch.cat([b[:c] + 1.0, b[c:]])   # TF: x * (1 + s); sgan: x * s
        lod = cfg.resolution_log2 - r_log2
        sd[f"synthesis.torgbs.{k}.conv.weight"] = _conv(v[f"synthesis/ToRGB_lod{lod}/weight"])
        sd[f"synthesis.torgbs.{k}.conv.bias"] = tensor(v[f"synthesis/ToRGB_lod{lod}/bias"])
    return sd


def discriminator_state(v: dict[str, Any], cfg: ModelConfig, path: Path) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    try:
        for i, r_log2 in enumerate(range(2, cfg.resolution_log2 + 1)):
            lod = cfg.resolution_log2 - r_log2
            sd[f"fromrgbs.{i}.conv.weight"] = _conv(v[f"FromRGB_lod{lod}/weight"])
            sd[f"fromrgbs.{i}.conv.bias"] = tensor(v[f"FromRGB_lod{lod}/bias"])
        for r_log2 in range(3, cfg.resolution_log2 + 1):
            r = 2 ** r_log2
            for name, scope in (("conv0", "Conv0"), ("conv1", "Conv1_down")):
                sd[f"blocks.{r_log2 - 3}.{name}.weight"] = _conv(v[f"{r}x{r}/{scope}/weight"])
                sd[f"blocks.{r_log2 - 3}.{name}.bias"] = tensor(v[f"{r}x{r}/{scope}/bias"])
        sd["epilogue.conv.weight"] = _conv(v["4x4/Conv/weight"])
        sd["epilogue.conv.bias"] = tensor(v["4x4/Conv/bias"])
        for name, scope in (("fc", "4x4/Dense0"), ("out", "4x4/Dense1")):
            sd[f"epilogue.{name}.weight"] = _dense(v[f"{scope}/weight"])
            sd[f"epilogue.{name}.bias"] = tensor(v[f"{scope}/bias"])
    except KeyError as err:
        raise ImportFormatError(f"{path}: the discriminator has no variable {err}; not a StyleGAN 1 D_basic.") from None
    log2_exact(cfg.resolution, what=str(path))
    return sd
