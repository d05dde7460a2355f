"""Sign-in when ``workbench ui`` leaves loopback (trainers/cli/ui_gate.py, ui_proxy.py), by raw HTTP against the real
``workbench ui --host 0.0.0.0`` reached through 127.0.0.1: before sign-in every path is the form or a 401 and nothing
of the app (no run name) comes back; ``?token=`` signs in with an HttpOnly cookie and a redirect that drops it; the
token is in no file under the runs folder and printed once. The option checks run in-process."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys

import pytest

from tests.test_app_pages import make_run
from tests.ui_server import WorkbenchUI, free_port
from trainers.cli import commands as cli
from trainers.cli import ui_gate
from trainers.statuses import RunStatus

RUN_NAME = "secret-run-7f3a"


def request(port: int, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """``(status, headers as one lower-cased text, body)`` of one request to 127.0.0.1:port, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        head = "\n".join(f"{k.lower()}: {v}" for k, v in reply.getheaders())
        return reply.status, head, reply.read()
    finally:
        conn.close()


def session_cookie(head: str) -> str:
    (value,) = re.findall(rf"set-cookie: {ui_gate.SESSION_COOKIE}=([^;\s]+)", head)
    return f"{ui_gate.SESSION_COOKIE}={value}"


class GatedUI(WorkbenchUI):
    """``workbench ui --host 0.0.0.0`` with a generated token: ready when the printed token signs in and Streamlit
    answers behind the proxy."""

    token: str | None = None
    cookie: str | None = None

    def healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        found = re.search(r"sign in at http://\S+/\?token=(\S+)", self.log.read_text())
        if not found:
            return False
        self.token = found.group(1)
        try:
            status, head, _ = request(self.port, f"/?token={self.token}")
            self.cookie = session_cookie(head)
            status, _, body = request(self.port, "/_stcore/health", headers={"Cookie": self.cookie})
        except OSError:
            return False
        return status == 200 and body == b"ok"


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    runs = tmp_path_factory.mktemp("gated") / "runs"
    make_run(runs, RUN_NAME, "complete", status=RunStatus.COMPLETED, epoch=6, epochs=6)
    ui = GatedUI(runs, extra=("--host", "0.0.0.0")).start(timeout=180)
    try:
        yield ui
    finally:
        ui.stop()


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "streamlit"}  # fmt: skip
PATHS = [
    ("GET", "/", {}, 200), ("GET", f"/dashboard?run={RUN_NAME}", {}, 200), ("GET", "/runs", {}, 200),
    ("GET", "/_stcore/health", {}, 401), ("GET", "/_stcore/host-config", {}, 401),
    ("GET", "/_stcore/stream", UPGRADE, 401), ("GET", "/media/0123456789abcdef.png", {}, 401),
    ("GET", "/media/0123456789abcdef.bin?title=results.csv", {}, 401), ("GET", "/app/static/x.png", {}, 401),
    ("GET", "/static/js/index.js", {}, 401), ("PUT", "/_stcore/upload_file/s/f", {}, 401),
    ("POST", "/runs", {}, 401), ("DELETE", "/", {}, 401),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "headers", "expected"), PATHS)
def test_without_the_token_every_path_is_the_sign_in_form_or_401(gated, method, path, headers, expected):
    status, head, body = request(gated.port, path, method, headers=headers, body=b"" if method != "GET" else None)
    text = body.decode("utf-8", "replace")
    assert RUN_NAME not in text + head and "streamlit" not in head
    assert status == expected
    assert "set-cookie" not in head
    if method in ("GET", "POST") and "Upgrade" not in headers:  # a websocket handshake gets no page
        assert f'action="{ui_gate.SIGN_IN_PATH}"' in text and "static/js" not in text and "stApp" not in text
    else:
        assert text == "sign in first\n"


def test_a_wrong_token_is_refused_and_sets_no_cookie(gated):
    for path in ("/?token=" + "x" * 43, "/?token=" + gated.token[:-1], "/?token="):
        status, head, body = request(gated.port, path)
        assert status == 401 and "set-cookie" not in head and b"That token is not valid" in body
    status, head, body = request(
        gated.port, ui_gate.SIGN_IN_PATH, "POST", {"Content-Type": "application/x-www-form-urlencoded"},
        b"token=" + b"y" * 43 + b"&next=/runs",
    )  # fmt: skip
    assert status == 401 and "set-cookie" not in head and b"That token is not valid" in body
    status, _, _ = request(gated.port, "/_stcore/health", headers={"Cookie": f"{ui_gate.SESSION_COOKIE}={'0' * 64}"})
    assert status == 401


