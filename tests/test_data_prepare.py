"""prepare_dataset on a folder of good and broken files, a zip and builtin:shapes; interrupted writes."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from sgan.data import images, layout
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.prepare import prepare_dataset
from sgan.data.shapes import render_shapes
from sgan.errors import DataError, UsageError

MAX = 16


def _rng_rgb(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, img: Image.Image, fmt: str, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt, **kw)


def make_fixture_folder(root: Path) -> dict:
    """Good images of several modes, sizes and formats plus broken ones; returns what is expected."""
    good = {}
    for i in range(3):  # exact-size PNGs, kept bit-for-bit
        arr = _rng_rgb(MAX, MAX, i)
        _save(root / f"png/exact_{i}.png", Image.fromarray(arr), "PNG")
        good[f"png/exact_{i}.png"] = arr
    _save(root / "modes/gray.png", Image.fromarray(np.full((20, 20), 128, np.uint8), "L"), "PNG")
    _save(root / "modes/palette.png", Image.fromarray(_rng_rgb(20, 20, 9)).quantize(16), "PNG")
    rgba = np.zeros((MAX, MAX, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[: MAX // 2, :, 3] = 255
    _save(root / "modes/rgba.png", Image.fromarray(rgba, "RGBA"), "PNG")
    _save(root / "modes/sixteen.png", Image.fromarray(np.full((20, 20), 40000, np.uint16)), "PNG")
    _save(root / "modes/cmyk.jpg", Image.new("CMYK", (24, 24), (0, 255, 255, 0)), "JPEG", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(root / "modes/rotated.jpg", Image.fromarray(_rng_rgb(20, 32, 4)), "JPEG", quality=95, exif=exif.tobytes())
    _save(root / "deep/er/wide.jpg", Image.fromarray(_rng_rgb(24, 40, 5)), "JPEG", quality=90)
    _save(root / "formats/a.webp", Image.fromarray(_rng_rgb(20, 20, 6)), "WEBP")
    _save(root / "formats/b.bmp", Image.fromarray(_rng_rgb(20, 20, 7)), "BMP")
    _save(root / "formats/c.tif", Image.fromarray(_rng_rgb(20, 20, 8)), "TIFF")
    _save(root / "formats/d.gif", Image.fromarray(_rng_rgb(20, 20, 10)), "GIF")
    # Broken ones.
    buf = io.BytesIO()
    Image.fromarray(_rng_rgb(64, 64, 11)).save(buf, format="JPEG", quality=90)
    (root / "bad").mkdir()
    (root / "bad/truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "bad/empty.png").write_bytes(b"")
    (root / "bad/text.png").write_bytes(b"hello, I am not a png\n")
    _save(root / "bad/small.png", Image.fromarray(_rng_rgb(8, 8, 12)), "PNG")
    (root / "notes.txt").write_text("not an image")
    return {
        "good": good,
        "kept": 3 + 6 + 1 + 4,
        "skipped": {images.CORRUPT: 1, images.EMPTY: 1, images.NOT_AN_IMAGE: 1, images.TOO_SMALL: 1,
                    images.UNSUPPORTED: 1},
    }


@pytest.fixture(scope="module")
def fixture_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return root, make_fixture_folder(root)


@pytest.mark.parametrize("workers", [1, 2])
def test_folder_counts_reasons_and_manifest(tmp_path, fixture_folder, workers):
    root, expected = fixture_folder
    calls = []
    summary = prepare_dataset(str(root), tmp_path / "out.lmdb", max_size=MAX, workers=workers,
                              progress=lambda d, t: calls.append((d, t)))
    assert summary.count == expected["kept"]
    assert summary.skipped == expected["skipped"]
    assert summary.sizes == [4, 8, 16]
    assert calls and calls[-1][0] == calls[-1][1] == expected["kept"] + 4
    manifest = json.loads((tmp_path / "out.lmdb/manifest.json").read_text())
    by_file = {e["file"]: e["reason"] for e in manifest["skipped"]}
    assert by_file == {"bad/truncated.jpg": images.CORRUPT, "bad/empty.png": images.EMPTY,
                       "bad/text.png": images.NOT_AN_IMAGE, "bad/small.png": images.TOO_SMALL,
                       "notes.txt": images.UNSUPPORTED}
    ds = MultiResolutionDataset(tmp_path / "out.lmdb", resolution=MAX)
    assert len(ds) == expected["kept"] and ds.metadata["count"] == expected["kept"]
    assert ds.sizes == [4, 8, 16] and ds.metadata["source"] == str(root)


def test_png_round_trip_is_pixel_exact_and_levels_are_box_averages(tmp_path, fixture_folder):
    root, expected = fixture_folder
    prepare_dataset(str(root), tmp_path / "out.lmdb", max_size=MAX, workers=1)
    ds = MultiResolutionDataset(tmp_path / "out.lmdb", resolution=MAX)
    # Sorted relative paths give the indices: bad/* are skipped, deep/er/wide.jpg is 0, formats/* 1-4, modes/* 5-10, png/* 11-13.
    for k, name in enumerate(sorted(expected["good"])):
        arr = expected["good"][name]
        assert np.array_equal(ds.image(11 + k), arr)
        for s in (8, 4):
            assert np.array_equal(ds.image(11 + k, s), np.rint(images.block_mean(arr, MAX // s)).astype(np.uint8))
    for i in range(len(ds)):
        for s in (8, 4):
            above = ds.image(i, 2 * s).astype(np.float32)
            assert np.abs(ds.image(i, s).astype(np.float32) - images.block_mean(above, 2)).max() <= 1.0
    rgba = ds.image(8)  # modes/rgba.png: blue top half over a white background
    assert (rgba[: MAX // 2] == [0, 0, 255]).all() and (rgba[MAX // 2:] == [255, 255, 255]).all()


def test_strict_makes_a_skip_fatal_and_writes_nothing(tmp_path, fixture_folder):
    root, _ = fixture_folder
    with pytest.raises(DataError, match="--strict"):
        prepare_dataset(str(root), tmp_path / "out.lmdb", max_size=MAX, workers=1, strict=True)
    assert not (tmp_path / "out.lmdb").exists() and not (tmp_path / "out.lmdb.partial").exists()


def test_upscale_keeps_small_images_and_crop_none_refuses_non_square(tmp_path, fixture_folder):
    root, expected = fixture_folder
    s = prepare_dataset(str(root), tmp_path / "up.lmdb", max_size=MAX, workers=1, upscale=True)
    assert s.count == expected["kept"] + 1
    with pytest.raises(DataError, match="not square"):
        prepare_dataset(str(root), tmp_path / "none.lmdb", max_size=MAX, workers=1, crop="none")
    assert not (tmp_path / "none.lmdb").exists()


def test_existing_output_needs_overwrite_and_a_non_dataset_is_never_deleted(tmp_path):
    prepare_dataset("builtin:shapes", tmp_path / "s.lmdb", max_size=8, count=4, workers=1)
    with pytest.raises(DataError, match="--overwrite"):
        prepare_dataset("builtin:shapes", tmp_path / "s.lmdb", max_size=8, count=4, workers=1)
    s = prepare_dataset("builtin:shapes", tmp_path / "s.lmdb", max_size=8, count=6, workers=1, overwrite=True)
    assert s.count == 6 and MultiResolutionDataset(tmp_path / "s.lmdb", resolution=8).num_images == 6
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(DataError, match="not an LMDB"):
        prepare_dataset("builtin:shapes", precious, max_size=8, count=4, workers=1, overwrite=True)
    assert (precious / "thesis.tex").exists()


def test_empty_and_missing_sources_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no files"):
        prepare_dataset(str(tmp_path / "empty"), tmp_path / "o.lmdb", max_size=8)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/readme.md").write_text("x")
    with pytest.raises(DataError, match="no image files"):
        prepare_dataset(str(tmp_path / "docs"), tmp_path / "o.lmdb", max_size=8)
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset(str(tmp_path / "nope"), tmp_path / "o.lmdb", max_size=8)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/x.png").write_bytes(b"")
    with pytest.raises(DataError, match="no usable images"):
        prepare_dataset(str(tmp_path / "bad"), tmp_path / "o.lmdb", max_size=8)
    with pytest.raises(UsageError, match="power of two"):
        prepare_dataset("builtin:shapes", tmp_path / "o.lmdb", max_size=48)
    with pytest.raises(UsageError, match="unknown built-in"):
        prepare_dataset("builtin:faces", tmp_path / "o.lmdb", max_size=8)
    with pytest.raises(UsageError, match="variant"):
        prepare_dataset("builtin:shapes?variant=impossible", tmp_path / "o.lmdb", max_size=8)


def test_zip_source_and_jpeg_format(tmp_path):
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5):
            buf = io.BytesIO()
            Image.fromarray(_rng_rgb(20, 20, i)).save(buf, format="PNG")
            zf.writestr(f"a/{i}.png", buf.getvalue())
        zf.writestr("a/readme.txt", "x")
        zf.writestr("__MACOSX/a/._0.png", b"\x00\x05\x16\x07")
    s = prepare_dataset(str(archive), tmp_path / "z.lmdb", max_size=16, format="jpeg", quality=90, workers=2)
    assert s.count == 5 and s.skipped == {images.UNSUPPORTED: 2}
    ds = MultiResolutionDataset(tmp_path / "z.lmdb", resolution=16)
    assert ds.metadata["image_format"] == "jpeg" and ds.metadata["quality"] == 90
    with layout.shared_env(tmp_path / "z.lmdb").begin() as txn:
        assert images.record_format(txn.get(b"16-00000")) == "jpeg"


def test_count_caps_a_folder(tmp_path, fixture_folder):
    root, _ = fixture_folder
    s = prepare_dataset(str(root), tmp_path / "c.lmdb", max_size=MAX, count=3, workers=2)
    assert s.count == 3


def test_builtin_shapes_database_holds_images_labels_and_metadata(tmp_path):
    s = prepare_dataset("builtin:shapes", tmp_path / "s.lmdb", max_size=32, count=40, seed=3, workers=2)
    assert s.count == 40 and s.sizes == [4, 8, 16, 32]
    ds = MultiResolutionDataset(tmp_path / "s.lmdb", resolution=32)
    pixels, attrs = render_shapes(40, seed=3, size=32)
    for i in (0, 17, 39):
        img, label = ds[i]
        assert np.array_equal(img.permute(1, 2, 0).numpy(), pixels[i])
        assert ds.attributes(i) == attrs[i]
        names = ds.label_names
        assert label.shape == (len(names),) and label[names.index("cx")] == pytest.approx(attrs[i]["cx"])
    meta = ds.metadata
    assert meta["builtin"] == {"name": "shapes", "variant": "default", "seed": 3, "params": meta["builtin"]["params"]}
    assert meta["labels"]["names"][0] == "shape_id" and meta["format_version"] == layout.FORMAT_VERSION
    with layout.shared_env(tmp_path / "s.lmdb").begin() as txn:  # the env the dataset already opened
        assert txn.get(b"length") == b"40" and txn.get(b"__writing__") is None
        keys = [k for k, _ in txn.cursor()]
    assert b"4-00000" in keys and b"32-00039" in keys


def test_ctrl_c_leaves_no_database(tmp_path):
    def interrupt(done, total):
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("builtin:shapes", tmp_path / "i.lmdb", max_size=8, count=64, workers=2, progress=interrupt)
    assert not (tmp_path / "i.lmdb").exists() and not (tmp_path / "i.lmdb.partial").exists()


def test_killed_write_is_detected_and_replaced_on_the_next_run(tmp_path):
    out = tmp_path / "k.lmdb"
    script = (
        "import os, signal\n"
        "from sgan.data.prepare import prepare_dataset\n"
        "def die(done, total):\n"
        "    if done >= 300: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"prepare_dataset('builtin:shapes', {str(out)!r}, max_size=8, count=2000, workers=1, progress=die)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    partial = tmp_path / "k.lmdb.partial"
    assert not out.exists() and partial.exists()
    with pytest.raises(DataError, match="incomplete"):
        MultiResolutionDataset(partial, resolution=8)
    s = prepare_dataset("builtin:shapes", out, max_size=8, count=10, workers=1)
    assert s.count == 10 and not partial.exists()


def test_a_database_marked_as_being_written_is_refused(tmp_path):
    path = tmp_path / "w.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=8, count=4, workers=1)
    with lmdb.open(str(path), map_size=1 << 30) as env, env.begin(write=True) as txn:
        txn.put(layout.WRITING_KEY, b"{}")
        txn.delete(layout.META_KEY)
    with pytest.raises(DataError, match="incomplete"):
        MultiResolutionDataset(path, resolution=8)


def test_output_folders_are_created_and_databases_inside_the_source_are_not_read(tmp_path):
    src = tmp_path / "pics"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_rng_rgb(16, 16, i)).save(src / f"{i}.png")
    prepare_dataset(str(src), src / "old.lmdb", max_size=8, workers=1)  # a database inside the source
    s = prepare_dataset(str(src), tmp_path / "new/deeper/out.lmdb", max_size=8, workers=1)
    assert s.count == 3 and s.skipped == {}
