"""End to end: the offline detector, every metric from the CLI, the statistics cache, one-line errors."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sgan.cli import app
from sgan.errors import DetectorError
from sgan.metrics.detectors import load_feature_detector
from sgan.metrics.features import cached_real_features, generated_features, open_dataset
from sgan.metrics.shapes_detector import load_detector_file

runner = CliRunner()


@pytest.fixture(scope="module")
def shapes_db(tmp_path_factory):
    from sgan.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("data") / "shapes.lmdb"
    prepare_dataset("builtin:shapes", out, max_size=16, count=240, workers=1)
    return out


@pytest.fixture(scope="module")
def detector_file(shapes_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "shapes-detector.pt"
    res = runner.invoke(app, ["detector", "train", str(shapes_db), "--out", str(out), "--epochs", "1", "--batch", "32",
                              "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["resolution"] == 16 and summary["classes"]
    return out


@pytest.fixture
def run_dir(tiny_checkpoint):
    from sgan.checkpoint import write_latest_pointer

    write_latest_pointer(tiny_checkpoint.parent, tiny_checkpoint, kimg=0)
    return tiny_checkpoint.parent


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_detector_file_holds_only_tensors_and_plain_values(detector_file):
    data = torch.load(detector_file, weights_only=True)
    assert data["format"] == "sgan-detector" and isinstance(data["config"], str)
    net, sha = load_detector_file(detector_file)
    assert len(sha) == 64 and net.attribute_names[0].startswith("is_")


@pytest.mark.parametrize("metric,extra,keys", [
    ("fid", ["--data", "{db}", "--num", "40"], ["fid"]),
    ("kid", ["--data", "{db}", "--num", "40", "--subsets", "5"], ["kid", "kid_std"]),
    ("pr", ["--data", "{db}", "--num", "40"], ["precision", "recall"]),
    ("ppl", ["--num", "24", "--space", "z", "--sampling", "full"], ["ppl"]),
    ("ls", ["--num", "40"], ["ls_z", "ls_w"]),
])
def test_every_metric_runs_offline_from_the_cli(metric, extra, keys, run_dir, shapes_db, detector_file, tmp_path):
    args = [a.replace("{db}", str(shapes_db)) for a in extra]
    if "--data" in args:
        args += ["--cache-dir", str(tmp_path / "cache")]
    res = _cli("metrics", metric, run_dir, *args, "--detector", detector_file, "--batch", "16", "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for k in keys:
        assert np.isfinite(out[k])
    assert out["detector"].startswith("shapes-detector:shapes-detector.pt")
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["value"] == out["value"]


def test_fid_of_reals_against_reals_is_small_and_cache_is_keyed_by_content(shapes_db, detector_file, tmp_path):
    det = load_feature_detector(str(detector_file))
    ds = open_dataset(shapes_db, 16)
    a, info = cached_real_features(ds, det, num=120, cache_dir=tmp_path)
    assert info["cache"] == "miss"
    b, info = cached_real_features(ds, det, num=120, cache_dir=tmp_path)
    assert info["cache"] == "hit" and np.array_equal(a, b)
    with np.load(info["path"]) as f:  # pytorch-fid's keys
        assert f["mu"].shape == (det.dim,) and f["sigma"].shape == (det.dim, det.dim)
    _, info = cached_real_features(ds, det, num=100, cache_dir=tmp_path)
    assert info["cache"] == "miss"                      # another option
    det.sha256 = "0" * 64
    _, info = cached_real_features(ds, det, num=120, cache_dir=tmp_path)
    assert info["cache"] == "miss"                      # other weights
    det = load_feature_detector(str(detector_file))
    from sgan.data import layout

    layout.close_env(ds.path)
    import lmdb

    wenv = lmdb.open(str(shapes_db), subdir=True, lock=True)
    with wenv.begin(write=True) as txn:
        key = layout.image_key(16, 5)
        txn.put(key, txn.get(layout.image_key(16, 6)))  # one image changed
    wenv.close()
    ds2 = open_dataset(shapes_db, 16)
    c, info = cached_real_features(ds2, det, num=120, cache_dir=tmp_path)
    assert info["cache"] == "miss" and not np.array_equal(a[5], c[5])
    from sgan.metrics.fid import fid_from_features

    assert abs(fid_from_features(a, a)) < 1e-6
    halves = fid_from_features(a[:60], a[60:])
    brighter = cached_real_features(ds2, det, num=60, use_cache=False)[0]  # reference for scale
    shifted = det.features(torch.from_numpy(np.stack([ds2.image(i) for i in range(60)]).transpose(0, 3, 1, 2) // 2
                                            ).contiguous()).numpy()
    assert halves < fid_from_features(brighter, shifted)


def test_generated_features_do_not_depend_on_batch_size(tiny_checkpoint, detector_file):
    from sgan.checkpoint import load_generator

    G = load_generator(tiny_checkpoint)
    det = load_feature_detector(str(detector_file))
    a = generated_features(G, det, num=10, batch=10, seed=3)
    b = generated_features(G, det, num=10, batch=3, seed=3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args,match", [
    (["metrics", "fid", "{ckpt}", "--data", "{tmp}"], "not an"),
    (["metrics", "fid", "{ckpt}", "--data", "{db}", "--detector", "{det}", "--num-real", "999"], "more than the 240"),
    (["metrics", "fid", "{ckpt}", "--data", "{db}", "--detector", "{tmp}/none.pt"], "no such detector file"),
    (["metrics", "fid", "{ckpt}", "--data", "{db}", "--detector", "{ckpt}"], "not an sgan detector file"),
    (["metrics", "fid", "{ckpt}", "--data", "{db}"], "pt_inception-2015-12-05-6726825d.pth"),
    (["metrics", "ppl", "{ckpt}"], "vgg16-397923af.pth"),
    (["metrics", "ls", "{ckpt}"], "needs attribute classifiers"),
    (["detector", "train", "{tmp}/nothing.lmdb", "--out", "{tmp}/d.pt"], "no such dataset"),
])
def test_bad_input_is_one_line_error(args, match, tiny_checkpoint, shapes_db, detector_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("SGAN_INCEPTION_WEIGHTS", "SGAN_VGG16_WEIGHTS", "SGAN_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    subs = {"{ckpt}": str(tiny_checkpoint), "{db}": str(shapes_db), "{det}": str(detector_file), "{tmp}": str(tmp_path)}
    final = []
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        final.append(a)
    res = runner.invoke(app, final)
    assert res.exit_code != 0
    err = res.stderr if res.stderr_bytes is not None else res.output
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], err
    assert "Traceback" not in res.output


def test_no_network_is_attempted():
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("download.pytorch.org", 443), timeout=1)
    with pytest.raises(DetectorError):  # missing weights: an error, never a download
        load_feature_detector("vgg16", weights="/nonexistent/vgg16-397923af.pth")
