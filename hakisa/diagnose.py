"""`hakisa diagnose CHECKPOINT --out DIR`: is this network healthy, and what does it look at?

On a batch of REAL observations (the checkpoint's own policy playing its env, so the states are the
ones it actually visits):
  - dead units per layer: ReLU outputs that are zero for every observation (forward hooks);
  - exploding / vanishing gradients: per-layer gradient norms of one sample A2C-style update (policy
    gradient + value + Q regression on the rollout's discounted returns); nothing is stepped;
  - action entropy per head (nats, and as a fraction of the uniform policy's);
  - how much each head's outputs change across those frames (a clone whose heads ignore the screen is
    flagged with study's "hardly change with the screen" warning);
  - saliency: |d chosen-command logit / d input| on a few frames, saved as PNGs.
With --data DATASET the frames come from an episode store instead (a recording of the game: what the
player saw), and the checkpoint's game is not opened. Writes DIR/diagnose.json (the report) and the images;
`diagnose()` returns the report dict.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from hakisa.rollout import collect_observations, target_for, torch_threads

HEAD_ATTRS = (("command", "cmd"), ("x", "x"), ("y", "y"))
# layers that feed each head; a head with one bin (or x/y when no command uses them) gets no gradient
# by construction, which is "unused", not "vanishing"
HEAD_LAYERS = {"x": ("pi_x", "adv_x"), "y": ("pi_y", "adv_y")}


# ---- the checks -----------------------------------------------------------------------------------
def dead_units(net: nn.Module, obs: torch.Tensor) -> dict:
    """Per ReLU (named after the layer it follows): units (channels / features) that never fire."""
    acts: dict[str, list[torch.Tensor]] = {}
    names = dict(net.named_modules())
    order = list(names)
    hooks = []
    for name, m in names.items():
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU)):
            prev = order[order.index(name) - 1] if order.index(name) > 0 else name
            label = f"{prev} ({type(names[prev]).__name__}+{type(m).__name__})"
            # reused activation modules (torchvision backbones) get one entry per call
            hooks.append(
                m.register_forward_hook(
                    lambda _m, _i, out, label=label: acts.setdefault(label, []).append(out.detach())
                )
            )
    try:
        with torch.no_grad():
            for chunk in obs.split(256):
                net(chunk)
    finally:
        for h in hooks:
            h.remove()
    report = {}
    for label, outs in acts.items():
        per_call = len(outs) // max(1, len(obs.split(256)))
        for k in range(per_call):
            x = torch.cat(outs[k::per_call])  # [N, C, ...]
            fired = (x > 0).flatten(2).any(2) if x.dim() > 2 else (x > 0)  # [N, C]
            dead = ~fired.any(0)
            key = label if per_call == 1 else f"{label} #{k}"
            report[key] = {
                "units": int(dead.numel()),
                "dead": int(dead.sum()),
                "dead_frac": round(float(dead.float().mean()), 4),
                "zero_frac": round(float((x <= 0).float().mean()), 4),
            }
    return report


def sample_update_gradients(
    net,
    obs: torch.Tensor,
    actions: torch.Tensor,
    returns: torch.Tensor,
    vanish: float = 1e-8,
    explode: float = 1e3,
    ent_coef: float = 0.01,
) -> dict:
    """Per-layer gradient norms of one A2C-style loss on the rollout (no optimizer step)."""
    net.zero_grad(set_to_none=True)
    h = net(obs)
    logp, ent = net.dist_logp_entropy(h.cmd, h.x, h.y, actions)
    adv = (returns - h.value).detach()
    if len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    q_taken = sum(q.gather(1, actions[:, i : i + 1]).squeeze(1) for i, q in enumerate((h.q_cmd, h.q_x, h.q_y))) / 3
    losses = {
        "policy": -(logp * adv).mean(),
        "entropy": -ent_coef * ent.mean(),
        "value": 0.5 * F.mse_loss(h.value, returns),
        "q": F.smooth_l1_loss(q_taken, returns),
    }
    sum(losses.values()).backward()
    unused = _unused_layers(net)
    layers: dict[str, dict] = {}
    for name, p in net.named_parameters():
        layer = name.rsplit(".", 1)[0]
        d = layers.setdefault(layer, {"g2": 0.0, "w2": 0.0, "finite": True})
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        d["g2"] += float(g.double().pow(2).sum())
        d["w2"] += float(p.detach().double().pow(2).sum())
        d["finite"] &= bool(torch.isfinite(g).all())
    report, total = {}, 0.0
    for layer, d in layers.items():
        gn, wn = d["g2"] ** 0.5, d["w2"] ** 0.5
        total += d["g2"]
        if layer.split(".")[0] in unused:
            status = "unused"
        elif not d["finite"] or gn > explode:
            status = "exploding"
        elif gn < vanish:
            status = "vanishing"
        else:
            status = "ok"
        report[layer] = {"grad_norm": gn, "param_norm": wn, "ratio": gn / (wn + 1e-12), "status": status}
    net.zero_grad(set_to_none=True)
    return {
        "layers": report,
        "total_grad_norm": total**0.5,
        "losses": {k: float(v.detach()) for k, v in losses.items()},
        "thresholds": {"vanish": vanish, "explode": explode},
    }


def _unused_layers(net) -> set[str]:
    imap = net.input_map
    out = set()
    for head, bins in (("x", imap.x_bins), ("y", imap.y_bins)):
        if bins <= 1 or not imap.uses_xy.any():
            out.update(HEAD_LAYERS[head])
    return out


def head_entropy(net, obs: torch.Tensor) -> dict:
    """Mean entropy of each policy head over the batch; x/y also where the greedy command uses them."""
    with torch.no_grad():
        h = net(obs)
    xy_used = net.uses_xy[h.cmd.argmax(1)]
    out = {}
    for head, attr in HEAD_ATTRS:
        logits = getattr(h, attr)
        lp = F.log_softmax(logits.float(), 1)
        ent = -(lp.exp() * lp).sum(1)
        n = logits.shape[1]
        d = {
            "bins": n,
            "mean": float(ent.mean()),
            "min": float(ent.min()),
            "max_possible": float(np.log(n)),
            "normalized": float(ent.mean() / np.log(n)) if n > 1 else 0.0,
            "mean_max_prob": float(lp.exp().max(1).values.mean()),
        }
        if head != "command":
            d["mean_where_used"] = float(ent[xy_used].mean()) if xy_used.any() else None
        out[head] = d
    return out


def head_spread(net, obs: torch.Tensor, q: bool = False) -> dict:
    """Per head with more than one bin (x/y only where a command uses them): how much its outputs change across
    the frames (study_report.output_spread), and whether that is too little to be reading the screen.
    q: the Q heads, for a checkpoint that acts on Q (DQN)."""
    from hakisa.study_report import SPREAD_MIN, output_spread

    with torch.no_grad():
        outs = [net(chunk) for chunk in obs.split(256)]
    out = {}
    for head, attr in HEAD_ATTRS:
        logits = torch.cat([getattr(o, f"q_{attr}" if q else attr) for o in outs])
        if logits.shape[1] < 2 or (head != "command" and not net.input_map.uses_xy.any()):
            continue
        spread = output_spread(logits)
        out[head] = {"spread": round(spread, 5), "bins": int(logits.shape[1]), "still": spread < SPREAD_MIN}
    return out


def saliency(net, obs: torch.Tensor, out_dir: Path, frames: int = 4) -> list[dict]:
    """|grad of the greedy command's logit w.r.t. the input|, on up to `frames` observations chosen to
    show different commands. One PNG per frame: [latest frame | saliency | overlay]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        greedy = net(obs).cmd.argmax(1)
    picks, seen = [], set()
    for i, c in enumerate(greedy.tolist()):  # first frame of each distinct command, then fill in order
        if c not in seen:
            seen.add(c), picks.append(i)
    picks += [i for i in np.linspace(0, len(obs) - 1, frames).astype(int) if i not in picks]
    picks = picks[:frames]
    x = obs[picks].float().requires_grad_(True)  # uint8 values as float: features() divides by 255
    logits = net(x).cmd
    chosen = logits.argmax(1)
    logits.gather(1, chosen[:, None]).sum().backward()
    sal = x.grad.abs().sum(1).numpy()  # over the stacked frames/channels -> [k, H, W]
    c = net.obs_spec.channels
    names = [cm.name for cm in net.input_map.commands]
    out = []
    for k, i in enumerate(picks):
        frame = obs[i, -c:].numpy().transpose(1, 2, 0)  # the latest frame of the stack
        frame = frame[..., 0] if c == 1 else frame
        s = sal[k] / (sal[k].max() + 1e-12)
        fig, axes = plt.subplots(1, 3, figsize=(12, 2.8))
        titles = [f"obs #{i} (latest frame)", f"saliency: {names[int(chosen[k])]}", "overlay"]
        axes[0].imshow(frame, cmap="gray" if c == 1 else None)
        axes[1].imshow(s, cmap="inferno")
        axes[2].imshow(frame, cmap="gray" if c == 1 else None)
        axes[2].imshow(s, cmap="inferno", alpha=0.55)
        for ax, t in zip(axes, titles):
            ax.set_title(t, fontsize=9)
            ax.axis("off")
        path = out_dir / f"saliency_{k}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        path.with_suffix(".json").write_text(json.dumps({"file": path.name, "panels": [{"title": t} for t in titles]}))
        # where the mass is: centre of saliency in fractions of the frame (a cheap "looks at" summary)
        ys, xs = np.indices(s.shape)
        w = s / (s.sum() + 1e-12)
        out.append(
            {
                "file": str(path),
                "obs_index": int(i),
                "command": names[int(chosen[k])],
                "centre_xy": [
                    round(float((xs * w).sum() / s.shape[1]), 3),
                    round(float((ys * w).sum() / s.shape[0]), 3),
                ],
            }
        )
    return out


