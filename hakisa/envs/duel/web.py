"""`hakisa duel serve|open` and `DuelPage`: the playable browser duel, served on 127.0.0.1.

    hakisa duel serve --port 8765          # then browse http://127.0.0.1:8765/
    hakisa duel open --tier hard           # serve + a Chromium app window of fixed size (own Xvfb if no DISPLAY)

`DuelPage` is what the live tools use (teacher recording, live play, browser tests):

    with DuelPage(tier="normal") as page:    # server + Chromium app window (+ Xvfb when there is no DISPLAY)
        page.display, page.window_title, page.canvas_region   # ":N", "Hakisa Duel", (left, top, 640, 360)
        page.click_to_focus()                # a real X click on the start screen: the fight begins
        page.evaluate("hakisa.state()")     # the page's read-only test hook (see web/page.js)

Chromium runs with --remote-debugging-port so Python reads the hook through Playwright's
`connect_over_cdp`; keys and clicks for play go through X (pynput/xdotool) like a person's would.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

WEB_DIR = Path(__file__).with_name("web")
RULES_PATH = Path(__file__).with_name("rules.json")
CHROMIUM = os.environ.get("HAKISA_CHROMIUM", "/usr/bin/chromium")
# The window: header 32 px + canvas 360 + HUD 32; 12 px side margins (style.css). Fixed, so capture regions are stable.
WINDOW_SIZE = (664, 424)
WINDOW_POS = (0, 0)
# The result overlay (web/style.css .band): an opaque band across the canvas, for pixel detectors of the fight's end.
RESULT_BAND = (0, 132, 640, 96)  # (left, top, width, height) in canvas pixels
VICTORY_RGB = (255, 215, 0)      # gold: the knight won
DEFEAT_RGB = (176, 0, 0)         # crimson: the boss won (HP or time up)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--test-type",
                  "--force-device-scale-factor=1", "--no-default-browser-check", "--password-store=basic",
                  "--disable-features=Translate,MediaRouter,DialMediaRouteProvider",
                  # keep the 60 Hz loop running when the window is not focused or is covered
                  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                  "--disable-backgrounding-occluded-windows"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves web/ and the one rules.json (the sim's file, so both sides read the same bytes)."""

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0].rstrip("/") == "/rules.json":
            return str(RULES_PATH)
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # edits to the page show up on reload
        super().end_headers()

    def log_message(self, *args):  # quiet
        pass


def start_server(port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """Serve the page in a daemon thread; `server.server_address[1]` is the port (0 picks a free one)."""
    handler = functools.partial(_Handler, directory=str(WEB_DIR))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="duel-http", daemon=True).start()
    return server


def page_url(server, tier: str = "normal", seed: int | None = None, autostart: bool = False) -> str:
    host, port = server.server_address[:2]
    q = f"?tier={tier}" + (f"&seed={seed}" if seed is not None else "") + ("&autostart=1" if autostart else "")
    return f"http://{host}:{port}/index.html{q}"


def chromium_cmd(url: str, user_data_dir: str, size=WINDOW_SIZE, pos=WINDOW_POS, debug_port: int | None = 0) -> list[str]:
    cmd = [CHROMIUM, f"--app={url}", f"--window-size={size[0]},{size[1]}", f"--window-position={pos[0]},{pos[1]}",
           f"--user-data-dir={user_data_dir}", *CHROMIUM_FLAGS]
    if debug_port is not None:
        cmd.append(f"--remote-debugging-port={debug_port}")  # 0: Chromium picks one, writes DevToolsActivePort
    return cmd


