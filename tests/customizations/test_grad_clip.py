"""grad_clip: off, the trainer clips exactly as stock ultralytics (at 10) step for step; on, the post-clip norm is at
most max_norm and the logged threshold is max_norm; 0 disables clipping; telemetry has the pre-clip norm."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.conftest import recipe_for, run_trainer, step_rows
from tests.customizations.helpers import events

# Total gradient norms the stepping tests set, one per step: well below, just below and just above the stock 10 (so a
# threshold off by one, or by less, changes a step), far above, and zero; the last steps repeat them.
TARGET_NORMS = [5.0, 9.5, 10.5, 30.0, 1e3, 0.5, 9.99, 10.01, 0.0, 50.0, 7.0, 12.0]


def _trainers(tiny_data, tmp_path, **customizations):
    """The composed trainer for a recipe and stock ultralytics' DetectionTrainer, built by their own constructors, each
    given a deep copy of one model and an optimizer built by ultralytics (groups in weight/bn/bias order, which is not
    the model's order), as _setup_train would give them; telemetry off."""
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.nn.tasks import DetectionModel

    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

    recipe = Recipe.from_dict(recipe_for(tiny_data, **customizations))
    torch.manual_seed(0)
    model = DetectionModel("yolo26n.yaml", nc=3, verbose=False)
    overrides = {**recipe.train, "model": recipe.model, "data": str(tiny_data), "project": str(tmp_path)}
    out = []
    for cls in (build_trainer_class(recipe), DetectionTrainer):
        trainer = cls(overrides={**overrides, "name": cls.__name__})
        trainer.model = copy.deepcopy(model)
        trainer.optimizer = trainer.build_optimizer(trainer.model, name="SGD", lr=0.01, momentum=0.9, decay=5e-4)
        trainer.scaler = torch.amp.GradScaler("cpu", enabled=False)
        trainer.ema = None
        out.append(trainer)
    return out


def _set_grads(trainers, norm: float, generator: torch.Generator) -> None:
    """The same random gradients on every trainer's model, scaled to total norm ``norm``."""
    params = [list(t.model.parameters()) for t in trainers]
    grads = [torch.randn(p.shape, generator=generator) for p in params[0]]
    scale = norm / float(torch.nn.utils.get_total_norm(grads))
    for ps in params:
        for p, g in zip(ps, grads, strict=True):
            p.grad = g * scale


def test_off_the_trainer_steps_exactly_as_stock_ultralytics(tiny_data, tmp_path):
    ours, stock = _trainers(tiny_data, tmp_path)
    generator = torch.Generator().manual_seed(1)
    for norm in TARGET_NORMS:
        _set_grads([ours, stock], norm, generator)
        ours.optimizer_step()
        stock.optimizer_step()
        for (name, a), b in zip(ours.model.named_parameters(), stock.model.parameters(), strict=True):
            assert torch.equal(a, b), f"{name} differs after the step at norm {norm}"
        assert ours.last_grad_norms.max_norm == 10.0  # logged as stock's threshold: "stock (clips at 10)"
        assert float(ours.last_grad_norms.total) == pytest.approx(norm, rel=1e-5)  # measured before clipping


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 0.0])
def test_on_every_step_is_clipped_at_max_norm(tiny_data, tmp_path, max_norm):
    ours, _ = _trainers(tiny_data, tmp_path, grad_clip={"max_norm": max_norm})
    generator = torch.Generator().manual_seed(2)
    post = []

    def measured(optimizer, *a, **k):  # the gradients the optimizer steps with
        post.append(float(torch.nn.utils.get_total_norm([p.grad for p in ours.model.parameters()])))
        return optimizer.step(*a, **k)

    ours.scaler.step = measured
    for norm in TARGET_NORMS:
        _set_grads([ours], norm, generator)
        ours.optimizer_step()
        assert ours.last_grad_norms.max_norm == max_norm
        assert float(ours.last_grad_norms.total) == pytest.approx(norm, rel=1e-5)
        if max_norm > 0:
            assert post[-1] <= max_norm * (1 + 1e-5) and post[-1] == pytest.approx(min(norm, max_norm), rel=1e-4)
        else:
            assert post[-1] == pytest.approx(norm, rel=1e-5)  # 0: not clipped


@pytest.mark.slow
@pytest.mark.parametrize("max_norm", [0.5, 0.0])
def test_post_clip_norm_at_most_max_norm(tiny_data, tmp_path, max_norm):
    post = []

    def wrap_scaler(trainer):
        step = trainer.scaler.step

        def measured(optimizer, *a, **k):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            post.append((float(torch.nn.utils.get_total_norm(grads)), float(trainer.last_grad_norms.total)))
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
    steps = step_rows(tmp_path)
    assert [s["grad_norm"] for s in steps] == pytest.approx([b for _, b in post], rel=1e-6)
    assert all(s["clipped"] is (max_norm > 0) for s in steps)
    assert all(s["max_norm"] == (max_norm or None) for s in steps)  # the threshold it clipped at, null for none
    assert all(set(s["grad_norms"]) == {"weight", "bn", "bias"} for s in steps)


@pytest.fixture
def max_norm_default():
    """Change GradClip's default in the settings model (its one home) for one test, then put it back."""
    from trainers.customizations.grad_clip import GradClip

    field = GradClip.model_fields["max_norm"]
    original = field.default

    def set_default(value: float) -> None:
        field.default = value
        GradClip.model_rebuild(force=True)

    yield set_default
    set_default(original)


@pytest.mark.slow
def test_a_default_changed_in_the_settings_model_acts_in_training(tiny_data, tmp_path, max_norm_default):
    max_norm_default(0.25)
    run_trainer(recipe_for(tiny_data, train={"epochs": 1}, grad_clip={}), tmp_path)  # the block without settings
    steps = step_rows(tmp_path)
    assert steps and all(s["max_norm"] == 0.25 and s["clipped"] for s in steps)
    start = events(tmp_path, "run_start")[0]
    assert start["recipe"]["customizations"]["grad_clip"] == {"max_norm": 0.25}
