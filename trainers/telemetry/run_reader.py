"""Follow one run's telemetry: the events log read from its last byte offset, the step store polled, one folded
:class:`~trainers.telemetry.run_log.RunLog` kept up to date. The dashboard, the CLI and the tests read runs with it.

Each :meth:`RunReader.poll` costs two ``stat`` calls when nothing changed, reads only the new bytes of the events log
and only the new files and tail bytes of the step store; memory is the folded events plus the step store's bounded
caches, whatever the run's length. ``version`` changes exactly when something new was read, so a caller can rebuild
only what changed (the dashboard keeps figures per version).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from trainers.run_files import STEPS_DIR, TELEMETRY_FILE
from trainers.telemetry.run_log import RunLog
from trainers.telemetry.step_data import StoreSteps


class RunReader:
    """Incremental reader of one run folder's telemetry (thread-safe: Streamlit serves sessions in threads).

    A log that shrank or was replaced is read again from the start.

    Attributes:
        offset: Byte offset just after the last complete events line read.
        version: Increments whenever :meth:`poll` read something new (events or steps).
        epochs_version: Increments when the epoch-level data changed (epochs, freezes, run end), not for steps alone.
    """

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / TELEMETRY_FILE
        self.offset = 0
        self.version = 0
        self.epochs_version = 0
        self.log = RunLog()
        self._store: StoreSteps | None = None
        self._ino: int | None = None
        self._snapshot: RunLog | None = None
        self._lock = threading.Lock()

    def poll(self) -> RunLog:
        """Read what was written since the last poll; return a snapshot of the whole log (safe to read)."""
        from trainers.telemetry.events import read_events

        with self._lock:
            changed = False
            try:
                st = self.path.stat()
                size, ino = st.st_size, st.st_ino
            except FileNotFoundError:
                size, ino = 0, None
            if size < self.offset or (self._ino is not None and ino is not None and ino != self._ino):
                self.offset, self.log, self._snapshot = 0, RunLog(), None
                changed = True
            self._ino = ino
            if size > self.offset:
                events, self.offset = read_events(self.path, self.offset)
                if events:
                    before = (len(self.log.epochs), self.log.run_end, len(self.log.unfreezes), self.log.final_eval)
                    self.log.extend(events)
                    after = (len(self.log.epochs), self.log.run_end, len(self.log.unfreezes), self.log.final_eval)
                    changed = True
                    if after != before or any(e.get("event") == "epoch" for e in events):
                        self.epochs_version += 1
            changed |= self._poll_steps()
            if changed:
                self.version += 1
                self._snapshot = None
            if self._snapshot is None:
                self._snapshot = self.log.snapshot()
            return self._snapshot

    def _poll_steps(self) -> bool:
        """Attach the step store once it exists, and poll it."""
        if self._store is None:
            folder = self.run_dir / STEPS_DIR
            if not folder.is_dir():
                return False
            from trainers.telemetry.steps import StepStore

            self._store = StoreSteps(StepStore(folder))
            self.log.steps = self._store  # a run with a store: its steps come from there, not from events
        return self._store.poll()
