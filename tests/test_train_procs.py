"""`sgan train --procs N|auto`: sgan starts N gloo processes itself (the torchrun code path); they
compute what one process computes for the same global minibatch, a signal to the parent stops
them all with a snapshot, a dead child takes the others down, and bad requests are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ddp_tolerance import assert_same_training
from typer.testing import CliRunner

from sgan.checkpoint import load_checkpoint
from sgan.cli import app
from sgan.errors import UsageError
from sgan.train import preset_config
from sgan.train.procs import child_argv, choose_procs, check_procs, parse_procs

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return dict(env, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _sgan(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sgan", *args], capture_output=True, text=True, env=_env(), cwd=ROOT,
                          timeout=timeout)


def test_procs_2_matches_one_process(shapes16, tmp_path):
    # as the torchrun test: 3 steps of global batch 8, one at 8 px and two inside the 8 -> 16 px fade-in
    common = [str(shapes16), "--preset", "tiny", "--kimg", "0.024", "--batch", "8", "--phase-kimg", "0.008",
              "--fade-kimg", "0.016", "--snap", "1", "--tick", "0.016", "--device", "cpu", "--mirror"]
    two = _sgan("train", *common, "--out", str(tmp_path / "two"), "--procs", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    one = _sgan("train", *common, "--out", str(tmp_path / "one"), "--threads", "1")
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert a.extra["counters"]["step"] == b.extra["counters"]["step"] == 3
    assert b.extra["world_size"] == 2
    assert_same_training(a, b)
    # only rank 0 prints and writes; the first progress line and config.json say how many and why
    assert two.stderr.count("training 16x16") == 1 and "x 2 processes (--procs 2:" in two.stderr
    assert (tmp_path / "two" / "stats.jsonl").read_text().count("\n") == 2
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2 and config["procs"]["procs"] == 2 and config["procs"]["requested"] == "2"
    assert "--procs" in config["command_line"] and config["device"] == "cpu (1 threads)"
    assert json.loads((tmp_path / "one" / "config.json").read_text())["procs"]["procs"] == 1


def test_procs_2_stylegan2_matches_one_process(shapes16, tmp_path):
    # 4 steps of batch 8 at 16 px: path length (every 2nd) and R1 (every 4th) both run
    common = [str(shapes16), "--arch", "stylegan2", "--preset", "tiny", "--kimg", "0.032", "--batch", "8",
              "--snap", "1", "--tick", "0.032", "--device", "cpu",
              "--precision", "fp32"]   # the ranks-vs-one tolerance is fp32's (under a bf16 CPU profile auto picks bf16)
    two = _sgan("train", *common, "--out", str(tmp_path / "two"), "--procs", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    one = _sgan("train", *common, "--out", str(tmp_path / "one"), "--threads", "1")
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert a.extra["counters"]["step"] == b.extra["counters"]["step"] == 4 and b.extra["world_size"] == 2
    assert_same_training(a, b)


SKEWED = """
import os, sys, time
from sgan.train import Hooks, preset_config, train

data, out = sys.argv[1:3]
rank = int(os.environ["RANK"])
cfg = preset_config("tiny")
cfg.minutes, cfg.snap_kimg, cfg.tick_kimg_base = 0.06, 0.05, 0.05

def skew(tr):   # rank 1's step ends 40 ms after its last all-reduce: its own clock runs ahead of rank 0's
    if rank == 1 and "step" not in vars(tr):
        real = tr.step

        def slow(stop):
            out = real(stop)
            time.sleep(0.04)
            return out

        tr.step = slow

train(cfg, data, out, device="cpu", threads=1, hooks=Hooks(on_step=[skew]))
"""


def test_ranks_share_one_clock_on_a_time_schedule(shapes16, tmp_path):
    # --minutes: the phases follow the training clock, which the ranks share (the slowest rank's). With
    # each rank's own clock, rank 1 switched resolution steps before rank 0 and the all-reduce broke.
    script, out = tmp_path / "skewed.py", tmp_path / "run"
    script.write_text(SKEWED)
    launcher = ("import sys; from sgan.train.procs import ProcsChoice, launch; "
                "sys.exit(launch(sys.argv[2:], ProcsChoice(2, '2', 'test'), cpu=True, threads=1, "
                "prefix=[sys.executable, sys.argv[1]]))")
    proc = subprocess.Popen([sys.executable, "-c", launcher, str(script), str(shapes16), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
                            start_new_session=True)
    err = _finish(proc, timeout=90)
    assert proc.returncode == 0, err[-3000:]
    ckpt = load_checkpoint(out)   # every snapshot checked that the ranks hold the same networks
    assert ckpt.extra["world_size"] == 2 and ckpt.extra["counters"]["train_seconds"] >= 0.06 * 60
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert {r["resolution"] for r in stats} == {8, 16}


def _children_of(out: Path) -> list[int]:
    """pids of the training processes of run folder `out` (their command line names it)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(out).encode() in cmd and b"--procs" not in cmd and b"--procs-child" in cmd:
                found.append(int(d.name))
    return found


