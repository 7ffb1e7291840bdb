"""Step 3: PPO against the reward model with a per-token KL penalty, and PPO-ptx (§3.5).

Objective (InstructGPT eq. 2):
    E_(x,y)~π_RL [r_θ(x, y) − β log(π_RL(y|x) / π_SFT(y|x))] + γ E_x~D_pretrain [log π_RL(x)]
One iteration = `rollout` (sample, score, per-token KL, GAE) then `ppo_update` (clipped policy
and value losses, plus the pretraining NLL × γ for PPO-ptx); the loop, checkpoints and
diagnostics are in ppo_trainer.py. The value model starts as a copy of the RM (§3.5),
reading the RM head at every token. Lesson: notebooks/04_ppo.ipynb.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .losses import gae, kl_penalized_rewards, masked_mean, masked_whiten, ppo_policy_loss, value_loss
from .reward import rm_text, score_texts


@dataclass
class Rollout:
    """One batch of episodes; every (B, T) tensor covers the response tokens only."""
    input_ids: torch.Tensor        # (B, Q + T) left-padded query, then the response
    attention_mask: torch.Tensor   # (B, Q + T)
    query_len: int                 # Q
    mask: torch.Tensor             # (B, T) bool, true on response tokens (up to and with <eos>)
    logprobs: torch.Tensor         # (B, T) under the policy that sampled
    ref_logprobs: torch.Tensor     # (B, T) under the frozen SFT reference
    values: torch.Tensor           # (B, T)
    scores: torch.Tensor           # (B,) RM score
    rewards: torch.Tensor          # (B, T) after the KL penalty
    advantages: torch.Tensor       # (B, T) whitened
    returns: torch.Tensor          # (B, T)
    responses: list                # decoded text, for scoring and the gold labeler
    kl_tokens: torch.Tensor        # (B, T) exact KL(π ‖ π_SFT) over the vocabulary at each response state


class AdaptiveKLController:
    """Adaptive β (Ziegler et al. 2019, §2.2): e = clip(KL / target − 1, −0.2, 0.2),
    β ← β · (1 + e · n / horizon) after each batch of n episodes. Off when target is None."""

    def __init__(self, kl_coef, target=None, horizon=10_000):
        self.value, self.target, self.horizon = kl_coef, target, horizon

    def update(self, kl, n_episodes):
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_episodes / self.horizon
        return self.value


class EMA:
    """Exponential moving average of the policy's weights (App. C: decay 0.992); when enabled,
    the averaged weights are the policy that is evaluated and saved."""

    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model):
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(self.decay).add_(v, alpha=1.0 - self.decay)

    def copy_to(self, model):
        model.load_state_dict(self.shadow, strict=False)


def position_ids(attention_mask):
    """Positions that skip left padding, as generate() uses them: without this, a forward pass
    on a left-padded batch sees shifted positions and the KL is not 0 at the start."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def response_logprobs(model, input_ids, attention_mask, query_len):
    """log π(response token) for each response position: (B, T)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask,
                   position_ids=position_ids(attention_mask)).logits
    logits = logits[:, query_len - 1:-1].float()                          # (B, T, V)
    targets = input_ids[:, query_len:]                                    # (B, T)
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), logits


def shared_base(policy):
    """`policy` itself when it can switch its LoRA adapters off (peft), else a clear error."""
    if not hasattr(policy, "disable_adapter"):
        raise ValueError("ref_policy=None needs a peft (LoRA) policy: its base, adapters off, is the reference")
    return policy


def reference_logprobs(policy, ref_policy, input_ids, attention_mask, query_len):
    """log π_SFT(response token) (B, T), and the reference's logits (B, T, V): the frozen
    reference model, or, when `ref_policy` is None, the policy with its LoRA adapters switched
    off. Then the reference is the shared base (the SFT weights under the PPO adapter) and no
    second copy is held (hub presets)."""
    if ref_policy is not None:
        return response_logprobs(ref_policy, input_ids, attention_mask, query_len)
    with shared_base(policy).disable_adapter():
        return response_logprobs(policy, input_ids, attention_mask, query_len)


def token_kl(logits, ref_logits, rows=1):
    """KL(π(·|s_t) ‖ π_SFT(·|s_t)) at each position, summed over the whole vocabulary (B, T).
    Its sum over a response, averaged over sampled responses, estimates the sequence KL without
    the noise of which token was sampled (the chain rule of KL); ≥ 0 at every state (float
    rounding below 0 is cut off). `rows` rows at a time: its fp32 temporaries (~5 of them) then
    cover one row, not the whole chunk of logits."""
    out = []
    for a, b in zip(logits.split(rows), ref_logits.split(rows)):
        logp, ref = torch.log_softmax(a.float(), -1), torch.log_softmax(b.float(), -1)
        out.append((logp.exp() * (logp - ref)).sum(-1))
    return torch.cat(out).clamp(min=0.0)


def policy_and_reference(policy, ref_policy, input_ids, attention_mask, query_len):
    """(B, T, 3): log π and log π_SFT of each response token, and the exact per-state KL, from one
    forward pass of each model (their logits are held for one chunk only)."""
    logprobs, logits = response_logprobs(policy, input_ids, attention_mask, query_len)
    ref_logprobs, ref_logits = reference_logprobs(policy, ref_policy, input_ids, attention_mask, query_len)
    return torch.stack([logprobs, ref_logprobs, token_kl(logits, ref_logits)], dim=-1)


FORWARD_ROWS = 16  # rows per rollout forward pass when cfg.forward_batch_size is None


def trim_padding(input_ids, attention_mask, query_len):
    """Drop the columns that are padding in every row — left of the longest prompt, right of the
    longest response — so a forward pass computes the same tokens at fewer positions (a rollout
    batch is ~60 % padding on cpu: bench/profile_ppo.py). Returns (input_ids, attention_mask,
    query_len, T) with T the response columns kept (outputs are re-padded to the full width)."""
    cols = attention_mask.any(0).nonzero().squeeze(-1)
    left, right = int(cols[0]), max(int(cols[-1]) + 1, query_len + 1)
    return input_ids[:, left:right], attention_mask[:, left:right], query_len - left, right - query_len


def in_chunks(fn, rows, input_ids, attention_mask, query_len):
    """fn(input_ids, attention_mask, query_len) → (b, T, ...) over chunks of `rows` rows (None: FORWARD_ROWS),
    rows of similar prompt and response length together, each chunk trimmed of its all-padding
    columns; the (B, T, ...) result is in the original row order, zero where a chunk had no column.
    Never holds the (B, T, V) logits of the whole batch."""
    B, T = input_ids.shape[0], input_ids.shape[1] - query_len
    order = sorted(range(B), key=lambda i: (int(attention_mask[i, :query_len].sum()), int(attention_mask[i].sum())))
    out = None
    for chunk in torch.tensor(order).split(rows or FORWARD_ROWS):
        ids, att, q, t = trim_padding(input_ids[chunk], attention_mask[chunk], query_len)
        part = fn(ids, att, q)                                                # (b, t, ...)
        if out is None:
            out = part.new_zeros(B, T, *part.shape[2:])
        out[chunk, :t] = part
    return out


def token_values(value_model, input_ids, attention_mask, query_len):
    """V(s_t) for each response position: the RM head applied at every token (B, T).
    `value_model` is the RM-shaped model itself or a `ValueModel` around it."""
    if not hasattr(value_model, "score"):       # a ValueModel, possibly wrapped for DDP
        return value_model(input_ids, attention_mask, query_len)
    hidden = value_model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                    position_ids=position_ids(attention_mask)).last_hidden_state
    return value_model.score(hidden).squeeze(-1)[:, query_len - 1:-1]     # (B, T)


class ValueModel(torch.nn.Module):
    """The value model as one module whose forward gives V(s_t) at every response token, so
    that DDP (which syncs gradients only through a module's forward) can wrap it."""

    def __init__(self, reward_model):
        super().__init__()
        self.rm = reward_model

    def forward(self, input_ids, attention_mask, query_len):
        return token_values(self.rm, input_ids, attention_mask, query_len)


def sample_responses(policy, tokenizer, prompts, cfg):
    """Step 1 of a rollout: (input_ids, attention_mask, query_len, mask) of left-padded prompts
    followed by responses sampled at temperature 1, cut after each one's first <eos>."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    device = next(policy.parameters()).device
    enc = {k: enc[k].to(device) for k in ("input_ids", "attention_mask")}
    seqs = getattr(policy, "module", policy).generate(  # through a DDP wrapper, if any
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
        max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=1.0,
        top_k=0, top_p=1.0, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    q = enc["input_ids"].shape[1]
    response = seqs[:, q:]                                                # (B, T)
    is_eos = response == tokenizer.eos_token_id
    after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0            # strictly after the first <eos>
    mask = ~after_eos
    response = response.masked_fill(~mask, tokenizer.pad_token_id)
    attention = torch.cat([enc["attention_mask"], mask.long()], dim=1)
    return torch.cat([enc["input_ids"], response], dim=1), attention, q, mask


@torch.no_grad()
def rollout(policy, ref_policy, reward_model, value_model, tokenizer, prompts, cfg, kl_coef=None):
    """Sample responses and turn them into advantages (the numbered stages of §3.5);
    `kl_coef` overrides cfg.kl_coef (the adaptive controller's current β); `ref_policy`
    None: the policy's base with its LoRA adapters off is the reference. `reward_model` is the
    RM, or any function (prompts, responses) → B scores (a rule, or the offline world's gold
    score as an oracle: bench/ppo_oracle.py)."""
    # 1. sample with temperature 1 (KV cache), cut each response after its first <eos>
    input_ids, attention, q, mask = sample_responses(policy, tokenizer, prompts, cfg)
    responses = [tokenizer.decode(ids[m], skip_special_tokens=True).strip()
                 for ids, m in zip(input_ids[:, q:], mask)]
    # 2. log-probabilities under the policy and the frozen SFT reference; values
    rows = cfg.forward_batch_size
    both = in_chunks(lambda *a: policy_and_reference(policy, ref_policy, *a), rows, input_ids, attention, q)
    logprobs, ref_logprobs, kl_tokens = both.unbind(-1)                   # (B, T) each
    values = in_chunks(lambda *a: token_values(value_model, *a), rows, input_ids, attention, q)
    # 3. RM score of prompt + response (the text the RM was trained on), or the reward function's
    if isinstance(reward_model, torch.nn.Module):
        scores = score_texts(reward_model, tokenizer, [rm_text(p, y, tokenizer) for p, y in zip(prompts, responses)],
                             cfg.max_length)
    else:
        scores = torch.as_tensor(reward_model(prompts, responses), dtype=torch.float32, device=input_ids.device)
        if scores.shape != (len(prompts),):
            raise ValueError(f"the reward function returned scores of shape {tuple(scores.shape)} for "
                             f"{len(prompts)} responses; it must return one number per response")
    # 4. per-token KL penalty, the score at the last token (eq. 2)
    rewards = kl_penalized_rewards(scores, logprobs, ref_logprobs, mask,
                                   cfg.kl_coef if kl_coef is None else kl_coef)
    # 5. GAE (γ = 1, λ = 0.95), whitened advantages
    advantages, returns = gae(rewards, values, mask, cfg.gamma, cfg.lam)
    advantages = masked_whiten(advantages, mask) if cfg.whiten_advantages else advantages
    return Rollout(input_ids, attention, q, mask, logprobs, ref_logprobs, values * mask, scores,
                   rewards, advantages, returns, responses, kl_tokens * mask)


def ptx_loss(policy, batch):
    """Pretraining NLL on a corpus batch (B, T): the γ E[log π_RL(x)] term of eq. 2."""
    batch = batch.to(next(policy.parameters()).device)
    return policy(input_ids=batch, labels=batch).loss


def _finite(loss, name):
    """Stop before a non-finite loss reaches the weights."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{name} is {loss.item()}")
    return loss


def ppo_update(policy, value_model, opt, value_opt, ro, cfg, ptx_batches=None, accelerator=None):
    """PPO epochs over minibatches of one rollout; returns mean statistics. With an
    `accelerate.Accelerator`, backward and gradient clipping go through it (DDP, mixed precision)."""
    backward = accelerator.backward if accelerator else torch.Tensor.backward
    clip = accelerator.clip_grad_norm_ if accelerator else torch.nn.utils.clip_grad_norm_
    stats, B = [], ro.mask.shape[0]
    for _ in range(cfg.ppo_epochs):
        for idx in torch.randperm(B).split(cfg.minibatch_size):
            ids, att, q, t = trim_padding(ro.input_ids[idx], ro.attention_mask[idx], ro.query_len)
            mask, old_logprobs, advantages, old_values, returns = (
                x[idx][:, :t] for x in (ro.mask, ro.logprobs, ro.advantages, ro.values, ro.returns))  # (b, t)
            logprobs, logits = response_logprobs(policy, ids, att, q)
            pg = ppo_policy_loss(logprobs, old_logprobs, advantages, mask, cfg.clip_range)
            loss = _finite(pg, "policy loss")
            ptx = None
            if cfg.ptx_coef and ptx_batches is not None:
                ptx = _finite(ptx_loss(policy, next(ptx_batches)), "ptx loss")
                loss = loss + cfg.ptx_coef * ptx  # PPO-ptx: per minibatch (App. C.4)
            opt.zero_grad(set_to_none=True)
            backward(loss)
            clip(policy.parameters(), cfg.max_grad_norm)
            opt.step()
            values = token_values(value_model, ids, att, q)
            vf = _finite(value_loss(values, old_values, returns, mask, cfg.value_clip_range), "value loss")
            value_opt.zero_grad(set_to_none=True)
            backward(vf)
            clip(value_model.parameters(), cfg.max_grad_norm)
            value_opt.step()
            with torch.no_grad():
                ratio = torch.exp(logprobs - old_logprobs)
                entropy = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)
                stats.append({"policy_loss": pg.item(), "value_loss": vf.item(),
                              "ptx_loss": ptx.item() if ptx is not None else None,
                              "clipfrac": masked_mean(((ratio - 1).abs() > cfg.clip_range).float(), mask).item(),
                              "approx_kl": masked_mean(0.5 * (logprobs - old_logprobs) ** 2, mask).item(),
                              "entropy": masked_mean(entropy, mask).item()})
    return {k: float(np.mean([s[k] for s in stats if s[k] is not None])) if any(s[k] is not None for s in stats)
            else None for k in stats[0]}


