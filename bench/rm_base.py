"""A reward-model base other than the world's largest SFT model (issue #4): a bigger member of the
family, or one pretrained on more text of the same corpus, fine-tuned with the stage's SFT recipe,
so that `bench/rm_seeds.py --sft-model OUT/sft` can train RMs from it on the run's comparisons.

    .venv/bin/python bench/rm_base.py --out runs/cpu/rm_bases/xl --shape 256,8,8 --tokens 1500000
    .venv/bin/python bench/rm_base.py --out runs/cpu/rm_bases/l_more --from l --tokens 3000000

`--shape HIDDEN,LAYERS,HEADS` pretrains a new GPTNeoX from scratch on the run's corpus, exactly as the
world pretrains its family (`world/pretrain.py`; seed 104, the next after the four sizes).
`--from SIZE` continues the run's base model SIZE on `--tokens` of *fresh* documents from the same
corpus generator (another seed): the same internet, more of it. Either way the model is then
fine-tuned on the run's demonstrations with the preset's SFTConfig, the epoch chosen by validation
score as the SFT stage does. Writes OUT/base/, OUT/sft/ (HF folders) and OUT/info.json (timings,
final pretraining loss, the SFT choice). Costs on 2 cores: 6.5M params from scratch on 1.5M tokens
~350 s + SFT ~100 s; SFT-l continued on 3M tokens ~9 min + SFT ~60 s.
"""
import argparse
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine  # noqa: E402

CONTINUE_LR = 1e-3   # below the family's 2.5e-3 peak: the model is already trained
CORPUS_SEED = 12345  # fresh documents; the world's corpus uses seed + 2


def make_base(args, preset, tokenizer):
    """OUT/base: pretrained from scratch (--shape) or continued (--from); its info."""
    from transformers import AutoModelForCausalLM
    from igpt_lib.config import ModelSize
    from igpt_lib.world.build import _pretrain_seed, _tokenize
    from igpt_lib.world.corpus import make_corpus
    from igpt_lib.world.pretrain import n_params, next_token_steps, pretrain
    wcfg, start = preset.world, time.time()
    if args.shape:
        hidden, layers, heads = (int(x) for x in args.shape.split(","))
        size = ModelSize("rm_base", hidden, layers, heads, args.tokens, lr=2e-3)
        docs = (args.run / "world" / "corpus.txt").read_text(encoding="utf-8").splitlines()
        model, losses = pretrain(size, tokenizer, _tokenize(tokenizer, docs), wcfg.seq_len, wcfg.batch_size,
                                 seed=_pretrain_seed(wcfg, len(wcfg.sizes)), progress=False)
        how = f"from scratch, shape {args.shape}, {args.tokens:,} tokens of the run's corpus"
    else:
        model = AutoModelForCausalLM.from_pretrained(args.run / "world" / "models" / args.from_size)
        fresh = _tokenize(tokenizer, make_corpus(args.tokens, CORPUS_SEED))
        steps = max(1, args.tokens // (wcfg.batch_size * wcfg.seq_len))
        losses = next_token_steps(model, fresh, steps, CONTINUE_LR, wcfg.seq_len, wcfg.batch_size, seed=0,
                                  progress=False)
        how = f"base {args.from_size} continued on {args.tokens:,} tokens of fresh documents (corpus seed {CORPUS_SEED})"
    model.save_pretrained(args.out / "base")
    tokenizer.save_pretrained(args.out / "base")
    return {"how": how, "params": n_params(model), "pretrain_seconds": round(time.time() - start, 1),
            "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--shape", help="HIDDEN,LAYERS,HEADS of a new model pretrained from scratch")
    how.add_argument("--from", dest="from_size", help="a world size to continue pretraining")
    ap.add_argument("--tokens", type=int, required=True, help="pretraining tokens (new or continued)")
    args = ap.parse_args(argv)
    from igpt_lib.config import get_preset
    from igpt_lib.data import load_demonstrations, load_prompts, write_json
    from igpt_lib.models import load_tokenizer
    from igpt_lib.sft import train_sft
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    preset, wdata = get_preset(args.preset), args.run / "world" / "data"
    if not (wdata / "demonstrations.train.jsonl").exists():
        sys.exit(f"bench/rm_base.py: {wdata} has no demonstrations: run `python -m igpt_lib world "
                 f"--preset {args.preset} --out {args.run}` first")
    if args.shape and not re.fullmatch(r"\d+,\d+,\d+", args.shape):
        sys.exit(f"bench/rm_base.py: --shape {args.shape}: expected HIDDEN,LAYERS,HEADS, e.g. 256,8,8")
    if args.from_size and not (args.run / "world" / "models" / args.from_size).exists():
        sys.exit(f"bench/rm_base.py: --from {args.from_size}: no {args.run / 'world' / 'models' / args.from_size}")
    tokenizer = load_tokenizer(args.run / "world" / "tokenizer")
    info = make_base(args, preset, tokenizer)
    print(f"base: {info['how']}: {info['params']:,} params, loss {info['final_loss']:.3f}, "
          f"{info['pretrain_seconds']:.0f} s", flush=True)
    train, val = (load_demonstrations(wdata / f"demonstrations.{s}.jsonl") for s in ("train", "val"))
    evals, start = load_prompts(wdata / "prompts.val.jsonl")[: preset.sft.eval_prompts], time.time()
    info["sft"] = train_sft(args.out / "base", tokenizer, train, val, evals, preset.sft, args.out / "sft",
                            "rm_base", args.out / "sft_metrics.jsonl", progress=False)
    info["sft_seconds"] = round(time.time() - start, 1)
    print(f"sft: {info['sft']['why']} ({info['sft_seconds']:.0f} s)")
    write_json(args.out / "info.json", {**info, "machine": machine()})
    print("->", args.out / "info.json")


if __name__ == "__main__":
    main()
