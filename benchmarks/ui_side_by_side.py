"""`workbench ui` now against the code before, side by side in one run: first paint, and one live dashboard tab.

Issue 20 ("a light UI server"): one open live dashboard tab costs the UI server <= 5 % of one core with a real run,
hidden tabs cost nothing, and first paint of ``workbench ui`` is <= 2 s. The code before is a ``git worktree`` of
``--before REF`` (removed afterwards); both run with this interpreter and its packages, each from its own checkout
(``PYTHONPATH``), so only the workbench's code differs.

- **First paint**: spawn ``workbench ui`` (a fresh server, a fresh browser context without cache), then the time
  until the New run page's title and until its Start button are visible. Before and now alternate, ``--repeats``
  each; medians.
- **One live tab**: one real training process (``assets/recipes/demo-quick.yaml``, epochs raised) and both servers on
  the same runs root, one tab on each server's dashboard of that run, measured over the same ``--window``: each
  server's CPU time (utime + stime, ``/proc/<pid>/stat``) as % of one core, and the messages each tab sent. Then both
  tabs are hidden (``document.visibilityState``, driven as tests/test_browser_live_refresh.py does: headless
  Chromium reports every tab visible) and the same is measured again.

Usage::

    python benchmarks/bench_ui.py --before 353e3f0          # this side-by-side only (about 4 minutes)
    python benchmarks/ui_side_by_side.py --before 353e3f0 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ui as ui_bench  # noqa: E402

from tests.ui_server import CHROMIUM_ARGS, COUNT_SENDS, VISIBILITY, chromium_path  # noqa: E402

REPO = ui_bench.REPO
TITLE_SELECTOR = "h1:has-text('New run')"


@contextmanager
def worktree(ref: str):
    """A detached checkout of ``ref`` in a temporary folder, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="wb-before-")) / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), ref], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


def first_paint(browser, runs: Path, repo: Path) -> dict[str, float]:
    ui = ui_bench.UI(runs, repo=repo)
    try:
        ready = ui.wait_ready()
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.goto(ui.url + "/", wait_until="commit")
        page.wait_for_selector(TITLE_SELECTOR, state="visible", timeout=60_000)
        title = time.perf_counter() - ui.t_spawn
        page.wait_for_selector(ui_bench.START_SELECTOR, state="visible", timeout=60_000)
        start = time.perf_counter() - ui.t_spawn
        ctx.close()
        return {"server_ready_s": ready, "title_visible_s": title, "start_visible_s": start}
    finally:
        ui.stop()


def _tab(browser, ui, run_name: str):
    ctx = browser.new_context(viewport={"width": 1500, "height": 1900})
    ctx.add_init_script(VISIBILITY)
    ctx.add_init_script(COUNT_SENDS)
    page = ctx.new_page()
    page.goto(f"{ui.url}/dashboard?run={run_name}", wait_until="commit")
    return ctx, page


def _window(servers: dict[str, Any], pages: dict[str, Any], window: float) -> dict[str, dict[str, float]]:
    """Every server's CPU share and every tab's messages over the same ``window`` seconds."""
    sent0 = {k: p.evaluate("window.__wsSent") for k, p in pages.items()}
    cpu0 = {k: ui_bench.cpu_seconds(s.server_pid) for k, s in servers.items()}
    t0 = time.perf_counter()
    time.sleep(window)
    wall = time.perf_counter() - t0
    out = {}
    for k, s in servers.items():
        used = ui_bench.cpu_seconds(s.server_pid) - cpu0[k]
        out[k] = {
            "server_cpu_pct_of_one_core": 100.0 * used / wall,
            "server_cpu_s": used,
            "messages_sent": pages[k].evaluate("window.__wsSent") - sent0[k],
            "window_s": wall,
        }
    return out


def live_tab(browser, repos: dict[str, Path], workdir: Path, window: float, epochs: int) -> dict[str, Any]:
    runs = workdir / "live-runs"
    runs.mkdir(parents=True)
    servers = {k: ui_bench.UI(runs, repo=r) for k, r in repos.items()}
    live = None
    tabs: dict[str, Any] = {}
    try:
        for s in servers.values():
            s.wait_ready()
        live = ui_bench.LiveRun("real", runs, epochs=epochs)
        for k, s in servers.items():
            tabs[k] = _tab(browser, s, live.name)
        for _, page in tabs.values():
            ui_bench.wait_until(lambda p=page: ui_bench.last_step_drawn(p) > 0, 300, "the dashboard's charts")
        time.sleep(2.0)
        pages = {k: page for k, (_, page) in tabs.items()}
        steps0, _ = ui_bench.steps_logged(live.run_dir)
        visible = _window(servers, pages, window)
        steps1, _ = ui_bench.steps_logged(live.run_dir)
        for page in pages.values():
            page.evaluate("window.__setHidden(true)")
        time.sleep(ui_bench.DASHBOARD_REFRESH_S)  # a refresh already asked for may still run
        hidden = _window(servers, pages, window)
        steps2, _ = ui_bench.steps_logged(live.run_dir)
        return {
            "visible": visible, "hidden": hidden,
            "steps_logged_visible_window": steps1 - steps0, "steps_logged_hidden_window": steps2 - steps1,
        }  # fmt: skip
    finally:
        for ctx, _ in tabs.values():
            ctx.close()
        if live is not None:
            live.stop()
        for s in servers.values():
            s.stop()


