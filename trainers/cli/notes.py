"""``workbench note RUN TEXT`` and ``workbench tag RUN TAG... [--remove]``: a run's note and tags from the command line,
the same file the Runs page and the dashboard edit (:mod:`trainers.runs.notes`); ``workbench runs --json`` lists them.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_note(args: argparse.Namespace) -> int:
    """``workbench note RUN TEXT``: replace the run's note; an empty TEXT clears it."""
    from trainers.runs.folder import resolve_run, runs_root
    from trainers.runs.notes import set_note

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    notes = set_note(run_dir, args.text)
    print(f"run {run_dir.name!r}: note {'set' if notes.note else 'cleared'}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """``workbench tag RUN TAG...``: add the tags (``--remove``: remove them); prints the run's tags after."""
    from trainers.runs.folder import resolve_run, runs_root
    from trainers.runs.notes import add_tags, remove_tags

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    notes = (remove_tags if args.remove else add_tags)(run_dir, args.tags)
    print(f"run {run_dir.name!r}: tags {', '.join(notes.tags) or '(none)'}")
    return 0


def add_parsers(sub: Any, runs_dir_help: str) -> None:
    """The ``note`` and ``tag`` subcommands on ``workbench``'s subparsers."""
    p = sub.add_parser("note", help="set a run's free-text note (an empty TEXT clears it)")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("text", metavar="TEXT", help="the note (quote it); '' clears the note")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_note)

    p = sub.add_parser("tag", help="add tags to a run (--remove: remove them)")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument(
        "tags", metavar="TAG", nargs="+",
        help="lower-cased; no spaces or commas (join words with '-'), at most 40 characters",
    )  # fmt: skip
    p.add_argument("--remove", action="store_true", help="remove these tags instead of adding them")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_tag)
