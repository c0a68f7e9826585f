"""Choosing the torch device: `auto` picks CUDA when it is there, else the CPU."""

from __future__ import annotations

import torch

from sgan.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a torch.device, refusing CUDA where there is none."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto.")
        return torch.device(name)
    raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N.")


def describe_device(device: torch.device) -> str:
    """A short human name, such as `cpu (2 threads)` or `cuda:0 (NVIDIA H100)`."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
