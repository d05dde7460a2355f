"""`workbench ui` and headless Chromium for the tests that drive the real thing (defined once, used by the browser,
fault, security and benchmark tests).

The UI runs as a user starts it (``python -m trainers.cli ui``) in its own process group, so stopping it ends the CLI
and its Streamlit child together. Chromium is Debian's (``apt-get install -y chromium``; ``.ci/run`` installs it),
driven by playwright with ``executable_path``; a missing browser fails with the install command, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Without the background-networking flags Chromium tries Google's hosts at every start (closed network here).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Init scripts for a page (``context.add_init_script``), shared by the browser tests and benchmarks/bench_ui.py.
# COUNT_SENDS counts the messages the page sends to the server (Streamlit BackMsgs: a live refresh's rerun request is
# one). VISIBILITY lets the caller hide and show the tab (``window.__setHidden(true)``): headless Chromium reports
# every tab visible, so ``document.visibilityState`` is overridden and ``visibilitychange`` fired as a browser does.
COUNT_SENDS = """(() => { const send = WebSocket.prototype.send; window.__wsSent = 0;
    WebSocket.prototype.send = function (data) { window.__wsSent += 1; return send.call(this, data); }; })();"""
VISIBILITY = """(() => {
  let hidden = false;
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  window.__setHidden = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
})();"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_served(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def chromium_path() -> str:
    """Debian's Chromium; under pytest the running test must be marked ``browser`` (tests/markers.py)."""
    if "pytest" in sys.modules:  # a benchmark script may run this without pytest installed
        from tests.markers import require

        require("browser", "starts Chromium")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium not found: apt-get install -y chromium (or run bash .ci/run)"
    return path


class WorkbenchUI:
    """One ``workbench ui`` process group on a port; :meth:`start` waits until ``/_stcore/health`` answers."""

    def __init__(
        self, runs: Path, port: int | None = None, log: Path | None = None, extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ):  # fmt: skip
        """``extra``: more ``workbench ui`` arguments; ``env``: more environment (its PYTHONPATH goes after REPO)."""
        self.runs, self.port, self.extra, self.env = Path(runs), port or free_port(), tuple(extra), dict(env or {})
        self.log = log or self.runs.parent / f"ui-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> WorkbenchUI:
        from tests.conftest import wait_for

        assert not port_served(self.port), f"port {self.port} is already served"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trainers.cli", "ui", "--port", str(self.port), "--runs-dir", str(self.runs)]
                + list(self.extra),
                cwd=REPO,
                env={
                    **os.environ,
                    **self.env,
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), self.env.get("PYTHONPATH")])),
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for(self.healthy, timeout, 0.2, f"workbench ui answering on port {self.port}")
        except BaseException:
            self.kill()
            raise
        return self

    def healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                return r.read() == b"ok"
        except OSError:
            return False

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the group, then SIGKILL if it lingers; wait until the port is free."""
        from tests.conftest import wait_for

        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        wait_for(lambda: not port_served(self.port), 20, 0.2, f"port {self.port} free after stopping the UI")
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the group: no shutdown code runs (a crash)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None


@contextlib.contextmanager
def running_ui(runs: Path, **kwargs) -> Iterator[WorkbenchUI]:
    """``with running_ui(runs) as ui:`` — started, and always stopped afterwards."""
    ui = WorkbenchUI(runs, **kwargs).start()
    try:
        yield ui
    finally:
        if ui.proc is not None:
            ui.stop()


@contextlib.contextmanager
def chromium_page(width: int = 1500, height: int = 1900) -> Iterator:
    """A playwright page in headless Debian Chromium; the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


# ---- reading plotly charts on the page ------------------------------------------------------------------------------
def points(page, key: str) -> int:
    """Number of data points plotted in the chart with Streamlit key ``key`` (0 if not drawn yet)."""
    return page.evaluate(
        # _fullData holds the decoded arrays (plotly.py 6 ships numpy arrays base64-encoded in gd.data)
        """key => { const gd = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
                    if (!gd || !gd._fullData) return 0;
                    return gd._fullData.reduce((n, t) => n + ((t.x && t.x.length) || 0), 0); }""",
        key,
    )


def trace_names(page, key: str) -> list[str]:
    return page.evaluate(
        """key => { const gd = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
                    return gd && gd.data ? gd.data.map(t => t.name || '') : []; }""",
        key,
    )


def chart_boxes(page) -> dict[str, dict]:
    """Every chart on the page: its Streamlit key -> the height of the box it occupies on the page (its scrolling
    container when it has one), the figure's own height, its legend entries and its trace names."""
    return page.evaluate(JS_CHART_BOXES)


JS_CHART_BOXES = r"""() => Object.fromEntries([...document.querySelectorAll('[class*="st-key-chart_"]')].map(el => {
    const key = [...el.classList].find(c => c.startsWith('st-key-chart_')).slice(7);
    let box = el;  // a scrolling box of the page's own (not the page itself) bounds what is shown of it
    for (let p = el.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowY;
        const scrolls = (o === 'auto' || o === 'scroll') && p.scrollHeight > p.clientHeight + 1;
        if (scrolls && p.clientHeight < 0.95 * window.innerHeight) { box = p; break; }
    }
    const gd = el.querySelector('.js-plotly-plot');
    return [key, {box: box.getBoundingClientRect().height, figure: el.getBoundingClientRect().height,
                  legend: el.querySelectorAll('.legend .traces').length,
                  traces: gd && gd.data ? gd.data.map(t => t.name || "") : []}];
}))"""
