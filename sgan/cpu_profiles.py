"""CPU profiles: a test/debug aid that makes sgan behave as if it ran on another CPU family.

`SGAN_CPU_PROFILE=avx2|avx512|amx` (unset, empty or `native`: the real CPU) replaces what sgan.device
reads from the machine: the CPU flags (`sgan.device.cpu_flags`) and the default timer of
`sgan.device.choose_precision` (`sgan.device.time_call`), which then returns the profile's relative
speeds (nominal, fixed, without running anything) instead of measuring. Every `auto` choice then
takes the branch it would take on that CPU, and what it chooses is computed for real: bfloat16 and
float16 autocast run, emulated, on any x86 CPU (correct, only slower where the hardware lacks them).

It is meant for tests (`pytest --cpu-profile amx`, CI's `make test-profiles`) and for reproducing a
report from another machine; never for speed: the timings it reports are not measurements.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sgan.errors import UsageError

ENV = "SGAN_CPU_PROFILE"
NOMINAL_FP32_MS = 10.0   # what the profile timer reports for fp32; the others are this times their factor

_BASE = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2 movbe aes pclmulqdq"
_AVX512 = "avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512ifma avx512vbmi"


@dataclass(frozen=True)
class CpuProfile:
    """A CPU family as sgan.device sees it: its /proc/cpuinfo flags and how long bf16 and fp16
    autocast take relative to fp32 on it (`speed`, fp32 = 1)."""
    name: str
    description: str
    flags: frozenset[str]
    speed: dict[str, float]

    def time_ms(self, precision: str) -> float:
        """The nominal milliseconds of one probe call in `precision` on this profile."""
        return NOMINAL_FP32_MS * self.speed[precision]


PROFILES: dict[str, CpuProfile] = {
    # AMD EPYC (Zen 2/3) class: AVX2 only; bf16 autocast emulated, 4-12x slower than fp32 (issue 18,
    # measured on the machines sgan was built on); fp16 emulated too.
    "avx2": CpuProfile("avx2", "AVX2 only (AMD EPYC class): bf16 and fp16 emulated",
                       frozenset(_BASE.split()), {"fp32": 1.0, "bf16": 6.0, "fp16": 8.0}),
    # Intel Ice Lake class: AVX-512 without its BF16/FP16 extensions or AMX: bf16 and fp16 emulated
    # (the factors only order the precisions as there: emulated is slower; not measured figures).
    "avx512": CpuProfile("avx512", "AVX-512 without BF16/FP16/AMX (Intel Ice Lake class): bf16 and fp16 emulated",
                         frozenset(f"{_BASE} {_AVX512}".split()), {"fp32": 1.0, "bf16": 3.0, "fp16": 4.0}),
    # Intel Sapphire Rapids class: AVX-512 BF16 and FP16, AMX; bf16 about 2x faster than fp32 on the
    # StyleGAN G+D step at the paper's widths (issue 18: 1133 ms fp32 against 595 ms bf16).
    "amx": CpuProfile("amx", "AVX-512 BF16 + FP16 and AMX (Intel Sapphire Rapids class): bf16 and fp16 native",
                      frozenset(f"{_BASE} {_AVX512} avx512_bf16 avx512_fp16 amx_tile amx_bf16 amx_int8 "
                                "amx_fp16".split()),
                      {"fp32": 1.0, "bf16": 0.5, "fp16": 0.6}),
}
NAMES = ("native",) + tuple(PROFILES)


def active_profile() -> CpuProfile | None:
    """The profile SGAN_CPU_PROFILE names, or None for the real CPU (unset, empty or `native`);
    a one-line error for any other value."""
    name = os.environ.get(ENV, "").strip().lower()
    if name in ("", "native"):
        return None
    if name not in PROFILES:
        raise UsageError(f"{ENV}={os.environ[ENV]!r} is not a CPU profile; use one of {', '.join(NAMES)}, "
                         "or unset it.")
    return PROFILES[name]
