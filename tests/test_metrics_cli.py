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

from cpu_fakes import fake_amx

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
        sums = json.loads(txn.get(layout.checksum_key(5)))  # with its checksum (else the reader refuses the record)
        sums[key.decode()] = layout.record_checksum(txn.get(key))
        txn.put(layout.checksum_key(5), json.dumps(sums).encode())
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
@pytest.mark.parametrize("precision", [(), ("--precision", "auto")], ids=["default", "auto-on-amx"])
def test_bad_input_is_one_line_error(args, match, precision, tiny_checkpoint, shapes_db, detector_file, tmp_path,
                                     monkeypatch):
    if precision and args[0] != "metrics":
        pytest.skip("only the metrics take --precision")
    asked = fake_amx(monkeypatch)            # a CPU where auto would time bf16 and pick it
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("SGAN_INCEPTION_WEIGHTS", "SGAN_VGG16_WEIGHTS", "SGAN_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    subs = {"{ckpt}": str(tiny_checkpoint), "{db}": str(shapes_db), "{det}": str(detector_file), "{tmp}": str(tmp_path)}
    final = []
    for a in args:
        for k, v in subs.items():
            a = a.replace(k, v)
        final.append(a)
    res = runner.invoke(app, final + list(precision))
    assert res.exit_code != 0 and asked == [], "the precision probe ran before the inputs were checked"
    err = res.stderr if res.stderr_bytes is not None else res.output
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], err
    assert "Traceback" not in res.output


def test_no_network_is_attempted():
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("download.pytorch.org", 443), timeout=1)
    with pytest.raises(DetectorError):  # missing weights: an error, never a download
        load_feature_detector("vgg16", weights="/nonexistent/vgg16-397923af.pth")


# -- known answers through the commands -------------------------------------------------------------

class _DatasetG(torch.nn.Module):
    """A stand-in generator that returns the dataset's own images (optionally transformed) in order:
    the generated set is the real set, so the answers are known."""

    def __init__(self, db, transform=lambda u: u):
        super().__init__()
        ds = open_dataset(db, 16)
        u8 = np.stack([transform(ds.image(i)) for i in range(ds.num_images)]).transpose(0, 3, 1, 2)
        self.images = torch.from_numpy(np.ascontiguousarray(u8)).float() / 127.5 - 1.0
        self.z_dim, self.w_dim, self.num_ws, self.resolution, self.c_dim = 8, 8, 6, 16, 0
        self.pos = 0

    def forward(self, z, c=None, **kwargs):
        out = self.images[self.pos:self.pos + z.shape[0]]
        self.pos += z.shape[0]
        return out


def _metric_json(monkeypatch, G, *args):
    import sgan.play.classes

    monkeypatch.setattr(sgan.play.classes, "load_class_generator", lambda *a, **k: G)   # what `sgan metrics` loads with
    res = _cli("metrics", *args, "--json", "--device", "cpu")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_fid_kid_pr_of_the_real_set_against_itself(shapes_db, detector_file, tiny_checkpoint, tmp_path, monkeypatch):
    n = open_dataset(shapes_db, 16).num_images
    common = ["--data", shapes_db, "--detector", detector_file, "--num", n, "--cache-dir", tmp_path]
    fid = _metric_json(monkeypatch, _DatasetG(shapes_db), "fid", tiny_checkpoint, *common)
    assert abs(fid["fid"]) < 1e-3 and fid["num_real"] == n                       # identical sets
    pr = _metric_json(monkeypatch, _DatasetG(shapes_db), "pr", tiny_checkpoint, *common)
    assert pr["precision"] == 1.0 and pr["recall"] == 1.0                      # every point in its own ball
    for r in (fid, pr):                                                        # fp32 unless asked: no probe
        assert r["precision_choice"] == {"precision": "fp32", "requested": "fp32", "timings_ms": {}, "reason": "forced"}
    kid_same = _metric_json(monkeypatch, _DatasetG(shapes_db), "kid", tiny_checkpoint, *common, "--subsets", 20,
                            "--subset-size", 100)["kid"]
    darker = lambda u: u // 2  # noqa: E731
    kid_dark = _metric_json(monkeypatch, _DatasetG(shapes_db, darker), "kid", tiny_checkpoint, *common, "--subsets", 20,
                            "--subset-size", 100)["kid"]
    assert abs(kid_same) < 0.05 * kid_dark                                    # unbiased: ~0 for one set


def test_fid_of_a_shifted_set_equals_the_distance_of_its_features(shapes_db, detector_file, tiny_checkpoint, tmp_path,
                                                                   monkeypatch):
    from sgan.metrics.fid import fid_from_features

    ds = open_dataset(shapes_db, 16)
    darker = lambda u: u // 2  # noqa: E731
    det = load_feature_detector(str(detector_file))
    real = det.features(torch.from_numpy(np.stack([ds.image(i) for i in range(ds.num_images)]).transpose(0, 3, 1, 2).copy())).numpy()
    dark = det.features(torch.from_numpy(np.stack([darker(ds.image(i)) for i in range(ds.num_images)]).transpose(0, 3, 1, 2).copy())).numpy()
    out = _metric_json(monkeypatch, _DatasetG(shapes_db, darker), "fid", tiny_checkpoint, "--data", shapes_db, "--detector",
                       detector_file, "--num", ds.num_images, "--no-cache")
    expected = fid_from_features(real.astype(np.float64), dark.astype(np.float64))
    assert expected > 1.0 and out["fid"] == pytest.approx(expected, rel=1e-4)
    shift = np.full(real.shape[1], 0.25)                                      # FID(X, X + c) = |c|^2
    assert fid_from_features(real, real + shift) == pytest.approx(float(shift @ shift), rel=1e-6, abs=1e-6)


