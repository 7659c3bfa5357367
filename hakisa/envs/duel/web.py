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
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from hakisa import browser

WEB_DIR = Path(__file__).with_name("web")
RULES_PATH = Path(__file__).with_name("rules.json")
# The window: header 32 px + canvas 360 + HUD 32; 12 px side margins (style.css). Fixed, so capture regions are stable.
WINDOW_SIZE = (664, 424)
WINDOW_POS = (0, 0)
# The result overlay (web/style.css .band): an opaque band across the canvas, for pixel detectors of the fight's end.
RESULT_BAND = (0, 132, 640, 96)  # (left, top, width, height) in canvas pixels
VICTORY_RGB = (255, 215, 0)      # gold: the knight won
DEFEAT_RGB = (176, 0, 0)         # crimson: the boss won (HP or time up)

def start_server(port: int = 0, host: str = "127.0.0.1"):
    """Serve the page and the one rules.json (the sim's file, so both sides read the same bytes)."""
    return browser.start_server(WEB_DIR, port, host, extra={"/rules.json": RULES_PATH})


def page_url(server, tier: str = "normal", seed: int | None = None, autostart: bool = False) -> str:
    host, port = server.server_address[:2]
    q = f"?tier={tier}" + (f"&seed={seed}" if seed is not None else "") + ("&autostart=1" if autostart else "")
    return f"http://{host}:{port}/index.html{q}"


def chromium_cmd(
    url: str, user_data_dir: str, size=WINDOW_SIZE, pos=WINDOW_POS, debug_port: int | None = 0
) -> list[str]:
    return browser.chromium_cmd(url, user_data_dir, size, pos, debug_port)


class DuelPage(browser.BrowserApp):
    """The duel page in a BrowserApp. `seed` fixes the first fight, `autostart=True` skips the start screen."""

    def __init__(
        self,
        tier: str = "normal",
        display: str | None = None,
        seed: int | None = None,
        autostart: bool = False,
        screen: tuple[int, int] = (1280, 720),
        timeout: float = 30.0,
    ):
        self.tier, self.seed, self.autostart = tier, seed, autostart
        super().__init__(
            WEB_DIR,
            query={"tier": tier, "seed": seed, "autostart": 1 if autostart else None},
            size=WINDOW_SIZE,
            display=display,
            screen=screen,
            extra={"/rules.json": RULES_PATH},
            timeout=timeout,
        )

    def click_to_focus(self) -> None:
        """Click the start screen with a REAL X pointer event (xdotool), as a person would: the window gets
        the keyboard focus and the fight starts. Falls back to a CDP click when xdotool is missing."""
        _, _, w, h = self.canvas_region
        if shutil.which("xdotool"):
            self.click(w // 2, h // 2)
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

    perception.add_args(
        sub.add_parser(
            "perception", help="pretrain an encoder to read the duel's state off its frames (for hakisa study --init)"
        )
    )


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
        proc = subprocess.Popen(
            chromium_cmd(url, tmp, debug_port=None),
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(args.seconds or None)
        except subprocess.TimeoutExpired:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            browser.kill_group(proc)
        if xvfb is not None:
            xvfb.stop()
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
