"""The markers keep the quick loop free of Ray and Chromium: every test that uses a Ray head is marked ``cluster``, and
a test that starts a head or Chromium without its marker fails at that moment (tests/markers.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import markers
from tests.conftest import REPO
from tests.ray_cluster import start_head
from tests.ui_server import chromium_path


@pytest.fixture
def unmarked(request):
    """The running test as the guard sees it, marked or not as the test says; restored afterwards."""
    yield request.node
    markers.now_running(request.node)


PROBE = """
import json
HEAD = {"ray_head", "ray_head_process"}
seen = {"selected": [], "deselected": 0}
def pytest_deselected(items):
    seen["deselected"] += sum(1 for item in items if HEAD & set(item.fixturenames))
def pytest_collection_finish(session):
    seen["selected"] = [item.nodeid for item in session.items if HEAD & set(item.fixturenames)]
    print("PROBE", json.dumps(seen))
"""


def test_not_cluster_deselects_every_test_that_uses_a_head(tmp_path):
    """Collected as the quick loop collects: tests using the head fixtures (directly, or through a fixture such as
    test_sweep's) are all deselected, none is left to start Ray."""
    (tmp_path / "head_probe.py").write_text(PROBE)
    files = [f"tests/test_{name}.py" for name in ("cluster", "cluster_runs", "sweep", "browser_cluster")]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "head_probe",
         "-m", "not cluster", *files],
        capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("PROBE ")] or [out.stdout + out.stderr]
    seen = json.loads(line.removeprefix("PROBE "))
    assert seen["selected"] == []
    assert seen["deselected"] >= 15  # the probe saw them: test_cluster.py alone has 13


def test_the_hook_marks_a_test_that_uses_a_head_only_through_another_fixture():
    class Item:
        def __init__(self, fixturenames):
            self.fixturenames, self.added = fixturenames, []

        def add_marker(self, mark):
            self.added.append(mark.name)

    through, plain = Item(["tmp_path", "base", "ray_head_process"]), Item(["tmp_path"])
    markers.mark_by_fixtures([through, plain])
    assert through.added == ["cluster"] and plain.added == []


def test_the_markers_are_declared(pytestconfig):
    declared = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(markers.MARKERS) <= declared


def test_starting_chromium_without_the_browser_marker_fails(unmarked):
    markers.now_running(unmarked)
    with pytest.raises(pytest.fail.Exception, match="starts Chromium but is not marked 'browser'"):
        chromium_path()


def test_starting_a_head_without_the_cluster_marker_fails_before_anything_starts(unmarked, tmp_path):
    markers.now_running(unmarked)
    with pytest.raises(pytest.fail.Exception, match="starts a Ray head but is not marked 'cluster'"):
        start_head(tmp_path / "h")
    assert not (tmp_path / "h").exists()


def test_a_marked_test_passes_the_guard(unmarked):
    unmarked.add_marker(pytest.mark.browser)
    markers.now_running(unmarked)
    markers.require("browser", "starts Chromium")  # no failure: marked


def test_outside_a_test_nothing_is_checked(unmarked):
    markers.now_running(None)  # a benchmark script starting Chromium on its own
    markers.require("browser", "starts Chromium")
