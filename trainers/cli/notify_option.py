"""``--notify URL`` on ``workbench train`` and ``workbench sweep``: the recipe's ``notify`` block, set for this run.

``train`` trains a recipe file (in this process, or as a Ray job that reads the file on a node), so the recipe with
the block set is written as a file: ``<runs root>/.notify-recipes/<id>/<stem>.yaml`` (the same stem, so the run is
named as the original's would be; in the runs root, which a cluster's nodes see too). ``sweep`` sets it on every
variant (:func:`trainers.sweeps.runner.sweep_command`).
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from trainers.run_files import NOTIFY_RECIPES_DIR

HELP = (
    "POST a JSON message (Slack-compatible) to URL when the run ends or the doctor finds it broken (sets the "
    "recipe's notify block; docs/recipe.md)"
)


def add_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--notify URL`` to a subcommand's parser."""
    parser.add_argument("--notify", metavar="URL", default=None, help=HELP)


def recipe_with_notify(recipe_path: str | Path, url: str, root: Path) -> str:
    """The path of a copy of ``recipe_path`` (validated, paths resolved) whose ``notify.url`` is ``url``.

    Raises:
        RecipeError: The recipe is invalid, or ``url`` is not http(s) (one line naming ``--notify``).
    """
    # Imported here: every `workbench` command imports this module, and the recipe model (pydantic, numpy) was 0.2 s
    # of `workbench ui`'s start before Streamlit was even spawned.
    from trainers.recipe import load_recipe
    from trainers.runs.notify import with_notify

    recipe = with_notify(load_recipe(recipe_path), url)
    folder = root / NOTIFY_RECIPES_DIR / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(recipe_path).stem}.yaml"
    path.write_text(recipe.to_yaml(), encoding="utf-8")
    return str(path)
