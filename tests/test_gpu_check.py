"""benchmarks/gpu_check.py: its CPU mode end to end (the checks that need no GPU), and how it reports failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))
import gpu_check  # noqa: E402
from gpu_check_base import Ctx, Failed, Sizes  # noqa: E402


def test_cpu_quick_mode_runs_every_selected_check_and_writes_the_table(tmp_path):
    out, table_json = tmp_path / "work", tmp_path / "table.json"
    p = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--in-process",
                        "--out", str(out), "--json", str(table_json)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    rows = {r["check"]: r for r in json.loads(table_json.read_text())["rows"]}
    assert set(gpu_check.QUICK) <= set(rows), sorted(rows)
    assert {"generate-sg1"} <= set(rows) and rows["generate-sg1"]["needed_by"] == "mix"   # run for what needs it
    assert all(r["status"] in ("ok", "skipped") for r in rows.values()), rows
    # what cannot run off CUDA is skipped and says why; fp16 is refused with one line unless the CPU has it
    fp16 = rows["train-sg2-fp16"]
    if fp16["status"] == "ok":                  # a CPU with native float16 (or faked flags): it trained
        assert "conv_clamp 256" in fp16["result"] and "scales" in fp16["result"]
    else:
        assert fp16["status"] == "skipped" and fp16["result"].startswith("skipped (cpu): refused") \
            and "Error: --precision fp16" in fp16["result"]
    assert rows["train-sg2-bf16"]["precision"] == "bf16" and rows["train-sg2-fp32"]["precision"] == "fp32"
    assert "kimg 0.016 -> 0.032" in rows["resume-sg2"]["result"]
    assert rows["auto-sg2"]["precision"].startswith("auto->") and "compile" in rows["auto-sg2"]["result"]
    assert "batch 1 vs 4" in rows["import-tf-sg1-32"]["result"]
    assert "5 frames" in rows["video"]["result"]
    # the table on stdout, one line per row; progress (the commands) on stderr
    lines = p.stdout.splitlines()
    assert lines[1].startswith("| check ") and "| seconds |" in lines[1]
    assert sum(line.startswith("| ") for line in lines) == len(rows) + 1
    assert "passed or skipped, 0 failed" in p.stdout
    assert "$ sgan train" in p.stderr and "$ sgan" not in p.stdout
    assert (out / "logs").is_dir() and any((out / "logs").iterdir())


def _ctx(tmp_path, **kw) -> Ctx:
    return Ctx(device="cpu", out=tmp_path, sizes=Sizes.for_mode("cpu", True), quick=True, timeout=60, **kw)


def test_a_failing_command_names_itself_its_exit_code_its_output_and_its_log(tmp_path):
    ctx = _ctx(tmp_path)
    with pytest.raises(Failed) as e:
        ctx.run([sys.executable, "-c", "import sys; print('half way'); print('boom: no such thing', file=sys.stderr); "
                 "sys.exit(3)"], what="bad")
    msg = str(e.value)
    assert "exited 3" in msg and "boom: no such thing" in msg and "half way" in msg and "01-bad.log" in msg
    assert "exit 3" in (tmp_path / "logs" / "01-bad.log").read_text()
    ctx.timeout = 0.5
    with pytest.raises(Failed, match=r"did not finish in 0 s|did not finish in 1 s"):
        ctx.run([sys.executable, "-c", "import time; time.sleep(30)"], what="slow")
    ctx.in_process = True                       # sgan's one-line error comes back the same way in-process
    with pytest.raises(Failed, match=r"`sgan generate .*missing.pt --seeds 0` exited 1: Error: .*missing.pt"):
        ctx.run(["sgan", "generate", tmp_path / "missing.pt", "--seeds", "0"], what="gen")


def test_failures_propagate_to_what_needs_them_and_the_exit_status(tmp_path, monkeypatch, capsys):
    def broken(ctx):
        raise Failed("the loss was nan at kimg 0.1")

    def buggy(ctx):
        return {}["missing"]

    def dependent(ctx):
        ctx.need("broken", by="dependent")
        return "fp32", "never"

    def fine(ctx):
        return "bf16", "all good"

    monkeypatch.setattr(gpu_check, "CHECKS", {"broken": broken, "buggy": buggy, "dependent": dependent, "fine": fine})
    table_json = tmp_path / "t.json"
    rc = gpu_check.main(["--device", "cpu", "--only", "dependent,buggy,fine", "--out", str(tmp_path / "w"),
                         "--json", str(table_json)])
    assert rc == 1
    rows = {r["check"]: r for r in json.loads(table_json.read_text())["rows"]}
    assert rows["broken"]["status"] == "FAIL" and rows["broken"]["needed_by"] == "dependent"
    assert rows["dependent"]["result"] == "needs broken, which failed"
    assert rows["buggy"]["status"] == "FAIL" and rows["buggy"]["result"].startswith("KeyError: 'missing' (at ")
    assert rows["fine"] == {**rows["fine"], "status": "ok", "precision": "bf16", "result": "all good"}
    out = capsys.readouterr().out
    assert "FAIL: the loss was nan at kimg 0.1" in out and "3 failed" in out and "ok: all good" in out


def test_unknown_check_names_and_a_missing_gpu_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.parse_args(["--only", "train-sg3"])
    assert e.value.code == 2 and "unknown check(s) train-sg3" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert gpu_check.main(["--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("Error: no CUDA device") and "--device cpu" in err[0]


def test_checks_after_the_deadline_are_not_run_and_the_exit_status_says_so(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(gpu_check, "CHECKS", {"a": lambda ctx: ran.append("a") or ("fp32", "done")})
    table_json = tmp_path / "t.json"
    assert gpu_check.main(["--device", "cpu", "--deadline", "0", "--out", str(tmp_path / "w"),
                           "--json", str(table_json)]) == 1
    (row,) = json.loads(table_json.read_text())["rows"]
    assert ran == [] and row["status"] == "skipped" and row["result"] == "not run: the --deadline had passed"
    assert "1 not run (--deadline 0 s)" in capsys.readouterr().out
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "w2")]) == 0 and ran == ["a"]


def test_fp16_rows_train_on_a_cpu_with_native_float16(tmp_path, monkeypatch):
    """The fp16 branch that a GPU takes (loss scales in stats.jsonl, StyleGAN2's conv_clamp 256), here on a CPU
    that pretends avx512_fp16 as tests/fp16_cpu_launch.py does (torch's CPU float16 is emulated: slow, correct)."""
    import sgan.device

    monkeypatch.setattr(sgan.device, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2", "avx512_fp16"})
    table_json = tmp_path / "t.json"
    rc = gpu_check.main(["--device", "cpu", "--quick", "--in-process", "--only", "train-sg1-fp16,train-sg2-fp16",
                         "--out", str(tmp_path / "w"), "--json", str(table_json)])
    rows = {r["check"]: r for r in json.loads(table_json.read_text())["rows"]}
    assert rc == 0, rows
    for name in ("train-sg1-fp16", "train-sg2-fp16"):
        assert rows[name]["status"] == "ok" and rows[name]["precision"] == "fp16", rows[name]
        assert "scales D=" in rows[name]["result"] and "overflow " in rows[name]["result"]
    assert "conv_clamp 256" in rows["train-sg2-fp16"]["result"]
    assert "conv_clamp" not in rows["train-sg1-fp16"]["result"]
