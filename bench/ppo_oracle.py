"""PPO against the gold score itself (an oracle reward): how much held-out gold the kit's PPO
recipe can add to SFT when the reward is perfect, next to the same recipe against the RM
(issue #5: is the small greedy gain the RM's doing, or PPO's?).

    .venv/bin/python bench/ppo_oracle.py --run runs/cpu [--preset cpu]
                     [--reward gold|gold_raw|rm+likelihood|rm] [--seed N] [--name NAME] [--resume]
    .venv/bin/python bench/ppo_oracle.py --docs

Trains exactly as `python -m igpt_lib ppo` does (the preset's PPOConfig, SFT-`policy` as start
and KL reference, the value model initialised from the RM), except that each response is scored
by the world's gold labeler instead of the RM: scaled to the RM's spread over the training
responses (`gold`), so that β weighs against it as against the RM, or on its own scale
(`gold_raw`); `rm+likelihood` scores with the RM plus its SFT start's log-likelihood, the better
judge of bench/rm_likelihood.py; `rm` is the stage's own reward, for a `--seed` other than the
preset's (the seed spread of the stage's run). Evaluated as the stage is (held-out gold, greedy and sampled at
T = 1, against SFT on the same prompts). Writes OUT/<name>/ like the stage, and
bench/results/ppo_oracle.json beside the stage run's own numbers (OUT/ppo/summary.json, when the
run has it); `--docs` writes its table into docs/implementation_details.md (item 40).
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import docs_or_main, machine, run_label, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "ppo_oracle.json"
NAMES = {"gold": "bench_ppo_oracle", "gold_raw": "bench_ppo_oracle_raw", "rm+likelihood": "bench_ppo_rm_likelihood",
         "rm": "bench_ppo_rm"}


def gold_reward(prompt_rows, scale=1.0):
    """(prompts, responses) → `scale` × the gold score of each response; the prompt text names its
    task instance (`prompt_rows`: the rows PPO samples its prompts from; repeated texts must agree)."""
    from igpt_lib.world.gold import gold_score
    by_prompt = {}
    for r in prompt_rows:
        if by_prompt.setdefault(r["prompt"], r)["meta"] != r["meta"]:
            raise ValueError(f"two prompt rows read {r['prompt']!r} but differ in their task: the text must name it")
    return lambda prompts, responses: [scale * gold_score(by_prompt[p], y) for p, y in zip(prompts, responses)]


def _stage_rm(run, preset):
    """The run's RM, its tokenizer, the training comparisons and the RM's scores of them."""
    from igpt_lib.data import load_comparison_rows
    from igpt_lib.models import load_tokenizer
    from igpt_lib.reward import load_reward_model, score_sets
    tok, rm = load_tokenizer(run / "rm"), load_reward_model(run / "rm").eval()
    train = load_comparison_rows(run / "rm" / "comparisons.train.jsonl")
    return rm, tok, train, score_sets(rm, tok, train, preset.rm)


def gold_in_rm_units(run, preset, prompt_rows):
    """The gold reward scaled so that its spread over the training responses is the RM's: the
    KL penalty β then weighs against it as against the RM (the raw gold score spreads ~0.4× as wide)."""
    from bench.rm_likelihood import spread
    from igpt_lib.world.gold import gold_score
    _, _, train, rm_train = _stage_rm(run, preset)
    scale = spread(rm_train) / spread([[gold_score(r, y) for y in r["responses"]] for r in train])
    return gold_reward(prompt_rows, scale), {"scale": round(scale, 4)}


def rm_plus_likelihood(run, preset):
    """(prompts, responses) → the stage RM's score + α × SFT-`size`'s log π(y | x), α fitted on the
    training comparisons as bench/rm_likelihood.py does, in the RM's own units (so β means what it
    means against the RM alone): a better reward model than the RM, built from the same run."""
    import torch
    from transformers import AutoModelForCausalLM
    from bench.rm_likelihood import choose_alpha, likelihoods, spread
    from igpt_lib.reward import rm_text, score_texts
    rm, tok, train, rm_train = _stage_rm(run, preset)
    lm = AutoModelForCausalLM.from_pretrained(run / "sft" / preset.rm.size).eval()
    ll_train = likelihoods(lm, tok, train)
    alpha, _ = choose_alpha(rm_train, ll_train, train)
    weight = alpha * spread(rm_train) / spread(ll_train)

    @torch.no_grad()
    def reward(prompts, responses):  # on the CPU, where the bench runs (a GPU run would move rm and lm)
        scores = score_texts(rm, tok, [rm_text(p, y, tok) for p, y in zip(prompts, responses)], preset.rm.max_length)
        ll = likelihoods(lm, tok, [{"prompt": p, "responses": [y]} for p, y in zip(prompts, responses)])
        return [float(s) + weight * x[0] for s, x in zip(scores, ll)]
    return reward, {"alpha": alpha, "weight": round(weight, 4), "judge": f"sft/{preset.rm.size}"}


def final_kl(folder, last=30):
    """Mean exact KL (k1 where a run predates it) over the run's last `last` iterations."""
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()][-last:]
    return round(sum(r.get("kl_exact", r["kl"]) for r in rows) / len(rows), 3)


