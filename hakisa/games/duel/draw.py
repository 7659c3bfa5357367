"""The duel's frame as a draw list: `draw_rects` turns every fight's state into N_RECTS opaque rects that
render.py paints in numpy and web/page.js paints on the canvas (the same list, so the pixels agree)."""
from __future__ import annotations

import numpy as np

from hakisa.games.duel.state import (
    B_ACTIVE,
    B_GUARD,
    B_RECOVER,
    B_WINDUP,
    K_ATTACK,
    K_BLOCK,
    K_ROLL,
    K_STAGGER,
    N_RECTS,
)

w = np.where


def _snap(v):
    return (v // 4) * 4


class _DrawList:
    """(n, N_RECTS, 5) slots of [x, y, w, h, colour]; `put` clips a rect to the canvas (an empty one is zeros)."""

    def __init__(self, n: int, cw: int, ch: int):
        self.n, self.cw, self.ch = n, cw, ch
        self.out = np.zeros((n, N_RECTS, 5), dtype=np.int64)

    def put(self, slot, x, y, wd, ht, c, show=None):
        n, out = self.n, self.out
        x, y, wd, ht, c = (np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v in (x, y, wd, ht, c))
        x0, y0 = np.maximum(x, 0), np.maximum(y, 0)
        x1, y1 = np.minimum(x + wd, self.cw), np.minimum(y + ht, self.ch)
        ok = (x1 > x0) & (y1 > y0)
        if show is not None:
            ok &= show
        out[:, slot, 0] = w(ok, x0, 0)
        out[:, slot, 1] = w(ok, y0, 0)
        out[:, slot, 2] = w(ok, x1 - x0, 0)
        out[:, slot, 3] = w(ok, y1 - y0, 0)
        out[:, slot, 4] = w(ok, c, 0)


def draw_rects(rules: dict, s: dict[str, np.ndarray]) -> np.ndarray:
    """(n, N_RECTS, 5) int32 [x, y, w, h, colour] in canvas pixels, painting order, clipped to the canvas.

    Slots: 0 background, 1 floor, 2 telegraph bar (grows during the wind-up), 3 boss weapon, 4 boss body,
    5 boss eye, 6 boss guard, 7 knight body, 8 knight head, 9 sword, 10 shield, 11-12 knight HP bg/fill,
    13-14 stamina bg/fill, 15-16 boss HP bg/fill, 17 time-left bar. Empty slots are all zeros.
    Every coordinate is a multiple of 4, so downscaling the canvas by 4 with INTER_AREA is exact.
    """
    n = s["tick"].shape[0]
    cw, ch = rules["canvas"]["width"], rules["canvas"]["height"]
    fy = rules["arena"]["floor_y"]
    pal = {name: i for i, name in enumerate(rules["palette_names"])}
    d = _DrawList(n, cw, ch)
    d.put(0, 0, 0, cw, ch, pal["bg"])
    d.put(1, 0, fy, cw, ch - fy, pal["floor"])
    _draw_boss(d, rules, s, pal)
    _draw_knight(d, rules, s, pal)
    _draw_hud(d, rules, s, pal)
    return d.out.astype(np.int32)


def _draw_boss(d: _DrawList, rules: dict, s: dict, pal: dict) -> None:
    """Slots 2-6: the telegraph bar, the weapon, the body, the eye, the guard."""
    put, fp, B, fy = d.put, rules["fp"], rules["boss"], rules["arena"]["floor_y"]
    one = np.ones(d.n, dtype=np.int64)
    ba, bt, bf = s["b_act"], s["b_t"], s["b_face"]
    bl = _snap(s["bx"] // fp - 32)  # body left edge
    fwd = bf > 0
    # the bar fills over the normal wind-up; a held (delayed) swing shows a taller bar in the hold colour
    tele_w = _snap(64 * np.minimum(bt + 1, B["cleave_windup"]) // B["cleave_windup"])
    hold = s["b_len"] > B["cleave_windup"]
    put(2, bl, w(hold, fy - 140, fy - 132), tele_w, w(hold, 16, 8), w(hold, pal["telegraph_hold"], pal["telegraph"]),
        ba == B_WINDUP)
    reach_w = B["cleave_reach"] - 32
    wx = w(ba == B_WINDUP, w(fwd, bl + 4, bl + 48),
           w(ba == B_ACTIVE, w(fwd, bl + 64, bl - reach_w),
             w(ba == B_RECOVER, w(fwd, bl + 64, bl - 64), w(fwd, bl + 64, bl - 12))))
    wy = w(ba == B_WINDUP, fy - 184, w(ba == B_ACTIVE, fy - 48, w(ba == B_RECOVER, fy - 12, fy - 64)))
    ww = w(ba == B_WINDUP, 12, w(ba == B_ACTIVE, reach_w, w(ba == B_RECOVER, 64, 12)))
    wh = w(ba == B_WINDUP, 72, w(ba == B_ACTIVE, 16, w(ba == B_RECOVER, 12, 56)))
    put(3, wx, wy, ww, wh, w(ba == B_ACTIVE, pal["telegraph"], pal["boss_weapon"]))
    put(4, bl, fy - 112, 64 * one, 112, w(ba == B_WINDUP, pal["boss_windup"],
                                            w(ba == B_RECOVER, pal["boss_recover"], pal["boss"])))
    put(5, w(fwd, bl + 44, bl + 8), fy - 96, 12, 8, pal["boss_eye"])
    put(6, w(fwd, bl + 64, bl - 12), fy - 100, 12, 88, pal["boss_guard"], ba == B_GUARD)


def _draw_knight(d: _DrawList, rules: dict, s: dict, pal: dict) -> None:
    """Slots 7-10: the body (lower while rolling), the head, the sword, the shield."""
    put, fp, K, fy = d.put, rules["fp"], rules["knight"], rules["arena"]["floor_y"]
    ka, kt, kf = s["k_act"], s["k_t"], s["k_face"]
    kp = s["kx"] // fp
    kfwd = kf > 0
    rolling = ka == K_ROLL
    iframe = rolling & (kt >= K["roll_iframe_start"]) & (kt < K["roll_iframe_end"])
    kc = w(iframe, pal["knight_iframe"], w(ka == K_STAGGER, pal["knight_stagger"], pal["knight"]))
    kl = _snap(kp - 12)
    put(7, w(rolling, _snap(kp - 14), kl), w(rolling, fy - 24, fy - 44), w(rolling, 28, 24), w(rolling, 24, 44), kc)
    put(8, _snap(kp - 8), fy - 56, 16, 12, pal["knight_head"], ~rolling)
    aw, aa = K["attack_windup"], K["attack_active"]
    atk = ka == K_ATTACK
    wind, act = atk & (kt < aw), atk & (kt >= aw) & (kt < aw + aa)
    sword_w = K["attack_reach"] - 12
    sx = w(wind, w(kfwd, kl, kl + 16), w(act, w(kfwd, kl + 24, kl - sword_w), w(kfwd, kl + 24, kl - 28)))
    sy = w(wind, fy - 84, w(act, fy - 36, fy - 12))
    sw = w(wind, 8, w(act, sword_w, 28))
    sh = w(wind, 28, 8)
    put(9, sx, sy, sw, sh, pal["sword"], atk)
    raised = kt >= K["block_startup"]  # a shield still coming up is drawn low and short
    put(10, w(kfwd, kl + 24, kl - 8), w(raised, fy - 40, fy - 24), 8, w(raised, 32, 16), pal["shield"], ka == K_BLOCK)


def _draw_hud(d: _DrawList, rules: dict, s: dict, pal: dict) -> None:
    """Slots 11-17: the HP and stamina bars (background, then fill) and the time left."""
    K, B, hud = rules["knight"], rules["boss"], rules["hud"]

    def bar(slot, box, value, vmax, colour):
        x, y, bw, bh = box
        d.put(slot, x, y, bw, bh, pal["bar_bg"])
        d.put(slot + 1, x, y, _snap(bw * value // vmax), bh, pal[colour])

    bar(11, hud["knight_hp"], s["k_hp"], K["hp"], "hp_knight")
    bar(13, hud["knight_stamina"], s["k_st"], K["stamina"], "stamina")
    bar(15, hud["boss_hp"], s["b_hp"], B["hp"], "hp_boss")
    tx, ty, tw, th = hud["time"]
    d.put(17, tx, ty, _snap(tw * np.maximum(rules["time_limit"] - s["tick"], 0) // rules["time_limit"]), th,
          pal["time"])
