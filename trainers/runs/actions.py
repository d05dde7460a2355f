"""Who did what to a run: ``status.json``'s ``actions``, one ``{action, by, at}`` per start, stop, resume or archive
done from the UI, appended under the run folder's lock (:func:`~trainers.runs.status.update_status`), so a training
process writing its own fields at the same moment loses nothing and is lost by nothing.

``by`` is the name given at sign-in (``workbench ui`` beyond loopback, trainers/cli/ui_gate.py), or None when the UI
has no sign-in (loopback) or the person gave no name; ``workbench stop`` and ``workbench resume`` record the login
name marked ``(CLI)`` (:func:`cli_user`).
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from trainers.runs.status import now_iso, update_status
from trainers.statuses import RunStatus

ACTIONS = ("start", "stop", "resume", "archive", "restore")


def record_action(run_dir: str | os.PathLike[str], action: str, by: str | None) -> dict[str, Any]:
    """Append ``{action, by, at}`` to the run's ``actions`` and return the status as written.

    Raises:
        ValueError: ``action`` is not one of :data:`ACTIONS` (a programming error, not user input).
        RunError: status.json exists but cannot be read (it is not replaced).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown run action {action!r}; one of {ACTIONS}")
    entry = {"action": action, "by": by, "at": now_iso()}
    return update_status(run_dir, lambda current: {"actions": [*actions_of(current), entry]})


def cli_user() -> str | None:
    """Who runs this ``workbench`` command: the login name, marked as the command line (``"ada (CLI)"``); None when
    the system knows no name for the process' user."""
    try:
        return f"{getpass.getuser()} (CLI)"
    except (OSError, KeyError, ImportError):  # no $USER/$LOGNAME and no passwd entry (some containers)
        return None


def actions_of(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's recorded actions, oldest first (``[]`` for a run from before they were recorded)."""
    actions = status.get("actions")
    return [a for a in actions if isinstance(a, dict)] if isinstance(actions, list) else []


def last_action_line(status: dict[str, Any]) -> str | None:
    """``"stopped by Ada, 2026-12-08 10:02"``: the newest action, as the Runs page shows it (None: nothing recorded)."""
    actions = actions_of(status)
    if not actions:
        return None
    last = actions[-1]
    done = {"start": "started", "stop": RunStatus.STOPPED.value, "resume": "resumed", "archive": "archived"}
    done["restore"] = "restored"
    when = str(last.get("at") or "")[:16].replace("T", " ")
    return f"{done.get(str(last.get('action')), str(last.get('action')))} by {last.get('by') or 'someone'}, {when}"
