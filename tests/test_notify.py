"""Alerts (issue 20 item 4): the recipe's ``notify`` block, the message, delivery with retries and back-off from a
thread that never blocks training, failed deliveries recorded, and secrets kept out of the logs. The real runs
(a tiny run's end, a diverging run's critical finding, a dead endpoint) are in tests/test_notify_runs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_for
from tests.webhook_server import closed_port_url, silent_endpoint, webhook
from trainers.doctor.finding import Finding
from trainers.errors import RecipeError
from trainers.recipe import Recipe
from trainers.recipe.model import NotifySettings
from trainers.runs import notify
from trainers.runs.notify import Notifier, critical_message, deliver, end_message, endpoint
from trainers.statuses import RunStatus
from trainers.telemetry.events import read_events

REPO = Path(__file__).resolve().parents[1]
BASE = {"model": "yolo26n.yaml", "data": "/d/data.yaml"}
SLACK = "https://user:pw@hooks.slack.com:8443/services/T000/B000/XXXXSECRET?x=1"


def notify_events(run_dir: Path) -> list[dict]:
    return [e for e in read_events(run_dir / "telemetry.jsonl")[0] if e["event"] == notify.NOTIFY_EVENT]


# ---- the recipe block ---------------------------------------------------------------------------------------------
def test_notify_block_defaults_to_both_events_and_recipes_without_it_are_unchanged():
    plain = Recipe.from_dict(BASE)
    assert plain.notify is None and "notify" not in plain.to_dict() and "notify" not in plain.to_yaml()
    r = Recipe.from_dict({**BASE, "notify": {"url": "https://hooks.example.com/x"}})
    assert r.notify.on == ("end", "critical")
    assert Recipe.from_yaml(r.to_yaml()) == r  # round trip
    assert Recipe.from_dict({**BASE, "notify": {"url": "http://h/x", "on": ["critical"]}}).notify.on == ("critical",)


@pytest.mark.parametrize(
    "block, message",
    [
        ({"url": "ftp://h/x"}, "recipe: notify.url: must be an http:// or https:// URL with a host"),
        ({"url": "https://"}, "recipe: notify.url: must be an http:// or https:// URL with a host"),
        ({"url": "http://h", "on": ["end", "start"]}, "recipe: notify.on.1: Input should be 'end' or 'critical'"),
        ({"url": "http://h", "on": []}, "recipe: notify.on: name at least one of end, critical"),
        ({"on": ["end"]}, "recipe: notify.url: required"),
        ({"url": "http://h", "retries": 3}, "recipe: notify.retries: unknown key"),
    ],
)
def test_a_bad_notify_block_is_one_line_naming_the_field(block, message):
    with pytest.raises(RecipeError) as e:
        Recipe.from_dict({**BASE, "notify": block})
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


# ---- the message --------------------------------------------------------------------------------------------------
def test_end_message_of_a_completed_run_names_the_best_metric_and_epoch():
    status = {"status": RunStatus.COMPLETED, "best_epoch": 7, "best_metric": {"name": "fitness", "value": 0.6123}}
    m = end_message("demo-1", status)
    assert m["text"] == "run demo-1 completed: best mAP50-95 0.612 at epoch 7"  # 8.4's fitness is mAP50-95
    assert m["run"] == "demo-1" and m["status"] == "completed" and m["kind"] == "end" and m["finding"] is None
    assert m["best"] == {"name": "fitness", "label": "mAP50-95", "value": 0.6123, "epoch": 7}
    f1 = end_message("r", {**status, "best_metric": {"name": "f1", "value": 0.5}})
    assert f1["text"] == "run r completed: best F1 0.5 at epoch 7"


def test_end_message_of_a_failed_or_stopped_run_says_why_on_one_line():
    failed = end_message("r", {"status": RunStatus.FAILED, "error": "training process 12 exited\nwithout a run-end"})
    assert failed["text"] == "run r failed: training process 12 exited without a run-end" and failed["best"] is None
    stopped = end_message("r", {"status": RunStatus.STOPPED, "stop_reason": "doctor: Training diverged (x)"})
    assert stopped["text"] == "run r stopped: doctor: Training diverged (x)" and stopped["status"] == "stopped"


def test_critical_message_carries_the_finding():
    f = Finding("training.divergence", "critical", "Training diverged at step 2", "grad norm 1e9 at step 2", "fix")
    m = critical_message("div", f)
    assert m["text"] == "run div: critical finding: Training diverged at step 2"
    assert m["finding"] == {"id": "training.divergence", "title": "Training diverged at step 2",
                            "severity": "critical", "evidence": "grad norm 1e9 at step 2"}  # fmt: skip
    assert m["status"] == "running" and m["kind"] == "critical"


def test_endpoint_keeps_scheme_and_host_only():
    assert endpoint(SLACK) == "https://hooks.slack.com:8443"
    assert endpoint("http://[::1]:9/a/b") == "http://[::1]:9"


# ---- retries and back-off -----------------------------------------------------------------------------------------
class FlakySend:
    """Fails its first ``failures`` calls (the given exception), then answers 200; records each call's time."""

    def __init__(self, failures: int, error: Exception | None = None):
        self.failures, self.calls, self.error = failures, [], error or urllib.error.URLError("refused")

    def __call__(self, url, body, timeout):
        self.calls.append((url, json.loads(body), timeout))
        if len(self.calls) <= self.failures:
            raise self.error
        return 200


