"""Who is signed in (issue 20 item 2): the sign-in form's name is kept in a readable cookie and reaches Streamlit only
as the proxy's own ``X-Workbench-User`` header (a browser cannot send one of its own); the session and name cookies
never reach Streamlit. The proxy app is driven in-process against a loopback server that echoes what it received."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from starlette.testclient import TestClient

from trainers.cli import ui_gate, ui_proxy


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def client():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gate = ui_gate.Gate("k" * 32, "0.0.0.0", 1, None, True)  # type: ignore[arg-type]
    try:
        with TestClient(ui_proxy.build_app(gate, server.server_address[1]), base_url="http://box:8501") as c:
            yield c, gate
    finally:
        server.shutdown()
        server.server_close()


def sign_in(c, gate, name: str):
    form = {"token": gate.token, "name": name, "next": "/runs"}
    return c.post(ui_gate.SIGN_IN_PATH, data=form, follow_redirects=False)


def test_the_name_from_the_form_reaches_streamlit_as_the_proxy_header_only(client):
    c, gate = client
    reply = sign_in(c, gate, "  Ada Lovelace\n ")
    assert reply.status_code == 303 and reply.headers["location"] == "/runs"
    set_cookies = reply.headers.get_list("set-cookie")
    (user_cookie,) = [v for v in set_cookies if v.startswith(f"{ui_gate.USER_COOKIE}=")]
    assert user_cookie.startswith(f"{ui_gate.USER_COOKIE}=Ada%20Lovelace;") and "HttpOnly" not in user_cookie
    seen = c.get("/x", headers={"X-Workbench-User": "Mallory"}).json()
    # a forged header is dropped and the cookie's name sent instead; Streamlit sees neither of our cookies
    assert seen["x-workbench-user"] == "Ada%20Lovelace"
    assert ui_gate.SESSION_COOKIE not in seen.get("cookie", "") and ui_gate.USER_COOKIE not in seen.get("cookie", "")


def test_without_a_name_no_header_and_a_forged_one_is_dropped(client):
    c, gate = client
    c.get(f"/?token={gate.token}")  # the printed URL: signed in, no name given
    seen = c.get("/x", headers={"X-Workbench-User": "Mallory"}).json()
    assert "x-workbench-user" not in seen


def test_names_are_one_printable_line_of_at_most_64_characters():
    assert ui_gate.clean_name("a\x00b\tc\nd  ") == "abcd"
    assert len(ui_gate.clean_name("n" * 500)) == ui_gate.MAX_NAME_CHARS
    assert ui_gate.user_header(f"{ui_gate.USER_COOKIE}=Zo%C3%AB%0A") == "Zo%C3%AB"
    assert ui_gate.user_header(f"{ui_gate.USER_COOKIE}=%20") is None and ui_gate.user_header(None) is None
