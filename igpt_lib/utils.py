"""Small shared helpers."""
import random

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
    import datasets
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