def test_a_failed_try_is_retried_after_exponential_waits():
    send, slept = FlakySend(2), []
    result = deliver("http://h/x", {"text": "t"}, send=send, sleep=slept.append)
    assert result.ok and result.tries == 3 and slept == [1.0, 2.0]
    assert [c[2] for c in send.calls] == [notify.TIMEOUT_S] * 3


def test_an_endpoint_that_keeps_failing_is_given_up_after_the_last_wait():
    send, slept = FlakySend(99, urllib.error.HTTPError("http://h/x", 503, "busy", None, None)), []
    result = deliver("http://h/SECRET", {"text": "t"}, send=send, sleep=slept.append)
    assert not result.ok and result.tries == 4 and slept == [1.0, 2.0, 4.0] and result.error == "HTTP 503"


def test_a_non_2xx_answer_is_a_failure_and_errors_never_hold_the_url():
    result = deliver(SLACK, {}, send=lambda *a: 302, sleep=lambda s: None)
    assert not result.ok and result.error == "HTTP 302"
    leaky = FlakySend(99, OSError(f"cannot reach {SLACK}"))
    result = deliver(SLACK, {}, send=leaky, sleep=lambda s: None)
    assert "SECRET" not in result.error and "hooks.slack.com:8443" in result.error


# ---- the sender thread, against a loopback server -------------------------------------------------------------------
def test_notifier_posts_the_json_message_and_records_the_delivery(tmp_path):
    with webhook() as (url, got):
        n = Notifier(NotifySettings(url=url), tmp_path)
        n.post(end_message("r", {"status": RunStatus.COMPLETED, "best_epoch": 2,
                                 "best_metric": {"name": "fitness", "value": 0.5}}))  # fmt: skip
        assert n.close(10.0)
    assert got.messages[0]["text"] == "run r completed: best mAP50-95 0.5 at epoch 2"
    assert got.paths == ["/services/T000/B000/SECRETTOKEN"]
    (ev,) = notify_events(tmp_path)
    assert ev["ok"] and ev["tries"] == 1 and ev["kind"] == "end" and ev["endpoint"] == endpoint(url)
    assert "SECRETTOKEN" not in (tmp_path / "telemetry.jsonl").read_text()


def test_notifier_retries_a_server_error_and_then_delivers(tmp_path):
    with webhook(fail_first=2) as (url, got):
        n = Notifier(NotifySettings(url=url), tmp_path, backoff=(0.01, 0.02, 0.04))
        n.post(critical_message("r", {"id": "x", "title": "T", "severity": "critical", "evidence": "e"}))
        assert n.close(10.0)
    assert got.failed == 2 and len(got.messages) == 1
    (ev,) = notify_events(tmp_path)
    assert ev["ok"] and ev["tries"] == 3


