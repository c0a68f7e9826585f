"""builtin:shapes: deterministic per (seed, index, variant), labels consistent with the pixels, fast."""

from __future__ import annotations


import numpy as np
import pytest

from sgan.data.shapes import ALL_SHAPE_CLASSES, SHAPE_CLASSES, VARIANTS, parse_variant_query, render_shapes


def test_same_seed_same_images_and_other_seed_differs():
    a, la = render_shapes(16, seed=7, size=32)
    b, lb = render_shapes(16, seed=7, size=32)
    c, _ = render_shapes(16, seed=8, size=32)
    assert a.shape == (16, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and la == lb
    assert not np.array_equal(a, c)


def test_image_depends_on_index_not_on_count_or_batch():
    whole, attrs = render_shapes(12, seed=3, size=16)
    part, part_attrs = render_shapes(4, seed=3, size=16, start=5)
    assert np.array_equal(whole[5:9], part) and attrs[5:9] == part_attrs
    one, _ = render_shapes(1, seed=3, size=16, start=11)
    assert np.array_equal(one[0], whole[11])


def test_attributes_do_not_depend_on_size():
    _, small = render_shapes(8, seed=1, size=16)
    _, large = render_shapes(8, seed=1, size=64)
    assert small == large


def test_default_variant_is_easy_one_shape_four_classes_dark_background():
    imgs, attrs = render_shapes(200, seed=0, size=32)
    assert SHAPE_CLASSES == ["circle", "square", "triangle", "star"]
    assert {a["shape"] for a in attrs} == set(SHAPE_CLASSES)
    assert all(a["num_shapes"] == 1 for a in attrs)
    for a in attrs:
        assert ALL_SHAPE_CLASSES[a["shape_id"]] == a["shape"]
        assert max(a["bg_color"]) < 60 and max(a["fg_color"]) > 200  # dark background, bright shape
    corners = imgs[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 60


def test_labels_match_the_pixels():
    size = 64
    imgs, attrs = render_shapes(40, seed=5, size=size)
    for img, a in zip(imgs, attrs):
        diff = np.abs(img.astype(np.float32) - np.asarray(a["bg_color"], np.float32)).sum(-1)
        mask = diff > 0.5 * np.abs(np.asarray(a["fg_color"], np.float32) - np.asarray(a["bg_color"])).sum()
        ys, xs = np.nonzero(mask)
        # Centre of mass of the shape near the recorded centre (pixel centres at i + 0.5).
        assert abs((xs.mean() + 0.5) / size - a["cx"]) < 0.03, a
        assert abs((ys.mean() + 0.5) / size - a["cy"]) < 0.03, a
        # Its extent within the recorded circumradius, and its colour the recorded one.
        radius = np.sqrt(((xs + 0.5) / size - a["cx"]) ** 2 + ((ys + 0.5) / size - a["cy"]) ** 2).max()
        assert radius <= a["size"] + 1.5 / size
        centre = img[int(a["cy"] * size), int(a["cx"] * size)].astype(int)
        assert np.abs(centre - np.asarray(a["fg_color"])).max() <= 2


def test_rotation_stays_inside_the_symmetry_period():
    _, attrs = render_shapes(100, seed=2, size=16, variant="medium")
    assert len({a["rotation"] for a in attrs}) > 50
    periods = {"circle": 0, "square": 90, "triangle": 120, "star": 72}
    for a in attrs:
        p = periods[a["shape"]]
        assert -p / 2 <= a["rotation"] <= p / 2


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_renders_with_the_same_label_schema(variant):
    imgs, attrs = render_shapes(24, seed=0, size=32, variant=variant)
    assert imgs.shape == (24, 32, 32, 3)
    keys = [k for k in attrs[0] if k != "shapes"]
    assert all([k for k in a if k != "shapes"] == keys for a in attrs)


def test_hard_variant_has_textures_several_shapes_and_more_classes():
    _, attrs = render_shapes(200, seed=0, size=32, variant="hard")
    assert {a["bg_kind"] for a in attrs} >= {"stripes", "checker", "noise"}
    assert max(a["num_shapes"] for a in attrs) > 1
    assert len({a["shape"] for a in attrs}) > len(SHAPE_CLASSES)


def test_variant_query_parsing():
    assert parse_variant_query("") == "default"
    assert parse_variant_query("variant=hard") == "hard"
    with pytest.raises(ValueError):
        parse_variant_query("variant=nope")
    with pytest.raises(ValueError):
        parse_variant_query("colour=red")
    with pytest.raises(ValueError):
        render_shapes(1, seed=0, size=8, variant="nope")
