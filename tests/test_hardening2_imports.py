"""Crafted and damaged import inputs (issue 23 §1, §3, §4): one `Error:` line each, never a traceback."""

from __future__ import annotations

import copy
import io
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sgan.cli import app
from sgan.formats.safe_pickle import TFNetworkState, load_pickle
from tests.hardening2_helpers import one_error_line, run_limited

FIX = Path(__file__).parent / "fixtures" / "import"
TF32 = FIX / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl"
ROS2 = FIX / "rosinality-sg2_010000.pt"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line(result, *needles):
    text = result.output
    assert result.exit_code != 0, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, text
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


class _Pickler(pickle.Pickler):
    """Writes TFNetworkState back as dnnlib.tflib.network.Network (so the file is a TF StyleGAN pickle)."""

    def reducer_override(self, obj):
        if type(obj) is TFNetworkState:
            return (sys.modules["dnnlib.tflib.network"].Network, (), dict(obj))
        return NotImplemented


def write_tf(data, path):
    mods = {name: types.ModuleType(name) for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    Network = type("Network", (), {"__module__": "dnnlib.tflib.network", "__qualname__": "Network"})
    mods["dnnlib.tflib.network"].Network = Network
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        buf = io.BytesIO()
        _Pickler(buf, protocol=2).dump(data)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    path.write_bytes(buf.getvalue())
    return path


def tf_edit(tmp_path, edit):
    data = load_pickle(TF32)
    edit(data)
    return write_tf(data, tmp_path / "edited.pkl")


def _set_var(net, name, value):
    net["variables"] = [(k, value if k == name else v) for k, v in net["variables"]]


def _gs_synthesis(data):
    return data[2]["components"]["synthesis"]


def test_rewritten_fixture_still_imports(tmp_path):
    path = tf_edit(tmp_path, lambda d: None)
    assert invoke("import", path, "--out", tmp_path / "m.pt").exit_code == 0


@pytest.mark.parametrize("case", ["noise_size", "string_array", "version_three", "lrmul_x", "nan_weight",
                                  "complex_weight", "inf_avg"])
def test_damaged_tf_pickles_give_one_line(tmp_path, case):
    def edit(d):
        syn = _gs_synthesis(d)
        if case == "noise_size":
            _set_var(syn, "noise0", np.zeros((1, 1, 5, 5), np.float32))
        elif case == "string_array":
            _set_var(syn, "4x4/Const/bias", np.array(["a"] * 32))
        elif case == "version_three":
            d[2]["version"] = "three"
        elif case == "lrmul_x":
            d[2]["components"]["mapping"]["static_kwargs"]["mapping_lrmul"] = "x"
        elif case == "nan_weight":
            _set_var(syn, "4x4/Const/bias", np.full(32, np.nan, np.float32))
        elif case == "complex_weight":
            _set_var(syn, "4x4/Const/bias", np.zeros(32, np.complex64))
        elif case == "inf_avg":
            _set_var(d[2], "dlatent_avg", np.full(32, np.inf, np.float32))
    path = tf_edit(tmp_path, edit)
    line = assert_one_line(invoke("import", path, "--out", tmp_path / "m.pt"))
    if case in ("nan_weight", "inf_avg"):
        assert "NaN or infinite" in line and ("bias" in line or "w_avg" in line), line
    if case == "complex_weight":
        assert "complex" in line, line
    assert not (tmp_path / "m.pt").exists()


def _text(s):
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def test_deeply_nested_tf_components_give_one_line(tmp_path):
    """100 000 Network states nested through `components` (written as raw opcodes: pickling it would
    overflow this process's own stack)."""
    marker = "DEEP-COMPONENTS-PLACEHOLDER"
    path = tf_edit(tmp_path, lambda d: d[2]["components"].__setitem__("deep", marker))
    level = (b"cdnnlib.tflib.network\nNetwork\n)R}(" + _text("components") + b"}(" + _text("c"))
    deep = level * 100_000 + b"}" + b"uub" * 100_000
    raw = path.read_bytes()
    assert raw.count(_text(marker)) == 1
    path.write_bytes(raw.replace(_text(marker), deep))
    line = one_error_line(run_limited("import", path, "--out", tmp_path / "m.pt"))
    assert str(path) in line


def test_shared_reference_list_in_dlatent_avg_is_refused_under_a_memory_limit(tmp_path):
    def edit(d):
        a = [0.0] * 1000
        b = [a] * 1000
        c = [b] * 1000                            # 10^9 numbers once expanded, a few KB pickled
        _set_var(d[2], "dlatent_avg", c)
    plain = tf_edit(tmp_path, lambda d: None).stat().st_size
    path = tf_edit(tmp_path, edit)
    assert path.stat().st_size < plain + 50_000
    line = one_error_line(run_limited("import", path, "--out", tmp_path / "m.pt", limit=1500 << 20))
    assert "nested list" in line, line


def test_tf_format_on_a_two_key_dict(tmp_path):
    path = tmp_path / "two.pt"
    torch.save({"a": torch.zeros(2), "b": torch.zeros(2)}, path)
    assert_one_line(invoke("import", path, "--format", "tf-stylegan", "--out", tmp_path / "m.pt"))


def test_rosinality_sg2_format_on_a_bare_tensor(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    assert_one_line(invoke("import", path, "--format", "rosinality-sg2", "--out", tmp_path / "m.pt"))


def _rosinality():
    import argparse

    from sgan.formats.safe_pickle import load_torch
    data = load_torch(ROS2)
    data["args"] = argparse.Namespace(**data["args"].as_dict())
    return data


def test_complex_tensor_in_a_rosinality_file_is_refused(tmp_path):
    data = _rosinality()
    key = next(k for k, v in data["g_ema"].items() if v.is_floating_point() and v.ndim == 1)
    data["g_ema"][key] = data["g_ema"][key].to(torch.complex64)
    path = tmp_path / "c.pt"
    torch.save(data, path)
    assert_one_line(invoke("import", path, "--out", tmp_path / "m.pt"), "complex")


def test_nan_tensor_in_a_rosinality_file_is_named(tmp_path):
    data = _rosinality()
    key = next(k for k, v in data["g_ema"].items() if v.is_floating_point() and v.ndim == 4)
    data["g_ema"][key] = torch.full_like(data["g_ema"][key], float("nan"))
    path = tmp_path / "n.pt"
    torch.save(data, path)
    assert_one_line(invoke("import", path, "--out", tmp_path / "m.pt"), "NaN or infinite")


def test_pickled_tensors_of_nvidia_pickles_must_be_dense():
    """ADA and StyleGAN3 pickles rebuild their tensors through _rebuild_tensor_v2: zero strides, overlapping
    strides and a short storage are refused there, before anything reads the tensor."""
    from sgan.formats.safe_pickle import UnsafePickleError, _rebuild_tensor_v2

    one = torch.zeros(1).untyped_storage()
    four = torch.zeros(4).untyped_storage()
    with pytest.raises(UnsafePickleError, match="strides"):
        _rebuild_tensor_v2(torch.TypedStorage(wrap_storage=one, dtype=torch.float32, _internal=True), 0,
                           (4096, 4096), (0, 0))
    with pytest.raises(UnsafePickleError, match="strides"):
        _rebuild_tensor_v2(torch.TypedStorage(wrap_storage=four, dtype=torch.float32, _internal=True), 0, (3, 2), (1, 1))
    t = _rebuild_tensor_v2(torch.TypedStorage(wrap_storage=four, dtype=torch.float32, _internal=True), 0, (2, 2), (1, 2))
    assert t.shape == (2, 2)                            # a transposed (column-major) tensor is dense: accepted
