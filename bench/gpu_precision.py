"""Mixed precision for the offline world's small models on a GPU (a device check, run there by
hand): the cpu preset's RM (`--stage rm`: its comparisons, its start, seeds side by side) or
SFT-`size` (`--stage sft`: the world's demonstrations, a few epochs) trained with
`mixed_precision` on (bf16 autocast, the kit's old default on a GPU) and off (float32), one process
per run, all at once; seconds and accuracies to OUT/gpu_precision_<stage>.json.

    python3 bench/gpu_precision.py --stage rm --run runs/gpu_trial --out $OUT
    python3 bench/gpu_precision.py --stage sft --epochs 4 --out $OUT

`--run` holds a cpu run's comparisons.{train,val,heldout,fold}.jsonl (rm; copied from OUT/rm) or
demonstrations.{train,val}.jsonl and prompts.val.jsonl (sft; default: data/, the cpu world's);
the models come from data/base_models.
bench/results/offline_gpu_h200/gpu_precision_*.json are such runs.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
START = REPO / "data" / "base_models" / "l_nlp-71a26ae9447a380e"   # the cpu preset's RM start (shipped)


def base_model(size):
    """The shipped base model of a world size (data/base_models/<size>-<key>)."""
    return next(p for p in (REPO / "data" / "base_models").iterdir() if p.name.split("-")[0] == size)


def rm_run(run, mixed, seed):
    """The cpu preset's RM from its shipped start on the comparisons in `run`: seconds of training, accuracies."""
    import torch
    from igpt_lib import reward as R
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_comparison_rows
    from igpt_lib.models import load_tokenizer
    from igpt_lib.utils import set_seed
    comps = {s: load_comparison_rows(Path(run) / f"comparisons.{s}.jsonl") for s in ("train", "val", "heldout", "fold")}
    cfg = replace(get_preset("cpu").rm, seed=seed, mixed_precision=mixed)
    tok = load_tokenizer(START)
    set_seed(seed)
    model = R.load_reward_model(START).to("cuda" if torch.cuda.is_available() else "cpu")
    start = time.time()
    R.train_reward_model(model, tok, comps["train"], cfg, progress=False)
    seconds = time.time() - start
    parts = R.validation_accuracies(R.score_sets(model, tok, comps["val"], cfg), comps)
    return {"seconds": round(seconds, 1), **{k: round(v["accuracy"], 4) for k, v in parts.items()},
            "by_kind": parts["gold_strict"]["by_kind"]}


def sft_run(run, mixed, seed, size, epochs):
    """SFT of the shipped base-`size` on the demonstrations in `run`: seconds, chosen epoch, each epoch's score."""
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_demonstrations, load_prompts
    from igpt_lib.models import load_tokenizer
    from igpt_lib.sft import train_sft
    cfg = replace(get_preset("cpu").sft, seed=seed, epochs=epochs, mixed_precision=mixed)
    train, val = (load_demonstrations(Path(run) / f"demonstrations.{s}.jsonl") for s in ("train", "val"))
    evals = load_prompts(Path(run) / "prompts.val.jsonl")[: cfg.eval_prompts]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        choice = train_sft(base_model(size), load_tokenizer(base_model(size)), train, val, evals, cfg, Path(tmp) / size,
                           size, Path(tmp) / "metrics.jsonl", progress=False)
        seconds = time.time() - start
        scores = [json.loads(line)["score"] for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    return {"seconds": round(seconds, 1), "chosen_epoch": choice["epoch"], "validation_scores": scores}


def one(job):
    """One run in a worker process (two torch threads), printed as it ends."""
    stage, run, mixed, seed, size, epochs = job
    import torch
    torch.set_num_threads(2)
    out = rm_run(run, mixed, seed) if stage == "rm" else sft_run(run, mixed, seed, size, epochs)
    out = {"stage": stage, "mixed_precision": mixed, "seed": seed, **out}
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=("rm", "sft"), required=True)
    ap.add_argument("--run", type=Path, default=None, help="rm: required; sft: default data/")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", default="l", help="sft: the base model's size")
    ap.add_argument("--epochs", type=int, default=4, help="sft: epochs")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", REPO / "bench" / "results")))
    args = ap.parse_args()
    if args.run is None:
        if args.stage == "rm":
            ap.error("--stage rm needs --run DIR: a folder with a cpu run's comparisons.*.jsonl")
        args.run = REPO / "data"
    import torch
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    jobs = [(args.stage, str(args.run), mixed, seed, args.size, args.epochs) for mixed in (True, False) for seed in args.seeds]
    start = time.time()
    with get_context("spawn").Pool(len(jobs)) as pool:
        results = pool.map(one, jobs)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"gpu_precision_{args.stage}.json").write_text(json.dumps(
        {"device": gpu or "cpu", "torch": torch.__version__, "jobs_at_once": len(jobs),
         "wall_s": round(time.time() - start, 1), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
