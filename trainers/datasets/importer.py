"""``workbench import``: a dataset export (a zip, or a folder) becomes ``<datasets dir>/<name>/`` with a ``data.yaml``
the trainer reads, counted split by split.

What it takes: Ultralytics/Roboflow YOLO layouts (a ``data.yaml`` with ``../train/images`` paths, no ``path``, or an
absolute one from another machine; ``names`` as a list or a mapping; see :mod:`~trainers.datasets.yolo_export`) and COCO
JSON (``instances_*.json`` or Roboflow's ``_annotations.coco.json`` beside the images, converted by ultralytics'
``convert_coco``; see :mod:`~trainers.datasets.coco_json`).

Safety, in this order, before anything is written:

1. The archive is a zip, and no entry is absolute or has a ``..`` part: refused whole. ultralytics' ``unzip_file``
   (8.4.190), which then unpacks it, *skips* such entries with a warning and unpacks the rest; we refuse the archive
   instead, so a crafted zip never half-imports.
2. Its uncompressed size fits ``--max-size`` and the free disk of the datasets folder.
3. The name is free (nothing is ever overwritten).

Then it unpacks into a hidden ``.import-<name>-*`` folder inside the datasets folder, normalises or converts there,
deletes ultralytics label caches (``*.cache``: pickles ultralytics would load), validates with
:func:`~trainers.datasets.data_yaml.load_dataset`, counts, and renames the dataset into place at the very end. Any
error removes the hidden folder (and the datasets folder itself when the import created it): nothing is left behind.

Light at import time (the UI imports this module); ultralytics is imported only inside :func:`import_dataset`'s
helpers. The UI runs imports in a ``workbench import`` subprocess.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from trainers.datasets import coco_json, yolo_export
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.datasets_dir import DATA_FILE, datasets_root, default_dataset_name, validate_dataset_name
from trainers.datasets.files import IMAGE_SUFFIXES
from trainers.datasets.summary import SplitSummary, dataset_notes, summarize_split
from trainers.errors import DatasetError

__all__ = [
    "ImportResult",
    "Progress",
    "format_size",
    "import_dataset",
    "parse_size",
    "progress_line",
    "read_progress_line",
]

Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
# ultralytics' unzip_file leaves these out (substring match); the size check counts what it unpacks.
UNZIP_EXCLUDE = (".DS_Store", "__MACOSX")
# Room kept free beyond the unpacked size: the converted labels, the data.yaml, the filesystem's own blocks.
DISK_MARGIN = 1.05
DISK_SLACK = 16 << 20
_POLL_S = 0.25  # how often the unpack progress counts the files written
PROGRESS_PREFIX = "import: "  # 'import:  42% unpacking 120/300 files' on stderr; the UI's upload reads them back
_PROGRESS_RE = re.compile(r"^import: +(\d{1,3})% (.*)$")
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class ImportResult:
    """An imported dataset.

    Attributes:
        name: Its name in the datasets folder.
        folder: ``<datasets dir>/<name>``.
        layout: ``yolo`` or ``coco`` (what the export was).
        names: Class names in id order.
        splits: Split -> its counts, label files without an image and images without a label file.
    """

    name: str
    folder: Path
    layout: str
    names: list[str]
    splits: dict[str, SplitSummary]

    @property
    def data_yaml(self) -> Path:
        return self.folder / DATA_FILE

    def to_dict(self) -> dict:
        """JSON-ready: name, folder, data, layout, names, and per split the counts and the notes."""
        return {
            "name": self.name,
            "folder": str(self.folder),
            "data": str(self.data_yaml),
            "layout": self.layout,
            "names": list(self.names),
            "splits": {s: {**v.counts.to_dict(), "notes": dataset_notes(v)} for s, v in self.splits.items()},
        }

    def text(self) -> str:
        """What ``workbench import`` prints: per split images and boxes, then boxes per class and split."""
        lines = [f"imported {self.name!r} ({self.layout.upper()} export, {len(self.names)} classes): {self.data_yaml}"]
        for split, s in self.splits.items():
            c = s.counts
            lines.append(
                f"  {split}: {c.n_images} images ({c.n_background} background), {sum(c.instances)} boxes"
                + "".join(f"\n    {note}" for note in dataset_notes(s))
            )
        header = ["CLASS", *(f"{s} boxes" for s in self.splits)]
        rows = [[n, *(str(s.counts.instances[i]) for s in self.splits.values())] for i, n in enumerate(self.names)]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
        ]
        return "\n".join(lines)


def progress_line(fraction: float, message: str) -> str:
    """The line ``workbench import`` writes to stderr for a progress report."""
    return f"{PROGRESS_PREFIX}{int(max(0.0, min(fraction, 1.0)) * 100):3d}% {message}"


def read_progress_line(line: str) -> tuple[float, str] | None:
    """(fraction, message) from a :func:`progress_line`, ``None`` for any other line."""
    m = _PROGRESS_RE.match(line.rstrip("\n"))
    return (int(m.group(1)) / 100, m.group(2)) if m else None


def parse_size(text: str) -> int:
    """Bytes from ``500M``, ``2G``, ``1.5GB``, ``300MiB`` or plain bytes (K, M, G, T are powers of 1024).

    Raises:
        ValueError: Not a size (argparse reports it as a usage error).
    """
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    number = raw[: len(raw) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r}; write e.g. 500M, 2G or a number of bytes") from None
    if not value > 0:
        raise ValueError(f"size must be > 0, got {text!r}")
    return int(value * _UNITS[unit])


def format_size(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def import_dataset(
    source: str | os.PathLike[str],
    *,
    datasets_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    max_size: int | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a YOLO or COCO JSON export (a zip or a folder) as ``<datasets dir>/<name>/``.

    Args:
        source: The ``.zip`` file or the dataset folder (a folder is copied, never changed).
        datasets_dir: ``--datasets-dir`` (default ``$WORKBENCH_DATASETS_DIR`` or ``./datasets``).
        name: The dataset name (default: the archive's or folder's name, made safe).
        max_size: Refuse an archive or folder larger than this many bytes unpacked.
        progress: Called with (fraction done, what is happening) as the import goes.

    Returns:
        The imported dataset with its counts.

    Raises:
        DatasetError: One line naming what is wrong (not a zip, an entry outside the archive, too large, name taken,
            no images, no class names, a bad label row, ...). Nothing is left in the datasets folder.
    """
    report = progress or (lambda _f, _m: None)
    src = Path(source).expanduser()
    if not src.exists():
        raise DatasetError(f"{src}: not found; pass a .zip export or a dataset folder")
    root = datasets_root(datasets_dir)
    name = validate_dataset_name(name) if name else default_dataset_name(src)
    target = root / name
    _check_name_free(target, root)
    report(0.0, f"checking {src.name}")
    # `top`: where unzip_file (or the copy) puts what is at the archive's top, so messages can name paths inside it.
    if src.is_dir():
        (files, size), top = _folder_contents(src), src.name
    else:
        files, size, single_top = _zip_contents(src)
        top = "" if single_top else src.stem  # unzip_file unpacks several top entries into a folder named as the zip
    _check_size(src, size, max_size, root)

    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=root))
    try:
        tree = staging / "unpacked"
        unpack = _unpacker(src)  # imports ultralytics (~2 s) before the unpack progress starts counting
        with _counting_files(
            tree, files, lambda k: report(0.05 + 0.5 * k / max(files, 1), f"unpacking {k}/{files} files")
        ):
            unpack(tree)
        report(0.55, "finding the layout")
        folder, layout = _build(tree, staging / "converted", src.name, report)
        for cache in folder.rglob("*.cache"):  # ultralytics np.load()s these with pickles allowed: never trust them
            cache.unlink()
        ds = load_dataset(folder / DATA_FILE)
        splits = {}
        for i, split in enumerate(ds.splits):
            report(0.8 + 0.15 * i / len(ds.splits), f"counting the {split} labels")
            splits[split] = summarize_split(ds, split, require_labels=split == "train")
        _check_name_free(target, root)  # taken while we worked: still never overwrite
        os.rename(folder, target)
    except DatasetError as e:
        _clean(staging, root, created_root)
        raise DatasetError(_readable(str(e), staging, src, top)) from None
    except BaseException:
        _clean(staging, root, created_root)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    report(1.0, f"imported {name}")
    return ImportResult(name=name, folder=target, layout=layout, names=list(ds.names), splits=splits)


