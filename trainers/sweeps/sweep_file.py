"""Sweep files: a base recipe and a grid of dotted recipe keys to value lists, checked and expanded into variants.

Example (``sweeps/lr.yaml``; paths are relative to the sweep file)::

    base: ../assets/recipes/demo-quick.yaml
    grid:
      customizations.layer_lr.backbone_ratio: [0.05, 0.3]
      train.lr0: [0.01, 0.002]
    early_stop: {epoch: 2, keep: 0.5}      # optional: sweep_early_stop.py

Every combination is a variant: an ordinary run named ``<name>-<n>`` (``n`` from 1, in grid order, the last key
changing fastest). A key under a customization that the base recipe leaves off turns it on with that value
(``customizations.grad_clip.max_norm: [5, 10]``); ``customizations.<block>: [false, {}]`` turns a block off and on.
The whole file is checked before any run starts: an unknown key, an empty grid, more than :data:`MAX_VARIANTS`
variants or a value the recipe rejects is one :class:`SweepError` line naming the key. Nothing here imports torch.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainers import customizations as table
from trainers.errors import RecipeError, WorkbenchError
from trainers.recipe import Recipe, dotted, load_recipe
from trainers.run_files import SWEEP_RECORD_FILE, SWEEPS_DIR, write_json_atomic
from trainers.runs.folder import ensure_name_free, new_run_name, validate_run_name
from trainers.runs.status import now_iso

MAX_VARIANTS = 256
SWEEP_KEYS = ("base", "grid", "name", "parallel", "early_stop")


class SweepError(WorkbenchError):
    """A sweep file cannot be used; the one-line message names the file and the key."""


@dataclass(frozen=True)
class EarlyStop:
    """Stop a variant at ``epoch`` unless it is in the best ``keep`` fraction of the variants that got there."""

    epoch: int
    keep: float = 0.5


@dataclass(frozen=True)
class Variant:
    run: str  # the run name, <sweep>-<n>
    values: dict[str, Any]  # grid key -> this variant's value
    recipe: Recipe


@dataclass(frozen=True)
class Sweep:
    name: str
    source: Path  # the sweep file
    base: Path  # the base recipe
    grid: dict[str, list[Any]]
    variants: list[Variant] = field(default_factory=list)
    parallel: int | None = None
    early_stop: EarlyStop | None = None


# ---- keys ----------------------------------------------------------------------------------------------------------
def check_key(key: str) -> str | None:
    """Why ``key`` is not a dotted recipe key a grid can vary, or None: ``model``, ``data``, ``train.<argument>``,
    ``customizations.<block>`` or ``customizations.<block>.<setting>``."""
    from trainers.train_args import RESERVED_TRAIN_KEYS, ultralytics_arg_types

    parts = str(key).split(".")
    if parts[0] in ("model", "data"):
        return None if len(parts) == 1 else f"unknown key; {parts[0]} has no sub-keys"
    if parts[0] == "train" and len(parts) == 2:
        if parts[1] in RESERVED_TRAIN_KEYS:
            return f"set by the workbench: {RESERVED_TRAIN_KEYS[parts[1]]}"
        defaults = ultralytics_arg_types()[0]
        return None if not defaults or parts[1] in defaults else "unknown key; not an ultralytics training argument"
    if parts[0] == "customizations" and len(parts) in (2, 3):
        if parts[1] not in table.keys():
            return f"unknown key; customizations are {', '.join(table.keys())}"
        allowed = list(table.row(parts[1]).settings.model_fields)
        if len(parts) == 3 and parts[2] not in allowed:
            return f"unknown key; {parts[1]} has {', '.join(allowed) or 'no settings'}"
        return None
    return "unknown key; use model, data, train.<argument> or customizations.<block>[.<setting>]"


# ---- the file ------------------------------------------------------------------------------------------------------
def load_sweep(
    path: str | os.PathLike[str],
    root: Path | None = None,
    name: str | None = None,
    parallel: int | None = None,
    where: str | None = None,
) -> Sweep:
    """Read, check and expand a sweep file.

    Args:
        path: The sweep YAML.
        root: The runs root: the variants' names must be free there (and the sweep's record folder).
        name: The sweep name (``--name``); default: the file's ``name:``, else ``<file stem>-<time>``.
        parallel: ``--parallel`` (wins over the file's ``parallel:``).
        where: How messages name the sweep (default: the file's path; the Sweeps page's file is its own business).

    Raises:
        SweepError: One line naming the file and the key.
        RecipeError: If the base recipe is missing or invalid.
    """
    source = Path(path).expanduser().resolve()
    where = str(path) if where is None else where
    if not source.is_file():
        raise SweepError(f"{where}: sweep file not found")
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise SweepError(f"{where}: cannot be read as YAML ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict):
        raise SweepError(f"{where}: must be a mapping with keys {', '.join(SWEEP_KEYS)}")
    for key in doc:
        if key not in SWEEP_KEYS:
            raise SweepError(f"{where}: {key}: unknown key; allowed: {', '.join(SWEEP_KEYS)}")
    if not isinstance(doc.get("base"), str) or not doc["base"].strip():
        raise SweepError(f"{where}: base: required, the path of a recipe YAML (relative to the sweep file)")
    base_path = (source.parent / doc["base"]).resolve()
    try:
        base = load_recipe(base_path)
    except RecipeError as e:
        raise SweepError(f"{where}: base: {e}") from None
    grid = _grid(doc.get("grid"), where)
    name = _name(name or doc.get("name"), source, root, where)
    combos = list(itertools.product(*grid.values()))
    variants = []
    for n, combo in enumerate(combos, start=1):
        values = dict(zip(grid, combo, strict=True))
        variants.append(Variant(f"{name}-{n}", values, _variant(base, values, source.parent, where, n)))
    if root is not None:
        for v in variants:
            ensure_name_free(root, v.run)
        if (Path(root) / SWEEPS_DIR / name).exists():
            raise SweepError(f"{where}: sweep name {name!r} is already used in {root}; pass another --name")
    parallel = parallel or _parallel(doc.get("parallel"), where)
    early_stop = _early_stop(doc.get("early_stop"), where)
    return Sweep(name, source, base_path, grid, variants, parallel=parallel, early_stop=early_stop)


def _grid(grid: Any, where: str) -> dict[str, list[Any]]:
    example = "e.g. grid: {customizations.layer_lr.backbone_ratio: [0.05, 0.3]}"
    if grid is None or (isinstance(grid, dict) and not grid):
        raise SweepError(f"{where}: grid: empty; map dotted recipe keys to lists of values, {example}")
    if not isinstance(grid, dict):
        raise SweepError(f"{where}: grid: must be a mapping of dotted recipe keys to lists of values, {example}")
    count = 1
    for key, values in grid.items():
        why = check_key(str(key))
        if why:
            raise SweepError(f"{where}: grid.{key}: {why}")
        if not isinstance(values, list):
            raise SweepError(f"{where}: grid.{key}: must be a list of values, got {values!r}")
        if not values:
            raise SweepError(f"{where}: grid.{key}: empty list; give at least one value")
        count *= len(values)
    if count > MAX_VARIANTS:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        raise SweepError(f"{where}: grid: {sizes} = {count} variants, over the limit of {MAX_VARIANTS}")
    return {str(k): list(v) for k, v in grid.items()}


def _variant(base: Recipe, values: dict[str, Any], folder: Path, where: str, n: int) -> Recipe:
    data = dotted.changed(base.to_dict(), values)  # validated below, to name the grid key a problem comes from
    try:
        return Recipe.from_dict(data, source=where).resolve_paths(folder)
    except RecipeError as e:
        for problem in e.problems:
            for key, value in values.items():
                if problem.field and (problem.under(key) or key.startswith(problem.field + ".")):
                    raise SweepError(f"{where}: grid.{key} = {value!r}: {problem}") from None
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise SweepError(f"{where}: variant {n} ({shown}): {'; '.join(map(str, e.problems))}") from None


def _name(name: Any, source: Path, root: Path | None, where: str) -> str:
    if name is None:
        return new_run_name(source.stem, root)
    try:
        validate_run_name(f"{name}-{MAX_VARIANTS}", what="sweep name")
    except WorkbenchError as e:
        raise SweepError(f"{where}: {e}") from None
    return str(name)


def _parallel(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SweepError(f"{where}: parallel: must be an integer >= 1, got {value!r}")
    return value


def _early_stop(value: Any, where: str) -> EarlyStop | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"epoch", "keep"} or "epoch" not in value:
        raise SweepError(f"{where}: early_stop: must be {{epoch: N, keep: 0.5}} (keep is optional), got {value!r}")
    epoch, keep = value["epoch"], value.get("keep", 0.5)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise SweepError(f"{where}: early_stop.epoch: must be an integer >= 1, got {epoch!r}")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep < 1:
        raise SweepError(f"{where}: early_stop.keep: must be a fraction between 0 and 1 (exclusive), got {keep!r}")
    return EarlyStop(epoch, float(keep))


# ---- the record ----------------------------------------------------------------------------------------------------
def record(sweep: Sweep, root: Path, cluster: str | None, parallel: int) -> Path:
    """Write ``<root>/.sweeps/<name>/``: sweep.json (the grid, each variant's values) and one recipe per variant.

    Returns:
        The record folder. Raises :class:`SweepError` if the name is taken (the folder is the reservation).
    """
    folder = Path(root) / SWEEPS_DIR / sweep.name
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        raise SweepError(f"sweep name {sweep.name!r} is already used in {root}; pass another --name") from None
    for v in sweep.variants:
        (folder / f"{v.run}.yaml").write_text(v.recipe.to_yaml(), encoding="utf-8")
    write_json_atomic(folder / SWEEP_RECORD_FILE, record_doc(sweep, cluster, parallel))
    return folder


def record_doc(sweep: Sweep, cluster: str | None, parallel: int) -> dict[str, Any]:
    """sweep.json's content (as plain JSON data): also what the Sweeps page lists before the sweep recorded it."""
    doc = {
        "name": sweep.name, "source": str(sweep.source), "base": str(sweep.base), "grid": sweep.grid,
        "parallel": parallel, "cluster": cluster, "created": now_iso(),
        "early_stop": None if sweep.early_stop is None else vars(sweep.early_stop),
        "variants": [{"run": v.run, "values": v.values} for v in sweep.variants],
    }  # fmt: skip
    return json.loads(json.dumps(doc, default=str))


def read_records(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every sweep recorded in the runs root, newest first (unreadable records are left out)."""
    records = []
    for path in (Path(root) / SWEEPS_DIR).glob(f"*/{SWEEP_RECORD_FILE}"):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: str(r.get("created", "")), reverse=True)
