"""MultiResolutionDataset: resolution switching, x-flip, DataLoader workers, rosinality databases."""

from __future__ import annotations

import io
import pickle

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sgan.data import layout
from sgan.data.inspect import dataset_info, preview_grid, verify_dataset
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.prepare import prepare_dataset
from sgan.errors import DataError


@pytest.fixture(scope="module")
def shapes_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "shapes.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=16, count=24, seed=1, workers=1)
    return path


def make_rosinality_db(path, n=6, sizes=(8, 16, 32)):
    """A database laid out exactly as rosinality's prepare_data.py writes it (JPEG q=100, no metadata)."""
    rng = np.random.default_rng(0)
    with lmdb.open(str(path), map_size=1 << 28, readahead=False) as env, env.begin(write=True) as txn:
        for i in range(n):
            base = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
            for s in sizes:
                buf = io.BytesIO()
                base.resize((s, s), Image.LANCZOS).save(buf, format="jpeg", quality=100)
                txn.put(f"{s}-{str(i).zfill(5)}".encode("utf-8"), buf.getvalue())
        txn.put(b"length", str(n).encode("utf-8"))
    return path


def test_items_are_uint8_chw_and_float_labels(shapes_db):
    ds = MultiResolutionDataset(shapes_db, resolution=16)
    img, label = ds[3]
    assert img.dtype == torch.uint8 and img.shape == (3, 16, 16)
    assert label.dtype == torch.float32 and label.shape == (len(ds.label_names),) and len(ds.label_names) > 5
    assert ds.attributes(3)["shape"] in ("circle", "square", "triangle", "star")
    assert len(ds) == 24 and ds.sizes == [4, 8, 16]


def test_resolution_changes_during_training_and_absent_sizes_are_clear(shapes_db):
    ds = MultiResolutionDataset(shapes_db, resolution=4)
    assert ds[0][0].shape == (3, 4, 4)
    ds.resolution = 8
    assert ds[0][0].shape == (3, 8, 8)
    with pytest.raises(DataError, match="no 32x32 images"):
        ds.resolution = 32
    with pytest.raises(DataError, match="4, 8, 16"):
        MultiResolutionDataset(shapes_db, resolution=64)


def test_xflip_doubles_the_index_space_and_mirrors_labels(shapes_db):
    ds = MultiResolutionDataset(shapes_db, resolution=16, xflip=True)
    assert len(ds) == 48
    img, label = ds[5]
    flipped, flabel = ds[24 + 5]
    assert torch.equal(flipped, img.flip(-1))
    names = ds.label_names
    cx, rot = names.index("cx"), names.index("rotation")
    assert flabel[cx] == pytest.approx(1 - label[cx]) and flabel[rot] == pytest.approx(-label[rot])
    assert flabel[names.index("shape_id")] == label[names.index("shape_id")]
    with pytest.raises(IndexError):
        ds[48]


@pytest.fixture
def unix_sockets_allowed(monkeypatch):
    """conftest refuses every socket connect; torch hands batches back from DataLoader workers
    over AF_UNIX sockets (file-descriptor sharing), which reach no network, so allow those."""
    import socket

    guarded = socket.socket.connect
    original = socket._socket.socket.connect

    def connect(sock, address):
        if sock.family == socket.AF_UNIX:
            return original(sock, address)
        return guarded(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_read_the_same_items(shapes_db, workers, unix_sockets_allowed):
    ds = MultiResolutionDataset(shapes_db, resolution=8)
    ds[0]  # the parent opened the environment before the workers fork
    loader = DataLoader(ds, batch_size=8, shuffle=False, num_workers=workers)
    batches = [imgs for imgs, _ in loader]
    got = torch.cat(batches)
    assert got.shape == (24, 3, 8, 8)
    assert torch.equal(got, torch.stack([ds[i][0] for i in range(24)]))
    ds.resolution = 16  # progressive growing: a new loader sees the new size
    imgs, _ = next(iter(DataLoader(ds, batch_size=4, num_workers=workers)))
    assert imgs.shape == (4, 3, 16, 16)


def test_dataset_pickles_without_its_environment(shapes_db):
    ds = MultiResolutionDataset(shapes_db, resolution=8)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[1][0], ds[1][0])


def test_reads_a_rosinality_database(tmp_path):
    path = make_rosinality_db(tmp_path / "rosinality.lmdb")
    ds = MultiResolutionDataset(path, resolution=8)
    assert ds.metadata is None and ds.layout == "rosinality" and ds.sizes == [8, 16, 32] and len(ds) == 6
    img, label = ds[2]
    assert img.shape == (3, 8, 8) and label.numel() == 0 and ds.attributes(2) is None
    with pytest.raises(DataError, match="no 4x4 images"):
        ds.resolution = 4
    info = dataset_info(path)
    assert info["layout"] == "rosinality" and info["image_format"] == "jpeg" and info["count"] == 6
    assert verify_dataset(path).ok


