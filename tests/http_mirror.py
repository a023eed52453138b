"""A local HTTP server standing in for a PhysioNet mirror or another lab's dataset server (nothing outside
this machine is reachable here), optionally misbehaving on chosen paths."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    """Serves files; `faults` maps a URL path to "error-N" (HTTP 500 for the first N requests), "drop-N" (send
    the headers of the whole file, then only its first N bytes, and close the connection) or "slow-N" (send it
    N bytes every 50 ms)."""

    def __init__(self, *args, faults: dict[str, str], hits: Counter, **kwargs):
        self.faults, self.hits = faults, hits
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.hits[self.path] += 1
        kind, _, n = self.faults.get(self.path, "").partition("-")
        if kind == "error" and self.hits[self.path] <= int(n):
            self.send_error(500, "injected failure")
            return
        if kind == "slow":  # the whole file, N bytes at a time, 50 ms apart
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for start in range(0, len(data), int(n)):
                try:
                    self.wfile.write(data[start:start + int(n)])
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
                time.sleep(0.05)
            return
        if kind == "drop":
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: int(n)])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@contextlib.contextmanager
def serve(root: Path, faults: dict[str, str] | None = None, hits: Counter | None = None) -> Iterator[str]:
    """Serve the files under `root` on a free local port; yields the base URL (ending in '/'). `faults`: see
    _Handler; `hits` counts the requests per URL path."""
    handler = functools.partial(_Handler, directory=str(root), faults=faults if faults is not None else {},
                                hits=hits if hits is not None else Counter())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
