"""`minnow serve` for the end-to-end server tests (test_server_ollama.py, test_server_openai.py).

`start_server()` runs the real binary on a free loopback port with the real model cache and
returns once the server has printed `listening on http://HOST:PORT` on stderr; `Server.stop()`
sends SIGTERM and returns the exit status. The `minnow_server` fixture is session-scoped, so a
test module that imports it shares one server among its tests (each importing module gets its
own server: pytest keys fixtures by the module that defines them in its namespace).

Until a build has the `serve` command, the fixture skips with a clear message instead of failing.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import MODELS, ROOT, model_cache, model_path

SMOL = MODELS[0]  # the default model, fast: most tests use it
GEMMA = next(m for m in MODELS if m.arch == "gemma3")

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
LISTENING = re.compile(r"listening on http://([^\s:/]+):(\d+)")


def binary() -> Path:
    return Path(os.environ.get("MINNOW_BIN") or ROOT / "build" / "minnow")


def serve_missing_reason(bin_path: Path) -> str | None:
    """Why this build cannot serve, or None. CLI11 answers `minnow serve --help` with the main
    help (exit 0) when `serve` is unknown, so the exit code alone does not tell: the usage line
    must name the subcommand."""
    if not os.access(bin_path, os.X_OK):
        return f"{bin_path} is not built; run scripts/test.sh or scripts/quickstart.sh"
    p = subprocess.run([str(bin_path), "serve", "--help"], capture_output=True, text=True,
                       timeout=30)
    text = p.stdout + p.stderr
    if p.returncode != 0 or not re.search(r"Usage:.*\bserve\b", text):
        return f"`{bin_path.name} serve` is not a known command in this build (exit {p.returncode})"
    return None


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later; a clash
    is retried by start_server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `minnow serve`. Its stderr is drained by a thread (a full pipe would block the
    server) and kept for failure messages."""

    def __init__(self, proc: subprocess.Popen, host: str, port: int):
        self.proc = proc
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.lines: list[str] = []
        self.listening = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            m = LISTENING.search(line)
            if m and int(m.group(2)) == self.port:
                self.listening.set()

    def log(self) -> str:
        return "\n".join(self.lines[-60:])

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then the exit status (killed and -9 when it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -9
        self._reader.join(timeout=5)
        if getattr(self, "own_store", None):
            shutil.rmtree(self.own_store, ignore_errors=True)
        return rc


def start_server(bin_path: Path | None = None, *, extra_args: tuple[str, ...] = (),
                 env: dict | None = None, port_by_env: bool = False) -> Server:
    """Starts `minnow serve --host 127.0.0.1 --port P` (or with MINNOW_HOST=127.0.0.1:P when
    port_by_env) and waits for its `listening` line. Fails the test with the server's log when
    it does not come up in START_TIMEOUT_S."""
    bin_path = bin_path or binary()
    reason = serve_missing_reason(bin_path)
    if reason:
        pytest.skip(reason)
    last_log = ""
    for _attempt in range(3):  # another process may take the free port before the server does
        port = free_port()
        full_env = dict(os.environ)
        full_env["MINNOW_CACHE"] = str(model_cache())
        # A model store of its own (the cache's models join it on first use, hard-linked), so
        # that what is in ~/.minnow/models never changes what a test sees; env may name another.
        own_store = tempfile.mkdtemp(prefix="minnow-store-")
        full_env["MINNOW_MODELS"] = own_store
        full_env.pop("MINNOW_HOST", None)
        if env:
            full_env.update(env)
        args = [str(bin_path), "serve"]
        if port_by_env:
            full_env["MINNOW_HOST"] = f"127.0.0.1:{port}"
        else:
            args += ["--host", "127.0.0.1", "--port", str(port)]
        args += list(extra_args)
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=full_env)
        server = Server(proc, "127.0.0.1", port)
        server.own_store = own_store
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if server.listening.wait(timeout=0.1):
                return server
        if proc.poll() is None:
            server.stop(timeout=5)
            pytest.fail(f"minnow serve printed no 'listening on http://127.0.0.1:{port}' in "
                        f"{START_TIMEOUT_S} s; its stderr:\n{server.log()}")
        server._reader.join(timeout=5)
        last_log = server.log()
        if "in use" not in last_log.lower():
            break
    pytest.fail(f"minnow serve exited ({proc.returncode}) before listening; stderr:\n{last_log}")


@pytest.fixture(scope="session")
def minnow_server():
    """One `minnow serve` for the importing test module's session; stopped with SIGTERM at the
    end, which must exit 0."""
    server = start_server()
    yield server
    rc = server.stop()
    assert rc == 0, f"minnow serve exited {rc} on SIGTERM; stderr:\n{server.log()}"


@pytest.fixture
def smol(minnow_server) -> str:
    """The default model's name; skips when its file is not in the cache."""
    model_path(SMOL)
    return SMOL.name


@pytest.fixture
def gemma(minnow_server) -> str:
    model_path(GEMMA)
    return GEMMA.name
