"""`hakisa duel bench-train`: our PPO's env steps/s vs Stable-Baselines3 PPO on the duel's simulator (Hakisa/Duel-v0).

Both learners get the same vector env (DuelVecEnv, N fights), the same network (HakisaNet's encoder
+ trunk feeding the command/x/y logits and the value; SB3 gets it as a features extractor with an
empty net_arch) and the same PPO settings (rollout length, minibatch size, epochs, lr, clip,
entropy). A run is "steps/s over `steps` env steps including the updates". Both are timed one after
the other (SB3-by-default in a process of its own, below), after a warm-up, so the machine's load hits both alike; the
order alternates over `--repeats` rounds and each side's best round is reported.
SB3 runs twice too: as it runs by default, in a fresh process of its own ("sb3_sps", what the ratios
divide by; warmed up there first), and in this process, which has the allocator setting every `hakisa`
learner makes (`keep_freed_memory`: glibc keeps freed tensors' memory for the next ones instead of
page-faulting it in anew), as "sb3_same_allocator_sps" with its own ratios: the share of our speed that
comes from that one process setting, which SB3 could adopt, is in plain sight.
Ours runs twice: in float32 ("ratio", SB3's own precision) and with the encoder in bf16 autocast
("ratio_bf16"); "ratio_default" is the one `hakisa train` uses on the duel on this CPU (bf16 where the
CPU has it natively, as the duel's recipe asks). The last line printed is the JSON result.

The JSON also carries `floor`: what no PPO implementation can skip on this machine, each part timed
alone on the same env and net: the env steps, one forward pass per step for the actions, and the
update's forward+backward+Adam minibatches. From those, `ceiling_serial` is the ratio to SB3 that a PPO
with no overhead at all would reach, and `ceiling_overlap` the ratio it would reach if every part also
ran on all cores at once, perfectly overlapped, at each part's best per-core speed (1 thread or all).
A ratio target above `ceiling_overlap` cannot be met here without changing the env or the network,
which this bench gives SB3 as well.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time

import numpy as np
import torch

from hakisa.algos import ppo
from hakisa.envs.make import make_vec
from hakisa.model import HakisaNet
from hakisa.preprocess import ObsSpec

PPO_SETTINGS = dict(num_steps=128, num_minibatches=4, update_epochs=4, lr=2.5e-4, clip_coef=0.1, ent_coef=0.01)


def _sb3_vec(envs):
    """Adapt a Gymnasium SAME_STEP vector env to SB3's VecEnv API (SB3 also autoresets in-step)."""
    from stable_baselines3.common.vec_env import VecEnv

    class Adapter(VecEnv):
        """SB3's VecEnv over `envs`: done = terminated | truncated, and each finished episode's info carries
        SB3's `terminal_observation` (Gymnasium's `final_obs`) and `TimeLimit.truncated`. `get_attr` reads the
        vector env's attribute; set_attr, env_method and seed do nothing; `close` closes `envs`."""

        def __init__(self):
            super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)
            self._actions = None

        def reset(self):
            obs, _ = envs.reset(seed=0)
            return obs

        def step_async(self, actions):
            self._actions = np.asarray(actions)

        def step_wait(self):
            obs, r, term, trunc, info = envs.step(self._actions)
            done = term | trunc
            infos = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(done):  # SB3's convention: the finished episode's last obs
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
            return obs, r, done, infos

        def close(self):
            envs.close()

        def get_attr(self, name, indices=None):
            return [getattr(envs, name, None)] * self.num_envs

        def set_attr(self, name, value, indices=None):
            pass

        def env_method(self, name, *a, indices=None, **kw):
            return [None] * self.num_envs

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * self.num_envs

        def seed(self, seed=None):
            return [None] * self.num_envs

    return Adapter()


