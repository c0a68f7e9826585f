"""NVIDIA StyleGAN2-ADA PyTorch network pickles (`network-snapshot-*.pkl`) -> sgan StyleGAN2.

The snapshot is a dict {training_set_kwargs, G, D, G_ema, augment_pipe}; each network is a
persistent object whose embedded source is never run: the restricted unpickler hands back its
meta, whose `state` is the module's __dict__ (parameters, buffers, submodules, init kwargs).
sgan's StyleGAN2 networks use the same module names, so the state dict carries over as it is,
except: `resample_filter` buffers (checked to be [1,3,3,1], then dropped: sgan builds them) and
`noise_const` [r, r] -> [1, 1, r, r]. The config comes from the stored init kwargs. Everything runs
in float32, as the pickle's own code with force_fp32=True (num_fp16_res is ignored); conv_clamp is
kept, since the official clamp applies in float32 too.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Mapping

import torch

from sgan.formats.common import (ImportFormatError, Imported, build, check_fir, new_discriminator, new_generator,
                                 tensor)
from sgan.formats.safe_pickle import PersistentObject
from sgan.nn import ModelConfig

_G_SYN_OK = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture", "resample_filter",
             "use_noise", "fp16_channels_last", "fused_modconv_default"}
_MAP_OK = {"num_layers", "layer_features", "embed_features", "lr_multiplier", "w_avg_beta", "activation"}


def state_dict_of(meta: Mapping[str, Any], prefix: str = "", out: dict | None = None) -> dict[str, Any]:
    """A persistent object's meta tree -> its state_dict (parameters and persistent buffers)."""
    out = collections.OrderedDict() if out is None else out
    st = meta["state"]
    for k, v in (st.get("_parameters") or {}).items():
        if v is not None:
            out[prefix + k] = v
    skip = st.get("_non_persistent_buffers_set") or set()
    for k, v in (st.get("_buffers") or {}).items():
        if v is not None and k not in skip:
            out[prefix + k] = v
    for k, m in (st.get("_modules") or {}).items():
        if m is not None:
            state_dict_of(m, prefix + k + ".", out)
    return out


def init_kwargs(meta: Mapping[str, Any]) -> dict[str, Any]:
    return _plain(meta["state"].get("_init_kwargs") or {})


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, torch.Tensor):
        return x.item()
    return x


def _check_class(meta: Any, name: str, path: Path) -> None:
    if not isinstance(meta, PersistentObject) or meta.get("class_name") != name:
        got = meta.get("class_name") if isinstance(meta, Mapping) else type(meta).__name__
        raise ImportFormatError(f"{path}: expected a StyleGAN2-ADA {name}, found {got!r} "
                                "(sgan reads StyleGAN2-ADA and StyleGAN3 network pickles; other networks are not supported).")


