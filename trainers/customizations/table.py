"""The customization table: one row per customization, read by the recipe, the composer, the UI and the docs.

A row says everything the rest of the workbench needs to know about a customization: its recipe key, where it sits
in the composed trainer (``rank``) and why, its title and one-line help for the UI, its typed settings (whose
defaults live there and nowhere else) and its trainer mixin. Adding a customization is one new module that defines
a :class:`Customization` row, plus that row in ``trainers/customizations/__init__.py``.

This module, like every customization module at import time, never imports torch or ultralytics: the UI reads the
table on every rerun. Mixins import what they need inside their methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from trainers.errors import Problem


class RecipeView(Protocol):
    """What a customization reads of the recipe: :class:`trainers.recipe.Recipe` has this shape.

    The recipe is built from this table, so it sits above the customizations in the layers (pyproject.toml's
    import-linter contracts): they name it by its shape, never by importing it.
    """

    @property
    def train(self) -> Mapping[str, Any]: ...

    @property
    def family(self) -> str | None: ...

    @property
    def customizations(self) -> Any: ...


class Settings(BaseModel):
    """Base of every customization's settings: frozen, unknown keys refused (the error lists the allowed ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def run_defaults(cls, train: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults that depend on the run (its ``train:`` arguments), by field: the recipe fills them in where a block
        leaves the field out, and the New run form starts its widgets at them. None by default: every default is the
        field's own."""
        return {}


@dataclass(frozen=True)
class Customization:
    """One row of the table.

    Attributes:
        key: The recipe block (``customizations.<key>``), also the UI's widget prefix.
        rank: Composition rank: a lower rank sits further out in the trainer's MRO (its hook runs first and sees
            what the inner ones did when ``super()`` returns). Unique.
        why: Why the row sits at that rank (docs/recipe.md prints it).
        title: The UI's toggle label.
        help: One line: what turning it on does.
        settings: The block's typed settings model (defaults, ranges, one-line descriptions).
        mixin: The trainer mixin class; it overrides ultralytics hooks and always calls ``super()``.
        check: Rules that need the rest of the recipe (``train.epochs``, the model family): returns problems.
    """

    key: str
    rank: int
    why: str
    title: str
    help: str
    settings: type[Settings]
    mixin: type
    check: Callable[[Any, RecipeView], Iterable[Problem]] | None = None


_ROWS: dict[str, Customization] = {}


def register(row: Customization) -> Customization:
    """Add ``row`` to the table (after the rows already there, in listing order).

    Raises:
        ValueError: If the key or the rank is taken (a programming error, not user input).
    """
    if row.key in _ROWS:
        raise ValueError(f"customization {row.key!r} is already registered")
    taken = {r.rank: r.key for r in _ROWS.values()}
    if row.rank in taken:
        raise ValueError(f"customization {row.key!r}: rank {row.rank} is taken by {taken[row.rank]!r}")
    _ROWS[row.key] = row
    return row


def unregister(key: str) -> None:
    """Remove a row (tests register a throwaway one and take it out again)."""
    _ROWS.pop(key, None)


def rows() -> tuple[Customization, ...]:
    """Every row in listing order (the order the recipe, the UI and the docs show them in)."""
    return tuple(_ROWS.values())


def keys() -> tuple[str, ...]:
    """Every recipe key in listing order."""
    return tuple(_ROWS)


def by_rank() -> tuple[Customization, ...]:
    """Every row in composition order, outermost first."""
    return tuple(sorted(_ROWS.values(), key=lambda r: r.rank))


def row(key: str) -> Customization:
    """The row of ``key``.

    Raises:
        KeyError: If no customization has that key.
    """
    return _ROWS[key]
