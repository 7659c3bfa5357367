"""Behaviour cloning learns from a small dataset, and the check that says so rejects an agent that learned nothing.

The dataset: the scripted expert fighting the duel sim, written through the EpisodeWriter exactly as the
recorder would (one frame, the action held, reward, done). The full browser version (real page, real X
keys, >= 20 fights, the >= 70 % bar) is benchmarks/teacher_study_bench.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hakisa.algos.bc import class_weights, validate
from hakisa.data import EpisodeStore, EpisodeWriter, Transitions
from hakisa.games.duel.evaluate import evaluate_duel
from hakisa.phases.study import StudyArgs, study
from hakisa.preprocess import ObsSpec

SPEC = ObsSpec(width=80, height=45)  # half resolution keeps the default test run short on 2 cores


def write_expert_dataset(root, fights: int, tier: str = "normal", seed: int = 0, n_envs: int = 4) -> float:
    """The scripted expert in the sim -> an episode store. Returns the expert's win rate."""
    from hakisa.games.duel.env import DuelVecEnv
    from hakisa.games.duel.expert import expert_keys
    from hakisa.games.duel.sim import COMMAND_KEYS

    to_cmd = np.full(256, -1)
    to_cmd[COMMAND_KEYS] = np.arange(len(COMMAND_KEYS))
    env = DuelVecEnv(n_envs, tier=tier, seed=seed, obs_spec=SPEC)
    obs, _ = env.reset()
    c = SPEC.channels
    running = [[] for _ in range(n_envs)]
    done, wins = 0, 0
    with EpisodeWriter(root, {"input_map": env.input_map, "obs_spec": SPEC, "fps": 15, "source": "teacher",
                              "game": "duel-sim"}) as w:
        while done < fights:
            cmd = to_cmd[expert_keys(env.fights.sim.state)]
            newest = obs[:, -c:].copy()  # the frame seen before the action
            obs, r, term, _, info = env.step(cmd)
            for i in range(n_envs):
                running[i].append((newest[i], cmd[i], r[i], term[i]))
                if term[i]:
                    if done < fights:
                        w.begin_episode()
                        for t, (f, a, ri, di) in enumerate(running[i]):
                            w.add(f, [a, 0, 0], ri, di, t=t / 15)
                        w.end_episode(winner=int(info["winner"][i]))
                        wins += int(info["winner"][i] == 1)
                    done += 1
                    running[i] = []
    return wins / fights


def learned_something(val: dict, sim: dict, untrained_sim: dict) -> bool:
    """The bar: held-out command accuracy well above always-the-majority, balanced accuracy well above
    chance (~0.17 over the 6 commands the expert uses), and more damage to the boss in the sim than the
    same network untrained."""
    return (val["acc_cmd"] >= val["majority_baseline"] + 0.05 and val["balanced_acc_cmd"] >= 0.30
            and sim["mean_boss_damage"] >= untrained_sim["mean_boss_damage"] + 10)


def test_class_weights():
    w = class_weights(np.array([800, 100, 0, 100]), "sqrt")
    assert w[2] == 0 and w[1] > w[0] and np.isclose((w * [800, 100, 0, 100]).sum(), 1000)
    assert np.allclose(class_weights(np.array([5, 5]), "inverse"), 1)
    with pytest.raises(ValueError):
        class_weights(np.array([1]), "bogus")


