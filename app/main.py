"""Entry script of the workbench UI: ``streamlit run app/main.py`` (or ``workbench ui``).

Sets the page config and the session-state defaults, then routes with ``st.navigation`` to one file per page.
The runs root comes from ``$WORKBENCH_RUNS_DIR`` (``workbench ui --runs-dir`` sets it). This process never imports
torch or ultralytics; training runs in subprocesses started by ``trainers.runs.launcher``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run app/main.py` puts app/ on sys.path, not the repository root with the `app` and `trainers` packages.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.sign_in import require_sign_in  # noqa: E402
from app.state import current_runs_root, init_state, keep_widget_state  # noqa: E402

st.set_page_config(page_title="Trainer Workbench", page_icon=":material/model_training:", layout="wide")
require_sign_in()  # OIDC ([auth] in .streamlit/secrets.toml): nothing below runs for someone not signed in
init_state()
keep_widget_state()

PAGES = [
    st.Page("app_pages/new_run.py", title="New run", icon=":material/add_circle:", default=True),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/list:"),
    st.Page("app_pages/dashboard.py", title="Run dashboard", icon=":material/monitoring:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/sweeps.py", title="Sweeps", icon=":material/grid_view:"),
    st.Page("app_pages/class_weights.py", title="Class weights", icon=":material/balance:"),
    st.Page("app_pages/datasets.py", title="Dataset", icon=":material/photo_library:"),  # /datasets?name=NAME
]
# The page files live in app_pages/, not pages/: a pages/ folder next to the entry script switches Streamlit to its
# legacy directory-based multipage mode, which runs page files without this entry script (no defaults, no sidebar).
page = st.navigation(PAGES)
with st.sidebar:
    st.caption(f"Runs root: `{current_runs_root()}`")
page.run()
