"""`hakisa study DATASET --out runs/<name>`: behaviour cloning from recorded episodes.

    hakisa study datasets/me --out runs/me-bc                     # train, early-stop, checkpoint
    hakisa study datasets/me --out runs/me-bc --eval-episodes 50  # ... then fight the duel sim with it
    hakisa study datasets/me --init pretrained:duel-perception     # duel: start from an encoder that can see

A few dozen fights are ~10-30k labelled frames, too few to learn both to SEE (where the boss is, how far
its wind-up has gone) and to DECIDE. `--init` takes the encoder and trunk of another checkpoint, e.g.
the one `hakisa duel perception` trained to read the duel's true state off sim frames (state labels,
never actions), and fine-tunes everything; `--freeze` keeps those layers fixed instead.

The factorised heads are trained with cross-entropy: the command head always, the x/y heads only where
the recorded command uses them (`input_map.uses_xy`), so keyboard-only steps teach the pointer nothing.
People mostly press nothing, so plain cross-entropy learns "noop" first and often only that. `--balance`
counters it: `sqrt` (default) weights each command by 1/sqrt(frequency), `inverse` by 1/frequency,
`resample` draws minibatches with those inverse-frequency odds, `none` leaves the data as it is.
Validation holds out whole EPISODES (neighbouring frames are near-copies; a frame split would leak) and
reports per-head accuracy plus the command head's balanced accuracy (mean per-class recall), which a
noop-only agent cannot fake. Early stopping watches the validation loss; `best/` keeps the best epoch,
`checkpoint/` the last, both normal Hakisa checkpoints (`hakisa.model.load_checkpoint`).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class StudyArgs:
    dataset: str  # episode store directory (hakisa record / explore / play)
    out: str = "runs/study"  # run directory: config.json, TensorBoard events, best/, checkpoint/
    stack: int = 0  # frames per observation; 0 = the dataset's obs spec
    stack_stride: int = 1  # stack every Nth recorded frame; every frame is still a labelled sample. A 60 fps
    # recording with stride 4 gives the 4-tick spacing of a 15 Hz stack (the duel recipe's) and a label per tick
    encoder: str = "small"  # "small" | "nature" | "torchvision:<name>"
    hidden: int = 256  # trunk width
    init: str = ""  # start the encoder + trunk from this checkpoint (e.g. `hakisa duel perception`'s)
    freeze: str = "none"  # keep pretrained layers fixed: "none" | "encoder" | "trunk" (encoder and trunk)
    lr: float = 3e-4  # Adam learning rate
    weight_decay: float = 1e-4  # a little L2: a few fights are a small dataset
    batch_size: int = 64  # minibatch size
    epochs: int = 30  # at most this many passes over the training episodes
    steps_per_epoch: int = 0  # 0 = one pass over the training transitions per epoch
    patience: int = 4  # stop after this many epochs without a better validation loss
    val_fraction: float = 0.2  # share of EPISODES held out for validation
    balance: str = "sqrt"  # noop imbalance: "none" | "sqrt" | "inverse" | "resample"
    label_lag: float = 0.0  # seconds: label each frame with the keys held this long BEFORE its grab (the game's
    # key -> pixels round trip; keyboard maps only, re-derived from the raw key log; see Transitions.relabel)
    seed: int = 0  # split, init and sampling seed
    threads: int = 0  # torch threads (0: up to 2)
    eval_episodes: int = 0  # after training, fight the duel sim this many times (duel datasets only)
    eval_tier: str = "normal"  # the sim tier to evaluate against
    eval_deterministic: bool = False  # argmax actions instead of sampling in the evaluation
    eval_action_delay: int = 0  # sim ticks between a decision and its effect (a live page's lag: ~6, see DuelEnv)
    eval_decision_ticks: int = 0  # sim ticks between the clone's decisions; 0 = the dataset's frame period.
    # 1 = decide every tick (frames still stacked at the dataset's spacing): a recording samples a person, who
    # presses keys at ANY tick, at random phases, so its clone is a per-tick policy (see evaluate_duel)
    progress: bool = True  # tqdm bars


def class_weights(counts: np.ndarray, mode: str) -> np.ndarray:
    """Per-command loss weights with mean 1 over the samples; unseen commands get 0 (nothing to learn)."""
    counts = np.asarray(counts, np.float64)
    seen = counts > 0
    w = np.zeros_like(counts)
    if mode in ("none", "resample"):
        w[seen] = 1.0
    elif mode == "sqrt":
        w[seen] = 1.0 / np.sqrt(counts[seen])
    elif mode == "inverse":
        w[seen] = 1.0 / counts[seen]
    else:
        raise ValueError(f"unknown balance mode {mode!r}: none | sqrt | inverse | resample")
    return w * counts.sum() / max((w * counts).sum(), 1e-12)


def bc_loss(net, batch: dict, weights: torch.Tensor, uses_xy: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Cross-entropy on the command head (class-weighted) + x/y heads where the command uses them."""
    obs, act = batch["obs"], batch["actions"]
    cmd, x, y, _ = net.policy(obs)
    w = weights[act[:, 0]]
    loss_cmd = (F.cross_entropy(cmd, act[:, 0], reduction="none") * w).sum() / w.sum().clamp_min(1e-8)
    m = uses_xy[act[:, 0]].float()
    loss_xy = torch.zeros((), device=obs.device)
    if m.sum() > 0:  # masked mean: keyboard steps contribute exactly nothing to the pointer heads
        lxy = F.cross_entropy(x, act[:, 1], reduction="none") + F.cross_entropy(y, act[:, 2], reduction="none")
        loss_xy = (lxy * m).sum() / m.sum()
    return loss_cmd + loss_xy, {"cmd": cmd.argmax(1), "x": x.argmax(1), "y": y.argmax(1), "loss_cmd": loss_cmd.detach(),
                                "loss_xy": loss_xy.detach()}


