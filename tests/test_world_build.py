"""The smoke world end to end: world.json, reloadable models, cache, determinism."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from igpt_lib.config import get_preset
from igpt_lib.world.build import build_world
from igpt_lib.world.pretrain import pretrain
from igpt_lib.world.tokenizer import train_tokenizer
from igpt_lib.world.corpus import make_corpus

REPO = Path(__file__).resolve().parents[1]


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


def test_shipped_base_models_come_first_and_equal_pretraining(smoke_world, tmp_path, monkeypatch):
    """A model in data/base_models (here: a stand-in folder) is used before the cache and before
    pretraining; `force_pretrain=True` trains it again, to the same bytes."""
    from igpt_lib.world import build
    out, report = smoke_world
    logs = []
    build_world(get_preset("smoke"), tmp_path / "a", log=logs.append)
    cached = [Path(line.split("cached at ")[1]) for line in logs if "cached at " in line]
    models = [*report["param_counts"], f"{get_preset('smoke').rm.size}_nlp"]  # the sizes, and the RM's start
    assert len(cached) == len(models)                               # every one came from the cache
    shipped = tmp_path / "shipped"
    for folder in cached:
        shutil.copytree(folder, shipped / folder.name)
    monkeypatch.setattr(build, "shipped_root", lambda: shipped)
    monkeypatch.setenv("IGPT_CACHE", str(tmp_path / "empty_cache"))
    logs = []
    build_world(get_preset("smoke"), tmp_path / "b", log=logs.append)
    assert sum("shipped with the kit" in line for line in logs) == len(cached)
    assert not (tmp_path / "empty_cache").exists()
    logs = []
    build_world(get_preset("smoke"), tmp_path / "c", log=logs.append, force_pretrain=True)
    assert not any("shipped" in line for line in logs if line.startswith("  "))
    for name in models:
        for run in ("b", "c"):
            assert ((tmp_path / run / "world" / "models" / name / "model.safetensors").read_bytes()
                    == (out / "world" / "models" / name / "model.safetensors").read_bytes())


def test_the_shipped_base_models_are_the_cpu_worlds(tmp_path):
    """data/base_models holds exactly the cpu preset's base models and its RM's public-NLP start
    (their content keys), so a change to the world that would need new weights fails here instead
    of silently training them."""
    from igpt_lib.data import read_jsonl
    from igpt_lib.world import build
    preset = get_preset("cpu")
    cfg = preset.world
    tokenizer, tokens = build._corpus_and_tokenizer(cfg, tmp_path)
    keys = build.base_model_keys(cfg, tokenizer, tokens)
    data = {name: read_jsonl(REPO / "data" / f"{name}.jsonl") for name in ("prompts.val", "prompts.test")}
    nlp = [build.public_nlp_key(preset, keys[preset.rm.size], build.public_nlp_rows(preset, data))] \
        if preset.rm.public_nlp else []                              # the RM's start, where the preset has one
    shipped = build.shipped_root()
    assert sorted(p.name for p in shipped.iterdir() if p.is_dir()) == sorted([*keys.values(), *nlp])
    for key in nlp:
        log = json.loads((shipped / key / "public_nlp_log.json").read_text())
        assert log["questions"] == preset.rm.public_nlp and log["recipe"] == build.NLP_RECIPE
    for size in cfg.sizes:
        config = json.loads((shipped / keys[size.name] / "config.json").read_text())
        assert (config["hidden_size"], config["num_hidden_layers"]) == (size.hidden, size.layers)
        assert json.loads((shipped / keys[size.name] / "pretrain_log.json").read_text())["tokens"] \
            == size.pretrain_tokens
