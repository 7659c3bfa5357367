"""`hakisa study DATASET --out runs/<name>`: behaviour cloning from recorded episodes.

    hakisa study datasets/me --out runs/me-bc                     # train, early-stop, checkpoint
    hakisa study datasets/me --out runs/me-bc --eval-episodes 20  # ... then play the game it was recorded on
    hakisa study datasets/me --init pretrained:duel-perception     # start from an encoder that can already see

The evaluation plays the dataset's game (or `--game`): in its simulator when its file names one, else
live on its window (launched when its file says how); a dataset of no known game is not evaluated, and
the run says so. A few dozen games are ~10-30k labelled frames, too few to learn both to SEE and to
DECIDE. `--init` takes the encoder and trunk of another checkpoint (one pretrained to read a game's
state, say) and fine-tunes everything; `--freeze` keeps those layers fixed instead. `--label-lag`
re-derives the labels from the raw input log a little earlier (or, negative, later) than each grab.

The factorised heads are trained with cross-entropy: the command head always, the x/y heads only where
the recorded command uses them (`input_map.uses_xy`), so keyboard-only steps teach the pointer nothing.
People mostly press nothing, so plain cross-entropy learns "noop" first and often only that. `--balance`
counters it: `sqrt` (default) weights each command by 1/sqrt(frequency), `inverse` by 1/frequency,
`resample` draws minibatches with those inverse-frequency odds, `none` leaves the data as it is.
Validation holds out whole EPISODES (neighbouring frames are near-copies; a frame split would leak) and
reports per-head accuracy plus the command head's balanced accuracy (mean per-class recall), which a
noop-only agent cannot fake. `best/` keeps the epoch with the best `select` score: by default the command
head's balanced accuracy (times the x/y accuracy for a mouse game), which a constant policy cannot win,
as it wins the loss when most frames are noops. Early stopping watches the same score; `checkpoint/` is
the last epoch. Both are normal Hakisa checkpoints (`hakisa.model.load_checkpoint`).
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
    dataset: str
    """episode store directory (hakisa record / explore / play)"""
    out: str = "runs/study"
    """run directory: config.json, TensorBoard events, best/, checkpoint/"""
    stack: int = 0
    """frames per observation; 0 = the dataset's obs spec"""
    stack_stride: int = 1
    """stack every Nth recorded frame; every frame is still a labelled sample. A 60 fps recording with stride 4
    gives the 4-tick spacing of a 15 Hz stack (the duel recipe's) and a label per tick"""
    encoder: str = "small"
    """'small' | 'nature' | 'torchvision:<name>'"""
    hidden: int = 256
    """trunk width"""
    init: str = ""
    """start the encoder + trunk from this checkpoint (e.g. `hakisa duel perception`'s)"""
    freeze: str = "none"
    """keep pretrained layers fixed: 'none' | 'encoder' | 'trunk' (encoder and trunk)"""
    lr: float = 3e-4
    """Adam learning rate"""
    weight_decay: float = 1e-4
    """a little L2: a few fights are a small dataset"""
    batch_size: int = 64
    """minibatch size"""
    epochs: int = 30
    """at most this many passes over the training episodes"""
    steps_per_epoch: int = 0
    """0 = one pass over the training transitions per epoch"""
    patience: int = 4
    """stop after this many epochs without a better validation loss"""
    val_fraction: float = 0.2
    """share of EPISODES held out for validation"""
    balance: str = "sqrt"
    """noop imbalance: 'none' | 'sqrt' | 'inverse' | 'resample'"""
    shift: int = 0
    """augmentation: shift each training stack by up to this many pixels (DrQ); labels stay, so keep it well under
    one x/y bin of a mouse game"""
    label_lag: float = 0.0
    """seconds: label each frame with the input this long BEFORE its grab (the game's input -> pixels round trip);
    negative: what the player did just AFTER the grab (see Transitions.relabel)"""
    seed: int = 0
    """split, init and sampling seed"""
    threads: int = 0
    """torch threads (0: up to 2)"""
    select: str = "balanced"
    """which epoch is best/: 'balanced' (balanced command accuracy x x/y accuracy) | 'loss'"""
    game: str = ""
    """the game to evaluate on (a name or file); default: the game the dataset was recorded on"""
    eval_episodes: int = 0
    """after training, play the game this many times (its simulator, else its window)"""
    eval_live: bool = False
    """evaluate on the game's window even when it has a simulator"""
    eval_opt: str = ""
    """game options for the evaluation, 'key=value,key=value' (e.g. tier=hard)"""
    eval_deterministic: bool = False
    """argmax actions instead of sampling in the evaluation"""
    eval_action_delay: int = 0
    """simulators with ticks: ticks between a decision and its effect (a page's lag)"""
    eval_decision_ticks: int = 0
    """simulators with ticks: ticks between the clone's decisions; 0 = the dataset's frame period. 1 = decide every
    tick (frames still stacked at the dataset's spacing): a recording samples a person, who presses keys at ANY
    tick, at random phases, so its clone is a per-tick policy"""
    progress: bool = True
    """tqdm bars"""


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
    return {
        "loss": tot["loss"] / n,
        "acc_cmd": tot["cmd_ok"] / n,
        "balanced_acc_cmd": float(recall.mean()) if seen.any() else 0.0,
        "acc_x": tot["x_ok"] / tot["xy_n"] if tot["xy_n"] else None,
        "acc_y": tot["y_ok"] / tot["xy_n"] if tot["xy_n"] else None,
        "majority_baseline": float(conf.sum(1).max() / n),
        "n": tot["n"],
    }


