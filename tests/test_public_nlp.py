"""The world's public NLP questions (App. C.2) and the RM's start fine-tuned on them."""
import json
from dataclasses import replace

import pytest
import torch

from igpt_lib.config import get_preset
from igpt_lib.world.public_nlp import LEFT_OUT, OPTIONS, multiple_choice
from igpt_lib.world.tasks import TASKS
from igpt_lib.world.vocab import TOXIC


def test_questions_have_one_checked_right_answer_and_distinct_wrong_ones():
    rows = multiple_choice(600, seed=7)
    assert rows == multiple_choice(600, seed=7)                      # deterministic
    assert rows != multiple_choice(600, seed=8)
    assert {r["task"] for r in rows} == set(TASKS) - set(LEFT_OUT)
    full = 0
    for r in rows:
        assert r["ranks"].count(0) == 1 and set(r["ranks"]) == {0, 1}
        assert len(set(r["responses"])) == len(r["responses"]) >= 2
        full += len(r["responses"]) == OPTIONS
        assert not any(w in TOXIC for y in r["responses"] for w in y.split())
        assert r["prompt"].startswith("Q : ") and r["prompt"].endswith(" A :")
    assert full / len(rows) > 0.95


def test_wrong_options_are_judged_worse_by_the_task():
    """Re-derive each question's task instance and check the verdicts (the task's own judge)."""
    import random
    from igpt_lib.world import public_nlp
    rng = random.Random(3)
    pools = public_nlp._pools(rng)
    captured = []
    real = public_nlp.question

    def spy(r):
        out = real(r)
        captured.append(out)
        return out
    public_nlp.question = spy
    try:
        pairs = [(public_nlp.item(rng, pools), captured[-1]) for _ in range(300)]  # the question it kept
    finally:
        public_nlp.question = real
    for row, (task, meta, prompt) in pairs:
        assert row["prompt"] == prompt
        right = row["responses"][row["ranks"].index(0)]
        assert right.split() == task.expected(meta)
        best = task.judge(meta, right.split())["quality"]
        for y, rank in zip(row["responses"], row["ranks"]):
            if rank:
                v = task.judge(meta, y.split())
                assert v["quality"] <= best - public_nlp.MIN_GAP or v["invented"] or v["fails_constraint"]


def test_excluded_prompts_never_appear():
    first = multiple_choice(400, seed=11)
    banned = {r["prompt"] for r in first[:100]}
    again = multiple_choice(400, seed=11, exclude=banned)
    assert not banned & {r["prompt"] for r in again}


def test_the_world_builds_the_rms_start_and_the_rm_starts_there(smoke_world, smoke_rm):
    from transformers import AutoModelForSequenceClassification
    from igpt_lib.reward import rm_start
    out, report = smoke_world
    preset = get_preset("smoke")
    assert preset.rm.public_nlp > 0
    info = report["public_nlp"]
    assert info["questions"] == preset.rm.public_nlp
    assert 0 <= info["final_pair_accuracy"] <= 1 and info["final_loss"] > 0   # smoke: a few steps, numbers mean nothing
    folder = out / "world" / "models" / f"{preset.rm.size}_nlp"
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    base = AutoModelForSequenceClassification.from_pretrained(out / "world" / "models" / preset.rm.size)
    assert model.config.num_labels == 1 and (folder / "model.safetensors").exists()
    trained = model.gpt_neox.layers[0].attention.query_key_value.weight
    assert not torch.equal(trained, base.gpt_neox.layers[0].attention.query_key_value.weight)  # fine-tuned
    assert rm_start(preset, out) == folder
    assert rm_start(replace(preset, rm=replace(preset.rm, public_nlp=0)), out) == out / "sft" / preset.rm.size
    metrics = json.loads((smoke_rm / "rm" / "metrics.json").read_text())
    assert metrics["start"] == f"world/models/{preset.rm.size}_nlp"


def test_a_folder_without_a_world_says_how_to_build_it(tmp_path):
    from igpt_lib.reward import rm_start
    with pytest.raises(FileNotFoundError, match="world build --preset smoke"):
        rm_start(get_preset("smoke"), tmp_path)


