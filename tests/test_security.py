"""Security checks: where the UI listens, run names that could escape the runs root, shells, pickles, the network.

Cited from elsewhere (not repeated here):

- the exact commands the launcher and ``workbench ui`` spawn are argument lists without a shell:
  tests/test_launcher.py::test_commands_are_argument_lists_never_a_shell,
  tests/test_cli.py::test_ui_runs_streamlit_without_a_shell;
- run names in the CLI and the UI: tests/test_runs.py::test_invalid_names_are_refused_naming_the_option_and_the_rule,
  tests/test_cli.py::test_bad_invocations_exit_2_with_one_line, tests/test_app_pages.py::test_run_name_is_checked;
- a full CLI training run opens no socket, resolves no name and makes no HTTP request (audit hook in a fresh
  process): tests/test_compose.py::test_training_run_opens_no_socket.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1.errors import AppTestError

from tests.conftest import DEMO_BASE, REPO
from tests.test_robustness import snapshot
from tests.ui_server import WorkbenchUI
from trainers.errors import RunError
from trainers.runs import launcher
from trainers.runs.backends import local as local_processes
from trainers.runs.folder import validate_run_name


# ---- the UI server listens on loopback unless told otherwise --------------------------------------------------------
def _hex_addr(text: str) -> str:
    """An address from /proc/net/tcp{,6} (hex, host byte order per 32-bit word) as text."""
    raw = bytes.fromhex(text)
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def proc_net_sockets() -> list[dict]:
    """Every TCP socket of this network namespace: local/remote address and port, state, inode."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            (local, lport), (remote, rport) = f[1].split(":"), f[2].split(":")
            out.append(
                {
                    "local": _hex_addr(local),
                    "lport": int(lport, 16),
                    "remote": _hex_addr(remote),
                    "rport": int(rport, 16),
                    "listen": f[3] == "0A",
                    "inode": int(f[9]),
                }
            )
    return out


def group_socket_inodes(pgid: int) -> set[int]:
    """Inodes of the sockets held by every process in process group ``pgid`` (the CLI and its Streamlit child)."""
    inodes = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return inodes


def serve(tmp_path: Path, *host: str) -> WorkbenchUI:
    ui = WorkbenchUI(tmp_path / "runs", extra=("--host", *host) if host else ())
    ui.log = tmp_path / f"ui-{ui.port}.log"
    return ui.start()


def test_ui_listens_on_127_0_0_1_only_and_opens_no_outbound_connection(tmp_path):
    ui = serve(tmp_path)
    proc, port, log = ui.proc, ui.port, ui.log
    try:
        listeners = {s["local"] for s in proc_net_sockets() if s["listen"] and s["lport"] == port}
        assert listeners == {"127.0.0.1"}  # not 0.0.0.0, not ::
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200
        mine = group_socket_inodes(proc.pid)
        assert mine, "the server's sockets were found"
        for s in proc_net_sockets():
            if s["inode"] in mine and not s["listen"]:
                assert s["remote"] in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::"), s
    finally:
        ui.stop()
    assert "warning" not in log.read_text().lower()


def test_ui_listens_on_all_interfaces_only_when_told_and_warns(tmp_path):
    # without sign-in only when told twice (--host 0.0.0.0 --no-auth); with sign-in: tests/test_ui_auth.py
    ui = serve(tmp_path, "0.0.0.0", "--no-auth")
    port, log = ui.port, ui.log
    try:
        listeners = {s["local"] for s in proc_net_sockets() if s["listen"] and s["lport"] == port}
        assert listeners == {"0.0.0.0"}
    finally:
        ui.stop()
    assert (
        "workbench: warning: serving on 0.0.0.0 without sign-in (--no-auth): anyone who can reach this address can "
        "start and stop runs" in log.read_text()
    )


# ---- run names that could leave the runs root or reach a shell ----------------------------------------------------
HOSTILE_NAMES = [
    "..",
    "../outside",
    "../../etc/cron.d/x",
    "/tmp/abs",
    "a/b",
    "a\\b",
    ".hidden",
    "-rf",
    "a;rm -rf ~",
    "$(touch pwned)",
    "`touch pwned`",
    "a|b",
    "a&&b",
    "a>b",
    "a b",
    "*",
    "~root",
    "a\nb",
    "a\x00b",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_run_names_are_refused_before_anything_is_made_or_spawned(name, tmp_path, monkeypatch):
    spawned = []
    monkeypatch.setattr(local_processes, "spawn", lambda *a, **k: spawned.append(a))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: yolo26n.yaml\ndata: data.yaml\n")
    root = tmp_path / "runs"
    before = snapshot(tmp_path)
    with pytest.raises(RunError) as err:
        validate_run_name(name)
    assert str(err.value).startswith(f"--name {name!r} is not allowed: use 1-100 letters, digits")
    with pytest.raises(RunError):
        launcher.start_run(recipe, root, name=name)
    assert spawned == []
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "pwned").exists()


