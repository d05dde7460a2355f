"""trainers/telemetry/steps/ (the step store) against a brute-force numpy oracle on the raw rows.

Small roll-up levels (4, 16, 64) and small segments make every boundary (bucket, segment, roll-up tier, resume)
happen many times in a few thousand rows. The oracle keeps every row appended per attempt and applies supersede
itself; everything the reader returns (raw rows, roll-up buckets at every level, series, summaries) is compared to
numpy computed on those rows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests.conftest import REPO
from trainers.telemetry.steps import (
    ResumeInfo,
    Series,
    StepStore,
    StepWriter,
    compaction,  # where the compaction fault points are
    layout,
    pieces,
    resume_info,
)
from trainers.telemetry.steps import store as store_module

LEVELS = (4, 16, 64)
COLS = {
    "lr/a": "float64",
    "gn": "float32",
    "gn/x": "float32",
    "loss/box": "float32",
    "clipped": "bool",
    "max_norm": "float32",
}
VALUE_COLS = ["epoch", "t", *COLS]
ALL_KEYS = pieces._keys(layout.STATS)


# ---- the oracle ------------------------------------------------------------------------------------------------------
class Oracle:
    """Every row appended, per attempt; ``view()`` applies supersede the way docs/step-store.md says."""

    def __init__(self):
        self.attempts: list[tuple[int, dict[str, list[np.ndarray]]]] = []  # (first_step, columns -> chunks)

    def start(self, first_step: int) -> None:
        self.attempts.append((first_step, {c: [] for c in ["step", *VALUE_COLS]}))

    def add(self, rows: dict[str, np.ndarray]) -> None:
        for c, chunks in self.attempts[-1][1].items():
            chunks.append(np.asarray(rows[c]))

    def view(self) -> dict[str, np.ndarray]:
        parts = []
        for i, (_, cols) in enumerate(self.attempts):
            cut = min((s for s, _ in self.attempts[i + 1 :]), default=1 << 62)
            if not cols["step"]:
                continue
            d = {c: np.concatenate(v) for c, v in cols.items()}
            keep = d["step"] <= cut
            parts.append({c: v[keep] for c, v in d.items()})
        if not parts:
            return {"step": np.zeros(0, np.int64), **{c: np.zeros(0) for c in VALUE_COLS}}
        out = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        order = np.argsort(out["step"], kind="stable")
        out = {c: v[order] for c, v in out.items()}
        assert np.all(np.diff(out["step"]) > 0), "oracle: the view must have unique steps"
        return out


def brute(view: dict[str, np.ndarray], col: str, width: int, a: int = 1, b: int = 1 << 62) -> dict[str, np.ndarray]:
    """Per aligned bucket of ``width`` steps over [a, b]: what the store must return."""
    step = view["step"]
    sel = (step >= a) & (step <= b)
    step, v = step[sel], np.asarray(view[col][sel], np.float64)
    g = (step - 1) // width
    out = {k: [] for k in ("lo", "hi", "n", "min", "max", "x_min", "x_max", "mean", "last", "nonfinite")}
    for gid in np.unique(g):
        m = g == gid
        s, x = step[m], v[m]
        fin = np.isfinite(x)
        out["lo"].append(s[0])
        out["hi"].append(s[-1])
        out["n"].append(len(s))
        out["last"].append(x[-1])
        out["nonfinite"].append(int((~fin).sum()))
        if fin.any():
            xf, sf = x[fin], s[fin]
            out["min"].append(xf.min())
            out["max"].append(xf.max())
            out["x_min"].append(sf[np.argmin(xf)])
            out["x_max"].append(sf[np.argmax(xf)])
            out["mean"].append(xf.mean())
        else:
            out["min"].append(np.nan)
            out["max"].append(np.nan)
            out["x_min"].append(-1)
            out["x_max"].append(-1)
            out["mean"].append(np.nan)
    return {k: np.asarray(v) for k, v in out.items()}


def assert_buckets(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    for k in ("lo", "hi", "n"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what}: {k}")
    for k in ("min", "max", "last"):
        if k in got and got[k] is not None:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what}: {k}")
    for k in ("x_min", "x_max"):
        if k in got and got[k] is not None:
            fin = np.isfinite(want["min"])
            np.testing.assert_array_equal(got[k][fin], want[k][fin], err_msg=f"{what}: {k}")
    if got.get("mean") is not None:
        np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-6, atol=1e-9, err_msg=f"{what}: mean")
    if got.get("nonfinite") is not None:
        np.testing.assert_array_equal(got["nonfinite"], want["nonfinite"], err_msg=f"{what}: nonfinite")


def series_dict(s: Series) -> dict[str, np.ndarray]:
    return {k: getattr(s, k) for k in ("lo", "hi", "n", "min", "max", "x_min", "x_max", "mean", "last", "nonfinite")}


def pieces_dict(p: pieces._Pieces, col: str) -> dict[str, np.ndarray]:
    d = p.col(col)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(d["nfin"] > 0, d["sum"] / np.maximum(d["nfin"], 1), np.nan)
    return {"lo": p.lo, "hi": p.hi, "n": p.n, "min": d["min"], "max": d["max"], "x_min": d["xmin"],
            "x_max": d["xmax"], "mean": mean, "last": d["last"], "nonfinite": d["nf"]}  # fmt: skip


def make_rows(rng: np.random.Generator, steps: np.ndarray, nan_rate: float = 0.0) -> dict[str, np.ndarray]:
    n = len(steps)
    gn = rng.lognormal(4.0, 0.5, n).astype(np.float32)
    rows = {
        "step": steps.astype(np.int64),
        "epoch": ((steps - 1) // 50 + 1).astype(np.int32),
        "t": 1.7e9 + steps * 0.05 + rng.random(n) * 1e-3,
        "lr/a": np.where(steps < 100, steps * 1e-4, 0.01) - 0.005,  # constant after warmup, negative and positive
        "gn": gn,
        "gn/x": (gn * rng.uniform(0.1, 0.9, n)).astype(np.float32),
        "loss/box": rng.uniform(0.5, 3.0, n).astype(np.float32),
        "clipped": gn > 60,
        "max_norm": np.full(n, 10.0, np.float32),
    }
    if nan_rate:
        for c in ("gn", "gn/x", "loss/box"):
            bad = rng.random(n) < nan_rate
            rows[c][bad] = rng.choice(np.float32([np.nan, np.inf, -np.inf]), int(bad.sum()))
    return rows


def check_whole_run(store: StepStore, view: dict[str, np.ndarray]) -> None:
    """The whole run's series as a live dashboard asks for it after every poll (grown from the previous answer while
    the buckets stay the same: store.py ``_grown_series``), against numpy on the raw rows."""
    assert store.n_steps == len(view["step"])
    if not len(view["step"]):
        return
    for c in ("gn", "clipped"):  # the whole run's summary, grown the same way (the share of clipped steps)
        v = np.asarray(view[c], np.float64)
        fin = np.isfinite(v)
        sm = store.summary(c)
        assert (sm.count, sm.nonfinite, sm.lo, sm.hi) == (len(v), int((~fin).sum()), view["step"][0], view["step"][-1])
        if fin.any():
            assert (sm.min, sm.max) == (v[fin].min(), v[fin].max())
            assert (sm.x_min, sm.x_max) == (view["step"][fin][np.argmin(v[fin])], view["step"][fin][np.argmax(v[fin])])
            np.testing.assert_allclose(sm.mean, v[fin].mean(), rtol=1e-6, atol=1e-9)
        assert sm.last == v[-1] or (np.isnan(sm.last) and np.isnan(v[-1]))
    for mp in (10, 40):
        got = store.series(["gn", "clipped", "lr/a"], max_points=mp, stats=layout.STATS)
        for c, s in got.items():
            assert_buckets(series_dict(s), brute(view, c, s.width), f"whole-run series {c} mp={mp}")


def check_store(store: StepStore, oracle: Oracle, rng: np.random.Generator, n_ranges: int = 6) -> None:
    view = oracle.view()
    check_whole_run(store, view)
    n = len(view["step"])
    assert store.n_steps == n
    assert store.last_step == (int(view["step"][-1]) if n else 0)
    t = store.to_table()
    np.testing.assert_array_equal(t.column("step").to_numpy(), view["step"])
    for c in VALUE_COLS:
        np.testing.assert_array_equal(t.column(c).to_numpy(zero_copy_only=False).astype(np.float64),
                                      np.asarray(view[c], np.float64), err_msg=c)  # fmt: skip
    if not n:
        return
    # roll-up buckets of every level, whole run, against numpy on the raw rows
    cols = ["gn", "gn/x", "loss/box", "lr/a", "clipped", "epoch"]
    for li, L in enumerate(store.levels, 1):
        p = store._pieces(li, 1, 1 << 62, cols, ALL_KEYS)
        for c in cols:
            assert_buckets(pieces_dict(p, c), brute(view, c, L), f"level {L} {c}")
    # series and summaries over random ranges
    last = int(view["step"][-1])
    for _ in range(n_ranges):
        a = int(rng.integers(1, last + 1))
        b = int(rng.integers(a, last + 1))
        if rng.random() < 0.3:
            a, b = 1, last
        mp = int(rng.choice([4, 10, 33, 100, 1000]))
        c = str(rng.choice(cols))
        s = store.series([c], max_points=mp, step_range=(a, b), stats=layout.STATS)[c]
        assert s.width % s.level == 0 and 2 * len(s) <= max(mp, 2 * len(s) if s.width == 1 else 0)
        assert_buckets(series_dict(s), brute(view, c, s.width, a, b), f"series {c} [{a},{b}] mp={mp}")
        x, y = s.points()
        assert len(x) <= mp and np.all(np.diff(x) > 0)
        sel = (view["step"] >= a) & (view["step"] <= b)
        v = np.asarray(view[c][sel], np.float64)
        fin = np.isfinite(v)
        if fin.any():
            assert np.nanmax(y) == v[fin].max() and np.nanmin(y) == v[fin].min()  # the spike is drawn
        sm = store.summary(c, (a, b))
        assert sm.count == int(sel.sum()) and sm.nonfinite == int((~fin).sum())
        if fin.any():
            assert sm.min == v[fin].min() and sm.max == v[fin].max()
            np.testing.assert_allclose(sm.mean, v[fin].mean(), rtol=1e-6, atol=1e-9)
        assert sm.last == v[-1] or (np.isnan(sm.last) and np.isnan(v[-1]))
    tl = store.tail(5)
    np.testing.assert_array_equal(tl.column("step").to_numpy(), view["step"][-5:])


def write_attempt(folder, oracle, rng, attempt, first_step, n_appends, fmt="parquet", rps=37, reader=None,
                  nan_rate=0.02, crash=False, background=False):  # fmt: skip
    w = StepWriter(folder, attempt, first_step, COLS, rows_per_segment=rps, fmt=fmt, background=background,
                   levels=LEVELS)  # fmt: skip
    oracle.start(first_step)
    step = first_step
    for _ in range(n_appends):
        k = int(rng.integers(1, 21))
        gaps = rng.random(k) < 0.05
        steps = step + np.cumsum(np.where(gaps, rng.integers(2, 6, k), 1))
        rows = make_rows(rng, steps, nan_rate)
        w.append(rows)
        oracle.add(rows)
        step = int(steps[-1])
        if reader is not None and rng.random() < 0.2:
            reader.poll()
            view = oracle.view()
            assert reader.n_steps == len(view["step"])
            np.testing.assert_array_equal(reader.to_table().column("step").to_numpy(), view["step"])
            check_whole_run(reader, view)
    if crash:
        w.flush()
        os.close(w._fd)  # the process dies: no close(), the tail stays as it is
        w._closed = True
    else:
        w.close()
    return w


# ---- tests -------------------------------------------------------------------------------------------------------
def test_empty_store(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        s = StepStore(folder)
        assert not s.poll()
        assert s.n_steps == 0 and s.last_step == 0 and s.columns == []
        ser = s.series(["gn"])["gn"]
        assert len(ser) == 0 and len(ser.points()[0]) == 0
        sm = s.summary("gn")
        assert sm.count == 0 and np.isnan(sm.max)
        assert s.to_table().num_rows == 0 and s.tail(3).num_rows == 0
        assert s.last_step_of_epoch(3) == 0
    assert resume_info(tmp_path / "missing") == ResumeInfo(attempt=1, last_step=0, first_step=0)
    # a writer that wrote nothing
    w = StepWriter(tmp_path / "steps", 1, 0, COLS, levels=LEVELS)
    s = StepStore(tmp_path / "steps")
    assert s.n_steps == 0 and "gn" in s.columns
    w.close()
    assert not s.poll() or s.n_steps == 0
    assert resume_info(tmp_path / "steps").attempt == 2


def test_one_row(tmp_path):
    rng = np.random.default_rng(1)
    oracle = Oracle()
    write_attempt(tmp_path, oracle, rng, 1, 0, 0)
    w = StepWriter(tmp_path, 2, 0, COLS, levels=LEVELS, background=False)
    oracle.start(0)
    rows = make_rows(rng, np.array([1]))
    w.append(rows)
    oracle.add(rows)
    s = StepStore(tmp_path)
    check_store(s, oracle, rng)
    w.close()
    assert s.poll()
    check_store(s, oracle, rng)
    ser = s.series("gn")["gn"]
    assert ser.level == 1 and list(ser.points()[0]) == [1]


@pytest.mark.parametrize("seed", range(6))
def test_random_appends_resumes_against_numpy(tmp_path, seed, monkeypatch):
    """A few hundred appends of random sizes, random gaps, NaN/inf, 1-4 attempts with random resume points
    (mid-bucket, on a bucket edge, below an earlier first_step, twice in a row), some attempts crashing.
    Odd seeds grow the whole run's answers by raw rows only up to 30 new rows (else from the levels), as a refresh
    after a long pause does."""
    if seed % 2:
        monkeypatch.setattr(store_module, "GROW_RAW_ROWS", 30)
    rng = np.random.default_rng(seed)
    fmt = "arrow" if seed % 3 == 2 else "parquet"
    oracle = Oracle()
    reader = StepStore(tmp_path)
    first = 0
    n_att = int(rng.integers(1, 5))
    for attempt in range(1, n_att + 1):
        if attempt > 1:
            view = oracle.view()["step"]
            pick = rng.random()
            if pick < 0.5 and len(view):  # a real step (epoch end) somewhere in the surviving rows
                first = int(rng.choice(view))
            elif pick < 0.7:  # exactly on a level boundary
                first = int(rng.choice(LEVELS)) * int(rng.integers(0, 4))
            elif pick < 0.85:  # resume again from the same point
                pass
            else:  # below an earlier first_step (robustness)
                first = int(rng.integers(0, first + 1))
        write_attempt(tmp_path, oracle, rng, attempt, first, int(rng.integers(10, 120)), fmt=fmt, reader=reader,
                      crash=rng.random() < 0.4)  # fmt: skip
        reader.poll()
        check_store(reader, oracle, rng)
    check_store(StepStore(tmp_path), oracle, rng, n_ranges=20)
    # the next writer recovers crashed tails on their behalf; nothing read changes
    w = StepWriter(tmp_path, n_att + 1, oracle.view()["step"][-1] if len(oracle.view()["step"]) else 0, COLS,
                   levels=LEVELS)  # fmt: skip
    oracle.start(w.first_step)
    w.close()
    assert not any(n.startswith("tail-") for n in os.listdir(tmp_path))
    check_store(StepStore(tmp_path), oracle, rng)


def test_resume_mid_bucket_at_every_level_and_twice(tmp_path):
    rng = np.random.default_rng(7)
    oracle = Oracle()
    write_attempt(tmp_path, oracle, rng, 1, 0, 30, rps=50)  # ~300 steps
    # 4*16*... : 137 is mid-bucket for 4 (no: 137 = 34*4 + 1), 16 and 64
    write_attempt(tmp_path, oracle, rng, 2, 137, 20, rps=50)
    write_attempt(tmp_path, oracle, rng, 3, 150, 5, rps=50)  # a second resume before the first got far
    write_attempt(tmp_path, oracle, rng, 4, 150, 3, crash=True)  # same point again, crashes
    write_attempt(tmp_path, oracle, rng, 5, 90, 12)  # below both earlier first_steps: later attempts still win
    s = StepStore(tmp_path)
    check_store(s, oracle, rng, n_ranges=30)
    atts = s.attempts
    assert [a["attempt"] for a in atts] == [1, 2, 3, 4, 5]
    assert [a["cutoff"] for a in atts] == [90, 90, 90, 90, None]


def test_reader_polling_while_writing_background(tmp_path):
    """Reader between appends (compaction in the background thread): exactly the rows so far, no duplicate, no gap."""
    rng = np.random.default_rng(3)
    oracle = Oracle()
    w = StepWriter(tmp_path, 1, 0, COLS, rows_per_segment=200, levels=LEVELS)
    oracle.start(0)
    r = StepStore(tmp_path)
    step = 0
    for i in range(300):
        k = int(rng.integers(1, 33))
        rows = make_rows(rng, np.arange(step + 1, step + k + 1), 0.01)
        step += k
        w.append(rows)
        oracle.add(rows)
        r.poll()
        got = r.to_table(columns=["gn"]).column("step").to_numpy()
        np.testing.assert_array_equal(got, np.arange(1, step + 1))
        assert r.n_steps == step and r.last_step == step
        if i % 25 == 0:
            s = r.series("gn", max_points=40, stats=layout.STATS)["gn"]
            assert_buckets(series_dict(s), brute(oracle.view(), "gn", s.width), f"live series at {step}")
    w.close()
    assert r.poll()
    check_store(r, oracle, rng, n_ranges=10)
    assert not any(n.startswith("tail-") for n in os.listdir(tmp_path))


def test_truncated_tail_at_every_byte_of_the_last_message(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    w = StepWriter(src, 1, 0, {"x": "float32", "c": "bool"}, levels=LEVELS)

    def rows(a, b):
        st = np.arange(a, b)
        return {"step": st, "epoch": np.ones(len(st)), "x": st * 0.5, "c": st % 2 == 0}

    for i in range(3):
        w.append(rows(i * 5 + 1, i * 5 + 6))
    tail = src / layout._tail_name(1, 0)
    data = tail.read_bytes()
    w.append(rows(16, 20))
    full = tail.read_bytes()
    assert len(full) > len(data)
    dst.mkdir()
    shutil.copy(src / layout._attempt_name(1), dst)
    live = StepStore(dst)  # one reader that sees the file grow a byte at a time
    for cut in range(len(data), len(full) + 1):
        (dst / tail.name).write_bytes(full[:cut])
        fresh = StepStore(dst)
        live.poll()
        want = 19 if cut == len(full) else 15
        assert fresh.n_steps == want and live.n_steps == want, cut
        t = live.to_table()
        np.testing.assert_array_equal(t.column("step").to_numpy(), np.arange(1, want + 1))
        np.testing.assert_array_equal(t.column("x").to_numpy(), np.arange(1, want + 1) * np.float32(0.5))
    w.close()


def test_leftover_temp_files_and_junk_are_ignored_then_cleaned(tmp_path):
    rng = np.random.default_rng(5)
    oracle = Oracle()
    write_attempt(tmp_path, oracle, rng, 1, 0, 20, rps=30)
    (tmp_path / ".seg-0001-000099-000000000001-000000000002.parquet.123.tmp").write_bytes(b"PAR1 half")
    (tmp_path / ".roll-0001-0-000000000001-000000000002.parquet.123.tmp").write_bytes(b"")
    (tmp_path / ".attempt-0002.json.9.tmp").write_text("{")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "tail-0003-000000.arrows").write_bytes(b"\xff\xff\xff\xff\x10")  # an attempt with no meta
    s = StepStore(tmp_path)
    check_store(s, oracle, rng)
    write_attempt(tmp_path, oracle, rng, 2, int(oracle.view()["step"][-1]), 5)
    names = os.listdir(tmp_path)
    assert not [n for n in names if n.endswith(".tmp") or n.startswith("tail-0003")]
    assert "notes.txt" in names
    check_store(StepStore(tmp_path), oracle, rng)


@pytest.mark.parametrize("point", ["seg", "roll", "coarse", "merge"])
def test_crash_inside_compaction(tmp_path, monkeypatch, point):
    """The process dies after the segment, after the fine or the coarse roll-up file, or in a tier merge: still
    readable, nothing appended is lost, and the next attempt recovers."""
    rng = np.random.default_rng(hash(point) % 1000)
    oracle = Oracle()

    class Killed(BaseException):
        pass

    calls = {"n": 0}

    def fault(p):
        if p == point:
            calls["n"] += 1
            if calls["n"] == (3 if point != "merge" else 1):
                raise Killed

    monkeypatch.setattr(compaction, "_fault", fault)
    w = StepWriter(tmp_path, 1, 0, COLS, rows_per_segment=10, levels=LEVELS, background=False)
    oracle.start(0)
    step = 0
    with pytest.raises(Killed):
        for _ in range(400):
            rows = make_rows(rng, np.arange(step + 1, step + 8), 0.02)
            step += 7
            oracle.add(rows)  # append writes the tail before compacting, so these rows are on disk
            w.append(rows)
    if w._fd is not None:  # killed inside the inline compaction, between closing one tail and opening the next
        os.close(w._fd)
    monkeypatch.setattr(compaction, "_fault", lambda p: None)
    s = StepStore(tmp_path)
    check_store(s, oracle, rng, n_ranges=10)
    first = s.last_step_of_epoch(int(oracle.view()["epoch"][-1]) - 1)
    write_attempt(tmp_path, oracle, rng, 2, first, 30, rps=10)
    check_store(StepStore(tmp_path), oracle, rng, n_ranges=10)


def test_sigkill_real_writer_process(tmp_path):
    """A real training process SIGKILLed while appending: the folder reads, the rows form a prefix; resume works."""
    code = textwrap.dedent(
        f"""
        import sys, numpy as np
        sys.path.insert(0, {str(REPO)!r})
        from trainers.telemetry.steps import StepWriter
        w = StepWriter({str(tmp_path)!r}, 1, 0, {{"gn": "float32"}}, rows_per_segment=200, levels=(4, 16, 64))
        step = 0
        print("ready", flush=True)
        while True:
            st = np.arange(step + 1, step + 33)
            w.append({{"step": st, "epoch": (st - 1) // 500 + 1, "gn": (st % 97).astype(np.float32)}})
            step += 32
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"
    deadline = time.time() + 20
    while time.time() < deadline:
        if sum(n.startswith("roll-") for n in os.listdir(tmp_path)) >= 3:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    s = StepStore(tmp_path)
    n = s.n_steps
    assert n > 0 and n % 32 == 0
    steps = s.to_table().column("step").to_numpy()
    np.testing.assert_array_equal(steps, np.arange(1, n + 1))
    gn = s.to_table().column("gn").to_numpy()
    np.testing.assert_array_equal(gn, (steps % 97).astype(np.float32))
    for L in (4, 16, 64):
        ser = s.series("gn", max_points=2 * (n // L), stats=layout.STATS)["gn"]
        view = {"step": steps, "gn": gn}
        assert_buckets(series_dict(ser), brute(view, "gn", ser.width), f"after kill, L={L}")
    info = resume_info(tmp_path, epochs_done=(n // 500))
    assert info.attempt == 2 and info.last_step == n and info.first_step == (n // 500) * 500
    w = StepWriter(tmp_path, info.attempt, info.first_step, {"gn": "float32"}, levels=(4, 16, 64))
    st = np.arange(info.first_step + 1, info.first_step + 11)
    w.append({"step": st, "epoch": (st - 1) // 500 + 1, "gn": np.zeros(10, np.float32)})
    w.close()
    s2 = StepStore(tmp_path)
    assert s2.last_step == info.first_step + 10 and s2.n_steps == info.first_step + 10
    assert not any(n.startswith("tail-0001") for n in os.listdir(tmp_path))


def test_nan_inf_and_a_bucket_of_only_nan(tmp_path):
    w = StepWriter(tmp_path, 1, 0, {"x": "float32"}, levels=(4, 16), rows_per_segment=6, background=False)
    x = np.float32([1, 2, np.nan, 4, np.nan, np.nan, np.inf, -np.inf, 5, -1, np.nan, 3, 7, np.nan, 2, 2, 9])
    st = np.arange(1, len(x) + 1)
    for i in range(0, len(x), 3):
        w.append({"step": st[i : i + 3], "epoch": np.ones(len(st[i : i + 3])), "x": x[i : i + 3]})
    r = StepStore(tmp_path)
    live = r.series("x", max_points=8, stats=layout.STATS)["x"]  # partly from the tail
    w.close()
    r.poll()
    p = r._pieces(1, 1, 1 << 62, ["x"], ALL_KEYS)
    d = pieces_dict(p, "x")
    # bucket 2 (steps 5-8) is NaN, NaN, inf, -inf: no finite value
    assert np.isnan(d["min"][1]) and np.isnan(d["max"][1]) and np.isnan(d["mean"][1]) and d["nonfinite"][1] == 4
    assert d["last"][1] == -np.inf
    view = {"step": st, "x": x}
    for got in (d, series_dict(live)):
        assert_buckets(got, brute(view, "x", 4 if got is d else live.width), "nan")
    sm = r.summary("x")
    fin = np.isfinite(x)
    assert sm.count == 17 and sm.nonfinite == int((~fin).sum()) and sm.min == -1 and sm.max == 9
    assert sm.mean == pytest.approx(x[fin].mean())
    xs, ys = r.series("x", max_points=8)["x"].points()
    assert 9 in ys and -1 in ys
    # all-NaN column
    allnan = r.summary("x", (5, 8))
    assert allnan.count == 4 and allnan.nonfinite == 4 and np.isnan(allnan.mean) and allnan.x_max is None


@pytest.mark.timeout(120)
def test_spike_at_a_random_step_in_two_million(tmp_path):
    """2.1M steps through the real levels: the one spike is in the 4,000-point series, and the whole-run series
    reads no raw segment."""
    n = 2_100_000
    rng = np.random.default_rng(11)
    spike = int(rng.integers(1, n + 1))
    w = StepWriter(tmp_path, 1, 0, {"gn": "float32"}, rows_per_segment=65536)
    vals = rng.lognormal(4.0, 0.3, n).astype(np.float32)
    vals[spike - 1] = 1e6
    low = int(rng.integers(1, n + 1))
    vals[low - 1] = 1e-3
    for i in range(0, n, 16384):
        st = np.arange(i + 1, min(i + 16384, n) + 1)
        w.append({"step": st, "epoch": (st - 1) // 7000 + 1, "gn": vals[i : i + len(st)]})
    w.close()
    opened = []
    real = layout._open_handle
    ss_open = lambda path: opened.append(path.name) or real(path)  # noqa: E731
    try:
        layout._open_handle = ss_open
        s = StepStore(tmp_path)
        ser = s.series("gn", max_points=4000)["gn"]
    finally:
        layout._open_handle = real
    x, y = ser.points()
    assert len(x) <= 4000 and ser.level == 256
    i = int(np.argmax(y))
    assert y[i] == np.float32(1e6) and x[i] == spike
    j = int(np.argmin(y))
    assert y[j] == np.float32(1e-3) and x[j] == low
    assert not [o for o in opened if o.startswith("seg-")] and len(opened) <= 6
    assert s.summary("gn").max == np.float32(1e6) and s.n_steps == n
    zoom = s.series("gn", max_points=4000, step_range=(spike - 5000, spike + 5000))["gn"]
    assert zoom.level == 1 and np.nanmax(zoom.points()[1]) == np.float32(1e6)


def test_append_validation_and_defaults(tmp_path):
    w = StepWriter(tmp_path, 1, 10, {"x": "float32", "c": "bool"}, levels=LEVELS)
    with pytest.raises(ValueError):
        w.append({"step": [10], "epoch": [1], "x": [1.0], "c": [True]})  # not after first_step
    with pytest.raises(KeyError):
        w.append({"step": [11], "epoch": [1], "x": [1.0]})  # a non-float column is required
    w.append({"step": [11, 12], "epoch": [1, 1], "c": [True, False]})  # a missing float is NaN, t is now
    with pytest.raises(ValueError):
        w.append({"step": [12], "epoch": [1], "c": [True]})
    with pytest.raises(ValueError):
        w.append({"step": [13, 13], "epoch": [1, 1], "c": [True, True]})
    with pytest.raises(ValueError):
        StepWriter(tmp_path, 1, 0, {"x": "float32"})  # attempt 1 exists
    with pytest.raises(ValueError):
        StepWriter(tmp_path / "o", 1, 0, {"a|b": "float32"})
    s = StepStore(tmp_path)
    t = s.to_table()
    assert t.column("step").to_pylist() == [11, 12] and np.isnan(t.column("x").to_numpy()).all()
    assert abs(t.column("t").to_numpy()[0] - time.time()) < 60
    assert s.summary("x").count == 2 and s.summary("x").nonfinite == 2
    w.close()


def test_poll_is_cheap_and_reports_changes(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    w = StepWriter(tmp_path, 1, 0, COLS, rows_per_segment=50, levels=LEVELS)
    w.append(make_rows(rng, np.arange(1, 40)))
    r = StepStore(tmp_path)
    time.sleep(1.6)  # past the window in which a folder change could share the folder's mtime tick
    assert not r.poll()
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(p) or real(p))
    t0 = time.perf_counter()
    for _ in range(200):
        assert not r.poll()
    per_poll = (time.perf_counter() - t0) / 200
    assert not listed and per_poll < 1e-3  # only stat calls
    w.append(make_rows(rng, np.arange(40, 45)))
    assert r.poll() and r.last_step == 44
    w.append(make_rows(rng, np.arange(45, 60)))  # compaction: a new tail, a segment, a roll-up file
    w.flush()
    assert r.poll() and r.n_steps == 59
    w.close()


def test_resume_info_and_last_step_of_epoch(tmp_path):
    rng = np.random.default_rng(2)
    oracle = Oracle()
    write_attempt(tmp_path, oracle, rng, 1, 0, 40, crash=True)  # epochs of 50 steps
    view = oracle.view()
    for e in range(0, int(view["epoch"][-1]) + 2):
        want = int(view["step"][view["epoch"] <= e].max()) if (view["epoch"] <= e).any() else 0
        assert StepStore(tmp_path).last_step_of_epoch(e) == want, e
    info = resume_info(tmp_path, epochs_done=2)
    assert info.attempt == 2 and info.last_step == int(view["step"][-1])
    assert info.first_step == int(view["step"][view["epoch"] <= 2].max())


def test_short_resume_ends_before_the_superseded_rows(tmp_path):
    """Attempt 2 resumes at 137 and dies after 3 rows: the last step is 140, not attempt 1's 300-odd."""
    rng = np.random.default_rng(12)
    oracle = Oracle()
    write_attempt(tmp_path, oracle, rng, 1, 0, 30, rps=64, nan_rate=0)
    w = StepWriter(tmp_path, 2, 137, COLS, levels=LEVELS, background=False)
    oracle.start(137)
    rows = make_rows(rng, np.arange(138, 141))
    w.append(rows)
    oracle.add(rows)
    s = StepStore(tmp_path)
    assert s.last_step == 140 and s.first_step == 1
    check_store(s, oracle, rng, n_ranges=10)
    view = oracle.view()["step"]
    assert list(view[-3:]) == [138, 139, 140] and view[-4] <= 137
    np.testing.assert_array_equal(s.tail(4).column("step").to_numpy(), view[-4:])
    w.close()


def test_attempts_with_other_formats_and_columns(tmp_path):
    """Attempt 1 Parquet with gn/x, attempt 2 Arrow IPC not given gn/x (it keeps it) and with a new loss: a float
    column an attempt does not have reads NaN there, at every level."""
    cols1 = {"gn": "float32", "gn/x": "float32", "c": "bool"}
    cols2 = {"gn": "float32", "loss/new": "float32", "c": "bool"}
    w = StepWriter(tmp_path, 1, 0, cols1, levels=LEVELS, rows_per_segment=20, background=False)
    st = np.arange(1, 101)
    w.append({"step": st, "epoch": np.ones(100), "gn": st, "gn/x": -st, "c": st % 2 == 0})
    w.close()
    with pytest.raises(ValueError, match="'c'"):
        StepWriter(tmp_path, 2, 70, {"gn": "float32"}, levels=LEVELS)
    w = StepWriter(tmp_path, 2, 70, cols2, levels=LEVELS, rows_per_segment=20, background=False, fmt="arrow")
    assert list(w.columns) == ["step", "epoch", "t", "gn", "loss/new", "c", "gn/x"]
    st2 = np.arange(71, 131)
    w.append({"step": st2, "epoch": np.full(60, 2), "gn": st2 * 2, "loss/new": st2 * 0.5, "c": st2 % 3 == 0})
    w.close()
    assert any(n.endswith(".arrow") for n in os.listdir(tmp_path))
    s = StepStore(tmp_path)
    assert s.columns == ["step", "epoch", "t", "gn", "gn/x", "c", "loss/new"] and s.n_steps == 130
    t = s.to_table()
    assert t.column("step").to_pylist() == list(range(1, 131))
    gx = t.column("gn/x").to_numpy(zero_copy_only=False)
    assert t.column("gn/x").null_count == 0 and np.isnan(gx[70:]).all() and (gx[:70] == -st[:70]).all()
    ln = t.column("loss/new").to_numpy(zero_copy_only=False)
    assert t.column("loss/new").null_count == 0 and np.isnan(ln[:70]).all() and (ln[70:] == st2 * 0.5).all()
    step = np.arange(1, 131)
    view = {"step": step, "gn": np.concatenate([np.arange(1, 71), st2 * 2]).astype(np.float64), "gn/x": gx,
            "c": np.concatenate([st[:70] % 2 == 0, st2 % 3 == 0])}  # fmt: skip
    for L in (1, *LEVELS):
        for c in ("gn", "gn/x", "c"):
            ser = s.series(c, max_points=max(4, 2 * (130 // L)), stats=layout.STATS)[c]
            assert_buckets(series_dict(ser), brute(view, c, ser.width), f"L={L} {c}")
    gs = s.summary("gn/x")
    assert gs.count == 130 and gs.nonfinite == 60 and gs.min == -70 and gs.max == -1
    ls = s.summary("loss/new")
    assert ls.count == 130 and ls.nonfinite == 70 and ls.min == 35.5 and ls.max == 65.0
    assert s.summary("loss/new", (1, 70)).finite == 0
    view["loss/new"] = ln
    for L in (1, *LEVELS):
        ser = s.series("loss/new", max_points=max(4, 2 * (130 // L)), stats=layout.STATS)["loss/new"]
        assert_buckets(series_dict(ser), brute(view, "loss/new", ser.width), f"L={L} loss/new")
    with pytest.raises(ValueError, match="new"):
        StepWriter(tmp_path, 3, 130, {**cols2, "flag": "bool"}, levels=LEVELS)


def test_benchmark_at_a_tiny_size(tmp_path):
    """benchmarks/bench_step_store.py keeps working: its figures exist, the spike is found, bytes add up."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_step_store", REPO / "benchmarks"
                                                  / "bench_step_store.py")  # fmt: skip
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(epochs=3, steps=1500, groups=2, losses=2, batch=32, rows_per_segment=1024, seed=1,
                              quiet_wait=0.0, cold_runs=1)  # fmt: skip
    r = bench.bench_format("parquet", args, tmp_path)
    assert r["steps"] == 4500 and r["spike_found"] is True and r["columns"] == 3 + 2 + 1 + 2 + 2 + 2
    assert 0 < r["bytes_per_step"] == pytest.approx(r["segments_bps"] + r["rollups_bps"], abs=1.0)
    assert r["points_per_trace"] <= 4000 and r["compaction_ms_median"] is not None
    assert not [n for n in os.listdir(tmp_path / "parquet" / "steps") if n.startswith("tail-")]


def test_a_polling_reader_remembers_closed_epochs_and_forgets_them_when_a_resume_starts(tmp_path):
    """last_step_of_epoch is remembered for epochs later steps have closed (the charts ask on every refresh); a new
    attempt that redoes epoch 2 with other lengths gives the new boundaries to the same reader."""
    cols = {"gn": "float32"}
    w = StepWriter(tmp_path, 1, 0, cols, levels=LEVELS, rows_per_segment=20, background=False)
    steps = np.arange(1, 31)
    w.append({"step": steps, "epoch": (steps - 1) // 10 + 1, "gn": steps})  # epochs 1-3, 10 steps each
    w.flush()
    r = StepStore(tmp_path)
    assert [r.last_step_of_epoch(e) for e in (1, 2, 3)] == [10, 20, 30]
    assert r._epoch_ends == {1: 10, 2: 20}  # epoch 3 is still open: not remembered
    w.close()
    w2 = StepWriter(tmp_path, 2, 10, cols, levels=LEVELS, rows_per_segment=20, background=False)
    again = np.arange(11, 26)  # epoch 2 redone with 5 steps, then epoch 3 with 10
    w2.append({"step": again, "epoch": np.where(again <= 15, 2, 3), "gn": -again})
    w2.flush()
    assert r.poll()
    assert [r.last_step_of_epoch(e) for e in (1, 2, 3)] == [10, 15, 25]
    assert StepStore(tmp_path).last_step_of_epoch(2) == 15  # a fresh reader agrees
    w2.close()


def test_the_mean_a_refresh_asks_twice_follows_every_poll_that_reads_new_steps(tmp_path):
    """StoreSteps keeps a column's mean (the clipped share: the header and the gradient-norm title) between polls;
    each poll that reads new steps, and a resume that supersedes some, gives the new mean."""
    from trainers.telemetry.step_data import StoreSteps

    cols = {"clipped": "bool"}
    w = StepWriter(tmp_path, 1, 0, cols, levels=LEVELS, rows_per_segment=20, background=False)
    steps = StoreSteps(StepStore(tmp_path))
    rng = np.random.default_rng(3)
    written = np.zeros(0, bool)
    for lo in range(1, 60, 12):
        s = np.arange(lo, lo + 12)
        clipped = rng.random(12) < rng.uniform(0.1, 0.9)
        w.append({"step": s, "epoch": (s - 1) // 12 + 1, "clipped": clipped})
        w.flush()
        before = steps.mean("clipped")  # what the last poll read
        assert before == (pytest.approx(written.mean()) if written.size else None)
        written = np.concatenate([written, clipped])
        assert steps.poll()
        assert steps.mean("clipped") == pytest.approx(written.mean())
        assert steps.mean("clipped") == pytest.approx(written.mean())  # asked twice in one refresh
    w.close()
    w2 = StepWriter(tmp_path, 2, 24, cols, levels=LEVELS, rows_per_segment=20, background=False)
    redo = np.arange(25, 31)  # a resume redoes epoch 3 with 6 steps, all clipped
    w2.append({"step": redo, "epoch": np.full(6, 3), "clipped": np.ones(6, bool)})
    w2.flush()
    assert steps.poll()
    assert steps.mean("clipped") == pytest.approx(np.concatenate([written[:24], np.ones(6, bool)]).mean())
    w2.close()


def write_rows(folder, oracle: Oracle, attempt: int, first_step: int, rows: dict[str, np.ndarray]) -> None:
    """One attempt of exactly ``rows``, written and closed (no background compaction)."""
    w = StepWriter(folder, attempt, first_step, COLS, rows_per_segment=50, levels=LEVELS, background=False)
    oracle.start(first_step)
    w.append(rows)
    oracle.add(rows)
    w.close()


def test_a_live_whole_run_series_is_read_again_when_a_resume_supersedes_steps_it_had_drawn(tmp_path):
    """A reader drew the whole run; a resume rewrites its last steps and gets past them before the next poll: the
    series the reader keeps between polls must not keep the superseded values (nor miss the new spike)."""
    rng = np.random.default_rng(11)
    oracle = Oracle()
    reader = StepStore(tmp_path)
    write_attempt(tmp_path, oracle, rng, 1, 0, 40, rps=50, nan_rate=0)
    reader.poll()
    last = reader.last_step
    check_whole_run(reader, oracle.view())
    rows = make_rows(rng, np.arange(last - 29, last + 60))
    rows["gn"][10] = 1e6  # a spike inside the superseded range
    write_rows(tmp_path, oracle, 2, last - 30, rows)
    assert reader.poll() and reader.last_step == last + 59
    check_whole_run(reader, oracle.view())
    x, y = reader.series(["gn", "clipped", "lr/a"], max_points=40)["gn"].points()
    assert y.max() == 1e6 and x[np.argmax(y)] == last - 19


def test_a_live_whole_run_series_is_read_again_when_the_folder_is_replaced_by_another_run(tmp_path):
    rng = np.random.default_rng(12)
    reader = StepStore(tmp_path)
    old = Oracle()
    write_attempt(tmp_path, old, rng, 1, 0, 40, rps=50, nan_rate=0)
    reader.poll()
    last = reader.last_step
    check_whole_run(reader, old.view())
    shutil.rmtree(tmp_path)  # another run written in its place: the same attempt number, the same buckets
    reader.poll()
    assert reader.n_steps == 0
    fresh = Oracle()
    write_rows(tmp_path, fresh, 1, 0, make_rows(rng, np.arange(1, last + 5)))
    reader.poll()
    check_whole_run(reader, fresh.view())


def test_a_live_whole_run_series_is_read_again_when_an_attempt_is_written_again_under_its_number(tmp_path):
    """Attempt 2's files removed (a poll sees it, no chart is drawn), then attempt 2 written again from the same step:
    the chain of attempts reads as it did when the series was kept, the rows do not."""
    rng = np.random.default_rng(13)
    reader = StepStore(tmp_path)
    first = Oracle()
    write_attempt(tmp_path, first, rng, 1, 0, 20, rps=50, nan_rate=0)
    write_attempt(tmp_path, first, rng, 2, 100, 20, rps=50, nan_rate=0)
    reader.poll()
    last = reader.last_step
    check_whole_run(reader, first.view())
    for name in os.listdir(tmp_path):
        if "-0002" in name:
            os.remove(tmp_path / name)
    reader.poll()
    again = Oracle()
    again.attempts = first.attempts[:1]
    write_rows(tmp_path, again, 2, 100, make_rows(rng, np.arange(101, last + 3)))
    reader.poll()
    check_whole_run(reader, again.view())
