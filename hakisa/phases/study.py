"""`hakisa study DATASET --out runs/<name>`: behaviour cloning from recorded episodes.

    hakisa study datasets/me --out runs/me-bc                      # train, pick best/, report, play 10 games
    hakisa study datasets/me --out runs/me-bc --eval-episodes 20   # ... play 20
    hakisa study datasets/me --init pretrained:duel-perception      # start from an encoder that can already see

The defaults are meant to need no flags on a game nobody tuned them for (measured on the zoo of
benchmarks/zoo): the training length is counted in gradient steps from the dataset's size, the rate warms
up and decays, the frames are shifted by up to 4 pixels (DrQ; clicks move with them), and the encoder
keeps an eighth of the frame's resolution with coordinate planes (`fine`). Each frame is labelled with what was held
when it was grabbed (on the zoo's Catch, labels taken 2 frames later played half as well), except that a click is
filed with the frame before when that is the one showing what it clicked (`--label-lag visible`, algos/labels.py).

The evaluation plays the game the dataset was recorded with (its file's path is in the dataset), or
`--game`: in its simulator when its file names one, else live on its window (launched when its file says
how); when there is none the run says why in one line. It plays the clone both ways, argmax and sampled, and
keeps the better as the checkpoint's way to act (hakisa/study_eval.py). `--init` takes the encoder and trunk of another
checkpoint and fine-tunes everything; `--freeze` keeps those layers fixed instead.

`best/` keeps the validation with the best `select` score: the command head's balanced accuracy (times the
x/y heads' for a mouse game), which a constant policy cannot win, as it wins the loss when most frames are
noops. `checkpoint/` is the last one. Both are normal Hakisa checkpoints (`hakisa.model.load_checkpoint`).
`report.json` and `report.png` in the run folder say per head how it went, where the clone and the teacher
disagree, and what to do when it went wrong (`hakisa.study_report`).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch


@dataclass
class StudyArgs:
    """The options of `hakisa study` (behaviour cloning, `hakisa/algos/bc.py`): one flag per field, `dataset` the
    positional argument, and each field's docstring below is its flag's help. `study(args)` takes one; the run's
    config.json keeps it under "args"."""

    dataset: str
    """episode store directory (hakisa record / explore / play)"""
    out: str = "runs/study"
    """run directory: config.json, TensorBoard events, report.json/png, best/, checkpoint/"""
    stack: int = 0
    """frames per observation; 0 = the dataset's obs spec"""
    stack_stride: int = 1
    """stack every Nth recorded frame; every frame is still a labelled sample. A 60 fps recording with stride 4
    gives the 4-tick spacing of a 15 Hz stack (the duel recipe's) and a label per tick"""
    encoder: str = "auto"
    """'fine' | 'small' | 'nature' | 'torchvision:<name>'; 'auto': --init's encoder, else 'fine'"""
    hidden: int = 256
    """trunk width"""
    init: str = ""
    """start the encoder + trunk from this checkpoint (e.g. `hakisa duel perception`'s)"""
    freeze: str = "none"
    """keep pretrained layers fixed: 'none' | 'encoder' | 'trunk' (encoder and trunk)"""
    lr: float = 1e-3
    """peak AdamW learning rate (after a warm-up, decayed by a cosine to a tenth)"""
    weight_decay: float = 1e-4
    """a little L2: a few games are a small dataset"""
    batch_size: int = 64
    """minibatch size"""
    steps: int = 0
    """gradient steps in all; 0 = `epochs` passes, else from the dataset: `min_steps`, or 30 passes when that is
    more, at most 20000 (validated 10 to 40 times)"""
    min_steps: int = 3000
    """with steps and epochs 0: at least this many gradient steps, however small the dataset"""
    epochs: int = 0
    """with steps 0: this many passes over the training episodes, validated after each"""
    steps_per_epoch: int = 0
    """gradient steps between validations (0: a pass, or the schedule's share)"""
    patience: int = 10
    """stop after this many validations without a better `select` score, counted once it has risen above the
    first validation's; 0 = train the whole schedule"""
    val_fraction: float = 0.2
    """share of EPISODES held out for validation"""
    balance: str = "sqrt"
    """noop imbalance: 'none' | 'sqrt' | 'inverse' | 'resample'"""
    shift: int = 4
    """augmentation: shift each training stack by up to this many pixels (DrQ); a mouse game's click labels move
    with the frame"""
    label_lag: str = "visible"
    """seconds: label each frame with the input this long BEFORE its grab; negative: what the player did just
    AFTER it. 'visible': for a game with clicks, 0 or 1-2 frames after, the first whose click frames show something
    where the click lands clearly more often (a clicked target vanishes before the next grab; with it and the
    one-sided onset tolerance, Pop's clone: 3 -> 42 points), else 0. 'auto': a full study per candidate
    (0 and 1-3 frames after), the best on held-out episodes wins (4x slower)"""
    seed: int = 0
    """split, init and sampling seed"""
    threads: int = 0
    """torch threads (0: up to 2)"""
    correction_weight: float = 2.0
    """a person's frames in games the agent also played (`hakisa record --agent`) count this many times a
    demonstration frame; the agent's own frames are never labels"""
    onset_weight: float = 1.0
    """frames where the player starts a command (not the noop, not the frame before's command) count this many
    times in the loss; 1: no extra weight"""
    onset_tolerance: int = 1
    """frames: a frame up to this many before one where the player starts a command is also taught that command,
    at half weight (a person's timing varies by a frame or two; on the zoo, 1 on both sides took whack's clone from
    47 % to 73 % of its teacher: benchmarks/zoo/README.md). Not the frames after: they show
    what the command did (a clicked target gone), and a clone taught to click there clicks on nothing; 0: off"""
    pointer_labels: str = "recorded"
    """a mouse game's frames where the pointer did not move: 'recorded' (noop) | 'held' (`move` to the cell the
    pointer is in: the same action, and every frame then teaches where the pointer belongs)"""
    select: str = "balanced"
    """which validation is best/: 'balanced' (balanced command accuracy x x/y balanced accuracy) | 'loss'"""
    game: str = ""
    """the game to evaluate on (a name or file); default: the game file the dataset was recorded with"""
    eval_episodes: int = 10
    """after training, play the game this many times (its simulator, else its window); 0: do not"""
    eval_live: bool = False
    """evaluate on the game's window even when it has a simulator"""
    eval_opt: str = ""
    """game options for the evaluation, 'key=value,key=value' (e.g. tier=hard)"""
    eval_act: str = "auto"
    """how the clone acts in the evaluation: 'argmax' | 'sample' | 'auto': with 5 games or more, both ways, and the
    one that scored more becomes the checkpoint's default in `hakisa play`; with fewer, the way whose presses come
    closer to the player's rates on held-out frames"""
    eval_action_delay: int = 0
    """simulators with ticks: ticks between a decision and its effect (a page's lag)"""
    eval_decision_ticks: int = 0
    """simulators with ticks: ticks between the clone's decisions; 0 = the dataset's frame period. 1 = decide every
    tick (frames still stacked at the dataset's spacing): a recording samples a person, who presses keys at ANY
    tick, at random phases, so its clone is a per-tick policy"""
    progress: bool = True
    """tqdm bars"""


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


