"""`hakisa sweep`: search learner Args and a game file's reward coefficients with Optuna, resumably.

    hakisa sweep --game duel --algo ppo --param ppo.lr=1e-4:3e-3:log --param reward.dealt=0.1:1.0 \\
        --param reward.taken=0.05:0.5 --trials 20 --minutes 2 --evals 4 --eval-episodes 100
    hakisa sweep ... (the same command again)      # resumes: runs only the trials still missing
    hakisa train --config runs/sweeps/duel-ppo/best.json --seed 3    # re-train the best trial

A parameter is NAME=RANGE. NAME: a learner Args field (`ppo.lr`, or bare `lr`; the prefix must match
--algo), or `reward.<coefficient>` of the game file's rules.reward (`reward.win`, `reward.deltas.boss_hp`,
`reward.boss_hp` for short, or an alias from rules.reward.names such as the duel's `reward.dealt`).
RANGE: LOW:HIGH (a float; an int when the field is an int and both ends are), LOW:HIGH:log, or a,b,c
(categorical). `--space FILE` (JSON/YAML {"ppo.lr": "1e-4:3e-3:log", ...}) says the same.

Each trial trains in the game's simulator with its values (hakisa/phases/train.py's recipe and Args) and
is scored on the UNSHAPED objective: win rate (won-or-lost games) or mean score (score games) over
--eval-episodes on fixed seeds (--eval-seed), in an env built from the unmodified game file. Never the
training return, which moves with the very coefficients being searched. `--evals` evaluations per trial
feed the pruner (median or successive halving); the last one is the trial's value.

Storage is Optuna's journal file (runs/sweeps/NAME/journal.log) or any Optuna URL (sqlite:///x.db).
Resume: finished trials (COMPLETE + PRUNED) count toward --trials; a RUNNING trial whose worker is gone
(kill -9, a lost machine) is marked FAIL with the reason and its parameters are queued again, so it is
neither lost nor counted twice. A worker is "gone" when its process no longer exists (same host: pid and
start time are checked) or, on another host, when its heartbeat is older than STALE_S; a live worker's
trial is never touched, so parallel --jobs and several sweep commands on one journal are safe.
Outputs in runs/sweeps/NAME/: trial-K/ (each trial's run), sweep.csv, importance.png, history.png, best.json.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HEARTBEAT_S = 30.0  # a running trial writes a heartbeat this often ...
STALE_S = 300.0  # ... and one on another host that has been silent this long is taken for dead


# ---- the search space ---------------------------------------------------------------------------
@dataclass
class Param:
    name: str  # the study's parameter name: "ppo.lr", "reward.dealt"
    kind: str  # "learner" (an Args field) or "reward" (a rules.reward coefficient)
    key: str  # the Args field, or the coefficient's name as Game.reward_path reads it
    dist: object  # an optuna distribution


def _number(text: str, where: str):
    try:
        return json.loads(text)
    except ValueError:
        raise SystemExit(f"hakisa sweep --param {where}: {text!r} is not a number") from None


def parse_param(text: str, algo: str, game=None) -> Param:
    """'ppo.lr=1e-4:3e-3:log' -> Param. Errors name the parameter and say what would be accepted."""
    import dataclasses as dc

    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    name, eq, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not eq or not name or not spec:
        raise SystemExit(f"hakisa sweep --param {text!r}: NAME=LOW:HIGH[:log] or NAME=a,b,c expected")
    head, dot, rest = name.partition(".")
    if head == "reward" and dot:
        if game is None:
            raise SystemExit(f"hakisa sweep --param {name}: reward coefficients need a game file (--game)")
        game.reward_path(rest)  # raises GameFileError listing the known coefficients
        kind, key, typ = "reward", rest, "float"
    else:
        learners = ("ppo", "dqn")
        if head in learners and dot:
            if head != algo:
                raise SystemExit(f"hakisa sweep --param {name}: this sweep trains {algo} (--algo), not {head}")
            key = rest
        elif dot:
            raise SystemExit(f"hakisa sweep --param {name}: NAME is {algo}.<Args field>, a bare field, or "
                             "reward.<coefficient>")
        else:
            key = name
        mod = _algo(algo)
        fields = {f.name: f for f in dc.fields(mod.Args)}
        if key not in fields:
            raise SystemExit(f"hakisa sweep --param {name}: {key!r} is not a field of {algo} Args "
                             f"(fields: {', '.join(fields)})")
        kind, name = "learner", f"{algo}.{key}"
        typ = str(fields[key].type)
    parts = spec.split(":")
    if "," in spec or len(parts) == 1:  # categorical: values as JSON where they parse, else strings
        choices = []
        for c in spec.split(","):
            try:
                choices.append(json.loads(c.strip()))
            except ValueError:
                choices.append(c.strip())
        if kind == "reward" and not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
            raise SystemExit(f"hakisa sweep --param {name}: reward coefficients are numbers, got {spec!r}")
        return Param(name, kind, key, CategoricalDistribution(choices))
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise SystemExit(f"hakisa sweep --param {name}={spec}: LOW:HIGH or LOW:HIGH:log expected")
    low, high, log = _number(parts[0], name), _number(parts[1], name), len(parts) == 3
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise SystemExit(f"hakisa sweep --param {name}={spec}: LOW < HIGH, both numbers, expected")
    if log and low <= 0:
        raise SystemExit(f"hakisa sweep --param {name}={spec}: a log range needs LOW > 0")
    if typ.startswith("bool") or typ.startswith("str"):
        raise SystemExit(f"hakisa sweep --param {name}: a {typ} field takes a list of values (a,b), not a range")
    if typ.startswith("int") and isinstance(low, int) and isinstance(high, int):
        return Param(name, kind, key, IntDistribution(low, high, log=log))
    if typ.startswith("int"):
        raise SystemExit(f"hakisa sweep --param {name}={spec}: {key} is an int field: whole-number ends expected")
    return Param(name, kind, key, FloatDistribution(float(low), float(high), log=log))


def parse_space(params: list[str] | None, space_file: str | None, algo: str, game=None) -> list[Param]:
    """--param NAME=RANGE items, then a --space file's {NAME: RANGE or [values]} (a later name replaces)."""
    items = list(params or [])
    if space_file:
        text = Path(space_file).read_text()
        doc = __import__("yaml").safe_load(text) if space_file.endswith((".yaml", ".yml")) else json.loads(text)
        if not isinstance(doc, dict):
            raise SystemExit(f"hakisa sweep --space {space_file}: a mapping NAME: RANGE expected")
        for k, v in doc.items():
            items.append(f"{k}={','.join(map(json.dumps, v)) if isinstance(v, list) else v}")
    space = {}
    for it in items:
        p = parse_param(it, algo, game)
        space[p.name] = p
    if not space:
        raise SystemExit("hakisa sweep: nothing to search: give --param NAME=RANGE (or --space FILE)")
    return list(space.values())


