"""Say when the screen stops matching a game's rules, instead of waiting in silence.

A live env (ScreenEnv: `hakisa play`, live training, explore) shows every judged frame to its
`RulesWatch`. Three signs say that the rules no longer read this screen (a canvas an infobar pushed
down, a covered window, a file written for another layout):

    no_play   the rules have not said `in_play` for `warn_s` seconds
    silent    the readings that score and end an episode (reward deltas, `done`, `score`) have read
              None, or not changed, for `warn_s` seconds
    long      an episode has run over `episode_factor` x the longest one so far (and over
              `min_episode_s`) without its `done` rule holding

The first time one holds: one warning line on stderr, with the hint `hakisa game check FILE`. Still so
after `stop_s` (twice its limit for `long`): `RulesMismatch`, which the CLI prints as one `hakisa:`
line with exit 2. `silent` while in play and while the agent has sent one same action all along (`acted`) is
more likely the agent's doing than the screen's: a game that waits for a press the agent never makes (Circus
Linux launches each clown on a click) stalls; its line says so too. Time counts only while frames are watched
(a gap between two looks counts at most `max_gap_s`), so a fleet window left idle, or a pause to save a
checkpoint, is not "no play".
"""
from __future__ import annotations

import sys
from pathlib import Path

from hakisa.game_file import GAMES_DIR, GameFileError, show_path
from hakisa.live import now


class RulesMismatch(GameFileError, TimeoutError):
    """The game's screen rules do not read what the window shows (a TimeoutError too: the game never
    came back into play, or never ended)."""


def condition_readings(cond) -> list[str]:
    """The reading names a rules condition tests ({reading, op, value} | all | any | not)."""
    if not isinstance(cond, dict):
        return []
    if "reading" in cond:
        return [cond["reading"]]
    subs = cond.get("all") or cond.get("any") or ([cond["not"]] if "not" in cond else [])
    return [name for c in subs for name in condition_readings(c)]


def check_arg(game) -> str:
    """How `hakisa game check` names a Game: a shipped game by its name, a user's file by its path."""
    return game.name if game.path.parent.resolve() == GAMES_DIR.resolve() else show_path(game.path)


def _fmt(v) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


