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


# The notebooks' first code cell. It runs before the kit is installed, so it cannot import it;
# this is its one source: tests/test_colab.py checks every notebook's cell against it.
SETUP_CELL = """\
# Colab set-up: clones the kit from its repository (the URL in pyproject.toml) and installs it
# with its pinned requirements (the `colab` extra); keeps runs/ on Google Drive when Drive is
# mounted (Files → Mount Drive, before running this), so a disconnect resumes instead of
# restarting. Elsewhere this cell does nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO_URL, KIT = "{repo_url}", "/content/instructgpt-kit"
    if not os.path.isdir(KIT):
        subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL, KIT], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{{KIT}}[colab]"], check=True)
    if os.path.isdir("/content/drive/MyDrive") and not os.path.exists(f"{{KIT}}/runs"):
        os.makedirs("/content/drive/MyDrive/igpt_runs", exist_ok=True)
        os.symlink("/content/drive/MyDrive/igpt_runs", f"{{KIT}}/runs")
    sys.path.insert(0, KIT)
    os.chdir(f"{{KIT}}/notebooks")
    from igpt_lib import colab
    print(f"GPU: {{colab.gpu_gib():.0f}} GiB, {{colab.precision()}}; PRESET below picks the world: 'cpu' is the "
          f"offline one; lessons 01-06 also run real models with this card's hub preset (lesson 00 is about the "
          f"offline world): --preset {{colab.pick_preset()}}")"""


def repository_url(pyproject=Path(__file__).resolve().parents[1] / "pyproject.toml"):
    """The repository URL, kept in one place: pyproject.toml's [project.urls] Repository."""
    import tomllib
    return tomllib.loads(Path(pyproject).read_text())["project"]["urls"]["Repository"]


def setup_cell(repo_url):
    """Source of the Colab set-up cell for the repository at `repo_url`."""
    return SETUP_CELL.format(repo_url=repo_url)


def badge(repo_url, notebook, branch="main"):
    """Markdown of an "Open in Colab" badge for notebooks/<notebook> of the repository."""
    path = repo_url.removeprefix("https://github.com/")
    return (f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{notebook})")
