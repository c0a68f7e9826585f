"""Choosing the torch device (`auto` picks CUDA when it is there, else the CPU) and the precision
(`auto` times the model's own work in fp32, bfloat16 and, on CUDA, float16 and takes the fastest
that agrees with fp32; bfloat16 is timed only where the hardware runs it natively)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from sgan.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn `auto`, `cpu`, `cuda` or `cuda:N` into a torch.device, refusing CUDA where there is none."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto.")
        return torch.device(name)
    raise UsageError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N.")


def describe_device(device: torch.device) -> str:
    """A short human name, such as `cpu (2 threads)` or `cuda:0 (NVIDIA H100)`."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


# -- precision: chosen by measurement -----------------------------------------------------------

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = ("auto",) + PRECISIONS
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")   # /proc/cpuinfo flags of native bfloat16 arithmetic
CPU_FP16_FLAGS = ("avx512_fp16", "amx_fp16")   # /proc/cpuinfo flags of native float16 arithmetic


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (the first `flags` line of /proc/cpuinfo); empty where there is none."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_native(device: torch.device, *, flags: set[str] | None = None) -> tuple[bool, str]:
    """(whether bfloat16 runs on dedicated hardware here, why). CPU: an avx512_bf16 or amx_bf16 flag,
    or else torch's own oneDNN capability query; CUDA: torch.cuda.is_bf16_supported(). Emulated
    bfloat16 (AVX2 only) is 4-12x slower than fp32, so this gates which precisions are timed at all."""
    if device.type == "cuda":
        ok = bool(torch.cuda.is_bf16_supported())
        return ok, "cuda bf16 supported" if ok else "this GPU has no bf16"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in CPU_BF16_FLAGS if f in flags]
    if found:
        return True, f"cpu flags {'+'.join(found)}"
    if flags:
        return False, "cpu has no avx512_bf16/amx_bf16 (bf16 would be emulated)"
    try:  # no /proc/cpuinfo (macOS, Windows): ask oneDNN
        ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        ok = False
    return ok, "oneDNN reports native bf16" if ok else "oneDNN reports no native bf16"


def fp16_native(device: torch.device, *, flags: set[str] | None = None) -> tuple[bool, str]:
    """(whether float16 runs natively here, why): always on CUDA; on a CPU only with an avx512_fp16 or
    amx_fp16 flag (elsewhere torch's CPU float16 autocast works but is emulated, hence slow)."""
    if device.type == "cuda":
        return True, "cuda"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in CPU_FP16_FLAGS if f in flags]
    return bool(found), f"cpu flags {'+'.join(found)}" if found else "cpu has no avx512_fp16/amx_fp16"


def check_precision(precision: str, device: torch.device, *, training: bool = False) -> str:
    """`precision` checked against the device: a one-line error for an unknown name or fp16 off CUDA.
    `training`: fp16 (with its loss scaler) is also allowed on a CPU with native float16 (fp16_native)."""
    p = (precision or "auto").strip().lower()
    if p not in PRECISION_CHOICES:
        raise UsageError(f"--precision {precision!r}: choose {', '.join(PRECISION_CHOICES)}.")
    if p == "fp16" and device.type != "cuda":
        if training and fp16_native(device)[0]:
            return p
        if training:
            raise UsageError("--precision fp16 trains on CUDA (or a CPU with avx512_fp16/amx_fp16), and this CPU "
                             "has neither; use auto, fp32 or bf16.")
        raise UsageError("--precision fp16 needs a CUDA device; on the CPU use auto, fp32 or bf16.")
    return p


