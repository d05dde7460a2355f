"""Telemetry writer, incremental reader and schema checks (trainers/telemetry.py)."""

from __future__ import annotations

import json
import math
import pickle
import random
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from trainers.telemetry.events import SCHEMA_VERSION, TelemetryTail, TelemetryWriter, read_events
from trainers.telemetry.schema import validate_event

NAMES = ["cat", "dog", "bird"]


def valid_events() -> list[dict]:
    """One valid event of each documented type, as the runner would emit them (without v/t)."""
    per_class = [
        {"id": i, "name": n, "precision": 0.5, "recall": 0.25, "f1": 1 / 3, "ap50": 0.4, "ap": 0.2, "present": i != 2}
        for i, n in enumerate(NAMES)
    ]
    return [
        {
            "event": "run_start",
            "recipe": {"model": "yolo26n.yaml", "data": "data.yaml", "train": {"epochs": 3}},
            "names": NAMES,
            "param_groups": ["weight", "bn", "bias"],
            "versions": {"workbench": "0.1.0", "ultralytics": "8.4.190", "torch": "2.15.0", "python": "3.11.7"},
            "device": "cpu",
            "pid": 1234,
            "epochs": 3,
            "start_epoch": 1,
            "resumed": False,
            "world_size": 1,
        },
        {"event": "freeze", "epoch": 1, "layers": [0, 1, 2], "params": 1000},
        {
            "event": "step",
            "epoch": 1,
            "step": 1,
            "lr": {"weight": 0.01, "bn": 0.01, "bias": 0.1},
            "grad_norm": 12.5,
            "grad_norms": {"weight": 12.0, "bn": 1.0, "bias": 3.0},
            "clipped": True,
            "max_norm": 10.0,
            "loss": {"box": 1.5, "cls": 2.0, "dfl": 1.1},
        },
        {
            "event": "epoch",
            "epoch": 1,
            "final_eval": False,
            "metrics": {"metrics/mAP50(B)": 0.4, "val/box_loss": 1.2, "train/cls_loss": 2.0},
            "per_class": per_class,
            "mean_f1": 0.33,
            "fitness": 0.2,
            "best_fitness": 0.2,
            "best_saved": True,
            "params": {"trainable": 2000, "frozen": 1000},
            "lr": {"weight": 0.01, "bn": 0.01, "bias": 0.1},
            "epoch_time": 0.8,
        },
        {"event": "unfreeze", "epoch": 2, "layers": [0, 1, 2], "params": 1000},
        {
            "event": "run_end",
            "status": "completed",
            "best_epoch": 1,
            "best_metric": {"name": "metrics/mAP50-95(B)", "value": 0.2},
            "paths": {"best": "/r/weights/best.pt", "last": "/r/weights/last.pt", "results": "/r/results.csv"},
            "error": None,
            "traceback": None,
        },
    ]


def write_log(path: Path, events: list[dict]) -> list[dict]:
    with TelemetryWriter(path) as w:
        return [w.emit(ev["event"], **{k: v for k, v in ev.items() if k != "event"}) for ev in events]


# ---- writer --------------------------------------------------------------------------------------------------------
def test_writer_adds_version_type_time_and_flushes_each_line(tmp_path):
    path = tmp_path / "telemetry.jsonl"
    w = TelemetryWriter(path)
    rec = w.emit("step", epoch=1, step=1, loss={"box": 1.0})
    # Visible to a reader before close: every event is on disk when emit returns.
    assert path.read_bytes().endswith(b"\n")
    assert json.loads(path.read_text()) == rec
    assert rec["v"] == SCHEMA_VERSION and rec["event"] == "step" and isinstance(rec["t"], float)
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.emit("step")


