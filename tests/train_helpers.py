"""What the training tests share: the tiny configs of both architectures, exact-state comparison."""

from __future__ import annotations

import torch

from cpu_fakes import AMX_FLAGS, AVX2_FLAGS, fake_cpu  # noqa: F401  (re-exported for the training tests)
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

