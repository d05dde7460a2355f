"""Base mixin of every composed trainer: the recipe, an event hook, measured clipping, portable atomic checkpoints."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch
from ultralytics.utils.torch_utils import unwrap_model

from trainers.customizations.grad_clip import STOCK_MAX_NORM
from trainers.recipe import Recipe


class WorkbenchBase:
    """Innermost mixin, directly above the ultralytics trainer.

    Class attributes set by the composer (class attributes survive ultralytics' DDP cloudpickle; instance
    attributes set after construction do not):
        recipe: the validated recipe; each customization reads its typed settings from
            ``self.recipe.customizations.<key>``.
        family: 'yolo' or 'rtdetr'.
    """

    recipe: Recipe
    family: str = "yolo"

    # ---- hooks other mixins override ---------------------------------------------------------------------------
    def emit_event(self, event: str, **fields: Any) -> dict[str, Any] | None:
        """Report a training event (freeze, unfreeze, ...). The telemetry mixin writes it; a no-op otherwise."""
        return None

    def on_steps(self, steps: dict[str, Any]) -> None:
        """Called with the step columns just written (``step``, ``epoch``, ``grad_norm``, ``loss/<name>``, ...:
        numpy arrays, see :mod:`trainers.telemetry.step_summary`), at most every 32 steps or 1 s, on rank 0.
        Customizations that watch the steps (the doctor's stop rule) extend it and call ``super()``."""

    def on_epoch_logged(self, event: dict[str, Any]) -> None:
        """Called with each ``epoch`` event as written (rank 0). Extend it and call ``super()``."""

    def request_stop(self, reason: str) -> None:
        """Stop this run cleanly at the next batch boundary, recording ``reason`` as its stop reason.

        The training process' stop check turns it into the same clean stop as SIGTERM (status ``stopped``,
        ``run_end.stop_reason``); last.pt is the last finished epoch's, so the run can be resumed or started again.
        """
        if not getattr(self, "stop_reason", None):
            self.stop_reason = reason

    def clip_threshold(self) -> float:
        """Gradient-clipping threshold used by :meth:`optimizer_step`; 0 disables clipping."""
        return STOCK_MAX_NORM

    def run_state(self) -> dict[str, Any]:
        """Fields for this attempt's ``run_start`` event; customizations add theirs (frozen layers, class weights)."""
        return {}

    def param_group_names(self) -> list[str]:
        """Readable, unique names of the optimizer's parameter groups, in group order."""
        names, seen = [], {}
        for i, g in enumerate(self.optimizer.param_groups if self.optimizer else []):
            base = g.get("name") or g.get("param_group") or f"pg{i}"
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
        return names

    # ---- ultralytics hooks ------------------------------------------------------------------------------------
    def set_model_attributes(self):
        """Record the recipe on the model so best.pt/last.pt say how they were trained.

        A plain dict attribute pickles with the plain ultralytics model class, so checkpoints load anywhere
        (a model subclass would pickle by reference to our module and fail to load without it).
        """
        super().set_model_attributes()
        from trainers import __version__

        unwrap_model(self.model).workbench = {"recipe": self.recipe.to_dict(), "version": __version__}

    def save_model(self):
        """Stock checkpointing, written atomically: to a temp file in the same folder, then ``os.replace``.

        ultralytics writes last.pt/best.pt in place, so a write that fails half-way (disk full, file-size limit,
        a kill) destroys the previous epoch's checkpoint. Here the previous files stay intact until the new ones
        are complete.

        The renames run in a helper thread: replacing an existing file makes ext4 allocate the new file's blocks
        right then (what keeps replace-by-rename whole across a power loss), which blocked training ~17 ms per file
        here and more under I/O load. They are finished before the next save, before the final evaluation reads the
        checkpoints, when training ends (also by an exception), and at once when ``on_model_save`` has listeners
        (they expect the files in place); a rename that failed raises there. A kill before they finish leaves the
        previous checkpoints whole, as a kill during the write does.
        """
        self.finish_checkpoints()
        final = (self.last, self.best)
        temp = tuple(p.with_name(f".{p.name}.partial") for p in final)
        self.last, self.best = temp
        try:
            saved = super().save_model()
        except BaseException:
            for t in temp:
                t.unlink(missing_ok=True)
            raise
        finally:
            self.last, self.best = final
        renames = [(t, f) for t, f in zip(temp, final, strict=True) if t.exists()]
        if renames and not self._save_listeners():
            self._start_renames(renames)
        else:
            for t, f in renames:
                os.replace(t, f)
        return saved

    def _save_listeners(self) -> bool:
        """Whether an ``on_model_save`` callback may read the files: any besides ultralytics' default no-op and its
        platform upload while no platform session is set up (then it returns at once)."""
        from ultralytics.utils.callbacks import base, platform

        idle = {base.on_model_save}
        if not getattr(self, "platform", None):
            idle.add(getattr(platform, "on_model_save", None))
        return any(cb not in idle for cb in self.callbacks.get("on_model_save", []))

    def _start_renames(self, renames: list[tuple[Path, Path]]) -> None:
        def work() -> None:
            try:
                for t, f in renames:
                    os.replace(t, f)
            except BaseException as e:  # raised by finish_checkpoints in the training thread
                self._rename_error = e

        self._rename_error = None
        # Not a daemon: an interpreter that exits waits for it, so the renames are never cut off half-way.
        self._rename_thread = threading.Thread(target=work, name="checkpoint-rename")
        self._rename_thread.start()

    def finish_checkpoints(self, raise_error: bool = True) -> None:
        """Wait for the last save's renames; raise the error one of them hit (unless ``raise_error`` is False)."""
        thread = getattr(self, "_rename_thread", None)
        if thread is not None:
            thread.join()
            self._rename_thread = None
        error, self._rename_error = getattr(self, "_rename_error", None), None
        if error is not None and raise_error:
            raise error

    def final_eval(self):
        self.finish_checkpoints()
        return super().final_eval()

    def _do_train(self):
        try:
            result = super()._do_train()
        except BaseException:
            self.finish_checkpoints(raise_error=False)  # the training error is the one to report
            raise
        self.finish_checkpoints()
        return result

    def optimizer_step(self):
        """Stock optimizer step, with the pre-clip gradient norm measured per group and a configurable threshold.

        One fused norm over every gradient (``torch._foreach_norm``, the kernel stock clipping uses) gives the
        per-tensor norms; the total is their norm, as in stock ``clip_grad_norm_``, and each group's norm is summed
        from them with one ``index_add_``; the clip is one fused multiply by the same clamped coefficient as
        ``clip_grads_with_norm_``. So measuring costs no extra pass over the gradients and a handful of small ops.
        Norms stay tensors (no host sync per step); telemetry converts them in batches.
        """
        self.scaler.unscale_(self.optimizer)
        max_norm = float(self.clip_threshold())
        grads: list[torch.Tensor] = []
        counts: list[int] = []  # gradients per optimizer group
        for g in self.optimizer.param_groups:
            n = len(grads)
            grads.extend(p.grad for p in g["params"] if p.grad is not None)
            counts.append(len(grads) - n)
        try:
            total, group_norms = self._fused_grad_norms(grads, counts)
            fused = True
        except RuntimeError:  # gradients on several devices (or a kind foreach kernels refuse): one group at a time
            total, group_norms = self._grad_norms_per_group(grads, counts)
            fused = False
        if max_norm > 0 and grads:
            coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            if fused:
                torch._foreach_mul_(grads, coef)
            else:
                for grad in grads:
                    grad.mul_(coef.to(grad.device))
        self.last_grad_norms = (total.detach(), group_norms.detach(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)

    def _fused_grad_norms(self, grads: list[torch.Tensor], counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Total and per-group norms (float32) from one fused per-tensor norm; raises RuntimeError for mixed devices."""
        if not grads:
            zeros = torch.zeros(len(counts), device=self.device)
            return zeros.sum(), zeros
        norms = torch.stack(torch._foreach_norm(grads)).float()
        squares = norms.square()
        index = self._group_index(counts, norms.device)
        group_norms = squares.new_zeros(len(counts)).index_add_(0, index, squares).sqrt_()
        return torch.linalg.vector_norm(norms), group_norms

    def _grad_norms_per_group(self, grads: list[torch.Tensor], counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        device = grads[0].device if grads else self.device
        norms, start = [], 0
        for c in counts:
            part = grads[start : start + c]
            norms.append(torch.nn.utils.get_total_norm(part).to(device) if part else torch.zeros((), device=device))
            start += c
        group_norms = torch.stack(norms).float()
        return torch.linalg.vector_norm(group_norms), group_norms

    def _group_index(self, counts: list[int], device) -> torch.Tensor:
        """The group of each gradient, as a tensor on ``device``; cached: it changes only when gradients appear or
        disappear (an unfreeze), and building it on a GPU each step would be a host-to-device copy."""
        key = (tuple(counts), str(device))
        cached = getattr(self, "_group_index_cache", None)
        if cached is None or cached[0] != key:
            index = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts, dtype=torch.long))
            cached = self._group_index_cache = (key, index.to(device))
        return cached[1]