def test_the_token_signs_in_with_an_httponly_cookie_and_a_redirect_without_it(gated):
    status, head, body = request(gated.port, f"/dashboard?run={RUN_NAME}&token={gated.token}")
    assert status == 303 and body == b""
    assert re.search(rf"^location: /dashboard\?run={RUN_NAME}$", head, re.M), head
    (cookie_line,) = [line for line in head.splitlines() if line.startswith("set-cookie: workbench_session=")]
    assert "HttpOnly" in cookie_line and "SameSite=Strict" in cookie_line and gated.token not in cookie_line
    cookie = session_cookie(head)
    status, _, body = request(gated.port, "/", headers={"Cookie": cookie})
    assert status == 200 and b"<script" in body and b'id="root"' in body  # Streamlit's own page now
    status, _, body = request(gated.port, "/_stcore/health", headers={"Cookie": cookie})
    assert (status, body) == (200, b"ok")
    # the form's POST signs in the same way, and only ever sends the browser back to a path on this server
    status, head, _ = request(
        gated.port, ui_gate.SIGN_IN_PATH, "POST", {"Content-Type": "application/x-www-form-urlencoded"},
        f"token={gated.token}&next=//evil.example/x".encode(),
    )  # fmt: skip
    assert status == 303 and re.search(r"^location: /$", head, re.M) and session_cookie(head) == cookie


def test_the_app_websocket_is_relayed_once_signed_in_and_never_cross_site(gated):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{gated.port}/_stcore/stream"
    with connect(url, subprotocols=["streamlit"], additional_headers={"Cookie": gated.cookie}, open_timeout=60) as ws:
        assert ws.subprotocol == "streamlit"  # Streamlit's own answer, through the relay
    for headers in ({}, {"Cookie": gated.cookie, "Origin": "http://evil.example"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, subprotocols=["streamlit"], additional_headers=headers, open_timeout=60)
        assert refused.value.response.status_code == 401


def test_the_token_is_printed_once_and_written_nowhere_under_the_runs_folder(gated):
    # use the token every way first (URL, form, wrong ones), so that a logger of any of them would have written it
    request(gated.port, f"/runs?token={gated.token}")
    request(gated.port, f"/runs?token={gated.token}x")
    request(gated.port, ui_gate.SIGN_IN_PATH, "POST", {"Content-Type": "application/x-www-form-urlencoded"},
            f"token={gated.token}".encode())  # fmt: skip
    request(gated.port, f"/_stcore/health?token={gated.token}", headers={"Cookie": gated.cookie})
    log = gated.log.read_text()
    assert log.count(gated.token) == 1
    (line,) = [line for line in log.splitlines() if gated.token in line]
    assert re.fullmatch(rf"workbench: sign in at http://\S+:{gated.port}/\?token={re.escape(gated.token)}", line)
    files = [p for p in gated.runs.parent.rglob("*") if p.is_file() and p != gated.log]
    assert files and not [p for p in files if gated.token.encode() in p.read_bytes()]


# ---- options (in-process, nothing started) --------------------------------------------------------------------------
class FakePopen:
    calls: list = []

    def __init__(self, args, **kwargs):
        FakePopen.calls.append((args, kwargs))

    def wait(self):
        return 0


def run_ui(monkeypatch, tmp_path, *argv: str) -> int:
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    FakePopen.calls = []
    return cli.main(["ui", "--port", str(free_port()), "--runs-dir", str(tmp_path / "r"), *argv])


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_no_auth_must_be_typed_and_starts_streamlit_on_the_host_with_a_warning(host, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ui_gate.TOKEN_ENV, "t" * 20)
    assert run_ui(monkeypatch, tmp_path, "--host", host, "--no-auth") == 0
    [(args, kwargs)] = FakePopen.calls
    assert args[args.index("--server.address") + 1] == host  # no proxy: Streamlit itself on the host
    assert ui_gate.TOKEN_ENV not in kwargs["env"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("workbench: warning:") and "--no-auth" in err and host in err


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (("--token", "short"), None, "--token must be at least 16 characters without spaces, got 5"),
        (("--token", "sixteen chars ok"), None, "--token must be at least 16 characters without spaces, got 16"),
        ((), "tooshort", "$WORKBENCH_TOKEN must be at least 16 characters without spaces, got 8"),
    ],
)
def test_a_bad_token_is_one_line_and_exit_2(argv, env, expected, tmp_path, monkeypatch, capsys):
    if env is not None:
        monkeypatch.setenv(ui_gate.TOKEN_ENV, env)
    assert run_ui(monkeypatch, tmp_path, "--host", "0.0.0.0", *argv) == 2
    err = capsys.readouterr().err
    assert err == f"workbench: error: {expected}; leave it out to have one generated\n"
    assert FakePopen.calls == []  # nothing started


