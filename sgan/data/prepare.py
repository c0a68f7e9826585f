"""`prepare_dataset`: a folder, a zip or `builtin:shapes` to a multi-resolution LMDB.

Work is split the obvious way: worker processes read, decode, crop, build the pyramid and encode
(`--workers`, default the CPU count); the calling process only writes, in index order, a few
hundred images per LMDB transaction. Files that cannot be used are skipped and recorded with a
reason (`manifest.json` inside the database folder lists each); `strict=True` makes the first one
fatal.

Nothing half-written can pass for a dataset: the database is built in `OUT.partial` (whose first
record is `__writing__`), finished by one transaction that writes `length`, deletes `__writing__`
and writes `__meta__` last, then renamed to OUT. An interrupted run removes `OUT.partial` when it
can; a killed one leaves it behind under that name, still marked as being written, and the next
run replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from sgan.data import images, layout
from sgan.data.digits import DIGITS_CLASSES, DIGITS_COUNT, DIGITS_SIZE, digits_images, digits_labels
from sgan.data.labels import SourceLabels, class_metadata, source_labels
from sgan.data.lfw import LFW_COUNT, LFW_SIZE, lfw_faces
from sgan.data.shapes import ALL_SHAPE_CLASSES, VARIANTS, XFLIP_LABELS, render_shapes
from sgan.data.sources import Source, open_source, read_entry
from sgan.errors import DataError, UsageError
from sgan import __version__

DEFAULT_BUILTIN_COUNT = 10_000
IMAGES_PER_TXN = 256
MAP_SIZE = 1 << 40  # virtual on 64-bit systems: costs nothing until used

ProgressFn = Callable[[int, int], None]


@dataclass
class PrepareSummary:
    """What `prepare_dataset` did."""

    out: Path
    source: str
    count: int                       # images written
    sizes: list[int]                 # smallest first
    candidates: int                  # image files (or built-in images) considered
    skipped: dict[str, int] = field(default_factory=dict)         # reason -> number of files
    skipped_files: list[dict] = field(default_factory=list)       # {"file", "reason", "detail"}
    manifest: Path | None = None
    seconds: float = 0.0
    bytes_on_disk: int = 0
    workers: int = 1
    image_format: str = "png"

    @property
    def images_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def prepare_dataset(source: str, out: str | Path, *, max_size: int = 256, min_size: int = 4,
                    format: str = "png", quality: int = 95, resample: str = "box", crop: str = "center",
                    upscale: bool = False, background: Sequence[int] | str = (255, 255, 255),
                    workers: int | None = None, overwrite: bool = False, strict: bool = False,
                    count: int | None = None, seed: int = 0, progress: ProgressFn | None = None,
                    labels: str = "auto") -> PrepareSummary:
    """Build the multi-resolution LMDB at `out` from `source` (a folder, a .zip or builtin:shapes).

    Sizes are the powers of two from `min_size` to `max_size`. `count` caps the number of images
    (for builtin:shapes it is the number generated, default 10,000; `seed` picks the dataset).
    `labels`: class labels of a folder or zip (sgan.data.labels: auto, folders, dataset.json, none).
    `progress(done, total)` is called as candidates are processed. Raises UsageError for bad
    options and DataError for an unusable source, an existing `out` without `overwrite`, or (with
    `strict`) any skipped file.
    """
    sizes = _check_options(max_size, min_size, format, quality, resample, crop, workers, count, seed)
    try:
        bg = images.parse_color(background)
    except ValueError:
        raise UsageError(f"--background {background!r} is not a colour; use #rrggbb, r,g,b or a name such as white.") from None
    out = Path(out).expanduser()
    _check_out(out, overwrite)
    src = open_source(source)
    class_info = source_labels(labels, kind=src.kind, path=src.path, entries=src.entries, spec=source)
    if src.builtin == "lfw-faces":
        if max_size > LFW_SIZE:
            raise UsageError(f"--max-size {max_size}: builtin:lfw-faces is 25x25 px, prepared at {LFW_SIZE} px at most.")
        count = min(count or LFW_COUNT, LFW_COUNT)
        lfw_faces(8)  # a missing scikit-image is an error now, not in a worker
    if src.builtin == "digits":
        if max_size > DIGITS_SIZE:
            raise UsageError(f"--max-size {max_size}: builtin:digits is 8x8 px, prepared at {DIGITS_SIZE} px at most.")
        count = min(count or DIGITS_COUNT, DIGITS_COUNT)
        digit_classes = digits_labels()  # a missing scikit-learn is an error now, not in a worker
        class_info = SourceLabels({f"digits-{i}": int(k) for i, k in enumerate(digit_classes)}, list(DIGITS_CLASSES),
                                  "builtin:digits")
    total = (count or DEFAULT_BUILTIN_COUNT) if src.is_builtin else len(src.entries)
    if not src.is_builtin:
        _check_nonempty(src)
        if strict and src.skipped:
            name, reason = src.skipped[0]
            raise DataError(f"{name} in {source}: {reason} (--strict); remove it or drop --strict to skip it.")
    n_workers = max(1, min(workers or default_workers(), total))
    config = {"kind": src.kind, "root": str(src.path) if src.path else "", "sizes": sizes, "format": format,
              "quality": quality, "resample": resample, "crop": crop, "upscale": upscale, "background": bg,
              "variant": src.variant, "seed": seed, "builtin": src.builtin,
              "labels": class_info.by_name if class_info else None}

    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(partial)
    start_time = time.perf_counter()
    pool = writer = None
    try:
        # Workers first: they must not inherit the open write environment through fork.
        if n_workers > 1:
            pool = _make_pool(n_workers, config)
            results = pool.imap(_work, _tasks(src, total, n_workers), chunksize=1)
        else:
            _init_worker(config, ignore_sigint=False)
            results = (_work(task) for task in _tasks(src, total, 1))
        writer = _Writer(partial, sizes)
        limit = count if (count is not None and not src.is_builtin) else None
        done = _write_all(results, writer, source, strict, limit, total, progress)
        if pool is not None:
            pool.terminate()  # every result is in (or --count was reached): stop the workers now
        skipped_files = _listing_skips(src) + writer.skipped_files
        if writer.count == 0:
            raise DataError(_nothing_kept_message(source, skipped_files, max_size))
        meta = _metadata(src, seed, writer, sizes, format, quality, resample, crop, upscale, bg)
        if class_info is not None:
            meta["labels"] = class_metadata(class_info.classes, class_info.origin)
        writer.finish(meta, _manifest(source, writer.count, total, skipped_files))
        _publish(partial, out)
    except BaseException:
        if pool is not None:
            pool.terminate()
        if writer is not None:
            writer.abort()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.join()
    reasons: dict[str, int] = {}
    for entry in skipped_files:
        reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    return PrepareSummary(out=out, source=source, count=writer.count, sizes=sorted(sizes), candidates=done,
                          skipped=reasons, skipped_files=skipped_files, manifest=out / "manifest.json",
                          seconds=time.perf_counter() - start_time, bytes_on_disk=layout.disk_bytes(out),
                          workers=n_workers, image_format=format)


# ----------------------------------------------------------------------------- option checks

def _is_pow2(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _check_options(max_size, min_size, format, quality, resample, crop, workers, count, seed) -> list[int]:
    if not _is_pow2(max_size) or max_size < 4:
        raise UsageError(f"--max-size {max_size} is not a power of two from 4 up; use for example 32, 256 or 1024.")
    if not _is_pow2(min_size) or min_size < 4 or min_size > max_size:
        raise UsageError(f"--min-size {min_size} must be a power of two from 4 to --max-size ({max_size}).")
    if format not in ("png", "jpeg"):
        raise UsageError(f"--format {format!r} is not supported; use png (lossless) or jpeg.")
    if not 1 <= quality <= 100:
        raise UsageError(f"--quality {quality} is out of range; use 1 to 100 (95 is a good JPEG quality).")
    if resample not in ("box", "lanczos"):
        raise UsageError(f"--resample {resample!r} is not supported; use box (official) or lanczos (rosinality).")
    if crop not in ("center", "pad", "none"):
        raise UsageError(f"--crop {crop!r} is not supported; use center, pad or none.")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers} must be 1 or more.")
    if count is not None and count < 1:
        raise UsageError(f"--count {count} must be 1 or more.")
    if seed < 0:
        raise UsageError(f"--seed {seed} must be zero or more.")
    return images.pyramid_sizes(max_size, min_size)


def _looks_like_lmdb(path: Path) -> bool:
    return path.is_dir() and (path / "data.mdb").exists()


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists():
        if not overwrite:
            raise DataError(f"{out} already exists; pass --overwrite to replace it, or choose another output path.")
        if not (_looks_like_lmdb(out) or (out.is_dir() and not any(out.iterdir()))):
            raise DataError(f"{out} exists and is not an LMDB dataset, so --overwrite will not delete it; "
                            f"choose another output path.")
    if out.parent.exists() and not out.parent.is_dir():
        raise DataError(f"{out.parent} is a file, so {out} cannot be created there; choose another output path.")


def _remove_stale(partial: Path) -> None:
    if partial.exists():
        if not (_looks_like_lmdb(partial) or (partial.is_dir() and not any(partial.iterdir()))):
            raise DataError(f"{partial} exists and is not a partial sgan database; move it away and run again.")
        shutil.rmtree(partial)


def _check_nonempty(src: Source) -> None:
    if src.entries:
        return
    if not src.skipped:
        raise DataError(f"{src.spec} holds no files; put images (png, jpg, webp, bmp, tif, gif) in it.")
    raise DataError(f"{src.spec} holds no image files ({len(src.skipped)} files with other extensions, "
                    f"e.g. {src.skipped[0][0]}); sgan reads png, jpg, jpeg, webp, bmp, tif, tiff and gif.")


# ----------------------------------------------------------------------------- workers

_CONFIG: dict[str, Any] = {}


def _init_worker(config: dict[str, Any], ignore_sigint: bool = True) -> None:
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    _CONFIG.clear()
    _CONFIG.update(config)


def _make_pool(n_workers: int, config: dict[str, Any]):
    import multiprocessing as mp

    # fork on Linux (instant start, as torch's DataLoader does; the workers use only numpy, Pillow
    # and lmdb-free code, so threads of the parent do not matter); spawn where fork is unsafe.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return mp.get_context(method).Pool(n_workers, initializer=_init_worker, initargs=(config,))


def _tasks(src: Source, total: int, n_workers: int) -> Iterator[tuple]:
    if src.is_builtin:
        block = max(1, min(64, total // (n_workers * 8) or 1))
        for begin in range(0, total, block):
            yield ("builtin", begin, min(block, total - begin))
    else:
        block = 8 if n_workers > 1 else 1
        for begin in range(0, len(src.entries), block):
            yield ("files", begin, src.entries[begin:begin + block])


def _write_all(results: Iterable[list], writer: "_Writer", source: str, strict: bool, limit: int | None,
               total: int, progress: ProgressFn | None) -> int:
    """Write the workers' results in index order; returns how many candidates were processed."""
    done = 0
    for batch in results:
        for item in batch:
            done += 1
            if item[0] == "ok":
                writer.add(item[2], item[3])
            else:
                _on_skip(writer, item, source, strict)
            if limit is not None and writer.count >= limit:
                break
        if progress is not None:
            progress(done, total)
        if limit is not None and writer.count >= limit:
            break
    return done


