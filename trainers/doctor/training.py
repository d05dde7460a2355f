"""Rules about the optimisation itself: divergence, non-finite values, clipping, a learning rate of 0, a backbone that
stays frozen, overfitting and the loss jump after an unfreeze.

Every rule reads the epoch events' ``steps`` summaries and ``metrics`` (docs/telemetry.md), never the step store.
Thresholds are the module constants below (divergence's are the detector's, :mod:`trainers.doctor.divergence`, which
the live doctor asks too); docs/doctor.md gives the reason for each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainers.customizations.freeze import fitted_frozen_epochs
from trainers.doctor.divergence import GRAD_NORM, GRAD_NORM_GROWTH, LOSS_FLOOR, LOSS_GROWTH, Divergence
from trainers.doctor.finding import Finding
from trainers.doctor.registry import Context, epochs_text, fmt, metric, nice, num, rule, step_range
from trainers.metrics import MAP50
from trainers.train_args import train_default

LR_CUT = 0.1  # a diverging run's suggested lr0 is this times its lr0
CLIP_EPOCHS = 3  # clipping rules look at the last this many epochs with steps
CLIP_SATURATED = 0.9  # share of those epochs' steps clipped for "clipping saturates"
CLIP_QUANTILE = 90  # suggested max_norm: this percentile of those epochs' per-epoch p90 pre-clip norms
NEVER_ACTIVE_EPOCHS = 2  # epochs with clipping on and no step clipped before "never active" can be said
NEVER_ACTIVE_MARGIN = 10.0  # a threshold this many times above the largest norm seen is a safety net: no finding
OVERFIT_EPOCHS = 3  # consecutive epochs of rising val loss (train loss falling) for "overfitting"
SUGGESTED_PATIENCE = 5  # the early-stopping patience the overfitting fix sets (ultralytics' default is 100)
UNFREEZE_JUMP = 1.5  # train loss of the unfreeze epoch / the epoch before, for "unfreeze shock"
BACKBONE_RATIO_CUT = 0.1  # the unfreeze fix multiplies layer_lr.backbone_ratio by this (0.1 when layer_lr is off)
BATCH_SCALE_NOTE = (
    "ultralytics multiplies the YOLO loss by the batch size before backward, so pre-clip gradient norms are in the "
    "hundreds or thousands and grow with the batch, while the stock threshold is a fixed 10"
)


# ---- divergence and non-finite values ------------------------------------------------------------------------------
def _losses(epoch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return (epoch.get("steps") or {}).get("loss") or {}


def _finite(columns: dict[str, list[Any]], epochs: list[int]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-series columns of numbers (one per epoch, None where there is none) as the detector takes them: the finite
    values, and the epoch of each."""
    series, at = {}, {}
    for name, column in columns.items():
        values = np.array(column, dtype=np.float64)
        keep = np.isfinite(values)
        series[name], at[name] = values[keep], np.resize(np.asarray(epochs), values.size)[keep]
    return series, at


def _growth(ctx: Context) -> dict[str, Any] | None:
    """The first epoch where the grad norm or a loss grew past its threshold, with the numbers; None if none did.

    The detector gets every stepped epoch's finite minimum and maximum of each series, in one chunk.
    """
    stepped = ctx.stepped
    if not stepped:
        return None
    stats = {GRAD_NORM: [e["steps"]["grad_norm"] for e in stepped]}
    for name in dict.fromkeys(n for e in stepped for n in _losses(e)):
        stats[name] = [_losses(e).get(name) for e in stepped]  # None in an epoch without it
    columns = {}
    for name, column in stats.items():
        # a loss with no finite value in the first epoch gets the floor as its baseline (0 stands in for it)
        empty = None if name == GRAD_NORM else 0.0
        lows = [None if s is None else (num(s.get("min")) if num(s.get("min")) is not None else empty) for s in column]
        columns[name] = lows + [None if s is None else num(s.get("max")) for s in column]
    series, epochs = _finite(columns, [e["epoch"] for e in stepped])
    found = Divergence().growth(series, epochs)
    if not found:
        return None
    at = {b.series: int(epochs[b.series][b.over].min()) for b in found}
    e = next(x for x in stepped if x["epoch"] == min(at.values()))
    peak = {GRAD_NORM: e["steps"]["grad_norm"], **_losses(e)}
    grew = {b.series: (b.baseline, num(peak[b.series].get("max"))) for b in found if at[b.series] == e["epoch"]}
    return {"epoch": e, "grew": grew, "first_epoch": stepped[0]["epoch"]}


