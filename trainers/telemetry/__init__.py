"""Telemetry: what a training run tells the UI, the CLI and the tests.

- :mod:`trainers.telemetry.events`: the events log ``telemetry.jsonl`` (writer, incremental reader);
- :mod:`trainers.telemetry.schema`: the documented schema and a checker;
- :mod:`trainers.telemetry.run_log`: the log folded for reading (one record per epoch, resumed attempts superseding
  what they redid), shared by the dashboard, the CLI and the training process.

Nothing here imports torch or ultralytics.
"""
