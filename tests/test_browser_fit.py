"""Text that fits its box at a 1400 x 900 window, in headless Chromium (issue 18 item 5, defects seen there): the
New run lr0 box showed "0.0100" of 0.01000, the recipe panel cut long lines (a data path) at its edge, and the
Resume button's tooltip must stay inside the window.

An ``<input>``'s text is measured with its own font against its content box; a code block is cut when a box in it
scrolls sideways (``scrollWidth > clientWidth``).
"""

from __future__ import annotations

import shutil
import time

import pytest

from app import recipe_form
from tests.conftest import wait_for
from tests.test_browser_layout import HEIGHT, WIDTH, completed_run, settle
from tests.ui_server import WorkbenchUI, chromium_page
from trainers.runs.folder import create_run_dir
from trainers.runs.status import write_status

pytestmark = pytest.mark.browser  # synthetic runs: nothing trains

JS_CUT = r"""() => {
  const keyOf = el => { for (let p = el; p; p = p.parentElement) {
      const k = [...p.classList].find(c => c.startsWith('st-key-')); if (k) return k.slice(7); } return '?'; };
  const ctx = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const input of document.querySelectorAll('[data-testid="stNumberInput"] input')) {
    const s = getComputedStyle(input);
    ctx.font = `${s.fontStyle} ${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
    const need = ctx.measureText(input.value).width;
    const have = input.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    if (need > have + 1) out.push({what: 'number', key: keyOf(input), text: input.value, need, have});
  }
  for (const code of document.querySelectorAll('[data-testid="stCode"]')) {
    for (const el of [code, ...code.querySelectorAll('*')]) {
      if (el.scrollWidth > el.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)) {
        const line = [...el.innerText.split('\n')].sort((a, b) => b.length - a.length)[0];
        out.push({what: 'code', key: keyOf(code), text: line, need: el.scrollWidth, have: el.clientWidth}); break; }
    }
  }
  return out;
}"""


def cut(page) -> list[dict]:
    return page.evaluate(JS_CUT)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    runs = tmp / "runs"
    completed_run(runs, "done")
    # a run that never finished an epoch, with a long name: Resume is refused and says why in its tooltip
    never = create_run_dir(runs, "coco80-yolo11n-20261207-153012-a-long-run-name-from-a-sweep-variant")
    write_status(never, status="failed", epoch=0, epochs=3, error="RuntimeError: CUDA out of memory")
    data = tmp / "a-dataset-folder-whose-name-is-long-enough-to-reach-the-edge" / "shapes"
    shutil.copytree(recipe_form.DEMO_DATA.parent, data)
    (runs / "done" / "recipe.yaml").write_text(f"model: yolo26n.yaml\ndata: {data / 'data.yaml'}\n")
    server = WorkbenchUI(runs).start()
    try:
        server.data, server.never, server.shots = data / "data.yaml", never.name, tmp
        yield server
    finally:
        server.stop()


def test_new_run_numbers_and_recipe_lines_are_whole(ui):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/", wait_until="networkidle")
        settle(page, ".st-key-nr_lr0 input")
        page.locator(".st-key-nr_data_source").get_by_text("A data.yaml path").click()
        settle(page, ".st-key-nr_data_path input")
        page.locator(".st-key-nr_data_path input").fill(str(ui.data))
        page.locator(".st-key-nr_data_path input").press("Enter")
        wait_for(lambda: str(ui.data) in page.locator('[data-testid="stCode"]').first.inner_text(), 60, 0.25,
                 "the recipe with the long data path")  # fmt: skip
        settle(page, ".st-key-new_run_start button")
        page.screenshot(path=str(ui.shots / "new_run_fit.png"), full_page=True)
        assert page.locator(".st-key-nr_lr0 input").input_value() == "0.01"
        assert not cut(page), f"cut off at {WIDTH} px: {cut(page)}"


def test_the_recipe_on_the_dashboard_is_whole(ui):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/dashboard?run=done", wait_until="networkidle")
        settle(page, ".st-key-run_again button")
        page.get_by_text("Recipe", exact=True).click()
        recipe = page.locator('[data-testid="stCode"]', has_text="model: yolo26n.yaml")
        wait_for(lambda: recipe.count() and recipe.first.is_visible(), 30, 0.25, "the recipe expanded")
        assert str(ui.data) in recipe.first.inner_text()
        assert not [c for c in cut(page) if c["what"] == "code" and "data:" in c["text"]], cut(page)


def test_the_resume_tooltip_stays_in_the_window(ui):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/dashboard?run={ui.never}", wait_until="networkidle")
        settle(page, ".st-key-run_resume button")
        page.locator(".st-key-run_resume").hover()
        wait_for(lambda: page.locator('[data-testid="stTooltipContent"]').count(), 30, 0.1, "the Resume tooltip")
        time.sleep(0.5)  # placed, then shifted into view
        box = page.evaluate(
            """() => { const r = document.querySelector('[data-testid="stTooltipContent"]').getBoundingClientRect();
                       return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }"""
        )
        page.screenshot(path=str(ui.shots / "resume_tooltip.png"))
        assert box["left"] >= 0 and box["top"] >= 0 and box["right"] <= WIDTH and box["bottom"] <= HEIGHT, box
        assert "never finished an epoch" in page.locator('[data-testid="stTooltipContent"]').inner_text()
