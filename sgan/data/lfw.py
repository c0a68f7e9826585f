"""`builtin:lfw-faces`: the 100 real face crops that scikit-image ships (skimage.data.lfw_subset():
200 greyscale 25x25 images from Labeled Faces in the Wild, the first 100 faces, the rest not),
resized to 32 px (Lanczos) and stored as grey RGB. An optional extra: `pip install "sgan[lfw]"`.
"""

from __future__ import annotations

import numpy as np

from sgan.errors import UsageError

LFW_COUNT = 100
LFW_SIZE = 32


def lfw_faces(size: int = LFW_SIZE) -> np.ndarray:
    """uint8 [100, size, size, 3] (size <= 32)."""
    try:
        from skimage import data
    except ImportError:
        raise UsageError('builtin:lfw-faces needs scikit-image, which is not installed; run '
                         '`pip install "sgan[lfw]"` (or `pip install scikit-image`).') from None
    from PIL import Image

    faces = np.asarray(data.lfw_subset()[:LFW_COUNT], dtype=np.float64)
    out = np.empty((LFW_COUNT, size, size, 3), dtype=np.uint8)
    for i, face in enumerate(faces):
        img = Image.fromarray(np.clip(np.rint(face * 255.0), 0, 255).astype(np.uint8), mode="L")
        img = img.resize((LFW_SIZE, LFW_SIZE), Image.Resampling.LANCZOS)
        if size != LFW_SIZE:
            img = img.resize((size, size), Image.Resampling.BOX)
        out[i] = np.asarray(img)[:, :, None]
    return out
