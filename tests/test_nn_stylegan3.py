"""sgan.nn.stylegan3: the filtered leaky ReLU against its literal definition, the filter design against
scipy's, and the generator's behaviour (shapes, batch independence, no noise, magnitude EMA, transform)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F

from sgan.nn import ModelConfig, make_discriminator, make_generator
from sgan.nn.stylegan3 import input_transform
from sgan.nn.stylegan3.design import layer_plan, lowpass_filter
from sgan.nn.stylegan3.filtered_lrelu import filtered_lrelu, upfir_matrix


def literal(x, fu, fd, b, up, down, pad, gain, slope, clamp):
    """Zero insertion, pad / crop, the full 2-D filter (times up^2), lrelu * gain, clamp, filter, decimate."""
    n, c, h, w = x.shape
    x = x + b.view(1, -1, 1, 1)
    u = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    u[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = F.pad(u, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    u = u[:, :, max(-py0, 0):u.shape[2] - max(-py1, 0), max(-px0, 0):u.shape[3] - max(-px1, 0)]

    def conv(v, f2):
        k = f2.shape[0]
        out = F.conv2d(v.reshape(n * c, 1, *v.shape[2:]), f2.flip([0, 1])[None, None].to(v.dtype))
        return out.reshape(n, c, v.shape[2] - k + 1, v.shape[3] - k + 1)

    u = conv(u, torch.outer(fu, fu) * up * up)
    u = (F.leaky_relu(u, slope) * gain).clamp(-clamp, clamp)
    u = conv(u, fd if fd.ndim == 2 else torch.outer(fd, fd))
    return u[:, :, ::down, ::down]


UP_PADS = [(2, (9, 8, 9, 8)), (2, (-11, -12, -11, -12)), (4, (-6, -9, -6, -9)), (2, (11, 10, 7, 6))]  # T/R layers, uneven


@pytest.mark.parametrize("up_pad,radial,form", list(itertools.product(UP_PADS, [False, True], ["matmul", "conv"])))
def test_filtered_lrelu_is_its_definition_in_both_forms(up_pad, radial, form):
    up, pad = up_pad
    gen = torch.Generator().manual_seed(up * 100 + pad[0])
    x = torch.randn(2, 3, 36, 36, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64)
    fu = lowpass_filter(6 * up, cutoff=3.0, width=6.0, fs=16 * up).double()
    fd = lowpass_filter(12, cutoff=5.0, width=4.0, fs=32.0, radial=radial).double()
    ref = literal(x, fu, fd, b, up, 2, pad, 2 ** 0.5, 0.2, 1.5)
    out = filtered_lrelu(x, up_filter=fu, down_filter=fd, bias=b, up=up, down=2, padding=pad, clamp=1.5, form=form)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_upfir_matrix_rows_hold_the_filter_taps():
    f = torch.tensor([1.0, 2.0, 3.0, 4.0])
    m = upfir_matrix(5, f, up=2, pad=(3, 2), gain=2.0)
    assert m.shape == (5 * 2 + 3 + 2 - 4 + 1, 5)
    x = torch.randn(5)
    u = torch.zeros(10)
    u[::2] = x
    ref = np.convolve(F.pad(u, (3, 2)).numpy(), 2 * f.numpy(), mode="valid")
    np.testing.assert_allclose((m @ x).numpy(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("numtaps,cutoff,width,fs", [(12, 2.0, 12.0, 32), (24, 4.0, 8.0, 64), (12, 25.4, 14.7, 128)])
def test_filters_are_scipys_kaiser_firwin_and_the_jinc_design(numtaps, cutoff, width, fs):
    mine = lowpass_filter(numtaps, cutoff=cutoff, width=width, fs=fs)
    ref = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
    np.testing.assert_allclose(mine.numpy(), ref, rtol=0, atol=1e-7)
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    jinc = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r) * np.outer(*[np.kaiser(numtaps, beta)] * 2)
    np.testing.assert_allclose(lowpass_filter(numtaps, cutoff=cutoff, width=width, fs=fs, radial=True).numpy(),
                               jinc / jinc.sum(), rtol=0, atol=1e-7)
    assert lowpass_filter(1, cutoff=cutoff, width=width, fs=fs) is None


def test_the_plan_follows_the_paper():
    inp, layers = layer_plan(resolution=256, num_channels=3, channel_base=32768, channel_max=512)
    assert (inp.channels, inp.size, inp.sampling_rate, inp.bandwidth) == (512, 36, 16.0, 2.0)
    assert len(layers) == 15 and layers[-1].is_torgb and [s.is_critically_sampled for s in layers].count(True) == 3
    assert layers[-1].out_size == layers[-2].out_size == 256 and layers[-1].out_channels == 3
    assert all(s.tmp_sampling_rate == 2 * max(s.in_sampling_rate, s.out_sampling_rate) for s in layers[:-1])
    assert layers[-2].out_cutoff == 128 and all(a.out_cutoff <= b.out_cutoff for a, b in zip(layers, layers[1:]))


@pytest.fixture(scope="module", params=["tiny-t", "tiny-r"])
def G(request):
    torch.manual_seed(0)
    return make_generator(ModelConfig.preset(request.param, 32, arch="stylegan3")).eval()


def test_generator_shapes_batch_independence_and_no_noise(G, one_thread):
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        img = G(z)
        alone = G(z[1:2])
        const = G(z, noise_mode="const")
    assert img.shape == (3, 3, 32, 32) and G.num_ws == 16 and torch.isfinite(img).all()
    torch.testing.assert_close(alone, img[1:2], rtol=0, atol=1e-5 * img.abs().max().item())
    assert torch.equal(img, const) and G.synthesis.noise_inputs() == []
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.zeros(1, 5, G.w_dim))
    D = make_discriminator(G.cfg)
    assert D(img).shape == (3, 1)


def test_magnitude_ema_and_the_transform(G, one_thread):
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    before, saved = layer.magnitude_ema.clone(), {k: v.clone() for k, v in G.state_dict().items()}
    ws = G.map(torch.randn(2, G.z_dim))
    with torch.no_grad():
        base = G.synthesis(ws)
        G.synthesis(ws, update_emas=True)
    assert not torch.equal(layer.magnitude_ema, before)
    G.load_state_dict(saved)
    with pytest.raises(RuntimeError), input_transform(G, translate=(0.25, 0.0), rotate=30):
        with torch.no_grad():
            moved = G.synthesis(ws)
        raise RuntimeError("restored even on an error")
    assert torch.equal(G.synthesis.input.transform, torch.eye(3)) and not torch.allclose(moved, base, atol=1e-3)
    with torch.no_grad():
        torch.testing.assert_close(G.synthesis(ws), base, rtol=0, atol=0)
