"""Apply a finding's fix to a recipe: the UI's "Apply fix" (New run opens with the result).

A fix is a change of dotted recipe keys (``customizations.grad_clip.max_norm``), set through
:mod:`trainers.recipe.dotted` as a sweep grid sets them; :mod:`trainers.runs.compare` lists the keys that differ
between runs the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainers.errors import WorkbenchError
from trainers.recipe import dotted

if TYPE_CHECKING:
    from trainers.doctor.finding import Finding
    from trainers.recipe import Recipe


def apply_fix(recipe: Recipe, finding: Finding) -> Recipe:
    """``recipe`` with ``finding.recipe_change`` applied, validated by the Recipe model.

    The result differs from ``recipe`` exactly in the dotted keys of the change (a block given whole counts as its
    leaves), nothing else: the model, the data and every other setting are kept.

    Raises:
        WorkbenchError: The finding has no recipe change.
        RecipeError: The changed recipe does not validate (naming the field).
    """
    if not finding.recipe_change:
        raise WorkbenchError(f"finding {finding.id}: its fix is not a recipe setting ({finding.fix})")
    return dotted.changed(recipe, finding.recipe_change, source=f"recipe with the fix of {finding.id}")
