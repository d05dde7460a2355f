"""The ``workbench`` commands that read runs and datasets and print what they find: export, runs, counts, doctor
and compare. Each is ``cmd_<name>(args) -> exit code``; :mod:`trainers.cli` parses the arguments and maps errors to
exit codes. Imports are inside the commands so that ``workbench --help`` stays cheap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainers.errors import RunError


# ---- export --------------------------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    """``workbench export RUN``: the step, epoch and per-class series as CSV or Parquet files."""
    from trainers.runs.folder import resolve_run, runs_root
    from trainers.telemetry.export import export_run

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    for path in export_run(run_dir, args.format, args.out):
        print(path)
    return 0


# ---- runs ------------------------------------------------------------------------------------------------------------
def _format_metric(metric: Any) -> str:
    if not isinstance(metric, dict) or metric.get("value") is None:
        return "-"
    value = metric["value"]
    return f"{metric.get('name', '?')}={value:.4f}" if isinstance(value, (int, float)) else f"{metric.get('name')}=?"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def _header_facts(run_dir: str) -> dict[str, Any]:
    """What the run's dashboard header shows (:mod:`trainers.runs.facts`); nothing for a run gone since listed."""
    from trainers.runs.facts import read_run_facts
    from trainers.runs.status import read_status

    try:
        return read_run_facts(run_dir, read_status(run_dir)).to_dict()
    except (RunError, OSError):
        return {}


def cmd_runs(args: argparse.Namespace) -> int:
    """``workbench runs``: one row per run, newest first; live runs are checked for a dead process first.

    ``--json`` adds every fact the run's dashboard header shows (best epoch, steps, clipped share, ETA, findings by
    severity), from the same function; it reads each run's telemetry, where the table reads status.json alone.
    """
    from trainers.runs.folder import RunSummary, list_runs, runs_root
    from trainers.runs.launcher import refresh_status
    from trainers.statuses import ACTIVE_STATUSES

    root = runs_root(args.runs_dir)
    summaries = []
    for s in list_runs(root):
        if s.status in ACTIVE_STATUSES:
            try:
                s = RunSummary.from_status(Path(s.path), refresh_status(s.path))
            except RunError:
                pass  # deleted or unreadable since listed: show what we read
        summaries.append(s)
    if args.json:
        runs = [{**s.to_dict(), **_header_facts(s.path)} for s in summaries]
        print(json.dumps({"runs_dir": str(root), "runs": runs}, indent=2))
        return 0
    if not summaries:
        print(f"no runs in {root}")
        return 0
    rows = [
        [
            s.name,
            s.status,
            f"{s.epoch if s.epoch is not None else '-'}/{s.epochs if s.epochs is not None else '-'}",
            _format_metric(s.best_metric),
            (s.updated or "-").replace("T", " ")[:19],
        ]
        for s in summaries
    ]
    print(_table(rows, ["NAME", "STATUS", "EPOCH", "BEST", "UPDATED"]))
    return 0


# ---- counts --------------------------------------------------------------------------------------------------------
def cmd_counts(args: argparse.Namespace) -> int:
    """``workbench counts DATA.yaml``: per-class instances and images, the weights each scheme gives, and what the
    split skips (label files without an image) or trains as background; ``--check-images`` adds the images
    ultralytics would drop as corrupt or rewrite (it opens every image, so it is opt-in)."""
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.summary import dataset_notes, summarize_split

    data = Path(args.data)
    ds = load_dataset(data)
    summary = summarize_split(ds, args.split)  # DatasetError names the file, split or label line
    counts = summary.counts
    scan = None
    if args.check_images:
        from trainers.datasets.corrupt_images import find_corrupt_images
        from trainers.datasets.files import image_file_strs

        scan = find_corrupt_images(image_file_strs(ds, args.split))
    from trainers.customizations.class_weights import ClassWeights
    from trainers.datasets.class_weights import all_schemes

    # weights are derived from the box counts per class, with the recipe's default parameters
    schemes = all_schemes(counts.instances, **ClassWeights().scheme_params())
    if args.json:
        found = summary.to_dict()
        doc = {
            "data": str(data.resolve()),
            "split": args.split,
            "counts": counts.to_dict(),
            "weights": schemes,
            "orphan_labels": found["orphan_labels"],
            "orphan_instances": found["orphan_instances"],
            "images_without_labels": found["images_without_labels"],
        }
        if scan is not None:
            doc["corrupt_images"] = scan.to_dict()
        print(json.dumps(doc, indent=2))
        return 0
    names = list(counts.names)
    header = ["ID", "CLASS", "INSTANCES", "IMAGES", *schemes]
    rows = [
        [str(i), name, str(counts.instances[i]), str(counts.images[i]), *(f"{w[i]:.3f}" for w in schemes.values())]
        for i, name in enumerate(names)
    ]
    print(f"{data} [{args.split}]: {counts.n_images} images, {counts.n_labelled} labelled, {counts.n_background} empty")
    print(_table(rows, header))
    for line in dataset_notes(summary):
        print(line)
    if scan is not None:
        from trainers.datasets.corrupt_images import image_notes

        print("\n".join(image_notes(scan, ds.root)) or f"all {scan.checked} images open as ultralytics expects")
    return 0


# ---- doctor / compare ----------------------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    """``workbench doctor RUN``: the training doctor's findings (docs/doctor.md); ``--json``: a list of findings."""
    from trainers.doctor import diagnose_run, findings_text
    from trainers.runs.folder import resolve_run, runs_root

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    findings = diagnose_run(run_dir, dataset=not args.no_dataset)
    print(json.dumps([f.to_dict() for f in findings], indent=2) if args.json else findings_text(findings, run_dir.name))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``workbench compare RUN RUN...``: the recipe settings that differ and each run's final metrics."""
    from trainers.runs.compare import compare_runs
    from trainers.runs.folder import resolve_run, runs_root

    root = runs_root(args.runs_dir)
    comparison = compare_runs([resolve_run(root, run) for run in args.runs])
    print(json.dumps(comparison.to_dict(), indent=2) if args.json else comparison.text())
    return 0
