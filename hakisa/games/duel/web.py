"""The playable browser duel, served on 127.0.0.1 (`hakisa duel serve|open`, hakisa/games/duel/cli.py), and
`DuelPage`.

The server: the web/ folder, /rules.json (the sim's), /bosses/index.json (["scripted", shipped brains..., league
brains...], listed per request so a newly promoted brain shows up on reload), /bosses/NAME.json (the league's
first, then hakisa's), and, with a log dir, POST /fights (a fight log, fightlog.py) -> LOGDIR/fights.jsonl.

`DuelPage` is what the live tools use (teacher recording, live play, browser tests):

    with DuelPage(tier="normal") as page:    # server + Chromium app window (+ Xvfb when there is no DISPLAY)
        page.display, page.window_title, page.canvas_region   # ":N", "Hakisa Duel", (left, top, 640, 360)
        page.click_to_focus()                # a real X click on the start screen: the fight begins
        page.evaluate("hakisa.state()")     # the page's read-only test hook (see web/page.js)

Chromium runs with --remote-debugging-port so Python reads the hook through Playwright's
`connect_over_cdp`; keys and clicks for play go through X (pynput/xdotool) like a person's would.
"""
from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlencode

from hakisa import browser
from hakisa.games.duel import brain, fightlog

WEB_DIR = Path(__file__).with_name("web")
RULES_PATH = Path(__file__).with_name("rules.json")
# The window: header 32 px + canvas 360 + HUD 32; 12 px side margins (style.css). Fixed, so capture regions are stable.
WINDOW_SIZE = (664, 424)
WINDOW_POS = (0, 0)
# The result overlay (web/style.css .band): an opaque band across the canvas, for pixel detectors of the fight's end.
RESULT_BAND = (0, 132, 640, 96)  # (left, top, width, height) in canvas pixels
VICTORY_RGB = (255, 215, 0)      # gold: the knight won
DEFEAT_RGB = (176, 0, 0)         # crimson: the boss won (HP or time up)

MAX_FIGHT_BYTES = 2 << 20  # a whole fight's log is ~10 kB; anything far bigger is not one


def boss_names(league: str | Path | None = None) -> list[str]:
    """The page's brain choices: "scripted", hakisa's shipped brains, then the league's (DIR/bosses/*.json)."""
    names = brain.shipped_brains()
    if league is not None and (Path(league) / "bosses").is_dir():
        names += sorted(p.stem for p in (Path(league) / "bosses").glob("*.json"))
    return list(dict.fromkeys(["scripted", *(n for n in names if n != "index")]))  # bosses/index.json is the list


def boss_file(name: str, league: str | Path | None = None) -> Path | None:
    """The brain file the page gets for `name`: the league's first, then the shipped one; None if neither."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name):  # a plain file name: nothing outside the folders
        return None
    dirs = ([Path(league) / "bosses"] if league is not None else []) + [brain.SHIPPED_DIR]
    return next((d / f"{name}.json" for d in dirs if (d / f"{name}.json").is_file()), None)


def routes(league: str | Path | None = None, log_dir: str | Path | None = None) -> tuple[dict, dict]:
    """(extra, post) for browser.start_server / BrowserApp: rules, brains and, with a log dir (default: the
    league), the fight sink. Without one, POST /fights is refused (the page ignores that)."""

    def bosses(rest: str | None) -> bytes | None:
        if rest == "index.json":
            return json.dumps(boss_names(league)).encode()
        f = boss_file(rest[: -len(".json")], league) if rest and rest.endswith(".json") else None
        return f.read_bytes() if f else None

    extra = {"/rules.json": RULES_PATH, "/bosses/": bosses}
    log_dir = log_dir if log_dir is not None else league
    if log_dir is None:
        return extra, {}
    out, lock = Path(log_dir) / "fights.jsonl", threading.Lock()

    def fights(body: bytes) -> None:
        if len(body) > MAX_FIGHT_BYTES:
            raise ValueError("fight log too large")
        try:
            fight = json.loads(body)
        except ValueError:
            raise ValueError("not JSON") from None
        line = json.dumps(fightlog.check_fight(fight, "POST /fights"), separators=(",", ":")) + "\n"  # one line
        with lock:  # the server is threaded: whole lines, never interleaved
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as f:
                f.write(line)

    return extra, {"/fights": fights}


def start_server(port: int = 0, host: str = "127.0.0.1", league: str | Path | None = None,
                 log_dir: str | Path | None = None):
    """Serve the page, the one rules.json (the sim's file, so both sides read the same bytes), the boss brains
    and, with a log dir (default: the league), the fight sink (see the module doc)."""
    extra, post = routes(league, log_dir)
    return browser.start_server(WEB_DIR, port, host, extra=extra, post=post)


def page_url(server, tier: str = "normal", seed: int | None = None, autostart: bool = False,
             boss: str | None = None) -> str:
    host, port = server.server_address[:2]
    q = {"tier": tier, "seed": seed, "autostart": 1 if autostart else None, "boss": boss}
    return f"http://{host}:{port}/index.html?" + urlencode({k: v for k, v in q.items() if v is not None})


def chromium_cmd(
    url: str, user_data_dir: str, size=WINDOW_SIZE, pos=WINDOW_POS, debug_port: int | None = 0
) -> list[str]:
    return browser.chromium_cmd(url, user_data_dir, size, pos, debug_port)


class DuelPage(browser.BrowserApp):
    """The duel page in a BrowserApp. `seed` fixes the first fight, `autostart=True` skips the start screen,
    `boss` names the brain it plays (the page falls back to scripted, visibly, when there is no such brain);
    `league`, `log_dir`: as for start_server."""

    def __init__(
        self,
        tier: str = "normal",
        display: str | None = None,
        seed: int | None = None,
        autostart: bool = False,
        screen: tuple[int, int] = (1280, 720),
        timeout: float = 30.0,
        boss: str | None = None,
        league: str | Path | None = None,
        log_dir: str | Path | None = None,
    ):
        self.tier, self.seed, self.autostart, self.boss = tier, seed, autostart, boss
        extra, post = routes(league, log_dir)
        super().__init__(
            WEB_DIR,
            query={"tier": tier, "seed": seed, "autostart": 1 if autostart else None, "boss": boss},
            size=WINDOW_SIZE,
            display=display,
            screen=screen,
            extra=extra,
            post=post,
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
