"""The Streamlit workbench: ``app/main.py`` (entry, navigation), one file per page in ``app/app_pages/``, and the
Streamlit-free :mod:`app.charts` (figures) and :mod:`app.services` (recipes, event cache, run summaries)."""
