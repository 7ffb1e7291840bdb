"""What a run's policies answer to closed-domain questions (`closed_qa`, the hallucination
measurement of §4.2): per model, the share of answerable prompts answered right, answered
"not stated", answered with a colour the prompt does not state (a hallucination) or otherwise
wrong, and of unanswerable prompts answered "not stated" or with an invented colour; greedy and
sampled at T = 1, on the run's test prompts. A policy that says "not stated" to everything never
hallucinates and never answers (docs item 27: the RM scores "not stated" above any colour).

    .venv/bin/python bench/closed_qa.py --run runs/cpu [--models sft/xs ppo]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, run_label, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "closed_qa.json"
KINDS = ("right", "not stated", "invented", "wrong")


def kind(row, response):
    """right / "not stated" / invented (a colour the prompt does not state) / wrong."""
    from igpt_lib.world.gold import judge
    verdict = judge(row, response)
    if response == "not stated":
        return "not stated"
    return "invented" if verdict["invented"] else "right" if verdict["quality"] >= 1.0 else "wrong"


def answers(model_dir, tokenizer, rows, temperature, seed=0):
    """Shares of each kind among answerable and unanswerable prompts, and the mean gold score."""
    import torch
    from transformers import AutoModelForCausalLM
    from igpt_lib.generation import generate
    from igpt_lib.world.gold import gold_score
    from igpt_lib.world.tasks import TASKS
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ys = generate(model, tokenizer, [r["prompt"] for r in rows], 24, temperature=temperature)
    out = {"gold": round(float(np.mean([gold_score(r, y) for r, y in zip(rows, ys)])), 4)}
    for group in ("answerable", "unanswerable"):
        picked = [kind(r, y) for r, y in zip(rows, ys)
                  if (TASKS["closed_qa"].expected(r["meta"]) == ["not", "stated"]) == (group == "unanswerable")]
        out[group] = {"prompts": len(picked), **{k: round(picked.count(k) / max(len(picked), 1), 4) for k in KINDS}}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--models", nargs="+", default=["sft/xs", "ppo"], help="folders under --run")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from igpt_lib.data import load_prompts
    from igpt_lib.models import load_tokenizer
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    rows = [r for r in load_prompts(args.run / "world" / "data" / "prompts.test.jsonl") if r["task"] == "closed_qa"]
    tokenizer = load_tokenizer(args.run / args.models[0])
    result = {"machine": machine(), "run": run_label(args.run, REPO), "models": {}}
    for name in args.models:
        result["models"][name] = {f"T={t:g}": answers(args.run / name, tokenizer, rows, t) for t in (0.0, 1.0)}
        for mode, r in result["models"][name].items():
            print(f"{name} {mode}: gold {r['gold']:+.3f}; answerable ({r['answerable']['prompts']}): "
                  + ", ".join(f"{k} {r['answerable'][k]:.2f}" for k in KINDS)
                  + f"; unanswerable ({r['unanswerable']['prompts']}): not stated {r['unanswerable']['not stated']:.2f}, "
                  f"invented {r['unanswerable']['invented']:.2f}")
    write_result(args.results, result)
    return result


if __name__ == "__main__":
    main()
