"""Images ultralytics drops as corrupt or rewrites: our verdict equals ultralytics' verify_image_label, per image."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.fake_dataset import write
from trainers.datasets.corrupt_images import DROPPED, REPAIRED, find_corrupt_images, image_notes, image_verdict
from trainers.datasets.data_yaml import load_dataset
from trainers.datasets.files import check_images

REPO = Path(__file__).resolve().parents[1]
# Once ultralytics is imported (another test may have), its patched Image.open replaces PIL's process-wide and turns
# "cannot identify image file" into a failed pi_heif import: the same verdict, another reason.
UNIDENTIFIED = ("cannot identify image file", "No module named 'pi_heif'")


def _encoded(fmt: str, size: tuple[int, int] = (64, 48), noisy: bool = True, **kwargs) -> bytes:
    import numpy as np
    from PIL import Image

    if noisy:  # entropy-coded data all the way to the end: a cut anywhere lands inside the image data
        pixels = (np.random.default_rng(0).random((size[1], size[0], 3)) * 255).astype("uint8")
        im = Image.fromarray(pixels)
    else:  # vertical stripes: the decoder has every pixel before the last bytes
        im = Image.new("RGB", size, (120, 80, 40))
        for x in range(0, size[0], 4):
            for y in range(size[1]):
                im.putpixel((x, y), (x * 3, y * 5, 0))
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _cases() -> dict[str, bytes]:
    jpg, png = _encoded("JPEG"), _encoded("PNG")
    striped = _encoded("JPEG", noisy=False)
    return {
        "good.png": png,
        "good.jpg": jpg,
        "truncated.jpg": jpg[: len(jpg) // 2],  # passes verify(); the decode ultralytics tries to restore it fails
        "header_cut.jpg": jpg[:300],  # verify() itself fails
        "no_end_marker.jpg": striped[:-2],  # decodes: ultralytics restores it in place
        "no_end_marker_cut_data.jpg": jpg[:-2],  # the last entropy bytes are missing too: dropped
        "trailing_bytes.jpg": striped + b"\0" * 16,  # what some cameras and downloads write after FF D9
        "tiny_5x5.png": _encoded("PNG", size=(5, 5)),
        "thin_40x9.bmp": _encoded("BMP", size=(40, 9)),
        "zero_bytes.jpg": b"",
        "text.jpg": b"this is not an image",
        "gif_saved_as.jpg": _encoded("GIF"),  # a real image, but not a format ultralytics trains on
        "truncated.png": png[: len(png) // 2],
    }


EXPECTED = {
    "good.png": None,
    "good.jpg": None,
    "truncated.jpg": DROPPED,
    "header_cut.jpg": DROPPED,
    "no_end_marker.jpg": REPAIRED,
    "no_end_marker_cut_data.jpg": DROPPED,
    "trailing_bytes.jpg": REPAIRED,
    "tiny_5x5.png": DROPPED,
    "thin_40x9.bmp": DROPPED,
    "zero_bytes.jpg": DROPPED,
    "text.jpg": DROPPED,
    "gif_saved_as.jpg": DROPPED,
    "truncated.png": DROPPED,
}


def _ultralytics_verdict(path: Path) -> str | None:
    from ultralytics.data.utils import verify_image_label

    result = verify_image_label((str(path), str(path.with_suffix(".txt")), "", False, 1, 0, 0, False))
    if result[0] is None:  # "ignoring corrupt image/label": the image is left out of the label cache
        return DROPPED
    return REPAIRED if "corrupt JPEG restored and saved" in result[-1] else None


def test_verdicts_equal_ultralytics_verify_image_label(tmp_path):
    cases = _cases()
    for folder in ("ours", "theirs"):  # ultralytics rewrites the files it restores: give it its own copies
        for name, data in cases.items():
            write(tmp_path / folder / name, data)
    before = {name: (tmp_path / "ours" / name).read_bytes() for name in cases}
    ours = {Path(p.path).name: p for p in find_corrupt_images(sorted(map(str, (tmp_path / "ours").iterdir()))).problems}

    theirs = {name: _ultralytics_verdict(tmp_path / "theirs" / name) for name in cases}
    mine = {name: ours[name].action if name in ours else None for name in cases}
    assert mine == theirs == EXPECTED
    assert {name: (tmp_path / "ours" / name).read_bytes() for name in cases} == before, "we never write"
    # what ultralytics restored now passes, as it will on the next run
    assert image_verdict(tmp_path / "theirs" / "no_end_marker.jpg") is None
    assert (tmp_path / "theirs" / "no_end_marker.jpg").read_bytes() != cases["no_end_marker.jpg"]


def test_reasons_are_ultralytics_words_without_the_path(tmp_path):
    cases = _cases()
    for name in ("truncated.jpg", "tiny_5x5.png", "gif_saved_as.jpg", "text.jpg", "no_end_marker.jpg"):
        write(tmp_path / name, cases[name])
    reason = {Path(p.path).name: p.reason for p in find_corrupt_images(sorted(tmp_path.iterdir())).problems}
    assert reason["truncated.jpg"].startswith("image file is truncated (")
    assert reason["tiny_5x5.png"] == "image size (5, 5) <10 pixels"
    assert reason["gif_saved_as.jpg"] == "Invalid image format GIF"
    assert reason["text.jpg"] in UNIDENTIFIED
    assert reason["no_end_marker.jpg"].startswith("JPEG does not end with its end marker (FF D9)")


def test_the_first_bytes_check_lets_a_truncated_jpeg_through(tmp_path):
    # why this module exists: check_images (the runner's refusal) reads 12 bytes, so only a full check finds these
    cases = _cases()
    for name in ("good.jpg", "truncated.jpg", "no_end_marker.jpg"):
        write(tmp_path / "images/train" / name, cases[name])
    write(tmp_path / "images/val/good.jpg", cases["good.jpg"])
    ds = load_dataset(write(tmp_path / "data.yaml", "path: .\ntrain: images/train\nval: images/val\nnames: [a]\n"))
    assert check_images(ds, "train") == 3
    scan = find_corrupt_images(sorted((tmp_path / "images/train").iterdir()))
    assert [(Path(p.path).name, p.action) for p in scan.problems] == [
        ("no_end_marker.jpg", REPAIRED),
        ("truncated.jpg", DROPPED),
    ]
    notes = image_notes(scan, tmp_path)
    assert notes[0].startswith(
        "1 image ultralytics drops as corrupt (trained without it and its boxes): images/train/truncated.jpg "
        "(image file is truncated ("
    )
    assert notes[1] == (
        "1 JPEG without the end marker FF D9 that ultralytics rewrites in place before training: "
        "images/train/no_end_marker.jpg"
    )


def test_limit_and_progress(tmp_path):
    good = _encoded("PNG", size=(16, 16))
    paths = [str(write(tmp_path / f"{i:03d}.png", good)) for i in range(130)]
    write(tmp_path / "999.jpg", b"")
    paths.append(str(tmp_path / "999.jpg"))
    calls = []
    scan = find_corrupt_images(paths, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(64, 131), (128, 131), (131, 131)]
    assert scan.complete and scan.checked == 131 and [p.action for p in scan.problems] == [DROPPED]
    (problem,) = scan.to_dict()["problems"]
    assert (problem["path"], problem["action"], problem["reason"] in UNIDENTIFIED) == (paths[-1], DROPPED, True)
    partial = find_corrupt_images(paths, limit=100)
    assert (partial.checked, partial.total, partial.complete, partial.problems) == (100, 131, False, [])
    assert image_notes(partial) == ["images checked: the first 100 of 131"]
    assert image_notes(scan, tmp_path) == [
        f"1 image ultralytics drops as corrupt (trained without it and its boxes): 999.jpg ({problem['reason']})"
    ]


def test_a_jpeg_ultralytics_cannot_rewrite_is_dropped(tmp_path, monkeypatch):
    # ultralytics writes the restored JPEG to a temporary file beside it: in a read-only folder that raises, and the
    # image is dropped. (Simulated: the tests run as root, who can write anywhere.)
    write(tmp_path / "a.jpg", _cases()["no_end_marker.jpg"])
    assert image_verdict(tmp_path / "a.jpg").action == REPAIRED
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    verdict = image_verdict(tmp_path / "a.jpg")
    assert verdict.action == DROPPED and "cannot write its folder" in verdict.reason


def test_module_does_not_import_pil_until_called():
    code = (
        "import sys, trainers.datasets.corrupt_images; "
        "print(sorted({'PIL', 'torch', 'ultralytics'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