@torch.no_grad()
def validate(net, data, weights, uses_xy, n_commands: int, batch_size: int = 256) -> dict:
    """Loss and per-head accuracy over a whole view (streamed in batches)."""
    net.eval()
    tot = {"loss": 0.0, "n": 0, "cmd_ok": 0, "xy_n": 0, "x_ok": 0, "y_ok": 0}
    conf = np.zeros((n_commands, n_commands), np.int64)  # [true, predicted]
    for b in data.batches(batch_size, shuffle=False):
        bt = {"obs": torch.from_numpy(b["obs"]), "actions": torch.from_numpy(b["actions"])}
        loss, out = bc_loss(net, bt, weights, uses_xy)
        a = bt["actions"]
        n = len(a)
        tot["loss"] += float(loss) * n
        tot["n"] += n
        tot["cmd_ok"] += int((out["cmd"] == a[:, 0]).sum())
        np.add.at(conf, (a[:, 0].numpy(), out["cmd"].numpy()), 1)
        m = uses_xy[a[:, 0]]
        tot["xy_n"] += int(m.sum())
        tot["x_ok"] += int(((out["x"] == a[:, 1]) & m).sum())
        tot["y_ok"] += int(((out["y"] == a[:, 2]) & m).sum())
    net.train()
    seen = conf.sum(1) > 0
    recall = conf.diagonal()[seen] / conf.sum(1)[seen]
    n = max(tot["n"], 1)
    return {"loss": tot["loss"] / n, "acc_cmd": tot["cmd_ok"] / n, "balanced_acc_cmd": float(recall.mean()) if seen.any() else 0.0,
            "acc_x": tot["x_ok"] / tot["xy_n"] if tot["xy_n"] else None,
            "acc_y": tot["y_ok"] / tot["xy_n"] if tot["xy_n"] else None,
            "majority_baseline": float(conf.sum(1).max() / n), "n": tot["n"]}


