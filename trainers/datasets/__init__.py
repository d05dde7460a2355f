"""Datasets: data.yaml, the files of a split, label counts, corrupt images, summaries and the per-class
loss weights computed from counts. Light: the UI imports these (never torch or ultralytics).
"""
