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
from igpt_lib.ppo import in_chunks, policy_and_reference, reference_logprobs, response_logprobs, rollout, token_values
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
    """Chunks of similar length, each without its all-padding columns, give the whole batch's
    values on every response token (to float rounding), in the original row order."""
    out, _ = smoke_world
    tok, base, reward, value, rows = _parts(out, eight_bit=False)
    cfg = PPOConfig(batch_size=6, max_new_tokens=6)
    import copy
    ref = copy.deepcopy(base).eval()  # a reference the policy differs from, so the exact KL is not 0
    with torch.no_grad():
        ref.get_output_embeddings().weight.add_(torch.randn(ref.get_output_embeddings().weight.shape,
                                                            generator=torch.Generator().manual_seed(0)))
    ro = rollout(base.eval(), ref, reward, value, tok, [r["prompt"] for r in rows[:6]], cfg)
    args = (ro.input_ids, ro.attention_mask, ro.query_len)
    with torch.no_grad():
        for fn in (lambda *a: response_logprobs(base, *a)[0], lambda *a: token_values(value, *a)):
            for rows in (4, 2, None):
                chunked = in_chunks(fn, rows, *args)
                assert chunked.shape == ro.mask.shape
                assert torch.allclose(chunked[ro.mask], fn(*args)[ro.mask], atol=1e-5)
        both = lambda *a: policy_and_reference(base, ref, *a)  # noqa: E731  (B, T, 3): log π, log π_SFT, KL
        for rows in (4, None):
            chunked = in_chunks(both, rows, *args)
            assert chunked.shape == (*ro.mask.shape, 3)
            assert torch.allclose(chunked[ro.mask], both(*args)[ro.mask], atol=1e-5)
        assert torch.allclose(chunked[..., 2][ro.mask], ro.kl_tokens[ro.mask], atol=1e-5)
        assert (ro.kl_tokens[ro.mask] > 0.01).all()


# --- the hub pipeline end to end, on local folders and files in the hub's schemas ---------------

WORDS = ("the a cat dog tree river city music code water light green fast slow happy cold warm book "
         "write tell explain why how what please thanks sure no yes good bad idea story poem list").split()


def _sentence(rng, n=8):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


