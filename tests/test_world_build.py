"""The smoke world end to end: world.json, reloadable models, cache, determinism."""
import json
from dataclasses import replace

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from igpt_lib.config import get_preset
from igpt_lib.world.build import build_world
from igpt_lib.world.pretrain import pretrain
from igpt_lib.world.tokenizer import train_tokenizer
from igpt_lib.world.corpus import make_corpus


def test_world_json_has_the_promised_fields(smoke_world):
    out, report = smoke_world
    on_disk = json.loads((out / "world.json").read_text())
    assert on_disk["param_counts"] == report["param_counts"]
    sizes = [s.name for s in get_preset("smoke").world.sizes]
    for key in ("param_counts", "base_gold_score", "base_prompted_gold_score"):
        assert list(on_disk[key]) == sizes
    assert 0.6 < on_disk["labeler_agreement"] < 0.85
    assert all(-1 <= v <= 1 for v in on_disk["base_gold_score"].values())


def test_models_reload_with_plain_transformers(smoke_world):
    out, report = smoke_world
    tok = AutoTokenizer.from_pretrained(out / "world" / "tokenizer")
    for name, n in report["param_counts"].items():
        folder = out / "world" / "models" / name
        assert (folder / "model.safetensors").exists()
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert sum(p.numel() for p in model.parameters()) == n
        ids = tok("Q : add 2 and 3 A :", return_tensors="pt")["input_ids"]
        assert model(ids).logits.shape == (1, ids.shape[1], len(tok))


def test_rebuild_reuses_the_cache_and_gives_the_same_world(smoke_world, tmp_path):
    out, report = smoke_world
    logs = []
    again = build_world(get_preset("smoke"), tmp_path, log=logs.append)
    assert any("cached" in line for line in logs)
    for key in ("base_gold_score", "base_prompted_gold_score", "labeler_agreement", "param_counts"):
        assert again[key] == report[key]
    for name in report["param_counts"]:
        a = (out / "world" / "models" / name / "model.safetensors").read_bytes()
        b = (tmp_path / "world" / "models" / name / "model.safetensors").read_bytes()
        assert a == b


def test_pretraining_is_deterministic_and_lowers_the_loss():
    tok = train_tokenizer(make_corpus(20_000, seed=0))
    ids = tok(" <eos> ".join(make_corpus(20_000, seed=0)))["input_ids"]
    size = replace(get_preset("smoke").world.sizes[0], pretrain_tokens=32 * 64 * 30)
    a, losses = pretrain(size, tok, ids, 64, 32, seed=3, progress=False)
    b, _ = pretrain(size, tok, ids, 64, 32, seed=3, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert sum(losses[-5:]) / 5 < losses[0] - 0.3