def test_bc_learns_from_a_small_dataset(tmp_path):
    expert_wr = write_expert_dataset(tmp_path / "ds", fights=8, seed=3)
    args = StudyArgs(dataset=str(tmp_path / "ds"), out=str(tmp_path / "run"), epochs=4, steps_per_epoch=60,
                     batch_size=64, lr=1e-3, hidden=128, patience=4, val_fraction=0.25, progress=False, seed=0,
                     encoder="small", shift=0, eval_episodes=0)
    res = study(args)
    from hakisa.model import HakisaNet, load_checkpoint

    net, cfg = load_checkpoint(tmp_path / "run" / "best")  # a normal Hakisa checkpoint
    assert cfg["algo"]["algo"] == "bc" and (tmp_path / "run" / "checkpoint" / "model.safetensors").exists()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    # the split is by episode: no fight is in both
    assert not set(cfg["algo"]["train_episodes"]) & set(cfg["algo"]["val_episodes"])

    store = EpisodeStore(tmp_path / "ds")
    data = Transitions(store, stack=SPEC.stack)
    _, val = data.split(0.25, seed=0)
    weights = torch.ones(len(store.input_map.commands))
    uses_xy = torch.as_tensor(store.input_map.uses_xy)
    if cfg["algo"].get("cmd_prior_corrected"):  # a clone that plays sampled had its class weights taken out
        from hakisa.algos.bc import prior_correction

        with torch.no_grad():
            net.pi_cmd.bias -= prior_correction(torch.as_tensor(cfg["algo"]["class_weights"]))
    v_trained = validate(net, val, weights, uses_xy, len(store.input_map.commands))
    assert np.isclose(v_trained["acc_cmd"], res["best"]["acc_cmd"])  # the checkpoint is the reported one
    torch.manual_seed(0)
    untrained = HakisaNet(SPEC, store.input_map, hidden=128)
    v_untrained = validate(untrained, val, weights, uses_xy, len(store.input_map.commands))

    # the first 20 s of 8 sim fights each: enough to see who hits the boss
    sim_trained = evaluate_duel(net, episodes=8, frame_skip=4, seed=99, max_steps=300)
    sim_untrained = evaluate_duel(untrained, episodes=8, frame_skip=4, seed=99, max_steps=300)
    print({"expert_win_rate": expert_wr, "val": res["best"], "sim": sim_trained, "untrained_sim": sim_untrained})
    assert learned_something(res["best"], sim_trained, sim_untrained), (res["best"], sim_trained, sim_untrained)
    # and the same bar rejects the agent that learned nothing
    assert not learned_something(v_untrained, sim_untrained, sim_untrained)


def test_perception_pretraining_learns_to_read_the_duel_state(tmp_path):
    """`hakisa duel perception` on a tiny budget: its held-out error on the sim's true state must fall well
    below the untrained net's, and the positions (the easiest thing on screen) must be read clearly."""
    from hakisa.games.duel.perception import PerceptionArgs, train_perception

    res = train_perception(PerceptionArgs(out=str(tmp_path / "perc"), frames=6000, val_frames=1500, epochs=3,
                                          num_envs=12, progress=False))
    from hakisa.model import load_checkpoint

    net, cfg = load_checkpoint(tmp_path / "perc")  # a normal checkpoint (the run dir resolves to it)
    per = cfg["metrics"]["val_mse_per_target"]
    print(res, per)
    assert cfg["algo"]["algo"] == "duel-perception" and net.obs_spec == SPEC
    assert res["val_mse"] < 0.75 * res["val_mse_untrained"], res
    assert per["knight_x"] < 0.5 and per["boss_x"] < 0.5, per  # z-scored: 1.0 is "knows nothing"


