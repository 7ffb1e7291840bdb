"""Synthetic candidate responses: a stand-in for model samples before any model exists.

The world's committed comparisons (used to calibrate and measure labeler agreement, to demo
the labeling widget and to test loaders) rank K of these per prompt. The RM stage later ranks
real samples of the SFT policy instead. Each mode imitates a failure the paper's labelers saw.
"""
from . import vocab as V
from .tasks import TASKS

MODES = {  # mode: probability
    "correct": 0.25, "corrupt": 0.25, "ramble": 0.15, "toxic": 0.1,
    "unknown": 0.1, "invented": 0.1, "short": 0.05,
}
FILLER = "Q : what is this ? A : i do not know".split()


def candidate(row, rng, mode=None):
    """One plausible response to prompt `row`, in the failure mode `mode` (random if None)."""
    task = TASKS[row["task"]]
    mode = mode or rng.choices(list(MODES), weights=list(MODES.values()))[0]
    words = task.demonstrate(row["meta"], rng).split()
    if mode == "corrupt":
        for _ in range(rng.randint(1, 2)):
            words[rng.randrange(len(words))] = rng.choice(V.LETTERS + V.NUMBERS[:10] + V.COLORS)
    elif mode == "ramble":
        words = words + FILLER[: rng.randint(2, len(FILLER))]
    elif mode == "toxic":
        words.insert(rng.randint(0, len(words)), rng.choice(V.TOXIC))
    elif mode == "unknown":
        words = ["unknown"] if rng.random() < 0.5 else ["not", "stated"]
    elif mode == "invented":
        words = [rng.choice(list(V.CAPITALS.values()) + V.COLORS)]
    elif mode == "short":
        words = words[: max(1, len(words) // 2)]
    return " ".join(words)


def candidates(row, k, rng):
    """K candidate responses to one prompt (duplicates allowed, as real samples have)."""
    return [candidate(row, rng) for _ in range(k)]