class RulesWatch:
    """Per live env: `see(readings, in_play)` every judged frame, `episode_start()` / `episode_end()`
    around each episode. `t` arguments (seconds, any monotonic origin) default to `hakisa.live.now()`.
    game_file: named in the hint. out: where warnings go (stderr)."""

    def __init__(self, warn_s: float = 30.0, stop_s: float = 120.0, *, episode_factor: float = 3.0,
                 min_episode_s: float | None = None, max_gap_s: float = 2.0, game_file: str | Path | None = None,
                 out=None):
        if not 0 < warn_s <= stop_s:
            raise ValueError(f"RulesWatch: 0 < warn_s <= stop_s expected, got {warn_s}, {stop_s}")
        self.warn_s, self.stop_s, self.episode_factor = float(warn_s), float(stop_s), float(episode_factor)
        # a first episode has nothing to compare with; later ones are "long" only past a floor of a minute
        # by default (twice the warning time), so short games are not flagged for one slow round
        self.min_episode_s = 2.0 * self.warn_s if min_episode_s is None else float(min_episode_s)
        self.max_gap_s, self.game_file, self.out = float(max_gap_s), game_file, out
        self.names: list[str] | None = None  # the readings `silent` watches (set by `attach`)
        self.clock = 0.0  # watched seconds
        self._t: float | None = None
        self._play_at = self._changed_at = self._episode_at = 0.0
        self._values: tuple | None = None
        self._action: tuple | None = None
        self._action_at = 0.0  # watched seconds when the agent's action last changed
        self._in_play = False
        self.longest = 0.0  # the longest finished episode, watched seconds
        self.episodes = 0
        self.warned: dict[str, str] = {}  # condition -> its warning line (while it holds)

    def attach(self, judge) -> "RulesWatch":
        """Watch the readings that the judge's reward, `done` and `score` use (all readers if none)."""
        cfg = judge.cfg
        names = list((cfg.get("reward") or {}).get("deltas") or {}) + condition_readings(cfg.get("done"))
        names += [judge.score] if getattr(judge, "score", None) else []
        names = [n for n in dict.fromkeys(names) if n in judge.readers]
        self.names = names or list(judge.readers)
        return self

    @property
    def hint(self) -> str:
        where = self.game_file or "GAME_FILE"
        return (f"the screen may not match the game file's rules (a moved canvas, a covered window): "
                f"`hakisa game check {where}` shows what the readers read")

    # ---- time -------------------------------------------------------------------------------------
    def _advance(self, t: float | None) -> float:
        t = now() if t is None else t
        if self._t is not None:
            self.clock += min(max(t - self._t, 0.0), self.max_gap_s)
        self._t = t
        return self.clock

    def episode_start(self, t: float | None = None) -> None:
        self._episode_at = self._advance(t)

    def episode_end(self, t: float | None = None) -> None:
        self.longest = max(self.longest, self._advance(t) - self._episode_at)
        self.episodes += 1
        self.warned.pop("long", None)

    # ---- per frame --------------------------------------------------------------------------------
    def acted(self, action, t: float | None = None) -> None:
        """Note the action the agent sent this step (any hashable form; a changed one restarts its age)."""
        key = tuple(int(a) for a in action) if hasattr(action, "__iter__") else (action,)
        if key != self._action:
            self._action, self._action_at = key, self._advance(t)

    def see(self, readings: dict, in_play: bool, t: float | None = None) -> None:
        """Note one judged frame; warns, or raises RulesMismatch, when a sign has held too long."""
        c = self._advance(t)
        self._in_play = in_play
        if in_play:
            self._play_at = c
        names = self.names if self.names is not None else list(readings)
        values = tuple(readings.get(k) for k in names)
        if values != self._values:
            self._values, self._changed_at = values, c
        for key, age, warn_at, stop_at, what in self._signs(c, names, values, readings):
            if age >= stop_at:
                raise RulesMismatch(f"{what(age)}; stopped after {stop_at:g} s: {self.hint}")
            if age >= warn_at and key not in self.warned:
                self.warned[key] = line = (f"hakisa: warning: {what(age)}; stopping if it goes on for "
                                           f"{stop_at:g} s: {self.hint}")
                if self.out is None:  # through tqdm: a progress bar on stderr is cleared first, then redrawn
                    from tqdm import tqdm

                    tqdm.write(line, file=sys.stderr)
                else:
                    print(line, file=self.out, flush=True)
            elif age < warn_at:
                self.warned.pop(key, None)

    def _signs(self, c: float, names: list[str], values: tuple, readings: dict):
        shown = ", ".join(f"{k}={_fmt(readings.get(k))}" for k in names)
        yield ("no_play", c - self._play_at, self.warn_s, self.stop_s,
               lambda age: f"the rules have not read `in_play` for {age:.0f} s ({shown})")
        silent = (f"none of the readers {', '.join(names)} has read anything for {{:.0f}} s"
                  if all(v is None for v in values) else
                  f"the readings that score and end an episode ({shown}) have not changed for {{:.0f}} s")
        idle = (self._in_play and self._action is not None and self._action_at <= self._changed_at
                and not all(v is None for v in values))
        if idle:  # the game is in play and the agent has not changed what it does: it is waiting on the agent
            silent = (f"the game has not changed for {{:.0f}} s ({shown}) while the agent sent one same action "
                      f"{list(self._action)} all along: a game that waits for a press this agent never makes "
                      f"stalls (try `--sample`, or a clone that makes it)")
        yield "silent", c - self._changed_at, self.warn_s, self.stop_s, silent.format
        if self.episodes:
            limit = max(self.min_episode_s, self.episode_factor * self.longest)
            yield ("long", c - self._episode_at, limit, 2 * limit,
                   lambda age: f"episode {self.episodes + 1} has run {age:.0f} s, over {self.episode_factor:g}x the "
                               f"longest so far ({self.longest:.0f} s), and its `done` rule has not held")
