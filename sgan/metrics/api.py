"""The metrics as library calls: `fid`, `kid`, `pr`, `ppl`, `ls`, `modes` on a generator, and `compute_metric`
by name (`fid50k`, `kid10k`, `pr5k`, `ppl2k_wend`, `ls10k`, `modes10k`) for the training loop.

`progress(stage, done, total)` reports each stage (reals, generated images, ...). Results are
plain dicts of numbers and strings; each names the detector it used and, under `precision_choice`,
the precision the synthesis network computed in: fp32 unless `precision` asks otherwise, so a score
is the same on every machine (`auto`, `bf16`, `fp16` trade that for speed; every input is checked
before `auto` times the model).
"""

from __future__ import annotations

import math
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from sgan.errors import DataError, UsageError

StageProgress = Callable[[str, int, int], None]
METRICS = ("fid", "kid", "pr", "ppl", "ls", "modes")
DEFAULT_NUM = {"fid": 50000, "kid": 50000, "pr": 50000, "ppl": 50000, "ls": 200000, "modes": 10000}
DEFAULT_DETECTOR = {"fid": "inception", "kid": "inception", "pr": "vgg16", "ppl": "lpips", "ls": None, "modes": None}
PR_MAX_REAL = 200000


@dataclass(frozen=True)
class MetricSpec:
    metric: str
    num: int | None
    space: str = "w"
    sampling: str = "end"


_NAME = re.compile(r"^(fid|kid|pr|ppl|ls|modes)(?:(\d+)(k?))?(?:_(full|[zw](?:full|end)))?$")


def parse_metric_name(name: str) -> MetricSpec:
    """`fid50k`, `fid5k_full`, `kid10k`, `pr5k`, `ppl_wend`, `ppl2k_zfull`, `ls10k`, `modes10k`, `fid` -> MetricSpec."""
    m = _NAME.match(name.strip().lower())
    if not m:
        raise UsageError(f"unknown metric {name!r}; use names such as fid50k, kid10k, pr10k, ppl2k_wend, ls10k or modes10k.")
    metric, digits, k, suffix = m.groups()
    num = int(digits) * (1000 if k else 1) if digits else None
    if num is not None and num < 2:
        raise UsageError(f"metric {name!r}: the sample count must be at least 2.")
    space, sampling = "w", "end"
    if suffix and suffix != "full":
        if metric != "ppl":
            raise UsageError(f"metric {name!r}: _{suffix} applies to ppl only (ppl_zfull, ppl_wend, ...).")
        space, sampling = suffix[0], suffix[1:]
    return MetricSpec(metric, num, space, sampling)


def parse_metric_list(text: str) -> list[MetricSpec]:
    return [parse_metric_name(part) for part in text.split(",") if part.strip()]


def check_metric_detector(metric: str, detector: Any) -> None:
    """Refuse, before any work, a metric that cannot run with `detector` (None: the metric's default):
    ls and modes have no default; they need a file from `sgan detector train` (as `ls` and `modes` say)."""
    if metric == "ls" and detector is None:
        raise UsageError("linear separability needs attribute classifiers: pass --detector shapes-detector.pt "
                         "(train it with `sgan detector train DATA.lmdb --out shapes-detector.pt`).")
    if metric == "modes" and (detector is None or str(detector) in ("inception", "vgg16", "lpips")):
        raise UsageError("mode coverage needs a class detector of the dataset: train one with `sgan detector train "
                         "DATA.lmdb --out det.pt` and pass --detector det.pt.")


def _stage(progress: StageProgress | None, stage: str):
    return (lambda done, total: progress(stage, done, total)) if progress else None


def _common(G, seed: int, trunc: float, num: int, batch: int) -> dict:
    if num < 2:
        raise UsageError(f"--num {num}: at least 2 generated images are needed.")
    if batch < 1:
        raise UsageError("--batch must be at least 1.")
    if int(seed) != seed or seed < 0:
        raise UsageError(f"--seed must be a whole number, zero or more, got {seed}.")
    if not 0.0 <= trunc <= 1.0 and trunc != 1.0:
        raise UsageError(f"--trunc {trunc}: use a value between 0 and 1 (1 = no truncation, the standard protocol).")
    return {"num_gen": num, "seed": seed, "trunc": trunc, "resolution": int(G.resolution)}