def test_study_init_takes_encoder_and_trunk_only_and_freeze_keeps_them(tmp_path):
    from hakisa.games.duel.env import DuelEnv
    from hakisa.model import HakisaNet, load_checkpoint, save_checkpoint
    from hakisa.phases.study import init_features

    imap = DuelEnv(obs_spec=SPEC).input_map
    torch.manual_seed(1)
    donor = HakisaNet(SPEC, imap)
    save_checkpoint(tmp_path / "donor", donor, {"algo": "duel-perception"})
    torch.manual_seed(2)
    net = HakisaNet(SPEC, imap)
    init_features(net, str(tmp_path / "donor"))
    d, n = donor.state_dict(), net.state_dict()
    for k in (k for k in d if k.endswith("weight")):  # (biases start at 0 in both nets)
        same = torch.equal(d[k], n[k])
        assert same == k.startswith(("encoder.", "trunk.")), k  # heads stay fresh
    with pytest.raises(SystemExit, match="frames"):
        init_features(HakisaNet(ObsSpec(width=160, height=90), imap), str(tmp_path / "donor"))

    write_expert_dataset(tmp_path / "ds", fights=2, seed=5)
    study(StudyArgs(dataset=str(tmp_path / "ds"), out=str(tmp_path / "run"), init=str(tmp_path / "donor"),
                    freeze="trunk", epochs=1, steps_per_epoch=5, progress=False))
    trained, _ = load_checkpoint(tmp_path / "run" / "checkpoint")
    t = trained.state_dict()
    assert all(torch.equal(d[k], t[k]) for k in d if k.startswith(("encoder.", "trunk.")))
    assert not torch.equal(d["pi_cmd.weight"], t["pi_cmd.weight"])


def test_shipped_perception_encoder_reads_the_state_better_than_an_untrained_one():
    """pretrained:duel-perception, probed the standard way: a least-squares linear read-out of its trunk
    features, fitted on 2,400 fresh sim frames and scored on 1,200 others (other seeds than its training)."""
    from hakisa.games.duel.perception import collect
    from hakisa.model import HakisaNet, load_checkpoint

    net, cfg = load_checkpoint("pretrained:duel-perception")
    assert cfg["algo"]["algo"] == "duel-perception"
    O, T, names = collect(3600, seed=424242, obs_spec=net.obs_spec, num_envs=12)
    T = (T - T.mean(0)) / (T.std(0) + 1e-2)

    def probe_mse(model) -> np.ndarray:
        with torch.no_grad():
            f = torch.cat([model.features(torch.from_numpy(O[i:i + 600])) for i in range(0, len(O), 600)]).numpy()
        X = np.hstack([f, np.ones((len(f), 1), np.float32)])
        w, *_ = np.linalg.lstsq(X[:2400], T[:2400], rcond=None)
        return ((X[2400:] @ w - T[2400:]) ** 2).mean(0)

    torch.manual_seed(0)
    trained, untrained = probe_mse(net), probe_mse(HakisaNet(net.obs_spec, net.input_map))
    per = dict(zip(names, trained.round(3)))
    print({"pretrained": float(trained.mean()), "untrained": float(untrained.mean())}, per)
    assert trained.mean() < 0.5 * untrained.mean()
    # what the expert's decisions hinge on: where both fighters are, the wind-up bar, the stamina bar
    assert max(per["dx"], per["windup_left"], per["stamina"]) < 0.15, per


def test_random_shift_moves_whole_stacks_within_the_pad():
    import torch

    from hakisa.algos.augment import random_shift

    obs = torch.zeros(64, 2, 12, 16, dtype=torch.uint8)
    obs[:, :, 6, 8] = 255  # one bright pixel, the same in both frames of every stack
    out = random_shift(obs, 2, np.random.default_rng(0))
    assert out.shape == obs.shape and out.dtype == torch.uint8
    pos = [tuple(torch.nonzero(o[0] == 255)[0].tolist()) for o in out]
    assert all(abs(y - 6) <= 2 and abs(x - 8) <= 2 for y, x in pos) and len(set(pos)) > 10  # moved, within the pad
    assert all(torch.equal(o[0], o[1]) for o in out)  # one offset per stack: its frames stay aligned


