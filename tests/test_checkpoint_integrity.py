"""Damaged and crafted checkpoints: checksums name flipped tensor bytes, every field is type- and
bound-checked before anything is built, and a run folder's pointer must name a file in it."""

from __future__ import annotations

import json
import time
import zipfile

import pytest
import torch

from sgan.checkpoint import build_discriminator, load_checkpoint, load_generator, save_checkpoint
from sgan.errors import CheckpointError
from sgan.nn import Discriminator, Generator, ModelConfig


@pytest.fixture
def snapshot(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 8)
    return save_checkpoint(tmp_path / "s.pt", config=cfg, G=Generator(cfg), G_ema=Generator(cfg), D=Discriminator(cfg),
                           extra={"opt": {"exp_avg": torch.ones(3)}})


def _rewrite(path, edit):
    data = torch.load(path, weights_only=True)
    edit(data)
    torch.save(data, path)
    return path


def _largest_tensor_entry(path):
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_flipped_tensor_bytes_are_named(snapshot):
    before = torch.load(snapshot, weights_only=True)
    offset, size = _largest_tensor_entry(snapshot)
    raw = bytearray(snapshot.read_bytes())
    raw[offset + size // 2] ^= 0x10
    snapshot.write_bytes(bytes(raw))
    after = torch.load(snapshot, weights_only=True)           # torch itself loads it silently
    changed = [f"{part}/{k}" for part in ("G", "G_ema", "D") for k, v in before[part].items()
               if not torch.equal(v, after[part][k])]
    assert len(changed) == 1
    with pytest.raises(CheckpointError, match="damaged") as err:
        load_checkpoint(snapshot)
    assert changed[0] in str(err.value)


def test_checkpoints_without_checksums_still_load(snapshot):
    _rewrite(snapshot, lambda d: d.pop("checksums"))
    assert load_generator(snapshot).z_dim == 32


def test_damaged_checksum_table(snapshot):
    _rewrite(snapshot, lambda d: d.__setitem__("checksums", [1, 2]))
    with pytest.raises(CheckpointError, match="checksum table"):
        load_checkpoint(snapshot)


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.__setitem__("G_ema", "not weights"), "G_ema entry is str"),
    (lambda d: d.__setitem__("G_ema", [torch.zeros(1)]), "G_ema entry is list"),
    (lambda d: d.__setitem__("G", {1: torch.zeros(1)}), "G entry is dict"),
    (lambda d: d.__setitem__("D", 3), "D entry is int"),
    (lambda d: d.__setitem__("extra", "x"), "extra entry is str"),
    (lambda d: d.__setitem__("config", {"z_dim": 8}), "not JSON text"),
    (lambda d: d.__setitem__("config", "{not json"), "not valid JSON"),
    (lambda d: d.__setitem__("config", "[1]"), "not an object"),
])
def test_wrong_types_are_refused(snapshot, edit, needle):
    _rewrite(snapshot, lambda d: (d.pop("checksums"), edit(d)))
    with pytest.raises(CheckpointError, match=needle):
        load_generator(snapshot)


@pytest.mark.parametrize("key, value", [("z_dim", 5000), ("resolution", 1 << 20), ("mapping_layers", 10 ** 6),
                                        ("z_dim", "32"), ("z_dim", True), ("w_avg_beta", float("nan")),
                                        ("mapping_lrmul", 1e300), ("arch", "x" * 1000), ("fmap_max", -1)])
def test_config_fields_are_bounded_and_typed(snapshot, key, value):
    def edit(d):
        cfg = json.loads(d["config"])
        cfg[key] = value
        d["config"] = json.dumps(cfg)
    _rewrite(snapshot, edit)
    with pytest.raises(CheckpointError, match=f"config's {key} = "):
        load_checkpoint(snapshot)


def test_a_large_config_with_small_weights_is_refused_before_allocating(snapshot):
    """fmap_max 4096 at 1024 px would be gigabytes of weights: shapes are compared on the meta device first."""
    def edit(d):
        cfg = json.loads(d["config"])
        cfg.update(resolution=1024, fmap_base=1 << 17, fmap_max=4096, z_dim=4096, w_dim=4096, mapping_fmaps=4096)
        d["config"] = json.dumps(cfg)
    _rewrite(snapshot, lambda d: (d["checksums"].pop("fields"), edit(d)))  # as an older file (else: "damaged")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="G_ema weights do not fit"):
        load_generator(snapshot)
    with pytest.raises(CheckpointError, match="D weights do not fit"):
        build_discriminator(load_checkpoint(snapshot))
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("pointer", [{"snapshot": 5}, {"snapshot": None}, {"snapshot": "../s.pt"},
                                     {"snapshot": ""}, {"snapshot": ["s.pt"]}, [1, 2], "text"])
def test_latest_pointer_must_name_a_file_in_the_folder(snapshot, tmp_path, pointer):
    run = tmp_path / "run"
    run.mkdir()
    (run / "latest.json").write_text(json.dumps(pointer))
    with pytest.raises(CheckpointError, match="latest.json"):
        load_checkpoint(run)


@pytest.mark.parametrize("edit, needle", [
    (lambda e: e["counters"].__setitem__("step", "12"), "counter step"),
    (lambda e: e["counters"].__setitem__("cur_nimg", float("nan")), "counter cur_nimg"),
    (lambda e: e["counters"].__setitem__("train_seconds", float("inf")), "counter train_seconds"),
    (lambda e: e.__setitem__("counters", [1, 2]), "counters are list"),
    (lambda e: e.__setitem__("opt_G", "adam"), "opt_G is str"),
    (lambda e: e.__setitem__("train_config", "[1]"), "not a dict"),
])
def test_damaged_training_state_is_named(tmp_path, edit, needle):
    from sgan.checkpoint import save_checkpoint
    from sgan.train.state import Counters, pack, unpack

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 8)
    G, D = Generator(cfg), Discriminator(cfg)
    extra = pack(counters=Counters(step=3, cur_nimg=24), config={"preset": "tiny"}, opt_G={"state": {}, "param_groups": []},
                 opt_D={"state": {}, "param_groups": []}, world_size=1)
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D, extra=extra)
    data = torch.load(path, weights_only=True)
    edit(data["extra"])
    data.pop("checksums")
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=f"training state is damaged.*{needle}"):
        unpack(load_checkpoint(path).extra, path)