def _sb3_model(envs, seed: int, hidden: int, encoder: str):
    from stable_baselines3 import PPO
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    spec, imap = envs.obs_spec, envs.input_map

    class HakisaFeatures(BaseFeaturesExtractor):
        """HakisaNet's encoder + trunk; SB3 hands it float obs (normalize_images=False), we scale."""

        def __init__(self, observation_space):
            super().__init__(observation_space, hidden)
            net = HakisaNet(spec, imap, encoder, hidden)
            # contiguous while SB3 builds the policy (its orthogonal init views weights flat, which a
            # channels-last tensor refuses); switched back to channels-last below, as ours runs
            self.encoder, self.trunk = net.encoder.to(memory_format=torch.contiguous_format), net.trunk

        def forward(self, obs):
            # the same channels-last convolutions as HakisaNet.features, so both sides get that speed-up
            return self.trunk(self.encoder((obs / 255.0).contiguous(memory_format=torch.channels_last)))

    n = envs.num_envs
    s = PPO_SETTINGS
    model = PPO(
        "CnnPolicy",
        _sb3_vec(envs),
        n_steps=s["num_steps"],
        batch_size=n * s["num_steps"] // s["num_minibatches"],
        n_epochs=s["update_epochs"],
        learning_rate=s["lr"],
        clip_range=s["clip_coef"],
        ent_coef=s["ent_coef"],
        gae_lambda=0.95,
        gamma=0.99,
        max_grad_norm=0.5,
        vf_coef=0.5,
        seed=seed,
        device="cpu",
        verbose=0,
        policy_kwargs=dict(
            features_extractor_class=HakisaFeatures, net_arch=[], normalize_images=False, share_features_extractor=True
        ),
    )
    # SB3's default logger makes a /tmp/SB3-<date> folder per run even with verbose=0: log nowhere instead
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(None, []))
    model.policy.features_extractor.encoder.to(memory_format=torch.channels_last)
    return model


def _envs(num_envs: int, seed: int, obs: ObsSpec | None):
    return make_vec("Hakisa/Duel-v0", num_envs, seed=seed, **({"obs_spec": obs} if obs is not None else {}))


def time_ours(
    num_envs: int, steps: int, seed: int, bf16: bool | None = False, hidden: int = 256, encoder: str = "small",
    obs: ObsSpec | None = None,
) -> float:
    envs = _envs(num_envs, seed, obs)
    args = ppo.Args(
        total_steps=steps,
        seed=seed,
        progress=False,
        hidden=hidden,
        encoder=encoder,
        bf16=bf16,
        threads=torch.get_num_threads(),
        **PPO_SETTINGS,
    )
    t = time.perf_counter()
    ppo.train(envs, args, None)
    dt = time.perf_counter() - t
    envs.close()
    return steps / dt


def time_sb3(num_envs: int, steps: int, seed: int, hidden: int = 256, encoder: str = "small",
             obs: ObsSpec | None = None) -> float:
    envs = _envs(num_envs, seed, obs)
    model = _sb3_model(envs, seed, hidden, encoder)
    t = time.perf_counter()
    model.learn(total_timesteps=steps)
    dt = time.perf_counter() - t
    envs.close()
    return steps / dt


def _sb3_fresh(num_envs: int, steps: int, seed: int, obs: ObsSpec | None, threads: int) -> float:
    """time_sb3 in a new process: glibc as SB3 runs by default (this one keeps freed memory, and once a heap
    holds freed chunks no setting makes it page-fault like a fresh one), after a one-update warm-up there."""
    torch.set_num_threads(threads)
    time_sb3(num_envs, num_envs * PPO_SETTINGS["num_steps"], seed, obs=obs)
    return time_sb3(num_envs, steps, seed, obs=obs)


def _ms(fn, reps: int) -> float:
    fn()  # warm-up: oneDNN picks and builds its kernels on the first call of each shape
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e3


