"""What a SOURCE names: a folder (searched recursively), a `.zip`, `builtin:shapes[?variant=NAME]`,
`builtin:lfw-faces` or `builtin:digits`.

`open_source` lists the candidate files in a fixed order (sorted relative paths, so the same
folder always gives the same indices) and sets aside the files that are not images by extension.
`read_entry` returns the bytes of one candidate; it is called in worker processes, each of which
opens a zip archive once.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sgan.data import images
from sgan.data.shapes import VARIANTS, parse_variant_query
from sgan.errors import DataError, UsageError

BUILTIN_PREFIX = "builtin:"
BUILTINS = ("shapes", "lfw-faces", "digits")

# A single archive member or file larger than this is refused unread (a zip bomb, or not a photo).
MAX_FILE_BYTES = 1 << 30


@dataclass
class Source:
    """A resolved SOURCE: its kind, where it is, and the candidate entries in index order."""

    spec: str
    kind: str                      # "folder", "zip" or "builtin"
    path: Path | None = None
    variant: str | None = None     # builtin only
    builtin: str | None = None     # builtin only: "shapes", "lfw-faces" or "digits"
    entries: list[str] = field(default_factory=list)       # candidates (relative names)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason) found while listing

    @property
    def is_builtin(self) -> bool:
        return self.kind == "builtin"


def open_source(spec: str) -> Source:
    """Resolve a SOURCE string; DataError if it does not exist, UsageError if it is malformed."""
    spec = str(spec)
    if spec.startswith(BUILTIN_PREFIX):
        return _builtin(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{spec} does not exist; give a folder of images, a .zip, or builtin:shapes.")
    if path.is_dir():
        return _folder(spec, path)
    if zipfile.is_zipfile(path):
        return _zip(spec, path)
    if path.suffix.lower() == ".zip":
        raise DataError(f"{spec} is not a readable zip archive (damaged or truncated); re-create it or unpack it to a folder.")
    raise DataError(f"{spec} is a file but not a .zip; give the folder that holds your images, or zip them.")


def _builtin(spec: str) -> Source:
    name, _, query = spec[len(BUILTIN_PREFIX):].partition("?")
    if name not in BUILTINS:
        raise UsageError(f"unknown built-in dataset {name!r}; the built-in datasets are: "
                         f"{', '.join(BUILTIN_PREFIX + b for b in BUILTINS)}.")
    if name in ("lfw-faces", "digits"):
        if query:
            raise UsageError(f"{spec}: builtin:{name} takes no options.")
        return Source(spec=spec, kind="builtin", variant=None, builtin=name)
    try:
        variant = parse_variant_query(query)
    except ValueError as err:
        raise UsageError(f"{spec}: {err}.") from None
    assert variant in VARIANTS
    return Source(spec=spec, kind="builtin", variant=variant, builtin=name)


def _folder(spec: str, root: Path) -> Source:
    src = Source(spec=spec, kind="folder", path=root)
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Skip LMDB folders (a database written inside the source folder by an earlier run).
        dirnames[:] = sorted(d for d in dirnames if not os.path.exists(os.path.join(dirpath, d, "data.mdb")))
        for fname in filenames:
            names.append(os.path.relpath(os.path.join(dirpath, fname), root).replace(os.sep, "/"))
    for name in sorted(names):
        _classify(src, name)
    return src


def _zip(spec: str, path: Path) -> Source:
    src = Source(spec=spec, kind="zip", path=path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{spec} cannot be read as a zip archive ({err}); re-create it or unpack it to a folder.") from None
    for info in sorted(infos, key=lambda i: i.filename):
        if info.filename.startswith("__MACOSX/") or os.path.basename(info.filename).startswith("._"):
            src.skipped.append((info.filename, images.UNSUPPORTED))  # macOS resource forks, not images
            continue
        _classify(src, info.filename)
    return src


def _classify(src: Source, name: str) -> None:
    if images.is_image_name(name):
        src.entries.append(name)
    else:
        src.skipped.append((name, images.UNSUPPORTED))


_open_archives: dict[tuple[int, str], zipfile.ZipFile] = {}


def read_entry(kind: str, root: str, name: str) -> bytes:
    """The bytes of one candidate; raises images.SkipImage when it cannot be read."""
    try:
        if kind == "folder":
            full = os.path.join(root, name)
            if os.path.getsize(full) > MAX_FILE_BYTES:
                raise images.SkipImage(images.BOMB, f"larger than {MAX_FILE_BYTES >> 20} MiB")
            with open(full, "rb") as fh:
                return fh.read()
        if kind == "zip":
            key = (os.getpid(), root)
            archive = _open_archives.get(key)
            if archive is None:
                archive = _open_archives[key] = zipfile.ZipFile(root)
            info = archive.getinfo(name)
            if info.file_size > MAX_FILE_BYTES:
                raise images.SkipImage(images.BOMB, f"unpacks to {info.file_size >> 20} MiB")
            return archive.read(info)
    except images.SkipImage:
        raise
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError, KeyError, EOFError) as err:
        # RuntimeError: an encrypted member; BadZipFile: a CRC mismatch or a damaged member.
        raise images.SkipImage(images.UNREADABLE, f"{type(err).__name__}: {err}") from None
    raise ValueError(f"read_entry: unknown source kind {kind!r}")
