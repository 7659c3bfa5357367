"""A zoo teacher correcting an agent: the agent plays (`hakisa record --agent`), the teacher takes over on a difference.

    scores, stats = correct(app, hands, teacher, AgentKeys(app.display, keys), games=None, minutes=1)

The teacher watches the page as when it teaches (`hakisa.state()`, acting only on what is drawn) and asks its
Teacher what it would do. It takes the controls, through real XTest input (hands.py), only when that differs
from what the agent does: the game keys held on the X server (the agent's, since the teacher's hands hold
nothing while it watches) differ from the keys it wants for more than `disagree_s`, or it wants to click. It
then plays for `hold_s` (a person's correction burst) and lets go; the recorder gives the agent control back
after its idle gap, and the teacher watches again. Wanting no key while the agent holds one, it holds `still`,
a key the game ignores, which the recorder stores as the map's noop. The agent restarts each game itself
(the game file's navigation); the teacher only runs that navigation itself (R on the pages, clicks on a desktop
game's menus: `restart`) if nothing has restarted the game for `restart_s`. A game-over screen seen
before any play (xjump opens on its high scores) is not a game.
"""
from __future__ import annotations

import time

from hakisa.backends.x11 import keysym


class AgentKeys:
    """Which of `keys` are down on `display` now (XQueryKeymap): what the agent holds while the teacher watches."""

    def __init__(self, display: str, keys):
        from Xlib import display as xdisplay

        self.dpy = xdisplay.Display(display)
        self.codes = {k: self.dpy.keysym_to_keycode(keysym(k)) for k in keys}

    def __call__(self) -> set[str]:
        bits = self.dpy.query_keymap()
        return {k for k, c in self.codes.items() if c and bits[c // 8] >> (c % 8) & 1}

    def close(self) -> None:
        self.dpy.close()


def correct(app, hands, teacher, agent_keys, games: int | None, minutes: float | None, poll_hz: float = 150.0,
            disagree_s: float = 0.15, hold_s: float = 1.0, idle_s: float = 0.4, still: str = "shift_r",
            restart_s: float = 10.0, *, restart) -> tuple[list[int], dict]:
    """Watch and correct until `games` games or the first game over after `minutes`; returns (scores, stats)."""
    scores: list[int] = []
    stats = {"takeovers": 0, "seconds_in_control": 0.0}
    t0 = time.monotonic()
    hard_end = t0 + 60 * (minutes or 0) + 40 * (games or 0) + 120
    period, next_t = 1.0 / poll_hz, time.monotonic()
    prev_mode, taking, took_at, let_go_at, since, idle_since = None, False, 0.0, -1e9, None, time.monotonic()
    played = False  # a game over counts only after some play was seen

    def let_go(now: float) -> None:
        nonlocal taking, let_go_at
        if taking:
            hands.release_all()
            stats["seconds_in_control"] += now - took_at
            taking, let_go_at = False, now

    while time.monotonic() < hard_end:
        st = app.evaluate("hakisa.state()")
        now = time.monotonic()
        if st["mode"] != "play":
            let_go(now)
            if st["mode"] == "over" and prev_mode != "over" and played:
                scores.append(int(st["score"]))
                print(f"game {len(scores)}: score {st['score']}, lives {st['lives']}", flush=True)
                if (games is not None and len(scores) >= games) or (minutes is not None and now - t0 >= 60 * minutes):
                    return scores, stats
            if prev_mode == "play" or prev_mode is None:
                idle_since = now
            if now - idle_since > restart_s:  # the agent did not restart the game: a person would press R
                restart()
                idle_since = now
            prev_mode = st["mode"]
            time.sleep(0.05)
            continue
        if prev_mode != "play":
            teacher.reset()
            since = None
        prev_mode, played = "play", True
        want = teacher.act(st, now)
        keys = set(want.get("keys") or ())
        if taking:
            hands.apply({**want, "keys": keys or {still}})
            if now - took_at >= hold_s:
                let_go(now)
        elif now - let_go_at >= idle_s + 0.1:  # the agent has had its control back for a moment
            differ = keys != agent_keys()
            since = (since or now) if differ else None
            if want.get("click") is not None or (since is not None and now - since >= disagree_s):
                hands.apply({**want, "keys": keys or {still}})
                taking, took_at, since = True, now, None
                stats["takeovers"] += 1
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
        next_t = max(next_t, time.monotonic() - period)
    raise RuntimeError(f"no game over for too long: {len(scores)} games in {time.monotonic() - t0:.0f} s")
