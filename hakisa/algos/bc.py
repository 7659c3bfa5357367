"""Behaviour cloning: the loss, the held-out check and the training loop `hakisa study` runs.

The factorised heads are trained with cross-entropy: the command head always, the x/y heads only where the
recorded command uses them (`input_map.uses_xy`), so keyboard-only steps teach the pointer nothing.
People mostly press nothing, so plain cross-entropy learns "noop" first and often only that: `class_weights`
counters it. Validation holds out whole EPISODES (neighbouring frames are near-copies; a frame split would
leak) and reports, per head, accuracy, balanced accuracy (mean per-class recall, which a constant policy
cannot fake) and a confusion matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hakisa.algos.augment import shift_batch


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


ALT_WEIGHT = 0.5  # a neighbour's onset counts half as much as the frame's own label: the frame's own stays the likelier


def bc_loss(net, batch: dict, weights: torch.Tensor, uses_xy: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Cross-entropy on the command head (class-weighted) + x/y heads where the command uses them. batch may hold
    "weight" (per sample) and "alt" (a second action per sample, -1 where none: `onset_neighbours`)."""
    obs, act = batch["obs"], batch["actions"]
    cmd, x, y, _ = net.policy(obs)
    w = weights[act[:, 0]]
    if "weight" in batch:  # per-sample weights (e.g. a person's corrections count more than demonstrations)
        w = w * batch["weight"]
    num, den = (F.cross_entropy(cmd, act[:, 0], reduction="none") * w).sum(), w.sum()
    m = uses_xy[act[:, 0]].float()
    lxy = F.cross_entropy(x, act[:, 1], reduction="none") + F.cross_entropy(y, act[:, 2], reduction="none")
    num_xy, den_xy = (lxy * m).sum(), m.sum()  # masked: keyboard steps teach the pointer heads nothing
    if "alt" in batch:  # a second label on frames next to an onset (`onset_neighbours`), at ALT_WEIGHT
        alt = batch["alt"]
        has = alt[:, 0] >= 0
        if has.any():
            a2, w2 = alt[has], ALT_WEIGHT * weights[alt[has, 0]] * (batch["weight"][has] if "weight" in batch else 1.0)
            num = num + (F.cross_entropy(cmd[has], a2[:, 0], reduction="none") * w2).sum()
            den = den + w2.sum()
            m2 = ALT_WEIGHT * uses_xy[a2[:, 0]].float()
            l2 = (F.cross_entropy(x[has], a2[:, 1], reduction="none")
                  + F.cross_entropy(y[has], a2[:, 2], reduction="none"))
            num_xy, den_xy = num_xy + (l2 * m2).sum(), den_xy + m2.sum()
    loss_cmd = num / den.clamp_min(1e-8)
    loss_xy = num_xy / den_xy if den_xy > 0 else torch.zeros((), device=obs.device)
    return loss_cmd + loss_xy, {"cmd": cmd.argmax(1), "x": x.argmax(1), "y": y.argmax(1), "loss_cmd": loss_cmd.detach(),
                                "loss_xy": loss_xy.detach(), "logits": (cmd.detach(), x.detach(), y.detach())}


def _balanced(conf: np.ndarray) -> float | None:
    seen = conf.sum(1) > 0
    return float((conf.diagonal()[seen] / conf.sum(1)[seen]).mean()) if seen.any() else None