def test_writer_appends_to_existing_log_and_terminates_a_torn_last_line(tmp_path):
    path = tmp_path / "telemetry.jsonl"
    path.write_bytes(b'{"v":1,"event":"run_start","t":1.0}\n{"v":1,"event":"st')  # a writer killed mid-line
    with TelemetryWriter(path) as w:
        w.emit("run_end", status="failed")
    with pytest.warns(RuntimeWarning, match="byte offset 36"):
        events, _ = read_events(path)
    # The fragment is one corrupt line of its own; the event written after it survives.
    assert [e["event"] for e in events] == ["run_start", "run_end"]


def test_writer_converts_numpy_scalars_arrays_and_non_finite_floats(tmp_path):
    rec = write_log(
        tmp_path / "t.jsonl",
        [
            {
                "event": "epoch",
                "a": np.float32(0.5),
                "b": np.int64(7),
                "c": np.bool_(True),
                "nan": float("nan"),
                "inf": -math.inf,
                "np_nan": np.float64("nan"),
                "arr": np.array([1.0, np.nan]),
                "nested": {1: [np.float32(np.inf), (2, 3)]},
                "path": tmp_path / "x",
                "odd": Fraction(1, 3),
            }
        ],
    )[0]
    line = (tmp_path / "t.jsonl").read_text()
    assert "NaN" not in line and "Infinity" not in line
    on_disk = json.loads(line)
    assert on_disk == rec
    assert on_disk["a"] == 0.5 and on_disk["b"] == 7 and on_disk["c"] is True
    assert on_disk["nan"] is None and on_disk["inf"] is None and on_disk["np_nan"] is None
    assert on_disk["arr"] == [1.0, None]
    assert on_disk["nested"] == {"1": [None, [2, 3]]}
    assert on_disk["path"] == str(tmp_path / "x") and on_disk["odd"] == "1/3"


def test_writer_converts_torch_tensors(tmp_path):
    import torch

    rec = write_log(
        tmp_path / "t.jsonl",
        [{"event": "step", "grad_norm": torch.tensor(3.5), "n": torch.tensor(float("nan")), "vec": torch.ones(2)}],
    )
    assert rec[0]["grad_norm"] == 3.5 and rec[0]["n"] is None and rec[0]["vec"] == [1.0, 1.0]


def test_writer_rejects_reserved_fields(tmp_path):
    with TelemetryWriter(tmp_path / "t.jsonl") as w, pytest.raises(ValueError, match="reserved|set by the writer"):
        w.emit("step", v=2)


def test_writer_survives_pickling_for_ddp_workers(tmp_path):
    path = tmp_path / "t.jsonl"
    w = TelemetryWriter(path)
    w.emit("run_start")
    clone = pickle.loads(pickle.dumps(w))  # as cloudpickle does when ultralytics ships the trainer to workers
    clone.emit("step", step=1)
    w.emit("step", step=2)
    assert [e.get("step") for e in read_events(path)[0]] == [None, 1, 2]


def _append_many(path: str, who: int, n: int) -> None:
    rng = random.Random(who)
    with TelemetryWriter(path) as w:
        for i in range(n):
            w.emit("step", who=who, i=i, pad="é" * rng.randint(0, 30000))  # lines far larger than a pipe buffer


def test_several_writers_on_one_log_never_interleave_inside_a_line(tmp_path):
    """A resumed run, or the launcher closing a killed run, appends to a log another writer used: lines stay whole."""
    import multiprocessing

    path = tmp_path / "t.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), who, 200)) for who in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        events, off = read_events(path)
    assert off == path.stat().st_size
    for who in range(4):
        assert [e["i"] for e in events if e["who"] == who] == list(range(200))


def test_unicode_names_round_trip(tmp_path):
    path = tmp_path / "t.jsonl"
    write_log(path, [{"event": "run_start", "names": ["猫", "chien\n2", "\u2028"]}])
    assert read_events(path)[0][0]["names"] == ["猫", "chien\n2", "\u2028"]
    assert path.read_bytes().count(b"\n") == 1  # newlines inside strings are escaped: one event, one line


