"""A stand-in for Hugging Face on loopback, for the `minnow pull` tests (test_store_*.py).

It serves what minnow reads from the real hub, in the same URL layout:
  GET  /api/models/USER/REPO/tree/main      [{"type", "path", "size", "oid", "lfs": {"oid", "size"}}]
  GET|HEAD /USER/REPO/resolve/main/FILE     302 to /cdn/USER/REPO/FILE, with X-Linked-Size and
                                            X-Linked-Etag (the LFS sha256) as the hub sends them
  GET  /cdn/USER/REPO/FILE                  the bytes, honouring "Range: bytes=N-" (206)
  GET|HEAD /files/NAME                      a plain file (the https://…/file.gguf form)
Each file can lie about its size or hash (the published metadata) and can drop the connection
part way through its first N downloads, to test resume and verification. `requests` records
(method, path, Range header) for the tests to inspect.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def tiny_gguf(fill: float = 1.0, n: int = 4096) -> bytes:
    """A small GGUF file minnow's reader accepts: general.architecture and one f32 tensor."""
    import tempfile
    from pathlib import Path

    import gguf

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_tensor("t", np.full(n, fill, dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


@dataclass
class HubFile:
    data: bytes
    published_size: int | None = None    # what the metadata says (default: the real size)
    published_sha: str | None = None     # likewise
    drop_first: int = 0                  # downloads cut off half way, before one succeeds
    linked_headers: bool = True          # X-Linked-* on HEAD (/files/ only)

    @property
    def size(self) -> int:
        return self.published_size if self.published_size is not None else len(self.data)

    @property
    def sha(self) -> str:
        return self.published_sha or hashlib.sha256(self.data).hexdigest()


class FakeHub:
    def __init__(self):
        self.repos: dict[tuple[str, str], dict[str, HubFile]] = {}
        self.files: dict[str, HubFile] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def add(self, user: str, repo: str, name: str, f: HubFile) -> HubFile:
        self.repos.setdefault((user, repo), {})[name] = f
        return f

    def ranges(self, path_suffix: str) -> list[str | None]:
        """The Range headers of the downloads (not the redirects) of a file, in order."""
        return [r for m, p, r in self.requests
                if m == "GET" and p.startswith(("/cdn/", "/files/")) and p.endswith(path_suffix)]

    # -- serving --------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, head: bool):
        self.requests.append((h.command, h.path, h.headers.get("Range")))
        parts = h.path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["api", "models"] and parts[4:] == ["tree", "main"]:
            files = self.repos.get((parts[2], parts[3]))
            if files is None:
                return self._send(h, 404, b'{"error":"Repository not found"}', head)
            listing = [{"type": "file", "oid": "0" * 40, "size": 120, "path": "README.md"}]
            for name, f in files.items():
                listing.append({"type": "file", "oid": "1" * 40, "size": f.size, "path": name,
                                "lfs": {"oid": f.sha, "size": f.size, "pointerSize": 134}})
            return self._send(h, 200, json.dumps(listing).encode(), head, "application/json")
        if len(parts) >= 5 and parts[2:4] == ["resolve", "main"]:
            f = self.repos.get((parts[0], parts[1]), {}).get("/".join(parts[4:]))
            if f is None:
                return self._send(h, 404, b"Entry not found", head)
            h.send_response(302)
            h.send_header("Location", "/cdn/" + "/".join([parts[0], parts[1]] + parts[4:]))
            h.send_header("X-Linked-Size", str(f.size))
            h.send_header("X-Linked-Etag", f'"{f.sha}"')
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if parts[0] == "cdn" and len(parts) >= 4:
            f = self.repos.get((parts[1], parts[2]), {}).get("/".join(parts[3:]))
            return self._file(h, f, head)
        if parts[0] == "files" and len(parts) == 2:
            f = self.files.get(parts[1])
            if f is not None and head and f.linked_headers:
                h.send_response(200)
                h.send_header("Content-Length", str(len(f.data)))
                h.send_header("X-Linked-Size", str(f.size))
                h.send_header("X-Linked-Etag", f'"{f.sha}"')
                h.end_headers()
                return
            return self._file(h, f, head)
        self._send(h, 404, b"not found", head)

    def _send(self, h, status, body: bytes, head: bool, ctype="text/plain"):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _file(self, h, f: HubFile | None, head: bool):
        if f is None:
            return self._send(h, 404, b"not found", head)
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(f.data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(f.data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        body = f.data[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(f.data) - 1}/{len(f.data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        if head:
            return
        if f.drop_first > 0:  # the connection dies half way: headers promised more
            f.drop_first -= 1
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        h.wfile.write(body)