@torch.no_grad()
def validate(net, data, weights, uses_xy, n_commands: int, batch_size: int = 256, keep: int = 0) -> dict:
    """Loss, per-head accuracy, balanced accuracy and confusion matrices over a whole view (streamed).

    keep: also return up to this many frame indices where the clone's command differs from the label, spread
    over the view, with both actions (the study report draws them)."""
    net.eval()
    nvec = [int(v) for v in net.input_map.nvec]
    conf = [np.zeros((n, n), np.int64) for n in nvec]  # [true, predicted] per head; x/y where used
    loss_sum, n_all, spread, prob_sum = 0.0, 0, [], np.zeros(nvec[0])
    prior_fix = prior_correction(weights)
    wrong: list[tuple[int, list, list]] = []
    repeat = np.zeros((nvec[0], nvec[0]), np.int64)  # [true, the frame before's label]: the copycat baseline
    on_change = np.zeros(2, np.int64)  # frames where the player starts a command: [right, all]
    starts = onsets(data, net.input_map)
    for b in data.batches(batch_size, shuffle=False):
        bt = {"obs": torch.from_numpy(b["obs"]), "actions": torch.from_numpy(b["actions"])}
        loss, out = bc_loss(net, bt, weights, uses_xy)
        a = bt["actions"].numpy()
        loss_sum += float(loss) * len(a)
        n_all += len(a)
        pred = np.stack([out["cmd"].numpy(), out["x"].numpy(), out["y"].numpy()], 1)
        m = uses_xy[a[:, 0]].numpy()
        np.add.at(conf[0], (a[:, 0], pred[:, 0]), 1)
        idx = np.asarray(b["index"])
        has_prev = idx > data.ep_start[idx]
        prev = data.actions[np.maximum(idx - 1, 0), 0]
        np.add.at(repeat, (a[has_prev, 0], prev[has_prev]), 1)
        changed = starts[idx]
        on_change += [int((pred[changed, 0] == a[changed, 0]).sum()), int(changed.sum())]
        for h in (1, 2):
            np.add.at(conf[h], (a[m, h], pred[m, h]), 1)
        spread.append(torch.cat([F.log_softmax(lg, 1) for lg in out["logits"]], 1).numpy())
        prob_sum = prob_sum + F.softmax(out["logits"][0] + prior_fix, 1).sum(0).numpy()
        if keep:
            for j in np.flatnonzero(pred[:, 0] != a[:, 0]):
                wrong.append((int(b["index"][j]), a[j].tolist(), pred[j].tolist()))
    net.train()
    n = max(n_all, 1)
    xy_n = int(conf[1].sum())
    # how much the heads' outputs move across frames: ~0 means the clone ignores the screen
    lp = np.concatenate(spread) if spread else np.zeros((1, sum(nvec)))
    res = {
        "loss": loss_sum / n,
        "acc_cmd": float(conf[0].trace() / n),
        "balanced_acc_cmd": _balanced(conf[0]) or 0.0,
        "acc_x": float(conf[1].trace() / xy_n) if xy_n else None,
        "acc_y": float(conf[2].trace() / xy_n) if xy_n else None,
        "balanced_acc_x": _balanced(conf[1]),
        "balanced_acc_y": _balanced(conf[2]),
        "majority_baseline": float(conf[0].sum(1).max() / n),
        # what repeating the frame before's command scores, and the clone on the frames where the player starts
        # a command: a stack of frames shows the last move, and a clone can score well by copying it (the
        # copycat problem, Wen et al. 2020) while it never reacts to what the screen shows
        "repeat_baseline": _balanced(repeat) or 0.0,
        "acc_cmd_on_onsets": float(on_change[0] / on_change[1]) if on_change[1] else None,
        "onsets": int(on_change[1]),
        "predicted_share_top": float(conf[0].sum(0).max() / n),
        "logit_spread": float(lp.std(0).mean()),
        # the command rates a sampling clone has once its logits are freed of the class weights (prior_correction)
        "mean_probs": (prob_sum / n).tolist(),
        "n": n_all,
        "confusion": [c.tolist() for c in conf],
    }
    if keep and wrong:
        pick = np.linspace(0, len(wrong) - 1, min(keep, len(wrong))).round().astype(int)
        res["disagreements"] = [wrong[i] for i in pick]
    return res


def prior_correction(weights: torch.Tensor) -> torch.Tensor:
    """What to add to the command logits to undo the class weights: training with weight w_c multiplies class c's
    odds by w_c, so -log w_c gives back the player's own rates (logit adjustment, Menon et al. 2021). A sampling
    clone needs it; an argmax clone is better off with the weights' push toward rare commands. Unseen: 0."""
    w = torch.as_tensor(weights, dtype=torch.float32)
    return torch.where(w > 0, -torch.log(w.clamp_min(1e-12)), torch.zeros_like(w))


def select_score(v: dict) -> float:
    """What best/ and early stopping follow: the command head's balanced accuracy, times the x/y balanced
    accuracy for a mouse game. A constant policy cannot win it, as it wins the loss when most frames are noops."""
    s = v["balanced_acc_cmd"]
    for k in ("balanced_acc_x", "balanced_acc_y"):
        if v.get(k) is not None:
            s *= v[k]
    return s


def correction_weights(data, weight: float) -> np.ndarray:
    """Per-frame loss weights for a store that mixes demonstrations and correction rounds (`hakisa record
    --agent`): the person's frames in an episode the agent also played are corrections, and count `weight`
    times a demonstration frame; frames the agent acted on are not the person's labels and count 0 (HG-DAgger:
    learn from the expert's interventions, never from the novice's own actions)."""
    w = np.ones(len(data.actor), np.float32)
    if not data.actor.any():
        return w
    agent_eps = np.unique(data.episode_of[data.actor == 1])
    w[np.isin(data.episode_of, agent_eps) & (data.actor == 0)] = weight
    w[data.actor == 1] = 0.0
    return w


