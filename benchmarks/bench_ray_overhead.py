"""Time the demo trained locally and through a Ray job on a private one-node head, side by side.

Starts ``ray start --head`` on loopback (tests/ray_cluster.py: its own process group, its own temp dir, ended with
everything it spawned), then alternates: ``python -m trainers.cli train RECIPE`` training in that process, and
``python -m trainers.cli train RECIPE --cluster ADDRESS`` (the launcher's Ray backend: reserve the run, submit the
job, follow it until Ray says it is over). Both are timed from the command's start to its exit and must end
``completed`` with weights in the run folder.

``--num-cpus`` is the job's CPU request. Ray also sets OMP_NUM_THREADS to it, so torch trains with that many threads;
the default (all of the head's CPUs) matches a local run's thread count. ``--num-cpus 1`` on a 2-core machine shows
what a too-small request costs.

Usage::

    python benchmarks/bench_ray_overhead.py                                # demo-quick, 3 rounds
    python benchmarks/bench_ray_overhead.py --recipe assets/recipes/demo-all-seven.yaml --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def train_local(recipe: Path, root: Path, name: str) -> float:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(root), "--name", name]
    subprocess.run(cmd, env=child_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def train_ray(address: str, recipe: Path, root: Path, name: str, num_cpus: float) -> float:
    """``workbench train RECIPE --cluster ADDRESS`` (the launcher's Ray backend, followed to the job's end), timed."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "trainers.cli", "train", str(recipe), "--runs-dir", str(root), "--name", name]
    cmd += ["--cluster", address, "--cpus", str(num_cpus)]
    subprocess.run(cmd, env=child_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def check_completed(run_dir: Path) -> None:
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed", status
    assert (run_dir / "weights" / "last.pt").is_file() and (run_dir / "telemetry.jsonl").is_file()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=REPO / "assets" / "recipes" / "demo-quick.yaml")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--head-cpus", type=int, default=2, help="the head's --num-cpus (keep <= 2 on a shared machine)")
    p.add_argument("--num-cpus", type=float, default=None, help="the job's CPU request (default: --head-cpus)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the runs folder (default: removed at the end)")
    args = p.parse_args(argv)
    num_cpus = args.num_cpus if args.num_cpus is not None else args.head_cpus

    from tests.ray_cluster import start_head, stop_head
    from trainers.offline import apply_offline_env

    apply_offline_env()
    recipe = args.recipe.resolve()
    root = Path(tempfile.mkdtemp(prefix="bench-ray-runs-"))
    head = start_head(num_cpus=args.head_cpus)
    local, ray = [], []
    try:
        for i in range(args.rounds):
            local.append(train_local(recipe, root, f"local-{i}"))
            check_completed(root / f"local-{i}")
            ray.append(train_ray(head.address, recipe, root, f"ray-{i}", num_cpus))
            check_completed(root / f"ray-{i}")
    finally:
        stopped = stop_head(head)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "recipe": str(recipe.relative_to(REPO) if recipe.is_relative_to(REPO) else recipe),
        "rounds": args.rounds,
        "job_num_cpus": num_cpus,
        "local_s": [round(x, 2) for x in local],
        "ray_s": [round(x, 2) for x in ray],
        "local_median_s": round(statistics.median(local), 2),
        "ray_median_s": round(statistics.median(ray), 2),
        "ratio": round(statistics.median(ray) / statistics.median(local), 3),
        "head_start_s": round(head.started_s, 2),
        "head_stop_s": round(stopped, 2),
        "runs_dir": str(root) if args.keep else None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['recipe']}, {args.rounds} rounds, job num_cpus={num_cpus:g}")
        print(f"{'round':>5}  {'local s':>8}  {'ray s':>8}  {'ray/local':>9}")
        for i, (a, b) in enumerate(zip(local, ray, strict=True)):
            print(f"{i:>5}  {a:8.2f}  {b:8.2f}  {b / a:9.3f}")
        print(f"{'median':>5}  {result['local_median_s']:8.2f}  {result['ray_median_s']:8.2f}  {result['ratio']:9.3f}")
        kept = f"; runs in {root}" if args.keep else ""
        print(f"(head up in {result['head_start_s']} s, ended in {result['head_stop_s']} s{kept})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