def test_a_bad_token_from_the_real_command_line_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainers.cli", "ui", "--host", "0.0.0.0", "--token", "abc"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--token must be at least 16" in done.stderr


def test_an_unresolvable_host_is_one_line(tmp_path, monkeypatch, capsys):
    assert run_ui(monkeypatch, tmp_path, "--host", "no-such-host.invalid") == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: --host: cannot resolve 'no-such-host.invalid'") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("host", "others"),
    [("127.0.0.1", False), ("127.0.0.2", False), ("localhost", False), ("::1", False), ("0.0.0.0", True),
     ("::", True)],
)  # fmt: skip
def test_which_hosts_are_beyond_loopback(host, others):
    assert ui_gate.reachable_from_others(host) is others


def test_the_token_comes_from_the_option_then_the_environment_then_is_generated(monkeypatch):
    args = cli.build_parser().parse_args(["ui", "--host", "0.0.0.0", "--port", str(free_port())])

    def plan() -> ui_gate.Gate:
        gate = ui_gate.plan(args)
        gate.sock.close()
        return gate

    monkeypatch.delenv(ui_gate.TOKEN_ENV, raising=False)
    generated = [plan() for _ in range(2)]
    assert generated[0].generated and len(generated[0].token) >= 43 and generated[0].token != generated[1].token
    assert generated[0].token in generated[0].start_line()
    monkeypatch.setenv(ui_gate.TOKEN_ENV, "e" * 20)
    from_env = plan()
    assert from_env.token == "e" * 20 and not from_env.generated and from_env.token not in from_env.start_line()
    args.token = "o" * 20
    assert plan().token == "o" * 20
    args.host = "127.0.0.1"
    assert ui_gate.plan(args) is None  # loopback: Streamlit as before, no gate


def test_a_port_in_use_is_one_line_before_streamlit_starts(tmp_path, monkeypatch, capsys):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", port))
        taken.listen(1)
        monkeypatch.setattr(subprocess, "Popen", FakePopen)
        FakePopen.calls = []
        assert cli.main(["ui", "--port", str(port), "--host", "0.0.0.0", "--runs-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"workbench: error: --port: cannot listen on 0.0.0.0:{port} (Address already in use); choose another --port\n"
    )
    assert FakePopen.calls == []


def test_the_session_cookie_is_not_the_token_and_only_the_right_one_opens():
    gate = ui_gate.Gate("s" * 32, "0.0.0.0", 1, None, True)  # type: ignore[arg-type]
    assert gate.token not in gate.cookie_value
    assert gate.signed_in(f"a=1; {ui_gate.SESSION_COOKIE}={gate.cookie_value}; b=2")
    assert not gate.signed_in(f"{ui_gate.SESSION_COOKIE}={gate.cookie_value[:-1]}0")
    assert not gate.signed_in(f"{ui_gate.SESSION_COOKIE}={gate.token}") and not gate.signed_in(None)
    other = ui_gate.Gate("t" * 32, "0.0.0.0", 1, None, True)  # type: ignore[arg-type]
    assert not other.signed_in(f"{ui_gate.SESSION_COOKIE}={gate.cookie_value}")
    assert ui_gate.without_our_cookie(f"a=1; {ui_gate.SESSION_COOKIE}=v; _streamlit_xsrf=x") == "a=1; _streamlit_xsrf=x"


def test_the_redirect_after_sign_in_stays_on_this_server():
    assert [ui_gate.safe_next(p) for p in ("/runs", "//evil.example", "https://evil.example", "/\\evil", "")] == [
        "/runs", "/", "/", "/", "/"]  # fmt: skip
    assert ui_gate.split_token("run=a&token=T&x=1") == ("T", "run=a&x=1")