class _LatentG(torch.nn.Module):
    """w = z; the image carries w in its first row, so a stand-in detector can read it back."""

    z_dim = w_dim = 8
    num_ws, resolution, c_dim = 6, 16, 0

    def map(self, z, c=None, *, truncation_psi=1.0, truncation_cutoff=None):
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws, **kwargs):
        img = torch.zeros(ws.shape[0], 3, 16, 16)
        img[:, 0, 0, :8] = ws[:, -1]
        return img


class _PlantedDetector:
    """Class probabilities and two attributes: `planted` = sigmoid(4 v.w) (linear in w),
    `coin` = a fair coin independent of w (a fixed random draw per image)."""

    class_names = ["pos", "neg"]
    attribute_names = ["pos", "neg", "planted", "coin"]
    ls_attributes = [2, 3]
    config = {"heldout": None}

    def __init__(self):
        self.v = torch.from_numpy(np.random.default_rng(0).standard_normal(8)).float()
        self.rng = np.random.default_rng(1)

    def attribute_probs(self, images):
        w = images[:, 0, 0, :8]
        p = torch.sigmoid(4 * w @ self.v)
        coin = torch.from_numpy(self.rng.random(len(w)) < 0.5).float() * 0.5 + 0.25   # 0.25 / 0.75: equally confident
        return torch.stack([p, 1 - p, p, coin], dim=1)


def test_ls_of_a_planted_linear_attribute(tiny_checkpoint, monkeypatch):
    import sgan.metrics.detectors

    monkeypatch.setattr(sgan.metrics.detectors, "load_attribute_detector",
                        lambda *a, **k: (_PlantedDetector(), "planted", "0" * 64))
    out = _metric_json(monkeypatch, _LatentG(), "ls", tiny_checkpoint, "--detector", "planted.pt", "--num", 600)
    assert out["attributes"]["planted"]["h_z"] < 1e-6 and out["attributes"]["planted"]["h_w"] < 1e-6
    coin = out["attributes"]["coin"]
    assert 0.8 < coin["h_z"] <= 1.0 and 0.8 < coin["h_w"] <= 1.0      # a fair coin: about one bit, minus overfit
    assert out["ls_z"] == pytest.approx(2 ** coin["h_z"], rel=1e-3) and out["ls_w"] == pytest.approx(2 ** coin["h_w"], rel=1e-3)


@pytest.mark.filterwarnings("ignore:.*rank-deficient")
def test_auto_on_an_amx_cpu_times_once_after_the_checks_and_records_the_choice(tiny_checkpoint, shapes_db,
                                                                                detector_file, tmp_path, monkeypatch):
    asked = fake_amx(monkeypatch)            # bf16 times faster: auto picks it
    common = ["--data", shapes_db, "--detector", detector_file, "--num", 8, "--num-real", 20, "--cache-dir", tmp_path,
              "--device", "cpu", "--batch", 4]
    res = _cli("metrics", "fid", tiny_checkpoint, *common, "--precision", "auto")
    assert res.exit_code == 0, res.output
    err = res.stderr if res.stderr_bytes is not None else res.output
    assert err.count("precision bf16 (auto: cpu flags avx512_bf16+amx_bf16") == 1, err
    assert sorted(set(asked)) == ["bf16", "fp32"]
    res = _cli("metrics", "fid", tiny_checkpoint, *common, "--precision", "auto", "--json")
    choice = json.loads(res.stdout)["precision_choice"]
    assert choice["precision"] == "bf16" and choice["requested"] == "auto" and set(choice["timings_ms"]) == {"fp32", "bf16"}
    asked.clear()
    res = _cli("metrics", "kid", tiny_checkpoint, *common, "--subsets", 2, "--subset-size", 4, "--json")
    assert json.loads(res.stdout)["precision_choice"]["precision"] == "fp32" and asked == []   # the default


@pytest.mark.filterwarnings("ignore:.*rank-deficient")
def test_library_metrics_compute_in_fp32_unless_asked(tiny_checkpoint, shapes_db, detector_file, tmp_path, monkeypatch):
    from sgan.checkpoint import load_generator
    from sgan.metrics import compute_metric

    asked = fake_amx(monkeypatch)
    G = load_generator(tiny_checkpoint)
    kw = dict(G=G, data_path=shapes_db, detector=str(detector_file), num=8, batch=4, cache_dir=tmp_path, num_real=20)
    plain = compute_metric("fid", **kw)
    assert plain["precision_choice"]["precision"] == "fp32" and asked == []
    heard = []
    fast = compute_metric("fid", **kw, precision="auto", on_precision=heard.append)
    assert fast["precision_choice"]["precision"] == "bf16" and [c.precision for c in heard] == ["bf16"]
    with pytest.raises(Exception, match="PPL's epsilon differences need fp32"):
        compute_metric("ppl", G=G, detector=str(detector_file), num=4, precision="bf16")
