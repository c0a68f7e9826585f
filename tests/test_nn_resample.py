"""FIR resampling vs upfirdn2d's definition, written out independently here with loops over taps."""

import pytest
import torch

from sgan.nn.resample import conv2d_resample, downsample2d, filter2d, setup_filter, upsample2d


def upfirdn2d_definition(x, f, *, up=1, down=1, pad=(0, 0), gain=1.0):
    """The documented definition: zero-insert (up - 1 zeros after each sample), pad (negative crops),
    true convolution with f * gain (correlation with the flipped filter), keep every down-th sample."""
    n, c, h, w = x.shape
    u = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    u[:, :, ::up, ::up] = x
    p0, p1 = pad
    u = torch.nn.functional.pad(u, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0:
        u = u[:, :, -p0:, -p0:]
    if p1 < 0:
        u = u[:, :, :p1, :p1]
    fh, fw = f.shape
    oh, ow = u.shape[2] - fh + 1, u.shape[3] - fw + 1
    out = torch.zeros(n, c, oh, ow, dtype=x.dtype)
    g = f.flip([0, 1]) * gain
    for a in range(fh):
        for b in range(fw):
            out += g[a, b] * u[:, :, a:a + oh, b:b + ow]
    return out[:, :, ::down, ::down]


def test_filter_is_normalised_outer_product_of_1331():
    f = setup_filter()
    expected = torch.tensor([1., 3, 3, 1])[:, None] * torch.tensor([1., 3, 3, 1])[None] / 64
    assert torch.equal(f, expected)
    assert f.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_upsample2d_is_upfirdn2d_up2_pad21_gain4(asymmetric):
    torch.manual_seed(0)
    f = torch.rand(4, 4, dtype=torch.float64) if asymmetric else setup_filter().double()
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    got = upsample2d(x, f)
    assert got.shape == (2, 3, 10, 12)
    ref = upfirdn2d_definition(x, f, up=2, pad=(2, 1), gain=4.0)
    assert torch.allclose(got, ref, atol=1e-12)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_downsample2d_is_upfirdn2d_down2_pad11(asymmetric):
    torch.manual_seed(1)
    f = torch.rand(4, 4, dtype=torch.float64) if asymmetric else setup_filter().double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    got = downsample2d(x, f)
    assert got.shape == (2, 3, 4, 4)
    assert torch.allclose(got, upfirdn2d_definition(x, f, down=2, pad=(1, 1)), atol=1e-12)


def test_filter2d_asymmetric_pad():
    torch.manual_seed(2)
    f = torch.rand(4, 4, dtype=torch.float64)
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    assert torch.allclose(filter2d(x, f, pad=(2, 1), gain=3.0), upfirdn2d_definition(x, f, pad=(2, 1), gain=3.0))


def _conv_definition(x, w, padding):
    """Plain correlation, as torch.nn.functional.conv2d, written with loops."""
    o, i, k, _ = w.shape
    xp = torch.nn.functional.pad(x, [padding] * 4)
    oh, ow = xp.shape[2] - k + 1, xp.shape[3] - k + 1
    out = torch.zeros(x.shape[0], o, oh, ow, dtype=x.dtype)
    for a in range(k):
        for b in range(k):
            out += torch.einsum("nihw,oi->nohw", xp[:, :, a:a + oh, b:b + ow], w[:, :, a, b])
    return out


@pytest.mark.parametrize("k", [3, 1])
def test_conv_up2_is_upsample_with_fir_then_conv(k):
    """conv2d_resample up=2 (transposed conv + FIR) equals the FIR 2x upsampling over the filter's whole
    support (pads widened by k // 2 instead of zero-padding the upsampled image) followed by a valid
    true convolution with the k x k kernel (correlation with the flipped kernel): NVIDIA's layers
    with up=2 pass flip_weight=False, so imported weights apply unchanged."""
    torch.manual_seed(3)
    f = setup_filter().double()
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    w = torch.randn(3, 4, k, k, dtype=torch.float64)
    got = conv2d_resample(x, w, f, up=2, padding=k // 2)
    p = k // 2
    ref = _conv_definition(upfirdn2d_definition(x, f, up=2, pad=(2 + p, 1 + p), gain=4.0), w.flip([2, 3]), 0)
    assert got.shape == ref.shape == (2, 3, 10, 10)
    assert torch.allclose(got, ref, atol=1e-10)


@pytest.mark.parametrize("k", [3, 1])
def test_conv_down2_is_fir_then_strided_conv(k):
    torch.manual_seed(4)
    f = setup_filter().double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(3, 4, k, k, dtype=torch.float64)
    got = conv2d_resample(x, w, f, down=2, padding=k // 2)
    # FIR with padding (p + 1, p + 1) (+ the conv's own padding), then a stride-2 valid conv.
    p = k // 2
    ref = _conv_definition(upfirdn2d_definition(x, f, pad=(p + 1, p + 1)), w, 0)[:, :, ::2, ::2]
    assert got.shape == ref.shape == (2, 3, 4, 4)
    assert torch.allclose(got, ref, atol=1e-10)


def test_grouped_conv_up2_matches_per_group():
    torch.manual_seed(5)
    f = setup_filter().double()
    x = torch.randn(1, 2 * 4, 5, 5, dtype=torch.float64)
    w = torch.randn(2 * 3, 4, 3, 3, dtype=torch.float64)
    got = conv2d_resample(x, w, f, up=2, padding=1, groups=2)
    ref = torch.cat([conv2d_resample(x[:, 4 * g:4 * g + 4], w[3 * g:3 * g + 3], f, up=2, padding=1) for g in range(2)], 1)
    assert torch.allclose(got, ref, atol=1e-10)


def test_resampling_is_twice_differentiable():
    f = setup_filter().double()
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: downsample2d(upsample2d(t, f), f), (x,))
