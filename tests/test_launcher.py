"""Launcher: detached training processes, pid tracking, stop, crash detection, resume, delete
(trainers/runs/launcher.py).

No real training: the command builders are swapped for a small fake trainer that writes telemetry and status the
way the runner does and turns SIGTERM into a clean stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from tests.conftest import fake_last_pt, wait_for
from trainers.errors import RecipeError, RunError
from trainers.runs import launcher
from trainers.runs.backends import local as local_processes
from trainers.runs.folder import create_run_dir
from trainers.runs.status import process_start_time, read_status, write_status
from trainers.telemetry.events import read_events
from trainers.telemetry.schema import validate_event

REPO = Path(__file__).resolve().parent.parent

FAKE_TRAINER = textwrap.dedent(
    """
    import os, random, signal, sys, time, zipfile
    from trainers.runs.status import read_status, write_status
    from trainers.telemetry.events import TelemetryWriter

    run_dir, steps, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    name = os.path.basename(run_dir)
    stop = False

    def on_term(signum, frame):
        global stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    resumes = read_status(run_dir).get("resumes", 0) + (1 if "--resume" in sys.argv else 0)
    w = TelemetryWriter(os.path.join(run_dir, "telemetry.jsonl"))
    write_status(run_dir, status="running", pid=os.getpid(), epochs=1, resumes=resumes)
    w.emit("run_start", run=name, pid=os.getpid(), sid=os.getsid(0), stdin=os.readlink("/proc/self/fd/0"),
           unbuffered=os.environ.get("PYTHONUNBUFFERED"), resumed="--resume" in sys.argv)
    print("fake trainer started", name)
    rng = random.Random(name)
    os.makedirs(os.path.join(run_dir, "weights"), exist_ok=True)  # like a real run after its first epoch
    with zipfile.ZipFile(os.path.join(run_dir, "weights", "last.pt"), "w") as archive:
        archive.writestr("archive/data.pkl", b"fake")
    for i in range(1, steps + 1):
        if stop:
            break
        w.emit("step", run=name, epoch=1, step=i, pad="x" * rng.randint(0, 6000))
        if delay:
            time.sleep(delay)
    status = "stopped" if stop else "completed"
    w.emit("run_end", run=name, status=status, best_epoch=None, best_metric=None,
           paths={"best": None, "last": None, "results": None}, error=None, traceback=None)
    write_status(run_dir, status=status)
    print("fake trainer ended", status)
    """
)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Route the launcher's commands to the fake trainer; returns a setter for (steps, delay)."""
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    settings = {"steps": 100000, "delay": 0.02}

    def train_command(recipe: Path, root: Path, name: str) -> list[str]:
        return [sys.executable, str(script), str(root / name), str(settings["steps"]), str(settings["delay"])]

    monkeypatch.setattr(launcher, "train_command", train_command)
    monkeypatch.setattr(
        launcher,
        "resume_command",
        lambda run_dir: [sys.executable, str(script), str(run_dir), "3", "0", "--resume"],
    )
    monkeypatch.setattr(launcher, "_check_recipe", lambda recipe: None)  # recipe validation is tested on its own

    def configure(steps: int = 100000, delay: float = 0.02) -> None:
        settings.update(steps=steps, delay=delay)

    yield configure
    # Leave no fake trainer behind, whatever the test did.
    for run_status in tmp_path.glob("**/status.json"):
        pid = json.loads(run_status.read_text()).get("pid")
        try:
            if pid and os.getsid(pid) == pid:  # a session leader: one of the trainers started here
                os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # already gone


def status_is(run_dir: Path, *wanted: str):
    return lambda: launcher.refresh_status(run_dir)["status"] in wanted


def events_of(run_dir: Path) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a corrupt line fails the test
        return read_events(run_dir / "telemetry.jsonl")[0]