def test_a_failed_delivery_is_recorded_and_never_raises(tmp_path):
    url = closed_port_url()
    n = Notifier(NotifySettings(url=url), tmp_path, backoff=(0.01, 0.01, 0.01))
    n.post(end_message("r", {"status": RunStatus.FAILED, "error": "boom"}))
    assert n.close(10.0) is False
    (ev,) = notify_events(tmp_path)
    assert ev["ok"] is False and ev["tries"] == 4 and "refused" in ev["error"].lower()
    assert "SECRETTOKEN" not in (tmp_path / "telemetry.jsonl").read_text()


def test_post_never_waits_on_a_silent_endpoint_and_the_end_wait_is_bounded(tmp_path):
    with silent_endpoint() as url:
        n = Notifier(NotifySettings(url=url), tmp_path, timeout=30.0)
        t0 = time.perf_counter()
        for i in range(50):  # more than the queue holds: the rest are dropped and recorded, never waited for
            n.post(critical_message("r", {"id": str(i), "title": "T", "severity": "critical", "evidence": "e"}))
        posted = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert n.close(0.5) is False
        closed = time.perf_counter() - t0
    assert posted < 0.5, posted  # 50 posts; a blocking send would take 30 s for the first alone
    assert closed < 3.0, closed
    events = notify_events(tmp_path)
    assert len(events) == 50 and not any(e["ok"] for e in events)
    assert any("already waiting" in e["error"] for e in events) and any("gave up" in e["error"] for e in events)


def test_kinds_the_recipe_did_not_ask_for_are_not_posted(tmp_path):
    with webhook() as (url, got):
        n = Notifier(NotifySettings(url=url, on=["end"]), tmp_path)
        assert not n.post(critical_message("r", {"id": "x", "title": "T", "severity": "critical", "evidence": "e"}))
        assert n.post(end_message("r", {"status": RunStatus.COMPLETED}))
        assert n.close(10.0)
    assert [m["kind"] for m in got.messages] == ["end"]


# ---- secrets out of the run's logs --------------------------------------------------------------------------------
def test_run_start_keeps_only_scheme_and_host_of_the_url():
    r = Recipe.from_dict({**BASE, "notify": {"url": SLACK}})
    assert notify.redacted_recipe(r)["notify"] == {"url": "https://hooks.slack.com:8443", "on": ["end", "critical"]}
    argv = ["workbench", "train", "r.yaml", "--notify", SLACK, f"--notify={SLACK}", "--name", "n"]
    assert notify.redacted_argv(argv) == ["workbench", "train", "r.yaml", "--notify", "https://hooks.slack.com:8443",
                                          "--notify=https://hooks.slack.com:8443", "--name", "n"]  # fmt: skip


# ---- a run killed hard: the launcher posts its end ----------------------------------------------------------------
def test_the_launcher_posts_the_end_of_a_run_killed_hard(tmp_path, monkeypatch):
    from trainers.runs.backends import local
    from trainers.runs.backends.local import settle_dead
    from trainers.runs.status import read_status, write_status

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "killed"
    run.mkdir()
    with webhook() as (url, got):
        (run / "recipe.yaml").write_text(Recipe.from_dict({**BASE, "notify": {"url": url}}).to_yaml())
        write_status(run, status=RunStatus.RUNNING, pid=dead.pid, epoch=3, best_epoch=2,
                     best_metric={"name": "fitness", "value": 0.25})  # fmt: skip
        settle_dead(run, read_status(run), exit_code=-9)
        wait_for(lambda: got.messages, 30, what="the launcher's end message")
        # A second settler that read the log before the first wrote its run_end: the run is settled, no second post
        monkeypatch.setattr(local, "last_run_end", lambda run_dir: None)
        settle_dead(run, {**read_status(run), "status": RunStatus.RUNNING})
        notify._drain_at_exit()  # what this process' exit does: any message still queued is sent now
    (m,) = got.messages
    assert m["status"] == "failed" and m["run"] == "killed" and m["best"]["epoch"] == 2
    assert m["text"].startswith("run killed failed: best mAP50-95 0.25 at epoch 2; training process")
    assert "SIGKILL" in m["text"]