def autocast(device: torch.device, precision: str):
    """The autocast context of a concrete precision: none for fp32, bfloat16 or float16 autocast else
    (whether fp16 suits the device is checked at the door: check_precision)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    raise UsageError(f"--precision {precision!r}: resolve auto first, or choose fp32, bf16 or fp16.")


@dataclass
class PrecisionChoice:
    """What `choose_precision` picked, the milliseconds per call of each precision it timed, and why."""
    precision: str
    requested: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "requested": self.requested,
                "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()}, "reason": self.reason}

    def summary(self) -> str:
        times = ", ".join(f"{k} {v:.1f} ms" for k, v in self.timings_ms.items())
        return f"precision {self.precision} ({self.requested}: {self.reason}{'; ' + times if times else ''})"


def time_call(run: Callable[[], Any], device: torch.device, precision: str, *, repeats: int = 3,
              budget_s: float = 0.5) -> float:
    """Seconds of the best of `repeats` calls of `run` under `precision` autocast, after one warm-up
    call; stops early once `budget_s` is spent (a slow precision needs no second look)."""
    def once() -> float:
        t0 = time.perf_counter()
        with autocast(device, precision):
            run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    spent = once()  # warm-up: kernel choice, allocation
    best = float("inf")
    for _ in range(repeats):
        t = once()
        best, spent = min(best, t), spent + t
        if spent > budget_s:
            break
    return best


def _agrees(run: Callable[[], Any], device: torch.device, precision: str, reference: torch.Tensor,
            tol: float) -> bool:
    """The probe's output under `precision` is finite and within `tol` (relative RMS) of fp32's."""
    with autocast(device, precision):
        out = run()
    if not isinstance(out, torch.Tensor):
        return True
    out = out.detach().float()
    if not torch.isfinite(out).all():
        return False
    scale = reference.pow(2).mean().sqrt().clamp_min(1e-6)
    return bool(((out - reference).pow(2).mean().sqrt() / scale) <= tol)


def choose_precision(device: torch.device, run: Callable[[], Any] | None = None, *, requested: str = "auto",
                     allow_fp16: bool = True, timer: Callable[..., float] | None = None,
                     native: tuple[bool, str] | None = None, tol: float = 0.1,
                     training: bool = False) -> PrecisionChoice:
    """The precision to compute in on `device`: `requested` itself unless it is `auto`; for `auto`, the
    fastest of fp32, bfloat16 autocast (only where bf16 is native: `bf16_native`) and, on CUDA with
    `allow_fp16`, float16 autocast, timed on `run` (a no-argument call of the model's own work, e.g.
    `generator_probe(G, ...)`, returning a tensor) and kept only where its output is finite and within
    `tol` relative RMS of fp32's. `timer(run, device, precision)` -> seconds is `time_call` unless a
    test passes a fake; `native` overrides the hardware gate (tests); `training` is check_precision's
    (a forced fp16 on a CPU with native float16); `auto` never picks fp16 off CUDA."""
    requested = check_precision(requested, device, training=training)
    if requested != "auto":
        return PrecisionChoice(requested, requested, {}, "forced")
    ok, why = bf16_native(device) if native is None else native
    candidates = ["fp32"] + (["bf16"] if ok else []) + (["fp16"] if allow_fp16 and device.type == "cuda" else [])
    if len(candidates) == 1 or run is None:
        return PrecisionChoice("fp32", "auto", {}, why if len(candidates) == 1 else "nothing to time")
    timer = timer or time_call
    timings = {p: 1000.0 * float(timer(run, device, p)) for p in candidates}
    with torch.no_grad():
        ref = run()
    ref = ref.detach().float() if isinstance(ref, torch.Tensor) else None
    for p in sorted(candidates, key=lambda k: timings[k]):
        if p == "fp32" or ref is None:
            return PrecisionChoice(p, "auto", timings, f"{why}; fastest")
        with torch.no_grad():
            if _agrees(run, device, p, ref, tol):
                return PrecisionChoice(p, "auto", timings, f"{why}; fastest that agrees with fp32")
    return PrecisionChoice("fp32", "auto", timings, why)


def generator_probe(G: torch.nn.Module, *, batch: int = 4, train: bool = True, seed: int = 0,
                    **kwargs: Any) -> Callable[[], torch.Tensor]:
    """A call of the actual generator at `batch` (forward, and backward of its mean when `train`) with
    fixed z and noise, returning the images: the work `choose_precision` times. `kwargs` go to G."""
    inputs: dict[str, Any] = {}

    def run() -> torch.Tensor:
        if not inputs:  # built on the first call: a probe that is never run touches nothing
            device = inputs["device"] = next(G.parameters()).device
            inputs["z"] = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(device)
            inputs["c"] = None
            if getattr(G, "c_dim", 0):
                inputs["c"] = torch.zeros([batch, G.c_dim], device=device)
                inputs["c"][:, 0] = 1
        device, z, c = inputs["device"], inputs["z"], inputs["c"]
        noise = torch.Generator(device=device).manual_seed(seed)
        with torch.set_grad_enabled(train and torch.is_grad_enabled()):
            img = G(z, c, noise_mode="random", generator=noise, **kwargs)
            if img.requires_grad:
                img.float().mean().backward()
                G.zero_grad(set_to_none=True)
        return img.detach()

    return run


@contextlib.contextmanager
def autocast_module(module: torch.nn.Module, device: torch.device, precision: str):
    """Within the block, `module`'s forward runs under `precision` autocast and returns float32 (e.g. a
    generator's synthesis network, so that callers, and the feature detectors after it, stay fp32)."""
    if precision == "fp32":
        yield module
        return
    check_precision(precision, device)
    inner = module.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        with autocast(device, precision):
            out = inner(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) else out

    module.forward = forward
    try:
        yield module
    finally:
        del module.forward


# -- CUDA set-up: one place, recorded in config.json -----------------------------------------

@dataclass
class CudaSetup:
    """The CUDA backend flags a command runs under (`applied` False: not CUDA, nothing was set)."""
    applied: bool = False
    tf32: bool = False              # TF32 tensor cores for fp32 matmuls and cuDNN convolutions
    cudnn_benchmark: bool = False   # cuDNN times its algorithms per input shape and keeps the fastest

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "tf32": self.tf32, "cudnn_benchmark": self.cudnn_benchmark}


def cuda_setup(device: torch.device, *, tf32: bool = True, benchmark: bool = True) -> CudaSetup:
    """What `configure_cuda` sets on `device`: nothing off CUDA; on CUDA, TF32 as asked (fp32 matmuls
    and convolutions on tensor cores with a 10-bit mantissa; off: exact IEEE fp32, as the official
    StyleGAN2-ADA's default and its metrics) and cuDNN benchmark mode (shapes are fixed per
    resolution, so the one-off timing of each shape pays back within a few steps)."""
    if device.type != "cuda":
        return CudaSetup()
    return CudaSetup(applied=True, tf32=bool(tf32), cudnn_benchmark=bool(benchmark))


def configure_cuda(device: torch.device, *, tf32: bool = True, benchmark: bool = True,
                   backends: Any = None) -> CudaSetup:
    """Set the process-wide CUDA flags of `cuda_setup` (a no-op on the CPU) and return them for the
    run's record. `backends` is torch.backends unless a test passes a stand-in."""
    setup = cuda_setup(device, tf32=tf32, benchmark=benchmark)
    if setup.applied:
        b = torch.backends if backends is None else backends
        b.cuda.matmul.allow_tf32 = setup.tf32
        b.cudnn.allow_tf32 = setup.tf32
        b.cudnn.benchmark = setup.cudnn_benchmark
    return setup
