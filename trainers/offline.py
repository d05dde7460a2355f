"""Keep ultralytics offline and quiet: no DNS probe, no font download, no auto-install, no analytics.

Must run before ``ultralytics`` is imported, because ultralytics reads these variables at import time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Where ultralytics keeps settings, fonts and its DDP temp files for our processes.
DEFAULT_CONFIG_DIR = (
    Path(os.environ.get("WORKBENCH_HOME", Path.home() / ".cache" / "trainer-workbench")) / "yolo-config"
)


def _bundled_font() -> Path | None:
    """Return a TTF font that ships with matplotlib (an ultralytics dependency), without importing matplotlib."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    font = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.exists() else None


def offline_env(config_dir: str | Path | None = None) -> dict[str, str]:
    """Return the environment variables that keep ultralytics from touching the network.

    Also places a font where ultralytics looks for ``Arial.ttf``: its dataset check otherwise issues an HTTP
    request for the font even with ``plots=False`` and ``YOLO_OFFLINE=1``.

    Args:
        config_dir: Directory for ultralytics' settings and fonts. Defaults to a per-user cache directory.

    Returns:
        The variables to merge into ``os.environ`` (or a subprocess environment).
    """
    config_dir = Path(config_dir or os.environ.get("YOLO_CONFIG_DIR") or DEFAULT_CONFIG_DIR).expanduser().resolve()
    fonts_dir = config_dir / "Ultralytics"
    fonts_dir.mkdir(parents=True, exist_ok=True)
    font = _bundled_font()
    if font is not None:
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            target = fonts_dir / name
            if not target.exists():
                shutil.copyfile(font, target)
    return {
        "YOLO_OFFLINE": "1",  # skips the DNS "is online" probe at import and hub/analytics calls
        "YOLO_CONFIG_DIR": str(config_dir),
        "YOLO_AUTOINSTALL": "False",  # never pip-install a missing requirement mid-run
        "YOLO_VERBOSE": os.environ.get("YOLO_VERBOSE", "True"),
    }


def apply_offline_env(config_dir: str | Path | None = None) -> None:
    """Apply :func:`offline_env` to this process. Call before importing ultralytics."""
    os.environ.update(offline_env(config_dir))


# ultralytics integrations that would import other tools (Ray, MLflow, ...) or talk to a server from inside training.
INTEGRATIONS_OFF = {
    "clearml": False, "comet": False, "dvc": False, "mlflow": False, "raytune": False, "tensorboard": False,
    "wandb": False, "sync": False,
}  # fmt: skip


def quiet_integrations() -> None:
    """Switch off ultralytics' third-party integrations in its settings (in our config dir, not the user's).

    With ``ray`` installed (the cluster extra) ultralytics' Ray Tune callback imports it in every trainer; other
    integrations log to servers. Call after :func:`apply_offline_env`, before a trainer is created.
    """
    from ultralytics.utils import SETTINGS

    if any(SETTINGS.get(k) != v for k, v in INTEGRATIONS_OFF.items()):
        SETTINGS.update(INTEGRATIONS_OFF)