def rollout_stats(ro):
    """KL (k1: mean of log π − log π_ref summed per sequence, with its standard error `kl_se`;
    k3: the always-positive estimator; `kl_exact`: the per-state KL over the vocabulary, summed per
    sequence), score, non-score reward, response length, explained variance."""
    diff = (ro.logprobs - ro.ref_logprobs) * ro.mask
    per_seq = diff.sum(1)                                                     # (B,) k1 per episode
    kl_se = (per_seq.std() / len(per_seq) ** 0.5).item() if len(per_seq) > 1 else 0.0
    k3 = ((torch.exp(-diff) - 1) + diff) * ro.mask
    valid = ro.mask
    var_r = torch.var(ro.returns[valid])
    ev = 1 - torch.var((ro.returns - ro.values)[valid]) / var_r if var_r > 0 else torch.tensor(float("nan"))
    return {"score": ro.scores.mean().item(), "kl": per_seq.mean().item(), "kl_se": kl_se, "kl_k3": k3.sum(1).mean().item(),
            "kl_exact": (ro.kl_tokens * ro.mask).sum(1).mean().item(),
            "non_score_reward": (ro.rewards.sum(1) - ro.scores).mean().item(),
            "response_length": ro.mask.sum(1).float().mean().item(), "explained_variance": ev.item()}


def corpus_batches(tokens, seq_len, batch_size, seed=0, generator=None):
    """Endless random windows of the packed pretraining corpus, for PPO-ptx; pass a
    `generator` to save and restore the stream's position (checkpoints)."""
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    data = torch.as_tensor(tokens, dtype=torch.long)
    while True:
        starts = torch.randint(0, len(data) - seq_len, (batch_size,), generator=gen)
        yield torch.stack([data[s:s + seq_len] for s in starts])        # (B, T)
