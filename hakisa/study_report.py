"""What `hakisa study` tells a person about a clone: report.json + report.png in the run folder, and warnings.

A clone that plays no better than an untrained agent usually says why in its numbers: a command head at
chance, a head that copies the most common action or its own last move, x/y heads that never find the target,
outputs that do not move with the screen, or clicks recorded on frames that show nothing where they landed. Each warning
names what was measured and what to try.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hakisa.algos.labels import click_visibility

if TYPE_CHECKING:
    import torch


def _newest(frames: np.ndarray, channels: int) -> np.ndarray:
    """[k*C, H, W] stack -> the newest frame as [H, W] (gray) or [H, W, 3]."""
    f = frames[-channels:]
    return f[0] if channels == 1 else np.moveaxis(f, 0, -1)


# below this, a head's log-probabilities hardly move from frame to frame (std over frames, mean over bins)
SPREAD_MIN = 0.05


def output_spread(logits: torch.Tensor) -> float:
    """How much a head's outputs change across frames: the std over frames of its log-probabilities, averaged
    over its bins (bc.validate's logit_spread over all heads at once). ~0: the same output whatever the screen."""
    import torch.nn.functional as F

    return float(F.log_softmax(logits.float(), 1).std(0).mean()) if len(logits) > 1 else 0.0


def unchanging_outputs(spread: float, what: str = "the clone's outputs") -> str | None:
    """The warning for outputs that do not move with the screen (study, and diagnose per head), else None."""
    if spread >= SPREAD_MIN:
        return None
    return f"{what} hardly change with the screen (spread {spread:.3f}): it plays the same whatever it sees"


def warnings_for(data, train, final: dict, history: list[dict], imap) -> list[str]:
    """Warnings a person can act on, from the best clone's held-out validation and the recording itself."""
    out = []
    n_frames = len(train.indices)
    n_eps = len(train.episode_ids)
    if n_eps < 5 or n_frames < 1500:
        out.append(f"only {n_eps} training episodes ({n_frames} frames): record more games (a few minutes of play "
                   "is a start; 10+ minutes is better)")
    conf = np.asarray(final["confusion"][0])
    seen = int((conf.sum(1) > 0).sum())
    if seen >= 2:
        chance = 1.0 / seen
        if final["balanced_acc_cmd"] < chance + 0.1:
            out.append(f"the command head is at chance after {len(history)} validations (balanced accuracy "
                       f"{final['balanced_acc_cmd']:.2f}, chance {chance:.2f}): the frames may not show what the "
                       "player reacted to (check the obs size and region with `hakisa game check`), or the "
                       "recording is too short")
        rep = final.get("repeat_baseline")
        # only a stack can show the last move; on one frame a clone this weak just reads too little
        if rep is not None and rep >= chance + 0.1 and final["balanced_acc_cmd"] < rep + 0.05 and train.stack > 1:
            onsets = final.get("acc_cmd_on_onsets")
            out.append(f"the command head scores about what repeating the frame before's command scores (balanced "
                       f"accuracy {final['balanced_acc_cmd']:.2f} vs {rep:.2f}"
                       + (f"; right on {onsets:.0%} of the frames where the player starts a command" if onsets
                          is not None else "") + "): a stack of frames shows the last move, and the clone may "
                       "copy it instead of reacting to the screen; the frames where you start a command are what it "
                       "must learn (report.png shows where it disagrees): record more games")
        if final["predicted_share_top"] >= 0.9 and final["majority_baseline"] < 0.85:
            top = imap.commands[int(conf.sum(0).argmax())].name
            out.append(f"the clone copies the most common action: it says {top!r} on "
                       f"{final['predicted_share_top']:.0%} of held-out frames, the player on "
                       f"{final['majority_baseline']:.0%} of them")
    for h, name, bins in ((1, "x", imap.x_bins), (2, "y", imap.y_bins)):
        cf = np.asarray(final["confusion"][h])
        k = int((cf.sum(1) > 0).sum())
        b = final.get(f"balanced_acc_{name}")
        rows = cf.sum(1)
        spread_out = rows.max() < 0.6 * max(rows.sum(), 1)  # one cell for most clicks: its majority is right
        if bins > 1 and k >= 2 and b is not None and b < 1.5 / k and spread_out:
            out.append(f"the {name} head is near chance (balanced accuracy {b:.2f} over {k} bins): the clone does "
                       "not find where to point")
    still = unchanging_outputs(final.get("logit_spread", 1.0))
    if still:
        out.append(still)
    vis = click_visibility(data, imap)
    if vis is not None and vis < 0.5:
        out.append(f"frames labelled click show nothing near the clicked cell on {1 - vis:.0%} of click frames: "
                   "the player (or a scripted teacher) clicked before the target was visible in the observation, "
                   "or the observation is too small to show it; look at a few with `hakisa data info`")
    return out


def _action_text(imap, a) -> str:
    c = imap.commands[int(a[0])]
    return f"{c.name} @{int(a[1])},{int(a[2])}" if imap.uses_xy[int(a[0])] else c.name


def disagreement_rows(data, found: list) -> list[dict]:
    """validate()'s (frame index, teacher action, clone action) -> rows naming the episode (its id in the store)
    and the frame within it, with the command that opens the data viewer there."""
    from hakisa.data.view import view_command

    root = Path(data.store.root).resolve()
    rows = []
    for i, teacher, clone in found:
        ep, f = int(data.episode_of[i]), int(i - data.ep_start[i])
        rows.append({"frame": int(i), "episode": ep, "episode_frame": f, "teacher": teacher, "clone": clone,
                     "view": view_command(root, ep, f)})
    return rows


def write_report(out: Path, data, val, final: dict, history: list[dict], imap, warnings: list[str],
                 result: dict) -> Path:
    """report.json (per-head accuracy per validation, confusion matrices, disagreements, warnings) and
    report.png (curves, confusion matrices, frames where teacher and clone disagree, both actions drawn).
    Each disagreement names its episode and frame and the `hakisa data view` command that opens it (`view`;
    the first is printed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    keys = ("step", "loss", "train_loss", "acc_cmd", "balanced_acc_cmd", "acc_x", "acc_y", "balanced_acc_x",
            "balanced_acc_y", "majority_baseline", "repeat_baseline", "acc_cmd_on_onsets", "predicted_share_top",
            "logit_spread")
    doc = {
        "commands": [c.name for c in imap.commands],
        "history": [{k: v.get(k) for k in keys} for v in history],
        "best": {k: final.get(k) for k in keys if k != "step"},
        "confusion": final["confusion"],
        "disagreements": disagreement_rows(data, final.get("disagreements", [])),
        "warnings": warnings,
        "label_lag": result.get("label_lag"),
        "eval": result.get("eval"),
    }
    doc["view"] = [d["view"] for d in doc["disagreements"]]
    (out / "report.json").write_text(json.dumps(doc, indent=1))
    if doc["view"]:
        print(f"study: a frame where the clone and you disagree: {doc['view'][0]} "
              f"({len(doc['view'])} such commands in {out / 'report.json'})", flush=True)

    mouse = imap.x_bins > 1 or imap.y_bins > 1
    strip = doc["disagreements"][:8]
    fig = plt.figure(figsize=(14, 9 if strip else 5.5))
    rows = 2 if strip else 1
    ax = fig.add_subplot(rows, 4, 1)
    steps = [v["step"] for v in history]
    for k in ("balanced_acc_cmd", "balanced_acc_x", "balanced_acc_y"):
        ys = [v.get(k) for v in history]
        if any(y is not None for y in ys):
            ax.plot(steps, [np.nan if y is None else y for y in ys], label=k.replace("balanced_acc_", "balanced "))
    ax.set_xlabel("gradient step")
    ax.set_ylim(0, 1)
    ax.set_title("held-out balanced accuracy")
    ax.legend(fontsize=7)
    heads = [(0, "command", [c.name for c in imap.commands])]
    if mouse:
        heads += [(1, "x bin", None), (2, "y bin", None)]
    for j, (h, name, labels) in enumerate(heads):
        cm = np.asarray(final["confusion"][h], float)
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax = fig.add_subplot(rows, 4, 2 + j)
        ax.imshow(cm, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{name}: true (rows) vs clone")
        if labels and len(labels) <= 12:
            ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
    c = data.frame_shape[0]
    _, h, w = data.frame_shape
    for j, d in enumerate(strip):
        ax = fig.add_subplot(rows, 8, 9 + j)
        frame = _newest(data.stacked(np.array([d["frame"]]))[0], c)
        ax.imshow(frame, cmap="gray" if frame.ndim == 2 else None, vmin=0, vmax=255)
        for a, color in ((d["teacher"], "lime"), (d["clone"], "red")):
            if imap.uses_xy[int(a[0])]:
                ax.plot((a[1] + 0.5) * w / imap.x_bins, (a[2] + 0.5) * h / imap.y_bins, "+", color=color, ms=12)
        ax.set_title(f"ep {d['episode']} #{d['episode_frame']}\nT {_action_text(imap, d['teacher'])}\n"
                     f"C {_action_text(imap, d['clone'])}", fontsize=7)
        ax.axis("off")
    fig.suptitle("study: " + ("; ".join(warnings)[:160] if warnings else "no warnings"), fontsize=9)
    fig.tight_layout()
    png = out / "report.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)
    return png
