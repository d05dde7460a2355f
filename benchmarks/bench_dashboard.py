"""Run dashboard on a long run: time to first render and per live refresh, server side, on a generated log.

Writes a schema-valid ``telemetry.jsonl`` of ``--epochs`` x ``--steps`` optimizer steps (default 300 x 1,000 =
300,000 step events, 6 parameter groups, pre-clip norms per group, 3 losses, 4 classes per epoch, freeze/unfreeze)
into a temporary run folder with a ``running`` status.json, with one huge gradient-norm spike at a known step. Then
it does what the dashboard page (``app/app_pages/dashboard.py``) does on each render, with the same functions:
``launcher.refresh_status``, ``run_views.run_events(run).poll()`` (incremental read from the byte offset + fold +
snapshot), ``run_views.eta_seconds``, ``RunLog.clip_share``, the six chart builders, ``run_views.console_tail`` and
``exports.artifacts``; and it serializes every figure the way ``st.plotly_chart`` does (figure check +
``plotly.io.to_json``).

Figures printed:

- first render (cold: nothing cached, whole log read): read+fold, figures, serialization, total. Goal <= 2 s.
- live refresh: ``--refreshes`` times, one new epoch (1,000 step events + its epoch event) is appended, then the
  same render runs again (only the new bytes are read). Median and max. Goal <= 100 ms.
- points per trace after min-max downsampling (``charts.MAX_POINTS``), for the step charts.
- the largest gradient-norm spike: its value and step must be in the drawn (downsampled, serialized) trace.
- optional (``--apptest``): a full ``AppTest`` render of the dashboard page on the run (Streamlit script run,
  protobuf marshalling), cold and warm.

Usage::

    python benchmarks/bench_dashboard.py                 # 300 epochs x 1,000 steps, 10 refreshes
    python benchmarks/bench_dashboard.py --apptest --json
    python benchmarks/bench_dashboard.py --epochs 5 --steps 50 --refreshes 2
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GOAL_FIRST_RENDER_S = 2.0
GOAL_REFRESH_S = 0.100
NAMES = ["person", "car", "dog", "bicycle"]
GROUPS = ["head/weight", "head/bn", "head/bias", "backbone/weight", "backbone/bn", "backbone/bias"]
LOSSES = ("box_loss", "cls_loss", "dfl_loss")
MAX_NORM = 10.0
RUN_NAME = "long-run"
T0 = 1_760_000_000.0


# ---- the generated log ---------------------------------------------------------------------------------------------
def _line(record: dict[str, Any]) -> str:
    # The byte format of trainers.telemetry.TelemetryWriter.emit (compact separators, NaN refused).
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"


def _lr(group: str, step: int, warmup: int, total: int) -> float:
    base = 0.01 * (0.1 if group.startswith("backbone/") else 1.0)
    if step <= warmup:  # ultralytics warmup: bias falls from 0.1, the others rise from 0
        start = 0.1 if group.endswith("bias") else 0.0
        return start + (base - start) * step / warmup
    return base * (1.0 - 0.99 * step / total)


def run_start_event(epochs: int, t: float) -> dict[str, Any]:
    recipe = {
        "model": "yolo26n.yaml",
        "data": "/data/big/data.yaml",
        "train": {"epochs": epochs, "imgsz": 640, "batch": 16, "nbs": 16},
        "customizations": {"per_class_f1": {}, "layer_lr": {"backbone_ratio": 0.1}, "grad_clip": {"max_norm": 10.0}},
    }
    return {
        "v": 1, "event": "run_start", "t": t, "recipe": recipe, "names": NAMES, "param_groups": GROUPS,
        "versions": {"workbench": "0.1.0", "ultralytics": "8.4.190", "torch": "2.15.0", "python": "3.11.7"},
        "device": "0", "pid": os.getpid(), "epochs": epochs, "start_epoch": 1, "resumed": False, "world_size": 1,
    }  # fmt: skip


def step_events(
    rng: random.Random, epoch: int, first: int, n: int, total_steps: int, t: float, spike: tuple[int, float] | None
) -> list[dict[str, Any]]:
    """``n`` step events of ``epoch`` from global step ``first``; ``spike=(step, value)`` puts the spike there."""
    out = []
    for step in range(first, first + n):
        total = 100.0 * rng.lognormvariate(0.0, 0.25)  # YOLO's pre-clip norms sit around 100 (README)
        if spike and step == spike[0]:
            total = spike[1]
        share = [rng.random() + 0.05 for _ in GROUPS]
        s = sum(share)
        norms = {g: total * (w / s) ** 0.5 for g, w in zip(GROUPS, share, strict=True)}
        out.append(
            {
                "v": 1, "event": "step", "t": t + step * 0.05, "epoch": epoch, "step": step,
                "lr": {g: _lr(g, step, warmup=3 * n, total=total_steps) for g in GROUPS},
                "grad_norm": total, "grad_norms": norms, "clipped": total > MAX_NORM, "max_norm": MAX_NORM,
                "loss": {k: rng.uniform(0.5, 3.0) / (1 + epoch / 50) for k in LOSSES},
            }
        )  # fmt: skip
    return out


def epoch_event(rng: random.Random, epoch: int, t: float, best_so_far: float) -> dict[str, Any]:
    q = 1.0 - 1.0 / (1.0 + epoch / 20)
    per_class = []
    for i, name in enumerate(NAMES):
        p, r = q * (1 - 0.15 * i) * rng.uniform(0.95, 1.0), q * (1 - 0.1 * i) * rng.uniform(0.95, 1.0)
        per_class.append(
            {
                "id": i, "name": name, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                "ap50": q * 0.9, "ap": q * 0.6, "present": True,
            }
        )  # fmt: skip
    fitness = q * 0.5 * rng.uniform(0.97, 1.0)
    metrics = {
        "metrics/precision(B)": q * 0.8, "metrics/recall(B)": q * 0.7, "metrics/mAP50(B)": q * 0.75,
        "metrics/mAP50-95(B)": fitness, **{f"val/{k}": 2.0 / (1 + epoch / 30) for k in LOSSES},
        **{f"train/{k}": 2.1 / (1 + epoch / 30) for k in LOSSES},
    }  # fmt: skip
    return {
        "v": 1, "event": "epoch", "t": t, "epoch": epoch, "final_eval": False, "metrics": metrics,
        "per_class": per_class, "mean_f1": sum(c["f1"] for c in per_class) / len(per_class), "fitness": fitness,
        "best_fitness": max(fitness, best_so_far), "best_saved": fitness > best_so_far,
        "params": {"trainable": 2_500_000, "frozen": 0}, "lr": {g: 0.001 for g in GROUPS}, "epoch_time": 50.0,
    }  # fmt: skip


class LogWriter:
    """Writes the generated run: :meth:`header` (``run_start``, ``freeze``), then one :meth:`next_epoch` at a time."""

    def __init__(self, path: Path, planned_epochs: int, steps_per_epoch: int, spike: tuple[int, float], seed: int = 0):
        self.path, self.planned, self.n = path, planned_epochs, steps_per_epoch
        self.spike = spike
        self.rng = random.Random(seed)
        self.epoch, self.step, self.best = 0, 1, -1.0
        self.events_written = 0

    def _t(self) -> float:
        return T0 + self.step * 0.05

    def header(self) -> list[dict[str, Any]]:
        return [
            run_start_event(self.planned, T0),
            {"v": 1, "event": "freeze", "t": T0, "epoch": 1, "layers": list(range(11)), "params": 500_000},
        ]

    def next_epoch(self) -> list[dict[str, Any]]:
        """The events of the next epoch: its steps, then its epoch event (an unfreeze first at epoch 3)."""
        self.epoch += 1
        events = []
        if self.epoch == 3:
            events.append(
                {"v": 1, "event": "unfreeze", "t": self._t(), "epoch": 3, "layers": list(range(11)), "params": 500_000}
            )
        total_steps = self.planned * self.n
        events += step_events(self.rng, self.epoch, self.step, self.n, total_steps, T0, self.spike)
        self.step += self.n
        ev = epoch_event(self.rng, self.epoch, self._t(), self.best)
        self.best = max(self.best, ev["fitness"])
        events.append(ev)
        return events

    def write(self, events: list[dict[str, Any]]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(map(_line, events)))
        self.events_written += len(events)


def make_run(
    root: Path, epochs: int, steps: int, *, planned_epochs: int | None = None, spike_step: int | None = None,
    spike_value: float = 1e6, seed: int = 0,
) -> tuple[Path, LogWriter]:  # fmt: skip
    """A run folder ``<root>/long-run`` (status ``running``, pid = this process) with ``epochs`` x ``steps`` logged.

    Returns:
        The run folder and the writer (call ``writer.write(writer.next_epoch())`` to append one more epoch).
    """
    from trainers.run_folder import create_run_dir
    from trainers.run_status import write_status

    run_dir = create_run_dir(root, RUN_NAME)
    spike_step = spike_step if spike_step is not None else (epochs * steps) * 2 // 5 + 7  # mid-epoch, not a bucket edge
    writer = LogWriter(
        run_dir / "telemetry.jsonl", planned_epochs or epochs + 10, steps, (spike_step, spike_value), seed
    )
    writer.write(writer.header())
    for _ in range(epochs):
        writer.write(writer.next_epoch())
    (run_dir / "console.log").write_text("".join(f"epoch {e} done\n" for e in range(1, epochs + 1)), encoding="utf-8")
    # A live run: this process stands in for the training process, so refresh_status sees it alive.
    write_status(run_dir, status="running", pid=os.getpid(), epoch=epochs, epochs=writer.planned)
    return run_dir, writer


# ---- one dashboard render, server side -----------------------------------------------------------------------------
def render(run_dir: Path, *, serialize: bool = True) -> tuple[dict[str, Any], dict[str, str], dict[str, float]]:
    """What one run of the dashboard fragment computes, minus Streamlit itself.

    Returns:
        ``(figures by chart key, serialized JSON by chart key, phase timings in seconds)``.
    """
    import plotly.io
    import plotly.tools

    from app import charts, class_charts, exports, run_views
    from trainers import launcher

    t0, c0 = time.perf_counter(), time.process_time()
    status = launcher.refresh_status(run_dir)
    log = run_views.run_events(run_dir).poll()  # incremental read + fold + snapshot
    t1, c1 = time.perf_counter(), time.process_time()
    run_views.eta_seconds(log, status.get("epochs") or log.epochs_planned)
    log.clip_share()
    figs = {
        "chart_f1": class_charts.f1_figure(log),
        "chart_f1_heatmap": class_charts.f1_heatmap(log),
        "chart_metrics": charts.metrics_figure(log),
        "chart_losses": charts.loss_figure(log),
        "chart_lr": charts.lr_figure(log, log_y=False),
        "chart_grad_norm": charts.grad_norm_figure(log, log_y=False),
    }
    run_views.console_tail(run_dir)
    exports.artifacts(run_dir)
    t2 = time.perf_counter()
    specs: dict[str, str] = {}
    if serialize:  # what st.plotly_chart does with each figure before it builds the message
        for key, fig in figs.items():
            checked = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
            specs[key] = plotly.io.to_json(checked, validate=False)
    t3, c3 = time.perf_counter(), time.process_time()
    timings = {"read_fold_s": t1 - t0, "figures_s": t2 - t1, "serialize_s": t3 - t2, "total_s": t3 - t0}
    timings["total_cpu_s"] = c3 - c0  # CPU time of this process: what a busy neighbour cannot inflate
    timings["read_fold_cpu_s"] = c1 - c0
    return figs, specs, timings


def decode(values: Any) -> list:
    """A trace's x or y as a list, from a figure (numpy) or from serialized JSON (plotly's base64 typed arrays)."""
    if isinstance(values, dict) and "bdata" in values:
        import numpy as np

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return list(values) if values is not None else []


def points_per_trace(spec: dict[str, Any]) -> dict[str, int]:
    """Trace name -> number of points, from a serialized figure (``json.loads`` of the spec)."""
    return {t.get("name", str(i)): len(decode(t.get("x"))) for i, t in enumerate(spec.get("data", []))}


def spike_in_trace(spec: dict[str, Any], trace: str, step: int, value: float) -> bool:
    """Whether the serialized trace ``trace`` has the point ``(step, value)``."""
    for t in spec.get("data", []):
        if t.get("name") == trace:
            return any(x == step and y == value for x, y in zip(decode(t["x"]), decode(t["y"]), strict=True))
    return False


def render_floor(root: Path, repeats: int = 5) -> dict[str, float]:
    """Median render of a 2-epoch x 50-step run: what a refresh costs whatever the log size."""
    from app import run_views

    run_dir, _ = make_run(root, 2, 50)
    render(run_dir)
    timings = [render(run_dir)[2] for _ in range(repeats)]
    run_views.forget_run(run_dir)
    return {"steps": 100, **{k: statistics.median(t[k] for t in timings) for k in timings[0]}}


def read_fold_breakdown(log_path: Path) -> dict[str, float]:
    """The cold read+fold split into its parts: ``read_events`` (JSON decoding), ``RunLog.extend``, ``snapshot``."""
    from trainers.telemetry.events import read_events
    from trainers.telemetry.run_log import RunLog

    t0 = time.perf_counter()
    events, _ = read_events(log_path)
    t1 = time.perf_counter()
    log = RunLog.from_events(events)
    t2 = time.perf_counter()
    log.snapshot()
    t3 = time.perf_counter()
    return {"read_events_s": t1 - t0, "fold_s": t2 - t1, "snapshot_s": t3 - t2}


def plotly_warmup(build: Any) -> None:
    """Build and serialize one small figure (plotly imports its validators lazily, once per process)."""
    import plotly.io
    import plotly.tools

    from trainers.telemetry.run_log import RunLog

    log = RunLog.from_events(
        [
            run_start_event(1, T0),
            *step_events(random.Random(0), 1, 1, 5, 5, T0, None),
            epoch_event(random.Random(0), 1, T0, 0),
        ]
    )
    plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(build(log), validate_figure=True))


# ---- the benchmark ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def runs_dir_env(root: Path) -> Iterator[None]:
    """``$WORKBENCH_RUNS_DIR`` set to ``root`` (the app reads its runs root there), restored afterwards."""
    old = os.environ.get("WORKBENCH_RUNS_DIR")
    os.environ["WORKBENCH_RUNS_DIR"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_RUNS_DIR", None)
        else:
            os.environ["WORKBENCH_RUNS_DIR"] = old


def apptest_render(root: Path, run_dir: Path) -> dict[str, Any]:
    """Full Streamlit render of the dashboard page through the app's entry script: cold (cache dropped) and warm."""
    from streamlit.testing.v1 import AppTest

    from app import run_views

    with runs_dir_env(root):
        at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
        at.session_state["nr_model_source"] = "builtin"  # the New run page renders first; keep it light
        at.run()
        at.query_params["run"] = run_dir.name
        run_views.forget_run(run_dir)
        t0 = time.perf_counter()
        at.switch_page("app_pages/dashboard.py").run()
        cold = time.perf_counter() - t0
        assert not at.exception, [e.value for e in at.exception]
        charts_drawn = len(at.get("plotly_chart"))
        t0 = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t0
        assert not at.exception, [e.value for e in at.exception]
    return {"apptest_cold_s": cold, "apptest_warm_s": warm, "apptest_charts": charts_drawn}


