"""Generate the demo detection dataset: coloured shapes on a noisy background, deliberately imbalanced.

The layout is ultralytics': ``data.yaml`` (``path: .``), ``images/{train,val}/*.jpg``, ``labels/{train,val}/*.txt``.
Four classes with a 20x imbalance in the train split (160 circles, 60 squares, 30 triangles, 8 crosses) so that the
class-weight and per-class-F1 features have something to show; the rare class also appears in val (5 crosses) so its
F1 can be measured. Two train images are pure background (no label file).

Everything comes from one seeded generator and is written in a fixed order, so two runs give byte-identical files
(``tests/test_demo_assets.py`` checks this against the committed ``assets/demo/``).

Usage::

    python assets/make_demo_data.py            # writes assets/demo/
    python assets/make_demo_data.py /tmp/demo  # anywhere else
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

NAMES = ("circle", "square", "triangle", "cross")
TRAIN_COUNTS = (160, 60, 30, 8)  # most common / rarest = 20
VAL_COUNTS = (40, 16, 8, 5)
N_TRAIN, N_VAL = 48, 16
N_BACKGROUND = 2  # train images without objects (no label file)
IMG_SIZE = 128
OBJ_MIN, OBJ_MAX = 20, 40  # px: learnable at imgsz 64-128
JPEG_QUALITY = 85
DEFAULT_OUT = Path(__file__).resolve().parent / "demo"
# One hue per class (with jitter) so a nano model learns them within a couple of minutes on a CPU.
BASE_COLORS = ((220, 60, 50), (50, 90, 220), (40, 170, 70), (230, 200, 40))


def _background(rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(90, 160, size=3)
    ramp = np.linspace(-20, 20, IMG_SIZE)[None, :, None] * rng.choice([-1, 1])
    noise = rng.normal(0, 12, size=(IMG_SIZE, IMG_SIZE, 3))
    return np.clip(base[None, None, :] + ramp + noise, 0, 255).astype(np.uint8)


def _place(rng: np.random.Generator, taken: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """Return a box (x0, y0, x1, y1) that does not overlap the boxes already placed (falls back to overlap)."""
    for _ in range(200):
        size = int(rng.integers(OBJ_MIN, OBJ_MAX + 1))
        x0 = int(rng.integers(0, IMG_SIZE - size))
        y0 = int(rng.integers(0, IMG_SIZE - size))
        box = (x0, y0, x0 + size, y0 + size)
        if all(box[2] <= t[0] or box[0] >= t[2] or box[3] <= t[1] or box[1] >= t[3] for t in taken):
            return box
    return box


def _draw(draw: ImageDraw.ImageDraw, cls: int, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    if cls == 0:
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=color)
    elif cls == 1:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)
    elif cls == 2:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=color)
    else:
        t = (x1 - x0) // 3
        draw.rectangle((x0 + t, y0, x1 - 1 - t, y1 - 1), fill=color)
        draw.rectangle((x0, y0 + t, x1 - 1, y1 - 1 - t), fill=color)


def _split(out: Path, split: str, n_images: int, counts: tuple[int, ...], n_background: int, rng) -> None:
    img_dir, lbl_dir = out / "images" / split, out / "labels" / split
    for d in (img_dir, lbl_dir):
        d.mkdir(parents=True, exist_ok=True)
        for old in sorted(d.glob("*.jpg" if d is img_dir else "*.txt")):
            old.unlink()  # only our own file types: the folder may be a user's
    objects = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    labelled = n_images - n_background
    groups = np.array_split(objects, labelled)
    background = set(rng.choice(n_images, size=n_background, replace=False).tolist())
    g = 0
    for i in range(n_images):
        image = Image.fromarray(_background(rng))
        stem = f"{split}_{i:03d}"
        if i not in background:
            draw = ImageDraw.Draw(image)
            taken: list[tuple[int, int, int, int]] = []
            rows = []
            for cls in groups[g].tolist():
                box = _place(rng, taken)
                taken.append(box)
                jitter = rng.integers(-25, 26, size=3)
                color = tuple(int(c) for c in np.clip(np.array(BASE_COLORS[cls]) + jitter, 0, 255))
                _draw(draw, cls, box, color)
                x0, y0, x1, y1 = box
                cx, cy = (x0 + x1) / 2 / IMG_SIZE, (y0 + y1) / 2 / IMG_SIZE
                w, h = (x1 - x0) / IMG_SIZE, (y1 - y0) / IMG_SIZE
                rows.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
            g += 1
            (lbl_dir / f"{stem}.txt").write_text("".join(rows), encoding="utf-8", newline="\n")
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False)
        (img_dir / f"{stem}.jpg").write_bytes(buf.getvalue())


def generate(out: Path = DEFAULT_OUT, seed: int = 0) -> Path:
    """Write the demo dataset under ``out`` and return its ``data.yaml``.

    Args:
        out: Output folder (created if needed). Existing ``.jpg``/``.txt`` files in its split folders are replaced.
        seed: Seed of the single random generator; the committed dataset uses 0.

    Returns:
        Path of the written ``data.yaml``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    _split(out, "train", N_TRAIN, TRAIN_COUNTS, N_BACKGROUND, rng)
    _split(out, "val", N_VAL, VAL_COUNTS, 0, rng)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(NAMES))
    # ultralytics writes labels/*.cache next to the labels whenever something trains on this folder; keep them out
    # of git so the committed dataset stays exactly what this script generates.
    (out / ".gitignore").write_text("*.cache\n", encoding="utf-8", newline="\n")
    yaml_path = out / "data.yaml"
    yaml_path.write_text(
        f"# Demo dataset generated by assets/make_demo_data.py (seed {seed}); regenerate instead of editing.\n"
        f"# Instances per class, train: {', '.join(f'{n} {c}' for n, c in zip(NAMES, TRAIN_COUNTS, strict=True))}; "
        f"val: {', '.join(f'{n} {c}' for n, c in zip(NAMES, VAL_COUNTS, strict=True))}\n"
        "path: .\ntrain: images/train\nval: images/val\nnames:\n" + names,
        encoding="utf-8",
        newline="\n",
    )
    return yaml_path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description="Generate the imbalanced demo detection dataset.")
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0, help="random seed (the committed dataset uses 0)")
    args = ap.parse_args(argv)
    print(generate(args.out, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
