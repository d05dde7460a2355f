"""The recipe: what the user chose, one typed and validated object that round-trips to YAML.

- :mod:`trainers.recipe.model`: :class:`Recipe`, :func:`load_recipe` and the field-naming errors.
- :mod:`trainers.recipe.dotted`: dotted keys (``train.lr0``): get, set (a new recipe), leaves, diff of recipes.
"""

from __future__ import annotations

from trainers.recipe.model import BUILTIN_MODEL_RE, Recipe, load_recipe

__all__ = ["BUILTIN_MODEL_RE", "Recipe", "load_recipe"]
