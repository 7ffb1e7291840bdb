"""Training state that survives a disconnect: everything a run needs to continue bit for bit.

A checkpoint is a folder `step-NNNNNN/` holding the weights of each trained model
(safetensors), the optimizer states, tensors such as RNG states and an EMA (safetensors), and a
JSON file of plain values (step, numpy generator state, adaptive β, ...). It is written into a
temporary folder and renamed into place, so a kill during the write leaves the previous
checkpoint intact; only the last `keep` are kept. Weights are loaded with safetensors and the
optimizer file with `torch.load(weights_only=True)`: no code is loaded from a checkpoint.
"""
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

PREFIX = "step-"


def save_state(folder, step, models, optimizers, tensors, values, keep=2):
    """Write checkpoint `folder/step-<step>/` atomically and prune to the last `keep`."""
    folder = Path(folder)
    final, tmp = folder / f"{PREFIX}{step:06d}", folder / f".tmp-{PREFIX}{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, model in models.items():
        save_model(model, str(tmp / f"{name}.safetensors"))
    torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, tmp / "optimizers.pt")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, **values}))
    for path in tmp.iterdir():  # on disk before the rename makes the checkpoint visible
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoints(folder)[:-keep]:
        shutil.rmtree(old)
    return final


def checkpoints(folder):
    """Complete checkpoints in `folder`, oldest first (temporary folders are not listed)."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(f"{PREFIX}*") if (p / "state.json").exists()) if folder.exists() else []


def latest(folder):
    """The newest complete checkpoint in `folder`, or None."""
    found = checkpoints(folder)
    return found[-1] if found else None


def load_state(path, models, optimizers):
    """Load weights and optimizer states in place; returns (tensors, values)."""
    path = Path(path)
    for name, model in models.items():
        load_model(model, str(path / f"{name}.safetensors"))
    states = torch.load(path / "optimizers.pt", weights_only=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(states[name])
    return load_file(str(path / "tensors.safetensors")), json.loads((path / "state.json").read_text())