# ---- before anything is written --------------------------------------------------------------------------------------
def _check_name_free(target: Path, root: Path) -> None:
    if target.exists():
        raise DatasetError(
            f"dataset {target.name!r} already exists in {root}; pass another --name, or delete {target} first"
        )


def _zip_contents(src: Path) -> tuple[int, int, bool]:
    """(files, uncompressed bytes, whether all is in one top folder) of what ultralytics' unzip_file would unpack;
    refuses unsafe entries."""
    if not zipfile.is_zipfile(src):
        raise DatasetError(
            f"{src.name}: not a zip archive; import a .zip export (YOLO or COCO JSON) or a dataset folder"
        )
    try:
        with zipfile.ZipFile(src) as z:
            infos = [i for i in z.infolist() if not any(x in i.filename for x in UNZIP_EXCLUDE)]
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f"{src.name}: unreadable zip archive ({e}); export it again") from None
    for info in infos:
        entry = info.filename.replace("\\", "/")
        if entry.startswith("/") or ".." in PurePosixPath(entry).parts or (len(entry) > 1 and entry[1] == ":"):
            raise DatasetError(
                f"{src.name}: entry {info.filename!r} points outside the archive's folder (an absolute path or '..'); "
                "refused, nothing written"
            )
        if info.flag_bits & 0x1:
            raise DatasetError(
                f"{src.name}: entry {info.filename!r} is encrypted; export the dataset without a password"
            )
    files = sum(1 for i in infos if not i.is_dir())
    single_top = len({PurePosixPath(i.filename).parts[0] for i in infos}) == 1  # unzip_file's own test
    return files, sum(i.file_size for i in infos), single_top  # declared sizes: zipfile stops reading at them