# ---- spawning ------------------------------------------------------------------------------------------------------
def test_start_run_spawns_a_detached_process_and_records_its_pid(tmp_path, fake):
    run_dir = launcher.start_run(tmp_path / "demo.yaml", tmp_path / "runs", name="r1")
    assert run_dir == tmp_path / "runs" / "r1"
    status = read_status(run_dir)
    assert status["status"] in ("starting", "running") and isinstance(status["pid"], int)  # recorded at once
    pid = status["pid"]
    assert status["pid_start"] == process_start_time(pid)
    wait_for(lambda: events_of(run_dir))
    start = events_of(run_dir)[0]
    assert start["event"] == "run_start" and start["pid"] == pid  # the recorded pid is the trainer itself
    assert start["sid"] == pid  # its own session: a signal to the UI's group or session does not reach it
    assert start["stdin"] == "/dev/null" and start["unbuffered"] == "1"
    wait_for(lambda: "fake trainer started r1" in (run_dir / "console.log").read_text())
    console = (run_dir / "console.log").read_text()
    assert "workbench launcher:" in console and str(run_dir) in console  # the command line, for debugging

    assert launcher.stop_run(run_dir) == pid
    wait_for(status_is(run_dir, "stopped"))
    events = events_of(run_dir)
    assert events[-1]["event"] == "run_end" and events[-1]["status"] == "stopped"
    wait_for(lambda: not _alive(pid))  # it exits after its clean stop
    with pytest.raises(RunError, match="run 'r1' is not running \\(status: stopped\\); nothing to stop"):
        launcher.stop_run(run_dir)


def _alive(pid: int) -> bool:
    local_processes.reap()
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_is_detected_within_5_seconds_and_closes_the_log(tmp_path, fake):
    run_dir = launcher.start_run(tmp_path / "demo.yaml", tmp_path / "runs", name="killed")
    wait_for(status_is(run_dir, "running"))
    pid = read_status(run_dir)["pid"]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(status_is(run_dir, "failed"), timeout=5.0, interval=0.2)
    assert time.monotonic() - t0 < 5.0
    status = read_status(run_dir)
    assert status["error"] == (
        f"training process {pid} exited without a run-end event (killed or out of memory?); exit code -9 (SIGKILL)"
    )
    assert status["exit_code"] == -9
    end = events_of(run_dir)[-1]
    assert end["event"] == "run_end" and end["status"] == "failed" and end["error"] == status["error"]
    assert validate_event(end) == []
    # Settled once: more polls add nothing.
    n = len(events_of(run_dir))
    assert launcher.refresh_status(run_dir)["status"] == "failed"
    assert len(events_of(run_dir)) == n


def test_stop_before_the_trainer_handles_signals_ends_as_stopped_not_crashed(tmp_path, fake, monkeypatch):
    """Stop clicked while the training process is still importing torch: SIGTERM kills it outright."""
    monkeypatch.setattr(
        launcher, "train_command", lambda recipe, root, name: [sys.executable, "-c", "import time; time.sleep(60)"]
    )
    run_dir = launcher.start_run(tmp_path / "demo.yaml", tmp_path / "runs", name="early")
    launcher.stop_run(run_dir)
    wait_for(status_is(run_dir, "stopped", "failed"))
    status = read_status(run_dir)
    assert status["status"] == "stopped" and status["error"] is None and status["exit_code"] == -signal.SIGTERM
    end = events_of(run_dir)[-1]
    assert end["event"] == "run_end" and end["status"] == "stopped" and end["source"] == "launcher"


