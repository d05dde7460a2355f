"""Rules about the data: label files without an image, images ultralytics drops as corrupt or rewrites, classes
without val or train boxes, class weights on classes without boxes, and training that waits on the dataloader.

The dataset rules read :class:`~trainers.doctor.dataset_facts.DatasetFacts` (scanned once per run and cached); the
data-bound rule reads the epoch events' ``system`` readings.
"""

from __future__ import annotations

import statistics

from trainers.doctor.finding import Finding
from trainers.doctor.registry import Context, epochs_text, fmt, num, rule, step_range

DATA_BOUND_SHARE = 0.5  # share of the step time spent waiting for the next batch: more waiting than computing
DATA_BOUND_EPOCHS = 3  # the median share over the last this many epochs (epoch 1 left out once there are more)
MAX_WORKERS = 16  # the data-bound fix never suggests more dataloader workers than this


def _listed(paths: list[str], total: int) -> str:
    return ", ".join(paths[:3]) + (f" and {total - 3} more" if total > 3 else "")


@rule(
    "data.orphan_labels", "warning", "label files without an image", {},
    "ultralytics maps images to labels, never the other way: such a file's boxes are silently not trained on.",
    needs_dataset=True,
)  # fmt: skip
def orphan_labels(ctx: Context) -> Finding | None:
    splits = [s for s in ctx.dataset.splits.values() if s.n_orphans]
    if not splits:
        return None
    parts = [f"{s.split}: {s.n_orphans} label files ({sum(s.orphan_instances)} boxes) without an image, e.g. "
             f"{_listed(s.orphan_labels, s.n_orphans)}" for s in splits]  # fmt: skip
    return Finding(
        "data.orphan_labels",
        "warning",
        f"{sum(s.n_orphans for s in splits)} label files are never trained on",
        "; ".join(parts) + ".",
        "Add the missing images (same name, an image folder next to the labels folder) or delete the label files.",
        {s.split: {"files": s.n_orphans, "boxes": sum(s.orphan_instances)} for s in splits},
    )


@rule(
    "data.corrupt_images", "warning", "images ultralytics drops as corrupt (or rewrites in place)", {},
    "ultralytics drops such an image and its boxes with one console warning (a truncated JPEG, a tiny or mis-named "
    "file) and rewrites JPEGs without an end marker in place; neither shows in the run otherwise.",
    needs_dataset=True,
)  # fmt: skip
def corrupt_images(ctx: Context) -> Finding | None:
    splits = [s for s in ctx.dataset.splits.values() if s.n_dropped or s.n_repaired]
    if not splits:
        return None
    parts = []
    for s in splits:
        dropped = [f"{c['path']} ({c['reason']})" for c in s.corrupt if c["action"] == "dropped"]
        if s.n_dropped:
            parts.append(f"{s.split}: {s.n_dropped} dropped, e.g. {_listed(dropped, s.n_dropped)}")
        if s.n_repaired:
            parts.append(f"{s.split}: {s.n_repaired} JPEGs without the end marker FF D9, rewritten by ultralytics")
        if s.images_checked is not None and s.images_checked < s.n_images:
            parts.append(f"{s.split}: only the first {s.images_checked} of {s.n_images} images were checked")
    dropped = sum(s.n_dropped for s in splits)
    return Finding(
        "data.corrupt_images",
        "warning" if dropped else "info",
        f"{dropped} images dropped as corrupt" if dropped else "JPEGs rewritten in place by ultralytics",
        "; ".join(parts) + ".",
        "Re-export or replace the listed files (workbench counts DATA.yaml --check-images lists them all).",
        {s.split: {"dropped": s.n_dropped, "repaired": s.n_repaired, "checked": s.images_checked} for s in splits},
    )


@rule(
    "data.class_without_val", "warning", "classes without val instances", {},
    "A class with no val boxes gets F1 0 by definition and pulls mean F1 (and best-by-F1) down; its quality is "
    "simply not measured.",
)  # fmt: skip
def class_without_val(ctx: Context) -> Finding | None:
    if ctx.epochs and ctx.epochs[-1].get("per_class"):
        ids = [r["id"] for r in ctx.epochs[-1]["per_class"] if r.get("present") is False]
    elif ctx.dataset is not None and ctx.dataset.val_counts is not None:
        ids = [i for i, n in enumerate(ctx.dataset.val_counts) if n == 0]
    else:
        return None
    if not ids:
        return None
    names = [ctx.names[i] if i < len(ctx.names) else str(i) for i in ids]
    return Finding(
        "data.class_without_val",
        "warning",
        f"{len(ids)} classes have no val instances",
        f"no val boxes for {', '.join(repr(n) for n in names)}: their F1 is 0 in every epoch and counts in mean F1.",
        "Move some images with these classes from train to val (or drop the classes from data.yaml).",
        {"classes": names, "class_ids": ids},
    )


