"""Step 4: every model of a run judged on held-out prompts → OUT/report.json and Figure 1.

The models are the run's base family (GPT, and GPT-prompted: the same models behind one fixed
few-shot prefix), the SFT family, and its PPO / PPO-ptx runs (OUT/ppo*, read from their
summary.json). Each answers the same held-out test prompts; held-out labelers judge it against
the reference (the largest SFT model, as Figure 1 judges against 175B SFT) and the gold labeler
scores it. `report.json` then has the headline (the smallest PPO-ptx policy against the largest
GPT), Figure 1's rows, each model's §4.2 measurements, and the claims: each computed from this
run, with the paper's value and whether it holds here — never forced.
Lessons: notebooks/05_evaluation.ipynb, notebooks/06_small_beats_large.ipynb.
"""
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

METHODS = ("GPT", "GPT-prompted", "SFT", "PPO", "PPO-ptx")  # Figure 1's legend, worst to best in the paper
RUN_NAME = re.compile(r"ppo(_ptx)?(_[a-z]+)?(_seed\d+)?")     # OUT/ppo, OUT/ppo_ptx, OUT/ppo_s, OUT/ppo_ptx_seed1, ...


@dataclass(frozen=True)
class Entry:
    method: str
    size: str
    folder: Path
    prefix: str = ""   # GPT-prompted: the fixed few-shot prefix
    run: str = ""      # the PPO folder's name (several seeds of one method and size)

    @property
    def key(self):
        return f"{self.method}:{self.size}" + (f":{self.run}" if self.run and "seed" in self.run else "")


def entries(preset, out):
    """Every model the run in OUT has, smallest size first within each method."""
    from .world.prompts import GPT_PROMPT_PREFIX
    out, sizes = Path(out), [s.name for s in preset.world.sizes]
    found = [Entry("GPT", s, out / "world" / "models" / s) for s in sizes]
    found += [Entry("GPT-prompted", s, out / "world" / "models" / s, GPT_PROMPT_PREFIX) for s in sizes]
    found += [Entry("SFT", s, out / "sft" / s) for s in sizes if (out / "sft" / s).is_dir()]
    for folder in sorted(out.iterdir()):
        match = RUN_NAME.fullmatch(folder.name)
        if match and (folder / "summary.json").exists():
            cfg = json.loads((folder / "summary.json").read_text())["config"]
            if match.group(2) and match.group(2)[1:] != cfg["policy"]:
                continue  # e.g. ppo_beta0: a variant, not a Figure 1 run
            found.append(Entry("PPO-ptx" if cfg["ptx_coef"] > 0 else "PPO", cfg["policy"], folder, run=folder.name))
    return found


