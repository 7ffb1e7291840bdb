"""Step 3: rollouts and a few PPO iterations on the smoke world's tiny models."""
import json

import torch
from transformers import AutoModelForCausalLM

from igpt_lib.config import PPOConfig
from igpt_lib.models import load_tokenizer
from igpt_lib.ppo import corpus_batches, response_logprobs, rollout, train_ppo
from igpt_lib.reward import load_reward_model


def _models(out, policy="xs", rm="s"):
    torch.manual_seed(0)
    tok = load_tokenizer(out / "world" / "tokenizer")
    policy_model = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / policy)
    ref = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / policy).eval()
    reward = load_reward_model(out / "world" / "models" / rm).eval()
    value = load_reward_model(out / "world" / "models" / rm)
    value.load_state_dict(reward.state_dict())  # value model initialised from the RM (§3.5)
    return tok, policy_model, ref, reward, value


def test_left_padding_does_not_change_logprobs(smoke_world):
    out, _ = smoke_world
    tok, policy, *_ = _models(out)
    short, long = "Q : add 2 and 3 A :", "Q : reverse the letters : a b c d e f g A :"
    side, tok.padding_side = tok.padding_side, "left"
    enc = tok([short, long], return_tensors="pt", padding=True)
    tok.padding_side = side
    resp = tok(" 5 <eos>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([enc["input_ids"], resp.repeat(2, 1)], 1)
    att = torch.cat([enc["attention_mask"], torch.ones(2, resp.shape[1], dtype=torch.long)], 1)
    batched, _ = response_logprobs(policy, ids, att, enc["input_ids"].shape[1])
    alone_ids = torch.cat([tok(short, return_tensors="pt")["input_ids"], resp], 1)
    alone, _ = response_logprobs(policy, alone_ids, torch.ones_like(alone_ids), alone_ids.shape[1] - resp.shape[1])
    assert torch.allclose(batched[0], alone[0], atol=1e-5)


def test_rollout_masks_after_eos_and_starts_with_zero_kl(smoke_world):
    out, _ = smoke_world
    tok, policy, ref, reward, value = _models(out)
    cfg = PPOConfig(batch_size=8, max_new_tokens=12)
    ro = rollout(policy, ref, reward, value, tok, ["Q : describe ann A :"] * 8, cfg)
    assert ro.mask.shape == ro.logprobs.shape == ro.advantages.shape
    for ids, m in zip(ro.input_ids[:, ro.query_len:], ro.mask):
        n = int(m.sum())
        assert m[:n].all() and not m[n:].any()                  # a prefix
        if tok.eos_token_id in ids[:n].tolist():
            assert ids[n - 1] == tok.eos_token_id                # ends with the first <eos>
    assert torch.allclose(ro.logprobs * ro.mask, ro.ref_logprobs * ro.mask)  # policy == reference
    assert torch.allclose(ro.rewards.sum(1), ro.scores)          # so the reward is the score alone


def test_a_few_ppo_iterations_raise_the_rm_score(smoke_world, tmp_path):
    out, _ = smoke_world
    tok, policy, ref, reward, value = _models(out)
    from igpt_lib import data as D
    rows = D.load_prompts(out / "world" / "data" / "prompts.ppo.jsonl")
    cfg = PPOConfig(iterations=12, batch_size=32, minibatch_size=8, lr=3e-3, kl_coef=0.01,
                    max_new_tokens=8, ptx_coef=0.1, target_kl=1.0, ema_decay=0.9)
    tokens = tok(" ".join(r["prompt"] for r in rows))["input_ids"]
    train_ppo(policy, ref, reward, value, tok, rows, cfg, tmp_path / "m.jsonl",
              ptx_tokens=tokens, progress=False)
    stats = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(stats) == 12 and stats[0]["kl"] == 0.0
    first = sum(s["score"] for s in stats[:3]) / 3
    last = sum(s["score"] for s in stats[-3:]) / 3
    assert last > first, (first, last)
    assert all(s["ptx_loss"] is not None and "gold" in s for s in stats)
    assert stats[1]["kl_coef"] != stats[0]["kl_coef"]  # the adaptive controller moved β


def test_corpus_batches_are_windows_of_the_stream():
    batches = corpus_batches(list(range(100)), 5, 3, seed=0)
    b = next(batches)
    assert b.shape == (3, 5) and all((row[1:] - row[:-1] == 1).all() for row in b)


def test_ppo_stage_on_the_smoke_world(smoke_world, tmp_path):
    import shutil
    from igpt_lib.cli import main
    out, _ = smoke_world
    shutil.copytree(out, tmp_path / "run")
    run = tmp_path / "run"
    assert main(["ppo", "--preset", "smoke", "--out", str(run), "--ptx-coef", "0.5"]) == 0  # runs SFT + RM first
    assert AutoModelForCausalLM.from_pretrained(run / "ppo") is not None
    summary = json.loads((run / "ppo" / "summary.json").read_text())
    assert summary["config"]["ptx_coef"] == 0.5 and set(summary["test_gold"]) == {"sft", "ppo"}
    assert len((run / "ppo" / "metrics.jsonl").read_text().splitlines()) == 3
