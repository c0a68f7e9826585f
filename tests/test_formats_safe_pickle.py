"""Foreign files are read without running code: hostile pickles in every container are refused."""

from __future__ import annotations

import collections
import io
import pickle
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from sgan.errors import CheckpointError
from sgan.formats.safe_pickle import (ArgsNamespace, PersistentObject, TFNetworkState, UnsafePickleError, load_foreign,
                                      load_pickle)

FIXTURES = Path(__file__).parent / "fixtures" / "import"


class WriteFile:
    """Unpickling this would write a file (through builtins.exec)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({str(self.target)!r}, 'w').write('pwned')",))


class Unknown:  # a class that no format names
    pass


@contextmanager
def fake_modules():
    """Importable stand-ins for dnnlib / torch_utils, so pickles name the same globals as NVIDIA's files."""
    names = ["dnnlib", "dnnlib.tflib", "dnnlib.tflib.network", "torch_utils", "torch_utils.persistence", "dnnlib.util"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}

    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    mods["dnnlib.tflib.network"].Network = Network

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("never called while pickling")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class Persistent:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(Network=Network, Persistent=Persistent)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def _tf_tuple(net_cls, payload):
    state = {"version": 3, "name": "G", "static_kwargs": {}, "components": {}, "build_module_src": "",
             "build_func_name": "G_style", "variables": [("lod", np.float32(0)), ("x", payload)]}
    return (net_cls(state), net_cls(dict(state)), net_cls(dict(state)))


def test_fixture_files_open_with_stand_ins():
    tf = load_foreign(FIXTURES / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl")
    assert isinstance(tf, tuple) and all(isinstance(n, TFNetworkState) for n in tf)
    assert "build_module_src" not in tf[2] and tf[2]["build_func_name"] == "G_style"
    ada = load_foreign(FIXTURES / "ada-uncond_network-snapshot-000100.pkl")
    assert isinstance(ada["G_ema"], PersistentObject) and "module_src" not in ada["G_ema"]
    assert isinstance(ada["G_ema"]["state"]["_modules"]["mapping"]["state"]["_parameters"]["w_avg"]
                      if "w_avg" in ada["G_ema"]["state"]["_modules"]["mapping"]["state"]["_parameters"]
                      else ada["G_ema"]["state"]["_modules"]["mapping"]["state"]["_buffers"]["w_avg"], torch.Tensor)
    ros = load_foreign(FIXTURES / "rosinality-sg2_010000.pt")
    assert isinstance(ros["args"], ArgsNamespace) and ros["args"].as_dict()["n_mlp"] == 2


def test_reduce_that_writes_a_file_is_refused_in_a_raw_pickle(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": WriteFile(target)}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"builtin.*\.exec"):
        load_foreign(path)
    assert not target.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_hostile_object_inside_a_tf_network_pickle(tmp_path, protocol):
    target = tmp_path / "pwned.txt"
    with fake_modules() as fake:
        data = pickle.dumps(_tf_tuple(fake.Network, WriteFile(target)), protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"builtin.*\.exec"):
        load_pickle(io.BytesIO(data))
    assert not target.exists()


def test_unknown_global_is_named(tmp_path):
    with fake_modules() as fake:
        data = pickle.dumps(_tf_tuple(fake.Network, Unknown()), protocol=4)
    with pytest.raises(UnsafePickleError) as err:
        load_pickle(io.BytesIO(data))
    assert "test_formats_safe_pickle.Unknown" in str(err.value) and "\n" not in str(err.value)


def test_tf_build_source_is_never_executed(tmp_path):
    target = tmp_path / "pwned.txt"
    with fake_modules() as fake:
        G, D, Gs = _tf_tuple(fake.Network, np.zeros(3, np.float32))
        Gs.state["build_module_src"] = f"open({str(target)!r}, 'w').write('pwned')"
        data = pickle.dumps((G, D, Gs), protocol=4)
    out = load_pickle(io.BytesIO(data))
    assert "build_module_src" not in out[2] and not target.exists()
    np.testing.assert_array_equal(dict(out[2]["variables"])["x"], np.zeros(3, np.float32))


def test_ada_module_src_is_never_executed_and_hostile_state_refused(tmp_path):
    target = tmp_path / "pwned.txt"
    src = f"open({str(target)!r}, 'w').write('pwned')"
    with fake_modules() as fake:
        good = pickle.dumps({"G_ema": fake.Persistent({"type": "class", "version": 6, "module_src": src,
                                                       "class_name": "Generator", "state": {"x": 1}})}, protocol=4)
        bad = pickle.dumps({"G_ema": fake.Persistent({"type": "class", "version": 6, "module_src": src,
                                                      "class_name": "Generator", "state": {"x": WriteFile(target)}})},
                           protocol=4)
    out = load_pickle(io.BytesIO(good))
    assert out["G_ema"] == {"type": "class", "version": 6, "class_name": "Generator", "state": {"x": 1}}
    with pytest.raises(UnsafePickleError, match=r"builtin.*\.exec"):
        load_pickle(io.BytesIO(bad))
    assert not target.exists()


class NestedBlob:
    """Pickles as torch.storage._load_from_bytes(blob), as StyleGAN2-ADA stores tensors."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


@pytest.mark.parametrize("zip_format", [False, True])
def test_nested_torch_save_with_a_bad_global_is_refused(tmp_path, zip_format):
    target = tmp_path / "pwned.txt"
    buf = io.BytesIO()
    torch.save({"t": torch.ones(2), "evil": WriteFile(target)}, buf, _use_new_zipfile_serialization=zip_format)
    path = tmp_path / "nested.pkl"
    path.write_bytes(pickle.dumps({"G_ema": NestedBlob(buf.getvalue())}, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"exec"):
        load_foreign(path)
    assert not target.exists()


def test_nested_torch_save_of_a_tensor_loads(tmp_path):
    buf = io.BytesIO()
    torch.save(torch.arange(3.0), buf, _use_new_zipfile_serialization=False)
    out = load_pickle(io.BytesIO(pickle.dumps(NestedBlob(buf.getvalue()), protocol=4)))
    assert isinstance(out, torch.Tensor) and out.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("zip_format", [False, True])
def test_torch_file_with_a_hostile_object_is_refused(tmp_path, zip_format):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": collections.OrderedDict(w=torch.ones(1)), "args": WriteFile(target)}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafePickleError, match=r"`(builtins\.)?exec`"):
        load_foreign(path)
    assert not target.exists()


def test_object_arrays_and_ndarray_subclasses_are_refused(tmp_path):
    with pytest.raises(UnsafePickleError):
        load_pickle(io.BytesIO(pickle.dumps(np.array([Unknown()], dtype=object), protocol=4)))
    with pytest.raises(CheckpointError, match="object"):
        load_pickle(io.BytesIO(pickle.dumps(np.array([1, "a"], dtype=object), protocol=4)))
    with pytest.raises(CheckpointError):
        load_pickle(io.BytesIO(pickle.dumps(np.ma.masked_array([1.0, 2.0]), protocol=4)))


def test_truncated_pickle_is_a_one_line_error(tmp_path):
    data = (FIXTURES / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_foreign(path)
    assert "\n" not in str(err.value)