def net_factory(args: StudyArgs, spec, imap):
    """make_net(): a fresh net of the study's architecture (--init's when 'auto'), its pretrained layers loaded
    and frozen as --freeze says; a label-lag trial and the study itself each start from one."""
    from hakisa.model import HakisaNet

    encoder, hidden = args.encoder, args.hidden
    if encoder == "auto":
        encoder = "fine"
        if args.init:  # the donor's architecture, so --init works without repeating it
            from hakisa.model import find_checkpoint, read_checkpoint_config

            m = read_checkpoint_config(find_checkpoint(args.init))["model"]
            encoder, hidden = m["encoder"], int(m["hidden"])

    def make_net():
        net = HakisaNet(spec, imap, encoder=encoder, hidden=hidden)
        if args.init:
            init_features(net, args.init)
        frozen = {"none": (), "encoder": ("encoder.",), "trunk": ("encoder.", "trunk.")}[args.freeze]
        for name, prm in net.named_parameters():
            prm.requires_grad_(not name.startswith(frozen))
        return net

    return make_net


def weights_fn(args: StudyArgs, n_cmd: int):
    """weights_for(train): the command head's class weights and, with --balance resample, sampling odds."""
    from hakisa.algos.bc import class_weights

    def weights_for(train):
        counts = np.bincount(train.actions[train.indices, 0], minlength=n_cmd)
        p = None
        if args.balance == "resample":  # inverse-frequency odds per transition
            inv = class_weights(counts, "inverse")[train.actions[train.indices, 0]]
            p = inv / inv.sum()
        return torch.as_tensor(class_weights(counts, args.balance), dtype=torch.float32), p

    return weights_for


