"""Every float option of every command is checked at the door: NaN, infinities and values out of
range are a one-line error naming the option (exit 2), never a traceback or a silent result."""

from __future__ import annotations

import typing

import pytest
import typer
from typer.testing import CliRunner

from sgan.cli import app

runner = CliRunner()


def _commands(cmd, path=()):
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, path + (name,))
    else:
        yield path, cmd


def _float_options():
    root = typer.main.get_command(app)
    for path, cmd in _commands(root):
        for param in cmd.params:
            ann = param.type_descriptor.annotation
            if param.opts[0].startswith("--") and (ann is float or float in typing.get_args(ann)):
                yield path, cmd, param


def _required_args(cmd, skip) -> list[str]:
    args: list[str] = []
    for param in cmd.params:
        if param is skip or not param.required:
            continue
        if param.param_type_name == "argument":
            args.append("no-such-file")
        else:
            args += [param.opts[0], "no-such-file"]
    return args


FLOATS = list(_float_options())


def test_the_walk_finds_the_float_options():
    names = {(" ".join(p), param.opts[0]) for p, _, param in FLOATS}
    for expected in [("video", "--trunc"), ("video", "--seconds-per-seed"), ("video", "--seconds"),
                     ("train", "--minutes"), ("metrics ppl", "--epsilon"), ("generate", "--trunc")]:
        assert expected in names
    assert len(names) >= 25


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("path, cmd, param", FLOATS, ids=[f"{' '.join(p)} {q.opts[0]}" for p, _, q in FLOATS])
def test_float_option_refuses_non_finite(path, cmd, param, value):
    args = list(path) + _required_args(cmd, param) + [f"{param.opts[0]}={value}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    assert result.output.startswith("Error: ") and param.opts[0] in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["train", "d.lmdb", "--out", "r", "--mixing", "1.5"], "--mixing must be a finite number at least 0 and at most 1"),
    (["train", "d.lmdb", "--out", "r", "--minutes", "0"], "--minutes must be a finite number above 0"),
    (["video", "c.pt", "--out", "v.mp4", "--seconds-per-seed", "-1"], "--seconds-per-seed must be"),
    (["metrics", "fid", "c.pt", "--data", "d.lmdb", "--ddof", "2"], "--ddof must be 0"),
    (["metrics", "kid", "c.pt", "--data", "d.lmdb", "--trunc", "1.5"], "--trunc must be"),
    (["project", "c.pt", "a.png", "--out", "o", "--lr", "0"], "--lr must be a finite number above 0"),
])
def test_float_option_ranges(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output, result.output
