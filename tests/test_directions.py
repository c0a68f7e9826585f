"""Semantic directions (sgan.play.directions*): SeFa, GANSpace, InterFaceGAN labels, the file, the edit."""

import numpy as np
import pytest
import torch

from sgan.errors import DataError, UsageError
from sgan.nn import ModelConfig, make_generator
from sgan.play.directions import Directions, check_fits, load_directions, parse_direction_spec, pick_direction, save_directions
from sgan.play.directions_edit import move_along, parse_strengths, render_strip
from sgan.play.directions_ganspace import ganspace, sample_w
from sgan.play.directions_labels import attribute_directions, class_directions
from sgan.play.directions_sefa import sefa
from sgan.play.generate import render_seeds

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_G(arch="stylegan1", **changes):
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 16, arch=arch) if arch != "stylegan1" else ModelConfig.preset("tiny", 16)
    if changes:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), **changes})
    G = make_generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.normal_(0, 0.5)
    return G


def plain(affine):
    return affine.weight.double() * affine.weight_gain


def assert_same_eigen(dirs, A):
    """dirs holds the eigenvectors of A^T A by eigenvalue, descending (each up to its sign)."""
    values, vectors = torch.linalg.eigh(A.T @ A)
    values, vectors = values.flip(0).numpy(), vectors.flip(1).T.numpy()
    k = len(dirs)
    assert np.allclose(dirs.scores, values[:k], rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(dirs.scores) <= 1e-6)
    gaps = np.abs(np.diff(values))
    for i in range(k):
        separated = (i == 0 or gaps[i - 1] > 1e-4 * values[0]) and (i == len(values) - 1 or gaps[i] > 1e-4 * values[0])
        if separated:
            assert abs(float(dirs.directions[i] @ vectors[i])) > 0.9999, i
    assert np.allclose(np.linalg.norm(dirs.directions, axis=1), 1, atol=1e-6)


def test_sefa_equals_direct_eigendecomposition_stylegan2():
    G = tiny_G("stylegan2")
    S = G.synthesis                                   # 16 px: ws 0 b4.conv1, 1-2 b8, 3-4 b16, 5 the last ToRGB
    rows = [plain(m.affine) for m in (S.b4.conv1, S.b8.conv0, S.b8.conv1, S.b16.conv0, S.b16.conv1, S.b16.torgb)]
    A = torch.cat(rows)
    A = A / A.norm(dim=1, keepdim=True)
    dirs = sefa(G, layers=range(G.num_ws))
    assert dirs.layers.tolist() == list(range(6)) and dirs.directions.shape == (G.w_dim, G.w_dim)
    assert_same_eigen(dirs, A)
    fine = sefa(G, layers=[3, 4], num=5, normalize_rows=False)          # rosinality: raw weights
    raw = torch.cat([plain(S.b16.conv0.affine), plain(S.b16.conv1.affine)])
    assert_same_eigen(fine, raw)
    assert fine.names == [f"sefa-{i}" for i in range(5)]


def test_sefa_equals_direct_eigendecomposition_stylegan1_coarse():
    G = tiny_G()
    blk = G.synthesis.blocks[0]                       # 4 px: ws 0 and 1, AdaIN dense layers (scale and shift rows)
    A = torch.cat([plain(blk.epi0.affine), plain(blk.epi1.affine)])
    assert A.shape[0] == 4 * blk.epi0.bias.shape[0]
    dirs = sefa(G, layers=[0, 1])
    assert_same_eigen(dirs, A / A.norm(dim=1, keepdim=True))
    with pytest.raises(UsageError):
        sefa(G, layers=[0], num=0)


def test_sefa_of_an_imported_stylegan3_leaves_out_the_input_transform():
    from pathlib import Path

    from sgan.formats import load_generator

    G = load_generator(Path(__file__).parent / "fixtures" / "import" / "sg3-r_network-snapshot-000100.pkl")
    S = G.synthesis
    dirs = sefa(G, layers=range(G.num_ws), num=8)
    assert dirs.layers.tolist() == list(range(1, G.num_ws))              # ws 0: rotation/translation only
    A = torch.cat([plain(getattr(S, name).affine) for name in S.layer_names])
    assert_same_eigen(dirs, A / A.norm(dim=1, keepdim=True))
    with pytest.raises(UsageError, match="no style layer"):
        sefa(G, layers=[0])


