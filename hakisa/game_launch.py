"""Opening a game's window (`Game.open` -> `LiveGame`): a served page or a URL in a Chromium app window, a
command, or a window found by title, on the user's display or a private Xvfb."""
from __future__ import annotations

import os
from contextlib import ExitStack

from hakisa.game_file import GameFileError
from hakisa.game_file import show_path as _show


class LiveGame:
    """The game's window on a display: `display`, `region` (the canvas on the screen), `window_id`, `title`,
    `backend` (the one that found it, and that its capture and sink use), and `app` (the BrowserApp when the
    file launched a page; its `evaluate` reads a page's test hook)."""

    def __init__(
        self,
        game,
        display: str | None = None,
        opts: dict | None = None,
        query: dict | None = None,
        private: bool = False,
        backend: str | None = None,
    ):
        from hakisa.backends import select_backend

        self.game, self.display, self.opts, self.query, self.private = game, display, opts, dict(query or {}), private
        self.backend = select_backend(backend)
        self._wm = self.backend == "portable"  # a private Xvfb needs a window manager for pywinctl
        self.app = self.region = self.window_id = self.title = None
        self._xvfb = self._proc = None  # the private X server and the game's program, when started here
        self._stack = ExitStack()

    def __enter__(self) -> "LiveGame":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        g, w = self.game, self.game.window
        launch = w.get("launch")
        resolved = g.resolve_options(self.opts)
        query = {o["query"]: resolved[k] for k, o in g.options.items() if "query" in o}
        query.update(self.query)
        if self.private:
            if not launch:
                raise GameFileError(
                    f"{_show(g.path)}: window.launch is needed to open the game on a private display "
                    "(a window found by title lives on the user's display)"
                )
            from hakisa.xserver import Xvfb

            self._xvfb = Xvfb(1280, 720, wm=self._wm)
            self.display = self._stack.enter_context(self._xvfb)
        if launch and ("web" in launch or "url" in launch):
            from hakisa.browser import BrowserApp

            web = g.path.parent / launch["web"] if "web" in launch else None
            canvas = w.get("canvas") if isinstance(w.get("canvas"), str) else "#game"
            kw = {"size": tuple(w["size"])} if "size" in w else {}
            # a page without a test hook is ready once it has loaded
            kw["ready_js"] = w.get("hook", "document.readyState === 'complete'")
            extra = {u: g.path.parent / f for u, f in (launch.get("files") or {}).items()}
            self.app = self._stack.enter_context(
                BrowserApp(
                    web, url=launch.get("url"), query=query, canvas=canvas, display=self.display, extra=extra,
                    wm=self._wm, **kw
                )
            )
            self.display, self.title = self.app.display, self.app.window_title
            if not isinstance(w.get("canvas"), list):
                self.region = self.app.canvas_region
        elif launch and "command" in launch:
            import subprocess

            from hakisa.browser import kill_group
            from hakisa.xserver import die_with_parent

            self.display = self.display or os.environ.get("DISPLAY")
            if not self.display:
                from hakisa.xserver import Xvfb

                self._xvfb = Xvfb(1280, 720, wm=self._wm)
                self.display = self._stack.enter_context(self._xvfb)
            self._proc = proc = subprocess.Popen(
                launch["command"],
                env={**os.environ, "DISPLAY": self.display},
                start_new_session=True,
                preexec_fn=die_with_parent,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._stack.callback(kill_group, proc)
        self.display = self.display or os.environ.get("DISPLAY")
        if not self.display:
            from hakisa.backends import DisplayError

            raise DisplayError(f"{_show(g.path)}: game {g.name!r} has no window.launch entry, so its window is found "
                               "on your display, and DISPLAY is not set (run it on your desktop, or set DISPLAY)")
        if "region" in w and not launch:
            self.region, self.title = tuple(w["region"]), None
            return
        title = self.title or w.get("title")
        if not title:
            raise GameFileError(f"{_show(g.path)}: window: a title or a region is needed to find the game")
        win = _wait_for_window(title, 30.0 if launch else 0.0, self.backend, self.display)
        self.window_id, self.title = win.id, win.title
        if launch:  # a window we opened gets the keyboard, as a window manager would give a new window
            from hakisa.capture import give_focus

            give_focus(win.id, backend=self.backend, display=self.display)
        if self.region is None:
            wl, wt, ww, wh = win.region
            box = w.get("canvas") if isinstance(w.get("canvas"), list) else [0, 0, ww, wh]
            self.region = (wl + box[0], wt + box[1], box[2], box[3])

    @property
    def launched(self) -> bool:
        """Whether this window was opened here (a page or a command), so that it can be opened again."""
        return bool(self.game.window.get("launch"))

    def fault(self) -> str | None:
        """Why the game's window can no longer be played, or None: its private X server, its program or its
        page died, or (a window found by title) it is gone. A Fleet asks about once a second."""
        if self._xvfb is not None and (self._xvfb.proc is None or self._xvfb.proc.poll() is not None):
            return f"the X server {self.display} exited"
        if self.app is not None:
            return self.app.fault()
        if self._proc is not None and self._proc.poll() is not None:
            return f"the game's program exited (code {self._proc.returncode})"
        if self.window_id is not None:
            from hakisa.capture import WindowNotFound, window_region

            try:
                window_region(self.window_id, backend=self.backend, display=self.display)
            except WindowNotFound:
                return f"the window {self.title!r} is gone"
        return None

    def close(self) -> None:
        self._stack.close()


def _wait_for_window(title: str, timeout: float, backend: str | None = None, display: str | None = None):
    """find_window, retried while a just-launched program opens its window."""
    import time

    from hakisa.capture import WindowNotFound, find_window

    deadline = time.monotonic() + timeout
    while True:
        try:
            return find_window(title, backend=backend, display=display)
        except WindowNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
