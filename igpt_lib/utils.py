"""Small shared helpers."""
import random

import numpy as np
import torch


def set_seed(seed):
    """Seed Python, NumPy and torch; called explicitly, never at import."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