def run_benchmark(
    epochs: int = 300, steps: int = 1000, refreshes: int = 10, *, apptest: bool = False, workdir: Path | None = None,
    spike_value: float = 1e6,
) -> dict[str, Any]:  # fmt: skip
    """Generate the run, render it cold, then append an epoch and re-render ``refreshes`` times.

    Returns:
        Every figure measured (see the module docstring), as a JSON-ready dict.
    """
    from app import charts, class_charts, run_views
    from trainers.telemetry.events import read_events
    from trainers.telemetry.schema import validate_event

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-", dir=workdir) as tmp:
        root = Path(tmp) / "runs"
        t0 = time.perf_counter()
        run_dir, writer = make_run(root, epochs, steps, spike_value=spike_value)
        gen_s = time.perf_counter() - t0
        log_path = run_dir / "telemetry.jsonl"
        log_mb = os.path.getsize(log_path) / 1e6
        spike_step = writer.spike[0]

        # Schema check on a sample (every event of the first two epochs and of the spike's epoch, then 1 in 97).
        events, _ = read_events(log_path)
        names = NAMES
        spike_epoch = (spike_step - 1) // steps + 1
        sample = [ev for i, ev in enumerate(events) if ev.get("epoch", 1) in (1, 2, spike_epoch) or i % 97 == 0]
        problems = [p for ev in sample for p in validate_event(ev, names)]
        assert not problems, problems[:5]
        n_events = len(events)
        del events, sample

        # Plotly loads its validators on first use; a UI server has done that long before a run is opened.
        t0 = time.perf_counter()
        for build in (class_charts.f1_figure, charts.loss_figure, charts.grad_norm_figure):
            plotly_warmup(build)
        warmup_s = time.perf_counter() - t0

        run_views.forget_run(run_dir)
        _figs, specs, first = render(run_dir)
        gn = json.loads(specs["chart_grad_norm"])
        lr = json.loads(specs["chart_lr"])
        spike_drawn = spike_in_trace(gn, "total (pre-clip)", spike_step, spike_value)

        breakdown = read_fold_breakdown(log_path)

        refresh: list[dict[str, float]] = []
        appended: list[int] = []
        for _ in range(refreshes):
            new = writer.next_epoch()
            writer.write(new)
            appended.append(len(new))
            _figs, specs, timing = render(run_dir)
            refresh.append(timing)
        after = json.loads(specs["chart_grad_norm"]) if refreshes else gn
        spike_drawn_after = spike_in_trace(after, "total (pre-clip)", spike_step, spike_value)
        n_steps = run_views.run_events(run_dir).poll().n_steps

        result: dict[str, Any] = {
            "epochs": epochs,
            "steps_per_epoch": steps,
            "step_events": epochs * steps,
            "events": n_events,
            "log_mb": round(log_mb, 1),
            "generate_s": gen_s,
            "plotly_warmup_s": warmup_s,
            "first_render": first,
            "first_render_breakdown": breakdown,
            "first_render_goal_s": GOAL_FIRST_RENDER_S,
            "first_render_goal_met": first["total_s"] <= GOAL_FIRST_RENDER_S,
            "refreshes": refreshes,
            "events_per_refresh": sorted(set(appended)),
            "refresh_median": {k: statistics.median(r[k] for r in refresh) for k in first} if refresh else None,
            "refresh_max": {k: max(r[k] for r in refresh) for k in first} if refresh else None,
            "refresh_goal_s": GOAL_REFRESH_S,
            "refresh_goal_met": bool(refresh) and statistics.median(r["total_s"] for r in refresh) <= GOAL_REFRESH_S,
            "max_points": charts.MAX_POINTS,
            "points_per_trace": {"chart_grad_norm": points_per_trace(gn), "chart_lr": points_per_trace(lr)},
            "spike": {
                "step": spike_step,
                "value": spike_value,
                "drawn": spike_drawn,
                "drawn_after_refresh": spike_drawn_after,
            },
            "steps_after_refreshes": n_steps,
        }
        result["floor"] = render_floor(Path(tmp) / "small")
        if apptest:
            result.update(apptest_render(root, run_dir))
        run_views.forget_run(run_dir)
        return result


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load:.2f}"


