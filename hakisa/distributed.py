"""Ray, the one engine Hakisa uses beyond one process: how it is started, joined and asked for.

    init_ray()                      # local: starts Ray on this machine (or joins RAY_ADDRESS if set)
    init_ray("10.0.0.5:6379")       # joins a running cluster (`ray start --head` on that machine)

Everything works without Ray (`pip install hakisa[ray]` adds it); the verbs that take `--workers` or
`--ray` call `require_ray()` first, which explains how to get it. Ray's own dashboard and usage report stay
off: they start extra processes and reach for the network, and a 2-core box has neither to spare.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from hakisa.preprocess import ObsSpec

# A live-window worker claims one of these (and a CPU), so a cluster never packs more browsers on a node
# than the node declares room for: `ray start --resources '{"display": 4}'`. A local Ray gets DISPLAY_SLOTS.
DISPLAY_RESOURCE = "display"
DISPLAY_SLOTS = int(os.environ.get("HAKISA_DISPLAY_SLOTS", "4"))


def require_ray():
    """The ray module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise SystemExit("hakisa: this needs Ray: pip install 'hakisa[ray]' (or bash scripts/setup.sh)") from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """Start or join Ray once per process. address: None -> $RAY_ADDRESS if set, else a local instance of
    this process's own; "auto" or "host:port" -> join that cluster. Returns the ray module."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS") or None
    kw = dict(include_dashboard=False, log_to_driver=True, ignore_reinit_error=True)
    if address is None:  # a local instance: declare the display slots that live-window workers claim
        kw.update(num_cpus=num_cpus, resources={DISPLAY_RESOURCE: DISPLAY_SLOTS})
        # "local", not None: with None Ray joins whatever cluster was started last on this machine (its
        # /tmp/ray/ray_current_cluster), and refuses num_cpus there: a user's `ray start` left running, or
        # another test's cluster, made a local run fail with a Ray traceback (issue 38's busy-suite run)
        address = "local"
    ray.init(address=address, **kw)
    return ray


@dataclass
class EnvRecipe:
    """How a worker builds its envs, as this process would: a game's simulator (`game`), an env id
    (`env_id`: Toy/..., a stable-retro game, Hakisa/...), or with `live` a fleet of the game's real
    windows, each on a private Xvfb display. train_recipe: a game's simulator as `hakisa train` builds it
    (the game file's `train` frame size and options under `opts`), else as play/explore do. obs: "WxH" or
    an ObsSpec dict (a checkpoint's); None: the default. Picklable, so it travels to any node; a game given
    as a path must exist at that path on every node."""

    game: str | None = None
    env_id: str | None = None
    num_envs: int = 8
    seed: int = 0
    opts: dict = field(default_factory=dict)
    obs: str | dict | None = None
    live: bool = False
    train_recipe: bool = True

    def make(self, seed: int | None = None):
        from hakisa.envs.make import make_vec
        from hakisa.game import Game
        from hakisa.recipe import game_envs, parse_obs

        seed = self.seed if seed is None else seed
        spec = ObsSpec.from_dict(self.obs) if isinstance(self.obs, dict) else parse_obs(self.obs) if self.obs else None
        kw = {"obs_spec": spec} if spec is not None else {}
        if self.live:
            from hakisa.envs.fleet import Fleet

            return Fleet(Game.load(self.game), self.num_envs, opts=self.opts, private=True, **kw)
        if self.game and self.train_recipe and not isinstance(self.obs, dict):
            return game_envs(Game.load(self.game), self.num_envs, seed, self.opts, self.obs)[0]
        if self.game:
            return Game.load(self.game).sim_vec(self.num_envs, seed=seed, opts=self.opts, **kw)
        return make_vec(self.env_id, self.num_envs, seed=seed, **kw)