UI_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from trainers.runs import launcher
    fake, root = sys.argv[1], Path(sys.argv[2])
    launcher._check_recipe = lambda recipe: None
    launcher.train_command = lambda recipe, root, name: [sys.executable, fake, str(root / name), "100000", "0.02"]
    print(launcher.start_run("demo.yaml", root, "survivor"), flush=True)
    time.sleep(60)
    """
)


def test_run_survives_its_launchers_session_and_a_stranger_detects_its_death(tmp_path, fake):
    """Kill the whole session of a fake UI: training goes on. Then SIGKILL it: this process, not its parent, sees it."""
    (tmp_path / "ui.py").write_text(UI_SCRIPT)
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ui = subprocess.Popen(
        [sys.executable, str(tmp_path / "ui.py"), str(tmp_path / "fake_trainer.py"), str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    run_dir = Path(ui.stdout.readline().strip())
    assert run_dir == root / "survivor"
    wait_for(status_is(run_dir, "running"))
    pid = read_status(run_dir)["pid"]
    os.killpg(ui.pid, signal.SIGKILL)  # the UI and everything in its session/process group
    ui.wait(10)
    n = len(events_of(run_dir))
    wait_for(lambda: len(events_of(run_dir)) > n + 10)  # still training after its launcher died
    assert launcher.refresh_status(run_dir)["status"] == "running"

    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(status_is(run_dir, "failed"), timeout=5.0, interval=0.2)
    assert time.monotonic() - t0 < 5.0
    assert f"training process {pid} exited without a run-end event" in read_status(run_dir)["error"]


def test_three_concurrent_runs_keep_separate_uncorrupted_logs(tmp_path, fake):
    fake(steps=800, delay=0.002)  # long enough that the three surely overlap, even on a loaded machine
    root = tmp_path / "runs"
    dirs = [launcher.start_run(tmp_path / "demo.yaml", root, name=f"c{i}") for i in range(3)]
    for d in dirs:
        wait_for(status_is(d, "completed"), timeout=60)
    spans = []
    for d in dirs:
        events = events_of(d)
        assert {e.get("run") for e in events} == {d.name}  # nothing from another run
        assert [e["step"] for e in events if e["event"] == "step"] == list(range(1, 801))
        assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
        assert events[-1]["status"] == "completed"
        spans.append((events[0]["t"], events[-1]["t"]))
        # the fake prints its last line after writing status.json: wait for it rather than read at once
        ended = lambda d=d: "fake trainer ended completed" in (d / "console.log").read_text()  # noqa: E731
        wait_for(ended, 30, 0.05, "its last line")
        console = (d / "console.log").read_text()
        assert f"fake trainer started {d.name}" in console
        assert all(f"started {other.name}" not in console for other in dirs if other != d)
    # They really ran at the same time.
    assert max(s for s, _ in spans) < min(e for _, e in spans)


# ---- no shell ------------------------------------------------------------------------------------------------------
class RecordingPopen:
    calls: list[tuple[object, dict]] = []

    def __init__(self, args, **kwargs):
        RecordingPopen.calls.append((args, kwargs))
        self.pid = os.getpid()  # an alive pid, so the run looks like it runs
        self.returncode = None

    def poll(self):
        return None


def test_commands_are_argument_lists_never_a_shell(tmp_path, monkeypatch):
    RecordingPopen.calls = []
    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    monkeypatch.setattr(local_processes, "_children", {})
    monkeypatch.setattr(launcher, "_check_recipe", lambda recipe: None)
    recipe = tmp_path / "my recipe;rm -rf ~.yaml"  # hostile characters stay inside one argument
    root = tmp_path / "runs"
    run_dir = launcher.start_run(recipe, root, name="safe")
    args, kwargs = RecordingPopen.calls[-1]
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)
    assert kwargs.get("shell") is not True
    assert args == [
        sys.executable, "-m", "trainers.cli", "train", str(recipe),
        "--runs-dir", str(root), "--name", "safe", "--existing",
    ]  # fmt: skip
    assert kwargs["start_new_session"] is True
    assert kwargs["stdin"] is subprocess.DEVNULL and kwargs["stderr"] is subprocess.STDOUT
    assert Path(kwargs["stdout"].name) == run_dir / "console.log" and "a" in kwargs["stdout"].mode
    assert kwargs["env"]["PYTHONUNBUFFERED"] == "1"
    assert str(REPO) in kwargs["env"]["PYTHONPATH"].split(os.pathsep)
    assert read_status(run_dir)["pid"] == os.getpid()

    write_status(run_dir, status="stopped")
    fake_last_pt(run_dir)
    launcher.resume_run_detached(run_dir)
    args, kwargs = RecordingPopen.calls[-1]
    assert args == [sys.executable, "-m", "trainers.cli", "resume", str(run_dir)]
    assert kwargs.get("shell") is not True and kwargs["start_new_session"] is True
    assert len(RecordingPopen.calls) == 2


def test_bad_names_are_refused_before_anything_is_spawned(tmp_path, monkeypatch):
    RecordingPopen.calls = []
    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    monkeypatch.setattr(launcher, "_check_recipe", lambda recipe: None)
    for bad in ("a;rm -rf", "../x", "a/b", ".hidden", "-rf"):
        with pytest.raises(RunError, match="--name"):
            launcher.start_run(tmp_path / "r.yaml", tmp_path / "runs", name=bad)
    assert RecordingPopen.calls == []
    assert not (tmp_path / "x").exists() and list((tmp_path / "runs").glob("*")) == []


def test_default_names_come_from_the_recipe_and_do_not_collide(tmp_path, monkeypatch):
    RecordingPopen.calls = []
    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    monkeypatch.setattr(local_processes, "_children", {})
    monkeypatch.setattr(launcher, "_check_recipe", lambda recipe: None)
    dirs = {launcher.start_run(tmp_path / "demo.yaml", tmp_path / "runs") for _ in range(3)}
    assert len(dirs) == 3 and all(d.name.startswith("demo-") for d in dirs)


def test_invalid_recipe_is_refused_before_a_run_dir_is_made(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model: [unclosed\n")
    with pytest.raises(RecipeError):
        launcher.start_run(recipe, tmp_path / "runs", name="bad")
    with pytest.raises(RecipeError, match="not found"):
        launcher.start_run(tmp_path / "missing.yaml", tmp_path / "runs", name="bad")
    assert not (tmp_path / "runs" / "bad").exists()


def test_real_cli_child_reports_a_bad_recipe_into_the_run(tmp_path, monkeypatch):
    """launcher -> `python -m trainers.cli train --existing` -> claim -> recipe error: the UI sees the real message."""
    monkeypatch.setattr(launcher, "_check_recipe", lambda recipe: None)  # let the child find the problem
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("model: [unclosed\n")
    run_dir = launcher.start_run(recipe, tmp_path / "runs", name="child")
    wait_for(status_is(run_dir, "failed"), timeout=30)
    status = read_status(run_dir)
    assert "not valid YAML" in status["error"] and "exited without" not in status["error"]
    assert status["exit_code"] == 2
    assert events_of(run_dir)[-1]["event"] == "run_end"
    # the child records the failure, then prints the one-line error as it exits: the line follows the status by a
    # moment (seen missing 1 time in 6 under load when read at once)
    wait_for(lambda: f"workbench: error: {recipe}" in (run_dir / "console.log").read_text(), 30, 0.05, "the error line")


# ---- refresh_status edge cases -------------------------------------------------------------------------------------
def test_reused_pid_is_not_mistaken_for_the_run(tmp_path):
    run_dir = create_run_dir(tmp_path, "reused")
    write_status(run_dir, status="running", pid=os.getpid())  # records our real start time: alive
    assert launcher.refresh_status(run_dir)["status"] == "running"
    if process_start_time(os.getpid()) is None:
        pytest.skip("no /proc: start times unavailable")
    write_status(run_dir, pid=os.getpid(), pid_start=process_start_time(os.getpid()) - 1)  # "another" process
    status = launcher.refresh_status(run_dir)
    assert status["status"] == "failed" and f"training process {os.getpid()} exited" in status["error"]


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_zombies_count_as_dead_whoever_their_parent_is(tmp_path):
    """A dead process stays in the process table until its parent reaps it; signal 0 would call it alive."""
    ours = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])  # our child, unknown to the launcher
    wait_for(lambda: _state(ours.pid) == "Z")
    run_dir = create_run_dir(tmp_path, "zombie-child")
    write_status(run_dir, status="running", pid=ours.pid)
    status = launcher.refresh_status(run_dir)
    assert status["status"] == "failed" and status["exit_code"] == 3 and status["error"].endswith("; exit code 3")
    assert _state(ours.pid) is None  # reaped

    parent = subprocess.Popen(  # a stranger's child: we cannot reap it, only see that it is dead
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'pass']);"
            "print(p.pid, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        grandchild = int(parent.stdout.readline())
        wait_for(lambda: _state(grandchild) == "Z")
        run_dir = create_run_dir(tmp_path, "zombie-stranger")
        write_status(run_dir, status="running", pid=grandchild)
        status = launcher.refresh_status(run_dir)
        assert status["status"] == "failed" and status["exit_code"] is None
    finally:
        parent.kill()
        parent.wait()


def test_run_that_ended_but_died_before_its_status_write_adopts_its_run_end(tmp_path):
    run_dir = create_run_dir(tmp_path, "ended")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / "telemetry.jsonl").write_text(
        '{"v":1,"event":"run_start","t":1}\n'
        '{"v":1,"event":"run_end","t":2,"status":"completed","best_epoch":3,'
        '"best_metric":{"name":"fitness","value":0.5},"error":null}\n'
    )
    write_status(run_dir, status="running", pid=dead.pid, pid_start=12345)
    status = launcher.refresh_status(run_dir)
    assert status["status"] == "completed" and status["best_epoch"] == 3 and status["error"] is None
    assert len(events_of(run_dir)) == 2  # nothing appended


def test_run_end_of_an_earlier_attempt_does_not_count_after_a_resume(tmp_path):
    run_dir = create_run_dir(tmp_path, "resumed")
    (run_dir / "telemetry.jsonl").write_text(
        '{"v":1,"event":"run_start","t":1}\n{"v":1,"event":"run_end","t":2,"status":"stopped"}\n'
        '{"v":1,"event":"run_start","t":3,"resumed":true}\n'
    )
    write_status(run_dir, status="running", pid=2**22 + 12345, pid_start=1)  # no such process
    status = launcher.refresh_status(run_dir)
    assert status["status"] == "failed"
    assert [e["event"] for e in events_of(run_dir)][-2:] == ["run_start", "run_end"]


def test_starting_without_a_pid_waits_for_the_launcher_then_gives_up(tmp_path):
    run_dir = create_run_dir(tmp_path, "orphan")
    assert launcher.refresh_status(run_dir)["status"] == "starting"
    old = time.time() - launcher.STARTING_GRACE_S - 5
    os.utime(run_dir / "status.json", (old, old))
    status = launcher.refresh_status(run_dir)
    assert status["status"] == "failed" and "never started" in status["error"]


# ---- resume / delete -----------------------------------------------------------------------------------------------
def test_resume_detached_restarts_a_stopped_run_and_refuses_completed_or_running(tmp_path, fake):
    root = tmp_path / "runs"
    done = create_run_dir(root, "done")
    write_status(done, status="completed")
    with pytest.raises(RunError, match="run 'done' is completed; nothing to resume"):
        launcher.resume_run_detached(done)

    fake(steps=100000, delay=0.02)
    run_dir = launcher.start_run(tmp_path / "demo.yaml", root, name="again")
    wait_for(status_is(run_dir, "running"))
    with pytest.raises(RunError, match="run 'again' is already running"):
        launcher.resume_run_detached(run_dir)
    launcher.stop_run(run_dir)
    wait_for(status_is(run_dir, "stopped"))

    launcher.resume_run_detached(run_dir)
    wait_for(status_is(run_dir, "completed"))
    status = read_status(run_dir)
    assert status["resumes"] == 1 and status["error"] is None
    starts = [e for e in events_of(run_dir) if e["event"] == "run_start"]
    assert [s["resumed"] for s in starts] == [False, True]
    assert starts[1]["pid"] == status["pid"] != starts[0]["pid"]


def test_delete_refuses_running_and_non_runs(tmp_path, fake):
    root = tmp_path / "runs"
    run_dir = launcher.start_run(tmp_path / "demo.yaml", root, name="del")
    wait_for(status_is(run_dir, "running"))
    with pytest.raises(RunError, match="run 'del' is running; stop it before deleting"):
        launcher.delete_run(run_dir)
    assert run_dir.exists()
    launcher.stop_run(run_dir)
    wait_for(status_is(run_dir, "stopped"))
    launcher.delete_run(run_dir)
    assert not run_dir.exists()

    precious = tmp_path / "not-a-run"
    precious.mkdir()
    (precious / "data.txt").write_text("keep")
    with pytest.raises(RunError, match="is not a workbench run"):
        launcher.delete_run(precious)
    assert (precious / "data.txt").exists()


def test_delete_removes_the_ui_recipe_the_run_was_started_from_and_no_other_file(tmp_path, fake):
    root = tmp_path / "runs"
    fake(steps=3, delay=0)
    ui_recipes = root / ".ui-recipes"  # where the New run page writes the recipe it starts (docs/runs.md)
    ui_recipes.mkdir(parents=True)
    mine, other = ui_recipes / "mine.yaml", ui_recipes / "mine-2.yaml"
    for path in (mine, other):
        path.write_text("model: yolo26n.yaml\n")
    users = tmp_path / "demo.yaml"  # a recipe the user keeps (workbench train / start_run from the CLI)
    users.write_text("model: yolo26n.yaml\n")
    from_ui = launcher.start_run(mine, root, name="from-ui")
    from_cli = launcher.start_run(users, root, name="from-cli")
    wait_for(status_is(from_ui, "completed"))
    wait_for(status_is(from_cli, "completed"))

    launcher.delete_run(from_ui)
    assert not from_ui.exists() and not mine.exists()  # the run's own UI recipe goes with it
    assert other.exists()  # another run's UI recipe stays
    launcher.delete_run(from_cli)
    assert not from_cli.exists() and users.exists()  # a recipe outside .ui-recipes is the user's: never deleted


# ---- for real: launcher -> workbench train -> runner -> ultralytics -------------------------------------------------
@pytest.mark.slow
def test_real_run_starts_stops_cleanly_resumes_and_logs_the_documented_schema(tmp_path, tiny_data):
    import yaml

    from tests.conftest import TINY_TRAIN

    recipe = tmp_path / "tiny.yaml"
    train = {**TINY_TRAIN, "epochs": 4}
    recipe.write_text(yaml.safe_dump({"model": "yolo26n.yaml", "data": str(tiny_data), "train": train}))
    run_dir = launcher.start_run(recipe, tmp_path / "runs", name="real")
    wait_for(lambda: any(e["event"] == "epoch" for e in events_of(run_dir)), timeout=240, interval=0.2)
    launcher.stop_run(run_dir)
    wait_for(status_is(run_dir, "stopped", "completed"), timeout=120, interval=0.2)
    if read_status(run_dir)["status"] == "stopped":  # on a fast machine it may have finished first
        launcher.resume_run_detached(run_dir)
        wait_for(status_is(run_dir, "completed"), timeout=240, interval=0.2)
        assert read_status(run_dir)["resumes"] == 1
    events = events_of(run_dir)
    names = events[0]["names"]
    assert {k: v for k, v in ((e["event"], validate_event(e, names=names)) for e in events) if v} == {}
    assert events[-1]["event"] == "run_end" and events[-1]["status"] == "completed"
    assert (run_dir / "weights" / "best.pt").is_file() and read_status(run_dir)["epoch"] == 4
