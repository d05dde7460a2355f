"""Every private API of a dependency that the workbench relies on, checked against the installed version.

``pyproject.toml`` lists them in a comment next to each package's upper bound; the tests here fail by name when a new
version renames one, changes its parameters, stops calling it where the workbench relies on it, or drops it, instead
of deep inside a training run. The lists below are checked against the code too: a mixin that starts overriding
another ultralytics method, reading another trainer attribute or importing another ultralytics name fails here until
it is listed (here and in ``pyproject.toml``).

- ultralytics (``<8.5``): the trainer hooks the mixins override, where ultralytics calls them, the trainer attributes
  they read and write, the callback events, the names imported from its modules, the metrics' attributes and keys.
- plotly (``<8``): ``app/chart_style.py`` encodes figures itself with ``_plotly_utils`` and builds them with
  ``go.Figure(_validate=False)``; what it writes is compared byte for byte with plotly's own serialization by
  ``tests/test_charts.py::test_every_chart_serializes_as_plotly_itself_would``; the names themselves are checked here.
- ray (``<3``, the cluster extra): the job client's ``_do_request`` (every request bounded by a timeout), and
  ``stop_job`` answering whether the job's supervisor still lives (``trainers.runs.backends.ray_cluster.jobs.stop``).
- streamlit: no private API (``st.*`` and ``streamlit.testing.v1`` only).
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO

# Overridden trainer method -> the ultralytics method that calls it (``self.<hook>(`` in its source).
HOOKS = {
    "_do_train": "BaseTrainer.train",
    "_model_train": "BaseTrainer._do_train",  # each epoch's start: model.train() with frozen BatchNorms kept in eval
    "set_model_attributes": "BaseTrainer._setup_train",  # before args.freeze is read, before the DDP wrap
    "build_optimizer": "BaseTrainer._build_train_pipeline",
    "set_class_weights": "BaseTrainer._setup_train",
    "optimizer_step": "BaseTrainer._do_train",
    "validate": "BaseTrainer._do_train",
    "save_model": "BaseTrainer._do_train",
    "final_eval": "BaseTrainer._do_train",
    "get_validator": "BaseTrainer._setup_train",  # EvidenceMixin wraps the validator it returns
}
# Attributes and methods of ultralytics' trainer that the mixins read, write or call (hooks aside).
ATTRIBUTES = {
    "add_callback", "args", "best", "best_fitness", "callbacks", "data", "device", "ema", "epoch", "epoch_time",
    "epochs", "fitness", "freeze_layer_names", "get_class_counts", "label_loss_items", "last", "loss_items",
    "metrics", "model", "optimizer", "scaler", "start_epoch", "test_loader", "tloss", "validator", "world_size",
}  # fmt: skip
# The validator's methods and attributes that trainers/training/evidence_mixin.py wraps, calls or reads.
VALIDATOR = {
    "init_metrics": ["model"], "update_metrics": ["preds", "batch"], "_prepare_batch": ["si", "batch"],
    "scale_preds": ["predn", "pbatch"],
}  # fmt: skip
# Callback events the workbench registers for or reads.
EVENTS = {
    "on_pretrain_routine_end", "on_train_start", "on_train_epoch_start", "on_train_batch_start", "on_train_batch_end",
    "on_fit_epoch_end", "on_model_save", "on_train_end",
}  # fmt: skip
# Names imported from ultralytics' modules anywhere in trainers/ (module -> names).
IMPORTS = {
    "ultralytics": {"YOLO"},  # its __version__ for run_start; YOLO loads a checkpoint or an export (export-model)
    "ultralytics.data.converter": {"convert_coco"},
    "ultralytics.models.rtdetr.train": {"RTDETRTrainer"},
    "ultralytics.models.yolo.detect": {"DetectionTrainer"},
    "ultralytics.nn.tasks": {
        "DetectionModel", "RTDETRDetectionModel", "guess_model_task", "load_checkpoint", "yaml_model_load",
    },
    "ultralytics.utils": {"LOGGER", "RANK", "SETTINGS", "ops"},
    "ultralytics.utils.callbacks": {"base", "platform"},
    "ultralytics.utils.downloads": {"safe_download", "unzip_file"},
    "ultralytics.utils.loss": {"FocalLoss", "VarifocalLoss"},
    "ultralytics.utils.metrics": {"ConfusionMatrix", "box_iou"},
    "ultralytics.utils.torch_utils": {"autocast", "unwrap_model"},
}  # fmt: skip
BOX_ATTRIBUTES = ("p", "r", "f1", "ap50", "ap", "ap_class_index")  # read by trainers.metrics.per_class_table


def ultralytics_trainers():
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.models.rtdetr.train import RTDETRTrainer
    from ultralytics.models.yolo.detect import DetectionTrainer

    return BaseTrainer, DetectionTrainer, RTDETRTrainer


def our_mixins() -> list[type]:
    """Every class of ours that a composed trainer can have in its MRO."""
    from trainers import customizations as table
    from trainers.training.base import WorkbenchBase
    from trainers.training.evidence_mixin import EvidenceMixin
    from trainers.training.telemetry_mixin import TelemetryMixin

    return [TelemetryMixin, EvidenceMixin, *(row.mixin for row in table.rows()), WorkbenchBase]


def self_attributes(cls: type, stored_only: bool = False) -> set[str]:
    """Names of ``self.<name>`` in the class' source (only assignments with ``stored_only``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and (not stored_only or isinstance(node.ctx, ast.Store))
    }


