"""NVIDIA StyleGAN3 PyTorch network pickles (NVlabs/stylegan3: `network-snapshot-*.pkl` and the released
`stylegan3-{t,r}-*.pkl`, the same layout) -> sgan StyleGAN3.

The snapshot is a dict {G, D, G_ema, augment_pipe, training_set_kwargs} of persistent objects, read as
for StyleGAN2-ADA (sgan.formats.ada: the restricted unpickler keeps each module's state, the embedded
source is dropped unread). G is networks_stylegan3.Generator: its init kwargs are the synthesis and
layer kwargs (flat) plus mapping_kwargs; D is networks_stylegan2.Discriminator, which is sgan's
StyleGAN2 D. sgan's StyleGAN3 uses NVIDIA's module names, so the state dicts carry over as they are.
Every layer's plan (sizes, widths, sampling rates, cutoffs, padding) is recomputed from the kwargs and
checked against what the pickle stored, and so are its up/down filters, so a file whose filters sgan
would not design the same way is refused instead of being imported into a network it does not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from sgan.formats.ada import convert_state, init_kwargs, left_behind, state_dict_of
from sgan.formats.common import ImportFormatError, Imported, build, new_discriminator, new_generator, tensor
from sgan.formats.safe_pickle import PersistentObject
from sgan.nn import ModelConfig
from sgan.nn.stylegan3.synthesis import plan_of

# networks_stylegan3.py keyword -> (ModelConfig field, NVIDIA's default)
_SYNTHESIS = {"channel_base": ("sg3_channel_base", 32768), "channel_max": ("sg3_channel_max", 512),
              "num_layers": ("sg3_num_layers", 14), "num_critical": ("sg3_num_critical", 2),
              "first_cutoff": ("sg3_first_cutoff", 2.0), "first_stopband": ("sg3_first_stopband", 2 ** 2.1),
              "last_stopband_rel": ("sg3_last_stopband_rel", 2 ** 0.3), "margin_size": ("sg3_margin_size", 10),
              "output_scale": ("sg3_output_scale", 0.25), "conv_kernel": ("sg3_conv_kernel", 3),
              "filter_size": ("sg3_filter_size", 6), "lrelu_upsampling": ("sg3_lrelu_upsampling", 2),
              "use_radial_filters": ("sg3_radial_filters", False), "magnitude_ema_beta": ("sg3_magnitude_ema_beta", 0.999)}
_IGNORED = {"num_fp16_res"}                 # float16 on CUDA only; sgan runs float32 (force_fp32=True)
_G_TOP = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "conv_clamp"}
_MAPPING = {"num_layers", "lr_multiplier", "w_avg_beta"}
_D_OK = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max", "num_fp16_res",
         "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs"}


def is_stylegan3(meta: Any) -> bool:
    """Whether a persistent object is a networks_stylegan3.Generator (its synthesis has a Fourier `input`)."""
    try:
        syn = meta["state"]["_modules"]["synthesis"]["state"]
        return isinstance(meta, PersistentObject) and "input" in syn["_modules"] and "layer_names" in syn
    except (KeyError, TypeError):
        return False


def config_from_kwargs(gk: Mapping[str, Any], dk: Mapping[str, Any] | None, path: Path) -> ModelConfig:
    mp = dict(gk.get("mapping_kwargs") or {})
    unknown = (set(gk) - _G_TOP - set(_SYNTHESIS) - _IGNORED) | (set(mp) - _MAPPING)
    if unknown:
        raise ImportFormatError(f"{path}: unknown StyleGAN3 generator kwargs {sorted(unknown)} (a modified network?); "
                                "sgan cannot reproduce this network.")
    cfg: dict[str, Any] = dict(arch="stylegan3", resolution=int(gk["img_resolution"]), num_channels=int(gk["img_channels"]),
                               z_dim=int(gk["z_dim"]), w_dim=int(gk["w_dim"]), c_dim=int(gk.get("c_dim", 0)),
                               mapping_layers=int(mp.get("num_layers", 2)), mapping_fmaps=int(gk["w_dim"]),
                               mapping_lrmul=float(mp.get("lr_multiplier", 0.01)),
                               w_avg_beta=float(mp.get("w_avg_beta", 0.998) or 0.998), conv_clamp=gk.get("conv_clamp", 256))
    for key, (field, default) in _SYNTHESIS.items():
        value = gk.get(key, default)
        cfg[field] = type(default)(value) if not isinstance(default, bool) else bool(value)
    d_base, d_max = 32768, 512
    if dk is not None:
        unknown = set(dk) - _D_OK
        if unknown:
            raise ImportFormatError(f"{path}: unknown discriminator kwargs {sorted(unknown)}; sgan cannot reproduce this D.")
        if dk.get("conv_clamp", 256) != cfg["conv_clamp"]:
            raise ImportFormatError(f"{path}: D's conv_clamp={dk.get('conv_clamp', 256)!r} differs from G's "
                                    f"{cfg['conv_clamp']!r}; sgan uses one value for both.")
        ep, dmp = dict(dk.get("epilogue_kwargs") or {}), dict(dk.get("mapping_kwargs") or {})
        if float(dmp.get("lr_multiplier", 0.01)) != cfg["mapping_lrmul"]:
            raise ImportFormatError(f"{path}: D's label mapping learning rate differs from G's; sgan uses one value.")
        group = ep.get("mbstd_group_size", 4)
        d_base, d_max = int(dk.get("channel_base", 32768)), int(dk.get("channel_max", 512))
        cfg.update(d_architecture=str(dk.get("architecture", "resnet")),
                   mbstd_group_size=int(group) if group is not None else 4, mbstd_whole_batch=group is None,
                   mbstd_num_features=int(ep.get("mbstd_num_channels", 1)),
                   cmap_dim=int(dk.get("cmap_dim") or 0), d_mapping_layers=int(dmp.get("num_layers", 8)))
    try:
        return ModelConfig(**cfg, channel_base=d_base, channel_max=d_max)
    except ValueError as err:
        raise ImportFormatError(f"{path}: {err}") from None


def check_plan(cfg: ModelConfig, meta: Mapping[str, Any], path: Path, which: str) -> None:
    """Every layer sgan derives from the config must be the layer the pickle stored, filters included."""
    syn = meta["state"]["_modules"]["synthesis"]["state"]
    inp, layers = plan_of(cfg)
    stored = [str(n) for n in syn["layer_names"]]
    if [spec.name for spec in layers] != stored:
        raise ImportFormatError(f"{path}: {which}'s layers {stored} are not the ones its kwargs give "
                                f"({[spec.name for spec in layers]}); sgan cannot reproduce this network.")
    from sgan.nn.stylegan3.design import lowpass_filter

    for spec in layers:
        st = syn["_modules"][spec.name]["state"]
        facts = {"up_factor": spec.up_factor, "down_factor": spec.down_factor, "up_taps": spec.up_taps,
                 "down_taps": spec.down_taps, "conv_kernel": spec.conv_kernel, "padding": list(spec.padding)}
        for key, mine in facts.items():
            theirs = [int(v) for v in st[key]] if key == "padding" else int(st[key])
            if theirs != mine:
                raise ImportFormatError(f"{path}: {which}.synthesis.{spec.name}.{key} is {theirs}, sgan derives {mine}; "
                                        "sgan cannot reproduce this network.")
        designed = {"up_filter": lowpass_filter(spec.up_taps, cutoff=spec.in_cutoff, width=2 * spec.in_half_width,
                                                fs=spec.tmp_sampling_rate),
                    "down_filter": lowpass_filter(spec.down_taps, cutoff=spec.out_cutoff, width=2 * spec.out_half_width,
                                                  fs=spec.tmp_sampling_rate, radial=spec.down_radial)}
        for key, mine in designed.items():
            theirs = st["_buffers"].get(key)
            same = (mine is None and theirs is None) or (
                mine is not None and theirs is not None and tuple(theirs.shape) == tuple(mine.shape)
                and torch.allclose(tensor(theirs), mine, rtol=0, atol=1e-6 * float(mine.abs().max())))
            if not same:
                raise ImportFormatError(f"{path}: {which}.synthesis.{spec.name}.{key} is not the filter sgan designs "
                                        "for this layer; sgan cannot reproduce this network.")


def convert(data: Mapping[str, Any], *, path: Path) -> Imported:
    which = "G_ema" if data.get("G_ema") is not None else "G"
    g_meta, d_meta = data.get(which), data.get("D")
    if not is_stylegan3(g_meta):
        raise ImportFormatError(f"{path}: {which} is not a StyleGAN3 generator.")
    if d_meta is not None and (not isinstance(d_meta, PersistentObject) or d_meta.get("class_name") != "Discriminator"):
        raise ImportFormatError(f"{path}: D is not a StyleGAN2 discriminator (networks_stylegan2.Discriminator).")
    cfg = config_from_kwargs(init_kwargs(g_meta), init_kwargs(d_meta) if d_meta is not None else None, path)
    check_plan(cfg, g_meta, path, which)
    G_ema = build(new_generator(cfg), _g_state(g_meta), what=f"{path} {which}")
    found = [f"{which} -> G_ema"]
    G = D = None
    if which == "G_ema" and data.get("G") is not None:
        if not is_stylegan3(data["G"]):
            raise ImportFormatError(f"{path}: G is not a StyleGAN3 generator.")
        G = build(new_generator(cfg), _g_state(data["G"]), what=f"{path} G")
        found.append("G (the training generator)")
    if d_meta is not None:
        D = build(new_discriminator(cfg), convert_state(state_dict_of(d_meta), "D"), what=f"{path} D")
        found.append("D (StyleGAN2's)")
    left = left_behind(data)
    notes = ["runs in float32 (the pickle's code with force_fp32=True, or on CPU); on a GPU NVIDIA's code runs the "
             "highest-resolution layers in float16, which differs by about 1e-2",
             "NVIDIA's gen_images.py: z = RandomState(seed).randn(1, z_dim), truncation psi 1, noise mode const "
             "(StyleGAN3 has no noise inputs); sgan generate uses these by default for this model, so it gives "
             "gen_images.py's images",
             "--translate X,Y / --rotate DEG of gen_images.py: sgan.nn.stylegan3.input_transform(G, translate=, rotate=)"]
    return Imported(format="stylegan3", source=path, config=cfg, G_ema=G_ema, G=G, D=D, found=found, left_behind=left,
                    notes=notes, defaults={"truncation_psi": 1.0, "truncation_cutoff": None, "noise_mode": "const"})


def _g_state(meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return {k: tensor(v) for k, v in state_dict_of(meta).items()}
