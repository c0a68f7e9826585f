"""Dataset integrity while reading (issue 23 §3, §4): per-record BLAKE2b checked as training reads,
class labels outside the classes, NaN or >= 2^63 refused in one line naming the record."""

from __future__ import annotations

import io
import json

import lmdb
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sgan.cli import app
from sgan.data import layout
from sgan.data.inspect import verify_dataset
from sgan.data.labels import DamagedLabel, class_labels
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.prepare import prepare_dataset
from sgan.errors import DataError


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "s.lmdb"
    prepare_dataset("builtin:shapes", path, max_size=8, count=6, workers=1)
    return path


def _edit(path, key, value, *, resum=False):
    """Overwrite one record (and, with resum, its checksum, as a careful forger would)."""
    layout.close_env(path)
    with lmdb.open(str(path), map_size=1 << 30) as env, env.begin(write=True) as txn:
        txn.put(key, value)
        if resum:
            index = int(key.decode().rsplit("-", 1)[1])
            sums = json.loads(txn.get(layout.checksum_key(index)))
            sums[key.decode()] = layout.record_checksum(value)
            txn.put(layout.checksum_key(index), json.dumps(sums).encode())
    layout.close_env(path)


def _get(path, key):
    with layout.shared_env(path).begin(write=False) as txn:
        return txn.get(key)


def _altered_png(data):
    img = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
    img[0, 0] = 255 - img[0, 0]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="png")
    return buf.getvalue()


def test_an_altered_image_record_is_refused_as_it_is_read(db):
    original = _get(db, b"8-00002")
    _edit(db, b"8-00002", _altered_png(original))
    ds = MultiResolutionDataset(db, resolution=8)
    ds[0], ds[1]                                       # other records read fine
    with pytest.raises(DataError, match="record 8-00002 does not match the checksum"):
        ds[2]
    with pytest.raises(DataError, match="8-00002"):     # and the x-flipped twin too
        MultiResolutionDataset(db, resolution=8, xflip=True)[6 + 2]
    assert MultiResolutionDataset(db, resolution=8, check_records=False)[2][0].shape == (3, 8, 8)


def test_an_altered_label_record_is_refused_as_it_is_read(db):
    label = layout.decode_label(_get(db, b"label-00003"))
    label[0] = 1.0 - label[0] if label[0] < 1 else 0.0
    _edit(db, b"label-00003", layout.encode_label(label.tolist()))
    with pytest.raises(DataError, match="record label-00003 does not match"):
        MultiResolutionDataset(db, resolution=8)[3]


def _class_j(db):
    meta = layout.read_header(layout.shared_env(db), db)["metadata"]["labels"]
    return meta["names"].index(meta["class_field"]), len(meta["names"]), len(meta["classes"])


@pytest.mark.parametrize("value", [99.0, float("nan"), 2.0 ** 63, -1.0, 0.5])
def test_class_labels_outside_the_classes_are_refused_everywhere(db, value):
    j, dim, n = _class_j(db)
    label = layout.decode_label(_get(db, b"label-00004"))
    label[j] = value
    _edit(db, b"label-00004", layout.encode_label(label.tolist()), resum=True)   # checksums agree: only the value is wrong
    with pytest.raises(DamagedLabel, match="label-00004"):
        class_labels(db)                              # what `train --cond` reads
    with pytest.raises(DataError, match="label-00004"):
        MultiResolutionDataset(db, resolution=8)[4]
    report = verify_dataset(db)
    assert not report.ok and any("label-00004" in p for p in report.problems), report.problems
    for cmd in (["dataset", "info", str(db)], ["dataset", "verify", str(db)]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code != 0, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output and "label-00004" in result.output, result.output
    info = CliRunner().invoke(app, ["dataset", "info", str(db)])
    errors = [ln for ln in info.output.splitlines() if ln.startswith("Error:")]
    assert info.exit_code != 0 and len(errors) == 1, info.output
