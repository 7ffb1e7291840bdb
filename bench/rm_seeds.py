"""How much the reward model's accuracy moves between training seeds (issue #4), so that a
recipe change is judged against the spread and not against one run.

    .venv/bin/python bench/rm_seeds.py --run runs/cpu [--seeds 0 1 2] [--tag NAME]
                                       [--set epochs=3 --set lr=2.5e-4] [--likert-ties] [--sets N]
                                       [--extra-sets N] [--sft-model DIR] [--gold-labels]
                                       [--sample-seed S]

Retrains the run's reward model on its own comparisons (OUT/rm/comparisons.*.jsonl) once per
seed, exactly as `python -m igpt_lib rm` does, from the stage's start (`reward.rm_start`; the seed
draws the data order, and a new scalar head where the RM starts from SFT; seed 0 is the stage's own run), without the bias shift (accuracies do not depend on it),
and measures the stage's accuracies on the same validation sets (with the held-out fold of the
training labelers where the run has one, docs item 23). `--set` changes
RewardConfig fields; `--likert-ties` trains on a pair only when its labeler's Likert scores
differ too (a recipe tried for #4); `--sets N` keeps the first N of the run's ranked sets per
prompt and `--extra-sets N` samples N more per prompt from the run's SFT family (the stage's
own sampling and labelers, another seed; cached in OUT/rm/comparisons.extraN.jsonl): how accuracy
grows with data. `--sft-model DIR` starts the RM from that SFT folder (same tokenizer) instead of the stage's start
(`bench/rm_base.py` makes one: a bigger base, or one pretrained on more text). `--gold-labels`
re-ranks the same training sets by the gold score (no labeler noise, no personal weights): what
the recipe learns from these responses when the labels are perfect. `--sample-seed S` trains and
measures on comparisons sampled and ranked afresh, every split, as the stage does with seed S
(cached in OUT/rm/resample{S}/; the stage's own are seed 0): how much a run's accuracies move with
its comparisons, not only with the RM's seed. Results: bench/results/rm_seeds.json, one entry per tag
(mean, standard deviation, min and max over the seeds; per-seed values; per-task means).
`--docs` rewrites the table in docs/implementation_details.md from that file.
"""
import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import docs_or_main, machine, run_label, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rm_seeds.json"
METRICS = ("train_labelers", "heldout_labelers", "gold_strict")
FOLD = "fold_labelers"  # runs sampled with the labeler fold (docs item 23) measure it too


def likert_ties(row):
    """The row with responses of equal Likert score tied (their pair is not trained on); rows
    whose Likert scores contradict their ranking keep it."""
    likert, ranks = row.get("likert"), row["ranks"]
    if not likert or any(likert[i] < likert[j] for i in range(len(ranks)) for j in range(len(ranks))
                         if ranks[i] < ranks[j]):
        return row
    levels = sorted(set(likert), reverse=True)
    return {**row, "ranks": [levels.index(x) for x in likert]}


def gold_ranks(row):
    """The row ranked by the gold score instead of its labeler (equal gold: a tie, not trained on)."""
    from igpt_lib.world.gold import gold_score
    from igpt_lib.world.labelers import dense_ranks
    return {**row, "ranks": dense_ranks([gold_score(row, y) for y in row["responses"]])}


