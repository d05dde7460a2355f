"""The ``workbench`` command line: train, resume, list, stop, sweep, count labels, import datasets
(:mod:`~trainers.cli.dataset_import`), diagnose and compare runs, and start the UI.

``--cluster ADDRESS`` (or ``$WORKBENCH_CLUSTER``) on train, sweep and ui runs training as Ray jobs on that cluster
(:mod:`trainers.runs.backends.ray`); train and resume then follow the job's output until it ends
(:mod:`trainers.runs.follow`).

Exit codes: 0 ok; 1 training failed (the training process says so); 2 bad input (one line ``workbench: error: ...`` on
stderr, from any :class:`~trainers.errors.WorkbenchError`, or argparse's usage error); 130 interrupted.

Importing this module is cheap: torch and ultralytics are imported by trainers.training.run, only when training starts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from trainers import SOURCE_ROOT
from trainers.cli import cluster as cluster_commands
from trainers.cli import dataset_import, notify_option, ui_gate
from trainers.cli import model_export as model_export_command
from trainers.cli import notes as notes_commands
from trainers.cli.reports import cmd_compare, cmd_counts, cmd_doctor, cmd_export, cmd_runs
from trainers.errors import RunError, WorkbenchError

APP_SCRIPT = SOURCE_ROOT / "app" / "main.py"


# ---- train / resume ------------------------------------------------------------------------------------------------
def _owned_run(run_dir: Path | None, body: Callable[[], Any]) -> Any:
    """Run ``body``; if it raises while this process owns ``run_dir``, record the failure in the run first.

    Without this, a run the launcher reserved would sit in ``starting`` until the launcher notices the dead process,
    and the UI would show "exited without a run-end event" instead of the real message (a bad dataset, say).
    """
    if run_dir is None:
        return body()
    from trainers.runs.launcher import mark_failed

    try:
        return body()
    except WorkbenchError as e:
        mark_failed(run_dir, str(e), exit_code=2, owner_pid=os.getpid())
        raise
    except Exception as e:
        lines = traceback.format_exc().rstrip().splitlines()[-20:]
        mark_failed(run_dir, f"{type(e).__name__}: {e}", exit_code=1, traceback=lines, owner_pid=os.getpid())
        raise


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _device(args: argparse.Namespace) -> dict[str, str]:
    return {"device": args.device} if args.device else {}


@contextlib.contextmanager
def _asset_env(args: argparse.Namespace) -> Iterator[None]:
    """``--weights-dir`` / ``--allow-downloads`` as this command's environment, for the processes it starts too.

    The weights folder is resolved once, here (ultralytics' setting is read before our offline environment points
    ``YOLO_CONFIG_DIR`` at the workbench's own), so the UI, the launcher and every training process agree. Restored
    afterwards: tests call :func:`main` in-process.
    """
    if not hasattr(args, "weights_dir"):
        yield
        return
    from trainers.runs import model_zoo

    update = {model_zoo.WEIGHTS_DIR_ENV: str(model_zoo.weights_dir(args.weights_dir))}
    if args.allow_downloads:
        update[model_zoo.ALLOW_DOWNLOADS_ENV] = "1"
    before = {k: os.environ.get(k) for k in update}
    os.environ.update(update)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _add_asset_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights-dir", metavar="D",
        help="folder of official checkpoints (yolo11n.pt...) (default: $WORKBENCH_WEIGHTS_DIR, else ultralytics' "
        "weights_dir setting)",
    )  # fmt: skip
    p.add_argument(
        "--allow-downloads", action="store_true",
        help="download an official checkpoint or ultralytics dataset (coco8.yaml) that is not on disk, before the "
        "run starts (default: $WORKBENCH_ALLOW_DOWNLOADS; otherwise refuse, offline)",
    )  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    """``workbench train RECIPE``: cheap checks on the name, then train in this process (trainers.training.run), or
    submit it to ``--cluster`` and follow it there."""
    from trainers.run_files import STATUS_FILE
    from trainers.runs.folder import ensure_name_free, runs_root, validate_run_name

    root = runs_root(args.runs_dir)
    address = cluster_commands.cluster_of(args)
    run_dir = None
    if args.name is not None:
        validate_run_name(args.name)
        if args.existing:
            if (root / args.name / STATUS_FILE).is_file():
                run_dir = root / args.name
                cluster_commands.check_claim(run_dir)  # inside a Ray job: still this job's run?
        else:
            ensure_name_free(root, args.name)  # fail now, not after the dataset scan
    if args.notify:  # the recipe with its notify block set, as a file of its own (trainers/cli/notify_option.py)
        args.recipe = notify_option.recipe_with_notify(args.recipe, args.notify, root)
    if address is not None:
        return cluster_commands.train_on_cluster(args, root, address)

    def body() -> int:
        from trainers.training.run import train_run

        return int(
            train_run(
                args.recipe, root, name=args.name, existing=args.existing, step_stride=args.log_every, **_device(args)
            )
            or 0
        )

    return _owned_run(run_dir, body)


def cmd_resume(args: argparse.Namespace) -> int:
    """``workbench resume RUN``: refuse completed/running runs, then resume in this process (trainers.training.run); a
    run
    that ran on a cluster (or ``--cluster``) is submitted there again and followed."""
    from trainers.runs.folder import resolve_run, runs_root
    from trainers.runs.launcher import resumable_status

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    if cluster_commands.resumes_on_cluster(args, run_dir):
        return cluster_commands.resume_on_cluster(args, run_dir)
    resumable_status(run_dir)
    from trainers.run_files import LAST_CHECKPOINT
    from trainers.runs.actions import cli_user, record_action
    from trainers.runs.preflight import check_last_checkpoint

    check_last_checkpoint(run_dir / LAST_CHECKPOINT)  # a refused resume changes nothing, not even who tried
    record_action(run_dir, "resume", cli_user())

    def body() -> int:
        from trainers.training.run import resume_run

        return int(resume_run(run_dir, **_device(args)) or 0)

    return _owned_run(run_dir, body)


def cmd_rerun(args: argparse.Namespace) -> int:
    """``workbench rerun RUN``: a new run with RUN's recipe, trained in this process (RUN itself is untouched)."""
    from trainers.run_files import RECIPE_FILE
    from trainers.runs.folder import ensure_name_free, new_run_name, rerun_stem, resolve_run, runs_root

    root = runs_root(args.runs_dir)
    source = resolve_run(root, args.run)
    recipe = source / RECIPE_FILE
    if not recipe.is_file():
        raise RunError(f"run {source.name!r} has no {RECIPE_FILE}; start a new run with 'workbench train RECIPE'")
    name = args.name or new_run_name(rerun_stem(source.name), root)
    ensure_name_free(root, name)
    from trainers.training.run import train_run

    return int(train_run(recipe, root, name=name, step_stride=args.log_every) or 0)


# ---- runs / stop ---------------------------------------------------------------------------------------------------
def cmd_stop(args: argparse.Namespace) -> int:
    """``workbench stop RUN``: send SIGTERM; the training process stops cleanly after the current step."""
    from trainers.runs.actions import cli_user, record_action
    from trainers.runs.folder import resolve_run, runs_root
    from trainers.runs.launcher import stop_run

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    pid = stop_run(run_dir)
    record_action(run_dir, "stop", cli_user())  # the Runs page says "stopped by ada (CLI)"
    who = f"through Ray, job {pid}" if isinstance(pid, str) else f"pid {pid}"  # Ray's stop_job sends the SIGTERM
    print(f"sent SIGTERM to run {run_dir.name!r} ({who}); it saves and stops after the current step")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``workbench sweep SWEEP.yaml``: every variant of the grid as a run, ``--parallel`` at a time
    (trainers.sweeps.sweep_file)."""
    from trainers.runs.folder import runs_root
    from trainers.sweeps.runner import sweep_command

    root, address = runs_root(args.runs_dir), cluster_commands.cluster_of(args)
    return sweep_command(
        args.sweep, root, cluster=address, name=args.name, parallel=args.parallel, cpus=args.cpus, notify=args.notify
    )


# ---- ui ------------------------------------------------------------------------------------------------------------
# Streamlit's development aids cost the UI server most of a live dashboard's refresh (py-spy on the server, issue 20):
# a full gc.collect(2) after every script and fragment run (runner.postScriptGC; about a third of the server's samples)
# and a watcher of the app's source files (a thread polling every file 5 times a second wherever watchdog's inotify is
# not used, WSL included, and a walk of sys.modules after every run). An installed workbench does not edit its own
# source while it serves. benchmarks/bench_ui.py measures the server with and without these.
LIGHT_SERVER = ("--runner.postScriptGC", "false", "--server.fileWatcherType", "none", "--server.runOnSave", "false")


def cmd_ui(args: argparse.Namespace) -> int:
    """``workbench ui``: run the Streamlit app in a child process with the runs root in its environment."""
    from trainers.runs.folder import RUNS_DIR_ENV, runs_root

    if not 1 <= args.port <= 65535:
        raise WorkbenchError(f"--port must be between 1 and 65535, got {args.port}")
    if not APP_SCRIPT.is_file():
        raise WorkbenchError(f"UI script {APP_SCRIPT} not found; run from a full checkout of the workbench")
    root = runs_root(args.runs_dir)
    env = {**os.environ, RUNS_DIR_ENV: str(root)}
    from trainers.datasets.datasets_dir import DATASETS_DIR_ENV, datasets_root

    env[DATASETS_DIR_ENV] = str(datasets_root(args.datasets_dir))  # New run and Class weights list its datasets
    address = cluster_commands.cluster_of(args)
    if address is not None:  # fail now, in one line, rather than at the first Start
        from trainers.runs.placement import CLUSTER_ENV, check_reachable

        check_reachable(address)
        env[CLUSTER_ENV] = address  # the New run page offers it, and the launcher submits there
    gate = ui_gate.plan(args)  # beyond loopback: Streamlit on 127.0.0.1, the sign-in proxy on --host (ui_gate)
    host, port = (args.host, args.port) if gate is None else ("127.0.0.1", ui_gate.free_loopback_port())
    env.pop(ui_gate.TOKEN_ENV, None)  # the app never needs the token
    cmd = [
        sys.executable, "-m", "app.serve", "run", str(APP_SCRIPT),  # `streamlit run` with the app's imports warmed
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
        *LIGHT_SERVER,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    if gate is not None:
        from trainers.cli import ui_proxy

        return ui_proxy.serve(gate, port, proc)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches streamlit too (same process group): let it shut down
        proc.wait()
        return 130


# ---- parser --------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for ``workbench`` (also used by the docs and tests)."""
    parser = argparse.ArgumentParser(prog="workbench", description="Train Ultralytics detectors with the workbench.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs_dir_help = "runs root (default: $WORKBENCH_RUNS_DIR or ./runs)"

    p = sub.add_parser("train", help="train a recipe in this process")
    p.add_argument("recipe", metavar="RECIPE", help="recipe YAML")
    p.add_argument("--name", help="run name (default: <recipe>-<date>-<time>)")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.add_argument("--existing", action="store_true", help="use the run folder the launcher reserved (needs --name)")
    p.add_argument(
        "--log-every", type=_positive_int, default=1, metavar="N",
        help="write a step event every N optimizer steps (default 1; raise it for very long runs)",
    )  # fmt: skip
    _add_asset_options(p)
    cluster_commands.add_options(p, "train")
    notify_option.add_option(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("resume", help="resume a stopped or failed run from its last.pt")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("--runs-dir", help=runs_dir_help)
    cluster_commands.add_options(p, "resume")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("rerun", help="start a new run with the recipe of an existing one (it stays as it is)")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("--name", help="name of the new run (default: the old name's stem and the time)")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.add_argument("--log-every", type=_positive_int, default=1, metavar="N", help="as for train")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("export", help="write a run's step, epoch and per-class series as CSV or Parquet")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--out", metavar="DIR", help="folder for the files (default: <run>/export)")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_export)
    model_export_command.add_parser(sub, runs_dir_help)

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("stop", help="stop a running run (SIGTERM: it saves and ends cleanly)")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_stop)
    notes_commands.add_parsers(sub, runs_dir_help)  # note, tag

    p = sub.add_parser("sweep", help="train every variant of a grid over a base recipe, N at a time")
    p.add_argument("sweep", metavar="SWEEP.yaml", help="sweep file: base (a recipe) and grid (dotted key: values)")
    p.add_argument("--name", help="sweep name; variants are runs <name>-1, <name>-2, ... (default: <file>-<time>)")
    p.add_argument("--parallel", type=_positive_int, metavar="N", help="variants at a time (default 1; cluster: 4)")
    p.add_argument("--runs-dir", help=runs_dir_help)
    _add_asset_options(p)
    cluster_commands.add_options(p, "sweep")
    notify_option.add_option(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("counts", help="per-class label counts and class-weight schemes of a dataset")
    p.add_argument("data", metavar="DATA.yaml", help="dataset YAML")
    p.add_argument("--split", default="train", help="split to count (default: train)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--check-images", action="store_true",
        help="also open every image as ultralytics does and list those it drops as corrupt or rewrites "
        "(~0.03-0.3 ms per image)",
    )  # fmt: skip
    p.set_defaults(func=cmd_counts)
    dataset_import.add_parser(sub)

    p = sub.add_parser("doctor", help="what looks wrong in a run, with the numbers and the fix (docs/doctor.md)")
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    p.add_argument("--no-dataset", action="store_true", help="skip the dataset rules (and the one-off dataset scan)")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("compare", help="the recipe settings that differ between runs, and their final metrics")
    p.add_argument("runs", metavar="RUN", nargs="+", help="run names under the runs root, or paths to run folders")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("ui", help="start the browser workbench (Streamlit)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: local only)")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.add_argument("--cluster", metavar="ADDRESS", help="offer this Ray cluster on New run ($WORKBENCH_CLUSTER)")
    p.add_argument("--datasets-dir", metavar="D", help=dataset_import.DATASETS_DIR_HELP)
    ui_gate.add_options(p)
    _add_asset_options(p)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (the ``workbench`` console script's entry point)."""
    args = build_parser().parse_args(argv)  # usage errors: argparse prints them and exits 2
    try:
        with _asset_env(args):
            return args.func(args)
    except WorkbenchError as e:
        print(f"workbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the training process turns Ctrl-C into a clean stop; this is one that escaped it
        print("workbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
