"""The command line's side of cluster runs: the ``--cluster`` options, and what ``train``/``resume`` do with them.

``workbench train RECIPE --cluster ADDRESS`` reserves the run folder, submits the training process as a Ray job
(:func:`trainers.runs.launcher.start_run`) and follows its output until it ends (:mod:`trainers.runs.follow`);
``--detach`` returns once it is submitted. ``workbench resume RUN`` submits a run that ran on a cluster there again.
Inside the job, the same ``train --existing`` / ``resume`` commands train in their own process, after checking that
status.json still names their job (:func:`check_claim`). Importing this module is cheap (the CLI's parser uses it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainers.errors import RunError


def add_options(p: argparse.ArgumentParser, command: str) -> None:
    """``--cluster``, ``--cpus`` and (train/resume) ``--device``, ``--detach`` on a sub-command's parser."""
    where = "where the run ran" if command == "resume" else "$WORKBENCH_CLUSTER"
    p.add_argument("--cluster", metavar="ADDRESS", help=f"run as Ray jobs on this job API, http://HEAD:8265 ({where})")
    p.add_argument("--cpus", metavar="N", help="CPUs each Ray job reserves (default: $WORKBENCH_CLUSTER_CPUS or 1)")
    if command == "sweep":
        return
    p.add_argument("--device", help="train.device for this process only (a Ray job gets its granted GPUs, from 0)")
    p.add_argument("--detach", action="store_true", help="with a cluster: submit and return, do not follow")


def cluster_of(args: argparse.Namespace) -> str | None:
    """The cluster a command runs on: ``--cluster`` > ``$WORKBENCH_CLUSTER`` > None (this machine).

    Never for ``train --existing``: that process is the training process itself (the launcher's local child, or the
    Ray job), so it trains here whatever ``$WORKBENCH_CLUSTER`` says.
    """
    if getattr(args, "existing", False):
        return None
    from trainers.runs.placement import resolve_address

    return resolve_address(args.cluster)


def check_claim(run_dir: Path) -> bool:
    """Inside a Ray job, refuse (exit 2) unless status.json still names this job; True when this is the run's job.

    Raises:
        RunError: The job is stale (stopped while queued, or the run was resumed under another job).
    """
    from trainers.runs import placement
    from trainers.runs.status import read_status

    status = read_status(run_dir)
    refusal = placement.claim_refusal(run_dir, status)
    if refusal:
        raise RunError(refusal)
    return placement.owns_run_here(status)


def resumes_on_cluster(args: argparse.Namespace, run_dir: Path) -> bool:
    """Whether ``workbench resume`` submits (``--cluster``, or a run that ran on one) instead of training here."""
    from trainers.runs.status import read_status

    return not check_claim(run_dir) and bool(args.cluster or read_status(run_dir).get("backend") == "ray")


def train_on_cluster(args: argparse.Namespace, root: Path, address: str) -> int:
    """``workbench train RECIPE --cluster ADDRESS``: submit, then follow (or return at once with ``--detach``)."""
    from trainers.runs.follow import follow
    from trainers.runs.launcher import start_run

    run_dir = start_run(args.recipe, root, name=args.name, cluster=address, cpus=args.cpus)
    return submitted(run_dir) if args.detach else follow(run_dir)


def resume_on_cluster(args: argparse.Namespace, run_dir: Path) -> int:
    """``workbench resume RUN`` for a cluster run: a new job for it, followed from the output it adds."""
    from trainers.runs.follow import console_size, follow
    from trainers.runs.launcher import resume_run_detached
    from trainers.runs.placement import normalize_address

    offset = console_size(run_dir)
    resume_run_detached(run_dir, cluster=normalize_address(args.cluster) if args.cluster else None, cpus=args.cpus)
    return submitted(run_dir) if args.detach else follow(run_dir, offset)


def submitted(run_dir: Path) -> int:
    """``--detach``: say where the run went, and return 0 at once."""
    from trainers.runs.status import read_status

    status = read_status(run_dir)
    print(
        f"run {run_dir.name!r} submitted to {status.get('cluster')} as Ray job {status.get('job_id')}; "
        "'workbench runs' shows how it goes"
    )
    return 0