def labelled_frames(args: StudyArgs, store, data, fps: float, make_net, weights_for) -> dict:
    """Which frames teach (the agent's own frames of a correction round do not; the person's count
    --correction-weight times) and which input labels each (--label-lag); returns what the config records."""
    from hakisa.algos.bc import correction_weights, onset_neighbours, onset_weights
    from hakisa.algos.labels import choose_label_lag, hold_pointer, lag_from_clicks

    frame_w = correction_weights(data, args.correction_weight)
    data.indices = data.indices[frame_w[data.indices] > 0]  # the agent's own frames teach nothing
    n_corr = int((np.isin(data.episode_of, data.episode_of[data.actor == 1]) & (data.actor == 0)).sum())
    if data.actor.any():
        print(f"study: {n_corr} correction frames (weight {args.correction_weight}), "
              f"{int((data.actor == 1).sum())} agent frames left out")
    lag_trials: list = []
    recorded = data.actions[:, 0].copy()
    if args.label_lag == "auto":
        lag = 0.0
        if store.meta.get("source") == "teacher" and len(data.episode_ids) >= 2:
            lag, lag_trials = choose_label_lag(data, args, fps, make_net, weights_for)
    elif args.label_lag == "visible":
        lag, lag_trials = lag_from_clicks(data, store.input_map, fps)
    else:
        lag = float(args.label_lag)
    # 'auto' leaves its last candidate's labels in place, so even a chosen 0 relabels ('visible' puts them back)
    if lag or (args.label_lag == "auto" and lag_trials):
        data.relabel(lag, 1.0 / fps)
    if args.pointer_labels not in ("recorded", "held"):
        raise SystemExit(f"hakisa: --pointer-labels {args.pointer_labels!r}: 'recorded' or 'held'")
    if args.pointer_labels == "held":
        held = hold_pointer(data, store.input_map)
        print(f"study: {held:.1%} of frames relabelled from noop to `move` where the pointer is", flush=True)
    relabelled = float((data.actions[:, 0] != recorded).mean())
    if args.onset_weight != 1.0:
        frame_w = frame_w * onset_weights(data, store.input_map, args.onset_weight)
    alt = onset_neighbours(data, store.input_map, args.onset_tolerance) if args.onset_tolerance else None
    if lag:
        print(f"study: labels taken {-lag * 1000:.0f} ms after each grab: {relabelled:.1%} of commands changed")
    return {"frame_weights": frame_w, "alt_actions": alt, "correction_frames": n_corr, "label_lag": lag,
            "label_lag_trials": lag_trials, "relabelled": relabelled}


