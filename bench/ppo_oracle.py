"""PPO against the gold score itself (an oracle reward): how much held-out gold the kit's PPO
recipe can add to SFT when the reward is perfect, next to the same recipe against the RM
(issue #5: is the small greedy gain the RM's doing, or PPO's?).

    .venv/bin/python bench/ppo_oracle.py --run runs/cpu [--preset cpu] [--reward gold|rm+likelihood]
                                         [--name NAME] [--resume]

Trains exactly as `python -m igpt_lib ppo` does (the preset's PPOConfig, SFT-`policy` as start
and KL reference, the value model initialised from the RM), except that each response is scored
by the world's gold labeler instead of the RM (`--reward rm+likelihood`: by the RM plus its
SFT start's log-likelihood, the better judge of bench/rm_likelihood.py); evaluated as the stage is (held-out gold, greedy
and sampled at T = 1, against SFT on the same prompts). Writes OUT/<name>/ like the stage and
bench/results/ppo_oracle.json beside the stage run's own numbers (OUT/ppo/summary.json, when
the run has it); `--docs` writes its table into docs/implementation_details.md (item 40).
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "ppo_oracle.json"


def gold_reward(prompt_rows):
    """(prompts, responses) → the gold score of each response; the prompt text names its task
    instance (`prompt_rows`: the rows PPO samples its prompts from)."""
    from igpt_lib.world.gold import gold_score
    by_prompt = {r["prompt"]: r for r in prompt_rows}
    return lambda prompts, responses: [gold_score(by_prompt[p], y) for p, y in zip(prompts, responses)]


def rm_plus_likelihood(run, preset):
    """(prompts, responses) → the stage RM's score + α × SFT-`size`'s log π(y | x), α fitted on the
    training comparisons as bench/rm_likelihood.py does, in the RM's own units (so β means what it
    means against the RM alone): a better reward model than the RM, built from the same run."""
    import torch
    from transformers import AutoModelForCausalLM
    from bench.rm_likelihood import choose_alpha, likelihoods, spread
    from igpt_lib.data import load_comparison_rows
    from igpt_lib.models import load_tokenizer
    from igpt_lib.reward import load_reward_model, rm_text, score_sets, score_texts
    cfg = preset.rm
    tok, rm = load_tokenizer(run / "rm"), load_reward_model(run / "rm").eval()
    lm = AutoModelForCausalLM.from_pretrained(run / "sft" / cfg.size).eval()
    train = load_comparison_rows(run / "rm" / "comparisons.train.jsonl")
    rm_train, ll_train = score_sets(rm, tok, train, cfg), likelihoods(lm, tok, train)
    alpha, _ = choose_alpha(rm_train, ll_train, train)
    weight = alpha * spread(rm_train) / spread(ll_train)

    @torch.no_grad()
    def reward(prompts, responses):
        scores = score_texts(rm, tok, [rm_text(p, y, tok) for p, y in zip(prompts, responses)], cfg.max_length)
        ll = likelihoods(lm, tok, [{"prompt": p, "responses": [y]} for p, y in zip(prompts, responses)])
        return [float(s) + weight * x[0] for s, x in zip(scores, ll)]
    return reward, {"alpha": alpha, "weight": round(weight, 4), "judge": f"sft/{cfg.size}"}


def held_out(summary):
    """The stage summary's held-out gold: SFT, PPO and their difference with its CI, greedy and sampled."""
    return {key: {"sft": round(summary[key]["sft"]["mean"], 4), "ppo": round(summary[key]["ppo"]["mean"], 4),
                  "difference": round(summary[key]["difference"]["mean"], 4),
                  "ci95": summary[key]["difference"]["ci95"]} for key in ("test_gold", "test_gold_sampled")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--reward", choices=("gold", "rm+likelihood"), default="gold",
                    help="gold: the oracle; rm+likelihood: the RM plus its SFT start's likelihood (bench/rm_likelihood.py)")
    ap.add_argument("--name", default=None, help="OUT/<name>/ (default bench_ppo_oracle or bench_ppo_rm_likelihood; "
                    "not ppo*, the runs README's PPO table and the report read)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_prompts
    from igpt_lib.ppo_trainer import run_ppo
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    prompts = args.run / "world" / "data" / "prompts.ppo.jsonl"
    stage = args.run / "ppo" / "summary.json"
    if missing := [str(f) for f in (prompts, args.run / "rm" / "model.safetensors") if not f.exists()]:
        sys.exit(f"bench/ppo_oracle.py: {missing[0]} not found: run `python -m igpt_lib rm --preset "
                 f"{args.preset} --out {args.run}` first")
    preset = get_preset(args.preset)
    name = args.name or {"gold": "bench_ppo_oracle", "rm+likelihood": "bench_ppo_rm_likelihood"}[args.reward]
    if args.reward == "gold":
        reward, how = gold_reward(load_prompts(prompts)), None
    else:
        reward, how = rm_plus_likelihood(args.run, preset)
    summary = run_ppo(preset, args.run, name=name, resume=args.resume, reward_fn=reward)
    entry = {"run": str(args.run), "preset": args.preset, "name": name, "reward": args.reward, "how": how,
             "seconds": summary["seconds"], "config": summary["config"], "this": held_out(summary),
             "stage": held_out(json.loads(stage.read_text())) if stage.exists() else None}  # PPO against the RM
    for who in [w for w in ("stage", "this") if entry[w]]:
        print(f"PPO against {'the RM' if who == 'stage' else args.reward}: " + "; ".join(
            f"{decoding} {e['difference']:+.3f} {e['ci95']}" for decoding, e in zip(("greedy", "sampled"), entry[who].values())))
    result = json.loads(args.results.read_text()) if args.results.exists() else {}
    result.update(machine=machine(), **{f"{args.run}/{name}": entry})
    write_result(args.results, result)
    return entry


def table(result):
    """docs/implementation_details.md (item 40): held-out gold gain of PPO over SFT per reward."""
    def diff(e):
        return f"{e['difference']:+.3f} [{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}]"
    lines = ["| run | reward | held-out gold, PPO − SFT [95 % CI]: greedy | sampled, T = 1 |", "|---|---|---|---|"]
    stages = {}
    for key, e in result.items():
        if key == "machine":
            continue
        if e["stage"] and e["run"] not in stages:
            stages[e["run"]] = e["stage"]
            lines.append(f"| {e['run']}/ppo | the RM (the stage's own run) | {diff(e['stage']['test_gold'])} | "
                         f"{diff(e['stage']['test_gold_sampled'])} |")
        what = "the gold score itself (oracle)" if e["reward"] == "gold" else \
            f"RM + {e['how']['alpha']} × log π(y \\| x) of `{e['how']['judge']}` (bench/rm_likelihood.py)"
        lines.append(f"| {e['run']}/{e['name']} | {what} | {diff(e['this']['test_gold'])} | "
                     f"{diff(e['this']['test_gold_sampled'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--docs"]:
        from docs.update_numbers import replace as replace_section
        replace_section(REPO / "docs" / "implementation_details.md", "ppo-oracle", table(json.loads(RESULTS.read_text())))
    else:
        main()
