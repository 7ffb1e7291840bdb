"""Peak GPU memory of each phase of a hub run, estimated before anything is loaded (issue 7).

`plan(preset)` counts each model's parameters exactly (the architecture is built on the
`meta` device: nothing is allocated or downloaded) and adds what each phase keeps alive:
  weights      params × bytes of their dtype; 8-bit/4-bit (bitsandbytes) quantises the linear
               layers only: embeddings, norms and the output head stay 16-bit
  training     per trainable parameter: fp32 weight and gradient, AdamW's two moments and the
               one-parameter-sized temporary of its foreach update (4 + 4 + 8 + 4 B; 8-bit AdamW
               4 + 4 + 2 B). LoRA trains r·(in + out) per linear layer
  activations  per layer b·s·h·(34 + 5·a·s/h) bytes in 16-bit (Korthikanti et al. 2022; the
               attention-score term only where scores are materialised: CPU, eager attention; GPUs
               use memory-efficient attention), doubled in fp32; gradient checkpointing keeps
               2·b·s·h per layer plus one layer's full set. Plus the logits: b·s·V × 12 B in
               16-bit (logits, fp32 upcast, both gradients), 8 B in fp32, + 12 B under LoRA (measured)
  kv_cache     2 · layers · b · s · (kv heads · head dim) × 2 B while generating
  forward      an inference forward pass of b rows (a judge's batch, a generation's prefill) holds
               one layer's transient b·s·(24·h + c·a·s·2) bytes in 16-bit (c = 3 attention-score
               matrices with DeBERTa's relative attention, else 1): fitted to the GPU measurements
               of the judge and the 8-bit baseline (docs/memory.md), not derived
A phase's peak is the sum over the models alive in it; `total_gib` is the largest phase. The
estimate is checked against measured peaks (docs/memory.md, `python bench/memory_check.py`).
"""
from dataclasses import dataclass, field

import torch

GIB = 2 ** 30
JUDGE_BATCH, JUDGE_LENGTH = 16, 512  # hub.judge_scores' defaults
BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "int4": 0.5 + 4 / 64}  # int4: + absmax per 64
HEADS = ("embed_out", "lm_head", "score", "classifier")  # output layers bitsandbytes leaves unquantised

# Architectures of the presets' hub models, so a plan needs no network (Pythia: Biderman et al.
# 2023, Table 1; its configs on the hub). Anything else is read with AutoConfig.
_PYTHIA = {"70m": (512, 6, 8, 50304), "160m": (768, 12, 12, 50304), "410m": (1024, 24, 16, 50304),
           "1b": (2048, 16, 8, 50304), "1.4b": (2048, 24, 16, 50304), "2.8b": (2560, 32, 32, 50304),
           "6.9b": (4096, 32, 32, 50432), "12b": (5120, 36, 40, 50688)}  # hidden, layers, heads, vocab
KNOWN = {f"EleutherAI/pythia-{size}{dedup}": dict(
    model_type="gpt_neox", hidden_size=h, num_hidden_layers=n, num_attention_heads=a, intermediate_size=4 * h,
    vocab_size=v, max_position_embeddings=2048, rotary_pct=0.25, tie_word_embeddings=False)
    for size, (h, n, a, v) in _PYTHIA.items() for dedup in ("", "-deduped")}
KNOWN["OpenAssistant/reward-model-deberta-v3-large-v2"] = dict(
    model_type="deberta-v2", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
    intermediate_size=4096, vocab_size=128100, max_position_embeddings=512, relative_attention=True,
    position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
    position_biased_input=False, type_vocab_size=0, num_labels=1)


def model_config(name):
    """The config of a hub name or local folder; the presets' models without the network."""
    from transformers import AutoConfig
    if name in KNOWN:
        kwargs = dict(KNOWN[name])
        return AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    return AutoConfig.from_pretrained(name)


@dataclass
class Shape:
    """What the estimate needs of an architecture, read off a model built on the meta device."""
    params: int
    linear: int            # parameters in quantisable linear layers (not the output head)
    linear_dims: list      # (in, out) of each of those layers, for LoRA
    hidden: int
    heads: int
    layers: int
    vocab: int
    kv_dim: int
    relative: bool = False  # DeBERTa's relative attention: three attention-score matrices


