"""The FID Inception: fixture equivalence with pytorch-fid, its sensitivity, resize modes and weight loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metrics_fill import filled_state_dict
from sgan.errors import DetectorError
from sgan.metrics import inception as inc
from sgan.metrics.detectors import load_feature_detector
from sgan.metrics.features import to_uint8_official
from sgan.metrics.weights import WEIGHT_FILES, load_strict, locate

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def fixture_state():
    return filled_state_dict(json.loads((FIXTURES / "fid_inception_keys.json").read_text()))


@pytest.fixture(scope="module")
def net(fixture_state):
    m = inc.FIDInceptionV3().eval()
    m.load_state_dict(fixture_state, strict=True)  # exact key/shape match with the weight file
    return m


@pytest.fixture(scope="module")
def oracle():
    return np.load(FIXTURES / "fid_inception_oracle.npz")


def _pool3(net, x01):
    with torch.no_grad():
        return net(inc.preprocess(torch.from_numpy(x01) * 255.0, "pytorch-fid")).numpy()


@pytest.mark.parametrize("name", ["299", "64", "128x96"])
def test_pool3_matches_pytorch_fid(net, oracle, name):
    ours, ref = _pool3(net, oracle[f"input_{name}"]), oracle[f"pool3_{name}"]
    assert ref.std() > 1e-2
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-4
    d_ours, d_ref = ours[0] - ours[1], ref[0] - ref[1]
    assert np.abs(d_ours - d_ref).max() / np.abs(d_ref).max() < 1e-4


def test_a_wrong_pooling_is_caught(net, oracle, monkeypatch):
    # Mutation check: torchvision's pooling (padding counted) must break the equivalence.
    monkeypatch.setattr(inc, "_avg3", lambda x: F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True))
    ours, ref = _pool3(net, oracle["input_64"][:2]), oracle["pool3_64"][:2]
    assert np.abs((ours[0] - ours[1]) - (ref[0] - ref[1])).max() / np.abs(ref[0] - ref[1]).max() > 1e-3


def test_features_do_not_depend_on_batch_size(net, oracle):
    x = torch.from_numpy(oracle["input_64"][:2]) * 255.0
    with torch.no_grad():
        together = net(inc.preprocess(x, "tf"))
        alone = torch.cat([net(inc.preprocess(x[i:i + 1], "tf")) for i in range(2)])
    assert (together - alone).abs().max() / together.abs().max() <= 1e-5


def test_tf1_resize_reference_and_modes_differ():
    x = torch.rand(1, 3, 16, 12, dtype=torch.float64)
    assert torch.equal(inc.resize_tf1_bilinear(x, (16, 12)), x)
    out = inc.resize_tf1_bilinear(x, (21, 29))

    def scalar(c, j, k):
        def axis(i, n_in, n_out):
            s = i * n_in / n_out
            i0 = min(int(np.floor(s)), n_in - 1)
            return i0, min(i0 + 1, n_in - 1), s - i0
        a0, a1, fa = axis(j, 16, 21)
        b0, b1, fb = axis(k, 12, 29)
        top = x[0, c, a0, b0] + (x[0, c, a0, b1] - x[0, c, a0, b0]) * fb
        bot = x[0, c, a1, b0] + (x[0, c, a1, b1] - x[0, c, a1, b0]) * fb
        return top + (bot - top) * fa

    for c, j, k in [(0, 0, 0), (1, 20, 28), (2, 7, 13), (0, 13, 3)]:
        assert float(out[0, c, j, k]) == pytest.approx(float(scalar(c, j, k)), abs=1e-12)
    img = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    assert (inc.preprocess(img, "tf") - inc.preprocess(img, "pytorch-fid")).abs().max() > 1e-2


def test_uint8_conversion_rounds_half_up():
    x = torch.tensor([-1.0, 0.0, 1.0, -2.0, 2.0, 1 / 255.0, -1 / 255.0]).view(1, 1, 1, -1)
    assert to_uint8_official(x).flatten().tolist() == [0, 128, 255, 0, 255, 128, 127]


def test_strict_loading_tolerates_missing_counters_and_refuses_wrong_shapes(fixture_state):
    state = {k: v for k, v in fixture_state.items() if not k.endswith("num_batches_tracked")}
    load_strict(inc.FIDInceptionV3(), state, source="file.pth", what="FID Inception-v3")
    bad = dict(state)
    bad["fc.weight"] = torch.zeros(1000, 2048)
    bad["fc.bias"] = torch.zeros(1000)
    with pytest.raises(DetectorError, match="wrong shapes.*fc.weight"):
        load_strict(inc.FIDInceptionV3(), bad, source="file.pth", what="FID Inception-v3")
    renamed = {("module." + k): v for k, v in state.items()}
    with pytest.raises(DetectorError, match="missing keys"):
        load_strict(inc.FIDInceptionV3(), renamed, source="file.pth", what="FID Inception-v3")


def test_weight_file_found_in_hub_cache_and_loaded(fixture_state, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("SGAN_INCEPTION_WEIGHTS", "SGAN_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DetectorError) as err:
        load_feature_detector("inception")
    msg = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and "6726825d" in msg and "hub/checkpoints" in msg
    assert "\n" not in msg
    target = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHT_FILES["inception"].filename
    target.parent.mkdir(parents=True)
    torch.save({k: v for k, v in fixture_state.items() if not k.startswith("fc.")}, target)
    assert locate("inception") == target
    det = load_feature_detector("inception")
    assert det.dim == 2048
    assert det.sha256[:8] in det.name


def test_a_foreign_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "x.pth"
    junk.write_text("not weights")
    with pytest.raises(DetectorError, match="cannot read it"):
        load_feature_detector("inception", weights=junk)
    with pytest.raises(DetectorError, match="no such file"):
        load_feature_detector("inception", weights=tmp_path / "missing.pth")