def _work(task: tuple) -> list[tuple]:
    """Process one task in a worker: a block of files or of built-in images."""
    cfg = _CONFIG
    sizes = cfg["sizes"]
    out = []
    if task[0] == "builtin" and cfg.get("builtin") == "lfw-faces":
        _, begin, n = task
        faces = lfw_faces(sizes[0])[begin:begin + n]
        return [("ok", f"lfw-{begin + i}", _encode(images.build_pyramid(f, sizes, resample="box"), cfg), None)
                for i, f in enumerate(faces)]
    if task[0] == "builtin" and cfg.get("builtin") == "digits":
        _, begin, n = task
        digits = digits_images(sizes[0], start=begin, count=n)
        return [("ok", f"digits-{begin + i}", _encode(images.build_pyramid(d, sizes, resample="box"), cfg),
                 _class_extra(f"digits-{begin + i}", cfg["labels"])) for i, d in enumerate(digits)]
    if task[0] == "builtin":
        _, begin, n = task
        pixels, attrs = render_shapes(n, seed=cfg["seed"], size=sizes[0], variant=cfg["variant"], start=begin)
        for i in range(n):
            levels = images.build_pyramid(pixels[i], sizes, resample="box")
            names, values = layout.numeric_labels(attrs[i])
            extra = (tuple(names), layout.encode_label(values),
                     json.dumps(attrs[i], separators=(",", ":")).encode("utf-8"))
            out.append(("ok", f"shapes-{begin + i}", _encode(levels, cfg), extra))
        return out
    _, _begin, names = task
    for name in names:
        try:
            data = read_entry(cfg["kind"], cfg["root"], name)
            img = images.load_image(data, background=cfg["background"])
            img = images.square_image(img, cfg["crop"], background=cfg["background"])
            levels = images.build_pyramid(img, sizes, resample=cfg["resample"], upscale=cfg["upscale"])
            out.append(("ok", name, _encode(levels, cfg), _class_extra(name, cfg.get("labels"))))
        except images.SkipImage as skip:
            out.append(("skip", name, skip.reason, skip.detail))
        except MemoryError:
            out.append(("skip", name, images.BOMB, "ran out of memory decoding it"))
        except Exception as err:  # noqa: BLE001 - one odd file must not end a long run; it is recorded
            out.append(("skip", name, images.UNREADABLE, f"{type(err).__name__}: {err}"))
    return out


