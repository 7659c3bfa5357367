"""Learning by cheating: a teacher that reads the simulator's true state, then a pixel student that imitates
it wherever the student itself goes (Chen et al. 2019, "Learning by Cheating"; DAgger, Ross et al. 2011).

Why two stages. From pixels, PPO on the duel needs ~5M steps (30 min on 2 cores) to beat Normal 90 %: the
conv net must find the fight's few numbers in the frames while the reward says what to do with them. On
the true state (`envs.state()`, 30 numbers) PPO needs ~1M steps of a 128-wide MLP, each step ~10x
cheaper. Then the pixel net has a supervised target on every frame (the teacher's action probabilities),
not a noisy return, and it learns from a few hundred thousand frames (measured: benchmarks/README.md).

1. teacher: `hakisa.algos.ppo.train` on `StateObs(envs)` with a `StateNet` (MLP actor and critic), until
   its rolling training win rate reaches `teacher_target` or it has spent `teacher_frac` of the budget.
2. student: the HakisaNet plays (the teacher's own actions mixed in for the first `beta_steps`, so early
   frames show good play); every frame is labelled with the teacher's action probabilities and value, and
   the student's policy heads learn them (cross-entropy), its V head the teacher's value (squared error),
   from a replay of the latest `buffer_size` frames.

The checkpoint is the student alone, an ordinary pixel agent: `hakisa play` (the page, through the screen),
`hakisa train --init` and PPO go on from it, and nothing at play time reads the state. The teacher is saved
beside it (teacher/, safetensors + JSON) to inspect it or to train another student (`teacher_init`).
Any env with a `state()` method can be distilled this way (PettingZoo's name for a global state a learner
may see in training); its columns should be roughly unit-scaled, as the duel's are. The teacher should see
only what the screen shows (`teacher_drop` names the rest): on the duel, a teacher that also read the boss's
hidden cooldown gave one seed labels its student could follow only to 74 % (97 % without them).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from hakisa.algos import ppo
from hakisa.algos.common import EpisodeStats, native_bf16, setup_torch, start_run, summarize
from hakisa.envs.make import contract
from hakisa.input_map import InputMap
from hakisa.model import FactorisedPolicy, HakisaNet, layer_init, save_checkpoint


@dataclass
class Args:
    """The distill learner's settings (`train(envs, args)`): the state teacher's PPO stage, then the pixel student.

    `hakisa train --set KEY=VALUE` and a game file's train recipe set them; each field's docstring below is its
    help, listed by `hakisa train --help`. Saved in the run's config.json."""

    total_steps: int = 3_000_000
    """env steps of both stages together"""
    max_minutes: float = 0.0
    """wall-clock budget of both stages in minutes; 0: none"""
    teacher_frac: float = 0.7
    """the share of the budget (steps and minutes) the teacher may use at most; the student gets the rest"""
    teacher_target: float = 0.95
    """the teacher stops once its win rate over its last 100 training episodes reaches this (an env that
    reports no winner: the budget split decides)"""
    teacher_init: str = ""
    """a teacher/ directory a previous run saved: skip stage 1 and train a student from it"""
    teacher_drop: str = ""
    """comma-separated state columns (by the env's `state_names`) the teacher must not see: what the screen
    does not show. A teacher that acts on hidden numbers gives labels no pixel student can follow"""
    teacher_hidden: int = 128
    """width of the teacher's two MLPs (actor and critic)"""
    teacher_lr: float = 2e-3
    """the teacher's Adam learning rate (constant)"""
    teacher_num_steps: int = 64
    """the teacher's PPO steps per env per rollout"""
    teacher_epochs: int = 4
    """the teacher's PPO epochs per rollout"""
    teacher_clip: float = 0.2
    """the teacher's PPO clip coefficient"""
    student_target: float = 0.0
    """stop once the student's own win rate over its last 100 training episodes reaches this (0: play the
    budget out): a run then ends on what it learned, and a busy machine only makes it slower"""
    lr: float = 5e-4
    """the student's Adam learning rate"""
    num_steps: int = 32
    """student steps per env between learning phases"""
    beta_steps: int = 100_000
    """student env steps over which the share of the teacher's own actions decays from 1 to 0"""
    batch_size: int = 256
    """student minibatch size"""
    replay_ratio: float = 1.0
    """student frames learned per frame played"""
    buffer_size: int = 32_768
    """frames the student learns from (the latest ones)"""
    vf_coef: float = 0.5
    """weight of the student's value loss (its V head learns the teacher's value)"""
    max_grad_norm: float = 1.0
    """global gradient-norm clip of the student"""
    seed: int = 0
    """torch/numpy seed (the env's seed is given where it is made)"""
    encoder: str = "small"
    """the student's encoder: small | nature | torchvision:<name>"""
    hidden: int = 256
    """the student's trunk width"""
    threads: int = 0
    """torch threads; 0: one per core up to 2"""
    bf16: bool | None = False
    """the student's convolutions in bfloat16 autocast; None: where this CPU has native bf16"""
    save_every: int = 50
    """save runs/<name>/checkpoint every this many student iterations (and at the end)"""
    progress: bool = True
    """show tqdm progress bars"""


