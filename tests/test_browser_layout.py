"""Nothing is cut off at a 1400 x 900 window (issue 11, item 8), checked in headless Chromium on the pages users
found clipped: the class-weight table's editable weight column pushed off the grid, "Use in a ne…", the device box
showing "auto (GPU if", the dashboard's Best value.

Text in the DOM is clipped when its box scrolls (``scrollWidth > clientWidth`` under hidden overflow or an ellipsis);
a select box's value is an ``<input>``, so its text is measured against the input's content box. The data editor is
a canvas (glide-data-grid): its column layout (titles, widths, scroll position) is read from the props of glide's
grid component, found from the canvas up the React tree, and cross-checked against the accessible table glide
renders inside the canvas; header text is measured with the grid's own font and padding.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_for
from tests.fixtures.make_telemetry import FIXTURES
from tests.test_browser_classes import many_class_dataset
from tests.ui_server import WorkbenchUI, chromium_page
from trainers.runs.status import write_status

pytestmark = pytest.mark.browser  # synthetic runs: nothing trains
WIDTH, HEIGHT = 1400, 900
# Two GPUs with long names (a fake nvidia-smi): the device box must show them too, not only "auto" and "cpu".
FAKE_GPUS = ["NVIDIA GeForce RTX 4090", "NVIDIA RTX 6000 Ada Generation"]
LONG_NAMES = (
    "person,bicycle,car,motorcycle,airplane,bus,train,truck,boat,traffic light,fire hydrant,stop sign,parking meter,"
    "bench,bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe,backpack,umbrella,handbag,tie,suitcase,frisbee,"
    "skis,snowboard,sports ball,kite,baseball bat,baseball glove,skateboard,surfboard,tennis racket,bottle,"
    "wine glass,cup,fork,knife,spoon,bowl,banana,apple,sandwich,orange,broccoli,carrot,hot dog,pizza,donut,cake,"
    "chair,couch,potted plant,bed,dining table,toilet,tv,laptop,mouse,remote,keyboard,cell phone,microwave,oven,"
    "toaster,sink,refrigerator,book,clock,vase,scissors,teddy bear,hair drier,toothbrush"
).split(",")

JS_CLIPPED = r"""() => {
  const keyOf = el => { for (let p = el; p; p = p.parentElement) {
      const k = [...p.classList].find(c => c.startsWith('st-key-')); if (k) return k.slice(7); } return '?'; };
  const out = [];
  const boxes = {'button label': '[data-testid^="stBaseButton"] [data-testid="stMarkdownContainer"]',
                 'metric value': '[data-testid="stMetricValue"]', 'metric label': '[data-testid="stMetricLabel"]'};
  for (const [what, sel] of Object.entries(boxes)) for (const root of document.querySelectorAll(sel)) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const s = getComputedStyle(el);
      const hides = s.overflowX !== 'visible' || s.textOverflow === 'ellipsis';
      if (hides && el.scrollWidth > el.clientWidth + 1) {
        out.push({what, key: keyOf(root), text: root.innerText, need: el.scrollWidth, have: el.clientWidth}); break; }
    }
  }
  const ctx = document.createElement('canvas').getContext('2d');
  for (const input of document.querySelectorAll('[data-testid="stSelectbox"] input')) {
    const s = getComputedStyle(input);
    ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    const need = ctx.measureText(input.value).width;
    const have = input.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    if (need > have + 1) out.push({what: 'select box', key: keyOf(input), text: input.value,
                                   need: Math.ceil(need), have: Math.floor(have)});
  }
  return out;
}"""

JS_GRID = r"""key => {
  const root = document.querySelector('.st-key-' + key);
  const canvas = root && root.querySelector('canvas[data-testid="data-grid-canvas"]');
  if (!canvas) return null;
  let fiber = canvas[Object.keys(canvas).find(k => k.startsWith('__reactFiber'))];
  let p = null;  // glide's inner grid: columns with their widths, the first column in view and the grid width
  for (; fiber; fiber = fiber.return) {
    const q = fiber.memoizedProps || {};
    if (Array.isArray(q.columns) && typeof q.cellXOffset === 'number' && typeof q.width === 'number') { p = q; break; }
  }
  if (!p || !p.theme) return null;
  const scroller = root.querySelector('.dvn-scroller');
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = p.theme.headerFontFull;
  const pad = p.theme.cellHorizontalPadding, icon = Math.ceil(p.theme.headerIconSize * 1.3);
  let x = 0;
  const columns = p.columns.map((c, i) => {
    // frozen columns stay put; the others move left by the horizontal scroll
    const left = i < p.freezeColumns ? x : x - scroller.scrollLeft;
    x += c.width;
    const header = pad + (c.icon ? icon : 0) + ctx.measureText(c.title).width + pad;
    return {title: c.title, left, right: left + c.width, width: c.width, header: Math.ceil(header)};
  });
  const accessible = [...canvas.querySelectorAll('th[role="columnheader"]')].map(th => th.textContent);
  return {columns, visible: Math.min(p.width, scroller.clientWidth), accessible};
}"""


def clipped(page) -> list[dict]:
    """Every button label, metric and select box value on the page whose text does not fit its box."""
    return page.evaluate(JS_CLIPPED)


def grid_problems(page, key: str, editable: str) -> list[str]:
    """What is wrong with the data editor ``key``'s columns: the ``editable`` column not wholly in view, a header
    cut off by its column's width."""
    grid = page.evaluate(JS_GRID, key)
    assert grid, f"no glide grid found under .st-key-{key}"
    titles = [c["title"] for c in grid["columns"]]
    assert grid["accessible"] == titles[: len(grid["accessible"])], (grid["accessible"], titles)  # read the right grid
    problems = []
    col = next(c for c in grid["columns"] if c["title"] == editable)
    if col["left"] < 0 or col["right"] > grid["visible"]:
        problems.append(
            f"column '{editable}' spans x {col['left']:.0f}-{col['right']:.0f} of a {grid['visible']} px grid "
            f"(columns in order: {', '.join(titles)})"
        )
    for c in grid["columns"]:
        if c["header"] > c["width"]:
            problems.append(f"header '{c['title']}' needs {c['header']} px in a {c['width']} px column")
    return problems


