"""Write the measured numbers into README.md and docs/world.md, between markers, from runs/cpu.

`make results` makes every run this reads and then calls this script:

    python -m igpt_lib reproduce --preset cpu --out runs/cpu --full --rounds 2
        # world.json, sft/, rm/, ppo/, ppo_ptx/, ppo_beta0/, Figure 1's sizes and seeds, rounds/, report.json
    make notebooks                # 04 trains the β sweep: ppo_sweep_beta{0,0.02,0.1} (300 it. at 3× the LR)
    python -m igpt_lib eval --preset cpu --out runs/cpu          # report.json again, figures/figure1.png
    python docs/update_numbers.py                                 # this script
    python bench/world_build.py                                   # cold-cache timings (bench/results)
"""
import json
import re
import shutil
from pathlib import Path

from igpt_lib.world.build import summary_table

ROOT = Path(__file__).resolve().parents[1]


def shipped_line(against):
    """bench/world_build.py's comparison of the models it trained with the shipped ones, in words."""
    if all(m["byte_equal"] for m in against.values()):
        return f"Weights byte-equal to the shipped ones: yes ({len(against)} models)."

    def apart(models):
        return (f"final training losses within {max(m['loss_diff'] for m in models):.1e}, weights within "
                f"{max(m['max_abs_diff'] for m in models):.3f}")
    base = [m for name, m in against.items() if "_nlp-" not in name]
    nlp = [m for name, m in against.items() if "_nlp-" in name]
    return (f"Weights byte-equal to the shipped ones: {sum(m['byte_equal'] for m in against.values())} of "
            f"{len(against)}. The base models: {apart(base)}"
            + (f"; the RM's start, fine-tuned from the rebuilt base-l: {apart(nlp)}" if nlp else "")
            + ". Another machine rounds floats differently, and training carries it on (docs/reliability.md).")