def _start_long_run(shapes16, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "sgan", "train", str(shapes16), "--out", str(out), "--preset",
                             "tiny", "--kimg", "1000", "--snap", "1000", "--tick", "0.016", "--device", "cpu",
                             "--procs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            cwd=ROOT, start_new_session=True)
    stats, deadline = out / "stats.jsonl", time.time() + 120
    while time.time() < deadline and not (stats.is_file() and stats.read_text().count("\n") >= 1):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the parent did not stop")
    return err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigint_to_the_parent_stops_every_process_with_a_snapshot(shapes16, tmp_path):
    out = tmp_path / "run"
    proc = _start_long_run(shapes16, out)
    children = _children_of(out)
    assert len(children) == 2
    proc.send_signal(signal.SIGINT)   # the parent only: the children have a process group of their own
    err = _finish(proc)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "--resume auto" in err and "Error:" not in err
    ckpt = load_checkpoint(out)
    assert ckpt.extra["counters"]["cur_nimg"] > 0 and ckpt.extra["world_size"] == 2
    time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dead_child_stops_the_others(shapes16, tmp_path):
    out = tmp_path / "run"
    proc = _start_long_run(shapes16, out)
    children = _children_of(out)
    rank1 = [pid for pid in children if b"RANK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")]
    assert len(rank1) == 1
    os.kill(rank1[0], signal.SIGKILL)
    err = _finish(proc, timeout=45)
    assert proc.returncode == 137, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("Error: training process 1 of 2 exited with code 137")
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]


# -- refusals: one line, exit 2, nothing written -----------------------------------------------

@pytest.mark.parametrize("extra,env,message", [
    (["--procs", "2"], {"WORLD_SIZE": "2", "RANK": "0"}, "already set (torchrun?)"),
    (["--procs", "0"], {}, "--procs 0: at least 1 process"),
    (["--procs", "two"], {}, "give a number of processes"),
    (["--procs", "4", "--batch", "6"], {}, "--batch 6 at 8 px does not split evenly over --procs 4"),
    (["--procs", "3", "--arch", "stylegan2", "--batch", "8"], {}, "--batch 8 at 16 px does not split evenly"),
])
def test_refusals(shapes16, tmp_path, monkeypatch, extra, env, message):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", str(shapes16), "--out", str(out), "--preset", "tiny", "--device", "cpu",
                              *extra], env=env)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], res.output
    assert not out.exists()


def test_more_procs_than_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cfg = preset_config("tiny")
    cfg.resolution = 16
    with pytest.raises(UsageError, match="needs 2 GPUs, this machine has 1"):
        check_procs(cfg, 2, device=torch.device("cuda"), data=None)
    check_procs(cfg, 2, device=torch.device("cpu"), data=None)


# -- the choice of --procs auto -----------------------------------------------------------------

def _cpu_cfg(n: int = 1):
    cfg = preset_config("cpu", world_size=n)
    cfg.resolution = 32
    return cfg


@pytest.mark.parametrize("cores,expected", [(1, 1), (2, 2), (3, 2), (4, 2), (16, 2)])
def test_auto_on_the_cpu_takes_cores_the_minibatch_splits_into(cores, expected):
    # the cpu preset at 32 px: batch 16, 32 channels: 16 * 32^2 * 32^2 = 1.7e7 of convolution work, enough
    # for 2 processes of 8.4e6 (>= 8e6) but not for 4
    choice = choose_procs("auto", device=torch.device("cpu"), config_for=_cpu_cfg, data=None, cores=cores, environ={})
    assert choice.procs == expected and choice.requested == "auto"
    assert ("physical core" in choice.reason) and (str(cores) in choice.reason)


def test_auto_keeps_one_process_for_small_convolutions():
    def at16(n):   # the cpu preset trained to 16 px: 4.2e6, a half batch would cost most of a whole one
        cfg = _cpu_cfg(n)
        cfg.resolution = 16
        return cfg

    choice = choose_procs("auto", device=torch.device("cpu"), config_for=at16, data=None, cores=8, environ={})
    assert choice.procs == 1 and "convolutions are small" in choice.reason


def test_auto_on_cuda_is_one_process():
    choice = choose_procs("auto", device=torch.device("cuda"), config_for=_cpu_cfg, data=None, cores=8, environ={})
    assert choice.procs == 1 and "torchrun" in choice.reason


def test_auto_refuses_nothing_when_the_batch_does_not_split():
    def odd(n):
        cfg = _cpu_cfg(n)
        cfg.batch_base = 18   # 9 per process: not whole groups of 4
        return cfg

    choice = choose_procs("auto", device=torch.device("cpu"), config_for=odd, data=None, cores=2, environ={})
    assert choice.procs == 1 and "does not split" in choice.reason


def test_parse_and_child_argv():
    assert parse_procs("auto") == "auto" and parse_procs(" 3 ") == 3
    with pytest.raises(UsageError):
        parse_procs("-1")
    argv = ["train", "d.lmdb", "--procs", "2", "--out", "r", "--procs=auto"]
    assert child_argv(argv, threads=True) == ["train", "d.lmdb", "--out", "r", "--threads", "1"]
    assert child_argv(argv, threads=False) == ["train", "d.lmdb", "--out", "r"]


def test_the_record_in_config_json_and_the_first_line():
    from sgan.train.procs import ProcsRun, procs_record, procs_summary

    assert procs_record(1) == {"procs": 1, "requested": None, "reason": "one process (no --procs)"}
    assert procs_record(4)["reason"] == "started by torchrun" and procs_summary(4) == ""
    choice = choose_procs("auto", device=torch.device("cpu"), config_for=_cpu_cfg, data=None, cores=2, environ={})
    assert procs_record(2, choice) == {"procs": 2, "requested": "auto", "reason": choice.reason}
    assert procs_summary(2, choice) == f" (--procs auto: {choice.reason})"
    told = ProcsRun.from_json(ProcsRun(choice, ("sgan", "train", "--procs", "auto"), 123).to_json())
    assert told == ProcsRun(choice, ("sgan", "train", "--procs", "auto"), 123)   # what a child gets, as an argument
    with pytest.raises(UsageError, match="--procs-child is set by --procs"):
        ProcsRun.from_json("{not json")