def study(args: StudyArgs) -> dict:
    """Clone the recording in `args.dataset` into `args.out` (best/, checkpoint/, report.json/png), play the clone
    when there is a game to play, and return the summary `hakisa study` prints last."""
    from hakisa.algos.bc import choose_act, fit, plan_schedule
    from hakisa.algos.common import setup_torch, start_run
    from hakisa.data import EpisodeStore, Transitions
    from hakisa.model import load_checkpoint, save_checkpoint
    from hakisa.study_eval import eval_frame_skip, eval_game, evaluate_and_choose
    from hakisa.study_report import warnings_for, write_report

    setup_torch(args.threads, args.seed)
    store = EpisodeStore(args.dataset)
    imap = store.input_map
    spec = replace(store.obs_spec, stack=args.stack) if args.stack else store.obs_spec
    data = Transitions(store, stack=spec.stack, stride=args.stack_stride)
    fps = float(store.meta.get("fps", 15))
    weights_for = weights_fn(args, len(imap.commands))
    make_net = net_factory(args, spec, imap)
    labels = labelled_frames(args, store, data, fps, make_net, weights_for)
    frame_w, alt = labels.pop("frame_weights"), labels.pop("alt_actions")
    train, val = data.split(args.val_fraction, seed=args.seed)
    if len(val) == 0:  # a single episode: no held-out data
        print("study: only one episode, validating on the training data (record a few more games)")
        val = train
    weights, sample_p = weights_for(train)
    counts = np.bincount(train.actions[train.indices, 0], minlength=len(imap.commands))
    torch.manual_seed(args.seed)
    net = make_net()
    out = Path(args.out)
    game, no_game_why = eval_game(args, store)
    frame_skip = eval_frame_skip(args, game, fps)
    sched, every = plan_schedule(args, len(train))
    config = {
        "algo": "bc", "args": asdict(args), "dataset": str(Path(args.dataset).resolve()),
        "game": game.name if game is not None else store.meta.get("game"),
        "game_file": str(game.path.resolve()) if game is not None else None,
        "dataset_fps": fps, "frame_skip": frame_skip, "stack_ticks": frame_skip * args.stack_stride,
        **labels, "steps": sched.steps, "validate_every": every, "class_weights": weights.tolist(),
        "command_counts": counts.tolist(), "train_episodes": train.episode_ids.tolist(),
        "val_episodes": val.episode_ids.tolist(),
    }
    tb = start_run(out, args, config)
    t0 = time.time()
    best, history = fit(net, train, val, args, weights, sample_p, tb=tb, frame_weights=frame_w, alt_actions=alt,
                        on_best=lambda v: save_checkpoint(out / "best", net, config, {"val": v}))
    save_checkpoint(out / "checkpoint", net, config, {"val": history[-1]})
    result = {"run": str(out), "epochs": len(history), "steps": history[-1]["step"],
              "seconds": round(time.time() - t0, 1), "train_transitions": len(train), "val_transitions": len(val),
              "label_lag": labels["label_lag"], "best": {k: v for k, v in best.items() if k != "confusion"}}
    best_net, _ = load_checkpoint(out / "best")
    final = validate_for_report(best_net, val, weights)
    choose_act(best_net, config, result, final, weights, imap)
    save_checkpoint(out / "best", best_net, config, {"val": best})
    result["warnings"] = warnings_for(data, train, final, history, imap)
    for w in result["warnings"]:
        print(f"study: warning: {w}", flush=True)
    if args.eval_episodes:
        if game is None:
            print(f"study: evaluation skipped: {no_game_why}; pass --game NAME|PATH to play it", flush=True)
            result["eval"] = None
        else:
            result["eval"] = evaluate_and_choose(best_net, game, args, frame_skip, config, result, weights,
                                                 lambda: save_checkpoint(out / "best", best_net, config, {"val": best}))
            for k in ("win_rate", "mean_score"):
                if tb and result["eval"].get(k) is not None:
                    tb.add_scalar(f"charts/{k}", result["eval"][k], history[-1]["step"])
            save_checkpoint(out / "best", best_net, config, {"val": best, "eval": result["eval"]})
    result["report"] = str(write_report(out, data, val, final, history, imap, result["warnings"], result))
    if tb:
        tb.close()
    return result


def validate_for_report(net, val, weights) -> dict:
    from hakisa.algos.bc import validate

    return validate(net, val, weights, net.uses_xy, len(net.input_map.commands), keep=12)


def add_args(p: argparse.ArgumentParser) -> None:
    from hakisa.dcargs import add_dataclass_args

    p.add_argument("dataset", help="episode store directory")
    add_dataclass_args(p, StudyArgs, skip=("dataset",))


def main(args) -> int:
    from hakisa.dcargs import from_args

    res = study(from_args(StudyArgs, args))
    print(json.dumps(res))
    return 0
