"""Generation: rollout tokens/s, batched with the KV cache (`igpt_lib.generation.generate`,
what every stage uses) vs the naive loop (one prompt at a time, the whole sequence forwarded
again for every new token), and the two steps between (issue #8). Writes
bench/results/generation.json.

    .venv/bin/python bench/generation.py [--sizes xs l] [--prompts 64]

Models: the shipped base models; prompts: the world's held-out prompts; sampling at T = 1 with
a fixed seed, `max_new_tokens` 24 as every stage. Tokens counted: generated tokens up to and
including each response's <eos> (the same rule for every method).
"""
import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_result  # noqa: E402
from igpt_lib.data import read_jsonl  # noqa: E402

RESULTS = REPO / "bench" / "results" / "generation.json"


def _count(rows, eos):
    """Generated tokens per row up to and including the first <eos>."""
    return sum((row.index(eos) + 1) if eos in row else len(row) for row in rows)


@torch.no_grad()
def naive(model, tok, prompts, max_new, use_cache=False):
    """One prompt at a time; without the cache every step forwards the whole sequence."""
    rows = []
    for p in prompts:
        ids = tok(p, return_tensors="pt")["input_ids"]
        if use_cache:
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=True,
                                 temperature=1.0, top_k=0, top_p=1.0, use_cache=True,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            rows.append(out[0, ids.shape[1]:].tolist())
            continue
        new = []
        for _ in range(max_new):
            logits = model(ids).logits[0, -1]
            nxt = torch.multinomial(torch.softmax(logits, -1), 1)
            new.append(int(nxt))
            if new[-1] == tok.eos_token_id:
                break
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
        rows.append(new)
    return rows


@torch.no_grad()
def batched(model, tok, prompts, max_new, use_cache=True):
    side, tok.padding_side = tok.padding_side, "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    tok.padding_side = side
    out = model.generate(**enc, max_new_tokens=max_new, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                         use_cache=use_cache, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return out[:, enc["input_ids"].shape[1]:].tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["xs", "l"])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    prompts = [r["prompt"] for r in read_jsonl(REPO / "data" / "prompts.test.jsonl")[: args.prompts]]
    methods = {"naive loop (1 prompt, no cache)": lambda m, t: naive(m, t, prompts, args.max_new_tokens),
               "1 prompt at a time, KV cache": lambda m, t: naive(m, t, prompts, args.max_new_tokens, True),
               "batched, no cache": lambda m, t: batched(m, t, prompts, args.max_new_tokens, False),
               "batched, KV cache (ours)": lambda m, t: batched(m, t, prompts, args.max_new_tokens, True)}
    result = {"machine": machine(), "prompts": len(prompts), "max_new_tokens": args.max_new_tokens, "sizes": {}}
    for size in args.sizes:
        folder = sorted((REPO / "data" / "base_models").glob(f"{size}-*"))[0]
        model, tok = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
        rows = {}
        for name, fn in methods.items():
            torch.manual_seed(0)
            start = time.perf_counter()
            tokens = _count(fn(model, tok), tok.eos_token_id)
            seconds = time.perf_counter() - start
            rows[name] = {"tokens_per_s": round(tokens / seconds, 1), "seconds": round(seconds, 2), "tokens": tokens}
            print(f"{size:3s} {name:34s} {tokens / seconds:9.1f} tok/s ({tokens} tokens, {seconds:.2f} s)", flush=True)
        base = rows["naive loop (1 prompt, no cache)"]["tokens_per_s"]
        result["sizes"][size] = {"params": sum(p.numel() for p in model.parameters()), "methods": rows,
                                 "speedup": round(rows["batched, KV cache (ours)"]["tokens_per_s"] / base, 1)}
        print(f"{size:3s} batched + KV cache vs naive loop: {result['sizes'][size]['speedup']}×")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