def _algo(name: str):
    if name == "ppo":
        from hakisa.algos import ppo

        return ppo
    from hakisa.algos import dqn

    return dqn


# ---- the settings one sweep keeps for its whole life -------------------------------------------
@dataclass
class SweepConfig:
    """Plain data (JSON), so a worker process or a Ray task gets the same settings as the command."""

    game: str | None = None
    env: str | None = None
    algo: str = "ppo"
    params: list[str] = field(default_factory=list)
    space_file: str | None = None
    trials: int = 20
    steps: int | None = None
    minutes: float | None = None
    evals: int = 3
    eval_episodes: int = 100
    eval_seed: int = 777
    eval_envs: int = 16
    pruner: str = "median"
    storage: str | None = None
    name: str | None = None
    seed: int = 0
    num_envs: int | None = None
    opt: list[str] = field(default_factory=list)
    obs: str | None = None
    encoder: str = "small"
    init: str | None = None
    set: list[str] = field(default_factory=list)
    runs_dir: str = "runs"
    jobs: int = 1
    ray: bool = False
    ray_address: str | None = None
    progress: bool = True

    @property
    def dir(self) -> Path:
        return Path(self.runs_dir) / "sweeps" / self.name

    def fingerprint(self, space: list[Param]) -> dict:
        """What makes two runs the same sweep: resuming with other values would mix incomparable trials."""
        keep = ("game", "env", "algo", "steps", "minutes", "evals", "eval_episodes", "eval_seed", "eval_envs",
                "seed", "num_envs", "opt", "obs", "encoder", "init", "set")
        return {**{k: getattr(self, k) for k in keep}, "space": {p.name: repr(p.dist) for p in space}}


