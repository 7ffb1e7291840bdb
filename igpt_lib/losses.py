"""The paper's losses as pure functions: tensors in, scalar out, no hidden state.

Each docstring names the equation it implements and the shape of every argument.
Lessons: 01_sft (sft_loss), 03_reward_model (ranking_loss), 04_ppo (the PPO functions).
Masks are (B, T) bool, true on response tokens; in the PPO functions each row's mask is a
prefix (right padding).
"""
import torch

IGNORE_INDEX = -100  # label of tokens that carry no loss (prompt and padding), as in transformers


def masked_mean(values, mask, dim=None):
    """Mean of `values` where `mask` is true (over `dim`, or all); every token reduction uses it."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(values, mask, shift_mean=True, eps=1e-8):
    """(values − mean) / std over the valid entries (unbiased variance), 0 elsewhere; with
    shift_mean=False the mean is added back (scale only). Used on advantages (PPO detail)."""
    mean = masked_mean(values, mask)
    centred = values - mean
    n = mask.sum().clamp(min=2)
    var = masked_mean(centred ** 2, mask) * n / (n - 1)
    out = centred * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


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


def kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef):
    """Per-token rewards of InstructGPT eq. 2: −β·(log π_RL − log π_SFT) on every response
    token, plus the RM score r_θ(x, y) at the last response token.

    scores: (B,) RM score per sequence. logprobs, ref_logprobs: (B, T) of the sampled tokens
    under the policy and the frozen SFT reference. mask: (B, T) bool prefix. kl_coef: β.
    Returns (B, T), 0 where mask is false.
    """
    rewards = -kl_coef * (logprobs - ref_logprobs) * mask                 # (B, T)
    lengths = mask.sum(dim=1)                                             # (B,)
    rows = torch.nonzero(lengths > 0).squeeze(-1)
    rewards[rows, lengths[rows] - 1] += scores[rows].to(rewards.dtype)
    return rewards


def gae(rewards, values, mask, gamma=1.0, lam=0.95):
    """Generalised advantage estimation (Schulman et al. 2016, eq. 11-16):
    δ_t = r_t + γ V_{t+1} − V_t,  A_t = Σ_l (γλ)^l δ_{t+l}, with V = 0 after the last valid
    token; returns R_t = A_t + V_t. rewards, values: (B, T); mask: (B, T) bool prefix.
    Returns (advantages, returns), both (B, T) and 0 where mask is false.
    """
    mask_f = mask.to(values.dtype)
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(values[:, 0])                                 # (B,)
    T = values.shape[1]
    for t in reversed(range(T)):
        next_value = values[:, t + 1] * mask_f[:, t + 1] if t + 1 < T else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask_f[:, t]                # 0 past the end
        advantages[:, t] = last
    return advantages, (advantages + values) * mask_f


def ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range):
    """Clipped surrogate (PPO, Schulman et al. 2017, eq. 7, L^CLIP, as a loss):
    mean over valid tokens of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)), ρ = π/π_old.
    logprobs, old_logprobs, advantages: (B, T); mask: (B, T) bool; clip_range: ε.
    """
    ratio = torch.exp(logprobs - old_logprobs)                            # (B, T)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    return masked_mean(torch.max(unclipped, clipped), mask)


def value_loss(values, old_values, returns, mask, clip_range):
    """Clipped value loss (the PPO baselines' detail):
    0.5 · mean over valid tokens of max((V − R)², (clip(V, V_old − ε, V_old + ε) − R)²).
    values, old_values, returns: (B, T); mask: (B, T) bool; clip_range: ε.
    """
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask)
