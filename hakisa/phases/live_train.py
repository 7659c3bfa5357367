"""`hakisa train` on a game's live window(s): an actor that keeps real time, a learner in the background.

    hakisa train --game pop --init runs/pop-bc/best --algo dqn --minutes 30 --run pop-live   # one window
    hakisa train --game pop --init runs/pop-bc/best --windows 4 --minutes 30                 # four private displays
    hakisa train --game duel --live --init runs/duel-bc --minutes 20                         # the page, not the sim

A game with no simulator is trained here, on its window; `--live` sends a game that has one here too.

The ACTOR is the main thread. It plays every window (a `Fleet`) at the game's decision rate and never
waits for the learner: it acts with its own copy of the net and loads the learner's newest weights
between two steps, when there are new ones. A step that overruns its tick is counted, not stretched
(`charts/late_share`, `charts/jitter`). The LEARNER is a thread that updates the net as data arrives
(torch releases the GIL inside its ops, so the two share the CPU's cores rather than take turns):
- `dqn`: branching double DQN (hakisa/algos/dqn.py's `td_loss` and `FrameReplay`) at a replay ratio of
  up to `replay_ratio` gradient steps per env step: off-policy, so every frame is learned from many times.
  Started from a policy checkpoint (a studied clone), its Q advantages start as the policy's logits, so
  the first greedy actions are the clone's, not those of untrained Q heads.
- `ppo`: PPO's clipped update (hakisa/algos/ppo.py's `update_policy`) on each batch of `num_steps` x
  windows steps; the actor keeps playing while it runs and the importance ratio is taken against the
  log-probs of the weights that really played.
From a checkpoint of another kind (a studied clone), the heads it never trained (V, Q) first learn alone
on its frozen features (`warmup`): a random critic's gradients through the shared trunk would otherwise
undo the cloning before the first useful update.

The budget is `--minutes` of play (and/or `--steps`). When it is spent every window plays out its game
and starts no other; then the learner stops. Writes runs/<name>/: config.json, TensorBoard (charts/score,
charts/episodic_return, charts/late_share, charts/jitter, losses/...), checkpoint/ every `save_minutes`
and at the end, best/ (best rolling score of 10 games), and curve.json (score against minutes of play).
"""
from __future__ import annotations

import copy
import json
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, RunningMeanStd, keep_freed_memory, start_run, summarize
from hakisa.model import HakisaNet, save_checkpoint

# Defaults for live play, where data is scarce and the start is usually a studied clone: a short DQN
# warm-up and a constant small epsilon (a uniform random click costs a life); PPO batches of 128 steps
# per window (8.5 s of play at 15 Hz), a small step (lr 5e-5, KL stop 0.03) and no entropy bonus, which
# on Pop kept the clone's sampled score (~20 a game) through the first updates where lr 1e-4 with 64-step
# batches halved it. A game file's `train.live.<algo>` entry and --set override them.
LIVE_DEFAULTS = {
    "dqn": {"learning_starts": 500, "buffer_size": 60_000, "batch_size": 64, "target_every": 250, "lr": 1e-4,
            "eps_start": 0.05, "eps_end": 0.05},
    "ppo": {"num_steps": 128, "num_minibatches": 2, "update_epochs": 4, "lr": 5e-5, "ent_coef": 0.0, "target_kl": 0.03},
}


@dataclass
class LiveArgs:
    windows: int = 1
    """live windows played at once (more than one: each on a private Xvfb display)"""
    minutes: float = 10.0
    """minutes of play (the budget); every window then plays out its game"""
    replay_ratio: float = 4.0
    """dqn: gradient steps per env step, at most (the learner may fall behind; the ratio reached is logged)"""
    cql: float = 1.0
    """dqn from a clone: conservative-Q penalty weight (hakisa/algos/dqn.py `cql_penalty`); without it the
    untried x/y bins keep their starting values while the tried ones are corrected, and soon win the argmax
    (from scratch epsilon tries them all, and no penalty is used)"""
    publish_every: int = 25
    """dqn: gradient steps between two weight hand-overs to the actor"""
    warmup: int = 8
    """from a checkpoint of another kind (a studied clone): the first updates train only the heads it never
    trained (ppo: V, dqn: Q) on its frozen features; ppo counts batches (8 x 64 steps: ~35 s of play on one
    window at 15 Hz), dqn gradient steps x 100"""
    demos: str | None = None
    """ppo: an episode store of the teacher (the one the init checkpoint studied): each update also clones it,
    with a weight that decays (DAPG, Rajeswaran et al. 2018), so the policy improves from the clone
    instead of first forgetting it"""
    demo_coef: float = 1.0
    """ppo: the cloning term's first weight"""
    demo_decay: float = 0.99
    """ppo: its decay per update"""
    save_minutes: float = 2.0
    """minutes between checkpoints"""
    curve: list = field(default_factory=list)
    """(filled in) [minutes of play, mean score or win rate of the games that ended in that minute]"""


