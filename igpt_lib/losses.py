"""The paper's losses as pure functions: tensors in, scalar out, no hidden state.

Each docstring names the equation it implements and the shape of every argument.
Lessons: 01_sft (sft_loss); later lessons add the ranking loss and the PPO losses.
"""
import torch

IGNORE_INDEX = -100  # label of tokens that carry no loss (prompt and padding), as in transformers


def masked_mean(values, mask, dim=None):
    """Mean of `values` where `mask` is true (over `dim`, or all); every token reduction uses it."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def token_logprobs(logits, labels):
    """log π(labels[b, t+1] | tokens ≤ t) for t = 0..T−2, shape (B, T−1).

    logits: (B, T, V); labels: (B, T) aligned with input_ids. Where a label is −100 the value
    is that of token 0 and means nothing: callers mask it out.
    """
    logp = torch.log_softmax(logits[:, :-1, :].float(), dim=-1)  # (B, T−1, V)
    targets = labels[:, 1:].clamp(min=0)                         # (B, T−1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def sft_loss(logits, labels):
    """Supervised fine-tuning loss (§3.5, step 1): mean negative log-likelihood of the
    demonstration's response tokens,

        L_SFT = −(1/N) Σ_{b,t: labels[b,t+1] ≠ −100} log π(labels[b,t+1] | tokens ≤ t).

    logits: (B, T, V) model outputs. labels: (B, T) aligned with input_ids, as in
    transformers (the target of position t is labels[:, t+1]; this function shifts). Prompt
    and padding tokens are −100, so the loss is on the response only; N counts the rest.
    """
    counted = labels[:, 1:] != IGNORE_INDEX  # (B, T−1)
    return -masked_mean(token_logprobs(logits, labels), counted)


def ranking_loss(rewards, ranks, mask=None):
    """K-way reward-model loss (InstructGPT eq. 1): for each prompt, the mean over its strictly
    ordered pairs of −log σ(r(x, y_better) − r(x, y_worse)); then the mean over prompts.

        loss(θ) = −1/C(K,2) · E_(x, y_w, y_l) [log σ(r_θ(x, y_w) − r_θ(x, y_l))]

    All C(K,2) comparisons of a prompt form one batch element, so each response is forwarded
    once (§3.5). rewards: (B, K) float, one scalar per response. ranks: (B, K) long, 0 = best,
    equal ranks = a tie. mask: (B, K) bool, False on padding (variable K); None = all valid.
    Tied pairs are neither counted nor divided by; a prompt with no ordered pair is left out
    of the mean over prompts.
    """
    if mask is None:
        mask = torch.ones_like(ranks, dtype=torch.bool)
    diff = rewards.unsqueeze(2) - rewards.unsqueeze(1)              # (B, K, K): r_i − r_j
    better = ranks.unsqueeze(2) < ranks.unsqueeze(1)                 # (B, K, K): i ranked above j
    pairs = better & mask.unsqueeze(2) & mask.unsqueeze(1)           # (B, K, K)
    per_prompt = masked_mean(-torch.nn.functional.logsigmoid(diff), pairs, dim=(1, 2))  # (B,)
    return masked_mean(per_prompt, pairs.any(dim=(1, 2)))