def test_the_key_follows_the_questions_and_the_base(tmp_path, monkeypatch):
    from igpt_lib.world import build
    preset = get_preset("smoke")
    data = {"prompts.val": [], "prompts.test": []}
    rows = build.public_nlp_rows(preset, data)
    key = build.public_nlp_key(preset, "l-abc", rows)
    assert key.startswith(f"{preset.rm.size}_nlp-")
    assert build.public_nlp_key(preset, "l-abd", rows) != key
    # how it computes is not what it learns: a fine-tune in 16-bit keeps the key (shipped starts stay found)
    plain = build.nlp_config
    monkeypatch.setattr(build, "nlp_config", lambda p: replace(plain(p), mixed_precision=True))
    assert build.public_nlp_key(preset, "l-abc", rows) == key
    monkeypatch.setattr(build, "nlp_config", lambda p: replace(plain(p), lr=plain(p).lr * 2))  # what it learns does not
    assert build.public_nlp_key(preset, "l-abc", rows) != key
    fewer = replace(preset, rm=replace(preset.rm, public_nlp=preset.rm.public_nlp - 1))
    assert build.public_nlp_key(fewer, "l-abc", build.public_nlp_rows(fewer, data)) != key
    held = {"prompts.val": [{"prompt": rows[0]["prompt"]}], "prompts.test": []}
    assert rows[0]["prompt"] not in {r["prompt"] for r in build.public_nlp_rows(preset, held)}


def test_every_cpu_question_keeps_four_options_and_a_negative_count_is_refused():
    from igpt_lib.data import read_jsonl
    from igpt_lib.world import build
    from pathlib import Path
    data = {n: read_jsonl(Path(__file__).resolve().parents[1] / "data" / f"{n}.jsonl") for n in ("prompts.val", "prompts.test")}
    cpu = get_preset("cpu")
    trial = replace(cpu, rm=replace(cpu.rm, public_nlp=16_000))     # docs item 27's count
    rows = build.public_nlp_rows(trial, data)
    assert len(rows) == 16_000 and {len(r["responses"]) for r in rows} == {OPTIONS}
    with pytest.raises(ValueError, match="public_nlp"):
        multiple_choice(-1, seed=0)


def test_the_rm_start_is_found_made_or_taken_from_the_cache(smoke_world, tmp_path):
    """A world built with the start uses its own copy; a world built before it gets one (from the
    cache here); another count is taken from the cache and leaves the world's copy alone."""
    import shutil
    from igpt_lib.world.build import ensure_public_nlp
    out, _ = smoke_world
    preset = get_preset("smoke")
    own = out / "world" / "models" / f"{preset.rm.size}_nlp"
    assert ensure_public_nlp(preset, out, log=lambda *a: None) == own      # keys agree (tokenizer reloaded from disk)
    old = tmp_path / "old"
    shutil.copytree(out / "world", old / "world", ignore=shutil.ignore_patterns(f"{preset.rm.size}_nlp"))
    logs = []
    got = ensure_public_nlp(preset, old, log=logs.append)
    assert got == old / "world" / "models" / own.name and any("cached at" in line for line in logs)
    assert (got / "model.safetensors").read_bytes() == (own / "model.safetensors").read_bytes()
    fewer = replace(preset, rm=replace(preset.rm, public_nlp=32))
    before = (own / "model.safetensors").read_bytes()
    other = ensure_public_nlp(fewer, out, log=lambda *a: None)
    assert other != own and json.loads((other / "public_nlp_log.json").read_text())["questions"] == 32
    assert (own / "model.safetensors").read_bytes() == before


def test_rm_checkpoints_resume_only_the_start_they_came_from(tmp_path):
    from dataclasses import asdict
    from igpt_lib.reward import _refuse_another_start
    cfg = get_preset("smoke").rm
    ckpt = tmp_path / "checkpoints"
    _refuse_another_start(ckpt, False, {"start": "world/models/l_nlp", "config": asdict(cfg)})
    (ckpt / "step-000010").mkdir()
    (ckpt / "step-000010" / "state.json").write_text("{}")           # a complete checkpoint
    _refuse_another_start(ckpt, True, {"start": "world/models/l_nlp", "config": asdict(cfg)})  # the same: fine
    with pytest.raises(ValueError, match="another start .*from world/models/l_nlp; now sft/l"):
        _refuse_another_start(ckpt, True, {"start": "sft/l", "config": asdict(cfg)})
    with pytest.raises(ValueError, match="another config"):
        _refuse_another_start(ckpt, True, {"start": "world/models/l_nlp", "config": asdict(replace(cfg, lr=1e-3))})
    from igpt_lib.config import recipe
    (ckpt / "start.json").write_text(json.dumps({"start": "world/models/l_nlp", "config": recipe(cfg)}))
    # float32 weights either way: a run may resume under the other precision
    _refuse_another_start(ckpt, True, {"start": "world/models/l_nlp", "config": recipe(replace(cfg, mixed_precision=True))})
    (ckpt / "start.json").unlink()                                   # checkpoints from before start.json: SFT
    with pytest.raises(ValueError, match="from sft/l; now world/models/l_nlp"):
        _refuse_another_start(ckpt, True, {"start": "world/models/l_nlp", "config": asdict(cfg)})
