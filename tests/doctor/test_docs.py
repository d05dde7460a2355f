"""docs/doctor.md lists every rule with its thresholds (name and value) and names tests that exist."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO
from trainers.doctor import rules

DOC = REPO / "docs" / "doctor.md"


def sections() -> dict[str, str]:
    parts = re.split(r"^### `([\w.]+)`\n", DOC.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_rule_has_a_section_with_its_thresholds_and_tests():
    docs = sections()
    assert set(docs) == {r.id for r in rules()}
    for r in rules():
        text = " ".join(docs[r.id].split())
        assert text.startswith(r.severity), r.id
        assert ("live" in text.split(".")[0]) is r.live, f"{r.id}: say whether doctor_stop runs it"
        for name, value in r.thresholds.items():
            assert f"`{name}` = {value!r}" in text, f"{r.id}: {name} = {value!r}"
        assert "Why" in text and re.search(r"tests/doctor/\S+::test_\w+", text), r.id


def test_every_test_the_doc_names_exists():
    named = set(re.findall(r"(tests/doctor/[\w/]+\.py)::(test_\w+)", DOC.read_text()))
    assert named
    for path, test in named:
        tree = ast.parse((REPO / path).read_text())
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert test in functions, f"{path}::{test}"