def test_ganspace_orthonormal_ordered_and_equal_to_numpy_pca():
    G = tiny_G("stylegan2")
    dirs = ganspace(G, num_samples=3000, rng=np.random.default_rng(1), layers=[0, 1, 2], num=10, batch=700)
    D = dirs.directions.astype(np.float64)
    assert D.shape == (10, G.w_dim) and dirs.layers.tolist() == [0, 1, 2]
    assert np.allclose(D @ D.T, np.eye(10), atol=1e-5)
    assert np.all(np.diff(dirs.scores) <= 1e-7) and dirs.scores.min() >= 0 and dirs.scores.sum() <= 1 + 1e-6
    w = np.concatenate([b.numpy() for b, _ in sample_w(G, num_samples=3000, rng=np.random.default_rng(1), batch=3000)])
    values, vectors = np.linalg.eigh(np.cov(w, rowvar=False))
    values, vectors = values[::-1], vectors[:, ::-1]
    assert np.allclose(dirs.scores, values[:10] / values.sum(), rtol=1e-4)
    for i in range(10):
        assert abs(D[i] @ vectors[:, i]) > 0.999
    full = ganspace(G, num_samples=500, rng=np.random.default_rng(2), layers=[0])
    assert len(full) == G.w_dim and full.scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_labels_recover_a_planted_linear_attribute():
    G = tiny_G("stylegan2")
    w = np.concatenate([b.numpy() for b, _ in sample_w(G, num_samples=4000, rng=np.random.default_rng(3), batch=1000)])
    d0 = np.random.default_rng(4).standard_normal(G.w_dim)
    d0 /= np.linalg.norm(d0)
    t = (w - w.mean(0)) @ d0
    probs = 1 / (1 + np.exp(-8 * t / t.std()))                        # the detector says: sign(w . d0)
    other = 1 / (1 + np.exp(-8 * (w[:, 0] - np.median(w[:, 0])) / w[:, 0].std()))
    dirs = attribute_directions(w, np.stack([probs, other], 1), ["planted", "axis0"], rng=np.random.default_rng(5),
                                layers=[0, 1], w_dim=G.w_dim, num_ws=G.num_ws)
    assert dirs.names == ["planted", "axis0"] and dirs.method == "labels"
    assert float(dirs.directions[0] @ d0) > 0.99                      # direction and sign
    assert dirs.scores[0] > 0.95
    e0 = np.eye(G.w_dim)[0]
    assert float(dirs.directions[1] @ e0) > 0.9


def test_labels_from_classes_of_a_conditional_model():
    G = tiny_G("stylegan2", c_dim=3)
    names = ["a", "b", "c"]
    rest = class_directions(G, class_names=names, num_samples=900, rng=np.random.default_rng(0), layers=[0])
    assert rest.names == ["class-a", "class-b", "class-c"] and rest.directions.shape == (3, G.w_dim)
    assert np.all((rest.scores >= 0.5) & (rest.scores <= 1))
    pair = class_directions(G, class_names=names, num_samples=600, rng=np.random.default_rng(0), layers=[0],
                            positive=2, negative=0)
    assert pair.names == ["class-c-vs-a"] and len(pair) == 1
    # the direction points from class a towards class c: the mean w of c lies further along it
    z = torch.randn(200, G.z_dim, generator=torch.Generator().manual_seed(9))
    means = [G.mapping(z, torch.nn.functional.one_hot(torch.full((200,), k), 3).float()).mean(0).numpy() for k in (0, 2)]
    assert float((means[1] - means[0]) @ pair.directions[0]) > 0
    with pytest.raises(UsageError):
        class_directions(tiny_G("stylegan2"), class_names=[], num_samples=100, rng=np.random.default_rng(0), layers=[0])


@pytest.mark.parametrize("arch,noise_mode,psi", [("stylegan1", "const", 0.7), ("stylegan2", "random", 0.5),
                                                 ("stylegan1", "numpy", 1.0)])
def test_edit_at_strength_zero_is_generate(arch, noise_mode, psi):
    G = tiny_G(arch)
    d = torch.nn.functional.normalize(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(1)), dim=0)
    seeds = [3, 11]
    cells = render_strip(G, seeds, d, [-2.0, 0.0, 1.5], list(range(G.num_ws)), truncation_psi=psi, truncation_cutoff=4,
                         noise_mode=noise_mode)
    ref = render_seeds(G, seeds, truncation_psi=psi, truncation_cutoff=4, noise_mode=noise_mode).images
    assert cells.shape[:2] == (2, 3)
    assert np.array_equal(cells[:, 1], ref)
    assert not np.array_equal(cells[:, 0], ref)