# ---- the verb -----------------------------------------------------------------------------------
def diagnose(
    checkpoint: str | Path,
    out: str | Path,
    env: str | None = None,
    opts: dict | None = None,
    n_obs: int = 256,
    seed: int = 0,
    frames: int = 4,
    num_envs: int = 8,
    threads: int = 1,
    data: str | Path | None = None,
) -> dict:
    """Run every check on `checkpoint`; write out/diagnose.json and the saliency PNGs; return the report.
    data: an episode store to take the frames from instead of playing the checkpoint's game.
    threads: torch intra-op threads for the rollout (tiny batches: 1 is fastest on a busy box; 0 = default)."""
    from hakisa.game import recorded_game_file
    from hakisa.model import act_mode, find_checkpoint, load_checkpoint

    net, config = load_checkpoint(checkpoint)
    net.eval()
    if data is None:
        env = env or recorded_game_file(find_checkpoint(checkpoint))
        target_for(config, env)  # which game it plays, known before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with torch_threads(threads):
        if data is not None:
            d = observations_from_store(data, net, n_obs)
        else:
            d = collect_observations(config, n_obs, env=env, seed=seed, net=net, num_envs=num_envs, opts=opts)
        obs = torch.from_numpy(d["obs"])
        acts, rets = torch.from_numpy(d["actions"]).long(), torch.from_numpy(d["returns"])
        report = {
            "checkpoint": str(checkpoint),
            "env": d["env_id"],
            "options": opts or {},
            "observations": len(obs),
            "params": sum(p.numel() for p in net.parameters()),
            "model": net.model_config(),
            "dead_units": dead_units(net, obs),
            "gradients": sample_update_gradients(net, obs, acts, rets),
            "entropy": head_entropy(net, obs),
            "spread": head_spread(net, obs, q=act_mode(config) == "q"),
            "saliency": saliency(net, obs, out, frames),
        }
    report["flags"] = _flags(report)
    (out / "diagnose.json").write_text(json.dumps(report, indent=1))
    return report


