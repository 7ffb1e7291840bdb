"""Iterated rounds: steps 2 and 3 again, on comparisons of the current PPO policy's samples.

The paper collected comparisons in batches: most came from the SFT and earlier PPO policies
(§3.2, "we repeat steps 2 and 3"), so its reward model kept seeing what the policy being
optimised actually writes — exactly where a reward model is easiest to exploit. Round r here:
1. sample K responses per RM prompt from the current PPO policy (round 0: OUT/ppo), ranked by
   the same simulated labelers (validation sets also by held-out labelers);
2. retrain the reward model from its start (`reward.rm_start`) on all comparisons so far (OUT/rm's plus rounds 1..r);
3. continue PPO from the current policy against the new RM (the KL reference stays SFT; the
   value model starts from the new RM).
Each round is written to OUT/rounds/round<r>/ (comparisons.*.jsonl, rm/, ppo/).
CLI: `python -m igpt_lib reproduce --rounds N`. Lesson: notebooks/06_small_beats_large.ipynb.
"""
import json
from dataclasses import replace
from pathlib import Path


def round_dir(out, r):
    return Path(out) / "rounds" / f"round{r}"


def policy_of(out, r):
    """The PPO policy after round r (round 0: the main PPO run)."""
    return Path(out) / "ppo" if r == 0 else round_dir(out, r) / "ppo"


def run_round(preset, out, r, log=print, progress=True):
    """Round r ≥ 1 (rounds before it must exist): comparisons → RM → PPO; returns its summary."""
    from .comparisons import SPLITS, collect, comparison_files, write_comparisons
    from .data import load_comparison_rows, load_prompts
    from .models import load_tokenizer
    from .ppo_trainer import run_ppo
    from .reward import fit_reward_model
    out, here, cfg = Path(out), round_dir(out, r), preset.rounds
    wdata, files = out / "world" / "data", comparison_files(round_dir(out, r))
    if not all(files[s].exists() for s in SPLITS):
        log(f"round {r}: sampling comparisons from {policy_of(out, r - 1).relative_to(out)}")
        rm_cfg = replace(preset.rm, sets_per_prompt=cfg.sets_per_prompt, seed=preset.rm.seed + r)
        new = collect({"ppo": policy_of(out, r - 1)}, load_tokenizer(out / "sft" / preset.ppo.policy),
                      load_prompts(wdata / "prompts.rm.jsonl"), load_prompts(wdata / "prompts.val.jsonl"),
                      wdata / "labelers.json", rm_cfg, progress)
        write_comparisons(files, new)
    new = {s: load_comparison_rows(f) for s, f in files.items() if f.exists()}
    earlier = [out / "rm" / "comparisons.train.jsonl"] + [round_dir(out, k) / "comparisons.train.jsonl" for k in range(1, r)]
    train = [row for path in earlier for row in load_comparison_rows(path)] + new["train"]
    if not (here / "rm" / "metrics.json").exists():
        fit_reward_model(preset, out, {**new, "train": train}, here / "rm",
                         resume=True, log=log, progress=progress, figure=f"rm_margins_round{r}")
    if not (here / "ppo" / "summary.json").exists():
        run_ppo(preset, out, iterations=cfg.ppo_iterations, name=f"rounds/round{r}/ppo", init=policy_of(out, r - 1),
                reward=here / "rm", resume=True, log=log, progress=progress)
    return summary(out, r)


def summary(out, r):
    """One round's numbers: its RM's accuracy on the current policy's samples, and its PPO
    policy's held-out gold (greedy and sampled) against SFT."""
    out = Path(out)
    rm = json.loads(((out / "rm") if r == 0 else round_dir(out, r) / "rm").joinpath("metrics.json").read_text())
    ppo = json.loads(policy_of(out, r).joinpath("summary.json").read_text())
    return {"round": r, "comparisons": rm["train_prompts"],
            "rm_heldout_accuracy": round(rm["heldout_labelers"]["accuracy"], 4),
            "rm_fold_accuracy": round(rm["fold_labelers"]["accuracy"], 4) if "fold_labelers" in rm else None,
            "rm_gold_strict": round(rm["gold_strict"]["accuracy"], 4),
            "rm_evaluated_on": "SFT samples" if r == 0 else f"round {r - 1} PPO samples",
            "ppo_test_gold": round(ppo["test_gold"]["ppo"]["mean"], 4),
            "ppo_test_gold_sampled": round(ppo["test_gold_sampled"]["ppo"]["mean"], 4),
            "sft_test_gold_sampled": round(ppo["test_gold_sampled"]["sft"]["mean"], 4),
            # PPO − SFT on the same prompts: mean and paired bootstrap 95 % CI (ppo_trainer's summary)
            "gain_greedy": ppo["test_gold"]["difference"], "gain_sampled": ppo["test_gold_sampled"]["difference"]}


def all_rounds(out):
    """Summaries of round 0 (the main run) and every finished round after it."""
    out, found = Path(out), []
    if (out / "rm" / "metrics.json").exists() and (out / "ppo" / "summary.json").exists():
        found.append(summary(out, 0))
        r = 1
        while (round_dir(out, r) / "ppo" / "summary.json").exists():
            found.append(summary(out, r))
            r += 1
    return found
