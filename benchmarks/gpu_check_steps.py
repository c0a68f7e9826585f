"""The checks of benchmarks/gpu_check.py: each takes the work context, runs sgan commands (or library
calls), checks what they wrote and returns (precision, result), or raises Failed / Skipped."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

from gpu_check_base import (CPU_METRIC_REL, FIXTURES, GREY_LEVELS_BOUND, IMPORT_FP32_TOL, IMPORT_TF32_TOL, Ctx,
                            Failed, Skipped, check_run, png, read_json)



def c_dataset(ctx: Ctx):
    s = ctx.sizes
    db = ctx.out / "shapes.lmdb"
    p = ctx.run(["sgan", "prepare-dataset", "builtin:shapes", db, "--max-size", s.res, "--count", s.count,
                 "--overwrite", "--workers", "2"], what="dataset")
    if f"{s.count} images, sizes 4-{s.res}" not in p.stdout + p.stderr:
        raise Failed(f"`sgan prepare-dataset` did not report '{s.count} images, sizes 4-{s.res}': "
                     f"{(p.stdout + p.stderr).strip()[-200:]}")
    ctx.done["dataset"] = db
    return "-", f"{s.count} images, 4-{s.res} px"


def train_argv(ctx: Ctx, arch: str, out: Path, precision: str, extra: list | None = None) -> list:
    s, db = ctx.sizes, ctx.need("dataset", by=f"train {arch}")
    argv = ["sgan", "train", db, "--out", out, "--preset", "tiny", "--resolution", s.res, "--tick", s.tick,
            "--snap", 1000, "--precision", precision, "--device", ctx.dev_arg]
    if arch == "sg1":
        argv += ["--start-resolution", 8, "--phase-kimg", s.sg1_phase, "--fade-kimg", s.sg1_phase,
                 "--kimg", s.sg1_kimg]
    else:
        argv += ["--arch", "stylegan2", "--kimg", s.sg2_kimg]
    return argv + (extra or [])


def make_train(arch: str, precision: str, tf32: bool = True):
    name = f"train-{arch}-{precision}" + ("" if tf32 else "-notf32")

    def check(ctx: Ctx):
        if ctx.device == "cpu" and not tf32:
            raise Skipped("skipped (cpu): TF32 is CUDA only")
        run = ctx.out / "runs" / name
        shutil.rmtree(run, ignore_errors=True)
        argv = train_argv(ctx, arch, run, precision, [] if tf32 else ["--no-tf32"])
        # fp16 on a CPU: sgan trains it where the CPU has native float16 (avx512_fp16/amx_fp16, as sgan itself
        # detects them, faked flags included) and refuses it with one line elsewhere; either is right here
        p = ctx.run(argv, what=name, expect_fail=None if precision == "fp16" and ctx.device == "cpu" else False)
        if p.returncode != 0:
            lines = [ln for ln in (p.stdout + p.stderr).strip().splitlines() if ln.strip()]
            if len(lines) != 1 or not lines[0].startswith("Error:") or "fp16" not in lines[0]:
                raise Failed(f"fp16 on this CPU: neither trained nor refused with one 'Error: ... fp16 ...' line; "
                             f"exit {p.returncode}, output {lines[-6:]} (log {ctx.out / 'logs'})")
            if run.exists():
                raise Failed(f"the refused fp16 run left {run} behind")
            raise Skipped(f"skipped (cpu): refused as documented, exit {p.returncode}: {lines[0][:170]}")
        r = check_run(run, res=ctx.sizes.res)
        cfg, notes = r["cfg"], []
        got = cfg.get("train", {}).get("precision")
        if got != precision:
            raise Failed(f"config.json train.precision is {got!r}, asked {precision!r}")
        cuda = cfg.get("cuda", {})
        if ctx.device == "cuda":
            if not cuda.get("applied") or bool(cuda.get("tf32")) != tf32:
                raise Failed(f"config.json cuda {cuda}: expected applied, tf32 {tf32}")
            notes.append(f"tf32 {'on' if tf32 else 'off'}")
        if precision == "fp16":
            scale_keys = [k for k in r["last"] if k.startswith("grad_scale")]
            if not scale_keys:
                raise Failed(f"fp16 run's stats.jsonl has no grad_scale* keys: {sorted(r['last'])}")
            notes.append("scales " + ",".join(f"{k[11:] or 'D'}={r['last'][k]:g}" for k in scale_keys) +
                         f", overflow {r['last'].get('overflow_steps', '?')}")
            if arch == "sg2":
                clamp = cfg.get("model", {}).get("conv_clamp")
                if clamp != 256:
                    raise Failed(f"StyleGAN2 fp16: config.json model.conv_clamp is {clamp!r}, expected 256")
                notes.append("conv_clamp 256")
        ctx.done[name] = run
        label = "tf32" if precision == "fp32" and tf32 and ctx.device == "cuda" else precision
        return label, "; ".join([r["summary"]] + notes)

    return name, check


def make_resume(arch: str):
    def check(ctx: Ctx):
        src = ctx.need(f"train-{arch}-fp32", by=f"resume-{arch}")
        run = ctx.out / "runs" / f"resume-{arch}"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(src, run)
        before = read_json(run / "latest.json")["kimg"]
        kimg = 2 * (ctx.sizes.sg1_kimg if arch == "sg1" else ctx.sizes.sg2_kimg)
        ctx.run(["sgan", "train", ctx.need("dataset", by="resume"), "--out", run, "--resume", "auto",
                 "--kimg", kimg, "--device", ctx.dev_arg], what=f"resume-{arch}")
        r = check_run(run, res=ctx.sizes.res)
        after = r["latest"]["kimg"]
        starts = r["cfg"].get("starts", [])
        if not after > before:
            raise Failed(f"kimg did not advance on resume: {before} -> {after}")
        if len(starts) != 2 or not starts[1].get("resumed_from"):
            raise Failed(f"config.json starts should record the resume: {starts}")
        return r["cfg"]["train"].get("precision", "?"), f"kimg {before} -> {after}; resumed from " \
                                                        f"{Path(starts[1]['resumed_from']).name}"
    return f"resume-{arch}", check


def c_torchrun(ctx: Ctx):
    import torch

    n = torch.cuda.device_count() if ctx.device == "cuda" else 2
    run = ctx.out / "runs" / "torchrun"
    shutil.rmtree(run, ignore_errors=True)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    argv = train_argv(ctx, "sg2", run, "fp32", ["--batch", max(8, 4 * n)])[1:]    # 4 images or more per rank
    ctx.run(launcher + ["--standalone", "--nproc-per-node", n, "-m", "sgan"] + argv, what="torchrun")
    r = check_run(run, res=ctx.sizes.res, world=n)
    backend = "nccl" if ctx.device == "cuda" else "gloo"
    how = f"{n} processes, {backend}" if n > 1 else "1 process: world size 1 runs without a process group " \
                                                    "(no nccl; see the nccl row)"
    return "fp32", f"{how}; {r['summary']}"


def c_nccl(ctx: Ctx):
    if ctx.device == "cpu":
        raise Skipped("skipped (cpu): NCCL is CUDA only (torchrun used gloo)")
    import torch
    import torch.distributed as dist

    if not dist.is_nccl_available():
        raise Failed("torch.distributed.is_nccl_available() is False in this torch build")
    (ctx.out / "nccl-store").unlink(missing_ok=True)
    store = dist.FileStore(str(ctx.out / "nccl-store"), 1)
    dist.init_process_group("nccl", store=store, rank=0, world_size=1, device_id=torch.device("cuda", 0))
    try:
        t = torch.arange(4.0, device="cuda")
        dist.all_reduce(t)
        dist.broadcast(t, src=0)
        torch.cuda.synchronize()
        if t.tolist() != [0.0, 1.0, 2.0, 3.0]:
            raise Failed(f"one-rank all_reduce changed the tensor: {t.tolist()}")
        v = torch.cuda.nccl.version()
        version = ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
    finally:
        dist.destroy_process_group()
    return "fp32", f"NCCL {version}: one-rank group, all_reduce + broadcast ok"



def make_generate(arch: str):
    def check(ctx: Ctx):
        run = ctx.need(f"train-{arch}-fp32", by=f"generate-{arch}")
        outdir = ctx.out / f"gen-{arch}"
        p = ctx.run(["sgan", "generate", run, "--seeds", "0-7", "--grid", "--save-latents", "--outdir", outdir,
                     "--precision", "fp32", "--device", ctx.dev_arg], what=f"generate-{arch}")
        res = ctx.sizes.res
        for seed in range(8):
            img = png(outdir / f"seed{seed:04d}.png")
            if img.shape != (res, res, 3):
                raise Failed(f"{outdir}/seed{seed:04d}.png is {img.shape}, expected {(res, res, 3)}")
            if not (outdir / f"seed{seed:04d}.npy").exists():
                raise Failed(f"--save-latents wrote no {outdir}/seed{seed:04d}.npy")
        png(outdir / "grid.png")
        # the reference: the CPU (from CUDA), or another --batch (on the CPU: the same images at every batch)
        ref_dir = ctx.out / f"gen-{arch}-ref"
        ref_args = ["--device", "cpu"] + ([] if ctx.device == "cuda" else ["--batch", 3])
        ctx.run(["sgan", "generate", run, "--seeds", "0-7", "--outdir", ref_dir, "--precision", "fp32", *ref_args],
                what=f"generate-{arch}-ref")
        diff = max(int(abs(png(outdir / f"seed{s:04d}.png").astype(int) -
                           png(ref_dir / f"seed{s:04d}.png").astype(int)).max()) for s in range(8))
        bound = GREY_LEVELS_BOUND if ctx.device == "cuda" else 1
        against = "the CPU's images (TF32 on)" if ctx.device == "cuda" else "--batch 3's images"
        if diff > bound:
            raise Failed(f"images differ from {against} by {diff} grey levels (> {bound}): {outdir} vs {ref_dir}")
        note = f"; max {diff} grey levels from {against}"
        ctx.done[f"generate-{arch}"] = outdir
        first = (p.stderr + p.stdout).strip().splitlines()
        return "fp32", f"8 images {res}x{res} + grid + latents{note}" + ("" if first else "; printed nothing")
    return f"generate-{arch}", check


def c_generate_auto(ctx: Ctx):
    run = ctx.need("train-sg2-fp32", by="generate-auto")
    outdir = ctx.out / "gen-auto"
    p = ctx.run(["sgan", "generate", run, "--seeds", "0-7", "--outdir", outdir, "--precision", "auto",
                 "--device", ctx.dev_arg], what="generate-auto")
    from PIL import Image

    png(outdir / "seed0000.png")
    lines = [ln.strip() for ln in (p.stderr + p.stdout).splitlines() if ln.strip().startswith("precision ")]
    meta = {k: v for k, v in Image.open(outdir / "seed0000.png").info.items() if "precision" in k.lower()}
    chosen = lines[0].split()[1] if lines else str(next(iter(meta.values()), "(unsaid)"))[:12]
    said = lines[0][:160] if lines else "printed no 'precision ...' line"
    return f"auto->{chosen}", said + (f"; PNG text {meta}" if meta else "; no precision in the PNG text")


def c_mix(ctx: Ctx):
    run = ctx.need("train-sg1-fp32", by="mix")
    lat = ctx.need("generate-sg1", by="mix")
    grid, files = ctx.out / "mix-grid.png", ctx.out / "mix-files.png"
    ctx.run(["sgan", "mix", run, "--rows", "0-2", "--cols", "3-5", "--styles", "coarse", "--out", grid,
             "--device", ctx.dev_arg], what="mix-grid")
    ctx.run(["sgan", "mix", run, "--coarse", Path(lat) / "seed0001.npy", "--fine", Path(lat) / "seed0002.npy",
             "--out", files, "--device", ctx.dev_arg], what="mix-files")
    g, f = png(grid), png(files)
    r = ctx.sizes.res
    if g.shape[0] < 3 * r or g.shape[1] < 3 * r:
        raise Failed(f"{grid} is {g.shape}; a 3x3 mixing grid of {r} px images is at least {3 * r}x{3 * r}")
    return "fp32", f"grid {g.shape[1]}x{g.shape[0]}, from latent files {f.shape[1]}x{f.shape[0]}"


def make_project(arch: str):
    def check(ctx: Ctx):
        run = ctx.need(f"train-{arch}-fp32", by=f"project-{arch}")
        target = Path(ctx.need(f"generate-{arch}", by=f"project-{arch}")) / "seed0003.png"
        outdir = ctx.out / f"proj-{arch}"
        loss = ["--loss", "pixel-gradient"] if arch == "sg1" else \
            ["--loss", "detector", "--detector", ctx.need("detector", by=f"project-{arch}")]
        ctx.run(["sgan", "project", run, target, "--out", outdir, "--steps", ctx.sizes.project_steps,
                 "--w-avg-samples", 256, "--precision", "fp32", "--device", ctx.dev_arg, *loss],
                what=f"project-{arch}")
        import numpy as np

        w = np.load(outdir / "seed0003.npy", allow_pickle=False)
        rec = read_json(outdir / "seed0003.json")
        psnr = rec.get("psnr_db")
        if w.ndim != 2 or not np.isfinite(w).all() or psnr is None or not math.isfinite(psnr):
            raise Failed(f"{outdir}: latent {w.shape} finite={np.isfinite(w).all()}, psnr_db {psnr}")
        png(outdir / "seed0003-compare.png")
        return "fp32", f"{loss[1]} loss, {ctx.sizes.project_steps} steps, latent {list(w.shape)}, " \
                       f"PSNR {psnr:.1f} dB"
    return f"project-{arch}", check


def c_video(ctx: Ctx):
    import imageio_ffmpeg

    run = ctx.need("train-sg2-fp32", by="video")
    out = ctx.out / "walk.mp4"
    ctx.run(["sgan", "video", run, "--seeds", "0,1", "--seconds-per-seed", 0.5, "--fps", 8, "--out", out,
             "--device", ctx.dev_arg, "--precision", "fp32"], what="video")
    if not out.exists() or out.stat().st_size == 0:
        raise Failed(f"{out} was not written")
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    if frames != 5:
        raise Failed(f"{out} has {frames} frames; a 2-seed walk at 8 fps, 0.5 s per seed has (2-1)*8*0.5+1 = 5")
    return "fp32", f"{frames} frames, {out.stat().st_size} bytes"


def c_detector(ctx: Ctx):
    db = ctx.need("dataset", by="detector")
    det = ctx.out / "shapes-detector.pt"
    p = ctx.run(["sgan", "detector", "train", db, "--out", det, "--epochs", 1, "--limit", ctx.sizes.det_limit,
                 "--json", "--device", ctx.dev_arg], what="detector")
    try:
        rec = json.loads(p.stdout)
    except ValueError:
        raise Failed(f"`sgan detector train --json` printed no JSON: {p.stdout[:200]!r}") from None
    ctx.done["detector"] = det
    held = rec.get("heldout", {})
    if not isinstance(held.get("class_accuracy"), (int, float)):
        raise Failed(f"`sgan detector train --json` has no heldout.class_accuracy: {p.stdout[:200]!r}")
    return "fp32", f"{rec.get('train_images')} images, {rec.get('resolution')} px, held-out class accuracy " \
                   f"{held['class_accuracy']:.2f} (tiny: only the code path counts)"


def make_metric(metric: str):
    def check(ctx: Ctx):
        run = ctx.need("train-sg2-fp32", by=f"metric-{metric}")
        det, db = ctx.need("detector", by=f"metric-{metric}"), ctx.need("dataset", by=f"metric-{metric}")
        num = ctx.sizes.metric_num

        def measure(device: str, extra: list | None = None) -> dict:
            argv = ["sgan", "metrics", metric, run, "--detector", det, "--num", num, "--json",
                    "--device", device, "--precision", "fp32", *(extra or [])]
            if metric in ("fid", "kid", "pr"):             # ppl and ls need no reals
                argv += ["--data", db, "--cache-dir", ctx.out / "cache"]
            if metric == "kid":
                argv += ["--subsets", 10]
            p = ctx.run(argv, what=f"metric-{metric}-{device}" + ("-ref" if extra else ""))
            try:
                return json.loads(p.stdout)
            except ValueError:
                raise Failed(f"`sgan metrics {metric} --json` printed no JSON object: {p.stdout[:200]!r}") from None

        rec = measure(ctx.dev_arg)
        values = {k: v for k, v in rec.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                  and k in ("value", "fid", "kid", "precision", "recall", "ppl", "ls_z", "ls_w")}
        if not values:
            raise Failed(f"no value in the JSON of `sgan metrics {metric}`: {sorted(rec)}")
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise Failed(f"non-finite {metric}: {bad}")
        note = ""
        if metric in ("fid", "kid"):      # against the CPU (from CUDA), or another --batch (on the CPU)
            ref = measure("cpu", ["--batch", 7] if ctx.device == "cpu" else [])
            a, b = float(rec["value"]), float(ref["value"])
            rel = abs(a - b) / max(abs(b), 1e-12)
            against = "the CPU" if ctx.device == "cuda" else "--batch 7"
            if rel > CPU_METRIC_REL and abs(a - b) > 1e-3:
                raise Failed(f"{metric} {a:.6g} against {b:.6g} with {against} ({rel:.2%} apart; the same seeds "
                             f"should give the same images)")
            note = f"; {against} {b:.5g} ({rel:.1e} relative)"
        named = {k: v for k, v in values.items() if k != "value"} or values      # "value" repeats the metric's own
        shown = ", ".join(f"{k} {v:.4g}" for k, v in named.items())
        return "fp32", f"{shown} ({num} images){note}"
    return f"metric-{metric}", check


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json") if p.name != "MANIFEST.json")


def make_import(fixture: str):
    def check(ctx: Ctx):
        import numpy as np
        import torch

        import sgan

        meta = read_json(FIXTURES / f"{fixture}.json")
        files = list(meta.get("files", {}))
        if not files:
            raise Failed(f"{fixture}.json lists no files")
        notes = []
        for name in files:
            extra = []
            if fixture.startswith("rosinality-sg1"):      # keep the blocks the fixture's cases ran
                res = max(int(c["resolution"]) for c in meta.get("cases", {}).values() if "resolution" in c)
                extra = ["--resolution", res]
            pt = ctx.out / "imports" / f"{Path(name).stem}.pt"
            pt.parent.mkdir(parents=True, exist_ok=True)
            ctx.run(["sgan", "import", FIXTURES / name, "--out", pt, "--force", *extra], what=f"import-{fixture}")
            G = sgan.load_generator(pt, device="cpu")
            z = torch.from_numpy(np.random.RandomState(7).randn(4, G.z_dim)).float()
            c_dim = int(getattr(G, "c_dim", 0) or 0)
            c = torch.eye(c_dim)[torch.arange(4) % c_dim] if c_dim else None

            def forward(model, device: str, batch: int):
                with torch.no_grad():
                    return torch.cat([model(z[i:i + batch].to(device), None if c is None else c[i:i + batch].to(device),
                                            truncation_psi=0.7, noise_mode="const").float().cpu()
                                      for i in range(0, len(z), batch)])

            ref = forward(G, "cpu", 4)
            if not torch.isfinite(ref).all():
                raise Failed(f"{name}: the CPU output is not finite")
            # CUDA against the CPU; on the CPU the same code compares one image at a time against the batch of 4
            target, batch = ("cuda", 4) if ctx.device == "cuda" else ("cpu", 1)
            Gt = G.to(target)
            old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            try:
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
                exact = float((forward(Gt, target, batch) - ref).abs().max() / ref.abs().max())
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
                tf32 = float((forward(Gt, target, batch) - ref).abs().max() / ref.abs().max())
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
            if not exact <= IMPORT_FP32_TOL:
                raise Failed(f"{name}: {target} fp32 (TF32 off, batch {batch}) differs from the CPU's batch of 4 by "
                             f"{exact:.2e} of max|ref| (bound {IMPORT_FP32_TOL:g}; log {ctx.out / 'logs'})")
            if not tf32 <= IMPORT_TF32_TOL:
                raise Failed(f"{name}: {target} with TF32 differs from the CPU by {tf32:.2e} of max|ref| "
                             f"(bound {IMPORT_TF32_TOL:g}; fp32 without TF32 was {exact:.2e})")
            notes.append(f"fp32 {exact:.1e}, tf32 {tf32:.1e}" if target == "cuda" else f"{exact:.1e}")
        what = "CPU batch 1 vs 4" if ctx.device == "cpu" else "CUDA vs CPU"
        shown = "; ".join(f"{Path(f).stem[len(fixture) + 1:]}: {n}" if len(files) > 1 else n
                          for f, n in zip(files, notes))
        return "fp32", f"{len(files)} file(s) {what}, max|d|/max|ref| {shown} (bound {IMPORT_FP32_TOL:g})"
    return f"import-{fixture}", check


def make_auto(arch: str):
    def check(ctx: Ctx):
        run = ctx.out / "runs" / f"auto-{arch}"
        shutil.rmtree(run, ignore_errors=True)
        ctx.run(train_argv(ctx, arch, run, "auto", ["--compile", "auto"]), what=f"auto-{arch}")
        r = check_run(run, res=ctx.sizes.res)
        prec, comp = r["cfg"].get("precision", {}), r["cfg"].get("compile", {})
        if prec.get("requested") != "auto" or prec.get("precision") not in ("fp32", "bf16", "fp16"):
            raise Failed(f"config.json precision {prec}")
        timings = ", ".join(f"{k} {v:.1f} ms" for k, v in (prec.get("timings_ms") or {}).items())
        return f"auto->{prec['precision']}", (f"precision {prec['precision']} ({prec.get('reason')}"
                                              f"{'; ' + timings if timings else ''}); compile "
                                              f"{'on' if comp.get('compile') else 'off'} ({comp.get('reason')})")
    return f"auto-{arch}", check


def c_compile(ctx: Ctx):
    if ctx.device == "cpu":
        raise Skipped("skipped (cpu): compiling takes minutes on a CPU (benchmarks/compile.py measures it)")
    run = ctx.out / "runs" / "compile-sg2"
    shutil.rmtree(run, ignore_errors=True)
    ctx.run(train_argv(ctx, "sg2", run, "fp32", ["--compile", "on"]), what="compile-sg2")
    r = check_run(run, res=ctx.sizes.res)
    comp = r["cfg"].get("compile", {})
    frames = r["last"].get("compiled_frames")
    if not comp.get("compile") or not frames:
        raise Failed(f"--compile on: config.json compile {comp}, compiled_frames {frames}")
    return "tf32", f"{frames} compiled graphs; {r['summary']}"


def c_dry_run(ctx: Ctx):
    outs = []
    for arch in ("sg1", "sg2"):
        run = ctx.out / "runs" / f"dry-{arch}"
        p = ctx.run(train_argv(ctx, arch, run, "fp32") + ["--dry-run"], what=f"dry-run-{arch}")
        if (run / "snapshot-000000.pt").exists() or (run / "stats.jsonl").exists():
            raise Failed(f"--dry-run trained: {run} has a snapshot or stats")
        outs.append(f"{arch} {len(p.stdout.splitlines())} lines")
    return "-", "config and schedule printed, nothing trained (" + ", ".join(outs) + ")"
