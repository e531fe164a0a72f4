#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the router's end-to-end tests (stdlib only).

    python3 fault_proxy.py --listen 11600 --target http://127.0.0.1:11500

forwards every request (method, path, body, headers; answers are read whole, not streamed) to
the target, unless the current fault says otherwise. Control it over HTTP:

    POST /_fault {"mode": "ok" | "500" | "slow" | "flap" | "hang", "delay_s": 2.0, "every": 1}
    GET  /_fault -> {"mode", "delay_s", "every", "requests", "forwarded", "failed", "abandoned",
                     "paths": {path: {"requests", "forwarded"}}}

modes (setting one restarts its sequence; the counts are never reset):
    ok    forward everything
    500   answer 500 without forwarding, to 1 request in `every` (the 1st, the every+1-th, ...)
    flap  `every` requests answered 500, then `every` forwarded, and so on (default: alternate,
          starting with a failure)
    slow  wait delay_s, then forward (a client that gives up meanwhile is not forwarded: it is
          counted as abandoned), for 1 request in `every`
    hang  read the request and never answer, until the client gives up, for 1 request in `every`

In pytest: `server, thread = fault_proxy.start(port, "http://127.0.0.1:11500")`, later
`server.shutdown()` (port 0 picks a free one: server.server_address[1]).
"""
import argparse
import http.client
import json
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "500", "slow", "flap", "hang")
# Per-connection headers that must not be passed along (RFC 9110 section 7.6.1), and the ones
# recomputed here.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}


class FaultState:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode, self.delay_s, self.every = "ok", 1.0, 1
        self.seq = 0  # requests since the mode was set
        self.requests = self.forwarded = self.failed = self.abandoned = 0
        self.paths = {}

    def set(self, mode, delay_s, every):
        with self.lock:
            self.mode, self.delay_s, self.every, self.seq = mode, delay_s, every, 0

    def snapshot(self):
        with self.lock:
            return {"mode": self.mode, "delay_s": self.delay_s, "every": self.every,
                    "requests": self.requests, "forwarded": self.forwarded,
                    "failed": self.failed, "abandoned": self.abandoned,
                    "paths": {p: dict(c) for p, c in self.paths.items()}}

    def arrive(self, path):
        """Counts a request; returns what to do with it: ("forward"|"fail"|"slow"|"hang", delay)."""
        with self.lock:
            self.requests += 1
            self.paths.setdefault(path, {"requests": 0, "forwarded": 0})["requests"] += 1
            n, self.seq = self.seq, self.seq + 1
            mode, every = self.mode, self.every
            hit = n % every == 0
            if mode == "500" and hit or mode == "flap" and (n // every) % 2 == 0:
                self.failed += 1
                return "fail", 0.0
            if mode == "slow" and hit:
                return "slow", self.delay_s
            if mode == "hang" and hit:
                return "hang", 0.0
            return "forward", 0.0

    def count(self, what, path=None):
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)
            if what == "forwarded":
                self.paths[path]["forwarded"] += 1


class Handler(BaseHTTPRequestHandler):
    server_version = "fault-proxy"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode(), [("Content-Type", "application/json")])

    def _client_gone(self):
        """True when the client has closed its side (it gave up)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _wait(self, seconds):
        """Sleeps up to `seconds` (forever: None); False when the client left or we shut down."""
        end = None if seconds is None else time.monotonic() + seconds
        while end is None or time.monotonic() < end:
            if self._client_gone() or self.server.stopping.is_set():
                return False
            time.sleep(0.02)
        return True

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        state = self.server.state
        if urllib.parse.urlsplit(path).path == "/_fault":
            return self._control(body)
        action, delay = state.arrive(path)
        if action == "fail":
            return self._json(500, {"error": {"message": "fault_proxy: injected 500"}})
        if action == "hang":
            self._wait(None)
            self.close_connection = True
            return None
        if action == "slow" and not self._wait(delay):
            state.count("abandoned")
            self.close_connection = True
            return None
        return self._forward(path, body)

    def _forward(self, path, body):
        target = self.server.target
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn_cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        try:
            conn = conn_cls(target.hostname, target.port, timeout=self.server.target_timeout_s)
            conn.request(self.command, target.path.rstrip("/") + path, body=body or None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            return self._json(502, {"error": {"message": f"fault_proxy: target unreachable: {e}"}})
        self.server.state.count("forwarded", path)
        try:
            self._send(resp.status, data, out_headers)
        except OSError:
            pass  # the client left while the target answered

    def _control(self, body):
        state = self.server.state
        if self.command == "GET":
            return self._json(200, state.snapshot())
        if self.command != "POST":
            return self._json(405, {"error": "GET or POST /_fault"})
        try:
            req = json.loads(body or b"{}")
            mode = str(req.get("mode", "ok"))
            delay_s = float(req.get("delay_s", 1.0))
            every = int(req.get("every", 1))
        except (ValueError, TypeError, AttributeError) as e:
            return self._json(400, {"error": f"bad /_fault body: {e}"})
        if mode not in MODES or every < 1 or delay_s < 0:
            return self._json(400, {"error": f"mode must be one of {MODES}, every >= 1, delay_s >= 0"})
        state.set(mode, delay_s, every)
        return self._json(200, state.snapshot())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen_port, target, verbose=False, host="127.0.0.1", target_timeout_s=600):
        super().__init__((host, listen_port), Handler)
        self.target = urllib.parse.urlsplit(target)
        if self.target.scheme not in ("http", "https") or not self.target.hostname:
            raise ValueError(f"target must be an http(s) URL: {target!r}")
        self.target_timeout_s = target_timeout_s
        self.state = FaultState()
        self.stopping = threading.Event()
        self.verbose = verbose

    def shutdown(self):
        self.stopping.set()  # releases hanging and slow requests
        super().shutdown()
        self.server_close()


def start(listen_port, target, verbose=False):
    """Starts a proxy in a daemon thread; returns (server, thread)."""
    server = FaultProxy(listen_port, target, verbose=verbose)
    thread = threading.Thread(target=server.serve_forever, name="fault_proxy", daemon=True)
    thread.start()
    return server, thread


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1 (0: any)")
    ap.add_argument("--target", required=True, help="e.g. http://127.0.0.1:11500")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    server = FaultProxy(args.listen, args.target, verbose=args.verbose, host=args.host)
    print(f"fault_proxy: http://{args.host}:{server.server_address[1]} -> {args.target}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
