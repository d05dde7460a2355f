"""Who may reach ``workbench ui``: when it listens beyond loopback, a sign-in (a token) in front of Streamlit.

Streamlit has no request middleware, so a check inside the app cannot keep its static files, media and downloads
private. Instead ``workbench ui --host H`` with H outside 127.0.0.0/8 and ::1 (``0.0.0.0`` and ``::`` included: they
listen on every interface) starts Streamlit on 127.0.0.1 at a free port and puts :mod:`trainers.cli.ui_proxy` on
H:PORT, which forwards nothing until the browser holds the session cookie. This module decides whether that happens
(:func:`plan`), holds the token and its cookie (:class:`Gate`) and draws the sign-in form.

The token is ``--token`` or ``$WORKBENCH_TOKEN``, else generated and printed once at start as a URL (as Jupyter does):
starting beyond loopback without auth options starts *with* a token, never open. ``--no-auth`` serves without sign-in.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import ipaddress
import os
import re
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode

from trainers.errors import WorkbenchError

TOKEN_ENV = "WORKBENCH_TOKEN"
MIN_TOKEN_CHARS = 16
SESSION_COOKIE = "workbench_session"
USER_COOKIE = "workbench_user"  # the name given at sign-in, readable: it opens nothing
USER_HEADER = "X-Workbench-User"  # how Streamlit learns the name (st.context.headers); never taken from the browser
MAX_NAME_CHARS = 64
SIGN_IN_PATH = "/_workbench/sign-in"
# Paths a browser fetches for the app, not as a page: refused with 401 (the form's body still says how to sign in).
API_PREFIXES = ("/_stcore/", "/media/", "/component/", "/static/", "/app/static/", "/_workbench/")


@dataclass
class Gate:
    """The token that opens the proxy, and the listening socket it serves (bound before Streamlit starts, so a port
    in use is one line before anything else runs)."""

    token: str
    host: str
    port: int
    sock: socket.socket
    generated: bool

    @property
    def cookie_value(self) -> str:
        """The session cookie: an HMAC of the token (the token itself never travels back after sign-in)."""
        return hmac.new(self.token.encode(), b"workbench-ui-session", hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token.encode())

    def signed_in(self, cookie_header: str | None) -> bool:
        value = cookies(cookie_header).get(SESSION_COOKIE, "")
        return hmac.compare_digest(value.encode(), self.cookie_value.encode())

    def set_cookie_header(self) -> str:
        # HttpOnly: no script reads it; SameSite=Strict: no other site's page makes the browser send it.
        return f"{SESSION_COOKIE}={self.cookie_value}; Path=/; HttpOnly; SameSite=Strict"

    def set_user_header(self, name: str) -> str:
        return f"{USER_COOKIE}={quote(name)}; Path=/; SameSite=Strict"

    def start_line(self) -> str:
        """The one line printed at start; it holds the token only when the token was generated here."""
        url = f"http://{display_host(self.host)}:{self.port}/"
        if self.generated:
            return f"workbench: sign in at {url}?token={self.token}"
        return f"workbench: sign in at {url} with your token (--token / ${TOKEN_ENV})"


def add_options(p: argparse.ArgumentParser) -> None:
    """``--token`` and ``--no-auth`` on ``workbench ui``."""
    auth = p.add_mutually_exclusive_group()
    auth.add_argument(
        "--token", metavar="T",
        help=f"sign-in token when --host is beyond loopback (default: ${TOKEN_ENV}, else one generated and printed)",
    )  # fmt: skip
    auth.add_argument("--no-auth", action="store_true", help="serve beyond loopback without sign-in (anyone can)")


def reachable_from_others(host: str) -> bool:
    """Whether listening on ``host`` accepts connections from other machines (any address it names is not loopback;
    ``0.0.0.0`` and ``::`` are every interface)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as e:
        raise WorkbenchError(
            f"--host: cannot resolve {host!r} ({getattr(e, 'strerror', e)}); "
            "give an address such as 127.0.0.1 or 0.0.0.0"
        ) from None
    return any(not ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_token(token: str, source: str) -> str:
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise WorkbenchError(
            f"{source} must be at least {MIN_TOKEN_CHARS} characters without spaces, got {len(token)}; "
            "leave it out to have one generated"
        )
    return token


def plan(args: argparse.Namespace) -> Gate | None:
    """The gate for this ``workbench ui``, or None when Streamlit serves ``--host`` itself (loopback, or ``--no-auth``
    with a warning). Binds the public socket."""
    if not reachable_from_others(args.host):
        return None
    oidc = oidc_secrets()
    if oidc is not None and not args.no_auth:
        print(f"workbench: sign-in by Streamlit's OIDC ([auth] in {oidc})", file=sys.stderr)
        return None
    if args.no_auth:
        print(
            f"workbench: warning: serving on {args.host} without sign-in (--no-auth): "
            "anyone who can reach this address can start and stop runs",
            file=sys.stderr,
        )
        return None
    if args.token is not None:
        token, generated = check_token(args.token, "--token"), False
    elif os.environ.get(TOKEN_ENV):
        token, generated = check_token(os.environ[TOKEN_ENV], f"${TOKEN_ENV}"), False
    else:
        token, generated = secrets.token_urlsafe(32), True
    return Gate(token, args.host, args.port, listen(args.host, args.port), generated)


def oidc_secrets() -> Path | None:
    """The secrets file with an ``[auth]`` section that Streamlit will read (its defaults: the working folder's
    ``.streamlit/secrets.toml``, then the user's), if any: then the app signs people in itself (app/sign_in.py)."""
    for path in (Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"):
        try:  # a table header, not a TOML parse: tomllib is Python 3.11+, and Streamlit reports a broken file itself
            if re.search(r"^\s*\[\s*auth\s*[\].]", path.read_text(encoding="utf-8"), re.M):
                return path
        except (OSError, UnicodeDecodeError):
            continue
    return None


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise WorkbenchError(f"--port: cannot listen on {host}:{port} ({e.strerror}); choose another --port") from None
    sock.setblocking(False)
    return sock


def free_loopback_port() -> int:
    """A port on 127.0.0.1 for Streamlit behind the gate (free now; Streamlit binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def display_host(host: str) -> str:
    if is_ip(host) and ipaddress.ip_address(host).is_unspecified:
        host = socket.gethostname()  # every interface: the machine's name is what the others type
    return f"[{host}]" if ":" in host else host


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def cookies(header: str | None) -> dict[str, str]:
    out = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.setdefault(name, value)
    return out


def without_our_cookie(header: str) -> str:
    """The Cookie header Streamlit gets: the browser's own cookies less the session and name cookies."""
    parts = [p.strip() for p in header.split(";")]
    return "; ".join(p for p in parts if p and p.partition("=")[0] not in (SESSION_COOKIE, USER_COOKIE))


def clean_name(name: str) -> str:
    """A name as recorded: printable, one line, at most :data:`MAX_NAME_CHARS` characters ('' when none)."""
    return "".join(c for c in name if c.isprintable()).strip()[:MAX_NAME_CHARS]


def user_header(cookie_header: str | None) -> str | None:
    """The value of :data:`USER_HEADER` for Streamlit: the signed-in person's name, URL-quoted (headers are latin-1)."""
    name = clean_name(unquote(cookies(cookie_header).get(USER_COOKIE, "")))
    return quote(name) if name else None


def split_token(query: str) -> tuple[str | None, str]:
    """``(token, the query without it)``: a token in the URL is taken out before anything else sees the URL."""
    pairs = parse_qsl(query, keep_blank_values=True)
    tokens = [v for k, v in pairs if k == "token"]
    return (tokens[-1] if tokens else None), urlencode([(k, v) for k, v in pairs if k != "token"])


def safe_next(path: str) -> str:
    """Where to go after signing in: a path on this server only (never ``//other.host`` or a full URL)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def is_page(path: str) -> bool:
    return not path.startswith(API_PREFIXES)


def sign_in_page(next_path: str = "/", wrong: bool = False) -> str:
    """The only page shown before sign-in: a token field, nothing of the app. ``next_path``: where to go after it
    (a failed POST keeps the one posted; elsewhere the page's script takes the address it was opened at)."""
    note = '<p class="wrong">That token is not valid.</p>' if wrong else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trainer Workbench: sign in</title>
<style>body{{font-family:sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.3rem 0 1rem;box-sizing:border-box}}.wrong{{color:#b00020}}</style></head>
<body><h1>Trainer Workbench</h1><p>Sign in with the token printed where <code>workbench ui</code> started.</p>{note}
<form method="post" action="{SIGN_IN_PATH}"><label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<label for="name">Your name (recorded with the runs you start, stop, resume or archive)</label>
<input id="name" name="name" maxlength="{MAX_NAME_CHARS}" autocomplete="name" required>
<input type="hidden" id="next" name="next" value="{html.escape(safe_next(next_path))}">
<button type="submit">Sign in</button></form>
<script>/* back to the page asked for after sign-in (read here, so the server echoes nothing of the URL) */
if (location.pathname !== "{SIGN_IN_PATH}") {{ const u = new URL(location.href); u.searchParams.delete("token");
  document.getElementById("next").value = u.pathname + u.search; }}</script></body></html>
"""
