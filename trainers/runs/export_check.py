"""Does an exported model predict what its ``.pt`` predicts? The check behind every ``workbench export-model``.

Both models predict, through ultralytics (``YOLO(path).predict``: onnxruntime for ONNX, TorchScript through torch,
OpenVINO through its runtime), on the same images at the same ``imgsz`` with the same square letterbox
(``rect=False``), on the CPU, one image at a time. Per image, the boxes are matched by class and IoU
(:func:`compare`); what is compared, and the tolerance, is :class:`Tolerance` (docs/export-model.md):

- every box of either model with confidence >= ``conf_threshold`` must have a partner in the other model's boxes
  of the same class with IoU >= ``match_iou`` or every coordinate within ``box_px`` (the other model predicts down
  to ``conf_threshold - conf``, so a box whose confidence moved across the threshold by less than the tolerance
  still finds its partner);
- for each such pair, the largest difference of one coordinate (x1, y1, x2, y2, in the original image's pixels)
  must be <= ``box_px`` and the confidence difference <= ``conf``.

:func:`compare` is plain numpy (tested without a model); :func:`predict_boxes` imports ultralytics.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """How close the exported model's boxes must be to the ``.pt``'s (the defaults are the documented ones).

    A float32 export differs from PyTorch by rounding only (measured: below 0.001 px and 0.0001 in confidence on the
    demo, docs/export-model.md), so these bounds are wide for a correct export and narrow for a wrong one: a
    shifted, rescaled or other-weights model moves boxes by pixels.
    """

    box_px: float = 1.0  # largest |difference| of one box coordinate, in pixels of the original image
    conf: float = 0.01  # largest |difference| of a matched box's confidence
    conf_threshold: float = 0.25  # boxes at or above it are compared (ultralytics' predict default)
    match_iou: float = 0.5  # two boxes of the same class with at least this IoU are the same box


@dataclass(frozen=True)
class Boxes:
    """The boxes one model predicted on one image: ``xyxy`` (n, 4) in image pixels, ``conf`` (n,), ``cls`` (n,)."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    @classmethod
    def of(cls, xyxy: Any, conf: Any, classes: Any) -> Boxes:
        return cls(
            np.asarray(xyxy, dtype=np.float64).reshape(-1, 4),
            np.asarray(conf, dtype=np.float64).reshape(-1),
            np.asarray(classes, dtype=np.int64).reshape(-1),
        )