def ultralytics_names() -> set[str]:
    """What ultralytics' trainers define: their methods and every attribute they assign."""
    names: set[str] = set()
    for cls in ultralytics_trainers():
        names |= set(dir(cls)) | self_attributes(cls, stored_only=True)
    return names


def overridden() -> dict[str, list[type]]:
    """Ultralytics trainer methods that one of our mixins defines again, with the mixins that do."""
    _, detection, _ = ultralytics_trainers()
    found: dict[str, list[type]] = {}
    for cls in our_mixins():
        for name, value in vars(cls).items():
            if callable(value) and not name.startswith("__") and hasattr(detection, name):
                found.setdefault(name, []).append(cls)
    return found


# ---- ultralytics ---------------------------------------------------------------------------------------------------
def test_the_hooks_we_override_are_the_listed_ones():
    assert set(overridden()) == set(HOOKS), "list a new override in HOOKS and in pyproject.toml's ultralytics comment"


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_each_hook_exists_on_both_bases_with_the_parameters_we_override(hook):
    for base in ultralytics_trainers()[1:]:
        theirs = inspect.signature(getattr(base, hook))
        for cls in overridden().get(hook, []):
            ours = inspect.signature(vars(cls)[hook])
            if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in ours.parameters.values()):
                continue  # passes everything on
            assert list(ours.parameters) == list(theirs.parameters), (cls.__name__, base.__name__, hook)
            for name, p in ours.parameters.items():
                assert p.default == theirs.parameters[name].default, (cls.__name__, hook, name)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_each_hook_is_called_where_we_rely_on_it(hook):
    classes = {cls.__name__: cls for cls in ultralytics_trainers()}
    owner, method = HOOKS[hook].split(".")
    source = inspect.getsource(getattr(classes[owner], method))
    assert re.search(rf"self\.{hook}\(", source), f"{HOOKS[hook]} no longer calls self.{hook}()"


def test_the_trainer_attributes_we_use_are_the_listed_ones_and_exist():
    theirs = ultralytics_names()
    used = set().union(*(self_attributes(cls) for cls in our_mixins())) & theirs
    assert used - set(HOOKS) == ATTRIBUTES, "list a new trainer attribute in ATTRIBUTES and in pyproject.toml"
    assert ATTRIBUTES <= theirs, f"gone from ultralytics' trainers: {sorted(ATTRIBUTES - theirs)}"


def test_the_trainer_clips_at_a_fixed_ten_in_its_optimizer_step():
    """The stock step that WorkbenchBase.optimizer_step reproduces (and grad_clip changes): unscale, clip the total
    norm at max_norm=10.0, step, update, zero_grad, EMA (trainers/train_args.py STOCK_MAX_NORM)."""
    from trainers.train_args import STOCK_MAX_NORM

    base = ultralytics_trainers()[0]
    source = inspect.getsource(base.optimizer_step)
    assert f"clip_grad_norm_(self.model.parameters(), max_norm={STOCK_MAX_NORM})" in source
    order = ["self.scaler.unscale_(", "clip_grad_norm_(", "self.scaler.step(", "self.scaler.update()", "zero_grad()"]
    positions = [source.index(s) for s in order]
    assert positions == sorted(positions) and "self.ema.update(self.model)" in source


