"""``workbench export-model RUN``: a run's best.pt (or last.pt) as ONNX, TorchScript or OpenVINO, verified against the
``.pt`` on the run's val images (:mod:`trainers.runs.model_export`, docs/export-model.md).

Exit codes: 0 exported and within the tolerance; 1 the exporter or the exported model failed (``workbench: error:
...``, nothing written), or the verification is outside the tolerance (the file is kept, its record says
``"passed": false``); 2 bad input, as every command (unknown run, no checkpoint, a package missing, bad ``--imgsz``).
Progress goes to stderr; stdout has the file and the verification line, or with ``--json`` the record alone.
"""

from __future__ import annotations

import argparse
import json
import sys

ERROR_PREFIX = "workbench: error: "


def cmd_export_model(args: argparse.Namespace) -> int:
    """Plan (cheap checks), export and verify; print the result."""
    from trainers.runs.folder import resolve_run, runs_root
    from trainers.runs.model_export import ExportFailed, export_model, plan_export, summary_line

    run_dir = resolve_run(runs_root(args.runs_dir), args.run)
    plan = plan_export(run_dir, args.format, weights=args.weights, imgsz=args.imgsz, out=args.out)
    try:
        record = export_model(plan, say=lambda text: print(f"export-model: {text}", file=sys.stderr, flush=True))
    except ExportFailed as e:
        print(f"{ERROR_PREFIX}{e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**record, "path": str(plan.target), "summary": summary_line(record)}))
    else:
        print(plan.target)
        print(summary_line(record))
    return 0 if record["passed"] else 1


def _imgsz(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (a multiple of 32), got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction, runs_dir_help: str) -> None:
    """Add ``export-model`` to the ``workbench`` subcommands."""
    from trainers.runs.model_export import FORMATS, WEIGHTS

    p = sub.add_parser(
        "export-model", help="a run's model as ONNX, TorchScript or OpenVINO, verified against the .pt (exit 1: not)"
    )
    p.add_argument("run", metavar="RUN", help="run name under the runs root, or path to a run folder")
    p.add_argument("--format", choices=tuple(FORMATS), required=True, help="onnx and openvino need the export extra")
    p.add_argument("--weights", choices=tuple(WEIGHTS), default="best", help="which checkpoint (default: best)")
    p.add_argument(
        "--imgsz", type=_imgsz, metavar="N", help="input size, a multiple of 32 (default: the run's train.imgsz)"
    )
    p.add_argument("--out", metavar="DIR", help="folder for the model and its record (default: <run>/export/model)")
    p.add_argument("--json", action="store_true", help="print the verification record as one JSON line")
    p.add_argument("--runs-dir", help=runs_dir_help)
    p.set_defaults(func=cmd_export_model)
