"""Class weights on the demo's rare class: the New run defaults with and without class weights, side by side.

For each seed, two runs take turns on the same machine: the recipe the New run page builds with its defaults (the
bundled demo data and base checkpoint, 10 epochs, imgsz 128, batch 16, nbs 16, optimizer auto, per-class F1 on), and
the same recipe with class weights switched on as the page switches them on (its defaults: ``inverse_frequency``,
``normalize: mean``, no cap; on the demo's counts 160/60/30/8 that gives circle 0.14, square 0.37, triangle 0.74,
cross 2.76). ``--scheme`` / ``--cap`` / ``--normalize`` try another scheme instead.

Each run is a fresh ``workbench train`` process (``python -m trainers.cli train``, what the launcher spawns), so the
per-class F1 comes from the product's own telemetry (``epoch`` events of ``telemetry.jsonl``). Reported per run and
as the mean over seeds: the rare class's F1 at epochs 1/3/5/10, its best F1, the epoch it first reaches
``--reach`` (default 0.5), the final mean F1, and the rare class's lag behind the mean F1 in epochs 1-3.

    python benchmarks/bench_class_weights.py [--seeds 0 1 2] [--epochs 10] [--reach 0.5] [--json] [--save FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REPORT_EPOCHS = (1, 3, 5, 10)


def recipe(seed: int, epochs: int, weights: dict | None) -> dict:
    """The New run page's default recipe (``app.recipe_form``), with class weights on when ``weights`` is a dict."""
    from app.recipe_form import ON_BY_DEFAULT, FormValues, build_recipe

    enabled = ON_BY_DEFAULT + (("class_weights",) if weights is not None else ())
    draft = build_recipe(FormValues(seed=seed, epochs=epochs, enabled=enabled))
    if not draft.ok:
        raise SystemExit(f"the default form does not build a recipe: {draft.problems}")
    raw = draft.recipe.to_dict()
    if weights:
        raw["customizations"]["class_weights"].update(weights)
    return raw


def train(raw: dict, root: Path, name: str) -> dict:
    """Train ``raw`` in a fresh ``workbench train`` process; return its epoch rows and wall time."""
    import yaml

    from trainers.telemetry.events import read_events

    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "train", str(path), "--runs-dir", str(root / "runs"), "--name", name],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{name}: workbench train exited {proc.returncode}\n{proc.stderr[-3000:]}")
    events, _ = read_events(root / "runs" / name / "telemetry.jsonl")
    epochs = [e for e in events if e.get("event") == "epoch" and not e.get("final_eval")]
    return {"wall_s": round(wall, 1), "epochs": epochs}


def summarize(epochs: list[dict], rare: str, reach: float) -> dict:
    """The figures of one run from its epoch events (``per_class`` rows, ``mean_f1``)."""
    f1 = {e["epoch"]: next(r["f1"] for r in e["per_class"] if r["name"] == rare) for e in epochs}
    mean = {e["epoch"]: e["mean_f1"] for e in epochs}
    last = max(f1)
    others = [r["f1"] for r in epochs[-1]["per_class"] if r["name"] != rare and r["present"]]
    return {
        "rare_f1": {str(k): round(f1[k], 3) for k in REPORT_EPOCHS if k in f1},
        "rare_best_f1": round(max(f1.values()), 3),
        "rare_best_epoch": max(f1, key=lambda k: (f1[k], -k)),
        "first_epoch_reaching": next((k for k in sorted(f1) if f1[k] >= reach), None),
        "final_mean_f1": round(mean[last], 3),
        "final_rare_f1": round(f1[last], 3),
        "final_others_f1": round(statistics.fmean(others), 3),  # mean F1 of the other classes: what weights cost
        "lag_epochs_1_3": [round(mean[k] - f1[k], 3) for k in (1, 2, 3) if k in f1],
        "rare_f1_by_epoch": [round(f1[k], 3) for k in sorted(f1)],
        "mean_f1_by_epoch": [round(mean[k], 3) for k in sorted(mean)],
    }


