"""Alerts: one JSON message to the recipe's ``notify.url`` when a run ends or the doctor raises a critical finding.

The message is Slack-compatible (its ``text`` is one line, which is all an incoming webhook reads) and carries the
structured fields too: ``run``, ``status``, ``best`` (metric name, value, epoch) and ``finding`` (id, title, severity,
evidence). Delivery never blocks training: :meth:`Notifier.post` puts the message on a bounded queue that a daemon
thread sends with urllib (:data:`TIMEOUT_S` per try, retried after :data:`BACKOFF_S`); at the end of a run the
training process waits at most :data:`END_WAIT_S` for what is still queued. Every delivery, sent or not, is recorded
as a ``notify`` event in the run's telemetry.jsonl (``ok``, ``error``, ``tries``); a failed one is never fatal.

Webhook URLs are secrets (Slack's carry the token in the path): only ``scheme://host[:port]`` (:func:`endpoint`) is
ever written to a log, an event or an error message. Standard library only, beside the recipe and the run folder.
"""

from __future__ import annotations

import atexit
import json
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trainers.metrics import FITNESS, MAP50_95, metric_label
from trainers.recipe.model import NotifySettings, Recipe
from trainers.run_files import RECIPE_FILE, TELEMETRY_FILE
from trainers.statuses import RunStatus

TIMEOUT_S = 5.0  # per try: a webhook answers in well under a second; one that accepts and never answers costs this
BACKOFF_S = (1.0, 2.0, 4.0)  # waits before the 2nd, 3rd and 4th try (exponential): 4 tries over ~7 s plus timeouts
END_WAIT_S = 5.0  # the most a finished run waits for its end message to go out before its process exits
QUEUE_SIZE = 16  # messages waiting to be sent; a run posts a handful, so a full queue means the endpoint is stuck
END, CRITICAL = "end", "critical"
NOTIFY_EVENT = "notify"

Send = Callable[[str, bytes, float], int]  # (url, body, timeout) -> HTTP status; raises on failure


# ---- what is sent -------------------------------------------------------------------------------------------------
def endpoint(url: str) -> str:
    """The part of ``url`` that may be logged: ``scheme://host[:port]`` (no user, password, path or query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def _best(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"name", "label", "value", "epoch"}`` of the run's best epoch from a status (None before one)."""
    metric = status.get("best_metric") or {}
    if status.get("best_epoch") is None or metric.get("value") is None:
        return None
    name = metric.get("name")
    # ultralytics 8.4's fitness is mAP50-95 alone (DetMetrics weights [0, 0, 0, 1]): say so rather than "fitness"
    label = MAP50_95.label if name == FITNESS.name else metric_label(name)
    return {"name": name, "label": label, "value": metric["value"], "epoch": status["best_epoch"]}


def end_message(run: str, status: Mapping[str, Any]) -> dict[str, Any]:
    """The message for a run that ended, from its status after the end was recorded (``end_run``'s return).

    ``text``: ``run NAME completed: best mAP50-95 0.61 at epoch 7``; a failed run adds its error, a stopped one its
    stop reason when it was not the user.
    """
    word = str(status.get("status") or RunStatus.FAILED)
    best = _best(status)
    text = f"run {run} {word}"
    details = []
    if best is not None:
        details.append(f"best {best['label']} {best['value']:.3g} at epoch {best['epoch']}")
    if word == RunStatus.FAILED and status.get("error"):
        details.append(str(status["error"]))
    if word == RunStatus.STOPPED and status.get("stop_reason"):
        details.append(str(status["stop_reason"]))
    if details:
        text += ": " + "; ".join(details)
    return {"text": _one_line(text), "kind": END, "run": run, "status": word, "best": best, "finding": None,
            "error": status.get("error"), "stop_reason": status.get("stop_reason")}  # fmt: skip