def test_every_callback_event_we_use_is_one_ultralytics_fires():
    from ultralytics.utils.callbacks.base import default_callbacks

    base = ultralytics_trainers()[0]
    source = inspect.getsource(inspect.getmodule(base))
    literals = set()
    for path in (REPO / "trainers").rglob("*.py"):
        literals |= set(re.findall(r"[\"'](on_[a-z_]+)[\"']", path.read_text(encoding="utf-8")))
    assert literals == EVENTS, "list a new callback event in EVENTS"
    for event in EVENTS:
        assert event in default_callbacks, event
        assert f'run_callbacks("{event}")' in source, f"the trainer no longer fires {event}"


def imported_names() -> dict[str, set[str]]:
    """``from ultralytics... import name`` and ``import ultralytics...`` anywhere in trainers/, lazy ones included."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "trainers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ultralytics":
                found.setdefault(node.module, set()).update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "ultralytics":
                        found.setdefault(alias.name, set())
    return found


def test_the_ultralytics_names_we_import_are_listed_and_exist():
    import importlib

    unlisted = {m: names - IMPORTS.get(m, set()) for m, names in imported_names().items()}
    unlisted = {m: names for m, names in unlisted.items() if names or m not in IMPORTS}
    assert not unlisted, "list a new ultralytics import in IMPORTS and in pyproject.toml"
    for module, names in IMPORTS.items():
        loaded = importlib.import_module(module)
        for name in names:
            assert hasattr(loaded, name) or importlib.util.find_spec(f"{module}.{name}"), f"{module}.{name}"


def test_the_validators_metrics_have_what_the_per_class_table_reads():
    from ultralytics.utils.metrics import DetMetrics

    from trainers.metrics import DETECTION

    metrics = DetMetrics()
    for name in BOX_ATTRIBUTES:
        assert hasattr(type(metrics.box), name) or hasattr(metrics.box, name), name
    assert {m.key for m in DETECTION} == set(metrics.keys)  # the catalogue's keys are ultralytics' own


@pytest.mark.parametrize("family", ["yolo", "rtdetr"])
def test_the_validator_methods_the_evidence_wraps_exist_with_their_parameters(family):
    from ultralytics.models.rtdetr.val import RTDETRValidator
    from ultralytics.models.yolo.detect import DetectionValidator

    validator = RTDETRValidator if family == "rtdetr" else DetectionValidator
    for name, params in VALIDATOR.items():
        assert list(inspect.signature(getattr(validator, name)).parameters)[1:] == params, (family, name)


def test_the_confusion_matrix_the_evidence_fills_takes_names_and_a_confidence():
    """The recorder builds its own ``ConfusionMatrix(names=validator.names)`` per validation and fills it per image at
    its own confidence; the PR curves come from the box metric's ``prec_values`` rows, one per ``ap_class_index``."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ConfusionMatrix, Metric

    assert list(inspect.signature(ConfusionMatrix).parameters)[:1] == ["names"]
    assert list(inspect.signature(ConfusionMatrix.process_batch).parameters)[1:4] == ["detections", "batch", "conf"]
    assert ConfusionMatrix(names={0: "a", 1: "b"}).matrix.shape == (3, 3)  # background row and column
    assert "names" in self_attributes(DetectionValidator, stored_only=True)
    assert {"prec_values", "ap_class_index"} <= self_attributes(Metric, stored_only=True) | set(dir(Metric))


def test_the_image_formats_restated_from_ultralytics_still_hold():
    """Restated instead of imported, to keep torch out of the UI process: the formats ultralytics' check_image takes."""
    import ultralytics
    from ultralytics.data.utils import IMG_FORMATS, check_image

    from trainers.datasets.corrupt_images import ULTRALYTICS_FORMATS

    assert ULTRALYTICS_FORMATS == IMG_FORMATS | {"jpeg2000"}
    assert 'IMG_FORMATS | {"jpeg2000"}' in inspect.getsource(check_image)
    assert isinstance(ultralytics.__version__, str)