def mean_of(rows: list[dict]) -> dict:
    def avg(xs):
        xs = [x for x in xs if x is not None]
        return round(statistics.fmean(xs), 3) if xs else None

    return {
        "rare_f1": {k: avg([r["rare_f1"].get(k) for r in rows]) for k in rows[0]["rare_f1"]},
        "rare_best_f1": avg([r["rare_best_f1"] for r in rows]),
        "first_epoch_reaching": [r["first_epoch_reaching"] for r in rows],
        "runs_reaching": sum(r["first_epoch_reaching"] is not None for r in rows),
        "final_mean_f1": avg([r["final_mean_f1"] for r in rows]),
        "final_rare_f1": avg([r["final_rare_f1"] for r in rows]),
        "final_others_f1": avg([r["final_others_f1"] for r in rows]),
        "min_lag_epochs_1_3": min(min(r["lag_epochs_1_3"]) for r in rows),
    }


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--reach", type=float, default=0.5, help="report the first epoch the rare class's F1 reaches this")
    ap.add_argument("--scheme", default=None, help="class-weight scheme (default: the New run page's)")
    ap.add_argument("--cap", type=float, default=None, help="cap on the weights (default: the page's, none)")
    ap.add_argument("--normalize", default=None, help="mean | min | none (default: the page's, mean)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--save", type=Path, default=None, help="also write the JSON document to this file")
    args = ap.parse_args(argv)

    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.label_counts import count_labels

    overrides = {k: v for k, v in (("scheme", args.scheme), ("cap", args.cap), ("normalize", args.normalize)) if v}
    base = recipe(args.seeds[0], args.epochs, None)
    counts = count_labels(load_dataset(base["data"]), "train", require_labels=True)
    rare = counts.names[min(range(len(counts.instances)), key=counts.instances.__getitem__)]
    arms = {"none": None, "class_weights": overrides}
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    started = time.strftime("%Y-%m-%d %H:%M")
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="bench_cw_") as tmp:
        for seed in args.seeds:
            for arm, weights in arms.items():  # taking turns, so both arms see the same machine state
                raw = recipe(seed, args.epochs, weights)
                result = train(raw, Path(tmp), f"{arm}-s{seed}")
                row = {"seed": seed, "wall_s": result["wall_s"], **summarize(result["epochs"], rare, args.reach)}
                if arm != "none":
                    row["class_weights"] = raw["customizations"]["class_weights"]
                runs[arm].append(row)
                loads.append(load_average())
                if not args.json:
                    print(
                        f"{arm:>13} seed {seed}: {rare} F1 by epoch {row['rare_f1_by_epoch']}, "
                        f"mean F1 {row['mean_f1_by_epoch']} ({row['wall_s']} s, load {loads[-1]})",
                        flush=True,
                    )
    doc = {
        "started": started,
        "rare_class": rare,
        "train_counts": dict(zip(counts.names, counts.instances, strict=True)),
        "epochs": args.epochs,
        "seeds": args.seeds,
        "reach": args.reach,
        "class_weights": recipe(args.seeds[0], args.epochs, overrides)["customizations"]["class_weights"],
        "load_average": {"min": min(x for x in loads if x is not None), "max": max(x for x in loads if x is not None)}
        if any(x is not None for x in loads) else None,
        "runs": runs,
        "mean": {arm: mean_of(rows) for arm, rows in runs.items()},
    }  # fmt: skip
    if args.save:
        args.save.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"\nrare class: {rare}; train counts {doc['train_counts']}; class weights {doc['class_weights']}")
    head = " | ".join(f"{rare} F1 @{k}" for k in REPORT_EPOCHS if k <= args.epochs)
    print(
        f"| arm | seed | {head} | best {rare} F1 | first epoch ≥ {args.reach} | final mean F1 "
        "| final F1, other classes | lag ep 1-3 |"
    )
    for arm, rows in runs.items():
        for r in rows:
            cells = " | ".join(f"{r['rare_f1'][str(k)]:.2f}" for k in REPORT_EPOCHS if k <= args.epochs)
            lag = ", ".join(f"{x:.2f}" for x in r["lag_epochs_1_3"])
            print(
                f"| {arm} | {r['seed']} | {cells} | {r['rare_best_f1']:.2f} | {r['first_epoch_reaching'] or '—'} "
                f"| {r['final_mean_f1']:.2f} | {r['final_others_f1']:.2f} | {lag} |"
            )
        m = doc["mean"][arm]
        cells = " | ".join(f"{v:.2f}" for v in m["rare_f1"].values())
        print(
            f"| **{arm}, mean** | {len(rows)} seeds | {cells} | {m['rare_best_f1']:.2f} | "
            f"{m['runs_reaching']}/{len(rows)} runs | {m['final_mean_f1']:.2f} | {m['final_others_f1']:.2f} "
            f"| min {m['min_lag_epochs_1_3']:.2f} |"
        )
    print(f"load average (1 min) during the runs: {doc['load_average']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
