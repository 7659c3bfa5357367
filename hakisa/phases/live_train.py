"""`hakisa train` on a game's live window(s): an actor that keeps real time, a learner in the background.

    hakisa train --game G --minutes 30 --windows 2 --run G-live                               # from scratch: srdqn
    hakisa train --game pop --init runs/pop-bc/best --algo srdqn --demos DATA --minutes 30    # from a clone
    hakisa train --game pop --init runs/pop-bc/best --windows 4 --minutes 30                  # live PPO

The ACTOR is the main thread (this file). It plays every window (a `Fleet`, whose windows restart in the
background) at the game's decision rate, never waits for the learner, and loads its newest weights between two
steps. A step that overruns its tick is counted, not stretched (`charts/late_share`, `charts/jitter`).
The LEARNER, a thread (hakisa/algos/live_learners.py; torch releases the GIL, so the two share the cores), is
`srdqn` (hakisa/algos/srdqn.py; the default from scratch), `dqn` (hakisa/algos/dqn.py) or `ppo` (a clipped
update per `num_steps` x windows steps). Every learner is guarded: an update whose loss or Q values explode is
rolled back to the last good weights (`charts/rollbacks`). From a checkpoint of another kind (a studied clone),
the heads it never trained (V, Q) first learn alone on its frozen features (`warmup`): a random critic's
gradients through the shared trunk would otherwise undo the cloning. A window that fails (a crashed page, a
dead X server) is reopened by the Fleet; its game counts as truncated and training goes on.

JUDGED GAMES. A Q learner's actor explores (epsilon-greedy), so every `judge_every`-th game of each window is
played near greedily (`judge_eps`), and `best/` is the weights that ended the judged games whose rolling mean (of
`judge_window`) is the best so far. PPO plays as it learns (sampled): all its finished games are judged, and its
checkpoints ask `hakisa play` to play them sampled too (config.json's "act").

The budget is `--minutes` of play (and/or `--steps`). When it is spent every window plays out its game
and starts no other; then the learner stops. Writes runs/<name>/: config.json, TensorBoard (charts/score,
charts/episodic_return, charts/judged_score, charts/late_share, charts/jitter, charts/rollbacks, losses/...),
checkpoint/ every `save_minutes` and at the end, best/, and curve.json (score against minutes of play, with
every game and whether it was judged).
"""
from __future__ import annotations

import copy
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, keep_freed_memory, start_run, summarize
from hakisa.algos.live_learners import DQNLearner, Learner, q_from_policy
from hakisa.algos.live_ppo import PPOLearner
from hakisa.model import HakisaNet, load_training_state, save_checkpoint
from hakisa.phases import live_resume

Q_LEARNERS = ("dqn", "srdqn")  # checkpoints of both act greedily on Q, and say algo "dqn" (model.act_mode)


@dataclass
class LiveArgs:
    """The live trainer's own settings, beside the learner's Args: windows, budget, judged games, checkpoints.

    `hakisa train` fills windows, minutes, save_minutes, replay_ratio, demos and cql from its flags, and any field
    from `--set KEY=VALUE` (a key the learner's Args do not have). Saved under "live" in config.json and the
    checkpoint, without `curve`."""

    windows: int = 1
    """live windows played at once (more than one: each on a private Xvfb display)"""
    minutes: float = 10.0
    """minutes of play (the budget); every window then plays out its game"""
    replay_ratio: float = 4.0
    """dqn, srdqn: gradient steps per env step, at most (the learner may fall behind; the ratio reached is logged)"""
    cql: float = 1.0
    """dqn, srdqn from a clone: conservative-Q penalty weight (hakisa/algos/dqn.py `cql_penalty`); without it the
    untried x/y bins keep their starting values while the tried ones are corrected, and soon win the argmax
    (from scratch epsilon tries them all, and no penalty is used)"""
    publish_every: int = 25
    """dqn, srdqn: gradient steps between two weight hand-overs to the actor"""
    warmup: int = 8
    """from a checkpoint of another kind (a studied clone): the first updates train only the heads it never
    trained (ppo: V, dqn: Q) on its frozen features; ppo counts batches (8 x 64 steps: ~35 s of play on one
    window at 15 Hz), dqn gradient steps x 100"""
    demos: str | None = None
    """an episode store of the teacher (the one the init checkpoint studied). ppo: each update also clones it,
    with a weight that decays (DAPG, Rajeswaran et al. 2018); srdqn: its frames stay in every update with
    DQfD's large-margin loss, so the policy improves from the clone instead of first forgetting it"""
    demo_coef: float = 1.0
    """ppo: the cloning term's first weight"""
    demo_decay: float = 0.99
    """ppo: its decay per update"""
    judge_every: int = 3
    """dqn, srdqn: every this many games of a window, one is played near greedily and judged for best/"""
    judge_eps: float = 0.01
    """the judged games' exploration rate: near greedy, but not 0, so a greedy net that waits forever in a state
    where waiting costs nothing (the last press that ends a game, whose value it overrates) still ends the game"""
    judge_window: int = 5
    """judged games in the rolling mean that picks best/"""
    save_minutes: float = 2.0
    """minutes between checkpoints"""
    curve: list = field(default_factory=list)
    """(filled in) [minutes of play, mean score or win rate of the games that ended in that minute]"""


