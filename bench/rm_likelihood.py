"""What a language model's own likelihood knows about which response is right, and how much of
it the reward model reads out (issue #4).

    .venv/bin/python bench/rm_likelihood.py --run runs/cpu [--preset cpu] [--judge DIR ...]
    .venv/bin/python bench/rm_likelihood.py --docs

The RM is a language model with its unembedding replaced by a scalar head (§3.5). Each `--judge`
(a causal LM folder with the run's tokenizer; default: SFT-`size`, the model the stage's RM
started from before the cpu preset's RM moved to a public-NLP start, docs item 24) scores every response by log π(response, <eos> | prompt), summed over the
response's tokens, with no training at all, and is measured like the RM: against the training
and the held-out labelers' ranks of the validation sets and against the gold order, per task.
Then the stage's RM score plus α × that log-likelihood (each divided by its spread over the
training responses), α chosen on the *training* comparisons (the grid value that agrees most
with their labelers; the validation sets are not looked at). Where the likelihood beats the RM on
a task, the RM has not learned to read what its own starting model knows. A control row judges by
length alone (fewer words is better), since a summed log-likelihood favours short responses.
Results: bench/results/rm_likelihood.json; `--docs` rewrites the table in
docs/implementation_details.md (item 27) from that file.
"""
import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import docs_or_main, machine, run_label, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rm_likelihood.json"
METRICS = ("train_labelers", "heldout_labelers", "gold_strict")
ALPHAS = [round(0.1 * i, 1) for i in range(41)]  # α in units of (RM spread / likelihood spread)
BATCH = 64


def likelihoods(lm, tokenizer, rows, batch_size=BATCH):
    """log π(y + <eos> | x) of every response of every row, as the policy would have produced it
    (the prompt tokenized as a rollout's query, the response's tokens after it): list of lists."""
    import torch
    from torch.nn.utils.rnn import pad_sequence
    from igpt_lib.ppo import response_logprobs
    items = []
    for r in rows:
        query = tokenizer(r["prompt"])["input_ids"]
        for y in r["responses"]:
            items.append((query, tokenizer(y, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]))
    order = sorted(range(len(items)), key=lambda i: (len(items[i][0]), len(items[i][1])))
    flat = [0.0] * len(items)
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            q = max(len(items[i][0]) for i in chunk)
            queries = torch.stack([torch.tensor([pad] * (q - len(items[i][0])) + items[i][0]) for i in chunk])
            answers = pad_sequence([torch.tensor(items[i][1]) for i in chunk], batch_first=True, padding_value=pad)
            mask = pad_sequence([torch.ones(len(items[i][1]), dtype=torch.bool) for i in chunk], batch_first=True)
            left = torch.tensor([[k >= q - len(items[i][0]) for k in range(q)] for i in chunk])  # left padding off
            attention = torch.cat([left, mask], dim=1)
            ids = torch.cat([queries, answers], dim=1).to(lm.device)
            logp, _ = response_logprobs(lm, ids, attention.long().to(lm.device), q)   # (b, T)
            sums = (logp * mask.to(logp.device)).sum(-1).tolist()
            for b, i in enumerate(chunk):
                flat[i] = sums[b]
    out, i = [], 0
    for r in rows:
        out.append(flat[i:i + len(r["responses"])])
        i += len(r["responses"])
    return out


def accuracies(scores, comps):
    """The stage's three accuracies and gold-strict per task, rounded."""
    from igpt_lib.reward import validation_accuracies
    parts = validation_accuracies(scores, comps)
    return {**{m: round(parts[m]["accuracy"], 4) for m in METRICS}, "by_task": parts["gold_strict"]["by_task"]}


def spread(scores):
    import statistics
    return statistics.pstdev([x for row in scores for x in row]) or 1.0


def combine(rm, ll, alpha, s_rm, s_ll):
    return [[a / s_rm + alpha * b / s_ll for a, b in zip(r, l)] for r, l in zip(rm, ll)]


def choose_alpha(rm_train, ll_train, train_rows):
    """(α, its accuracy against the training labelers) over ALPHAS, on the training comparisons only."""
    from igpt_lib.reward import evaluate
    s_rm, s_ll = spread(rm_train), spread(ll_train)
    fits = {a: evaluate(combine(rm_train, ll_train, a, s_rm, s_ll), train_rows)["accuracy"] for a in ALPHAS}
    best = max(fits, key=lambda a: (fits[a], -a))  # the smallest α among equals
    return best, round(fits[best], 4)


