"""The base-model family (the GPT-3 stand-in): tiny GPTNeoX models pretrained on the corpus.

GPTNeoX is Pythia's architecture, so the hub presets (issue 7) run the same code on real
Pythia checkpoints. Pretraining is plain next-token prediction on random windows of the
packed corpus, AdamW β = (0.9, 0.95) (App. C), linear warm-up then cosine to 10 % of peak.
"""
import math

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

WARMUP_FRAC = 0.03


def model_config(size, tokenizer, seq_len):
    return GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
        num_attention_heads=size.heads, intermediate_size=4 * size.hidden,
        max_position_embeddings=seq_len, rotary_pct=0.25, use_parallel_residual=True,
        tie_word_embeddings=False, hidden_dropout=0.0, attention_dropout=0.0,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def lr_at(step, total, peak):
    """Linear warm-up, then cosine decay to 10 % of the peak (the paper's schedule shape)."""
    warmup = max(1, int(WARMUP_FRAC * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def pretrain(size, tokenizer, tokens, seq_len, batch_size, seed, progress=True):
    """Train one size from scratch on the token stream; returns (model, per-step losses)."""
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(model_config(size, tokenizer, seq_len))
    steps = max(1, size.pretrain_tokens // (batch_size * seq_len))
    losses = next_token_steps(model, tokens, steps, size.lr, seq_len, batch_size, seed,
                              f"pretrain {size.name}", progress)
    return model, losses


def next_token_steps(model, tokens, steps, peak_lr, seq_len, batch_size, seed, desc="pretrain", progress=True):
    """`steps` AdamW steps of next-token prediction on random windows of `tokens` (the family's
    schedule up to `peak_lr`); leaves `model` in eval mode and returns the per-step losses.
    bench/rm_base.py continues a trained model with it."""
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.01)
    data = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    model.train()
    for step in bar:
        starts = torch.randint(0, len(data) - seq_len, (batch_size,), generator=gen)
        batch = torch.stack([data[s:s + seq_len] for s in starts])  # (B, T)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    model.eval()
    return losses