def test_shifted_clicks_follow_their_target():
    """A mouse game's frames are shifted with their click labels: the label after a shift is the cell the
    shifted target lies in, for every offset the shift draws."""
    import torch

    from hakisa.algos.augment import random_shift, shift_clicks

    bins, size = (12, 8), (48, 32)  # 4x4-pixel cells
    obs = torch.zeros(200, 1, 32, 48, dtype=torch.uint8)
    obs[:, :, 13:15, 21:23] = 255  # a 2x2 target in cell (5, 3)
    act = torch.tensor([[1, 5, 3]] * 200)
    out, mx, my = random_shift(obs, 4, np.random.default_rng(0), with_offsets=True)
    moved = shift_clicks(act, torch.tensor([False, True]), mx, my, size, bins)
    for i in range(200):
        ys, xs = np.nonzero(out[i, 0].numpy())
        cx, cy = xs.mean(), ys.mean()  # where the target is now
        assert abs((moved[i, 1] + 0.5) * 4 - cx) <= 2.5 and abs((moved[i, 2] + 0.5) * 4 - cy) <= 2.5, (i, mx[i], my[i])
    assert len({(int(a), int(b)) for a, b in moved[:, 1:]}) > 4  # the labels did move
    keys = shift_clicks(torch.tensor([[0, 5, 3]]), torch.tensor([False, True]), mx[:1], my[:1], size, bins)
    assert keys.tolist() == [[0, 5, 3]]  # a keyboard step's x/y mean nothing and stay as they are


def test_study_learns_from_corrections_and_not_from_the_agents_own_frames(tmp_path):
    """A store where only a person's corrections show the right action for one situation: demonstrations never
    show a block in the third slot; in the correction games the agent presses "right" there and the person takes
    over and presses "left". The clone must answer "left" on that slot: it fails if the corrections are ignored,
    and it fails if the agent's own frames are taken as labels."""
    from hakisa.envs.toy import keypress_map
    from hakisa.model import load_checkpoint

    imap = keypress_map()  # noop, up, down, left, right
    spec = ObsSpec(width=40, height=24, gray=True, stack=1)
    rng = np.random.default_rng(0)

    def frame(slot):
        f = np.full((1, 24, 40), 20, np.uint8)
        f[0, 8:16, slot * 8 + 2 : slot * 8 + 7] = 230
        return f

    with EpisodeWriter(tmp_path / "ds", {"input_map": imap, "obs_spec": spec, "fps": 15, "source": "teacher"}) as w:
        for ep in range(12):
            corrected = ep >= 6
            w.begin_episode()
            for t in range(60):
                if corrected and t % 2 == 0:
                    slot, actor = 2, int(t % 8 < 6)  # slot 2: mostly the agent (right), a quarter the person (left)
                    act = 4 if actor else 3
                else:
                    slot, actor = int(rng.integers(0, 2)), 0
                    act = (1, 2)[slot]  # demonstrations: slot 0 -> up, slot 1 -> down
                w.add(frame(slot), [act, 0, 0], 0.0, t == 59, t=t / 15, actor=actor)
            w.end_episode()
    res = study(StudyArgs(dataset=str(tmp_path / "ds"), out=str(tmp_path / "run"), steps=300, label_lag="0",
                          eval_episodes=0, progress=False, val_fraction=0.25))
    net, _ = load_checkpoint(tmp_path / "run" / "best")
    obs = torch.from_numpy(np.stack([frame(s) for s in (0, 1, 2)]))
    picked = net.act(obs, "argmax")[:, 0].tolist()
    print(res["best"], picked)
    assert picked == [1, 2, 3], picked  # up, down, and the person's "left" where only corrections show it


def test_a_clone_that_never_presses_a_rare_command_by_argmax_plays_sampled():
    from hakisa.algos.bc import preferred_act

    # the player clicks on 10 % of frames at moments the frame does not pin down: argmax never clicks
    unsure = {"confusion": [[[90, 0], [10, 0]]], "mean_probs": [0.88, 0.12]}
    assert preferred_act(unsure)[0] == "sample" and preferred_act(unsure)[1]["collapsed"] == [1]
    # a clone that reads the screen: argmax presses as often as the player, sampling adds noise
    sure = {"confusion": [[[88, 2], [2, 8]]], "mean_probs": [0.75, 0.25]}
    assert preferred_act(sure)[0] == "argmax"


