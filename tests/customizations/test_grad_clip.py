"""grad_clip: the post-clip norm is at most max_norm, 0 disables clipping, telemetry has the pre-clip norm."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import recipe_for, run_trainer, step_rows
from tests.customizations.helpers import events


@pytest.mark.slow
@pytest.mark.parametrize("max_norm", [0.5, 0.0])
def test_post_clip_norm_at_most_max_norm(tiny_data, tmp_path, max_norm):
    post = []

    def wrap_scaler(trainer):
        step = trainer.scaler.step

        def measured(optimizer, *a, **k):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            post.append((float(torch.nn.utils.get_total_norm(grads)), float(trainer.last_grad_norms[0])))
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
