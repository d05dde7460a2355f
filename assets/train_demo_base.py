"""Train the demo base checkpoint ``assets/demo_base.pt``: yolo26n from its YAML on the demo dataset.

Models trained from scratch on the 48-image demo set sit at mAP 0 for 5-20 epochs, so the demo starts from this small
checkpoint instead and shows per-class F1 within minutes. It is a plain ultralytics checkpoint (the stock
``DetectionModel``, optimizer stripped, FP16), so ``ultralytics.YOLO("assets/demo_base.pt")`` loads it anywhere.

Committed result (seed 0, 80 epochs, imgsz 128, batch 8, CPU): mAP50 0.995, mAP50-95 0.885 on the demo val split;
F1 circle 0.88, square 0.97, triangle 0.94, cross 0.93.

Nothing is downloaded: the model is built from ``yolo26n.yaml``, AMP is off (its check downloads weights on a GPU)
and :func:`trainers.offline.apply_offline_env` runs before ultralytics is imported. Training runs on a copy of the
dataset in a temporary folder, with a resolved data YAML of absolute paths (ultralytics would resolve ``path: .``
against the working directory, and would write ``labels/*.cache`` files into the committed dataset).

Usage::

    python assets/train_demo_base.py                  # 80 epochs: 6.5 min measured on a busy 2-core CPU
    python assets/train_demo_base.py --epochs 3 --out /tmp/smoke.pt
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ASSETS = Path(__file__).resolve().parent
sys.path.insert(0, str(ASSETS.parent))  # run as a script from anywhere: make `trainers` importable

from trainers.data_yaml import load_dataset, resolved_data_dict  # noqa: E402
from trainers.offline import apply_offline_env  # noqa: E402


def train(
    data: Path = ASSETS / "demo" / "data.yaml",
    out: Path = ASSETS / "demo_base.pt",
    epochs: int = 80,
    imgsz: int = 128,
    seed: int = 0,
    device: str = "cpu",
    batch: int = 8,
) -> dict:
    """Train the base checkpoint, copy ``best.pt`` to ``out`` and validate it.

    Args:
        data: The demo ``data.yaml``.
        out: Where to write the checkpoint.
        epochs: Training epochs.
        imgsz: Training and validation image size.
        seed: Training seed (``deterministic=True`` as well).
        device: Torch device; ``cpu`` keeps the result reproducible on any machine.
        batch: Batch size; also the nominal batch size, so the optimizer steps every batch.

    Returns:
        ``{"mAP50", "mAP50-95", "f1": {class: f1}, "epochs", "seconds", "size_mb"}`` from validating ``out``.
    """
    apply_offline_env()
    from ultralytics import YOLO  # after apply_offline_env: ultralytics reads the env at import

    with tempfile.TemporaryDirectory(prefix="demo_base_") as tmp:
        tmp_path = Path(tmp)
        copy = tmp_path / "dataset"
        shutil.copytree(Path(data).parent, copy, ignore=shutil.ignore_patterns("*.cache"))
        ds = load_dataset(copy / Path(data).name)
        data_yaml = tmp_path / "data.yaml"
        data_yaml.write_text(yaml.safe_dump(resolved_data_dict(ds), sort_keys=False))

        t0 = time.perf_counter()
        model = YOLO("yolo26n.yaml")  # built from the YAML: random init, no download
        model.train(
            data=str(data_yaml),
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            # ultralytics accumulates gradients up to nbs=64 images: with 48 images that is under one optimizer step
            # per epoch (60 steps in 80 epochs, measured mAP50 0.50 with two classes never found). Step every batch.
            nbs=batch,
            seed=seed,
            deterministic=True,
            device=device,
            amp=False,
            pretrained=False,
            plots=False,
            project=str(tmp_path / "runs"),
            name="demo_base",
            exist_ok=True,
            verbose=False,
        )
        seconds = time.perf_counter() - t0
        best = Path(model.trainer.best)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best, out)  # best.pt is already optimizer-stripped and FP16 after training

        metrics = YOLO(str(out)).val(
            data=str(data_yaml),
            imgsz=imgsz,
            batch=16,
            device=device,
            plots=False,
            project=str(tmp_path / "runs"),
            name="val",
            verbose=False,
        )
    f1 = {name: 0.0 for name in ds.names}  # classes absent from val count as 0, never dropped (facts: trap 9)
    for i, c in enumerate(metrics.ap_class_index.tolist()):
        f1[ds.names[c]] = round(float(metrics.box.f1[i]), 3)
    return {
        "mAP50": round(float(metrics.box.map50), 3),
        "mAP50-95": round(float(metrics.box.map), 3),
        "f1": f1,
        "epochs": epochs,
        "seconds": round(seconds, 1),
        "size_mb": round(out.stat().st_size / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: train, then print the validation figures."""
    ap = argparse.ArgumentParser(description="Train assets/demo_base.pt (yolo26n from YAML on the demo data).")
    ap.add_argument("--data", type=Path, default=ASSETS / "demo" / "data.yaml")
    ap.add_argument("--out", type=Path, default=ASSETS / "demo_base.pt")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--imgsz", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args(argv)
    result = train(args.data, args.out, args.epochs, args.imgsz, args.seed, args.device, args.batch)
    print(f"wrote {args.out}: {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