def _folder_contents(src: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _dirs, names in os.walk(src, followlinks=True):  # copytree follows links too
        for n in names:
            with contextlib.suppress(OSError):
                size += os.stat(os.path.join(folder, n)).st_size
                files += 1
    return files, size


def _check_size(src: Path, size: int, max_size: int | None, root: Path) -> None:
    if max_size is not None and size > max_size:
        raise DatasetError(
            f"{src.name}: unpacks to {format_size(size)}, more than --max-size {format_size(max_size)}; "
            "raise --max-size or import a smaller export"
        )
    existing = next(p for p in (root, *root.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if size * DISK_MARGIN + DISK_SLACK > free:
        raise DatasetError(
            f"{src.name}: unpacks to {format_size(size)} but {existing} has {format_size(free)} free; "
            "free some space or pass another --datasets-dir"
        )


# ---- unpack, then build the dataset folder ---------------------------------------------------------------------------
def _unpacker(src: Path) -> Callable[[Path], None]:
    """The function that unpacks ``src`` into a new folder: a copy for a folder, ultralytics' unzip_file for a zip."""
    if src.is_dir():

        def copy(tree: Path) -> None:
            shutil.copytree(src, tree / src.name)

        return copy
    from trainers.offline import apply_offline_env

    apply_offline_env()  # before ultralytics is imported: no network probe
    from ultralytics.utils.downloads import unzip_file

    def unzip(tree: Path) -> None:
        tree.mkdir()
        # The entries were checked above; unzip_file checks them again (and would skip, not refuse, a bad one).
        unzip_file(src, path=tree, exclude=UNZIP_EXCLUDE, exist_ok=True, progress=False)

    return unzip


@contextlib.contextmanager
def _counting_files(tree: Path, total: int, report: Callable[[int], None]) -> Iterator[None]:
    """Report how many files are under ``tree`` every 0.25 s while the body unpacks (unzip_file has no callback)."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(_POLL_S):
            report(min(sum(len(f) for _d, _s, f in os.walk(tree)), total))

    thread = threading.Thread(target=watch, name="import-progress", daemon=True)
    report(0)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    report(total)


def _build(tree: Path, converted: Path, archive: str, report: Progress) -> tuple[Path, str]:
    """The folder holding the dataset and its normalised data.yaml, and the layout it came in."""
    found = yolo_export.find_data_yaml(tree)
    if found is not None:
        report(0.6, f"normalising {found.name}")
        return yolo_export.normalise(found, tree), "yolo"
    jsons = coco_json.find_coco_files(tree)
    if jsons:
        report(0.6, f"converting {len(jsons)} COCO JSON file{'s' if len(jsons) > 1 else ''}")
        return coco_json.convert(tree, jsons, converted), "coco"
    folder = yolo_export.from_class_list(tree)
    if folder is not None:
        return folder, "yolo"
    raise DatasetError(_what_is_missing(tree, archive))


def _what_is_missing(tree: Path, archive: str) -> str:
    files = [p for p in tree.rglob("*") if p.is_file()]
    image_stems = {p.stem for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    if not image_stems:
        listed = "/".join(sorted(s[1:] for s in IMAGE_SUFFIXES))
        return f"{archive}: no images in it (looked for {listed} files); an export holds images and their labels"
    if any(p.suffix == ".txt" and p.stem in image_stems for p in files):  # a YOLO label file is named as its image
        return (
            f"{archive}: labels without a data.yaml and no class names; add a data.yaml with 'names', 'train' and "
            "'val', or a classes.txt with one class name per line"
        )
    return (
        f"{archive}: images but no labels: no data.yaml, no YOLO .txt label files and no COCO JSON "
        "(instances_*.json or _annotations.coco.json)"
    )


# ---- on error --------------------------------------------------------------------------------------------------------
def _clean(staging: Path, root: Path, created_root: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if created_root:
        with contextlib.suppress(OSError):  # only if still empty: another import may have started there
            root.rmdir()


def _readable(message: str, staging: Path, src: Path, top: str) -> str:
    """Error messages name files inside the hidden import folder; name them inside the archive (or folder) instead."""
    copied = (
        (staging / "unpacked" / top, str(src), os.sep) if src.is_dir() else (staging / "unpacked" / top, src.name, ":")
    )
    for prefix, shown, sep in (copied, (staging / "converted", f"{src.name} (converted)", ":")):
        message = message.replace(str(prefix) + os.sep, shown + sep).replace(str(prefix), shown)
    return message
