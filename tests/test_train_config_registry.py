"""The option registry of TrainConfig, `configure` (the policy `sgan train` and scripts share) and
the pure run plan (sgan.train.plan)."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
from typer.testing import CliRunner

from sgan.cli.app import app
from sgan.cli.train import train_command
from sgan.errors import DataError, UsageError
from sgan.train import TrainConfig, configure, preset_config
from sgan.train.config import ARCH_ONLY, FLAGS, REGISTRY, RESUMABLE, option_name
from sgan.train.plan import plan
from train_helpers import tiny_config


def test_every_field_is_registered_and_every_cli_flag_is_an_option_of_sgan_train():
    assert set(REGISTRY) == {f.name for f in dataclasses.fields(TrainConfig)}
    params = inspect.signature(train_command).parameters
    assert set(FLAGS) <= set(params), sorted(set(FLAGS) - set(params))
    for param, name in FLAGS.items():   # the CLI declares the flag the registry names
        declared = params[param].default.param_decls
        assert option_name(name).split("/")[0] in " ".join(declared).split("/")[0].split(), (param, declared)
    assert option_name("batch_base") == "--batch" and option_name("lod_training_kimg") == "--phase-kimg"
    assert {"total_kimg", "minutes", "precision", "compile"} <= set(RESUMABLE) and "lr_base" not in RESUMABLE
    assert ARCH_ONLY["start_resolution"] == "stylegan1" and "pl_weight" not in ARCH_ONLY


def _dry(args: list[str], shapes16, tmp_path) -> dict:
    res = CliRunner().invoke(app, ["train", str(shapes16), "--out", str(tmp_path / "o"), "--dry-run", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)["train"]


@pytest.mark.parametrize("args,options", [
    (["--preset", "cpu", "--kimg", "50"], {"total_kimg": 50.0}),                   # time preset -> kimg phases
    (["--preset", "cpu", "--kimg", "50", "--phase-kimg", "3"], {"total_kimg": 50.0, "lod_training_kimg": 3.0}),
    (["--preset", "tiny", "--init", "runs/x", "--aug", "ada"], {"init": "runs/x", "aug": "ada"}),  # aug_kimg 100
    (["--preset", "paper", "--batch", "16", "--lr", "0.002"], {"batch_base": 16, "lr_base": 0.002}),
    (["--arch", "stylegan2", "--preset", "auto"], {"arch": "stylegan2"}),
])
def test_the_cli_and_the_library_configure_the_same_run(args, options, shapes16, tmp_path):
    cfg, given = configure(args[args.index("--preset") + 1], options, data_resolution=16)
    want = cfg.to_dict() | {"resolution": 16}   # the dry run fills in the dataset's size
    assert _dry(args, shapes16, tmp_path) == json.loads(json.dumps(want))
    assert set(options) <= set(given)


def test_configure_holds_the_policy():
    cfg, given = configure("cpu", {"total_kimg": 50.0})
    assert cfg.minutes is None and given["minutes"] is None and cfg.lod_training_kimg == cfg.lod_transition_kimg == 10.0
    cfg, _ = configure("tiny", {"init": "x"}, data_resolution=16)
    assert cfg.aug_kimg == 100.0 and cfg.start_resolution == 16
    cfg, _ = configure("tiny", {"init": "x", "aug_kimg": 7.0, "arch": "stylegan2"}, data_resolution=16)
    assert cfg.aug_kimg == 7.0
    cfg, given = configure("paper", {"batch_base": 16})
    assert cfg.batch_dict == {} and given["batch_base"] == 16
    with pytest.raises(UsageError, match="--phase-kimg: progressive growing is StyleGAN 1's"):
        configure("tiny", {"arch": "stylegan2", "lod_training_kimg": 1.0})
    with pytest.raises(UsageError, match="unknown training setting"):
        configure("tiny", {"no_such": 1})


def test_plan_is_pure_and_checks_everything():
    cfg = tiny_config()
    before = cfg.to_dict()
    p = plan(cfg, [4, 8, 16], 1, c_dim=3)
    assert cfg.to_dict() == before                       # the caller's config is not changed
    assert p.cfg.resolution == 16 and p.resolutions == (8, 16) and p.model.c_dim == 3
    assert [ph.resolution for ph in p.phases][0] == 8 and p.batch_at(16) == cfg.batch_base
    with pytest.raises(DataError, match="has no 8x8 images"):
        plan(cfg, [16], 1)
    sg2 = tiny_config("stylegan2", batch_base=8)
    assert plan(sg2, [16], 1).resolutions == (16,)
    assert plan(sg2, [16], 1).adam("G").lr == pytest.approx(sg2.lr_base * 2 / 3)   # lazy regularisation, k = 2
    with pytest.raises(UsageError, match="path-length minibatch .* does not split evenly over 8 processes"):
        plan(sg2, [16], 8)


def test_presets_of_both_architectures_validate():
    for name in ("paper", "cpu", "tiny"):
        preset_config(name).validate()
    for name in ("stylegan2", "auto", "cpu", "tiny"):
        preset_config(name, arch="stylegan2", resolution=32).validate()