def settle(page, selector: str) -> None:
    """Wait for ``selector``, then for Streamlit to finish the run (no status widget, nothing stale)."""
    page.wait_for_selector(selector, timeout=90_000)
    wait_for(
        lambda: page.evaluate(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
            "!document.querySelector('[data-stale=\"true\"]')"
        ),
        60,
        0.25,
        "the page to finish rendering",
    )
    page.wait_for_timeout(800)  # fonts and the grid's column sizing settle after the last delta


def fake_nvidia_smi(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True)
    lines = "\n".join(f"GPU {i}: {name} (UUID: GPU-{i:08d})" for i, name in enumerate(FAKE_GPUS))
    exe = bin_dir / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\ncat <<'EOF'\n{lines}\nEOF\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def completed_run(runs: Path, name: str) -> None:
    from tests.conftest import fake_last_pt
    from trainers.runs.folder import create_run_dir
    from trainers.runs.status import write_status

    run_dir = create_run_dir(runs, name)
    (run_dir / "telemetry.jsonl").write_bytes((FIXTURES / "complete.jsonl").read_bytes())
    fake_last_pt(run_dir)
    write_status(run_dir, status="completed", epoch=6, epochs=6, best_epoch=5,
                 best_metric={"name": "fitness", "value": 0.4123456})  # fmt: skip


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layout")
    fake_nvidia_smi(tmp / "bin")
    runs = tmp / "runs"
    completed_run(runs, "done")
    completed_run(runs, "long")  # a long run in progress: a three-digit epoch count, an ETA of hours
    write_status(runs / "long", status="running", pid=os.getpid(), epoch=307, epochs=350)
    data = many_class_dataset(tmp / "coco80")
    spec = yaml.safe_load(data.read_text())
    data.write_text(yaml.safe_dump({**spec, "names": LONG_NAMES}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}")
        server = WorkbenchUI(runs).start()
    try:
        server.coco80 = data
        server.shots = tmp
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("dataset", ["demo", "coco80"])
def test_class_weights_table_and_buttons_fit(ui, dataset):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/class_weights", wait_until="networkidle")
        if dataset == "coco80":
            page.locator(".st-key-cw_data_source").get_by_text("A data.yaml path").click()
            settle(page, ".st-key-cw_data_path input")
            page.locator(".st-key-cw_data_path input").fill(str(ui.coco80))
            page.locator(".st-key-cw_data_path input").press("Enter")
            wait_for(lambda: "80 classes" in page.locator("body").inner_text(), 60, 0.25, "the 80-class dataset")
        settle(page, ".st-key-weights_use button")
        page.wait_for_selector(".st-key-weights_editor canvas", timeout=30_000)
        page.screenshot(path=str(ui.shots / f"class_weights_{dataset}.png"))
        problems = grid_problems(page, "weights_editor", editable="weight")
        assert not problems and not clipped(page), f"cut off at {WIDTH} px: {problems} {clipped(page)}"


def test_new_run_device_box_shows_every_choice_whole(ui):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/", wait_until="networkidle")  # New run is the default page
        settle(page, ".st-key-nr_device input")
        box = page.locator(".st-key-nr_device input")
        page.locator(".st-key-nr_device").evaluate("el => el.scrollIntoView({block: 'center'})")  # room below it
        box.click()
        page.get_by_role("option").first.wait_for(timeout=30_000)  # the list opens a moment after the click
        options = page.get_by_role("option").all_inner_texts()
        page.get_by_role("option", name=options[0], exact=True).click()  # closes the list, keeps the choice
        assert len(options) == 5, options  # auto, cpu, GPU 0, GPU 1, both
        seen = []
        for option in options:
            box.click()
            page.get_by_role("option", name=option, exact=True).click()
            settle(page, ".st-key-nr_device input")
            seen.append(box.input_value())
            cut = [c for c in clipped(page) if c["key"] == "nr_device"]
            assert not cut, f"device box cut off at {WIDTH} px: {cut}"
        assert len(set(seen)) == len(options), seen
        page.screenshot(path=str(ui.shots / "new_run.png"))


@pytest.mark.parametrize(("run", "shown"), [("done", "0.412"), ("long", "307/350")])
def test_dashboard_header_fits(ui, run, shown):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/dashboard?run={run}", wait_until="networkidle")
        settle(page, ".st-key-run_again button" if run == "done" else ".st-key-run_stop button")
        page.screenshot(path=str(ui.shots / f"dashboard-{run}.png"))
        values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert shown in values, values
        assert not clipped(page), f"cut off at {WIDTH} px: {clipped(page)}"
