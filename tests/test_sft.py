"""Step 1: SFT with trl.SFTTrainer on the smoke world; adapters, LoRA and 8-bit on CPU."""
import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from igpt_lib import data as D
from igpt_lib.cli import main
from igpt_lib.config import SFTConfig, get_preset
from igpt_lib.models import load_tokenizer
from igpt_lib.sft import to_trl_dataset, train_sft

DOLLY = [  # the Dolly-15k schema, rows of our own
    {"instruction": "Name a primary colour.", "context": "", "response": "Red.", "category": "open_qa"},
    {"instruction": "Summarise the text.", "context": "Cats sleep a lot.", "response": "Cats sleep much.",
     "category": "summarization"},
]


def _world(smoke_world):
    out, _ = smoke_world
    wdata = out / "world" / "data"
    return (out, load_tokenizer(out / "world" / "tokenizer"),
            D.load_demonstrations(wdata / "demonstrations.train.jsonl"),
            D.load_demonstrations(wdata / "demonstrations.val.jsonl"),
            D.load_prompts(wdata / "prompts.val.jsonl")[:8])


def test_few_epochs_lower_the_loss_and_save_a_plain_checkpoint(smoke_world, tmp_path):
    out, tok, train, val, prompts = _world(smoke_world)
    cfg = SFTConfig(epochs=3, lr=3e-3, lr_by_size=(), eval_prompts=8)
    metrics = tmp_path / "metrics.jsonl"
    choice = train_sft(out / "world" / "models" / "s", tok, train, val, prompts, cfg,
                       tmp_path / "s", "s", metrics, progress=False)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] - 0.3
    assert rows[-1]["train_loss"] < rows[1]["train_loss"]
    assert choice["epoch"] in (0, 1, 2, 3) and "validation score" in choice["why"]
    assert (tmp_path / "s" / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "s")
    assert AutoConfig.from_pretrained(tmp_path / "s").hidden_dropout == 0.0  # dropout: training only
    assert model.config.vocab_size == len(tok)


def test_the_best_scoring_epoch_is_kept(smoke_world, tmp_path):
    out, tok, train, val, prompts = _world(smoke_world)
    scores = iter([0.1, 0.9, 0.2])  # epochs 0, 1, 2

    def scorer(rows, responses):
        return [next(scores)] * len(rows)

    cfg = SFTConfig(epochs=2, lr=3e-3, lr_by_size=(), eval_prompts=8)
    choice = train_sft(out / "world" / "models" / "xs", tok, train, val, prompts, cfg,
                       tmp_path / "xs", "xs", tmp_path / "m.jsonl", scorer=scorer, progress=False)
    assert choice["epoch"] == 1 and choice["score"] == 0.9


def test_completion_only_labels_mask_the_prompt(smoke_world):
    """TRL's batches carry −100 on prompt and padding, the response and <eos> counted."""
    import trl
    from igpt_lib.sft import trl_args
    out, tok, train, val, _ = _world(smoke_world)
    model = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / "xs")
    trainer = trl.SFTTrainer(model=model, args=trl_args(SFTConfig(batch_size=4), "/tmp/unused", False),
                             train_dataset=to_trl_dataset(train[:4]),
                             eval_dataset=to_trl_dataset(val[:4]), processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        counted = [t for t, lab in zip(ids.tolist(), labels.tolist()) if lab != -100]
        text = tok.decode(counted)
        row = next(r for r in train[:4] if text == r["response"] + " <eos>")
        assert tok.decode([t for t in ids.tolist() if t != tok.pad_token_id]).startswith(row["prompt"])


def test_dolly_adapter_maps_to_our_schema(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DOLLY))
    rows = D.load_demonstrations_any(path)
    D.validate(rows, "demonstrations")
    assert rows[0]["prompt"] == "\n\nHuman: Name a primary colour.\n\nAssistant:"
    assert "\n\nCats sleep a lot.\n\nAssistant:" in rows[1]["prompt"] and rows[1]["task"] == "summarization"
    path.write_text(json.dumps({"instruction": "x", "response": " "}) + "\n")
    with pytest.raises(D.DataError, match=r"dolly\.jsonl:1: field 'response' is missing or empty"):
        D.load_demonstrations_any(path)


