"""A uniform-random agent's score on a stable-retro game, the bar a learner must beat (issue 4: 3x random).

    python benchmarks/retro_random_baseline.py                        # Airstriker, 25 episodes
    python benchmarks/retro_random_baseline.py --episodes 5 --no-raw  # quick look

"score" = the episode's sum of score deltas (the scenario reward; `info["game_score"]` at the end).
Two random agents, because "random" depends on the action set:
  - `hakisa`: uniform over the input map's commands, through RetroEnv (frame skip, turbo fire), which
    is exactly the action space our learners get;
  - `raw_buttons`: each of the pad's 12 buttons pressed with p=0.5 on every emulator frame, no frame
    skip (gym-retro's `env.action_space.sample()`), for comparison with other people's numbers.
Also reports frames/s: the bare emulator's, and the adapter's (emulator + preprocess + frame stack).
The last line printed is JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hakisa.envs.retro import AIRSTRIKER, RetroEnv, raw_fps, resolve_game


def hakisa_random(game: str, episodes: int, seed: int, frame_skip: int) -> dict:
    env = RetroEnv(game, frame_skip=frame_skip)
    env.action_space.seed(seed)
    scores, lengths, frames, t = [], [], 0, time.perf_counter()
    try:
        for ep in range(episodes):
            env.reset(seed=seed + ep)
            done, n = False, 0
            while not done:
                _, _, term, trunc, info = env.step(env.action_space.sample())
                done, n = term or trunc, n + 1
            scores.append(info["game_score"])
            lengths.append(n)
            frames += env._frame
    finally:
        env.close()
    dt = time.perf_counter() - t
    return {"mean_score": float(np.mean(scores)), "std_score": float(np.std(scores)),
            "min_score": float(np.min(scores)), "max_score": float(np.max(scores)),
            "mean_length_steps": float(np.mean(lengths)), "frame_skip": frame_skip,
            "adapter_frames_per_s": frames / dt, "adapter_steps_per_s": sum(lengths) / dt, "scores": scores}


def raw_button_random(game: str, episodes: int, seed: int) -> dict:
    import stable_retro

    env = stable_retro.make(resolve_game(game), render_mode=None)  # FILTERED actions, as gym-retro shipped it
    rng = np.random.default_rng(seed)
    scores = []
    try:
        for _ in range(episodes):
            env.reset()
            done, total = False, 0.0
            while not done:
                _, r, term, trunc, _ = env.step(rng.integers(0, 2, env.num_buttons, dtype=np.uint8))
                total, done = total + r, term or trunc
            scores.append(total)
    finally:
        env.close()
    return {"mean_score": float(np.mean(scores)), "std_score": float(np.std(scores)), "scores": scores}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default=AIRSTRIKER)
    p.add_argument("--episodes", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frame-skip", type=int, default=4)
    p.add_argument("--no-raw", action="store_true", help="skip the raw-button random agent")
    a = p.parse_args()
    out = {"game": resolve_game(a.game), "episodes": a.episodes, "seed": a.seed,
           "raw_emulator_frames_per_s": raw_fps(a.game)}
    out["hakisa"] = hakisa_random(a.game, a.episodes, a.seed, a.frame_skip)
    if not a.no_raw:
        out["raw_buttons"] = raw_button_random(a.game, a.episodes, a.seed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
