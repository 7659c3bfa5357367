"""Checkpoints are a directory: `model.safetensors` (tensors only) + `config.json` (everything needed to
rebuild the net). Loading executes no code: no pickle, no import strings beyond our own encoders."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

from hakisa.input_map import InputMap
from hakisa.model.net import HakisaNet
from hakisa.preprocess import ObsSpec

CHECKPOINT_FORMAT = "hakisa-checkpoint"


class CheckpointError(ValueError):
    """Not a Hakisa checkpoint, a corrupt one, or one made for another game's actions or observations."""


CHECKPOINT_VERSION = 1


def save_checkpoint(
    dir: str | os.PathLike, net: HakisaNet, config: dict | None = None, metrics: dict | None = None,
    optimizer=None, resume: dict | None = None, arrays: dict[str, dict] | None = None,
) -> Path:
    """Write `dir/model.safetensors` + `dir/config.json` atomically.

    Everything goes to a temporary sibling directory first, which then replaces `dir`: a crash or
    Ctrl-C mid-save leaves the previous checkpoint intact, never a half-written one. With `optimizer` and
    `resume` (the trainer's counters), the optimizer's tensors go to `optimizer.safetensors` and the rest of
    its state and the counters to config.json's "resume", in the same atomic step: `hakisa train --resume`
    (`load_training_state`) continues from exactly this point. `arrays` ({name: {key: numpy array}}) go to
    `name.safetensors` in that step too (a live learner's replay: `Learner.state`).
    """
    dir = Path(dir)
    dir.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "obs_spec": net.obs_spec.to_dict(),
        "input_map": net.input_map.to_dict(),
        "model": net.model_config(),
        "algo": _jsonable(config or {}),
        "metrics": _jsonable(metrics or {}),
    }
    opt_tensors = None
    if optimizer is not None:
        opt_tensors, opt_doc = _optimizer_state(optimizer)
        doc["resume"] = {**_jsonable(resume or {}), "optimizer": opt_doc}
    tmp = Path(tempfile.mkdtemp(prefix=f".{dir.name}.tmp-", dir=dir.parent))
    try:
        tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(tensors, str(tmp / "model.safetensors"))
        if opt_tensors is not None:
            save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        for name, group in (arrays or {}).items():
            if group:
                # safetensors writes an array's buffer as it lies: a strided view (a transposed weight, the
                # filled part of a replay's rings) must be made C-ordered first or it reads back scrambled
                save_numpy({k: np.ascontiguousarray(v) for k, v in group.items()}, str(tmp / f"{name}.safetensors"))
        (tmp / "config.json").write_text(json.dumps(doc, indent=1))
        if dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dir.name}.old-", dir=dir.parent))
            os.replace(dir, old / "ckpt")  # rename is atomic; the window without `dir` is one syscall
            os.replace(tmp, dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dir


def read_checkpoint_config(dir: str | os.PathLike) -> dict:
    p = Path(dir) / "config.json"
    if not p.exists():
        raise CheckpointError(f"{dir} is not a Hakisa checkpoint (no config.json)")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: corrupt checkpoint config ({e})") from None
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: not a Hakisa checkpoint (format={fmt!r})")
    if doc.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint version {doc['version']} is newer than this Hakisa "
                              f"({CHECKPOINT_VERSION})")
    return doc


PRETRAINED_DIR = Path(__file__).parents[1] / "pretrained"


