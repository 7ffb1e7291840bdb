"""Choosing PPO's learning rate and β on the validation prompts, never on the test prompts
(issue #5): each finished PPO run of a run folder is judged against its SFT start on the world's
validation users' prompts (greedy and sampled at T = 1, as the stage judges the test prompts),
and the rule picks the run with the largest greedy validation gain among those with β > 0
(β = 0 is the over-optimisation demonstration, not a candidate).

    .venv/bin/python bench/ppo_select.py --run runs/cpu [--runs ppo ppo_grid_...] [--preset cpu]
    .venv/bin/python bench/ppo_select.py --docs

The runs are made beforehand, e.g. `python -m igpt_lib ppo --lr 1e-4 --kl-coef 0.1 --name
ppo_grid_lr0.0001_beta0.1` (default `--runs`: `ppo` and every `ppo_grid_*` and `ppo_sweep_*` folder
with a summary.json). The table also shows each run's test-prompt gain from its summary.json, read
after the choice and not used by it. Writes bench/results/ppo_select.json; `--docs` writes the table
into docs/implementation_details.md (item 40).
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import docs_or_main, machine, run_label, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "ppo_select.json"


def candidates(run, names=None):
    """Run folders under `run` to judge: `names`, or `ppo` and every grid / sweep folder, finished."""
    if names:
        missing = [n for n in names if not (run / n / "summary.json").exists()]
        if missing:
            raise SystemExit(f"{run}: no finished PPO run (summary.json) in {', '.join(missing)}")
        return names
    names = ["ppo"] + sorted(p.name for p in run.iterdir() if p.name.startswith(("ppo_grid_", "ppo_sweep_")))
    return [n for n in names if (run / n / "summary.json").exists()]


def choose(entries):
    """The rule, fixed before looking: the largest greedy validation gain among runs with β > 0."""
    return max((e for e in entries if e["kl_coef"] > 0), key=lambda e: e["val"]["greedy"]["difference"])["name"]


def judge(run, preset, names, prompts):
    """Validation-prompt gold of each run's policy against its SFT start (`evaluation.heldout_gold`,
    as the stage pairs them on the test prompts; each SFT policy judged once per setting)."""
    from transformers import AutoModelForCausalLM
    from igpt_lib.evaluation import heldout_gold, heldout_scores
    from igpt_lib.models import load_tokenizer
    tok, sft_scores, entries = load_tokenizer(run / "sft" / preset.ppo.policy), {}, []
    for name in names:
        summary = json.loads((run / name / "summary.json").read_text())
        cfg = summary["config"]
        settings = {"greedy": dict(temperature=0.0, samples=1, seed=0),
                    "sampled": dict(temperature=1.0, samples=4, seed=cfg["seed"])}
        policy = AutoModelForCausalLM.from_pretrained(run / name).eval()
        sft = None
        val = {}
        for how, kw in settings.items():
            key = (cfg["policy"], how, kw["seed"])
            if key not in sft_scores:
                sft = sft or AutoModelForCausalLM.from_pretrained(run / "sft" / cfg["policy"]).eval()
                sft_scores[key] = heldout_scores(run, sft, tok, prompts, cfg["max_new_tokens"], split="val", **kw)
            g = heldout_gold(run, {"ppo": policy}, tok, prompts, cfg["max_new_tokens"], split="val",
                             known={"sft": sft_scores[key]}, **kw)
            val[how] = {"difference": round(g["difference"]["mean"], 4), "ci95": g["difference"]["ci95"],
                        "prompts": g["prompts"]}
        test = {how: {"difference": round(summary[k]["difference"]["mean"], 4), "ci95": summary[k]["difference"]["ci95"]}
                for how, k in (("greedy", "test_gold"), ("sampled", "test_gold_sampled"))}
        entries.append({"name": name, "lr": cfg["lr"], "kl_coef": cfg["kl_coef"], "ptx_coef": cfg["ptx_coef"],
                        "seed": cfg["seed"], "iterations": cfg["iterations"], "val": val, "test": test})
        print(f"{name}: lr {cfg['lr']}, β {cfg['kl_coef']}: validation greedy {val['greedy']['difference']:+.3f} "
              f"{val['greedy']['ci95']}, sampled {val['sampled']['difference']:+.3f}", flush=True)
    return entries


def main(argv=None):
    from igpt_lib.comparisons import comparisons_digest
    from igpt_lib.config import get_preset
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--runs", nargs="+", help="run folders under --run (default: ppo, ppo_grid_*, ppo_sweep_*)")
    p.add_argument("--prompts", type=int, default=400, help="validation prompts (the world has fewer: all of them)")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    preset = get_preset(args.preset)
    names = candidates(args.run, args.runs)
    if not names:
        raise SystemExit(f"{args.run}: no finished PPO runs to judge (summary.json)")
    entries = judge(args.run, preset, names, args.prompts)
    entry = {"comparisons": comparisons_digest(args.run / "rm"), "rule": choose.__doc__.split(": ", 1)[1],
             "chosen": choose(entries), "entries": entries}
    print(f"chosen by the validation prompts: {entry['chosen']}")
    result = json.loads(args.results.read_text()) if args.results.exists() else {}
    result.update(machine=machine())
    result.setdefault("runs", {})[run_label(args.run, REPO)] = entry
    write_result(args.results, result)
    return entry


def table(result):
    """docs/implementation_details.md (item 40): per run folder, each PPO run's validation gain, the
    choice, and its test gain."""
    def gain(g):
        return f"{g['difference']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}]"
    lines = []
    for run, r in result["runs"].items():
        lines += ["" if lines else None, f"Run {run} (comparisons {r['comparisons']}); rule: {r['rule'].rstrip('.')}.", "",
                  "| run | lr | β | γ_ptx | validation gold, PPO − SFT: greedy | sampled, T = 1 | "
                  "test gold (not used to choose): greedy | sampled |", "|---|---|---|---|---|---|---|---|"]
        for e in sorted(r["entries"], key=lambda e: (e["lr"], e["kl_coef"], e["name"])):
            mark = " **(chosen)**" if e["name"] == r["chosen"] else ""
            lines.append(f"| `{e['name']}`{mark} | {e['lr']:g} | {e['kl_coef']:g} | {e['ptx_coef']:g} | "
                         f"{gain(e['val']['greedy'])} | {gain(e['val']['sampled'])} | {gain(e['test']['greedy'])} | "
                         f"{gain(e['test']['sampled'])} |")
    return "\n".join(x for x in lines if x is not None)


if __name__ == "__main__":
    docs_or_main(main, table, RESULTS, "ppo-select")
