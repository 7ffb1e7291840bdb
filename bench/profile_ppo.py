"""Where a PPO iteration spends its time (issue #8's "profile the largest cost"): the torch
profiler's top operators over a few iterations of the cpu preset's PPO, and how much of each
forward pass is padding.

    .venv/bin/python bench/profile_ppo.py --run runs/bench/cpu [--iterations 5]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--iterations", type=int, default=5)
    args = ap.parse_args()
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_prompts
    from igpt_lib.models import load_tokenizer
    from igpt_lib.ppo import sample_responses
    from igpt_lib.ppo_trainer import PPOTrainer
    from igpt_lib.reward import load_reward_model
    cfg = get_preset("cpu").ppo
    sft, rm = args.run / "sft" / cfg.policy, args.run / "rm"
    tok = load_tokenizer(sft)
    rows = load_prompts(args.run / "world" / "data" / "prompts.ppo.jsonl")
    trainer = PPOTrainer(AutoModelForCausalLM.from_pretrained(sft), AutoModelForCausalLM.from_pretrained(sft),
                         load_reward_model(rm), load_reward_model(rm), tok, rows, cfg)
    trainer.step()                                                         # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.iterations):
            trainer.step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    rng, real, trimmed = np.random.default_rng(0), [], []
    policy = trainer.finish()
    for _ in range(args.iterations):
        batch = [rows[i]["prompt"] for i in rng.choice(len(rows), cfg.batch_size, replace=False)]
        with torch.no_grad():
            _, attention, _, _ = sample_responses(policy, tok, batch, cfg)
        real.append(attention.float().mean().item())
        for idx in torch.randperm(cfg.batch_size).split(cfg.minibatch_size):
            a = attention[idx]
            trimmed.append(a.float().sum().item() / (a.shape[0] * a.any(0).sum().item()))
    print(f"real (non-padding) tokens: {np.mean(real):.0%} of a rollout batch's positions; "
          f"{np.mean(trimmed):.0%} of a minibatch's after cutting its all-padding columns")


if __name__ == "__main__":
    main()