def onsets(data, input_map) -> np.ndarray:
    """Per stored frame: does the player start a command there (not the noop, and not the frame before's
    command in the same episode)? Uses the labels as they are now (after a label lag)."""
    a = data.actions[:, 0]
    idle = next((i for i, c in enumerate(input_map.commands) if c.kind == "noop"), -1)
    return (np.arange(len(a)) > data.ep_start) & (a != np.roll(a, 1)) & (a != idle)


def onset_neighbours(data, input_map, k: int) -> np.ndarray:
    """Per stored frame, a second label [N, 3] (-1 where none): the action of an onset (`onsets`) up to k frames
    after it in the same episode (the frame is before the onset), where the frame's own command differs (the
    nearest onset wins). A person starts a command a frame or two earlier or later from one time to the next on
    screens that look alike; a clone taught only the exact frame learns that the onset's look means "probably not
    yet" (label smoothing in time). Only the frames before: a frame after an onset already shows what it did (a
    held key still holds it; a clicked target is gone), and on Pop, where a click on nothing costs a life, labels
    on both sides made a clone that clicked at nothing and scored 4.15 where one-sided labels scored 41.95."""
    a = data.actions
    alt = np.full(a.shape, -1, np.int64)
    on = np.flatnonzero(onsets(data, input_map))
    ep = data.episode_of
    for d in range(-k, 0):  # the frames before an onset; nearest last
        j = on + d
        ok = (j >= 0) & (j < len(a))
        src, j = on[ok], j[ok]
        ok = (ep[j] == ep[src]) & (a[j, 0] != a[src, 0])
        alt[j[ok]] = a[src[ok]]
    return alt


def onset_weights(data, input_map, weight: float) -> np.ndarray:
    """Per-frame loss weights that count each onset (`onsets`) `weight` times: the moments a clone must time,
    few among frames where a key is simply held (keyframe weighting, Wen et al. 2021)."""
    w = np.ones(len(data.actions), np.float32)
    w[onsets(data, input_map)] = weight
    return w


@dataclass
class Schedule:
    """How long to train and at which rate, from the dataset's size when not given.

    A small recording is a few thousand frames: one pass is ~50 minibatches, too few for a network to get off
    the "press the common key" plateau, so the length is counted in gradient steps, not passes."""

    steps: int
    warmup: int
    lr: float

    def lr_at(self, step: int) -> float:
        # linear warm-up, then cosine to a tenth: a high rate early gets off the plateau, a low one late settles
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


