"""Faking a CPU family inside one test: its flags (sgan.device.cpu_flags) and a timer
(sgan.device.time_call) that returns chosen milliseconds per precision. The fake timer really runs the
call under the precision's autocast, so the bf16 computation itself is tested (emulated where the CPU
lacks it). For a whole run as if on another family use `pytest --cpu-profile` (tests/conftest.py)."""

from __future__ import annotations

AMX_FLAGS = frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16", "amx_tile",
                       "avx512_fp16"})                                     # Sapphire-Rapids-class
AVX2_FLAGS = frozenset({"avx2", "fma"})                                     # AMD EPYC-class


def fake_cpu(monkeypatch, flags=AMX_FLAGS, *, ms: dict[str, float] | None = None, forbid: bool = False) -> list[str]:
    """Pretend this CPU has `flags` and that each precision takes `ms` (default: bf16 half of fp32's
    time, fp16 between). Returns the list of precisions timed; with `forbid`, any timing fails the test
    (for commands whose default must not probe at all)."""
    import sgan.device as device

    times = {"fp32": 20.0, "bf16": 10.0, "fp16": 15.0, **(ms or {})}
    timed: list[str] = []

    def time_call(run, dev, precision, **kwargs):
        if forbid:
            raise AssertionError(f"a precision probe ran ({precision}) where none was asked for")
        with device.autocast(dev, precision):
            run()
        timed.append(precision)
        return times[precision] / 1000.0

    monkeypatch.setattr(device, "cpu_flags", lambda path=None: set(flags))
    monkeypatch.setattr(device, "time_call", time_call)
    return timed


def fake_amx(monkeypatch, *, ms: dict[str, float] | None = None, forbid: bool = False) -> list[str]:
    """fake_cpu on the AVX-512 BF16/FP16 + AMX family, where bf16 times faster and `auto` picks it."""
    return fake_cpu(monkeypatch, AMX_FLAGS, ms=ms, forbid=forbid)
