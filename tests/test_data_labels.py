"""Class labels from folders and dataset.json, stored in the LMDB; builtin:lfw-faces."""

import builtins
import json

import numpy as np
import pytest
from PIL import Image

from sgan.data.labels import class_labels, one_hot, resolve_class
from sgan.data.prepare import prepare_dataset
from sgan.errors import DataError, UsageError


def _folder(tmp_path, layout):
    root = tmp_path / "src"
    for i, rel in enumerate(layout):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(p)
    return root


def test_folders_become_classes(tmp_path):
    root = _folder(tmp_path, ["dogs/a.png", "cats/b.png", "cats/c.png", "dogs/sub/d.png"])
    prepare_dataset(str(root), tmp_path / "db", max_size=8, workers=1, labels="folders")
    found = class_labels(tmp_path / "db")
    assert found.names == ["cats", "dogs"]
    # sorted relative paths: cats/b, cats/c, dogs/a, dogs/sub/d
    assert found.indices.tolist() == [0, 0, 1, 1] and found.counts() == [2, 2]
    from sgan.data.inspect import dataset_info

    info = dataset_info(tmp_path / "db")
    assert info["classes"] == [{"index": 0, "name": "cats", "images": 2}, {"index": 1, "name": "dogs", "images": 2}]


def test_folders_refuse_loose_files(tmp_path):
    root = _folder(tmp_path, ["dogs/a.png", "loose.png"])
    with pytest.raises(DataError, match="loose.png"):
        prepare_dataset(str(root), tmp_path / "db", max_size=8, workers=1, labels="folders")


def test_dataset_json_auto(tmp_path):
    root = _folder(tmp_path, ["x/a.png", "b.png", "c.png"])
    (root / "dataset.json").write_text(json.dumps({"labels": [["x/a.png", 2], ["b.png", 0], ["c.png", 1]]}))
    prepare_dataset(str(root), tmp_path / "db", max_size=8, workers=1)  # auto picks dataset.json
    found = class_labels(tmp_path / "db")
    assert found.indices.tolist() == [0, 1, 2] and found.names == ["0", "1", "2"]


def test_dataset_json_problems(tmp_path):
    root = _folder(tmp_path, ["a.png", "b.png"])
    (root / "dataset.json").write_text(json.dumps({"labels": [["a.png", 1]]}))
    with pytest.raises(DataError, match="b.png"):
        prepare_dataset(str(root), tmp_path / "db", max_size=8, workers=1)
    (root / "dataset.json").write_text(json.dumps({"labels": [["a.png", [0.5, 1.0]], ["b.png", 0]]}))
    with pytest.raises(DataError, match="integer classes"):
        prepare_dataset(str(root), tmp_path / "db", max_size=8, workers=1)
    (root / "dataset.json").write_text(json.dumps({"labels": None}))
    prepare_dataset(str(root), tmp_path / "db", max_size=8, workers=1)
    with pytest.raises(DataError, match="no class labels"):
        class_labels(tmp_path / "db")


def test_shapes_classes(tmp_path):
    prepare_dataset("builtin:shapes", tmp_path / "db", max_size=8, count=40, workers=1)
    found = class_labels(tmp_path / "db")
    assert found.names == ["circle", "square", "triangle", "star"] and sum(found.counts()) == 40


def test_resolve_class_and_one_hot():
    names = ["circle", "square"]
    assert resolve_class("square", names) == 1 and resolve_class("0", names) == 0
    with pytest.raises(UsageError, match="0=circle, 1=square"):
        resolve_class("7", names)
    assert one_hot([1, 0], 3).tolist() == [[0, 1, 0], [1, 0, 0]]


def test_lfw_faces(tmp_path):
    pytest.importorskip("skimage")
    s = prepare_dataset("builtin:lfw-faces", tmp_path / "db", max_size=32, workers=1)
    assert s.count == 100 and s.sizes[-1] == 32
    from sgan.data.lmdb_dataset import MultiResolutionDataset

    ds = MultiResolutionDataset(tmp_path / "db", resolution=32)
    img = ds.image(0)
    assert img.shape == (32, 32, 3) and (img[..., 0] == img[..., 1]).all() and img.std() > 10
    with pytest.raises(UsageError, match="32"):
        prepare_dataset("builtin:lfw-faces", tmp_path / "db2", max_size=64, workers=1)


def test_lfw_without_scikit_image(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(UsageError, match=r"sgan\[lfw\]"):
        prepare_dataset("builtin:lfw-faces", tmp_path / "db", max_size=32, workers=1)
    assert not (tmp_path / "db").exists()
