"""A recipe's dotted keys: read one, set some (a new recipe, validated), list the leaves, diff recipes.

A recipe's dotted keys are its leaves: ``model``, ``data``, ``train.lr0``, ``customizations.grad_clip.max_norm``. A
customization without settings (``per_class_f1: {}``) is one leaf whose value is ``{}``, so turning it on or off is
a change of one key too. Sweep grids (:mod:`trainers.sweeps.sweep_file`), the doctor's fixes
(:func:`trainers.doctor.fixes.apply_fix`) and run comparison (:mod:`trainers.runs.compare`) all speak of recipes
through this module.

Setting a key means what a sweep grid or a fix means by it: ``train.<argument>: null`` removes the argument
(ultralytics' default), ``customizations.<block>: false`` turns the block off, and a setting of a block that is off
turns the block on with its other settings at their defaults. Nothing here imports torch.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, overload

from trainers.recipe.model import Recipe
from trainers.train_args import train_default

_MISSING: Any = object()
SECTIONS = ("train", "customizations")  # the recipe's mappings of settings (model and data are leaves)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr0": 0.1}}`` -> ``{"train.lr0": 0.1}``; lists and empty mappings are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def leaves(recipe: Recipe | Mapping[str, Any]) -> dict[str, Any]:
    """A recipe's dotted leaves as written: :func:`flatten`, without an empty ``train`` / ``customizations`` section
    (no argument set and no customization on are no setting at all)."""
    data = recipe.to_dict() if isinstance(recipe, Recipe) else recipe
    return {k: v for k, v in flatten(data).items() if not (k in SECTIONS and v == {})}


def get(recipe: Recipe | Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted ``key`` (a leaf or a whole block), or ``default`` when the recipe does not set it."""
    node: Any = recipe.to_dict() if isinstance(recipe, Recipe) else recipe
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return copy.deepcopy(node)


def _removes(parts: list[str], value: Any) -> bool:
    """Whether setting ``parts`` to ``value`` takes the key out: a training argument back to ultralytics' default
    (None), or a customization block turned off (False)."""
    return len(parts) == 2 and (
        (parts[0] == "train" and value is None) or (parts[0] == "customizations" and value is False)
    )


def put(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set dotted ``key`` to (a copy of) ``value`` in the recipe dict ``data``, creating the mappings on the way (a
    customization block that was off is turned on with its other settings at their defaults). Returns ``data``.

    ``train.<argument>`` None and ``customizations.<block>`` False remove the key (see the module docstring).
    """
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if _removes(parts, value):
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)
    return data


@overload
def changed(recipe: Recipe, values: Mapping[str, Any], source: str = ...) -> Recipe: ...
@overload
def changed(recipe: Mapping[str, Any], values: Mapping[str, Any], source: str = ...) -> dict[str, Any]: ...
def changed(recipe: Recipe | Mapping[str, Any], values: Mapping[str, Any], source: str = "recipe") -> Any:
    """``recipe`` with each dotted key of ``values`` set (:func:`put`, in order); the input is left as it is.

    A :class:`Recipe` gives a new Recipe, validated (``source`` names it in errors); a dict gives a new dict, not
    validated (a sweep validates each variant itself, to name the grid key a problem comes from).

    Raises:
        RecipeError: The changed Recipe does not validate (naming the field).
    """
    data = recipe.to_dict() if isinstance(recipe, Recipe) else copy.deepcopy(dict(recipe))
    for key, value in values.items():
        put(data, key, value)
    return Recipe.from_dict(data, source=source) if isinstance(recipe, Recipe) else data


def _normalised_leaves(recipe: Recipe | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(recipe, Recipe):
        return leaves(recipe)
    try:  # a recorded recipe (run_start, recipe.yaml): normalised so every customization setting is explicit
        return leaves(Recipe.from_dict(dict(recipe)))
    except Exception:  # a recipe of an older version that no longer validates: compare it as written
        return leaves(dict(recipe))


def _left_out(key: str) -> Any:
    """What a recipe that does not set ``key`` trains with: ultralytics' default for a training argument, else None
    (a customization that is off)."""
    return train_default(key.removeprefix("train.")) if key.startswith("train.") else None


def diff(recipes: Mapping[str, Recipe | Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The settings whose values differ between the recipes: dotted key -> one value per recipe, in input order.

    A training argument a recipe leaves out counts as ultralytics' default (what the run used), so ``lr0: 0.01``
    written out and left out are the same; a customization that is off has ``None`` for each of its settings.
    Recorded recipes (dicts) are validated first so every setting is explicit (as written, if they no longer
    validate). Keys come in recipe order (model, data, train, customizations) as the recipes first show them; a key
    whose value is the same everywhere is left out, so two runs that differ in two settings give exactly two keys.
    """
    flats = [_normalised_leaves(r) for r in recipes.values()]
    keys = list(dict.fromkeys(k for flat in flats for k in flat))
    out = {}
    for key in keys:
        values = [flat.get(key, _MISSING) for flat in flats]
        values = [_left_out(key) if v is _MISSING else v for v in values]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out
