"""Ultralytics training arguments (the recipe's ``train:`` block), checked by name, type and range without importing
ultralytics: its ``cfg/default.yaml`` and the typed-key sets of ``cfg/__init__.py`` are read as files, so the UI can
validate on every keystroke without torch.

The defaults of these arguments are ultralytics' own; :func:`train_default` reads them from there, so nothing in the
workbench restates them.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

import yaml

# Training arguments the workbench owns: the run directory, the model/data and the freeze schedule.
RESERVED_TRAIN_KEYS = {
    "model": "set the top-level 'model' key",
    "data": "set the top-level 'data' key",
    "project": "the run directory is chosen with --runs-dir/--name",
    "name": "the run directory is chosen with --runs-dir/--name",
    "exist_ok": "runs are never overwritten",
    "save_dir": "the run directory is chosen with --runs-dir/--name",
    "resume": "use 'workbench resume RUN'",
    "mode": "the workbench always trains",
    "freeze": "use the customizations.freeze block (it can also unfreeze later)",
}
MIN_IMGSZ = 32  # ultralytics rounds imgsz to its stride (32); a smaller value trains on nothing useful
# ultralytics 8.4 clips the total gradient norm at this fixed value in BaseTrainer.optimizer_step (no argument sets
# it); tests/customizations/test_grad_clip.py fails when its step and ours part ways.
STOCK_MAX_NORM = 10.0


@functools.lru_cache(maxsize=1)
def ultralytics_arg_types() -> tuple[dict[str, Any], dict[str, set[str]]]:
    """Default training args and ultralytics' own typed-key sets, read from its files (no import, no torch)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return {}, {}
    pkg = Path(next(iter(spec.submodule_search_locations)))
    defaults = yaml.safe_load((pkg / "cfg" / "default.yaml").read_text(encoding="utf-8")) or {}
    kinds: dict[str, set[str]] = {}
    try:
        tree = ast.parse((pkg / "cfg" / "__init__.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name in {"CFG_FLOAT_KEYS", "CFG_FRACTION_KEYS", "CFG_INT_KEYS", "CFG_BOOL_KEYS"}:
                    kinds[name] = {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    except (OSError, SyntaxError):
        pass  # fall back to the types of the default values
    return defaults, kinds


def train_default(key: str) -> Any:
    """ultralytics' default value of training argument ``key`` (``epochs`` -> 100), None if unknown."""
    return ultralytics_arg_types()[0].get(key)


def train_value(train: dict[str, Any], key: str) -> Any:
    """The value a run will use for ``key``: the recipe's, else ultralytics' default."""
    value = train.get(key)
    return train_default(key) if value is None else value


def check_train_args(train: dict[str, Any]) -> dict[str, Any]:
    """Validate ultralytics training arguments by name, type and range, as ultralytics' own check_cfg would.

    Raises:
        ValueError: One message starting with ``train.<key>``.
    """
    defaults, kinds = ultralytics_arg_types()
    for k, v in train.items():
        if not isinstance(k, str):
            raise ValueError(f"key {k!r} must be a string")
        if k in RESERVED_TRAIN_KEYS:
            raise ValueError(f"train.{k} is set by the workbench: {RESERVED_TRAIN_KEYS[k]}")
        if defaults and k not in defaults:
            close = [d for d in defaults if d.startswith(k[:3])][:4]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"train.{k} is not an ultralytics training argument{hint}")
        if v is None:
            continue
        num = isinstance(v, (int, float)) and not isinstance(v, bool)
        if k in kinds.get("CFG_BOOL_KEYS", ()) and not isinstance(v, bool):
            raise ValueError(f"train.{k} must be true or false, got {v!r}")
        if k in kinds.get("CFG_FRACTION_KEYS", ()):
            if not num or not 0.0 <= v <= 1.0:
                raise ValueError(f"train.{k} must be a number between 0.0 and 1.0, got {v!r}")
        elif k in kinds.get("CFG_FLOAT_KEYS", ()) and not num:
            raise ValueError(f"train.{k} must be a number, got {v!r}")
        elif k in kinds.get("CFG_INT_KEYS", ()) and not (isinstance(v, int) and not isinstance(v, bool)):
            raise ValueError(f"train.{k} must be an integer, got {v!r}")
    if "epochs" in train and (not isinstance(train["epochs"], int) or train["epochs"] < 1):
        raise ValueError(f"train.epochs must be an integer >= 1, got {train['epochs']!r}")
    if "imgsz" in train and isinstance(train["imgsz"], int) and train["imgsz"] < MIN_IMGSZ:
        raise ValueError(f"train.imgsz must be >= {MIN_IMGSZ}, got {train['imgsz']}")
    if train.get("task", "detect") != "detect":
        raise ValueError(f"train.task must be 'detect' (the workbench trains detectors), got {train['task']!r}")
    return train
