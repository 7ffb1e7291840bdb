"""python -m igpt_lib world|sft|rm|ppo|eval|reproduce --preset P --out DIR

Each stage reads what the previous one wrote under --out, so a run can be resumed stage by
stage and a notebook can start at any lesson after one `reproduce`.
"""
import argparse
import json
import sys
import time
from pathlib import Path

from .config import PRESETS, get_preset
from .utils import quiet_transformers

RUNNERS = {"sft": ("sft", "run_sft"), "rm": ("reward", "run_rm"), "ppo": ("ppo_trainer", "run_ppo"),
           "eval": ("report", "run_eval")}


def _common(p):
    p.add_argument("--preset", choices=list(PRESETS), default="cpu",
                   help="scale of the run (default: cpu, the offline default)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<preset>)")


def _hub(p):
    g = p.add_argument_group("hub presets (colab-t4, a100): each a hub name or a local path; "
                             "lists are comma-separated")
    for flag, what in (("--policies", "policy models, smallest first"), ("--baseline", "the large base model"),
                       ("--reward-model", "RM (and value) base"), ("--sft-data", "demonstrations (Dolly schema)"),
                       ("--rm-data", "comparisons (OpenAssistant, HH-RLHF, ours)"),
                       ("--ppo-prompts", "datasets whose prompts PPO samples"), ("--gold-judge", "the judge RM")):
        g.add_argument(flag, help=f"{what} (default: the preset's)")


def _pretrain(p):
    p.add_argument("--pretrain", action="store_true", help="pretrain the base models here even where the kit "
                   "ships them (data/base_models; ~400 s on 2 cores for the cpu preset)")


def _resume(p, where):
    p.add_argument("--resume", action="store_true",
                   help=f"continue an interrupted run from the newest checkpoint in {where}")


