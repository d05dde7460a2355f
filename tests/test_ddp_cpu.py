"""A real two-process DDP run on CPU (gloo): the trainer with all seven customizations, through ultralytics' own launch.

The launching process builds the composed trainer class, ultralytics' ``BaseTrainer.train()`` takes its DDP branch:
``generate_ddp_command`` cloudpickles the class, args and callbacks into a temp file and runs
``python -m torch.distributed.run --nproc_per_node 2`` on it; each worker rebuilds the trainer and trains. Only what
insists on CUDA is patched, in the workers, by ``tests/ddp_cpu_support.py`` (see there). The demo data is sharded
between the ranks, so weights stay identical only if every trainable parameter's gradient is all-reduced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import DEMO_BASE, DEMO_DATA, step_rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # the whole module takes about 25 s on 2 cores

EPOCHS = 3
FROZEN_EPOCHS = 1  # backbone frozen in epoch 1, unfrozen (and DDP re-wrapped) at the start of epoch 2
BATCH = 8  # total over both ranks: 4 images per rank and step
ALL_SEVEN = {
    "per_class_f1": {},
    "class_weights": {"scheme": "effective_number", "beta": 0.99, "cap": 10.0},
    "best_metric": {"metric": "f1"},
    "freeze": {"layers": "backbone", "frozen_epochs": FROZEN_EPOCHS},
    "layer_lr": {"backbone_ratio": 0.1},
    "sync_bn": {},
    "grad_clip": {"max_norm": 10.0},
}
TRAIN = {
    "epochs": EPOCHS,
    "imgsz": 64,
    "batch": BATCH,
    "nbs": BATCH,  # one optimizer step per batch, so steps are countable
    "fraction": 0.5,  # 24 of the 48 demo train images: 12 per rank, 3 steps per rank and epoch
    "optimizer": "AdamW",
    "lr0": 0.002,
    "warmup_epochs": 0,
    "seed": 0,
    "plots": False,
    "val": True,
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Train once with two CPU processes; return the run folder and the telemetry log."""
    import yaml

    from tests.ddp_cpu_support import CALLBACKS, cpu_ddp_class
    from trainers.training.compose import build_trainer_class

    tmp = tmp_path_factory.mktemp("ddp_cpu")
    demo = yaml.safe_load(DEMO_DATA.read_text())
    data = tmp / "data.yaml"  # absolute paths: the workers never resolve anything against a working directory
    data.write_text(yaml.safe_dump({**demo, "path": str(DEMO_DATA.parent.resolve())}))
    recipe = {"model": str(DEMO_BASE), "data": str(data), "train": TRAIN, "customizations": ALL_SEVEN}
    telemetry = tmp / "telemetry.jsonl"
    cls = cpu_ddp_class(build_trainer_class(recipe, telemetry_path=str(telemetry)))
    trainer = cls(
        overrides={
            **TRAIN,
            "model": str(DEMO_BASE),
            "data": str(data),
            "device": "cpu",
            "project": str(tmp),
            "name": "run",
            "exist_ok": True,
        }
    )
    assert trainer.ddp and trainer.world_size == 2  # the launching process takes ultralytics' DDP branch
    for event, fn in CALLBACKS.items():
        trainer.add_callback(event, fn)
    trainer.train()  # generate_ddp_command -> python -m torch.distributed.run --nproc_per_node 2 <temp file>
    return tmp / "run", telemetry


def rank_records(run: Path) -> dict[int, list[dict]]:
    files = sorted((run / "ddp_cpu").glob("rank*.jsonl"))
    assert [f.name for f in files] == ["rank0.jsonl", "rank1.jsonl"], files
    return {r: read_jsonl(run / "ddp_cpu" / f"rank{r}.jsonl") for r in (0, 1)}


def backbone_layers(telemetry: Path) -> list[int]:
    unfreeze = [e for e in read_jsonl(telemetry) if e["event"] == "unfreeze"]
    assert len(unfreeze) == 1 and unfreeze[0]["epoch"] == FROZEN_EPOCHS + 1, unfreeze
    return unfreeze[0]["layers"]


def test_two_gloo_ranks_with_sync_batchnorm_and_separate_data_shards(ddp_run):
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    run, telemetry = ddp_run
    base = torch.load(DEMO_BASE, map_location="cpu", weights_only=False)["model"]
    n_bn = sum(isinstance(m, _BatchNorm) for m in base.modules())
    recs = rank_records(run)
    starts = {r: [x for x in recs[r] if x["kind"] == "train_start"] for r in (0, 1)}
    assert [len(s) for s in starts.values()] == [1, 1]
    s0, s1 = starts[0][0], starts[1][0]
    assert (s0["rank"], s1["rank"]) == (0, 1) and s0["pid"] != s1["pid"]  # two processes
    for s in (s0, s1):
        assert s["world_size"] == 2 and s["backend"] == "gloo" and s["ddp"] and s["device"] == "cpu"
        assert (s["sync_bn"], s["plain_bn"]) == (n_bn, 0)  # every BatchNorm became SyncBatchNorm, on both ranks
    assert s0["digests"] == s1["digests"]  # DDP broadcast rank 0's weights at the wrap
    sync_events = [e for e in read_jsonl(telemetry) if e["event"] == "sync_bn"]
    assert [e["world_size"] for e in sync_events] == [2]
    for epoch in range(1, EPOCHS + 1):  # the ranks trained on disjoint halves of the data, every epoch
        f0, f1 = ([x["files"] for x in recs[r] if x["kind"] == "epoch_end" and x["epoch"] == epoch][0] for r in (0, 1))
        assert len(f0) == len(f1) == 12 and not set(f0) & set(f1)


