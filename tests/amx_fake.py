"""Faking the other CPU profile in a test: an Intel CPU with AVX-512 BF16/FP16 and AMX where bf16
autocast times faster than fp32, so `--precision auto` runs its probe and picks bf16. The flags and
the timer are faked; the bf16 computation itself is real (emulated on a CPU without it)."""

from __future__ import annotations

AMX_FLAGS = frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16"})


def fake_amx(monkeypatch, *, ms: dict[str, float] | None = None, forbid: bool = False) -> list[str]:
    """Patch sgan.device so it sees AMX_FLAGS and times each precision at `ms` (default fp32 3 ms,
    bf16 2 ms). Returns the list of precisions the timer was asked for; with `forbid`, any timing
    fails the test (for commands whose default must not probe at all)."""
    import sgan.device as device

    times = {"fp32": 3.0, "bf16": 2.0, "fp16": 1.5, **(ms or {})}
    asked: list[str] = []

    def time_call(run, dev, precision, **kwargs):
        if forbid:
            raise AssertionError(f"a precision probe ran ({precision}) where none was asked for")
        asked.append(precision)
        with device.autocast(dev, precision):
            run()
        return times[precision] / 1000.0

    monkeypatch.setattr(device, "cpu_flags", lambda path="/proc/cpuinfo": set(AMX_FLAGS))
    monkeypatch.setattr(device, "time_call", time_call)
    return asked
