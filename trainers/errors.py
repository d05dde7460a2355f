"""The errors users see: one line that names the field or file, what is wrong and how to fix it.

A recipe error carries its problems as data (:class:`Problem`: field path, message, fix), so the UI can put each one
under its widget without parsing text; the CLI prints ``str(err)``, the same problems joined into one line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe or a form.

    Attributes:
        field: Dotted path of the field it is about (``train.epochs``, ``customizations.grad_clip.max_norm``,
            ``model``, ``data``); ``""`` for the recipe as a whole.
        message: What is wrong, as a sentence that names the field (``train.epochs must be an integer >= 1, got 0``).
        fix: What to do about it, when there is more to say than the message (``use null to keep them frozen``).
    """

    field: str
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message

    def under(self, prefix: str) -> bool:
        """Whether this problem is about ``prefix`` or a field below it (``train`` covers ``train.epochs``)."""
        return self.field == prefix or self.field.startswith(prefix + ".")


class WorkbenchError(ValueError):
    """Bad input (recipe, dataset, run name, CLI argument). The CLI prints ``str(err)`` and exits 2.

    Messages are one line, start with the field or file they are about, and say what is allowed.
    """

    def __init__(self, message: str):
        super().__init__(one_line(message))


class DatasetError(WorkbenchError):
    """A ``data.yaml`` or the files it points to cannot be used."""


class RecipeError(WorkbenchError):
    """A recipe is invalid: one or more :class:`Problem`.

    Args:
        problems: The problems, or one message (filed under the field its text starts with, else ``""``).
        source: Where the recipe came from (a file path, ``recipe``); prefixes the one-line text.
    """

    def __init__(self, problems: str | Problem | Iterable[Problem], source: str | None = None):
        if isinstance(problems, str):
            problems = [Problem(field=_leading_field(problems), message=one_line(problems))]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(dict.fromkeys(problems))
        self.source = source
        text = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{source}: {text}" if source else text)


class RunError(WorkbenchError):
    """A run name, run directory or run state does not allow the requested action."""


_FIELD_ROOTS = ("model", "data", "train", "customizations", "name")


def _leading_field(message: str) -> str:
    """The dotted field a message starts with (``customizations.x.weights has 3 values...`` -> that path)."""
    head = message.split(" ", 1)[0].rstrip(":")
    return head if head.split(".", 1)[0] in _FIELD_ROOTS else ""
