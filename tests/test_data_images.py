"""Decoding every image mode to RGB uint8, square crops, and the box / lanczos pyramid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sgan.data import images
from sgan.data.images import SkipImage, block_mean, build_pyramid, decode_image, encode_image, square


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(w=24, h=24, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_rgb_is_exact():
    arr = _rgb()
    out = decode_image(_bytes(Image.fromarray(arr), "PNG"))
    assert out.dtype == np.uint8 and out.shape == (24, 24, 3)
    assert np.array_equal(out, arr)


def test_grayscale_palette_and_bilevel_become_rgb():
    gray = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    out = decode_image(_bytes(gray, "PNG"))
    assert out.shape == (16, 16, 3) and np.array_equal(out[..., 0], np.asarray(gray)) and np.array_equal(out[..., 0], out[..., 2])
    pal = Image.fromarray(_rgb(16, 16)).quantize(8)
    assert decode_image(_bytes(pal, "PNG")).shape == (16, 16, 3)
    assert decode_image(_bytes(gray.convert("1"), "PNG")).shape == (16, 16, 3)


def test_rgba_is_composited_on_background():
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 255          # red
    rgba[:4, :, 3] = 255        # top half opaque, bottom half transparent
    data = _bytes(Image.fromarray(rgba, "RGBA"), "PNG")
    white = decode_image(data)
    assert (white[:4] == [255, 0, 0]).all() and (white[4:] == [255, 255, 255]).all()
    green = decode_image(data, background=(0, 255, 0))
    assert (green[4:] == [0, 255, 0]).all()


def test_16bit_png_is_scaled_not_clipped():
    values = (np.linspace(0, 65535, 64).reshape(8, 8)).astype(np.uint16)
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    out = decode_image(_bytes(img, "PNG"))
    assert out.shape == (8, 8, 3)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert np.abs(out[..., 0].astype(int) - np.rint(values / 257.0)).max() <= 1


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    out = decode_image(_bytes(cmyk, "JPEG", quality=95))
    assert out.shape == (16, 16, 3)
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    arr = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high; left half red, right half blue
    arr[:, :20] = [255, 0, 0]
    arr[:, 20:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = decode_image(_bytes(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == (40, 20, 3)  # portrait after rotation
    top, bottom = out[:10].reshape(-1, 3).mean(0), out[-10:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and bottom[2] > 200  # the left (red) half went to the top


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "GIF"])
def test_other_formats_decode(fmt):
    arr = _rgb(16, 16)
    out = decode_image(_bytes(Image.fromarray(arr), fmt))
    assert out.shape == (16, 16, 3)


@pytest.mark.parametrize("data,reason", [
    (b"", images.EMPTY),
    (b"this is a text file, not a png\n" * 4, images.NOT_AN_IMAGE),
])
def test_bad_bytes_are_skipped_with_a_reason(data, reason):
    with pytest.raises(SkipImage) as info:
        decode_image(data)
    assert info.value.reason == reason


def test_truncated_jpeg_is_skipped_even_if_pillow_is_told_to_allow_it():
    from PIL import ImageFile

    data = _bytes(Image.fromarray(_rgb(64, 64)), "JPEG", quality=90)
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # another library flipped the process-wide flag
    try:
        with pytest.raises(SkipImage) as info:
            decode_image(data[: len(data) // 2])
        assert info.value.reason == images.CORRUPT
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored afterwards
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_decompression_bomb_is_refused_from_the_header():
    data = _bytes(Image.new("L", (64, 64)), "PNG")
    with pytest.raises(SkipImage) as info:
        decode_image(data, max_pixels=1000)
    assert info.value.reason == images.BOMB


def test_square_center_pad_none():
    arr = _rgb(30, 20)
    c = square(arr, "center")
    assert c.shape == (20, 20, 3) and np.array_equal(c, arr[:, 5:25])
    p = square(arr, "pad", background=(1, 2, 3))
    assert p.shape == (30, 30, 3) and np.array_equal(p[5:25], arr) and (p[0] == [1, 2, 3]).all()
    with pytest.raises(SkipImage) as info:
        square(arr, "none")
    assert info.value.reason == images.NOT_SQUARE


def test_box_pyramid_is_the_official_float_chain():
    top = _rgb(32, 32, seed=3)
    levels = build_pyramid(top, [32, 16, 8, 4])
    assert np.array_equal(levels[32], top)
    for s in (16, 8, 4):
        # Each level is the block mean of the full-size crop, rounded once ...
        assert np.array_equal(levels[s], np.rint(block_mean(top, 32 // s)).astype(np.uint8))
        # ... which is the 2x2 average of the level above, up to that level's own rounding.
        above = levels[2 * s]
        assert np.abs(levels[s].astype(int) - np.rint(block_mean(above, 2)).astype(int)).max() <= 1


def test_box_pyramid_downsizes_larger_and_refuses_smaller_images():
    big = _rgb(64, 64)
    levels = build_pyramid(big, [32, 16])
    assert np.abs(levels[32].astype(float) - block_mean(big, 2)).max() <= 1.0  # area average
    with pytest.raises(SkipImage) as info:
        build_pyramid(_rgb(16, 16), [32, 16])
    assert info.value.reason == images.TOO_SMALL
    assert build_pyramid(_rgb(16, 16), [32, 16], upscale=True)[32].shape == (32, 32, 3)


def test_lanczos_resizes_each_level_from_the_source():
    src = _rgb(48, 48)
    levels = build_pyramid(src, [32, 16, 8], resample="lanczos")
    expected = np.asarray(Image.fromarray(src).resize((8, 8), Image.LANCZOS))
    assert np.array_equal(levels[8], expected)


def test_encode_png_is_lossless_and_jpeg_is_jpeg():
    arr = _rgb(16, 16)
    png = encode_image(arr, "png")
    assert images.record_format(png) == "png" and np.array_equal(images.decode_record(png), arr)
    jpg = encode_image(arr, "jpeg", quality=90)
    assert images.record_format(jpg) == "jpeg" and images.decode_record(jpg).shape == (16, 16, 3)


def test_parse_color():
    assert images.parse_color("white") == (255, 255, 255)
    assert images.parse_color("#102030") == (16, 32, 48)
    assert images.parse_color("1, 2, 3") == (1, 2, 3)
    with pytest.raises(ValueError):
        images.parse_color("not-a-colour")