def floor_parts(num_envs: int, seed: int, obs: ObsSpec | None, bf16: bool, reps: int = 8) -> dict:
    """Milliseconds of the work every PPO does, each part timed alone: one env step of the n envs, one
    forward pass over their frames, and one minibatch of forward + backward + Adam over the whole net (a
    plain sum of the heads as the loss: no sampling, log-probs, GAE or bookkeeping), the net parts at 1
    thread and at every core."""
    s = PPO_SETTINGS
    envs = _envs(num_envs, seed, obs)
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acts = [np.stack([envs.single_action_space.sample() for _ in range(num_envs)]) for _ in range(reps + 1)]
    frames = [np.asarray(envs.step(a)[0]).copy() for a in acts]  # real frames for the net, not zeros
    out = {"env_step_ms": _ms(lambda: envs.step(acts[rng.integers(len(acts))]), 4 * reps)}
    envs.close()
    mb = num_envs * s["num_steps"] // s["num_minibatches"]
    batch = torch.from_numpy(np.concatenate(frames * (mb // (num_envs * len(frames)) + 1))[:mb])
    batch = batch.contiguous(memory_format=torch.channels_last)  # laid out for the encoder already, as PPO's are
    one = torch.from_numpy(frames[0])
    net = HakisaNet(envs.obs_spec, envs.input_map, "small", 256)
    net.bf16 = bf16
    opt = torch.optim.Adam(net.parameters(), lr=s["lr"], eps=1e-5)

    def train_step():
        loss = sum(o.float().sum() for o in net.policy(batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer():
        with torch.inference_mode():
            net.policy(one)

    threads0 = torch.get_num_threads()
    for th in sorted({1, threads0, os.cpu_count() or 1}):
        torch.set_num_threads(th)
        out[f"infer_ms_{th}t"] = _ms(infer, 4 * reps)
        out[f"train_minibatch_ms_{th}t"] = _ms(train_step, max(2, reps // 2))
    torch.set_num_threads(threads0)
    return out


def floor(parts: list[dict], num_envs: int, threads: int) -> dict:
    """A PPO update's floor from floor_parts timed in several rounds, each part at its fastest round (the
    most generous floor the machine showed): `serial` runs the parts one after another at the bench's
    thread count; `overlap` spreads each part's core-milliseconds, at its most efficient thread count,
    over every core with no idle time: an ideal (benchmarks/update_schedules.json: real 2-process schedules
    got 0.85-1.27x of serial)."""
    best = {k: min(p[k] for p in parts) for k in parts[0]}
    s, cores = PPO_SETTINGS, os.cpu_count() or 1
    T, n_mb = s["num_steps"], s["update_epochs"] * s["num_minibatches"]
    counts = [int(k[len("infer_ms_"):-1]) for k in best if k.startswith("infer_ms_")]
    core_ms = lambda part: min(th * best[f"{part}_ms_{th}t"] for th in counts)
    serial = T * best["env_step_ms"] + T * best[f"infer_ms_{threads}t"] + n_mb * best[f"train_minibatch_ms_{threads}t"]
    overlap = (T * best["env_step_ms"] + T * core_ms("infer") + n_mb * core_ms("train_minibatch")) / cores
    per_update = num_envs * T
    return {**{k: round(v, 3) for k, v in best.items()}, "update_ms_serial": round(serial, 1),
            "update_ms_overlap": round(overlap, 1), "sps_serial": round(per_update / serial * 1e3, 1),
            "sps_overlap": round(per_update / overlap * 1e3, 1)}

def _rounds(num_envs: int, steps: int, seed: int, obs: ObsSpec | None, threads: int, repeats: int, quiet: bool):
    """`repeats` rounds of the four runs, their order reversed every other round, and the floor's parts in
    each. Returns (ours, ours_bf16, sb3, sb3_same_allocator: env steps/s per round, parts per precision)."""
    ours, ours_bf16, sb3, sb3_alloc = [], [], [], []
    parts: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    spawn = multiprocessing.get_context("spawn")
    for r in range(repeats):
        order = [("ours", ours), ("sb3", sb3), ("bf16", ours_bf16), ("sb3_same_allocator", sb3_alloc)]
        if r % 2:
            order.reverse()
        for name, out in order:
            if name == "sb3":
                # a new process per SB3 run, ended before the next run starts (a Pool that replaces its worker
                # after each task starts that replacement, ~1.9 s of CPU importing torch, during the next run: ours)
                with spawn.Pool(1) as fresh:
                    out.append(fresh.apply(_sb3_fresh, (num_envs, steps, seed, obs, threads)))
                    fresh.close()
                    fresh.join()
            elif name == "sb3_same_allocator":
                out.append(time_sb3(num_envs, steps, seed, obs=obs))
            else:
                out.append(time_ours(num_envs, steps, seed, bf16=name == "bf16", obs=obs))
            if not quiet:
                print(f"{name}: {out[-1]:.1f} env steps/s", flush=True)
        for name in parts:  # in every round, so the floor meets the same swings in the machine's speed as the runs
            parts[name].append(floor_parts(num_envs, seed, obs, bf16=name == "bf16"))
    return ours, ours_bf16, sb3, sb3_alloc, parts


def run(args) -> int:
    if getattr(args, "algo", "ppo") != "ppo":
        raise SystemExit("hakisa duel bench-train: only --algo ppo has an SB3 counterpart to compare with")
    num_envs = args.num_envs or 16
    per_update = num_envs * PPO_SETTINGS["num_steps"]
    steps = max(per_update, (args.steps or 4 * per_update) // per_update * per_update)  # whole updates only
    repeats = int(getattr(args, "repeats", 2))
    obs = getattr(args, "obs", None)
    if isinstance(obs, str):
        from hakisa.recipe import parse_obs

        obs = parse_obs(obs)
    quiet = getattr(args, "json_only", False)
    from hakisa.algos.common import native_bf16, setup_torch

    setup_torch(0)  # 2 threads on an idle 2-core box, 1 when it is already loaded (see setup_torch)
    threads = torch.get_num_threads()
    native = native_bf16()
    load0 = os.getloadavg()[0]
    time_ours(num_envs, per_update, args.seed, obs=obs)  # warm-up: imports, allocator, oneDNN kernels
    time_sb3(num_envs, per_update, args.seed, obs=obs)
    ours, ours_bf16, sb3, sb3_alloc, parts = _rounds(num_envs, steps, args.seed, obs, threads, repeats, quiet)
    best_sb3, best_sb3_alloc = max(sb3), max(sb3_alloc)
    best_default = max(ours_bf16) if native else max(ours)  # what `hakisa train` runs here
    floors = {}
    for name in parts:
        f = floors[name] = floor(parts[name], num_envs, threads)
        f["ceiling_serial"] = round(f["sps_serial"] / best_sb3, 2)
        f["ceiling_overlap"] = round(f["sps_overlap"] / best_sb3, 2)
        if not quiet:
            print(f"floor {name}: a PPO with no overhead {f['sps_serial']:.0f} steps/s (ratio {f['ceiling_serial']}); "
                  f"every core, perfectly overlapped: {f['sps_overlap']:.0f} (ratio {f['ceiling_overlap']})",
                  flush=True)
    default = "bf16" if native else "fp32"
    res = {
        "bench": "train",
        "env": "Hakisa/Duel-v0",
        "obs": f"{obs.width}x{obs.height}" if obs is not None else "default",
        "algo": "ppo",
        "num_envs": num_envs,
        "steps": steps,
        "repeats": repeats,
        "torch_threads": threads,
        "ppo_settings": PPO_SETTINGS,
        "ours_sps": round(max(ours), 1),
        "ours_bf16_sps": round(max(ours_bf16), 1),
        "sb3_sps": round(best_sb3, 1),
        "ratio": round(max(ours) / best_sb3, 2),
        "ratio_bf16": round(max(ours_bf16) / best_sb3, 2),
        # what `hakisa train` runs on the duel here: bf16 convolutions where the CPU has them natively
        "native_bf16": native,
        "ratio_default": round(best_default / best_sb3, 2),
        "sb3_same_allocator_sps": round(best_sb3_alloc, 1),
        "ratio_same_allocator": round(max(ours) / best_sb3_alloc, 2),
        "ratio_default_same_allocator": round(best_default / best_sb3_alloc, 2),
        "floor": floors,
        "ceiling_fp32": floors["fp32"]["ceiling_overlap"],
        "ceiling_default": floors[default]["ceiling_overlap"],
        "all": {
            "ours": [round(v, 1) for v in ours],
            "ours_bf16": [round(v, 1) for v in ours_bf16],
            "sb3": [round(v, 1) for v in sb3],
            "sb3_same_allocator": [round(v, 1) for v in sb3_alloc],
        },
        "loadavg_start": round(load0, 2),
        "loadavg_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "target_ratio": 2.0,
        "target_ratio_default": 3.0,
    }
    print(json.dumps(res))
    return 0
