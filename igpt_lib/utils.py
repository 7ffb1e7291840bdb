"""Small shared helpers."""
import contextlib
import random
import sys
from pathlib import Path

import numpy as np
import torch


def set_seed(seed):
    """Seed Python, NumPy and torch; called explicitly, never at import."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet_transformers():
    """Turn off transformers' and datasets' own progress bars and info logs (our bars say
    what happens). Global, so the CLI and the notebooks call it explicitly, never at import."""
    import logging
    # bitsandbytes warns at import, on CPUs with AVX-512 bf16, that an optional 4-bit CPU kernel
    # package (`kernels`) is missing: nothing the kit uses, and nothing a student can act on
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import datasets
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()


def reset_peak_rss():
    """Start a new peak-RSS window (Linux: /proc/self/clear_refs); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib():
    """Peak resident memory since the last reset_peak_rss (Linux VmHWM), else of the whole process."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return round(int(line.split()[1]) / 1024)
    except (OSError, StopIteration):
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))  # macOS: bytes, Linux: KiB


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on a hidden `.NAME.lock` beside PATH (Unix flock) while the block
    runs, so processes that read, change and rewrite one file (PPO runs side by side sharing a
    cache) do so in turn. Where there is no flock (Windows, some network file systems) the block
    runs unlocked: the files it guards are caches, and a key lost there is computed again."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    with open(path.parent / f".{path.name}.lock", "a") as f:
        try:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            fcntl = None
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)
