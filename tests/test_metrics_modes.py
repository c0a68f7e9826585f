"""Mode coverage: the numbers against a hand computation, the class detector on a folder dataset
with labels and on builtin:digits, `sgan metrics modes` end to end, and the junk images."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.cli import app
from sgan.metrics.junk import make_junk
from sgan.metrics.modes import class_stats, entropy_bits, kl_bits, sort_samples
from sgan.metrics.shapes_detector import load_detector_file

runner = CliRunner()


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


# ----------------------------------------------------------------------------- the numbers

def test_planted_histogram_against_hand_computation():
    # 6, 2, 2, 0 confident samples of four equal classes; 3 unsure, 5 junk.
    s = class_stats([6, 2, 2, 0], [0.25] * 4, num_unsure=3, num_junk=5, class_names=["a", "b", "c", "d"])
    # H = -(0.6 log2 0.6 + 2 * 0.2 log2 0.2) = 0.6 * 0.7369656 + 0.4 * 2.3219281
    assert s["entropy_bits"] == pytest.approx(1.3709506, abs=1e-6)
    # q uniform: KL(p || q) = log2 4 - H
    assert s["kl_bits"] == pytest.approx(2 - 1.3709506, abs=1e-6)
    assert s["histogram"] == {"a": 0.6, "b": 0.2, "c": 0.2, "d": 0.0}
    assert s["covered"] == 3 and s["missing"] == ["d"]            # 0 < 0.5 * 0.25; 0.2 >= 0.125
    assert s["share_confident"] == pytest.approx(10 / 18, abs=1e-6)
    assert s["share_unsure"] == pytest.approx(3 / 18, abs=1e-6) and s["share_junk"] == pytest.approx(5 / 18, abs=1e-6)
    assert s["max_entropy_bits"] == pytest.approx(2.0) and s["real_entropy_bits"] == pytest.approx(2.0)


def test_kl_and_coverage_follow_the_real_distribution():
    q = [0.4, 0.2, 0.2, 0.2]
    s = class_stats([6, 2, 2, 0], q, num_unsure=0, num_junk=0, class_names=list("abcd"))
    assert s["kl_bits"] == pytest.approx(0.6 * math.log2(0.6 / 0.4), abs=1e-6)   # b, c at their share: 0
    s = class_stats([3, 1, 1, 5], q, num_unsure=0, num_junk=0, class_names=list("abcd"), cover_fraction=0.6)
    # shares .3 .1 .1 .5 against .6 x q = .24 .12 .12 .12: a and d covered, b and c not
    assert s["covered"] == 2 and s["missing"] == ["b", "c"]
    assert kl_bits([0.5, 0.5], [1.0, 0.0]) == math.inf and entropy_bits([1.0, 0.0]) == 0.0


def test_no_confident_sample_gives_no_entropy():
    s = class_stats([0, 0, 0], [1 / 3] * 3, num_unsure=4, num_junk=6, class_names=list("xyz"))
    assert s["entropy_bits"] is None and s["kl_bits"] is None and s["covered"] == 0 and s["share_junk"] == 0.6


def test_samples_are_sorted_into_confident_unsure_and_junk():
    probs = np.array([[0.9, 0.05, 0.05],    # class 0, confident
                      [0.7, 0.2, 0.1],      # class 0 but under 0.8: unsure
                      [0.1, 0.85, 0.05],    # class 1, confident
                      [0.3, 0.3, 0.4],      # junk (index 2) is the most likely: junk
                      [0.05, 0.05, 0.9]])
    counts, unsure, junk = sort_samples(probs, junk_index=2, threshold=0.8)
    assert counts.tolist() == [1, 1] and unsure == 1 and junk == 2
    counts, unsure, junk = sort_samples(probs, junk_index=None, threshold=0.8)
    assert counts.tolist() == [1, 1, 1] and unsure == 2 and junk == 0


def test_junk_images_are_seeded_and_unlike_the_reals():
    reals = torch.rand(6, 3, 16, 16) * 2 - 1
    a = make_junk(reals, 12, generator=torch.Generator().manual_seed(3))
    b = make_junk(reals, 12, generator=torch.Generator().manual_seed(3))
    assert a.shape == (12, 3, 16, 16) and torch.equal(a, b) and a.abs().max() <= 1
    assert all((a[i] - reals).abs().amax(dim=(1, 2, 3)).min() > 0.05 for i in range(12))


# ----------------------------------------------------------------------------- a folder dataset with labels

def _folder_dataset(root, n_per_class=30, size=16):
    """Three classes of 16 px PNGs told apart by a bright bar: top, middle or bottom."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(["top", "middle", "bottom"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            y = 2 + k * 5 + int(rng.integers(0, 2))
            img[y:y + 3, 2:size - 2] = 230
            Image.fromarray(img).save(root / name / f"{i:03d}.png")


