"""Reward model: our K-way training vs `trl.RewardTrainer` on the same comparisons expanded
into pairs (issue #8). Writes bench/results/rm.json.

    .venv/bin/python bench/rm_bench.py [--ks 4 6 9] [--prompts 512] [--epochs 1]

For each K, both sides get the same ranked sets (the world's synthetic candidates, K per
prompt, ranked by a training labeler), the same initial model (the shipped base model
`--size`, a new scalar head from the same seed), max length, epochs, learning rate and
schedule (AdamW β2 0.95, cosine to 10 %), and the same comparisons per optimizer step:
ours takes `batch_prompts` prompts with all their K responses (K forwards each, InstructGPT
§3.5), TRL takes the C(K,2)·`batch_prompts` pairs of the same number of prompts (two forwards
per pair). Timed: the training loop only (TRL's tokenisation and our set-up excluded).
Accuracy: pairs of held-out prompts, ranked by held-out labelers (and by gold). Each K runs
with `--seeds` training seeds (the scalar head's initialisation and the data order; the
comparisons stay the same); times and accuracies are means over them. Two supplements: ours
for twice the epochs (TRL forwards each response K − 1 times per epoch, ours once), and ours
with half the prompts per optimizer step (twice the steps, the same forwards: TRL's pairs are
shuffled, so each of its steps spans up to C(K,2)× more prompts); their accuracy and speed
against TRL's one epoch are reported beside.
"""
import argparse
import contextlib
import io
import math
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_result  # noqa: E402
from igpt_lib.config import get_preset  # noqa: E402
from igpt_lib.data import read_jsonl, response_separator  # noqa: E402
from igpt_lib.reward import evaluate, load_reward_model, score_sets, train_reward_model  # noqa: E402
from igpt_lib.world.candidates import candidates  # noqa: E402
from igpt_lib.world.labelers import Panel  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rm.json"
GOAL_RATIO_K9, GOAL_ACC_POINTS = 4.0, 2.0


def shipped_model(size):
    found = sorted((REPO / "data" / "base_models").glob(f"{size}-*"))
    if not found:
        sys.exit(f"bench/rm_bench.py: no shipped base model of size {size!r} in data/base_models")
    return found[0]


def ranked_sets(rows, k, panel, seed):
    """K synthetic candidates per prompt, ranked by one member of `panel` each."""
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    out = []
    for row in rows:
        responses = candidates(row, k, rng)
        out.append({**row, "responses": responses, **panel.label(row, responses, nprng)})
    return out


def to_pairs(sets, eos):
    """Every strictly ordered pair of every set, as TRL's explicit-prompt preference rows;
    the texts TRL builds (prompt + chosen) are exactly our `rm_text`."""
    rows = []
    for s in sets:
        prompt = s["prompt"] + response_separator(s["prompt"])
        for i, ri in enumerate(s["ranks"]):
            for j, rj in enumerate(s["ranks"]):
                if ri < rj:
                    rows.append({"prompt": prompt, "chosen": s["responses"][i] + eos,
                                 "rejected": s["responses"][j] + eos})
    return rows


def run_ours(model_dir, tokenizer, sets, cfg):
    torch.manual_seed(cfg.seed)
    model = load_reward_model(model_dir)
    start = time.perf_counter()
    logs = train_reward_model(model, tokenizer, sets, cfg, progress=False)
    return model, time.perf_counter() - start, sum(x["forwards"] for x in logs), len(logs)


def run_trl(model_dir, tokenizer, sets, cfg, k):
    import trl
    from datasets import Dataset
    torch.manual_seed(cfg.seed)
    model = load_reward_model(model_dir)
    pairs = Dataset.from_list(to_pairs(sets, tokenizer.eos_token))
    with tempfile.TemporaryDirectory() as tmp:
        args = trl.RewardConfig(
            output_dir=tmp, per_device_train_batch_size=cfg.batch_prompts * math.comb(k, 2),
            num_train_epochs=cfg.epochs, learning_rate=cfg.lr, adam_beta2=0.95, weight_decay=cfg.weight_decay,
            lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio},
            warmup_steps=cfg.warmup_steps, max_length=cfg.max_length, bf16=False, use_cpu=True,
            activation_checkpointing=False, center_rewards_coefficient=None, report_to="none",
            save_strategy="no", logging_steps=10_000, disable_tqdm=True, seed=cfg.seed, dataloader_num_workers=0)
        trainer = trl.RewardTrainer(model=model, args=args, train_dataset=pairs, processing_class=tokenizer)
        kept = len(trainer.train_dataset)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its end-of-training log dict
            trainer.train()
        seconds = time.perf_counter() - start
    model.eval()
    return model, seconds, 2 * kept * cfg.epochs, kept