def run_eval(preset, out, log=print, progress=True):
    """`python -m igpt_lib eval`: judge every model of OUT → OUT/report.json, OUT/figures/figure1.png."""
    from transformers import AutoModelForCausalLM
    from tqdm.auto import tqdm
    from .data import load_prompts, write_json
    from .evaluation import behaviour, corpus_nll, likert_mean, responses
    from .world.labelers import Panel
    from .models import load_tokenizer
    from .ppo_trainer import corpus_tokens
    cfg, out, start = preset.eval, Path(out), time.time()
    for needed, stage in (("world.json", "world build"), ("sft/summary.json", "sft"), ("ppo/summary.json", "ppo")):
        if not (out / needed).exists():
            raise FileNotFoundError(f"{out / needed}: missing; run `python -m igpt_lib {stage}` (or `reproduce`) first")
    world = json.loads((out / "world.json").read_text())
    rows = load_prompts(out / "world" / "data" / "prompts.test.jsonl")[: cfg.prompts]
    tok = load_tokenizer(out / "world" / "tokenizer")
    tokens, models, sampled, greedy = corpus_tokens(out, tok), {}, {}, {}
    panel = Panel.load(out / "world" / "data" / "labelers.json", "heldout")
    todo = entries(preset, out)
    log(f"eval: {len(todo)} models on {len(rows)} held-out prompts, {cfg.samples} samples at T = {cfg.temperature} "
        "and greedy")
    for e in tqdm(todo, desc="eval", disable=not progress):
        model = AutoModelForCausalLM.from_pretrained(e.folder)
        args = (model, tok, rows, preset.ppo.max_new_tokens)
        sampled[e.key] = responses(*args, cfg.temperature, cfg.samples, e.prefix, cfg.seed)
        greedy[e.key] = responses(*args, prefix=e.prefix)
        models[e.key] = {"method": e.method, "size": e.size, "params": world["param_counts"][e.size],
                         "folder": str(e.folder.relative_to(out)),
                         **behaviour(_repeat(rows, len(sampled[e.key]) // len(rows)), sampled[e.key]),
                         "likert": likert_mean(_repeat(rows, len(sampled[e.key]) // len(rows)), sampled[e.key],
                                               panel, cfg.seed),
                         "greedy": behaviour(rows, greedy[e.key])}
        if e.method != "GPT-prompted":
            models[e.key]["corpus_nll"] = round(corpus_nll(model, tokens, windows=cfg.nll_windows, seed=cfg.seed), 4)
    report = _report(preset, out, rows, todo, models, sampled, greedy, panel)
    report["seconds"] = round(time.time() - start, 1)
    write_json(out / "report.json", report)
    _figure1(report, out)
    h = report["headline"]
    log(f"eval: headline {h['policy']} vs {h['baseline']} ({h['param_ratio']}x larger): win rate "
        f"{h['win_rate']:.3f}, 95 % CI {h['ci95']}; claims holding: "
        f"{sum(c['holds'] is True for c in report['claims'].values())} of {len(report['claims'])}")
    return report


def _repeat(rows, samples):
    return [r for r in rows for _ in range(samples)]


def _report(preset, out, rows, todo, models, sampled, greedy, panel):
    from .evaluation import win_rate
    cfg, world = preset.eval, json.loads((out / "world.json").read_text())
    largest = lambda method: max((e for e in todo if e.method == method and e.key in models),  # noqa: E731
                                 key=lambda e: world["param_counts"][e.size], default=None)
    smallest = lambda method: min((e for e in todo if e.method == method and "seed" not in e.run),  # noqa: E731
                                  key=lambda e: world["param_counts"][e.size], default=None)

    def win(a, b, decoded=sampled):
        samples = len(decoded[a.key]) // len(rows)
        result = win_rate(_repeat(rows, samples), decoded[a.key], decoded[b.key], panel, cfg.seed, samples)
        return {"win_rate": round(result["win_rate"], 4), "ci95": result["ci95"], "policy": a.key,
                "baseline": b.key, "param_ratio": round(world["param_counts"][b.size] / world["param_counts"][a.size], 2),
                "by_task": result["by_task"]}

    ref = largest(cfg.reference)
    figure1 = [{"method": e.method, "size": e.size, "params": models[e.key]["params"], "run": e.run,
                **{k: v for k, v in win(e, ref).items() if k in ("win_rate", "ci95")}} for e in todo]
    policy = smallest("PPO-ptx") or smallest("PPO")
    pairs = {"headline": largest("GPT"), "beats_prompted_large": largest("GPT-prompted"),
             "ppo_beats_sft": next(e for e in todo if e.method == "SFT" and e.size == policy.size)}
    wins = {name: win(policy, base) for name, base in pairs.items()}
    wins_greedy = {name: win(policy, base, greedy) for name, base in pairs.items()}
    seeds = [win(e, ref) for e in todo if e.method == policy.method and e.size == policy.size]
    from .claims import claims
    from .rounds import all_rounds
    return {"preset": preset.name, "decoding": {"temperature": cfg.temperature, "samples": cfg.samples},
            "prompts": len(rows), "reference": ref.key, "headline": wins["headline"],
            "figure1": figure1, "seeds": {"policy": policy.key, "win_rates_vs_reference": seeds},
            "claims": claims(out, models, wins, figure1, policy, pairs),
            "greedy": wins_greedy, "rounds": all_rounds(out), "models": models, "config": asdict(cfg)}


def _figure1(report, out):
    """figures/figure1.png: win rate against the reference by size, one line per method."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        rows = sorted((r for r in report["figure1"] if r["method"] == method and "seed" not in r["run"]),
                      key=lambda r: r["params"])
        if rows:
            x, y = [r["params"] for r in rows], [r["win_rate"] for r in rows]
            err = np.array([[r["win_rate"] - r["ci95"][0], r["ci95"][1] - r["win_rate"]] for r in rows]).T
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=method)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set(xscale="log", xlabel="parameters", ylabel=f"win rate vs {report['reference']}",
           title=f"Figure 1 at reduced scale ({report['preset']} preset, held-out labelers)", ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    (out / "figures").mkdir(exist_ok=True)
    fig.savefig(out / "figures" / "figure1.png", dpi=120)
    plt.close(fig)


def markdown(report):
    """README's results section from report.json: the headline, Figure 1 and the claims."""
    h, g = report["headline"], report["greedy"]
    d = report["decoding"]
    lines = [f"**Headline** ({report['preset']} preset, {report['prompts']} held-out prompts × {d['samples']} samples at "
             f"T = {d['temperature']:g}, held-out labelers): {h['policy']} is preferred to {h['baseline']} "
             f"({h['param_ratio']:g}× more parameters) **{h['win_rate']:.3f}** of the time, 95 % CI "
             f"[{h['ci95'][0]:.3f}, {h['ci95'][1]:.3f}] (greedy: {g['headline']['win_rate']:.3f} "
             f"[{g['headline']['ci95'][0]:.3f}, {g['headline']['ci95'][1]:.3f}]).", "",
             f"| Figure 1: win rate vs {report['reference']} | " + " | ".join(_sizes(report)) + " |",
             "|---|" + "---:|" * len(_sizes(report))]
    for method in METHODS:
        cells = {r["size"]: r for r in report["figure1"] if r["method"] == method and "seed" not in r["run"]}
        if cells:
            lines.append(f"| {method} | " + " | ".join(
                f"{cells[s]['win_rate']:.3f} [{cells[s]['ci95'][0]:.2f}, {cells[s]['ci95'][1]:.2f}]" if s in cells else "—"
                for s in _sizes(report)) + " |")
    lines += ["", "| claim | ours | paper | holds |", "|---|---|---|---|"]
    for name, c in report["claims"].items():
        holds = {True: "yes", False: "**no**", None: "not measured"}[c["holds"]]
        lines.append(f"| `{name}` | {_short(c)} | {_paper(c['paper'])} | {holds} |")
    if len(report.get("rounds", [])) > 1:
        lines += ["", "| round | ranked sets | RM held-out fold acc. | RM held-out group acc. | RM gold-order acc. | "
                  "RM evaluated on | PPO held-out gold: greedy | sampled (SFT) | PPO − SFT [95 % CI]: greedy | sampled |",
                  "|---:|---:|---:|---:|---:|---|---:|---:|---|---|"]
        lines += [f"| {x['round']} | {x['comparisons']} | {_acc(x.get('rm_fold_accuracy'))} | {x['rm_heldout_accuracy']:.3f} | "
                  f"{x['rm_gold_strict']:.3f} | "
                  f"{x['rm_evaluated_on']} | {x['ppo_test_gold']:+.3f} | {x['ppo_test_gold_sampled']:+.3f} "
                  f"({x['sft_test_gold_sampled']:+.3f}) | {format_gain(x.get('gain_greedy'))} | {format_gain(x.get('gain_sampled'))} |"
                  for x in report["rounds"]]
    lines += ["", f"Greedy decoding instead: PPO-ptx vs SFT of its size {_wci(g['ppo_beats_sft'])}, vs the largest "
                  f"GPT-prompted {_wci(g['beats_prompted_large'])}. Evaluation took {report['seconds']:.0f} s."]
    return "\n".join(lines)


def _acc(x):
    return "—" if x is None else f"{x:.3f}"


def format_gain(d):
    """A paired difference {mean, ci95} as "+0.042 [-0.002, +0.085]" (— where none was recorded)."""
    return f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else "—"


def _sizes(report):
    return list(dict.fromkeys(r["size"] for r in sorted(report["figure1"], key=lambda r: r["params"])))


def _wci(w):
    return f"{w['win_rate']:.3f} [{w['ci95'][0]:.3f}, {w['ci95'][1]:.3f}]"


def _paper(paper):
    return ", ".join(f"{k} {v}" for k, v in paper.items()) if isinstance(paper, dict) else str(paper)


def _short(c):
    """A claim's value in one table cell."""
    v = c["value"]
    if "measured_on" in c:  # the RM's held-out accuracy, beside the training labelers'
        who = "held-out fold" if c["measured_on"] == "fold_labelers" else "held-out group"
        return (f"{who} {v:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}]; training labelers {c['train_labelers']:.3f}"
                + (f"; §3.4 group {c['heldout_labelers']:.3f}" if c["measured_on"] == "fold_labelers" else ""))
    if "ci95" in c and isinstance(v, float):
        return f"{v:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}]"
    if "baseline_value" in c:
        return f"{v} vs {c['baseline_value']} ({c['baseline']})"
    if isinstance(v, dict) and "tax" in v:
        return "NLL rise over GPT: " + ", ".join(f"{k} {x:+.2f}" for k, x in v["tax"].items())
    if isinstance(v, dict) and "gold_peak" in v:
        return (f"`{v['run']}`: gold peak {v['gold_peak']:+.3f} (it. {v['gold_peak_iteration']}) → {v['gold_last']:+.3f}; "
                f"RM score {v['score_at_peak']:+.3f} → {v['score_last']:+.3f}; KL {v['kl_last']:.1f}")
    if v is None:
        return c.get("why", "—")
    if isinstance(v, dict) and all(isinstance(x, list) for x in v.values()):
        return "; ".join(f"{s}: {' > '.join(m)}" for s, m in v.items())
    if isinstance(v, dict) and all(isinstance(x, dict) and "holds" in x for x in v.values()):
        return "; ".join(f"{s}: loss best at {x['val_loss_best_epoch']}, score at {x['score_best_epoch']}"
                         for s, x in v.items())
    return json.dumps(v)
