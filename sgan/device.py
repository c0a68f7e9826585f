"""Choosing the torch device (`auto` picks CUDA when it is there, else the CPU) and the precision
(`auto` times the model's own work in fp32, bfloat16 and, on CUDA, float16 and takes the fastest
that agrees with fp32; bfloat16 is timed only where the hardware runs it natively).

Test/debug aid: SGAN_CPU_PROFILE=avx2|avx512|amx makes sgan behave as if on that CPU family: the
CPU flags it sees (`cpu_flags`) and the timer of `choose_precision` (`time_call`) are the profile's
(sgan.cpu_profiles), so a whole test suite or a command can be run as on the other CPUs. The
computations themselves stay real (bfloat16 and float16 autocast run, emulated, on any x86 CPU)."""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from sgan.cpu_profiles import PROFILES as CPU_PROFILES  # noqa: F401  (re-exported)
from sgan.cpu_profiles import CpuProfile, active_profile
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


def cpu_profile() -> CpuProfile | None:
    """The CPU profile SGAN_CPU_PROFILE names (avx2, avx512, amx; sgan.cpu_profiles), None on the
    real CPU. A test/debug aid: under a profile `cpu_flags()` returns its flags and `time_call` its
    nominal relative speeds, so the `auto` choices behave as on that CPU family."""
    return active_profile()


def cpu_flags(path: str | None = None) -> set[str]:
    """The CPU's feature flags: the first `flags` line of `path`, by default /proc/cpuinfo, or the
    flags of the CPU profile SGAN_CPU_PROFILE names (a test/debug aid: `cpu_profile`); empty where
    there is none (no /proc/cpuinfo: macOS, Windows)."""
    if path is None:
        profile = cpu_profile()
        if profile is not None:
            return set(profile.flags)
        path = "/proc/cpuinfo"
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
    ok = onednn_supports("bf16")  # no /proc/cpuinfo (macOS, Windows): ask oneDNN
    return ok, "oneDNN reports native bf16" if ok else "oneDNN reports no native bf16"


def onednn_supports(precision: str) -> bool:
    """torch's oneDNN (mkldnn) capability query for native `bf16` or `fp16` on this CPU: what decides
    where there are no CPU flags to read. False where this torch build has no such query."""
    query = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[precision]
    try:
        return bool(getattr(torch.ops.mkldnn, query)())
    except (AttributeError, RuntimeError):
        return False


def fp16_native(device: torch.device, *, flags: set[str] | None = None) -> tuple[bool, str]:
    """(whether float16 runs natively here, why): always on CUDA; on a CPU only with an avx512_fp16 or
    amx_fp16 flag (elsewhere torch's CPU float16 autocast works but is emulated, hence slow)."""
    if device.type == "cuda":
        return True, "cuda"
    flags = cpu_flags() if flags is None else flags
    found = [f for f in CPU_FP16_FLAGS if f in flags]
    if found or flags:
        return bool(found), f"cpu flags {'+'.join(found)}" if found else "cpu has no avx512_fp16/amx_fp16"
    ok = onednn_supports("fp16")  # no /proc/cpuinfo (macOS, Windows): ask oneDNN
    return ok, "oneDNN reports native fp16" if ok else "oneDNN reports no native fp16"


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
    call; stops early once `budget_s` is spent (a slow precision needs no second look). Under a CPU
    profile (SGAN_CPU_PROFILE, a test/debug aid) on the CPU: the profile's nominal time of
    `precision`, fixed, and `run` is not called."""
    profile = cpu_profile() if device.type == "cpu" else None
    if profile is not None:
        return profile.time_ms(precision) / 1000.0

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


_PROFILE_TIMER = time_call   # the timer that answers from SGAN_CPU_PROFILE (a test may swap time_call out)


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
    if timer is None and time_call is _PROFILE_TIMER and device.type == "cpu" and cpu_profile() is not None:
        why = f"{why}; timings of CPU profile {cpu_profile().name}"   # faked: say so wherever it is printed
    timer = timer or time_call
    timings = {p: 1000.0 * float(timer(run, device, p)) for p in candidates}
    with torch.no_grad():
        ref = run()
    ref = ref.detach().float() if isinstance(ref, torch.Tensor) else None
    refused: list[str] = []   # faster than fp32 but not within tol of it
    for p in sorted(candidates, key=lambda k: timings[k]):
        if p == "fp32" or ref is None:
            if not refused:
                return PrecisionChoice(p, "auto", timings, f"{why}; fastest")
            return PrecisionChoice(p, "auto", timings, f"{why}; fastest that agrees with fp32 ({'+'.join(refused)} "
                                   f"faster but off fp32 by more than {tol:g} relative RMS)")
        with torch.no_grad():
            if _agrees(run, device, p, ref, tol):
                return PrecisionChoice(p, "auto", timings, f"{why}; fastest that agrees with fp32")
        refused.append(p)
    return PrecisionChoice("fp32", "auto", timings, why)


_HOOKS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
          "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks", "_is_full_backward_hook",
          "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
          "_load_state_dict_post_hooks")


def module_device(module: torch.nn.Module) -> torch.device:
    """Where `module` lives: the device of its first parameter, else of its first buffer, else the CPU
    (a module without tensors, e.g. a generator whose every layer is a fixed function)."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return torch.device("cpu")


