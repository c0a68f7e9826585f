"""LPIPS-VGG v0.1 against the lpips package's outputs (fixture), and its VGG16 layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from metrics_fill import filled_state_dict
from sgan.errors import DetectorError
from sgan.metrics.lpips import LIN_WEIGHTS_FILE, LPIPS, load_lin_weights
from sgan.metrics.vgg import VGG16
from sgan.metrics.weights import load_strict

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def lpips_net():
    vgg = VGG16(with_classifier=False)
    load_strict(vgg, filled_state_dict(json.loads((FIXTURES / "lpips_vgg16_keys.json").read_text())),
                source="fixture", what="VGG16")
    return LPIPS(vgg)


def test_packaged_lin_weights_are_the_fixture():
    ours = load_lin_weights()
    ref = np.load(FIXTURES / "lpips_v0.1_vgg_lin.npz")
    for k in range(5):
        np.testing.assert_array_equal(ours[f"lin{k}.model.1.weight"].numpy(), ref[f"lin{k}.model.1.weight"])


def test_distances_match_the_lpips_package(lpips_net):
    data = np.load(FIXTURES / "lpips_vgg_oracle.npz")
    a, b, c = (torch.from_numpy(data[k]) for k in "abc")
    with torch.no_grad():
        for x, y, key in [(a, b, "d_ab"), (a, c, "d_ac"), (a, a, "d_aa")]:
            got = lpips_net(x, y).numpy()
            assert np.abs(got - data[key]).max() < 1e-5, key
    assert data["d_ac"].min() > 1e-2  # the check is not trivially zero


def test_gradients_reach_the_input_and_weights_stay_frozen(lpips_net):
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    d = lpips_net(x * 2 - 1, torch.zeros(2, 3, 32, 32))
    d.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in lpips_net.parameters())


def test_wrong_lin_weights_are_refused(tmp_path):
    bad = tmp_path / "lin.npz"
    np.savez(bad, **{f"lin{k}.model.1.weight": np.zeros((1, 3, 1, 1), np.float32) for k in range(5)})
    with pytest.raises(DetectorError, match="keys/shapes"):
        load_lin_weights(bad)
    assert LIN_WEIGHTS_FILE.is_file()


def test_vgg16_has_torchvision_keys():
    keys = json.loads((FIXTURES / "lpips_vgg16_keys.json").read_text())
    sd = VGG16().state_dict()
    assert set(keys) <= set(sd)
    assert tuple(sd["classifier.0.weight"].shape) == (4096, 25088)
    assert tuple(sd["classifier.3.weight"].shape) == (4096, 4096)
    assert tuple(sd["classifier.6.weight"].shape) == (1000, 4096)
