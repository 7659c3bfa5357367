"""One sweep worker and the trials it runs: ask, train with the trial's values, score the unshaped
objective on fixed seeds at --evals points (the pruner sees each), tell."""
from __future__ import annotations

import json
import os
import time

from hakisa.sweep.config import SweepConfig, load_game
from hakisa.sweep.space import Param, algo_module, parse_space
from hakisa.sweep.storage import Heartbeat, ask_lock, counts, open_study, owner_info, reap_stale


def work(cfg_dict: dict, worker: int = 0) -> int:
    """Run trials until the study has cfg.trials finished ones (a --jobs process, a Ray task, or inline).
    Returns how many trials this worker ran."""
    import optuna
    from optuna.trial import TrialState

    cfg = SweepConfig(**cfg_dict)
    game = load_game(cfg)
    space = parse_space(cfg.params, cfg.space_file, cfg.algo, game)
    study = open_study(cfg, worker)
    ran = 0
    while True:
        with ask_lock(cfg):
            for n in reap_stale(study):
                say(cfg, f"trial {n}: its worker is gone: FAIL, its parameters are queued again")
            c = counts(study)
            if c["finished"] + c["running"] >= cfg.trials:
                break  # the rest are running in live workers: they finish them
            trial = study.ask()
            trial.set_user_attr("owner", owner_info())
            trial.set_user_attr("heartbeat", time.time())
        beat = Heartbeat(study, trial)
        state, value = TrialState.FAIL, None
        try:
            value = run_trial(trial, cfg, space, game)
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except KeyboardInterrupt:  # stopped from outside, like a kill: FAIL, and its parameters go back
            beat.stop()
            trial.set_user_attr("failed_because", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
            raise
        except Exception as e:  # a trial that raised would raise again: FAIL with the error, not retried
            beat.stop()
            trial.set_user_attr("failed_because", f"{type(e).__name__}: {e}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            raise
        beat.stop()
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        ran += 1
        shown = f"{value:.4g}" if value is not None else "pruned"
        say(cfg, f"trial {trial.number}: {shown}  {json.dumps(trial.params)}")
    return ran


def say(cfg: SweepConfig, msg: str) -> None:
    if cfg.progress:
        print(f"[sweep {cfg.name}] {msg}", flush=True)


def suggest(trial, space: list[Param]) -> tuple[dict, dict]:
    """The trial's values: (learner Args overrides, reward coefficients), keyed as each is applied."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    learner, reward = {}, {}
    for p in space:
        d = p.dist
        if isinstance(d, CategoricalDistribution):
            v = trial.suggest_categorical(p.name, d.choices)
        elif isinstance(d, IntDistribution):
            v = trial.suggest_int(p.name, d.low, d.high, log=d.log)
        else:
            v = trial.suggest_float(p.name, d.low, d.high, log=d.log)
        (learner if p.kind == "learner" else reward)[p.key] = v
    return learner, reward


def training_setup(cfg: SweepConfig, game, learner: dict, reward: dict, opts: dict):
    """(training envs, the learner's Args) for one trial: the game with the trial's reward, its recipe,
    then --set, then the trial's learner values."""
    from hakisa.dcargs import parse_overrides
    from hakisa.envs.make import make_vec
    from hakisa.recipe import game_envs, learner_args, parse_obs

    algo = algo_module(cfg.algo)
    if game is not None:
        envs, recipe = game_envs(game.with_reward(reward), cfg.num_envs, cfg.seed, opts, cfg.obs)
    else:
        recipe = {}
        envs = make_vec(cfg.env, cfg.num_envs or 16, seed=cfg.seed,
                        **({"obs_spec": parse_obs(cfg.obs)} if cfg.obs else {}))
    overrides = {**parse_overrides(algo.Args, cfg.set), **learner}
    if cfg.jobs > 1 and "threads" not in overrides:  # parallel workers share the cores
        overrides["threads"] = max(1, (os.cpu_count() or 1) // cfg.jobs)
    a = learner_args(algo, recipe, steps=cfg.steps, minutes=cfg.minutes, seed=cfg.seed, encoder=cfg.encoder,
                     progress=False, overrides=overrides)
    return envs, a


def scorer(trial, cfg: SweepConfig, game, opts: dict, spec):
    """score(net) -> the unshaped objective over cfg.eval_episodes on the fixed evaluation seeds."""
    from hakisa.envs.make import make_vec
    from hakisa.evaluate import evaluate

    mode = "q" if cfg.algo == "dqn" else "argmax"

    def score(net) -> float:
        # a fresh env from the UNMODIFIED game file on the same seeds each time: the objective never
        # depends on the reward coefficients under search (nor on what an earlier evaluation played)
        n = min(cfg.eval_envs, cfg.eval_episodes)
        if game is not None:
            env = game.sim_vec(n, seed=cfg.eval_seed, opts=opts, obs_spec=spec)
        else:
            env = make_vec(cfg.env, n, seed=cfg.eval_seed, **({"obs_spec": spec} if cfg.obs else {}))
        try:
            s = evaluate(net, env, cfg.eval_episodes, mode, seed=cfg.eval_seed)
        finally:
            env.close()
        key = _objective_key(game, s)
        trial.set_user_attr("objective", key)
        return float(s[key])

    return score


def pruning_hook(trial, cfg: SweepConfig, a, score):
    """(the learner's on_update hook, its state): the hook scores the net at each of the cfg.evals - 1
    intermediate marks of the budget (steps or minutes, evaluation time not counted), reports it and
    raises TrialPruned when the pruner says so; state["net"] is the latest net the learner passed."""
    import optuna

    marks = [k / cfg.evals for k in range(1, cfg.evals)]  # the intermediate evaluations; the last is after
    st = {"next": 0, "net": None, "t0": time.time(), "eval_s": 0.0}

    def progress(global_step: int) -> float:
        p = global_step / max(1, a.total_steps)
        if a.max_minutes:
            p = max(p, (time.time() - st["t0"] - st["eval_s"]) / (60 * a.max_minutes))
        return p

    def check(net, global_step: int) -> None:
        st["net"] = net
        if st["next"] >= len(marks) or progress(global_step) < marks[st["next"]]:
            return
        while st["next"] < len(marks) and progress(global_step) >= marks[st["next"]]:
            st["next"] += 1
        t = time.time()
        value = score(net)
        net.train()
        st["eval_s"] += time.time() - t
        trial.report(value, st["next"])
        say(cfg, f"trial {trial.number}: eval {st['next']}/{cfg.evals}: {value:.4g}")
        if trial.should_prune():
            raise optuna.TrialPruned()

    if cfg.algo == "ppo":
        hook = lambda net, info: check(net, info["global_step"])  # noqa: E731
    else:  # DQN's hook comes per gradient step; the env steps it stands for
        hook = lambda g, net, target: check(net, a.learning_starts + g * a.train_every)  # noqa: E731
    return hook, st


def run_trial(trial, cfg: SweepConfig, space: list[Param], game) -> float:
    """Train with the trial's values, evaluate on the fixed seeds at cfg.evals points (the pruner sees
    each), return the last evaluation's unshaped objective."""
    import torch

    from hakisa.game import parse_opts
    from hakisa.model import load_checkpoint

    learner, reward = suggest(trial, space)
    opts = parse_opts(cfg.opt)
    run_dir = cfg.dir / f"trial-{trial.number}"
    trial.set_user_attr("run_dir", str(run_dir))
    envs, a = training_setup(cfg, game, learner, reward, opts)
    spec = envs.obs_spec
    score = scorer(trial, cfg, game, opts, spec)
    hook, st = pruning_hook(trial, cfg, a, score)
    net0 = None
    if cfg.init:  # every trial starts from the same weights (e.g. a pretrained encoder)
        net0, _ = load_checkpoint(cfg.init, input_map=envs.input_map, obs_spec=spec)
    try:
        m = algo_module(cfg.algo).train(envs, a, run_dir, net=net0, on_update=hook)
    finally:
        envs.close()
    net = st["net"]
    if net is None:  # no update ran (a tiny budget): the final checkpoint the learner wrote
        net, _ = load_checkpoint(run_dir / "checkpoint", input_map=envs.input_map, obs_spec=spec)
    with torch.inference_mode():
        value = score(net)
    trial.report(value, cfg.evals)
    trial.set_user_attr("global_step", int(m.get("global_step", 0)))
    trial.set_user_attr("train_minutes", round(float(m.get("time_s", 0.0)) / 60, 3))
    return value


def _objective_key(game, summary: dict) -> str:
    """win_rate for won-or-lost games, mean_score for score games; mean_return only for a bare env id
    (no game file, so no coefficient of it can be searched: its return is the env's own)."""
    if game is not None:
        key = "win_rate" if game.won_or_lost else "mean_score" if game.score else None
        if key is None or key not in summary:
            raise SystemExit(f"hakisa sweep: game {game.name!r}'s simulator reports no "
                             f"{key or 'winner or score'}: nothing unshaped to score trials on")
        return key
    return next(k for k in ("win_rate", "mean_score", "mean_return") if k in summary)
