"""The ``workbench`` CLI (trainers/cli/commands.py): exit codes, one-line errors, listings, and what it hands the
runner.

Bad invocations run the real CLI in a subprocess so that exit codes and stderr are what a user sees. The runner is
replaced by a stub only for the in-process tests of the train/resume plumbing.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from tests.conftest import fake_last_pt
from trainers.cli import commands as cli
from trainers.errors import DatasetError
from trainers.runs.folder import create_run_dir
from trainers.runs.status import read_status, write_status
from trainers.telemetry.events import read_events

REPO = Path(__file__).resolve().parent.parent


def workbench(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "WORKBENCH_RUNS_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "trainers.cli", *args],
        capture_output=True,
        text=True,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
        cwd=cwd or REPO,
        timeout=120,
    )


@pytest.fixture
def root(tmp_path) -> Path:
    """A runs root with a completed, a stopped and a (stale) running run, and a recipe file."""
    root = tmp_path / "runs"
    for name, status, epoch in (("done", "completed", 3), ("idle", "stopped", 2)):  # idle stopped before its end
        write_status(create_run_dir(root, name), status=status, epoch=epoch, epochs=3)
        fake_last_pt(root / name)
    (tmp_path / "recipe.yaml").write_text("model: yolo26n.yaml\ndata: data.yaml\ntrain: {epochs: 1}\n")
    return root


# ---- bad invocations: exit 2, exactly one line on stderr, no traceback ------------------------------------------
BAD = [
    ("missing recipe", ["train", "{tmp}/nope.yaml", "--runs-dir", "{root}"], "{tmp}/nope.yaml: recipe file not found"),
    ("recipe not YAML", ["train", "{tmp}/bad.yaml", "--runs-dir", "{root}"], "{tmp}/bad.yaml: not valid YAML"),
    (
        "traversal name",
        ["train", "{tmp}/recipe.yaml", "--runs-dir", "{root}", "--name", "../x"],
        "--name '../x' is not allowed: use 1-100 letters, digits, '-', '_' or '.'",
    ),
    (
        "name with /",
        ["train", "{tmp}/recipe.yaml", "--runs-dir", "{root}", "--name", "a/b"],
        "--name 'a/b' is not allowed",
    ),
    (
        "shell metacharacters",
        ["train", "{tmp}/recipe.yaml", "--runs-dir", "{root}", "--name", "a;rm -rf"],
        "--name 'a;rm -rf' is not allowed",
    ),
    (
        "name in use",
        ["train", "{tmp}/recipe.yaml", "--runs-dir", "{root}", "--name", "done"],
        "run name 'done' is already in use in {root}; pick another --name",
    ),
    (
        "existing but not reserved",
        ["train", "{tmp}/recipe.yaml", "--runs-dir", "{root}", "--name", "done", "--existing"],
        "--existing: run 'done'",
    ),
    ("stop unknown run", ["stop", "ghost", "--runs-dir", "{root}"], "run 'ghost' not found in {root}"),
    ("resume unknown run", ["resume", "ghost", "--runs-dir", "{root}"], "run 'ghost' not found in {root}"),
    ("resume traversal", ["resume", "../x", "--runs-dir", "{root}"], "run '../x' not found: ../x is not a run folder"),
    ("resume completed", ["resume", "done", "--runs-dir", "{root}"], "run 'done' is completed; nothing to resume"),
    (
        "stop not running",
        ["stop", "idle", "--runs-dir", "{root}"],
        "run 'idle' is not running (status: stopped); nothing to stop",
    ),
    ("counts missing data", ["counts", "{tmp}/nope/data.yaml"], "data.yaml: file not found"),
    (
        "counts unknown split",
        ["counts", "{data}", "--split", "test"],
        "split 'test' is not defined; available: train, val",
    ),
    (
        "runs-dir is a file",
        ["runs", "--runs-dir", "{tmp}/recipe.yaml"],
        "--runs-dir {tmp}/recipe.yaml is not a directory",
    ),
    ("ui bad port", ["ui", "--port", "70000", "--runs-dir", "{root}"], "--port must be between 1 and 65535"),
]


@pytest.mark.parametrize(("case", "argv", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_invocations_exit_2_with_one_line(case, argv, message, root, tmp_path, tiny_data):
    (tmp_path / "bad.yaml").write_text("model: [unclosed\ndata: x\n")
    fill = {"tmp": str(tmp_path), "root": str(root), "data": str(tiny_data)}
    result = workbench(*(a.format(**fill) for a in argv))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("workbench: error: ")
    assert message.format(**fill) in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_runs_dir_from_environment_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    result = workbench("runs", env={"WORKBENCH_RUNS_DIR": str(f)})
    assert result.returncode == 2
    expected = f"workbench: error: WORKBENCH_RUNS_DIR {f} is not a directory; pass a folder for runs with --runs-dir"
    assert result.stderr == expected + "\n"


def test_usage_errors_are_argparse_exit_2():
    assert workbench().returncode == 2
    result = workbench("train")
    assert result.returncode == 2 and "RECIPE" in result.stderr and "Traceback" not in result.stderr
    assert workbench("launch").returncode == 2


# ---- runs ----------------------------------------------------------------------------------------------------------
def test_runs_lists_json_and_table_and_settles_dead_runs(root):
    dead = create_run_dir(root, "crashed")
    write_status(dead, status="running", pid=2**22 + 4321, pid_start=1, epoch=1, epochs=5)  # no such process
    write_status(root / "done", best_metric={"name": "metrics/mAP50-95(B)", "value": 0.51234}, best_epoch=2)

    result = workbench("runs", "--json", "--runs-dir", str(root))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # one document
    assert doc["runs_dir"] == str(root)
    by_name = {r["name"]: r for r in doc["runs"]}
    assert set(by_name) == {"done", "idle", "crashed"}
    assert by_name["crashed"]["status"] == "failed"  # refreshed, not the stale "running"
    assert by_name["done"]["best_metric"] == {"name": "metrics/mAP50-95(B)", "value": 0.51234}
    assert set(by_name["idle"]) == {
        "name",
        "path",
        "status",
        "epoch",
        "epochs",
        "best_metric",
        "created",
        "updated",
        "pid",
        # what the dashboard header shows (trainers/runs/facts.py; tests/test_run_facts.py)
        "best_epoch",
        "steps",
        "clipped_share",
        "eta_s",
        "findings",
        "note",  # the user's note and tags (notes.json; tests/test_run_notes.py)
        "tags",
    }
    assert by_name["done"]["best_epoch"] == 2
    assert read_events(dead / "telemetry.jsonl")[0][-1]["event"] == "run_end"

    table = workbench("runs", "--runs-dir", str(root)).stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "EPOCH", "BEST", "UPDATED"]
    done_row = next(line for line in table if line.startswith("done "))
    assert "completed" in done_row and "3/3" in done_row and "metrics/mAP50-95(B)=0.5123" in done_row
    assert next(line for line in table if line.startswith("crashed ")).split()[1:3] == ["failed", "1/5"]


def test_runs_on_an_empty_root(tmp_path):
    result = workbench("runs", "--runs-dir", str(tmp_path / "none"))
    assert result.returncode == 0 and result.stdout == f"no runs in {tmp_path / 'none'}\n"
    assert json.loads(workbench("runs", "--json", "--runs-dir", str(tmp_path / "none")).stdout)["runs"] == []


def test_every_command_takes_runs_dir_but_the_ones_readme_names():
    """README: "Every command takes `--runs-dir D` except `counts` and `import`" (they work on a dataset)."""
    import argparse
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"Every command takes `--runs-dir D` except (.+?), which", readme)
    named = set(re.findall(r"`(\w+)`", line))
    (sub,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    without = {name for name, p in sub.choices.items() if "--runs-dir" not in p._option_string_actions}
    assert without == named


def test_runs_dir_defaults_to_env_then_cwd(tmp_path):
    create_run_dir(tmp_path / "runs", "here")
    create_run_dir(tmp_path / "envroot", "there")
    names = lambda r: [x["name"] for x in json.loads(r.stdout)["runs"]]  # noqa: E731
    assert names(workbench("runs", "--json", cwd=tmp_path)) == ["here"]
    assert names(workbench("runs", "--json", cwd=tmp_path, env={"WORKBENCH_RUNS_DIR": "envroot"})) == ["there"]


# ---- stop ----------------------------------------------------------------------------------------------------------
def test_stop_sends_sigterm_to_the_running_process(root, tmp_path):
    marker = tmp_path / "got-sigterm"
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        def on_term(*_):
            open({str(marker)!r}, "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        run_dir = create_run_dir(root, "live")
        write_status(run_dir, status="running", pid=proc.pid)
        result = workbench("stop", "live", "--runs-dir", str(root))
        assert result.returncode == 0, result.stderr
        assert f"sent SIGTERM to run 'live' (pid {proc.pid})" in result.stdout
        assert proc.wait(10) == 0 and marker.exists()
        status = read_status(run_dir)
        assert status["stop_requested"]
        [action] = status["actions"]  # who stopped it (issue 20): the login name, marked as the command line
        assert action["action"] == "stop" and action["by"] == f"{getpass.getuser()} (CLI)"
    finally:
        proc.kill()
        proc.wait()


# ---- counts --------------------------------------------------------------------------------------------------------
def test_counts_json_matches_the_data_module(tiny_data):
    from trainers.customizations.class_weights import ClassWeights
    from trainers.datasets import class_weights as weights
    from trainers.datasets.data_yaml import load_dataset
    from trainers.datasets.label_counts import count_labels

    expected = count_labels(load_dataset(tiny_data), "val")
    result = workbench("counts", str(tiny_data), "--split", "val", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["split"] == "val" and doc["counts"] == expected.to_dict()
    # every scheme with the recipe's default parameters; floats survive JSON exactly
    assert doc["weights"] == weights.all_schemes(expected.instances, **ClassWeights().scheme_params())
    table = workbench("counts", str(tiny_data)).stdout.splitlines()
    assert table[1].split()[:4] == ["ID", "CLASS", "INSTANCES", "IMAGES"]
    assert len(table) == 2 + len(expected.names)


def _orphan_data(root: Path) -> Path:
    """Two images with labels, one without, two label files without an image, and a truncated JPEG."""
    import io

    from PIL import Image

    def jpeg(size: tuple[int, int]) -> bytes:
        buf = io.BytesIO()
        Image.effect_noise(size, 60).convert("RGB").save(buf, "JPEG")
        return buf.getvalue()

    (root / "images/train").mkdir(parents=True)
    (root / "labels/train").mkdir(parents=True)
    for stem in ("a", "b", "bg"):
        (root / f"images/train/{stem}.jpg").write_bytes(jpeg((32, 32)))
    broken = jpeg((64, 64))
    (root / "images/train/cut.jpg").write_bytes(broken[: len(broken) // 2])
    for stem, rows in (("a", "0 .5 .5 .2 .2\n"), ("b", "1 .5 .5 .2 .2\n"), ("cut", "1 .5 .5 .2 .2\n")):
        (root / f"labels/train/{stem}.txt").write_text(rows)
    (root / "labels/train/old_1.txt").write_text("1 .5 .5 .2 .2\n1 .4 .4 .1 .1\n")
    (root / "labels/train/old_2.txt").write_text("0 .5 .5 .2 .2\n")
    data = root / "data.yaml"
    data.write_text("path: .\ntrain: images/train\nval: images/train\nnames: [x, y]\n")
    return data


def test_counts_reports_label_files_without_an_image_and_images_without_labels(tmp_path):
    data = _orphan_data(tmp_path)
    lines = workbench("counts", str(data)).stdout.splitlines()
    assert lines[0] == f"{data} [train]: 4 images, 3 labelled, 1 empty"
    assert lines[-2:] == [
        "2 label files without an image (skipped in training, 3 boxes): labels/train/old_1.txt, labels/train/old_2.txt",
        "1 image without a label file (background): images/train/bg.jpg",
    ]
    doc = json.loads(workbench("counts", str(data), "--json").stdout)
    assert doc["orphan_labels"] == [str(tmp_path / "labels/train/old_1.txt"), str(tmp_path / "labels/train/old_2.txt")]
    assert doc["orphan_instances"] == [1, 2]
    assert doc["images_without_labels"] == {"count": 1, "first": [str(tmp_path / "images/train/bg.jpg")]}
    assert doc["counts"]["instances"] == [1, 2] and "corrupt_images" not in doc


def test_counts_check_images_lists_what_ultralytics_drops(tmp_path, tiny_data):
    data = _orphan_data(tmp_path)
    result = workbench("counts", str(data), "--check-images")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        "1 image ultralytics drops as corrupt (trained without it and its boxes): images/train/cut.jpg "
        "(image file is truncated ("
    )
    doc = json.loads(workbench("counts", str(data), "--json", "--check-images").stdout)
    (problem,) = doc["corrupt_images"]["problems"]
    assert (problem["path"], problem["action"]) == (str(tmp_path / "images/train/cut.jpg"), "dropped")
    assert (doc["corrupt_images"]["checked"], doc["corrupt_images"]["total"]) == (4, 4)
    clean = workbench("counts", str(tiny_data), "--check-images").stdout.splitlines()
    assert clean[-1] == "all 16 images open as ultralytics expects"


# ---- ui ------------------------------------------------------------------------------------------------------------
class FakePopen:
    calls: list = []

    def __init__(self, args, **kwargs):
        FakePopen.calls.append((args, kwargs))

    def wait(self):
        return 0


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("localhost", False), ("0.0.0.0", True)])
def test_ui_runs_streamlit_without_a_shell(host, warns, tmp_path, monkeypatch, capsys):
    app = tmp_path / "app" / "main.py"
    app.parent.mkdir()
    app.write_text("")
    monkeypatch.setattr(cli, "APP_SCRIPT", app)
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    FakePopen.calls = []
    no_auth = ["--no-auth"] if warns else []  # beyond loopback Streamlit serves the host itself only when asked
    assert cli.main(["ui", "--port", "8600", "--host", host, "--runs-dir", str(tmp_path / "r"), *no_auth]) == 0
    [(args, kwargs)] = FakePopen.calls
    assert args == [
        sys.executable, "-m", "app.serve", "run", str(app), "--server.address", host, "--server.port", "8600",
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
        "--runner.postScriptGC", "false", "--server.fileWatcherType", "none", "--server.runOnSave", "false",
    ]  # fmt: skip
    assert kwargs.get("shell") is not True
    assert kwargs["env"]["WORKBENCH_RUNS_DIR"] == str(tmp_path / "r")
    err = capsys.readouterr().err
    assert (err.count("\n") == 1 and "warning" in err and host in err) if warns else err == ""


def test_ui_script_location():
    assert cli.APP_SCRIPT == REPO / "app" / "main.py"


# ---- train / resume plumbing (stub runner) ------------------------------------------------------------------------
@pytest.fixture
def runner(monkeypatch):
    """A stand-in for trainers.training.run that records calls and does what the test asks."""
    stub = types.ModuleType("trainers.training.run")
    stub.calls = []
    stub.behaviour = lambda: 0

    def train_run(recipe_path, runs_root, name=None, existing=False, step_stride=1):
        stub.calls.append(("train", recipe_path, runs_root, name, existing))
        return stub.behaviour()

    def resume_run(run_dir):
        stub.calls.append(("resume", run_dir))
        return stub.behaviour()

    stub.train_run, stub.resume_run = train_run, resume_run
    monkeypatch.setitem(sys.modules, "trainers.training.run", stub)
    return stub


def test_train_passes_the_arguments_and_the_exit_code_through(runner, root, tmp_path):
    assert cli.main(["train", str(tmp_path / "recipe.yaml"), "--runs-dir", str(root), "--name", "new"]) == 0
    assert runner.calls[-1] == ("train", str(tmp_path / "recipe.yaml"), root, "new", False)
    runner.behaviour = lambda: 1  # training failed
    assert cli.main(["train", "r.yaml", "--runs-dir", str(root)]) == 1
    assert runner.calls[-1] == ("train", "r.yaml", root, None, False)


def test_train_existing_records_a_bad_input_error_in_the_reserved_run(runner, root, capsys):
    reserved = create_run_dir(root, "reserved")  # as the launcher leaves it: starting

    def bad_dataset():
        raise DatasetError("data.yaml: split 'train' has no images")

    runner.behaviour = bad_dataset
    assert cli.main(["train", "r.yaml", "--runs-dir", str(root), "--name", "reserved", "--existing"]) == 2
    assert runner.calls[-1][-1] is True  # --existing reached the runner
    assert capsys.readouterr().err == "workbench: error: data.yaml: split 'train' has no images\n"
    status = read_status(reserved)
    assert status["status"] == "failed" and status["error"] == "data.yaml: split 'train' has no images"
    end = read_events(reserved / "telemetry.jsonl")[0][-1]
    assert end["event"] == "run_end" and end["status"] == "failed"


def test_train_existing_does_not_fail_a_run_another_process_owns(runner, root):
    busy = create_run_dir(root, "busy")
    write_status(busy, status="running", pid=os.getppid())

    def refused():
        raise DatasetError("--existing: run 'busy' is not waiting to start")

    runner.behaviour = refused
    assert cli.main(["train", "r.yaml", "--runs-dir", str(root), "--name", "busy", "--existing"]) == 2
    assert read_status(busy)["status"] == "running"


def test_unexpected_crash_is_recorded_then_raised(runner, root):
    reserved = create_run_dir(root, "crash")

    def crash():
        raise RuntimeError("CUDA error: device-side assert")

    runner.behaviour = crash
    with pytest.raises(RuntimeError):  # a bug, not bad input: the traceback goes to console.log, exit 1
        cli.main(["train", "r.yaml", "--runs-dir", str(root), "--name", "crash", "--existing"])
    status = read_status(reserved)
    assert status["status"] == "failed" and status["error"] == "RuntimeError: CUDA error: device-side assert"
    end = read_events(reserved / "telemetry.jsonl")[0][-1]
    assert any("RuntimeError" in line for line in end["traceback"])


def test_resume_accepts_a_name_or_a_path_and_checks_state_first(runner, root):
    assert cli.main(["resume", "idle", "--runs-dir", str(root)]) == 0
    assert runner.calls[-1] == ("resume", root / "idle")
    assert cli.main(["resume", str(root / "idle")]) == 0
    assert runner.calls[-1] == ("resume", root / "idle")
    n = len(runner.calls)
    assert cli.main(["resume", "done", "--runs-dir", str(root)]) == 2
    assert len(runner.calls) == n  # the runner was never asked
    by = f"{getpass.getuser()} (CLI)"  # who resumed it (issue 20), twice; the refused resume recorded nothing
    assert [(a["action"], a["by"]) for a in read_status(root / "idle")["actions"]] == [("resume", by)] * 2
    assert "actions" not in read_status(root / "done")


def test_resume_refuses_a_run_that_is_really_running(runner, root, capsys):
    live = create_run_dir(root, "live")
    write_status(live, status="running", pid=os.getppid())  # alive, and not us
    assert cli.main(["resume", "live", "--runs-dir", str(root)]) == 2
    assert "run 'live' is already running" in capsys.readouterr().err


def test_keyboard_interrupt_that_escapes_the_runner_exits_130(runner, root):
    def interrupted():
        raise KeyboardInterrupt

    runner.behaviour = interrupted
    assert cli.main(["train", "r.yaml", "--runs-dir", str(root)]) == 130


# ---- import weight -------------------------------------------------------------------------------------------------
def test_importing_the_cli_and_ui_services_does_not_import_torch_ultralytics_or_streamlit():
    code = (
        "import sys, trainers.cli.commands, trainers.runs.launcher, trainers.runs.folder, trainers.telemetry.run_log, "
        "trainers.recipe, trainers.customizations; "
        "print([m for m in ('torch', 'ultralytics', 'streamlit') if m in sys.modules])"
    )
    t0 = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert time.monotonic() - t0 < 10


def test_the_cli_imports_neither_numpy_nor_pydantic_before_a_command_needs_them():
    """`workbench ui` spawns Streamlit after importing the CLI: the recipe model (pydantic, numpy) imported by every
    command made that 0.2-0.3 s later (issue 20, first paint). Commands that need it import it when they run."""
    code = "import sys, trainers.cli.commands; print([m for m in ('numpy', 'pydantic', 'yaml') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_module_entry_point_and_help():
    result = workbench("--help")
    assert result.returncode == 0
    for command in ("train", "resume", "runs", "stop", "counts", "ui"):
        assert command in result.stdout
