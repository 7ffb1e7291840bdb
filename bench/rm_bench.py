"""Reward model: our K-way training vs `trl.RewardTrainer` on the same comparisons expanded
into pairs (issue #8). Writes bench/results/rm.json.

    .venv/bin/python bench/rm_bench.py --tune [--grid 1 2 4 8 16]  # the choice -> rm_tuning.json (~20 min)
    .venv/bin/python bench/rm_bench.py [--ks 4 6 9]                # make bench: the chosen runs -> rm.json

For each K, both sides get the same ranked sets (the world's synthetic candidates, K per
prompt, ranked by a training labeler), the same initial model (the shipped base model
`--size`, a new scalar head from the same seed), max length, epochs, learning rate and
schedule (AdamW β2 0.95, cosine to 10 %). Ours takes `batch_prompts` prompts with all their
K responses per optimizer step (K forwards each, InstructGPT §3.5); TRL takes the
C(K,2)·`batch_prompts` pairs of as many prompts (two forwards per pair, shuffled across
prompts). `--tune` runs every batch of `--grid` on each side and keeps, per side and K, the
one with the best mean accuracy on validation prompts ranked by training labelers (the
world's validation split), in bench/results/rm_tuning.json (which also holds every other
batch's accuracy and time, the cpu preset's 16 on both sides among them); `--tune --grid B`
adds batch B to a file made with the same settings without rerunning the others. The plain
run (make bench) reruns each side at its chosen batch. Timed: the training loop only (TRL's
tokenisation and our set-up excluded). Accuracy: pairs of held-out prompts, ranked by
held-out labelers (and by gold), never used for a choice. Each run is repeated with `--seeds` training seeds (the
scalar head's initialisation and the data order; the comparisons stay the same); times and
accuracies are means over them.
"""
import argparse
import contextlib
import io
import json
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
from igpt_lib.config import RewardConfig  # noqa: E402
from igpt_lib.data import read_jsonl, response_separator  # noqa: E402
from igpt_lib.reward import evaluate, load_reward_model, score_sets, train_reward_model  # noqa: E402
from igpt_lib.world.candidates import candidates  # noqa: E402
from igpt_lib.world.labelers import Panel  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rm.json"
TUNING = REPO / "bench" / "results" / "rm_tuning.json"
GOAL_RATIO_K9, GOAL_ACC_POINTS = 4.0, 2.0
GRID = (1, 2, 4, 8, 16)  # prompts' worth of comparisons per optimizer step, chosen per side on validation


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


def run_ours(model_dir, tokenizer, sets, cfg, k=None):
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


def choose(grid_runs):
    """The batch (prompts' worth of comparisons per optimizer step) with the best mean
    validation accuracy; `grid_runs` maps batch -> {"val_acc": ...}. Ties (to 4 decimals) go
    to the larger batch (fewer optimizer steps)."""
    return max(grid_runs, key=lambda b: (round(grid_runs[b]["val_acc"], 4), int(b)))


def _means(rows):
    """Per-seed (seconds, forwards, val acc., held-out acc., gold acc.) -> their means."""
    seconds, forwards, val, acc, gold = (float(np.mean(col)) for col in zip(*rows))
    return {"seconds": seconds, "forwards": forwards, "val_acc": val, "acc": acc, "gold_acc": gold,
            "acc_by_seed": [r[3] for r in rows]}