# ---- the learners ---------------------------------------------------------------------------------
class Learner(threading.Thread):
    """A background thread that updates `net` and hands weights to the actor through `pull`."""

    def __init__(self, net: HakisaNet, args, writer):
        super().__init__(name="hakisa-learner", daemon=True)
        self.net, self.args, self.writer = net, args, writer
        self.lock = threading.Lock()  # guards the shared data and the published weights
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.version, self._pulled = 0, 0
        self.grad_steps = 0
        self.env_steps = 0
        self._published = None
        self.publish()

    def publish(self) -> None:
        sd = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        with self.lock:
            self._published, self.version = sd, self.version + 1

    def pull(self, actor: HakisaNet) -> bool:
        """Load the newest published weights into the actor's net (between two steps); True if new."""
        with self.lock:
            if self.version == self._pulled:
                return False
            sd, self._pulled = self._published, self.version
        actor.load_state_dict(sd)
        return True

    def run(self) -> None:
        try:
            self.loop()
        except BaseException as e:  # re-raised in the actor's thread by `check`
            self.error = e

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the learner thread failed: {type(self.error).__name__}: {self.error}") from self.error

    def stop(self) -> None:
        self.halt.set()
        self.join()
        self.check()


class DQNLearner(Learner):
    def __init__(self, net, args, writer, n_envs: int, replay_ratio: float, publish_every: int, warmup: int = 0,
                 cql: float = 0.0):
        from hakisa.algos.dqn import FrameReplay

        super().__init__(net, args, writer)
        self.warmup, self.cql = warmup * 100, cql
        self.rb = FrameReplay(n_envs, args.buffer_size, net.obs_spec.frame_shape, net.obs_spec.stack)
        self.target = copy.deepcopy(net).requires_grad_(False)
        self.opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1.5e-4)
        self.replay_ratio, self.publish_every = replay_ratio, publish_every
        self.rng = np.random.default_rng(args.seed)

    def start_episode(self, i: int, obs) -> None:
        with self.lock:
            self.rb.start_episode(i, obs)

    def add(self, i: int, action, reward, term, trunc, next_obs, logp=None, value=None) -> None:
        with self.lock:
            self.rb.add(i, action, reward, term, trunc, next_obs)
            self.env_steps += 1

    def loop(self) -> None:
        from hakisa.algos.dqn import cql_penalty, td_loss

        a = self.args
        frozen = freeze_features(self.net, self.warmup > 0)
        while not self.halt.is_set():
            if frozen and self.grad_steps >= self.warmup:
                frozen = freeze_features(self.net, False)
            ready = self.env_steps - a.learning_starts
            if ready <= 0 or self.grad_steps >= self.replay_ratio * ready:
                time.sleep(0.005)  # wait for data: the replay ratio is an upper bound
                continue
            with self.lock:
                b = self.rb.sample(a.batch_size, a.n_step, a.gamma, self.rng)
            loss, q_mean = td_loss(self.net, self.target, b)
            if self.cql > 0:
                loss = loss + self.cql * cql_penalty(self.net, b["obs"], b["actions"])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), a.max_grad_norm)
            self.opt.step()
            self.grad_steps += 1
            if self.grad_steps % a.target_every == 0:
                self.target.load_state_dict(self.net.state_dict())
            if self.grad_steps % self.publish_every == 0:
                self.publish()
            if self.writer is not None and self.grad_steps % 100 == 0:
                self.writer.add_scalar("losses/td_loss", loss.item(), self.env_steps)
                self.writer.add_scalar("losses/q_values", q_mean.item(), self.env_steps)
                self.writer.add_scalar("charts/replay_ratio", self.grad_steps / max(1, ready), self.env_steps)


