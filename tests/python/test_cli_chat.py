"""`minnow run MODEL` on a terminal: the interactive chat. Driven through a pseudo-terminal, as
a person would: a question, a follow-up that needs the history, /set parameter, a multi-line
message, Ctrl-C during an answer (stops the answer, not the chat), /clear and /bye."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

from conftest import MODELS, model_path

SMOL = MODELS[0]


class Terminal:
    def __init__(self, args):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                     start_new_session=True)
        os.close(slave)
        self.buf = b""

    def read_until(self, marker: bytes, timeout: float = 60) -> bytes:
        deadline = time.time() + timeout
        while marker not in self.buf:
            left = deadline - time.time()
            assert left > 0, f"no {marker!r} in {self.buf[-400:]!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"terminal closed; got {self.buf[-400:]!r}"
                self.buf += chunk
        out, _, self.buf = self.buf.partition(marker)
        return out

    def send(self, text: str):
        os.write(self.master, text.encode())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.master)


def test_interactive_chat(minnow_bin):
    model_path(SMOL)
    t = Terminal([str(minnow_bin), "run", SMOL.name, "--temperature", "0", "-n", "40"])
    try:
        t.read_until(b">>> ")
        t.send("What is the capital of France? Answer in a few words.\n")
        first = t.read_until(b">>> ")
        assert b"Paris" in first
        # The history is kept: the follow-up is answered in its light.
        t.send("/set parameter num_predict 12\n")
        assert b"Set parameter 'num_predict'" in t.read_until(b">>> ")
        t.send('"""Repeat the city you just named,\nand nothing else."""\n')
        second = t.read_until(b">>> ")
        assert b"Paris" in second
        # Ctrl-C during a long answer stops it and the chat goes on.
        t.send("/set parameter num_predict 2000\n")
        t.read_until(b">>> ")
        t.send("Write a very long story about a dragon.\n")
        time.sleep(1.5)
        os.killpg(t.proc.pid, signal.SIGINT)
        t.read_until(b">>> ", timeout=30)
        assert t.proc.poll() is None, "Ctrl-C ended the program"
        t.send("/clear\n")
        assert b"Cleared" in t.read_until(b">>> ")
        t.send("/bye\n")
        assert t.proc.wait(timeout=30) == 0
    finally:
        t.close()
