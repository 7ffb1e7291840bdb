"""Colab helpers for the notebooks' first cell (issue 7): which preset the card can hold, where
runs go (Google Drive when mounted, so a disconnect resumes instead of restarting), which
16-bit type the card supports. Nothing here runs at import.
"""
import os
import sys
from pathlib import Path

DRIVE = Path("/content/drive/MyDrive")


def in_colab():
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def gpu_gib():
    """Memory of the first GPU in GiB, or 0 without one."""
    import torch
    if not torch.cuda.is_available():
        return 0.0
    return torch.cuda.get_device_properties(0).total_memory / 2 ** 30


def pick_preset(memory_gib=None):
    """The largest preset whose plan fits the card: no GPU → "cpu" (the offline world), under
    30 GiB (a T4's 15) → "colab-t4", else "a100". The hub presets' peaks: memory.plan."""
    memory_gib = gpu_gib() if memory_gib is None else memory_gib
    if memory_gib <= 0:
        return "cpu"
    return "colab-t4" if memory_gib < 30 else "a100"


def precision():
    """"bf16" on cards that have it (compute capability ≥ 8.0: A100, L4), "fp16" on older ones
    (T4 is 7.5), "fp32" without a GPU."""
    import torch
    if not torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(0) >= (8, 0) else "fp16"


def run_folder(preset, drive=DRIVE):
    """Where a run's outputs and checkpoints go: <Drive>/igpt_runs/<preset> when Google Drive
    is mounted (checkpoints outlive the Colab VM), else runs/<preset>."""
    drive = Path(drive)
    return drive / "igpt_runs" / preset if drive.is_dir() else Path("runs") / preset