def calm_down(ctx: Context, what: str) -> tuple[str, dict[str, Any] | None]:
    """The fix for a run whose updates blew up: a lower lr0, and clipping back on when it was off."""
    change: dict[str, Any] = {}
    words = []
    optimizer = str(ctx.train_value("optimizer"))
    lr0 = num(ctx.train_value("lr0"))
    if optimizer.lower() != "auto" and lr0:
        change["train.lr0"] = float(f"{lr0 * LR_CUT:.6g}")
        words.append(f"lower train.lr0 from {fmt(lr0)} to {fmt(change['train.lr0'])}")
    else:
        words.append("set train.optimizer explicitly (with 'auto' ultralytics picks lr0 itself) and lower its lr0")
    stepped = ctx.stepped
    clipping_off = bool(stepped) and stepped[-1]["steps"].get("max_norm") is None
    base = num(stepped[0]["steps"]["grad_norm"].get("min")) if stepped else None
    if clipping_off and base:
        change["customizations.grad_clip.max_norm"] = nice(base)
        words.append(
            f"turn gradient clipping back on at max_norm {fmt(nice(base))} (the smallest pre-clip norm of the first "
            "epoch, before the blow-up)"
        )
    momentum, warmup = num(ctx.train_value("momentum")), num(ctx.train_value("warmup_epochs"))
    extra = []
    if momentum is not None and momentum > 0.95:
        extra.append(f"momentum {fmt(momentum)} (stock {train_default('momentum')})")
    if warmup == 0:
        extra.append(f"warmup_epochs 0 (stock {train_default('warmup_epochs')})")
    tail = f"; also reconsider {' and '.join(extra)}" if extra else ""
    return f"{what}: {'; '.join(words)}{tail}.", change or None


@rule(
    "training.divergence", "critical", "loss or gradient norm growing by orders of magnitude",
    {"GRAD_NORM_GROWTH": GRAD_NORM_GROWTH, "LOSS_GROWTH": LOSS_GROWTH, "LOSS_FLOOR": LOSS_FLOOR, "LR_CUT": LR_CUT},
    "Healthy YOLO runs keep their pre-clip norm within ~20x of its first-epoch value and their loss components "
    "within a few x; the measured diverging run grew the norm ~3e4x and cls_loss ~1e7x within its first 3 steps.",
    live=True,
)  # fmt: skip
def divergence(ctx: Context) -> Finding | None:
    found = _growth(ctx)
    if found is None:
        return None
    e, grew = found["epoch"], found["grew"]
    parts, numbers = [], {}
    for name, (base, peak) in grew.items():
        label = "pre-clip grad norm" if name == "grad_norm" else name
        parts.append(f"{label} rose from {fmt(base)} (epoch {found['first_epoch']} minimum) to {fmt(peak)} "
                     f"in epoch {e['epoch']} ({fmt(peak / base)}x)")  # fmt: skip
        numbers[f"{name}_baseline"], numbers[f"{name}_peak"], numbers[f"{name}_growth"] = base, peak, peak / base
    maps = [(x["epoch"], metric(x, MAP50.key)) for x in ctx.epochs]
    maps = [(k, v) for k, v in maps if v is not None]
    best = max(maps, key=lambda kv: kv[1]) if maps else None
    if best is not None and best[1] > maps[-1][1]:
        parts.append(f"{MAP50.label} {fmt(best[1])} (epoch {best[0]}) -> {fmt(maps[-1][1])} (epoch {maps[-1][0]})")
        numbers["map50_best"], numbers["map50_last"] = best[1], maps[-1][1]
    fix, change = calm_down(ctx, "The updates are too large")
    return Finding(
        "training.divergence", "critical", f"Training diverged in epoch {e['epoch']}", "; ".join(parts) + ".",
        fix, numbers, tuple(x["epoch"] for x in ctx.epochs if x["epoch"] >= e["epoch"]), step_range(e), change,
    )  # fmt: skip


