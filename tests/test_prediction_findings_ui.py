"""The prediction findings in the UI (AppTest): on the dashboard with the other findings, the missing-labels one with
a Show images link; the Dataset page opened by such a link (``?path=&split=&image=...``) shows just those images, in
the link's order, and Show all goes back to the whole split; the Runs page counts them."""

from __future__ import annotations

from urllib.parse import parse_qs

from app import dataset_links
from tests.conftest import make_dataset
from tests.doctor.runs import make_run
from tests.doctor.synthetic_evidence import matrix, tables, write_evidence
from tests.test_app_pages import open_page
from tests.test_dataset_page import open_datasets, tiles
from trainers.run_files import DATA_FILE

RECIPE = {"model": "yolo26n.yaml", "data": "/d/data.yaml", "train": {"epochs": 3}}
BOX = (10.0, 10.0, 50.0, 50.0)


def run_with_evidence(root, data_yaml):
    """A 3-epoch run whose evidence takes squares for circles and has confident boxes on two unlabelled images."""
    run = make_run(root, "seen", RECIPE)
    (run / DATA_FILE).write_text(data_yaml.read_text())
    val = data_yaml.parent / "images" / "val"
    rows = [(str(val / "005.png"), 0, 0.95, BOX), (str(val / "002.png"), 1, 0.9, BOX)]
    write_evidence(run, {e: tables(matrix([40, 20, 8, 8], {(1, 0): 10}), rows) for e in (1, 2, 3)})
    return run


def test_dashboard_lists_the_prediction_findings_and_links_the_missing_label_images(tmp_path, runs_root):
    data = make_dataset(tmp_path / "data")
    run_with_evidence(runs_root, data)
    at = open_page("dashboard", {"run": "seen"})
    doctor = next(e for e in at.expander if e.label.startswith("Doctor:"))
    text = " ".join(m.value for m in doctor.markdown)
    assert "'square' predicted as 'circle' for 50% of its boxes" in text
    assert "Likely missing labels in 2 val images" in text and "005.png" in text and "**Fix:**" in text
    assert not doctor.button  # advice only: no Apply fix for relabelling
    links = [e for e in at.get("page_link") if e.proto.label == "Show images"]
    assert len(links) == 1
    query = parse_qs(links[0].proto.query_string)
    assert links[0].proto.page == "datasets" and query["split"] == ["val"]
    assert query["image"] == [str(data.parent / "images" / "val" / n) for n in ("005.png", "002.png")]


def test_the_runs_page_counts_the_prediction_findings(tmp_path, runs_root):
    from app import run_findings

    data = make_dataset(tmp_path / "data")
    run = run_with_evidence(runs_root, data)
    count = run_findings.findings_count(run)
    assert count.counts["warning"] >= 2  # confused pair, missing labels (recurring in 3 epochs)
    assert run_findings.wait_for_scans()  # the dataset scan's arrival changes the version too: not what is tested
    before = run_findings.version(run)
    write_evidence(run, {4: tables(matrix([40, 20, 8, 8]))})
    assert run_findings.version(run) != before  # new evidence: counted again


def test_a_link_opens_the_dataset_page_on_just_its_images_in_its_order(tmp_path, runs_root, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATASETS_DIR", str(tmp_path / "datasets"))
    data = make_dataset(tmp_path / "data")
    val = data.parent / "images" / "val"
    at = open_datasets(path=str(data), split="val", image=[str(val / "005.png"), str(val / "002.png")])
    assert [t["stem"] for t in tiles(at)] == ["005", "002"]
    assert any("Showing the 2 images the link names (split val)" in i.value for i in at.info)
    assert at.query_params["image"] == [str(val / "005.png"), str(val / "002.png")]  # kept for a reload
    at.button(key="ds_show_all").click().run()
    assert not at.exception and len(tiles(at)) == 8 and "image" not in at.query_params


def test_a_link_to_images_not_in_the_split_says_so_in_one_line(tmp_path, runs_root, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATASETS_DIR", str(tmp_path / "datasets"))
    data = make_dataset(tmp_path / "data")
    at = open_datasets(path=str(data), split="val", image=["/elsewhere/nope.jpg"])
    assert not tiles(at) and not at.exception
    assert any("not in this split: nope.jpg" in i.value for i in at.info)


def test_only_images_matches_by_path_then_real_path_and_keeps_the_filters(tmp_path):
    from app.dataset_view import load_scan

    data = make_dataset(tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    _, scan = load_scan(data, "val")
    val = data.parent / "images" / "val"
    files = [str(tmp_path / "link" / "images" / "val" / "003.png"), str(val / "001.png"), "/x/none.png"]
    shown, absent = dataset_links.only_images(scan, scan.shown(), files)
    assert [scan.items[i].rsplit("/", 1)[-1] for i in shown] == ["003.png", "001.png"] and absent == ["/x/none.png"]
    even = scan.shown(cls=0)  # the class filter still applies
    assert set(dataset_links.only_images(scan, even, files)[0]) <= set(even.tolist())
    assert dataset_links.from_url({"split": "val"}) is None
    assert dataset_links.from_url({"split": ["val"], "image": ["a", "b"]}) == ("val", ("a", "b"))


def test_the_dashboard_diagnoses_again_when_evidence_lands_after_its_epoch(tmp_path, runs_root):
    """The trainer writes a validation's evidence just after its epoch event: the findings must not wait for the next
    epoch (they are cached on the epochs and the evidence folder)."""
    run = make_run(runs_root, "late", RECIPE)
    write_evidence(run, {1: tables(matrix([40, 20, 8, 8]))})
    at = open_page("dashboard", {"run": "late"})
    doctor = next(e for e in at.expander if e.label.startswith("Doctor:"))
    assert "predicted as" not in " ".join(m.value for m in doctor.markdown)
    write_evidence(run, {3: tables(matrix([40, 20, 8, 8], {(1, 0): 10}))})
    at.run()
    doctor = next(e for e in at.expander if e.label.startswith("Doctor:"))
    assert "'square' predicted as 'circle'" in " ".join(m.value for m in doctor.markdown)