def _load_game(cfg: SweepConfig):
    from hakisa.game import Game

    game = Game.load(cfg.game) if cfg.game else Game.for_env(cfg.env) if cfg.env else None
    if game is None and not cfg.env:
        raise SystemExit("hakisa sweep: give --game NAME|PATH (or --env ID)")
    if game is not None and not game.sim:
        raise SystemExit(f"hakisa sweep: game {game.name!r} has no simulator; sweeps train in a simulator")
    return game


def _storage(cfg: SweepConfig):
    import optuna

    if "://" in cfg.storage:  # sqlite:///x.db, postgresql://...: Optuna opens it
        return cfg.storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(cfg.storage).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return JournalStorage(JournalFileBackend(cfg.storage))


def _open_study(cfg: SweepConfig, worker: int, create: bool = False):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(cfg)
    pruner = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3),
              "halving": optuna.pruners.SuccessiveHalvingPruner, "none": optuna.pruners.NopPruner}[cfg.pruner]()
    # each worker, and each resumed run, seeds its sampler differently: with one seed, parallel workers (or
    # a resumed run's first random trials) would propose exactly the parameters already being tried
    n_before = 0
    if not create:
        n_before = len(optuna.load_study(study_name=cfg.name, storage=storage).trials)
    sampler = optuna.samplers.TPESampler(seed=(cfg.seed * 1_000_003 + worker * 7919 + n_before) % 2**31,
                                         multivariate=True, n_startup_trials=max(3, cfg.trials // 4))
    if create:
        return optuna.create_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner,
                                   direction="maximize", load_if_exists=True)
    return optuna.load_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner)


# ---- liveness: who owns a RUNNING trial, and are they still there -------------------------------
def _proc(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc (Linux), or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", "")
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, starttime field 22
    return fields[0], fields[19]


def _owner() -> dict:
    pid = os.getpid()
    info = _proc(pid)
    return {"host": socket.gethostname(), "pid": pid, "start": info[1] if info else ""}


def _owner_gone(trial) -> str | None:
    """Why a RUNNING trial's worker is gone, or None while it may still be working on it."""
    owner = trial.user_attrs.get("owner")
    now = time.time()
    if owner is None:  # asked for but not yet claimed: only a crash in that instant leaves one like this
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        return "no worker ever claimed it" if now - started > STALE_S else None
    if owner["host"] == socket.gethostname():
        if Path("/proc").is_dir():
            info = _proc(owner["pid"])
            if info is None or info[0] in ("Z", "X") or (owner["start"] and info[1] != owner["start"]):
                return f"its worker (pid {owner['pid']}) is gone"
            return None
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return f"its worker (pid {owner['pid']}) is gone"
        except PermissionError:
            pass
        return None
    beat = trial.user_attrs.get("heartbeat", 0.0)
    if now - beat > STALE_S:
        return f"its worker on {owner['host']} has been silent for {now - beat:.0f} s"
    return None


def reap_stale(study) -> list[int]:
    """Mark RUNNING trials whose worker is gone as FAIL (saying why) and queue their parameters again.
    Returns the numbers of the trials retried. Two reapers racing: the storage refuses the second FAIL."""
    import optuna
    from optuna.trial import TrialState

    retried = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = _owner_gone(t)
        if why is None:
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "failed_because", why)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first and retried it
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        retried.append(t.number)
    return retried