def compare(ours, trl, ours_b, trl_b, comparisons, prompts):
    """The result row of ours at batch `ours_b` vs TRL at `trl_b` (means over seeds)."""
    o, t = ours[ours_b], trl[trl_b]
    return {"ours_batch_prompts": ours_b, "trl_batch_prompts": trl_b, "ratio": round(t["seconds"] / o["seconds"], 2),
            "ours_comparisons_per_s": round(comparisons / o["seconds"], 1),
            "trl_comparisons_per_s": round(comparisons / t["seconds"], 1),
            "ours_prompts_per_s": round(prompts / o["seconds"], 2),
            "trl_prompts_per_s": round(prompts / t["seconds"], 2),
            "ours_seconds": round(o["seconds"], 1), "trl_seconds": round(t["seconds"], 1),
            "ours_forwards": int(o["forwards"]), "trl_forwards": int(t["forwards"]), "comparisons": comparisons,
            "ours_acc": round(o["acc"], 4), "trl_acc": round(t["acc"], 4),
            "ours_gold_acc": round(o["gold_acc"], 4), "trl_gold_acc": round(t["gold_acc"], 4),
            "ours_acc_by_seed": o["acc_by_seed"], "trl_acc_by_seed": t["acc_by_seed"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 6, 9])
    ap.add_argument("--prompts", type=int, default=512, help="training prompts per K")
    ap.add_argument("--val", type=int, default=267, help="validation prompts per K (training labelers)")
    ap.add_argument("--heldout", type=int, default=300, help="held-out prompts per K")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="training seeds (scalar head, data order); times and accuracies are their means")
    ap.add_argument("--size", default="s", help="shipped base model the RM starts from")
    ap.add_argument("--tune", action="store_true",
                    help="run every --grid batch on both sides and write the choice to --tuning")
    ap.add_argument("--grid", type=int, nargs="+", default=list(GRID),
                    help="with --tune: prompts' worth of comparisons per optimizer step tried on both sides")
    ap.add_argument("--tuning", type=Path, default=TUNING, help="the choice, written by --tune, read otherwise")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from transformers import AutoTokenizer
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    model_dir = shipped_model(args.size)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cfg = replace(RewardConfig(), epochs=args.epochs)  # its own recipe (a new head on a base model), not the cpu RM's
    train_rows = read_jsonl(REPO / "data" / "prompts.rm.jsonl")[: args.prompts]
    val_rows = read_jsonl(REPO / "data" / "prompts.val.jsonl")[: args.val]
    test_rows = read_jsonl(REPO / "data" / "prompts.test.jsonl")[: args.heldout]
    train_panel = Panel.load(REPO / "data" / "labelers.json", "train")
    held_panel = Panel.load(REPO / "data" / "labelers.json", "heldout")
    setup = {"model": model_dir.name, "prompts": len(train_rows), "val_prompts": len(val_rows),
             "heldout_prompts": len(test_rows), "epochs": cfg.epochs, "lr": cfg.lr, "max_length": cfg.max_length,
             "seeds": args.seeds, "equal_batch_prompts": cfg.batch_prompts}
    kept = {}  # with --tune: the existing file's grid runs, when made with these settings
    if args.tune:
        setup["grid"] = sorted(set(args.grid))
        tuning = None
        if args.tuning.exists():
            old = json.loads(args.tuning.read_text())
            if all(old["setup"].get(f) == setup[f] for f in setup if f != "grid"):
                kept = old["K"]
                setup["grid"] = sorted(set(setup["grid"]) | set(old["setup"]["grid"]))
                print(f"extending {args.tuning} (grid {old['setup']['grid']}): batches it has are not rerun")
            else:
                print(f"replacing {args.tuning}: it was made with other settings")
    else:
        if not args.tuning.exists():
            sys.exit(f"bench/rm_bench.py: {args.tuning} is missing: run `python bench/rm_bench.py --tune` first")
        tuning = json.loads(args.tuning.read_text())
        differ = [f for f in setup if tuning["setup"].get(f) != setup[f]]
        missing = [k for k in args.ks if str(k) not in tuning["K"]]
        if differ or missing:
            sys.exit(f"bench/rm_bench.py: {args.tuning} was made with other settings ({', '.join(differ)}"
                     f"{'; no K = ' + ', '.join(map(str, missing)) if missing else ''}): rerun with --tune")
        setup["grid"] = tuning["setup"]["grid"]
    results = {"machine": machine(), "setup": setup,
               "goals": {"ratio_at_k9": GOAL_RATIO_K9, "accuracy_within_points": GOAL_ACC_POINTS}, "K": {}}
    if not args.tune:
        print(f"{'K':>2} {'batch':>9} {'ours cmp/s':>10} {'TRL cmp/s':>10} {'ratio':>6} {'ours fwd':>9} "
              f"{'TRL fwd':>9} {'ours acc':>8} {'TRL acc':>8} {'ours gold':>9} {'TRL gold':>9}")
    for k in args.ks:
        sets = ranked_sets(train_rows, k, train_panel, seed=1000 + k)
        val = ranked_sets(val_rows, k, train_panel, seed=3000 + k) if args.tune else None  # the choice only
        heldout = ranked_sets(test_rows, k, held_panel, seed=2000 + k)
        comparisons = sum(1 for s in sets for a in s["ranks"] for b in s["ranks"] if a < b) * cfg.epochs
        chosen = tuning["K"][str(k)]["chosen"] if tuning else None
        had = kept.get(str(k), {}).get("grid", {})
        batches = {who: [b for b in setup["grid"] if str(b) not in had.get(who, {})] if args.tune
                   else [chosen[who]] for who in ("ours", "trl")}
        runs = {who: {b: [] for b in bs} for who, bs in batches.items()}  # side -> batch -> per-seed rows
        for seed in args.seeds:
            for who, fit in (("ours", run_ours), ("trl", run_trl)):
                for b in batches[who]:
                    run = replace(cfg, seed=seed, batch_prompts=b)
                    model, seconds, forwards, pairs = fit(model_dir, tokenizer, sets, run, k)
                    if who == "trl":
                        assert pairs * cfg.epochs == comparisons, (pairs, comparisons)  # TRL dropped none
                    val_acc = accuracy(model, tokenizer, val, run)[0] if args.tune else float("nan")
                    runs[who][b].append((seconds, forwards, val_acc, *accuracy(model, tokenizer, heldout, run)))
        mean = {who: {b: _means(rows) for b, rows in by_b.items()} for who, by_b in runs.items()}
        if args.tune:
            grid = {who: {str(b): {f: round(m[f], 4 if f.endswith("acc") else 1)
                                   for f in ("seconds", "val_acc", "acc", "gold_acc")} for b, m in by_b.items()}
                    for who, by_b in mean.items()}
            for who in grid:  # with the kept batches, in batch order
                grid[who] = dict(sorted({**had.get(who, {}), **grid[who]}.items(), key=lambda kv: int(kv[0])))
            chosen = {who: int(choose(grid[who])) for who in grid}
            results["K"][str(k)] = {"chosen": chosen, "grid": grid}
            for who, g in grid.items():
                print(f"{k:>2} {who:>4}: " + ", ".join(
                    f"{b}{'*' if int(b) == chosen[who] else ''} val {x['val_acc']:.3f} held-out {x['acc']:.3f} "
                    f"{x['seconds']:.1f} s" for b, x in g.items()), flush=True)
            continue
        prompts = len(sets) * cfg.epochs
        r = results["K"][str(k)] = compare(mean["ours"], mean["trl"], chosen["ours"], chosen["trl"],
                                           comparisons, prompts)
        print(f"{k:>2} {r['ours_batch_prompts']:>4}/{r['trl_batch_prompts']:<4} "
              f"{r['ours_comparisons_per_s']:>10.1f} {r['trl_comparisons_per_s']:>10.1f} "
              f"{r['ratio']:>5.2f}× {r['ours_forwards']:>9,} {r['trl_forwards']:>9,} {r['ours_acc']:>8.3f} "
              f"{r['trl_acc']:>8.3f} {r['ours_gold_acc']:>9.3f} {r['trl_gold_acc']:>9.3f}", flush=True)
    write_result(args.tuning if args.tune else args.out, results)


if __name__ == "__main__":
    main()
