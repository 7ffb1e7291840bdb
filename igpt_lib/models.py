"""Load the models every stage uses: tiny local folders or hub names, 8-bit, LoRA.

`trust_remote_code` is False unless the caller passes True. Weights we write are safetensors.
"""
import copy
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

# The residual-dropout field has a different name in each architecture.
RESIDUAL_DROPOUT_FIELDS = ("hidden_dropout", "resid_pdrop", "hidden_dropout_prob", "dropout")


def residual_dropout_field(config):
    """The name of the config's residual-dropout field, or a clear error."""
    for name in RESIDUAL_DROPOUT_FIELDS:
        if hasattr(config, name):
            return name
    raise ValueError(f"{type(config).__name__} has none of {RESIDUAL_DROPOUT_FIELDS}: "
                     "cannot set residual dropout")


def set_residual_dropout(config, p):
    """Set residual dropout on a model config (the paper's SFT uses 0.2, §3.5)."""
    setattr(config, residual_dropout_field(config), p)


def load_tokenizer(path_or_name, trust_remote_code=False):
    tok = AutoTokenizer.from_pretrained(path_or_name, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:  # Pythia and GPT-2 ship without one
        tok.pad_token = tok.eos_token
    return tok


def compute_dtype():
    """The 16-bit dtype of mixed precision on this machine: bfloat16 where the GPU has it,
    float16 on older cards (a T4, compute capability 7.5), float32 on a CPU."""
    if not torch.cuda.is_available():
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def best_device():
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device, enabled=True):
    """Mixed precision (`compute_dtype()`) for forward passes on a GPU; a no-op on a CPU or when not `enabled`."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=compute_dtype(), enabled=enabled and device.type == "cuda")


def grad_scaler(device, enabled=True):
    """Loss scaling, needed only under float16 autocast (bfloat16 has float32's range); `enabled`: autocast's."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type, enabled=enabled and device.type == "cuda" and compute_dtype() == torch.float16)


def load_causal_lm(path_or_name, residual_dropout=None, load_in_8bit=False, trust_remote_code=False, frozen_base=False):
    """A causal LM for training: optional residual dropout, optional 8-bit base weights
    (bitsandbytes; then only adapters can train, so pair it with LoRA). Weights that train are
    float32 whatever the checkpoint stores (transformers 5 loads a checkpoint in its own dtype, and
    the Pythia checkpoints are float16: AdamW on 16-bit weights loses small updates); mixed
    precision computes in 16-bit. `frozen_base`: only LoRA adapters will train, so the base is
    kept in `compute_dtype()` (half the memory on a GPU; adapters are float32 under peft)."""
    config = AutoConfig.from_pretrained(path_or_name, trust_remote_code=trust_remote_code)
    if residual_dropout is not None:
        set_residual_dropout(config, residual_dropout)
    kwargs = {"dtype": compute_dtype() if frozen_base or load_in_8bit else torch.float32}
    if load_in_8bit:
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    return AutoModelForCausalLM.from_pretrained(path_or_name, config=config,
                                                trust_remote_code=trust_remote_code, **kwargs)


def lora_config(r, alpha, dropout, task_type="CAUSAL_LM"):
    """peft LoRA on every linear layer (attention and MLP), the usual choice for small ranks."""
    from peft import LoraConfig
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                      task_type=task_type)


def save_checkpoint(model, tokenizer, folder):
    """An HF folder (safetensors) that loads with plain transformers (causal LM, RM): LoRA merged,
    dropout off (it is a training-time choice); written complete to a temp folder first,
    then each file renamed into place (the folder may also hold metrics)."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    if hasattr(model, "merge_and_unload") and not getattr(model, "is_loaded_in_8bit", False):
        model = copy.deepcopy(model).merge_and_unload()
    field = residual_dropout_field(model.config)
    train_value = getattr(model.config, field)
    setattr(model.config, field, 0.0)
    try:
        model.save_pretrained(tmp)  # safetensors
    finally:
        setattr(model.config, field, train_value)
    tokenizer.save_pretrained(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    for item in tmp.iterdir():  # file by file: OUT/sft/, OUT/rm/ also hold metrics
        os.replace(item, folder / item.name)
    tmp.rmdir()