class StateNet(FactorisedPolicy, nn.Module):
    """The teacher: an MLP actor (command, x, y heads) and an MLP critic over a state vector, with the
    interface `hakisa.algos.ppo` trains (features, policy_heads, policy, pick, dist_logp_entropy)."""

    def __init__(self, columns: list[str], input_map: InputMap, hidden: int = 128):
        super().__init__()
        self.columns, self.input_map, self.hidden = list(columns), input_map, int(hidden)
        state_dim = len(self.columns)

        def mlp(out: int, std: float) -> nn.Sequential:  # tanh MLPs: CleanRL's choice for vector observations
            return nn.Sequential(layer_init(nn.Linear(state_dim, hidden)), nn.Tanh(),
                                 layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
                                 layer_init(nn.Linear(hidden, out), std))

        n_cmd, nx, ny = (int(v) for v in input_map.nvec)
        self.sizes = (n_cmd, nx, ny)
        self.actor, self.critic = mlp(n_cmd + nx + ny, 0.01), mlp(1, 1.0)
        self.register_buffer("uses_xy", torch.as_tensor(input_map.uses_xy, dtype=torch.bool), persistent=False)

    def features(self, state: torch.Tensor) -> torch.Tensor:
        return state.float()

    def policy_heads(self, h: torch.Tensor):
        cmd, x, y = self.actor(h).split(self.sizes, 1)
        return cmd, x, y, self.critic(h).squeeze(1)

    def policy(self, state: torch.Tensor):
        return self.policy_heads(self.features(state))

    def save(self, dir: Path) -> None:
        dir.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(dir / "model.safetensors"))
        doc = {"format": "hakisa-state-teacher", "columns": self.columns, "hidden": self.hidden,
               "input_map": self.input_map.to_dict()}
        (dir / "config.json").write_text(json.dumps(doc, indent=1))

    @classmethod
    def load(cls, dir: str | Path, input_map: InputMap, columns: list[str]) -> "StateNet":
        dir = Path(dir)
        doc = json.loads((dir / "config.json").read_text())
        if doc.get("format") != "hakisa-state-teacher":
            raise ValueError(f"{dir} is not a state teacher (config.json format {doc.get('format')!r})")
        if doc["columns"] != list(columns) or not InputMap.from_dict(doc["input_map"]).same_as(input_map):
            raise ValueError(f"teacher {dir} was trained on state columns {doc['columns']} with input map "
                             f"{doc['input_map']['name']!r}; this env gives {list(columns)}, map {input_map.name!r}")
        net = cls(doc["columns"], input_map, int(doc["hidden"]))
        net.load_state_dict(load_file(str(dir / "model.safetensors")))
        return net


