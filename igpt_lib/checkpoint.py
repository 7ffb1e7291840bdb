"""Training state that survives a disconnect: everything a run needs to continue bit for bit.

A checkpoint is a folder `step-NNNNNN/` holding the weights of each trained model
(safetensors), the optimizer states, tensors such as RNG states and an EMA (safetensors), and a
JSON file of plain values (step, numpy generator state, adaptive β, ...). It is written into a
temporary folder and renamed into place, so a kill during the write leaves the previous
checkpoint intact; only the last `keep` are kept. Weights are loaded with safetensors and the
optimizer file with `torch.load(weights_only=True)`: no code is loaded from a checkpoint.

Stages trained by an HF Trainer (SFT) use its own `checkpoint-N/` folders, which it writes in
place; `SealCheckpoints` marks each one complete once it is on disk, and `latest_sealed` resumes
only from sealed ones (a kill during the write leaves an unsealed folder, which is removed).
"""
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from transformers import TrainerCallback

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
    _fsync_files(tmp)  # on disk before the rename makes the checkpoint visible
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


def _fsync_files(folder):
    for path in Path(folder).rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


SEAL = "complete"
HF_PREFIX = "checkpoint-"


class SealCheckpoints(TrainerCallback):
    """After the Trainer has written `checkpoint-N/` (weights, optimizer, scheduler, RNG states,
    trainer_state.json), flush it to disk and add the file `complete`."""

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{HF_PREFIX}{state.global_step}"
        if args.should_save and folder.is_dir():
            _fsync_files(folder)
            tmp = folder / f".{SEAL}.tmp"
            tmp.write_text(str(state.global_step))
            os.replace(tmp, folder / SEAL)


def latest_sealed(folder):
    """The newest sealed HF checkpoint in `folder`, or None; unsealed ones are torn: removed."""
    folder = Path(folder)
    if not folder.exists():
        return None
    found = sorted(folder.glob(f"{HF_PREFIX}*"), key=lambda p: int(p.name[len(HF_PREFIX):]))
    for path in found:
        if not (path / SEAL).exists():
            shutil.rmtree(path)
    sealed = [p for p in found if p.exists()]
    return sealed[-1] if sealed else None
