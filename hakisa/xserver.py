"""A private Xvfb display, for tests and for headless runs of the live tools.

`-displayfd` makes the server pick a free display number and tell us which, so parallel tests
(and a user's real desktop) never collide. The server dies with the context, always.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time


class Xvfb:
    """`with Xvfb(1280, 720) as display: ...` -> ":N". Also `start()` / `stop()`."""

    def __init__(self, width: int = 1280, height: int = 720, depth: int = 24):
        self.width, self.height, self.depth = width, height, depth
        self.proc: subprocess.Popen | None = None
        self.display: str | None = None

    def start(self) -> str:
        if shutil.which("Xvfb") is None:
            raise RuntimeError("Xvfb is not installed: run scripts/setup.sh (or apt-get install xvfb)")
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{self.width}x{self.height}x{self.depth}",
             "-nolisten", "tcp", "-noreset", "+extension", "XTEST"],
            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(w)
        deadline, buf = time.monotonic() + 15, b""
        with os.fdopen(r, "rb", buffering=0) as f:
            while not buf.endswith(b"\n") and time.monotonic() < deadline:
                chunk = f.read(16)
                if not chunk:
                    break
                buf += chunk
        if not buf.strip().isdigit():
            self.stop()
            raise RuntimeError("Xvfb did not start (no display number reported)")
        self.display = f":{int(buf)}"
        return self.display

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def env(self) -> dict[str, str]:
        """A copy of os.environ pointed at this display (for subprocesses)."""
        assert self.display, "Xvfb not started"
        return {**os.environ, "DISPLAY": self.display}

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