def test_a_ray_job_that_died_without_a_run_end_posts_its_end_once(tmp_path, monkeypatch):
    from trainers.runs.backends import ray as ray_runs
    from trainers.runs.backends.ray_cluster.jobs import JobState
    from trainers.runs.status import read_status, write_status

    monkeypatch.setattr(ray_runs.cluster, "job_info", lambda address, job: JobState("FAILED", exit_code=-9))
    monkeypatch.setattr(ray_runs.cluster, "logs_tail", lambda address, job: "")
    monkeypatch.delenv(ray_runs.cluster.JOB_ID_ENV, raising=False)
    run = tmp_path / "on-ray"
    run.mkdir()
    with webhook() as (url, got):
        (run / "recipe.yaml").write_text(Recipe.from_dict({**BASE, "notify": {"url": url}}).to_yaml())
        write_status(run, status=RunStatus.RUNNING, backend="ray", cluster="http://head:8265", job_id="J")
        ray_runs.refresh(run, read_status(run))
        wait_for(lambda: got.messages, 30, what="the end message of the Ray run")
        # A second poller that read the log before the first wrote its run_end: the run is settled, no second post
        monkeypatch.setattr(ray_runs, "run_end_since", lambda run_dir, offset: None)
        ray_runs.refresh(run, {**read_status(run), "status": RunStatus.RUNNING})
        notify._drain_at_exit()
    (m,) = got.messages
    assert m["status"] == "failed" and m["run"] == "on-ray" and m["text"].startswith("run on-ray failed: Ray job J")


# ---- --notify on the command line ---------------------------------------------------------------------------------
def test_notify_option_sets_the_block_on_a_copy_of_the_recipe(tmp_path):
    from trainers.cli.notify_option import recipe_with_notify

    recipe = tmp_path / "mine.yaml"
    recipe.write_text(yaml.safe_dump({**BASE, "data": "data.yaml", "notify": {"url": "http://old/x", "on": ["end"]}}))
    copy = Path(recipe_with_notify(recipe, "https://new.example/hook", tmp_path / "runs"))
    assert copy.name == "mine.yaml" and copy.parent.parent == tmp_path / "runs" / ".notify-recipes"
    r = Recipe.from_yaml(copy.read_text())
    assert r.notify == NotifySettings(url="https://new.example/hook", on=["end"])  # the recipe's `on` is kept
    assert r.data == str(tmp_path / "data.yaml")  # paths resolved against the original's folder


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_bad_notify_url_on_the_command_line_is_one_line_exit_2(tmp_path, command):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({**BASE, "data": str(REPO / "assets/demo/data.yaml")}))
    target = recipe
    if command == "sweep":
        target = tmp_path / "s.yaml"
        target.write_text(yaml.safe_dump({"base": "r.yaml", "grid": {"train.lr0": [0.01, 0.02]}}))
    out = subprocess.run(
        [sys.executable, "-m", "trainers.cli", command, str(target), "--runs-dir", str(tmp_path / "runs"),
         "--notify", "ftp://h/x"], capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "WORKBENCH_CLUSTER": ""},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "workbench: error: --notify: must be an http:// or https:// URL with a host"
    ), out.stderr
    assert not list((tmp_path / "runs").glob("[!.]*"))  # no run started


def test_sweep_notify_sets_the_block_on_every_variant(tmp_path, monkeypatch):
    from trainers.sweeps import runner

    (tmp_path / "r.yaml").write_text(yaml.safe_dump({**BASE, "data": str(REPO / "assets/demo/data.yaml")}))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"base": "r.yaml", "grid": {"train.lr0": [0.01, 0.02]}}))
    started = []
    monkeypatch.setattr(runner, "fetch_assets", lambda sweep: None)
    monkeypatch.setattr(runner, "run_sweep", lambda sweep, root, **kw: started.append(sweep) or 0)
    assert runner.sweep_command(tmp_path / "s.yaml", tmp_path / "runs", notify="https://hooks.example.com/T/B/x") == 0
    (sweep,) = started
    assert [v.recipe.notify for v in sweep.variants] == [NotifySettings(url="https://hooks.example.com/T/B/x")] * 2
    assert [v.recipe.train["lr0"] for v in sweep.variants] == [0.01, 0.02]  # the grid's values kept
