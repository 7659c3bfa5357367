"""Zoo Circus's scripted teacher (Circus Linux!, Debian's `circuslinux`, an SDL desktop game run with `--low`): it
reads the flying clown and the teeter-totter from the window's pixels and puts the totter's high end under the
clown, with the mouse.

A desktop game has no page to ask, so `read_state` is the teacher's eyes: the clown is whatever is not the
plain background between the balloons and the floor, the totter the black plank on the floor; nothing else.
"""
from __future__ import annotations

import numpy as np

GAME_SECONDS = 300        # teach.py's bound on one game (a good player earns clowns back: games can run long)
W, H = 640, 480
BG = np.array([50, 50, 80])  # --low's plain background
SKY = (135, 436)          # rows between the balloons' strings and the floor band, where a clown flies
FLOOR = (440, 480)        # the floor band: the totter (a black plank) and the clown sitting on it
EDGE = 30                 # the pink bouncers at both sides of the floor band
HALF = 48                 # the plank is 96 px wide, centred on the pointer's x
INSIDE = 12               # px inside the high end's tip it wants the clown to land (a tip landing throws highest,
                          # and a miss by a few px lands on the floor)
X_BINS = 32               # circus.json's input map: the pointer goes to a bin's centre
LAUNCH_WAIT = (0.6, 1.0)  # s with no clown in the air before it clicks to launch the next (a person's pause)
AIM_SD = 28               # px: a person misjudges where a clown will land, once per fall (with no error at all the
                          # teacher never misses: measured, 90 s, 0 clowns lost and 2 won; a game would never end)


def read_state(rgb: np.ndarray) -> dict:
    """What the screen shows: the flying clown's centre (x, y) or None, and the totter's high end ("left" or
    "right") with its centre x, or None (rgb: the canvas, H x W x 3)."""
    sky = rgb[SKY[0]:SKY[1]].astype(np.int16)
    # the clown: not background, and not the green READY / GAME OVER text
    other = np.any(np.abs(sky - BG) > 30, axis=2) & ~((sky[..., 1] > 150) & (sky[..., 0] < 100) & (sky[..., 2] < 60))
    ys, xs = np.nonzero(other)
    clown = (float(np.median(xs)), float(np.median(ys)) + SKY[0]) if len(xs) >= 20 else None
    band = rgb[FLOOR[0]:FLOOR[1], EDGE:W - EDGE]
    plank = np.all(band == 0, axis=2)
    ys, xs = np.nonzero(plank)
    totter = None
    if len(xs) >= 20:
        x0, x1 = xs.min(), xs.max()
        left_y = ys[xs <= x0 + 8].mean()
        right_y = ys[xs >= x1 - 8].mean()
        totter = {"x": float((x0 + x1) / 2 + EDGE), "high": "left" if left_y < right_y else "right"}
    return {"clown": clown, "totter": totter}


def bin_x(x: float) -> float:
    """The centre of the input map's x bin that holds x: the only places an agent's pointer can go."""
    step = W / X_BINS
    i = int(min(max(x, 0), W - 1) // step)
    return (i + 0.5) * step


class Teacher:
    """Watches the clown fall, leads it by its speed, and moves the totter so that the clown lands just inside the
    high end; if that end would have to leave the screen, it clicks to flip the totter. With no clown in the air
    for a moment, it clicks to launch one. Its hands change every 50-90 ms, a person's pace."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.reset()

    def reset(self) -> None:
        self.next_at = 0.0
        self.last: tuple[float, float, float] | None = None  # (time, x, y) of the clown at the last look
        self.vx = self.vy = 0.0
        self.empty_since: float | None = None
        self.flip_at = -1.0  # when it last clicked to flip (the totter takes a frame or two to show it)
        self.pointer_x = W / 2
        self.aim_error = 0.0
        self.falling = False

    def act(self, state: dict, now: float) -> dict:
        out = {"keys": set(), "move": None, "click": None}
        if now < self.next_at:
            return out
        self.next_at = now + self.rng.uniform(0.05, 0.09)
        clown, totter = state.get("clown"), state.get("totter")
        if clown is None:
            self.last = None
            self.empty_since = self.empty_since or now
            if now - self.empty_since >= self.rng.uniform(*LAUNCH_WAIT):
                self.empty_since = None
                out["click"] = (self.pointer_x, H / 2)
            return out
        self.empty_since = None
        x, y = clown
        if self.last is not None and now - self.last[0] > 0.02:
            dt = now - self.last[0]
            self.vx, self.vy = (x - self.last[1]) / dt, (y - self.last[2]) / dt
        self.last = (now, x, y)
        # where it lands: its x when it has fallen to the plank (falling only; a rising clown is tracked as is)
        land = x
        if self.vy > 50:
            land = x + self.vx * (FLOOR[0] + 10 - y) / self.vy
            if not self.falling:  # a new fall: this one's misjudgement
                self.aim_error = self.rng.normal(0.0, AIM_SD)
        self.falling = self.vy > 50
        land = min(max(land + self.aim_error, 0), W)
        if totter is None:
            return out
        high = totter["high"]
        centre = land + HALF - INSIDE if high == "left" else land - HALF + INSIDE
        if not (HALF <= centre <= W - HALF) and now - self.flip_at > 0.3:
            # that end cannot reach the clown without leaving the screen: flip the totter, and aim the other end
            self.flip_at = now
            out["click"] = (self.pointer_x, H / 2)
            return out
        self.pointer_x = bin_x(centre)
        out["move"] = (self.pointer_x, H / 2)
        return out