class StateObs:
    """A vector env seen through its true state: obs = `envs.state()` (float32 [n, D]) less the `drop`
    columns (named by `envs.state_names`); rewards, ends and infos as the env's. The final obs of a
    finished episode is not kept (its state is gone after the autoreset), so a time-limit cut is not
    bootstrapped: the teacher treats it as an end."""

    def __init__(self, envs, drop: str = ""):
        self.envs, self.num_envs = envs, envs.num_envs
        self.obs_spec, self.input_map = contract(envs)
        dim = np.asarray(envs.state()).shape[1]
        names = list(getattr(envs, "state_names", None) or [f"s{i}" for i in range(dim)])
        dropped = [c.strip() for c in drop.split(",") if c.strip()]
        unknown = sorted(set(dropped) - set(names))
        if unknown:
            raise ValueError(f"teacher_drop: {unknown} are not state columns of this env; it has {names}")
        self.keep = [i for i, c in enumerate(names) if c not in dropped]
        self.names = [names[i] for i in self.keep]
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (len(self.keep),), np.float32)

    def state(self) -> np.ndarray:
        return np.asarray(self.envs.state(), np.float32)[:, self.keep]

    def reset(self, **kw):
        _, info = self.envs.reset(**kw)
        return self.state(), info

    def step(self, actions):
        _, reward, term, trunc, info = self.envs.step(actions)
        info = {k: v for k, v in info.items() if k not in ("final_obs", "_final_obs")}
        return self.state(), reward, term, trunc, info


def distill_loss(net: HakisaNet, obs: torch.Tensor, t_logits: list[torch.Tensor], t_value: torch.Tensor,
                 vf_coef: float) -> torch.Tensor:
    """Cross-entropy from the teacher's action distribution to the student's, per head; the x and y heads
    weigh by the teacher's probability of a command that uses them; plus the value's squared error."""
    cmd, x, y, v = net.policy(obs)
    p_cmd = F.softmax(t_logits[0], 1)
    w_xy = (p_cmd * net.uses_xy.float()).sum(1)
    ce = [-(F.softmax(t, 1) * F.log_softmax(s, 1)).sum(1) for t, s in zip(t_logits, (cmd, x, y))]
    return (ce[0] + w_xy * (ce[1] + ce[2])).mean() + vf_coef * ((v - t_value) ** 2).mean()


class _Budget:
    """Steps and minutes used so far, minus an observer's time (on_update hooks), as ppo.train counts them."""

    def __init__(self, args: Args):
        self.args, self.start, self.steps = args, time.time(), 0

    def elapsed(self) -> float:
        return time.time() - self.start

    def left(self) -> bool:
        a = self.args
        return self.steps < a.total_steps and not (a.max_minutes and self.elapsed() > 60 * a.max_minutes)


def train_teacher(senv: StateObs, args: Args, budget: _Budget, writer, on_stage=None) -> tuple[StateNet, dict]:
    """Stage 1: PPO on the true state, stopped at teacher_target or at teacher_frac of the budget. An env with
    a `state_only` switch (the duel's) skips its pixels meanwhile: the teacher reads none."""
    teacher = StateNet(senv.names, senv.input_map, args.teacher_hidden)
    targs = ppo.Args(total_steps=int(args.total_steps * args.teacher_frac),
                     max_minutes=args.max_minutes * args.teacher_frac, lr=args.teacher_lr, anneal_lr=False,
                     num_steps=args.teacher_num_steps,
                     update_epochs=args.teacher_epochs, clip_coef=args.teacher_clip, seed=args.seed,
                     threads=args.threads, progress=args.progress, bf16=False)

    def hook(_, m: dict) -> bool:
        if writer is not None and "win_rate" in m:
            writer.add_scalar("teacher/win_rate", m["win_rate"], m["global_step"])
        if on_stage is not None:
            on_stage("teacher", m)
        return m.get("episodes", 0) >= 100 and m.get("win_rate", -1.0) >= args.teacher_target

    pixels = hasattr(senv.envs, "state_only")
    if pixels:
        senv.envs.state_only = True
    try:
        m = ppo.train(senv, targs, None, net=teacher, on_update=hook)
    finally:
        if pixels:
            senv.envs.state_only = False
    budget.steps += m.get("global_step", 0)
    return teacher, m


