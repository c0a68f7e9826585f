"""`sgan directions` and `sgan edit --direction` end to end, on a tiny checkpoint and on imported models."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sgan.cli import app
from sgan.play.directions import load_directions

runner = CliRunner()
FIX = Path(__file__).parent / "fixtures" / "import"
KEYS = ["checkpoint_sha256", "directions", "layers", "method", "names", "num_ws", "scores", "w_dim"]

pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, code=None):
    assert result.exit_code != 0 and (code is None or result.exit_code == code), result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    return result.output


def test_directions_then_edit_on_a_tiny_checkpoint(tiny_checkpoint, tmp_path):
    dirs_path = tmp_path / "sefa.npz"
    result = invoke("directions", "sefa", tiny_checkpoint, "--layers", "coarse", "--num", "5", "--out", dirs_path)
    assert result.exit_code == 0, result.output
    with np.load(dirs_path, allow_pickle=False) as npz:
        assert sorted(npz.files) == KEYS
        assert npz["directions"].shape == (5, 32) and npz["layers"].tolist() == [0, 1] and str(npz["method"]) == "sefa"
        assert len(str(npz["checkpoint_sha256"])) == 64 and int(npz["num_ws"]) == 6
    pca = tmp_path / "pca.npz"
    result = invoke("directions", "ganspace", tiny_checkpoint, "--samples", "500", "--num", "4", "--out", pca)
    assert result.exit_code == 0, result.output
    assert load_directions(pca).scores.sum() <= 1
    out = tmp_path / "edit"
    result = invoke("edit", tiny_checkpoint, "--direction", f"{dirs_path}:sefa-1", "--strength", "-2..2", "--steps", "5",
                    "--seeds", "0-1", "--out", out, "--video", out / "sweep.mp4", "--seconds", "1", "--fps", "6")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "edit.json").read_text())
    assert record["index"] == 1 and record["layers"] == [0, 1] and record["strengths"] == [-2, -1, 0, 1, 2]
    assert Image.open(out / "strip.png").size[0] > 5 * 16
    from sgan.play.video import read_video_frames
    assert len(list(read_video_frames(out / "sweep.mp4"))) == 6
    # --layers overrides the file's layers; a single strength works too
    result = invoke("edit", tiny_checkpoint, "--direction", f"{pca}:0", "--strength", "1.5", "--layers", "fine",
                    "--seeds", "3", "--out", tmp_path / "e2")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e2" / "edit.json").read_text())["layers"] == [4, 5]


@pytest.mark.parametrize("fixture,arch_layers", [("ada-uncond_network-snapshot-000100.pkl", None),
                                                 ("sg3-t_network-snapshot-000100.pkl", "sg3")])
def test_imported_models_sefa_ganspace_and_edit(fixture, arch_layers, tmp_path):
    ckpt = FIX / fixture
    dirs_path = tmp_path / "d.npz"
    result = invoke("directions", "sefa", ckpt, "--num", "3", "--out", dirs_path)
    assert result.exit_code == 0, result.output
    dirs = load_directions(dirs_path)
    expected = list(range(1, dirs.num_ws)) if arch_layers == "sg3" else list(range(dirs.num_ws))
    assert dirs.layers.tolist() == expected                 # StyleGAN3's ws 0 drives the input transform, no style
    from sgan.formats import load_generator
    from sgan.play.mixing import model_style_groups
    coarse = list(model_style_groups(load_generator(ckpt))["coarse"])   # sgan mix's groups (StyleGAN3: by band)
    result = invoke("directions", "sefa", ckpt, "--layers", "coarse", "--num", "2", "--out", tmp_path / "c.npz")
    assert result.exit_code == 0, result.output
    assert load_directions(tmp_path / "c.npz").layers.tolist() == [i for i in coarse if i in expected]
    result = invoke("directions", "ganspace", ckpt, "--samples", "300", "--num", "3", "--out", tmp_path / "p.npz")
    assert result.exit_code == 0, result.output
    result = invoke("edit", ckpt, "--direction", f"{dirs_path}:0", "--strength", "-1..1", "--steps", "3",
                    "--seeds", "0", "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e" / "strip.png").is_file()


def test_labels_from_the_classes_of_an_imported_conditional_model(tmp_path):
    ckpt = FIX / "ada-cond_network-snapshot-000100.pkl"
    result = invoke("directions", "labels", ckpt, "--samples", "400", "--out", tmp_path / "c.npz")
    assert result.exit_code == 0, result.output
    dirs = load_directions(tmp_path / "c.npz")
    assert dirs.method == "labels" and len(dirs) == 4 and dirs.names[0] == "class-0"
    assert np.all(dirs.scores >= 0.5)
    result = invoke("directions", "labels", ckpt, "--class", "1", "--vs", "3", "--samples", "200", "--out", tmp_path / "v.npz")
    assert result.exit_code == 0, result.output
    assert load_directions(tmp_path / "v.npz").names == ["class-1-vs-3"]
    for extra in ((), ("--class", "2")):            # PCA over all classes, or of one class's w
        result = invoke("directions", "ganspace", ckpt, "--samples", "200", "--num", "3", *extra, "--out", tmp_path / "g.npz")
        assert result.exit_code == 0, result.output
    result = invoke("edit", ckpt, "--direction", f"{tmp_path / 'v.npz'}:0", "--class", "3", "--seeds", "0",
                    "--steps", "2", "--strength", "0..4", "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output


def test_bad_direction_files_and_indices_are_one_line(tiny_checkpoint, tiny_sg2_checkpoint, tmp_path):
    good = tmp_path / "d.npz"
    assert invoke("directions", "sefa", tiny_checkpoint, "--num", "3", "--out", good).exit_code == 0
    (tmp_path / "bad.npz").write_text("hello")
    np.savez(tmp_path / "keys.npz", directions=np.eye(2, 32, dtype=np.float32))
    common = ("--seeds", "0", "--out", tmp_path / "e")
    cases = [((f"{good}:3",), "out of range"), ((f"{good}:-1",), "out of range"), ((f"{good}:nope",), "neither"),
             ((str(good),), "say which"), ((f"{tmp_path / 'bad.npz'}:0",), "not a readable"),
             ((f"{tmp_path / 'keys.npz'}:0",), "missing"), ((f"{tmp_path / 'none.npz'}:0",), "no such")]
    for args, needle in cases:
        assert needle in one_line_error(invoke("edit", tiny_checkpoint, "--direction", *args, *common))
    assert not (tmp_path / "e").exists()
    # another model's latent shape is refused; only another checkpoint of the same shape is a warning
    other = FIX / "sg3-t_network-snapshot-000100.pkl"
    assert "num_ws" in one_line_error(invoke("edit", other, "--direction", f"{good}:0", *common))
    result = invoke("edit", tiny_sg2_checkpoint, "--direction", f"{good}:0", *common)
    assert result.exit_code == 0 and "another checkpoint" in result.output, result.output


def test_option_mistakes_are_one_line(tiny_checkpoint, tmp_path):
    d = tmp_path / "d.npz"
    assert invoke("directions", "sefa", tiny_checkpoint, "--num", "2", "--out", d).exit_code == 0
    cases = [
        (("directions", "svd", tiny_checkpoint, "--out", d), "METHOD"),
        (("directions", "sefa", tiny_checkpoint, "--samples", "10", "--out", d), "does not apply"),
        (("directions", "sefa", tiny_checkpoint, "--out", tmp_path / "x.txt"), ".npz"),
        (("directions", "sefa", tiny_checkpoint, "--layers", "9", "--out", d), "--layers"),
        (("directions", "labels", tiny_checkpoint, "--out", d), "class-conditional"),
        (("directions", "labels", tiny_checkpoint, "--class", "1", "--out", d), "go together"),
        (("directions", "labels", tiny_checkpoint, "--detector", tmp_path / "none.pt", "--out", d), "none.pt"),
        (("edit", tiny_checkpoint, "--direction", f"{d}:0", "--out", tmp_path / "e"), "--seeds"),
        (("edit", tiny_checkpoint, "--direction", f"{d}:0", "--seeds", "0"), "--out"),
        (("edit", tiny_checkpoint, "--direction", f"{d}:0", "--seeds", "0", "--strength", "x", "--out", tmp_path / "e"), "--strength"),
        (("edit", tiny_checkpoint, "--direction", f"{d}:0", "--seeds", "0", "--base", d, "--out", tmp_path / "e"), "--base"),
        (("edit", tiny_checkpoint, "--seeds", "0", "--out", tmp_path / "e"), "--direction"),
        (("edit", tiny_checkpoint, "--out", tmp_path / "e"), "missing --base"),
    ]
    for args, needle in cases:
        assert needle in one_line_error(invoke(*args))
    assert not (tmp_path / "e").exists()


def test_labels_from_detector_attributes(tiny_checkpoint, tmp_path):
    from sgan.data.prepare import prepare_dataset

    prepare_dataset("builtin:shapes", tmp_path / "shapes.lmdb", max_size=16, count=120, workers=1)
    det = tmp_path / "det.pt"
    res = invoke("detector", "train", tmp_path / "shapes.lmdb", "--out", det, "--epochs", "1", "--batch", "32", "--device", "cpu")
    assert res.exit_code == 0, res.output
    from sgan.metrics.shapes_detector import load_detector_file
    names = load_detector_file(det)[0].attribute_names
    result = invoke("directions", "labels", tiny_checkpoint, "--detector", det, "--samples", "200", "--out", tmp_path / "a.npz")
    assert result.exit_code == 0, result.output
    dirs = load_directions(tmp_path / "a.npz")
    assert dirs.method == "labels" and np.all((dirs.scores >= 0) & (dirs.scores <= 1)) and len(dirs) >= 1
    assert set(dirs.names) <= set(names)
    assert "--attribute" in one_line_error(invoke("directions", "labels", tiny_checkpoint, "--detector", det,
                                                  "--attribute", "nope", "--samples", "20", "--out", tmp_path / "b.npz"))