# ---- no shell anywhere in our code --------------------------------------------------------------------------------
SHELL_FUNCTIONS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
}
SUBPROCESS_FUNCTIONS = {"Popen", "run", "call", "check_call", "check_output"}


def _source_files() -> list[Path]:
    return sorted(p for folder in ("trainers", "app") for p in (REPO / folder).rglob("*.py"))


def _dotted(node: ast.AST) -> tuple[str, ...]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def shell_problems(tree: ast.AST, where: str) -> tuple[list[str], int]:
    """Calls in ``tree`` that run a shell or pass a command as a string; also how many subprocess calls it has."""
    imported = {}  # local name -> (module, attribute), for 'from os import system'
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    problems, subprocess_calls = [], 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        at = f"{where}:{node.lineno}"
        name = _dotted(node.func)
        target = name[-2:] if len(name) >= 2 else imported.get(name[0], ("", "")) if name else ("", "")
        if target in SHELL_FUNCTIONS:
            problems.append(f"{at}: {'.'.join(target)} runs a shell")
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                problems.append(f"{at}: shell={ast.unparse(kw.value)}")
        if target[0] == "subprocess" and target[1] in SUBPROCESS_FUNCTIONS:
            subprocess_calls += 1
            first = node.args[0] if node.args else None
            if isinstance(first, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                problems.append(f"{at}: command given as a string ({ast.unparse(first)[:40]})")
    return problems, subprocess_calls


def test_no_subprocess_call_in_trainers_or_app_uses_a_shell():
    problems, calls = [], 0
    for path in _source_files():
        found, n = shell_problems(ast.parse(path.read_text(encoding="utf-8")), str(path.relative_to(REPO)))
        problems += found
        calls += n
    assert problems == []
    assert calls >= 2, "the check saw the launcher's and the UI command's Popen calls"


def test_the_static_check_would_catch_a_shell():
    """Not vacuous: each way of reaching a shell is flagged on a sample."""
    sample = (
        "import os, subprocess\nfrom os import system\n"
        "os.system('ls')\nsystem('ls')\nsubprocess.run('ls', shell=True)\nsubprocess.Popen(f'ls {x}')\n"
        "os.popen('ls')\nsubprocess.getoutput('ls')\nsubprocess.run(['ls'], shell=flag)\n"
        "subprocess.run(['ls', x])\n"
    )
    problems, calls = shell_problems(ast.parse(sample), "sample")
    assert [p.split(": ", 1)[1] for p in problems] == [
        "os.system runs a shell",
        "os.system runs a shell",
        "shell=True",
        "command given as a string ('ls')",
        "command given as a string (f'ls {x}')",
        "os.popen runs a shell",
        "subprocess.getoutput runs a shell",
        "shell=flag",
    ]
    assert calls == 4


# ---- a user-supplied .pt is loaded only after an explicit, informed confirmation ---------------------------------
def test_local_pt_needs_a_confirmation_that_explains_pickle_risk(tmp_path, monkeypatch):
    from tests.test_app_pages import errors_next_to, open_page

    started = []
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(launcher, "start_run", lambda *a, **k: started.append(a))
    mine, other = tmp_path / "mine.pt", tmp_path / "other.pt"
    shutil.copy(DEMO_BASE, mine)
    shutil.copy(DEMO_BASE, other)

    at = open_page("new_run", nr_model_source="local", nr_model_path=str(mine))
    warning = " ".join(w.value for w in at.warning)
    assert "pickles" in warning and "run arbitrary code" in warning  # says why before asking
    assert not at.checkbox(key="nr_trust_pt").value  # never trusted by default
    assert errors_next_to(at, "nr_trust_pt") == [
        "model: .pt files are Python pickles that can run code when loaded; tick 'I trust this file' to use it"
    ]
    assert at.button(key="new_run_start").disabled
    with pytest.raises(AppTestError, match="disabled"):
        at.button(key="new_run_start").click()
    assert started == []

    at.checkbox(key="nr_trust_pt").check().run()
    assert not at.button(key="new_run_start").disabled
    # Trust was given to mine.pt: naming another file takes it back.
    at.text_input(key="nr_model_path").set_value(str(other)).run()
    assert not at.checkbox(key="nr_trust_pt").value
    assert at.button(key="new_run_start").disabled
    assert started == []
