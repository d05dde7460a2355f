"""A run's note and tags in the UI: the "Note & tags" popover on each Runs page row and under the dashboard's header,
and the line that shows them. Saving writes notes.json through :mod:`trainers.runs.notes`, the file ``workbench note``
and ``workbench tag`` edit; a change made elsewhere (the CLI, another tab) replaces what the editor holds at the next
render.
"""

from __future__ import annotations

import os
import re

import streamlit as st

from app import run_filters
from trainers.errors import WorkbenchError
from trainers.runs.notes import notes_version, save_notes

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def escaped(text: str) -> str:
    """``text`` shown as typed in Streamlit markdown (a tag ``a*b*`` is not italics)."""
    return _MARKDOWN.sub(r"\\\1", text)


def notes_line(meta: run_filters.RunMeta, note_chars: int = 120) -> str:
    """``baseline · lr-sweep — tried lr 0.02 ...``: the tags, then the note's first line (cut), markdown-escaped."""
    parts = []
    if meta.tags:
        parts.append(" ".join(f":blue-badge[{escaped(t)}]" for t in meta.tags))
    if meta.note:
        first = meta.note.splitlines()[0]
        cut = first if len(first) <= note_chars and "\n" not in meta.note else first[:note_chars].rstrip() + " …"
        parts.append(escaped(cut))
    return " ".join(parts)


def _keys(prefix: str, name: str) -> tuple[str, str, str]:
    return f"{prefix}_note_{name}", f"{prefix}_tags_{name}", f"{prefix}_notes_seen_{name}"


def _save(prefix: str, run_dir: str, name: str) -> None:
    """Save button callback: write both, show the tags as stored (normalised), or the one-line error."""
    ss = st.session_state
    note_key, tags_key, seen_key = _keys(prefix, name)
    try:
        saved = save_notes(run_dir, ss.get(note_key, ""), ss.get(tags_key, ""))
    except WorkbenchError as e:
        ss[f"{prefix}_flash"] = ("error", f"{name}: {e}")
        return
    run_filters.forget(run_dir)
    ss[note_key], ss[tags_key] = saved.note, ", ".join(saved.tags)
    ss[seen_key] = notes_version(run_dir)
    ss[f"{prefix}_flash"] = ("success", f"Saved the note and tags of {name}.")


def editor(prefix: str, run_dir: str | os.PathLike[str], name: str, meta: run_filters.RunMeta) -> None:
    """The note and tags form; widget keys ``{prefix}_note_{name}``, ``{prefix}_tags_{name}`` and the Save button's
    ``{prefix}_notes_save_{name}``."""
    ss = st.session_state
    note_key, tags_key, seen_key = _keys(prefix, name)
    version = notes_version(run_dir)
    if ss.get(seen_key, "unset") != version or note_key not in ss:  # first open, or the file changed elsewhere
        ss[note_key], ss[tags_key], ss[seen_key] = meta.note, ", ".join(meta.tags), version
    with st.form(key=f"{prefix}_notes_form_{name}", border=False):
        st.text_area("Note", key=note_key, height=100, placeholder="what this run tries, what came of it")
        st.text_input(
            "Tags", key=tags_key, placeholder="baseline, lr-sweep",
            help="separated by commas or spaces; lower-cased; at most 40 characters each",
        )  # fmt: skip
        st.form_submit_button(
            "Save", key=f"{prefix}_notes_save_{name}", on_click=_save, args=(prefix, str(run_dir), name),
            icon=":material/save:",
        )  # fmt: skip


def popover(container, prefix: str, run_dir: str | os.PathLike[str], name: str, meta: run_filters.RunMeta) -> None:
    """The "Note & tags" popover (key ``{prefix}_notes_pop_{name}``, True while open) in ``container``.

    Its form is drawn only while it is open: every text widget makes Streamlit copy the whole session state, so 500
    closed editors made one Runs page render take 30 s (bench_runs_page.py) where the page without them took 2.
    """
    pop = container.popover(
        "Note & tags", icon=":material/sell:", help="a note and tags for this run", key=f"{prefix}_notes_pop_{name}",
        on_change="rerun",
    )  # fmt: skip
    if pop.open:
        with pop:
            editor(prefix, run_dir, name, meta)


def row_notes(name_col, actions, row) -> None:
    """A Runs page row: its tags and note under the name, and the "Note & tags" popover among its actions."""
    meta = run_filters.run_meta(row.path)
    line = notes_line(meta)
    if line:
        name_col.markdown(f":small[{line}]")
    popover(actions, "runs", row.path, row.name, meta)


def dashboard_notes(run_dir: str | os.PathLike[str], name: str) -> None:
    """Under the dashboard's header: the run's tags and note, and the "Note & tags" popover to edit them."""
    meta = run_filters.run_meta(run_dir)
    line_col, edit_col = st.columns([6, 1.2], vertical_alignment="center")
    line_col.markdown(f":small[{notes_line(meta)}]" if meta.tags or meta.note else ":small[:gray[no note or tags]]")
    popover(edit_col, "dash", run_dir, name, meta)
