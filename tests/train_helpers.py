"""What the training tests share: the tiny configs of both architectures, exact-state comparison."""

from __future__ import annotations

import torch

from sgan.train import preset_config

TINY_MODELS = {
    "stylegan1": {"fmap_max": 8, "fmap_min": 4, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16},
    "stylegan2": {"channel_max": 8, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16},
}


def tiny_config(arch: str = "stylegan1", **changes):
    """The `tiny` preset with a still smaller model, then `changes` set on the TrainConfig."""
    cfg = preset_config("tiny", arch=arch)
    cfg.model = dict(TINY_MODELS[arch])
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


def assert_same(a, b) -> None:
    """Tensors equal bit for bit, containers element by element, everything else by ==."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


AMX_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16"}   # Sapphire-Rapids-class
AVX2_FLAGS = {"avx2", "fma"}                                                 # AMD EPYC-class


def fake_cpu(monkeypatch, flags, *, ms=None):
    """Pretend this CPU has `flags` (sgan.device.cpu_flags) and that sgan.device.time_call measures
    `ms` (default: bf16 half of fp32's time); the fake timer really runs the call under the
    precision's autocast, so the real bf16 computation (emulated where it is not native) is tested.
    Returns the list of precisions timed."""
    import sgan.device

    ms = ms or {"fp32": 20.0, "bf16": 10.0, "fp16": 15.0}
    timed: list[str] = []

    def time_call(run, device, precision, **kwargs):
        with sgan.device.autocast(device, precision):
            run()
        timed.append(precision)
        return ms[precision] / 1000.0

    monkeypatch.setattr(sgan.device, "cpu_flags", lambda path="/proc/cpuinfo": set(flags))
    monkeypatch.setattr(sgan.device, "time_call", time_call)
    return timed