def run(before: str, *, repeats: int = 3, window: float = 30.0, epochs: int = 200) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {
        "before": before,
        "now": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip() + " + working tree",
        "goal_first_paint_s": ui_bench.GOAL_FIRST_PAINT_S, "goal_live_tab_pct": ui_bench.GOAL_LIVE_TAB_PCT,
    }  # fmt: skip
    with worktree(before) as old, tempfile.TemporaryDirectory(prefix="bench-ui-sbs-") as tmp, sync_playwright() as p:
        repos = {"before": old, "now": REPO}
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            paints: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
            for i in range(repeats):
                for k in ("before", "now") if i % 2 == 0 else ("now", "before"):
                    paints[k].append(first_paint(browser, Path(tmp) / "empty-runs", repos[k]))
            result["first_paint"] = {
                k: {
                    "runs": v,
                    **{f"{m}_median": statistics.median(x[m] for x in v) for m in v[0]},
                }
                for k, v in paints.items()
            }
            result["live_tab"] = live_tab(browser, repos, Path(tmp), window, epochs)
        finally:
            browser.close()
    now_paint, now_live = result["first_paint"]["now"], result["live_tab"]["visible"]["now"]
    result["first_paint_goal_met"] = now_paint["start_visible_s_median"] <= ui_bench.GOAL_FIRST_PAINT_S
    result["live_tab_goal_met"] = now_live["server_cpu_pct_of_one_core"] <= ui_bench.GOAL_LIVE_TAB_PCT
    result["hidden_tab_sends_nothing"] = result["live_tab"]["hidden"]["now"]["messages_sent"] == 0
    return result


def report(r: dict[str, Any]) -> str:
    fp, lt = r["first_paint"], r["live_tab"]
    load = r.get("machine_before_the_benchmark") or ui_bench.machine()
    lines = [f"{load} (before the benchmark); before = {r['before']}, now = {r['now']}"]
    for k in ("before", "now"):
        runs = ", ".join(f"{x['start_visible_s']:.2f}" for x in fp[k]["runs"])
        lines.append(
            f"first paint {k:6}: title {fp[k]['title_visible_s_median']:.2f} s, Start button "
            f"{fp[k]['start_visible_s_median']:.2f} s (median of {runs} s); server answering "
            f"{fp[k]['server_ready_s_median']:.2f} s"
        )
    ratio = fp["now"]["start_visible_s_median"] / fp["before"]["start_visible_s_median"]
    lines.append(
        f"first paint now/before: {ratio:.2f} (goal <= {r['goal_first_paint_s']:g} s: "
        f"{'met' if r['first_paint_goal_met'] else 'NOT MET'})"
    )
    for state in ("visible", "hidden"):
        steps = lt[f"steps_logged_{state}_window"]
        for k in ("before", "now"):
            x = lt[state][k]
            lines.append(
                f"one {state} live tab, {k:6}: UI server {x['server_cpu_pct_of_one_core']:.1f}% of one core over "
                f"{x['window_s']:.0f} s, {x['messages_sent']} messages from the tab ({steps} steps logged)"
            )
    v = {k: x["server_cpu_pct_of_one_core"] for k, x in lt["visible"].items()}
    lines.append(
        f"visible tab now/before: {v['now'] / v['before']:.2f}"
        f" (goal <= {r['goal_live_tab_pct']:g}%: {'met' if r['live_tab_goal_met'] else 'NOT MET'}); hidden tab sends "
        f"nothing now: {r['hidden_tab_sends_nothing']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="git ref of the code to compare with (e.g. 353e3f0)")
    p.add_argument("--repeats", type=int, default=3, help="first paints of each side")
    p.add_argument("--window", type=float, default=30.0, help="CPU measurement window in seconds")
    p.add_argument("--real-epochs", type=int, default=200)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    load = ui_bench.machine()
    r = run(a.before, repeats=a.repeats, window=a.window, epochs=a.real_epochs)
    r["machine_before_the_benchmark"] = load
    print(json.dumps(r, indent=2) if a.json else report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