def test_move_along_only_touches_the_chosen_layers():
    ws = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(0))
    d = torch.tensor([1.0, 0.0, 0.0, 0.0])
    out = move_along(ws, d, [0.0, 2.0], [1, 2])
    assert out.shape == (2, 2, 6, 4) and torch.equal(out[:, 0], ws)
    assert torch.equal(out[:, 1, [0, 3, 4, 5]], ws[:, [0, 3, 4, 5]])
    assert torch.allclose(out[:, 1, [1, 2]], ws[:, [1, 2]] + 2 * d)


def test_parse_strengths():
    assert parse_strengths("-3..3", None) == pytest.approx(list(np.linspace(-3, 3, 7)))
    assert parse_strengths("-1..1", 3) == pytest.approx([-1, 0, 1])
    assert parse_strengths("1.5", None) == [1.5] and parse_strengths("-2,0,2", None) == [-2, 0, 2]
    for text, steps in (("a..b", None), ("nan", None), ("0..1", 0), ("0..1", 999), ("1,2", 3), ("1", 4)):
        with pytest.raises(UsageError):
            parse_strengths(text, steps)


def test_file_round_trip_and_checks(tmp_path):
    dirs = Directions(directions=np.eye(3, 8) * 2, scores=[3, 2, 1], method="sefa", layers=[0, 2], names=["x", "y", "z"],
                      checkpoint_sha256="ab" * 32, w_dim=8, num_ws=4)
    path = save_directions(tmp_path / "d.npz", dirs)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(["directions", "scores", "method", "layers", "names", "checkpoint_sha256",
                                            "w_dim", "num_ws"])
        assert npz["directions"].dtype == np.float32 and npz["scores"].dtype == np.float32
        assert npz["layers"].dtype == np.int64 and npz["method"].shape == () and npz["names"].dtype.kind == "U"
    back = load_directions(path)
    assert np.allclose(back.directions, np.eye(3, 8)) and back.names == ["x", "y", "z"] and back.layers.tolist() == [0, 2]
    assert pick_direction(back, "y") == 1 and pick_direction(back, "2") == 2
    for key in ("3", "-1", "w", None):
        with pytest.raises(UsageError):
            pick_direction(back, key)
    assert check_fits(back, w_dim=8, num_ws=4, checkpoint_sha256="ab" * 32) is None
    assert "another checkpoint" in check_fits(back, w_dim=8, num_ws=4, checkpoint_sha256="cd" * 32)
    with pytest.raises(UsageError):
        check_fits(back, w_dim=8, num_ws=5, checkpoint_sha256=None)
    assert parse_direction_spec("a/b.npz:3") == (tmp_path.__class__("a/b.npz"), "3")
    assert parse_direction_spec("b.npz")[1] is None


def bad_file(tmp_path, name, **changes):
    good = Directions(directions=np.eye(2, 4), scores=[1, 0.5], method="ganspace", layers=[0], names=["a", "b"],
                      checkpoint_sha256="", w_dim=4, num_ws=2).arrays()
    good.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del good[key]
    path = tmp_path / name
    np.savez(path, **good)
    return path


@pytest.mark.parametrize("changes,needle", [
    ({"names": None}, "missing names"),
    ({"directions": np.ones((2, 4), np.float32)}, "norm"),
    ({"directions": np.eye(2, 5, dtype=np.float32)}, "w_dim=4"),
    ({"layers": np.array([0, 7])}, "within 0-1"),
    ({"method": np.array("svd")}, "method"),
    ({"names": np.array(["a"])}, "names must be"),
    ({"w_dim": np.array(4.5)}, "w_dim must be"),
    ({"scores": np.array([1.0])}, "scores must be"),
])
def test_bad_files_are_one_line_errors(tmp_path, changes, needle):
    with pytest.raises(DataError, match=needle):
        load_directions(bad_file(tmp_path, "bad.npz", **changes))


def test_unreadable_files(tmp_path):
    (tmp_path / "text.npz").write_text("not a zip")
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "obj.npz").write_bytes(b"")
    np.savez(tmp_path / "pickled.npz", directions=np.array([{"a": 1}], dtype=object))
    for name in ("text.npz", "one.npy", "obj.npz", "pickled.npz", "missing.npz"):
        with pytest.raises(DataError):
            load_directions(tmp_path / name)
