"""The UI server process ``workbench ui`` starts: Streamlit's own command line, with the app's imports warmed.

``python -m app.serve run app/main.py --server.port P ...`` is ``streamlit run ...`` plus one thread that imports what
the first page needs (pandas, plotly, the recipe model and the New run page's modules: about 0.5 s of CPU here) once
the server listens, while the browser fetches and parses Streamlit's JavaScript, so the first script run finds them
loaded instead of importing them while someone waits for the page (issue 20, first paint;
``benchmarks/bench_ui.py --before REF`` measures it against the code before). Imports only: nothing here touches
Streamlit's runtime, and a module the first run needs while the thread is importing it waits on Python's import lock.
"""

from __future__ import annotations

import importlib
import socket
import sys
import threading
import time

# What the entry script and the New run page (the first page anyone sees) import beyond Streamlit itself; the page
# modules under app_pages/ are scripts (they draw on import) and are left to the script run.
WARM = (
    "pandas",
    "plotly.graph_objects",
    "app.state",
    "app.sign_in",
    "app.who",
    "app.widgets",
    "app.dataset_info",
    "app.devices",
    "app.import_panel",
    "app.model_choices",
    "app.recipe_form",
)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _option(args: list[str], name: str, default: str) -> str:
    """``--name VALUE`` or ``--name=VALUE`` from Streamlit's command line."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def _warm(args: list[str] | None = None) -> None:
    """Import :data:`WARM`, once the server listens when ``args`` (Streamlit's command line) are given: importing
    while Streamlit starts doubled the time to its first answer (0.7 -> 1.5 s here), the two sharing one GIL."""
    if args is not None:
        host = _option(args, "--server.address", "127.0.0.1")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        port = int(_option(args, "--server.port", "8501"))
        deadline = time.monotonic() + 60
        while not _listening(host, port):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a warm-up never fails the server: the script run reports the real error
            return


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    threading.Thread(target=_warm, args=(args,), name="workbench-warm-imports", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *args]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