def _real_count(ds, num_real: int | None, cap: int | None = None) -> int:
    if num_real is None:
        return ds.num_images if cap is None else min(ds.num_images, cap)
    if num_real < 2:
        raise UsageError(f"--num-real {num_real}: at least 2 real images are needed.")
    if num_real > ds.num_images:
        raise DataError(f"--num-real {num_real} is more than the {ds.num_images} images in {ds.path}; "
                        f"use --num-real {ds.num_images} or less (or leave it out to use them all).")
    return num_real


@dataclass
class _Data:
    """The checked dataset side of fid/kid/pr: the generator (class-conditioned against the labels
    where the model is conditional), the dataset, the real count and whether its features may be cached."""
    G: Any
    ds: Any
    num_real: int
    cacheable: bool


def _prepare_data(G, data_path, num_real, cap, seed) -> _Data:
    """Refuse a bad dataset, count or labels before loading a detector (cheap checks first)."""
    from sgan.metrics.conditional import condition_for_metric
    from sgan.metrics.features import open_dataset

    ds = open_dataset(data_path, int(G.resolution))
    _real_count(ds, num_real)
    G, ds, cacheable = condition_for_metric(G, ds, data_path, seed=seed)  # class-conditional models
    return _Data(G, ds, _real_count(ds, num_real, cap), cacheable)


def _features_pair(data: _Data, detector, *, data_path, num, batch, seed, trunc, device, cache_dir, use_cache,
                   progress) -> tuple[np.ndarray, np.ndarray, dict]:
    from sgan.metrics.features import cached_real_features, generated_features

    G = data.G
    real, cache = cached_real_features(data.ds, detector, num=data.num_real, batch=max(batch, 16), device=device,
                                       cache_dir=cache_dir, use_cache=use_cache and data.cacheable,
                                       progress=_stage(progress, "reals"))
    fake = generated_features(G, detector, num=num, batch=batch, seed=seed, trunc=trunc, device=device,
                              progress=_stage(progress, "generated"))
    more = {"num_real": data.num_real, "data": str(data_path), "cache": cache.get("cache")}
    if getattr(G, "class_index", None) is not None:
        more["class"] = {"index": G.class_index, "name": G.class_name}
    return real, fake, more


PrecisionReport = Callable[[Any], None]


def check_metric_precision(precision: str, device, *, metric: str) -> str:
    """--precision checked at the door (a name the device can run; ppl: fp32 or auto only)."""
    from sgan.device import check_precision

    requested = check_precision(precision, torch.device(device))
    if metric == "ppl" and requested not in ("auto", "fp32"):
        raise UsageError(f"--precision {precision}: PPL's epsilon differences need fp32; use auto or fp32.")
    return requested


@contextmanager
def _computing_in(G, device, precision: str, *, batch: int, metric: str,
                  on_precision: PrecisionReport | None) -> Iterator[Any]:
    """Once every input is checked: resolve `precision` (auto times G at up to 4 images) and run the
    block with G's synthesis network (the generator itself where it has none) under that autocast;
    the detectors and the mapping stay fp32. Yields the PrecisionChoice, told to `on_precision` first."""
    from sgan.device import PrecisionChoice, autocast_module, choose_precision, generator_probe

    dev = torch.device(device)
    requested = check_metric_precision(precision, dev, metric=metric)
    if metric == "ppl":  # its 1e-4 finite differences are below bfloat16's resolution
        choice = PrecisionChoice("fp32", requested, {}, "ppl measures 1e-4 differences: fp32 only")
    else:
        run = generator_probe(G, batch=max(1, min(batch, 4)), train=False) if requested == "auto" else None
        choice = choose_precision(dev, run, requested=requested)
    if on_precision is not None:
        on_precision(choice)
    target = getattr(G, "synthesis", None)
    with autocast_module(target if isinstance(target, torch.nn.Module) else G, dev, choice.precision):
        yield choice