# ---- reader --------------------------------------------------------------------------------------------------------
def test_read_events_incremental_offsets(tmp_path):
    path = tmp_path / "t.jsonl"
    assert read_events(path) == ([], 0)  # not written yet
    write_log(path, valid_events()[:2])
    first, off = read_events(path)
    assert [e["event"] for e in first] == ["run_start", "freeze"] and off == path.stat().st_size
    assert read_events(path, off) == ([], off)
    write_log(path, valid_events()[2:3])
    more, off2 = read_events(path, off)
    assert [e["event"] for e in more] == ["step"] and off2 == path.stat().st_size


def test_truncated_last_line_is_left_until_completed(tmp_path):
    path = tmp_path / "t.jsonl"
    good = b'{"v":1,"event":"run_start","t":1.0}\n'
    half = b'{"v":1,"event":"step","t":2.0,"lo'
    path.write_bytes(good + half)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a half line is not corrupt: no warning
        events, off = read_events(path)
    assert [e["event"] for e in events] == ["run_start"] and off == len(good)
    with open(path, "ab") as f:
        f.write(b'ss":{"box":1.0}}\n')
    events, off = read_events(path, off)
    assert events == [{"v": 1, "event": "step", "t": 2.0, "loss": {"box": 1.0}}]
    assert off == path.stat().st_size


