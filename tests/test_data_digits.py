"""builtin:digits: scikit-learn's 1,797 8x8 digits as a labelled 32 px dataset; its one-line error without sklearn."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from typer.testing import CliRunner

from sgan.cli import app
from sgan.data import digits as digits_mod
from sgan.data.labels import class_labels
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.prepare import prepare_dataset
from sgan.errors import UsageError


def test_digits_prepared_with_their_classes(tmp_path):
    s = prepare_dataset("builtin:digits", tmp_path / "db", max_size=32, min_size=8, workers=1)
    assert s.count == 1797 and s.sizes == [8, 16, 32]
    labels = class_labels(tmp_path / "db")
    assert labels.names == [str(d) for d in range(10)]
    from sklearn.datasets import load_digits

    ref = load_digits()
    assert labels.indices.tolist() == ref.target.tolist()
    ds = MultiResolutionDataset(tmp_path / "db", resolution=32)
    img = ds.image(5)
    assert img.shape == (32, 32, 3) and (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    # The 32 px image is the 8 px original upsampled: its 4x4 block means follow the original's levels.
    blocks = img[..., 0].astype(np.float64).reshape(8, 4, 8, 4).mean(axis=(1, 3))
    assert np.corrcoef(blocks.ravel(), ref.images[5].ravel())[0, 1] > 0.95
    assert img.max() >= 200 and img.min() <= 10           # 0..16 scaled to the full 0..255 range
    small = MultiResolutionDataset(tmp_path / "db", resolution=8).image(5)
    assert small.shape == (8, 8, 3)


def test_digits_options_refused(tmp_path):
    with pytest.raises(UsageError, match="32 px at most"):
        prepare_dataset("builtin:digits", tmp_path / "db", max_size=64, workers=1)
    with pytest.raises(UsageError, match="takes no options"):
        prepare_dataset("builtin:digits?variant=hard", tmp_path / "db", max_size=32, workers=1)
    s = prepare_dataset("builtin:digits", tmp_path / "few", max_size=8, min_size=8, count=30, workers=1)
    assert s.count == 30 and class_labels(tmp_path / "few").indices.tolist() == digits_mod.digits_labels()[:30].tolist()


def test_digits_without_scikit_learn(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    digits_mod._load.cache_clear()
    monkeypatch.setattr(builtins, "__import__", fake_import)
    try:
        res = CliRunner().invoke(app, ["prepare-dataset", "builtin:digits", str(tmp_path / "db"), "--max-size", "32"])
    finally:
        digits_mod._load.cache_clear()
    assert res.exit_code != 0
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "sgan[digits]" in lines[0], res.output
    assert not (tmp_path / "db").exists()