def held_out(summary):
    """The stage summary's held-out gold: SFT, PPO and their difference with its CI, greedy and sampled."""
    return {key: {"sft": round(summary[key]["sft"]["mean"], 4), "ppo": round(summary[key]["ppo"]["mean"], 4),
                  "difference": round(summary[key]["difference"]["mean"], 4),
                  "ci95": summary[key]["difference"]["ci95"]} for key in ("test_gold", "test_gold_sampled")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--reward", choices=tuple(NAMES), default="gold",
                    help="gold: the oracle, in the RM's units; gold_raw: on its own scale; "
                         "rm+likelihood: the RM plus its SFT start's likelihood (bench/rm_likelihood.py); "
                         "rm: the RM itself, as the stage (with --seed: the stage's seed spread)")
    ap.add_argument("--seed", type=int, default=None, help="PPO's seed (default: the preset's); names get _seedN")
    ap.add_argument("--name", default=None, help="OUT/<name>/ (default: NAMES[reward]; never ppo*, "
                    "the runs README's PPO table and the report read)")
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
    name = args.name or NAMES[args.reward] + (f"_seed{args.seed}" if args.seed is not None else "")
    if name.startswith("ppo"):
        sys.exit(f"bench/ppo_oracle.py: --name {name}: ppo* folders are the kit's own runs (README, report); pick another")
    rows = load_prompts(prompts)
    if args.reward == "gold":
        reward, how = gold_in_rm_units(args.run, preset, rows)
    elif args.reward == "gold_raw":
        reward, how = gold_reward(rows), None
    elif args.reward == "rm+likelihood":
        reward, how = rm_plus_likelihood(args.run, preset)
    else:
        reward, how = None, None  # run_ppo's own: the RM
    summary = run_ppo(preset, args.run, name=name, resume=args.resume, reward_fn=reward, seed=args.seed)
    if summary is None:  # not the main process of a multi-process launch
        return None
    run = run_label(args.run, REPO)
    entry = {"run": run, "preset": args.preset, "name": name, "reward": args.reward, "how": how,
             "seconds": summary["seconds"], "config": summary["config"], "this": held_out(summary),
             "kl_last30": final_kl(args.run / name), "stage": None}
    if stage.exists():  # PPO against the RM, the same recipe
        stage_summary = json.loads(stage.read_text())
        entry.update(stage=held_out(stage_summary), stage_kl_last30=final_kl(stage.parent),
                     stage_seed=stage_summary["config"]["seed"])
    for who in [w for w in ("stage", "this") if entry[w]]:
        print(f"PPO against {'the RM' if who == 'stage' else args.reward}: " + "; ".join(
            f"{decoding} {e['difference']:+.3f} {e['ci95']}" for decoding, e in zip(("greedy", "sampled"), entry[who].values())))
    result = json.loads(args.results.read_text()) if args.results.exists() else {}
    result.update(machine=machine(), **{f"{run}/{name}": entry})
    write_result(args.results, result)
    return entry


def describe(e):
    """The table's words for an entry's reward."""
    if e["reward"] == "gold":
        return f"the gold score itself (oracle), × {e['how']['scale']}: the RM's spread"
    if e["reward"] == "gold_raw":
        return "the gold score itself (oracle), its own scale"
    if e["reward"] == "rm":
        return "the RM (as the stage)"
    return (f"RM + {e['how']['weight']} × log π(y \\| x) of `{e['how']['judge']}` "
            f"(α = {e['how']['alpha']} in spread units, bench/rm_likelihood.py)")


def table(result):
    """docs/implementation_details.md (item 40): held-out gold gain of PPO over SFT per reward."""
    def diff(e):
        return f"{e['difference']:+.3f} [{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}]"
    lines = ["| run | reward | seed | held-out gold, PPO − SFT [95 % CI]: greedy | sampled, T = 1 | "
             "exact KL, last 30 it. |", "|---|---|---|---|---|---|"]
    stages = set()
    for key, e in result.items():
        if key == "machine":
            continue
        if e["stage"] and e["run"] not in stages:
            stages.add(e["run"])
            lines.append(f"| {e['run']}/ppo | the RM (the stage's own run) | {e['stage_seed']} | {diff(e['stage']['test_gold'])} | "
                         f"{diff(e['stage']['test_gold_sampled'])} | {e['stage_kl_last30']:.2f} |")
        lines.append(f"| {e['run']}/{e['name']} | {describe(e)} | {e['config']['seed']} | {diff(e['this']['test_gold'])} | "
                     f"{diff(e['this']['test_gold_sampled'])} | {e['kl_last30']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    docs_or_main(main, table, RESULTS, "ppo-oracle")