@pytest.mark.parametrize("scores, offline, chosen", [({"argmax": 10.0, "sample": 14.0}, "argmax", "sample"),
                                                    ({"argmax": 21.0, "sample": 4.0}, "sample", "argmax"),
                                                    ({"argmax": 7.0, "sample": 7.0}, "sample", "sample")])
def test_study_plays_both_ways_and_keeps_the_one_that_scored_more(monkeypatch, scores, offline, chosen):
    """What a wrong press costs is the game's, so with enough games study plays argmax and sampled and keeps the
    better (a tie keeps the offline rule's). Each way plays with its own logits: sampled with the class weights
    taken out (the player's rates), argmax with them in; best/ is saved before each game, and the net is left
    in the chosen way."""
    from hakisa import study_eval
    from hakisa.algos.bc import prior_correction, set_act
    from hakisa.input_map import InputMap
    from hakisa.model import HakisaNet

    imap = InputMap.from_dict({"name": "t", "x_bins": 1, "y_bins": 1, "commands": [
        {"name": "noop", "kind": "noop"}, {"name": "a", "kind": "keys", "keys": ["a"]}]})
    net = HakisaNet(ObsSpec(width=80, height=45), imap, encoder="small", hidden=16)
    weights = torch.tensor([0.5, 3.0])
    raw = net.pi_cmd.bias.detach().clone()
    config = {"act": "argmax"}
    if offline == "sample":
        set_act(net, config, "sample", weights)
    played, saved = [], []

    def fake_play(net_, game, args, frame_skip, mode, tag=""):  # the window is what this replaces; scores given
        want = raw + (prior_correction(weights) if mode == "sample" else 0)
        played.append((mode, torch.allclose(net_.pi_cmd.bias, want), config["act"] == mode, tag))
        return {"episodes": 10, "mean_score": scores[mode], "score_ci95": 1.0}

    monkeypatch.setattr(study_eval, "evaluate_clone", fake_play)
    args = StudyArgs(dataset="unused", eval_episodes=10)
    result = {}
    ev = study_eval.evaluate_and_choose(net, None, args, 1, config, result, weights, lambda: saved.append(1))
    assert [m for m, *_ in played] == [offline, "argmax" if offline == "sample" else "sample"]
    assert all(ok and cfg_ok and tag == f"-{m}" for m, ok, cfg_ok, tag in played), played
    assert len(saved) == 2
    assert result["act"] == config["act"] == chosen and ev["mean_score"] == scores[chosen]
    assert config["cmd_prior_corrected"] == (chosen == "sample")
    assert torch.allclose(net.pi_cmd.bias, raw + (prior_correction(weights) if chosen == "sample" else 0))
    assert set(result["eval_by_act"]) == {"argmax", "sample"}
    # with too few games to tell the ways apart, the offline rule's way plays alone
    played.clear()
    study_eval.evaluate_and_choose(net, None, StudyArgs(dataset="unused", eval_episodes=3), 1, config, {}, weights,
                                   lambda: None)
    assert [m for m, *_ in played] == [chosen]


