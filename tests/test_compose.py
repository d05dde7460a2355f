"""Composition: every on/off combination, real one-epoch training, portable checkpoints, DDP, no network."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, recipe_for, run_trainer, step_rows
from trainers import customizations as table

CUSTOMIZATIONS = table.keys()

ALL_ON = {
    "per_class_f1": {},
    "class_weights": {"scheme": "effective_number", "beta": 0.99, "cap": 5.0},
    "best_metric": {"metric": "val/cls_loss"},
    "freeze": {"layers": "backbone", "frozen_epochs": 1},
    "layer_lr": {"backbone_ratio": 0.1},
    "sync_bn": {},
    "grad_clip": {"max_norm": 1.0},
    "doctor_stop": {},
}
MASKS = itertools.product([0, 1], repeat=len(CUSTOMIZATIONS))
COMBOS = [tuple(n for n, on in zip(CUSTOMIZATIONS, mask, strict=True) if on) for mask in MASKS]


def combo_recipe(data, names, model="yolo26n.yaml", epochs=1):
    blocks = {n: ALL_ON[n] for n in names}
    if "freeze" in blocks and epochs <= blocks["freeze"]["frozen_epochs"]:
        blocks["freeze"] = {"layers": "backbone", "frozen_epochs": None}
    return recipe_for(data, model, {"epochs": epochs}, **blocks)


@pytest.mark.parametrize("family", ["yolo", "rtdetr"])
def test_all_combinations_compose(family):
    from trainers.training.compose import build_trainer_class
    from trainers.training.telemetry_mixin import TelemetryMixin

    order = [row.key for row in table.by_rank()]
    mixins = {row.key: row.mixin for row in table.rows()}

    assert len(COMBOS) == 2 ** len(CUSTOMIZATIONS)
    base_name = "RTDETRTrainer" if family == "rtdetr" else "DetectionTrainer"
    for names in COMBOS:
        cls = build_trainer_class(combo_recipe("d.yaml", names), family)
        mro = cls.__mro__
        assert mro[1] is TelemetryMixin and base_name in [c.__name__ for c in mro]
        present = [n for n in order if mixins[n] in mro]
        assert present == [n for n in order if n in names]  # exactly the toggled ones, in rank order
        assert [mro.index(mixins[n]) for n in present] == sorted(mro.index(mixins[n]) for n in present)
        assert sorted(cls.recipe.customizations) == sorted(names)
        # every customization hook resolves to the mixin, never shadowed by the ultralytics base
        for n in names:
            for attr, fn in vars(mixins[n]).items():
                if callable(fn) and not attr.startswith("__"):
                    assert any(vars(c).get(attr) is fn for c in mro)


SAMPLE = random.Random(7).sample(COMBOS[1:-1], 5) + [COMBOS[0], COMBOS[-1]]


@pytest.mark.slow
@pytest.mark.parametrize("names", SAMPLE, ids=["+".join(n) or "stock" for n in SAMPLE])
def test_sample_of_combinations_trains_one_epoch(tiny_data, tmp_path, names):
    trainer = run_trainer(combo_recipe(tiny_data, names), tmp_path)
    assert (tmp_path / "run" / "weights" / "last.pt").is_file()
    evs = [json.loads(x) for x in (tmp_path / "telemetry.jsonl").read_text().splitlines()]
    assert [e["event"] for e in evs if e["event"] == "epoch"] == ["epoch", "epoch"]  # epoch 1 + final eval
    assert len(step_rows(tmp_path)) == len(trainer.train_loader)  # one row per optimizer step in the step store


def portable_check(weights: Path, loader: str) -> str:
    """Load and predict in a fresh interpreter where importing `trainers` fails."""
    code = textwrap.dedent("""
        import sys, os
        sys.modules["trainers"] = None  # any attempt to import our package now raises ImportError
        from trainers.offline import apply_offline_env
    """)
    probe = textwrap.dedent(f"""
        import sys
        sys.modules["trainers"] = None
        import numpy as np
        from ultralytics import {loader}
        try:
            import trainers  # noqa
            raise SystemExit("trainers importable")
        except ImportError:
            pass
        m = {loader}({str(weights)!r})
        assert type(m.model).__module__.startswith("ultralytics."), type(m.model)
        res = m.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=64, verbose=False)
        print("OK", type(m.model).__name__, sorted(m.model.workbench["recipe"]["customizations"]), len(res))
    """)
    del code
    env_code = "from trainers.offline import offline_env; import json; print(json.dumps(offline_env()))"
    env = json.loads(
        subprocess.run([sys.executable, "-c", env_code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    )
    import os

    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, **env, "PYTHONPATH": ""},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "loader"), [("yolo11n.yaml", "YOLO"), ("rtdetr-l.yaml", "RTDETR")])
def test_all_seven_train_one_epoch_and_checkpoints_are_portable(tiny_data, tmp_path, model, loader):
    train = {"epochs": 2, "batch": 4, "nbs": 4} if "rtdetr" in model else {"epochs": 2}
    r = recipe_for(tiny_data, model, train, **ALL_ON)
    if "rtdetr" in model:
        r["train"]["fraction"] = 0.5  # 8 train images: keeps RT-DETR at about a minute on 2 CPU cores
    trainer = run_trainer(r, tmp_path)
    assert type(trainer).__mro__[-3].__name__ in {"DetectionTrainer", "RTDETRTrainer"}
    for ckpt in ("best.pt", "last.pt"):
        line = portable_check(tmp_path / "run" / "weights" / ckpt, loader)
        assert line.startswith("OK") and all(n in line for n in CUSTOMIZATIONS), line


@pytest.mark.slow
def test_yolo26_all_seven_checkpoint_portable(tiny_data, tmp_path):
    run_trainer(recipe_for(tiny_data, "yolo26n.yaml", {"epochs": 2}, **ALL_ON), tmp_path)
    line = portable_check(tmp_path / "run" / "weights" / "best.pt", "YOLO")
    assert line.startswith("OK DetectionModel")


def test_class_survives_ultralytics_ddp_file_generation(tiny_data, tmp_path):
    """ultralytics cloudpickles the trainer class + callbacks for DDP workers; rebuild it in a fresh process."""
    from ultralytics.utils.dist import ddp_cleanup, generate_ddp_file

    from trainers.recipe import Recipe
    from trainers.training.compose import build_trainer_class

    r = Recipe.from_dict(recipe_for(tiny_data, "yolo26n.yaml", {"epochs": 3}, **ALL_ON))
    cls = build_trainer_class(r, telemetry_path=str(tmp_path / "t.jsonl"), run_dir=None, step_stride=3)
    trainer = cls(overrides={**r.train, "model": r.model, "data": r.data, "project": str(tmp_path), "name": "run"})
    file = generate_ddp_file(trainer)
    try:
        state_file = Path(file).with_suffix(".pt")
        probe = textwrap.dedent(f"""
            import json, sys
            from ultralytics.utils import DEFAULT_CFG_DICT
            from ultralytics.utils.patches import torch_load
            state = torch_load({str(state_file)!r}, map_location="cpu")
            cfg = DEFAULT_CFG_DICT.copy(); cfg.update(save_dir="")
            t = state["trainer"](cfg=cfg, overrides=state["args"], _callbacks=state["callbacks"])  # as the worker does
            ours = {{k: sum(getattr(f, "__module__", "") == "trainers.training.telemetry_mixin" for f in v)
                    for k, v in t.callbacks.items()}}
            print(json.dumps({{"name": type(t).__name__, "mro": [c.__name__ for c in type(t).__mro__],
                "recipe": t.recipe.to_dict(), "stride": t.step_stride, "telemetry": t.telemetry_path,
                "ours": {{k: v for k, v in ours.items() if v}}}}))
        """)
        import os

        out = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        ddp_cleanup(trainer, file)
    assert got["name"] == cls.__name__
    assert got["mro"] == [c.__name__ for c in cls.__mro__]
    assert (
        got["recipe"] == cls.recipe.to_dict() and got["stride"] == 3 and got["telemetry"] == str(tmp_path / "t.jsonl")
    )
    from trainers.training.telemetry_mixin import CALLBACKS

    assert got["ours"] == {event: 1 for event, _ in CALLBACKS}  # every one of ours there once: nothing twice
    assert not Path(file).exists()


@pytest.mark.slow
def test_training_run_opens_no_socket(tiny_data, tmp_path):
    """An audit hook in a fresh process records every socket/DNS/HTTP attempt during a full CLI training run.

    The probe first makes a deliberate connection and checks that the hook recorded it, so an empty list after the
    run means "no attempt", not "a hook that never fires".
    """
    recipe = tmp_path / "r.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump(recipe_for(tiny_data, "yolo26n.yaml", {"epochs": 2}, **ALL_ON)))
    import socket

    with socket.socket() as s:  # a port nothing listens on (bound, then released): the probe's connection is refused
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    probe = textwrap.dedent(f"""
        import socket, sys
        seen = []
        def hook(event, args):
            if event.startswith(("socket.", "urllib.", "http.")):
                seen.append(event)
        sys.addaudithook(hook)
        try:  # first prove the hook sees a connection attempt (refused: nothing listens there)
            socket.create_connection(("127.0.0.1", {closed_port}), timeout=2).close()
        except OSError:
            pass
        print("PROBE", sorted(set(seen)))
        seen.clear()
        from trainers.training.run import train_run
        code = train_run({str(recipe)!r}, {str(tmp_path / "runs")!r}, "net")
        print("SOCKETS", sorted(set(seen)), "EXIT", code)
    """)
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}  # the runner must set them itself
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO), "WORKBENCH_HOME": str(tmp_path / "home")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe_line = next(line for line in out.stdout.splitlines() if line.startswith("PROBE"))
    assert "'socket.connect'" in probe_line, probe_line  # the hook catches a deliberate connection...
    assert "SOCKETS [] EXIT 0" in out.stdout, out.stdout[-2000:]  # ...and training makes none
