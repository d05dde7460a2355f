"""Per-epoch evidence from the validator's own pass (no second inference): the sample images' ground-truth and
predicted boxes, the confusion matrix counts (ultralytics' ``ConfusionMatrix``, filled by the recorder at
:data:`~trainers.telemetry.evidence.CONFUSION_CONF`; also with ``plots: false``, where ultralytics keeps none), the PR
curves and the confident predictions that overlap no label. Stored by :mod:`trainers.telemetry.evidence` (rank 0 only).

The recorder wraps two methods of the validator instance: ``init_metrics`` (a validation starts: empty the buffers)
and ``update_metrics`` (one batch: stock first, then what the evidence needs from the same predictions). Validation
runs on rank 0 only during training, so the other ranks never build one.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ultralytics.utils import RANK, ops
from ultralytics.utils.metrics import ConfusionMatrix, box_iou

from trainers.datasets.image_headers import read_header
from trainers.telemetry import evidence as store


class EvidenceRecorder:
    """What one validation of the wrapped validator showed, for the tables of :mod:`trainers.telemetry.evidence`."""

    def __init__(self, validator: Any, sample_files: list[str]):
        self.validator = validator
        self.sample = {f: i for i, f in enumerate(sample_files)}
        self.fresh = False  # a validation ran since the last snapshot
        self.confusion: ConfusionMatrix | None = None
        self._boxes: list[np.ndarray] = []  # rows: image, kind, cls, conf, x1, y1, x2, y2
        self._unlabelled: list[tuple[str, np.ndarray]] = []  # (file, rows: cls, conf, x1, y1, x2, y2)
        init_metrics, update_metrics = validator.init_metrics, validator.update_metrics

        def init(model: Any) -> None:
            init_metrics(model)
            self._boxes, self._unlabelled, self.fresh = [], [], True
            # A matrix of our own, not stock's: stock fills its own only with plots on, and at the validation's
            # confidence (0.001 while training), where every class' background cell holds hundreds of faint boxes.
            self.confusion = ConfusionMatrix(names=validator.names)

        def update(preds: list[dict[str, torch.Tensor]], batch: dict[str, Any]) -> None:
            update_metrics(preds, batch)
            self.observe(preds, batch)

        validator.init_metrics, validator.update_metrics = init, update

    def observe(self, preds: list[dict[str, torch.Tensor]], batch: dict[str, Any]) -> None:
        """Take one batch's evidence from the predictions stock validation just scored."""
        v = self.validator
        if not preds or self.confusion is None:
            return
        confident = torch.stack([(p["conf"] >= store.UNLABELLED_CONF).sum() for p in preds]).tolist()  # one sync
        for si, pred in enumerate(preds):
            file = batch["im_file"][si]
            image = self.sample.get(file)
            pbatch = v._prepare_batch(si, batch)
            self.confusion.process_batch(pred, pbatch, conf=store.CONFUSION_CONF)
            if confident[si]:
                self._take_unlabelled(file, pred, pbatch)
            if image is not None:
                self._take_sample(image, pred, pbatch)

    def _take_sample(self, image: int, pred: dict[str, torch.Tensor], pbatch: dict[str, Any]) -> None:
        gt = ops.scale_boxes(
            pbatch["imgsz"], pbatch["bboxes"].clone(), pbatch["ori_shape"], ratio_pad=pbatch["ratio_pad"]
        )
        keep = torch.nonzero(pred["conf"] >= store.PRED_MIN_CONF).flatten()
        keep = keep[pred["conf"][keep].argsort(descending=True)[: store.PRED_PER_IMAGE]]
        kept = {k: pred[k][keep] for k in ("bboxes", "conf", "cls")}
        boxes = self.validator.scale_preds(kept, pbatch)["bboxes"]
        n_gt, n_pred = len(gt), len(keep)
        rows = np.empty((n_gt + n_pred, 8), dtype=np.float32)
        rows[:, 0] = image
        rows[:n_gt, 1], rows[n_gt:, 1] = store.GT, store.PRED
        rows[:n_gt, 2], rows[n_gt:, 2] = pbatch["cls"].cpu().numpy(), kept["cls"].cpu().numpy()
        rows[:n_gt, 3], rows[n_gt:, 3] = 1.0, kept["conf"].cpu().numpy()
        rows[:n_gt, 4:], rows[n_gt:, 4:] = gt.cpu().numpy().reshape(-1, 4), boxes.cpu().numpy().reshape(-1, 4)
        self._boxes.append(rows)

    def _take_unlabelled(self, file: str, pred: dict[str, torch.Tensor], pbatch: dict[str, Any]) -> None:
        mask = pred["conf"] >= store.UNLABELLED_CONF
        boxes = pred["bboxes"][mask]
        if len(pbatch["bboxes"]):
            mask_free = box_iou(boxes, pbatch["bboxes"]).amax(dim=1) < store.UNLABELLED_IOU
        else:
            mask_free = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
        if not bool(mask_free.any()):
            return
        free = {"bboxes": boxes[mask_free], "conf": pred["conf"][mask][mask_free], "cls": pred["cls"][mask][mask_free]}
        xyxy = self.validator.scale_preds(free, pbatch)["bboxes"].cpu().numpy().reshape(-1, 4)
        rows = np.column_stack([free["cls"].cpu().numpy(), free["conf"].cpu().numpy(), xyxy]).astype(np.float32)
        self._unlabelled.append((file, rows))

    def snapshot(self) -> dict[str, dict[str, np.ndarray]]:
        """The tables of the validation that just ended (see ``SCHEMAS``); marks it taken."""
        self.fresh = False
        v = self.validator
        boxes = np.concatenate(self._boxes) if self._boxes else np.zeros((0, 8), dtype=np.float32)
        matrix = np.asarray(self.confusion.matrix if self.confusion is not None else np.zeros((1, 1)))
        pred, true = np.nonzero(matrix)
        tables: dict[str, dict[str, np.ndarray]] = {
            "boxes": {name: boxes[:, i] for i, name in enumerate(store.SCHEMAS["boxes"].names)},
            "confusion": {"pred": pred, "true": true, "count": matrix[pred, true].round().astype(np.int64)},
            "pr": _pr_table(v.metrics.box),
        }
        files = [f for f, rows in self._unlabelled for _ in range(len(rows))]
        rows = np.concatenate([r for _, r in self._unlabelled]) if self._unlabelled else np.zeros((0, 6), np.float32)
        order = np.argsort(-rows[:, 1], kind="stable")[: store.UNLABELLED_KEEP]
        tables["unlabelled"] = {
            "file": np.array([files[i] for i in order], dtype=object),
            **{name: rows[order, i] for i, name in enumerate(("cls", "conf", "x1", "y1", "x2", "y2"))},
        }
        return tables