def models_table(world, bench):
    cold = bench["presets"].get("cpu", {})
    lines = ["| size | hidden | layers | heads | params | pretraining tokens | peak LR | final loss | seconds (2 cores) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in world["config"]["sizes"]:
        info = world["pretrain"][s["name"]]
        lines.append(f"| {s['name']} | {s['hidden']} | {s['layers']} | {s['heads']} | "
                     f"{world['param_counts'][s['name']]:,} | {s['pretrain_tokens']:,} | {s['lr']:g} | "
                     f"{info['final_loss']:.3f} | {info['seconds']:.0f} |")
    if cold:
        lines += ["", f"`world build --pretrain` with a cold cache (the base models and the RM's start trained here, "
                      f"not taken from "
                      f"data/base_models): cpu {cold['wall_s']:.0f} s (goal 600 s), "
                      f"smoke {bench['presets'].get('smoke', {}).get('wall_s', float('nan')):.1f} s "
                      f"(goal 60 s), on {bench['machine']['cpus']} cores."
                  + (" " + shipped_line(cold["against_shipped"]) if cold.get("against_shipped") else "")]
    return "\n".join(lines)


def sft_table(world, summary, metrics):
    lines = ["| size | base (GPT) | GPT-prompted | SFT | epoch kept (best score) | epoch of lowest val loss |",
             "|---|---:|---:|---:|---:|---:|"]
    for size, s in summary["models"].items():
        mine = [r for r in metrics if r["size"] == size]
        low = min(mine, key=lambda r: r["val_loss"])["epoch"]
        lines.append(f"| {size} | {s['base_test_gold']:+.3f} | {world['base_prompted_gold_score'][size]:+.3f} | "
                     f"{s['test_gold']:+.3f} | {s['epoch']} | {low} |")
    lines += ["", f"Mean gold score on the same {world['eval_prompts']} held-out prompts, greedy; "
                  f"SFT of all four sizes took {summary['seconds']:.0f} s on 2 cores."]
    return "\n".join(lines)


def rm_table(m):
    lines = ["| accuracy on validation pairs | ours | paper |", "|---|---:|---:|"]
    lines.append(f"| training labelers' ranks | {m['train_labelers']['accuracy']:.3f} | 0.724 |")
    if "fold_labelers" in m:  # §4.1's measurement: training labelers held out of the RM's data
        lines.append(f"| training labelers held out of the training sets (one fold of five) | "
                     f"{m['fold_labelers']['accuracy']:.3f} | 0.696 |")
    lines.append(f"| held-out labelers' ranks (§3.4's group) | {m['heldout_labelers']['accuracy']:.3f} | "
                 f"{'—' if 'fold_labelers' in m else '0.696'} |")
    lines.append(f"| gold order (strict pairs) | {m['gold_strict']['accuracy']:.3f} | — |")
    lines.append(f"| labelers' own agreement with gold | {m['labelers_vs_gold']:.3f} | — |")
    ceiling = m["gold_vs_labelers"]
    fold = f" / {ceiling['fold_labelers']:.3f}" if "fold_labelers" in ceiling else ""
    lines.append(f"| ceiling: the gold score itself vs training{' / fold' if fold else ''} / held-out labelers | "
                 f"{ceiling['train_labelers']:.3f}{fold} / {ceiling['heldout_labelers']:.3f} | "
                 f"labeler agreement 0.726{' / 0.726' if fold else ''} / 0.773 |")
    by_task = ", ".join(f"{t} {v:.2f}" for t, v in m["gold_strict"]["by_task"].items())
    lines += ["", f"Gold-order accuracy by task: {by_task}. Demonstrations' mean score "
                  f"{m['demo_mean_before']:+.3f} before the shift, {m['demo_mean_after']:+.1e} after; "
                  f"{m['train_prompts']} ranked training sets ({m['config'].get('sets_per_prompt', 1)} per prompt), "
                  f"{m['seconds']:.0f} s on 2 cores."]
    return "\n".join(lines)


def ppo_lines(summary, metrics, world):
    first, last = metrics[:30], metrics[-30:]
    mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    c = summary["config"]
    return (f"SFT-{c['policy']}, β = {c['kl_coef']}, γ_ptx = {c['ptx_coef']}, {c['iterations']} iterations of "
            f"{c['batch_size']} episodes, {summary['seconds']:.0f} s on 2 cores. Over the first / last 30 iterations: "
            f"RM score {mean(first, 'score'):+.3f} / {mean(last, 'score'):+.3f}, KL {mean(first, 'kl'):.3f} / "
            f"{mean(last, 'kl'):.3f} nats, gold of the sampled responses {mean(first, 'gold'):+.3f} / "
            f"{mean(last, 'gold'):+.3f}. Held-out gold (greedy, {summary['test_gold']['prompts']} held-out test prompts): "
            + _held_out(summary["test_gold"]) + " Sampled at T = 1 (4 per prompt, the distribution PPO optimises): "
            + _held_out(summary["test_gold_sampled"]) + _kl_line(metrics))


def _kl_line(metrics):
    """How low the per-iteration KL went: k1 (sampling noise included) against the exact KL."""
    if len(metrics) < 2 or not all(m.get("kl_exact") is not None for m in metrics):
        return ""  # logged before kl_exact existed
    gap = max(abs(m["kl"] - m["kl_exact"]) / max(m["kl_se"], 1e-9) for m in metrics)
    return (f" Mean KL per iteration: k1 at least {min(m['kl'] for m in metrics):+.4f} (one batch's sampling noise), "
            f"the exact per-state KL at least {min(m['kl_exact'] for m in metrics[1:]):.4f} after iteration 0 "
            f"(where the policy is SFT); k1 within {gap:.1f} standard errors of it throughout.")


def _held_out(gold):
    d = gold["difference"]
    return (f"SFT {gold['sft']['mean']:+.3f} → PPO {gold['ppo']['mean']:+.3f}, difference {d['mean']:+.3f} "
            f"(paired bootstrap 95 % CI [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]).")


def _diff(gold):
    from igpt_lib.report import format_gain
    return format_gain(gold["difference"])


def sweep_table(runs):
    """One row per PPO variant (folder name → (summary, metrics rows)): KL, proxy and gold."""
    rows = ["| run | β | γ_ptx | lr | it. × episodes | KL, last 30 it. | RM score, first → last 30 | sampled gold: first 30 → best 30 (at it.) → last 30 "
            "| held-out gold, PPO − SFT [95 % CI]: greedy | sampled, T = 1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (summary, m) in runs.items():
        c, n = summary["config"], 30
        mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
        windows = [mean(m[i:i + n], "gold") for i in range(0, len(m) - n + 1, 10)]
        best = max(range(len(windows)), key=windows.__getitem__)
        rows.append(f"| `{name}` | {c['kl_coef']} | {c['ptx_coef']} | {c['lr']:g} | {c['iterations']} × {c['batch_size']} | {mean(m[-n:], 'kl'):.2f} | "
                    f"{mean(m[:n], 'score'):+.2f} → {mean(m[-n:], 'score'):+.2f} | {mean(m[:n], 'gold'):+.3f} → "
                    f"{windows[best]:+.3f} ({best * 10}–{best * 10 + n}) → {mean(m[-n:], 'gold'):+.3f} | "
                    f"{_diff(summary['test_gold'])} | {_diff(summary['test_gold_sampled'])} |")
    return "\n".join(rows)


def replace(path, marker, text):
    src = path.read_text()
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
    assert pattern.search(src), f"{path}: marker {marker} not found"
    path.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), src))


