"""The Dataset page in headless Chromium, on a dataset imported with ``workbench import`` (issue 18, item 3): the
images are drawn with their boxes over them where the labels put them, each box labelled with its class name, and the
label problems planted in the import come first, named under their image."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import REPO, wait_for
from tests.export_zips import NAMES, roboflow_zip
from tests.test_browser_layout import settle
from tests.ui_server import WorkbenchUI, chromium_page

pytestmark = pytest.mark.browser  # nothing trains
WIDTH, HEIGHT = 1400, 1100
# Planted in the imported train split, in the order the page must list them (worst first).
PLANTED = [
    ("orphan", "orphan_label", "label file without an image"),
    ("train_010", "corrupt_image", "JPEG without its end marker"),
    ("train_020", "class_id", "class id 4 is out of range (0-3)"),  # ids from 1
    ("train_030", "empty_label", "empty label file"),
    ("train_040", "duplicate_box", "1 duplicate box"),
]

JS_TILES = r"""() => [...document.querySelectorAll('.st-key-ds_grid .wb-tile')].map(tile => {
  const img = tile.querySelector('img');
  const pic = tile.querySelector('.wb-pic').getBoundingClientRect();
  return {
    name: tile.querySelector('.wb-name').textContent.split(' · ')[0],
    problems: tile.dataset.problems.split(' ').filter(Boolean),
    text: tile.querySelector('figcaption').innerText,
    image: img ? {loaded: img.complete && img.naturalWidth > 0, w: img.getBoundingClientRect().width,
                  h: img.getBoundingClientRect().height} : null,
    pic: {x: pic.x, y: pic.y, w: pic.width, h: pic.height},
    boxes: [...tile.querySelectorAll('.wb-box')].map(b => {
      const r = b.getBoundingClientRect(), tag = b.querySelector('.wb-tag');
      return {cls: b.dataset.class, x: r.x - pic.x, y: r.y - pic.y, w: r.width, h: r.height,
              colour: getComputedStyle(b).borderTopColor, tag: tag ? tag.innerText : null,
              tagShown: tag ? tag.getBoundingClientRect().width > 0 : false};
    }),
  };
})"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dataset_page")
    datasets = tmp / "datasets"
    imported = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "import", str(roboflow_zip(tmp / "shapes.zip")),
         "--datasets-dir", str(datasets), "--name", "shapes"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]
    train = datasets / "shapes" / "train"
    (train / "labels" / "orphan.txt").write_text("1 0.5 0.5 0.3 0.3\n")
    cut = train / "images" / "train_010.jpg"
    cut.write_bytes(cut.read_bytes()[:-200])
    bad = train / "labels" / "train_020.txt"
    bad.write_text("4" + bad.read_text()[1:])
    (train / "labels" / "train_030.txt").write_text("")
    dup = train / "labels" / "train_040.txt"
    dup.write_text(dup.read_text() + dup.read_text().splitlines()[0] + "\n")
    server = WorkbenchUI(tmp / "runs", extra=("--datasets-dir", str(datasets))).start()
    try:
        server.train, server.shots = train, tmp
        yield server
    finally:
        server.stop()


def test_images_are_drawn_with_their_boxes_and_problems_come_first(ui):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/datasets?name=shapes", wait_until="networkidle")
        settle(page, ".st-key-ds_grid .wb-tile")
        wait_for(lambda: all(t["image"] is None or t["image"]["loaded"] for t in page.evaluate(JS_TILES)), 30, 0.25,
                 "every thumbnail decoded by the browser")  # fmt: skip
        page.screenshot(path=str(ui.shots / "dataset_page.png"))
        tiles = page.evaluate(JS_TILES)

    assert len(tiles) == 48  # 48 images and an orphan label file: a page of 48
    stems = [t["name"].rsplit("/", 1)[-1].rsplit(".", 1)[0] for t in tiles]
    assert stems[: len(PLANTED)] == [stem for stem, _, _ in PLANTED], stems[:8]
    for tile, (stem, problem, words) in zip(tiles, PLANTED, strict=False):
        assert tile["problems"][0] == problem and words in tile["text"], (stem, tile["text"])
    assert not any(t["problems"] for t in tiles[len(PLANTED) :])  # the rest are clean

    # A clean image: drawn, and each box where its label row puts it, with its class name on it.
    drawn = 0
    for tile, stem in zip(tiles, stems, strict=True):
        if tile["problems"]:
            continue
        assert tile["image"]["loaded"] and tile["image"]["w"] > 150, tile["image"]
        label = ui.train / "labels" / f"{stem}.txt"  # none: a background image
        rows = [line.split() for line in label.read_text().splitlines() if line] if label.exists() else []
        assert [b["cls"] for b in tile["boxes"]] == [NAMES[int(r[0])] for r in rows]
        size = tile["pic"]["w"]
        with Image.open(ui.train / "images" / f"{stem}.jpg") as im:
            assert abs(tile["pic"]["h"] - size * im.height / im.width) < 1.5
        for box, row in zip(tile["boxes"], rows, strict=True):
            x, y, w, h = (float(v) for v in row[1:])
            x0, x1 = max(0, x - w / 2) * size, min(1, x + w / 2) * size  # drawn clipped to the image
            y0, y1 = max(0, y - h / 2) * tile["pic"]["h"], min(1, y + h / 2) * tile["pic"]["h"]
            seen = (box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"])
            assert max(abs(a - b) for a, b in zip(seen, (x0, y0, x1, y1), strict=True)) < 1.5, (stem, box, row)
            assert box["tag"] == box["cls"] and box["tagShown"]
            drawn += 1
    assert drawn > 100
    colours = {b["cls"]: b["colour"] for t in tiles for b in t["boxes"] if b["cls"] in NAMES}
    assert len(set(colours.values())) == len(NAMES), colours  # a colour per class

    orphan, bad = tiles[0], tiles[2]
    assert orphan["image"] is None and [b["cls"] for b in orphan["boxes"]] == ["square"]
    assert bad["boxes"][0]["cls"] == "id 4?"


def test_only_problems_and_a_class_filter_in_the_browser(ui):
    with chromium_page(width=WIDTH, height=HEIGHT) as page:
        page.goto(f"{ui.url}/datasets?name=shapes", wait_until="networkidle")
        settle(page, ".st-key-ds_grid .wb-tile")
        page.locator(".st-key-ds_problems_only").get_by_text("Only images with problems").click()
        wait_for(lambda: len(page.evaluate(JS_TILES)) == len(PLANTED), 30, 0.25, "only the planted problems")
        page.locator(".st-key-ds_problems_only").get_by_text("Only images with problems").click()
        page.locator(".st-key-ds_class input").click()
        page.get_by_role("option", name="cross", exact=True).click()
        wait_for(lambda: 0 < len(page.evaluate(JS_TILES)) < 48, 30, 0.25, "the images with a cross")
        settle(page, ".st-key-ds_grid .wb-tile")
        tiles = page.evaluate(JS_TILES)
        page.screenshot(path=str(ui.shots / "dataset_page_cross.png"))
    assert all(any(b["cls"] == "cross" for b in t["boxes"]) for t in tiles)
