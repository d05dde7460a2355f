"""Run dashboard on a COCO-length run: first render, live refresh, UI memory, bytes on disk, the spike drawn.

Generates a run of ``--epochs`` x ``--steps`` optimizer steps and ``--classes`` classes through the writers the training
process uses (``TelemetryWriter`` for the events log, ``StepWriter`` for ``steps/`` with the trainer's columns and
dtypes: LR per group float64, pre-clip norm total and per group float32, clipped, max_norm, losses float32), with
seeded random walks and noise at full float precision, and one huge gradient-norm spike at a known step. Then, in a
fresh Python process (so its memory is the UI's), it does what the dashboard page does on each render, with the same
functions and the same figure cache (``app/dashboard_parts.py``): settle the status, poll the run's reader, compute
the header, the per-class rows and the default classes, run the training doctor and mark its findings, build the six
figures (only those whose data version changed) and serialize every figure as ``st.plotly_chart`` does.

- ``first_render_s``: opening the run cold (nothing read yet), in a process that has drawn a chart before.
- ``refresh_ms``: median live refresh, each after one new epoch was written (its steps and its epoch event).
- ``rss_mb``: the process' memory growth from before opening the run to after the last refresh.
- ``bytes_per_step``: the run's telemetry on disk (events log + steps/) divided by the steps.
- ``spike_drawn``: the spike's (step, value) is a point of the drawn, serialized gradient-norm trace.

``--format jsonl`` writes the steps as step events in the events log instead (how runs were logged before the step
store): the "before" side of docs/benchmarks.md, read by the same dashboard code.

Usage::

    python benchmarks/bench_dashboard.py --epochs 300 --steps 7000 --classes 80 --json
    python benchmarks/bench_dashboard.py --epochs 300 --steps 1000 --format jsonl --json    # the old format
    python benchmarks/bench_dashboard.py --epochs 5 --steps 50 --refreshes 2                 # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GOALS = {"first_render_s": 1.0, "refresh_ms": 50.0, "rss_mb": 300.0, "bytes_per_step": 100.0}
GROUPS = ["head/weight", "head/bn", "head/bias", "backbone/weight", "backbone/bn", "backbone/bias"]
LOSSES = ("box_loss", "cls_loss", "dfl_loss")
MAX_NORM = 10.0
RUN_NAME = "long-run"
T0 = 1_760_000_000.0
FLUSH_ROWS = 32  # the training process flushes every 32 steps


# ---- the generated run ----------------------------------------------------------------------------------------------
class Feed:
    """Writes a run epoch by epoch as a training process would (events log + step store, or the old events-only log)."""

    def __init__(self, run_dir: Path, planned: int, steps: int, classes: int, spike: int, fmt: str, seed: int = 0):
        from trainers.telemetry.events import TelemetryWriter

        self.run_dir, self.planned, self.n, self.fmt = run_dir, planned, steps, fmt
        self.names = [f"class{i:03d}" for i in range(classes)]
        self.spike, self.spike_value = spike, 1e6
        self.rng = np.random.default_rng(seed)
        self.epoch, self.step = 0, 0
        self.events = TelemetryWriter(run_dir / "telemetry.jsonl")
        self.norm_walk, self.loss_walk = np.log(100.0), np.log(2.0)
        self.quality = self.rng.uniform(0.3, 1.0, classes)  # how learnable each class is
        self.best = -1.0
        self.steps_writer = None
        if fmt == "store":
            from trainers.telemetry.steps import StepWriter

            columns = {f"lr/{g}": "float64" for g in GROUPS}
            columns |= {"grad_norm": "float32", **{f"grad_norm/{g}": "float32" for g in GROUPS}}
            columns |= {"clipped": "uint8", "max_norm": "float32", **{f"loss/{k}": "float32" for k in LOSSES}}
            self.steps_writer = StepWriter(run_dir / "steps", attempt=1, first_step=0, columns=columns)
        self.events.emit(
            "run_start", recipe={"model": "yolo26n.yaml", "data": "/data/coco.yaml", "train": {"epochs": planned},
            "customizations": {"per_class_f1": {}, "layer_lr": {}, "grad_clip": {}}}, names=self.names,
            param_groups=GROUPS, versions={"workbench": "0.1.0", "ultralytics": "8.4.190", "torch": "2", "python": "3"},
            device="0", pid=os.getpid(), epochs=planned, start_epoch=1, resumed=False, world_size=1, t=T0,
            frozen={"layers": list(range(11)), "until_epoch": 2},
        )  # fmt: skip
        self.events.emit("freeze", epoch=1, layers=list(range(11)), params=500_000, t=T0)

    def steps_of_epoch(self) -> dict[str, np.ndarray]:
        """This epoch's step columns: random walks with noise, the LR schedule, the spike where it belongs."""
        n, rng = self.n, self.rng
        step = np.arange(self.step + 1, self.step + n + 1, dtype=np.int64)
        walk = self.norm_walk + np.cumsum(rng.normal(0, 0.02, n))
        self.norm_walk = float(walk[-1])
        total = np.exp(walk + rng.normal(0, 0.25, n)).astype(np.float32)
        if step[0] <= self.spike <= step[-1]:
            total[self.spike - step[0]] = self.spike_value
        share = rng.uniform(0.05, 1.05, (n, len(GROUPS)))
        share /= share.sum(axis=1, keepdims=True)
        out = {"step": step, "epoch": np.full(n, self.epoch, np.int32), "t": T0 + step * 0.05, "grad_norm": total}
        total_steps = self.planned * n
        for i, g in enumerate(GROUPS):
            out[f"grad_norm/{g}"] = (total * np.sqrt(share[:, i])).astype(np.float32)
            base = 0.01 * (0.1 if g.startswith("backbone/") else 1.0) * (1.0 - 0.99 * self.step / total_steps)
            warm = np.clip(step / (3.0 * n), 0, 1)  # linear warmup over 3 epochs, then the epoch's LR
            out[f"lr/{g}"] = np.where(warm < 1, base * warm, base).astype(np.float64)
        out["clipped"] = (total > MAX_NORM).astype(np.uint8)
        out["max_norm"] = np.full(n, MAX_NORM, np.float32)
        for k in LOSSES:
            walk = self.loss_walk + np.cumsum(rng.normal(-0.0001, 0.01, n))
            out[f"loss/{k}"] = np.exp(walk + rng.normal(0, 0.1, n)).astype(np.float32)
        self.loss_walk = float(walk[-1])
        return out

    def next_epoch(self) -> None:
        """Write one more epoch: its steps (flushed 32 at a time), the unfreeze (at epoch 3), its epoch event."""
        self.epoch += 1
        columns = self.steps_of_epoch()
        if self.epoch == 3:
            self.events.emit("unfreeze", epoch=3, layers=list(range(11)), params=500_000)
        if self.steps_writer is not None:
            for i in range(0, self.n, FLUSH_ROWS):
                self.steps_writer.append({k: v[i : i + FLUSH_ROWS] for k, v in columns.items()})
        else:
            self._write_step_events(columns)
        self.step += self.n
        self._epoch_event()

    def _write_step_events(self, c: dict[str, np.ndarray]) -> None:
        lists = {k: v.tolist() for k, v in c.items()}
        for i in range(self.n):
            self.events.emit(
                "step", t=lists["t"][i], epoch=self.epoch, step=lists["step"][i],
                lr={g: lists[f"lr/{g}"][i] for g in GROUPS}, grad_norm=lists["grad_norm"][i],
                grad_norms={g: lists[f"grad_norm/{g}"][i] for g in GROUPS}, clipped=bool(lists["clipped"][i]),
                max_norm=MAX_NORM, loss={k: lists[f"loss/{k}"][i] for k in LOSSES},
            )  # fmt: skip

    def _epoch_event(self) -> None:
        e, rng = self.epoch, self.rng
        q = self.quality * (1.0 - 1.0 / (1.0 + e / 20))
        p = np.clip(q * rng.uniform(0.9, 1.0, q.size), 0, 1)
        r = np.clip(q * rng.uniform(0.85, 1.0, q.size), 0, 1)
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        per_class = [
            {"id": i, "name": n, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]),
             "ap50": float(q[i] * 0.9), "ap": float(q[i] * 0.6), "present": True}
            for i, n in enumerate(self.names)
        ]  # fmt: skip
        fitness = float(q.mean() * 0.5)
        losses = {
            f"{split}/{k}": 2.0 / (1 + e / 30) * rng.uniform(0.95, 1.05) for split in ("train", "val") for k in LOSSES
        }
        self.events.emit(
            "epoch", t=T0 + self.step * 0.05, epoch=e, final_eval=False, step=self.step,
            metrics={"metrics/precision(B)": float(p.mean()), "metrics/recall(B)": float(r.mean()),
                     "metrics/mAP50(B)": float(q.mean() * 0.9), "metrics/mAP50-95(B)": fitness, **losses},
            per_class=per_class, mean_f1=float(f1.mean()), fitness=fitness, best_fitness=max(fitness, self.best),
            best_saved=fitness > self.best, best_metric={"name": "fitness", "value": fitness},
            params={"trainable": 2_500_000, "frozen": 0 if e >= 3 else 500_000}, lr={g: 0.001 for g in GROUPS},
            epoch_time=350.0,
        )  # fmt: skip
        self.best = max(self.best, fitness)

    def close(self) -> None:
        if self.steps_writer is not None:
            self.steps_writer.close()
        self.events.close()


