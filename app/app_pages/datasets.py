"""Dataset page (``/datasets?name=NAME`` or ``?path=DATA_YAML``): a look at the data before training.
``&split=S&image=FILE&image=...`` shows just those images (the doctor's links, :mod:`app.dataset_links`).

The images of a split in a grid with their boxes drawn and labelled (a colour per class), label problems first and
named under each image (orphan label files, corrupt images, label files that do not parse, class ids out of range,
boxes outside the image, empty label files, boxes under 2 px, duplicate boxes), filtered by split and class, 48 a
page; and per-class instances and images, box sizes and image sizes. Scan: ``trainers.datasets.gallery``; thumbnails
are made for the page shown only and kept on disk (``trainers.datasets.thumbnails``).
"""

from __future__ import annotations

import streamlit as st

from app import dataset_grid, dataset_links, dataset_view, import_panel
from app.dataset_grid import PAGE_SIZE, class_colour
from app.recipe_form import DEMO_DATA
from app.state import init_state
from trainers.datasets.datasets_dir import list_datasets
from trainers.datasets.thumbnails import thumbnail_cache_dir
from trainers.errors import WorkbenchError

init_state()
ss = st.session_state
DEMO = "Bundled demo"  # not a valid dataset name (a space), so it never hides an imported dataset
ALL = "All classes"

st.title("Dataset")
root = import_panel.current_datasets_root()
names = list_datasets(root) if root is not None else []

# The URL wins when it changes (a link, a refreshed or shared URL); the widgets write it back.
url = (st.query_params.get("name"), st.query_params.get("path"))
if ss.get("ds_from_url") != url:
    ss.ds_from_url = url
    ss.ds_path = url[1] or ""
    if url[0]:
        ss.ds_name = url[0]
    ss.ds_page = 1
linked = dataset_links.from_url(st.query_params)  # (split, images): a link to chosen images
if ss.get("ds_linked") != linked:
    ss.ds_linked, ss.ds_images, ss.ds_page = linked, list(linked[1]) if linked else [], 1
    if linked and linked[0]:
        ss.ds_split = linked[0]
if url[0] and not url[1] and (url_error := dataset_view.yaml_for(url[0], None, root)[1]):
    st.error(url_error, icon=":material/error:")
if ss.get("ds_name") not in [*names, DEMO]:
    ss.ds_name = names[0] if names else DEMO


def _first_page() -> None:
    ss.ds_page = 1


def _show_all() -> None:
    ss.ds_images, ss.ds_linked, ss.ds_page = [], None, 1
    for key in ("split", "image"):
        st.query_params.pop(key, None)


a, b = st.columns([2, 3])
a.selectbox("Dataset", [*names, DEMO], key="ds_name", on_change=_first_page, help=f"The datasets in `{root}`")
b.text_input(
    "or a data.yaml path", key="ds_path", placeholder="/path/to/data.yaml", on_change=_first_page,
    help="Any data.yaml on this server (?path= in the URL); leave empty to use the dataset on the left",
)  # fmt: skip
path = ss.ds_path.strip()
if path:
    data = path
    st.query_params.from_dict({"path": path})
elif ss.ds_name == DEMO:
    data = str(DEMO_DATA)
    st.query_params.from_dict({"path": data})
else:
    data, error = dataset_view.yaml_for(ss.ds_name, None, root)
    if error:
        st.error(error, icon=":material/error:")
        st.stop()
    st.query_params.from_dict({"name": ss.ds_name})
ss.ds_from_url = (st.query_params.get("name"), st.query_params.get("path"))

try:
    ds, scan = dataset_view.load_scan(data, ss.get("ds_split"))
except WorkbenchError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()
except OSError as e:  # unreadable files the loader did not anticipate
    st.error(f"{data}: {e}", icon=":material/error:")
    st.stop()

c, d, e, f = st.columns([1.2, 2, 1.6, 1])
ss.ds_split = scan.split  # the split asked for, or the first when this dataset has no such split
if ss.get("ds_images"):  # a link's images stay in the URL (a reload or a shared link shows the same) until Show all
    st.query_params.update({"split": scan.split, "image": ss.ds_images})
    ss.ds_linked = dataset_links.from_url(st.query_params)
c.selectbox("Split", list(ds.splits), key="ds_split", on_change=_first_page)
if ss.get("ds_class") not in [ALL, *scan.names]:
    ss.ds_class = ALL
d.selectbox("Class", [ALL, *scan.names], key="ds_class", on_change=_first_page, help="Images with a box of this class")
e.toggle("Only images with problems", key="ds_problems_only", on_change=_first_page)
if f.button("Rescan", key="ds_rescan", icon=":material/refresh:", help="Read the labels and images again"):
    dataset_view.forget_scans(ds.yaml_path)
    st.rerun()

n_boxes = int(scan.trained.sum())
flagged = len(scan.issues)
st.caption(
    f"`{ds.yaml_path}` · split **{scan.split}**: {scan.n_images:,} images, {n_boxes:,} boxes trained on, "
    f"{ds.nc} classes · {flagged:,} {'entry' if flagged == 1 else 'entries'} with a label problem"
)
summary = dataset_grid.problem_summary(scan)
if summary:
    st.warning(
        "Label problems (listed first below): " + ", ".join(f"{n:,} × {what}" for what, n in summary),
        icon=":material/report:",
    )

# One view at a time, not st.tabs: tabs run and send every tab's content, and the charts (plotly.js in the browser,
# plotly in this process) made the first grid wait for charts nobody had asked for.
view = st.segmented_control(
    "View", ["Images", "Statistics"], default="Images", key="ds_view", label_visibility="collapsed"
)
if view != "Statistics":
    cls = None if ss.ds_class == ALL else scan.names.index(ss.ds_class)
    shown = scan.shown(cls, bool(ss.get("ds_problems_only")))
    pages = dataset_view.page_count(shown.size)
    if ss.get("ds_images"):
        shown, absent = dataset_links.only_images(scan, shown, ss.ds_images)
        note, clear = st.columns([5, 1], vertical_alignment="center")
        note.info(dataset_links.caption(len(ss.ds_images), absent, scan.split), icon=":material/filter_alt:")
        clear.button("Show all", key="ds_show_all", on_click=_show_all)
        pages = dataset_view.page_count(shown.size)
    ss.ds_page = min(max(1, int(ss.get("ds_page", 1))), pages)
    g, h = st.columns([1, 4])
    g.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="ds_page")
    first = (ss.ds_page - 1) * PAGE_SIZE
    h.caption(f"Showing {first + 1 if shown.size else 0:,}-{min(first + PAGE_SIZE, shown.size):,} of {shown.size:,}")
    if not shown.size:
        st.info("No image matches these filters.")
    else:
        tiles = dataset_view.page_tiles(scan, shown, ss.ds_page, thumbnail_cache_dir(root))
        with st.container(key="ds_grid"):
            st.html(dataset_grid.grid_html(scan, tiles, highlight=cls))

else:
    from app import dataset_charts  # plotly: imported when the charts are asked for

    instances, images = scan.counts()
    colours = [class_colour(i) for i in range(scan.nc)]
    st.plotly_chart(dataset_charts.counts_figure(scan.names, instances, images), key="chart_ds_counts")
    left, right = st.columns(2)
    cls_ids, box_w, box_h = scan.box_pixels()
    left.plotly_chart(
        dataset_charts.box_sizes_figure(scan.names, cls_ids, box_w, box_h, colours), key="chart_ds_box_sizes"
    )
    right.plotly_chart(dataset_charts.image_sizes_figure(scan.image_sizes()), key="chart_ds_image_sizes")
