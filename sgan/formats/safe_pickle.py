"""Reading foreign checkpoints without running their code.

NVIDIA's network pickles carry the source of their networks and NVIDIA's loaders execute it;
any pickle can name any Python callable. Here a pickle may name only:

- tensor and ndarray reconstruction (torch._utils._rebuild_*, numpy _reconstruct / dtype / scalar,
  object dtypes refused), plain containers (OrderedDict, set, frozenset);
- the class names of the known formats, each mapped to an inert stand-in that keeps the
  pickled state and does nothing else: `dnnlib.tflib.network.Network` (TensorFlow StyleGAN 1/2,
  `TFNetworkState`), `torch_utils.persistence._reconstruct_persistent_obj` (StyleGAN2-ADA,
  `PersistentObject`; its embedded `module_src` is dropped unread), `dnnlib.util.EasyDict`
  (`EasyDictState`) and `argparse.Namespace` in rosinality's torch files (`ArgsNamespace`).

Anything else is refused with a one-line `UnsafePickleError` that names the global. Torch files
(zip or legacy) go through `torch.load(weights_only=True)`, PyTorch's own restricted unpickler,
with only `argparse.Namespace` added (as the stand-in); the small `torch.save` blobs nested in
StyleGAN2-ADA pickles go through the same function.

Whatever the container, a file may not make sgan allocate more than it holds: zip members that
expand more than a tensor file can are refused before they are decompressed
(`checkpoint_checks.check_zip_expansion`), and every tensor must be dense and real (no zero or
overlapping strides, no short storage, no complex dtype; `check_tensors`, one walk over at most
MAX_NODES objects, iterative, so deep nesting cannot overflow the stack).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from sgan.checkpoint_checks import check_zip_expansion, dense_problem
from sgan.errors import CheckpointError

MAX_NODES = 1 << 22  # objects a foreign file may hold (far above any StyleGAN checkpoint's few thousand)


class UnsafePickleError(CheckpointError):
    """A foreign file that asks for something no known checkpoint format needs."""


class TFNetworkState(dict):
    """Stand-in for `dnnlib.tflib.network.Network`: the pickled state dict (version, name, static_kwargs,
    components, build_func_name, variables), with `build_module_src` dropped unread."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("a dnnlib.tflib.network.Network state must be a dict")
        self.update({k: v for k, v in state.items() if k != "build_module_src"})


class PersistentObject(dict):
    """Stand-in for a StyleGAN2-ADA persistent object: its meta (type, version, class_name, state),
    with `module_src` dropped unread."""


class EasyDictState(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict)."""

    def __setstate__(self, state: Any) -> None:  # an EasyDict pickles no instance state; ignore any
        pass


class ArgsNamespace:
    """Stand-in for `argparse.Namespace` (rosinality's training arguments): attributes only."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise pickle.UnpicklingError("an argparse.Namespace state must be a dict of names")
        self.__dict__.update(state)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _persistent(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError("a persistent object's meta must be a dict")
    return PersistentObject({k: v for k, v in meta.items() if k != "module_src"})


def _np_mod() -> Any:
    return np._core.multiarray if hasattr(np, "_core") else np.core.multiarray


def _dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args[:1])
    if dt.hasobject:
        raise UnsafePickleError("refusing to open the file: it holds a numpy array of Python objects (dtype object), which no known StyleGAN format uses; nothing was executed.")
    return np.dtype(*args)


def _np_reconstruct(subtype: Any, *args: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"refusing to open the file: it rebuilds an ndarray subclass ({getattr(subtype, '__name__', subtype)}), which no known StyleGAN format uses; nothing was executed.")
    return _np_mod()._reconstruct(subtype, *args)


def _np_scalar(dtype: Any, *args: Any) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("refusing to open the file: it holds a numpy scalar that is not a plain number; nothing was executed.")
    return _np_mod().scalar(dtype, *args)


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError("a tensor must be rebuilt from a tensor storage")


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    _check_storage(storage)
    t = torch._utils._rebuild_tensor_v2(storage, int(offset), tuple(size), tuple(stride), bool(requires_grad),
                                        collections.OrderedDict())
    why = dense_problem(t)
    if why:
        raise UnsafePickleError(f"refusing a tensor of shape {list(t.shape)}: {why}; the file is damaged or crafted.")
    return t


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, *state: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("a parameter must wrap a tensor")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))  # hooks and attributes are dropped


def _load_from_bytes(blob: Any) -> Any:
    if not isinstance(blob, (bytes, bytearray)):
        raise pickle.UnpicklingError("torch.storage._load_from_bytes needs bytes")
    return load_torch(io.BytesIO(bytes(blob)), what="a torch.save blob inside the pickle")


