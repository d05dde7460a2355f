"""Run statuses and finding severities: the words written to status.json, telemetry and ``--json`` output, each with
the label and the colour the UI shows it in.

Both are ``str``-valued enums: a member *is* its word (``RunStatus.COMPLETED == "completed"``, ``json.dumps`` writes
``"completed"``, ``str()`` and f-strings give the word), so files keep the same words and a status read back from
JSON compares equal to a member. Colours are Streamlit's badge colour names (``st.badge(color=...)``,
``:red-badge[...]``). This is the only module of ``trainers/`` and ``app/`` that spells these words
(``tests/test_vocabulary.py`` checks it). Nothing here imports anything beyond the standard library.
"""

from __future__ import annotations

from enum import Enum

UNKNOWN_COLOUR = "gray"  # a word this version does not know (an older or newer run): shown, never an error


class _Word(str, Enum):
    """A ``str`` enum member with a label and a colour; ``str()`` and ``format()`` give the word itself."""

    label: str
    colour: str

    def __new__(cls, value: str, label: str, colour: str) -> _Word:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.colour = colour
        return member

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return self.value.__format__(spec)

    @classmethod
    def colour_of(cls, word: object) -> str:
        """The colour of ``word`` (a member or its string), :data:`UNKNOWN_COLOUR` for a word that is not one."""
        try:
            return cls(word).colour
        except ValueError:
            return UNKNOWN_COLOUR


class RunStatus(_Word):
    """A run's status (``status.json``'s ``status``; ``run_end.status`` is one of :data:`ENDED`), and the two words
    that are shown for a run but never written to status.json (:attr:`QUEUED`, :attr:`EMPTY`)."""

    STARTING = ("starting", "starting", "blue")  # the launcher reserved the folder; the process is on its way
    RUNNING = ("running", "running", "blue")  # the training process owns it and reports each epoch
    COMPLETED = ("completed", "completed", "green")  # trained every planned epoch (or an early stop said done)
    STOPPED = ("stopped", "stopped", "orange")  # asked to stop (user, sweep early stop, doctor_stop): resumable
    FAILED = ("failed", "failed", "red")  # an error, or the process died without a run_end
    QUEUED = ("queued", "queued", "blue")  # shown only: a starting Ray job still waiting for cluster resources
    EMPTY = ("empty", "empty", "gray")  # shown only: a telemetry log with no event yet (RunLog.status)


# Tuples, not sets: ordered for messages, and ``x in`` them is False (never a TypeError) for a damaged file's list.
STATUSES = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED)
"""The values ``status.json``'s ``status`` may hold (:func:`trainers.runs.status.update_status` refuses others)."""
ACTIVE_STATUSES = (RunStatus.STARTING, RunStatus.RUNNING)
"""A process owns the run (or is about to): it can be stopped, not resumed."""
ENDED = (RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED)
"""How an attempt ends: the values of ``run_end.status`` (``docs/telemetry.md``)."""
SUCCEEDED = (RunStatus.COMPLETED, RunStatus.STOPPED)
"""Ends that exit 0: a stop is what was asked for, not an error."""


def ended_status(word: object) -> RunStatus:
    """``word`` as an end status; anything that is not one of :data:`ENDED` (a damaged or foreign run_end) is
    :attr:`RunStatus.FAILED`."""
    return RunStatus(word) if word in ENDED else RunStatus.FAILED


class Severity(_Word):
    """How bad a doctor finding is, most severe first (the order findings are listed in)."""

    chart_colour: str | None

    def __new__(cls, value: str, label: str, colour: str, chart_colour: str | None) -> Severity:
        member = str.__new__(cls, value)
        member._value_, member.label, member.colour = value, label, colour
        member.chart_colour = chart_colour  # the finding's mark on the charts; None: not marked
        return member

    CRITICAL = ("critical", "critical", "red", "#d62728")  # the run is broken
    WARNING = ("warning", "warning", "orange", "#ff7f0e")  # it trains worse than it could
    INFO = ("info", "info", "blue", None)  # worth knowing, nothing to change


SEVERITIES: tuple[Severity, ...] = tuple(Severity)
"""Most severe first: the order findings are listed in."""
