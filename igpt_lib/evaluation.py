"""Evaluation: held-out prompts, the gold labeler, and confidence intervals.

This is the start of issue #6 (win rates against baselines, truthfulness, toxicity, alignment
tax); for now it measures a policy's held-out gold score, as the PPO stage reports it.
"""
from pathlib import Path

import numpy as np

from .data import load_prompts
from .generation import generate
from .world.gold import gold_score


def heldout_gold(out, policies, tokenizer, n_prompts, max_new_tokens, paired=("ppo", "sft")):
    """Greedy responses of each policy to the first `n_prompts` held-out test prompts of the
    world in OUT, judged by the gold labeler: the mean per policy with a bootstrap 95 % CI, and
    the paired difference `paired[0] − paired[1]` (same prompts) with its CI."""
    test = load_prompts(Path(out) / "world" / "data" / "prompts.test.jsonl")[:n_prompts]
    scores = {}
    for name, model in policies.items():
        ys = generate(model.eval(), tokenizer, [r["prompt"] for r in test], max_new_tokens)
        scores[name] = np.array([gold_score(r, y) for r, y in zip(test, ys)])
    diff = scores[paired[0]] - scores[paired[1]]
    return {**{k: {"mean": float(v.mean()), "ci95": bootstrap_ci(v)} for k, v in scores.items()},
            "difference": {"mean": float(diff.mean()), "ci95": bootstrap_ci(diff)}, "prompts": len(test)}


def bootstrap_ci(values, n=2000, seed=0):
    """95 % percentile-bootstrap interval of the mean (resampling prompts)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(n, len(values)))].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]