def train_live(
    game,
    algo: str,
    args,
    live: LiveArgs,
    run_dir: str | Path | None,
    net: HakisaNet | None = None,
    opts: dict | None = None,
    init_cfg: dict | None = None,
    envs=None,
    resume: bool = False,
) -> dict:
    """Learn on the game's live windows for `live.minutes` (and at most args.total_steps env steps).
    net, init_cfg: the starting checkpoint (`load_checkpoint`'s pair). envs: an already-open Fleet (tests);
    otherwise `live.windows` windows are opened and closed here. resume: go on from run_dir's checkpoint/ (net and
    init_cfg are its own) with its books, within the same budget (hakisa/phases/live_resume.py)."""
    from hakisa.envs.fleet import Fleet

    torch.set_num_threads(1)  # one core for the actor's forward, one for the learner's updates
    keep_freed_memory()  # as every learner (setup_torch): no fresh page faults for each minibatch
    torch.manual_seed(args.seed)
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # the actor waits at most ~1 ms for the GIL when the learner is in Python
    own = envs is None
    envs = envs if envs is not None else Fleet(game, live.windows, opts=opts, obs_spec=net.obs_spec if net else None,
                                               background_resets=True)  # a restart never pauses the other windows
    try:
        books = live_resume.books(run_dir) if resume else None
        return Actor(game, algo, args, live, run_dir, net, init_cfg, envs, books).run()
    finally:
        sys.setswitchinterval(old_switch)
        if own:
            envs.close()


def load_demos(path: str | None, net: HakisaNet, init_cfg: dict | None):
    """(transitions, class weights) of a teacher's store, labelled as the init checkpoint's study labelled
    them (its label lag and command weights), or None."""
    if not path:
        return None
    from hakisa.data import EpisodeStore, Transitions

    store = EpisodeStore(path)
    if not store.input_map.same_as(net.input_map):
        raise ValueError(f"--demos {path}: its input map differs from the agent's")
    study = (init_cfg or {}).get("algo", {})
    # stacked as the clone studied them: a 60 fps recording studied with stride 4 is a 15 Hz stack
    data = Transitions(store, stack=net.obs_spec.stack, stride=int(study.get("args", {}).get("stack_stride", 1) or 1))
    lag = float(study.get("label_lag") or 0.0)  # the lag study chose (its args' "auto" or "0" is the request)
    if lag:
        data.relabel(lag, 1.0 / float(store.meta.get("fps", 15)))
    w = study.get("class_weights") or [1.0] * len(net.input_map.commands)
    return data, torch.as_tensor(w, dtype=torch.float32)


def make_learner(algo: str, net, args, writer, n: int, live: LiveArgs, from_other: bool, init_cfg) -> Learner:
    """The learner thread for `algo`; from_other: the net is a checkpoint of another kind (a clone)."""
    warmup = live.warmup if from_other else 0
    cql = live.cql if from_other else 0.0
    if algo == "dqn":
        return DQNLearner(net, args, writer, n, live.replay_ratio, live.publish_every, warmup, cql)
    demos = load_demos(live.demos, net, init_cfg)
    if algo == "srdqn":
        from hakisa.algos.srdqn import SRDQNLearner

        # resets would erase a clone (or any checkpoint it starts from): only from scratch
        return SRDQNLearner(net, args, writer, n, live.replay_ratio, live.publish_every,
                            resets=init_cfg is None, demos=demos, warmup=warmup, cql=cql)
    return PPOLearner(net, args, writer, n, warmup, demos, live.demo_coef, live.demo_decay)