@contextlib.contextmanager
def _ask_lock(cfg: SweepConfig):
    """Workers on this machine take turns to count and ask, so parallel jobs never start more trials than
    --trials (workers on other machines of a Ray cluster can overshoot by a trial: they share no lock)."""
    cfg.dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock, the same small overshoot as across machines
        yield
        return
    with open(cfg.dir / ".ask.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Heartbeat:
    """Writes the trial's `heartbeat` attr every HEARTBEAT_S, so another host can tell it is alive."""

    def __init__(self, study, trial):
        self.study, self.trial, self.stop_ev = study, trial, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a trial finishing meanwhile: nothing to keep alive
                self.study._storage.set_trial_user_attr(self.trial._trial_id, "heartbeat", time.time())

    def stop(self):
        self.stop_ev.set()
        self.thread.join()


def counts(study) -> dict:
    from optuna.trial import TrialState

    c = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    key = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
           TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    for t in study.get_trials(deepcopy=False):
        c[key[t.state]] += 1
    c["finished"] = c["complete"] + c["pruned"]
    c["retried"] = sum(1 for t in study.get_trials(deepcopy=False) if "retry_of" in t.user_attrs)
    return c


# ---- one worker: trials until --trials are finished --------------------------------------------
def work(cfg_dict: dict, worker: int = 0) -> int:
    """Run trials until the study has cfg.trials finished ones (a --jobs process, a Ray task, or inline).
    Returns how many trials this worker ran."""
    import optuna
    from optuna.trial import TrialState

    cfg = SweepConfig(**cfg_dict)
    game = _load_game(cfg)
    space = parse_space(cfg.params, cfg.space_file, cfg.algo, game)
    study = _open_study(cfg, worker)
    ran = 0
    while True:
        with _ask_lock(cfg):
            for n in reap_stale(study):
                _say(cfg, f"trial {n}: its worker is gone: FAIL, its parameters are queued again")
            c = counts(study)
            if c["finished"] + c["running"] >= cfg.trials:
                break  # the rest are running in live workers: they finish them
            trial = study.ask()
            trial.set_user_attr("owner", _owner())
            trial.set_user_attr("heartbeat", time.time())
        beat = _Heartbeat(study, trial)
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
        _say(cfg, f"trial {trial.number}: {shown}  {json.dumps(trial.params)}")
    return ran


def _say(cfg: SweepConfig, msg: str) -> None:
    if cfg.progress:
        print(f"[sweep {cfg.name}] {msg}", flush=True)


def run_trial(trial, cfg: SweepConfig, space: list[Param], game) -> float:
    """Train with the trial's values, evaluate on the fixed seeds at cfg.evals points (the pruner sees
    each), return the last evaluation's unshaped objective."""
    import optuna
    import torch
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from hakisa.dcargs import parse_overrides
    from hakisa.envs.make import make_vec
    from hakisa.evaluate import evaluate
    from hakisa.game import parse_opts
    from hakisa.recipe import game_envs, learner_args, parse_obs

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
    algo = _algo(cfg.algo)
    opts = parse_opts(cfg.opt)
    run_dir = cfg.dir / f"trial-{trial.number}"
    trial.set_user_attr("run_dir", str(run_dir))
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
    spec = envs.obs_spec
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
        _say(cfg, f"trial {trial.number}: eval {st['next']}/{cfg.evals}: {value:.4g}")
        if trial.should_prune():
            raise optuna.TrialPruned()

    if cfg.algo == "ppo":
        hook = lambda net, info: check(net, info["global_step"])  # noqa: E731
    else:  # DQN's hook comes per gradient step; the env steps it stands for
        hook = lambda g, net, target: check(net, a.learning_starts + g * a.train_every)  # noqa: E731
    net0 = None
    if cfg.init:  # every trial starts from the same weights (e.g. a pretrained encoder)
        from hakisa.model import load_checkpoint

        net0, _ = load_checkpoint(cfg.init, input_map=envs.input_map, obs_spec=spec)
    try:
        m = algo.train(envs, a, run_dir, net=net0, on_update=hook)
    finally:
        envs.close()
    net = st["net"]
    if net is None:  # no update ran (a tiny budget): the final checkpoint the learner wrote
        from hakisa.model import load_checkpoint

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


# ---- the command ---------------------------------------------------------------------------------
def run_sweep(**kw) -> dict:
    """The Python API (a notebook): run_sweep(game="duel", params=["ppo.lr=1e-4:3e-3:log"], trials=20,
    minutes=2). Same keywords as SweepConfig; resumes when the storage already has the sweep. Returns
    the summary `hakisa sweep` prints last."""
    cfg = SweepConfig(**kw)
    if not cfg.steps and not cfg.minutes:
        raise SystemExit("hakisa sweep: give each trial a budget: --steps N and/or --minutes M")
    if cfg.evals < 1 or cfg.trials < 1 or cfg.jobs < 1:
        raise SystemExit("hakisa sweep: --evals, --trials and --jobs are at least 1")
    game = _load_game(cfg)
    # absolute: Ray tasks need not start in this directory (on a cluster the journal must be on a shared disk)
    cfg.runs_dir = str(Path(cfg.runs_dir).resolve())
    cfg.name = cfg.name or f"{game.name if game else cfg.env.replace('/', '-')}-{cfg.algo}"
    cfg.storage = cfg.storage or str(cfg.dir / "journal.log")
    space = parse_space(cfg.params, cfg.space_file, cfg.algo, game)
    study = _open_study(cfg, 0, create=True)
    fp = json.loads(json.dumps(cfg.fingerprint(space)))
    old = study.user_attrs.get("sweep")
    if old is None:
        study.set_user_attr("sweep", fp)
    elif old != fp:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {fp.get(k)!r}" for k in fp if old.get(k) != fp.get(k))
        raise SystemExit(f"hakisa sweep: {cfg.storage} holds sweep {cfg.name!r} with other settings ({diff}); "
                         "resume it with the same ones, or give a new --name")
    c = counts(study)
    _say(cfg, f"{c['finished']}/{cfg.trials} trials finished so far; storage {cfg.storage}")
    d = dataclasses.asdict(cfg)
    if cfg.ray:
        from hakisa.distributed import init_ray

        ray = init_ray(cfg.ray_address)
        task = ray.remote(num_cpus=1)(work)
        ray.get([task.remote(d, i) for i in range(cfg.jobs)])
    elif cfg.jobs > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # a fresh interpreter each: no forked torch threads or file locks
        procs = [ctx.Process(target=work, args=(d, i), daemon=False) for i in range(cfg.jobs)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise SystemExit(f"hakisa sweep: {len(bad)} of {cfg.jobs} workers failed (exit {bad[0]}); "
                             "the same command resumes")
    else:
        work(d, 0)
    return write_results(cfg, _open_study(cfg, 0), game, space)


def write_results(cfg: SweepConfig, study, game, space: list[Param]) -> dict:
    """The leaderboard, sweep.csv, importance.png, history.png and best.json (also after a resume)."""
    from optuna.trial import TrialState

    out = cfg.dir
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    _write_csv(out / "sweep.csv", trials)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]

    def rank(t):  # complete trials by value; pruned ones after them, by their last evaluation
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else float("-inf")
        return (t.state == TrialState.COMPLETE, t.value if t.value is not None else last)

    board = sorted(done, key=rank, reverse=True)
    _leaderboard(board[:10], cfg)
    plots = _plots(study, out)
    c = counts(study)
    summary = {"sweep": cfg.name, "dir": str(out), "storage": cfg.storage, "trials": cfg.trials, **c,
               "plots": plots}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = max(complete, key=lambda t: t.value)
        cfg_best = best_config(cfg, best, space, game)
        (out / "best.json").write_text(json.dumps(cfg_best, indent=1) + "\n")
        summary["best"] = {"trial": best.number, "value": best.value, "params": best.params,
                           "objective": best.user_attrs.get("objective"), "config": str(out / "best.json")}
    print(json.dumps(summary))
    return summary


def best_config(cfg: SweepConfig, best, space: list[Param], game) -> dict:
    """A `hakisa train --config` file that trains what the best trial trained (its keys are train's flags)."""
    by_name = {p.name: p for p in space}
    sets, rewards = list(cfg.set), []
    for name, v in best.params.items():
        p = by_name.get(name)
        if p is None:
            continue
        if p.kind == "learner":
            sets.append(f"{p.key}={json.dumps(v)}")
        else:  # written as its rules.reward path, so the file needs no alias to be read
            path, sign = game.reward_path(p.key)
            rewards.append(f"{path}={sign * float(v)!r}")
    return {
        "_sweep": {"name": cfg.name, "storage": cfg.storage, "trial": best.number, "value": best.value,
                   "objective": best.user_attrs.get("objective"), "params": best.params},
        **({"game": cfg.game} if cfg.game else {"env": cfg.env}),
        "algo": cfg.algo, "steps": cfg.steps, "minutes": cfg.minutes, "num_envs": cfg.num_envs, "opt": cfg.opt,
        "obs": cfg.obs, "encoder": cfg.encoder, "init": cfg.init, "seed": cfg.seed, "set": sets, "reward": rewards,
        "run": f"{cfg.name}-best",
    }


def _write_csv(path: Path, trials) -> None:
    """One row per trial (Optuna's trials_dataframe columns, written without pandas)."""
    names = sorted({k for t in trials for k in t.params})
    attrs = ("objective", "retry_of", "failed_because", "run_dir", "global_step", "train_minutes")
    cols = ["number", "state", "value", "datetime_start", "datetime_complete", "duration_s",
            *[f"params_{k}" for k in names], "intermediate_values", *[f"user_attrs_{k}" for k in attrs]]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in trials:
            dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
                t.datetime_start else ""
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value, t.datetime_start or "",
                        t.datetime_complete or "", dur, *[t.params.get(k, "") for k in names],
                        json.dumps(t.intermediate_values), *[t.user_attrs.get(k, "") for k in attrs]])