def test_a_way_that_stalls_the_game_loses_to_the_other(monkeypatch):
    """Circus Linux launches each clown on a click: a clone whose argmax never clicks stalls the game, and its games
    stop (RulesMismatch). Study keeps the way that played; only if both stall does it fail."""
    from hakisa import study_eval
    from hakisa.envs.rules_watch import RulesMismatch
    from hakisa.input_map import InputMap
    from hakisa.model import HakisaNet

    imap = InputMap.from_dict({"name": "t", "x_bins": 1, "y_bins": 1, "commands": [
        {"name": "noop", "kind": "noop"}, {"name": "a", "kind": "keys", "keys": ["a"]}]})
    net = HakisaNet(ObsSpec(width=80, height=45), imap, encoder="small", hidden=16)
    weights = torch.tensor([0.5, 3.0])
    stall = {"argmax"}

    def fake_play(net_, game, args, frame_skip, mode, tag=""):
        if mode in stall:
            raise RulesMismatch("the readings that score and end an episode have not changed for 120 s")
        return {"episodes": 10, "mean_score": 3.0, "score_ci95": 1.0}

    monkeypatch.setattr(study_eval, "evaluate_clone", fake_play)
    config, result = {"act": "argmax"}, {}
    ev = study_eval.evaluate_and_choose(net, None, StudyArgs(dataset="unused", eval_episodes=10), 1, config, result,
                                        weights, lambda: None)
    assert result["act"] == config["act"] == "sample" and ev["mean_score"] == 3.0
    assert "not changed" in result["eval_by_act"]["argmax"]["stopped"]
    stall.add("sample")
    with pytest.raises(RulesMismatch, match="both ways"):
        study_eval.evaluate_and_choose(net, None, StudyArgs(dataset="unused", eval_episodes=10), 1,
                                       {"act": "argmax"}, {}, weights, lambda: None)


def test_held_pointer_labels_a_still_mouse_with_its_cell():
    """--pointer-labels held: a noop after a move or click is `move` to where the pointer was left (the same
    action); before an episode's first move it stays noop, and a keyboard map is left alone."""
    from types import SimpleNamespace

    from hakisa.algos.labels import hold_pointer
    from hakisa.input_map import InputMap

    imap = InputMap.from_dict({"name": "t", "x_bins": 8, "y_bins": 1, "commands": [
        {"name": "noop", "kind": "noop"}, {"name": "move", "kind": "move"}, {"name": "click", "kind": "click_left"}]})
    acts = np.array([[0, 0, 0], [1, 3, 0], [0, 0, 0], [0, 0, 0], [2, 5, 0], [0, 0, 0],   # episode 0
                     [0, 0, 0], [1, 6, 0], [0, 0, 0]])                                    # episode 1
    data = SimpleNamespace(actions=acts.copy(), episode_of=np.array([0, 0, 0, 0, 0, 0, 1, 1, 1]))
    assert hold_pointer(data, imap) == pytest.approx(4 / 9)
    assert data.actions.tolist() == [[0, 0, 0], [1, 3, 0], [1, 3, 0], [1, 3, 0], [2, 5, 0], [1, 5, 0],
                                     [0, 0, 0], [1, 6, 0], [1, 6, 0]]
    keys = InputMap.from_dict({"name": "k", "x_bins": 1, "y_bins": 1, "commands": [
        {"name": "noop", "kind": "noop"}, {"name": "a", "kind": "keys", "keys": ["a"]}]})
    data = SimpleNamespace(actions=np.array([[1, 0, 0], [0, 0, 0]]), episode_of=np.array([0, 0]))
    assert hold_pointer(data, keys) == 0.0 and data.actions.tolist() == [[1, 0, 0], [0, 0, 0]]


def test_prior_correction_gives_back_the_players_rates():
    """Cross-entropy with class weights w learns odds multiplied by w; adding -log w to the logits undoes it."""
    from hakisa.algos.bc import class_weights, prior_correction

    counts = np.array([900, 60, 40])
    w = torch.as_tensor(class_weights(counts, "sqrt"), dtype=torch.float32)
    logits = torch.zeros(3, requires_grad=True)  # the best constant predictor under the weighted loss
    opt = torch.optim.SGD([logits], lr=0.5)
    labels = torch.as_tensor(np.repeat([0, 1, 2], counts))
    for _ in range(400):
        loss = (torch.nn.functional.cross_entropy(logits.expand(len(labels), 3), labels, reduction="none")
                * w[labels]).sum() / w[labels].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    fixed = torch.softmax(logits.detach() + prior_correction(w), 0).numpy()
    assert np.allclose(fixed, counts / counts.sum(), atol=0.01), fixed
    assert prior_correction(torch.tensor([1.0, 0.0]))[1] == 0  # an unseen command is left alone