def critical_message(run: str, finding: Any, status: str = RunStatus.RUNNING) -> dict[str, Any]:
    """The message for a critical finding during training (``finding``: the doctor's Finding or its dict)."""
    data = finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)
    found = {k: data.get(k) for k in ("id", "title", "severity", "evidence")}
    return {"text": _one_line(f"run {run}: {found['severity']} finding: {found['title']}"), "kind": CRITICAL,
            "run": run, "status": str(status), "best": None, "finding": found}  # fmt: skip


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---- how it is sent -----------------------------------------------------------------------------------------------
def urllib_send(url: str, body: bytes, timeout: float) -> int:
    """POST ``body`` as JSON to ``url``; the HTTP status (2xx), or raises (urllib's errors, a timeout)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only: the recipe checks)
        response.read(1024)
        return int(response.status)


@dataclass
class Delivery:
    """How one message went: sent (``ok``) or not, after how many tries, the last error (no secret in it)."""

    ok: bool
    tries: int
    error: str | None = None
    http_status: int | None = None


def deliver(
    url: str,
    message: Mapping[str, Any],
    *,
    send: Send = urllib_send,
    sleep: Callable[[float], None] = time.sleep,
    backoff: Iterable[float] = BACKOFF_S,
    timeout: float = TIMEOUT_S,
    give_up: Callable[[], bool] = lambda: False,
) -> Delivery:
    """Send ``message``, retrying after each wait of ``backoff`` on any failure (an error, a timeout, a non-2xx).

    ``give_up`` is asked before each retry (the process is exiting). The error names only :func:`endpoint`.
    """
    body = json.dumps(message, default=str).encode("utf-8")
    waits = list(backoff)
    error, code, tries = None, None, 0
    for wait in [None, *waits]:
        if wait is not None:
            if give_up():
                break
            sleep(wait)
        tries += 1
        try:
            code = send(url, body, timeout)
        except urllib.error.HTTPError as e:
            code, error = e.code, f"HTTP {e.code}"
            continue
        except Exception as e:  # any failure of one try is retried; none reaches training
            error = _safe_error(e, url)
            continue
        if 200 <= code < 300:
            return Delivery(True, tries, None, code)
        error = f"HTTP {code}"
    return Delivery(False, tries, error, code)


def _safe_error(e: BaseException, url: str) -> str:
    reason = getattr(e, "reason", None) or e
    text = f"{type(e).__name__}: {reason}".replace(url, endpoint(url))
    return re.sub(r"https?://\S+", lambda m: endpoint(m.group(0)), text)


# ---- recording ----------------------------------------------------------------------------------------------------
def record(run_dir: Path, message: Mapping[str, Any], url: str, result: Delivery) -> None:
    """Append a ``notify`` event (kind, ok, tries, error, endpoint) to the run's telemetry; never raises."""
    from trainers.telemetry.events import TelemetryWriter

    try:
        with TelemetryWriter(Path(run_dir) / TELEMETRY_FILE) as out:
            out.emit(NOTIFY_EVENT, kind=message.get("kind"), text=message.get("text"), ok=result.ok, tries=result.tries,
                     error=result.error, http_status=result.http_status, endpoint=endpoint(url))  # fmt: skip
    except OSError as e:
        print(f"workbench: notify: could not record the delivery ({e})", file=sys.stderr)


# ---- the sender thread --------------------------------------------------------------------------------------------
@dataclass
class _Pending:
    message: dict[str, Any]
    settled: bool = False


