"""Try another RM data budget as a preset would spend it (issue #4), before a preset moves to it.

    .venv/bin/python bench/rm_preset_trial.py --rm-scale 3 [--sets-per-prompt 1] [--run runs/cpu] [--out runs/cand]
                                              [--rm-only] [--set FIELD=VALUE ...]

Copies a finished run's world and SFT models into `--out`, rewrites its world data with
`WorldConfig.rm_scale` set (more RM prompts from new training users; the SFT data unchanged, so the
SFT models stay valid; the test prompts beyond the split's, `WorldConfig.test_prompts`, avoid the
new RM prompts' texts as the preset's own world would, so some change: 400 of cpu's 2,000 at
--rm-scale 2), and runs `reproduce` there without `--full`: the RM stage as the preset would run it
(its time, its three accuracies), then PPO, PPO-ptx, β = 0 and evaluation against that RM (held-out
gold, greedy and sampled); `--rm-only` stops after the RM stage (its time and accuracies: what the
preset's budget and issue #4 read); `--set` changes a RewardConfig field as bench/rm_seeds.py's does
(e.g. the RM's start, `public_nlp`). Writes bench/results/rm_preset_trial.json, one entry per
(rm_scale, sets per prompt, changes): stage seconds, RM accuracies, PPO gains; `--docs` rewrites its
table in docs/implementation_details.md (item 27) from that file.
"""
import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import docs_or_main, machine, run_label, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rm_preset_trial.json"


def trial_preset(preset, rm_scale, sets_per_prompt, changes=None):
    """`preset` with the RM's prompts at the paper's 33k / rm_scale, each ranked `sets_per_prompt` times,
    and the RewardConfig `changes`."""
    return replace(preset, world=replace(preset.world, rm_scale=rm_scale),
                   rm=replace(preset.rm, sets_per_prompt=sets_per_prompt, **(changes or {})))


def prepare(run, out, preset):
    """`out` holds `run`'s world and SFT models, and world data with the trial preset's RM prompts."""
    from igpt_lib.world.build import write_data
    if out.exists():
        sys.exit(f"bench/rm_preset_trial.py: {out} exists: move it away first")
    out.mkdir(parents=True)
    for part in ("world", "sft", "world.json"):
        (shutil.copytree if (run / part).is_dir() else shutil.copy2)(run / part, out / part)
    write_data(preset.world, out / "world" / "data")


def summary(out):
    """What the trial measured: stage seconds, the RM's accuracies, each PPO run's held-out gains."""
    rm = json.loads((out / "rm" / "metrics.json").read_text())
    result = {"stages": json.loads((out / "stages.json").read_text()), "train_sets": rm["train_prompts"],
              "rm": {k: round(rm[k]["accuracy"], 4) for k in ("train_labelers", "fold_labelers", "heldout_labelers",
                                                                 "gold_strict") if k in rm},
              "ppo": {}}
    for name in [n for n in ("ppo", "ppo_ptx", "ppo_beta0") if (out / n / "summary.json").exists()]:
        s = json.loads((out / name / "summary.json").read_text())
        result["ppo"][name] = {decoding: s[key]["difference"] for decoding, key in
                               (("greedy", "test_gold"), ("sampled", "test_gold_sampled"))}
    return result


def table(result):
    """docs/implementation_details.md: one row per trial."""
    from igpt_lib.report import format_gain

    def gain(t, run, decoding):  # — for a trial run with --rm-only
        return format_gain(t["ppo"].get(run, {}).get(decoding))

    def fold(t):  # — for a trial from before the labeler fold (item 23)
        return f"{t['rm']['fold_labelers']:.3f}" if "fold_labelers" in t["rm"] else "—"
    lines = ["| trial (`python bench/rm_preset_trial.py`) | ranked training sets | RM stage | training labelers | "
             "held-out fold | held-out group | gold-strict | held-out gold, PPO − SFT: greedy | sampled, T = 1 | "
             "PPO-ptx − SFT: greedy |", "|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for name, t in result["trials"].items():
        lines.append(f"| {name} (from {t['run']}) | {t['train_sets']:,} | {t['stages']['rm']['seconds']:.0f} s | "
                     f"{t['rm']['train_labelers']:.3f} | {fold(t)} | {t['rm']['heldout_labelers']:.3f} | "
                     f"{t['rm']['gold_strict']:.3f} | "
                     f"{gain(t, 'ppo', 'greedy')} | {gain(t, 'ppo', 'sampled')} | {gain(t, 'ppo_ptx', 'greedy')} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "rm_trial")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--rm-scale", type=int, required=True)
    ap.add_argument("--sets-per-prompt", type=int, default=1)
    ap.add_argument("--rm-only", action="store_true", help="stop after the RM stage (no PPO, no evaluation)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a RewardConfig change")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from bench.rm_seeds import describe, parse_sets
    from igpt_lib.cli import reproduce
    from igpt_lib.config import get_preset
    changes = parse_sets(args.set, get_preset(args.preset).rm)
    preset = trial_preset(get_preset(args.preset), args.rm_scale, args.sets_per_prompt, changes)
    prepare(args.run, args.out, preset)
    if args.rm_only:  # the stage as reproduce times it, and nothing after it
        from igpt_lib.data import write_json
        from igpt_lib.parallel import timed
        from igpt_lib.reward import run_rm
        write_json(args.out / "stages.json", {"rm": timed(lambda: run_rm(preset, args.out, resume=True))})
    else:
        reproduce(preset, args.out)
    result = json.loads(args.results.read_text()) if args.results.exists() else {}
    result["machine"] = machine()
    found = summary(args.out)
    name = (f"rm_scale={args.rm_scale}, sets={args.sets_per_prompt}"
            + (", labeler fold" if "fold_labelers" in found["rm"] else "")
            + (f", {', '.join(describe(changes))}" if changes else ""))
    result.setdefault("trials", {})[name] = {
        "run": run_label(args.run, REPO), "out": run_label(args.out, REPO), "preset": args.preset,
        "changes": changes, **found}
    write_result(args.results, result)
    return result


if __name__ == "__main__":
    docs_or_main(main, table, RESULTS, "rm-preset-trial")