def judge(lm, tokenizer, comps, rm_scores):
    """One judge's entry: its likelihood's accuracies, and the RM + α × it with α from the training sets."""
    from igpt_lib.world.pretrain import n_params
    ll = {s: likelihoods(lm, tokenizer, comps[s]) for s in ("train", "val")}
    alpha, fit = choose_alpha(rm_scores["train"], ll["train"], comps["train"])
    both = combine(rm_scores["val"], ll["val"], alpha, spread(rm_scores["train"]), spread(ll["train"]))
    return {"params": n_params(lm), "likelihood": accuracies(ll["val"], comps),
            "rm_plus_likelihood": {**accuracies(both, comps), "alpha": alpha, "train_fit": fit}}


def shorter(rows):
    """The control judge: fewer words is better (a likelihood sums one negative term per token)."""
    return [[-len(y.split()) for y in r["responses"]] for r in rows]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--judge", type=Path, nargs="+", default=None,
                    help="causal LM folders (default: the run's SFT model the RM starts from)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from transformers import AutoModelForCausalLM
    from igpt_lib.comparisons import comparisons_digest
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_comparison_rows
    from igpt_lib.models import load_tokenizer
    from igpt_lib.reward import load_reward_model, score_sets
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    cfg = get_preset(args.preset).rm
    files = {s: args.run / "rm" / f"comparisons.{s}.jsonl" for s in ("train", "val", "heldout")}
    if missing := [str(f) for f in [*files.values(), args.run / "rm" / "model.safetensors"] if not f.exists()]:
        sys.exit(f"bench/rm_likelihood.py: {missing[0]} not found: run `python -m igpt_lib rm --preset {args.preset} "
                 f"--out {args.run}` first")
    judges = args.judge or [args.run / "sft" / cfg.size]
    if bad := [j for j in judges if not (j / "config.json").exists()]:
        sys.exit(f"bench/rm_likelihood.py: --judge {bad[0]}: no model folder (config.json) there")
    comps = {s: load_comparison_rows(f) for s, f in files.items()}
    start, tokenizer = time.time(), load_tokenizer(args.run / "rm")
    rm = load_reward_model(args.run / "rm").eval()
    rm_scores = {s: score_sets(rm, tokenizer, comps[s], cfg) for s in ("train", "val")}
    entry = {"run": run_label(args.run, REPO),
             "preset": args.preset, "comparisons": comparisons_digest(args.run / "rm"),
             "rm": accuracies(rm_scores["val"], comps), "shorter": accuracies(shorter(comps["val"]), comps), "judges": {}}
    for j in judges:
        name = str(j.resolve().relative_to(args.run.resolve())) if j.resolve().is_relative_to(args.run.resolve()) else str(j)
        entry["judges"][name] = judge(AutoModelForCausalLM.from_pretrained(j).eval(), tokenizer, comps, rm_scores)
    for what, acc in [("stage RM", entry["rm"]), ("fewer words", entry["shorter"])] + [
            (f"{n}: {k}", e[k]) for n, e in entry["judges"].items() for k in ("likelihood", "rm_plus_likelihood")]:
        print(f"{what}: " + ", ".join(f"{m} {acc[m]:.3f}" for m in METRICS))
    entry["seconds"] = round(time.time() - start, 1)
    result = json.loads(args.results.read_text()) if args.results.exists() else {}
    result.update(machine=machine(), **{entry["run"]: entry})
    write_result(args.results, result)
    return entry


def table(result):
    """docs/implementation_details.md: accuracies of the stage's RM, each judge's likelihood and the two together."""
    tasks = sorted({t for e in result.values() if isinstance(e, dict) and "rm" in e for t in e["rm"]["by_task"]})
    lines = ["| run (comparisons) | judge of the validation sets | training labelers | held-out labelers | gold-strict | "
             + " | ".join(tasks) + " |", "|---|---|---|---|---|" + "---|" * len(tasks)]

    def row(where, what, acc):
        lines.append(f"| {where} | {what} | {acc['train_labelers']:.3f} | {acc['heldout_labelers']:.3f} | "
                     f"**{acc['gold_strict']:.3f}** | " + " | ".join(f"{acc['by_task'].get(t, float('nan')):.2f}"
                                                                  for t in tasks) + " |")
    for run, e in result.items():
        if not isinstance(e, dict) or "rm" not in e:
            continue
        where = f"{run} ({e['comparisons']})"
        row(where, "the stage's RM", e["rm"])
        if "shorter" in e:
            row(where, "control: fewer words is better", e["shorter"])
        for name, j in e["judges"].items():
            row(where, f"log π(y \\| x) of `{name}` ({j['params'] / 1e6:.1f}M), untrained", j["likelihood"])
            row(where, f"RM + {j['rm_plus_likelihood']['alpha']} × that (α fitted on the training comparisons)",
                j["rm_plus_likelihood"])
    return "\n".join(lines)


if __name__ == "__main__":
    docs_or_main(main, table, RESULTS, "rm-likelihood")
