"""Run a sweep: start its variants as ordinary runs through the launcher, ``parallel`` at a time, and wait for them.

Locally each variant is a detached training process; with a cluster each is a Ray job (Ray also queues a job until
its resources are free). Either way the sweep keeps at most ``parallel`` variants active, polls them every second,
prints one line per change (a live table), applies the optional early stop (:mod:`trainers.sweeps.early_stop`) and
ends with a table of every variant. Exit code: 0 when no variant failed, 1 if one did, 130 on Ctrl-C (the active
variants are asked to stop; the rest are not started).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from trainers.errors import WorkbenchError
from trainers.metrics import metric_label
from trainers.run_files import SWEEPS_DIR, UI_SWEEPS_DIR
from trainers.runs import launcher
from trainers.runs.status import write_status
from trainers.statuses import ACTIVE_STATUSES, RunStatus
from trainers.sweeps.early_stop import EarlyStopper
from trainers.sweeps.sweep_file import MAX_VARIANTS, Sweep, SweepError, Variant, load_sweep, record

DEFAULT_PARALLEL = 1  # locally: one training process at a time unless asked
DEFAULT_PARALLEL_CLUSTER = 4  # Ray queues the rest; a job queued over RAY_JOB_START_TIMEOUT_SECONDS (900 s) fails
POLL_S = 1.0
_drivers: dict[Path, Any] = {}  # `workbench sweep` processes started by start_detached, by log; polled (reaped)


def sweep_command(
    path: str | Path,
    root: Path,
    *,
    cluster: str | None = None,
    name: str | None = None,
    parallel: int | None = None,
    cpus: float | str | None = None,
    out: TextIO | None = None,
    notify: str | None = None,
) -> int:
    """``workbench sweep SWEEP.yaml``: check everything first (exit 2, one line), then run the sweep.

    ``notify``: ``--notify URL``, set as every variant's ``notify`` block (:func:`trainers.runs.notify.with_notify`).
    """
    sweep = load_sweep(path, root=root, name=name, parallel=parallel)
    if notify:
        from trainers.runs.notify import with_notify

        sweep = replace(sweep, variants=[replace(v, recipe=with_notify(v.recipe, notify)) for v in sweep.variants])
    fetch_assets(sweep)
    if cluster is not None:
        from trainers.runs.placement import check_reachable, cpus_request

        check_reachable(cluster)
        cpus = cpus_request(cpus)
    n = sweep.parallel or default_parallel(cluster is not None)
    return run_sweep(sweep, root, parallel=n, cluster=cluster, cpus=cpus, out=out or sys.stdout)


def default_parallel(on_cluster: bool) -> int:
    """How many variants run at a time when the sweep does not say (``--parallel``, the Sweeps page's default)."""
    return DEFAULT_PARALLEL_CLUSTER if on_cluster else DEFAULT_PARALLEL


def fetch_assets(sweep: Sweep) -> None:
    """Every official checkpoint or ultralytics dataset the variants name, on disk before the first variant starts:
    downloaded now when allowed, else the one-line refusal (exit 2) instead of a sweep of failed starts."""
    from trainers.runs import model_zoo
    from trainers.runs.downloads import fetch

    download = fetch if model_zoo.downloads_allowed() else None
    for v in sweep.variants:
        model_zoo.resolve_assets(v.recipe, download=download)


def start_detached(
    doc: dict[str, Any], root: Path, name: str, cluster: str | None = None, cpus: float | None = None
) -> Sweep:
    """Check a sweep (as the CLI would), then run ``workbench sweep`` for it in a detached process (the UI's Start).

    The sweep file goes to ``<root>/.ui-sweeps/<name>.yaml`` and the sweep's own output (its live table) to
    ``<name>.log`` next to it; the variants are ordinary runs, each with its own folder, listed as they start. A name
    in use is refused before anything is written, so an earlier sweep's file is never touched. Messages speak of the
    page's fields (the sweep name, the grid), not of the sweep file or ``--name``.

    Returns:
        The sweep as checked (its variants), for the page to list before the sweep process records it.

    Raises:
        SweepError: As ``workbench sweep`` would (one line naming the key); nothing is started.
        RunError: The name is not a valid sweep name.
        ClusterError: If ``cluster`` is unreachable.
    """
    import os
    import subprocess

    import yaml

    from trainers.runs.folder import validate_run_name
    from trainers.runs.placement import child_env

    validate_run_name(f"{name}-{MAX_VARIANTS}", what="sweep name")  # before the name becomes a file name
    again = "choose another sweep name (or leave it empty for a new one)"
    folder = Path(root) / UI_SWEEPS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    if (Path(root) / SWEEPS_DIR / name).exists():
        raise SweepError(f"sweep name {name!r} is already used in {root}; {again}")
    try:
        with open(path, "x", encoding="utf-8") as f:  # the reservation: an earlier sweep's file is never replaced
            f.write(yaml.safe_dump(doc, sort_keys=False))
    except FileExistsError:
        raise SweepError(f"sweep name {name!r} is already used in {root}; {again}") from None
    try:
        sweep = load_sweep(path, name=name, where="sweep")  # no root: the names are checked here, in the page's words
        taken = [v.run for v in sweep.variants if os.path.lexists(Path(root) / v.run)]
        if taken:
            raise SweepError(f"sweep name {name!r}: run {taken[0]!r} already exists in {root}; {again}")
        if cluster is not None:
            from trainers.runs.placement import check_reachable

            check_reachable(cluster)
    except WorkbenchError:
        path.unlink(missing_ok=True)  # the file this call created, never an earlier one
        raise
    cmd = [sys.executable, "-m", "trainers.cli", "sweep", str(path), "--runs-dir", str(root), "--name", name]
    cmd += ["--cluster", cluster] if cluster else []
    cmd += ["--cpus", f"{cpus:g}"] if cluster and cpus is not None else []
    for p in _drivers.values():
        p.poll()
    with open(folder / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=child_env(), start_new_session=True, close_fds=True,
        )  # fmt: skip
    _drivers[folder / f"{name}.log"] = proc
    return sweep


def early_end(root: Path, name: str) -> str | None:
    """Why the sweep process that :func:`start_detached` started for ``name`` has ended already (the last line of
    its log), or None while it runs or when this process did not start it. Asked while the sweep is not recorded."""
    log = Path(root) / UI_SWEEPS_DIR / f"{name}.log"
    proc = _drivers.get(log)
    if proc is None or proc.poll() is None:
        return None
    try:
        lines = [x.strip() for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        lines = []
    return (lines[-1] if lines else "") or f"the sweep process exited with code {proc.returncode}"


def short_keys(grid: dict[str, Any]) -> dict[str, str]:
    """Grid key -> the shortest trailing part of it that no other key shares (``backbone_ratio``, ``train.lr0``)."""
    out = {}
    for key in grid:
        parts = key.split(".")
        for i in range(len(parts) - 1, -1, -1):
            tail = ".".join(parts[i:])
            if sum(k == tail or k.endswith("." + tail) for k in grid) == 1:
                out[key] = tail
                break
        else:
            out[key] = key
    return out


def _metric(status: dict[str, Any]) -> str:
    best = status.get("best_metric") or {}
    value = best.get("value")
    if not isinstance(value, (int, float)):
        return "-"
    return f"{metric_label(best.get('name') or 'best')} {value:.4f}"


def line(v: Variant, status: dict[str, Any], short: dict[str, str]) -> str:
    """One row of the live table: run, status, epoch, best metric, the variant's values."""
    state = str(status.get("status", "?"))
    if status.get("early_stop") and state == RunStatus.STOPPED:
        state = f"{RunStatus.STOPPED} (early)"
    elif status.get("ray_status") == "PENDING" and state == RunStatus.STARTING:
        state = RunStatus.QUEUED
    epoch = f"{status.get('epoch') or 0}/{status.get('epochs') or '?'}"
    values = " ".join(f"{short[k]}={val}" for k, val in v.values.items())
    return f"{v.run:<{len(v.run) + 2}}{state:<16}{epoch:<8}{_metric(status):<18}{values}"


def run_sweep(
    sweep: Sweep, root: Path, *, parallel: int, cluster: str | None = None, cpus: Any = None, out: TextIO = sys.stdout
) -> int:
    """Start the variants, ``parallel`` at a time, until all have ended; print the live table. Returns the exit code."""
    folder = record(sweep, root, cluster, parallel)
    short = short_keys(sweep.grid)
    where = f"on {cluster}" if cluster else "on this machine"
    grid = ", ".join(f"{k} ({len(v)})" for k, v in sweep.grid.items())
    print(f"sweep {sweep.name}: {len(sweep.variants)} variants of {sweep.base.name}, {parallel} at a time {where}; "
          f"grid: {grid}", file=out, flush=True)  # fmt: skip
    stopper = EarlyStopper(sweep.early_stop.epoch, sweep.early_stop.keep) if sweep.early_stop else None
    pending, active = list(sweep.variants), {}
    final: dict[str, dict[str, Any]] = {}
    shown: dict[str, str] = {}
    try:
        while pending or active:
            while pending and len(active) < parallel:
                v = pending.pop(0)
                try:
                    run_dir = launcher.start_run(
                        folder / f"{v.run}.yaml", root, name=v.run, cluster=cluster, cpus=cpus,
                        extra_status={"sweep": sweep.name, "sweep_values": v.values},
                    )  # fmt: skip
                except WorkbenchError as e:
                    final[v.run] = {"status": RunStatus.FAILED, "error": str(e)}
                    print(f"{v.run}  failed to start: {e}", file=out, flush=True)
                    continue
                active[v.run] = (v, run_dir)
            for run, (v, run_dir) in list(active.items()):
                status = launcher.refresh_status(run_dir)
                if stopper is not None and status.get("status") in ACTIVE_STATUSES:
                    _early_stop(stopper, run_dir, out)
                    status = launcher.refresh_status(run_dir)
                row = line(v, status, short)
                if shown.get(run) != row:
                    shown[run] = row
                    print(row, file=out, flush=True)
                if status.get("status") not in ACTIVE_STATUSES:
                    final[run] = status
                    del active[run]
            if pending or active:
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        print(f"workbench: stopping sweep {sweep.name}: asking {len(active)} running variants to stop, "
              f"{len(pending)} not started", file=sys.stderr)  # fmt: skip
        for _v, run_dir in active.values():
            try:
                launcher.stop_run(run_dir)
            except WorkbenchError:
                pass
        return 130
    return _summary(sweep, final, short, out)


def _early_stop(stopper: EarlyStopper, run_dir: Path, out: TextIO) -> None:
    decision = stopper.observe(run_dir)
    if decision is None or decision[0]:
        return
    why = decision[1]
    try:
        launcher.stop_run(run_dir)
    except WorkbenchError:
        return  # it ended by itself meanwhile
    write_status(run_dir, early_stop=why)
    print(f"{run_dir.name}  early stop: {why}", file=out, flush=True)


def _summary(sweep: Sweep, final: dict[str, dict[str, Any]], short: dict[str, str], out: TextIO) -> int:
    counts: dict[str, int] = {}
    print(f"sweep {sweep.name} done ({Path(SWEEPS_DIR) / sweep.name} in the runs root):", file=out)
    for v in sweep.variants:
        status = final.get(v.run, {"status": "?"})
        counts[status.get("status", "?")] = counts.get(status.get("status", "?"), 0) + 1
        print("  " + line(v, status, short) + (f"  {status['error']}" if status.get("error") else ""), file=out)
    print("  " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=out, flush=True)
    return 1 if counts.get(RunStatus.FAILED) else 0
