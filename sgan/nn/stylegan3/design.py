"""The StyleGAN3 layer plan and filters (Karras et al. 2021, "Alias-Free GANs", Sec. 3-4 and App. F).

`layer_plan` derives every synthesis layer's parameters from the config as NVlabs/stylegan3 does:
cutoffs f_c and minimum stopbands f_t grow geometrically from the first layer to the last
non-critical one (then stay), sampling rates s = 2^ceil(log2(min(2 f_t, R))), transition half-widths
f_h = max(f_t, s / 2) - f_c, sizes s + 2 margin (the last two layers R), widths
rint(min(channel_base / 2 / f_c, channel_max)). Each layer upsamples to tmp = max(s_in, s_out) *
lrelu_upsampling (ToRGB: no resampling), filters with Kaiser-windowed sinc (separable) or, for
config R's non-critical layers, a jinc (radially symmetric) downsampling filter.

`lowpass_filter` designs the filters with numpy alone (the window method: ideal low-pass times a
Kaiser window whose beta follows Kaiser's attenuation formula, normalised to unit DC gain), so that
a model built from a config holds the same filter buffers as NVIDIA's pickles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LayerSpec:
    name: str
    is_torgb: bool
    is_critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    up_taps: int
    down_factor: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]   # x_lo, x_hi, y_lo, y_hi around the upsampled signal (negative: crop)

    @property
    def tmp_sampling_rate(self) -> int:
        return self.in_sampling_rate * self.up_factor


@dataclass(frozen=True)
class InputSpec:
    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def _kaiser_beta(atten_db: float) -> float:
    if atten_db > 50:
        return 0.1102 * (atten_db - 8.7)
    if atten_db > 21:
        return 0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21)
    return 0.0


def _kaiser_window(numtaps: int, width: float, fs: float) -> np.ndarray:
    """Kaiser window for a transition band of `width` (Hz at sampling rate fs), Kaiser's empirical formulas."""
    atten = 2.285 * (numtaps - 1) * math.pi * (width / (fs / 2)) + 7.95
    return np.kaiser(numtaps, _kaiser_beta(atten))


def lowpass_filter(numtaps: int, *, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """A low-pass FIR filter: [numtaps] (separable; apply along x and y) or, radial, [numtaps, numtaps]
    (jinc times the outer product of the window). None for numtaps 1 (identity)."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be at least 1, got {numtaps}")
    if numtaps == 1:
        return None
    t = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    window = _kaiser_window(numtaps, width, fs)
    if not radial:
        c = cutoff / (fs / 2)                              # cutoff relative to Nyquist
        h = c * np.sinc(c * t) * window
        return torch.as_tensor(h / h.sum(), dtype=torch.float32)
    x = t / fs
    r = np.hypot(x[None, :], x[:, None])
    arg = torch.from_numpy(2 * math.pi * cutoff * r)
    j1 = torch.special.bessel_j1(arg).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(r > 0, j1 / (math.pi * np.where(r > 0, r, 1.0)), cutoff)   # jinc; limit 2c/2 = c at r = 0
    h = h * np.outer(window, window)
    return torch.as_tensor(h / h.sum(), dtype=torch.float32)


def layer_plan(*, resolution: int, num_channels: int, channel_base: int, channel_max: int, num_layers: int = 14,
               num_critical: int = 2, first_cutoff: float = 2.0, first_stopband: float = 2 ** 2.1,
               last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10, conv_kernel: int = 3, filter_size: int = 6,
               lrelu_upsampling: int = 2, radial_filters: bool = False) -> tuple[InputSpec, list[LayerSpec]]:
    """The input layer and the num_layers + 1 synthesis layers (the last is ToRGB)."""
    if num_layers <= num_critical or num_critical < 0:
        raise ValueError(f"num_layers ({num_layers}) must exceed num_critical ({num_critical})")
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = num_channels
    inp = InputSpec(channels=int(channels[0]), size=int(sizes[0]), sampling_rate=float(rates[0]),
                    bandwidth=float(cutoffs[0]))
    layers = []
    for i in range(num_layers + 1):
        p = max(i - 1, 0)
        torgb = i == num_layers
        critical = i >= num_layers - num_critical
        s_in, s_out = int(rates[p]), int(rates[i])
        tmp = max(s_in, s_out) * (1 if torgb else lrelu_upsampling)
        up, down = tmp // s_in, tmp // s_out
        if s_in * up != tmp or s_out * down != tmp:
            raise ValueError(f"layer {i}: sampling rates {s_in} -> {tmp} -> {s_out} are not integer ratios")
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        k = 1 if torgb else conv_kernel
        in_size, out_size = int(sizes[p]), int(sizes[i])
        total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2             # the symmetric sample positions (paper, App. C.3)
        hi = total - lo
        out_ch = int(channels[i])
        layers.append(LayerSpec(
            name=f"L{i}_{out_size}_{out_ch}", is_torgb=torgb, is_critically_sampled=critical,
            in_channels=int(channels[p]), out_channels=out_ch, in_size=in_size, out_size=out_size,
            in_sampling_rate=s_in, out_sampling_rate=s_out, in_cutoff=float(cutoffs[p]), out_cutoff=float(cutoffs[i]),
            in_half_width=float(half_widths[p]), out_half_width=float(half_widths[i]), conv_kernel=k,
            up_factor=up, up_taps=up_taps, down_factor=down, down_taps=down_taps,
            down_radial=radial_filters and not critical, padding=(lo, hi, lo, hi)))
    return inp, layers