@dataclass
class Notifier:
    """Sends one run's messages from a daemon thread; :meth:`post` never waits.

    Args:
        settings: The recipe's ``notify`` block (its URL and which events it wants).
        run_dir: The run folder, whose telemetry records each delivery.
        send, sleep, backoff, timeout: As for :func:`deliver` (tests inject them).
    """

    settings: NotifySettings
    run_dir: Path
    send: Send = urllib_send
    sleep: Callable[[float], None] = time.sleep
    backoff: tuple[float, ...] = BACKOFF_S
    timeout: float = TIMEOUT_S
    _queue: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=QUEUE_SIZE), init=False, repr=False)
    _lock: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _waiting: list[_Pending] = field(default_factory=list, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _closing: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _all_ok: bool = field(default=True, init=False, repr=False)  # every message settled so far was sent

    def wants(self, kind: str) -> bool:
        """Whether the recipe asked for messages of ``kind`` (``end`` or ``critical``)."""
        return kind in self.settings.on

    def busy(self) -> bool:
        """Whether messages are still waiting to be sent (or given up on)."""
        with self._lock:
            return bool(self._waiting)

    def post(self, message: dict[str, Any]) -> bool:
        """Queue ``message`` for sending (if its kind is wanted); returns at once. False when it was dropped."""
        if not self.wants(message.get("kind", "")):
            return False
        item = _Pending(message)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="workbench-notify", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(item)
                self._waiting.append(item)
                return True
            except queue.Full:
                pass
        self._settle(item, Delivery(False, 0, f"not sent: {QUEUE_SIZE} messages already waiting"))
        return False

    def close(self, wait_s: float = END_WAIT_S) -> bool:
        """Wait at most ``wait_s`` for the queued messages; those still unsent are recorded as given up.

        Returns whether everything queued was delivered.
        """
        deadline = time.monotonic() + max(wait_s, 0.0)
        with self._lock:
            while self._waiting and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
            left = list(self._waiting)
            self._closing.set()  # the thread stops retrying: nobody will wait for it
        for item in left:
            self._settle(item, Delivery(False, 0, f"not delivered within {wait_s:g} s of the run's end (gave up)"))
        return not left and self._all_ok

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item.settled:
                continue
            result = deliver(self.settings.url, item.message, send=self.send, sleep=self.sleep, backoff=self.backoff,
                             timeout=self.timeout, give_up=self._closing.is_set)  # fmt: skip
            self._settle(item, result)

    def _settle(self, item: _Pending, result: Delivery) -> None:
        with self._lock:
            if item.settled:  # the thread and close() may both try: the first one records it
                return
            item.settled = True
        record(self.run_dir, item.message, self.settings.url, result)
        if not result.ok:
            print(f"workbench: notify to {endpoint(self.settings.url)} failed: {result.error}", file=sys.stderr)
        with self._lock:  # only now is it done: close() returns with every delivery on record
            if item in self._waiting:
                self._waiting.remove(item)
            self._all_ok = self._all_ok and result.ok
            self._lock.notify_all()


# ---- run ends seen from outside the training process ------------------------------------------------------------
_OUTSIDE: list[Notifier] = []


def notify_recorded_end(run_dir: str | Path, status: Mapping[str, Any], wait_s: float = 0.0) -> Notifier | None:
    """Post the end message of a run whose end someone else recorded (the launcher marking a killed run failed).

    Reads the run's recipe.yaml for its ``notify`` block; returns at once unless ``wait_s``. Messages still queued
    when this process exits get up to :data:`END_WAIT_S` more (an exit hook), so a one-shot ``workbench runs`` that
    settles a dead run still sends it.
    """
    run_dir = Path(run_dir)
    try:
        recipe = Recipe.from_yaml((run_dir / RECIPE_FILE).read_text(encoding="utf-8"), str(run_dir / RECIPE_FILE))
    except Exception:  # no recipe, or one this version cannot read: nothing to notify, and never an error here
        return None
    if recipe.notify is None or END not in recipe.notify.on:
        return None
    notifier = Notifier(recipe.notify, run_dir)
    notifier.post(end_message(run_dir.name, status))
    if wait_s:
        notifier.close(wait_s)
    else:
        _OUTSIDE[:] = [n for n in _OUTSIDE if n.busy()] + [notifier]  # a long-lived UI process keeps no sent ones
    return notifier


def _drain_at_exit() -> None:
    deadline = time.monotonic() + END_WAIT_S
    for notifier in _OUTSIDE:
        notifier.close(max(deadline - time.monotonic(), 0.0))


atexit.register(_drain_at_exit)  # costs nothing when no message is waiting


# ---- secrets out of what the run logs -----------------------------------------------------------------------------
def redacted_recipe(recipe: Recipe) -> dict[str, Any]:
    """``recipe.to_dict()`` with ``notify.url`` cut to :func:`endpoint` (for the run_start event)."""
    data = recipe.to_dict()
    if isinstance(data.get("notify"), dict) and data["notify"].get("url"):
        data["notify"] = {**data["notify"], "url": endpoint(data["notify"]["url"])}
    return data


def redacted_argv(argv: list[str]) -> list[str]:
    """``argv`` with the value of ``--notify`` cut to :func:`endpoint` (for the run_start event)."""
    out, after_flag = [], False
    for arg in argv:
        if after_flag:
            out.append(endpoint(arg))
        elif arg.startswith("--notify="):
            out.append("--notify=" + endpoint(arg.split("=", 1)[1]))
        else:
            out.append(arg)
        after_flag = arg == "--notify"
    return out


def with_notify(recipe: Recipe, url: str) -> Recipe:
    """``recipe`` with its ``notify`` block set to ``url`` (``--notify URL``), keeping its ``on`` list if it had one.

    Raises:
        RecipeError: The URL is not http(s) (one line naming ``--notify``).
    """
    from trainers.errors import Problem, RecipeError

    on = recipe.notify.on if recipe.notify is not None else NotifySettings.model_fields["on"].default
    try:
        settings = NotifySettings(url=url, on=on)
    except ValueError:
        raise RecipeError(Problem("notify.url", "--notify: must be an http:// or https:// URL with a host")) from None
    return recipe.model_copy(update={"notify": settings})