@dataclass
class Comparison:
    """What :func:`compare` found over all images."""

    boxes_compared: int = 0  # matched pairs with either confidence >= the threshold
    missing: int = 0  # boxes of the .pt (>= the threshold) the export has no partner for
    extra: int = 0  # boxes of the export (>= the threshold) the .pt has no partner for
    max_box_diff_px: float = 0.0
    max_conf_diff: float = 0.0
    worst_image: str | None = None  # where the largest coordinate difference (or the first unmatched box) is
    tolerance: Tolerance = field(default_factory=Tolerance)

    @property
    def passed(self) -> bool:
        t = self.tolerance
        return (
            self.missing == 0 and self.extra == 0 and self.max_box_diff_px <= t.box_px and self.max_conf_diff <= t.conf
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), xyxy: an (n, m) array."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match(a: Boxes, b: Boxes, min_iou: float, near_px: float = 0.0) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of a box of ``a`` and one of ``b`` of the same class, greedily by highest IoU (>= min_iou).

    Two boxes whose coordinates all lie within ``near_px`` of each other are a pair too, whatever their IoU: an
    undertrained model predicts boxes with x2 < x1 or of zero width (seen on the demo after one epoch), whose IoU
    with their own copy is 0.
    """
    if not len(a.conf) or not len(b.conf):
        return []
    overlap = iou(a.xyxy, b.xyxy)
    near = np.abs(a.xyxy[:, None, :] - b.xyxy[None, :, :]).max(axis=2) <= near_px
    overlap = np.where(near, np.maximum(overlap, min_iou), overlap)
    overlap[a.cls[:, None] != b.cls[None, :]] = -1.0
    pairs = []
    while True:
        i, j = np.unravel_index(int(np.argmax(overlap)), overlap.shape)
        if overlap[i, j] < min_iou:
            return pairs
        pairs.append((int(i), int(j)))
        overlap[i, :] = -1.0
        overlap[:, j] = -1.0


def compare(
    reference: Sequence[Boxes], exported: Sequence[Boxes], images: Sequence[str], tolerance: Tolerance | None = None
) -> Comparison:
    """Compare the ``.pt``'s boxes (``reference``) with the export's, image by image (see the module docstring).

    Both lists hold the boxes predicted down to ``conf_threshold - conf``; only pairs where either box reaches
    ``conf_threshold``, and unmatched boxes that reach it, count.
    """
    t = tolerance or Tolerance()
    out = Comparison(tolerance=t)
    for ref, exp, image in zip(reference, exported, images, strict=True):
        pairs = match(ref, exp, t.match_iou, t.box_px)
        paired_ref = {i for i, _ in pairs}
        paired_exp = {j for _, j in pairs}
        missing = sum(1 for i, c in enumerate(ref.conf) if c >= t.conf_threshold and i not in paired_ref)
        extra = sum(1 for j, c in enumerate(exp.conf) if c >= t.conf_threshold and j not in paired_exp)
        if (missing or extra) and out.missing == out.extra == 0:
            out.worst_image = image
        out.missing += missing
        out.extra += extra
        for i, j in pairs:
            if max(ref.conf[i], exp.conf[j]) < t.conf_threshold:
                continue
            out.boxes_compared += 1
            box_diff = float(np.abs(ref.xyxy[i] - exp.xyxy[j]).max())
            out.max_conf_diff = max(out.max_conf_diff, float(abs(ref.conf[i] - exp.conf[j])))
            if box_diff > out.max_box_diff_px:
                out.max_box_diff_px = box_diff
                if out.missing == out.extra == 0:
                    out.worst_image = image
    return out


def predict_boxes(model_path: str | os.PathLike[str], images: Sequence[str], imgsz: int, conf: float) -> list[Boxes]:
    """The boxes ``model_path`` (a ``.pt`` or an exported model) predicts on each image, on the CPU (ultralytics)."""
    from ultralytics import YOLO  # an RT-DETR checkpoint or export comes back as ultralytics.RTDETR

    model = YOLO(os.fspath(model_path), task="detect")
    out = []
    for image in images:  # one at a time: an export has a fixed batch of 1
        (result,) = model.predict(image, imgsz=imgsz, conf=conf, rect=False, device="cpu", verbose=False)
        boxes = result.boxes
        out.append(Boxes.of(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy()))
    return out


def verify(
    checkpoint: str | os.PathLike[str],
    exported: str | os.PathLike[str],
    images: Sequence[str],
    imgsz: int,
    tolerance: Tolerance | None = None,
    fmt: str = "",
) -> Comparison:
    """Predict with the ``.pt`` and with its export (of format ``fmt``) on ``images``; compare the boxes
    (:func:`compare`)."""
    t = tolerance or Tolerance()
    low = max(t.conf_threshold - t.conf, 0.001)  # a box that crossed the threshold within tolerance is still found
    reference = predict_boxes(checkpoint, images, imgsz, low)
    with openvino_in_f32() if fmt == "openvino" else contextlib.nullcontext():
        candidate = predict_boxes(exported, images, imgsz, low)
    return compare(reference, candidate, images, t)


@contextlib.contextmanager
def openvino_in_f32() -> Iterator[None]:
    """Compile OpenVINO models in float32 meanwhile, as they were exported.

    OpenVINO's CPU plugin runs a float32 model in bfloat16 on CPUs that have it (avx512_bf16, AMX) unless the
    compile config says otherwise, and ultralytics' OpenVINO backend passes no precision (8.4.190,
    nn/backends/openvino.py); measured here on the demo, that moves confidences by up to 0.018 and boxes by 0.23 px.
    The check is about the exported file, so it runs it at the file's precision; docs/export-model.md says how a
    deployment asks for the same (``INFERENCE_PRECISION_HINT: f32``).
    """
    import openvino as ov

    original = ov.Core.compile_model

    def compile_model(self, model, device_name=None, config=None, **kwargs):
        config = {**(config or {}), "INFERENCE_PRECISION_HINT": ov.Type.f32}
        return original(self, model, device_name, config, **kwargs)

    ov.Core.compile_model = compile_model
    try:
        yield
    finally:
        ov.Core.compile_model = original