class _Replay:
    """Stage 2's data: the latest `cap` frames the student saw, each with the teacher's logits and value."""

    def __init__(self, cap: int, shape: tuple, sizes):
        self.cap, self.filled, self.ptr = cap, 0, 0
        self.obs = torch.zeros((cap,) + shape, dtype=torch.uint8)
        self.logits = [torch.zeros(cap, k) for k in sizes]
        self.value = torch.zeros(cap)

    def add(self, o: torch.Tensor, logits, value: torch.Tensor) -> None:
        n = len(o)
        idx = (self.ptr + torch.arange(n)) % self.cap
        self.obs[idx] = o
        for buf, t in zip(self.logits, logits):
            buf[idx] = t
        self.value[idx] = value
        self.ptr, self.filled = (self.ptr + n) % self.cap, min(self.cap, self.filled + n)

    def sample(self, batch_size: int, gen: torch.Generator):
        mb = torch.randint(0, self.filled, (batch_size,), generator=gen)
        return self.obs[mb], [b[mb] for b in self.logits], self.value[mb]


def _play(envs, net: HakisaNet, teacher, view, replay: _Replay, obs, state, beta: float, gen, stats, steps: int):
    """`steps` steps of the student (the teacher's own action in a beta share of the envs), every frame
    labelled with the teacher's logits and value into the replay. Returns (obs, state, finished episodes)."""
    n, finished = envs.num_envs, []
    for _ in range(steps):
        o = torch.from_numpy(np.asarray(obs))
        with torch.inference_mode():
            *tl, tv = teacher.policy(state)
            a = net.pick(net.policy(o)[:3], sample=True, generator=gen)
            if beta > 0:  # the teacher's own action in a beta share of the envs
                mine = torch.rand(n, generator=gen) < beta
                a = torch.where(mine[:, None], teacher.pick(tl, sample=True, generator=gen), a)
        replay.add(o, tl, tv)
        obs, reward, term, trunc, infos = envs.step(a.numpy())
        state = torch.from_numpy(view.state())
        finished += stats.update(np.asarray(reward), term, trunc, infos)
    return obs, state, finished


def _learn(net: HakisaNet, opt, replay: _Replay, args: Args, gen, grad_steps: int) -> torch.Tensor:
    for _ in range(grad_steps):
        loss = distill_loss(net, *replay.sample(args.batch_size, gen), args.vf_coef)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), args.max_grad_norm)
        opt.step()
    return loss


def _teacher(view, imap, args: Args, budget, writer, run_dir, observe):
    """Stage 1, or the teacher `teacher_init` names: (the teacher, ready to label, its training metrics)."""
    if args.teacher_init:
        teacher, tm = StateNet.load(args.teacher_init, imap, view.names), {}
    else:
        teacher, tm = train_teacher(view, args, budget, writer,
                                    lambda stage, m: observe(stage, {"global_step": m["global_step"],
                                                                     "teacher_win_rate": m.get("win_rate")}))
        if run_dir is not None:
            teacher.save(run_dir / "teacher")
    teacher.eval()
    return teacher, tm


