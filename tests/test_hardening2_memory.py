"""A small file must not make sgan allocate more than it holds (issue 23 §1): each attack runs the real
CLI in a subprocess under an address-space limit and must end in one `Error:` line, no traceback."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from sgan.checkpoint import save_checkpoint
from sgan.nn import Discriminator, Generator, ModelConfig, make_discriminator, make_generator
from tests.hardening2_helpers import one_error_line, run_limited


def _zero_stride(shapes):
    return {k: torch.zeros(1).expand(s) for k, s in shapes.items()}


def _meta_shapes(build):
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build().state_dict().items()}


def test_zero_stride_sgan_checkpoint_is_refused_before_materialising(tmp_path):
    small = ModelConfig.preset("tiny", 8)
    path = save_checkpoint(tmp_path / "s.pt", config=small, G=Generator(small), G_ema=Generator(small),
                           D=Discriminator(small))
    data = torch.load(path, weights_only=True)
    big = ModelConfig(resolution=1024)          # the paper's StyleGAN: ~100 MB per network once materialised
    data["config"] = json.dumps(big.to_dict())
    data["G"] = data["G_ema"] = _zero_stride(_meta_shapes(lambda: make_generator(big)))
    data["D"] = _zero_stride(_meta_shapes(lambda: make_discriminator(big)))
    data.pop("checksums")
    torch.save(data, path)
    assert path.stat().st_size < 200_000
    line = one_error_line(run_limited("generate", path, "--seeds", "0", "--outdir", tmp_path / "out",
                                      limit=1200 << 20))
    assert "strides" in line and ("G/" in line or "G_ema/" in line), line


def test_channel_max_is_bounded_in_a_checkpoint(tmp_path):
    cfg = ModelConfig.preset("tiny", 8, arch="stylegan2")
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=make_generator(cfg), G_ema=make_generator(cfg),
                           D=make_discriminator(cfg))
    data = torch.load(path, weights_only=True)
    raw = json.loads(data["config"])
    raw.update(channel_base=1 << 16, channel_max=65536)
    data["config"] = json.dumps(raw)
    torch.save(data, path)
    line = one_error_line(run_limited("generate", path, "--seeds", "0", "--outdir", tmp_path / "out"))
    assert "channel_max = 65536" in line, line


def test_channel_max_is_bounded_in_the_model_config():
    with pytest.raises(ValueError, match="channel_max = 65536"):
        ModelConfig(arch="stylegan2", resolution=8, channel_max=65536)


def test_zero_stride_rosinality_file_is_refused(tmp_path):
    shapes = {"input.input": (1, 4096, 4, 4), "conv1.conv.weight": (1, 4096, 4096, 3, 3),
              "style.1.weight": (4096, 4096)}
    path = tmp_path / "r.pt"
    torch.save({"g_ema": _zero_stride(shapes)}, path)
    assert path.stat().st_size < 50_000
    line = one_error_line(run_limited("import", path, "--out", tmp_path / "m.pt", limit=1200 << 20))
    assert "strides" in line, line
    assert not (tmp_path / "m.pt").exists()


def _deflate_bomb(src, dst, member_suffix="data/0", size=800 << 20):
    """Rewrite a torch zip so that one tensor member is a deflated run of `size` zero bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(member_suffix):
                z = zipfile.ZipInfo(info.filename)
                z.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(z, "w", force_zip64=True) as f:
                    chunk = bytes(1 << 20)
                    for _ in range(size >> 20):
                        f.write(chunk)
            else:
                zout.writestr(info, data)


def test_deflate_bomb_in_a_torch_zip_is_refused_before_decompression(tmp_path):
    src = tmp_path / "r.pt"
    torch.save({"g_ema": {"input.input": torch.zeros(1, 8, 4, 4), "conv1.conv.weight": torch.zeros(8)}}, src)
    bomb = tmp_path / "bomb.pt"
    _deflate_bomb(src, bomb)
    assert bomb.stat().st_size < 2_000_000
    line = one_error_line(run_limited("import", bomb, "--out", tmp_path / "m.pt", limit=1200 << 20))
    assert "decompression bomb" in line, line


def test_deflate_bomb_in_an_sgan_checkpoint_is_refused(tmp_path):
    cfg = ModelConfig.preset("tiny", 8)
    src = save_checkpoint(tmp_path / "s.pt", config=cfg, G=Generator(cfg), G_ema=Generator(cfg), D=None)
    bomb = tmp_path / "bomb.pt"
    _deflate_bomb(src, bomb)
    line = one_error_line(run_limited("generate", bomb, "--seeds", "0", "--outdir", tmp_path / "o", limit=1200 << 20))
    assert "decompression bomb" in line, line
