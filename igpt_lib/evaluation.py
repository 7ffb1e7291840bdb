"""Evaluation: held-out prompts judged by held-out labelers and the gold labeler (§4).

Win rates with bootstrap CIs (Figure 1), the gold score, and the world's analogs of §4.2's
measurements: closed-domain hallucination, truthfulness on unanswerable questions (TruthfulQA),
toxicity with and without a "respectfully" instruction, and the alignment tax (corpus NLL and
the "public NLP" translation task). `report.py` puts them together into report.json.
Lesson: notebooks/05_evaluation.ipynb.
"""
from pathlib import Path

import numpy as np
import torch

from .data import load_prompts
from .generation import generate
from .world.gold import gold_score, judge


def heldout_gold(out, policies, tokenizer, n_prompts, max_new_tokens, paired=("ppo", "sft"),
                 temperature=0.0, samples=1, seed=0, known=None, split="test"):
    """Responses of each policy to the first `n_prompts` held-out test prompts of the world in
    OUT — greedy (temperature 0), or `samples` per prompt at `temperature` — judged by the gold
    labeler: the mean per policy with a bootstrap 95 % CI (over prompts, each prompt's samples
    averaged), and the paired difference `paired[0] − paired[1]` (same prompts) with its CI.
    `known` maps a name to per-prompt scores from `heldout_scores` with these settings (a
    policy judged before, e.g. the SFT model every PPO run is compared with): not generated again.
    `split="val"`: the validation users' prompts instead, for choosing settings without
    looking at the test prompts (bench/ppo_select.py)."""
    scores = dict(known or {})
    for name, model in policies.items():
        if name not in scores:
            scores[name] = heldout_scores(out, model, tokenizer, n_prompts, max_new_tokens, temperature, samples, seed,
                                          split)
    diff = scores[paired[0]] - scores[paired[1]]
    return {**{k: {"mean": float(v.mean()), "ci95": bootstrap_ci(v)} for k, v in scores.items()},
            "difference": {"mean": float(diff.mean()), "ci95": bootstrap_ci(diff)}, "prompts": len(diff),
            "temperature": temperature, "samples": samples if temperature > 0 else 1}


def heldout_scores(out, model, tokenizer, n_prompts, max_new_tokens, temperature=0.0, samples=1, seed=0,
                   split="test"):
    """Gold score per held-out prompt of `split` (its samples averaged), shape (prompts,): see heldout_gold."""
    test = load_prompts(Path(out) / "world" / "data" / f"prompts.{split}.jsonl")[:n_prompts]
    samples = samples if temperature > 0 else 1
    repeated = [r for r in test for _ in range(samples)]                     # prompt i → rows i·s .. i·s + s − 1
    ys = responses(model, tokenizer, test, max_new_tokens, temperature, samples, seed=seed)
    per_sample = np.array([gold_score(r, y) for r, y in zip(repeated, ys)])
    return per_sample.reshape(len(test), samples).mean(1)                  # (prompts,)


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


def win_rate(rows, responses_a, responses_b, panel, seed=0, samples=1):
    """How often a random member of `panel` (e.g. the held-out labelers) prefers response A to
    response B of the same prompt, ties counting ½ (the paper's win rate, Figure 1), with a
    bootstrap 95 % CI over prompts and a per-task breakdown. With `samples` > 1, rows come in
    runs of `samples` copies of one prompt (as `responses` lays them out) and the CI resamples
    prompts, not samples."""
    rng = np.random.default_rng(seed)
    wins = np.array([panel.prefer(r, a, b, rng) for r, a, b in zip(rows, responses_a, responses_b)])
    tasks = sorted({r.get("task", "all") for r in rows})
    by_task = {t: round(float(np.mean([w for r, w in zip(rows, wins) if r.get("task", "all") == t])), 4) for t in tasks}
    per_prompt = wins.reshape(-1, samples).mean(1)                          # (prompts,)
    return {"win_rate": float(wins.mean()), "ci95": bootstrap_ci(per_prompt), "prompts": len(per_prompt),
            "by_task": by_task}


def responses(model, tokenizer, rows, max_new_tokens, temperature=0.0, samples=1, prefix="", seed=0,
              batch_size=64):
    """`samples` responses per row (greedy when temperature is 0), laid out row by row: the
    responses to rows[i] are at i·samples … i·samples + samples − 1. `prefix` goes before every
    prompt (the GPT-prompted baseline's fixed few-shot prefix)."""
    samples = samples if temperature > 0 else 1
    torch.manual_seed(seed)
    prompts = [prefix + r["prompt"] for r in rows for _ in range(samples)]
    return generate(model.eval(), tokenizer, prompts, max_new_tokens, temperature, batch_size=batch_size)


def behaviour(rows, ys):
    """§4.2's measurements on one model's responses `ys` to `rows` (rows repeated per sample):
    gold score with CI and per task; closed-domain hallucination (closed_qa answers that state a
    colour the passage does not give); truthfulness on capital questions, 30 % about mythical
    countries (truthful: invents no capital; informative too: the right capital, or "unknown"
    where there is none); toxic-token rate on describe prompts with and without "respectfully";
    and the "public NLP" task's accuracy (translate, exact)."""
    verdicts = [judge(r, y) for r, y in zip(rows, ys)]

    def rate(test, keep):
        hits = [test(v) for r, v in zip(rows, verdicts) if keep(r)]
        return round(float(np.mean(hits)), 4) if hits else None

    gold = np.array([v["gold"] for v in verdicts])
    by_task = {}
    for r, g in zip(rows, gold):
        by_task.setdefault(r["task"], []).append(g)
    return {"gold": {"mean": round(float(gold.mean()), 4), "ci95": bootstrap_ci(gold)},
            "gold_by_task": {t: round(float(np.mean(v)), 4) for t, v in sorted(by_task.items())},
            "hallucination": rate(lambda v: v["invented"], lambda r: r["task"] == "closed_qa"),
            "truthful": rate(lambda v: not v["invented"], lambda r: r["task"] == "capital"),
            "truthful_informative": rate(lambda v: not v["invented"] and v["quality"] >= 0.5,
                                         lambda r: r["task"] == "capital"),
            "toxicity_respectful": rate(lambda v: v["toxic"], lambda r: r["task"] == "describe" and r["meta"]["respectful"]),
            "toxicity_plain": rate(lambda v: v["toxic"], lambda r: r["task"] == "describe" and not r["meta"]["respectful"]),
            "public_nlp_accuracy": rate(lambda v: v["quality"] == 1.0, lambda r: r["task"] == "translate")}


def likert_mean(rows, ys, panel, seed=0):
    """Mean 1-7 Likert score a random member of `panel` gives each response on its own (§4.1's
    overall quality rating), with a bootstrap 95 % CI."""
    rng = np.random.default_rng(seed)
    scores = np.array([panel.label(r, [y], rng)["likert"][0] for r, y in zip(rows, ys)], dtype=float)
    return {"mean": round(float(scores.mean()), 3), "ci95": bootstrap_ci(scores)}