# ---- the loop (args: any object with StudyArgs' training fields) ----------------------------------------
def plan_schedule(args, n_train: int):
    """Gradient steps, steps between validations, and the rate schedule: `steps` as given, else `epochs` passes
    over the training data, else from the dataset's size (`min_steps`, or 30 passes when that is more)."""
    per_pass = max(1, n_train // args.batch_size)
    if args.steps:
        steps = args.steps
        every = args.steps_per_epoch or -(-steps // int(np.clip(steps // per_pass, 10, 40)))
    elif args.epochs:
        every = args.steps_per_epoch or per_pass
        steps = args.epochs * every
    else:
        steps = min(20000, max(args.min_steps, 30 * per_pass))
        every = args.steps_per_epoch or -(-steps // int(np.clip(steps // per_pass, 10, 40)))
    return Schedule(steps=steps, warmup=max(1, steps // 20), lr=args.lr), max(1, min(every, steps))


def fit(net, train, val, args, weights, sample_p, tb=None, on_best=None, label: str = "study", frame_weights=None,
        alt_actions=None):
    """The training loop: `schedule.steps` AdamW steps on shifted minibatches, a validation every `every` steps;
    returns (best validation, history). on_best(v): called with each new best (saves best/). frame_weights: a
    loss weight per stored frame (`correction_weights`); alt_actions: a second label per stored frame
    (`onset_neighbours`). Validation scores the frames' own labels only."""
    from tqdm import trange

    imap = net.input_map
    n_cmd = len(imap.commands)
    uses_xy = net.uses_xy
    sched, every = plan_schedule(args, len(train))
    opt = torch.optim.AdamW([q for q in net.parameters() if q.requires_grad], lr=sched.lr,
                            weight_decay=args.weight_decay)
    rng = np.random.default_rng(args.seed)
    best, bad, history, losses = {"score": -float("inf")}, 0, [], []
    order = rng.permutation(len(train))
    bar = trange(sched.steps, desc=label, disable=not args.progress, leave=False)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = sched.lr_at(step)
        if sample_p is not None:
            b = train.sample(args.batch_size, rng, p=sample_p)
        else:
            i = (step % max(1, len(order) // args.batch_size)) * args.batch_size
            if i == 0 and step:
                order = rng.permutation(len(train))
            b = train.get(order[i : i + args.batch_size])
        obs, act = torch.from_numpy(b["obs"]), torch.from_numpy(b["actions"])
        alt = torch.from_numpy(alt_actions[b["index"]]) if alt_actions is not None else None
        if args.shift:
            obs, act, alt = shift_batch(obs, act, alt, args.shift, rng, uses_xy, (imap.x_bins, imap.y_bins))
        bt = {"obs": obs, "actions": act} | ({"alt": alt} if alt is not None else {})
        if frame_weights is not None:
            bt["weight"] = torch.from_numpy(frame_weights[b["index"]])
        loss, out = bc_loss(net, bt, weights, uses_xy)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        losses.append(loss.item())
        if tb and step % 20 == 0:
            tb.add_scalar("losses/bc", losses[-1], step)
            tb.add_scalar("losses/bc_cmd", float(out["loss_cmd"]), step)
            tb.add_scalar("charts/grad_norm", float(gn), step)
            tb.add_scalar("charts/lr", sched.lr_at(step), step)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if (step + 1) % every and step + 1 < sched.steps:
            continue
        v = validate(net, val, weights, uses_xy, n_cmd, batch_size=256)
        v.update(epoch=len(history), train_loss=float(np.mean(losses)), step=step + 1)
        losses = []
        v["score"] = -v["loss"] if args.select == "loss" else select_score(v)
        history.append(v)
        if tb:
            tb.add_scalar("losses/val", v["loss"], step)
            for k in ("acc_cmd", "balanced_acc_cmd", "acc_x", "acc_y", "balanced_acc_x", "balanced_acc_y"):
                if v.get(k) is not None:
                    tb.add_scalar(f"charts/val_{k}", v[k], step)
        if args.progress:
            bx, by = v.get("balanced_acc_x"), v.get("balanced_acc_y")
            xy = f" x {bx:.3f} y {by:.3f}" if bx is not None and by is not None else ""
            bar.write(f"{label} {step + 1}/{sched.steps}: train {v['train_loss']:.3f} val {v['loss']:.3f} "
                      f"balanced cmd {v['balanced_acc_cmd']:.3f}{xy} (majority {v['majority_baseline']:.3f})")
        if v["score"] > best["score"]:
            best, bad = v, 0
            if on_best is not None:
                on_best(v)
        elif best["score"] > history[0]["score"] + 0.05:
            # patience counts only once learning has begun: a small dataset can sit on the "common key" plateau
            # for a good share of the schedule before it moves at all
            bad += 1
            if args.patience and bad >= args.patience:
                break
    bar.close()
    return best, history


def preferred_act(v: dict) -> tuple[str, dict]:
    """'argmax', unless argmax as good as never presses a command the player uses (under half the player's rate,
    for a command the player uses on 2 % of frames or more): then 'sample', with the class weights taken out of
    the command logits so that it presses at the player's rates. A player whose clicks come at moments the frame
    does not pin down (a reaction's timing) gives a clone that is never sure enough for argmax to click at all,
    while it knows exactly where (the zoo's Whack: x/y 98 % right, argmax 0 clicks). A clone that reads the
    screen gains nothing from sampling's noise."""
    true = np.asarray(v["confusion"][0]).sum(1).astype(float)
    arg = np.asarray(v["confusion"][0]).sum(0).astype(float)
    smp = np.asarray(v["mean_probs"], float)
    true, arg = true / max(true.sum(), 1), arg / max(arg.sum(), 1)
    collapsed = (true >= 0.02) & (arg < 0.5 * true)
    mode = "sample" if collapsed.any() else "argmax"
    return mode, {"player": true.round(3).tolist(), "argmax": arg.round(3).tolist(), "sample": smp.round(3).tolist(),
                  "collapsed": np.flatnonzero(collapsed).tolist()}


def choose_act(best_net, config: dict, result: dict, final: dict, weights, imap) -> None:
    """How the clone acts (`preferred_act`); a sampled clone gets the class weights taken back out of its logits."""
    config["act"], result["act_rates"] = preferred_act(final)
    if config["act"] == "sample":
        set_act(best_net, config, "sample", weights)
        missing = ", ".join(imap.commands[i].name for i in result["act_rates"]["collapsed"])
        print(f"study: the clone plays sampled actions (by argmax it would almost never {missing})")
    else:
        print("study: the clone plays its most likely action (argmax presses each command about as often as you)")
    result["act"] = config["act"]


def set_act(net, config: dict, mode: str, weights) -> None:
    """Make `net` act by `mode`: a sampled clone presses at the player's rates only with the class weights taken
    out of its command logits (`prior_correction`), an argmax clone keeps them; `config` records which."""
    corrected = bool(config.get("cmd_prior_corrected"))
    if (mode == "sample") != corrected:
        with torch.no_grad():
            net.pi_cmd.bias += prior_correction(weights) * (1 if mode == "sample" else -1)
    config["act"], config["cmd_prior_corrected"] = mode, mode == "sample"