def shape(config, head="causal_lm"):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    auto = AutoModelForCausalLM if head == "causal_lm" else AutoModelForSequenceClassification
    with torch.device("meta"):
        model = auto.from_config(config)
    dims = [(m.in_features, m.out_features) for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and name.split(".")[-1] not in HEADS]
    heads = config.num_attention_heads
    kv_dim = getattr(config, "num_key_value_heads", None) or heads
    return Shape(params=sum(p.numel() for p in model.parameters()), linear=sum(i * o for i, o in dims),
                 linear_dims=dims, hidden=config.hidden_size, heads=heads, layers=config.num_hidden_layers,
                 vocab=config.vocab_size if head == "causal_lm" else 1,
                 kv_dim=kv_dim * (config.hidden_size // heads),
                 relative=bool(getattr(config, "relative_attention", False)))


@dataclass
class ModelMemory:
    """One model's share of one phase, in GiB."""
    name: str
    role: str              # policy, reference, reward_model, value_model, baseline, gold_judge
    phase: str             # sft, rm, ppo, baseline, judge
    params: int
    weights_gib: float
    training_gib: float = 0.0
    activations_gib: float = 0.0
    kv_cache_gib: float = 0.0

    @property
    def total_gib(self):
        return self.weights_gib + self.training_gib + self.activations_gib + self.kv_cache_gib


def estimate(name, role, phase, shp, dtype="float16", bits=None, train=None, lora_r=0, batch=1, seq=1,
             generate=0, checkpointing=True, optimizer="adamw_torch", attention_scores=False, forward=0):
    """One model in one phase. `train`: None (inference), "full" or "lora"; `generate`: rows
    whose KV cache is kept (prompt + response of `seq` tokens; their prefill is a forward pass);
    `forward`: rows of an inference forward pass of `seq` tokens; `attention_scores`: the
    attention matrix is materialised (CPU, eager attention)."""
    act_bytes = BYTES[dtype]
    if bits:  # linear layers quantised, the rest in the compute dtype
        weights = shp.linear * BYTES[f"int{bits}"] + (shp.params - shp.linear) * act_bytes
    elif train == "full":
        weights = 0  # the fp32 master copy is counted with the training state
    else:
        weights = shp.params * act_bytes
    trainable = {"full": shp.params, "lora": sum(lora_r * (i + o) for i, o in shp.linear_dims)}.get(train, 0)
    opt_bytes = 2 if optimizer == "adamw_8bit" else 8 + 4  # + the foreach update's temporary
    training = trainable * (4 + 4 + opt_bytes)
    activations = 0
    if train and batch:
        factor = 34 + (5 * shp.heads * seq / shp.hidden if attention_scores else 0)
        per_layer = factor * batch * seq * shp.hidden * act_bytes / 2
        kept = 2 * batch * seq * shp.hidden * act_bytes / 2
        activations = (shp.layers * kept + per_layer) if checkpointing else shp.layers * per_layer
        # logits: measured on CPU, a frozen output layer (LoRA) costs ~12 B more per logit than a
        # trained one (bench/memory_check.py; the cause is not traced yet, so it is counted as measured)
        activations += batch * seq * shp.vocab * ((8 if act_bytes == 4 else 12) + (12 if train == "lora" else 0))
    kv = 2 * shp.layers * generate * seq * shp.kv_dim * act_bytes if generate else 0
    rows = forward or generate
    if rows and not train:  # one layer's transient of an inference forward (fitted: module docstring)
        activations += rows * seq * (24 * shp.hidden + (3 if shp.relative else 1) * shp.heads * seq * 2) * act_bytes / 2
    return ModelMemory(name, role, phase, shp.params, weights / GIB, training / GIB, activations / GIB, kv / GIB)


@dataclass
class Plan:
    preset: str
    models: list
    phases: dict                          # phase -> peak GiB
    budget_gib: float
    advice: list = field(default_factory=list)

    @property
    def total_gib(self):
        return max(self.phases.values())

    @property
    def fits(self):
        return self.total_gib <= self.budget_gib

    def table(self):
        """Markdown: one row per model and phase, then the phase peaks."""
        rows = ["| phase | role | model | params | weights | training | activations | KV cache | total |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for m in self.models:
            rows.append(f"| {m.phase} | {m.role} | {m.name} | {m.params / 1e6:,.0f}M | {m.weights_gib:.2f} | "
                        f"{m.training_gib:.2f} | {m.activations_gib:.2f} | {m.kv_cache_gib:.2f} | {m.total_gib:.2f} |")
        peaks = ", ".join(f"{p} {g:.2f}" for p, g in self.phases.items())
        rows.append(f"\nPeak per phase (GiB): {peaks}. **Total (largest phase): {self.total_gib:.2f} GiB** "
                    f"of {self.budget_gib:g} GiB.")
        return "\n".join(rows)


def plan(preset, dtype="float16", k_max=9):
    """Peak memory of each phase of `preset`'s hub run (a preset name or a Preset), with
    advice when the largest phase does not fit `hub.gpu_gib`. Phases run one after another
    and free their models: sft, rm, ppo_rollout / ppo_update (the same resident models; the
    KV cache and the training activations are never alive together), baseline, judge.
    `k_max`: most responses per RM prompt (OpenAssistant: 9)."""
    from .config import get_preset
    preset = get_preset(preset) if isinstance(preset, str) else preset
    hub = preset.hub
    if hub is None:
        raise ValueError(f"preset {preset.name!r} is an offline-world preset; memory.plan is for the hub "
                         "presets (colab-t4, a100)")
    sft, rmc, ppo = preset.sft, preset.rm, preset.ppo
    sft_seq, rm_seq, ppo_seq = sft.max_length, rmc.max_length, hub.max_prompt_tokens + ppo.max_new_tokens
    name = hub.policies[-1]  # the largest policy is the one that has to fit
    policy, rm = shape(model_config(name)), shape(model_config(hub.reward_model), head="classifier")

    def train(cfg, seq, batch, rows=0):
        lora = getattr(cfg, "lora_r", 0)
        return dict(bits=8 if getattr(cfg, "load_in_8bit", False) else None, train="lora" if lora else "full",
                    lora_r=lora, checkpointing=cfg.gradient_checkpointing, seq=seq, batch=batch, generate=rows,
                    optimizer="adamw_8bit" if getattr(cfg, "optim", "") == "adamw_bnb_8bit" else "adamw_torch")
    models = [estimate(name, "policy", "sft", policy, **train(sft, sft_seq, sft.batch_size), dtype=dtype),
              estimate(hub.reward_model, "reward_model", "rm", rm, **train(rmc, rm_seq, rmc.batch_prompts * k_max),
                       dtype=dtype)]
    value = dict(train="full", checkpointing=ppo.gradient_checkpointing, seq=ppo_seq, dtype=dtype)
    for phase in ("ppo_rollout", "ppo_update"):
        update = phase == "ppo_update"
        pol = estimate(name, "policy", phase, policy, dtype=dtype,
                       **train(ppo, ppo_seq, ppo.minibatch_size if update else 0, 0 if update else ppo.batch_size))
        models += [pol, estimate(hub.reward_model, "reward_model", phase, rm, dtype=dtype),
                   estimate(hub.reward_model, "value_model", phase, rm, batch=ppo.minibatch_size if update else 0,
                            **value)]
        if not update:  # log-probs of the rollout, forward_batch_size rows at a time: the policy's fp32
            from .ppo import FORWARD_ROWS  # logits stay while the reference's are made (the exact KL needs both)
            rows = min(ppo.forward_batch_size or FORWARD_ROWS, ppo.batch_size)
            pol.activations_gib = rows * ppo_seq * policy.vocab * 12 / GIB
        if not ppo.lora_r:  # full fine-tuning keeps a frozen copy as the KL reference
            models.append(estimate(name, "reference", phase, policy, dtype=dtype))
    models += [estimate(hub.baseline, "baseline", "baseline", shape(model_config(hub.baseline)),
                        bits=hub.baseline_bits, generate=hub.baseline_batch_size, seq=ppo_seq, dtype=dtype),
               # the judge is loaded as stored: public reward models ship float32 (OpenAssistant's does)
               estimate(hub.gold_judge, "gold_judge", "judge", shape(model_config(hub.gold_judge), head="classifier"),
                        dtype="float32", forward=JUDGE_BATCH, seq=JUDGE_LENGTH)]
    phases = {}
    for m in models:
        phases[m.phase] = phases.get(m.phase, 0.0) + m.total_gib
    result = Plan(preset.name, models, phases, hub.gpu_gib)
    result.advice = [] if result.fits else advice(result, preset)
    return result


def advice(result, preset):
    """What to change, largest saving first, for the phase that does not fit."""
    phase = max(result.phases, key=result.phases.get)
    alive = [m for m in result.models if m.phase == phase]
    worst = max(alive, key=lambda m: m.total_gib)
    tips = [f"phase {phase!r} needs {result.phases[phase]:.1f} GiB of {result.budget_gib:g}; "
            f"the largest share is the {worst.role} ({worst.name}, {worst.total_gib:.1f} GiB)"]
    if phase == "baseline" and preset.hub.baseline_bits == 8:
        tips.append("hub.baseline_bits=4 (4-bit weights, about half of 8-bit)")
    if worst.activations_gib > worst.weights_gib:
        tips.append("gradient_checkpointing=True in the stage's config, a smaller batch (sft.batch_size, "
                    "rm.batch_prompts, ppo.minibatch_size / forward_batch_size) or hub.max_prompt_tokens")
    if worst.kv_cache_gib > 1:
        tips.append("a smaller ppo.batch_size or hub.baseline_batch_size (the KV cache grows with it)")
    if worst.training_gib > 1:
        tips.append("lora_r > 0 for the policy, or sft.optim='adamw_bnb_8bit' (8-bit AdamW)")
    if worst.weights_gib > 1 and phase != "baseline":
        tips.append("sft.load_in_8bit=True for the policy base, or a smaller model")
    return tips
