"""What PPO writes after each update (`Recorder`), shared by the serial and the Ray trainer."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hakisa.algos.common import start_run, summarize
from hakisa.model import save_checkpoint


class Recorder:
    """What PPO writes after an update, shared by the serial and the Ray trainer: the metrics dict,
    TensorBoard scalars, checkpoint/ every save_every updates (and the last), best/ on the rolling
    training score over the last 100 episodes."""

    def __init__(self, run_dir, args, extra: dict, resume: bool = False):  # args: a ppo.Args
        self.run_dir, self.args = (Path(run_dir) if run_dir is not None else None), args
        self.recent: list[dict] = []
        self.best_score, self.grad_steps, self.start = -np.inf, 0, time.time()
        self.opt = None  # the trainer's optimizer: checkpoint/ keeps its state, for --resume
        self.resumed = None
        if resume:  # the counters first: TensorBoard drops the killed run's events after its checkpoint (one curve)
            if self.run_dir is None or not (self.run_dir / "checkpoint" / "config.json").exists():
                raise SystemExit(f"hakisa train --resume: {self.run_dir} has no checkpoint/ to resume from")
            self.resumed = json.loads((self.run_dir / "checkpoint" / "config.json").read_text()).get("resume")
            if self.resumed is None:
                raise SystemExit(f"hakisa train --resume: {self.run_dir / 'checkpoint'} keeps no training state "
                                 "(made by an older Hakisa, or not by PPO)")
        self.writer = start_run(run_dir, args, extra,
                                purge_step=self.resumed["global_step"] + 1 if self.resumed else None)

    def resume(self, net, opt) -> tuple[int, int]:
        """Load checkpoint/'s weights, optimizer and counters (after `Recorder(..., resume=True)`); return the
        next update and the env steps done."""
        from safetensors.torch import load_file

        from hakisa.model import load_training_state

        ck = self.run_dir / "checkpoint"
        net.load_state_dict(load_file(str(ck / "model.safetensors")))
        r = load_training_state(ck, opt)
        self.grad_steps, self.recent = r["grad_steps"], list(r.get("recent", []))
        self.best_score = -np.inf if r.get("best_score") is None else r["best_score"]
        self.start = time.time() - r["time_s"]  # the budget in minutes counts the killed run's time too
        return r["update"] + 1, r["global_step"]

    def elapsed(self) -> float:
        return time.time() - self.start

    def out_of_time(self) -> bool:
        return bool(self.args.max_minutes) and self.elapsed() > 60 * self.args.max_minutes

    def record(self, net, opt, update: int, global_step: int, u: dict, finished: list[dict],
               scalars: dict | None = None) -> dict:
        """scalars: extra charts/<name> values of this update (the Ray trainer's policy lag)."""
        args, writer = self.args, self.writer
        self.grad_steps += u["grad_steps"]
        self.recent = (self.recent + finished)[-100:]
        summ = summarize(self.recent)
        info = {
            "global_step": global_step,
            "update": update,
            "grad_steps": self.grad_steps,
            "approx_kl": float(u["approx_kl"]),
            "value_loss": u["v_loss"].item(),
            "sps": global_step / self.elapsed(),
            **summ,
        }
        if writer is not None:
            for ep in finished:
                writer.add_scalar("charts/episodic_return", ep["return"], global_step)
                writer.add_scalar("charts/episodic_length", ep["length"], global_step)
            if "win_rate" in summ:
                writer.add_scalar("charts/win_rate", summ["win_rate"], global_step)
            for k, v in (scalars or {}).items():
                writer.add_scalar(f"charts/{k}", v, global_step)
            if update % args.log_every == 0:
                writer.add_scalar("charts/learning_rate", opt.param_groups[0]["lr"], global_step)
                writer.add_scalar("charts/grad_norm", float(u["grad_norm"]), global_step)
                writer.add_scalar("charts/sps", info["sps"], global_step)
                writer.add_scalar("losses/value_loss", u["v_loss"].item(), global_step)
                writer.add_scalar("losses/policy_loss", u["pg_loss"].item(), global_step)
                writer.add_scalar("losses/entropy", u["ent_loss"].item(), global_step)
                writer.add_scalar("losses/approx_kl", float(u["approx_kl"]), global_step)
                writer.add_scalar("losses/clipfrac", float(np.mean(u["clipfracs"])), global_step)
        return info

    def save(self, net, update: int, info: dict, last: bool) -> None:
        """best/ when the rolling score beats the best so far; checkpoint/ every save_every updates and at the end."""
        args = self.args
        if self.run_dir is not None:
            enough = info.get("episodes", 0) >= 10
            score = info.get("win_rate", info.get("mean_return", -np.inf)) if enough else -np.inf
            if score > self.best_score:
                self.best_score = score
                save_checkpoint(self.run_dir / "best", net, {"algo": "ppo", **asdict(args)}, info)
            if update % args.save_every == 0 or last or self.out_of_time():
                resume = {"update": update, "global_step": info["global_step"], "grad_steps": self.grad_steps,
                          "time_s": self.elapsed(), "recent": self.recent,
                          "best_score": None if self.best_score == -np.inf else self.best_score}
                save_checkpoint(self.run_dir / "checkpoint", net, {"algo": "ppo", **asdict(args)}, info,
                                optimizer=self.opt, resume=resume if self.opt is not None else None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
