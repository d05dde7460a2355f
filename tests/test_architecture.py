"""The shape of the code base: the layer contracts (import-linter), no import cycle, module sizes, package sizes.

The architecture is declared once, as import-linter contracts in ``pyproject.toml``; this file runs them and checks
that they bite. The import graph is grimp's, with imports inside functions and under ``TYPE_CHECKING`` included: a
lazy or a type-only import ties two modules together as much as any other.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 8
PACKAGES = ("trainers", "app")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path, contract: str | None = None) -> subprocess.CompletedProcess:
    """``lint-imports`` on the contracts of ``root/pyproject.toml`` (or the one with id ``contract``) over ``root``."""
    only = ["--contract", contract] if contract else []
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *only, str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    """The library, the UI and pyproject.toml copied to ``tmp_path`` (to plant imports in)."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    kept = re.findall(r"^(.*) KEPT$", result.stdout, re.M)
    assert len(kept) >= 5 and "BROKEN" not in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),  # contract: its id in pyproject.toml
    [
        # telemetry imports nothing above it: a lazy import of the doctor, as doctor_stop once did
        ("trainers/telemetry/events.py", "def _planted():\n    from trainers.doctor import diagnose\n", "layers"),
        # a type-only import is a dependency too
        (
            "trainers/customizations/grad_clip.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from trainers.recipe import Recipe\n",
            "layers",
        ),
        # one customization never imports another
        (
            "trainers/customizations/sync_bn.py",
            "from trainers.customizations import freeze\n",
            "customizations-stay-plugins",
        ),
        ("trainers/doctor/finding.py", "import streamlit\n", "library-without-ui"),
        ("trainers/sweeps/runner.py", "from trainers.runs.backends import local\n", "backends-through-runs"),
        # a cycle inside one package (the layers above cannot see it)
        ("trainers/datasets/dataset.py", "def _planted():\n    from trainers.datasets import files\n", "no-cycles"),
    ],
    ids=["upward-lazy", "upward-type-only", "customization-to-customization", "streamlit", "backend", "cycle"],
)
def test_a_planted_import_breaks_a_contract(tmp_path, module, planted, contract):
    root = copy_of_the_code(tmp_path)
    assert lint_imports(root, contract).returncode == 0  # the copy keeps the contract before the plant
    target = root / module
    target.write_text(target.read_text() + "\n\n" + planted)
    result = lint_imports(root, contract)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout[-3000:]


def module_graph():
    import grimp

    return grimp.build_graph(*PACKAGES, cache_dir=None)


def cycles(graph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), over every module's imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_no_import_cycle_among_modules_counting_lazy_and_type_only_imports():
    graph = module_graph()
    # a package's __init__ re-exporting its submodules is how packages are built, not a dependency back
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(module + "."):
                graph.remove_import(importer=module, imported=imported)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = module_graph()
    graph.add_import(importer="trainers.errors", imported="trainers.recipe.model")  # the recipe imports errors
    assert any({"trainers.errors", "trainers.recipe.model"} <= c for c in cycles(graph))


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every Python module of the library and the UI."""
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_no_module_over_400_lines():
    long = {
        str(p.relative_to(REPO)): n for p in modules().values() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these modules by the jobs they do: {long}"


def test_the_library_keeps_its_jobs_in_packages():
    direct = sorted(p.name for p in (REPO / "trainers").glob("*.py"))
    assert len(direct) <= MAX_TOP_LEVEL_MODULES, f"trainers/ holds {len(direct)} modules directly: {direct}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_wb_prefixed_names(package):
    """``wb_`` reads as Weights & Biases (ultralytics ships callbacks/wb.py); our names say what they are."""
    pattern = re.compile(r"\b_?wb_\w+")
    hits = [
        f"{p.relative_to(REPO)}: {m}"
        for p in (REPO / package).rglob("*.py")
        for m in pattern.findall(p.read_text(encoding="utf-8"))
    ]
    assert not hits, hits