def _pr_table(box: Any) -> dict[str, np.ndarray]:
    """Each class' precision at :data:`~trainers.telemetry.evidence.PR_POINTS` recall points (IoU 0.5), long form."""
    curves = np.asarray(getattr(box, "prec_values", np.zeros((0, 0))))
    classes = np.asarray(getattr(box, "ap_class_index", []), dtype=np.int64)
    if curves.ndim != 2 or not len(classes) or curves.shape[0] != len(classes):
        return {"cls": np.zeros(0), "recall": np.zeros(0), "precision": np.zeros(0)}
    grid = np.linspace(0, 1, store.PR_POINTS)
    fine = np.linspace(0, 1, curves.shape[1])
    precision = np.stack([np.interp(grid, fine, c) for c in curves])
    return {
        "cls": np.repeat(classes, len(grid)),
        "recall": np.tile(grid, len(classes)),
        "precision": precision.reshape(-1),
    }


class EvidenceMixin:
    """Keeps each validation's evidence in ``<run>/evidence/``; between the telemetry and the customizations.

    Off when the run has no folder (``run_dir`` None) or on other ranks; a failure to record or write is reported
    once on stderr and never stops training.
    """

    run_dir: str | None = None
    _evidence: EvidenceRecorder | None = None
    _evidence_pending: dict[str, dict[str, np.ndarray]] | None = None
    _evidence_failed: bool = False
    _evidence_thread: threading.Thread | None = None
    evidence_bytes: list[int]  # bytes written per validation, for the benchmark

    def get_validator(self):
        validator = super().get_validator()
        self.evidence_bytes = []
        if self.run_dir and RANK in {-1, 0}:
            self._guarded(lambda: self._attach_evidence(validator))
        return validator

    def _attach_evidence(self, validator: Any) -> None:
        dataset = self.test_loader.dataset
        labels = dataset.labels
        files = [lb["im_file"] for lb in labels]
        known = store.read_sample(self.run_dir)
        names = [str(n) for n in self.data["names"].values()]
        if known and all(img["file"] in set(files) for img in known["images"]) and known.get("names") == names:
            sample = [img["file"] for img in known["images"]]  # a resumed run keeps its sample
        else:
            size = self.recipe.evidence.sample
            chosen = store.choose_sample([np.asarray(lb["cls"]).reshape(-1) for lb in labels], size) if size else []
            images = []
            for i in chosen:  # rect validation drops the labels' shapes: the sizes come from the file headers
                size = read_header(files[i])[0] or (0, 0)
                images.append({"file": files[i], "width": int(size[0]), "height": int(size[1])})
            store.write_sample(self.run_dir, images, names)
            sample = [img["file"] for img in images]
        self._evidence = EvidenceRecorder(validator, sample)

    def record_validation(self):
        validation = super().record_validation()
        recorder = self._evidence
        if recorder is not None and recorder.fresh:
            self._evidence_pending = self._guarded(recorder.snapshot)
        return validation

    def on_epoch_logged(self, event: dict[str, Any]) -> None:
        tables, self._evidence_pending = self._evidence_pending, None
        if tables is not None and self.run_dir:
            epoch = store.FINAL if event.get("final_eval") else event["epoch"]
            self.finish_evidence()
            # Written in a helper thread: four small Parquet files and a rename cost ~5 ms here quiet, and over 100 ms
            # on a loaded machine (file creation, the old folder's removal); training need not wait for them. Not a
            # daemon: an exiting interpreter waits for it.
            self._evidence_thread = threading.Thread(
                target=self._write_evidence, args=(epoch, tables), name="evidence-write"
            )
            self._evidence_thread.start()
        super().on_epoch_logged(event)

    def _write_evidence(self, epoch: int | str, tables: dict[str, dict[str, np.ndarray]]) -> None:
        written = self._guarded(lambda: store.write_epoch(self.run_dir, epoch, tables))
        if written is not None:
            self.evidence_bytes.append(written)

    def finish_evidence(self) -> None:
        """Wait for the evidence write in flight (before the next one, and when training ends)."""
        thread, self._evidence_thread = self._evidence_thread, None
        if thread is not None:
            thread.join()

    def _do_train(self):
        try:
            return super()._do_train()
        finally:  # the final evaluation's evidence is on disk before the run is recorded as ended
            self.finish_evidence()

    def _guarded(self, fn):
        """``fn()``; an error disables the evidence (reported once) instead of stopping training."""
        if self._evidence_failed:
            return None
        try:
            return fn()
        except Exception as e:
            self._evidence_failed, self._evidence = True, None
            where = Path(self.run_dir or ".")
            print(f"workbench: evidence disabled ({type(e).__name__}: {e}) in {where}", file=sys.stderr)
            return None
