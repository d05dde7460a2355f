"""Which parameters are the backbone (trainers/customizations/backbone.py), and the layer_lr groups built from it (no
training).

The expected set is computed here from the model YAML's ``backbone`` list and the modules ``model.model[i]``, not
from ``trainers.customizations.backbone``, so a backbone taken one layer short (or long) fails by name.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from tests.conftest import recipe_for

# Backbone lengths of the YAMLs shipped with ultralytics 8.4 (docs/ultralytics-8.4-facts: a hard-coded 10, as in
# the guide, leaves layer 10 of YOLO26/YOLO11 in the head); a second, independent check next to the YAML count.
MODELS = {"yolo26n.yaml": 11, "yolo11n.yaml": 11, "rtdetr-l.yaml": 10}


def build(cfg: str):
    from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel

    torch.manual_seed(0)
    return (RTDETRDetectionModel if "rtdetr" in cfg else DetectionModel)(cfg, nc=3, verbose=False)


def expected_backbone(cfg: str, model) -> list[str]:
    """Names of the parameters of layers 0 .. len(yaml backbone) - 1, read from the YAML file and the modules."""
    from ultralytics.nn.tasks import yaml_model_load

    n = len(yaml_model_load(cfg)["backbone"])
    assert n == MODELS[cfg]
    assert any(True for _ in model.model[n - 1].parameters()), "the last backbone layer has parameters to miss"
    return [f"model.{i}.{name}" for i in range(n) for name, _ in model.model[i].named_parameters()]


@pytest.mark.parametrize("cfg", list(MODELS))
def test_backbone_param_names_are_exactly_the_yaml_backbone_layers(cfg):
    from trainers.customizations.backbone import backbone_length, backbone_param_names

    model = build(cfg)
    expected = expected_backbone(cfg, model)
    all_names = [name for name, _ in model.named_parameters()]
    assert set(expected) < set(all_names)
    assert backbone_length(model) == MODELS[cfg]
    assert backbone_param_names(model) == expected  # exactly these, in model order
    assert backbone_param_names(torch.nn.DataParallel(model)) == expected  # a wrapped model gives the same names


LAYER_LR_CASES = [
    ("yolo26n.yaml", "AdamW"),
    ("yolo26n.yaml", "MuSGD"),
    ("yolo11n.yaml", "SGD"),
    ("rtdetr-l.yaml", "AdamW"),
]


@pytest.mark.parametrize(("cfg", "optimizer"), LAYER_LR_CASES, ids=[f"{c}-{o}" for c, o in LAYER_LR_CASES])
def test_layer_lr_groups_hold_exactly_the_backbone_and_every_parameter_once(tiny_data, tmp_path, cfg, optimizer):
    from ultralytics.engine.trainer import BaseTrainer

    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

    ratio = 0.25
    recipe = Recipe.from_dict(recipe_for(tiny_data, cfg, layer_lr={"backbone_ratio": ratio}))
    trainer = build_trainer_class(recipe)(
        overrides={**recipe.train, "model": recipe.model, "data": recipe.data, "project": str(tmp_path), "name": "x"}
    )
    model = build(cfg)
    expected = set(expected_backbone(cfg, model))
    for name, p in model.named_parameters():  # frozen, as the freeze customization leaves them: still grouped
        if name in expected:
            p.requires_grad = False
    stock = BaseTrainer.build_optimizer(trainer, model, name=optimizer, lr=0.01, iterations=100)
    optimizer_ = trainer.build_optimizer(model, name=optimizer, lr=0.01, iterations=100)  # the composed MRO

    names = {id(p): name for name, p in model.named_parameters()}
    seen = Counter(id(p) for g in optimizer_.param_groups for p in g["params"])
    assert set(seen) == set(names) and set(seen.values()) == {1}  # every parameter in exactly one group
    in_backbone = {
        names[id(p)] for g in optimizer_.param_groups if g["name"].startswith("backbone/") for p in g["params"]
    }
    in_head = {names[id(p)] for g in optimizer_.param_groups if g["name"].startswith("head/") for p in g["params"]}
    assert in_backbone == expected
    assert in_head == set(names.values()) - expected
    assert all(g["name"].split("/")[0] in {"head", "backbone"} for g in optimizer_.param_groups)

    # each stock group is split into its head part and its backbone part (empty parts dropped), heads first, keeping
    # the stock tag and settings; the backbone part at ratio x the stock lr
    expected_groups = [
        (f"{half}/{s['param_group']}", part, s["lr"] * (ratio if half == "backbone" else 1.0), s)
        for half in ("head", "backbone")
        for s in stock.param_groups
        if (part := [p for p in s["params"] if (names[id(p)] in expected) == (half == "backbone")])
    ]
    assert [g["name"] for g in optimizer_.param_groups] == [e[0] for e in expected_groups]
    for g, (name, part, lr, s) in zip(optimizer_.param_groups, expected_groups, strict=True):
        assert [id(p) for p in g["params"]] == [id(p) for p in part], name
        assert g["lr"] == pytest.approx(lr, rel=1e-12) and g["param_group"] == s["param_group"], name
        assert {k: v for k, v in g.items() if k not in {"params", "lr", "name"}} == {
            k: v for k, v in s.items() if k not in {"params", "lr"}
        }, name
