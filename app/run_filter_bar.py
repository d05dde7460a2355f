"""The Runs page's filter bar: status, tag, model, dataset and text, kept in session state and in the URL's query
parameters (``?status=failed&tag=baseline&q=lr``), so a filtered view survives a page change and can be shared.

A URL that names filters wins over the session's (a shared link opened, or the page's own link edited); a URL that
names none keeps the session's filters (coming back to the page from another one, which drops query parameters) and is
given them again. What a row is matched on is :mod:`app.run_filters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from app import run_filters
from app.run_filters import Filters

KEYS = {"text": "runs_f_text", "status": "runs_f_status", "tag": "runs_f_tag", "model": "runs_f_model",
        "dataset": "runs_f_dataset"}  # fmt: skip
URL_KEYS = ("q", "status", "tag", "model", "dataset")
_SEEN = "runs_filters_url"  # the filters last written to (or taken from) the URL
_LIMIT = "runs_limit"
# Rows drawn at a time. Each row is a bordered container of about 20 elements: 500 of them took 2.7-2.9 s of server
# time per render (benchmarks/bench_runs_page.py), every 3 s while a run is active; 50 take a tenth of that.
PAGE = 50


def current() -> Filters:
    """The filters the widgets hold now."""
    ss = st.session_state
    return Filters(
        status=tuple(ss.get(KEYS["status"]) or ()),
        tag=tuple(ss.get(KEYS["tag"]) or ()),
        model=tuple(ss.get(KEYS["model"]) or ()),
        dataset=tuple(ss.get(KEYS["dataset"]) or ()),
        text=str(ss.get(KEYS["text"]) or ""),
    )


def _put(filters: Filters) -> None:
    ss = st.session_state
    for field in ("status", "tag", "model", "dataset"):
        ss[KEYS[field]] = list(getattr(filters, field))
    ss[KEYS["text"]] = filters.text


def _write_url(filters: Filters) -> None:
    """The query parameters set to ``filters`` (only those that differ are touched; ``?run=`` and others stay)."""
    wanted = filters.to_query()
    for key in URL_KEYS:
        if key in wanted:
            value = wanted[key]
            have = st.query_params.get_all(key)
            if have != (value if isinstance(value, list) else [value]):
                st.query_params[key] = value
        elif key in st.query_params:
            del st.query_params[key]
    st.session_state[_SEEN] = filters


def filter_bar(rows: Sequence[Any]) -> Filters:
    """Draw the filter bar for ``rows`` (the Runs page's run rows) and return the filters it holds."""
    ss = st.session_state
    url = Filters.from_query(st.query_params.get_all)
    if url.active and url != ss.get(_SEEN):
        _put(url)
    elif KEYS["text"] not in ss and isinstance(ss.get(_SEEN), Filters):
        _put(ss[_SEEN])  # Streamlit drops a widget's state on a page without it: the copy under _SEEN brings it back
    metas = {r.name: run_filters.run_meta(r.path) for r in rows}
    offered = run_filters.options(rows, metas)
    text_col, status_col, tag_col, model_col, dataset_col = st.columns([2.2, 1.3, 1.3, 1.3, 1.3])
    text_col.text_input(
        "Search", key=KEYS["text"], placeholder="name, note, tag, model, dataset",
        help="runs whose name, note, tags, model or dataset contain this text (any case)",
    )  # fmt: skip
    for col, field, label in (
        (status_col, "status", "Status"), (tag_col, "tag", "Tag"), (model_col, "model", "Model"),
        (dataset_col, "dataset", "Dataset"),
    ):  # fmt: skip
        chosen = list(ss.get(KEYS[field]) or [])
        # values from a shared URL that no run has (any more) stay choosable: the view says "0 of N" instead of failing
        choices = list(dict.fromkeys([*getattr(offered, field), *chosen]))
        col.multiselect(label, choices, key=KEYS[field], placeholder="any", help="runs with any of the chosen values")
    filters = current()
    _write_url(filters)
    return filters


def kept(rows: Sequence[Any]) -> list[Any]:
    """The rows that pass the filter bar's filters."""
    return run_filters.kept(rows, current())


def limit() -> int:
    """How many of the kept rows the page draws now: :data:`PAGE`, and :data:`PAGE` more per "Show more"."""
    return int(st.session_state.get(_LIMIT, PAGE))


def shown(rows: Sequence[Any]) -> tuple[list[Any], int]:
    """The first :func:`limit` rows that pass the filter bar's filters, under a count line (``12 of 500 runs``;
    ``500 runs · the first 50 shown``), and how many passed (for :func:`more_button` under the list)."""
    out = kept(rows)
    line = run_filters.count_line(len(out), len(rows))
    if len(out) > limit():
        line += f" · the first {limit()} shown"
    st.caption(line)
    return out[: limit()], len(out)


def _more() -> None:
    st.session_state[_LIMIT] = limit() + PAGE


def more_button(n_kept: int) -> None:
    """Under the list: "Show 50 more" while rows are left undrawn."""
    left = n_kept - limit()
    if left > 0:
        st.button(
            f"Show {min(PAGE, left)} more", key="runs_more", on_click=_more, icon=":material/expand_more:",
            help=f"{left} more runs match; the filters above find a run without scrolling",
        )  # fmt: skip