def parser():
    ap = argparse.ArgumentParser(prog="python -m igpt_lib", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    world = sub.add_parser("world", help="the offline world: datasets, labelers, corpus, base models")
    world.add_argument("action", choices=["build", "data"],
                       help="build: everything (reuses shipped or cached base models); "
                            "data: only the datasets and labelers, into --out itself")
    _common(world)
    _pretrain(world)
    sft = sub.add_parser("sft", help="step 1: supervised fine-tuning on demonstrations (trl.SFTTrainer)")
    _common(sft)
    _hub(sft)
    _resume(sft, "OUT/sft/checkpoints and progress.json")
    sft.add_argument("--model", help="a model folder or hub name (default: every world base model)")
    sft.add_argument("--dataset", help="demonstrations: our JSONL, a Dolly-schema JSONL, or a hub name "
                                       "(default: the world's)")
    rm = sub.add_parser("rm", help="step 2: comparisons of SFT samples and one K-way reward model")
    _common(rm)
    _hub(rm)
    _resume(rm, "OUT/rm/checkpoints (and an interrupted SFT stage)")
    ppo = sub.add_parser("ppo", help="step 3: PPO with a per-token KL penalty, and PPO-ptx")
    _common(ppo)
    _hub(ppo)
    ppo.add_argument("--kl-coef", type=float, help="β, the per-token KL coefficient")
    ppo.add_argument("--ptx-coef", type=float, help="γ_ptx, the pretraining-loss coefficient (0 = PPO)")
    ppo.add_argument("--iterations", type=int, help="PPO iterations (default: the preset's)")
    ppo.add_argument("--lr", type=float, help="policy learning rate (default: the preset's)")
    ppo.add_argument("--policy", help="SFT size to optimise (default: the preset's, the smallest)")
    ppo.add_argument("--seed", type=int, help="PPO's seed (sampling, minibatch order; default: the preset's)")
    ppo.add_argument("--name", default="ppo", help="output folder under --out (default: ppo); "
                     "e.g. ppo_beta0 for a variant kept beside the main run")
    ppo.add_argument("--beta0", action="store_true", help="the preset's β = 0 run that the over-optimisation "
                     "claim reads (no KL penalty, a higher LR, half the batch and iterations; --name default ppo_beta0)")
    _resume(ppo, "OUT/<name>/checkpoints")
    ev = sub.add_parser("eval", help="step 4: every model of --out judged on held-out prompts -> "
                                     "report.json (headline, Figure 1, claims) and figures/figure1.png")
    _common(ev)
    _hub(ev)
    rep = sub.add_parser("reproduce", help="world -> sft -> rm -> ppo -> ppo_ptx -> ppo_beta0 -> eval, "
                         "skipping done stages")
    _common(rep)
    _hub(rep)
    rep.add_argument("--rounds", type=int, default=0, help="iterated rounds after the first: new comparisons "
                     "from the current PPO policy, RM retrained on all, PPO continued (default 0)")
    rep.add_argument("--full", action="store_true", help="also PPO and PPO-ptx of the next two sizes and two more "
                     "PPO-ptx seeds of the smallest (Figure 1 at three sizes, seed variance)")
    rep.add_argument("--jobs", type=int, help="PPO runs at a time, each in its own process (default: one per "
                     "core on a CPU, threads shared out among them; 1 on a GPU)")
    _pretrain(rep)
    return ap


def _out(args):
    return args.out or f"runs/{args.preset}"


def reproduce(preset, out, full=False, rounds=0, pretrain=False, jobs=None):
    """Every stage in order, skipping those whose outputs are already in `out`; `full` adds
    the Figure 1 runs at more sizes and seeds (then evaluation runs again); `pretrain` trains
    the base models here instead of taking the shipped ones. The β = 0 run (`ppo_beta0`) is what
    the over-optimisation claim reads. The PPO runs, which read only SFT and the RM, run `jobs`
    at a time in their own processes (default: one per core on a CPU, one at a time on a GPU)."""
    from .parallel import default_jobs, run_ppo_stages, timed
    from .report import run_eval
    from .reward import run_rm
    from .rounds import round_dir, run_round
    from .sft import run_sft
    from .world.build import build_world
    from .data import write_json
    start, out = time.time(), Path(out)
    before = [("world", out / "world.json", lambda: build_world(preset, out, force_pretrain=pretrain)),
              ("sft", out / "sft" / "summary.json", lambda: run_sft(preset, out, resume=True)),
              ("rm", out / "rm" / "metrics.json", lambda: run_rm(preset, out, resume=True))]
    ppo_runs = [("ppo", {}),
                ("ppo_ptx", {"ptx_coef": preset.ppo_ptx.ptx_coef, "name": "ppo_ptx"}),
                ("ppo_beta0", {"config": preset.ppo_beta0, "name": "ppo_beta0"}),
                *(_figure1_runs(preset) if full else [])]
    after = [*[(f"round{r}", round_dir(out, r) / "ppo" / "summary.json", lambda r=r: run_round(preset, out, r))
               for r in range(1, rounds + 1)],
             ("eval", out / "report.json", lambda: run_eval(preset, out))]
    timings, order = out / "stages.json", [name for name, *_ in (*before, *ppo_runs, *after)]
    done = json.loads(timings.read_text()) if timings.exists() else {}

    def record(name, timing):   # stages.json in stage order, whatever order parallel runs end in
        done[name] = timing
        write_json(timings, dict(sorted(done.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order
                                        else len(order))))
        print(f"reproduce: {name} done in {timing['seconds']:.0f} s", flush=True)

    def in_turn(stages):
        for name, done_marker, run in stages:
            if done_marker.exists() and not (name == "eval" and _stale(done_marker, out)):
                print(f"reproduce: {name} already in {out} ({done_marker.name}); skipped")
            else:
                record(name, timed(run))

    in_turn(before)
    run_ppo_stages(preset, out, ppo_runs, jobs or default_jobs(len(ppo_runs)), record)
    in_turn(after)
    print(f"reproduce: {time.time() - start:.0f} s; report in {out / 'report.json'}; "
          f"seconds and peak memory per stage in {timings}")
    return 0


def _figure1_runs(preset):
    """(name, run_ppo keywords) of PPO and PPO-ptx at the 2nd and 3rd sizes, PPO-ptx seeds 1 and 2 of the smallest."""
    ptx, runs = preset.ppo_ptx.ptx_coef, []
    for size in [s.name for s in preset.world.sizes][1:3]:
        runs.append((f"ppo_{size}", {"policy": size, "name": f"ppo_{size}"}))
        runs.append((f"ppo_ptx_{size}", {"policy": size, "ptx_coef": ptx, "name": f"ppo_ptx_{size}"}))
    for seed in (1, 2):
        runs.append((f"ppo_ptx_seed{seed}", {"ptx_coef": ptx, "seed": preset.ppo.seed + seed,
                                             "name": f"ppo_ptx_seed{seed}"}))
    return runs


def _stale(report, out):
    """True when a PPO run (or round) finished after report.json was written."""
    runs = [*out.glob("ppo*/summary.json"), *out.glob("rounds/round*/ppo/summary.json")]
    return any(p.stat().st_mtime > report.stat().st_mtime for p in runs)


# Offline-world options the hub stages do not take (an error, never silently ignored)
NOT_ON_HUB = (("--model", "model"), ("--dataset", "dataset"), ("--ptx-coef", "ptx_coef"), ("--policy", "policy"),
              ("--rounds", "rounds"), ("--full", "full"), ("--jobs", "jobs"), ("--pretrain", "pretrain"),
              ("--beta0", "beta0"))


def _run_hub(ap, args, preset):
    """The hub presets: the same stages on real models and data (hub.py)."""
    from dataclasses import replace
    from . import hub
    given = [flag for flag, key in NOT_ON_HUB if getattr(args, key, None) not in (None, False, 0)]
    if getattr(args, "name", "ppo") != "ppo":
        given.append("--name")
    if given:
        ap.error(f"{', '.join(given)} not available with the hub preset {args.preset!r} (use --policies, "
                 "--sft-data, ... to change its models and data)")
    names = {k: vars(args).pop(k, None) for k in hub.NAMES}
    preset = hub.with_names(preset, **names)
    ppo = {k: v for k, v in (("kl_coef", getattr(args, "kl_coef", None)), ("iterations", getattr(args, "iterations", None)),
                             ("lr", getattr(args, "lr", None)), ("seed", getattr(args, "seed", None))) if v is not None}
    preset = replace(preset, ppo=replace(preset.ppo, **ppo))
    out = _out(args)
    if args.command == "reproduce":
        hub.reproduce(preset, out)
    elif args.command == "eval":
        hub.run_eval(preset, out)
    else:
        getattr(hub, f"run_{args.command}")(preset, out, resume=args.resume)
    return 0


def main(argv=None):
    from .hub import NAMES
    ap = parser()
    args = ap.parse_args(argv)
    quiet_transformers()
    preset = get_preset(args.preset)
    if preset.hub is not None and args.command != "world":
        return _run_hub(ap, args, preset)
    given = [f"--{k.replace('_', '-')}" for k in NAMES if getattr(args, k, None) is not None]
    if given:
        ap.error(f"{', '.join(given)} only apply to the hub presets (colab-t4, a100), not {args.preset!r}")
    if args.command == "world":
        from .world.build import build_world, write_data
        if args.action == "data":
            _, agreement = write_data(preset.world, _out(args))
            print(f"world data [{preset.name}] -> {_out(args)}; "
                  f"labeler agreement {agreement['train']:.3f}")
        else:
            build_world(preset, _out(args), force_pretrain=args.pretrain)
        return 0
    if args.command in RUNNERS:
        from importlib import import_module
        module, name = RUNNERS[args.command]
        options = {k: v for k, v in vars(args).items() if k not in ("command", "preset", "out", *NAMES)}
        if options.pop("beta0", False):
            options.update(config=preset.ppo_beta0, name="ppo_beta0" if args.name == "ppo" else args.name)
        getattr(import_module(f".{module}", __package__), name)(preset, _out(args), **options)
        return 0
    if args.jobs is not None and args.jobs < 1:
        ap.error(f"--jobs must be at least 1, not {args.jobs}")
    return reproduce(preset, _out(args), full=args.full, rounds=args.rounds, pretrain=args.pretrain, jobs=args.jobs)


if __name__ == "__main__":
    sys.exit(main())