def test_verify_finds_missing_and_broken_records(tmp_path):
    path = tmp_path / "v.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=8, count=5, workers=1)
    assert verify_dataset(path).ok
    layout.close_env(path)  # one environment per process: close the reader's before writing
    with lmdb.open(str(path), map_size=1 << 30) as env, env.begin(write=True) as txn:
        txn.delete(b"8-00002")
        txn.put(b"4-00003", b"\x89PNG\r\n\x1a\nbroken")
    report = verify_dataset(path)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "8-00002: missing" in text and "4-00003: does not decode" in text
    ds = MultiResolutionDataset(path, resolution=8)
    with pytest.raises(DataError, match="8-00002"):
        ds[2]


def _reencode_altered(data: bytes) -> bytes:
    """The same image format with one pixel changed: it still decodes, only a checksum can tell."""
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()
    img[0, 0] = 255 - img[0, 0]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="png")
    return buf.getvalue()


def test_verify_names_altered_pixels_and_labels_by_checksum(tmp_path):
    path = tmp_path / "c.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=8, count=5, workers=1)
    report = verify_dataset(path)
    assert report.ok and report.checksums
    layout.close_env(path)
    with lmdb.open(str(path), map_size=1 << 30) as env, env.begin(write=True) as txn:
        txn.put(b"8-00001", _reencode_altered(txn.get(b"8-00001")))
        label = layout.decode_label(txn.get(b"label-00003"))
        label[0] += 1.0                                          # a plausible, finite, wrong label
        txn.put(b"label-00003", layout.encode_label(label.tolist()))
    report = verify_dataset(path)
    text = "\n".join(report.problems)
    assert not report.ok and len(report.problems) == 2, text
    assert "8-00001: checksum mismatch" in text and "label-00003: checksum mismatch" in text
    layout.close_env(path)


def test_verify_without_checksums_still_passes_and_says_so(tmp_path):
    """A database of an older sgan (no sum- records, no __meta__ checksums) still verifies."""
    import json

    path = tmp_path / "old.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=8, count=3, workers=1)
    layout.close_env(path)
    with lmdb.open(str(path), map_size=1 << 30) as env, env.begin(write=True) as txn:
        for i in range(3):
            txn.delete(layout.checksum_key(i))
        meta = json.loads(txn.get(layout.META_KEY))
        del meta["checksums"]
        txn.put(layout.META_KEY, json.dumps(meta).encode())
    report = verify_dataset(path)
    assert report.ok and not report.checksums
    assert MultiResolutionDataset(path, resolution=8)[1][0].shape == (3, 8, 8)
    layout.close_env(path)


def test_info_and_preview(shapes_db):
    info = dataset_info(shapes_db)
    assert info["count"] == 24 and info["sizes"] == [4, 8, 16] and info["image_format"] == "png"
    assert info["labels"][0] == "shape_id" and info["bytes_on_disk"] > 0 and info["source"] == "builtin:shapes"
    grid = preview_grid(shapes_db, size=8, count=9)
    assert grid.shape == (3 * 8 + 4, 3 * 8 + 4, 3)
    first = MultiResolutionDataset(shapes_db, resolution=8).image(0)
    assert np.array_equal(grid[:8, :8], first)


def test_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        MultiResolutionDataset(tmp_path / "missing.lmdb", resolution=8)
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="data.mdb"):
        MultiResolutionDataset(tmp_path / "folder", resolution=8)
    with lmdb.open(str(tmp_path / "other.lmdb")) as env, env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    with pytest.raises(DataError, match="no `length` key"):
        MultiResolutionDataset(tmp_path / "other.lmdb", resolution=8)
    layout.close_env(tmp_path / "other.lmdb")


def test_threads_share_one_environment(tmp_path):
    import concurrent.futures as cf

    path = tmp_path / "t.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=8, count=16, workers=1)
    ds = MultiResolutionDataset(path, resolution=8)
    ds.close()  # the threads below race to reopen it
    with cf.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: ds[i][0], range(16)))
    assert all(torch.equal(g, ds[i][0]) for i, g in enumerate(got))


def test_open_env_can_be_closed_while_a_dataset_reads(shapes_db):
    ds = MultiResolutionDataset(shapes_db, resolution=8)
    ds[0]
    env = layout.open_env(shapes_db)
    with env.begin() as txn:
        assert txn.get(b"length") == b"24"
    env.close()
    assert ds[1][0].shape == (3, 8, 8)