def make_run(root: Path, epochs: int, steps: int, classes: int = 4, fmt: str = "store") -> tuple[Path, Feed]:
    """``<root>/long-run``: status ``running`` (pid = this process) with ``epochs`` x ``steps`` logged."""
    from trainers.runs.folder import create_run_dir
    from trainers.runs.status import write_status

    run_dir = create_run_dir(root, RUN_NAME)
    spike = (epochs * steps) * 2 // 5 + 7  # mid-epoch, not a bucket edge
    feed = Feed(run_dir, epochs + 50, steps, classes, spike, fmt)
    for _ in range(epochs):
        feed.next_epoch()
    (run_dir / "console.log").write_text("".join(f"epoch {e} done\n" for e in range(1, epochs + 1)), encoding="utf-8")
    write_status(run_dir, status="running", pid=os.getpid(), epoch=epochs, epochs=feed.planned)
    return run_dir, feed


def telemetry_bytes(run_dir: Path) -> int:
    files = (
        [run_dir / "telemetry.jsonl", *(run_dir / "steps").glob("*")]
        if (run_dir / "steps").is_dir()
        else [run_dir / "telemetry.jsonl"]
    )
    return sum(f.stat().st_size for f in files if f.is_file())


# ---- what the dashboard computes on each render -----------------------------------------------------------------
class Page:
    """One browser session's dashboard: the same sections and figure cache as ``app/dashboard_parts.py``."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.figures = run_dir, {}

    def _cached(self, key: str, version: Any, build):
        hit = self.figures.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        fig = build()
        self.figures[key] = (version, fig)
        return fig

    def render(self, lap=lambda part: None) -> dict[str, str]:
        """One render; ``lap(part)`` is called as each part ends (benchmarks/profile_dashboard_refresh.py)."""
        import plotly.io
        import plotly.tools

        from app import charts, class_charts, dashboard_parts, doctor_views, exports, run_views
        from trainers.runs import launcher
        from trainers.runs.facts import run_facts
        from trainers.telemetry import per_class

        status = launcher.refresh_status(self.run_dir)
        lap("status")
        reader = run_views.run_events(self.run_dir)
        log = reader.poll()
        lap("poll")
        run_facts(status, log)  # the header's facts, as the dashboard computes them
        lap("header (eta, clip share)")
        rows = per_class.class_rows(log)
        picked = list(per_class.default_classes(rows))
        ordered = [r.name for r in per_class.sort_rows(rows, "f1")]
        lap("class rows")
        found, _ = self._cached(
            "findings", reader.epochs_version, lambda: doctor_views.findings(log, self.run_dir, wait=0)
        )  # the doctor, as the dashboard runs it (its dataset scan is in a worker thread)
        mark = dashboard_parts.marks(found or [])
        lap("doctor")
        ev, sv = (reader.epochs_version, mark), (reader.version, reader.epochs_version, mark)
        builders = {
            "chart_f1": ("f1", ev, lambda: class_charts.f1_figure(log, picked, mark)),
            "chart_f1_heatmap": ("heat", ev, lambda: class_charts.f1_heatmap(log, ordered)),
            "chart_metrics": ("metrics", ev, lambda: charts.metrics_figure(log, mark)),
            "chart_losses": ("losses", ev, lambda: charts.loss_figure(log, mark)),
            "chart_lr": ("lr", sv, lambda: charts.lr_figure(log, marks=mark)),
            "chart_grad_norm": ("gn", sv, lambda: charts.grad_norm_figure(log, marks=mark)),
        }
        figs = {}
        for key, (cache_key, version, build) in builders.items():
            figs[key] = self._cached(cache_key, version, build)
            lap(f"figure {key}")
        [r.as_dict() for r in rows]  # the per-class table
        run_views.console_tail(self.run_dir)
        exports.artifacts(self.run_dir)
        lap("table, console, files")
        # st.plotly_chart checks the figure, then serializes it into the message sent to the browser
        specs = {}
        for key, fig in figs.items():
            specs[key] = plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)
            lap(f"serialize {key}")
        return specs


def spike_in(spec_json: str, step: int, value: float) -> bool:
    import base64

    def decode(v: Any) -> list:
        if isinstance(v, dict) and "bdata" in v:
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
        return list(v or [])

    for trace in json.loads(spec_json).get("data", []):
        if trace.get("name") == "total (pre-clip)":
            return any(x == step and y == value for x, y in zip(decode(trace["x"]), decode(trace["y"]), strict=True))
    return False


def rss_mb() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure(run_dir: Path, feed_args: dict[str, Any], refreshes: int) -> dict[str, Any]:
    """In this (fresh) process: warm up plotly, open the run cold, then refresh after each new epoch."""
    from trainers.telemetry.steps import StepWriter  # noqa: F401  (imported before the baseline, as in the UI)

    warm_dir = run_dir.parent.parent / "warm" / "runs"
    warm, warm_feed = make_run(warm_dir, 2, 50, 4, feed_args["fmt"])
    Page(warm).render()  # a UI server has drawn charts before: plotly's validators are loaded
    warm_feed.close()
    base = rss_mb()
    page = Page(run_dir)
    t0 = time.perf_counter()
    specs = page.render()
    first = time.perf_counter() - t0
    spike = feed_args["spike"]
    drawn = spike_in(specs["chart_grad_norm"], spike, 1e6)
    refresh = []
    cont = Continuation(run_dir, feed_args)
    for _ in range(refreshes):
        cont.next_epoch()
        if cont.steps_writer is not None:
            cont.steps_writer.flush()  # the training process compacts in its own process, not in the UI's
        t0 = time.perf_counter()
        specs = page.render()
        refresh.append(time.perf_counter() - t0)
    cont.close()
    return {
        "first_render_s": round(first, 3),
        "refresh_ms": round(1000 * statistics.median(refresh), 1) if refresh else None,
        "refresh_ms_max": round(1000 * max(refresh), 1) if refresh else None,
        "rss_mb": round(rss_mb() - base, 1),
        "spike_drawn": drawn and spike_in(specs["chart_grad_norm"], spike, 1e6),
    }


class Continuation(Feed):
    """The same feed continued by another process: a resumed writer attempt would be wrong, so it reopens the store
    as attempt 2 starting at the last step (nothing superseded), like a training process resumed at an epoch end."""

    def __init__(self, run_dir: Path, a: dict[str, Any]):
        from trainers.telemetry.events import TelemetryWriter

        self.run_dir, self.planned, self.n, self.fmt = run_dir, a["planned"], a["steps"], a["fmt"]
        self.names = [f"class{i:03d}" for i in range(a["classes"])]
        self.spike, self.spike_value = a["spike"], 1e6
        self.rng = np.random.default_rng(1)
        self.epoch, self.step, self.best = a["epochs"], a["epochs"] * a["steps"], 1.0
        self.events = TelemetryWriter(run_dir / "telemetry.jsonl")
        self.norm_walk, self.loss_walk = np.log(100.0), np.log(2.0)
        self.quality = self.rng.uniform(0.3, 1.0, a["classes"])
        self.steps_writer = None
        if self.fmt == "store":
            from trainers.telemetry.steps import StepWriter, resume_info

            folder = run_dir / "steps"
            meta = json.loads(next(folder.glob("attempt-*.json")).read_text())
            columns = {k: v for k, v in meta["columns"] if k not in ("step", "epoch", "t")}
            self.steps_writer = StepWriter(folder, resume_info(folder).attempt, self.step, columns)


# ---- driver ---------------------------------------------------------------------------------------------------------
def run_benchmark(epochs: int, steps: int, classes: int, refreshes: int, fmt: str = "store") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        root = Path(tmp) / "runs"
        t0 = time.perf_counter()
        run_dir, feed = make_run(root, epochs, steps, classes, fmt)
        feed.close()
        generate_s = time.perf_counter() - t0
        on_disk = telemetry_bytes(run_dir)
        args = {"epochs": epochs, "steps": steps, "classes": classes, "fmt": fmt, "spike": feed.spike,
                "planned": feed.planned}  # fmt: skip
        out = subprocess.run(
            [sys.executable, __file__, "--_measure", str(run_dir), json.dumps(args), str(refreshes)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=3600,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(
        epochs=epochs, steps_per_epoch=steps, classes=classes, format=fmt, generate_s=round(generate_s, 1),
        bytes_per_step=round(on_disk / (epochs * steps), 1), telemetry_mb=round(on_disk / 1e6, 1),
        machine=machine(),
    )  # fmt: skip
    result["goals_met"] = {k: result[k] is not None and result[k] <= g for k, g in GOALS.items()} | {
        "spike_drawn": bool(result["spike_drawn"])
    }
    return result


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--steps", type=int, default=7000)
    p.add_argument("--classes", type=int, default=80)
    p.add_argument("--refreshes", type=int, default=10)
    p.add_argument("--format", choices=("store", "jsonl"), default="store")
    p.add_argument("--json", action="store_true")
    p.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._measure:
        run_dir, args, refreshes = Path(a._measure[0]), json.loads(a._measure[1]), int(a._measure[2])
        os.environ["WORKBENCH_RUNS_DIR"] = str(run_dir.parent)
        print(json.dumps(measure(run_dir, args, refreshes)))
        return 0
    r = run_benchmark(a.epochs, a.steps, a.classes, a.refreshes, a.format)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        for key in ("first_render_s", "refresh_ms", "rss_mb", "bytes_per_step", "spike_drawn"):
            goal = GOALS.get(key)
            print(f"{key:16} {r[key]!s:>10}" + (f"   goal <= {goal}" if goal else ""))
        print(r["machine"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
