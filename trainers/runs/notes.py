"""A run's free-text note and tags, in a small file of their own (:data:`~trainers.run_files.NOTES_FILE`).

The file is separate from status.json on purpose: the training process rewrites status.json every epoch, and a note
typed on the Runs page must neither be overwritten by it nor overwrite its progress. Every change is a
read-modify-write under the run folder's lock (the one status.json's merges hold), written atomically, so the UI and
``workbench note`` / ``workbench tag`` at the same moment lose neither change.

Tags are lower-case words: stripped, deduplicated in the order given, at most :data:`TAG_MAX` characters, with no
whitespace or comma (the Runs page and the CLI split a list of tags on those).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainers.errors import RunError
from trainers.run_files import NOTES_FILE, STATUS_FILE, write_json_atomic
from trainers.runs.status import _locked

TAG_MAX = 40  # characters: a tag is a label on a row, not a sentence
NOTE_MAX = 10_000  # characters: a paragraph or two; longer text belongs in a file beside the run
NOTES_VERSION = 1


@dataclass(frozen=True)
class RunNotes:
    """A run's note (``""``: none) and tags (normalised, in the order they were added)."""

    note: str = ""
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """What the file holds (and ``workbench runs --json`` lists)."""
        return {"v": NOTES_VERSION, "note": self.note, "tags": list(self.tags)}


def normalize_tag(raw: str) -> str:
    """``raw`` stripped and lower-cased.

    Raises:
        RunError: It is empty, holds whitespace or a comma, or is longer than :data:`TAG_MAX` (one line naming the fix).
    """
    tag = str(raw).strip().lower()
    if not tag:
        raise RunError("tag: empty; give a word such as 'baseline'")
    if any(c.isspace() or c == "," for c in tag):
        joined = "-".join(w for w in tag.replace(",", " ").split() if w)
        raise RunError(f"tag {tag!r}: a tag cannot hold spaces or commas; join the words with '-' ({joined!r})")
    if len(tag) > TAG_MAX:
        raise RunError(f"tag {tag[:20]!r}...: {len(tag)} characters, at most {TAG_MAX}; shorten it")
    return tag


def normalize_tags(raw: Iterable[str]) -> tuple[str, ...]:
    """Each tag normalised (:func:`normalize_tag`), duplicates dropped, first occurrence kept."""
    return tuple(dict.fromkeys(normalize_tag(t) for t in raw))


def split_tags(text: str) -> tuple[str, ...]:
    """Tags typed as one line (``"baseline, lr-sweep  fp16"``), split on commas and whitespace, normalised."""
    return normalize_tags(t for t in text.replace(",", " ").split())


def check_note(text: str) -> str:
    """The note with surrounding whitespace stripped.

    Raises:
        RunError: Longer than :data:`NOTE_MAX` characters.
    """
    note = str(text).strip()
    if len(note) > NOTE_MAX:
        raise RunError(f"note: {len(note):,} characters, at most {NOTE_MAX:,}; shorten it")
    return note


def notes_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / NOTES_FILE


def notes_version(run_dir: str | os.PathLike[str]) -> tuple[int, int] | None:
    """The notes file's (mtime_ns, size), None without one: what a cache of :func:`read_notes` is keyed by."""
    try:
        st = os.stat(notes_path(run_dir))
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def read_notes(run_dir: str | os.PathLike[str]) -> RunNotes:
    """The run's note and tags; empty without a file, and for a file that does not parse (listing never fails on it).

    Tags that no longer validate (written by hand) are left out rather than failing the listing.
    """
    try:
        with open(notes_path(run_dir), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return RunNotes()
    if not isinstance(data, dict):
        return RunNotes()
    note = data.get("note") if isinstance(data.get("note"), str) else ""
    tags: list[str] = []
    for raw in data.get("tags") if isinstance(data.get("tags"), list) else []:
        try:
            tags.append(normalize_tag(raw))
        except RunError:
            continue
    return RunNotes(note, tuple(dict.fromkeys(tags)))


def update_notes(run_dir: str | os.PathLike[str], change: Callable[[RunNotes], RunNotes]) -> RunNotes:
    """Read-modify-write the notes file under the run folder's lock; returns the notes as written.

    Raises:
        RunError: ``run_dir`` is not a run (no status.json): notes are never written to a folder that is not one.
    """
    run_dir = Path(run_dir)
    if not (run_dir / STATUS_FILE).is_file():
        raise RunError(f"{run_dir} is not a workbench run (no {STATUS_FILE})")
    with _locked(run_dir):
        new = change(read_notes(run_dir))
        write_json_atomic(notes_path(run_dir), new.to_dict())
    return new


def set_note(run_dir: str | os.PathLike[str], text: str) -> RunNotes:
    """Replace the run's note (``""`` clears it); tags stay."""
    note = check_note(text)
    return update_notes(run_dir, lambda cur: RunNotes(note, cur.tags))


def set_tags(run_dir: str | os.PathLike[str], tags: Iterable[str]) -> RunNotes:
    """Replace the run's tags with ``tags`` (normalised); the note stays."""
    new = normalize_tags(tags)
    return update_notes(run_dir, lambda cur: RunNotes(cur.note, new))


def add_tags(run_dir: str | os.PathLike[str], tags: Iterable[str]) -> RunNotes:
    """Add ``tags`` after the run's current ones (those it has already stay where they are)."""
    new = normalize_tags(tags)
    return update_notes(run_dir, lambda cur: RunNotes(cur.note, tuple(dict.fromkeys((*cur.tags, *new)))))


def remove_tags(run_dir: str | os.PathLike[str], tags: Iterable[str]) -> RunNotes:
    """Remove ``tags`` from the run (a tag it does not have is no error)."""
    gone = set(normalize_tags(tags))
    return update_notes(run_dir, lambda cur: RunNotes(cur.note, tuple(t for t in cur.tags if t not in gone)))


def save_notes(run_dir: str | os.PathLike[str], note: str, tags_text: str) -> RunNotes:
    """Set the note and the tags (one line, :func:`split_tags`) together, as the UI's editor saves them; nothing is
    written when either is invalid."""
    text, tags = check_note(note), split_tags(tags_text)
    return update_notes(run_dir, lambda _cur: RunNotes(text, tags))
