"""`builtin:digits`: the 1,797 handwritten digits that scikit-learn ships (sklearn.datasets.load_digits():
8x8 images at 17 grey levels, 0 to 16, from the UCI optical recognition of handwritten digits set,
10 classes "0" to "9", about 180 of each), a real labelled dataset that needs no download.

Each image is scaled to 0..255 (value * 255 / 16, rounded), upsampled from 8 to 32 px with bicubic
interpolation (Pillow's BICUBIC, clipped to 0..255), and stored as grey RGB (three equal channels),
as `sgan prepare-dataset` stores every greyscale image; smaller sizes come from the 32 px image
(box filter, as every pyramid). White strokes on black, in the order scikit-learn gives them. The
class is stored as a class label (classes "0".."9"), so `--cond`, `sgan detector train` and
`sgan metrics modes` work on it. An optional extra: `pip install "sgan[digits]"`.
"""

from __future__ import annotations

import functools

import numpy as np

from sgan.errors import UsageError

DIGITS_COUNT = 1797
DIGITS_SIZE = 32
DIGITS_CLASSES = [str(d) for d in range(10)]


@functools.lru_cache(maxsize=1)
def _load():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError('builtin:digits needs scikit-learn, which is not installed; run '
                         '`pip install "sgan[digits]"` (or `pip install scikit-learn`).') from None
    return load_digits()


def digits_labels() -> np.ndarray:
    """The class (0-9) of each of the 1,797 digits, int64 [1797]."""
    return np.asarray(_load().target, dtype=np.int64)


def digits_images(size: int = DIGITS_SIZE, *, start: int = 0, count: int | None = None) -> np.ndarray:
    """uint8 [count, size, size, 3] (size <= 32) of digits start..start+count-1."""
    from PIL import Image

    assert 1 <= size <= DIGITS_SIZE, f"builtin:digits is prepared at {DIGITS_SIZE} px at most, got {size}"
    raw = np.asarray(_load().images, dtype=np.float64)
    stop = raw.shape[0] if count is None else min(raw.shape[0], start + count)
    raw = raw[start:stop]
    out = np.empty((raw.shape[0], size, size, 3), dtype=np.uint8)
    for i, digit in enumerate(raw):
        grey = np.clip(np.rint(digit * (255.0 / 16.0)), 0, 255).astype(np.uint8)
        img = Image.fromarray(grey, mode="L").resize((DIGITS_SIZE, DIGITS_SIZE), Image.Resampling.BICUBIC)
        if size != DIGITS_SIZE:
            img = img.resize((size, size), Image.Resampling.BOX)
        out[i] = np.asarray(img)[:, :, None]
    return out