def parse_sets(pairs, cfg):
    """--set key=value pairs → RewardConfig changes, each value cast to the field's type."""
    types = {f.name: type(getattr(cfg, f.name)) for f in fields(cfg)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            sys.exit(f"bench/rm_seeds.py: --set {pair}: RewardConfig has no field {key!r}")
        out[key] = (value.lower() in ("1", "true", "yes")) if types[key] is bool else types[key](value)
    return out


def one_seed(run, comps, cfg, seed, sft_model=None, preset="cpu"):
    """Train from where the stage starts (`reward.rm_start`: SFT-`cfg.size`, or its base fine-tuned on
    public NLP questions) or from the folder `sft_model`, with `seed`, and evaluate;
    {metric: accuracy, "by_task": ..., "by_kind": ...} (gold-strict accuracy per task, per kind of pair)."""
    from igpt_lib.config import get_preset
    from igpt_lib.models import load_tokenizer
    from igpt_lib.reward import load_reward_model, rm_start, score_sets, train_reward_model, validation_accuracies
    from igpt_lib.utils import set_seed
    from igpt_lib.world.pretrain import n_params
    cfg = replace(cfg, seed=seed)
    start_from = sft_model or rm_start(replace(get_preset(preset), rm=cfg), run)
    tokenizer = load_tokenizer(start_from)
    set_seed(seed)  # as fit_reward_model: the scalar head is drawn from the seed
    model = load_reward_model(start_from)
    start = time.time()
    train_reward_model(model, tokenizer, comps["train"], cfg, progress=False)
    parts = validation_accuracies(score_sets(model, tokenizer, comps["val"], cfg), comps)  # the stage's three
    return {**{k: round(v["accuracy"], 4) for k, v in parts.items()},
            "by_task": parts["gold_strict"]["by_task"], "by_kind": parts["gold_strict"]["by_kind"],
            "pairs_by_kind": parts["gold_strict"]["pairs_by_kind"], "seconds": round(time.time() - start, 1),
            "params": n_params(model)}


def extra_sets(run, preset, n):
    """N more ranked sets per RM prompt, sampled and labeled as the stage does (seed + 1000)."""
    from igpt_lib.comparisons import sample_comparisons
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_comparison_rows, write_jsonl
    cache = run / "rm" / f"comparisons.extra{n}.jsonl"
    if not cache.exists():
        p = get_preset(preset)
        cfg = replace(p.rm, sets_per_prompt=n, seed=p.rm.seed + 1000)
        write_jsonl(cache, sample_comparisons(p, run, cfg, progress=False)["train"])
    return load_comparison_rows(cache)


def extra_prompts(run, preset, n, sets=None):
    """Ranked sets for N more RM prompts: the world's own draw of new training users
    (`world.prompts.more_rm_prompts`, what `WorldConfig.rm_scale` adds), sampled and labeled as the
    stage does, `sets` each (default: the stage's sets per prompt): more prompts where `extra_sets`
    gives more sets of the same prompts. A preset that draws its own more RM prompts (`rm_scale`) gets
    another batch of new users, none of whose prompts repeats one of the run's world."""
    import numpy as np
    import torch
    from igpt_lib.comparisons import rank_sets, sample_sets
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_comparison_rows, read_jsonl, write_jsonl
    from igpt_lib.models import load_tokenizer
    from igpt_lib.world.labelers import Panel
    from igpt_lib.world.prompts import make_prompts, more_rm_prompts
    from transformers import AutoModelForCausalLM
    p, wdata = get_preset(preset), run / "world" / "data"
    cfg = replace(p.rm, seed=p.rm.seed + 2000, sets_per_prompt=sets or p.rm.sets_per_prompt)
    cache = run / "rm" / f"comparisons.prompts{n}x{cfg.sets_per_prompt}.jsonl"
    if not cache.exists():
        if p.world.rm_scale:  # the world drew its own more RM prompts: another batch of users, none of its texts
            world = [r for f in sorted(wdata.glob("prompts.*.jsonl")) for r in read_jsonl(f)]
            rows = more_rm_prompts(p.world, make_prompts(p.world), n, taken_too=world, batch=1)
        else:
            rows = more_rm_prompts(p.world, make_prompts(p.world), n)
        sizes = cfg.sample_sizes or [s.name for s in p.world.sizes]
        policies = {s: AutoModelForCausalLM.from_pretrained(run / "sft" / s).eval() for s in sizes}
        rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        rows = [r for _ in range(cfg.sets_per_prompt) for r in rows]  # fresh samples each time
        resp, src = sample_sets(policies, load_tokenizer(run / "sft" / sizes[0]), rows, cfg, rng, progress=False)
        panel = Panel.load(wdata / "labelers.json", "train").calibrated(rows, resp, cfg.agreement, rng)
        if cfg.labeler_folds:  # as the stage's training sets: none ranked by the held-out fold (docs item 23)
            panel, _ = panel.fold(cfg.labeler_folds)
        write_jsonl(cache, rank_sets(rows, resp, src, panel, rng))
    return load_comparison_rows(cache)


def resampled(run, preset, seed):
    """OUT/rm/resample{seed}: the stage's comparisons (every split, the fold included) sampled and
    ranked again from the run's SFT family with RewardConfig seed `seed` (new samples, new noise
    draws, labeler noise re-calibrated on them), written once and then reused."""
    from igpt_lib.comparisons import SPLITS, comparison_files, sample_comparisons, write_comparisons
    from igpt_lib.config import get_preset
    folder = run / "rm" / f"resample{seed}"
    files = comparison_files(folder)
    if not all(files[s].exists() for s in SPLITS):
        p = get_preset(preset)
        folder.mkdir(parents=True, exist_ok=True)
        write_comparisons(files, sample_comparisons(p, run, replace(p.rm, seed=seed), progress=False))
    return folder


def rm_base(sft_model):
    """What `--sft-model` is: its bench/rm_base.py info.json (how it was made, its size, its SFT
    choice and score), {"how": the folder} for another folder, None for the run's SFT-`size`."""
    if sft_model is None:
        return None
    info = Path(sft_model).parent / "info.json"
    if not info.exists():
        return {"how": str(sft_model)}
    return {k: v for k, v in json.loads(info.read_text()).items() if k != "machine"}


def start_score(run, cfg, base):
    """Validation gold score of the SFT model the RM starts from (as the SFT stage chose it), or None
    (None too where it starts from a base model fine-tuned on public NLP questions: no SFT model)."""
    if base is not None:
        return base.get("sft", {}).get("score")
    if cfg.public_nlp:
        return None
    path = run / "sft" / "summary.json"
    return json.loads(path.read_text())["models"].get(cfg.size, {}).get("score") if path.exists() else None


def summary(per_seed):
    """mean / sd / min / max of each metric over seeds, and per-task means of gold-strict accuracy."""
    out = {}
    for m in METRICS + ((FOLD,) if all(FOLD in r for r in per_seed.values()) else ()):
        values = [r[m] for r in per_seed.values()]
        out[m] = {"mean": round(statistics.mean(values), 4),
                  "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                  "min": min(values), "max": max(values)}
    tasks = sorted({t for r in per_seed.values() for t in r["by_task"]})
    out["gold_strict_by_task"] = {t: round(statistics.mean(r["by_task"][t] for r in per_seed.values()
                                                           if t in r["by_task"]), 4) for t in tasks}
    return out


def config_json(cfg):
    """The RewardConfig an entry trained with, as JSON values (tuples as lists), without the seed."""
    return json.loads(json.dumps({k: v for k, v in asdict(cfg).items() if k != "seed"}))


def config_changes(entry):
    """The entry's RewardConfig fields that differ from its preset's *current* defaults, so a
    table row stays true when a default moves (entries made before the config was recorded
    fall back to their command line's --set). Not `sets_per_prompt`: that is how its run's
    comparisons were made, the "ranked training sets" column, not a recipe change."""
    if "config" not in entry:
        return entry["changes"]
    from igpt_lib.config import get_preset
    now = config_json(get_preset(entry["preset"]).rm)
    config = {**BEFORE_FIELDS, **entry["config"]}  # entries from before a field existed: its value then
    return {k: v for k, v in config.items() if now.get(k) != v and k != "sets_per_prompt"}


BEFORE_FIELDS = {"public_nlp": 0, "mixed_precision": False}  # RewardConfig fields added after entries were made, as those entries ran


def describe(changes):
    """A recipe's differences as words: the RM's start first (`public_nlp`; `epochs = 0`: the start
    scored as it is), then the other fields."""
    words = []
    if "public_nlp" in changes:
        n = changes["public_nlp"]
        words.append("RM from SFT" if not n else f"RM from base + {n:,} public NLP questions")
    if changes.get("epochs") == 0:
        words.append("epochs = 0: the start alone, its head untrained on the comparisons")
    return words + [f"{k} = {v}" for k, v in changes.items() if k != "public_nlp" and (k, v) != ("epochs", 0)]


def table(result):
    """docs/implementation_details.md: each tag's accuracies over its seeds."""
    lines = ["| comparisons | recipe (`python bench/rm_seeds.py`) | ranked training sets | its SFT start's validation score | "
             "seeds | training labelers | held-out fold | held-out group | gold-strict: mean ± sd (min–max) |",
             "|---|---|---:|---|---|---|---|---|---|"]
    for tag, e in result["tags"].items():
        s = e["summary"]
        changes = {k: v for k, v in config_changes(e).items() if not (e.get("rm_base") and k == "public_nlp")}
        what = ", ".join(describe(changes) + (["Likert ties"] if e["likert_ties"] else [])
                         + (["trained on the gold order (perfect labels)"] if e.get("gold_labels") else [])
                         + ([f"{e['sets_per_prompt']} set(s) per prompt"] if e.get("sets_per_prompt") else [])
                         + ([f"{e['extra_sets']} more sets per prompt"] if e.get("extra_sets") else [])
                         + ([f"{e['extra_prompts']:,} more prompts (new users), "
                             f"{e.get('extra_prompt_sets') or e['config']['sets_per_prompt']} set(s) each"]
                            if e.get("extra_prompts") else [])
                         + ([f"RM from SFT of: {e['rm_base']['how']}"] if e.get("rm_base") else [])
                         + ([f"the run's comparisons sampled afresh (seed {e['sample_seed']})"]
                            if e.get("sample_seed") is not None else [])) \
            or "the stage's own"
        score = f"{e['start_sft_score']:+.3f}" if e.get("start_sft_score") is not None else "—"
        fold = f"{s[FOLD]['mean']:.3f}" if FOLD in s else "—"
        lines.append(f"| {e.get('comparisons', 'earlier run')} | `{tag}`: {what} | {e['train_sets']:,} | {score} | "
                     f"{', '.join(e['seeds'])} | "
                     f"{s['train_labelers']['mean']:.3f} | {fold} | "
                     f"{s['heldout_labelers']['mean']:.3f} | {s['gold_strict']['mean']:.3f} "
                     + (f"± {s['gold_strict']['sd']:.3f} ({s['gold_strict']['min']:.3f}–{s['gold_strict']['max']:.3f}) |"
                        if len(e["seeds"]) > 1 else "(one seed) |"))
    k, worst = heldout_slope(result)
    lines += ["", *data_lines(result), *draw_lines(result), *kind_lines(result), f"Over these rows, held-out-labeler accuracy ≈ 0.5 + {k:.2f} × (gold-strict − 0.5) "
                  f"(least squares through chance; largest miss {worst:.3f}), so held-out 0.65 needs "
                  f"gold-strict ≈ {0.5 + 0.15 / k:.2f}."]
    return "\n".join(lines)


def data_lines(result):
    """One line per set of comparisons: gold-strict accuracy (and the held-out fold's, where measured)
    against the number of ranked training sets, over the rows that change only the data (fewer sets,
    more sets, more prompts)."""
    groups = {}
    for tag, e in result["tags"].items():
        if e["likert_ties"] or e.get("gold_labels") or e.get("rm_base"):
            continue
        changes = config_changes(e)  # rows of one recipe (the stage's, or an older stage's) on one run
        groups.setdefault((e.get("comparisons", "earlier run"), json.dumps(changes)), []).append((e["train_sets"], tag, e))
    lines = []
    for (digest, changes), rows in groups.items():
        if len(rows) < 2:
            continue
        by_size = {}
        for n, tag, e in sorted(rows, key=lambda r: r[0]):
            seeds = "" if len(e["seeds"]) > 1 else ", one seed"
            secs = statistics.mean(r["seconds"] for r in e["seeds"].values())
            fold = f", held-out fold {e['summary'][FOLD]['mean']:.3f}" if FOLD in e["summary"] else ""
            by_size.setdefault(n, []).append(f"{e['summary']['gold_strict']['mean']:.3f} (`{tag}`{seeds}{fold}, "
                                             f"{secs:.0f} s per seed)")
        recipe = ", ".join(describe(json.loads(changes))) or "the stage's recipe"
        lines.append(f"Gold-strict accuracy by ranked training sets, {digest}, {recipe} otherwise: "
                     + "; ".join(f"{n:,} sets: " + ", ".join(v) for n, v in by_size.items()) + ".")
    return [line + "\n" for line in lines]


def draw_lines(result):
    """How far the stage's own recipe moves from one set of comparisons to another (other runs,
    `--sample-seed`): seed 0 on each digest, where two or more were measured with the fold."""
    own = {}
    for tag, e in result["tags"].items():
        plain = not (e["likert_ties"] or e.get("gold_labels") or e.get("rm_base") or e.get("extra_sets")
                     or e.get("extra_prompts") or e.get("sets_per_prompt") or config_changes(e))
        if plain and "0" in e["seeds"] and FOLD in e["seeds"]["0"]:
            own.setdefault(e["comparisons"], (tag, e["seeds"]["0"]))
    if len(own) < 2:
        return []
    parts = []
    for m, name in ((FOLD, "held-out fold"), ("train_labelers", "training labelers"), ("gold_strict", "gold-strict")):
        v = [r[m] for _, r in own.values()]
        parts.append(f"{name} {statistics.mean(v):.3f} ± {statistics.stdev(v):.3f} ({min(v):.3f}–{max(v):.3f})")
    return [f"The stage's own recipe on {len(own)} sets of comparisons (seed 0 each: "
            + ", ".join(f"`{tag}`" for tag, _ in own.values()) + "): " + "; ".join(parts)
            + ". One run's accuracies move more with its comparisons than with the RM's seed.\n"]


def kind_lines(result):
    """Gold-strict accuracy by kind of pair (`reward.pair_kind`), mean over seeds, for the rows
    measured since it is recorded: what more data or another recipe teaches the RM."""
    from igpt_lib.reward import PAIR_KINDS
    names = {k: k.replace("_", " ") for k in PAIR_KINDS}
    by_digest = {}
    for tag, e in result["tags"].items():
        seeds = [r for r in e["seeds"].values() if "by_kind" in r]
        if seeds:
            part = f"`{tag}` " + ", ".join(f"{names[k]} {statistics.mean(r['by_kind'][k] for r in seeds):.3f}"
                                           for k in names if k in seeds[0]["by_kind"])
            by_digest.setdefault(e["comparisons"], (seeds[0]["pairs_by_kind"], []))[1].append(
                part + f" ({len(seeds)} seed(s))")
    return [f"Gold-strict accuracy by kind of pair on {digest}'s validation sets (`reward.pair_kind`; "
            + ", ".join(f"{names[k]}: {pairs[k]:,} pairs" for k in names if k in pairs)
            + "; junk: either one is toxic or invents a fact; right vs wrong: the better one is fully right; "
            "partial credit: both are wrong, one less so): " + "; ".join(parts) + ".\n"
            for digest, (pairs, parts) in by_digest.items()]


def heldout_slope(result):
    """k of held-out ≈ 0.5 + k·(gold-strict − 0.5) fitted over every tag's means (a line through
    chance: an RM that orders nothing is at 0.5 on both), and the largest residual."""
    pts = [(e["summary"]["gold_strict"]["mean"] - 0.5, e["summary"]["heldout_labelers"]["mean"] - 0.5)
           for e in result["tags"].values()]
    k = sum(g * h for g, h in pts) / sum(g * g for g, _ in pts)
    return k, max(abs(h - k * g) for g, h in pts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--tag", default="default")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--likert-ties", action="store_true")
    ap.add_argument("--sets", type=int, default=None, help="the first N ranked sets per prompt only")
    ap.add_argument("--extra-sets", type=int, default=0, help="N more ranked sets per prompt, freshly sampled")
    ap.add_argument("--extra-prompts", type=int, default=0, help="N new prompts, ranked sets as the stage's")
    ap.add_argument("--extra-prompt-sets", type=int, default=None, help="ranked sets per extra prompt")
    ap.add_argument("--sft-model", type=Path, default=None, help="start the RM from this SFT folder")
    ap.add_argument("--gold-labels", action="store_true", help="train on the gold order of the same sets")
    ap.add_argument("--sample-seed", type=int, default=None,
                    help="train and measure on comparisons sampled afresh with this seed")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from igpt_lib.comparisons import SPLITS, comparison_files, comparisons_digest
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_comparison_rows
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    files = comparison_files(args.run / "rm")
    if missing := [str(files[s]) for s in SPLITS if not files[s].exists()]:
        sys.exit(f"bench/rm_seeds.py: {missing[0]} not found: run `python -m igpt_lib rm --preset {args.preset} "
                 f"--out {args.run}` first")
    rm_dir = args.run / "rm" if args.sample_seed is None else resampled(args.run, args.preset, args.sample_seed)
    files = comparison_files(rm_dir)
    comps = {s: load_comparison_rows(f) for s, f in files.items() if f.exists()}  # "fold" where the run has one
    if args.likert_ties:
        comps["train"] = [likert_ties(r) for r in comps["train"]]
    if args.sets:  # comparisons.train holds the run's sets_per_prompt rounds, one after the other
        rounds = json.loads((args.run / "rm" / "metrics.json").read_text())["config"]["sets_per_prompt"]
        if not 1 <= args.sets <= rounds:
            sys.exit(f"bench/rm_seeds.py: --sets {args.sets}: the run has {rounds} sets per prompt")
        comps["train"] = comps["train"][:len(comps["train"]) // rounds * args.sets]
    if args.extra_sets:
        comps["train"] += extra_sets(args.run, args.preset, args.extra_sets)
    if args.extra_prompts:
        comps["train"] += extra_prompts(args.run, args.preset, args.extra_prompts, args.extra_prompt_sets)
    if args.gold_labels:
        comps["train"] = [gold_ranks(r) for r in comps["train"]]
    base = get_preset(args.preset).rm
    changes = parse_sets(args.set, base)
    cfg = replace(base, **changes)
    per_seed, base = {}, rm_base(args.sft_model)
    for seed in args.seeds:
        per_seed[str(seed)] = one_seed(args.run, comps, cfg, seed, args.sft_model, args.preset)
        print(f"{args.tag} seed {seed}: " + ", ".join(f"{m} {per_seed[str(seed)][m]:.3f}"
                                                      for m in METRICS + (FOLD,) if m in per_seed[str(seed)])
              + f" ({per_seed[str(seed)]['seconds']:.0f} s)")
    result = json.loads(args.results.read_text()) if args.results.exists() else {}
    result["machine"] = machine()
    result.setdefault("tags", {})[args.tag] = {
        "run": run_label(args.run, REPO),
        "preset": args.preset, "changes": changes, "config": config_json(cfg), "likert_ties": args.likert_ties,
        "gold_labels": args.gold_labels,
        "sets_per_prompt": args.sets,
        "extra_sets": args.extra_sets, "extra_prompts": args.extra_prompts,
        "extra_prompt_sets": args.extra_prompt_sets, "train_sets": len(comps["train"]), "seeds": per_seed,
        "comparisons": comparisons_digest(rm_dir), "sample_seed": args.sample_seed, "rm_base": base,
        "start_sft_score": start_score(args.run, cfg, base),
        "summary": summary(per_seed)}
    for m in [m for m in METRICS + (FOLD,) if m in result["tags"][args.tag]["summary"]]:
        s = result["tags"][args.tag]["summary"][m]
        print(f"{args.tag}: {m} {s['mean']:.3f} ± {s['sd']:.3f} (min {s['min']:.3f}, max {s['max']:.3f})")
    write_result(args.results, result)
    return result


if __name__ == "__main__":
    docs_or_main(main, table, RESULTS, "rm-seeds")