def epsilon(args, steps: int, from_checkpoint: bool) -> float:
    """The actor's exploration rate: srdqn decays over `eps_steps` env steps (from a checkpoint: eps_end
    throughout); dqn over eps_fraction of total_steps."""
    if not hasattr(args, "eps_steps"):
        from hakisa.algos.dqn import epsilon as dqn_epsilon

        return dqn_epsilon(args, steps)
    if from_checkpoint:
        return args.eps_end
    return args.eps_start + (args.eps_end - args.eps_start) * min(1.0, steps / max(1, args.eps_steps))


class Actor:
    """The main thread's loop over the fleet: act, step, hand transitions over, keep the books."""

    def __init__(self, game, algo, args, live: LiveArgs, run_dir, net, init_cfg, envs, resume: dict | None = None):
        """resume: the killed run's books (`live_resume.books`); net then holds its checkpoint/'s weights."""
        self.game, self.algo, self.args, self.live, self.envs = game, algo, args, live, envs
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.n = n = envs.num_envs
        init_algo = (init_cfg or {}).get("algo", {}).get("algo")
        self.net = net or HakisaNet(envs.obs_spec, envs.input_map, args.encoder, args.hidden)
        self.q = algo in Q_LEARNERS
        family = "dqn" if algo in Q_LEARNERS else algo
        from_other = not resume and init_algo not in (None, family)  # e.g. a studied clone: its V/Q never trained
        cfg = {
            "algo": algo,
            "live": {k: v for k, v in asdict(live).items() if k != "curve"},
            "game": game.name,
            "game_file": str(game.path.resolve()),  # plot, arena and diagnose find the game by it
            "obs_spec": envs.obs_spec.to_dict(),
            "input_map": envs.input_map.to_dict(),
        }
        self.writer = start_run(run_dir, args, cfg, purge_step=resume["steps"] + 1 if resume else None)
        self.obs, _ = envs.reset(seed=args.seed)
        if self.q and from_other:
            q_from_policy(self.net, self.obs)
        self.from_checkpoint = resume["from_checkpoint"] if resume else init_cfg is not None
        self.learner = make_learner(algo, self.net, args, self.writer, n, live, from_other,
                                    init_cfg if self.from_checkpoint else None)
        self.actor = copy.deepcopy(self.net).eval()
        self.rng = np.random.default_rng(args.seed)
        # a Q learner's checkpoint says "dqn" so that `hakisa play` acts greedily on Q; `learner` says which
        self.ck_cfg = {"algo": family, "learner": algo, **asdict(args), "live": cfg["live"],
                       "game_file": cfg["game_file"]}
        if not self.q:
            # PPO plays its games sampled and best/ is picked on them: `hakisa play` plays it the same way, or it
            # judges another policy than the one that earned best/ (docs/live_learning.md measures the gap)
            self.ck_cfg["act"] = "sample"
        self.score_key = "win_rate" if game.won_or_lost else "mean_score" if game.score else "mean_return"
        self.stats, self.episodes, self.steps = EpisodeStats(n), [], 0
        self.games = np.zeros(n, np.int64)  # games started per window (the first is game 0)
        self.judging = self._judged(self.games)
        self.best, self.best_sd = -np.inf, None  # best judged rolling mean, and the weights that ended it
        self.best_metrics: dict = {}
        self.spent, self.grad_steps_before = 0.0, 0  # seconds played and gradient steps before a resume
        self.saver = live_resume.Saver()
        if resume:
            live_resume.restore(self, resume)
            if self.learner.opt is not None:
                load_training_state(self.run_dir / "checkpoint", self.learner.opt)

    def _judged(self, games: np.ndarray) -> np.ndarray:
        if not self.q:
            return np.ones(self.n, bool)  # PPO plays as it learns: all its games are judged
        k = max(1, self.live.judge_every)
        return (games % k) == k - 1

    def run(self) -> dict:
        learner, envs = self.learner, self.envs
        for i in range(self.n):
            learner.start_episode(i, self.obs[i])
        if self.algo == "ppo":
            learner.begin(self.obs)
        learner.start()
        self.start = time.perf_counter() - self.spent  # a resumed run goes on within the same budget
        budget_s = 60.0 * self.live.minutes
        every = self.live.save_minutes * 60
        next_save, winding_down = (self.spent // every + 1) * every, False
        self.bar = tqdm(total=int(budget_s), unit="s", desc=f"live {self.algo} x{self.n}",
                        disable=not self.args.progress,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}{postfix}]")
        try:
            while envs.running.any():
                if not winding_down and (time.perf_counter() - self.start >= budget_s
                                         or self.steps >= self.args.total_steps):
                    winding_down = True  # every window plays out its game, then idles: no game is left half-started
                    for i in range(self.n):
                        envs.retire(i)
                learner.check()
                learner.pull(self.actor)
                self.step()
                now_s = time.perf_counter() - self.start
                if int(now_s) > self.bar.n:
                    self.bar.update(min(int(now_s), self.bar.total) - self.bar.n)
                if self.steps % 100 < self.n:
                    self.report(now_s)
                if self.run_dir is not None and now_s >= next_save:
                    next_save += every
                    self.save()
                if self.run_dir is not None and (snap := learner.take_snapshot()) is not None:
                    metrics = {"steps": self.steps, **summarize(self.episodes[-10:])}
                    self.saver.save(live_resume.checkpoint_job(self, snap, metrics, now_s / 60))
        finally:
            self.bar.close()
            learner.halt.set()
            learner.join()
            envs.release_all()
            self.saver.close()
        learner.check()
        return self.finish(time.perf_counter() - self.start)

    def step(self) -> None:
        envs, learner = self.envs, self.learner
        a, logp, value = self.act()
        active = envs.active.copy()
        nobs, r, term, trunc, infos = envs.step(a)
        for i in np.flatnonzero(active):
            # nobs[i] is what the actor sees next: after an episode's end the new game's first stack,
            # which the replay does not chain to the ended one (it starts a new episode below)
            learner.add(i, a[i], float(r[i]), bool(term[i]), bool(trunc[i]), nobs[i],
                        None if logp is None else float(logp[i]), None if value is None else float(value[i]))
            if (term[i] or trunc[i]) and envs.active[i]:
                learner.start_episode(i, nobs[i])
        self.steps += int(active.sum())
        ended = (term | trunc) & active
        r_act = np.where(active, r, 0.0).astype(np.float64)
        # EpisodeStats returns the ended games in window order
        for i, ep in zip(np.flatnonzero(ended), self.stats.update(r_act, term & active, trunc & active, infos)):
            ep["env"], ep["truncated"] = int(i), bool(trunc[i] and not term[i])
            self.record(ep)
            self.games[i] += 1
        self.judging = np.where(ended, self._judged(self.games), self.judging)
        for i in np.flatnonzero(infos.get("_started", ())):  # back from a background reset: a new game begins
            learner.start_episode(i, nobs[i])
            self.stats.ret[i], self.stats.len[i] = 0.0, 0  # the steps it sat out are not its next game's
        self.obs = nobs

    def record(self, ep: dict) -> None:
        """Book a finished game; a judged one (greedy, played to its end) may move best/."""
        ep["minute"] = (time.perf_counter() - self.start) / 60
        ep["judged"] = bool(self.judging[ep["env"]] and not ep["truncated"])
        self.episodes.append(ep)
        w = self.writer
        if w is not None:
            w.add_scalar("charts/episodic_return", ep["return"], self.steps)
            if "score" in ep:
                w.add_scalar("charts/score", ep["score"], self.steps)
        if not ep["judged"]:
            return
        judged = [e for e in self.episodes if e["judged"]][-self.live.judge_window:]
        if w is not None:
            w.add_scalar("charts/judged_score", summarize(judged[-1:]).get(self.score_key, 0.0), self.steps)
        s = summarize(judged).get(self.score_key, -np.inf)
        if len(judged) >= self.live.judge_window and s > self.best:
            # the weights that just finished a judged game; written at the next save, not mid-step
            self.best, self.best_sd = s, {k: v.clone() for k, v in self.actor.state_dict().items()}
            self.best_metrics = {"steps": self.steps, "judged_games": len(judged), self.score_key: s}

    def act(self):
        """Epsilon-greedy on Q (judged games: greedy), or sampled from the policy with its log-prob and V."""
        with torch.inference_mode():
            o = torch.from_numpy(np.ascontiguousarray(self.obs))
            if self.q:
                a = self.actor.act(o, "q").numpy()
                eps = epsilon(self.args, self.steps, self.from_checkpoint)
                explore = self.rng.random(len(a)) < np.where(self.judging, self.live.judge_eps, eps)
                if explore.any():
                    space = self.envs.single_action_space
                    rand = self.actor.canonical(torch.from_numpy(np.stack([space.sample() for _ in a]))).numpy()
                    a[explore] = rand[explore]
                return a, None, None
            lc, lx, ly, v = self.actor.policy(o)
            a = self.actor.pick((lc, lx, ly), sample=True)
            logp, _ = self.actor.dist_logp_entropy(lc, lx, ly, a)
            return a.numpy(), logp.numpy(), v.numpy()

    def report(self, now_s: float) -> None:
        tm = self.envs.timing()
        recent = summarize(self.episodes[-10:])
        key = self.score_key
        self.bar.set_postfix({"steps": self.steps, **({key[:10]: round(recent[key], 2)} if key in recent else {}),
                              "late": tm.get("late_share", 0.0), "grad": self.learner.grad_steps,
                              **({"rollbacks": self.learner.guard.rollbacks} if self.learner.guard.rollbacks else {})})
        if self.writer is not None and "jitter" in tm:
            self.writer.add_scalar("charts/late_share", tm["late_share"], self.steps)
            self.writer.add_scalar("charts/jitter", tm["jitter"], self.steps)
            self.writer.add_scalar("charts/sps", self.steps / now_s, self.steps)

    def save(self) -> None:
        """best/: the weights that ended the best judged games. checkpoint/ (resumable) is written once the learner
        has served its snapshot, between two of its updates (`run`); the actor does not wait for it."""
        self.learner.snapshot_wanted.set()
        if self.best_sd is not None:
            net = copy.deepcopy(self.learner.net)
            net.load_state_dict(self.best_sd)
            save_checkpoint(self.run_dir / "best", net, self.ck_cfg, self.best_metrics)
            self.best_sd = None  # written; a better one replaces it

    def finish(self, elapsed: float) -> dict:
        live, key = self.live, self.score_key
        live.curve = live_resume.curve(self.episodes, key)
        judged = [e for e in self.episodes if e["judged"]]
        tm = self.envs.timing()
        metrics = {
            "steps": self.steps, "minutes": round(elapsed / 60, 3), "windows": self.n,
            "grad_steps": self.grad_steps_before + self.learner.grad_steps,
            "sps": round(self.steps / elapsed, 2),  # a resumed run: since its first start
            "replay_ratio": round((self.grad_steps_before + self.learner.grad_steps) / max(1, self.steps), 3),
            "weight_versions": self.learner.version, "rollbacks": self.learner.guard.rollbacks,
            "timing": tm, "faults": list(getattr(self.envs, "faults", [])), **summarize(self.episodes),
            "score_first10": summarize(self.episodes[:10]).get(key),
            "score_last10": summarize(self.episodes[-10:]).get(key),
            "judged_games": len(judged), "judged_last5": summarize(judged[-5:]).get(key),
            "best_judged": None if not np.isfinite(self.best) else self.best,
            **({"dropped_batches": self.learner.dropped} if self.algo == "ppo" else {}),
            **({"resets": self.learner.n_resets} if hasattr(self.learner, "n_resets") else {}),
            "curve": live.curve,
        }
        if self.run_dir is not None:
            self.save()  # best/; the learner has stopped, so its snapshot is served here
            self.learner.serve_snapshot()
            flat = {k: v for k, v in metrics.items() if k != "curve"}
            job = live_resume.checkpoint_job(self, self.learner.take_snapshot(), flat, elapsed / 60)
            self.saver.save(job, wait=True)
            if not (self.run_dir / "best").exists():  # no judged window yet: the final weights stand in
                save_checkpoint(self.run_dir / "best", self.net, self.ck_cfg, flat)
        if self.writer is not None:
            self.writer.close()
        return metrics

