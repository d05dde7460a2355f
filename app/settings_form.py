"""Form widgets for a customization's settings, derived from its typed settings model (no Streamlit here).

Every customization in the table gets its fields on the New run page without UI code of its own: each field of its
settings model becomes a :class:`FieldSpec` (widget kind, label, help, default) read from the model itself —
annotation, default, ``title``/``description``, and ``json_schema_extra`` hints (``choices`` for a string picked
from a list, ``none_label`` for what ``null`` means). The page renders the specs; :meth:`FieldSpec.to_value` turns
a widget value back into recipe data, or raises ``ValueError`` with a message for the field.

Ranges are not passed to the widgets on purpose: Streamlit silently keeps the old value when a number is out of
range, so the recipe's own validation reports it under the field instead and Start stays refused.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

# Widget kinds the page knows how to draw.
KINDS = ("checkbox", "number", "integer", "select", "text", "float_list", "layers")


@dataclass(frozen=True)
class FieldSpec:
    """One settings field as a form widget.

    Attributes:
        name: The settings field (``max_norm``).
        kind: One of :data:`KINDS`.
        label: Widget label.
        help: One-line help (the field's description).
        default: The widget value of the model's default.
        choices: Options of a ``select`` (recipe values; ``None`` stands for the ``none_label`` option).
        nullable: ``null`` is allowed: a checkbox labelled ``none_label`` next to the widget sets it.
        none_label: What ``null`` means, as the checkbox label (``never unfreeze``, ``no cap``).
        labels: Display text of ``select`` options, where it differs from the value.
        when: ``(other field, value)``: the widget is shown only while that field has that value (``beta`` only
            matters for the ``effective_number`` scheme).
    """

    name: str
    kind: str
    label: str
    help: str
    default: Any
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    none_label: str = "none"
    labels: tuple[tuple[Any, str], ...] = ()
    when: tuple[str, Any] | None = None

    @property
    def none_box(self) -> bool:
        """Whether the widget has a checkbox for ``null`` (an empty list already means null)."""
        return self.nullable and self.kind != "float_list"

    def label_of(self, choice: Any) -> str:
        """How a ``select`` option is shown."""
        if choice is None:
            return self.none_label
        return dict(self.labels).get(choice, str(choice))

    def to_value(self, widget: Any, is_none: bool = False) -> Any:
        """The recipe value for a widget value (``is_none``: the ``none_label`` checkbox is ticked).

        Raises:
            ValueError: The text of a list or layers field does not parse (the message is for the user).
        """
        if self.nullable and is_none:
            return None
        if self.kind == "float_list":
            values = parse_float_list(str(widget))
            return values or None
        if self.kind == "layers":
            return parse_layers(str(widget), words=tuple(self.choices))
        return widget

    def to_widget(self, value: Any) -> tuple[Any, bool]:
        """``(widget value, none ticked)`` showing recipe value ``value``."""
        if value is None and self.nullable and self.kind not in ("select", "float_list"):
            return self.default, True
        if self.kind == "float_list":
            return ", ".join(f"{v:g}" for v in value or []), False
        if self.kind == "layers":
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value), False
        return value, False


def field_specs(settings: type[BaseModel]) -> list[FieldSpec]:
    """The widgets of a settings model, in field order."""
    return [_spec(name, info) for name, info in settings.model_fields.items()]


def _spec(name: str, info: FieldInfo) -> FieldSpec:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    ann = info.annotation
    args = [a for a in _union_args(ann) if a is not type(None)]
    nullable = len(args) < len(_union_args(ann))
    label = info.title or name.replace("_", " ").capitalize()
    when = tuple(extra["when"]) if "when" in extra else None
    common = {"name": name, "label": label, "help": info.description or "", "nullable": nullable, "when": when}
    common["none_label"] = str(extra.get("none_label") or "none")
    default = info.get_default(call_default_factory=True)  # a run-dependent default: the one for a default run
    labels = tuple(dict(extra.get("labels") or {}).items())
    if "choices" in extra:
        return FieldSpec(kind="select", default=default, choices=tuple(extra["choices"]), labels=labels, **common)
    if len(args) == 1 and typing.get_origin(args[0]) is Literal:
        choices = tuple(typing.get_args(args[0])) + ((None,) if nullable else ())
        return FieldSpec(
            kind="select", default=default, choices=choices, labels=labels, **{**common, "nullable": False}
        )
    if _is_layers(args):
        words = tuple(w for a in args if typing.get_origin(a) is Literal for w in typing.get_args(a))
        return FieldSpec(kind="layers", default=str(default), choices=words, **{**common, "nullable": False})
    if len(args) == 1 and typing.get_origin(args[0]) is list:
        return FieldSpec(kind="float_list", default=", ".join(map(str, default or [])), **common)
    kind = {bool: "checkbox", int: "integer", float: "number", str: "text"}.get(args[0] if len(args) == 1 else str)
    if kind is None:
        raise TypeError(f"settings field {name!r}: no form widget for {ann!r}; add one in app/settings_form.py")
    widget_default = default
    if default is None and kind in ("number", "integer"):
        widget_default = extra.get("widget_default", 1 if kind == "integer" else 1.0)
    return FieldSpec(kind=kind, default=widget_default, **common)


def _union_args(ann: Any) -> tuple[Any, ...]:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return typing.get_args(ann)
    return (ann,)


def _is_layers(args: list[Any]) -> bool:
    """``int | list[int] | Literal[...]``: a count, indices or a word, entered as text."""
    origins = {typing.get_origin(a) or a for a in args}
    return len(args) > 1 and int in origins and list in origins


def parse_float_list(text: str) -> list[float]:
    """``"1, 2.5 3"`` -> ``[1.0, 2.5, 3.0]`` (commas and/or spaces, brackets allowed).

    Raises:
        ValueError: Naming the first item that is not a number.
    """
    items = [x for x in re.split(r"[,\s]+", text.strip().strip("[]")) if x]
    out = []
    for x in items:
        try:
            out.append(float(x))
        except ValueError:
            raise ValueError(f"'{x}' is not a number") from None
    return out


def parse_layers(text: str, words: tuple[str, ...] = ("backbone",)) -> str | int | list[int]:
    """Layers: a word (``backbone``), a number of leading layers (``10``) or indices (``0, 1, 2``)."""
    t = text.strip()
    if t.lower() in words:
        return t.lower()
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    items = [x for x in re.split(r"[,\s]+", t.strip("[]")) if x]
    if items and all(re.fullmatch(r"-?\d+", x) for x in items):
        return [int(x) for x in items]
    raise ValueError(f"'{text}' is not 'backbone', a number of leading layers or a list of layer indices like 0, 1, 2")