def evaluate_duel(net, episodes: int, tier: str = "normal", frame_skip: int = 4, seed: int = 12345,
                  deterministic: bool = False, num_envs: int = 16, max_steps: int | None = None,
                  action_delay: int = 0, stack_ticks: int | None = None) -> dict:
    """Win rate of `net` in the duel sim (DuelVecEnv, SAME_STEP autoreset) over `episodes` fights.

    frame_skip: ticks between decisions; stack_ticks: ticks between the stacked frames (default frame_skip).
    A clone of a 15 fps recording sees frames 4 ticks apart, but the person it copies could press at any
    tick and the recorder caught them at random phases of the game's 4-tick grid: such a clone is a
    per-tick policy, so frame_skip=1, stack_ticks=4 runs it as it was recorded.

    max_steps: stop after this many decisions; fights still running then count as not won, with the
    damage dealt so far (a quick check for tests: an agent that learned nothing deals little)."""
    from hakisa.envs.duel.env import DuelVecEnv

    # the sim renders the canvas alone: a crop recorded to cut the canvas out of a window does not apply
    env = DuelVecEnv(min(num_envs, episodes), tier=tier, seed=seed, frame_skip=frame_skip,
                     obs_spec=replace(net.obs_spec, crop=None), action_delay=action_delay, stack_ticks=stack_ticks)
    obs, info = env.reset()
    boss_hp0 = int(info["boss_hp"][0])
    gen = torch.Generator().manual_seed(seed)
    winners: list[int] = []
    damage: list[int] = []  # boss HP taken per fight: a graded signal where wins are still rare
    started = env.num_envs  # count only fights started within the budget: no bias towards short ones
    counted = np.ones(env.num_envs, bool)
    net.eval()
    steps = 0
    while len(winners) < episodes and counted.any():
        if max_steps is not None and steps >= max_steps:
            info = env.fights.info()
            for i in np.flatnonzero(counted)[: episodes - len(winners)]:
                winners.append(0)
                damage.append(int(boss_hp0 - info["boss_hp"][i]))
            break
        steps += 1
        with torch.no_grad():
            if deterministic:
                a = net.act(torch.from_numpy(obs), deterministic=True)
            else:
                cmd, x, y, _ = net.policy(torch.from_numpy(obs))
                a = net.canonical(torch.stack([torch.multinomial(F.softmax(lg, 1), 1, generator=gen).squeeze(1)
                                               for lg in (cmd, x, y)], 1))
        obs, _, term, trunc, info = env.step(a.numpy())
        for i in np.flatnonzero(term | trunc):
            if counted[i]:
                winners.append(int(info["winner"][i]))
                damage.append(int(boss_hp0 - info["boss_hp"][i]))
            counted[i] = started < episodes
            started += counted[i]
    env.close()
    net.train()
    w = np.array(winners[:episodes])
    return {"episodes": int(len(w)), "win_rate": float((w == 1).mean()) if len(w) else 0.0,
            "mean_boss_damage": float(np.mean(damage[:episodes])) if damage else 0.0, "tier": tier,
            "deterministic": deterministic, "frame_skip": frame_skip, "action_delay": action_delay,
            "stack_ticks": stack_ticks or frame_skip}


def init_features(net, checkpoint: str) -> None:
    """Copy encoder + trunk weights from another checkpoint (the heads stay fresh).

    The donor only has to see the same frames (shape) through the same architecture; its action map
    does not matter, nothing of its heads is taken."""
    from hakisa.model import load_checkpoint

    donor, _ = load_checkpoint(checkpoint)
    if donor.obs_spec.shape != net.obs_spec.shape or (donor.encoder_name, donor.hidden) != (net.encoder_name, net.hidden):
        raise SystemExit(f"--init {checkpoint}: it has frames {donor.obs_spec.shape}, encoder {donor.encoder_name!r}, "
                         f"hidden {donor.hidden}; this study needs {net.obs_spec.shape}, {net.encoder_name!r}, {net.hidden} "
                         "(pass --encoder/--hidden/--stack to match)")
    own = net.state_dict()
    own.update({k: v for k, v in donor.state_dict().items() if k.startswith(("encoder.", "trunk."))})
    net.load_state_dict(own)


