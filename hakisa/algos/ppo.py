"""PPO on vector envs with the factorised [command, x, y] action (CleanRL's ppo_atari.py, adapted).

Differences from CleanRL, each for a reason:
- the action is a triple; the clipped surrogate uses the JOINT log-prob log p(c) + m(c)(log p(x) + log p(y)),
  m = input_map.uses_xy, so the ratio is the ratio of the whole action's probabilities;
- observations stay uint8 in the rollout buffer (4x less memory and copying than float32);
- SAME_STEP autoreset: when an episode is cut by a time limit, the value of `info["final_obs"]` is
  bootstrapped into that step's reward (a timeout is not a death);
- the KL early stop breaks out of BOTH the minibatch and the epoch loop;
- optional privileged heads (`critic="state"`, `aux_coef`) for envs that can show their true state
  (`envs.state()`, PettingZoo's name): in training only, the value that scores actions may read it while
  the policy reads pixels (the asymmetric actor-critic of Pinto et al. 2018), and the trunk may learn to
  predict it. They live in `Privileged`, outside the HakisaNet, so a checkpoint never contains them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from hakisa.algos.common import EpisodeStats, RunningMeanStd, native_bf16, setup_torch, start_run, summarize
from hakisa.envs.make import contract
from hakisa.model import HakisaNet, layer_init, save_checkpoint


@dataclass
class Args:
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


class Privileged(nn.Module):
    """Training-only heads that read the env's true state: a critic V(state) and a head that predicts the
    state from the policy's trunk features. Kept out of the HakisaNet, so nothing privileged is saved."""

    def __init__(self, state_dim: int, hidden: int, critic: bool, aux: bool):
        super().__init__()
        mlp = lambda: nn.Sequential(
            layer_init(nn.Linear(state_dim, 256)), nn.ReLU(), layer_init(nn.Linear(256, 256)), nn.ReLU(),
            layer_init(nn.Linear(256, 1), 1.0),
        )
        self.critic = mlp() if critic else None
        self.aux = layer_init(nn.Linear(hidden, state_dim), 1.0) if aux else None

    def value(self, state: torch.Tensor) -> torch.Tensor:
        return self.critic(state).squeeze(1)

    def loss(self, args: "Args", h: torch.Tensor, state: torch.Tensor, ret: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(())
        if self.critic is not None:
            out = out + args.vf_coef * 0.5 * ((self.value(state) - ret) ** 2).mean()
        if self.aux is not None:
            out = out + args.aux_coef * ((self.aux(h) - state) ** 2).mean()
        return out


def privileged_heads(envs, args: Args, hidden: int) -> Privileged | None:
    """The Privileged heads `args` asks for, or None; a clear error when the env cannot show its state."""
    if args.critic not in ("pixels", "state"):
        raise ValueError(f"critic={args.critic!r}: use 'pixels' or 'state'")
    if args.critic == "pixels" and not args.aux_coef:
        return None
    if not callable(getattr(envs, "state", None)):
        raise ValueError(
            f"critic={args.critic!r} / aux_coef={args.aux_coef}: this env has no state() to read the true "
            "state from (a simulator may offer one; a live window never does)"
        )
    dim = int(np.asarray(envs.state()).shape[1])
    return Privileged(dim, hidden, args.critic == "state", args.aux_coef > 0)


def train(envs, args: Args, run_dir: str | Path | None = None, net: HakisaNet | None = None,
          on_update=None) -> dict:
    """Train PPO on a SAME_STEP vector env. Returns metrics; writes run_dir/{config.json, TB, checkpoint, best}.
    on_update(net, metrics), if given, is called after every update (a benchmark's snapshots)."""
    setup_torch(args.threads, args.seed)
    spec, imap = contract(envs)
    n = envs.num_envs
    net = net or HakisaNet(spec, imap, args.encoder, args.hidden)
    net.bf16 = native_bf16() if args.bf16 is None else bool(args.bf16)
    priv = privileged_heads(envs, args, net.hidden)
    params = list(net.parameters()) + (list(priv.parameters()) if priv is not None else [])
    opt = torch.optim.Adam(params, lr=args.lr, eps=1e-5)
    state_of = lambda: torch.from_numpy(np.asarray(envs.state(), np.float32))
    writer = start_run(run_dir, args, {"algo": "ppo", "obs_spec": spec.to_dict(), "input_map": imap.to_dict()})
    batch = n * args.num_steps
    mb_size = batch // args.num_minibatches
    num_updates = max(1, args.total_steps // batch)

    obs_buf = torch.zeros((args.num_steps, n) + spec.shape, dtype=torch.uint8)
    act_buf = torch.zeros((args.num_steps, n, 3), dtype=torch.long)
    logp_buf = torch.zeros((args.num_steps, n))
    rew_buf = torch.zeros((args.num_steps, n))
    done_buf = torch.zeros((args.num_steps, n))
    val_buf = torch.zeros((args.num_steps, n))

    next_obs, _ = envs.reset(seed=args.seed)
    next_obs = torch.from_numpy(np.asarray(next_obs))
    next_state = state_of() if priv is not None else None
    state_buf = torch.zeros((args.num_steps, n, next_state.shape[1])) if priv is not None else None
    next_done = torch.zeros(n)
    ret_acc, ret_rms = np.zeros(n), RunningMeanStd()
    stats, finished, recent = EpisodeStats(n), [], []
    best_score, grad_steps, global_step = -np.inf, 0, 0
    start = time.time()
    info_last: dict = {}
    bar = tqdm(total=num_updates * batch, disable=not args.progress, unit="step", desc="ppo")

    for update in range(1, num_updates + 1):
        if args.max_minutes and time.time() - start > 60 * args.max_minutes:
            break  # out of time: the last checkpoint below was written at the previous update
        if args.anneal_lr:  # to 0 over the step budget, or over the wall-clock budget if that ends first
            frac = 1.0 - (update - 1.0) / num_updates
            if args.max_minutes:
                frac = min(frac, 1.0 - (time.time() - start) / (60 * args.max_minutes))
            opt.param_groups[0]["lr"] = max(frac, 0.0) * args.lr
        # ---- rollout ---------------------------------------------------------------------------
        for step in range(args.num_steps):
            obs_buf[step] = next_obs
            done_buf[step] = next_done
            with torch.inference_mode():
                lc, lx, ly, value = net.policy(next_obs)
                a = net.pick((lc, lx, ly), sample=True)
                logp, _ = net.dist_logp_entropy(lc, lx, ly, a)
                if priv is not None:
                    state_buf[step] = next_state
                    if priv.critic is not None:
                        value = priv.value(next_state)
            act_buf[step], logp_buf[step], val_buf[step] = a, logp, value
            obs, reward, term, trunc, infos = envs.step(a.numpy())
            env_reward = np.asarray(reward, dtype=np.float32)
            reward = env_reward.copy()
            if args.norm_reward:
                ret_acc = ret_acc * args.gamma + env_reward
                ret_rms.update(ret_acc)
                ret_acc[np.logical_or(term, trunc)] = 0.0
                reward = (reward / np.sqrt(ret_rms.var + 1e-8)).astype(np.float32)
            if np.any(trunc & ~term) and "final_obs" in infos:
                # a time-limit cut: bootstrap with V(final obs) rather than treating it as a death
                idx = np.flatnonzero(trunc & ~term & infos.get("_final_obs", trunc))
                if len(idx):
                    # the pixel V head (it learns the same returns as a state critic): the final state is gone
                    fin = torch.from_numpy(np.stack([infos["final_obs"][i] for i in idx]))
                    with torch.inference_mode():  # V is in normalised units, like reward here
                        reward[idx] += args.gamma * net.policy(fin)[3].numpy()
            rew_buf[step] = torch.from_numpy(reward)
            next_obs = torch.from_numpy(np.asarray(obs))
            next_state = state_of() if priv is not None else None
            next_done = torch.from_numpy(np.logical_or(term, trunc).astype(np.float32))
            for ep in stats.update(env_reward, term, trunc, infos):
                finished.append(ep)
                recent.append(ep)
            global_step += n
        bar.update(batch)

        # ---- GAE ---------------------------------------------------------------------------------
        with torch.inference_mode():
            state_critic = priv is not None and priv.critic is not None
            next_value = priv.value(next_state) if state_critic else net.policy(next_obs)[3]
        adv = torch.zeros_like(rew_buf)
        lastgaelam = torch.zeros(n)
        for t in reversed(range(args.num_steps)):
            nonterminal = 1.0 - (next_done if t == args.num_steps - 1 else done_buf[t + 1])
            nextv = next_value if t == args.num_steps - 1 else val_buf[t + 1]
            delta = rew_buf[t] + args.gamma * nextv * nonterminal - val_buf[t]
            lastgaelam = delta + args.gamma * args.gae_lambda * nonterminal * lastgaelam
            adv[t] = lastgaelam
        ret = adv + val_buf

        b_obs, b_act = obs_buf.reshape((-1,) + spec.shape), act_buf.reshape(-1, 3)
        b_logp, b_adv, b_ret, b_val = logp_buf.reshape(-1), adv.reshape(-1), ret.reshape(-1), val_buf.reshape(-1)

        # ---- update ------------------------------------------------------------------------------
        b_state = state_buf.reshape(-1, state_buf.shape[-1]) if priv is not None else None
        u = update_policy(net, opt, args, b_obs, b_act, b_logp, b_adv, b_ret, b_val, mb_size, priv=priv,
                          b_state=b_state)
        grad_steps += u["grad_steps"]
        approx_kl, v_loss, pg_loss = u["approx_kl"], u["v_loss"], u["pg_loss"]
        ent_loss, grad_norm = u["ent_loss"], u["grad_norm"]
        clipfracs = u["clipfracs"]

        # ---- logging / checkpoints ---------------------------------------------------------------
        recent = recent[-100:]
        summ = summarize(recent)
        info_last = {
            "global_step": global_step,
            "update": update,
            "grad_steps": grad_steps,
            "approx_kl": float(approx_kl),
            "value_loss": v_loss.item(),
            "sps": global_step / (time.time() - start),
            **summ,
        }
        if writer is not None:
            for ep in finished:
                writer.add_scalar("charts/episodic_return", ep["return"], global_step)
                writer.add_scalar("charts/episodic_length", ep["length"], global_step)
            if "win_rate" in summ:
                writer.add_scalar("charts/win_rate", summ["win_rate"], global_step)
            if update % args.log_every == 0:
                writer.add_scalar("charts/learning_rate", opt.param_groups[0]["lr"], global_step)
                writer.add_scalar("charts/grad_norm", float(grad_norm), global_step)
                writer.add_scalar("charts/sps", info_last["sps"], global_step)
                writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
                writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
                writer.add_scalar("losses/entropy", ent_loss.item(), global_step)
                writer.add_scalar("losses/approx_kl", float(approx_kl), global_step)
                writer.add_scalar("losses/clipfrac", float(np.mean(clipfracs)), global_step)
        finished = []
        if on_update is not None:
            on_update(net, info_last)
        if summ.get("episodes", 0):
            bar.set_postfix({k: round(summ[k], 3) for k in ("mean_return", "win_rate") if k in summ})
        if run_dir is not None:
            score = summ.get("win_rate", summ.get("mean_return", -np.inf)) if summ.get("episodes", 0) >= 10 else -np.inf
            if score > best_score:
                best_score = score
                save_checkpoint(Path(run_dir) / "best", net, {"algo": "ppo", **asdict(args)}, info_last)
            out_of_time = args.max_minutes and time.time() - start > 60 * args.max_minutes
            if update % args.save_every == 0 or update == num_updates or out_of_time:
                save_checkpoint(Path(run_dir) / "checkpoint", net, {"algo": "ppo", **asdict(args)}, info_last)
    bar.close()
    if writer is not None:
        writer.close()
    info_last["time_s"] = time.time() - start
    return info_last


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
    clipfracs, approx_kl, stop, grad_steps = [], torch.tensor(0.0), False, 0
    for epoch in range(args.update_epochs):
        perm = torch.randperm(batch)
        for s in range(0, batch, mb_size):
            mb = perm[s : s + mb_size]
            h = net.features(b_obs[mb])
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
