"""--class in the tools that use a trained model."""


import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sgan.checkpoint import save_checkpoint
from sgan.cli import app
from sgan.nn import ModelConfig, make_discriminator, make_generator
from sgan.play.classes import load_class_generator

runner = CliRunner()
NAMES = ["circle", "square", "triangle", "star"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def cond_checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(**{**ModelConfig.preset("tiny", 16).to_dict(), "c_dim": 4})
    G, D = make_generator(cfg), make_discriminator(cfg)
    with torch.no_grad():
        G.mapping.embed.weight.mul_(5)  # make classes visibly different
    return save_checkpoint(tmp_path / "cond.pt", config=cfg, G=G, G_ema=G, D=D, extra={"classes": NAMES})


def test_generate_by_name_and_index(cond_checkpoint, tmp_path):
    r1 = invoke("generate", cond_checkpoint, "--seeds", "0-1", "--class", "triangle", "--outdir", tmp_path / "a")
    r2 = invoke("generate", cond_checkpoint, "--seeds", "0-1", "--class", "2", "--outdir", tmp_path / "b")
    r3 = invoke("generate", cond_checkpoint, "--seeds", "0-1", "--class", "0", "--outdir", tmp_path / "c")
    assert r1.exit_code == r2.exit_code == r3.exit_code == 0, r1.output
    a, b, c = (np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / d / "seed0000.png")) for d in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_class_errors(cond_checkpoint, tiny_checkpoint, tmp_path):
    r = invoke("generate", cond_checkpoint, "--seeds", "0", "--outdir", tmp_path)
    assert r.exit_code == 2 and "class-conditional" in r.output and "2=triangle" in r.output
    r = invoke("generate", cond_checkpoint, "--seeds", "0", "--class", "hexagon", "--outdir", tmp_path)
    assert r.exit_code == 2 and "not a class" in r.output
    r = invoke("generate", tiny_checkpoint, "--seeds", "0", "--class", "1", "--outdir", tmp_path)
    assert r.exit_code == 2 and "unconditional" in r.output


def test_mix_video_project_accept_a_class(cond_checkpoint, tmp_path):
    r = invoke("mix", cond_checkpoint, "--rows", "1,2", "--cols", "3", "--styles", "coarse", "--class", "star",
               "--out", tmp_path / "mix.png")
    assert r.exit_code == 0, r.output
    G = load_class_generator(cond_checkpoint, "star")
    z = torch.randn(3, G.z_dim)
    assert torch.allclose(G.map(z), G.G.map(z, torch.eye(4)[[3, 3, 3]]))
    assert G(z).shape == (3, 3, 16, 16) and G.mapping(z).shape == (3, G.w_dim)
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(tmp_path / "t.png")
    r = invoke("project", cond_checkpoint, tmp_path / "t.png", "--out", tmp_path / "proj", "--steps", "2",
               "--loss", "pixel-gradient", "--w-avg-samples", "16", "--class", "1")
    assert r.exit_code == 0, r.output
    r = invoke("video", cond_checkpoint, "--seeds", "0,1", "--out", tmp_path / "v.mp4", "--seconds-per-seed", "0.1",
               "--fps", "10", "--class", "circle")
    assert r.exit_code == 0, r.output


def test_metrics_per_class_uses_that_class_of_reals(cond_checkpoint, shapes16, tmp_path):
    from sgan.data.labels import class_labels
    from sgan.metrics.conditional import ClassSubset, LabelSampled, condition_for_metric
    from sgan.metrics.features import open_dataset

    ds = open_dataset(shapes16, 16)
    G = load_class_generator(cond_checkpoint, "square")
    G2, sub, cache = condition_for_metric(G, ds, shapes16, seed=0)
    labels = class_labels(shapes16)
    assert isinstance(sub, ClassSubset) and not cache and sub.num_images == int((labels.indices == 1).sum())
    assert np.array_equal(sub.image(0), ds.image(int(np.flatnonzero(labels.indices == 1)[0])))
    G_all = load_class_generator(cond_checkpoint, None, mixture_ok=True)
    G3, ds3, cache3 = condition_for_metric(G_all, ds, shapes16, seed=0)
    assert isinstance(G3, LabelSampled) and ds3 is ds and cache3
    assert G3.map(torch.randn(5, G3.z_dim)).shape == (5, G3.num_ws, G3.w_dim)


def test_class_accuracy_bookkeeping(cond_checkpoint):
    from sgan.metrics.conditional import class_accuracy

    G = load_class_generator(cond_checkpoint, None, mixture_ok=True)

    class AlwaysSquare(torch.nn.Module):  # a detector that says "square" for every image
        def forward(self, x):
            logits = torch.zeros(x.shape[0], 4)
            logits[:, 1] = 1
            return None, logits

    res = class_accuracy(G, NAMES, AlwaysSquare(), num=6, batch=4)
    assert res["per_class"] == {"circle": 0.0, "square": 1.0, "triangle": 0.0, "star": 0.0}
    assert res["confusion"][2] == [0, 6, 0, 0] and res["mean"] == 0.25
    res = class_accuracy(G, NAMES, AlwaysSquare(), num=2, detector_classes=["square", "circle", "x", "y", "z"])
    assert res["per_class"]["circle"] == 1.0 and res["per_class"]["square"] == 0.0