def random_shift(obs: torch.Tensor, pad: int, rng: np.random.Generator) -> torch.Tensor:
    """DrQ's augmentation: pad each stack by `pad` edge pixels and crop it back at a random offset, the same
    offset for every frame of a stack. A few dozen recorded games are few frames; shifted copies teach the
    encoder that a thing a few pixels away is the same thing, without any label beyond the actions."""
    n, c, h, w = obs.shape
    padded = F.pad(obs.float(), (pad, pad, pad, pad), mode="replicate")
    dx, dy = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    return out.to(obs.dtype)


def eval_game(args: StudyArgs, store):
    """The game to evaluate on: --game, else the one the dataset was recorded on, when it is a game file."""
    from hakisa.game import Game, GameFileError

    name = args.game or store.meta.get("game")
    if not name:
        return None
    try:
        return Game.load(name)
    except GameFileError:
        if args.game:
            raise
        return None


def evaluate_clone(net, game, args: StudyArgs, frame_skip: int) -> dict:
    """The clone plays its game: the simulator when there is one (unless eval_live), else the live window."""
    from hakisa.game import parse_opts

    opts = parse_opts([o for o in args.eval_opt.split(",") if o])
    if game.sim and not args.eval_live:
        from hakisa.phases.play import evaluate

        kw = {"obs_spec": replace(net.obs_spec, crop=None)}  # a simulator renders the canvas alone
        if frame_skip > 1 or args.eval_decision_ticks or args.eval_action_delay:
            kw.update(
                frame_skip=args.eval_decision_ticks or frame_skip,
                action_delay=args.eval_action_delay,
                stack_ticks=frame_skip * args.stack_stride,
            )
        env = game.sim_vec(min(16, args.eval_episodes), seed=args.seed + 777, opts=opts, **kw)
        try:
            res = evaluate(
                net, env, args.eval_episodes, "argmax" if args.eval_deterministic else "sample", seed=args.seed + 777
            )
        finally:
            env.close()
        net.train()
        return {
            **res,
            "where": "sim",
            "options": game.resolve_options(opts),
            "deterministic": args.eval_deterministic,
            **{k: kw[k] for k in ("frame_skip", "action_delay", "stack_ticks") if k in kw},
        }
    from hakisa.phases.live_play import play_live

    print(f"study: evaluating on {game.name}'s window, {args.eval_episodes} episodes (no simulator)", flush=True)
    res = play_live(
        Path(args.out) / "best",
        game=game,
        opts=opts,
        episodes=args.eval_episodes,
        deterministic=args.eval_deterministic,
        out=Path(args.out) / "eval_live",
        seed=args.seed,
        progress=args.progress,
        probe_trials=0,
    )
    return {
        **{k: res[k] for k in ("episodes", "win_rate", "mean_score", "score_ci95", "mean_return") if k in res},
        "where": "live",
        "options": res["options"],
        "deterministic": args.eval_deterministic,
    }


def init_features(net, checkpoint: str) -> None:
    """Copy encoder + trunk weights from another checkpoint (the heads stay fresh).

    The donor only has to see the same frames (shape) through the same architecture; its action map
    does not matter, nothing of its heads is taken."""
    from hakisa.model import load_checkpoint

    donor, _ = load_checkpoint(checkpoint)
    if donor.obs_spec.shape != net.obs_spec.shape or (donor.encoder_name, donor.hidden) != (
        net.encoder_name,
        net.hidden,
    ):
        raise SystemExit(
            f"--init {checkpoint}: it has frames {donor.obs_spec.shape}, encoder {donor.encoder_name!r}, "
            f"hidden {donor.hidden}; this study needs {net.obs_spec.shape}, {net.encoder_name!r}, {net.hidden} "
            "(pass --encoder/--hidden/--stack to match)"
        )
    own = net.state_dict()
    own.update({k: v for k, v in donor.state_dict().items() if k.startswith(("encoder.", "trunk."))})
    net.load_state_dict(own)


