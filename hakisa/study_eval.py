"""How `hakisa study` plays its clone: on which game (`--game`, else the one the dataset was recorded with),
where (its simulator, else its window), and which way the clone acts (argmax or sampled), chosen by playing
both. `args` is the run's `hakisa.phases.study.StudyArgs` (the library reads a verb's options, never imports it).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path


def eval_game(args, store):
    """The game to evaluate on: --game, else the game file the dataset was recorded with (its path is in the
    store's meta), else a shipped game of the recorded name. None, with the reason, when there is none."""
    from hakisa.game import Game, GameFileError

    if args.game:
        return Game.load(args.game), ""
    tried = [t for t in (store.meta.get("game_file"), store.meta.get("game")) if t]
    reasons = []
    for ref in tried:
        try:
            return Game.load(ref), ""
        except GameFileError as e:
            reasons.append(str(e).splitlines()[0])
    if not tried:
        return None, "the dataset names no game"
    return None, f"the dataset's game {' / '.join(map(repr, tried))} did not load ({'; '.join(reasons)})"


BOTH_WAYS_FROM = 5  # games per way below which a difference in play is noise: the offline rule decides


def evaluate_and_choose(net, game, args, frame_skip: int, config: dict, result: dict, weights,
                        save) -> dict:
    """Study's evaluation. With --eval-act auto and at least 5 games, the clone plays them both ways, argmax and
    sampled at the player's rates, and keeps the one that scored more (a tie keeps the offline rule's,
    `preferred_act`). What a wrong press costs is the game's: a click on nothing is free on the zoo's Whack and
    costs a life on Pop, and only play measures it. `save` writes best/ (the window plays it from there)."""
    from hakisa.algos.bc import set_act

    if args.eval_act != "auto" or args.eval_episodes < BOTH_WAYS_FROM:
        return evaluate_clone(net, game, args, frame_skip, config["act"])
    first = config["act"]
    ways = (first, "argmax" if first == "sample" else "sample")
    print(f"study: playing {args.eval_episodes} games each way ({', '.join(ways)}) to choose how the clone acts",
          flush=True)
    from hakisa.envs.rules_watch import RulesMismatch

    runs, stalled = {}, {}
    for mode in ways:
        set_act(net, config, mode, weights)
        save()
        try:
            runs[mode] = evaluate_clone(net, game, args, frame_skip, mode, tag=f"-{mode}")
        except RulesMismatch as e:
            # a game that waits for a press (Circus Linux launches each clown on a click) stalls for good under a
            # clone that never makes it that way: that way loses, the other may still play
            stalled[mode] = str(e).splitlines()[0]
            print(f"study: the clone's {mode} games stopped, so it will not act that way: {stalled[mode]}", flush=True)
    if not runs:
        raise RulesMismatch(f"the clone's games stopped both ways: {stalled[first]}")
    key = next(k for k in ("win_rate", "mean_score", "mean_return") if next(iter(runs.values())).get(k) is not None)
    chosen = max(runs, key=lambda m: (runs[m][key], m == first))
    set_act(net, config, chosen, weights)
    result["act"] = chosen
    result["eval_by_act"] = {m: {k: r.get(k) for k in ("episodes", key, "score_ci95")} for m, r in runs.items()}
    result["eval_by_act"].update({m: {"stopped": why} for m, why in stalled.items()})
    print(f"study: the clone plays {chosen} actions ({key}: "
          + ", ".join(f"{m} {r[key]:.3g}" for m, r in runs.items()) + ")", flush=True)
    return runs[chosen]


def evaluate_clone(net, game, args, frame_skip: int, preferred: str, tag: str = "") -> dict:
    """The clone plays its game: the simulator when there is one (unless eval_live), else the live window."""
    from hakisa.game import parse_opts

    mode = preferred if args.eval_act == "auto" else args.eval_act
    opts = parse_opts([o for o in args.eval_opt.split(",") if o])
    if game.sim and not args.eval_live:
        from hakisa.evaluate import evaluate

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
                net, env, args.eval_episodes, mode, seed=args.seed + 777
            )
        finally:
            env.close()
        net.train()
        return {
            **res,
            "where": "sim",
            "options": game.resolve_options(opts),
            "act": mode,
            **{k: kw[k] for k in ("frame_skip", "action_delay", "stack_ticks") if k in kw},
        }
    from hakisa.play_live import play_live

    print(f"study: evaluating on {game.name}'s window, {args.eval_episodes} episodes, {mode} (no simulator)",
          flush=True)
    res = play_live(
        Path(args.out) / "best",
        game=game,
        opts=opts,
        episodes=args.eval_episodes,
        deterministic=mode == "argmax",
        out=Path(args.out) / f"eval_live{tag}",
        seed=args.seed,
        progress=args.progress,
        probe_trials=0,
    )
    return {
        **{k: res[k] for k in ("episodes", "win_rate", "mean_score", "score_ci95", "mean_return") if k in res},
        "where": "live",
        "options": res["options"],
        "act": mode,
    }


def eval_frame_skip(args, game, fps: float) -> int:
    """A simulator that runs in ticks (its file's sim.tick_hz) steps as many ticks per decision as the recording."""
    tick_hz = (game.sim or {}).get("tick_hz") if game is not None else None
    frame_skip = max(1, int(round(tick_hz / fps))) if tick_hz else 1
    if args.eval_decision_ticks and frame_skip % args.eval_decision_ticks:
        raise SystemExit(
            f"--eval-decision-ticks {args.eval_decision_ticks} must divide the recording's {frame_skip} ticks per frame"
        )
    return frame_skip
