"""A browser game in a Chromium app window of fixed size, served from a local folder, for the live tools.

    with BrowserApp(WEB_DIR, title="Hakisa Pop", query={"seed": 3}) as app:   # own Xvfb when there is no DISPLAY
        app.display, app.window_title, app.canvas_region   # ":N", "Hakisa Pop", (left, top, w, h) on the screen
        app.evaluate("hakisa.state()")                      # the page's read-only test hook, if it has one

A game file's `window.launch` entry ({"web": "pop"}) opens its page this way. Chromium runs with
--remote-debugging-port so Python can read a page's test hook through Playwright's `connect_over_cdp`
(tests and scripted teachers only; agents see pixels). Keys and clicks go through X like a person's.
Everything started here (server, Chromium's process group, Xvfb) ends with the context.
"""
from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlencode

CHROMIUM = os.environ.get("HAKISA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--test-type",
                  "--force-device-scale-factor=1", "--no-default-browser-check", "--password-store=basic",
                  "--disable-features=Translate,MediaRouter,DialMediaRouteProvider",
                  # keep a game's 60 Hz loop running when the window is not focused or is covered
                  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                  "--disable-backgrounding-occluded-windows"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves one folder. `extra` maps URL paths to other files (the duel serves the sim's rules.json); a key
    ending in "/" maps the URLs below it to a folder (absent or empty is fine: 404s), or to a
    callable(rest_of_path) -> bytes | None (None: 404) for content made per request. `post` maps URL paths to
    sinks, callable(body: bytes) for what a page sends: 204 when it returns, 400 when it raises ValueError;
    bodies over `max_body` bytes are refused (413). Without sinks a POST gets 405."""

    extra: dict = {}
    post: dict = {}
    max_body = 2 << 20

    def _route(self, path: str):
        """(target, rest) of the `extra` entry that serves `path` (rest None: the key itself), or (None, None)."""
        p = unquote(path.split("?", 1)[0].split("#", 1)[0])
        if p.rstrip("/") in self.extra:
            return self.extra[p.rstrip("/")], None
        for key, target in self.extra.items():
            if key.endswith("/") and p.startswith(key):
                return target, p[len(key):]
        return None, None

    def translate_path(self, path: str) -> str:
        target, rest = self._route(path)
        if target is None:
            return super().translate_path(path)
        return str(target if rest is None else Path(target).joinpath(*rest.split("/")))

    def send_head(self):
        target, rest = self._route(self.path)
        # below a mapped folder: plain file names only (no listing, no "..": nothing outside that folder)
        if rest is not None and any(x in ("", ".", "..") or "\\" in x for x in rest.split("/")):
            self.send_error(404, "File not found")
            return None
        if not callable(target):
            return super().send_head()
        body = target(rest)
        if body is None:
            self.send_error(404, "File not found")
            return None
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(self.path.split("?", 1)[0]))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def do_POST(self):
        sink = self.post.get(self.path.split("?", 1)[0])
        if sink is None:
            self.send_error(405 if not self.post else 404)
            return
        size = self.headers.get("Content-Length", "")
        n = int(size) if size.isdigit() else -1
        if n < 0 or n > self.max_body:
            self.send_error(411 if n < 0 else 413)
            return
        try:
            sink(self.rfile.read(n))
        except ValueError as e:
            self.send_error(400, str(e)[:200])
            return
        self.send_response(204)
        self.end_headers()

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # edits to the page show up on reload
        super().end_headers()

    def log_message(self, *args):  # quiet
        pass


def start_server(directory: str | Path, port: int = 0, host: str = "127.0.0.1",
                 extra: dict | None = None, post: dict | None = None) -> http.server.ThreadingHTTPServer:
    """Serve `directory` in a daemon thread; `server.server_address[1]` is the port (0 picks a free one).
    extra, post: more files, folders, generated content and POST sinks (see _Handler)."""
    attrs = {"extra": dict(extra or {}), "post": dict(post or {})}
    handler = functools.partial(type("Handler", (_Handler,), attrs), directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="hakisa-http", daemon=True).start()
    return server


def chromium_cmd(url: str, user_data_dir: str, size=(664, 424), pos=(0, 0), debug_port: int | None = 0) -> list[str]:
    cmd = [CHROMIUM, f"--app={url}", f"--window-size={size[0]},{size[1]}", f"--window-position={pos[0]},{pos[1]}",
           f"--user-data-dir={user_data_dir}", *CHROMIUM_FLAGS]
    if debug_port is not None:
        cmd.append(f"--remote-debugging-port={debug_port}")  # 0: Chromium picks one, writes DevToolsActivePort
    return cmd


class BrowserApp:
    """Server + Chromium app window (+ its own Xvfb when needed) for a page in `web_dir`. Kills all it started.

    `evaluate` goes through Playwright's sync API: call it from the thread that opened the page.
    ready_js: a JS expression that is true once the page can be played (default: its hook says ready).
    canvas: CSS selector of the element whose screen rectangle is `canvas_region`."""

    def __init__(
        self,
        web_dir: str | Path | None = None,
        *,
        url: str | None = None,
        page: str = "index.html",
        query: dict | None = None,
        size: tuple[int, int] = (664, 424),
        display: str | None = None,
        screen: tuple[int, int] = (1280, 720),
        canvas: str = "#game",
        ready_js: str = "window.hakisa && window.hakisa.ready()",
        extra: dict | None = None,
        post: dict | None = None,
        timeout: float = 30.0,
        wm: bool | None = None,
    ):
        self.wm = wm  # for its own Xvfb: start a window manager (None: when the portable backend is selected)
        self.web_dir, self.page_name, self.query, self.size = web_dir, page, dict(query or {}), tuple(size)
        self.base_url = url  # a page served elsewhere: opened as it is, with `query` appended
        self.canvas_selector, self.ready_js, self.extra, self.timeout = canvas, ready_js, extra, timeout
        self.post = post
        self.display = display
        self._screen = screen
        self._xvfb = self._server = self._proc = self._pw = self._browser = self._page = None
        self._tmp: str | None = None
        self.canvas_region: tuple[int, int, int, int] | None = None
        self.window_title: str | None = None
        self.url: str | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def page_url(self) -> str:
        q = urlencode({k: v for k, v in self.query.items() if v is not None})
        if self.base_url:
            return self.base_url + (("&" if "?" in self.base_url else "?") + q if q else "")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{self.page_name}" + (f"?{q}" if q else "")

    def start(self):
        if self.display is None:
            self.display = os.environ.get("DISPLAY") or None
        if self.display is None:
            from hakisa.xserver import Xvfb

            self._xvfb = Xvfb(*self._screen, wm=self.wm)
            self.display = self._xvfb.start()
        if self.base_url is None:
            self._server = start_server(self.web_dir, extra=self.extra, post=self.post)
        self.url = self.page_url()
        self._tmp = tempfile.mkdtemp(prefix="hakisa-chromium-")
        env = {**os.environ, "DISPLAY": self.display}
        from hakisa.xserver import die_with_parent

        self._proc = subprocess.Popen(
            chromium_cmd(self.url, self._tmp, self.size),
            env=env,
            preexec_fn=die_with_parent,  # a killed run leaves no browser behind (its helpers exit with it)
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port = self._devtools_port()
        self._pw = _playwright_acquire()
        self._browser = self._pw.chromium.connect_over_cdp(f"http://127.0.0.1:{port}", timeout=self.timeout * 1000)
        self._page = self._find_page()
        try:
            self._page.wait_for_function(self.ready_js, timeout=self.timeout * 1000)
        except Exception as e:  # Playwright's TimeoutError: say which test never held
            if type(e).__name__ != "TimeoutError":
                raise
            raise TimeoutError(f"the page {self.url} was not ready in {self.timeout:g} s "
                               f"({self.ready_js!r} stayed false)") from None
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
        raise TimeoutError(f"chromium did not open its DevTools port in {self.timeout:g} s")

    def _find_page(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for ctx in self._browser.contexts:
                for p in ctx.pages:
                    if p.url.startswith(self.url.split("?")[0]):
                        return p
            time.sleep(0.05)
        raise TimeoutError(f"the page {self.url} did not appear in chromium in {self.timeout:g} s")

    def _canvas_region(self) -> tuple[int, int, int, int]:
        # The canvas's place in the viewport comes from the page; the viewport's place on the screen from X (the
        # window's inside, which a window manager may move or decorate), plus any frame Chromium draws itself
        # (outer - inner size). Without a window manager (Xvfb) X and window.screenX/Y agree.
        r = self.evaluate(
            """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
            return [window.screenX, window.screenY, window.outerWidth, window.outerHeight,
                    window.innerWidth, window.innerHeight, r.left, r.top, r.width, r.height]; }""",
            self.canvas_selector,
        )
        sx, sy, ow, oh, iw, ih, left, top, w, h = r
        ox, oy = self._window_origin(ow, oh) or (sx, sy)
        return int(ox + (ow - iw) // 2 + left), int(oy + (oh - ih) + top), int(w), int(h)

    def _window_origin(self, ow: int, oh: int) -> tuple[int, int] | None:
        try:
            from hakisa import capture

            wins = [x for x in capture.list_windows(display=self.display)  # on the selected backend
                    if self.window_title in x.title and x.region[2:] == (ow, oh)]
            return tuple(wins[0].region[:2]) if len(wins) == 1 else None
        except Exception:  # no window list here (an unusual setup): the page's own numbers are the fallback
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
            kill_group(self._proc)
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

    def fault(self) -> str | None:
        """Why this page can no longer be played (Chromium exited, the window was closed, the page's renderer
        crashed), or None. Cheap enough to ask once a second: it asks Playwright's driver, never the page
        (a hung renderer does not block it; a live env's RulesWatch catches a hung game by its screen)."""
        if self._proc is None or self._page is None:
            return "the browser is closed"
        if self._proc.poll() is not None:
            return f"chromium exited (code {self._proc.returncode})"
        try:  # runs in the driver, and delivers the events that mark a page crashed or closed
            self._page.wait_for_timeout(0)
        except Exception as e:
            return f"the page stopped ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        return None

    # ---- use ------------------------------------------------------------------------------------
    @property
    def page(self):
        """The Playwright page (for screenshots and the like)."""
        return self._page

    def evaluate(self, js: str, arg=None):
        """Evaluate JS in the page, e.g. "hakisa.state()"; returns JSON-able values."""
        return self._page.evaluate(js, arg) if arg is not None else self._page.evaluate(js)

    def click(self, x: int, y: int) -> None:
        """A REAL X pointer click at canvas pixel (x, y) (xdotool), as a person would: it also gives focus."""
        left, top, _, _ = self.canvas_region
        env = {**os.environ, "DISPLAY": self.display}
        subprocess.run(
            ["xdotool", "mousemove", str(left + x), str(top + y), "click", "1"], env=env, check=True, timeout=10
        )


# Playwright's sync API allows one running instance per thread, so pages (and a caller's own Playwright use
# through `app.page`) share one, started on first use and stopped when the last page closes.
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


def kill_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
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
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # stuck in the kernel after SIGKILL: nothing more we can do
            pass
