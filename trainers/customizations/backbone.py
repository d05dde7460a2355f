"""Which layers are the backbone: read from the model's YAML, never hard-coded (shared by freeze and layer_lr).

ultralytics numbers a model's layers ``model.0``, ``model.1``, ... in YAML order, backbone first. The backbone is
``len(model.yaml["backbone"])`` layers long: 11 for yolo26n and yolo11n (a hard-coded 10, as in the guide, leaves
layer 10 in the head), and its own length for RT-DETR.
"""

from __future__ import annotations

from typing import Any


def backbone_length(model: Any) -> int:
    """Number of backbone layers of ``model`` (a DetectionModel, possibly wrapped in DDP/EMA)."""
    from ultralytics.utils.torch_utils import unwrap_model

    return len(unwrap_model(model).yaml["backbone"])


def layer_index(param_name: str) -> int | None:
    """The layer a parameter belongs to (``model.7.conv.weight`` -> 7); None for names outside ``model.<i>``."""
    parts = param_name.split(".")
    return int(parts[1]) if len(parts) > 1 and parts[0] == "model" and parts[1].isdigit() else None


def backbone_param_names(model: Any) -> list[str]:
    """Names of the parameters of layers ``0 .. backbone_length - 1``, in model order."""
    from ultralytics.utils.torch_utils import unwrap_model

    n = backbone_length(model)
    names = []
    for name, _ in unwrap_model(model).named_parameters():
        i = layer_index(name)
        if i is not None and i < n:
            names.append(name)
    return names
