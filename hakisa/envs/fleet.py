"""Fleet: N live windows of one game, stepped as one SAME_STEP vector env on one clock.

    with Fleet(Game.load("pop"), 4) as envs:        # four private Xvfb displays, a browser on each
        obs, _ = envs.reset()
        obs, r, term, trunc, info = envs.step(actions)   # [4, ...] like any Hakisa vector env

Each window is a `ScreenEnv` over a `LiveGame`. With more than one window every game gets a private
Xvfb display of its own (`Game.open(private=True)`): its capture and its sink talk only to that display,
so input meant for one window cannot reach another, or the user's desktop. One step sends every
window its action, sleeps once to the shared tick, then grabs and judges every window: the windows
share the game's decision rate instead of each paying for its own sleep.

An episode that ends is reset in the same step (SAME_STEP autoreset: `info["final_obs"]` holds its
last frame stack), unless the window was `retire`d: then it is left idle with every key released and
no new game is started. Resets navigate (a restart key, a wait for the game), so the clock restarts
after them and their time is never counted as a late step. `timing()` reports the step period, its
jitter and the late-step share.

Background resets (`background_resets=True`, what live training uses): a window whose game ended restarts in a
thread of its own while the others play on; it leaves `active` (it is `resetting`) until its new game is in play,
and the step that brings it back marks it in `info["started"]`, with the new game's first frame stack as its obs.
Without them a reset blocks every window for its navigation (a restart key, a wait for the game).

Faults: a window whose browser crashes or is closed, whose page's renderer dies, whose program exits, or
whose private X server dies (asked about once a second, `LiveGame.fault`, and whenever its input or capture
raises), or whose launched game stops matching its rules (a hung page: the `RulesWatch`), is handled in
the step that sees it: its keys are released, its game in progress ends as truncated (`info["fault"]` says
why), and the window is opened again (a launched game: a new browser, on a new private display when it had
one) or waited for (a window found by title: up to `wait_s`, saying so). The other windows wait while it
reopens (the clock restarts after). A window that fails `relaunch_tries` times without finishing a game
in between is retired for good; when every window is, the step raises. `faults` lists what happened.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack

import gymnasium as gym
import numpy as np

from hakisa.envs.rules_watch import RulesMismatch
from hakisa.live import TickClock
from hakisa.sink import KillSwitch


class Fleet(gym.vector.VectorEnv):
    """`n` live windows of one game as a Gymnasium vector env: one `ScreenEnv` per window, one shared tick.

    Observation and action spaces: the `ScreenEnv`'s (uint8 `obs_spec.shape`; the game's MultiDiscrete
    [command, x, y]), batched over the windows. Reward and episode end: each window's judge and `max_steps`;
    SAME_STEP autoreset (`info["final_obs"]`), except a `retire`d window, which then idles. Info: winner,
    score, episode, final_obs, late_ms, missed_ticks, masked per window. Closing it closes every env and window."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "render_fps": 15}

    def __init__(self, game, n: int = 1, *, opts: dict | None = None, obs_spec=None, private: bool | None = None,
                 hz: float | None = None, max_steps: int | None = None, kill_key: str | None = "auto",
                 check_s: float = 1.0, relaunch_tries: int = 3, wait_s: float = 300.0, out=None,
                 background_resets: bool = False):
        """private: one Xvfb display per window (default: when n > 1). kill_key: as ScreenEnv's. check_s: how
        often each window is asked whether it still works; relaunch_tries, wait_s: see Faults above; out: where
        fault lines go (stderr, through tqdm). background_resets: see above (off: SAME_STEP autoreset)."""
        self.game, self.num_envs = game, int(n)
        self._private = self.num_envs > 1 if private is None else private
        self.obs_spec, self.input_map = obs_spec or game.obs_spec, game.input_map
        self.hz = float(hz or game.hz)
        self.metadata = {**self.metadata, "render_fps": self.hz}
        self._opts, self._max_steps, self._kill_key = opts, max_steps, kill_key
        self.background_resets = bool(background_resets)
        self._pending: dict[int, Future] = {}  # window -> its reset running in a thread
        self._pool: ThreadPoolExecutor | None = None
        self.check_s, self.relaunch_tries, self.wait_s, self.out = float(check_s), int(relaunch_tries), wait_s, out
        self._stacks: list[ExitStack] = []  # one per window: a faulty window is closed and opened alone
        self.lives, self.envs = [], []
        self.faults: list[dict] = []  # {window, reason, step, outcome, seconds}
        self._dead = np.zeros(self.num_envs, bool)  # retired for good after repeated faults
        self._strikes = np.zeros(self.num_envs, np.int64)  # faults since the window last finished a game
        try:
            for _ in range(self.num_envs):
                self._open()
        except BaseException:
            self.close_extras()
            raise
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.clock = TickClock(self.hz)
        self.active = np.ones(self.num_envs, bool)  # False: idle, no input, not observed
        self.resetting = np.zeros(self.num_envs, bool)  # a background reset is under way (not active meanwhile)
        self._retired = np.zeros(self.num_envs, bool)
        self._obs = np.zeros(self.observation_space.shape, np.uint8)
        self._ticks: list[float] = []  # when each step's tick fired
        self._late: list[int] = []  # ticks missed per step
        self._reset_after: list[bool] = []  # a reset ran in that step (its period is not a real-time step)
        self.resets = 0
        self._next_check = time.perf_counter() + self.check_s

    def _open(self, i: int | None = None) -> None:
        """Open window i (None: a new one at the end) and its ScreenEnv."""
        stack = ExitStack()
        try:
            live = stack.enter_context(self.game.open(opts=self._opts, private=self._private))
            env = self.game.screen_env(live, obs_spec=self.obs_spec, hz=self.hz, max_steps=self._max_steps,
                                       kill_key=self._kill_key)
            stack.callback(env.close)  # LIFO: the env lets go of its keys before its window closes
        except BaseException:
            stack.close()
            raise
        if i is None:
            self._stacks.append(stack)
            self.lives.append(live)
            self.envs.append(env)
        else:
            self._stacks[i], self.lives[i], self.envs[i] = stack, live, env

    # ---- gym API --------------------------------------------------------------------------------
    @property
    def running(self) -> np.ndarray:
        """Windows that play, or will again once their background reset ends."""
        return self.active | self.resetting

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._wait_pending()
        for i, env in enumerate(self.envs):
            if not self._dead[i]:
                self._obs[i], _ = env.reset(seed=None if seed is None else seed + i)
        self.active[:] = ~self._dead
        self._retired[:] = False
        self.clock.restart()
        return self._obs.copy(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        infos: dict = {}
        n = self.num_envs
        self._collect_resets(infos)
        faulty: dict[int, str] = {}  # window -> why it cannot be played now
        if time.perf_counter() >= self._next_check:
            self._next_check = time.perf_counter() + self.check_s
            for i in np.flatnonzero(self.active):
                reason = self.lives[i].fault()
                if reason is not None:
                    faulty[i] = reason
        t_sent = time.perf_counter()
        for i in np.flatnonzero(self.active):
            if i not in faulty:
                try:
                    t_sent = self.envs[i].send(actions[i])
                except Exception as e:
                    faulty[i] = self._fault_of(i, e)
        late, missed = self.clock.tick(t_sent, self._kill_event())
        self._ticks.append(time.perf_counter())
        self._late.append(missed)
        rew, term, trunc = np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool)
        reset_any = False
        for i in np.flatnonzero(self.active):
            if i not in faulty:
                env = self.envs[i]
                try:
                    obs, r, te, tr, info = env.observe(late, missed)
                    rew[i], term[i], trunc[i] = r, te, tr
                    if te or tr:
                        info = {**info, "final_obs": obs}
                        self._strikes[i] = 0
                        if self._retired[i]:
                            self.active[i] = False  # no new game: it stays idle, every key released (the env did)
                        elif self.background_resets:
                            self._start_reset(i)
                        else:
                            obs, _ = env.reset()
                            reset_any = True
                            self.resets += 1
                except Exception as e:
                    faulty[i] = self._fault_of(i, e)
            if i in faulty:  # its game ends here, cut short (truncated, as by a time limit), from its last frame
                info = {"final_obs": self._obs[i].copy(), "fault": faulty[i]}
                rew[i], term[i], trunc[i] = 0.0, False, True
                if self._retired[i]:  # it was to play no other game: no need to open it again
                    obs = self._obs[i].copy()
                    self.active[i] = False
                    self._release_quietly(i)
                    self.faults.append({"window": int(i), "reason": faulty[i], "step": len(self._ticks),
                                        "outcome": "retired (its budget was spent)", "seconds": 0.0})
                else:
                    obs = self._recover(i, faulty[i])
                    reset_any = True
            self._obs[i] = obs
            _add_info(infos, info, i, n)
        if reset_any:
            self.clock.restart()
        self._reset_after.append(reset_any)
        return self._obs.copy(), rew, term, trunc, infos

    # ---- background resets ------------------------------------------------------------------------
    def _start_reset(self, i: int) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.num_envs, thread_name_prefix="hakisa-reset")
        self.active[i], self.resetting[i] = False, True
        self._pending[i] = self._pool.submit(self.envs[i].reset)  # only that thread touches window i meanwhile
        self.resets += 1

    def _collect_resets(self, infos: dict) -> None:
        """Bring back the windows whose reset has ended (`info["started"]`); a failed one is a fault. Nothing
        waited for them: the others' clock runs on."""
        for i in [i for i, f in self._pending.items() if f.done()]:
            f = self._pending.pop(i)
            self.resetting[i] = False
            try:
                obs, _ = f.result()
            except KillSwitch:
                raise
            except Exception as e:  # a page that never came back into play, a window that died meanwhile
                obs = self._recover(i, self._fault_of(i, e))
                if self._dead[i]:
                    continue
            if self._retired[i]:
                continue  # the budget ended meanwhile: it starts no game
            self._obs[i], self.active[i] = obs, True
            _add_info(infos, {"started": True}, i, self.num_envs)

    def _wait_pending(self) -> None:
        for i, f in list(self._pending.items()):
            try:
                f.result(timeout=120)  # a reset ends within its navigation's timeouts
            except Exception:
                pass  # closing, or a reset() of every window next: what failed is reopened or reported there
            self._pending.pop(i, None)
            self.resetting[i] = False

    # ---- faults -----------------------------------------------------------------------------------
    def _fault_of(self, i: int, e: Exception) -> str:
        """Why window i failed; re-raises `e` when the window is fine (a bug is not a fault)."""
        if isinstance(e, RulesMismatch):
            if not self.lives[i].launched:
                raise e  # a user's own window: its game file needs fixing, and a relaunch cannot help
            return f"the screen stopped matching the rules ({e})"  # a hung or broken page: open it again
        deadline = time.monotonic() + 2.0  # a dying X server closes its sockets a moment before it can be reaped
        while (reason := self.lives[i].fault()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if reason is None:
            raise e
        return f"{reason} ({type(e).__name__})"

    def _say(self, line: str) -> None:
        if self.out is None:  # through tqdm: a progress bar on stderr is cleared first, then redrawn
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=self.out, flush=True)

    def _release_quietly(self, i: int) -> None:
        try:
            self.envs[i].sink.release_all()
        except Exception:
            pass  # its X server is gone, and every key with it

    def _recover(self, i: int, reason: str) -> np.ndarray:
        """Release window i's keys, close it, open it again (or wait for it) and start a game: its first frame
        stack. After `relaunch_tries` faults with no finished game between them the window is retired."""
        t0 = time.perf_counter()
        self._release_quietly(i)  # first, at once: nothing stays held while the window reopens
        try:
            self._stacks[i].close()
        except Exception:
            pass  # closing what already died
        launched = self.lives[i].launched
        title = self.lives[i].title
        outcome, err = "retired", None
        deadline = time.monotonic() + (self.wait_s if not launched else 0.0)
        waiting_said = False
        while self._strikes[i] < self.relaunch_tries:
            if launched:
                self._strikes[i] += 1
                self._say(f"hakisa: window {i}: {reason}; its keys are released, opening it again "
                          f"(try {self._strikes[i]} of {self.relaunch_tries})")
            try:
                self._open(i)
                obs, _ = self.envs[i].reset()
                outcome = "relaunched" if launched else "came back"
                break
            except Exception as e:  # any failure to reopen is a strike, reported below
                err = e
                try:
                    self._stacks[i].close()
                except Exception:
                    pass
                if not launched:
                    if not waiting_said:
                        self._say(f"hakisa: window {i}: {reason}; its keys are released, waiting up to "
                                  f"{self.wait_s:g} s for a window titled {title!r} to come back")
                        waiting_said = True
                    if time.monotonic() > deadline:
                        self._strikes[i] = self.relaunch_tries
                        break
                    time.sleep(1.0)
        self.faults.append({"window": int(i), "reason": reason, "step": len(self._ticks), "outcome": outcome,
                            "seconds": round(time.perf_counter() - t0, 2)})
        if outcome != "retired":
            return obs
        self._dead[i], self.active[i] = True, False
        self._say(f"hakisa: window {i} retired: {reason}; the last try to open it again: {err}")
        if self._dead.all():
            raise RuntimeError(f"every window of {self.game.name!r} failed; the last: {reason} ({err})")
        return self._obs[i].copy()

    def release_all(self) -> None:
        """Release every held key and button in every window still open (a retired one's died with it)."""
        for i, env in enumerate(self.envs):
            if self._dead[i]:
                continue
            try:
                env.sink.release_all()
            except Exception:
                if self.lives[i].fault() is None:
                    raise  # a working window that cannot release its keys is news; a dead one's went with it

    def retire(self, i: int) -> None:
        """When window i's current episode ends, start no other (it idles with its keys released)."""
        self._retired[i] = True

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close_extras(self, **kwargs) -> None:
        self._wait_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        stacks, self._stacks = self._stacks, []
        # a window already dead (retired, or its X server gone) may fail to close: that is no news
        working = [not self._dead[i] and self.lives[i].fault() is None for i in range(len(stacks))]
        errors = []
        for i in reversed(range(len(stacks))):  # every window closes, even after one that fails to
            try:
                stacks[i].close()
            except Exception as e:
                if working[i]:
                    errors.append(e)
        if errors:
            raise errors[0]

    # ---- reports --------------------------------------------------------------------------------
    def timing(self) -> dict:
        """Step period, jitter (std of the period over the nominal period) and late-step share, over the
        steps so far; periods that span a reset are left out (a reset navigates, it is not a step)."""
        t = np.asarray(self._ticks)
        if len(t) < 3:
            return {"steps": len(t)}
        periods = np.diff(t)[~np.asarray(self._reset_after[:-1])]
        nominal = 1.0 / self.hz
        late = np.asarray(self._late) > 0
        return {"steps": len(t), "windows": self.num_envs, "hz": self.hz,
                "period_ms_mean": round(float(periods.mean() * 1e3), 3),
                "period_ms_std": round(float(periods.std() * 1e3), 3),
                "jitter": round(float(periods.std() / nominal), 4),
                "period_ms_p99_dev": round(float(np.percentile(np.abs(periods - nominal), 99) * 1e3), 3),
                "late_share": round(float(late.mean()), 5), "late_steps": int(late.sum()), "resets": self.resets}

    def _kill_event(self):
        # any window's kill switch stops the whole fleet
        for env in self.envs:
            ev = getattr(env.sink, "kill_event", None)
            if ev is not None and ev.is_set():
                return ev
        return getattr(self.envs[0].sink, "kill_event", None)


def _add_info(infos: dict, info: dict, i: int, n: int) -> None:
    """Gymnasium's vector info layout: infos[key][i] with a boolean mask infos["_key"]."""
    for k in ("winner", "score", "episode", "final_obs", "late_ms", "missed_ticks", "fault", "started"):
        if k in info and info[k] is not None:
            if k not in infos:
                infos[k] = np.empty(n, object)
                infos[f"_{k}"] = np.zeros(n, bool)
            infos[k][i] = info[k]
            infos[f"_{k}"][i] = True
