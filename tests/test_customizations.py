"""Effect tests, one or more per customization, on real tiny training (imgsz 64, nbs == batch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import recipe_for, run_trainer

pytestmark = pytest.mark.slow


def events(tmp_path: Path, kind: str | None = None) -> list[dict]:
    lines = (tmp_path / "telemetry.jsonl").read_text().splitlines()
    evs = [json.loads(x) for x in lines]
    return [e for e in evs if kind is None or e["event"] == kind]


def results(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "run" / "results.csv") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


# ---- 1. per-class F1 -----------------------------------------------------------------------------------------------
class _StubBox:
    def __init__(self, p, r, idx):
        self.p, self.r = np.array(p), np.array(r)
        self.f1 = 2 * self.p * self.r / (self.p + self.r + 1e-16)
        self.ap50, self.ap, self.ap_class_index = self.p * 0.9, self.p * 0.5, np.array(idx)


def test_per_class_table_keeps_zero_and_absent_classes():
    from trainers.metrics import mean_f1, per_class_table

    validator = type(
        "V", (), {"metrics": type("M", (), {"box": _StubBox([0.9, 0.0, 0.6], [0.9, 0.0, 0.6], [0, 2, 3])})}
    )
    table = per_class_table(validator, ["a", "b", "c", "d"])
    assert [r["name"] for r in table] == ["a", "b", "c", "d"]
    assert [r["present"] for r in table] == [True, False, True, True]
    assert table[1]["f1"] == 0.0 and table[2]["f1"] == 0.0
    # zero-F1 class c counts; absent class b has no F1 at all: (0.9 + 0 + 0.6) / 3, not the guide's 0.75
    assert mean_f1(table) == pytest.approx(0.5)


def test_per_class_f1_matches_validator_and_lands_in_results_csv(demo, tmp_path):
    seen = {}

    def grab(trainer):
        box = trainer.validator.metrics.box
        seen[trainer.epoch] = (np.array(box.p), np.array(box.r), np.array(box.f1), list(box.ap_class_index))

    # fine-tune the demo base checkpoint so that P/R/F1 are non-zero and differ per class
    data, base = demo
    r = recipe_for(data, str(base), train={"epochs": 3, "imgsz": 128, "batch": 16, "nbs": 16}, per_class_f1={})
    trainer = run_trainer(r, tmp_path, {"on_fit_epoch_end": grab})
    names = list(trainer.data["names"].values())
    epoch_events = [e for e in events(tmp_path, "epoch") if not e["final_eval"]]
    rows = results(tmp_path)
    assert len(epoch_events) == 3 and "metrics/F1(B)" in rows[0]
    for ev, row in zip(epoch_events, rows, strict=True):
        p, rr, f1, idx = seen[ev["epoch"] - 1]
        assert [c["name"] for c in ev["per_class"]] == names  # every class, in id order
        for c in ev["per_class"]:
            if c["present"]:
                j = idx.index(c["id"])
                assert c["f1"] == pytest.approx(f1[j], abs=1e-9)
                assert c["f1"] == pytest.approx(2 * p[j] * rr[j] / (p[j] + rr[j]) if p[j] + rr[j] else 0.0, abs=1e-6)
            else:
                assert c["f1"] == 0.0
        present = [c["f1"] for c in ev["per_class"] if c["present"]]
        assert row["metrics/F1(B)"] == pytest.approx(np.mean(present), abs=1e-5)  # results.csv rounds to 6 digits
        assert ev["mean_f1"] == pytest.approx(np.mean(present), abs=1e-9)
    assert max(c["f1"] for c in epoch_events[0]["per_class"]) > 0.1  # real, non-zero F1 was checked
    final = [e for e in events(tmp_path, "epoch") if e["final_eval"]]
    assert len(final) == 1 and [c["name"] for c in final[0]["per_class"]] == names
    assert trainer.wb_per_class == epoch_events[-1]["per_class"]


# ---- 2. class weights ----------------------------------------------------------------------------------------------
class _FirstBatch(Exception):
    pass


def first_batch_losses(recipe: dict, tmp_path: Path) -> dict[str, float]:
    """Loss items of the very first training batch (same seed, same init, same batch for every recipe)."""
    out = {}

    def grab(trainer):
        out.update({k: float(v) for k, v in trainer.loss_items.items()})
        raise _FirstBatch

    with pytest.raises(_FirstBatch):
        run_trainer(recipe, tmp_path, {"on_train_batch_end": grab})
    return out


@pytest.mark.parametrize(
    ("model", "cls_key"),
    [("yolo26n.yaml", "cls_loss"), ("yolo11n.yaml", "cls_loss"), ("rtdetr-l.yaml", "cls_loss")],
)
def test_class_weights_scale_classification_loss(tiny_data, tmp_path, model, cls_key):
    train = {"batch": 4, "nbs": 4} if "rtdetr" in model else {}
    stock = first_batch_losses(recipe_for(tiny_data, model, train), tmp_path / "stock")
    ones = first_batch_losses(
        recipe_for(tiny_data, model, train, class_weights={"weights": [1, 1, 1]}), tmp_path / "ones"
    )
    double = first_batch_losses(
        recipe_for(tiny_data, model, train, class_weights={"weights": [2, 2, 2]}), tmp_path / "x2"
    )
    assert ones == stock  # all-ones weights reproduce the stock loss exactly (bit for bit)
    assert double[cls_key] == pytest.approx(2 * stock[cls_key], rel=1e-5)
    for k in stock:
        if k != cls_key:
            assert double[k] == stock[k], k  # box/l1/giou/dfl terms untouched
    assert stock[cls_key] > 0


def test_class_weights_from_counts_are_set_on_model_and_checkpoint(tiny_data, tmp_path):
    from trainers.weights import compute_weights

    r = recipe_for(tiny_data, class_weights={"scheme": "inverse_frequency", "normalize": "mean"})
    trainer = run_trainer(r, tmp_path)
    counts = [int(c) for c in trainer.get_class_counts()]
    expected = compute_weights(counts, "inverse_frequency", normalize="mean")
    assert trainer.wb_class_weights == pytest.approx(expected)
    ckpt = torch.load(tmp_path / "run" / "weights" / "last.pt", weights_only=False)
    assert ckpt["model"].class_weights.float().cpu().tolist() == pytest.approx(
        expected, rel=1e-3
    )  # stripped: model=EMA
    start = events(tmp_path, "run_start")[0]
    assert start["class_weights"] == pytest.approx(expected)


# ---- 3. best metric ------------------------------------------------------------------------------------------------
class _StockValidate:
    """Stands in for BaseTrainer.validate: raises best_fitness with the stock (mAP) fitness, as 8.4 does."""

    def __init__(self, per_epoch):
        self.per_epoch, self.epoch, self.best_fitness = per_epoch, 0, None
        self.wb_recipe = {"customizations": {"best_metric": {"metric": "mAP50", "mode": None}}}

    def wb_cfg(self, name):
        return self.wb_recipe["customizations"].get(name)

    def validate(self):
        metrics = dict(self.per_epoch[self.epoch])
        fitness = metrics.pop("fitness")
        if self.best_fitness is None or self.best_fitness < fitness:
            self.best_fitness = fitness
        return metrics, fitness


def test_best_metric_compares_on_its_own_scale_not_after_parent_raised_it():
    from trainers.customizations.best_metric import BestMetricMixin

    # mAP50 sits below the stock fitness here; the guide's recipe would never save best.pt after epoch 0.
    per_epoch = [
        {"fitness": 0.50, "metrics/mAP50(B)": 0.30},
        {"fitness": 0.60, "metrics/mAP50(B)": 0.40},
        {"fitness": 0.70, "metrics/mAP50(B)": 0.35},
    ]
    trainer = type("T", (BestMetricMixin, _StockValidate), {})(per_epoch)
    saved = []
    for epoch in range(3):
        trainer.epoch = epoch
        _, fitness = trainer.validate()
        saved.append(trainer.best_fitness == fitness)  # ultralytics' save_model condition for best.pt
    assert saved == [True, True, False]
    assert trainer.best_fitness == 0.40


@pytest.mark.parametrize(
    ("metric", "key", "sign"), [("val/cls_loss", "val/cls_loss", -1), ("recall", "metrics/recall(B)", 1)]
)
def test_best_pt_holds_best_epoch_of_chosen_metric(demo, tmp_path, metric, key, sign):
    data, base = demo  # fine-tuning moves every metric, so the best epoch is not a tie at 0
    r = recipe_for(
        data,
        str(base),
        train={
            "epochs": 4,
            "imgsz": 128,
            "batch": 16,
            "nbs": 16,
            "optimizer": "AdamW",
            "lr0": 0.002,
            "warmup_epochs": 0,
            "save_period": 1,
        },
        best_metric={"metric": metric},
    )
    trainer = run_trainer(r, tmp_path)
    rows = results(tmp_path)
    scores = [sign * row[key] for row in rows]
    # ultralytics writes best.pt whenever fitness == best_fitness, so on a tie the later epoch is kept
    expected = max(i for i, v in enumerate(scores) if v == max(scores))
    weights = tmp_path / "run" / "weights"
    best = torch.load(weights / "best.pt", weights_only=False)  # stripped after training: epoch is reset to -1,
    snap = torch.load(weights / f"epoch{expected}.pt", weights_only=False)  # so compare the weights themselves
    best_sd, snap_sd = best["model"].state_dict(), snap["ema"].state_dict()
    assert all(torch.equal(best_sd[k], snap_sd[k]) for k in best_sd), (scores, expected)
    assert best["train_metrics"][key] == pytest.approx(rows[expected][key], rel=1e-5, abs=1e-5)  # csv: 6 digits
    if scores.count(max(scores)) == 1:
        assert trainer.stopper.best_epoch == expected + 1  # early stopping follows the same metric
    assert trainer.best_fitness == pytest.approx(max(scores), rel=1e-5, abs=1e-5)
    bests = [e for e in events(tmp_path, "epoch") if e["best_saved"]]
    assert bests[-1]["epoch"] == expected + 1 and bests[-1]["best_metric"]["name"] == metric


# ---- 4. freeze / unfreeze ------------------------------------------------------------------------------------------
def snapshot(trainer, layers: range) -> dict[str, torch.Tensor]:
    from ultralytics.utils.torch_utils import unwrap_model

    prefixes = tuple(f"model.{i}." for i in layers)
    sd = unwrap_model(trainer.model).state_dict()
    return {k: v.detach().clone() for k, v in sd.items() if k.startswith(prefixes) and v.dtype.is_floating_point}


def changed(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("layer_lr", [False, True])
def test_backbone_frozen_bit_identical_then_trains_after_unfreeze(tiny_data, tmp_path, layer_lr):
    backbone = range(11)  # yolo26n: len(model.yaml['backbone']) == 11
    snaps = {}
    extra = {"layer_lr": {"backbone_ratio": 0.5}} if layer_lr else {}
    r = recipe_for(
        tiny_data, train={"epochs": 3, "warmup_epochs": 0}, freeze={"layers": "backbone", "frozen_epochs": 2}, **extra
    )
    cb = {
        "on_train_start": lambda t: snaps.__setitem__("start", snapshot(t, backbone)),
        "on_train_epoch_end": lambda t: snaps.__setitem__(t.epoch, snapshot(t, backbone)),
    }
    trainer = run_trainer(r, tmp_path, cb)
    assert not changed(snaps["start"], snaps[0]) and not changed(snaps["start"], snaps[1])  # frozen: bit-identical
    assert changed(snaps[1], snaps[2])  # unfrozen at the start of epoch 3: trains
    head = snapshot(trainer, range(11, 24))
    assert head  # the head trained all along (sanity: it is not empty)
    ev = events(tmp_path)
    assert [e["event"] for e in ev if e["event"] in {"freeze", "unfreeze"}] == ["freeze", "unfreeze"]
    unfreeze = next(e for e in ev if e["event"] == "unfreeze")
    assert unfreeze["epoch"] == 3 and unfreeze["layers"] == list(backbone)
    frozen_params = [e["params"]["frozen"] for e in ev if e["event"] == "epoch" and not e["final_eval"]]
    assert frozen_params[0] > 0 and frozen_params[1] == frozen_params[0] and frozen_params[2] == 0


def test_dfl_stays_frozen_on_yolo11_after_unfreeze(tiny_data, tmp_path):
    r = recipe_for(tiny_data, "yolo11n.yaml", train={"epochs": 2}, freeze={"layers": 3, "frozen_epochs": 1})
    trainer = run_trainer(r, tmp_path)
    params = dict(trainer.model.named_parameters())
    dfl = [n for n in params if ".dfl" in n]
    assert dfl and all(not params[n].requires_grad for n in dfl)
    assert all(params[n].requires_grad for n in params if n.startswith(("model.0.", "model.1.", "model.2.")))


class _Stop(Exception):
    pass


def test_unfreeze_happens_when_resuming_past_the_unfreeze_epoch(tiny_data, tmp_path):
    from trainers.compose import build_trainer_class
    from trainers.recipe import Recipe

    r = recipe_for(
        tiny_data,
        train={"epochs": 4, "warmup_epochs": 0},
        freeze={"layers": "backbone", "frozen_epochs": 1},
        layer_lr={"backbone_ratio": 0.5},
    )

    def stop_before_epoch_3(trainer):
        if trainer.epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        run_trainer(r, tmp_path, {"on_train_epoch_start": stop_before_epoch_3})
    last = tmp_path / "run" / "weights" / "last.pt"
    assert torch.load(last, weights_only=False)["epoch"] == 1  # epochs 1 and 2 finished

    recipe = Recipe.from_dict(r)
    cls = build_trainer_class(recipe, telemetry_path=str(tmp_path / "telemetry.jsonl"))
    trainer = cls(
        overrides={
            **recipe.train,
            "model": str(last),
            "data": recipe.data,
            "resume": str(last),
            "project": str(tmp_path),
            "name": "run",
            "exist_ok": True,
        }
    )
    snaps = {}
    trainer.add_callback("on_train_start", lambda t: snaps.__setitem__("start", snapshot(t, range(11))))
    trainer.add_callback("on_train_epoch_end", lambda t: snaps.__setitem__(t.epoch, snapshot(t, range(11))))
    trainer.train()
    assert trainer.start_epoch == 2
    assert changed(snaps["start"], snaps[2])  # resumed at epoch 3 > unfreeze epoch: backbone trains
    assert all(p.requires_grad for n, p in trainer.model.named_parameters())
    epochs = [e["epoch"] for e in events(tmp_path, "epoch") if not e["final_eval"]]
    assert epochs == [1, 2, 3, 4]


# ---- 5. per-layer learning rate ------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["auto", "SGD", "AdamW"])
def test_backbone_lr_is_ratio_of_head_lr_every_step_after_warmup(tiny_data, tmp_path, optimizer):
    ratio = 0.25
    r = recipe_for(
        tiny_data,
        train={"epochs": 3, "warmup_epochs": 1, "optimizer": optimizer, "lr0": 0.01},
        layer_lr={"backbone_ratio": ratio},
        freeze={"layers": "backbone", "frozen_epochs": 1},
    )
    trainer = run_trainer(r, tmp_path)
    groups = trainer.optimizer.param_groups
    names = [g["name"] for g in groups]
    assert names == ["head/weight", "head/bn", "head/bias", "backbone/weight", "backbone/bn", "backbone/bias"]
    assert [g["param_group"] for g in groups] == ["weight", "bn", "bias"] * 2  # stock tags kept for warmup
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(trainer.model.parameters()))  # frozen ones included
    steps = events(tmp_path, "step")
    nb = len(trainer.train_loader)
    after_warmup = [s for s in steps if s["step"] > nb]  # warmup_epochs=1 -> the first nb steps
    assert len(after_warmup) == 2 * nb
    for s in after_warmup:
        for kind in ("weight", "bn", "bias"):
            assert s["lr"][f"backbone/{kind}"] == pytest.approx(ratio * s["lr"][f"head/{kind}"], rel=1e-12)
    assert {s["epoch"] for s in steps} == {1, 2, 3}


# ---- 6. SyncBatchNorm ----------------------------------------------------------------------------------------------
def _setup_model(trainer):
    """Build the model the way _setup_train does up to set_model_attributes."""
    trainer.setup_model()
    trainer.model = trainer.model.to(trainer.device)


@pytest.mark.parametrize("world_size", [0, 1, 2, 4])
def test_sync_bn_conversion_exactly_when_world_size_above_one(tiny_data, tmp_path, world_size):
    from torch import nn

    from trainers.compose import build_trainer_class
    from trainers.recipe import Recipe

    r = Recipe.from_dict(
        recipe_for(tiny_data, train={"epochs": 3}, sync_bn={}, freeze={"layers": "backbone", "frozen_epochs": 1})
    )
    trainer = build_trainer_class(r)(
        overrides={**r.train, "model": r.model, "data": r.data, "project": str(tmp_path), "name": "run"}
    )
    _setup_model(trainer)
    trainer.world_size = world_size  # simulated: the conversion and the BN modes do not need real ranks
    trainer.set_model_attributes()
    sync = [m for m in trainer.model.modules() if isinstance(m, nn.SyncBatchNorm)]
    plain = [m for m in trainer.model.modules() if type(m) is nn.BatchNorm2d]
    if world_size > 1:
        assert sync and not plain
        trainer.freeze_layer_names = [f"model.{i}." for i in range(11)] + [".dfl"]
        trainer.epoch = 0
        trainer._model_train()
        for name, m in trainer.model.named_modules():
            if isinstance(m, nn.SyncBatchNorm):
                frozen = any(name.startswith(f"model.{i}.") for i in range(11))
                assert m.training is (not frozen), name  # frozen SyncBN in eval, the rest training
    else:
        assert not sync and plain


# ---- 7. gradient clipping ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [0.5, 0.0])
def test_post_clip_norm_at_most_max_norm(tiny_data, tmp_path, max_norm):
    post = []

    def wrap_scaler(trainer):
        step = trainer.scaler.step

        def measured(optimizer, *a, **k):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            post.append((float(torch.nn.utils.get_total_norm(grads)), float(trainer.wb_last_grad[0])))
            return step(optimizer, *a, **k)

        trainer.scaler.step = measured

    r = recipe_for(tiny_data, train={"epochs": 2}, grad_clip={"max_norm": max_norm})
    run_trainer(r, tmp_path, {"on_train_start": wrap_scaler})
    assert len(post) == 2 * 2  # 16 images / batch 8, 2 epochs, one step per batch
    for after, before in post:
        if max_norm > 0:
            assert before > max_norm  # YOLO's batch-scaled loss gives norms far above 0.5: every step clips
            assert after <= max_norm * (1 + 1e-5)
        else:
            assert after == pytest.approx(before, rel=1e-5)  # 0 disables clipping
    steps = events(tmp_path, "step")
    assert [s["grad_norm"] for s in steps] == pytest.approx([b for _, b in post], rel=1e-6)
    assert all(s["clipped"] is (max_norm > 0) for s in steps)
    assert all(set(s["grad_norms"]) == {"weight", "bn", "bias"} for s in steps)


# ---- checkpoints are written atomically -------------------------------------------------------------------------
def test_failed_checkpoint_write_keeps_the_previous_epochs_last_pt(tiny_data, tmp_path, monkeypatch):
    import errno
    import pathlib

    real_write = pathlib.Path.write_bytes
    writes = []

    def full_disk_on_epoch_2(self, data):
        writes.append(self.name)
        if len(writes) > 2:  # epoch 1 writes last + best; the next write dies half-way like a full disk
            real_write(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk_on_epoch_2)
    with pytest.raises(OSError, match="No space left"):
        run_trainer(recipe_for(tiny_data, train={"epochs": 3}), tmp_path)
    monkeypatch.undo()
    weights = tmp_path / "run" / "weights"
    assert writes[:2] == [".last.pt.partial", ".best.pt.partial"]  # never written in place
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]  # no partial file left behind
    ckpt = torch.load(weights / "last.pt", weights_only=False)
    assert ckpt["epoch"] == 0  # epoch 1's checkpoint, intact
    from ultralytics import YOLO

    assert YOLO(str(weights / "last.pt")).model.names == {0: "disc", 1: "block", 2: "ring"}
