"""Memory format of the activations: NCHW (`contiguous`) or NHWC (`channels_last`).

The layout changes no number a network computes beyond fp32 rounding (the same convolutions, summed
in another order); it changes which oneDNN kernels run. Measured (docs/benchmarks.md, "Speed choices
per CPU family"): on AVX-512 CPUs a 3x3 conv at the cpu preset's widths runs 1.5-1.8x faster in
channels_last (Ice Lake AVX-512; 1.9x reported in issue 18 for an AVX-512 BF16 + AMX CPU) and the
whole StyleGAN 1 / StyleGAN2 cpu-preset G+D step 1.13-1.34x. AVX2-only CPUs were not measured, so
`auto` keeps NCHW there, and on CUDA too.

Only the activations change layout: a network converts its input at the door (G's constant, D's
image) and every later op keeps the layout, so parameters, state dicts and optimizer states stay as
they are.
"""

from __future__ import annotations

import os

import torch

MEMORY_FORMATS = ("auto", "contiguous", "channels_last")
CHANNELS_LAST_CAPABILITIES = ("AVX512",)   # torch.backends.cpu.get_cpu_capability() values where auto picks it
# sgan.cpu_profiles' variable, read here by name (nn imports nothing else of sgan): a faked CPU profile
# gets that family's layout too.
PROFILE_ENV = "SGAN_CPU_PROFILE"
PROFILE_CAPABILITY = {"avx2": "AVX2", "avx512": "AVX512", "amx": "AVX512"}
_capability: list[str] = []   # read once, at the first network built (a call inside forward would break torch.compile's graph)


def cpu_capability() -> str:
    """torch's CPU vector capability (`AVX2`, `AVX512`, ...), or that of the SGAN_CPU_PROFILE profile."""
    if not _capability:
        name = os.environ.get(PROFILE_ENV, "").strip().lower()
        _capability.append(PROFILE_CAPABILITY.get(name) or torch.backends.cpu.get_cpu_capability())
    return _capability[0]


def check_memory_format(mode: str) -> None:
    if mode not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, got {mode!r}")


def use_channels_last(mode: str, device: torch.device) -> bool:
    """Whether activations on `device` run in channels_last under `mode` ('auto': on CPUs whose
    torch vector capability is AVX-512, where it was measured faster; NCHW elsewhere)."""
    check_memory_format(mode)
    if mode != "auto":
        return mode == "channels_last"
    return device.type == "cpu" and cpu_capability() in CHANNELS_LAST_CAPABILITIES


def fp16_autocast(device: torch.device) -> bool:
    """Whether float16 autocast is on for `device` (fp16 training)."""
    return torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) == torch.float16


def to_memory_format(x: torch.Tensor, mode: str) -> torch.Tensor:
    """x [N, C, H, W] in channels_last when `mode` chooses it for its device, else x as it is. `auto`
    keeps NCHW under float16 autocast: fp16 on these CPUs is emulated and was not measured in
    channels_last, and the layout moves fp16's rounding (tests/test_train_fp16.py's two-rank bound)."""
    if x.ndim != 4:
        raise ValueError(f"expected a 4-d activation [N, C, H, W], got {list(x.shape)}")
    if mode == "auto" and fp16_autocast(x.device):
        return x
    return x.contiguous(memory_format=torch.channels_last) if use_channels_last(mode, x.device) else x


def describe_memory_format(mode: str, device: torch.device) -> str:
    """One phrase for a log line, such as `channels_last (auto: cpu capability AVX512)`."""
    chosen = "channels_last" if use_channels_last(mode, device) else "contiguous"
    if mode != "auto":
        return chosen
    why = f"cpu capability {cpu_capability()}" if device.type == "cpu" else device.type
    return f"{chosen} (auto: {why})"
