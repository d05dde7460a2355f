"""Base mixin of every composed trainer: the recipe, the records the mixins share, the hooks they extend, stock
clipping measured, portable atomic checkpoints."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ultralytics.utils.torch_utils import unwrap_model

from trainers.customizations.records import LiveDoctor, Validation
from trainers.metrics import per_class_table
from trainers.recipe import Recipe
from trainers.train_args import STOCK_MAX_NORM


@dataclass(slots=True)
class GradNorms:
    """One optimizer step's gradient norms before clipping, as tensors (converted in batches: no host sync per step).

    Attributes:
        total: The total norm over every gradient (what clipping compares with the threshold).
        groups: One norm per optimizer parameter group, in group order.
        max_norm: The threshold this step was clipped to; 0 when it was not clipped.
    """

    total: torch.Tensor
    groups: torch.Tensor
    max_norm: float


@dataclass(slots=True)
class _ParamSlots:
    """The optimizer layout the measured step was built for, and every parameter in ``model.parameters()`` order with
    its optimizer group (``n_groups`` for one in none)."""

    model: Any
    optimizer: Any
    sizes: tuple[int, ...]  # parameters per group
    slots: list[tuple[torch.Tensor, int]]
    n_groups: int

    def fits(self, model: Any, optimizer: Any, sizes: tuple[int, ...]) -> bool:
        return self.model is model and self.optimizer is optimizer and self.sizes == sizes


class WorkbenchBase:
    """Innermost mixin, directly above the ultralytics trainer.

    Class attributes set by the composer (class attributes survive ultralytics' DDP cloudpickle; instance
    attributes set after construction do not):
        recipe: the validated recipe; each customization reads its typed settings from
            ``self.recipe.customizations.<key>``.
        family: 'yolo' or 'rtdetr'.
        live_doctor: the doctor's live checks (``trainers.doctor.live.LiveDoctor``) for the ``doctor_stop``
            customization, which sits below the doctor and so is handed them (None in a class built by hand).

    Records the mixins share, declared here with their defaults (the filler replaces them per event):
        validation: the latest validation's results (:class:`~trainers.customizations.records.Validation`): the
            per-class table (this class, once per validation) and the chosen metric (``best_metric``).
        last_grad_norms: the latest optimizer step's :class:`GradNorms` (this class), read by the telemetry.
        stop_reason: why the run asked to stop (:meth:`request_stop`), None while it has not.
    """

    recipe: Recipe
    family: str = "yolo"
    live_doctor: type[LiveDoctor] | None = None
    validation: Validation = Validation()
    last_grad_norms: GradNorms | None = None
    stop_reason: str | None = None
    _rename_thread: threading.Thread | None = None
    _rename_error: BaseException | None = None
    _param_slots: _ParamSlots | None = None
    _group_index: tuple[tuple[tuple[int, ...], str], torch.Tensor] | None = None  # (key, index of each gradient)

    # ---- hooks other mixins override ---------------------------------------------------------------------------
    def emit_event(self, event: str, **fields: Any) -> dict[str, Any] | None:
        """Report a training event (freeze, unfreeze, ...). The telemetry mixin writes it; a no-op otherwise."""
        return None

    def on_steps(self, steps: dict[str, Any]) -> None:
        """Called with the step columns just written (``step``, ``epoch``, ``grad_norm``, ``loss/<name>``, ...:
        numpy arrays, see :mod:`trainers.telemetry.step_summary`), at most every 32 steps or 1 s, on rank 0.
        Customizations that watch the steps (the doctor's stop rule) extend it and call ``super()``."""

    def on_run_start(self, event: dict[str, Any]) -> None:
        """Called with this attempt's ``run_start`` event as written (rank 0). Extend it and call ``super()``."""

    def on_epoch_logged(self, event: dict[str, Any]) -> None:
        """Called with each ``epoch`` event as written (rank 0). Extend it and call ``super()``."""

    def request_stop(self, reason: str) -> None:
        """Stop this run cleanly at the next batch boundary, recording ``reason`` as its stop reason.

        The training process' stop check turns it into the same clean stop as SIGTERM (status ``stopped``,
        ``run_end.stop_reason``); last.pt is the last finished epoch's, so the run can be resumed or started again.
        """
        if not self.stop_reason:
            self.stop_reason = reason

    def clip_threshold(self) -> float:
        """Gradient-clipping threshold used by :meth:`optimizer_step`; 0 disables clipping.

        Ultralytics' fixed stock threshold; the grad_clip customization, which owns the choice, overrides it.
        """
        return STOCK_MAX_NORM

    def record_validation(self) -> Validation:
        """Read the validator's per-class results into a new :attr:`validation` record and return it.

        Called once per validation: by :meth:`validate`, and by the telemetry for the final evaluation (ultralytics
        validates best.pt there without ``validate()``) or before any validation ran in this process.
        """
        self.validation = Validation(per_class=per_class_table(self.validator, self.data["names"]))
        return self.validation

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
    def validate(self):
        """Stock validation, then the per-class table read once into :attr:`validation` for the mixins outside."""
        metrics, fitness = super().validate()
        if metrics is not None:
            self.record_validation()
        return metrics, fitness

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
        thread = self._rename_thread
        if thread is not None:
            thread.join()
            self._rename_thread = None
        error, self._rename_error = self._rename_error, None
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
        """Stock ultralytics' optimizer step, with the pre-clip gradient norm measured in total and per optimizer
        group, and the threshold a hook (:meth:`clip_threshold`).

        At the stock threshold (grad_clip off) the update is stock's bit for bit: the gradients are taken in
        ``model.parameters()`` order, as ``clip_grad_norm_`` takes them, their per-tensor norms come from the same
        fused kernel (``torch._foreach_norm``), the total is the norm of those norms, and the clip is one fused
        multiply by the same clamped coefficient as ``clip_grads_with_norm_`` (tests/customizations/test_grad_clip.py
        compares the two step by step). Each group's norm is summed from the same per-tensor norms with one
        ``index_add_``, so measuring costs no extra pass over the gradients and a handful of small ops; and the
        parameter list is cached, where stock walks the module tree every step. Norms stay tensors (no host sync
        per step); telemetry converts them in batches.
        """
        self.scaler.unscale_(self.optimizer)
        max_norm = float(self.clip_threshold())
        grads, groups, n_groups = self._grads()
        try:
            total, group_norms = self._fused_grad_norms(grads, groups, n_groups)
            fused = True
        except RuntimeError:  # gradients on several devices or of several dtypes: stock's own functions, per group
            total, group_norms = self._grad_norms_per_group(grads, groups, n_groups)
            fused = False
        if max_norm > 0 and grads:
            if fused:
                torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
            else:
                params = [p for p, _ in self._slots()[0] if p.grad is not None]
                torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
        self.last_grad_norms = GradNorms(total.detach(), group_norms.detach(), max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)

    def _slots(self) -> tuple[list[tuple[torch.Tensor, int]], int]:
        """Every parameter in ``model.parameters()`` order with its optimizer group (the group count for one that is
        in none), and the number of groups; rebuilt when the model, the optimizer or its groups change."""
        groups = self.optimizer.param_groups
        sizes = tuple(len(g["params"]) for g in groups)
        cached = self._param_slots
        if cached is None or not cached.fits(self.model, self.optimizer, sizes):
            group_of = {id(p): i for i, g in enumerate(groups) for p in g["params"]}
            slots = [(p, group_of.get(id(p), len(groups))) for p in self.model.parameters()]
            cached = self._param_slots = _ParamSlots(self.model, self.optimizer, sizes, slots, len(groups))
        return cached.slots, cached.n_groups

    def _grads(self) -> tuple[list[torch.Tensor], list[int], int]:
        """The gradients in stock's order, the optimizer group of each, and the number of groups."""
        slots, n_groups = self._slots()
        grads: list[torch.Tensor] = []
        groups: list[int] = []
        for p, group in slots:
            grad = p.grad  # read once: a parameter's .grad costs ~0.2 us, stock reads it twice per parameter
            if grad is not None:
                grads.append(grad)
                groups.append(group)
        return grads, groups, n_groups

    def _fused_grad_norms(
        self, grads: list[torch.Tensor], groups: list[int], n_groups: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Total norm (stock's arithmetic) and per-group norms (float32) from one fused per-tensor norm; raises
        RuntimeError for gradients on several devices or of several dtypes."""
        if not grads:
            zeros = torch.zeros(n_groups, device=self.device)
            return zeros.sum(), zeros
        norms = torch.stack(torch._foreach_norm(grads))
        squares = norms.float().square()
        index = self._group_index_for(groups, norms.device)
        group_norms = squares.new_zeros(n_groups + 1).index_add_(0, index, squares).sqrt_()[:n_groups]
        return torch.linalg.vector_norm(norms), group_norms

    def _grad_norms_per_group(
        self, grads: list[torch.Tensor], groups: list[int], n_groups: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = grads[0].device if grads else self.device
        norms = []
        for i in range(n_groups):
            part = [g for g, k in zip(grads, groups, strict=True) if k == i]
            norms.append(torch.nn.utils.get_total_norm(part).to(device) if part else torch.zeros((), device=device))
        total = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=device)
        return total, torch.stack(norms).float()

    def _group_index_for(self, groups: list[int], device) -> torch.Tensor:
        """The group of each gradient, as a tensor on ``device``; cached: it changes only when gradients appear or
        disappear (an unfreeze), and building it on a GPU each step would be a host-to-device copy."""
        key = (tuple(groups), str(device))
        cached = self._group_index
        if cached is None or cached[0] != key:
            cached = self._group_index = (key, torch.tensor(groups, dtype=torch.long).to(device))
        return cached[1]