class PPOLearner(Learner):
    """Batches of per-window segments arrive through a queue of one; while the learner is busy the actor
    fills the next batch. If a second batch is ready before the first was taken, the older is dropped
    (counted in `dropped`): the actor never waits."""

    def __init__(self, net, args, writer, n_envs: int, warmup: int = 0, demos=None, demo_coef: float = 0.0,
                 demo_decay: float = 1.0):
        super().__init__(net, args, writer)
        self.demos, self.demo_coef, self.demo_decay = demos, demo_coef, demo_decay
        self.rng = np.random.default_rng(args.seed)
        self.opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
        self.warmup, self.n_envs = warmup, n_envs
        self.batch_steps = args.num_steps * n_envs
        self.q: queue.Queue = queue.Queue(maxsize=1)
        self.seg = [[] for _ in range(n_envs)]
        self.pending, self.dropped, self.updates = 0, 0, 0
        self.ret_rms = RunningMeanStd()

    def start_episode(self, i: int, obs) -> None:
        pass

    def add(self, i: int, action, reward, term, trunc, next_obs, logp=None, value=None) -> None:
        self.env_steps += 1
        self.seg[i].append((self._obs[i], action, logp, value, reward, term or trunc))
        self._obs[i] = next_obs
        self.pending += 1
        if self.pending >= self.batch_steps:
            batch = [(s, self._obs[i].copy()) for i, s in enumerate(self.seg) if s]
            self.seg, self.pending = [[] for _ in range(self.n_envs)], 0
            try:
                self.q.put_nowait(batch)
            except queue.Full:
                try:
                    self.q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
                self.q.put_nowait(batch)

    def begin(self, obs: np.ndarray) -> None:
        self._obs = [o.copy() for o in obs]

    def loop(self) -> None:
        from hakisa.algos.ppo import update_policy

        a, net = self.args, self.net
        while not self.halt.is_set():
            try:
                batch = self.q.get(timeout=0.05)
            except queue.Empty:
                continue
            obs, act, logp, adv, ret, val = self._gae(batch)
            if self.updates < self.warmup:  # V only, on the clone's frozen features: the policy does not move
                for _ in range(a.update_epochs):
                    with torch.no_grad():
                        h = net.features(obs)
                    v_loss = 0.5 * ((net.v(h).squeeze(1) - ret) ** 2).mean()
                    self.opt.zero_grad(set_to_none=True)
                    (a.vf_coef * v_loss).backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), a.max_grad_norm)
                    self.opt.step()
                    self.grad_steps += 1
                u = {"v_loss": v_loss, "approx_kl": torch.tensor(0.0)}
            else:
                coef = self.demo_coef * self.demo_decay ** (self.updates - self.warmup)
                aux = (lambda: coef * self._demo_loss()) if self.demos is not None and coef > 1e-3 else None
                u = update_policy(
                    net, self.opt, a, obs, act, logp, adv, ret, val, max(1, len(act) // a.num_minibatches), aux_loss=aux
                )
                self.grad_steps += u["grad_steps"]
            self.updates += 1
            self.publish()
            if self.writer is not None:
                self.writer.add_scalar("losses/value_loss", u["v_loss"].item(), self.env_steps)
                self.writer.add_scalar("losses/approx_kl", float(u["approx_kl"].item()), self.env_steps)
                self.writer.add_scalar("charts/dropped_batches", self.dropped, self.env_steps)

    def _demo_loss(self) -> torch.Tensor:
        from hakisa.algos.bc import bc_loss

        data, weights = self.demos
        b = data.sample(self.args.num_steps, self.rng)
        loss, _ = bc_loss(
            self.net,
            {"obs": torch.from_numpy(b["obs"]), "actions": torch.from_numpy(b["actions"])},
            weights,
            self.net.uses_xy,
        )
        return loss

    def _gae(self, batch):
        """GAE per segment, with V of the obs after its last step from the current net; rewards scaled by a
        running std of the discounted return (as ppo.py's norm_reward)."""
        a = self.args
        out = {k: [] for k in ("obs", "act", "logp", "adv", "ret", "val")}
        for seg, last_obs in batch:
            obs = np.stack([s[0] for s in seg])
            rew = np.array([s[4] for s in seg], np.float64)
            done = np.array([s[5] for s in seg], bool)
            val = np.array([s[3] for s in seg], np.float32)
            if a.norm_reward:
                acc, rets = 0.0, np.empty(len(rew))
                for t in range(len(rew)):
                    acc = acc * a.gamma + rew[t]
                    rets[t] = acc
                    acc = 0.0 if done[t] else acc
                self.ret_rms.update(rets)  # one batched update per segment, not one per step
                rew = rew / np.sqrt(self.ret_rms.var + 1e-8)
            with torch.inference_mode():
                last_v = float(self.net.policy(torch.from_numpy(last_obs[None]))[3])
            adv, lastgae = np.zeros(len(seg), np.float32), 0.0
            for t in reversed(range(len(seg))):
                nextv = last_v if t == len(seg) - 1 else val[t + 1]
                nonterminal = 0.0 if done[t] else 1.0
                delta = rew[t] + a.gamma * nextv * nonterminal - val[t]
                lastgae = delta + a.gamma * a.gae_lambda * nonterminal * lastgae
                adv[t] = lastgae
            out["obs"].append(obs)
            out["act"].append(np.stack([s[1] for s in seg]))
            out["logp"].append(np.array([s[2] for s in seg], np.float32))
            out["adv"].append(adv)
            out["ret"].append(adv + val)
            out["val"].append(val)
        return tuple(torch.from_numpy(np.concatenate(out[k])) for k in ("obs", "act", "logp", "adv", "ret", "val"))


def q_from_policy(net: HakisaNet, obs: np.ndarray) -> None:
    """Start the Q heads where the policy is: each branch's advantages are the policy's logits, scaled so
    that on `obs` the best action's advantage over the branch mean is 1 on average (a reward's size; the raw
    logits of a sharp clone differ by tens, and the TD target's mean over branches would inherit that),
    and V(s) starts at 0. Greedy-Q then acts as the policy's argmax."""
    with torch.no_grad():
        h = net.features(torch.from_numpy(np.ascontiguousarray(obs)))
        for adv, pi in ((net.adv_cmd, net.pi_cmd), (net.adv_x, net.pi_x), (net.adv_y, net.pi_y)):
            lg = pi(h)
            gap = float((lg.max(1).values - lg.mean(1)).mean())
            scale = 1.0 / max(gap, 1e-3)
            adv.weight.copy_(pi.weight * scale)
            adv.bias.copy_(pi.bias * scale)
        net.q_v.weight.zero_()
        net.q_v.bias.zero_()


def freeze_features(net: HakisaNet, frozen: bool) -> bool:
    """Freeze (or free) the encoder and trunk: heads-only warm-up updates leave the features as they are."""
    for p in (*net.encoder.parameters(), *net.trunk.parameters()):
        p.requires_grad_(not frozen)
    return frozen


# ---- the actor ------------------------------------------------------------------------------------
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
) -> dict:
    """Learn on the game's live windows for `live.minutes` (and at most args.total_steps env steps).
    net, init_cfg: the starting checkpoint (`load_checkpoint`'s pair). envs: an already-open Fleet (tests);
    otherwise `live.windows` windows are opened and closed here."""
    from hakisa.envs.fleet import Fleet

    torch.set_num_threads(1)  # one core for the actor's forward, one for the learner's updates
    keep_freed_memory()  # as every learner (setup_torch): no fresh page faults for each minibatch
    torch.manual_seed(args.seed)
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # the actor waits at most ~1 ms for the GIL when the learner is in Python
    own = envs is None
    envs = envs if envs is not None else Fleet(game, live.windows, opts=opts, obs_spec=net.obs_spec if net else None)
    try:
        return _train(game, algo, args, live, run_dir, net, init_cfg, envs)
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
    lag = study.get("args", {}).get("label_lag", 0.0)
    if lag:
        data.relabel(lag, 1.0 / float(store.meta.get("fps", 15)))
    w = study.get("class_weights") or [1.0] * len(net.input_map.commands)
    return data, torch.as_tensor(w, dtype=torch.float32)


