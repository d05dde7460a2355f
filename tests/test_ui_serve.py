"""``app.serve``, the UI server process of ``workbench ui`` (issue 20, first paint): Streamlit's command line with the
first page's imports warmed in a thread."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_every_warmed_module_imports_and_none_pulls_in_torch():
    """A misspelt name would make the warm-up stop silently at it (it never fails the server): each must import."""
    code = (
        "import sys, app.serve as s; s._warm(); "
        "print([m for m in s.WARM if m not in sys.modules], [m for m in ('torch', 'ultralytics') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_serve_is_streamlits_own_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "app.serve", "version"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "Streamlit, version" in out.stdout