@pytest.fixture(scope="module")
def hub_files(tmp_path_factory):
    """Tiny GPT-NeoX "hub models" (two policy sizes, an RM base, a larger baseline, a judge)
    with a byte-level BPE tokenizer, and Dolly / HH-RLHF / OpenAssistant files of our own."""
    import json
    import random
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast
    root, rng = tmp_path_factory.mktemp("hub"), random.Random(0)
    dolly = [{"instruction": _sentence(rng, 6), "context": "", "response": _sentence(rng), "category": "open_qa"}
             for _ in range(48)]
    hh = []
    for _ in range(120):
        prompt = f"\n\nHuman: {_sentence(rng, 6)}\n\nAssistant:"
        hh.append({"chosen": f"{prompt} {_sentence(rng)}", "rejected": f"{prompt} {_sentence(rng, 3)}"})
    oa = [{"message_tree_id": f"t{i}", "prompt": {"message_id": f"m{i}", "role": "prompter", "text": _sentence(rng, 6),
                                                   "replies": [{"message_id": f"m{i}r{k}", "role": "assistant",
                                                                "text": _sentence(rng), "rank": k} for k in range(3)]}}
          for i in range(20)]
    files = {}
    for name, rows in (("dolly.jsonl", dolly), ("hh.jsonl", hh), ("oa.jsonl", oa)):
        files[name] = root / name
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = [r["instruction"] + " " + r["response"] for r in dolly] + [r["chosen"] for r in hh]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    bpe.train_from_iterator(text, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    for name, hidden, layers in (("policy-s", 32, 2), ("policy-m", 48, 2), ("rm-base", 32, 2), ("baseline", 96, 3),
                                 ("judge", 32, 1)):
        torch.manual_seed(len(name))
        config = GPTNeoXConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                               intermediate_size=4 * hidden, vocab_size=len(tok), max_position_embeddings=256,
                               eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
        GPTNeoXForCausalLM(config).save_pretrained(root / name)
        tok.save_pretrained(root / name)
        files[name] = root / name
    return files


def _hub_preset(files):
    from dataclasses import replace
    from igpt_lib.config import get_preset
    t4 = get_preset("colab-t4")
    hub = replace(t4.hub, policies=(str(files["policy-s"]), str(files["policy-m"])), baseline=str(files["baseline"]),
                  reward_model=str(files["rm-base"]), sft_data=str(files["dolly.jsonl"]),
                  rm_data=(str(files["hh.jsonl"]), str(files["oa.jsonl"])), ppo_prompts=(str(files["hh.jsonl"]),),
                  gold_judge=str(files["judge"]), max_prompt_tokens=32, eval_prompts=6, baseline_batch_size=8)
    return replace(t4, hub=hub,
                   sft=replace(t4.sft, epochs=1, batch_size=8, max_length=64, eval_prompts=4, max_new_tokens=6),
                   rm=replace(t4.rm, batch_prompts=8, max_length=64, lr=1e-3, save_every=5),
                   ppo=replace(t4.ppo, iterations=2, batch_size=8, minibatch_size=4, forward_batch_size=4,
                               max_new_tokens=6, max_length=64, save_every=1, lr=1e-3),
                   eval=replace(t4.eval, prompts=6))


def test_hub_pipeline_end_to_end_on_local_files(hub_files, tmp_path):
    """SFT (LoRA) of both policy sizes on Dolly-schema data, the K-way RM on HH + OA, PPO with
    the shared base, then the headline against an 8-bit baseline judged by the gold judge."""
    import json
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from igpt_lib import hub
    preset, out = _hub_preset(hub_files), tmp_path / "run"
    report = hub.reproduce(preset, out, log=lambda *a: None, progress=False)
    for size in ("policy-s", "policy-m"):  # merged LoRA: plain causal-LM folders
        assert AutoModelForCausalLM.from_pretrained(out / "sft" / size)
    AutoModelForSequenceClassification.from_pretrained(out / "rm")
    rm = json.loads((out / "rm" / "metrics.json").read_text())
    assert abs(rm["demo_mean_after"]) < 1e-4 and rm["val_accuracy"]["pairs"] > 0
    metrics = [json.loads(line) for line in (out / "ppo" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(m["kl"] == m["kl"] for m in metrics)
    h = report["headline"]
    assert h["policy"] == "PPO-policy-s" and h["baseline"] == "GPT-baseline"
    assert 0 <= h["ci95"][0] <= h["win_rate"] <= h["ci95"][1] <= 1
    assert h["param_ratio"] > 5
    assert {f["model"] for f in report["figure1"]} == {"PPO-policy-s", "SFT-policy-s", "GPT-baseline"}
    assert 0 < len((out / "responses.jsonl").read_text().splitlines()) == report["prompts"] <= 6
    again = hub.reproduce(preset, out, log=lambda *a: None, progress=False)  # every stage is skipped
    assert again == report


def test_hub_splits_keep_each_user_on_one_side(hub_files):
    from igpt_lib import hub
    train, val = hub.comparisons(_hub_preset(hub_files).hub)
    assert train and val
    assert not {r["user_id"] for r in train} & {r["user_id"] for r in val}


def test_cli_hub_names_override_the_preset(monkeypatch, tmp_path):
    from igpt_lib import hub
    from igpt_lib.cli import main
    seen = {}
    monkeypatch.setattr(hub, "reproduce", lambda preset, out: seen.update(preset=preset, out=out))
    assert main(["reproduce", "--preset", "colab-t4", "--out", str(tmp_path), "--policies", "a/p1, b/p2",
                 "--gold-judge", "j", "--rm-data", "x.jsonl"]) == 0
    h = seen["preset"].hub
    assert h.policies == ("a/p1", "b/p2") and h.gold_judge == "j" and h.rm_data == ("x.jsonl",)
    assert h.baseline == "EleutherAI/pythia-6.9b-deduped"  # the rest stays the preset's
    with pytest.raises(SystemExit):  # hub names on an offline preset are an error, not ignored
        main(["eval", "--preset", "smoke", "--out", str(tmp_path), "--policies", "a"])
    with pytest.raises(SystemExit):  # world-only options are refused on a hub preset
        main(["reproduce", "--preset", "colab-t4", "--out", str(tmp_path), "--full"])
    with pytest.raises(ValueError, match="unknown hub name"):
        hub.with_names(seen["preset"], policy="x")


def test_ppo_refuses_an_rm_with_another_tokenizer(hub_files, smoke_world, tmp_path):
    import shutil
    from igpt_lib import hub
    preset, out = _hub_preset(hub_files), tmp_path / "run"
    shutil.copytree(hub_files["policy-s"], out / "sft" / "policy-s")
    load_tokenizer(smoke_world[0] / "world" / "tokenizer").save_pretrained(out / "rm")  # the world's word vocabulary
    with pytest.raises(ValueError, match="different tokenizers"):
        hub.run_ppo(preset, out, log=lambda *a: None, progress=False)


def test_hub_stages_refuse_an_interrupted_runs_checkpoints_without_resume(hub_files, tmp_path):
    from igpt_lib import hub
    preset, out = _hub_preset(hub_files), tmp_path / "run"
    from igpt_lib.checkpoint import PREFIX
    for stage in ("rm", "ppo"):
        found = out / stage / "checkpoints" / f"{PREFIX}000005"
        found.mkdir(parents=True)
        (found / "state.json").write_text("{}")  # a complete checkpoint, as save_state leaves it
        with pytest.raises(FileExistsError, match="--resume"):
            getattr(hub, f"run_{stage}")(preset, out, log=lambda *a: None, progress=False)


def test_weights_that_train_load_in_float32_from_a_float16_checkpoint(tmp_path):
    """transformers 5 loads a checkpoint in its stored dtype and Pythia's are float16: the RM,
    the value model and a full fine-tune must still train float32 weights (AdamW in float16 loses
    small updates); a frozen LoRA base takes the compute dtype (float32 on a CPU)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    from igpt_lib.models import compute_dtype, load_causal_lm
    from igpt_lib.reward import load_reward_model
    config = GPTNeoXConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                           vocab_size=100)
    GPTNeoXForCausalLM(config).half().save_pretrained(tmp_path)
    assert load_causal_lm(tmp_path).dtype == torch.float32
    assert load_reward_model(tmp_path).dtype == torch.float32
    assert load_causal_lm(tmp_path, frozen_base=True).dtype == compute_dtype() == torch.float32  # no GPU here
    assert load_reward_model(tmp_path, dtype=torch.float16).dtype == torch.float16


LESSONS = {  # lesson -> (hub names it needs, what its hub branch prints)
    "01_sft": (lambda f: {"policies": f"{f['policy-s']},{f['policy-m']}", "sft_data": str(f["dolly.jsonl"])},
               ["No gold labeler in the hub world", "val loss by epoch"]),
    "03_reward_model": (lambda f: {"reward_model": str(f["rm-base"]), "rm_data": f"{f['hh.jsonl']},{f['oa.jsonl']}",
                                   "sft_data": str(f["dolly.jsonl"])},
                        ["ranked sets from", "validation users  accuracy", "accuracy on validation users"]),
    "02_comparisons": (lambda f: _names(f), ["  rank 0", "One ranking per set"]),
    # 04-06 read the run that the test makes first with few steps (the preset's own would take hours)
    "04_ppo": (lambda f: _names(f), ["policy SFT-policy-s", "No gold labeler in the hub world", "LoRA r = 16",
                                     "The β sweep runs in the offline world", "PPO-ptx needs pretraining text"]),
    "05_evaluation": (lambda f: _names(f), ["models judged on", "PPO-policy-s vs GPT-baseline on",
                                            "mean judge score", "judge means:"]),
    "06_small_beats_large": (lambda f: _names(f),
                             ["judge: ", "PPO-policy-s vs GPT-baseline", "The claims need the offline world"]),
}


def _names(files):
    """Every hub name of _hub_preset(files), as a lesson's HUB parameter."""
    hub = _hub_preset(files).hub
    return {k: ",".join(v) if isinstance(v, tuple) else v
            for k, v in vars(hub).items() if k in ("policies", "baseline", "reward_model", "sft_data", "rm_data",
                                                   "ppo_prompts", "gold_judge")}


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_lessons_switch_to_a_hub_preset_by_their_parameters(lesson, hub_files, tmp_path):
    """Issue 7: PRESET = "colab-t4" (names overridden through HUB, here local files in the hub's
    schemas) is all a lesson needs: the hub stage runs, and its plots, numbers and samples come
    without a gold labeler."""
    import json
    from pathlib import Path
    import papermill as pm
    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{lesson}.ipynb"
    names, printed = LESSONS[lesson]
    if lesson in ("04_ppo", "05_evaluation", "06_small_beats_large"):
        from igpt_lib import hub
        hub.reproduce(_hub_preset(hub_files), tmp_path / "run", log=lambda *a: None, progress=False)
    pm.execute_notebook(str(path), str(tmp_path / path.name), cwd=str(path.parent), progress_bar=False,
                        parameters={"PRESET": "colab-t4", "OUT": str(tmp_path / "run"), "HUB": names(hub_files)},
                        kernel_name="python3")
    text = (tmp_path / path.name).read_text()
    assert all(p in text for p in printed), [p for p in printed if p not in text]
    if lesson == "01_sft":
        summary = json.loads((tmp_path / "run" / "sft" / "summary.json").read_text())
        assert set(summary["models"]) == {"policy-s", "policy-m"} and summary["config"]["lora_r"] == 16
    if lesson == "03_reward_model":
        metrics = json.loads((tmp_path / "run" / "rm" / "metrics.json").read_text())
        assert abs(metrics["demo_mean_after"]) < 1e-4 and metrics["val_accuracy"]["pairs"] > 0


def test_rm_sets_are_capped_by_a_random_draw_kept_in_order(hub_files):
    from dataclasses import replace
    from igpt_lib import hub
    preset = _hub_preset(hub_files)
    full, val = hub.comparisons(preset.hub)  # 134 sets: under the preset's 33,000
    capped, capped_val = hub.comparisons(replace(preset.hub, rm_max_sets=10))
    assert len(full) > 10 and len(capped) == 10 and capped_val == val
    assert capped == [r for r in full if r in capped]  # a subset, in the original order
    assert capped != full[:10]  # drawn at random, not the first ones
    assert capped == hub.comparisons(replace(preset.hub, rm_max_sets=10))[0]  # the same draw each time


def test_lesson_00_shows_the_cpu_world_under_a_hub_preset(monkeypatch, capsys):
    """Lesson 00 is about the offline world: with a hub PRESET it says so and builds the cpu
    preset's world (its cell is run with build_world stubbed: the whole lesson on the cpu world
    takes minutes, and its cpu path is what test_notebooks runs)."""
    import json
    from pathlib import Path
    import igpt_lib.world.build as build
    lesson = Path(__file__).resolve().parents[1] / "notebooks" / "00_overview_and_world.ipynb"
    cell = next("".join(c["source"]) for c in json.loads(lesson.read_text())["cells"]
                if c["cell_type"] == "code" and "build_world(preset, out" in "".join(c["source"]))
    built = {}
    monkeypatch.setattr(build, "build_world", lambda preset, out, log: built.update(preset=preset.name, out=str(out))
                        or {"vocab_size": 1, "corpus_tokens": 1})
    exec(cell, {"PRESET": "colab-t4", "OUT": None})
    assert built == {"preset": "cpu", "out": "../runs/cpu"}
    assert "colab-t4 is a hub preset" in capsys.readouterr().out
