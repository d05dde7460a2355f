"""Streamlit's OIDC sign-in (issue 20 item 1, for organisations): with ``[auth]`` in the secrets no page logic runs
until ``st.user.is_logged_in`` (app/sign_in.py, called first by app/main.py), and ``workbench ui`` beyond loopback
then leaves the sign-in to Streamlit instead of starting its token proxy (trainers/cli/ui_gate.py)."""

from __future__ import annotations

import subprocess

import pytest
from streamlit.testing.v1 import AppTest

from app.state import defaults
from tests.test_app_pages import MAIN, make_run
from tests.ui_server import free_port
from trainers.cli import commands as cli
from trainers.cli import ui_gate
from trainers.statuses import RunStatus

AUTH = {"redirect_uri": "http://box:8501/oauth2callback", "cookie_secret": "c" * 32, "client_id": "id",
        "client_secret": "s", "server_metadata_url": "https://idp.example/.well-known/openid"}  # fmt: skip


def open_runs_page(user: dict, auth: bool) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    if auth:
        at.secrets["auth"] = AUTH
    at.user = user
    at.switch_page("app_pages/runs.py")
    return at.run()


def test_with_oidc_nobody_signed_in_sees_only_the_sign_in_button(runs_root):
    make_run(runs_root, "oidc-private-run", "complete", status=RunStatus.COMPLETED, epoch=6, epochs=6)
    at = open_runs_page({"is_logged_in": False}, auth=True)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"] and at.button(key="oidc_sign_in")
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.title, *at.caption, *at.dataframe])
    assert "oidc-private-run" not in shown and "Runs root" not in shown  # not even the sidebar ran
    assert not [key for key in defaults() if key in at.session_state]  # init_state, page logic's first step, never ran


def test_with_oidc_a_signed_in_user_gets_the_app(runs_root):
    make_run(runs_root, "oidc-private-run", "complete", status=RunStatus.COMPLETED, epoch=6, epochs=6)
    at = open_runs_page({"is_logged_in": True, "email": "a@example.com", "name": "A"}, auth=True)
    assert not at.exception
    assert "oidc_sign_in" not in [b.key for b in at.button]
    assert "oidc-private-run" in str(at.main)


def test_without_auth_secrets_the_app_is_as_before(runs_root):
    make_run(runs_root, "open-run", "complete", status=RunStatus.COMPLETED, epoch=6, epochs=6)
    at = open_runs_page({"is_logged_in": False}, auth=False)
    assert not at.exception and "oidc_sign_in" not in [b.key for b in at.button] and "open-run" in str(at.main)


@pytest.mark.parametrize("header", ["[auth]", "[auth.google]", "  [ auth ]"])
def test_workbench_ui_leaves_sign_in_to_oidc_when_the_secrets_configure_it(header, tmp_path, monkeypatch, capsys):
    (tmp_path / ".streamlit").mkdir()
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.write_text(f'other = 1\n{header}\nclient_id = "x"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kw: calls.append(args) or FakeProc())
    calls: list = []
    assert cli.main(["ui", "--host", "0.0.0.0", "--port", str(free_port()), "--runs-dir", str(tmp_path / "r")]) == 0
    [args] = calls
    assert args[args.index("--server.address") + 1] == "0.0.0.0"  # Streamlit on the host, no token proxy
    assert capsys.readouterr().err == f"workbench: sign-in by Streamlit's OIDC ([auth] in {secrets})\n"


def test_secrets_without_auth_keep_the_token_proxy(tmp_path, monkeypatch):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('authority = "x"\n[database]\nauth = 1\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ui_gate.oidc_secrets() is None


class FakeProc:
    def wait(self):
        return 0