def main():
    world = json.loads((ROOT / "runs" / "cpu" / "world.json").read_text())
    bench = json.loads((ROOT / "bench" / "results" / "world_build.json").read_text())
    table = summary_table(world)
    replace(ROOT / "README.md", "world-numbers", table)
    replace(ROOT / "docs" / "world.md", "world-numbers", table)
    replace(ROOT / "docs" / "world.md", "world-models", models_table(world, bench))
    sft = ROOT / "runs" / "cpu" / "sft"
    if (sft / "summary.json").exists():
        metrics = [json.loads(line) for line in (sft / "metrics.jsonl").read_text().splitlines()]
        replace(ROOT / "README.md", "sft-numbers",
                sft_table(world, json.loads((sft / "summary.json").read_text()), metrics))
    rm = ROOT / "runs" / "cpu" / "rm" / "metrics.json"
    if rm.exists():
        replace(ROOT / "README.md", "rm-numbers", rm_table(json.loads(rm.read_text())))
    ppo = ROOT / "runs" / "cpu" / "ppo"
    if (ppo / "summary.json").exists():
        metrics = [json.loads(line) for line in (ppo / "metrics.jsonl").read_text().splitlines()]
        replace(ROOT / "README.md", "ppo-numbers", ppo_lines(json.loads((ppo / "summary.json").read_text()), metrics, world))
    runs = {}
    for folder in sorted((ROOT / "runs" / "cpu").glob("ppo*")):
        if (folder / "summary.json").exists():
            runs[folder.name] = (json.loads((folder / "summary.json").read_text()),
                                 [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()])
    if len(runs) > 1:
        replace(ROOT / "README.md", "ppo-sweep", sweep_table(runs))
    report = ROOT / "runs" / "cpu" / "report.json"
    if report.exists():
        from igpt_lib.report import markdown
        replace(ROOT / "README.md", "results", markdown(json.loads(report.read_text())))
        shutil.copy2(report, ROOT / "docs" / "report.json")  # the committed copy README is checked against
        (ROOT / "docs" / "figures").mkdir(exist_ok=True)
        shutil.copy2(ROOT / "runs" / "cpu" / "figures" / "figure1.png", ROOT / "docs" / "figures" / "figure1.png")
    print("updated README.md and docs/world.md")


if __name__ == "__main__":
    main()