def report(r: dict[str, Any]) -> str:
    f, m, x = r["first_render"], r["refresh_median"], r["refresh_max"]
    gn = r["points_per_trace"]["chart_grad_norm"]
    lr = r["points_per_trace"]["chart_lr"]
    lines = [
        f"machine: {r['machine']} (load average before the benchmark)",
        f"log: {r['epochs']} epochs x {r['steps_per_epoch']:,} steps = {r['step_events']:,} step events, "
        f"{r['events']:,} events, {r['log_mb']} MB (generated in {r['generate_s']:.1f} s); "
        f"plotly first use in this process {r['plotly_warmup_s']:.2f} s (not counted below)",
        f"first render (cold): read+fold {f['read_fold_s']:.2f} s, figures {f['figures_s']:.2f} s, "
        f"serialize {f['serialize_s']:.2f} s, total {f['total_s']:.2f} s wall, {f['total_cpu_s']:.2f} s CPU "
        f"(goal <= {r['first_render_goal_s']:g} s: {'met' if r['first_render_goal_met'] else 'NOT MET'})",
        "  read+fold measured again in parts: read_events (JSON decoding) {read_events_s:.2f} s, RunLog fold "
        "{fold_s:.2f} s, snapshot {snapshot_s:.2f} s".format(**r["first_render_breakdown"]),
    ]
    if m:
        ms = {k: f"{v * 1000:.0f}" for k, v in m.items()}
        lines.append(
            f"live refresh (+{'/'.join(map(str, r['events_per_refresh']))} events, {r['refreshes']}x): median "
            f"{ms['total_s']} ms wall (read+fold {ms['read_fold_s']}, figures {ms['figures_s']}, serialize "
            f"{ms['serialize_s']}), {ms['total_cpu_s']} ms CPU; max {x['total_s'] * 1000:.0f} ms "
            f"(goal <= {r['refresh_goal_s'] * 1000:g} ms: {'met' if r['refresh_goal_met'] else 'NOT MET'})"
        )
        fl = r["floor"]
        lines.append(
            f"  the same render of a {fl['steps']}-step run (fixed cost of the six figures): median "
            f"{fl['total_s'] * 1000:.0f} ms wall (figures {fl['figures_s'] * 1000:.0f}, serialize "
            f"{fl['serialize_s'] * 1000:.0f}), {fl['total_cpu_s'] * 1000:.0f} ms CPU"
        )
    lines += [
        f"points per trace (MAX_POINTS {r['max_points']}): grad norm max {max(gn.values())} over {len(gn)} traces, "
        f"LR max {max(lr.values())} over {len(lr)} traces, from {r['step_events']:,} steps",
        f"largest spike (step {r['spike']['step']:,}, {r['spike']['value']:g}): drawn {r['spike']['drawn']}, "
        f"still drawn after the refreshes {r['spike']['drawn_after_refresh']}",
    ]
    if "apptest_cold_s" in r:
        lines.append(
            f"AppTest render of the dashboard page: cold {r['apptest_cold_s']:.2f} s, warm {r['apptest_warm_s']:.2f} s "
            f"({r['apptest_charts']} charts)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps per epoch")
    p.add_argument("--refreshes", type=int, default=10, help="live refreshes to time (one new epoch each)")
    p.add_argument("--apptest", action="store_true", help="also time a full AppTest render of the dashboard page")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    args = p.parse_args(argv)
    load_before = machine()
    r = run_benchmark(args.epochs, args.steps, args.refreshes, apptest=args.apptest)
    r["machine"] = load_before
    print(json.dumps(r, indent=2) if args.json else report(r))
    return 0 if r["spike"]["drawn"] and r["spike"]["drawn_after_refresh"] else 1


if __name__ == "__main__":
    sys.exit(main())
