"""README's "Performance" section, written from bench/results/*.json (no number typed by hand).

    .venv/bin/python bench/report.py        # make bench runs it last

`tests/test_bench.py` checks that README's section equals what this writes from the committed
results.
"""
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
MARKER = "performance"


def _load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _machine(m):
    return f"{m['cpus']} CPU cores ({m['platform']}, torch {m.get('torch', '?')}, {m.get('torch_threads', '?')} threads)"


def rm_lines(rm):
    """The RM table, with the equal-batch ratios and the choice from rm_tuning.json when present."""
    s = rm["setup"]
    head = ["| K | prompts per step ours / TRL | ours comparisons/s | TRL comparisons/s | **ratio** | forwards ours / TRL "
            "| held-out acc. ours / TRL | gold-order acc. ours / TRL |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def line(k, r):
        return (f"| {k} | {r['ours_batch_prompts']} / {r['trl_batch_prompts']} | "
                f"{r['ours_comparisons_per_s']:,.0f} | {r['trl_comparisons_per_s']:,.0f} | "
                f"**{r['ratio']:.1f}×** | {r['ours_forwards']:,} / {r['trl_forwards']:,} | "
                f"{r['ours_acc']:.3f} / {r['trl_acc']:.3f} | {r['ours_gold_acc']:.3f} / {r['trl_gold_acc']:.3f} |")
    rows = head + [line(k, r) for k, r in rm["K"].items()]
    eq, equal, grid = str(s["equal_batch_prompts"]), [], []
    tuning = _load("rm_tuning.json")
    if tuning:
        equal = [f"K = {k}: {t['grid']['trl'][eq]['seconds'] / t['grid']['ours'][eq]['seconds']:.1f}×, held-out acc. "
                 f"{t['grid']['ours'][eq]['acc']:.3f} / {t['grid']['trl'][eq]['acc']:.3f}"
                 for k, t in tuning["K"].items() if eq in t["grid"]["ours"] and eq in t["grid"]["trl"]]
        grid = ["| K | side | " + " | ".join(f"{b} per step" for b in tuning["setup"]["grid"]) + " |",
                "|---:|---|" + "---:|" * len(tuning["setup"]["grid"])]
        for k, t in tuning["K"].items():
            for who, name in [("ours", "ours"), ("trl", "TRL")]:
                cells = [(f"**{g['val_acc']:.3f}**" if int(b) == t["chosen"][who] else f"{g['val_acc']:.3f}")
                         + f" / {g['acc']:.3f} ({g['seconds']:.1f} s)" for b, g in t["grid"][who].items()]
                grid.append(f"| {k} | {name} | " + " | ".join(cells) + " |")
        low = min(tuning["setup"]["grid"])
        edge = [f"{name} at K = {k}" for k, t in tuning["K"].items() for who, name in [("ours", "ours"), ("trl", "TRL")]
                if t["chosen"][who] == low]
        grid = ["The choice (`python bench/rm_bench.py --tune`, bench/results/rm_tuning.json): validation accuracy "
                "(bold: the best, chosen), then held-out accuracy and training seconds of the tuning run, means over "
                f"{len(tuning['setup']['seeds'])} seeds:", "", *grid, "",
                *([f"Chosen at the grid's smallest batch ({low} prompt(s) per step; ours cannot go lower, TRL could "
                   f"take fewer pairs than one prompt's C(K,2)): {', '.join(edge)}. At this scale both sides gain "
                   "from more optimizer steps in the one epoch.", ""] if edge else [])]
    return [f"**Reward model** (`bench/rm_bench.py`): our K-way training vs `trl.RewardTrainer` on the same "
            f"comparisons expanded into pairs — the shipped base model `{s['model']}` with a new scalar head, "
            f"{s['prompts']} prompts × K responses ranked by training labelers, {s['epochs']} epoch(s), the same "
            f"learning rate and schedule. Each side tries {', '.join(map(str, s['grid']))} prompts' comparisons "
            f"per optimizer step and keeps the best by accuracy on {s['val_prompts']} validation prompts ranked by "
            f"training labelers; the table reports accuracy on {s['heldout_prompts']} held-out prompts ranked by "
            f"held-out labelers (and by gold), which no choice saw; means over {len(s['seeds'])} training seeds. "
            f"Goal: ≥ {rm['goals']['ratio_at_k9']:.0f}× at K = 9, accuracy within "
            f"{rm['goals']['accuracy_within_points']:.0f} points.",
            "", *rows, "", *([f"At equal batch (both sides at the cpu preset's {eq} prompts per step, this table's "
                              "setting before the choice; times of the tuning run), ours / TRL: " + "; ".join(equal)
                              + ".", ""] if equal else []), *grid]


def ppo_lines(ppo):
    s = ppo["setup"]
    return [f"**PPO** (`bench/ppo_bench.py`): our trainer vs TRL {ppo['trl_version']}'s "
            f"`trl.experimental.ppo.PPOTrainer` (the last TRL PPO), {s['policy']} against "
            + (f"the RM of the cpu run whose comparisons are {s['comparisons']}" if s.get("comparisons") else
               "the RM of an earlier cpu run, not recorded which") +
            f", value model from it; {s['iterations']} iterations × {s['batch_size']} episodes (minibatch "
            f"{s['minibatch_size']}, {s['ppo_epochs']} epoch, {s['response_length']} new tokens, β {s['kl_coef']}, "
            f"lr {s['lr']}). Goal: ≥ {ppo['goal_ratio']}×, gold not lower. TRL 1.12 accumulates its "
            f"minibatches into one optimizer step per rollout, ours steps once per minibatch (same forward and "
            f"backward work), which may be why its gold moves less in the same episodes.",
            "",
            "| trainer | episodes/s | held-out gold, T = 1 | held-out gold, greedy |",
            "|---|---:|---:|---:|",
            f"| ours | {ppo['ours_episodes_per_s']:.2f} | {ppo['ours_gold']:+.3f} | {ppo['greedy']['ours']:+.3f} |",
            f"| TRL {ppo['trl_version']} | {ppo['trl_episodes_per_s']:.2f} | {ppo['trl_gold']:+.3f} | "
            f"{ppo['greedy']['trl']:+.3f} |",
            f"| (SFT start) | | {ppo['sft_gold']:+.3f} | {ppo['greedy']['sft']:+.3f} |",
            "",
            f"Ratio **{ppo['ratio']:.2f}×**; gold ours − TRL at T = 1, 95 % CI {ppo['gold_difference_ci95']} "
            f"({s['eval_prompts']} held-out prompts × {s['eval_samples_per_prompt']} samples).", ""]


def e2e_lines(e2e, machine=None):
    """The end-to-end table; where it ran on another machine than `machine` (the section's head), it says which."""
    stages = list(next(iter(e2e["presets"].values()))["stages"])
    rows = ["| preset | " + " | ".join(stages) + " | **total** | peak RSS |",
            "|---|" + "---:|" * (len(stages) + 2)]
    for name, p in e2e["presets"].items():
        rows.append(f"| `{name}` | " + " | ".join(f"{p['stages'][s]['seconds']:.0f} s" for s in stages)
                    + f" | **{p['seconds'] / 60:.1f} min** (goal {p['goal_s'] / 60:.0f}) | {p['peak_rss_mib']:,} MiB |")
    side = _side_by_side(e2e)
    return ["**End to end** (`bench/e2e.py`): `python -m igpt_lib reproduce` on a fresh clone (empty model "
            "cache; the base models and the RM's start shipped in `data/base_models`); each stage's time from the "
            "`OUT/stages.json` it writes; the total is the command's wall time, start-up included; peak RSS "
            "is the largest process's." + side + _elsewhere(e2e, machine), "", *rows, ""]


def _elsewhere(result, machine):
    """A sentence naming the machine `result` ran on, where that is not `machine`; else nothing."""
    mine = result.get("machine")
    if not mine or not machine or mine.get("platform") == machine.get("platform"):
        return ""
    return f" Measured on {_machine(mine)}, not the machine above."


def _side_by_side(e2e):
    """The sentence saying which stages ran at the same time (reproduce's PPO workers), if any."""
    for p in e2e["presets"].values():
        ppo = {n: s for n, s in p["stages"].items() if n.startswith("ppo") and s.get("jobs", 1) > 1}
        if ppo:
            s = next(iter(ppo.values()))
            return (f" {', '.join(ppo)} ran side by side, {s['jobs']} processes of {s['threads']} thread(s) each "
                    "(igpt_lib/parallel.py), so their times overlap.")
    return ""


def generation_lines(gen):
    methods = list(next(iter(gen["sizes"].values()))["methods"])
    rows = ["| model | " + " | ".join(methods) + " | speed-up |", "|---|" + "---:|" * (len(methods) + 1)]
    for size, g in gen["sizes"].items():
        rows.append(f"| {size} ({g['params']:,} params) | "
                    + " | ".join(f"{g['methods'][m]['tokens_per_s']:,.0f}" for m in methods) + f" | **{g['speedup']}×** |")
    return [f"**Generation** (`bench/generation.py`): rollout tokens/s, {gen['prompts']} held-out prompts, "
            f"{gen['max_new_tokens']} new tokens at T = 1.", "", *rows, ""]


def goal_lines(rm, ppo, e2e):
    """Each goal of issue #8 against the results: met or missed, with the number."""
    out = []
    if rm and "9" in rm["K"]:
        k9 = rm["K"]["9"]
        gap = 100 * (k9["ours_acc"] - k9["trl_acc"])
        out.append(f"RM at K = 9: {k9['ratio']:.1f}× (goal ≥ {rm['goals']['ratio_at_k9']:.0f}×: "
                   f"{'met' if k9['ratio'] >= rm['goals']['ratio_at_k9'] else 'missed'}); held-out accuracy "
                   f"{gap:+.1f} points vs TRL, each at its chosen batch, the same epochs (goal within {rm['goals']['accuracy_within_points']:.0f}: "
                   f"{'met' if abs(gap) <= rm['goals']['accuracy_within_points'] else 'missed'})")
    if ppo:
        out.append(f"PPO: {ppo['ratio']:.2f}× (goal ≥ {ppo['goal_ratio']}×: "
                   f"{'met' if ppo['ratio'] >= ppo['goal_ratio'] else 'missed'}), gold {ppo['ours_gold'] - ppo['trl_gold']:+.3f} "
                   f"vs TRL ({'not lower: met' if ppo['ours_gold'] >= ppo['trl_gold'] else 'lower: missed'})")
    if e2e and "cpu" in e2e["presets"]:
        cpu = e2e["presets"]["cpu"]
        out.append(f"cpu end to end: {cpu['seconds'] / 60:.1f} min (goal ≤ {cpu['goal_s'] / 60:.0f}: "
                   f"{'met' if cpu['seconds'] <= cpu['goal_s'] else 'missed'})")
    return ["**Goals** (issue #8): " + "; ".join(out) + ".", ""] if out else []


def section():
    rm, ppo, e2e, gen = (_load(n) for n in ("rm.json", "ppo.json", "e2e.json", "generation.json"))
    machine = next((x["machine"] for x in (rm, ppo, gen) if x), None)
    parts = [f(x) for f, x in ((rm_lines, rm), (ppo_lines, ppo), (lambda x: e2e_lines(x, machine), e2e),
                               (generation_lines, gen)) if x]
    head = [f"Measured by `make bench` on {_machine(machine)}; absolute times vary between machines, the "
            "ratios less so." if machine else "No benchmark results yet: run `make bench`.", ""]
    lines = head + goal_lines(rm, ppo, e2e) + [line for p in parts for line in p]
    missing = [n for n, x in (("rm", rm), ("ppo", ppo), ("e2e", e2e), ("generation", gen)) if not x]
    if missing and machine:
        lines.append(f"Not yet measured: {', '.join(missing)}.")
    return "\n".join(lines).rstrip("\n")


def write(readme=REPO / "README.md"):
    src = readme.read_text()
    pattern = re.compile(rf"(<!-- {MARKER}:start -->\n).*?(<!-- {MARKER}:end -->)", re.S)
    if not pattern.search(src):
        sys.exit(f"{readme}: marker <!-- {MARKER}:start --> not found")
    readme.write_text(pattern.sub(lambda m: m.group(1) + section() + "\n" + m.group(2), src))


if __name__ == "__main__":
    write()
    print(section())
