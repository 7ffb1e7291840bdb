"""Batched sampling with the KV cache and left padding (the rollout of every later stage)."""
import torch
from tqdm.auto import tqdm


@torch.no_grad()
def generate(model, tokenizer, prompts, max_new_tokens, temperature=0.0, batch_size=64,
             progress=False, desc="generate"):
    """Responses (text up to <eos>, which is not included) to each prompt, in order.

    temperature 0 is greedy; otherwise pure sampling at that temperature (top_k / top_p off,
    as the paper samples at T = 1). Prompts are batched by length and left-padded, so every
    row's last prompt token sits at the same position and the KV cache serves all rows.
    """
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = [None] * len(prompts)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) \
        if temperature > 0 else dict(do_sample=False)
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, leave=False):
            idx = order[start:start + batch_size]
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True)
            enc = {k: v.to(model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            seqs = model.generate(**enc, max_new_tokens=max_new_tokens, use_cache=True,
                                  pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, **sampling)
            for i, row in zip(idx, seqs[:, enc["input_ids"].shape[1]:].tolist()):  # (B, new)
                if tokenizer.eos_token_id in row:
                    row = row[:row.index(tokenizer.eos_token_id)]
                out[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    finally:
        tokenizer.padding_side = side
    return out
