"""The sink's guardian: a subprocess that releases every key and button the parent may hold when the
parent dies however (kill -9, a segfault), and hosts the kill-switch Listener (hakisa/sink.py says why)."""
from __future__ import annotations

import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import threading

from hakisa import backends
from hakisa.backends import BUTTONS


def start_guardian(backend: str, display: str | None, kill_key: str | None, keys: list[str],
                   on_kill) -> tuple[subprocess.Popen, mmap.mmap]:
    """Start the guardian for `keys` (then BUTTONS) on `display`; on_kill() runs when it reports the kill
    key. Returns (the process, the shared map: a byte per key, then per button, 1 while it may be down)."""
    # What is held lives in a small shared-memory file: marking a key costs a byte store, not a
    # pipe write that wakes the guardian (which, on a busy machine, preempts the loop). The pipe
    # stays silent until close() says "quit"; EOF without it means we died.
    size = len(keys) + len(BUTTONS)
    fd, path = tempfile.mkstemp(prefix="hakisa-guardian-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.ftruncate(fd, size)
    shm = mmap.mmap(fd, size)
    os.close(fd)
    env = {**os.environ, "HAKISA_BACKEND": backend}
    if display:
        env["DISPLAY"] = display  # the guardian guards OUR display
    # its own session: a Ctrl-C aimed at our process group must not take the guardian down with us
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from hakisa.guardian import guardian; "
                             "guardian(sys.argv[1], sys.argv[2] or None, sys.argv[3])",
                             path, kill_key or "", json.dumps(keys)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, env=env)
    if proc.stdout.readline().strip() != b"ready":  # "ready": it has mapped the file and unlinked it
        proc.kill()
        proc.wait()
        if os.path.exists(path):
            os.unlink(path)
        shm.close()
        raise RuntimeError("the input guardian subprocess failed to start (see its stderr above)")

    def watch():  # blocks in read (no GIL held) until the guardian reports the kill key, or exits
        for line in proc.stdout:
            if line.strip() == b"killed":
                on_kill()

    threading.Thread(target=watch, name="hakisa-kill-watch", daemon=True).start()
    return proc, shm


def kill_listener(kill_key: str, on_kill, display: str | None = None):
    """A started pynput keyboard Listener that calls on_kill() when `kill_key` goes down."""
    with backends.on_display(display):  # pynput listens on $DISPLAY (X11)
        from pynput import keyboard

        kill = keyboard.Key[kill_key] if len(kill_key) > 1 else keyboard.KeyCode.from_char(kill_key)

        def on_press(key):
            if key == kill:
                on_kill()
                return False  # stops the listener

        listener = keyboard.Listener(on_press=on_press)
        listener.start()
        listener.wait()  # its X RECORD context is live: a key pressed from now on is seen
    return listener


def guardian(shm_path: str, kill_key: str | None, keys_json: str) -> None:
    """The guardian subprocess: `shm_path` holds a byte per key of `keys_json` (then per button) that may be down.

    When stdin reaches EOF without "quit" (the parent died, however) it releases all of them through the
    parent's backend ($HAKISA_BACKEND, on $DISPLAY) and exits. It also hosts the kill-switch Listener: on
    the kill key it releases everything itself (even if the parent is stuck) and tells the parent "killed".
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(5)  # never preempt the loop it protects; ms of kill-switch latency don't matter
    keys = json.loads(keys_json)
    size = len(keys) + len(BUTTONS)
    with open(shm_path, "r+b") as f:
        shm = mmap.mmap(f.fileno(), size)
    os.unlink(shm_path)  # mapped by both of us now; nothing is left behind whoever dies
    inp = backends.get_backend().Input(os.environ.get("DISPLAY"), keys)
    lock = threading.Lock()

    def release() -> None:
        with lock:
            held = bytes(shm)
            for i, k in enumerate(keys):
                if held[i]:
                    inp.release(k)
            for j, b in enumerate(BUTTONS):
                if held[len(keys) + j]:
                    inp.button(b, False)
            inp.sync()

    def on_kill() -> None:
        release()
        sys.stdout.buffer.write(b"killed\n")
        sys.stdout.flush()

    if kill_key:
        kill_listener(kill_key, on_kill)
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.flush()
    if sys.stdin.buffer.readline().strip() == b"quit":
        return
    release()  # EOF without "quit": the parent is gone with these (maybe) still down
