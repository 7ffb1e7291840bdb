"""How long each phase of a hub run should take on its preset's card: an ESTIMATE (issue 7)
from FLOPs and memory traffic, until runs with real weights on real cards replace it.

  training     tokens × P × (6 full, 4 LoRA: no weight gradients for the frozen base)
               × 4/3 with gradient checkpointing (one forward recomputed), at UTILISATION of
               the card's 16-bit tensor peak
  forwards     tokens × P × 2 (log-probs, reference, RM, value)
  generation   per decoding step: the weights read once per batch (bytes / bandwidth), never
               less than STEP_FLOOR_S; the 8-bit baseline EIGHT_BIT_SLOWDOWN× slower
Every sequence is counted at its `max_length` and every response at `max_new_tokens`, so the
estimate is an upper bound on the work (real texts are often shorter; models stop at EOS).
"""
import math
from dataclasses import dataclass

from .memory import BYTES, model_config, shape


@dataclass(frozen=True)
class Card:
    tflops: float        # dense 16-bit tensor peak (NVIDIA datasheets)
    bandwidth_gbs: float  # memory bandwidth


CARDS = {"colab-t4": Card(65, 320), "a100": Card(312, 1555)}  # T4 fp16; A100 40 GB bf16
UTILISATION = 0.3        # assumed share of the peak that HF training of 0.1-1B models reaches
STEP_FLOOR_S = 0.03      # per generated token: HF generate's per-step overhead (the H100 run of
                         # bench/hub_memory.py took 57 ms per rollout step, its forwards included)
EIGHT_BIT_SLOWDOWN = 4   # bitsandbytes 8-bit inference is "several times slower" than 16-bit
# Rows of the presets' datasets (train splits): Dolly-15k's card; HH-RLHF's four train files;
# oasst1's ranked reply groups, ≈ scaled from ../shared/data's 100-tree slice (212 groups, mean K 3.0).
ROWS = {"databricks/databricks-dolly-15k": (15_011, 1), "Anthropic/hh-rlhf": (160_800, 2),
        "OpenAssistant/oasst1": (21_000, 3)}  # name -> (rows, responses per row)


def estimate(preset):
    """Minutes per phase of `preset`'s hub run on its card ({phase: minutes}); hub names
    missing from ROWS (local files, other datasets) count as 0 rows."""
    from .config import get_preset
    preset = get_preset(preset) if isinstance(preset, str) else preset
    hub, card = preset.hub, CARDS[preset.name]
    flops = card.tflops * 1e12 * UTILISATION

    def params(name, head="causal_lm"):
        return shape(model_config(name), head=head).params

    def train_s(p, tokens, lora, checkpointing):
        return tokens * p * (4 if lora else 6) * (4 / 3 if checkpointing else 1) / flops

    def decode_s(p, steps, bits=None):
        weights = p * (BYTES[f"int{bits}"] if bits else 2)
        return steps * max(weights / (card.bandwidth_gbs * 1e9), STEP_FLOOR_S) * (EIGHT_BIT_SLOWDOWN if bits else 1)

    sft, rm, ppo, ev = preset.sft, preset.rm, preset.ppo, preset.eval
    demos = ROWS.get(hub.sft_data, (0, 1))[0] * 0.95  # split_by_user keeps ~95 % for training
    eval_steps = sft.epochs * math.ceil(sft.eval_prompts / sft.eval_batch_size) * sft.max_new_tokens
    minutes = {"sft": sum(train_s(params(n), demos * sft.epochs * sft.max_length, sft.lora_r, sft.gradient_checkpointing)
                          + decode_s(params(n), eval_steps) for n in hub.policies) / 60}
    sets = [ROWS.get(s, (0, 1)) for s in hub.rm_data]
    n_sets = sum(n for n, _ in sets) * 0.95
    mean_k = sum(n * k for n, k in sets) / max(sum(n for n, _ in sets), 1)
    if hub.rm_max_sets:
        n_sets = min(n_sets, hub.rm_max_sets)
    rm_p = params(hub.reward_model, "classifier")
    minutes["rm"] = train_s(rm_p, n_sets * mean_k * rm.max_length * rm.epochs, False, rm.gradient_checkpointing) / 60
    policy, seq = params(hub.policies[0]), hub.max_prompt_tokens + ppo.max_new_tokens
    rollout = decode_s(policy, ppo.max_new_tokens) + ppo.batch_size * seq * 2 * (2 * policy + 2 * rm_p) / flops
    update = ppo.ppo_epochs * (train_s(policy, ppo.batch_size * seq, bool(ppo.lora_r), ppo.gradient_checkpointing)
                               + train_s(rm_p, ppo.batch_size * seq, False, ppo.gradient_checkpointing))
    minutes["ppo"] = ppo.iterations * (rollout + update) / 60
    batches = math.ceil(hub.eval_prompts / hub.baseline_batch_size) * ppo.max_new_tokens * ev.samples
    minutes["eval"] = (sum(decode_s(params(n), batches) for n in (*hub.policies, hub.policies[0]))
                       + decode_s(params(hub.baseline), batches, hub.baseline_bits)) / 60
    return minutes


def table():
    """README: estimated minutes per phase of each hub preset on its card."""
    rows = ["| preset (card) | SFT | RM | PPO | evaluation | total |", "|---|---:|---:|---:|---:|---:|"]
    for name in CARDS:
        m = estimate(name)
        rows.append(f"| `{name}` | " + " | ".join(f"{v:.0f}" for v in m.values()) + f" | {sum(m.values()):.0f} |")
    return "\n".join(rows)
