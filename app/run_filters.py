"""The Runs page's filters (no Streamlit): what each run is filtered on, and which rows a set of filters keeps.

A run's model and dataset come from its recipe.yaml, its note and tags from notes.json; both are read once and kept
per run until the file's mtime or size changes, so a render of 500 runs reads no file but those that changed (two
``stat`` calls a run) and never a run's telemetry.

Filters combine with AND; within one filter, any of the chosen values matches (status ``failed`` or ``stopped``).
The text filter matches a case-insensitive substring of the name, note, tags, model or dataset.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainers.run_files import RECIPE_FILE
from trainers.runs.notes import RunNotes, notes_version, read_notes

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: 10x faster on a cold cache of 500


@dataclass(frozen=True)
class RunMeta:
    """What a run is filtered on besides its status: model and dataset (short names), note and tags."""

    model: str = ""
    dataset: str = ""
    note: str = ""
    tags: tuple[str, ...] = ()

    def haystack(self, name: str) -> str:
        """Everything the text filter searches, lower-cased."""
        return "\n".join([name, self.note, " ".join(self.tags), self.model, self.dataset]).lower()


def model_label(model: Any) -> str:
    """``../demo_base.pt`` -> ``demo_base.pt``; ``yolo11n.pt`` stays."""
    return Path(str(model)).name if model else ""


def dataset_label(data: Any) -> str:
    """A dataset's short name: ``datasets/cones/data.yaml`` -> ``cones`` (its folder), ``coco8.yaml`` -> ``coco8``."""
    if not data:
        return ""
    path = Path(str(data))
    return (path.parent.name or path.stem) if path.stem == "data" else path.stem


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _recipe_labels(run_dir: Path) -> tuple[str, str]:
    try:
        with open(run_dir / RECIPE_FILE, encoding="utf-8") as f:
            recipe = yaml.load(f, Loader=_Loader)  # noqa: S506 (a safe loader: libyaml's or the pure one)
    except (OSError, yaml.YAMLError):
        return "", ""
    if not isinstance(recipe, dict):
        return "", ""
    return model_label(recipe.get("model")), dataset_label(recipe.get("data"))


_CACHE: dict[str, tuple[Any, RunMeta]] = {}
_LOCK = threading.Lock()


def run_meta(path: str | os.PathLike[str]) -> RunMeta:
    """The run's :class:`RunMeta`, read again only when recipe.yaml or notes.json changed (process-wide cache)."""
    run_dir = Path(path)
    key = str(run_dir)
    version = (_stat(run_dir / RECIPE_FILE), notes_version(run_dir))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit and hit[0] == version:
        return hit[1]
    model, dataset = _recipe_labels(run_dir)
    notes: RunNotes = read_notes(run_dir)
    meta = RunMeta(model, dataset, notes.note, notes.tags)
    with _LOCK:
        _CACHE[key] = (version, meta)
    return meta


def forget(path: str | os.PathLike[str]) -> None:
    with _LOCK:
        _CACHE.pop(str(Path(path)), None)


@dataclass(frozen=True)
class Filters:
    """The Runs page's filters; empty ones keep every run."""

    status: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    dataset: tuple[str, ...] = ()
    text: str = ""

    @property
    def active(self) -> bool:
        return bool(self.status or self.tag or self.model or self.dataset or self.text.strip())

    def keeps(self, name: str, status: str, meta: RunMeta) -> bool:
        """Whether a run with this name, status and meta passes every filter."""
        if self.status and status not in self.status:
            return False
        if self.tag and not set(self.tag) & set(meta.tags):
            return False
        if self.model and meta.model not in self.model:
            return False
        if self.dataset and meta.dataset not in self.dataset:
            return False
        text = self.text.strip().lower()
        return not text or text in meta.haystack(name)

    # ---- the URL ------------------------------------------------------------------------------------------------
    def to_query(self) -> dict[str, list[str] | str]:
        """The query parameters that say these filters (only those set): a filtered view's shareable URL."""
        out: dict[str, list[str] | str] = {
            k: list(v) for k, v in (("status", self.status), ("tag", self.tag), ("model", self.model),
                                    ("dataset", self.dataset)) if v
        }  # fmt: skip
        if self.text.strip():
            out["q"] = self.text
        return out

    @classmethod
    def from_query(cls, get_all: Any) -> Filters:
        """Filters from query parameters; ``get_all(key)`` lists a parameter's values (``st.query_params.get_all``)."""
        text = get_all("q")
        return cls(
            status=tuple(dict.fromkeys(get_all("status"))),
            tag=tuple(dict.fromkeys(t.strip().lower() for t in get_all("tag"))),
            model=tuple(dict.fromkeys(get_all("model"))),
            dataset=tuple(dict.fromkeys(get_all("dataset"))),
            text=text[-1] if text else "",
        )


@dataclass
class Options:
    """The values each filter offers: those the runs have, in first-seen order (statuses and tags sorted)."""

    status: list[str] = field(default_factory=list)
    tag: list[str] = field(default_factory=list)
    model: list[str] = field(default_factory=list)
    dataset: list[str] = field(default_factory=list)


def options(rows: Iterable[Any], metas: Mapping[str, RunMeta]) -> Options:
    """The values the filters offer for these rows (``.name``, ``.status``); ``metas`` by run name."""
    rows = list(rows)
    ms = [metas[r.name] for r in rows]
    return Options(
        status=sorted({str(r.status) for r in rows}),
        tag=sorted({t for m in ms for t in m.tags}),
        model=list(dict.fromkeys(m.model for m in ms if m.model)),
        dataset=list(dict.fromkeys(m.dataset for m in ms if m.dataset)),
    )


def kept(rows: Sequence[Any], filters: Filters, metas: Mapping[str, RunMeta] | None = None) -> list[Any]:
    """The rows (``.name``, ``.status``, ``.path``) that pass ``filters``, in their order."""
    if not filters.active:
        return list(rows)
    metas = metas if metas is not None else {r.name: run_meta(r.path) for r in rows}
    return [r for r in rows if filters.keeps(r.name, str(r.status), metas[r.name])]


def count_line(shown: int, total: int) -> str:
    """``12 of 500 runs``; ``500 runs`` when nothing is filtered out."""
    noun = "run" if total == 1 else "runs"
    return f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}"