def test_corrupt_middle_line_is_skipped_with_a_warning_naming_its_offset(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [b'{"v":1,"event":"run_start","t":1.0}\n', b"{not json\n", b"[1, 2]\n", b'{"v":1,"event":"step","t":2.0}\n']
    path.write_bytes(b"".join(lines))
    with pytest.warns(RuntimeWarning) as record:
        events, off = read_events(path)
    assert [e["event"] for e in events] == ["run_start", "step"]
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert f"byte offset {len(lines[0])}" in messages[0]
    assert f"byte offset {len(lines[0]) + len(lines[1])}" in messages[1]
    assert off == path.stat().st_size


def test_invalid_utf8_line_is_corrupt_not_fatal(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"event":"\xff\xfe"}\n{"v":1,"event":"step","t":2.0}\n')
    with pytest.warns(RuntimeWarning, match="byte offset 0"):
        events, _ = read_events(path)
    assert [e["event"] for e in events] == ["step"]


def test_unknown_fields_and_event_types_are_kept_for_readers_to_ignore(tmp_path):
    path = tmp_path / "t.jsonl"
    write_log(path, [{"event": "run_start", "future_field": {"x": 1}}, {"event": "gpu_memory", "bytes": 5}])
    events, _ = read_events(path)
    assert events[0]["future_field"] == {"x": 1}
    assert events[1]["event"] == "gpu_memory"
    assert validate_event(events[1]) == []  # unknown types are allowed by the contract


def test_blank_lines_are_ignored(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'\n{"v":1,"event":"step","t":2.0}\n\r\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        events, off = read_events(path)
    assert len(events) == 1 and off == path.stat().st_size


def test_chunked_writes_read_the_same_as_whole_file_for_many_random_splits(tmp_path):
    """Property: however the bytes arrive, polling between writes yields exactly the events of the whole file."""
    source = tmp_path / "source.jsonl"
    rng = random.Random(1234)
    events = valid_events()
    events += [
        {"event": "step", "epoch": 1, "step": i, "loss": {"box": rng.random(), "name": "ünïcødé 🐈" * (i % 3)}}
        for i in range(2, 40)
    ]
    write_log(source, events)
    data = source.read_bytes()
    whole, whole_off = read_events(source)
    assert len(whole) == len(events) and whole_off == len(data)

    for trial in range(200):
        path = tmp_path / f"chunked-{trial}.jsonl"
        path.write_bytes(b"")
        tail = TelemetryTail(path)
        got: list[dict] = []
        pos = 0
        while pos < len(data):
            # Mix 1-byte dribbles (split UTF-8 sequences and JSON tokens) with large blocks spanning many lines.
            size = rng.choice([1, 2, 3, rng.randint(1, 64), rng.randint(1, 2000)])
            with open(path, "ab") as f:
                f.write(data[pos : pos + size])
            pos += size
            new = tail.poll()
            assert tail.offset <= pos
            got.extend(new)
        assert got == whole == tail.events
        assert tail.offset == len(data)
        path.unlink()


def test_tail_keeps_all_events_and_starts_over_if_the_file_is_replaced(tmp_path):
    path = tmp_path / "t.jsonl"
    tail = TelemetryTail(path)
    assert tail.poll() == [] and tail.offset == 0
    write_log(path, valid_events()[:3])
    assert len(tail.poll()) == 3 and tail.poll() == []
    path.unlink()
    write_log(path, valid_events()[:1])
    new = tail.poll()
    assert [e["event"] for e in new] == ["run_start"] and len(tail.events) == 1


# ---- schema --------------------------------------------------------------------------------------------------------
def test_every_documented_event_validates(tmp_path):
    path = tmp_path / "t.jsonl"
    write_log(path, valid_events())
    events, _ = read_events(path)
    assert [validate_event(ev, names=NAMES) for ev in events] == [[]] * len(events)


@pytest.mark.parametrize(
    ("event", "change", "problem"),
    [
        ("run_start", {"names": "cat"}, "run_start.names: must be list[str]"),
        ("run_start", {"resumed": 1}, "run_start.resumed: must be bool"),
        ("run_start", {"start_epoch": 0}, "start_epoch: must be >= 1"),
        ("run_start", {"versions": {"torch": "2"}}, "run_start.versions.workbench: required"),
        ("step", {"epoch": None}, "step.epoch: must be int"),
        ("step", {"lr": {"weight": "0.1"}}, "step.lr: must be {str: number|null}"),
        ("step", {"clipped": "yes"}, "step.clipped: must be bool"),
        ("epoch", {"per_class": [{"id": 0}]}, "epoch.per_class[0].name: required"),
        ("epoch", {"params": {"trainable": 1.5, "frozen": 0}}, "epoch.params.trainable: must be int"),
        ("epoch", {"best_saved": None}, "epoch.best_saved: must be bool"),
        ("freeze", {"layers": [0.5]}, "freeze.layers: must be list[int]"),
        ("run_end", {"status": "done"}, "run_end.status: must be one of"),
        ("run_end", {"best_metric": {"name": "x"}}, "run_end.best_metric.value: required"),
        ("run_end", {"traceback": "boom"}, "run_end.traceback: must be list[str]|null"),
    ],
)
def test_schema_problems_name_the_field(event, change, problem):
    ev = next(e for e in valid_events() if e["event"] == event)
    ev = {"v": 1, "t": 1.0, **ev, **change}
    problems = validate_event(ev)
    assert any(problem in p for p in problems), problems


def test_schema_requires_common_fields_and_every_class_in_per_class():
    assert "step.t: required (number)" in validate_event({"v": 1, "event": "step"})
    assert "run_end.v: must be 1, got 2" in validate_event({"v": 2, "event": "run_end", "t": 0.0})
    epoch = {"v": 1, "t": 1.0, **next(e for e in valid_events() if e["event"] == "epoch")}
    epoch["per_class"] = epoch["per_class"][:2]  # a class with no labels in val dropped
    assert any("must list every class" in p for p in validate_event(epoch, names=NAMES))
    assert validate_event([1]) == ["event: must be a JSON object, got list"]
    missing = validate_event({"v": 1, "t": 1.0, "event": "freeze"})
    assert sorted(missing) == [
        "freeze.epoch: required (int)",
        "freeze.layers: required (list[int])",
        "freeze.params: required (int)",
    ]


def test_null_is_accepted_where_a_nan_was_written():
    step = {"v": 1, "t": 1.0, **next(e for e in valid_events() if e["event"] == "step")}
    step.update(grad_norm=None, grad_norms={"weight": None}, loss={"box": None}, max_norm=None)
    assert validate_event(step) == []