def accuracy(model, tokenizer, heldout, cfg):
    scores = score_sets(model, tokenizer, heldout, cfg)
    return (round(evaluate(scores, heldout)["accuracy"], 4),
            round(evaluate(scores, heldout, by_gold=True)["accuracy"], 4))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 6, 9])
    ap.add_argument("--prompts", type=int, default=512, help="training prompts per K")
    ap.add_argument("--heldout", type=int, default=300, help="held-out prompts per K")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="training seeds (scalar head, data order); times and accuracies are their means")
    ap.add_argument("--size", default="s", help="shipped base model the RM starts from")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from transformers import AutoTokenizer
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    model_dir = shipped_model(args.size)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cfg = replace(get_preset("cpu").rm, epochs=args.epochs)
    train_rows = read_jsonl(REPO / "data" / "prompts.rm.jsonl")[: args.prompts]
    test_rows = read_jsonl(REPO / "data" / "prompts.test.jsonl")[: args.heldout]
    train_panel = Panel.load(REPO / "data" / "labelers.json", "train")
    held_panel = Panel.load(REPO / "data" / "labelers.json", "heldout")
    results = {"machine": machine(),
               "setup": {"model": model_dir.name, "prompts": len(train_rows), "heldout_prompts": len(test_rows),
                         "epochs": cfg.epochs, "lr": cfg.lr, "batch_prompts": cfg.batch_prompts,
                         "max_length": cfg.max_length, "seeds": args.seeds},
               "goals": {"ratio_at_k9": GOAL_RATIO_K9, "accuracy_within_points": GOAL_ACC_POINTS}, "K": {}}
    print(f"{'K':>2} {'ours cmp/s':>10} {'TRL cmp/s':>10} {'ratio':>6} {'ours fwd':>9} {'TRL fwd':>9} "
          f"{'ours acc':>8} {'TRL acc':>8} {'ours gold':>9} {'TRL gold':>9}")
    for k in args.ks:
        sets = ranked_sets(train_rows, k, train_panel, seed=1000 + k)
        heldout = ranked_sets(test_rows, k, held_panel, seed=2000 + k)
        comparisons = sum(1 for s in sets for a in s["ranks"] for b in s["ranks"] if a < b) * cfg.epochs
        runs = {"ours": [], "trl": [], "ours_more": [], "ours_steps": []}  # (s, forwards, acc., gold acc.) per seed
        for seed in args.seeds:
            run = replace(cfg, seed=seed)
            model, seconds, forwards, _ = run_ours(model_dir, tokenizer, sets, run)
            runs["ours"].append((seconds, forwards, *accuracy(model, tokenizer, heldout, run)))
            more = replace(run, epochs=run.epochs * 2)  # a supplement: twice the passes, still far fewer forwards
            model, seconds, forwards, _ = run_ours(model_dir, tokenizer, sets, more)
            runs["ours_more"].append((seconds, forwards, *accuracy(model, tokenizer, heldout, more)))
            steps = replace(run, batch_prompts=max(run.batch_prompts // 2, 1))  # twice the steps, same forwards
            model, seconds, forwards, _ = run_ours(model_dir, tokenizer, sets, steps)
            runs["ours_steps"].append((seconds, forwards, *accuracy(model, tokenizer, heldout, steps)))
            model, seconds, forwards, pairs = run_trl(model_dir, tokenizer, sets, run, k)
            assert pairs * cfg.epochs == comparisons, (pairs, comparisons)  # TRL dropped none
            runs["trl"].append((seconds, forwards, *accuracy(model, tokenizer, heldout, run)))
        stat = {who: [float(np.mean(col)) for col in zip(*rows)] for who, rows in runs.items()}
        (ours_s, ours_fwd, ours_acc, ours_gold), (trl_s, trl_fwd, trl_acc, trl_gold) = stat["ours"], stat["trl"]
        row = {"ratio": round(trl_s / ours_s, 2),
               "ours_comparisons_per_s": round(comparisons / ours_s, 1),
               "trl_comparisons_per_s": round(comparisons / trl_s, 1),
               "ours_prompts_per_s": round(len(sets) * cfg.epochs / ours_s, 2),
               "trl_prompts_per_s": round(len(sets) * cfg.epochs / trl_s, 2),
               "ours_seconds": round(ours_s, 1), "trl_seconds": round(trl_s, 1),
               "ours_forwards": int(ours_fwd), "trl_forwards": int(trl_fwd), "comparisons": comparisons,
               "ours_acc": round(ours_acc, 4), "trl_acc": round(trl_acc, 4),
               "ours_gold_acc": round(ours_gold, 4), "trl_gold_acc": round(trl_gold, 4),
               "ours_acc_by_seed": [r[2] for r in runs["ours"]], "trl_acc_by_seed": [r[2] for r in runs["trl"]],
               "ours_double_epochs": {"epochs": 2 * cfg.epochs, "ratio": round(trl_s / stat["ours_more"][0], 2),
                                      "forwards": int(stat["ours_more"][1]), "acc": round(stat["ours_more"][2], 4),
                                      "gold_acc": round(stat["ours_more"][3], 4)},
               "ours_half_batch": {"batch_prompts": max(cfg.batch_prompts // 2, 1),
                                   "ratio": round(trl_s / stat["ours_steps"][0], 2),
                                   "forwards": int(stat["ours_steps"][1]), "acc": round(stat["ours_steps"][2], 4),
                                   "gold_acc": round(stat["ours_steps"][3], 4)}}
        results["K"][str(k)] = row
        print(f"{k:>2} {row['ours_comparisons_per_s']:>10.1f} {row['trl_comparisons_per_s']:>10.1f} "
              f"{row['ratio']:>5.2f}× {int(ours_fwd):>9,} {int(trl_fwd):>9,} {ours_acc:>8.3f} {trl_acc:>8.3f} "
              f"{ours_gold:>9.3f} {trl_gold:>9.3f}", flush=True)
    write_result(args.out, results)


if __name__ == "__main__":
    main()
