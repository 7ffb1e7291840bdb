"""Evaluation: held-out prompts, the gold labeler, and confidence intervals.

This is the start of issue #6 (win rates against baselines, truthfulness, toxicity, alignment
tax); for now it measures a policy's held-out gold score, as the PPO stage reports it.
"""
from pathlib import Path

import numpy as np
import torch

from .data import load_prompts
from .generation import generate
from .world.gold import gold_score


def heldout_gold(out, policies, tokenizer, n_prompts, max_new_tokens, paired=("ppo", "sft"),
                 temperature=0.0, samples=1, seed=0):
    """Responses of each policy to the first `n_prompts` held-out test prompts of the world in
    OUT — greedy (temperature 0), or `samples` per prompt at `temperature` — judged by the gold
    labeler: the mean per policy with a bootstrap 95 % CI (over prompts, each prompt's samples
    averaged), and the paired difference `paired[0] − paired[1]` (same prompts) with its CI."""
    test = load_prompts(Path(out) / "world" / "data" / "prompts.test.jsonl")[:n_prompts]
    repeated = [r for r in test for _ in range(samples)]                     # prompt i → rows i·s .. i·s + s − 1
    scores = {}
    for name, model in policies.items():
        torch.manual_seed(seed)
        ys = generate(model.eval(), tokenizer, [r["prompt"] for r in repeated], max_new_tokens, temperature)
        per_sample = np.array([gold_score(r, y) for r, y in zip(repeated, ys)])
        scores[name] = per_sample.reshape(len(test), samples).mean(1)       # (prompts,)
    diff = scores[paired[0]] - scores[paired[1]]
    return {**{k: {"mean": float(v.mean()), "ci95": bootstrap_ci(v)} for k, v in scores.items()},
            "difference": {"mean": float(diff.mean()), "ci95": bootstrap_ci(diff)}, "prompts": len(test),
            "temperature": temperature, "samples": samples}


def bootstrap_ci(values, n=2000, seed=0):
    """95 % percentile-bootstrap interval of the mean (resampling prompts)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(n, len(values)))].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


@torch.no_grad()
def corpus_nll(model, tokens, seq_len=64, windows=256, seed=0, batch_size=64):
    """Mean next-token NLL (nats) on `windows` fixed random windows of a token stream: the
    pretraining loss, whose rise after RLHF is one face of the alignment tax (§4.2)."""
    from .ppo import corpus_batches
    batch = next(corpus_batches(tokens, seq_len, windows, seed))            # (N, T), the same windows per seed
    device = next(model.parameters()).device
    losses = [model(input_ids=b.to(device), labels=b.to(device)).loss.item() * len(b)
              for b in batch.split(batch_size)]
    return float(sum(losses) / windows)


def win_rate(rows, responses_a, responses_b, panel, seed=0):
    """How often a random member of `panel` (e.g. the held-out labelers) prefers response A to
    response B of the same prompt, ties counting ½ (the paper's win rate, Figure 1), with a
    bootstrap 95 % CI over prompts and a per-task breakdown."""
    rng = np.random.default_rng(seed)
    wins = np.array([panel.prefer(r, a, b, rng) for r, a, b in zip(rows, responses_a, responses_b)])
    tasks = sorted({r.get("task", "all") for r in rows})
    by_task = {t: round(float(np.mean([w for r, w in zip(rows, wins) if r.get("task", "all") == t])), 4) for t in tasks}
    return {"win_rate": float(wins.mean()), "ci95": bootstrap_ci(wins), "prompts": len(wins), "by_task": by_task}
