"""The Dataset page (``/datasets?name=NAME``) through ``AppTest``: the grid with boxes, problems first and named,
filters by split and class, paging, the charts, and the URL naming the dataset."""

from __future__ import annotations

import re
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from app.dataset_grid import BAD_ID_COLOUR, PAGE_SIZE
from tests.conftest import make_dataset
from tests.dataset_problems import CLEAN, NAMES, PLANTED, make_problem_dataset
from tests.test_app_pages import MAIN

TILE = re.compile(r'<figure class="wb-tile[^"]*" data-item="(\d+)" data-problems="([^"]*)">(.*?)</figure>', re.S)


@pytest.fixture
def datasets(tmp_path, monkeypatch, runs_root):
    """A datasets folder (as ``workbench ui --datasets-dir`` passes it) holding the planted dataset as 'planted'."""
    root = tmp_path / "datasets"
    make_problem_dataset(root / "planted")
    monkeypatch.setenv("WORKBENCH_DATASETS_DIR", str(root))
    return root


def open_datasets(**query) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.session_state["nr_model_source"] = "builtin"
    at.run()
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page("app_pages/datasets.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiles(at: AppTest) -> list[dict]:
    """The grid's tiles in order: the file name, the problem words (data-problems), the boxes' classes and the text."""
    grids = at.get("html")
    if not grids:
        return []
    out = []
    for _, kinds, body in TILE.findall(grids[0].proto.body):
        name = re.search(r'class="wb-name"[^>]*>([^<]*)', body).group(1).split(" · ")[0]
        out.append({
            "stem": name.rsplit("/", 1)[-1].rsplit(".", 1)[0],
            "problems": kinds.split(),
            "boxes": re.findall(r'class="wb-box[^"]*" data-class="([^"]*)"', body),
            "colours": re.findall(r'data-class="([^"]*)"[^>]*border-color:(#[0-9a-f]{6})', body),
            "image": "data:image/jpeg;base64," in body,
            "text": re.sub(r"<[^>]+>", " ", body),
        })  # fmt: skip
    return out


def test_the_grid_draws_boxes_and_lists_label_problems_first_named(datasets):
    at = open_datasets(name="planted")
    shown = tiles(at)
    assert [t["stem"] for t in shown] == list(PLANTED) + [f"clean-{i:02d}" for i in range(CLEAN)]
    for t in shown[: len(PLANTED)]:
        problem, words, _ = PLANTED[t["stem"]]
        assert t["problems"][0] == problem.value and words in t["text"], t
    assert all(not t["problems"] and t["image"] for t in shown[len(PLANTED) :])
    clean = shown[len(PLANTED)]  # clean-00: a cat and a dog box, labelled with their class names
    assert clean["boxes"] == ["cat", "dog"] and ">cat<" in at.get("html")[0].proto.body
    assert next(t for t in shown if t["stem"] == "badid")["boxes"] == ["id 3?", "dog", "id 5?"]
    colours = {name: colour for t in shown for name, colour in t["colours"]}
    assert set(colours) == {*NAMES, "id 3?", "id 5?"} and colours["id 3?"] == colours["id 5?"] == BAD_ID_COLOUR
    assert len({colours[n] for n in NAMES} | {BAD_ID_COLOUR}) == len(NAMES) + 1, colours  # a colour per class
    orphan = shown[0]
    assert not orphan["image"] and orphan["boxes"] == ["dog"] and "no image" in orphan["text"]
    warning = at.warning[0].value
    assert all(p.label in warning for p, _, _ in PLANTED.values()), warning
    assert not at.get("plotly_chart")  # the charts wait until asked for: the grid does not wait for them
    at.button_group(key="ds_view").set_value("Statistics").run()
    assert {c.key for c in at.get("plotly_chart")} == {"chart_ds_counts", "chart_ds_box_sizes", "chart_ds_image_sizes"}
    assert not at.get("html")
    assert at.query_params["name"] == "planted"
    assert list((datasets / ".thumbnails").rglob("*.jpg")), "thumbnails are kept under the datasets folder"


def test_filters_by_class_split_and_problems(datasets):
    at = open_datasets(name="planted")
    at.selectbox(key="ds_class").set_value("bird").run()
    birds = tiles(at)
    assert [t["stem"] for t in birds[:2]] == ["outside", "dup"]
    assert all("bird" in t["boxes"] for t in birds)
    at.selectbox(key="ds_class").set_value("All classes").run()
    at.toggle(key="ds_problems_only").set_value(True).run()
    assert [t["stem"] for t in tiles(at)] == list(PLANTED)
    at.toggle(key="ds_problems_only").set_value(False).run()
    at.selectbox(key="ds_split").set_value("val").run()
    assert [t["stem"] for t in tiles(at)] == ["clean-00", "clean-01", "clean-02"] and not at.warning


def test_pages_of_48(datasets, tmp_path):
    make_dataset(datasets / "big", n_train=2 * PAGE_SIZE + 5, n_val=1)
    at = open_datasets(name="big")
    assert len(tiles(at)) == PAGE_SIZE
    at.number_input(key="ds_page").set_value(3).run()
    assert [t["stem"] for t in tiles(at)] == [f"{i:03d}" for i in range(2 * PAGE_SIZE, 2 * PAGE_SIZE + 5)]
    at.number_input(key="ds_page").set_value(2).run()
    at.selectbox(key="ds_class").set_value("disc").run()  # a filter goes back to the first page
    assert at.number_input(key="ds_page").value == 1 and len(tiles(at)) == PAGE_SIZE
    assert tiles(at)[0]["stem"] == "000"  # an even image: it has every class


def test_path_outside_the_datasets_folder_and_a_name_that_is_not_there(datasets, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(datasets / "planted", elsewhere)
    data = elsewhere / "data.yaml"
    data.write_text(data.read_text().replace(str(datasets / "planted"), str(elsewhere)))
    at = open_datasets(path=str(data))
    assert [t["stem"] for t in tiles(at)][: len(PLANTED)] == list(PLANTED)
    assert at.query_params["path"] == str(data)

    at = open_datasets(name="nope")
    assert any("no dataset named 'nope'" in e.value for e in at.error), [e.value for e in at.error]
    assert at.selectbox(key="ds_name").value == "planted"  # the page still shows one that is there

    at = open_datasets(path=str(tmp_path / "missing.yaml"))
    assert at.error and not tiles(at)


def test_the_selected_dataset_goes_into_the_url(datasets):
    make_dataset(datasets / "other", n_train=2, n_val=1)
    at = open_datasets(name="planted")
    at.selectbox(key="ds_name").set_value("other").run()
    assert at.query_params["name"] == "other" and [t["stem"] for t in tiles(at)] == ["000", "001"]
    at.selectbox(key="ds_name").set_value("Bundled demo").run()
    assert at.query_params["path"].endswith("assets/demo/data.yaml") and len(tiles(at)) == PAGE_SIZE


def test_box_size_chart_keeps_the_smallest_boxes_when_it_thins_out_a_class():
    import numpy as np

    from app.dataset_charts import BOX_POINTS, box_sizes_figure, image_sizes_figure

    rng = np.random.default_rng(0)
    w, h = rng.uniform(20, 200, 20_000), rng.uniform(20, 200, 20_000)
    w[[5, 777, 12_345]] = 0.5  # three boxes under a pixel wide, among 20,000
    cls = np.zeros(20_000, dtype=np.int64)
    cls[::2] = 1
    assert len(box_sizes_figure(["a", "b"], cls, w, h, ["#000000", "#ffffff"]).to_dict()["data"]) == 2
    drawn = box_sizes_figure(["a", "b"], cls, w, h, ["#000000", "#ffffff"])
    sizes = [len(t.x) for t in drawn.data]
    assert all(n <= BOX_POINTS for n in sizes) and [t.name for t in drawn.data] == ["a (10,000)", "b (10,000)"]
    assert sorted(x for t in drawn.data for x in t.x if x < 1) == [0.5, 0.5, 0.5]

    bars = image_sizes_figure({(640, 480): 50, (320, 240): 7, (100, 100): 1}, shown=2)
    assert list(bars.data[0].x) == ["640×480", "320×240", "1 other size"] and list(bars.data[0].y) == [50, 7, 1]