def study(args: StudyArgs) -> dict:
    from hakisa.algos.common import setup_torch, start_run
    from hakisa.data import EpisodeStore, Transitions
    from hakisa.model import HakisaNet, save_checkpoint

    setup_torch(args.threads, args.seed)
    store = EpisodeStore(args.dataset)
    imap = store.input_map
    spec = store.obs_spec
    if args.stack:
        spec = replace(spec, stack=args.stack)
    data = Transitions(store, stack=spec.stack, stride=args.stack_stride)
    fps = float(store.meta.get("fps", 15))
    relabelled = 0.0
    if args.label_lag:
        relabelled = data.relabel(args.label_lag, 1.0 / fps)
        print(
            f"study: labels taken {args.label_lag * 1000:.0f} ms before each grab: {relabelled:.1%} of commands changed"
        )
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
    opt = torch.optim.AdamW(
        [q for q in net.parameters() if q.requires_grad], lr=args.lr, weight_decay=args.weight_decay
    )
    out = Path(args.out)
    game = eval_game(args, store)
    # a simulator that runs in ticks (its file's sim.tick_hz) steps as many ticks per decision as the recording
    tick_hz = (game.sim or {}).get("tick_hz") if game is not None else None
    frame_skip = max(1, int(round(tick_hz / fps))) if tick_hz else 1
    if args.eval_decision_ticks and frame_skip % args.eval_decision_ticks:
        raise SystemExit(
            f"--eval-decision-ticks {args.eval_decision_ticks} must divide the recording's {frame_skip} ticks per frame"
        )
    config = {
        "algo": "bc",
        "args": asdict(args),
        "dataset": str(Path(args.dataset).resolve()),
        "game": game.name if game is not None else store.meta.get("game"),
        "game_file": str(game.path.resolve()) if game is not None else None,
        "dataset_fps": fps,
        "frame_skip": frame_skip,
        "stack_ticks": frame_skip * args.stack_stride,
        "relabelled": relabelled,
        "class_weights": weights_np.tolist(),
        "command_counts": counts.tolist(),
        "train_episodes": train.episode_ids.tolist(),
        "val_episodes": val.episode_ids.tolist(),
    }
    tb = start_run(out, args, config)
    rng = np.random.default_rng(args.seed)
    steps = args.steps_per_epoch or max(1, len(train) // args.batch_size)
    best = {"score": -float("inf")}
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
                pos = order[(i * args.batch_size) % len(order) :][: args.batch_size]
                if len(pos) < args.batch_size:
                    pos = rng.choice(len(train), args.batch_size)
                b = train.get(pos)
            obs = torch.from_numpy(b["obs"])
            bt = {
                "obs": random_shift(obs, args.shift, rng) if args.shift else obs,
                "actions": torch.from_numpy(b["actions"]),
            }
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
        print(
            f"epoch {epoch}: train {v['train_loss']:.3f} val {v['loss']:.3f} acc_cmd {v['acc_cmd']:.3f} "
            f"balanced {v['balanced_acc_cmd']:.3f} (majority {v['majority_baseline']:.3f})",
            flush=True,
        )
        v["score"] = (
            -v["loss"] if args.select == "loss" else v["balanced_acc_cmd"] * (v["acc_x"] or 1) * (v["acc_y"] or 1)
        )
        if v["score"] > best["score"]:
            best, bad = v, 0
            save_checkpoint(out / "best", net, config, {"val": v})
        else:
            bad += 1
            if bad >= args.patience:
                break
    save_checkpoint(out / "checkpoint", net, config, {"val": history[-1]})
    result = {
        "run": str(out),
        "epochs": len(history),
        "steps": step,
        "seconds": round(time.time() - t0, 1),
        "train_transitions": len(train),
        "val_transitions": len(val),
        "best": best,
    }
    if args.eval_episodes:
        if game is None:
            print(
                f"study: evaluation skipped: the dataset names no game file ({store.meta.get('game')!r}); "
                "pass --game NAME|PATH to play it",
                flush=True,
            )
            result["eval"] = None
        else:
            from hakisa.model import load_checkpoint

            best_net, _ = load_checkpoint(out / "best")
            result["eval"] = evaluate_clone(best_net, game, args, frame_skip)
            for k in ("win_rate", "mean_score"):
                if tb and result["eval"].get(k) is not None:
                    tb.add_scalar(f"charts/{k}", result["eval"][k], step)
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
