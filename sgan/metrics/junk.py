"""Junk images of the kinds undertrained generators produce, made from real images.

A class detector trained only on real classes must still put every generated image somewhere, so a
smeared blob would count as a confident "circle" or "8". The detector therefore learns one more
class, `junk`, from four kinds of corrupted reals (each a quarter of the junk images):

- `blend`: a * x_i + (1 - a) * x_j of two reals, a ~ U(0.3, 0.7) (ghosted, two objects half there);
- `blur`: a real downsampled to 1/8 of its side (area) and upsampled again (bilinear): a blob;
- `noise`: smooth colour noise (2-8 px of N(0, 0.6) upsampled bilinearly) around a real's mean colour;
- `shuffle`: a real cut into 4 x 4 tiles put back in a random order (right texture, no structure).

All randomness comes from the `generator` passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("blend", "blur", "noise", "shuffle")


def make_junk(reals: torch.Tensor, num: int, *, generator: torch.Generator) -> torch.Tensor:
    """`num` junk images [num, C, r, r] in [-1, 1] from real images `reals` [N, C, r, r] in [-1, 1]."""
    assert reals.ndim == 4 and reals.shape[2] == reals.shape[3] and reals.shape[0] >= 1, \
        f"expected square images [N, C, r, r], got {list(reals.shape)}"
    n, c, r, _ = reals.shape
    kinds = torch.randperm(num, generator=generator) % len(KINDS)
    first = torch.randint(0, n, [num], generator=generator)
    second = torch.randint(0, n, [num], generator=generator)
    out = torch.empty(num, c, r, r, dtype=reals.dtype)
    x = reals[first]
    # blend
    a = torch.rand(num, 1, 1, 1, generator=generator) * 0.4 + 0.3
    blend = a * x + (1 - a) * reals[second]
    # blur
    small = max(1, r // 8)
    blur = F.interpolate(F.interpolate(x, size=(small, small), mode="area"), size=(r, r), mode="bilinear",
                         align_corners=False)
    # noise: one noise resolution per image, from 2 to 8 px
    noise = torch.empty_like(x)
    sides = torch.randint(1, 4, [num], generator=generator)
    for i in range(num):
        s = min(r, 2 ** int(sides[i]))
        field = torch.randn(1, c, s, s, generator=generator) * 0.6
        noise[i] = F.interpolate(field, size=(r, r), mode="bilinear", align_corners=False)[0]
    noise = noise + x.mean(dim=(2, 3), keepdim=True)
    # shuffle: 4 x 4 tiles
    t = max(1, r // 4)
    g = r // t
    tiles = x.reshape(num, c, g, t, g, t).permute(0, 2, 4, 1, 3, 5).reshape(num, g * g, c, t, t)
    order = torch.argsort(torch.rand(num, g * g, generator=generator), dim=1)
    tiles = tiles[torch.arange(num)[:, None], order]
    shuffle = tiles.reshape(num, g, g, c, t, t).permute(0, 3, 1, 4, 2, 5).reshape(num, c, r, r)
    for k, made in enumerate((blend, blur, noise, shuffle)):
        pick = kinds == k
        out[pick] = made[pick]
    return out.clamp(-1.0, 1.0)
