"""The authenticating reverse proxy in front of Streamlit (see :mod:`trainers.cli.ui_gate` for when and why).

Built on what Streamlit itself runs on (starlette and uvicorn, and ``websockets`` for the client side), imported
only when ``workbench ui`` needs the proxy. Without the session cookie every path answers with the sign-in form
(200 for a page, 401 for anything else) and nothing is forwarded; ``?token=T`` or the form's POST with the right
token sets the cookie and redirects to the same path without the token, so it stays out of the browser's history and
of Streamlit's logs. Signed in, HTTP requests go to Streamlit as they came (less the session cookie) and the app's
websocket (``/_stcore/stream``) is relayed both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import signal
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qsl

from trainers.cli.ui_gate import (
    SIGN_IN_PATH,
    USER_HEADER,
    Gate,
    clean_name,
    is_page,
    safe_next,
    sign_in_page,
    split_token,
    user_header,
    without_our_cookie,
)

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own on each side; the length is recomputed for the body sent;
# uvicorn writes its own date and server lines.
HOP_HEADERS = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
    "upgrade", "content-length", "date", "server",
}  # fmt: skip
OURS = {"cookie", USER_HEADER.lower()}  # set by the proxy alone: a browser's own X-Workbench-User is dropped
MAX_MESSAGE = 256 * 1024 * 1024  # above Streamlit's own server.maxMessageSize (200 MB): the proxy never is the limit
UPSTREAM_TIMEOUT = 600  # seconds: a slow page build under load is slow, not gone


def build_app(gate: Gate, backend_port: int) -> Any:
    """The ASGI app: sign-in gate, HTTP forwarding and the websocket relay."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    def signed_in_redirect(path: str, query: str, name: str = "") -> Response:
        response = RedirectResponse(safe_next(path) + (f"?{query}" if query else ""), status_code=303)
        response.headers.append("set-cookie", gate.set_cookie_header())
        if name:
            response.headers.append("set-cookie", gate.set_user_header(name))
        return response

    def refuse(request: Request, wrong: bool = False) -> Response:
        page = is_page(request.url.path) and request.method in ("GET", "HEAD") and not wrong
        if request.method not in ("GET", "HEAD", "POST"):
            return PlainTextResponse("sign in first\n", status_code=401)
        return HTMLResponse(sign_in_page(wrong=wrong), status_code=200 if page else 401)

    async def sign_in(request: Request) -> Response:
        if request.method != "POST":
            return refuse(request)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if not gate.token_ok(form.get("token", "")):
            return HTMLResponse(sign_in_page(form.get("next", "/"), wrong=True), status_code=401)
        return signed_in_redirect(form.get("next", "/"), "", clean_name(form.get("name", "")))

    async def forward(request: Request) -> Response:
        token, rest = split_token(request.url.query)
        if token is not None:  # a token in the URL is checked and taken out of it, signed in or not
            if not gate.token_ok(token):
                return refuse(request, wrong=True)
            return signed_in_redirect(request.url.path, rest)
        if not gate.signed_in(request.headers.get("cookie")):
            return refuse(request)
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS | OURS]
        kept, who = without_our_cookie(request.headers.get("cookie", "")), user_header(request.headers.get("cookie"))
        headers += ([("cookie", kept)] if kept else []) + ([(USER_HEADER, who)] if who else [])
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            status, reply_headers, content = await asyncio.to_thread(
                _fetch, backend_port, request.method, target, headers, body
            )
        except OSError as e:
            return PlainTextResponse(f"the workbench UI is not answering ({e})\n", status_code=502)
        response = Response(content=content, status_code=status)
        kept_headers = [(k, v) for k, v in reply_headers if k.lower() not in HOP_HEADERS]
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in kept_headers]
        length = dict(reply_headers).get("Content-Length") if request.method == "HEAD" else str(len(content))
        response.raw_headers = raw + ([(b"content-length", length.encode())] if length is not None else [])
        return response

    async def stream(websocket: WebSocket) -> None:
        headers = websocket.headers
        origin, host = headers.get("origin"), headers.get("host")
        # Streamlit compares Origin with Host; the relay connects from 127.0.0.1, so that check is made here.
        cross_site = origin is not None and origin.split("://", 1)[-1] != host
        if cross_site or not gate.signed_in(headers.get("cookie")):
            await websocket.send_denial_response(PlainTextResponse("sign in first\n", status_code=401))
            return
        cookie, who = without_our_cookie(headers.get("cookie", "")), user_header(headers.get("cookie"))
        await _relay(websocket, backend_port, {"Cookie": cookie, USER_HEADER: who})

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return Starlette(
        routes=[
            Route(SIGN_IN_PATH, sign_in, methods=["GET", "HEAD", "POST"]),
            WebSocketRoute("/{path:path}", stream),
            Route("/{path:path}", forward, methods=methods),
        ]
    )


def _fetch(port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=UPSTREAM_TIMEOUT)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        reply = conn.getresponse()
        return reply.status, reply.getheaders(), reply.read()
    finally:
        conn.close()


async def _relay(websocket: Any, port: int, headers: dict[str, str | None]) -> None:
    """Relay the app's websocket to Streamlit's and back until either side closes."""
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}{websocket.url.path}" + (f"?{websocket.url.query}" if websocket.url.query else "")
    # Streamlit reads its XSRF token and session id from the subprotocol list, so it travels as the browser sent it.
    protocols = websocket.scope.get("subprotocols") or None
    try:
        upstream = await connect(
            url, subprotocols=protocols, additional_headers={k: v for k, v in headers.items() if v},
            max_size=MAX_MESSAGE, compression=None, open_timeout=60, ping_interval=None,
        )  # fmt: skip
    except (OSError, asyncio.TimeoutError, Exception) as e:  # noqa: BLE001 - any refusal upstream is a 502 here
        from starlette.responses import PlainTextResponse

        await websocket.send_denial_response(PlainTextResponse(f"the workbench UI refused ({e})\n", status_code=502))
        return
    await websocket.accept(subprotocol=upstream.subprotocol)

    async def down() -> None:
        async for message in upstream:
            if isinstance(message, bytes):
                await websocket.send_bytes(message)
            else:
                await websocket.send_text(message)

    async def up() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
        with contextlib.suppress(Exception):
            await websocket.close()


def serve(gate: Gate, backend_port: int, streamlit: subprocess.Popen) -> int:
    """Serve the gate until SIGTERM/Ctrl-C or until Streamlit ends; Streamlit is stopped on the way out."""
    import uvicorn

    def terminated(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # uvicorn re-raises the signal after its graceful stop: end here, cleanly

    signal.signal(signal.SIGTERM, terminated)
    config = uvicorn.Config(
        build_app(gate, backend_port), lifespan="off", access_log=False, log_level="warning",
        ws_max_size=MAX_MESSAGE, timeout_graceful_shutdown=5, server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def main() -> None:
        async def watch() -> None:  # Streamlit gone (crashed, killed): the gate has nothing to guard
            while streamlit.poll() is None:
                await asyncio.sleep(0.5)
            server.should_exit = True

        watcher = asyncio.ensure_future(watch())
        try:
            await server.serve(sockets=[gate.sock])
        finally:
            watcher.cancel()

    print(gate.start_line(), flush=True)
    try:
        asyncio.run(main())
    finally:
        _stop(streamlit)
    code = streamlit.returncode
    return 0 if code in (0, -signal.SIGTERM) else int(code or 0)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    sys.stdout.flush()
