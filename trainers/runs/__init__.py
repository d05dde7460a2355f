"""Runs: their folders and status.json, checks before a run starts, the launcher and its two backends
(a local process or a Ray job), following a detached run, and comparing runs.
"""
