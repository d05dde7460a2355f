"""Datasets: data.yaml, the files of a split, label counts, corrupt images, summaries and the per-class
loss weights computed from counts; the datasets folder and importing exports into it (importer, yolo_export,
coco_json); the dataset page's look at a split (gallery: every image's boxes, size and label problems, read with
label_rows and image_headers) and its cached thumbnails. Light: the UI imports these (never torch or ultralytics;
the importer imports ultralytics inside its functions only, and the UI runs it as a ``workbench import``
subprocess).
"""
