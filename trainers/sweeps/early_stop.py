"""Early stop of weak sweep variants: one rung, decided on the telemetry each run already writes.

The rule (asynchronous successive halving with one rung, as ASHA decides at a rung): when a variant has finished
``epoch`` epochs, its score is the best ``fitness`` of its epoch events up to that epoch (``fitness`` is what best.pt
is chosen by: the recipe's best metric, on a higher-is-better scale; losses are negated). Among the ``n`` variants
that have reached the rung so far (itself included), it goes on if it ranks within the best ``ceil(keep * n)``;
otherwise it is stopped (a clean stop: its weights stay, it can be resumed). The first variant to reach the rung
always goes on; a tie goes on. A variant with no score (every fitness NaN) ranks last.

Why not Ray Tune's ASHA: Tune would own the trials (its own processes, ``tune.report`` from inside the trainer,
Ray required), while a sweep variant is an ordinary run that the launcher starts and that also runs without Ray.
This rule only reads ``telemetry.jsonl`` (epoch events, docs/telemetry.md), works the same on both backends, and is
a pure function that tests can check without training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainers.metrics import FITNESS
from trainers.run_files import TELEMETRY_FILE


def rung_score(events: Iterable[Mapping[str, Any]], rung: int) -> tuple[bool, float | None]:
    """Whether the epoch events reach epoch ``rung``, and the best ``fitness`` up to it (None: no number)."""
    reached, best = False, None
    for e in events:
        if e.get("event") != "epoch" or e.get("final_eval"):
            continue
        epoch = e.get("epoch")
        if not isinstance(epoch, int):
            continue
        if epoch >= rung:
            reached = True
        value = e.get(FITNESS.key)
        if epoch <= rung and isinstance(value, (int, float)) and math.isfinite(value):
            best = value if best is None else max(best, value)
    return reached, best


def keeps(score: float | None, earlier: Iterable[float | None], keep: float) -> bool:
    """Whether a variant with ``score`` at the rung goes on, given the scores of those that reached it before."""
    earlier = list(earlier)
    n = len(earlier) + 1
    kept = max(1, math.ceil(keep * n - 1e-9))
    mine = -math.inf if score is None else score
    rank = 1 + sum((-math.inf if s is None else s) > mine for s in earlier)
    return rank <= kept


class EarlyStopper:
    """Reads each variant's new telemetry as the sweep polls it, and decides once per variant at the rung."""

    def __init__(self, epoch: int, keep: float):
        self.epoch, self.keep = epoch, keep
        self.scores: dict[str, float | None] = {}  # variants that reached the rung, in the order they did
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._offsets: dict[str, int] = {}

    def observe(self, run_dir: Path) -> tuple[bool, str] | None:
        """Read what ``run_dir`` appended; at its rung, return (go on?, why) once; else None."""
        from trainers.telemetry.events import read_events

        name = run_dir.name
        if name in self.scores:
            return None
        events, self._offsets[name] = read_events(run_dir / TELEMETRY_FILE, self._offsets.get(name, 0))
        seen = self._events.setdefault(name, [])
        seen.extend(e for e in events if e.get("event") == "epoch")
        reached, score = rung_score(seen, self.epoch)
        if not reached:
            return None
        earlier = list(self.scores.values())
        go_on = keeps(score, earlier, self.keep)
        self.scores[name] = score
        shown = "none" if score is None else f"{score:.4f}"
        kept = max(1, math.ceil(self.keep * (len(earlier) + 1) - 1e-9))
        why = (
            f"fitness {shown} at epoch {self.epoch}: "
            f"{'within' if go_on else 'outside'} the best {kept} of {len(earlier) + 1} variants there so far"
        )
        return go_on, why
