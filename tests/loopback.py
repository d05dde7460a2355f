"""An HTTP server on 127.0.0.1 serving a temporary folder: the only network the model zoo's download tests use."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def serve(folder: Path, chunk_delay_s: float = 0.0) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on a free port of 127.0.0.1; yields the base URL and the list of paths requested so far.

    ``chunk_delay_s``: a pause after every 64 KiB sent, so a download is slow enough to be watched half-way.
    """
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the stdlib's name)
            requested.append(self.path)

        def copyfile(self, source, outputfile):
            if not chunk_delay_s:
                return shutil.copyfileobj(source, outputfile)
            while chunk := source.read(65536):
                outputfile.write(chunk)
                outputfile.flush()
                time.sleep(chunk_delay_s)

    with running(functools.partial(Handler, directory=str(folder))) as url:
        yield url, requested


@contextmanager
def running(handler) -> Iterator[str]:
    """An HTTP server with request handler ``handler`` on a free port of 127.0.0.1, in a thread; yields its base URL
    and shuts it down afterwards."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
