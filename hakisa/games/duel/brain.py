"""The boss's brain: the rules' hand-written policy ("scripted"), or a small integer network ("learned").

A learned brain is a two-layer MLP whose weights are int8 and whose arithmetic is integer only, so numpy
(sim.py) and JS (web/core.js) take bit-identical decisions: every product and sum stays far below 2^53,
and the one division is a floor by 64. It makes the boss's three kinds of decision, the same ones the
scripted policy makes, from the boss's view of the true state (no pixels: the boss is the game):

  free    every decide_every ticks while free: idle, approach, retreat, guard, or cleave (off cooldown only)
  hold    cleave_reveal ticks before the strike: strike on time, or hold the swing delay_ticks longer
  follow  when a strike ends: recover, or chain another wind-up (while b_combo < combo_max, at low HP
          combo_max_low)

    x = features(rules, state, kind)                    int64 [n, D]; FEATURES names the columns
    h = max(0, floor((W1 x + b1) / 64))                 W1 int8 [H, D], b1 int [H]
    logits = W2 h + b2                                  W2 int8 [9, H], b2 int [9]
    choice = the first maximum of the kind's legal logits (free: 0..4, hold: 5..6, follow: 7..8)

Tier noise is unchanged: with the tier's probability a decision is random (sim.py draws it exactly as
for the scripted brain), else the brain's. So `scripted` and every learned generation play at the same
tiers, and results compare. A brain file is JSON (no code runs on load): `load_brain`, `save_brain`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "hakisa-duel-boss-brain"
FREE, HOLD, FOLLOW = 0, 1, 2
OUT_SLICES = ((0, 5), (5, 7), (7, 9))  # each kind's logits
N_OUT = 9
SHIFT_DIV = 64  # the hidden layer's floor division; features are scaled to about [0, 64]
W_MAX = 127     # int8 weights
FEATURES = ("kind=free", "kind=hold", "kind=follow", "rel", "dist", "knight_hp", "boss_hp", "stamina",
            "knight_act=0", "knight_act=1", "knight_act=2", "knight_act=3", "knight_act=4", "knight_t",
            "roll_dir", "cooldown", "low_hp", "combo", "time", "boss_x", "knight_x")
SHIPPED_DIR = Path(__file__).with_name("bosses")


def features(rules: dict, s: dict[str, np.ndarray], kind: int) -> np.ndarray:
    """int64 [n, D] (D = len(FEATURES)), each about [0, 64] (rel: [-128, 128]). core.js `brainFeatures`
    computes the same integers in the same order."""
    fp, K, B = rules["fp"], rules["knight"], rules["boss"]
    n = s["kx"].shape[0]
    d = s["kx"] - s["bx"]
    cols = [np.full(n, 64 * (kind == k), np.int64) for k in (FREE, HOLD, FOLLOW)]
    cols += [np.clip(d * s["b_face"] // (fp * 4), -128, 128),       # the knight along the boss's facing, 4 px
             np.minimum(np.abs(d) // (fp * 4), 128),
             s["k_hp"] * 64 // K["hp"], s["b_hp"] * 64 // B["hp"], s["k_st"] * 64 // K["stamina"]]
    cols += [64 * (s["k_act"] == a) for a in range(5)]
    cols += [np.minimum(s["k_t"], 64),
             s["k_dir"] * s["b_face"] * 32 * (s["k_act"] == 2),       # +: rolling away from the boss's front
             np.minimum(s["b_cd"], 64),
             64 * (s["b_hp"] * 100 <= B["hp"] * B["low_hp_pct"]),
             s["b_combo"] * 16,
             s["tick"] * 64 // rules["time_limit"],
             s["bx"] // (fp * 8), s["kx"] // (fp * 8)]
    return np.stack([np.asarray(c, np.int64) for c in cols], 1)


class BrainPool:
    """The brains of N fights: `brains[i]` is a brain dict or None (scripted); fight f uses brains[idx[f]].
    Learned brains are stacked so one decision of many fights is one batched product."""

    def __init__(self, brains: list[dict | None], n: int, idx=None):
        self.brains = list(brains)
        self.learned = np.array([b is not None for b in self.brains])
        shapes = {(len(b["b1"]), len(b["features"])) for b in self.brains if b is not None}
        if len(shapes) > 1:
            raise ValueError(f"a pool's learned brains must share one shape; got {sorted(shapes)}")
        for b in self.brains:
            if b is not None and tuple(b["features"]) != FEATURES:
                raise ValueError(f"brain {b.get('name')!r} reads features {b['features']}; the sim computes {FEATURES}")
        if self.learned.any():  # stacked per brain; a scripted slot holds zeros that choose() never reads
            first = next(b for b in self.brains if b is not None)
            self.w1, self.b1, self.w2, self.b2 = (
                np.stack([np.asarray((b or first)[k], np.int64) * (b is not None) for b in self.brains])
                for k in ("w1", "b1", "w2", "b2"))
        self.idx = np.zeros(n, np.int64) if idx is None else np.asarray(idx, np.int64).copy()
        # recorder(kind, state, sel, scripted_choice, legal): sees every decision the sim asks for
        self.recorder = None

    def uses_brain(self) -> np.ndarray:
        """bool [n]: the fights whose boss is a learned brain."""
        return self.learned[self.idx]

    def choose(self, rules: dict, s: dict[str, np.ndarray], sel: np.ndarray, kind: int,
               legal: np.ndarray | None = None) -> np.ndarray:
        """int64 [n]: each selected learned fight's choice within its kind (0-based), -1 elsewhere.
        legal: bool [n, k] per option of the kind (None: all legal)."""
        out = np.full(sel.shape[0], -1, np.int64)
        f = np.flatnonzero(sel & self.uses_brain())
        if f.size == 0:
            return out
        x = features(rules, {k: v[f] for k, v in s.items()}, kind)
        b = self.idx[f]
        out[f] = infer(self.w1[b], self.b1[b], self.w2[b], self.b2[b], x, kind, None if legal is None else legal[f])
        return out


def infer(w1, b1, w2, b2, x: np.ndarray, kind: int, legal: np.ndarray | None = None) -> np.ndarray:
    """The integer forward pass: each row's choice within `kind`. Weights per row ([n, H, D] ...) or shared."""
    w1, b1, w2, b2 = (np.broadcast_to(np.asarray(v, np.int64), (len(x), *np.shape(v)[-k:]))
                      for v, k in ((w1, 2), (b1, 1), (w2, 2), (b2, 1)))
    h = np.maximum(0, (np.einsum("nhd,nd->nh", w1, x) + b1) // SHIFT_DIV)
    lo, hi = OUT_SLICES[kind]
    logits = np.einsum("noh,nh->no", w2[:, lo:hi], h) + b2[:, lo:hi]
    if legal is not None:
        logits = np.where(legal, logits, np.iinfo(np.int64).min)
    return logits.argmax(1)  # the first maximum, as core.js's strict `>` scan


def pool_from_rules(rules: dict, n: int) -> BrainPool:
    """The pool a plain DuelSim uses: every fight plays rules["brain"] (None or absent: scripted)."""
    return BrainPool([rules.get("brain")], n)


# ---- brain files ---------------------------------------------------------------------------------
def new_brain(hidden: int = 24, seed: int = 0, name: str = "random") -> dict:
    """A random integer brain (small weights; hidden biases zero)."""
    rng = np.random.default_rng(seed)
    d = len(FEATURES)
    return {"format": FORMAT, "name": name, "features": list(FEATURES), "hidden": hidden,
            "w1": rng.integers(-24, 25, (hidden, d)).tolist(), "b1": [0] * hidden,
            "w2": rng.integers(-8, 9, (N_OUT, hidden)).tolist(), "b2": [0] * N_OUT}


def brain_params(brain: dict) -> np.ndarray:
    """The brain's integers as one float64 vector (w1, b1, w2, b2), for a learner that perturbs them."""
    return np.concatenate([np.asarray(brain[k], np.float64).ravel() for k in ("w1", "b1", "w2", "b2")])


def brain_from_params(theta: np.ndarray, hidden: int, name: str, **meta) -> dict:
    """Round a float vector back into a brain: weights to int8, biases to integers."""
    d = len(FEATURES)
    sizes = [hidden * d, hidden, N_OUT * hidden, N_OUT]
    w1, b1, w2, b2 = np.split(np.rint(np.asarray(theta, np.float64)), np.cumsum(sizes)[:-1])
    clip = lambda w: np.clip(w, -W_MAX, W_MAX).astype(np.int64)  # noqa: E731
    return {"format": FORMAT, "name": name, "features": list(FEATURES), "hidden": hidden,
            "w1": clip(w1).reshape(hidden, d).tolist(), "b1": b1.astype(np.int64).tolist(),
            "w2": clip(w2).reshape(N_OUT, hidden).tolist(), "b2": b2.astype(np.int64).tolist(), **meta}


def save_brain(brain: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(brain, separators=(",", ":")))
    tmp.replace(path)  # atomic: a page loading the brain during a promotion never reads half a file
    return path


def load_brain(spec: str | Path | dict | None) -> dict | None:
    """None / "scripted" -> None (the rules' policy); a dict; a path to a brain JSON; or the name of a
    shipped brain (hakisa/games/duel/bosses/NAME.json). Checks the format, shapes and weight ranges."""
    if spec is None or spec == "scripted":
        return None
    if isinstance(spec, dict):
        brain = spec
    else:
        p = Path(spec)
        if not p.exists() and (SHIPPED_DIR / f"{spec}.json").exists():
            p = SHIPPED_DIR / f"{spec}.json"
        if not p.exists():
            names = ", ".join(["scripted", *shipped_brains()])
            raise FileNotFoundError(f"no boss brain {spec!r}: give a brain JSON path or one of: {names}")
        brain = json.loads(p.read_text())
    if brain.get("format") != FORMAT:
        raise ValueError(f"{spec} is not a boss brain (format {brain.get('format')!r}, expected {FORMAT!r})")
    w1, w2 = np.asarray(brain["w1"]), np.asarray(brain["w2"])
    h = len(brain["b1"])
    if w1.shape != (h, len(FEATURES)) or w2.shape != (N_OUT, h) or len(brain["b2"]) != N_OUT:
        raise ValueError(f"boss brain {brain.get('name')!r} has inconsistent shapes w1 {w1.shape}, w2 {w2.shape}")
    if np.abs(w1).max() > W_MAX or np.abs(w2).max() > W_MAX:
        raise ValueError(f"boss brain {brain.get('name')!r}: weights must be int8 (|w| <= {W_MAX})")
    return brain


def shipped_brains() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json")) if SHIPPED_DIR.is_dir() else []


def with_brain(rules: dict, brain: dict | None) -> dict:
    """A copy of rules whose boss plays `brain` (None: scripted): what DuelSim and DuelCore both read."""
    r = dict(rules)
    r.pop("brain", None)
    if brain is not None:
        r["brain"] = brain
    return r