def _codecs_encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is allowed only to rebuild bytes from latin1 text")
    return text.encode("latin1")


# (module, name) -> the callable the unpickler hands out. Nothing else resolves.
_NP = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set, ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{(m, "_reconstruct"): _np_reconstruct for m in _NP},
    **{(m, "scalar"): _np_scalar for m in _NP},
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("dnnlib.tflib.network", "Network"): TFNetworkState,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent,
    ("dnnlib.util", "EasyDict"): EasyDictState,
    ("dnnlib", "EasyDict"): EasyDictState,
}


class SafeUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that resolves only the globals in ALLOWED."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(_refusal(f"{module}.{name}")) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("the pickle refers to external storage (a persistent id), which no known format uses")


def _refusal(global_name: str, where: str = "the file") -> str:
    return (f"refusing to open {where}: it asks for the Python global `{global_name}`, which no known StyleGAN "
            f"checkpoint format needs (loading it could run code); nothing was executed.")


def load_pickle(file: str | os.PathLike | BinaryIO) -> Any:
    """Unpickle a foreign .pkl with only the allowed globals (latin1 for Python 2 era strings)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return load_pickle(f)
    try:
        data = SafeUnpickler(file, encoding="latin1").load()
    except UnsafePickleError:
        raise
    except RecursionError:
        raise CheckpointError("the pickle nests its containers too deeply to read safely; it is damaged or crafted.") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
            RuntimeError, MemoryError, OverflowError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"the pickle cannot be read safely ({first}); it is damaged or not a known StyleGAN format.") from None
    check_tensors(data)
    return data


_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


def load_torch(file: str | os.PathLike | BinaryIO, *, what: str = "the file") -> Any:
    """torch.load(weights_only=True) with only argparse.Namespace added (as ArgsNamespace)."""
    check_zip_expansion(file, what)
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([(ArgsNamespace, "argparse.Namespace")]):
            warnings.simplefilter("ignore")
            data = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        m = _GLOBAL_RE.search(text)
        if m:
            raise UnsafePickleError(_refusal(m.group(1), what)) from None
        first = next((ln.strip() for ln in text.splitlines() if ln.strip() and "Weights only load failed" not in ln), "")
        raise UnsafePickleError(f"refusing to open {what}: torch's safe loader rejected it ({first[:200]}); "
                                "nothing was executed.") from None
    except UnsafePickleError:
        raise
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{what} is not a readable PyTorch file ({first[:200]}); it may be truncated.") from None
    check_tensors(data, what)
    return data


def _children(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, ArgsNamespace):
        return list(obj.__dict__.values())
    return []


def check_tensors(data: Any, what: str = "the file") -> None:
    """Walk everything a foreign file holds (iteratively, each object once) and refuse tensors that are
    not dense (zero or overlapping strides, short storage) and complex tensors or arrays, before any
    of them is read or copied."""
    seen: set[int] = set()
    stack = [data]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > MAX_NODES:
            raise UnsafePickleError(f"refusing {what}: it holds more than {MAX_NODES} objects, far more than any "
                                    "StyleGAN checkpoint; it is damaged or crafted.")
        if isinstance(obj, torch.Tensor):
            why = dense_problem(obj)
            if why:
                raise UnsafePickleError(f"refusing {what}: a tensor of shape {list(obj.shape)} is refused: {why}.")
        elif isinstance(obj, np.ndarray):
            if np.iscomplexobj(obj):
                raise UnsafePickleError(f"refusing {what}: an array of shape {list(obj.shape)} holds complex numbers "
                                        f"({obj.dtype}), which no StyleGAN weight is.")
        else:
            stack.extend(_children(obj))


def file_kind(path: str | os.PathLike) -> str:
    """'zip' (torch.save), 'torch-legacy' (torch.save before 1.6), 'pickle', or 'other' from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:2] == b"\x80\x02" and head[2:4] == b"\x8a\x0a" and head[4:14] == (0x1950A86A20F9469CFC6C).to_bytes(10, "little"):
        return "torch-legacy"
    if head[:1] == b"\x80":
        return "pickle"
    return "other"


def load_foreign(path: str | os.PathLike) -> Any:
    """Open a foreign checkpoint safely, whatever its container (torch zip, legacy torch file, raw pickle)."""
    p = Path(path)
    kind = file_kind(p)
    if kind in ("zip", "torch-legacy"):
        return load_torch(p)
    if kind == "pickle":
        return load_pickle(p)
    raise CheckpointError(f"{p}: not a pickle or a PyTorch file (unrecognised first bytes).")