def test_the_settings_file_path_restated_from_ultralytics_still_holds(monkeypatch, tmp_path):
    """The model zoo reads ultralytics' settings file without importing it (where the module exists: it is newer
    than this test, issue 18)."""
    from ultralytics.utils import get_user_config_dir

    model_zoo = pytest.importorskip("trainers.runs.model_zoo")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path))
    assert model_zoo.ultralytics_settings_file() == get_user_config_dir() / "settings.json"


def test_the_integrations_we_switch_off_are_ultralytics_settings():
    from ultralytics.utils import SETTINGS

    from trainers.offline import INTEGRATIONS_OFF

    assert set(INTEGRATIONS_OFF) <= set(SETTINGS.defaults)


def test_pyproject_names_every_listed_private_api_next_to_the_bound():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    comment = "\n".join(text.split('"ultralytics>=')[0].splitlines()[-12:])
    for name in (*HOOKS, "tloss", "freeze_layer_names"):
        assert name in comment, f"pyproject.toml: the comment above ultralytics' bound does not name {name}"
    assert re.search(r'"ultralytics>=[^"]*,<8\.5"', text)
    assert re.search(r'"plotly>=[^"]*,<8"', text) and "_plotly_utils" in text
    assert re.search(r'"ray\[default\]>=[^"]*,<3"', text) and "_do_request" in text


# ---- plotly --------------------------------------------------------------------------------------------------------
def test_plotlys_internals_that_chart_style_uses_are_there():
    """The serialization itself is compared byte for byte with plotly's in tests/test_charts.py."""
    import plotly.graph_objects as go
    from _plotly_utils.basevalidators import is_homogeneous_array
    from _plotly_utils.utils import plotlyjsShortTypes, to_typed_array_spec
    from plotly.basedatatypes import BaseFigure

    assert 'kwargs.pop("_validate", True)' in inspect.getsource(BaseFigure.__init__)
    fig = go.Figure(data=[{"type": "scatter", "y": [1, 2]}], layout={"title": {"text": "t"}}, _validate=False)
    assert isinstance(fig._data, list) and fig._data[0]["y"] == [1, 2] and isinstance(fig._layout, dict)
    assert plotlyjsShortTypes["float64"] == "f8" and callable(to_typed_array_spec) and callable(is_homogeneous_array)


# ---- ray -----------------------------------------------------------------------------------------------------------
def test_rays_job_client_sends_every_request_through_do_request_with_its_keywords():
    """trainers/runs/backends/ray_cluster/client.py bounds every request by adding ``timeout`` to ``_do_request``'s
    keywords, which Ray passes on to ``requests.request``."""
    pytest.importorskip("ray.job_submission")  # the cluster extra
    from ray.dashboard.modules.dashboard_sdk import SubmissionClient

    params = inspect.signature(SubmissionClient._do_request).parameters
    assert list(params)[:3] == ["self", "method", "endpoint"]
    assert any(p.kind is p.VAR_KEYWORD for p in params.values())
    source = inspect.getsource(SubmissionClient._do_request)
    assert re.search(r"requests\.request\([^)]*\*\*kwargs", source, flags=re.DOTALL)
    for call in ("get_job_info", "stop_job", "submit_job", "get_job_logs"):
        from ray.job_submission import JobSubmissionClient

        assert "self._do_request(" in inspect.getsource(getattr(JobSubmissionClient, call)), call


def test_ray_stop_job_answers_whether_the_supervisor_lives_not_whether_the_job_runs():
    """Why ``jobs.stop`` asks the job's status first (a stop of a job Ray reported STOPPED answered True once)."""
    pytest.importorskip("ray.job_submission")
    from ray.dashboard.modules.job.job_manager import JobManager

    source = inspect.getsource(JobManager.stop_job)
    assert "_get_actor_for_job(job_id)" in source and "return True" in source
    assert "get_status" not in source  # if Ray starts checking the job's status, jobs.stop's first call is moot
    assert Path(inspect.getfile(JobManager)).is_file()