def _train(game, algo, args, live, run_dir, net, init_cfg, envs) -> dict:
    n = envs.num_envs
    init_algo = (init_cfg or {}).get("algo", {}).get("algo")
    net = net or HakisaNet(envs.obs_spec, envs.input_map, args.encoder, args.hidden)
    from_other = init_algo not in (None, algo)  # e.g. a studied clone: its V/Q never trained
    cfg = {
        "algo": algo,
        "live": {k: v for k, v in asdict(live).items() if k != "curve"},
        "game": game.name,
        "game_file": str(game.path.resolve()),  # plot, arena and diagnose find the game by it
        "obs_spec": envs.obs_spec.to_dict(),
        "input_map": envs.input_map.to_dict(),
    }
    writer = start_run(run_dir, args, cfg)
    obs, _ = envs.reset(seed=args.seed)
    if algo == "dqn" and from_other:
        q_from_policy(net, obs)
    warmup = live.warmup if from_other else 0
    learner = (
        DQNLearner(net, args, writer, n, live.replay_ratio, live.publish_every, warmup, live.cql if from_other else 0.0)
        if algo == "dqn"
        else PPOLearner(
            net, args, writer, n, warmup, load_demos(live.demos, net, init_cfg), live.demo_coef, live.demo_decay
        )
    )
    actor = copy.deepcopy(net).eval()
    rng = np.random.default_rng(args.seed)
    ck_cfg = {"algo": algo, **asdict(args), "live": cfg["live"], "game_file": cfg["game_file"]}
    score_key = "win_rate" if game.won_or_lost else "mean_score" if game.score else "mean_return"

    for i in range(n):
        learner.start_episode(i, obs[i])
    if algo == "ppo":
        learner.begin(obs)
    learner.start()
    stats, episodes = EpisodeStats(n), []
    start = time.perf_counter()
    budget_s = 60.0 * live.minutes
    next_save, best, steps, winding_down = live.save_minutes * 60, -np.inf, 0, False
    bar = tqdm(
        total=int(budget_s),
        unit="s",
        desc=f"live {algo} x{n}",
        disable=not args.progress,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}{postfix}]",
    )
    try:
        while envs.active.any():
            elapsed = time.perf_counter() - start
            if not winding_down and (elapsed >= budget_s or steps >= args.total_steps):
                winding_down = True  # every window plays out its game, then idles: no game is left half-started
                for i in range(n):
                    envs.retire(i)
            learner.check()
            learner.pull(actor)
            a, logp, value = _act(actor, obs, algo, args, rng, envs, steps)
            active = envs.active.copy()
            nobs, r, term, trunc, infos = envs.step(a)
            for i in np.flatnonzero(active):
                # nobs[i] is what the actor sees next: after an episode's end the new game's first stack,
                # which the replay does not chain to the ended one (it starts a new episode below)
                learner.add(
                    i,
                    a[i],
                    float(r[i]),
                    bool(term[i]),
                    bool(trunc[i]),
                    nobs[i],
                    None if logp is None else float(logp[i]),
                    None if value is None else float(value[i]),
                )
                if (term[i] or trunc[i]) and envs.active[i]:
                    learner.start_episode(i, nobs[i])
            steps += int(active.sum())
            r_act = np.where(active, r, 0.0).astype(np.float64)
            for ep in stats.update(r_act, term & active, trunc & active, infos):
                ep["minute"] = (time.perf_counter() - start) / 60
                episodes.append(ep)
                if writer is not None:
                    writer.add_scalar("charts/episodic_return", ep["return"], steps)
                    if "score" in ep:
                        writer.add_scalar("charts/score", ep["score"], steps)
            obs = nobs
            now_s = time.perf_counter() - start
            if int(now_s) > bar.n:
                bar.update(min(int(now_s), bar.total) - bar.n)
            if steps % 100 < n:
                tm = envs.timing()
                recent = summarize(episodes[-10:])
                bar.set_postfix(
                    {
                        "steps": steps,
                        **({score_key[:10]: round(recent[score_key], 2)} if score_key in recent else {}),
                        "late": tm.get("late_share", 0.0),
                        "grad": learner.grad_steps,
                    }
                )
                if writer is not None and "jitter" in tm:
                    writer.add_scalar("charts/late_share", tm["late_share"], steps)
                    writer.add_scalar("charts/jitter", tm["jitter"], steps)
                    writer.add_scalar("charts/sps", steps / now_s, steps)
            if run_dir is not None and now_s >= next_save:
                next_save += live.save_minutes * 60
                best = _save(run_dir, learner, ck_cfg, episodes, steps, score_key, best)
    finally:
        bar.close()
        learner.halt.set()
        learner.join()
        for env in envs.envs:
            env.sink.release_all()
    learner.check()
    elapsed = time.perf_counter() - start
    live.curve = _curve(episodes, score_key)
    metrics = {
        "steps": steps,
        "minutes": round(elapsed / 60, 3),
        "windows": n,
        "grad_steps": learner.grad_steps,
        "sps": round(steps / elapsed, 2),
        "replay_ratio": round(learner.grad_steps / max(1, steps), 3),
        "weight_versions": learner.version,
        "timing": envs.timing(),
        **summarize(episodes),
        "score_first10": summarize(episodes[:10]).get(score_key),
        "score_last10": summarize(episodes[-10:]).get(score_key),
        **({"dropped_batches": learner.dropped} if algo == "ppo" else {}),
        "curve": live.curve,
    }
    if run_dir is not None:
        _save(run_dir, learner, ck_cfg, episodes, steps, score_key, best)
        save_checkpoint(Path(run_dir) / "checkpoint", net, ck_cfg, {k: v for k, v in metrics.items() if k != "curve"})
        (Path(run_dir) / "curve.json").write_text(
            json.dumps({"score_key": score_key, "curve": live.curve, "episodes": episodes}, indent=1)
        )
    if writer is not None:
        writer.close()
    return metrics


