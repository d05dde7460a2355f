"""best_metric: best.pt and early stopping follow the chosen metric on its own scale."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import recipe_for, run_trainer
from tests.customizations.helpers import events, results
from trainers.recipe import Recipe


class _StockValidate:
    """Stands in for BaseTrainer.validate: raises best_fitness with the stock (mAP) fitness, as 8.4 does."""

    def __init__(self, per_epoch):
        self.per_epoch, self.epoch, self.best_fitness = per_epoch, 0, None
        self.recipe = Recipe.from_dict(
            {"model": "yolo26n.yaml", "data": "d.yaml", "customizations": {"best_metric": {"metric": "mAP50"}}}
        )

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


@pytest.mark.slow
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
