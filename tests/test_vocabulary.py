"""One vocabulary, one module: metric keys, run statuses and run-folder file names are spelled once in ``trainers/``
and ``app/`` (trainers/metrics.py, trainers/statuses.py, trainers/run_files.py); everything else reads them there.

The scan reads every module's string constants with ``ast``: comments never count, and module, class and function
docstrings are left out (they may name a key or a status in prose), but any other string literal counts, f-string
parts included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from trainers import metrics, run_files
from trainers.statuses import RunStatus

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("trainers", "app")

# Every run status word (RunStatus.EMPTY's "empty" is also an ordinary word, e.g. "an empty data.yaml": not scanned),
# and "stopping", which must not grow into a status spelled outside statuses.py either.
STATUS_WORDS = sorted({s.value for s in RunStatus if s is not RunStatus.EMPTY} | {"stopping"})
# Ultralytics' metric names (``metrics/mAP50-95(B)``, ``val/box_loss``): anywhere inside a literal.
METRIC_KEYS = sorted(m.key for m in metrics.CATALOGUE if "/" in m.key)
# Run-folder file names, as a whole literal (a message may name the file in prose). Names without a dot or a slash
# (steps, weights, export) are ordinary words too, and data.yaml is what every dataset's YAML is called: not scanned.
RUN_FILE_NAMES = sorted(
    v
    for k, v in vars(run_files).items()
    if k.isupper() and isinstance(v, str) and ("." in v or "/" in v) and v != run_files.DATA_FILE
)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that are module, class or function docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    found.add(id(first.value))
    return found


def string_literals(source: str) -> list[tuple[int, str]]:
    """``(line, value)`` of every string constant of ``source`` that is not a docstring."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def _modules() -> dict[str, list[tuple[int, str]]]:
    paths = sorted(p for root in SCANNED for p in (REPO / root).rglob("*.py"))
    return {str(p.relative_to(REPO)): string_literals(p.read_text(encoding="utf-8")) for p in paths}


@pytest.fixture(scope="module")
def literals() -> dict[str, list[tuple[int, str]]]:
    return _modules()


def spelled_in(literals: dict[str, list[tuple[int, str]]], word: str, *, inside: bool = False) -> dict[str, list[int]]:
    """Module -> lines where ``word`` is a whole literal (or, with ``inside``, part of one)."""
    out: dict[str, list[int]] = {}
    for module, found in literals.items():
        lines = [line for line, value in found if (word in value if inside else value == word)]
        if lines:
            out[module] = lines
    return out


def _only(where: dict[str, list[int]], owner: str, what: Iterable[str]) -> list[str]:
    return [f"{module}:{lines} spells {', '.join(what)}" for module, lines in where.items() if module != owner]


def test_each_status_word_is_spelled_only_in_statuses(literals):
    problems = []
    for word in STATUS_WORDS:
        problems += _only(spelled_in(literals, word), "trainers/statuses.py", [repr(word)])
    assert not problems, "use trainers.statuses.RunStatus instead:\n" + "\n".join(problems)


def test_each_metric_key_is_spelled_only_in_the_catalogue(literals):
    assert "metrics/mAP50-95(B)" in METRIC_KEYS
    problems = []
    for key in METRIC_KEYS:
        problems += _only(spelled_in(literals, key, inside=True), "trainers/metrics.py", [repr(key)])
    assert not problems, "read the key from trainers.metrics (the catalogue) instead:\n" + "\n".join(problems)


def test_each_run_file_name_is_spelled_only_in_run_files(literals):
    assert {"status.json", "telemetry.jsonl", "weights/last.pt"} <= set(RUN_FILE_NAMES)
    problems = []
    for name in RUN_FILE_NAMES:
        problems += _only(spelled_in(literals, name), "trainers/run_files.py", [repr(name)])
    assert not problems, "use the names of trainers.run_files instead:\n" + "\n".join(problems)


def test_the_scan_skips_docstrings_and_comments_but_not_other_literals():
    source = '''"""Module: a run is "completed" when metrics/mAP50-95(B) is final."""
# "failed" in a comment


class A:
    """The class says 'stopped'."""

    def f(self):
        """The function says "running"."""
        x = "completed"  # counts
        return f"{x}failed", {"k": "metrics/mAP50-95(B)"}
'''
    found = [value for _, value in string_literals(source)]
    assert "completed" in found and "failed" in found and "metrics/mAP50-95(B)" in found
    assert not any("Module" in v or "class says" in v or "function says" in v for v in found)
    assert spelled_in({"m.py": string_literals(source)}, "stopped") == {}
    assert spelled_in({"m.py": string_literals(source)}, "running") == {}
    assert spelled_in({"m.py": string_literals(source)}, "completed") == {"m.py": [10]}
