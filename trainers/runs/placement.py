"""Where a run's training process runs (this machine or a Ray cluster): what the CLI and sweeps need to know of it.

The two backends (:mod:`trainers.runs.backends`) are reached only through the runs package (an import-linter
contract in pyproject.toml): the launcher starts, watches and stops runs through them, and this module names the few
facts about placement that callers outside the package use. Importing it is cheap: Ray is imported only by the
functions that talk to a cluster.
"""

from __future__ import annotations

from trainers.runs.backends.local import child_env
from trainers.runs.backends.ray import claim_refusal, cpus_request, owns_run_here
from trainers.runs.backends.ray_cluster import (
    CLUSTER_ENV,
    ClusterError,
    check_reachable,
    normalize_address,
    resolve_address,
)

__all__ = [
    "CLUSTER_ENV",
    "ClusterError",
    "check_reachable",
    "child_env",
    "claim_refusal",
    "cpus_request",
    "normalize_address",
    "owns_run_here",
    "resolve_address",
]