@rule(
    "data.class_without_train", "warning", "classes without train instances", {},
    "A class with no train boxes cannot be learned; it only ever appears as a negative.",
    needs_dataset=True,
)  # fmt: skip
def class_without_train(ctx: Context) -> Finding | None:
    counts = ctx.dataset.train_counts or []
    ids = [i for i, n in enumerate(counts) if n == 0]
    if not ids:
        return None
    names = [ctx.dataset.names[i] for i in ids]
    return Finding(
        "data.class_without_train",
        "warning",
        f"{len(ids)} classes have no train boxes",
        f"0 train boxes for {', '.join(repr(n) for n in names)} (train counts {counts}).",
        "Add labelled train images for these classes, or remove them from data.yaml.",
        {"classes": names, "class_ids": ids, "train_counts": counts},
    )


@rule(
    "data.weights_on_zero_count", "warning", "class weights above 1 on classes without train boxes", {},
    "A class without boxes has no positives, so a weight above 1 only multiplies its negatives and pushes its "
    "scores to 0 harder; zero_count 'max' gives such a class the largest weight (the default, 'one', gives it 1).",
    needs_dataset=True,
)  # fmt: skip
def weights_on_zero_count(ctx: Context) -> Finding | None:
    used, block = ctx.start.get("class_weights"), ctx.customizations.get("class_weights")
    counts = ctx.dataset.train_counts or []
    if not isinstance(used, list) or not isinstance(block, dict) or len(used) != len(counts):
        return None
    ids = [i for i, (n, w) in enumerate(zip(counts, used, strict=True)) if n == 0 and (num(w) or 0) > 1.0 + 1e-9]
    if not ids:
        return None
    names = [ctx.dataset.names[i] for i in ids]
    if block.get("weights") is None:
        change = {"customizations.class_weights.zero_count": "one"}
        how = "set customizations.class_weights.zero_count to 'one' (weight 1.0, neutral)"
    else:
        weights = [1.0 if i in ids else w for i, w in enumerate(block["weights"])]
        change = {"customizations.class_weights.weights": weights}
        how = "set their explicit weights to 1.0"
    return Finding(
        "data.weights_on_zero_count",
        "warning",
        f"Class weights above 1 on {len(ids)} classes without train boxes",
        ", ".join(f"'{n}' weight {fmt(used[i])}" for n, i in zip(names, ids, strict=True)) + " with 0 train boxes.",
        f"Those weights only suppress the classes further: {how}, or add train boxes for them.",
        {"classes": names, "weights": [used[i] for i in ids]},
        (),
        None,
        change,
    )


@rule(
    "data.data_bound", "warning", "steps waiting on the dataloader more than they compute",
    {"DATA_BOUND_SHARE": DATA_BOUND_SHARE, "DATA_BOUND_EPOCHS": DATA_BOUND_EPOCHS, "MAX_WORKERS": MAX_WORKERS},
    "Past a 50% wait share the accelerator idles more than it works; the median over 3 epochs without the first "
    "(worker start-up, first reads from disk) is what a longer run will see.",
)  # fmt: skip
def data_bound(ctx: Context) -> Finding | None:
    read = [e for e in ctx.epochs if num((e.get("system") or {}).get("data_share")) is not None]
    if len(read) > 1:
        read = read[1:]
    read = read[-DATA_BOUND_EPOCHS:]
    if not read:
        return None
    share = statistics.median(e["system"]["data_share"] for e in read)
    if share < DATA_BOUND_SHARE:
        return None
    workers, cache = ctx.train_value("workers"), ctx.train_value("cache")
    if cache in (False, None, "False", "false"):
        change, how = {"train.cache": "ram"}, "set train.cache to 'ram' (decoded images kept in memory)"
    elif isinstance(workers, int) and workers < MAX_WORKERS:
        new = min(max(2 * workers, 2), MAX_WORKERS)
        change, how = {"train.workers": new}, f"raise train.workers from {workers} to {new}"
    else:
        change, how = None, "use a smaller train.imgsz or faster storage"
    cpu = [num(e["system"].get("cpu_percent")) for e in read]
    return Finding(
        "data.data_bound",
        "warning",
        f"Training waits on data {share:.0%} of the time",
        f"median wait share {share:.0%} over {epochs_text([e['epoch'] for e in read])} (data "
        f"{', '.join(fmt(num(e['system'].get('data_s'))) for e in read)} s vs compute "
        f"{', '.join(fmt(num(e['system'].get('compute_s'))) for e in read)} s; CPU "
        f"{', '.join(fmt(c) for c in cpu)}%); workers {workers}, cache {cache}.",
        f"The dataloader cannot keep up: {how}. A smaller imgsz also cuts decoding and augmentation time.",
        {"data_share": share, "workers": workers, "cache": cache},
        tuple(e["epoch"] for e in read),
        step_range(read[0]),
        change,
    )
