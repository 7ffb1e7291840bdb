"""The hub world's one-card tricks on CPU (issue 7): an 8-bit base that generates, a LoRA policy
whose reference is its own base with adapters off (no second copy), PPO on top of both, and
rollout forward passes in chunks. Tiny models of the smoke world stand in for Pythia."""
import pytest
import torch
from peft import get_peft_model

from igpt_lib.config import PPOConfig
from igpt_lib.data import load_prompts
from igpt_lib.generation import generate
from igpt_lib.models import load_causal_lm, load_tokenizer, lora_config
from igpt_lib.ppo import in_chunks, reference_logprobs, response_logprobs, rollout, token_values
from igpt_lib.ppo_trainer import PPOTrainer
from igpt_lib.reward import load_reward_model


def _parts(out, eight_bit):
    torch.manual_seed(0)
    tok = load_tokenizer(out / "world" / "tokenizer")
    base = load_causal_lm(out / "world" / "models" / "l", load_in_8bit=eight_bit)
    reward = load_reward_model(out / "world" / "models" / "s").eval()
    value = load_reward_model(out / "world" / "models" / "s")
    value.load_state_dict(reward.state_dict())
    rows = load_prompts(out / "world" / "data" / "prompts.ppo.jsonl")
    return tok, base, reward, value, rows


def test_an_8bit_base_loads_and_generates(smoke_world):
    out, _ = smoke_world
    tok, base, *_ = _parts(out, eight_bit=True)
    import bitsandbytes as bnb
    assert getattr(base, "is_loaded_in_8bit", False)
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in base.modules())
    texts = generate(base, tok, ["Q : add 2 and 3 A :", "Q : describe ann A :"], max_new_tokens=6)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


@pytest.mark.parametrize("eight_bit", [False, True], ids=["lora", "lora-8bit"])
def test_ppo_step_with_the_shared_base_as_reference(smoke_world, eight_bit):
    out, _ = smoke_world
    tok, base, reward, value, rows = _parts(out, eight_bit)
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    policy = get_peft_model(base, lora_config(4, 8, 0.0))
    cfg = PPOConfig(batch_size=8, minibatch_size=4, max_new_tokens=6, lr=1e-2, forward_batch_size=4)
    trainer = PPOTrainer(policy, None, reward, value, tok, rows, cfg)
    before = {k: v.clone() for k, v in policy.named_parameters() if v.requires_grad}
    assert before and all("lora_" in k for k in before)  # only the adapters train
    first = trainer.step()
    assert first["kl"] == pytest.approx(0.0, abs=1e-5)  # LoRA B starts at 0: policy == its base
    trainer.step()
    changed = [k for k, v in policy.named_parameters() if v.requires_grad and not torch.equal(v, before[k])]
    assert changed, "the PPO step did not move the adapters"
    base_now = policy.get_base_model().state_dict()
    for k, v in frozen.items():  # the base (= the reference) is untouched
        if "lora_" not in k and k in base_now:
            assert torch.equal(base_now[k], v), k
    ro = rollout(policy, None, reward, value, tok, [r["prompt"] for r in rows[:4]], cfg)
    with policy.disable_adapter():
        expected = response_logprobs(policy, ro.input_ids, ro.attention_mask, ro.query_len)[0]
    assert torch.allclose(ro.ref_logprobs, expected)
    assert not torch.allclose(ro.logprobs * ro.mask, ro.ref_logprobs * ro.mask)  # the policy moved away


def test_the_shared_base_needs_a_peft_policy(smoke_world):
    out, _ = smoke_world
    tok, base, reward, value, rows = _parts(out, eight_bit=False)
    with pytest.raises(ValueError, match="peft"):
        PPOTrainer(base, None, reward, value, tok, rows, PPOConfig(batch_size=8, minibatch_size=4))
    with pytest.raises(ValueError, match="peft"):
        reference_logprobs(base, None, torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long), 2)


def test_chunked_forward_passes_equal_the_whole_batch(smoke_world):
    out, _ = smoke_world
    tok, base, reward, value, rows = _parts(out, eight_bit=False)
    cfg = PPOConfig(batch_size=6, max_new_tokens=6)
    ro = rollout(base.eval(), base, reward, value, tok, [r["prompt"] for r in rows[:6]], cfg)
    args = (ro.input_ids, ro.attention_mask, ro.query_len)
    with torch.no_grad():
        for fn in (lambda *a: response_logprobs(base, *a)[0], lambda *a: token_values(value, *a)):
            assert torch.allclose(in_chunks(fn, 4, *args), fn(*args), atol=1e-5)
