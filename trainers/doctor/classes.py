"""Rules about single classes: a class stuck at F1 0 while the others improve, and the F1 gap between frequent and
rare classes. Both suggest class weights computed with the project's own :class:`ClassWeights` settings model from
the train label counts, so the suggested block is exactly what the Class weights customization would use.
"""

from __future__ import annotations

from typing import Any

from trainers.customizations.class_weights import ClassWeights
from trainers.doctor.finding import Finding
from trainers.doctor.registry import Context, epochs_text, fmt, num, rule, step_range
from trainers.metrics import MEAN_F1

COLLAPSE_EPOCHS = 3  # a class present in val at F1 0 for the last this many epochs ...
MEAN_F1_RISE = 0.01  # ... while mean F1 rose by at least this over them
WEIGHT_BOOST = 2.0  # with class weights already on, the fix multiplies the collapsed classes' weights by this
F1_GAP = 0.3  # mean F1 of the more frequent half of the classes minus that of the rarer half
GAP_EPOCHS = 3  # the gap is averaged over the last this many epochs


def _rows(epoch: dict[str, Any]) -> list[dict[str, Any]]:
    return epoch.get("per_class") or []


def weights_change(ctx: Context, boost: list[int] | None = None) -> tuple[dict[str, Any], str]:
    """The class-weights block to suggest, and a sentence that shows its values.

    Off: the default :class:`ClassWeights` settings, with the weights they give the train counts written out (when
    the counts are known). On: the weights the run used, ``boost`` classes multiplied by :data:`WEIGHT_BOOST`.
    """
    names = ctx.names
    current = ctx.customizations.get("class_weights")
    used = ctx.start.get("class_weights")
    counts = ctx.dataset.train_counts if ctx.dataset is not None else None
    if isinstance(current, dict) and not isinstance(used, list) and counts is not None:
        used = ClassWeights(**current).from_counts(counts)  # what the run's own settings gave these counts
    if isinstance(current, dict) and isinstance(used, list) and boost:
        weights = [round(w * (WEIGHT_BOOST if i in boost else 1.0), 4) for i, w in enumerate(used)]
        block = ClassWeights(**{**current, "weights": weights}).model_dump(mode="json")
        how = f"class weights are on; raise the stuck classes' weights {fmt(WEIGHT_BOOST)}x"
    elif counts is not None and len(counts) == len(names):
        settings = ClassWeights()
        weights = [round(w, 4) for w in settings.from_counts(counts)]
        block = ClassWeights(**{**settings.model_dump(), "weights": weights}).model_dump(mode="json")
        how = f"turn on class weights ({settings.scheme} of the train counts {counts})"
    else:
        block = ClassWeights().model_dump(mode="json")
        return {"customizations.class_weights": block}, (
            "turn on class weights (inverse frequency of the train counts, computed when training starts)"
        )
    shown = ", ".join(f"{n} {w:g}" for n, w in zip(names, block["weights"], strict=False))
    return {"customizations.class_weights": block}, f"{how}: {shown}"


@rule(
    "classes.rare_collapse", "warning", "a class present in val stuck at F1 0 while mean F1 rises",
    {"COLLAPSE_EPOCHS": COLLAPSE_EPOCHS, "MEAN_F1_RISE": MEAN_F1_RISE, "WEIGHT_BOOST": WEIGHT_BOOST},
    "A class with val instances at F1 0 for 3 epochs while the mean improves is not noise: the others are learned "
    "and it is not (typically the rarest). Weighting it up in the classification loss is the direct remedy.",
)  # fmt: skip
def rare_collapse(ctx: Context) -> Finding | None:
    window = ctx.epochs[-COLLAPSE_EPOCHS:]
    if len(window) < COLLAPSE_EPOCHS:
        return None
    first_f1, last_f1 = num(window[0].get(MEAN_F1.key)), num(window[-1].get(MEAN_F1.key))
    if first_f1 is None or last_f1 is None or last_f1 - first_f1 < MEAN_F1_RISE:
        return None
    stuck = None
    for e in window:
        zero = {r["id"] for r in _rows(e) if r.get("present") and num(r.get("f1")) in (0.0, None)}
        stuck = zero if stuck is None else stuck & zero
        if not stuck:
            return None
    ids = sorted(stuck)
    names = [ctx.names[i] if i < len(ctx.names) else str(i) for i in ids]
    counts = ctx.dataset.train_counts if ctx.dataset is not None else None
    shown = ", ".join(f"'{n}'" + (f" ({counts[i]} train boxes)" if counts and i < len(counts) else "")
                      for i, n in zip(ids, names, strict=True))  # fmt: skip
    epochs = [e["epoch"] for e in window]
    change, how = weights_change(ctx, boost=ids)
    return Finding(
        "classes.rare_collapse", "warning",
        f"{'Class' if len(ids) == 1 else 'Classes'} {', '.join(repr(n) for n in names)} stuck at F1 0",
        f"{shown}: F1 0 in {epochs_text(epochs)} while mean F1 rose {fmt(first_f1)} -> {fmt(last_f1)}.",
        f"The model learns the other classes and not {'this one' if len(ids) == 1 else 'these'}: {how}.",
        {"classes": names, "class_ids": ids, "mean_f1": [first_f1, last_f1], "train_counts": counts},
        tuple(epochs), step_range(window[0]), change,
    )  # fmt: skip


@rule(
    "classes.f1_gap", "warning", "frequent classes far ahead of rare ones in F1", {"F1_GAP": F1_GAP, "GAP_EPOCHS":
    GAP_EPOCHS},
    "A gap of 0.3 F1 between the frequent and the rare half of the classes, averaged over 3 epochs, is beyond the "
    "noise of a small val set and is what class imbalance produces; weights from the counts narrow it.",
    needs_dataset=True,
)  # fmt: skip
def f1_gap(ctx: Context) -> Finding | None:
    counts = ctx.dataset.train_counts if ctx.dataset is not None else None
    window = ctx.epochs[-GAP_EPOCHS:]
    if not counts or not window:
        return None
    f1: dict[int, list[float]] = {}
    for e in window:
        for r in _rows(e):
            if r.get("present") and (v := num(r.get("f1"))) is not None and r.get("id", -1) < len(counts):
                f1.setdefault(r["id"], []).append(v)
    ids = sorted(f1, key=lambda i: (-counts[i], i))
    if len(ids) < 2:
        return None
    half = len(ids) // 2
    frequent, rare = ids[: len(ids) - half], ids[len(ids) - half :]
    mean = lambda group: sum(sum(f1[i]) / len(f1[i]) for i in group) / len(group)  # noqa: E731
    gap = mean(frequent) - mean(rare)
    if gap < F1_GAP:
        return None
    name = lambda i: ctx.names[i] if i < len(ctx.names) else str(i)  # noqa: E731
    epochs = [e["epoch"] for e in window]
    change, how = weights_change(ctx, boost=rare)
    return Finding(
        "classes.f1_gap", "warning", f"Rare classes trail the frequent ones by {fmt(gap)} F1",
        f"mean F1 over {epochs_text(epochs)}: {fmt(mean(frequent))} for "
        f"{', '.join(f'{name(i)} ({counts[i]})' for i in frequent)} vs {fmt(mean(rare))} for "
        f"{', '.join(f'{name(i)} ({counts[i]})' for i in rare)} (train boxes in brackets).",
        f"Class imbalance: {how}.",
        {"gap": gap, "frequent": [name(i) for i in frequent], "rare": [name(i) for i in rare]},
        tuple(epochs), step_range(window[0]), change,
    )  # fmt: skip