def _flags(report: dict) -> list[str]:
    """What a person should look at first: heads that ignore the screen, dead layers, bad gradients, a
    command head that never hesitates."""
    from hakisa.study_report import unchanging_outputs

    n = report["observations"]
    flags = [unchanging_outputs(v["spread"], f"the {head} head's outputs (over {n} frames)")
             for head, v in report["spread"].items() if v["still"]]
    flags += [
        f"{k}: {v['dead']}/{v['units']} dead units" for k, v in report["dead_units"].items() if v["dead_frac"] >= 0.5
    ]
    flags += [
        f"{k}: {v['status']} gradient ({v['grad_norm']:.3g})"
        for k, v in report["gradients"]["layers"].items()
        if v["status"] in ("exploding", "vanishing")
    ]
    ent = report["entropy"]["command"]
    if ent["bins"] > 1 and ent["normalized"] < 0.05:
        flags.append(f"command head nearly deterministic (entropy {ent['normalized']:.1%} of uniform)")
    return flags


def observations_from_store(path: str | Path, net, n: int) -> dict:
    """Up to `n` stacked observations spread evenly over an episode store (the frames a player saw), their
    recorded actions and discounted returns (within each episode), as collect_observations returns them."""
    from hakisa.data import DataError, EpisodeStore, Transitions

    store = EpisodeStore(path)
    c, h, w = store.frame_shape
    spec = net.obs_spec
    if (c, h, w) != (spec.channels, spec.height, spec.width):
        raise DataError(f"{path} holds {w}x{h}x{c} frames; the checkpoint sees {spec.width}x{spec.height}x"
                         f"{spec.channels}")
    data = Transitions(store, stack=spec.stack)
    idx = data.indices[np.unique(np.linspace(0, len(data.indices) - 1, min(n, len(data.indices))).astype(int))]
    ret, g = np.zeros(data.n_frames, np.float32), 0.0
    for i in reversed(range(data.n_frames)):  # 0.99-discounted, restarting at each episode's end
        last = data.dones[i] or i + 1 == data.n_frames or data.episode_of[i + 1] != data.episode_of[i]
        g = data.rewards[i] + (0.0 if last else 0.99 * g)
        ret[i] = g
    return {"obs": data.stacked(idx), "actions": data.actions[idx].astype(np.int64), "returns": ret[idx],
            "env_id": str(store.meta.get("game") or store.root)}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint dir, or a run dir (best/ then checkpoint/)")
    p.add_argument("--game", "--env", dest="env", metavar="GAME", default=None,
                   help="a game file or env id to draw observations from (default: the checkpoint's)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="a game option from its file")
    p.add_argument("--out", default=None, help="output dir (default: <checkpoint>/diagnose)")
    p.add_argument("--obs", type=int, default=256, help="real observations to collect")
    p.add_argument("--data", default=None, metavar="DATASET",
                   help="take the observations from this episode store instead of playing the game")
    p.add_argument("--frames", type=int, default=4, help="saliency frames")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: leave torch's default)")


def main(args) -> int:
    from rich.console import Console
    from rich.table import Table

    out = args.out or str(Path(args.checkpoint) / "diagnose")
    from hakisa.game import parse_opts

    r = diagnose(
        args.checkpoint,
        out,
        args.env,
        parse_opts(args.opt),
        args.obs,
        args.seed,
        args.frames,
        args.num_envs,
        args.threads,
        args.data,
    )
    con = Console()
    t = Table(title=f"dead units ({r['observations']} obs from {r['env']})")
    for col in ("layer", "dead / units", "zero frac"):
        t.add_column(col)
    for k, v in r["dead_units"].items():
        t.add_row(k, f"{v['dead']}/{v['units']}", f"{v['zero_frac']:.2f}")
    con.print(t)
    t = Table(title=f"gradients of one sample update (total norm {r['gradients']['total_grad_norm']:.3g})")
    for col in ("layer", "grad norm", "grad/param", "status"):
        t.add_column(col)
    for k, v in r["gradients"]["layers"].items():
        t.add_row(k, f"{v['grad_norm']:.3g}", f"{v['ratio']:.3g}", v["status"])
    con.print(t)
    con.print(
        "entropy: "
        + ", ".join(
            f"{h} {e['mean']:.3f} nats ({e['normalized']:.0%} of uniform)"
            for h, e in r["entropy"].items()
            if e["bins"] > 1
        )
    )
    con.print("output spread across frames: " + (", ".join(f"{h} {v['spread']:.3f}" for h, v in r["spread"].items())
                                                 or "no head with more than one bin"))
    con.print("flags: " + ("; ".join(r["flags"]) or "none"))
    for s in r["saliency"]:
        print(s["file"])
    print(Path(out) / "diagnose.json")
    return 0
