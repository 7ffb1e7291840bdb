"""PPO's pure functions: hand cases, and GAE against a slow per-token loop."""
import math

import torch

from igpt_lib.losses import (gae, kl_penalized_rewards, masked_mean, masked_whiten,
                             ppo_policy_loss, value_loss)


def _prefix_mask(lengths, T):
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def test_kl_penalized_rewards_hand_case():
    mask = _prefix_mask([3, 1, 0], 4)
    logprobs = torch.full((3, 4), -1.0)
    ref = torch.full((3, 4), -1.5)                 # log π − log π_ref = 0.5 on every token
    scores = torch.tensor([2.0, -1.0, 7.0])
    r = kl_penalized_rewards(scores, logprobs, ref, mask, kl_coef=0.1)
    expected = torch.tensor([[-0.05, -0.05, -0.05 + 2.0, 0.0],
                             [-0.05 - 1.0, 0.0, 0.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0]])  # an empty response gets nothing
    assert torch.allclose(r, expected)


def _slow_gae(rewards, values, lengths, gamma, lam):
    B, T = rewards.shape
    adv = torch.zeros(B, T)
    for b in range(B):
        for t in range(lengths[b]):
            total = 0.0
            for l in range(t, lengths[b]):
                next_v = values[b, l + 1].item() if l + 1 < lengths[b] else 0.0
                delta = rewards[b, l].item() + gamma * next_v - values[b, l].item()
                total += (gamma * lam) ** (l - t) * delta
            adv[b, t] = total
    return adv


def test_gae_equals_a_slow_loop():
    torch.manual_seed(0)
    lengths = [5, 1, 3, 0, 7]
    mask = _prefix_mask(lengths, 7)
    rewards, values = torch.randn(5, 7), torch.randn(5, 7)
    for gamma, lam in ((1.0, 0.95), (0.9, 0.5), (1.0, 1.0)):
        adv, ret = gae(rewards, values, mask, gamma, lam)
        slow = _slow_gae(rewards, values, lengths, gamma, lam)
        assert torch.allclose(adv, slow, atol=1e-5)
        assert torch.allclose(ret, (slow + values) * mask, atol=1e-5)
        assert (adv[~mask] == 0).all() and (ret[~mask] == 0).all()


def test_gae_with_lambda_one_is_the_reward_to_go_minus_value():
    mask = _prefix_mask([3], 3)
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.4, 0.6]])
    adv, ret = gae(rewards, values, mask, 1.0, 1.0)
    assert torch.allclose(ret, torch.ones(1, 3)) and torch.allclose(adv, 1 - values)


def test_policy_loss_hand_case_and_clipping():
    mask = _prefix_mask([2], 3)
    old = torch.zeros(1, 3)
    new = torch.tensor([[math.log(1.5), math.log(0.5), 9.0]])    # ratios 1.5, 0.5, (padding)
    adv = torch.tensor([[1.0, -1.0, 100.0]])
    # token 0: A = 1,  ρ = 1.5 → max(−1.5, −1.2) = −1.2 (clipped)
    # token 1: A = −1, ρ = 0.5 → max(0.5, 0.8) = 0.8 (clipped)
    loss = ppo_policy_loss(new, old, adv, mask, clip_range=0.2)
    assert math.isclose(loss.item(), (-1.2 + 0.8) / 2, rel_tol=1e-6)
    same = ppo_policy_loss(old, old, adv, mask, 0.2)             # ρ = 1: −mean(A)
    assert math.isclose(same.item(), 0.0, abs_tol=1e-7)


def test_value_loss_hand_case():
    mask = _prefix_mask([2], 3)
    old = torch.tensor([[0.0, 0.0, 0.0]])
    values = torch.tensor([[1.0, 0.1, 5.0]])
    returns = torch.tensor([[0.0, 1.0, 0.0]])
    # token 0: (1 − 0)² = 1 vs (clip 0.2 − 0)² = 0.04 → 1; token 1: (0.1 − 1)² = 0.81 vs (0.1 − 1)² → 0.81
    assert math.isclose(value_loss(values, old, returns, mask, 0.2).item(), 0.5 * (1 + 0.81) / 2, rel_tol=1e-6)
    # the clipped term can be the larger one: V moved past R, clipping leaves it short
    assert math.isclose(value_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[0.9]]),
                                   _prefix_mask([1], 1), 0.2).item(), 0.5 * 0.7 ** 2, rel_tol=1e-6)


def test_masked_whiten():
    torch.manual_seed(0)
    x = torch.randn(4, 6) * 3 + 2
    mask = _prefix_mask([6, 2, 4, 1], 6)
    w = masked_whiten(x, mask)
    assert abs(masked_mean(w, mask).item()) < 1e-5
    assert math.isclose(w[mask].std().item(), 1.0, rel_tol=1e-4)   # unbiased, as torch.std
    assert (w[~mask] == 0).all()
    kept = masked_whiten(x, mask, shift_mean=False)
    assert math.isclose(masked_mean(kept, mask).item(), masked_mean(x, mask).item(), rel_tol=1e-5)


def test_adaptive_kl_controller():
    from igpt_lib.ppo import AdaptiveKLController
    fixed = AdaptiveKLController(0.1)
    assert fixed.update(kl=50.0, n_episodes=64) == 0.1          # no target: β stays
    ctl = AdaptiveKLController(0.1, target=1.0, horizon=100)
    assert math.isclose(ctl.update(kl=2.0, n_episodes=50), 0.1 * (1 + 0.2 * 0.5))   # error clipped at +0.2
    ctl = AdaptiveKLController(0.1, target=1.0, horizon=100)
    assert math.isclose(ctl.update(kl=0.9, n_episodes=100), 0.1 * (1 - 0.1))        # below target: β falls


def test_ema_of_weights():
    from igpt_lib.ppo import EMA
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema = EMA(layer, decay=0.9)
    with torch.no_grad():
        layer.weight.fill_(3.0)
    ema.update(layer)                       # 0.9 · 1 + 0.1 · 3 = 1.2
    ema.copy_to(layer)
    assert torch.allclose(layer.weight, torch.full((1, 2), 1.2))