@pytest.fixture(scope="module")
def folder_db(tmp_path_factory):
    from sgan.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("bars")
    _folder_dataset(root / "src")
    prepare_dataset(str(root / "src"), root / "bars.lmdb", max_size=16, min_size=8, labels="folders", workers=1)
    return root / "bars.lmdb"


@pytest.fixture(scope="module")
def folder_detector(folder_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "bars-detector.pt"
    res = _cli("detector", "train", folder_db, "--out", out, "--epochs", "25", "--batch", "32", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "held-out class accuracy" in res.output and "junk" in res.output
    return out


def test_detector_of_a_folder_dataset(folder_detector):
    net, _ = load_detector_file(folder_detector)
    cfg = net.config
    assert net.class_names == ["bottom", "middle", "top", "junk"] and net.junk_index == 3
    assert net.real_class_names == ["bottom", "middle", "top"]
    assert cfg["label_source"] == "class" and cfg["real_counts"] == [30, 30, 30]
    assert cfg["real_distribution"] == pytest.approx([1 / 3] * 3, abs=1e-5)
    held = cfg["heldout"]
    assert held["class_accuracy"] >= 0.85         # 9 held-out images (a tenth of each class)
    assert 0 <= held["reals_called_junk"] <= 1 and 0 <= held["junk_recall"] <= 1
    assert "is_junk" in cfg["ls_exclude"]


def test_metrics_modes_from_the_cli(folder_detector, tiny_checkpoint):
    res = _cli("metrics", "modes", tiny_checkpoint, "--detector", folder_detector, "--num", "40", "--batch", "16",
               "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["metric"] == "modes" and r["num_gen"] == 40 and r["num_classes"] == 3
    assert r["share_confident"] + r["share_unsure"] + r["share_junk"] == pytest.approx(1.0, abs=1e-5)
    assert r["num_confident"] == sum(r["counts"].values()) == round(40 * r["share_confident"])
    assert set(r["histogram"]) == {"bottom", "middle", "top"} and 0 <= r["covered"] <= 3
    if r["num_confident"]:
        assert r["entropy_bits"] == pytest.approx(entropy_bits(list(r["histogram"].values())), abs=1e-5)
        assert r["value"] == r["entropy_bits"]
    assert r["detector"].startswith("shapes-detector:bars-detector.pt")
    text = _cli("metrics", "modes", tiny_checkpoint, "--detector", folder_detector, "--num", "40", "--device", "cpu")
    assert text.exit_code == 0 and "classes covered" in text.output and "junk" in text.output
    # The same numbers whatever the batch size, and by name as `sgan train --metrics modes40` computes them.
    from sgan.metrics import compute_metric
    from sgan.play.classes import load_class_generator

    G = load_class_generator(tiny_checkpoint, None, mixture_ok=True)
    by_name = compute_metric("modes40", G=G, detector=str(folder_detector), batch=7, device="cpu")
    assert by_name["name"] == "modes40" and by_name["counts"] == r["counts"] and by_name["share_junk"] == r["share_junk"]


@pytest.mark.parametrize("args,match", [
    (["--threshold", "1.5"], "threshold"),
    (["--cover-fraction", "0"], "cover-fraction"),
    (["--detector", "{tmp}/none.pt"], "no such detector file"),
])
def test_modes_bad_input_is_one_line_error(args, match, folder_detector, tiny_checkpoint, tmp_path):
    full = ["metrics", "modes", str(tiny_checkpoint), "--num", "8", "--device", "cpu"]
    if "--detector" not in args:
        full += ["--detector", str(folder_detector)]
    res = runner.invoke(app, full + [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code != 0 and match in res.output and "Traceback" not in res.output, res.output


def test_detector_train_refuses_a_dataset_without_labels(tmp_path):
    from sgan.data.prepare import prepare_dataset

    src = tmp_path / "flat"
    src.mkdir()
    for i in range(24):
        Image.fromarray(np.full((16, 16, 3), i * 10, dtype=np.uint8)).save(src / f"{i}.png")
    prepare_dataset(str(src), tmp_path / "flat.lmdb", max_size=16, min_size=8, workers=1)
    res = _cli("detector", "train", tmp_path / "flat.lmdb", "--out", tmp_path / "d.pt", "--device", "cpu")
    assert res.exit_code != 0 and "no class labels" in res.output and "--labels folders" in res.output
    assert not (tmp_path / "d.pt").exists()


# ----------------------------------------------------------------------------- builtin:digits and shapes

def test_detector_on_builtin_digits(tmp_path):
    from sgan.data.prepare import prepare_dataset

    prepare_dataset("builtin:digits", tmp_path / "digits.lmdb", max_size=8, min_size=8, workers=1)
    res = _cli("detector", "train", tmp_path / "digits.lmdb", "--out", tmp_path / "d.pt", "--epochs", "1",
               "--limit", "400", "--batch", "64", "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["classes"] == [str(d) for d in range(10)] and summary["junk_class"] == "junk"
    assert summary["train_images"] + summary["heldout_images"] == 400 and summary["resolution"] == 8
    assert sum(summary["real_distribution"].values()) == pytest.approx(1.0, abs=1e-4)
    net, _ = load_detector_file(tmp_path / "d.pt")
    assert 0.0 <= net.config["heldout"]["class_accuracy"] <= 1.0 and net.config["epochs"] == 1


def test_shapes_detector_keeps_its_classes_and_can_learn_junk(shapes16, tmp_path):
    res = _cli("detector", "train", shapes16, "--out", tmp_path / "s.pt", "--epochs", "1", "--batch", "32",
               "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    net, _ = load_detector_file(tmp_path / "s.pt")
    assert "junk" not in net.class_names and net.junk_index is None and net.binary_names
    assert net.config["label_source"] == "shape_id" and len(net.config["real_counts"]) == len(net.class_names)
    res = _cli("detector", "train", shapes16, "--out", tmp_path / "j.pt", "--epochs", "1", "--batch", "32",
               "--junk", "--device", "cpu", "--json")
    assert res.exit_code == 0, res.output
    net, _ = load_detector_file(tmp_path / "j.pt")
    assert net.class_names[-1] == "junk" and "is_junk" not in [net.attribute_names[i] for i in net.ls_attributes]


def test_conditional_model_draws_its_classes(folder_detector, folder_db, tmp_path):
    from sgan.checkpoint import save_checkpoint
    from sgan.nn import ModelConfig, make_discriminator, make_generator

    torch.manual_seed(0)
    cfg = ModelConfig(**{**ModelConfig.preset("tiny", 16).to_dict(), "c_dim": 3})
    G, D = make_generator(cfg), make_discriminator(cfg)
    ckpt = save_checkpoint(tmp_path / "cond.pt", config=cfg, G=G, G_ema=G, D=D, extra={"classes": ["bottom", "middle", "top"]})
    base = ["metrics", "modes", ckpt, "--detector", folder_detector, "--num", "12", "--device", "cpu", "--json"]
    for extra, origin in (([], "detector's real counts"), (["--data", folder_db], "dataset labels"), (["--class", "top"], "fixed")):
        res = _cli(*base, *extra)
        assert res.exit_code == 0, res.output
        r = json.loads(res.stdout)
        assert r["classes_from"] == origin and r["num_gen"] == 12
    assert r["class"] == {"index": 2, "name": "top"}


def test_train_metrics_hook_computes_modes_by_name(folder_detector, folder_db, tiny_checkpoint, tmp_path):
    from sgan.cli.train import _metrics_hook

    hook = _metrics_hook("modes16", folder_db, tmp_path, str(folder_detector), "cpu")   # what --metrics modes16 runs
    hook(tiny_checkpoint, 1.5)
    lines = (tmp_path / "metric-modes16.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["kimg"] == 1.5 and record["metric"] == "modes" and record["num_gen"] == 16
    assert "share_junk" in record and "covered" in record and record["histogram_text"].startswith("bottom:")
