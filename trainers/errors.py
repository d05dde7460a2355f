"""The one error type users see: a single line that names the field or file and how to fix it."""

from __future__ import annotations


class WorkbenchError(ValueError):
    """Bad input (recipe, dataset, run name, CLI argument). The CLI prints ``str(err)`` and exits 2.

    Messages are one line, start with the field or file they are about, and say what is allowed.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # force one line


class DatasetError(WorkbenchError):
    """A ``data.yaml`` or the files it points to cannot be used."""


class RecipeError(WorkbenchError):
    """A recipe is invalid."""


class RunError(WorkbenchError):
    """A run name, run directory or run state does not allow the requested action."""
