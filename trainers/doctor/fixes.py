"""Apply a finding's fix to a recipe: the UI's "Apply fix" (New run opens with the result), and dotted recipe keys.

A recipe's dotted keys are its leaves: ``model``, ``train.lr0``, ``customizations.grad_clip.max_norm``. A
customization without settings (``per_class_f1: {}``) is one leaf whose value is ``{}``, so turning it on or off is
a change of one key too. :mod:`trainers.runs.compare` lists the keys that differ between runs the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainers.errors import WorkbenchError

if TYPE_CHECKING:
    from trainers.doctor.finding import Finding
    from trainers.recipe import Recipe


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


def recipe_leaves(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe dict's dotted leaves: :func:`flatten`, without the empty ``train`` / ``customizations`` sections
    (no argument set and no customization on are no setting at all)."""
    return {k: v for k, v in flatten(recipe).items() if not (k in ("train", "customizations") and v == {})}


def set_dotted(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set ``data[a][b][c] = value`` for ``key`` ``a.b.c``, creating the mappings on the way (a customization
    block that was off is turned on with its other settings at their defaults). Returns ``data``."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)
    return data


def apply_fix(recipe: Recipe, finding: Finding) -> Recipe:
    """``recipe`` with ``finding.recipe_change`` applied, validated by the Recipe model.

    The result differs from ``recipe`` exactly in the dotted keys of the change (a block given whole counts as its
    leaves), nothing else: the model, the data and every other setting are kept.

    Raises:
        WorkbenchError: The finding has no recipe change.
        RecipeError: The changed recipe does not validate (naming the field).
    """
    from trainers.recipe import Recipe

    if not finding.recipe_change:
        raise WorkbenchError(f"finding {finding.id}: its fix is not a recipe setting ({finding.fix})")
    data = recipe.to_dict()
    for key, value in finding.recipe_change.items():
        set_dotted(data, key, value)
    return Recipe.from_dict(data, source=f"recipe with the fix of {finding.id}")