def _unfinished(epochs: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The epochs' watched values as the detector takes them, one per series and epoch: a step summary keeps the count
    of a series' non-finite values, not the values, so a NaN stands for them (a 0 for none); a validation loss the
    writer nulled (it turns NaN and inf into null) is a NaN again."""
    nan = float("nan")
    steps = [e.get("steps") or {} for e in epochs]
    metrics = [e.get("metrics") or {} for e in epochs]
    counts = {"step grad norm": [s.get("grad_norm") or {} for s in steps]}
    for name in dict.fromkeys(n for s in steps for n in s.get("loss") or {}):
        counts[f"step {name}"] = [(s.get("loss") or {}).get(name) or {} for s in steps]
    columns = {name: [nan if (c.get("nonfinite") or 0) > 0 else 0.0 for c in col] for name, col in counts.items()}
    for key in dict.fromkeys(k for m in metrics for k in m if k.endswith("_loss")):
        columns[key] = [nan if key in m and m[key] is None else 0.0 for m in metrics]
    series = {name: np.array(column, dtype=np.float64) for name, column in columns.items()}
    return series, {name: np.array([e["epoch"] for e in epochs]) for name in series}


@rule(
    "training.nonfinite", "critical", "NaN or infinite losses or gradient norms", {},
    "Any non-finite loss or norm means the weights are (or are about to be) NaN: nothing after it is meaningful.",
    live=True,
)  # fmt: skip
def nonfinite(ctx: Context) -> Finding | None:
    series, epochs = _unfinished(ctx.epochs)
    found = Divergence.nonfinite(series)
    hits = {b.series: sorted({int(x) for x in epochs[b.series][b.over]}) for b in found}
    hits = dict(sorted(hits.items(), key=lambda kv: kv[1][0]))  # in the order they first went non-finite
    if not hits:
        return None
    first = min(min(v) for v in hits.values())
    evidence = "; ".join(f"{name} is NaN or infinite in {epochs_text(eps)}" for name, eps in hits.items()) + "."
    fix, change = calm_down(ctx, "Non-finite values come from updates that overflowed")
    epoch = next(e for e in ctx.epochs if e["epoch"] == first)
    numbers = {"values": sorted(hits), "first_epoch": first}
    return Finding(
        "training.nonfinite", "critical", f"NaN or infinite values from epoch {first}", evidence, fix, numbers,
        tuple(sorted({k for v in hits.values() for k in v})), step_range(epoch), change,
    )  # fmt: skip


# ---- clipping ------------------------------------------------------------------------------------------------------
def _clipped_epochs(ctx: Context) -> list[dict[str, Any]]:
    return [e for e in ctx.stepped if e["steps"].get("max_norm") is not None and e["steps"].get("clipped") is not None]


def suggested_max_norm(epochs: list[dict[str, Any]]) -> float | None:
    """A clip threshold from the observed pre-clip norms: the CLIP_QUANTILE-th percentile of the epochs' p90s."""
    p90 = [v for e in epochs if (v := num(e["steps"]["grad_norm"].get("p90"))) is not None]
    return nice(float(np.percentile(p90, CLIP_QUANTILE))) if p90 else None


def _share(epochs: list[dict[str, Any]]) -> float:
    weights = [max(int(e["steps"].get("recorded") or 1), 1) for e in epochs]
    return sum(float(e["steps"]["clipped"]) * w for e, w in zip(epochs, weights, strict=True)) / sum(weights)


@rule(
    "training.clip_saturation", "warning", "gradient clipping active on (nearly) every step",
    {"CLIP_EPOCHS": CLIP_EPOCHS, "CLIP_SATURATED": CLIP_SATURATED, "CLIP_QUANTILE": CLIP_QUANTILE},
    "A threshold that clips >= 90% of steps rescales nearly every update to the same length, so it is a fixed step "
    "size, not a guard against spikes; with the stock max_norm 10, 100% of YOLO steps are clipped (norms ~100-4000).",
)  # fmt: skip
def clip_saturation(ctx: Context) -> Finding | None:
    clipped = _clipped_epochs(ctx)
    recent = clipped[-CLIP_EPOCHS:]
    if not recent or _share(recent) < CLIP_SATURATED:
        return None
    threshold = num(recent[-1]["steps"]["max_norm"])
    # and back over the epochs before clipped as much at this threshold (a 4-epoch run all clipped read "epochs 2-4")
    first = len(clipped) - len(recent)
    while first and _share([e := clipped[first - 1]]) >= CLIP_SATURATED and num(e["steps"]["max_norm"]) == threshold:
        first -= 1
    saturated, suggestion = clipped[first:], suggested_max_norm(recent)
    share, p50 = _share(saturated), [num(e["steps"]["grad_norm"].get("p50")) for e in recent]
    evidence = (
        f"{share:.0%} of the steps of {epochs_text([e['epoch'] for e in saturated])} were clipped at max_norm "
        f"{fmt(threshold)}; their pre-clip norms had a median of {', '.join(fmt(v) for v in p50)} in "
        f"{epochs_text([e['epoch'] for e in recent])}"
        + (f", and the {CLIP_QUANTILE}th percentile of their per-epoch p90 is {fmt(suggestion)}" if suggestion else "")
        + "."
    )
    change = None
    fix = f"The threshold is far below the norms: {BATCH_SCALE_NOTE}."
    if suggestion and threshold is not None and suggestion > threshold:
        change = {"customizations.grad_clip.max_norm": suggestion}
        fix += f" Set customizations.grad_clip.max_norm to {fmt(suggestion)}: it then clips only the largest steps."
    return Finding(
        "training.clip_saturation", "warning", f"Gradient clipping at {fmt(threshold)} clips {share:.0%} of steps",
        evidence, fix, {"clipped_share": share, "max_norm": threshold, "suggested_max_norm": suggestion},
        tuple(e["epoch"] for e in saturated), step_range(saturated[0]), change,
    )  # fmt: skip


@rule(
    "training.clip_never_active", "info", "a clipping threshold just above the norms that never clips",
    {"NEVER_ACTIVE_EPOCHS": NEVER_ACTIVE_EPOCHS, "NEVER_ACTIVE_MARGIN": NEVER_ACTIVE_MARGIN},
    "A threshold within 10x of the largest norm looks meant to clip, yet does nothing; one 10x or more above "
    "(max_norm 1e5 with norms ~200) is a deliberate safety net against blow-ups and is left alone.",
)  # fmt: skip
def clip_never_active(ctx: Context) -> Finding | None:
    clipped = _clipped_epochs(ctx)
    if len(clipped) < NEVER_ACTIVE_EPOCHS or any(float(e["steps"]["clipped"]) > 0 for e in clipped):
        return None
    threshold = num(clipped[-1]["steps"]["max_norm"])
    peak = max((v for e in clipped if (v := num(e["steps"]["grad_norm"].get("max"))) is not None), default=None)
    if threshold is None or peak is None or threshold >= NEVER_ACTIVE_MARGIN * peak:
        return None
    suggestion = suggested_max_norm(clipped[-CLIP_EPOCHS:])
    change = {"customizations.grad_clip.max_norm": suggestion} if suggestion and suggestion < threshold else None
    fix = (
        "If the threshold is a safety net, this is fine. If you meant to clip the largest updates, "
        + (f"set customizations.grad_clip.max_norm to {fmt(suggestion)} (the p90 of the observed norms)." if change
           else "lower customizations.grad_clip.max_norm below the observed norms.")
    )  # fmt: skip
    return Finding(
        "training.clip_never_active", "info", f"Gradient clipping at {fmt(threshold)} never clipped a step",
        f"No step of {epochs_text([e['epoch'] for e in clipped])} was clipped: max_norm {fmt(threshold)}, the "
        f"largest pre-clip norm {fmt(peak)} ({fmt(threshold / peak)}x below the threshold).",
        fix, {"max_norm": threshold, "largest_norm": peak, "suggested_max_norm": suggestion},
        tuple(e["epoch"] for e in clipped), step_range(clipped[0]), change,
    )  # fmt: skip


# ---- learning rate, freezing ---------------------------------------------------------------------------------------
@rule(
    "training.lr_zero", "warning", "a parameter group at learning rate 0 for a whole epoch", {},
    "A group at lr 0 for every step of an epoch does not train at all; warmup starts groups at 0 but leaves 0 after "
    "the first step, so a whole epoch at 0 is never a schedule's doing.",
    live=True,
)  # fmt: skip
def lr_zero(ctx: Context) -> Finding | None:
    zero: dict[str, list[int]] = {}
    for e in ctx.epochs:
        stepped = (e.get("steps") or {}).get("lr") or {}
        for group, value in (e.get("lr") or {}).items():
            peak = num((stepped.get(group) or {}).get("max")) if group in stepped else num(value)
            if peak == 0.0:
                zero.setdefault(group, []).append(e["epoch"])
    if not zero:
        return None
    first = min(min(v) for v in zero.values())
    change = None
    fix = "A group at lr 0 keeps its parameters as they are."
    if num(ctx.train_value("lr0")) == 0.0:
        change = {"train.lr0": train_default("lr0")}
        fix += f" train.lr0 is 0: set it to ultralytics' default {train_default('lr0')}."
    else:
        fix += " Check the schedule (lrf, the per-layer ratio) that scales this group to 0."
    evidence = "; ".join(f"group '{g}' had lr 0 for every step of {epochs_text(eps)}" for g, eps in zero.items())
    return Finding(
        "training.lr_zero", "warning", f"Learning rate 0 for {', '.join(repr(g) for g in zero)}", evidence + ".",
        fix, {"groups": {g: eps for g, eps in zero.items()}}, tuple(sorted({k for v in zero.values() for k in v})),
        step_range(next(e for e in ctx.epochs if e["epoch"] == first)), change,
    )  # fmt: skip


@rule(
    "training.frozen_whole_run", "info", "layers frozen for the whole run (freeze.frozen_epochs null)", {},
    "frozen_epochs null is a valid choice (a head-only fine-tune) but is easy to leave on by mistake: the backbone "
    "then never adapts to the data.",
)  # fmt: skip
def frozen_whole_run(ctx: Context) -> Finding | None:
    freeze = ctx.customizations.get("freeze")
    frozen = ctx.start.get("frozen")
    never = isinstance(freeze, dict) and freeze.get("frozen_epochs") is None
    if not never or ctx.log.unfreezes:
        return None
    epochs = [e["epoch"] for e in ctx.epochs if ((e.get("params") or {}).get("frozen") or 0) > 0]
    if not epochs:
        return None
    layers = (frozen or {}).get("layers") or []
    params = (ctx.epochs[-1].get("params") or {}).get("frozen")
    planned = ctx.train_value("epochs")
    change = None
    fix = "If the backbone should adapt to your data, unfreeze it after a few epochs."
    if isinstance(planned, int) and planned >= 2:
        change = {"customizations.freeze.frozen_epochs": fitted_frozen_epochs(planned)}  # the recipe's default
        fix += f" Set customizations.freeze.frozen_epochs to {change['customizations.freeze.frozen_epochs']}."
    return Finding(
        "training.frozen_whole_run", "info", f"{len(layers) or 'Some'} layers stay frozen for the whole run",
        f"customizations.freeze.frozen_epochs is null: {fmt(params)} parameters were frozen in {epochs_text(epochs)}.",
        fix, {"frozen_params": params, "layers": list(layers)}, tuple(epochs), step_range(ctx.epochs[0]), change,
    )  # fmt: skip


# ---- overfitting, unfreeze shock -----------------------------------------------------------------------------------
def loss_total(epoch: dict[str, Any], prefix: str) -> float | None:
    """Sum of the epoch's ``<prefix>/*_loss`` metrics (None when one is missing or non-finite)."""
    values = [v for k, v in (epoch.get("metrics") or {}).items() if k.startswith(prefix) and k.endswith("_loss")]
    if not values or any(num(v) is None for v in values):
        return None
    return float(sum(values))


@rule(
    "training.overfitting", "warning", "val loss rising while train loss falls",
    {"OVERFIT_EPOCHS": OVERFIT_EPOCHS, "SUGGESTED_PATIENCE": SUGGESTED_PATIENCE},
    "One or two rising epochs are noise on small val sets; three in a row while the train loss falls is the "
    "textbook overfitting curve, and further epochs only make best.pt older.",
    live=True,
)  # fmt: skip
def overfitting(ctx: Context) -> Finding | None:
    window = ctx.epochs[-(OVERFIT_EPOCHS + 1) :]
    if len(window) < OVERFIT_EPOCHS + 1:
        return None
    val = [loss_total(e, "val/") for e in window]
    train = [loss_total(e, "train/") for e in window]
    if None in val or None in train:
        return None
    if not all(b > a for a, b in zip(val, val[1:], strict=False)) or not train[-1] < train[0]:
        return None
    epochs = [e["epoch"] for e in window]
    patience = ctx.train_value("patience")
    change = {"train.patience": SUGGESTED_PATIENCE} if isinstance(patience, int) and patience > SUGGESTED_PATIENCE \
        else None  # fmt: skip
    best = ctx.log.best_epoch
    fix = (
        f"More epochs will not help{f'; best.pt is from epoch {best}' if best else ''}. Stop earlier"
        + (f": set train.patience to {SUGGESTED_PATIENCE} (now {patience}) so early stopping ends the run" if change
           else "") + ", or add data / augmentation."
    )  # fmt: skip
    return Finding(
        "training.overfitting", "warning", f"Overfitting since epoch {epochs[0]}",
        f"val loss rose {OVERFIT_EPOCHS} epochs in a row, {fmt(val[0])} (epoch {epochs[0]}) -> {fmt(val[-1])} "
        f"(epoch {epochs[-1]}), while train loss fell {fmt(train[0])} -> {fmt(train[-1])}.",
        fix, {"val_loss": val, "train_loss": train}, tuple(epochs), step_range(window[0]), change,
    )  # fmt: skip


@rule(
    "training.unfreeze_shock", "warning", "train loss jumping when the frozen layers are unfrozen",
    {"UNFREEZE_JUMP": UNFREEZE_JUMP, "BACKBONE_RATIO_CUT": BACKBONE_RATIO_CUT},
    "Unfreezing adds the backbone's gradients at the head's learning rate; a 50% loss jump means those updates undo "
    "pretrained features, which a lower backbone LR ratio avoids.",
)  # fmt: skip
def unfreeze_shock(ctx: Context) -> Finding | None:
    u = ctx.log.unfreeze_epoch
    by_epoch = {e["epoch"]: e for e in ctx.epochs}
    if u is None or u not in by_epoch or u - 1 not in by_epoch:
        return None
    before, after = loss_total(by_epoch[u - 1], "train/"), loss_total(by_epoch[u], "train/")
    if not before or after is None or after < UNFREEZE_JUMP * before:
        return None
    layer_lr = ctx.customizations.get("layer_lr")
    ratio = num((layer_lr or {}).get("backbone_ratio")) if isinstance(layer_lr, dict) else None
    new = float(f"{(ratio if ratio else 1.0) * BACKBONE_RATIO_CUT:.6g}")
    change = {"customizations.layer_lr.backbone_ratio": new}
    now = f"now {fmt(ratio)}" if ratio else "layer_lr is off: the backbone trains at the head's lr"
    fix = (
        "Train the backbone slower than the head after the unfreeze: set customizations.layer_lr.backbone_ratio to "
        f"{fmt(new)} ({now})."
    )
    return Finding(
        "training.unfreeze_shock", "warning", f"Train loss jumped {fmt(after / before)}x at the unfreeze (epoch {u})",
        f"train loss {fmt(before)} in epoch {u - 1} (frozen) -> {fmt(after)} in epoch {u} (unfrozen).",
        fix, {"loss_before": before, "loss_after": after, "unfreeze_epoch": u}, (u,), step_range(by_epoch[u]), change,
    )  # fmt: skip