class DuelPage:
    """Server + Chromium app window (+ its own Xvfb when needed) for the duel page. Kills all it started.

    `evaluate` goes through Playwright's sync API: call it from the thread that opened the page.
    `seed` fixes the first fight, `autostart=True` skips the start screen (no click needed)."""

    def __init__(self, tier: str = "normal", display: str | None = None, seed: int | None = None,
                 autostart: bool = False, screen: tuple[int, int] = (1280, 720), timeout: float = 30.0):
        self.tier, self.seed, self.autostart, self.timeout = tier, seed, autostart, timeout
        self.display = display
        self._screen = screen
        self._xvfb = self._server = self._proc = self._pw = self._browser = self._page = None
        self._tmp: str | None = None
        self.canvas_region: tuple[int, int, int, int] | None = None
        self.window_title: str | None = None
        self.url: str | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "DuelPage":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "DuelPage":
        if self.display is None:
            self.display = os.environ.get("DISPLAY") or None
        if self.display is None:
            from hakisa.xserver import Xvfb

            self._xvfb = Xvfb(*self._screen)
            self.display = self._xvfb.start()
        self._server = start_server()
        self.url = page_url(self._server, self.tier, self.seed, self.autostart)
        self._tmp = tempfile.mkdtemp(prefix="hakisa-chromium-")
        env = {**os.environ, "DISPLAY": self.display}
        self._proc = subprocess.Popen(chromium_cmd(self.url, self._tmp), env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        port = self._devtools_port()
        self._pw = _playwright_acquire()
        self._browser = self._pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}", timeout=self.timeout * 1000)
        self._page = self._find_page()
        self._page.wait_for_function("window.hakisa && window.hakisa.ready()", timeout=self.timeout * 1000)
        self.window_title = self._page.title()
        self.canvas_region = self._canvas_region()
        return self

    def _devtools_port(self) -> int:
        f = Path(self._tmp) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self._proc.returncode} before it was ready")
            if f.exists():
                lines = f.read_text().split()
                if lines and lines[0].isdigit():
                    return int(lines[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def _find_page(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for ctx in self._browser.contexts:
                for p in ctx.pages:
                    if p.url.startswith(self.url.split("?")[0]):
                        return p
            time.sleep(0.05)
        raise TimeoutError("the duel page did not appear in chromium")

    def _canvas_region(self) -> tuple[int, int, int, int]:
        # The canvas's place in the viewport comes from the page; the viewport's place on the screen from X (the
        # window's inside, which a window manager may move or decorate), plus any frame Chromium draws itself
        # (outer - inner size). Without a window manager (Xvfb) X and window.screenX/Y agree.
        r = self.evaluate("""(() => { const r = document.getElementById('game').getBoundingClientRect();
            return [window.screenX, window.screenY, window.outerWidth, window.outerHeight,
                    window.innerWidth, window.innerHeight, r.left, r.top, r.width, r.height]; })()""")
        sx, sy, ow, oh, iw, ih, left, top, w, h = r
        ox, oy = self._window_origin(ow, oh) or (sx, sy)
        return int(ox + (ow - iw) // 2 + left), int(oy + (oh - ih) + top), int(w), int(h)

    def _window_origin(self, ow: int, oh: int) -> tuple[int, int] | None:
        try:
            from hakisa import capture

            dpy = capture.open_display(self.display)
            try:
                wins = [x for x in capture.list_windows(dpy) if self.window_title in x.title and x.region[2:] == (ow, oh)]
            finally:
                dpy.close()
            return tuple(wins[0].region[:2]) if len(wins) == 1 else None
        except Exception:  # no Xlib, or an unusual X setup: the page's own numbers are the fallback
            return None

    def close(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        except Exception:
            pass
        if self._pw is not None:
            _playwright_release()
        self._browser = self._pw = self._page = None
        if self._proc is not None:
            _kill_group(self._proc)
            self._proc = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._xvfb is not None:
            self._xvfb.stop()
            self._xvfb = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ---- use ------------------------------------------------------------------------------------
    @property
    def page(self):
        """The Playwright page (for screenshots and the like)."""
        return self._page

    def evaluate(self, js: str, arg=None):
        """Evaluate JS in the page, e.g. "hakisa.state()"; returns JSON-able values."""
        return self._page.evaluate(js, arg) if arg is not None else self._page.evaluate(js)

    def click_to_focus(self) -> None:
        """Click the start screen with a REAL X pointer event (xdotool), as a person would: the window gets
        the keyboard focus and the fight starts. Falls back to a CDP click when xdotool is missing."""
        left, top, w, h = self.canvas_region
        if shutil.which("xdotool"):
            env = {**os.environ, "DISPLAY": self.display}
            subprocess.run(["xdotool", "mousemove", str(left + w // 2), str(top + h // 2), "click", "1"],
                           env=env, check=True, timeout=10)
            try:
                self._page.wait_for_function("hakisa.mode() !== 'start'", timeout=5000)
                return
            except Exception:
                pass
        self._page.click("#start", timeout=5000)
        self._page.wait_for_function("hakisa.mode() !== 'start'", timeout=5000)

    def screenshot_canvas(self) -> "np.ndarray":  # noqa: F821
        """The canvas as the browser composited it (a CDP screenshot clip): (360, 640, 3) uint8 RGB."""
        import cv2
        import numpy as np

        png = self._page.locator("#game").screenshot(animations="disabled")
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# Playwright's sync API allows one running instance per thread, so DuelPages (and a caller's own Playwright use
# through `page.page`) share one, started on first use and stopped when the last DuelPage closes.
_PW: dict = {"pw": None, "cm": None, "refs": 0}


def _playwright_acquire():
    if _PW["pw"] is None:
        from playwright.sync_api import sync_playwright

        _PW["cm"] = sync_playwright()
        _PW["pw"] = _PW["cm"].start()
    _PW["refs"] += 1
    return _PW["pw"]


def _playwright_release() -> None:
    _PW["refs"] -= 1
    if _PW["refs"] <= 0 and _PW["pw"] is not None:
        try:
            _PW["pw"].stop()
        finally:
            _PW.update(pw=None, cm=None, refs=0)


def _kill_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Chromium forks helpers into the session we started it in: end that process group (ours only) and wait
    until every member is gone, so nothing of ours outlives close()."""
    pg = proc.pid
    try:
        os.killpg(pg, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout / 2)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pg, signal.SIGKILL if time.monotonic() > deadline - timeout / 2 else 0)
        except ProcessLookupError:
            break
        if proc.poll() is None and time.monotonic() > deadline - timeout / 2:
            proc.kill()
        if time.monotonic() > deadline:
            break  # only unreaped zombies can be left: they hold no resources
        time.sleep(0.05)
    if proc.poll() is None:
        proc.wait()


# ---- the `hakisa duel` verb --------------------------------------------------------------------------
def add_args(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="duel_cmd", metavar="serve|open|perception", required=True)
    s = sub.add_parser("serve", help="serve the page on 127.0.0.1")
    s.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    o = sub.add_parser("open", help="serve + open a Chromium app window of fixed size (own Xvfb if no DISPLAY)")
    o.add_argument("--port", type=int, default=8765)
    o.add_argument("--tier", choices=["easy", "normal", "hard"], default="normal")
    o.add_argument("--seed", type=int, default=None)
    o.add_argument("--seconds", type=float, default=0, help="close after this long (0: until Ctrl-C / window closed)")
    from hakisa.envs.duel import perception

    perception.add_args(sub.add_parser("perception", help="pretrain an encoder to read the duel's state off its frames "
                                                          "(for hakisa study --init)"))


def main(args) -> int:
    if args.duel_cmd == "perception":
        from hakisa.envs.duel import perception

        return perception.main(args)
    server = start_server(args.port)
    url = page_url(server, getattr(args, "tier", "normal"), getattr(args, "seed", None))
    print(json.dumps({"url": url}), flush=True)
    xvfb = proc = None
    tmp = tempfile.mkdtemp(prefix="hakisa-chromium-")
    try:
        if args.duel_cmd == "serve":
            print(f"serving the Hakisa Duel at {url} (Ctrl-C to stop)", flush=True)
            threading.Event().wait()
        display = os.environ.get("DISPLAY")
        if not display:
            from hakisa.xserver import Xvfb

            xvfb = Xvfb(1280, 720)
            display = xvfb.start()
            print(f"no DISPLAY: opened the page on a private Xvfb {display}", flush=True)
        proc = subprocess.Popen(chromium_cmd(url, tmp, debug_port=None), env={**os.environ, "DISPLAY": display},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(args.seconds or None)
        except subprocess.TimeoutExpired:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            _kill_group(proc)
        if xvfb is not None:
            xvfb.stop()
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