def _feature_detector(detector: Any, weights, device, inception_mode: str):
    from sgan.metrics.detectors import FeatureDetector, load_feature_detector

    if isinstance(detector, FeatureDetector):
        return detector
    return load_feature_detector(detector, weights=weights, device=device, inception_mode=inception_mode)


def fid(G, *, data_path, detector: Any = "inception", detector_weights=None, num: int = 50000,
        num_real: int | None = None, batch: int = 32, seed: int = 0, trunc: float = 1.0, device="cpu",
        cache_dir=None, use_cache: bool = True, inception_mode: str = "tf", ddof: int = 1,
        progress: StageProgress | None = None, precision: str = "fp32",
        on_precision: PrecisionReport | None = None) -> dict:
    """FID of `num` generated images against the dataset (all of it by default). `precision`: of the
    synthesis network, fp32 by default (the same score on every machine), or bf16/fp16/auto for speed;
    every input is checked before `auto` times anything, and `on_precision(choice)` hears the choice."""
    from sgan.metrics.fid import fid_from_features

    if ddof not in (0, 1):
        raise UsageError(f"--ddof must be 0 (stylegan2-ada) or 1 (pytorch-fid, TTUR), got {ddof}.")
    t0 = time.perf_counter()
    info = _common(G, seed, trunc, num, batch)
    check_metric_precision(precision, device, metric="fid")
    data = _prepare_data(G, data_path, num_real, None, seed)
    det = _feature_detector(detector, detector_weights, device, inception_mode)
    with _computing_in(G, device, precision, batch=batch, metric="fid", on_precision=on_precision) as choice:
        real, fake, more = _features_pair(data, det, data_path=data_path, num=num, batch=batch, seed=seed, trunc=trunc,
                                          device=device, cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    value = fid_from_features(real, fake, ddof=ddof)
    return {"metric": "fid", "value": value, "fid": value, "detector": det.name, "detector_sha256": det.sha256,
            **info, **more, "ddof": ddof, "precision_choice": choice.to_dict(),
            "time_s": round(time.perf_counter() - t0, 2)}


def kid(G, *, data_path, detector: Any = "inception", detector_weights=None, num: int = 50000,
        num_real: int | None = None, batch: int = 32, seed: int = 0, trunc: float = 1.0, device="cpu",
        cache_dir=None, use_cache: bool = True, inception_mode: str = "tf", num_subsets: int = 100,
        max_subset_size: int = 1000, progress: StageProgress | None = None, precision: str = "fp32",
        on_precision: PrecisionReport | None = None) -> dict:
    """KID (cubic kernel, 100 subsets of up to 1000) of generated images against the dataset
    (`precision`, `on_precision`: as fid's)."""
    from sgan.metrics.kid import kid as kid_fn

    t0 = time.perf_counter()
    info = _common(G, seed, trunc, num, batch)
    check_metric_precision(precision, device, metric="kid")
    data = _prepare_data(G, data_path, num_real, None, seed)
    det = _feature_detector(detector, detector_weights, device, inception_mode)
    with _computing_in(G, device, precision, batch=batch, metric="kid", on_precision=on_precision) as choice:
        real, fake, more = _features_pair(data, det, data_path=data_path, num=num, batch=batch, seed=seed, trunc=trunc,
                                          device=device, cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    res = kid_fn(real, fake, num_subsets=num_subsets, max_subset_size=max_subset_size,
                 rng=np.random.default_rng(np.random.SeedSequence([seed, 5])))
    return {"metric": "kid", "value": res["kid"], **res, "detector": det.name, "detector_sha256": det.sha256,
            **info, **more, "precision_choice": choice.to_dict(), "time_s": round(time.perf_counter() - t0, 2)}


def pr(G, *, data_path, detector: Any = "vgg16", detector_weights=None, num: int = 50000,
       num_real: int | None = None, batch: int = 32, seed: int = 0, trunc: float = 1.0, device="cpu",
       cache_dir=None, use_cache: bool = True, k: int = 3, progress: StageProgress | None = None,
       precision: str = "fp32", on_precision: PrecisionReport | None = None, dc_k: int | None = 5) -> dict:
    """Improved precision and recall (k = 3) against up to 200k reals (`precision`, the compute
    precision of the synthesis network, and `on_precision`: as fid's), and beside them density and
    coverage (Naeem et al. 2020, sgan.metrics.pr.density_coverage) with `dc_k` = 5 neighbours
    (None: left out)."""
    from sgan.metrics.pr import density_coverage, precision_recall

    t0 = time.perf_counter()
    info = _common(G, seed, trunc, num, batch)
    if num <= k:
        raise UsageError(f"--num {num}: precision/recall with k={k} needs more than {k} generated images.")
    check_metric_precision(precision, device, metric="pr")
    data = _prepare_data(G, data_path, num_real, PR_MAX_REAL, seed)
    if data.num_real <= k:
        raise UsageError(f"--num-real {data.num_real}: precision/recall with k={k} needs more than {k} real images.")
    if dc_k is not None and (dc_k < 1 or data.num_real <= dc_k):
        raise UsageError(f"--dc-k {dc_k}: density/coverage needs 1 <= k < the {data.num_real} real images.")
    det = _feature_detector(detector, detector_weights, device, "tf")
    with _computing_in(G, device, precision, batch=batch, metric="pr", on_precision=on_precision) as choice:
        real, fake, more = _features_pair(data, det, data_path=data_path, num=num, batch=batch, seed=seed, trunc=trunc,
                                          device=device, cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    res = precision_recall(real, fake, k=k, device=device)
    if dc_k is not None:
        dc = density_coverage(real, fake, k=dc_k, device=device)
        res.update(density=dc["density"], coverage=dc["coverage"], dc_k=dc_k)
    return {"metric": "pr", "value": res["precision"], **res, "detector": det.name, "detector_sha256": det.sha256,
            **info, **more, "precision_choice": choice.to_dict(), "time_s": round(time.perf_counter() - t0, 2)}


def ppl(G, *, detector: Any = "lpips", detector_weights=None, num: int = 50000, batch: int = 16, seed: int = 0,
        trunc: float = 1.0, device="cpu", space: str = "w", sampling: str = "end", epsilon: float = 1e-4,
        crop: bool = False, progress: StageProgress | None = None, precision: str = "fp32",
        on_precision: PrecisionReport | None = None, **_unused) -> dict:
    """Perceptual path length in Z or W, full or end sampling (fp32 only: `precision` may be fp32 or auto)."""
    from sgan.metrics.detectors import load_distance
    from sgan.metrics.ppl import ppl as ppl_fn

    t0 = time.perf_counter()
    info = _common(G, seed, trunc, num, batch)
    check_metric_precision(precision, device, metric="ppl")
    if space not in ("z", "w") or sampling not in ("full", "end"):
        raise UsageError(f"--space {space} --sampling {sampling}: use --space z or w and --sampling full or end.")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise UsageError(f"--epsilon must be a finite number above 0, got {epsilon}.")
    dist = detector if isinstance(detector, torch.nn.Module) and hasattr(detector, "name") else \
        load_distance(detector, weights=detector_weights, device=device)
    with _computing_in(G, device, precision, batch=batch, metric="ppl", on_precision=on_precision) as choice:
        res = ppl_fn(G, dist, space=space, sampling=sampling, num=num, batch=batch, seed=seed, epsilon=epsilon,
                     crop=crop, trunc=trunc, device=device, progress=_stage(progress, f"ppl {space}{sampling}"))
    return {"metric": f"ppl_{space}{sampling}", "value": res["ppl"], **res, "detector": dist.name,
            "detector_sha256": dist.sha256, **info, "precision_choice": choice.to_dict(),
            "time_s": round(time.perf_counter() - t0, 2)}


def ls(G, *, detector: Any, num: int = 200000, batch: int = 32, seed: int = 0, trunc: float = 1.0, device="cpu",
       num_keep: int | None = None, progress: StageProgress | None = None, precision: str = "fp32",
       on_precision: PrecisionReport | None = None, **_unused) -> dict:
    """Linear separability in Z and W with the offline detector's attributes (`ls_custom`);
    `precision`, `on_precision`: as fid's."""
    from sgan.metrics.detectors import load_attribute_detector
    from sgan.metrics.ls import ls_scores, sample_for_ls

    t0 = time.perf_counter()
    info = _common(G, seed, trunc, num, batch)
    check_metric_precision(precision, device, metric="ls")
    check_metric_detector("ls", detector)
    net, name, sha = load_attribute_detector(detector, device=device)
    keep = num // 2 if num_keep is None else num_keep
    if not 2 <= keep <= num:
        raise UsageError(f"--num-keep {keep} must lie between 2 and --num ({num}).")
    with _computing_in(G, device, precision, batch=batch, metric="ls", on_precision=on_precision) as choice:
        z, w, probs = sample_for_ls(G, net, num=num, batch=batch, seed=seed, trunc=trunc, device=device,
                                    progress=_stage(progress, "generated"))
    cols = net.ls_attributes
    names = [net.attribute_names[i] for i in cols]
    stage = _stage(progress, "svm")
    if stage:
        stage(0, 1)
    res = ls_scores(z, w, probs[:, cols], names, num_keep=keep)
    if stage:
        stage(1, 1)
    k = len(net.class_names)
    cls = probs[:, :k]
    counts = np.bincount(cls.argmax(1), minlength=k) / num
    return {"metric": "ls", "value": res["ls_w"], "ls_z": res["ls_z"], "ls_w": res["ls_w"], "label": "ls_custom",
            "attributes": res["attributes"], "num_keep": keep,
            "class_confidence": float(cls.max(1).mean()),
            "class_histogram": {c: round(float(v), 4) for c, v in zip(net.class_names, counts)},
            "detector_heldout": net.config.get("heldout"), "detector": name, "detector_sha256": sha, **info,
            "precision_choice": choice.to_dict(), "time_s": round(time.perf_counter() - t0, 2)}


def _classes_for_modes(G, net, data_path, seed: int):
    """A conditional G (no --class) draws its classes from the dataset's labels when `data_path` is
    given (as fid/kid/pr), else from the real class counts stored in the detector file."""
    from sgan.metrics.conditional import LabelSampled, condition_for_metric
    from sgan.metrics.features import open_dataset

    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0 or getattr(G, "class_index", None) is not None:
        return G, "model" if c_dim == 0 else "fixed"
    if data_path is not None:
        G, _, _ = condition_for_metric(G, open_dataset(data_path, int(G.resolution)), data_path, seed=seed)
        return G, "dataset labels"
    counts = net.config.get("real_counts")
    if not counts or len(counts) != c_dim:
        raise UsageError(f"the model is class-conditional ({c_dim} classes) and the detector's classes do not match "
                         f"them one to one; pass --data DATA.lmdb (classes drawn from its labels) or --class K.")
    idx = torch.repeat_interleave(torch.arange(c_dim), torch.as_tensor(counts))
    return LabelSampled(G, torch.nn.functional.one_hot(idx, c_dim).float(), seed=seed), "detector's real counts"


def modes(G, *, detector: Any, num: int = 10000, batch: int = 32, seed: int = 0, trunc: float = 1.0, device="cpu",
          threshold: float | None = None, cover_fraction: float | None = None, data_path=None,
          progress: StageProgress | None = None, precision: str = "fp32", on_precision: PrecisionReport | None = None,
          **_unused) -> dict:
    """Mode coverage (sgan.metrics.modes): the class histogram of `num` generated images with
    confidence >= `threshold` (0.8), its entropy and KL from the real class distribution in bits,
    the shares unsure and junk, and the classes covered (share >= `cover_fraction` (0.5) x real share).
    `detector`: a file from `sgan detector train`. `data_path`: only for a conditional G (classes
    drawn from its labels; else from the detector's real counts). `precision`, `on_precision`: as fid's."""
    from sgan.metrics.features import generated_features
    from sgan.metrics.modes import (DEFAULT_COVER_FRACTION, DEFAULT_THRESHOLD, ClassProbabilities, class_stats,
                                    sort_samples)
    from sgan.metrics.shapes_detector import load_detector_file
    from sgan.metrics.detectors import shapes_name

    t0 = time.perf_counter()
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    cover_fraction = DEFAULT_COVER_FRACTION if cover_fraction is None else float(cover_fraction)
    info = _common(G, seed, trunc, num, batch)
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold {threshold}: use a probability between 0 and 1 (default {DEFAULT_THRESHOLD}).")
    if not 0.0 < cover_fraction <= 1.0:
        raise UsageError(f"--cover-fraction {cover_fraction}: use a value above 0 and at most 1 "
                         f"(default {DEFAULT_COVER_FRACTION}: a class is covered at half its real share).")
    check_metric_precision(precision, device, metric="modes")
    check_metric_detector("modes", detector)
    net, sha = load_detector_file(detector)
    real = net.config.get("real_distribution")
    note = "detector file"
    if not real:   # a detector written before the real distribution was stored
        real, note = [1.0 / len(net.real_class_names)] * len(net.real_class_names), "uniform (not in the detector file)"
    G, classes_from = _classes_for_modes(G, net, data_path, seed)
    probs_det = ClassProbabilities(net.to(device))
    with _computing_in(G, device, precision, batch=batch, metric="modes", on_precision=on_precision) as choice:
        probs = generated_features(G, probs_det, num=num, batch=batch, seed=seed, trunc=trunc, device=device,
                                   progress=_stage(progress, "generated"))
    counts, unsure, junk = sort_samples(probs, junk_index=net.junk_index, threshold=threshold)
    stats = class_stats(counts, real, num_unsure=unsure, num_junk=junk, class_names=net.real_class_names,
                        cover_fraction=cover_fraction)
    text = " ".join(f"{c}:{v:.3f}" for c, v in stats["histogram"].items())
    more = {"class": {"index": G.class_index, "name": G.class_name}} if getattr(G, "class_index", None) is not None else {}
    return {"metric": "modes", "value": stats["entropy_bits"], **stats, "histogram_text": text,
            "threshold": threshold, "junk_class": net.config.get("junk_class"), "real_distribution_from": note,
            "classes_from": classes_from, "detector_heldout": net.config.get("heldout"),
            "detector": shapes_name(detector, sha), "detector_sha256": sha, **info, **more,
            "precision_choice": choice.to_dict(), "time_s": round(time.perf_counter() - t0, 2)}


FUNCTIONS = {"fid": fid, "kid": kid, "pr": pr, "ppl": ppl, "ls": ls, "modes": modes}


def compute_metric(name: str, *, G, data_path: str | os.PathLike | None = None, detector: Any = None,
                   detector_weights=None, num: int | None = None, batch: int = 32, device="cpu", seed: int = 0,
                   cache_dir=None, progress: StageProgress | None = None, **options) -> dict:
    """Compute the metric called `name` (see `parse_metric_name`) of generator G.

    `detector` None picks the standard one (inception, vgg16, lpips); an offline detector file works
    for every metric and is required by ls. `num` overrides the count in the name. The result dict
    gains `"name": name`."""
    spec = parse_metric_name(name)
    count = num or spec.num or DEFAULT_NUM[spec.metric]
    det = detector if detector is not None else DEFAULT_DETECTOR[spec.metric]
    fn = FUNCTIONS[spec.metric]
    kwargs: dict[str, Any] = dict(detector=det, num=count, batch=batch, device=device, seed=seed, progress=progress,
                                  **options)
    if spec.metric in ("fid", "kid", "pr"):
        if data_path is None:
            raise UsageError(f"metric {name}: needs the dataset (data_path / --data).")
        kwargs.update(data_path=data_path, cache_dir=cache_dir, detector_weights=detector_weights)
    elif spec.metric == "ppl":
        kwargs.update(space=spec.space, sampling=spec.sampling, detector_weights=detector_weights)
    elif spec.metric == "modes":
        kwargs.update(data_path=data_path)   # used by a conditional G only
    was_training = getattr(G, "training", False)
    G.eval() if hasattr(G, "eval") else None
    try:
        result = fn(G, **kwargs)
    finally:
        if was_training:
            G.train()
    result["name"] = name
    return result