def _leaderboard(board, cfg: SweepConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep {cfg.name}: top {len(board)}")
    for col in ("trial", "state", "objective", "params", "minutes"):
        table.add_column(col, justify="right" if col in ("trial", "objective", "minutes") else "left")
    for t in board:
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        value = t.value if t.value is not None else last
        mins = (t.datetime_complete - t.datetime_start).total_seconds() / 60 if t.datetime_complete else 0
        params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items())
        table.add_row(str(t.number), t.state.name.lower(), "-" if value is None else f"{value:.4g}", params,
                      f"{mins:.1f}")
    Console().print(table)


def _plots(study, out: Path) -> dict:
    """importance.png and history.png, Optuna's own matplotlib plots; skipped (with why) when meaningless."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    varied = [k for k in {k for t in complete for k in t.params} if len({t.params.get(k) for t in complete}) > 1]
    made = {}
    jobs = {"history.png": (ovm.plot_optimization_history, "no complete trial yet")}
    if len(complete) >= 2 and varied:
        jobs["importance.png"] = (ovm.plot_param_importances, "")
    else:
        print(f"importance.png skipped: it needs 2+ complete trials with a parameter that varies "
              f"({len(complete)} complete)")
    for name, (plot, why) in jobs.items():
        if not complete:
            print(f"{name} skipped: {why}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" warnings from optuna.visualization.matplotlib
            ax = plot(study)
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        made[name] = str(out / name)
    return made


def add_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__
    p.add_argument("--game", default=None, help="a game file with a simulator (a shipped name or a path)")
    p.add_argument("--env", default=None, help="an env id instead (Toy/...): no reward coefficients to search")
    p.add_argument("--algo", choices=["ppo", "dqn"], default="ppo")
    p.add_argument("--param", action="append", default=[], metavar="NAME=RANGE",
                   help="ppo.lr=1e-4:3e-3:log | reward.deltas.boss_hp=-1:-0.1 | ppo.update_epochs=1,2,4")
    p.add_argument("--space", default=None, metavar="FILE", help="JSON/YAML {NAME: RANGE or [values]}")
    p.add_argument("--trials", type=int, default=20, help="finished trials (complete + pruned) to reach")
    p.add_argument("--steps", type=int, default=None, help="env steps per trial")
    p.add_argument("--minutes", type=float, default=None,
                   help="training minutes per trial (evaluations not counted)")
    p.add_argument("--evals", type=int, default=3, help="evaluations per trial (the pruner sees each; the last "
                   "is the trial's value)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--eval-seed", type=int, default=777, help="the evaluation's fixed seed (fights/episodes)")
    p.add_argument("--eval-envs", type=int, default=16, help="envs the evaluation plays at once")
    p.add_argument("--pruner", choices=["median", "halving", "none"], default="median")
    p.add_argument("--storage", default=None,
                   help="a journal file (default runs/sweeps/NAME/journal.log) or an Optuna URL (sqlite:///x.db)")
    p.add_argument("--name", default=None, help="the sweep's name (default <game>-<algo>)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes sharing the storage")
    p.add_argument("--ray", action="store_true", help="run the --jobs workers as Ray tasks (hakisa[ray])")
    p.add_argument("--ray-address", default=None, help="with --ray: join this cluster (default: a local Ray)")
    p.add_argument("--seed", type=int, default=0, help="the training seed of every trial (and the sampler's)")
    p.add_argument("--num-envs", type=int, default=None, help="training envs (default: the game's recipe)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="a game option for training and evaluation")
    p.add_argument("--obs", default=None, help="frame size WxH (default: the game's recipe)")
    p.add_argument("--encoder", default="small")
    p.add_argument("--init", default=None, metavar="CHECKPOINT", help="every trial starts from these weights")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a learner Args value every trial uses (not searched)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--no-progress", action="store_true", help="no line per trial and evaluation")


def main(args) -> int:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SystemExit("hakisa sweep: needs Optuna: pip install 'hakisa[sweep]'") from None
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(SweepConfig)
          if f.name not in ("params", "space_file", "progress")}
    run_sweep(**kw, params=args.param, space_file=args.space, progress=not args.no_progress)
    return 0