def study(args: StudyArgs) -> dict:
    from hakisa.algos.common import setup_torch, start_run
    from hakisa.data import EpisodeStore
    from hakisa.model import HakisaNet, save_checkpoint

    setup_torch(args.threads, args.seed)
    store = EpisodeStore(args.dataset)
    imap = store.input_map
    spec = store.obs_spec
    if args.stack:
        spec = replace(spec, stack=args.stack)
    data = store.transitions(stack=spec.stack, stride=args.stack_stride)
    fps = float(store.meta.get("fps", 15))
    relabelled = 0.0
    if args.label_lag:
        relabelled = data.relabel(args.label_lag, 1.0 / fps)
        print(f"study: labels taken {args.label_lag * 1000:.0f} ms before each grab: {relabelled:.1%} of commands changed")
    train, val = data.split(args.val_fraction, seed=args.seed)
    if len(val) == 0:  # a single episode: no held-out data; early stopping then watches the training loss
        print("study: only one episode, validating on the training data (no early-stopping signal)")
        val = train
    n_cmd = len(imap.commands)
    counts = np.bincount(train.actions[train.indices, 0], minlength=n_cmd)
    weights_np = class_weights(counts, args.balance)
    weights = torch.as_tensor(weights_np, dtype=torch.float32)
    uses_xy = torch.as_tensor(imap.uses_xy)
    sample_p = None
    if args.balance == "resample":  # inverse-frequency odds per transition
        inv = class_weights(counts, "inverse")[train.actions[train.indices, 0]]
        sample_p = inv / inv.sum()
    net = HakisaNet(spec, imap, encoder=args.encoder, hidden=args.hidden)
    if args.init:
        init_features(net, args.init)
    frozen = {"none": (), "encoder": ("encoder.",), "trunk": ("encoder.", "trunk.")}[args.freeze]
    for name, prm in net.named_parameters():
        prm.requires_grad_(not name.startswith(frozen))
    opt = torch.optim.AdamW([q for q in net.parameters() if q.requires_grad], lr=args.lr, weight_decay=args.weight_decay)
    out = Path(args.out)
    frame_skip = max(1, int(round(60 / fps)))  # the duel runs at 60 ticks/s: match the recording's rate
    if args.eval_decision_ticks and frame_skip % args.eval_decision_ticks:
        raise SystemExit(f"--eval-decision-ticks {args.eval_decision_ticks} must divide the recording's "
                         f"{frame_skip} ticks per frame")
    config = {"algo": "bc", "args": asdict(args), "dataset": str(Path(args.dataset).resolve()),
              "dataset_fps": fps, "frame_skip": frame_skip, "stack_ticks": frame_skip * args.stack_stride,
              "relabelled": relabelled, "class_weights": weights_np.tolist(),
              "command_counts": counts.tolist(), "train_episodes": train.episode_ids.tolist(),
              "val_episodes": val.episode_ids.tolist()}
    tb = start_run(out, args, config)
    rng = np.random.default_rng(args.seed)
    steps = args.steps_per_epoch or max(1, len(train) // args.batch_size)
    best = {"loss": float("inf")}
    bad, step, history = 0, 0, []
    from tqdm import trange

    t0 = time.time()
    for epoch in range(args.epochs):
        losses = []
        bar = trange(steps, desc=f"study epoch {epoch}", disable=not args.progress, leave=False)
        order = rng.permutation(len(train))
        for i in bar:
            if sample_p is not None:
                b = train.sample(args.batch_size, rng, p=sample_p)
            else:
                pos = order[(i * args.batch_size) % len(order):][:args.batch_size]
                if len(pos) < args.batch_size:
                    pos = rng.choice(len(train), args.batch_size)
                b = train.get(pos)
            bt = {"obs": torch.from_numpy(b["obs"]), "actions": torch.from_numpy(b["actions"])}
            loss, out_ = bc_loss(net, bt, weights, uses_xy)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            losses.append(loss.item())
            step += 1
            if tb and step % 20 == 0:
                tb.add_scalar("losses/bc", losses[-1], step)
                tb.add_scalar("losses/bc_cmd", float(out_["loss_cmd"]), step)
                tb.add_scalar("charts/grad_norm", float(gn), step)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        v = validate(net, val, weights, uses_xy, n_cmd, batch_size=256)
        v.update(epoch=epoch, train_loss=float(np.mean(losses)), step=step)
        history.append(v)
        if tb:
            tb.add_scalar("losses/val", v["loss"], step)
            tb.add_scalar("charts/val_acc_cmd", v["acc_cmd"], step)
            tb.add_scalar("charts/val_balanced_acc_cmd", v["balanced_acc_cmd"], step)
            if v["acc_x"] is not None:
                tb.add_scalar("charts/val_acc_x", v["acc_x"], step)
                tb.add_scalar("charts/val_acc_y", v["acc_y"], step)
        if True:  # one line per epoch, also in logs
            print(f"epoch {epoch}: train {v['train_loss']:.3f} val {v['loss']:.3f} acc_cmd {v['acc_cmd']:.3f} "
                  f"balanced {v['balanced_acc_cmd']:.3f} (majority {v['majority_baseline']:.3f})", flush=True)
        if v["loss"] < best["loss"]:
            best, bad = v, 0
            save_checkpoint(out / "best", net, config, {"val": v})
        else:
            bad += 1
            if bad >= args.patience:
                break
    save_checkpoint(out / "checkpoint", net, config, {"val": history[-1]})
    result = {"run": str(out), "epochs": len(history), "steps": step, "seconds": round(time.time() - t0, 1),
              "train_transitions": len(train), "val_transitions": len(val), "best": best}
    if args.eval_episodes and imap.name == "duel":
        from hakisa.model import load_checkpoint

        best_net, _ = load_checkpoint(out / "best")
        result["eval"] = evaluate_duel(best_net, args.eval_episodes, args.eval_tier,
                                       args.eval_decision_ticks or frame_skip, seed=args.seed + 777,
                                       deterministic=args.eval_deterministic, action_delay=args.eval_action_delay,
                                       stack_ticks=frame_skip * args.stack_stride)
        if tb:
            tb.add_scalar("charts/win_rate", result["eval"]["win_rate"], step)
        save_checkpoint(out / "best", best_net, config, {"val": best, "eval": result["eval"]})
    if tb:
        tb.close()
    return result


def add_args(p: argparse.ArgumentParser) -> None:
    from hakisa.dcargs import add_dataclass_args

    p.add_argument("dataset", help="episode store directory")
    add_dataclass_args(p, StudyArgs, skip=("dataset",))


def main(args) -> int:
    from hakisa.dcargs import from_args

    res = study(from_args(StudyArgs, args))
    print(json.dumps(res))
    return 0