def find_checkpoint(dir: str | os.PathLike) -> Path:
    """A checkpoint dir as given, or for a run dir its best/ (else its latest checkpoint/).
    `pretrained:<name>` names a checkpoint shipped inside the package (hakisa/pretrained/<name>)."""
    if str(dir).startswith("pretrained:"):
        name = str(dir).split(":", 1)[1]
        path = PRETRAINED_DIR / name
        if not (path / "model.safetensors").exists():
            shipped = sorted(p.name for p in PRETRAINED_DIR.glob("*") if (p / "model.safetensors").exists())
            raise CheckpointError(f"no shipped checkpoint {name!r}; shipped: {shipped}")
        return path
    dir = Path(dir)
    for d in (dir, dir / "best", dir / "checkpoint"):
        if (d / "model.safetensors").exists():
            return d
    if (dir / "config.json").exists():  # its config says what it is (reading it tells a foreign file apart)
        return dir
    raise CheckpointError(f"{dir}: no checkpoint here (model.safetensors) nor in its best/ or checkpoint/")


def checkpoint_obs_spec(dir: str | os.PathLike) -> ObsSpec:
    """The observation spec a checkpoint (or run dir, or pretrained:<name>) was trained on, without loading weights."""
    return ObsSpec.from_dict(read_checkpoint_config(find_checkpoint(dir))["obs_spec"])


def load_checkpoint(
    dir: str | os.PathLike,
    input_map: InputMap | None = None,
    obs_spec: ObsSpec | None = None,
    map_location: str = "cpu",
) -> tuple[HakisaNet, dict]:
    """Rebuild the net from JSON + safetensors. Refuses a checkpoint made for another action map or
    observation shape: acting with it would press the wrong keys silently."""
    dir = find_checkpoint(dir)
    doc = read_checkpoint_config(dir)
    ck_map, ck_spec = InputMap.from_dict(doc["input_map"]), ObsSpec.from_dict(doc["obs_spec"])
    if input_map is not None and not ck_map.same_as(input_map):
        raise CheckpointError(
            f"checkpoint {dir} was trained for input map {ck_map.name!r} "
            f"({[c.name for c in ck_map.commands]}, x_bins={ck_map.x_bins}, y_bins={ck_map.y_bins}) but the env uses "
            f"{input_map.name!r} ({[c.name for c in input_map.commands]}, "
            f"x_bins={input_map.x_bins}, y_bins={input_map.y_bins}); "
            "refusing to act with the wrong action vocabulary"
        )
    if obs_spec is not None and ck_spec != obs_spec:
        raise CheckpointError(f"checkpoint {dir} expects observations {ck_spec} but the env gives {obs_spec}")
    m = doc["model"]
    net = HakisaNet(ck_spec, ck_map, encoder=str(m["encoder"]), hidden=int(m["hidden"]))
    try:
        net.load_state_dict(load_file(str(dir / "model.safetensors"), device=map_location))
    except (RuntimeError, OSError, SafetensorError) as e:  # truncated, or tensors of another shape than config.json's
        msg = str(e).splitlines()[0]
        raise CheckpointError(f"{dir}: corrupt checkpoint, its weights do not load ({msg})") from None
    return net, doc


def _optimizer_state(opt) -> tuple[dict, dict]:
    """An optimizer's state_dict as safetensors tensors ("<param id>.<name>") and JSON (param groups, scalars)."""
    import torch

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": _jsonable(sd["param_groups"]), "scalars": _jsonable(scalars)}


def load_training_state(dir: str | os.PathLike, optimizer) -> dict:
    """Load what `save_checkpoint(..., optimizer=, resume=)` wrote into `optimizer`; return the counters.
    CheckpointError when the checkpoint holds no training state (saved without it, or by an older Hakisa)."""
    dir = Path(dir)
    doc = read_checkpoint_config(dir)
    if "resume" not in doc or not (dir / "optimizer.safetensors").exists():
        raise CheckpointError(f"{dir}: this checkpoint keeps no training state (optimizer and counters) to resume")
    state: dict = {}
    for key, v in load_file(str(dir / "optimizer.safetensors")).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for key, v in doc["resume"]["optimizer"]["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": doc["resume"]["optimizer"]["param_groups"]})
    return {k: v for k, v in doc["resume"].items() if k != "optimizer"}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy / torch scalars
        try:
            return x.item()
        except (ValueError, RuntimeError):
            return x.tolist()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)
