"""PPO on vector envs with the factorised [command, x, y] action (CleanRL's ppo_atari.py, adapted).

Differences from CleanRL, each for a reason:
- the action is a triple; the clipped surrogate uses the JOINT log-prob log p(c) + m(c)(log p(x) + log p(y)),
  m = input_map.uses_xy, so the ratio is the ratio of the whole action's probabilities;
- observations stay uint8 in the rollout buffer (4x less memory and copying than float32);
- a minibatch of frames is gathered as rows of the batch laid out channels-last once (`minibatch_frames`);
- SAME_STEP autoreset: when an episode is cut by a time limit, the value of `info["final_obs"]` is
  bootstrapped into that step's reward (a timeout is not a death);
- the KL early stop breaks out of BOTH the minibatch and the epoch loop;
- optional privileged heads (`critic="state"`, `aux_coef`) for envs that can show their true state
  (hakisa/algos/privileged.py), outside the HakisaNet, so a checkpoint never contains them.

The pieces it composes, each a file of its own and shared with the Ray trainer (hakisa/algos/ppo_ray.py):
`Rollout` (hakisa/algos/ppo_rollout.py: collection, reward normalisation, the time-limit bootstrap),
`Recorder` (hakisa/algos/ppo_recorder.py: metrics, TensorBoard, checkpoint/ and best/), `Privileged`.
Read here, top to bottom: Args, GAE, the lr schedule, `train` (the loop), the minibatch gather, the update.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

from hakisa.algos.common import native_bf16, setup_torch
from hakisa.algos.ppo_recorder import Recorder
from hakisa.algos.ppo_rollout import Rollout
from hakisa.algos.privileged import Privileged, privileged_heads
from hakisa.envs.make import contract
from hakisa.model import HakisaNet


@dataclass
class Args:
    """The PPO learner's settings (`train(envs, args)`; also the live `PPOLearner` and the Ray trainer).

    `hakisa train --set KEY=VALUE` and a game file's train recipe set them; each field's docstring below is its
    help, listed by `hakisa train --help`. Saved in the run's config.json."""

    total_steps: int = 1_000_000
    """total env steps (summed over the vector envs)"""
    num_steps: int = 128
    """steps per env per rollout"""
    lr: float = 2.5e-4
    """Adam learning rate"""
    anneal_lr: bool = True
    """linearly anneal the learning rate to 0 over training (over max_minutes when that budget is set and
    ends first: measured on the duel, a 30-min run still at full lr reached 82% on normal)"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    update_epochs: int = 4
    """epochs over each rollout"""
    norm_adv: bool = True
    """normalise advantages per minibatch"""
    clip_coef: float = 0.1
    """surrogate clipping coefficient"""
    clip_vloss: bool = False
    """clip the value loss around the old values (CleanRL's Atari default; it assumes rewards clipped to
    [-1, 1]: with returns of tens it holds V back to clip_coef per update, so it is off by default)"""
    norm_reward: bool = True
    """divide rewards by a running std of the discounted return (Gymnasium's NormalizeReward), so the
    value head sees O(1) targets whatever the game's reward scale"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    critic: str = "pixels"
    """what scores the actions: "pixels" (the net's own V head) or "state" (an MLP on the env's true state,
    `envs.state()`, training only). The policy always sees pixels; the checkpoint's V head still learns the
    same returns, so a saved agent needs no state to play or to go on learning"""
    aux_coef: float = 0.0
    """weight of an auxiliary loss in training: predict the env's true state (`envs.state()`) from the trunk"""
    target_kl: float | None = None
    """stop the update (all remaining epochs) once the approx KL exceeds this; None: never"""
    seed: int = 0
    """torch/numpy seed (the env's seed is given where it is made)"""
    encoder: str = "small"
    """encoder: small | nature | torchvision:<name>"""
    hidden: int = 256
    """trunk width"""
    threads: int = 0
    """torch threads; 0: one per core up to 2"""
    bf16: bool | None = False
    """run the encoder's convolutions in bfloat16 autocast (faster on CPUs with AMX/AVX512-BF16);
    None: where this CPU has native bf16 (the duel recipe's choice)"""
    save_every: int = 50
    """save runs/<name>/checkpoint every this many updates (and at the end)"""
    log_every: int = 1
    """write TensorBoard losses every this many updates"""
    max_minutes: float = 0.0
    """wall-clock training budget in minutes; 0: none (stop at the step/generation count)"""
    progress: bool = True
    """show a tqdm progress bar"""


@dataclass
class LiveArgs(Args):
    """PPO on a live window (`hakisa train` where the game has no simulator, or `--live`), where it most often
    starts from a studied clone: a small step (lr 5e-5, a KL stop at 0.03), two minibatches of the 128-step
    batch of each window (8.5 s of play at 15 Hz) and no entropy bonus, so that the first updates keep the clone's
    score (on Pop, lr 1e-4 with 64-step batches halved it: benchmarks/README.md). A game file's
    `train.live.ppo` entry and `--set` override these."""

    lr: float = 5e-5
    num_minibatches: int = 2
    ent_coef: float = 0.0
    target_kl: float | None = 0.03


def gae(rew, val, done, next_value, next_done, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns over [T, n] buffers; done[t]: the obs at t began a
    new episode, next_done: the obs after the last step did."""
    adv = torch.zeros_like(rew)
    lastgaelam = torch.zeros(rew.shape[1])
    last = len(rew) - 1
    for t in reversed(range(len(rew))):
        nonterminal = 1.0 - (next_done if t == last else done[t + 1])
        nextv = next_value if t == last else val[t + 1]
        delta = rew[t] + gamma * nextv * nonterminal - val[t]
        lastgaelam = delta + gamma * lam * nonterminal * lastgaelam
        adv[t] = lastgaelam
    return adv, adv + val


def anneal(opt, args: Args, update: int, num_updates: int, elapsed: float) -> None:
    """Linear lr decay to 0 over the step budget, or over the wall-clock budget if that ends first."""
    if args.anneal_lr:
        frac = 1.0 - (update - 1.0) / num_updates
        if args.max_minutes:
            frac = min(frac, 1.0 - elapsed / (60 * args.max_minutes))
        opt.param_groups[0]["lr"] = max(frac, 0.0) * args.lr


def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None,
          on_update=None, resume: bool = False) -> dict:
    """Train PPO on a SAME_STEP vector env. Returns metrics; writes run_dir/{config.json, TB, checkpoint, best}.
    on_update(net, metrics), if given, is called after every update (a benchmark's snapshots, a sweep's
    evaluations); its time is not charged to max_minutes, and returning True ends training there.
    resume: continue run_dir's checkpoint/ (weights, optimizer, counters, minutes spent) within the same budget."""
    setup_torch(args.threads, args.seed)
    spec, imap = contract(envs)
    n = envs.num_envs
    net = net or HakisaNet(spec, imap, args.encoder, args.hidden)
    net.bf16 = native_bf16() if args.bf16 is None else bool(args.bf16)
    priv = privileged_heads(envs, args, net.hidden)
    params = list(net.parameters()) + (list(priv.parameters()) if priv is not None else [])
    opt = torch.optim.Adam(params, lr=args.lr, eps=1e-5)
    roll = Rollout(envs, args, priv)
    if resume and priv is not None:
        raise SystemExit("hakisa train --resume: a run with privileged heads cannot resume (they are not saved)")
    rec = Recorder(run_dir, args, {"algo": "ppo", "obs_spec": spec.to_dict(), "input_map": imap.to_dict()},
                   resume=resume)
    rec.opt = opt
    batch = n * args.num_steps
    mb_size = batch // args.num_minibatches
    num_updates = max(1, args.total_steps // batch)
    first, global_step = rec.resume(net, opt) if resume else (1, 0)
    info_last: dict = {}
    # with a time budget the step cap is only a cap (the CLI sets it huge): no total, so no false ETA
    bar = tqdm(total=None if args.max_minutes else num_updates * batch, disable=not args.progress, unit="step",
               desc="ppo")
    bar.update(global_step)
    for update in range(first, num_updates + 1):
        if rec.out_of_time():
            break  # out of time: the last checkpoint below was written at the previous update
        anneal(opt, args, update, num_updates, rec.elapsed())
        finished = roll.collect(net)
        global_step += batch
        bar.update(batch)
        adv, ret = gae(roll.rew, roll.val, roll.done, roll.next_value(net), roll.next_done, args.gamma,
                       args.gae_lambda)
        b_state = roll.state.reshape(-1, roll.state.shape[-1]) if priv is not None else None
        u = update_policy(net, opt, args, roll.obs.flatten(0, 1), roll.act.reshape(-1, 3),
                          roll.logp.reshape(-1), adv.reshape(-1), ret.reshape(-1), roll.val.reshape(-1), mb_size,
                          priv=priv, b_state=b_state)
        info_last = rec.record(net, opt, update, global_step, u, finished)
        if on_update is not None:
            t_hook = time.time()
            stop = on_update(net, info_last)
            rec.start += time.time() - t_hook  # an observer's time (a sweep's evaluations) is not training time
            if stop is True:  # the observer says it has seen enough (distill's teacher reached its target)
                rec.save(net, update, info_last, last=True)
                break
        if info_last.get("episodes", 0):
            bar.set_postfix({k: round(info_last[k], 3) for k in ("mean_return", "win_rate") if k in info_last})
        rec.save(net, update, info_last, last=update == num_updates)
    bar.close()
    rec.close()
    info_last.update(time_s=rec.elapsed(), threads=torch.get_num_threads())
    return info_last


def minibatch_frames(b_obs: torch.Tensor):
    """A function mb -> b_obs[mb], fast for frame batches. The encoder wants channels-last frames, so the
    batch is laid out channels-last ONCE, as one row per frame (a view when it already is, else one copy);
    a minibatch is then a row gather plus a free re-view. Measured on a 2048-frame 4x90x160 uint8 rollout,
    2 threads: `b_obs[mb]` and the encoder's own layout change took 50 ms per 512-frame minibatch (800 ms
    of an update's 16, a quarter of a bf16 update); this takes 5.6 ms each plus one 150 ms copy, or no copy
    where the batch is channels-last already (`Rollout` stores it so). Vector observations pass as they are."""
    if b_obs.dim() != 4:
        return lambda mb: b_obs.index_select(0, mb)
    n, c, h, w = b_obs.shape
    rows = b_obs.permute(0, 2, 3, 1).reshape(n, h * w * c)
    return lambda mb: rows.index_select(0, mb).view(len(mb), h, w, c).permute(0, 3, 1, 2)


def update_policy(
    net: HakisaNet, opt, args: Args, b_obs, b_act, b_logp, b_adv, b_ret, b_val, mb_size: int, aux_loss=None,
    priv: Privileged | None = None, b_state=None,
) -> dict:
    """PPO's update on one batch of rollouts: `update_epochs` passes of clipped-surrogate minibatches,
    ended early (all remaining epochs) once the approx KL passes `target_kl`. Shared by `train` and by
    `hakisa consolidate --algo ppo`, which feeds it explored episodes from an episode store.
    aux_loss: a callable returning a loss added to every minibatch's (live learning's cloning term).
    priv, b_state: the Privileged heads and the true states of the batch (their losses join each minibatch's)."""
    batch = len(b_act)
    take = minibatch_frames(b_obs)
    clipfracs, approx_kl, stop, grad_steps = [], torch.tensor(0.0), False, 0
    for epoch in range(args.update_epochs):
        perm = torch.randperm(batch)
        for s in range(0, batch, mb_size):
            mb = perm[s : s + mb_size]
            h = net.features(take(mb))
            lc, lx, ly, newv = net.policy_heads(h)
            newlogp, ent = net.dist_logp_entropy(lc, lx, ly, b_act[mb])
            logratio = newlogp - b_logp[mb]
            ratio = logratio.exp()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean()  # Schulman's k3 estimator
                clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())
            mb_adv = b_adv[mb]
            if args.norm_adv:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
            if args.clip_vloss:
                v_clipped = b_val[mb] + (newv - b_val[mb]).clamp(-args.clip_coef, args.clip_coef)
                v_loss = 0.5 * torch.max((newv - b_ret[mb]) ** 2, (v_clipped - b_ret[mb]) ** 2).mean()
            else:
                v_loss = 0.5 * ((newv - b_ret[mb]) ** 2).mean()
            ent_loss = ent.mean()
            loss = pg_loss - args.ent_coef * ent_loss + args.vf_coef * v_loss
            if aux_loss is not None:
                loss = loss + aux_loss()
            if priv is not None:
                loss = loss + priv.loss(args, h, b_state[mb], b_ret[mb])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            params = list(net.parameters()) + (list(priv.parameters()) if priv is not None else [])
            grad_norm = nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            opt.step()
            grad_steps += 1
            if args.target_kl is not None and approx_kl.item() > args.target_kl:
                stop = True
                break  # out of the minibatch loop...
        if stop:
            break  # ...and out of the epoch loop: no more updates on this rollout
    return {
        "grad_steps": grad_steps,
        "approx_kl": approx_kl,
        "v_loss": v_loss,
        "pg_loss": pg_loss,
        "ent_loss": ent_loss,
        "grad_norm": grad_norm,
        "clipfracs": clipfracs,
        "stopped_early": stop,
    }