def _act(actor: HakisaNet, obs, algo: str, args, rng, envs, steps: int):
    """The actor's actions: epsilon-greedy on Q (dqn), or sampled from the policy with its log-prob and V (ppo)."""
    with torch.inference_mode():
        o = torch.from_numpy(np.ascontiguousarray(obs))
        if algo == "dqn":
            a = actor.act(o, "q").numpy()
            frac = min(1.0, steps / max(1.0, args.eps_fraction * args.total_steps))
            eps = args.eps_start + (args.eps_end - args.eps_start) * frac
            explore = rng.random(len(a)) < eps
            if explore.any():
                rand = actor.canonical(
                    torch.from_numpy(np.stack([envs.single_action_space.sample() for _ in a]))
                ).numpy()
                a[explore] = rand[explore]
            return a, None, None
        lc, lx, ly, v = actor.policy(o)
        a = actor.pick((lc, lx, ly), sample=True)
        logp, _ = actor.dist_logp_entropy(lc, lx, ly, a)
        return a.numpy(), logp.numpy(), v.numpy()


def _save(run_dir, learner: Learner, cfg: dict, episodes: list, steps: int, score_key: str, best: float) -> float:
    """checkpoint/ now; best/ when the last 10 games beat every earlier 10."""
    with learner.lock:  # the published weights: a consistent copy, whatever the learner is doing
        sd = learner._published
    net = copy.deepcopy(learner.net)
    net.load_state_dict(sd)
    s = summarize(episodes[-10:])
    m = {"steps": steps, **s}
    save_checkpoint(Path(run_dir) / "checkpoint", net, cfg, m)
    if len(episodes) >= 10 and s.get(score_key, -np.inf) > best:
        best = s[score_key]
        save_checkpoint(Path(run_dir) / "best", net, cfg, m)
    return best


def _curve(episodes: list, key: str) -> list:
    """[minute, that minute's mean score (or win rate / return), games] for each minute of play."""
    out = []
    for m in range(int(max((e["minute"] for e in episodes), default=0)) + 1):
        eps = [e for e in episodes if m <= e["minute"] < m + 1]
        if eps:
            out.append([m + 1, round(summarize(eps)[key], 3), len(eps)])
    return out
