"""Start, watch, stop, resume and delete training runs, on this machine or on a Ray cluster (the UI's side of a run).

Training runs in ``python -m trainers.cli train ... --existing``. The launcher reserves the run folder first (status
``starting``), then hands the command to the run's backend, recorded in status.json's ``backend`` field:

- ``local`` (the default, also when the field is absent): a detached process in its own session, so that it
  survives the UI (:mod:`trainers.runs.backends.local`); liveness is its pid and start time.
- ``ray``: a Ray job on the cluster at status.json's ``cluster`` (:mod:`trainers.runs.backends.ray`); liveness is Ray's
job
  status, combined with status.json by :func:`trainers.runs.backends.ray_cluster.settle`.

Either way :func:`refresh_status` notices a run whose process died without saying so (``SIGKILL``, out-of-memory
killer, a lost node) and ends it through :func:`trainers.runs.folder.end_run`, the one run-end writer.

No shell is ever involved locally: commands are argument lists. Nothing here imports torch, ultralytics or ray.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainers import SOURCE_ROOT
from trainers.errors import RunError
from trainers.run_files import LAST_CHECKPOINT, RECIPE_FILE, STATUS_FILE, UI_RECIPES_DIR
from trainers.runs.backends import local as local_processes
from trainers.runs.backends import ray as ray_runs
from trainers.runs.backends.local import child_env  # noqa: F401  (re-exported: the environment of local runs)
from trainers.runs.folder import (
    check_resumable,
    create_run_dir,
    end_run,
    new_run_name,
    rerun_stem,
    unusable_runs_root,
    validate_run_name,
)
from trainers.runs.folder import runs_root as resolve_runs_root
from trainers.runs.status import read_status, update_status, write_status
from trainers.statuses import ACTIVE_STATUSES, RunStatus

REPO_ROOT = SOURCE_ROOT
# A run left in "starting" with no pid (or Ray job) this long after its last update lost its launcher before the spawn.
STARTING_GRACE_S = 60.0


# ---- commands ------------------------------------------------------------------------------------------------------
def train_command(recipe_path: Path, root: Path, name: str) -> list[str]:
    """The argument list of the training process for a reserved run folder (``--existing``)."""
    return [
        sys.executable, "-m", "trainers.cli", "train", str(recipe_path),
        "--runs-dir", str(root), "--name", name, "--existing",
    ]  # fmt: skip


def resume_command(run_dir: Path) -> list[str]:
    """The argument list of the process that resumes ``run_dir``."""
    return [sys.executable, "-m", "trainers.cli", "resume", str(run_dir)]


# ---- start ---------------------------------------------------------------------------------------------------------
def _check_recipe(recipe: Path):
    """Fail now, in the UI, on a recipe that the training process would reject a second later; return it.

    An official checkpoint or ultralytics dataset it names must be on disk already (New run downloads it first when
    the server allows): the one-line refusal comes before the run folder exists.
    """
    from trainers.recipe import load_recipe
    from trainers.runs.model_zoo import resolve_assets

    checked = load_recipe(recipe)
    resolve_assets(checked)
    return checked


def start_run(
    recipe_path: str | os.PathLike[str],
    runs_root: str | os.PathLike[str] | None,
    name: str | None = None,
    *,
    cluster: str | None = None,
    cpus: float | None = None,
    extra_status: Mapping[str, Any] | None = None,
) -> Path:
    """Reserve a run folder and start training: in a detached process, or as a Ray job with ``cluster``.

    Args:
        recipe_path: The recipe YAML.
        runs_root: The runs root (None: ``$WORKBENCH_RUNS_DIR`` or ``./runs``); with ``cluster``, on storage that the
            cluster's nodes see at the same path.
        name: The run name; default: the recipe's stem and the time (``demo-20261122-153012``).
        cluster: The Ray job API (``http://HEAD:8265``) to run on; None: this machine.
        cpus: With ``cluster``: the job's CPU request (default ``$WORKBENCH_CLUSTER_CPUS`` or 1).
        extra_status: Fields recorded in status.json at the reservation (``sweep``, ``sweep_values``).

    Returns:
        The run folder. Its status is ``starting`` with the child's ``pid`` (or the Ray ``job_id``) recorded; the
        training process moves it on.

    Raises:
        RecipeError: If the recipe is missing or invalid.
        RunError: If the name is invalid or in use, or the process cannot be started.
        ClusterError: If the cluster is unreachable (checked before anything is written) or refuses the job.
    """
    root = resolve_runs_root(runs_root)
    recipe = Path(recipe_path).expanduser().resolve()
    if name is not None:
        validate_run_name(name)
    checked = _check_recipe(recipe)
    if cluster is not None:
        from trainers.runs.backends.ray_cluster import check_reachable, normalize_address

        cluster = normalize_address(cluster)
        check_reachable(cluster)
        cpus = ray_runs.cpus_request(cpus)
        ray_runs.job_gpus(checked.train.get("device") if checked is not None else None)  # a bad device fails here
    local_processes.reap()
    try:
        if name is not None:
            run_dir = create_run_dir(root, name)
        else:
            for _attempt in range(10):  # another process may take a generated name between the check and the mkdir
                name = new_run_name(recipe.stem, root)
                try:
                    run_dir = create_run_dir(root, name)
                    break
                except RunError:
                    continue
            else:
                raise RunError(f"could not reserve a run name for {recipe.stem!r} in {root}; pass --name")
    except OSError as e:
        raise unusable_runs_root(root, e) from None
    write_status(run_dir, recipe_source=str(recipe), **(extra_status or {}))  # delete_run needs it (ui_recipe)
    if checked is not None:  # the run keeps its recipe even if it fails before training writes it again
        (run_dir / RECIPE_FILE).write_text(checked.to_yaml(), encoding="utf-8")
    if cluster is not None:
        # The job trains the run's own recipe.yaml (absolute paths): the recipe file given here may not be on storage
        # that the nodes see.
        source = run_dir / RECIPE_FILE if checked is not None else recipe
        command = ["train", str(source), "--runs-dir", str(root), "--name", name, "--existing"]
        device = checked.train.get("device") if checked is not None else None
        _submit(run_dir, command, cluster, device, cpus, extra_status)
        return run_dir
    try:
        local_processes.spawn(train_command(recipe, root, name), run_dir)
    except OSError as e:
        mark_failed(run_dir, f"could not start the training process: {e}")
        raise RunError(f"run {name!r}: could not start the training process ({e})") from None
    return run_dir


def _submit(
    run_dir: Path, command: list[str], address: str, device: Any, cpus: float | None, labels: Mapping | None
) -> None:
    """Submit a reserved run's training command as a Ray job; a refused or lost submit fails the run, one line."""
    from trainers.runs.backends.ray_cluster import ClusterError

    meta = {f"workbench_{k}": str(v) for k, v in (labels or {}).items() if k == "sweep" and v}
    try:
        ray_runs.submit(run_dir, command, address, device=device, cpus=cpus, metadata=meta)
    except ClusterError as e:
        mark_failed(run_dir, f"could not submit the Ray job: {e}")
        raise


def start_again(run_dir: str | os.PathLike[str], name: str | None = None) -> Path:
    """Start a new run with the recipe of ``run_dir`` (which is left as it is), where ``run_dir`` ran (this machine,
    or the Ray cluster it was submitted to).

    Args:
        run_dir: A run of any status.
        name: The new run's name; default: the old name's stem and the time (``demo-20261201-195000`` ->
            ``demo-<now>``).

    Raises:
        RunError: If the run has no recipe.yaml.
    """
    run_dir = Path(run_dir)
    recipe = run_dir / RECIPE_FILE
    if not recipe.is_file():
        raise RunError(f"run {run_dir.name!r} has no {RECIPE_FILE}; start a new run from the New run page instead")
    if name is None:
        root = run_dir.parent
        name = new_run_name(rerun_stem(run_dir.name), root)
    address = ray_runs.recorded_cluster(run_dir)
    if address is None:
        return start_run(recipe, run_dir.parent, name=name)
    return start_run(recipe, run_dir.parent, name=name, cluster=address, cpus=read_status(run_dir).get("num_cpus"))


# ---- watch ---------------------------------------------------------------------------------------------------------
def mark_failed(
    run_dir: str | os.PathLike[str],
    error: str,
    *,
    exit_code: int | None = None,
    traceback: list[str] | None = None,
    owner_pid: int | None = None,
) -> dict[str, Any]:
    """Mark a run that is still starting/running as failed: a ``run_end`` event in telemetry, then status.json.

    Does nothing to a run that has already ended (its own process got there first).

    Args:
        run_dir: The run folder.
        error: One-line message for status.json and the ``run_end`` event.
        exit_code: The process' exit code, if known.
        traceback: Last lines of a traceback, if any.
        owner_pid: Only mark the run if this process owns it: status ``starting`` (reserved for it) or its recorded
            pid. Keeps a rejected second ``train --existing`` from failing a run that another process is training.

    Returns:
        The status after the update.
    """

    def owned(current: dict[str, Any]) -> bool:
        if current.get("status") not in ACTIVE_STATUSES:
            return False
        return owner_pid is None or current.get("status") == RunStatus.STARTING or current.get("pid") == owner_pid

    return end_run(
        run_dir, RunStatus.FAILED, error=error, traceback=traceback, exit_code=exit_code, source="launcher",
        only_if=owned,
    )  # fmt: skip


def refresh_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run's status and settle it if its process died without saying so.

    For a ``starting``/``running`` run whose process is gone: locally, a pid with no process (or one that now belongs
    to another process, told apart by the start time recorded at spawn); on a cluster, a Ray job that Ray says is
    over. If that attempt's telemetry has a ``run_end``, its status is adopted; otherwise a ``run_end`` is appended to
    telemetry and the run is marked ``failed`` (with why), or ``stopped`` if a stop had been requested. While a local
    process lives this costs two small file reads; a Ray run costs one job API request. Either can be polled every
    second.

    Returns:
        The (possibly updated) status. For a live Ray run it also carries ``ray_status`` (or ``cluster_error`` when
        the cluster did not answer: the run is then left as it is), not written to status.json.

    Raises:
        RunError: If ``run_dir`` is not a run.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status.get("status") not in ACTIVE_STATUSES:
        local_processes.reap()
        return status
    ray = status.get("backend") == ray_runs.BACKEND
    owner = status.get("job_id") if ray else status.get("pid")
    if owner is None:
        if time.time() - _mtime(run_dir) < STARTING_GRACE_S:
            return status  # the launcher is between reserving the folder and spawning (or submitting)
        return local_processes.settle_dead(run_dir, status)  # it never started, wherever it was meant to run
    if ray:
        return ray_runs.refresh(run_dir, status)
    alive, exit_code = local_processes.process_state(owner, status.get("pid_start"))
    return status if alive else local_processes.settle_dead(run_dir, status, exit_code)


def _mtime(run_dir: Path) -> float:
    try:
        return (run_dir / STATUS_FILE).stat().st_mtime
    except OSError:
        return 0.0


# ---- stop, resume, delete ------------------------------------------------------------------------------------------
def stop_run(run_dir: str | os.PathLike[str], sig: int = signal.SIGTERM) -> int | str:
    """Ask a run's process to stop (the runner turns SIGTERM/SIGINT into a clean stop with ``run_end``).

    Locally, the whole process group is signalled when the process leads one (the launcher starts it that way, so
    DDP workers hear it too); a process started from a terminal is signalled alone, never its shell's group. On a
    cluster, Ray's ``stop_job`` sends the SIGTERM (``sig`` does not apply) and SIGKILLs after a grace
    (``$WORKBENCH_CLUSTER_STOP_WAIT_S``, 120 s).

    Args:
        run_dir: The run folder.
        sig: The signal; ``SIGKILL`` kills without a clean stop (then :func:`refresh_status` marks it failed).

    Returns:
        The pid that was signalled, or the Ray job id that was asked to stop.

    Raises:
        RunError: If the run is not starting/running, or its process is already gone.
        ClusterError: If the run's cluster is unreachable.
    """
    run_dir = Path(run_dir)
    status = refresh_status(run_dir)
    state, pid = status.get("status"), status.get("pid")
    if state not in ACTIVE_STATUSES:
        raise RunError(f"run {run_dir.name!r} is not running (status: {state}); nothing to stop")
    if status.get("backend") == ray_runs.BACKEND:
        return ray_runs.stop(run_dir, status)
    if pid is None:
        raise RunError(f"run {run_dir.name!r} is starting and has no process yet; try again in a moment")
    try:
        return local_processes.signal_run(run_dir, pid, sig)
    except ProcessLookupError:
        raise RunError(f"run {run_dir.name!r} is not running (process {pid} is gone); nothing to stop") from None


def resumable_status(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's settled status (:func:`refresh_status`) if it can be resumed; raises the one-line reason if not.

    Raises:
        RunError: From :func:`trainers.runs.folder.check_resumable`.
    """
    return check_resumable(run_dir, refresh_status(run_dir))


def resume_run_detached(
    run_dir: str | os.PathLike[str], *, cluster: str | None = None, cpus: float | None = None
) -> None:
    """Resume a stopped or failed run (``python -m trainers.cli resume RUN_DIR``) where it ran, detached.

    A run that ran on a Ray cluster is submitted there again (a new job); ``cluster`` sends it to that cluster
    instead (a local run too, if its folder is on storage the nodes see).

    Raises:
        RunError: If the run is running or completed, its weights/last.pt is damaged (nothing is changed then), or
            the process cannot be started.
        ClusterError: If the cluster is unreachable (nothing is changed) or refuses the job (the run is failed).
    """
    from trainers.runs.preflight import check_last_checkpoint

    run_dir = Path(run_dir).resolve()
    status = resumable_status(run_dir)
    check_last_checkpoint(run_dir / LAST_CHECKPOINT)  # damaged: refused here, so the UI says why, nothing changed
    address = cluster or (status.get("cluster") if status.get("backend") == ray_runs.BACKEND else None)
    if address is not None:
        from trainers.recipe import Recipe
        from trainers.runs.backends.ray_cluster import check_reachable, normalize_address

        address = normalize_address(address)
        check_reachable(address)
        cpus = ray_runs.cpus_request(cpus if cpus is not None else status.get("num_cpus"))
        recipe = Recipe.from_yaml((run_dir / RECIPE_FILE).read_text(encoding="utf-8"), source=str(run_dir))

    def reserve(current: dict[str, Any]) -> dict[str, Any] | None:
        if current.get("status") in ACTIVE_STATUSES:  # another resume got here first
            raise RunError(f"run {run_dir.name!r} is already {current['status']}; stop it first or wait for it to end")
        fields = dict(
            status=RunStatus.STARTING, pid=None, pid_start=None, error=None, exit_code=None, stop_requested=None
        )
        return {**fields, "job_id": None} if address is not None else fields

    local_processes.reap()
    update_status(run_dir, reserve)
    if address is not None:
        _submit(run_dir, ["resume", str(run_dir)], address, recipe.train.get("device"), cpus, status)
        return
    try:
        local_processes.spawn(resume_command(run_dir), run_dir)
    except OSError as e:
        mark_failed(run_dir, f"could not start the resume process: {e}")
        raise RunError(f"run {run_dir.name!r}: could not start the resume process ({e})") from None


def delete_run(run_dir: str | os.PathLike[str]) -> None:
    """Delete a run folder and everything in it, and the recipe New run wrote for it (:func:`ui_recipe`).

    Raises:
        RunError: If the folder is not a run (no status.json: nothing is deleted), or the run is starting/running.
    """
    run_dir = Path(run_dir)
    status = refresh_status(run_dir)
    if status.get("status") in ACTIVE_STATUSES:
        raise RunError(f"run {run_dir.name!r} is {status['status']}; stop it before deleting")
    own_recipe = ui_recipe(run_dir, status)
    shutil.rmtree(run_dir)
    if own_recipe is not None:
        own_recipe.unlink(missing_ok=True)


def ui_recipe(run_dir: str | os.PathLike[str], status: Mapping[str, Any]) -> Path | None:
    """The recipe file that belongs to this run alone: the one it was started from (``recipe_source``) when that lies
    in its runs root's ``.ui-recipes/``, where New run writes a fresh file per run it starts. A recipe anywhere else
    is the user's (``workbench train my.yaml``) and never the run's; a run from before ``recipe_source`` has None."""
    source = status.get("recipe_source")
    if not source:
        return None
    path = Path(source).resolve()
    return path if path.parent == (Path(run_dir).resolve().parent / UI_RECIPES_DIR) else None