def config_from_kwargs(gk: Mapping[str, Any], dk: Mapping[str, Any] | None, path: Path) -> ModelConfig:
    syn, mp = dict(gk.get("synthesis_kwargs") or {}), dict(gk.get("mapping_kwargs") or {})
    unknown = (set(syn) - _G_SYN_OK) | (set(mp) - _MAP_OK)
    if unknown:
        raise ImportFormatError(f"{path}: unknown StyleGAN2-ADA generator kwargs {sorted(unknown)} (a StyleGAN3 "
                                "network or a modified one?); sgan cannot reproduce this network.")
    if syn.get("use_noise", True) is False or mp.get("activation", "lrelu") != "lrelu":
        raise ImportFormatError(f"{path}: use_noise=False or a non-lrelu mapping; sgan reproduces only the defaults.")
    w_dim = int(gk["w_dim"])
    if mp.get("embed_features") not in (None, w_dim) or mp.get("layer_features") not in (None, w_dim):
        raise ImportFormatError(f"{path}: mapping embed/layer features differ from w_dim; sgan cannot represent that.")
    lr = float(mp.get("lr_multiplier", 0.01))
    cfg = dict(arch="stylegan2", resolution=int(gk["img_resolution"]), num_channels=int(gk["img_channels"]),
               z_dim=int(gk["z_dim"]), w_dim=w_dim, c_dim=int(gk.get("c_dim", 0)),
               mapping_layers=int(mp.get("num_layers", 8)), mapping_fmaps=w_dim, mapping_lrmul=lr,
               w_avg_beta=float(mp.get("w_avg_beta", 0.995) or 0.995), const_init="randn",
               channel_base=int(syn.get("channel_base", 32768)), channel_max=int(syn.get("channel_max", 512)),
               g_architecture=str(syn.get("architecture", "skip")), conv_clamp=syn.get("conv_clamp"))
    if dk is not None:
        ep, dmp = dict(dk.get("epilogue_kwargs") or {}), dict(dk.get("mapping_kwargs") or {})
        for key in ("channel_base", "channel_max", "conv_clamp"):
            if key in dk and dk[key] != cfg[key]:
                raise ImportFormatError(f"{path}: D's {key}={dk[key]!r} differs from G's; sgan uses one value for both.")
        if float(dmp.get("lr_multiplier", 0.01)) != lr:
            raise ImportFormatError(f"{path}: D's label mapping learning rate differs from G's; sgan uses one value.")
        group = ep.get("mbstd_group_size", 4)
        cfg.update(d_architecture=str(dk.get("architecture", "resnet")),
                   mbstd_group_size=int(group) if group is not None else 4, mbstd_whole_batch=group is None,
                   mbstd_num_features=int(ep.get("mbstd_num_channels", 1)),
                   cmap_dim=int(dk.get("cmap_dim") or 0), d_mapping_layers=int(dmp.get("num_layers", 8)))
    return ModelConfig(**cfg)


def convert_state(sd: Mapping[str, Any], what: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith("resample_filter"):
            check_fir(v, what=f"{what} {k}")
            continue
        t = tensor(v)
        if k.endswith("noise_const") and t.ndim == 2:
            t = t.reshape(1, 1, *t.shape)
        out[k] = t
    return out


def convert(data: Mapping[str, Any], *, path: Path) -> Imported:
    g_meta = data.get("G_ema") or data.get("G")
    _check_class(g_meta, "Generator", path)
    d_meta = data.get("D")
    if d_meta is not None:
        _check_class(d_meta, "Discriminator", path)
    cfg = config_from_kwargs(init_kwargs(g_meta), init_kwargs(d_meta) if d_meta is not None else None, path)
    which = "G_ema" if data.get("G_ema") is not None else "G"
    found = [f"{which} -> G_ema"]
    G_ema = build(new_generator(cfg), convert_state(state_dict_of(g_meta), which), what=f"{path} {which}")
    G = D = None
    if data.get("G") is not None and which == "G_ema":
        _check_class(data["G"], "Generator", path)
        G = build(new_generator(cfg), convert_state(state_dict_of(data["G"]), "G"), what=f"{path} G")
        found.append("G (the training generator)")
    if d_meta is not None:
        D = build(new_discriminator(cfg), convert_state(state_dict_of(d_meta), "D"), what=f"{path} D")
        found.append("D")
    left = left_behind(data)
    notes = ["runs in float32 (the pickle's code with force_fp32=True); on a GPU NVIDIA's generate.py runs the 4 "
             "highest resolutions in float16, which differs by about 1e-2",
             "NVIDIA's generate.py: z = RandomState(seed).randn(1, z_dim), truncation psi 1, noise mode const; "
             "sgan generate uses these by default for this model, so it gives generate.py's images"]
    return Imported(format="ada", source=path, config=cfg, G_ema=G_ema, G=G, D=D, found=found, left_behind=left,
                    notes=notes, defaults={"truncation_psi": 1.0, "truncation_cutoff": None, "noise_mode": "const"})


def left_behind(data: Mapping[str, Any]) -> list[str]:
    """What a network pickle of NVIDIA's PyTorch training loops (StyleGAN2-ADA, StyleGAN3) holds besides
    G, D and G_ema, each with what it is: reported on import, never converted."""
    left = []
    if data.get("augment_pipe") is not None:
        left.append("augment_pipe (the ADA augmentation state, including its probability p)")
    if data.get("training_set_kwargs"):
        left.append("training_set_kwargs (the dataset it was trained on)")
    return left + [f"{k} (unknown key)" for k in data if k not in ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")]
