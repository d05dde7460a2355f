"""A recipe shown in the New run form (no Streamlit): the doctor's Apply fix and "edit as a new run".

:func:`form_for_recipe` is the inverse of :func:`app.recipe_form.build_recipe`: building the form it returns gives
the recipe back (a training argument the recipe left out is shown at ultralytics' default, which is what training
used), so a run started from it differs from the old one only where the user (or the fix) changed something.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.recipe_form import BUILTIN_MODELS, DEMO_DATA, DEMO_MODEL, FormValues, specs
from trainers.errors import WorkbenchError
from trainers.recipe import Recipe
from trainers.train_args import train_default

# train arguments with a field of their own on the form; the others go to "other arguments" as YAML
OWN_FIELDS = ("epochs", "imgsz", "batch", "optimizer", "lr0", "seed", "patience")


def _same_file(a: str, b: Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == b.resolve()
    except OSError:
        return False


def _model_fields(model: str) -> dict[str, Any]:
    if _same_file(model, DEMO_MODEL):
        return {"model_source": "demo"}
    if model in BUILTIN_MODELS:
        return {"model_source": "builtin", "builtin": model}
    if Path(model).suffix.lower() == ".pt":
        return {"model_source": "local", "model_path": model, "trust_pt": False}  # the user ticks trust again
    raise WorkbenchError(
        f"model: {model!r} cannot be chosen on the New run form (a built-in model or a local .pt); "
        "run it with 'workbench train RECIPE' instead"
    )


def form_for_recipe(recipe: Recipe, **general: Any) -> FormValues:
    """The New run form that builds ``recipe`` (``general`` overrides fields, e.g. ``name``).

    Raises:
        WorkbenchError: The recipe's model is neither a built-in model nor a local ``.pt`` (the form has no field
            for it).
    """
    fields: dict[str, Any] = {**_model_fields(recipe.model)}
    if _same_file(recipe.data, DEMO_DATA):
        fields["data_source"] = "demo"
    else:
        fields.update(data_source="path", data_path=recipe.data)
    train = dict(recipe.train)
    for name in OWN_FIELDS:
        fields[name] = train.pop(name) if name in train else train_default(name)
    device = train.pop("device", None)
    fields["device"] = "auto" if device in (None, "") else str(device)
    fields["extra_train"] = yaml.safe_dump(train, sort_keys=False).strip() if train else ""
    values: dict[str, dict[str, Any]] = {}
    for key, settings in recipe.customizations.items():
        row_values: dict[str, Any] = {}
        for spec in specs(key):
            widget, none = spec.to_widget(getattr(settings, spec.name))
            row_values[spec.name] = widget
            if spec.none_box:
                row_values[f"{spec.name}__none"] = none
        values[key] = row_values
    return FormValues(**{**fields, **general}, customizations=values, enabled=tuple(recipe.customizations))
