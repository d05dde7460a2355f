"""Trainer-side telemetry: the mixin that turns training into the JSON-lines events of docs/telemetry.md.

It lives inside the composed trainer class (configured by class attributes), so it travels with the class when
ultralytics cloudpickles it for multi-GPU workers, and only rank 0 writes.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ultralytics.utils import RANK
from ultralytics.utils.torch_utils import unwrap_model

from trainers.customizations.records import ChosenMetric
from trainers.metrics import FITNESS, mean_f1
from trainers.run_files import STEPS_DIR
from trainers.statuses import RunStatus
from trainers.telemetry.step_summary import EpochSteps
from trainers.training.base import GradNorms
from trainers.training.system_readings import EpochClock

STEP_FLUSH_EVERY = 32  # step events are buffered as tensors and converted in one host sync ...
STEP_FLUSH_SECONDS = 1.0  # ... at most this long, so live charts stay live


def _on_train_start(trainer) -> None:
    trainer.emit_run_start()


def _on_train_epoch_start(trainer) -> None:
    trainer.epoch_clock.reset()
    trainer.epoch_steps.reset()


def _on_train_batch_start(trainer) -> None:
    trainer.epoch_clock.batch_start()


def _on_train_batch_end(trainer) -> None:
    trainer.epoch_clock.batch_end()


def _on_fit_epoch_end(trainer) -> None:
    trainer.emit_epoch()


def _on_train_end(trainer) -> None:
    trainer.close_telemetry()


@dataclass(slots=True)
class PendingStep:
    """One recorded optimizer step, buffered until the next flush (its norms and losses still tensors)."""

    epoch: int
    step: int
    lrs: list[float]  # per optimizer group, in group order
    norms: GradNorms
    losses: dict[str, Any]  # loss name -> detached tensor (or a number)
    t: float


CALLBACKS = (
    ("on_train_start", _on_train_start),
    ("on_train_epoch_start", _on_train_epoch_start),
    ("on_train_batch_start", _on_train_batch_start),
    ("on_train_batch_end", _on_train_batch_end),
    ("on_fit_epoch_end", _on_fit_epoch_end),
    ("on_train_end", _on_train_end),
)


class TelemetryMixin:
    """Outermost mixin: sees every other customization's results (F1 table, chosen metric, group names).

    Class attributes (set by the composer):
        telemetry_path: file to append events to; None disables telemetry.
        run_dir: run directory whose status.json is updated each epoch; None to skip.
        step_stride: write every n-th optimizer step (1 = every step).
        step_offset: optimizer steps already logged by earlier processes of this run (resume).
    """

    telemetry_path: str | None = None
    run_dir: str | None = None
    step_stride: int = 1
    step_offset: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Module-level functions pickle by reference, so in a DDP worker the callbacks it receives are these very
        # objects and the membership test keeps them from being registered twice.
        for event, fn in CALLBACKS:
            if fn not in self.callbacks[event]:
                self.add_callback(event, fn)
        self._telemetry_writer = None
        self._step_writer = None
        self._status_writer = None
        self._steps_failed = False
        self._pending_steps: list[PendingStep] = []
        self._last_flush = time.monotonic()
        self._global_step = int(self.step_offset)
        self._in_final_eval = False
        self.best_record: dict[str, Any] = {"epoch": None, "name": None, "value": None}
        self.epoch_steps = EpochSteps()  # this epoch's step columns, summarized into its epoch event
        self.epoch_clock = EpochClock()  # data wait vs compute, CPU and memory, for the epoch event

    # ---- writing ------------------------------------------------------------------------------------------------
    def _telemetry_out(self):
        if self._telemetry_writer is None and self.telemetry_path and RANK in {-1, 0}:
            from trainers.telemetry.events import TelemetryWriter

            self._telemetry_writer = TelemetryWriter(self.telemetry_path)
        return self._telemetry_writer

    def emit_event(self, event: str, **fields: Any) -> dict[str, Any] | None:
        """Write an event (rank 0 only) and return it as written; None where this process does not write."""
        out = self._telemetry_out()
        if out is None:
            return None
        self.flush_steps()  # keep the log in time order
        return out.emit(event, **fields)

    def write_run_status(self, **fields: Any) -> None:
        """Merge ``fields`` into status.json from a helper thread (rank 0): an fsync right after a checkpoint save
        waits for the checkpoints' data to reach the disk, and training need not (trainers.runs.status.StatusWriter)."""
        if self.run_dir and RANK in {-1, 0}:
            if self._status_writer is None:
                from trainers.runs.status import StatusWriter

                self._status_writer = StatusWriter(self.run_dir)
            self._status_writer.write(**fields)

    # ---- run start ----------------------------------------------------------------------------------------------
    def emit_run_start(self) -> None:
        import ultralytics

        from trainers import __version__

        if self.args.resume and self.run_dir and RANK in {-1, 0}:
            self.best_record = self._saved_best()
        from trainers.runs.notify import redacted_argv, redacted_recipe

        record = self.emit_event(
            "run_start",
            recipe=redacted_recipe(self.recipe),  # a webhook URL is a secret: the log keeps its scheme://host only
            names=[str(n) for n in self.data["names"].values()],
            param_groups=self.param_group_names(),
            versions={
                "workbench": __version__,
                "ultralytics": ultralytics.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            device=str(self.device),
            pid=os.getpid(),
            epochs=self.epochs,
            start_epoch=self.start_epoch + 1,
            resumed=bool(self.args.resume),
            world_size=self.world_size,
            best=self.best_record if self.best_record["epoch"] is not None else None,
            argv=redacted_argv(sys.argv),
            **self.run_state(),
        )
        if record is not None:
            self.on_run_start(record)
        self.write_run_status(status=RunStatus.RUNNING, pid=os.getpid(), epoch=self.start_epoch, epochs=self.epochs)

    def _saved_best(self) -> dict[str, Any]:
        """The best epoch an earlier attempt recorded in status.json: a resumed attempt starts from it, so status.json,
        run_end and the dashboard keep it while no later epoch beats it (best.pt is ultralytics' and already right)."""
        from trainers.runs.status import read_status

        status = read_status(self.run_dir)
        metric = status.get("best_metric") or {}
        if status.get("best_epoch") is None:
            return {"epoch": None, "name": None, "value": None}
        return {"epoch": status["best_epoch"], "name": metric.get("name"), "value": metric.get("value")}

    # ---- per optimizer step ---------------------------------------------------------------------------------
    def optimizer_step(self):
        super().optimizer_step()
        self._global_step += 1
        self.epoch_steps.taken += 1
        if self._telemetry_out() is None or self._global_step % max(int(self.step_stride), 1):
            return
        loss = self.loss_items if isinstance(self.loss_items, dict) else {}
        self._pending_steps.append(
            PendingStep(
                self.epoch + 1,
                self._global_step,
                [g["lr"] for g in self.optimizer.param_groups],
                self.last_grad_norms,
                {k: v.detach() if torch.is_tensor(v) else v for k, v in loss.items()},
                time.time(),
            )
        )
        if len(self._pending_steps) >= STEP_FLUSH_EVERY or time.monotonic() - self._last_flush > STEP_FLUSH_SECONDS:
            self.flush_steps()

    def flush_steps(self) -> None:
        """Convert buffered step tensors to numbers in one host transfer, write them, and hand them to the hooks."""
        steps, self._pending_steps = self._pending_steps, []
        self._last_flush = time.monotonic()
        if not steps or self._telemetry_writer is None:
            return
        columns = self._step_columns(steps)
        self.epoch_steps.add(columns)
        self._write_steps(columns)
        self.on_steps(columns)

    def _step_columns(self, steps: list[PendingStep]) -> dict[str, np.ndarray]:
        """The buffered steps as named columns (see :mod:`trainers.telemetry.step_summary`)."""
        names = self.param_group_names()
        loss_keys = list(steps[-1].losses)
        try:
            packed = self._pack_by_column(steps, loss_keys)
        except (KeyError, TypeError, RuntimeError, AttributeError, IndexError):  # ragged or odd steps: one at a time
            packed = self._pack_by_step(steps, loss_keys)
        ng = len(names)
        max_norm = np.array([s.norms.max_norm if s.norms.max_norm > 0 else np.nan for s in steps], dtype=np.float32)
        total = packed[:, 0]
        columns: dict[str, np.ndarray] = {
            "step": np.array([s.step for s in steps], dtype=np.int64),
            "epoch": np.array([s.epoch for s in steps], dtype=np.int32),
            "t": np.array([s.t for s in steps], dtype=np.float64),
            "grad_norm": total,
            "clipped": (np.nan_to_num(max_norm, nan=np.inf) < total).astype(np.uint8),
            "max_norm": max_norm,
        }
        lrs = np.array([s.lrs for s in steps], dtype=np.float64)
        for i, name in enumerate(names):
            columns[f"lr/{name}"] = lrs[:, i]
            columns[f"grad_norm/{name}"] = packed[:, 1 + i]
        for i, key in enumerate(loss_keys):
            columns[f"loss/{key}"] = packed[:, 1 + ng + i]
        return columns

    @staticmethod
    def _pack_by_column(steps: list[PendingStep], loss_keys: list[str]) -> np.ndarray:
        """``[total, group norms..., losses...]`` per step as one float32 array, in one host transfer.

        A handful of ops per flush, whatever the number of steps: one stack per column (every step has the same
        groups and the same loss tensors), then one concatenation and one copy to the host.
        """
        parts = [torch.stack([s.norms.total for s in steps]).float().reshape(len(steps), 1)]
        parts.append(torch.stack([s.norms.groups for s in steps]).float().reshape(len(steps), -1))
        for key in loss_keys:
            parts.append(torch.stack([s.losses[key] for s in steps]).float().reshape(len(steps), 1))
        return torch.cat(parts, dim=1).cpu().numpy()

    @staticmethod
    def _pack_by_step(steps: list[PendingStep], loss_keys: list[str]) -> np.ndarray:
        """The same array for steps that cannot be stacked by column (a loss key missing or a plain float)."""
        return (
            torch.stack(
                [
                    torch.cat(
                        [
                            s.norms.total.reshape(1).float(),
                            s.norms.groups.reshape(-1).float(),
                            torch.stack(
                                [
                                    torch.as_tensor(s.losses.get(k, float("nan")), device=s.norms.total.device).float()
                                    for k in loss_keys
                                ]
                            )
                            if loss_keys
                            else s.norms.total.new_zeros(0),
                        ]
                    )
                    for s in steps
                ]
            )
            .cpu()
            .numpy()
        )  # one host transfer for the whole batch of steps

    def _write_steps(self, columns: dict[str, np.ndarray]) -> None:
        """Append the steps to the run's step store (``<run>/steps/``, docs/step-store.md), opened on first use.

        The store takes the rows in one write (about 70 us for 32 rows) and compacts in a background thread, so
        training never waits on it. A store that cannot be written is reported once and training goes on.
        """
        if self._step_writer is None and not self._steps_failed:
            try:
                from trainers.telemetry.steps import StepWriter, resume_info

                folder = self.steps_folder()
                self._step_writer = StepWriter(
                    folder,
                    attempt=resume_info(folder).attempt,
                    first_step=int(self.step_offset),
                    columns={k: v.dtype for k, v in columns.items() if k not in ("step", "epoch", "t")},
                )
            except Exception as e:  # telemetry must never stop training
                self._steps_failed = True
                print(f"workbench: step store disabled ({type(e).__name__}: {e})", file=sys.stderr)
                return
        if self._step_writer is not None:
            try:
                self._step_writer.append(columns)
            except Exception as e:
                self._steps_failed, self._step_writer = True, None
                print(f"workbench: step store disabled ({type(e).__name__}: {e})", file=sys.stderr)

    def steps_folder(self):
        """``<run>/steps``: next to the events log."""
        from pathlib import Path

        return Path(self.telemetry_path).parent / STEPS_DIR

    def close_telemetry(self) -> None:
        """Flush buffered steps, close the step store (compacting what is left) and wait for the status.json write
        in flight; safe to call twice. Called at the end of training and before the run's final status is written."""
        self.flush_steps()
        writer, self._step_writer = self._step_writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as e:
                print(f"workbench: could not close the step store ({type(e).__name__}: {e})", file=sys.stderr)
        if self._status_writer is not None:
            self._status_writer.flush()

    # ---- per epoch ----------------------------------------------------------------------------------------------
    def final_eval(self):
        self._in_final_eval = True
        try:
            super().final_eval()
        finally:
            self._in_final_eval = False

    def emit_epoch(self) -> None:
        self.flush_steps()
        final = self._in_final_eval
        if final or self.validation.per_class is None:  # final_eval validates best.pt without validate()
            self.record_validation()
        table = self.validation.per_class
        metrics = {k: float(v) for k, v in (self.metrics or {}).items()}
        if self.tloss is not None:
            metrics.update(self.label_loss_items(self.tloss, prefix="train"))
        model = unwrap_model(self.model)
        trainable = frozen = 0
        for p in model.parameters():  # one pass
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
        epoch = self.epoch + (0 if final else 1)  # final_eval has already advanced self.epoch by one
        chosen = (self.validation.chosen or ChosenMetric(FITNESS.name, self.fitness)).to_dict()
        best_saved = not final and self.fitness is not None and self.best_fitness == self.fitness
        if best_saved:
            self.best_record = {"epoch": epoch, "name": chosen["name"], "value": chosen["value"]}
        record = self.emit_event(
            "epoch",
            epoch=epoch,
            final_eval=final,
            metrics=metrics,
            per_class=table,
            mean_f1=mean_f1(table),
            fitness=None if final else self.fitness,
            best_fitness=self.best_fitness,
            best_saved=best_saved,
            best_metric=chosen if not final else None,
            params={"trainable": trainable, "frozen": frozen},
            lr={n: g["lr"] for n, g in zip(self.param_group_names(), self.optimizer.param_groups, strict=True)},
            epoch_time=self.epoch_time,
            step=self._global_step,
            steps=None if final else self.epoch_steps.summary(),
            system=None if final else self.epoch_clock.reading(self.device),
        )
        if record is not None:
            self.on_epoch_logged(record)
        if not final:
            best = self.best_record
            known = {"best_epoch": best["epoch"], "best_metric": {"name": best["name"], "value": best["value"]}}
            self.write_run_status(
                status=RunStatus.RUNNING, epoch=epoch, epochs=self.epochs, **(known if best["epoch"] else {})
            )
