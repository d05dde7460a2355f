"""Trainer-side telemetry: the mixin that turns training into the JSON-lines events of docs/telemetry.md.

It lives inside the composed trainer class (configured by class attributes), so it travels with the class when
ultralytics cloudpickles it for multi-GPU workers, and only rank 0 writes.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

import torch
from ultralytics.utils import RANK
from ultralytics.utils.torch_utils import unwrap_model

from trainers.metrics import mean_f1, per_class_table

STEP_FLUSH_EVERY = 32  # step events are buffered as tensors and converted in one host sync ...
STEP_FLUSH_SECONDS = 1.0  # ... at most this long, so live charts stay live


def _on_train_start(trainer) -> None:
    trainer.wb_emit_run_start()


def _on_fit_epoch_end(trainer) -> None:
    trainer.wb_emit_epoch()


class TelemetryMixin:
    """Outermost mixin: sees every other customization's results (F1 table, chosen metric, group names).

    Class attributes (set by the composer):
        wb_telemetry_path: file to append events to; None disables telemetry.
        wb_run_dir: run directory whose status.json is updated each epoch; None to skip.
        wb_step_stride: write every n-th optimizer step (1 = every step).
        wb_step_offset: optimizer steps already logged by earlier processes of this run (resume).
    """

    wb_telemetry_path: str | None = None
    wb_run_dir: str | None = None
    wb_step_stride: int = 1
    wb_step_offset: int = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Module-level functions pickle by reference, so in a DDP worker the callbacks it receives are these very
        # objects and the membership test keeps them from being registered twice.
        for event, fn in (("on_train_start", _on_train_start), ("on_fit_epoch_end", _on_fit_epoch_end)):
            if fn not in self.callbacks[event]:
                self.add_callback(event, fn)
        self._wb_writer = None
        self._wb_steps: list[tuple] = []
        self._wb_last_flush = time.monotonic()
        self._wb_step = int(self.wb_step_offset)
        self._wb_in_final_eval = False
        self.wb_best: dict[str, Any] = {"epoch": None, "name": None, "value": None}

    # ---- writing ------------------------------------------------------------------------------------------------
    def _wb_out(self):
        if self._wb_writer is None and self.wb_telemetry_path and RANK in {-1, 0}:
            from trainers.telemetry import TelemetryWriter

            self._wb_writer = TelemetryWriter(self.wb_telemetry_path)
        return self._wb_writer

    def wb_event(self, event: str, **fields: Any) -> None:
        out = self._wb_out()
        if out is not None:
            self.wb_flush_steps()  # keep the log in time order
            out.emit(event, **fields)

    def wb_status(self, **fields: Any) -> None:
        if self.wb_run_dir and RANK in {-1, 0}:
            from trainers.runs import write_status

            write_status(self.wb_run_dir, **fields)

    # ---- run start ----------------------------------------------------------------------------------------------
    def wb_emit_run_start(self) -> None:
        import ultralytics

        from trainers import __version__

        self.wb_event(
            "run_start",
            recipe=self.wb_recipe,
            names=[str(n) for n in self.data["names"].values()],
            param_groups=self.wb_group_names(),
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
            class_weights=getattr(self, "wb_class_weights", None),
            argv=sys.argv,
        )
        self.wb_status(status="running", pid=os.getpid(), epoch=self.start_epoch, epochs=self.epochs)

    # ---- per optimizer step ---------------------------------------------------------------------------------
    def optimizer_step(self):
        super().optimizer_step()
        self._wb_step += 1
        if self._wb_out() is None or self._wb_step % max(int(self.wb_step_stride), 1):
            return
        total, group_norms, max_norm = self.wb_last_grad
        loss = self.loss_items if isinstance(self.loss_items, dict) else {}
        self._wb_steps.append(
            (
                self.epoch + 1,
                self._wb_step,
                [g["lr"] for g in self.optimizer.param_groups],
                total,
                group_norms,
                max_norm,
                {k: v.detach() if torch.is_tensor(v) else v for k, v in loss.items()},
            )
        )
        if len(self._wb_steps) >= STEP_FLUSH_EVERY or time.monotonic() - self._wb_last_flush > STEP_FLUSH_SECONDS:
            self.wb_flush_steps()

    def wb_flush_steps(self) -> None:
        """Convert buffered step tensors to numbers in one host transfer and write the step events."""
        steps, self._wb_steps = self._wb_steps, []
        self._wb_last_flush = time.monotonic()
        if not steps or self._wb_writer is None:
            return
        names = self.wb_group_names()
        loss_keys = list(steps[-1][6])
        packed = torch.stack(
            [
                torch.cat(
                    [
                        s[3].reshape(1).float().cpu(),
                        s[4].reshape(-1).float().cpu(),
                        torch.stack([torch.as_tensor(s[6].get(k, float("nan"))).float().cpu() for k in loss_keys])
                        if loss_keys
                        else torch.zeros(0),
                    ]
                )
                for s in steps
            ]
        ).tolist()
        ng = len(names)
        for (epoch, step, lrs, _, _, max_norm, _), row in zip(steps, packed, strict=True):
            total = row[0]
            self._wb_writer.emit(
                "step",
                epoch=epoch,
                step=step,
                lr=dict(zip(names, lrs, strict=True)),
                grad_norm=total,
                grad_norms=dict(zip(names, row[1 : 1 + ng], strict=True)),
                clipped=bool(max_norm > 0 and total > max_norm),
                max_norm=max_norm if max_norm > 0 else None,
                loss=dict(zip(loss_keys, row[1 + ng :], strict=True)),
            )

    # ---- per epoch ----------------------------------------------------------------------------------------------
    def final_eval(self):
        self._wb_in_final_eval = True
        try:
            super().final_eval()
        finally:
            self._wb_in_final_eval = False

    def wb_emit_epoch(self) -> None:
        self.wb_flush_steps()
        final = self._wb_in_final_eval
        table = per_class_table(self.validator, self.data["names"])
        metrics = {k: float(v) for k, v in (self.metrics or {}).items()}
        if self.tloss is not None:
            metrics.update(self.label_loss_items(self.tloss, prefix="train"))
        model = unwrap_model(self.model)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        epoch = self.epoch + (0 if final else 1)  # final_eval has already advanced self.epoch by one
        chosen = getattr(self, "wb_best_metric", None) or {"name": "fitness", "value": self.fitness}
        best_saved = not final and self.fitness is not None and self.best_fitness == self.fitness
        if best_saved:
            self.wb_best = {"epoch": epoch, "name": chosen["name"], "value": chosen["value"]}
        self.wb_event(
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
            lr={n: g["lr"] for n, g in zip(self.wb_group_names(), self.optimizer.param_groups, strict=True)},
            epoch_time=self.epoch_time,
        )
        if not final:
            self.wb_status(
                status="running",
                epoch=epoch,
                epochs=self.epochs,
                best_epoch=self.wb_best["epoch"],
                best_metric={"name": self.wb_best["name"], "value": self.wb_best["value"]}
                if self.wb_best["epoch"] is not None
                else None,
            )