def probe_copy(*modules: torch.nn.Module, mode: bool | None = None) -> tuple[torch.nn.Module, ...]:
    """Deep copies of `modules` (made together: what they share stays shared) that a probe may run
    freely: without the originals' module hooks (forward, pre-forward, backward, state-dict), with
    their own parameters, buffers (e.g. a mapping network's w_avg) and no gradients, their forward
    the class's where an instance `forward` is not a method of the module itself (torch.compile's or
    autocast_module's would call the original), in training mode `mode` (None: as each original
    is). The originals are not touched."""
    memo: dict[int, Any] = {}
    for m in modules:
        for sub in m.modules():
            for name in _HOOKS:
                hooks = sub.__dict__.get(name)
                if hooks is not None:
                    memo[id(hooks)] = type(hooks)()
    copies = copy.deepcopy(tuple(modules), memo)
    for c in copies:
        for sub in c.modules():   # an instance forward bound to the module itself was re-bound to the copy
            f = sub.__dict__.get("forward")
            if f is not None and not (isinstance(f, types.MethodType) and f.__self__ is sub):
                del sub.__dict__["forward"]
        for p in c.parameters():
            p.grad = None
        if mode is not None:
            c.train(mode)
    return copies


def probe_of(step: Callable[..., Any], *modules: torch.nn.Module, mode: bool | None = None) -> Callable[[], Any]:
    """A probe for `choose_precision` without side effects on the caller: a no-argument call of
    `step(*copies)` on `probe_copy(*modules, mode=mode)` (made on the first call, kept for the next),
    with the global RNG state (CPU and the modules' CUDA devices) saved and restored around it and the
    copies' gradients cleared after it. Returns `step`'s result, detached where it is a tensor. Give
    `step` its randomness as explicit torch.Generators; e.g. a training step's probe (G and D forward
    and backward at the run's batch) is probe_of(lambda G, D: ..., trainer.G, trainer.D)."""
    held: list[tuple[torch.nn.Module, ...]] = []

    def run() -> Any:
        if not held:
            held.append(probe_copy(*modules, mode=mode))
        copies = held[0]
        cuda = sorted({d.index or 0 for d in (module_device(m) for m in copies) if d.type == "cuda"})
        with torch.random.fork_rng(devices=cuda):
            try:
                out = step(*copies)
            finally:
                for c in copies:
                    c.zero_grad(set_to_none=True)
        return out.detach() if isinstance(out, torch.Tensor) else out

    return run


def generator_probe(G: torch.nn.Module, *, batch: int = 4, train: bool = True, seed: int = 0,
                    device: torch.device | None = None, mode: bool | None = None,
                    **kwargs: Any) -> Callable[[], torch.Tensor]:
    """A call of the actual generator at `batch` (forward, and backward of its mean when `train` and
    G has trainable parameters) with fixed z and noise, returning the images: the work
    `choose_precision` times. It runs on a copy (`probe_of`): G's parameters, buffers, gradients and
    hooks, and the global RNG, are as they were after it; G may have no parameters. `device`: where
    z goes (default: G's, `module_device`); `mode`: the copy's training mode (None: G's); `kwargs` go
    to G."""
    where = module_device(G) if device is None else torch.device(device)
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(where)
    c = None
    if getattr(G, "c_dim", 0):
        c = torch.zeros([batch, G.c_dim], device=where)
        c[:, 0] = 1

    def step(G_copy: torch.nn.Module) -> torch.Tensor:
        noise = torch.Generator(device=where).manual_seed(seed)
        with torch.set_grad_enabled(train and torch.is_grad_enabled()):
            img = G_copy(z, c, noise_mode="random", generator=noise, **kwargs)
            if img.requires_grad:
                img.float().mean().backward()
        return img

    return probe_of(step, G, mode=mode)


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