def test_ranks_hold_identical_weights_after_every_epoch_and_the_backbone_trains_after_unfreeze(ddp_run):
    run, telemetry = ddp_run
    recs = rank_records(run)
    layers = backbone_layers(telemetry)
    assert layers == list(range(11))  # yolo26n's backbone
    backbone = tuple(f"model.{i}." for i in layers)
    start = next(x for x in recs[0] if x["kind"] == "train_start")["digests"]
    epochs = {r: {x["epoch"]: x for x in recs[r] if x["kind"] == "epoch_end"} for r in (0, 1)}
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(1, EPOCHS + 1))
    for epoch in range(1, EPOCHS + 1):
        d0, d1 = epochs[0][epoch]["digests"], epochs[1][epoch]["digests"]
        assert d0.keys() == d1.keys()
        differ = sorted(k for k in d0 if d0[k] != d1[k])
        # parameters and BatchNorm running statistics (not broadcast by DDP here: synced by SyncBatchNorm)
        assert not differ, f"epoch {epoch}: {len(differ)} tensors differ between the ranks, e.g. {differ[:5]}"
        assert epochs[0][epoch]["ddp"] and epochs[1][epoch]["ddp"]
    d = {0: start, **{e: epochs[0][e]["digests"] for e in epochs[0]}}
    bb = {e: {k: v for k, v in d[e].items() if k.startswith(backbone)} for e in d}  # parameters and BN statistics
    head = {e: {k: v for k, v in d[e].items() if not k.startswith(backbone)} for e in d}
    moved = sorted(k for k in bb[0] if bb[0][k] != bb[1][k])
    assert bb[0] and not moved, f"frozen backbone changed in epoch 1: {moved[:5]}"  # BN statistics included (eval)
    assert head[0] != head[1]  # while the head trained
    for epoch in range(FROZEN_EPOCHS + 1, EPOCHS + 1):  # after the unfreeze every backbone tensor changes each epoch
        unchanged = sorted(k for k in bb[epoch] if bb[epoch][k] == bb[epoch - 1][k])
        assert not unchanged, f"epoch {epoch}: backbone tensors did not train: {unchanged[:5]}"


def test_telemetry_written_by_rank_0_only_one_event_per_step(ddp_run):
    run, telemetry = ddp_run
    recs = rank_records(run)
    events = read_jsonl(telemetry)
    pid0 = recs[0][0]["pid"]
    starts = [e for e in events if e["event"] == "run_start"]
    assert len(starts) == 1 and starts[0]["pid"] == pid0 and starts[0]["world_size"] == 2
    nb = {r: {x["epoch"]: x["batches"] for x in recs[r] if x["kind"] == "epoch_end"} for r in (0, 1)}
    assert nb[0] == nb[1] == dict.fromkeys(range(1, EPOCHS + 1), 3)  # 12 images per rank / 4 per rank and step
    expected, n = [], 0  # (epoch, global step number): every optimizer step of rank 0, once
    for epoch in range(1, EPOCHS + 1):
        for _ in range(nb[0][epoch]):
            n += 1
            expected.append((epoch, n))
    assert [(r["epoch"], r["step"]) for r in step_rows(telemetry.parent)] == expected  # in the step store
    from trainers.telemetry.steps import StepStore

    assert len(StepStore(telemetry.parent / "steps").attempts) == 1  # a writing rank 1 would add an attempt
    per_epoch = [e["epoch"] for e in events if e["event"] == "epoch" and not e["final_eval"]]
    assert per_epoch == list(range(1, EPOCHS + 1))
    assert [e["event"] for e in events if e["event"] in {"freeze", "unfreeze"}] == ["freeze", "unfreeze"]
    assert sum(e["event"] == "epoch" and e["final_eval"] for e in events) == 1
    for x in recs[1]:
        assert os.path.realpath(telemetry) not in x["open_files"]  # rank 1 never even opened the log


def test_best_pt_loads_with_plain_yolo_without_the_trainers_package(ddp_run):
    run, _ = ddp_run
    best = run / "weights" / "best.pt"
    assert best.is_file()
    image = next((DEMO_DATA.parent / "images" / "val").glob("*.jpg"))
    probe = textwrap.dedent(f"""
        import sys
        sys.modules["trainers"] = None  # importing our package now raises ImportError
        from ultralytics import YOLO
        m = YOLO({str(best)!r})
        res = m.predict({str(image)!r}, imgsz=64, verbose=False)
        assert type(m.model).__module__.startswith("ultralytics."), type(m.model)
        print("OK", type(m.model).__name__, sorted(m.model.names.values()), len(res))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "OK DetectionModel ['circle', 'cross', 'square', 'triangle'] 1"