def _class_extra(name: str, by_name: dict[str, int] | None) -> tuple | None:
    if by_name is None:
        return None
    k = by_name[name]
    return (("class",), layout.encode_label([float(k)]),
            json.dumps({"class": k, "file": name}, separators=(",", ":")).encode("utf-8"))


def _encode(levels: dict[int, Any], cfg: dict[str, Any]) -> dict[int, bytes]:
    return {s: images.encode_image(a, cfg["format"], quality=cfg["quality"]) for s, a in levels.items()}


# ----------------------------------------------------------------------------- writing

class _Writer:
    """Writes records in index order into the partial database, a transaction per few hundred images."""

    def __init__(self, path: Path, sizes: list[int]):
        import lmdb

        self.path = path
        self.sizes = sizes
        self.count = 0
        self.label_names: list[str] | None = None
        self.skipped_files: list[dict] = []
        self.env = lmdb.open(str(path), map_size=MAP_SIZE, subdir=True, readahead=False, meminit=False,
                             map_async=True)
        self.txn = self.env.begin(write=True)
        started = {"pid": os.getpid(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.txn.put(layout.WRITING_KEY, json.dumps(started).encode("utf-8"))
        self._commit()

    def _commit(self) -> None:
        self.txn.commit()
        self.txn = self.env.begin(write=True)

    def add(self, encoded: dict[int, bytes], extra: tuple | None) -> None:
        """Append one image: its encoded levels and, for labelled sources, (label names, label bytes, JSON)."""
        i = self.count
        sums: dict[str, str] = {}

        def put(key: bytes, data: bytes) -> None:
            self.txn.put(key, data)
            sums[key.decode("utf-8")] = layout.record_checksum(data)

        for size, data in encoded.items():
            put(layout.image_key(size, i), data)
        if extra is not None:
            names, label_bytes, attrs_json = extra
            if self.label_names is None:
                self.label_names = list(names)
            elif list(names) != self.label_names:
                raise ValueError(f"image {i}: label names {names} differ from the first image's {self.label_names}")
            put(layout.label_key(i), label_bytes)
            put(layout.attrs_key(i), attrs_json)
        self.txn.put(layout.checksum_key(i), json.dumps(sums, sort_keys=True).encode("utf-8"))
        self.count += 1
        if self.count % IMAGES_PER_TXN == 0:
            self._commit()

    def finish(self, meta: dict[str, Any], manifest: dict[str, Any]) -> None:
        self.txn.put(layout.LENGTH_KEY, str(self.count).encode("utf-8"))
        self.txn.delete(layout.WRITING_KEY)
        self.txn.put(layout.META_KEY, json.dumps(meta).encode("utf-8"))  # last: marks completion
        self.txn.commit()
        self.txn = None
        self.env.sync(True)
        self.env.close()
        self.env = None
        manifest_path = self.path / "manifest.json"
        with open(manifest_path, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())

    def abort(self) -> None:
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        if self.env is not None:
            self.env.close()
            self.env = None


def _on_skip(writer: _Writer, item: tuple, source: str, strict: bool) -> None:
    _, name, reason, detail = item
    if reason == images.NOT_SQUARE:
        raise DataError(f"{name} in {source} is {detail}, not square, and --crop none keeps images as they are; "
                        f"use --crop center or --crop pad.")
    if strict:
        raise DataError(f"{name} in {source}: {reason}{' (' + detail + ')' if detail else ''} (--strict); "
                        f"remove or fix it, or drop --strict to skip it.")
    writer.skipped_files.append({"file": name, "reason": reason, "detail": detail})


def _listing_skips(src: Source) -> list[dict]:
    return [{"file": name, "reason": reason, "detail": ""} for name, reason in src.skipped]


def _nothing_kept_message(source: str, skipped: list[dict], max_size: int) -> str:
    reasons: dict[str, int] = {}
    for entry in skipped:
        reasons[entry["reason"]] = reasons.get(entry["reason"], 0) + 1
    listed = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    hint = (f"; lower --max-size (now {max_size}) or pass --upscale" if images.TOO_SMALL in reasons
            else "; check that the files are images")
    return f"no usable images in {source} ({listed}){hint}."


def _metadata(src: Source, seed: int, writer: _Writer, sizes, format, quality, resample, crop, upscale, bg) -> dict:

    labels = None
    if writer.label_names is not None:
        labels = {"names": writer.label_names, "dim": len(writer.label_names),
                  "xflip": {k: v for k, v in XFLIP_LABELS.items() if k in writer.label_names},
                  "class_field": "shape_id", "classes": list(ALL_SHAPE_CLASSES)}
    meta = {"format": layout.FORMAT_NAME, "format_version": layout.FORMAT_VERSION, "sgan_version": __version__,
            "count": writer.count, "sizes": sorted(sizes), "channels": 3, "image_format": format,
            "quality": quality if format == "jpeg" else None, "resample": resample,
            "crop": None if src.is_builtin else crop, "upscale": upscale, "background": list(bg),
            "source": src.spec, "labels": labels, "checksums": layout.CHECKSUM_ALGO,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if src.builtin == "lfw-faces":
        meta["builtin"] = {"name": "lfw-faces", "origin": "skimage.data.lfw_subset()[:100]"}
    elif src.builtin == "digits":
        meta["builtin"] = {"name": "digits", "origin": "sklearn.datasets.load_digits()",
                           "resize": "8 px (0-16 scaled to 0-255) -> 32 px bicubic, grey as RGB"}
    elif src.is_builtin:
        meta["builtin"] = {"name": "shapes", "variant": src.variant, "seed": seed,
                           "params": VARIANTS[src.variant]}
    return meta


def _manifest(source: str, kept: int, total: int, skipped: list[dict]) -> dict:
    return {"source": source, "kept": kept, "candidates": total, "skipped": skipped}


def _publish(partial: Path, out: Path) -> None:
    """Move the finished database into place, replacing an old one only now that the new one is complete."""
    old = None
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(partial, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