def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None,
          on_update=None) -> dict:
    """Distil a state teacher into a pixel student on a SAME_STEP vector env with a `state()` method.
    Returns metrics; writes run_dir/{config.json, TensorBoard, teacher/, checkpoint/, best/}.
    on_update(net, metrics) is called after every teacher update and every student iteration with the
    student (a benchmark's win-rate-against-time snapshots); its time is not charged to max_minutes."""
    if not callable(getattr(envs, "state", None)):
        raise ValueError(f"distill needs an env with a state() method (its true state, for the teacher); {envs} has "
                         "none. Train from pixels with --algo ppo or dqn instead")
    setup_torch(args.threads, args.seed)
    spec, imap = contract(envs)
    net = net or HakisaNet(spec, imap, args.encoder, args.hidden)
    net.bf16 = native_bf16() if args.bf16 is None else bool(args.bf16)
    run_dir = Path(run_dir) if run_dir is not None else None
    writer = start_run(run_dir, args, {"algo": "distill", "obs_spec": spec.to_dict(), "input_map": imap.to_dict()})
    budget = _Budget(args)
    info: dict = {}

    def observe(stage: str, m: dict):  # the caller's hook sees the student (unchanged while the teacher trains)
        if on_update is not None:
            t = time.time()
            on_update(net, {**m, "stage": stage, "global_step": budget.steps + m.get("global_step", 0)})
            budget.start += time.time() - t

    view = StateObs(envs, args.teacher_drop)
    teacher, tm = _teacher(view, imap, args, budget, writer, run_dir, observe)
    info.update({"teacher_steps": tm.get("global_step", 0), "teacher_win_rate": tm.get("win_rate"),
                 "teacher_s": round(budget.elapsed(), 1)})

    # ---- stage 2: DAgger --------------------------------------------------------------------------------
    n = envs.num_envs
    replay = _Replay(args.buffer_size, spec.shape, teacher.sizes)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-5)
    gen = torch.Generator().manual_seed(args.seed)
    stats, recent = EpisodeStats(n), []
    obs, _ = envs.reset(seed=args.seed + 1)
    state = torch.from_numpy(view.state())
    s_steps, it, best = 0, 0, -np.inf
    grad_steps = max(1, round(args.replay_ratio * n * args.num_steps / args.batch_size))
    bar = tqdm(total=None if args.max_minutes else max(0, args.total_steps - budget.steps),  # as ppo's bar
               disable=not args.progress, unit="step", desc="student")
    while budget.left():
        beta = max(0.0, 1.0 - s_steps / args.beta_steps) if args.beta_steps else 0.0
        obs, state, finished = _play(envs, net, teacher, view, replay, obs, state, beta, gen, stats, args.num_steps)
        if beta == 0:  # the student's own play (an episode begun under beta > 0 ends within a fight's length)
            recent = (recent + finished)[-100:]
        s_steps += n * args.num_steps
        budget.steps += n * args.num_steps
        bar.update(n * args.num_steps)
        loss = _learn(net, opt, replay, args, gen, grad_steps)
        it += 1
        info.update({"global_step": budget.steps, "student_steps": s_steps, "iteration": it, "beta": beta,
                     "loss": loss.item(), "sps": budget.steps / budget.elapsed(), **summarize(recent)})
        if writer is not None:
            writer.add_scalar("losses/distill_loss", loss.item(), budget.steps)
            writer.add_scalar("charts/beta", beta, budget.steps)
            if "win_rate" in info:
                writer.add_scalar("charts/win_rate", info["win_rate"], budget.steps)
        if "win_rate" in info:
            bar.set_postfix(win_rate=round(info["win_rate"], 3), beta=round(beta, 2))
        observe("student", {**info, "global_step": 0})
        if run_dir is not None:
            score = info.get("win_rate", info.get("mean_return", -np.inf)) if len(recent) >= 10 else -np.inf
            if score > best:
                best = score
                save_checkpoint(run_dir / "best", net, {"algo": "distill", **asdict(args)}, info)
            if it % args.save_every == 0:
                save_checkpoint(run_dir / "checkpoint", net, {"algo": "distill", **asdict(args)}, info)
        if args.student_target and len(recent) >= 100 and info.get("win_rate", -1.0) >= args.student_target:
            info["stopped"] = "student_target"
            break
    bar.close()
    info.update(time_s=budget.elapsed(), threads=torch.get_num_threads())
    if run_dir is not None:
        save_checkpoint(run_dir / "checkpoint", net, {"algo": "distill", **asdict(args)}, info)
    if writer is not None:
        writer.close()
    return info