@pytest.mark.parametrize("eight_bit", [False, True], ids=["lora", "lora-8bit"])
def test_lora_and_8bit_sft_on_cpu(smoke_world, tmp_path, eight_bit):
    out, tok, train, val, prompts = _world(smoke_world)
    cfg = SFTConfig(epochs=1, lr=1e-2, eval_prompts=4, lora_r=4, load_in_8bit=eight_bit)
    train_sft(out / "world" / "models" / "l", tok, train[:16], val[:8], prompts[:4], cfg,
              tmp_path / "l", "l", tmp_path / "m.jsonl", progress=False)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "l")  # merged, or base + adapter
    ids = tok("Q : add 2 and 3 A :", return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(ids).logits).all()


def test_8bit_needs_lora():
    with pytest.raises(ValueError, match="load_in_8bit=True needs lora_r > 0"):
        SFTConfig(load_in_8bit=True)


def test_cli_sft_with_model_and_dolly_dataset(smoke_world, tmp_path):
    out, *_ = _world(smoke_world)
    path = tmp_path / "dolly.jsonl"
    path.write_text("".join(json.dumps({**DOLLY[i % 2], "instruction": f"q {i}"}) + "\n" for i in range(60)))
    run = tmp_path / "run"
    assert main(["sft", "--preset", "smoke", "--out", str(run), "--model",
                 str(out / "world" / "models" / "xs"), "--dataset", str(path)]) == 0
    assert AutoModelForCausalLM.from_pretrained(run / "sft") is not None
    summary = json.loads((run / "sft" / "summary.json").read_text())
    assert "no scorer" in summary["models"]["xs"]["why"]  # Dolly answers are not checkable


def test_cli_sft_on_the_world_writes_every_size(smoke_world, tmp_path):
    out, _ = smoke_world
    import shutil
    shutil.copytree(out, tmp_path / "run")
    assert main(["sft", "--preset", "smoke", "--out", str(tmp_path / "run")]) == 0
    sft = tmp_path / "run" / "sft"
    sizes = [s.name for s in get_preset("smoke").world.sizes]
    assert all((sft / s / "model.safetensors").exists() for s in sizes)
    assert (sft / "model.safetensors").read_bytes() == (sft / sizes[0] / "model.safetensors").read_bytes()
    rows = [json.loads(line) for line in (sft / "metrics.jsonl").read_text().splitlines()]
    assert {r["size"] for r in rows} == set(sizes)
    assert all({"train_loss", "val_loss", "score"} <= set(r) for r in rows)
    assert (tmp_path / "run" / "figures" / "sft_curves.png").exists()
    summary = json.loads((sft / "summary.json").read_text())["models"]
    assert all("test_gold" in v and "base_test_gold" in v for v in summary.values())


def test_mixed_precision_on_a_gpu_is_the_configs_choice(monkeypatch, tmp_path):
    from igpt_lib import sft
    monkeypatch.setattr(sft.torch.cuda, "is_available", lambda: True)        # as on a GPU with bf16 (an A100)
    monkeypatch.setattr(sft.torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(sft.trl, "SFTConfig", lambda **kw: kw)             # the arguments TRL would get
    assert sft.trl_args(SFTConfig(), tmp_path, False)["bf16"] is False      # offline presets: float32
    on = sft.trl_args(SFTConfig(mixed_precision=True), tmp_path, False)
    assert on["bf16"] is True and on["fp16"] is False and on["use_cpu"] is False
    monkeypatch.setattr(sft.torch.cuda, "is_bf16_supported", lambda: False)  # a T4
    assert sft.trl_args(SFTConfig(mixed_precision=True), tmp_path, False)["fp16"] is True


def test_learning_rate_per_size():
    cfg = SFTConfig(lr=1e-3, lr_by_size=(("xs", 1e-2),))
    assert cfg.lr_for("xs") == 1e-2 and cfg.lr_for("l") == 1e-3 and cfg.lr_for(None) == 1e-3


def test_a_nan_training_loss_stops_sft_naming_the_saved_epoch(tmp_path):
    import math
    from types import SimpleNamespace

    from igpt_lib.sft import EpochSelector
    selector = EpochSelector(None, [], None, SFTConfig(), tmp_path / "xs", "xs", tmp_path / "m.jsonl")
    selector.best = (3, 0.2)
    state = SimpleNamespace(epoch=4.0, global_step=120)
    args = SimpleNamespace(save_strategy="epoch", output_dir=str(tmp_path / "checkpoints" / "xs"))
    selector.on_log(args, state, None, logs={"loss": 1.5})
    with pytest.raises(FloatingPointError, match=r"sft xs: training loss is nan at epoch 4 \(step 120\).*epoch so far "
                                                 r"\(3\).*state at each epoch end is in .*checkpoints/xs"):
        selector.on_log(args, state, None, logs={"loss": math.nan})
