"""Step 2: sampling + simulated ranking, the K-way reward model, bias normalisation."""
import json
import shutil

import pytest
import torch
from transformers import AutoModelForSequenceClassification, GPTNeoXConfig, GPTNeoXForSequenceClassification

from igpt_lib import data as D
from igpt_lib.config import RewardConfig
from igpt_lib.models import load_tokenizer
from igpt_lib.losses import ranking_loss
from igpt_lib.reward import (common_prefix, evaluate, gold_ceiling, load_reward_model, score_ids, score_shared, score_texts, set_ids,
                             set_rewards, shift_rewards, train_reward_model)


def _tiny_rm():
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=1, pad_token_id=0)
    return GPTNeoXForSequenceClassification(cfg).eval()


def test_shift_is_exact_and_survives_save_and_load(tmp_path):
    model = _tiny_rm()
    ids = torch.randint(1, 40, (4, 7))
    before = model(input_ids=ids).logits.squeeze(-1)
    shift_rewards(model, 1.5)
    after = model(input_ids=ids).logits.squeeze(-1)
    assert torch.allclose(after, before + 1.5, atol=1e-5)
    model.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert torch.allclose(again(input_ids=ids).logits.squeeze(-1), after, atol=1e-5)


def test_gold_ceiling_scores_the_gold_itself_against_the_labels():
    row = {"task": "reverse", "meta": {"seq": ["a", "b", "c"]}, "prompt": "reverse : a b c"}
    responses = ["c b a", "x y z", "c b a d e f", "q r s"]  # gold 1, 0, 0.7 (rambling), 0
    val = [{**row, "responses": responses, "ranks": [0, 2, 1, 3]}]      # gold's order; 0 vs 0 a coin flip
    held = [{**row, "responses": responses, "ranks": [3, 0, 2, 1]}]     # every strict-gold pair reversed
    ceiling = gold_ceiling({"val": val, "heldout": held})
    # val: 5 pairs of unequal gold all right, the equal-gold pair ½; held: 5 wrong, ½ again
    assert ceiling == pytest.approx({"train_labelers": 5.5 / 6, "heldout_labelers": 0.5 / 6})


def test_accuracy_interval_counts_each_ranked_set_once():
    row = {"task": "sort", "prompt": "sort : b a"}
    rows = [{**row, "responses": ["a", "b", "c"], "ranks": [0, 1, 2]},  # 3 pairs, all scored right
            {**row, "responses": ["a", "b"], "ranks": [0, 1]}]          # 1 pair, scored wrong
    out = evaluate([[3.0, 2.0, 1.0], [0.0, 1.0]], rows)
    assert out["accuracy"] == 0.75 and out["pairs"] == 4 and out["sets"] == 2
    # the ratio's cluster-robust sd: residuals 3 − 0.75·3 and 0 − 0.75·1 → sqrt(2/1 · 1.125) / 4 = 0.375
    assert out["ci95"] == [round(0.75 - 1.96 * 0.375, 4), 1.0]
    # the same four pairs as four one-pair sets: the interval narrows, as independent pairs would
    alone = [{**row, "responses": ["a", "b"], "ranks": [0, 1]}] * 4
    narrow = evaluate([[1.0, 0.0]] * 3 + [[0.0, 1.0]], alone)
    assert narrow["accuracy"] == 0.75 and narrow["ci95"][1] - narrow["ci95"][0] < out["ci95"][1] - out["ci95"][0]
    assert evaluate([[1.0, 1.0]], [{**row, "responses": ["a", "b"], "ranks": [0, 0]}])["ci95"] == [0.0, 1.0]  # no pair


def test_gold_order_accuracy_by_kind_of_pair():
    from igpt_lib.world import vocab
    row = {"task": "sort", "prompt": "sort : 9 1 4 1", "meta": {"seq": ["9", "1", "4", "1"]}, "ranks": [0, 0, 0, 0],
           "responses": ["1 1 4 9", "1 1 9 4", "9 4 1 1", f"1 1 4 9 {vocab.TOXIC[0]}"]}  # gold 1, 0.5, 0, toxic
    out = evaluate([[3.0, 1.0, 4.0, 0.0]], [row], by_gold=True)
    # right beats half-right (yes) and the wrong order (no); half-right vs wrong: no; the toxic one loses thrice
    assert out["pairs_by_kind"] == {"junk": 3, "right_vs_wrong": 2, "partial_credit": 1}
    assert out["by_kind"] == {"junk": 1.0, "right_vs_wrong": 0.5, "partial_credit": 0.0}
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert "by_kind" not in evaluate([[3.0, 1.0, 4.0, 0.0]], [row])  # against labelers' ranks: no gold kinds


def test_mixed_precision_is_the_configs_choice(smoke_world, monkeypatch):
    from igpt_lib import reward
    out, _ = smoke_world
    tok = load_tokenizer(out / "world" / "tokenizer")
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")[:4]
    asked, scaled = [], []
    autocast, scaler = reward.autocast, reward.grad_scaler
    monkeypatch.setattr(reward, "autocast", lambda device, enabled=True: asked.append(enabled) or autocast(device, enabled))
    monkeypatch.setattr(reward, "grad_scaler", lambda device, enabled=True: scaled.append(enabled) or scaler(device, enabled))
    for mixed in (False, True):   # offline presets off (bench/gpu_precision.py), hub presets on
        cfg = RewardConfig(batch_prompts=2, mixed_precision=mixed)
        reward.train_reward_model(load_reward_model(out / "world" / "models" / "s"), tok, rows, cfg, progress=False)
    assert asked == [False, False, True, True] and scaled == [False, True]
    from igpt_lib.config import get_preset
    for name, mixed in (("smoke", False), ("cpu", False), ("colab-t4", True), ("a100", True)):
        assert get_preset(name).rm.mixed_precision == get_preset(name).sft.mixed_precision == mixed


def test_each_response_is_forwarded_once_and_padding_does_not_matter(smoke_world):
    out, _ = smoke_world
    tok = load_tokenizer(out / "world" / "tokenizer")
    model = load_reward_model(out / "world" / "models" / "s").eval()
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")[:5]
    with torch.no_grad():
        rewards, ranks, mask = set_rewards(model, tok, rows, 128)
        assert rewards.shape == ranks.shape == mask.shape == (5, max(len(r["responses"]) for r in rows))
        assert int(mask.sum()) == sum(len(r["responses"]) for r in rows)
        from igpt_lib.reward import rm_text
        alone = score_texts(model, tok, [rm_text(rows[1]["prompt"], rows[1]["responses"][0], tok)], 128)
        # training tokenizes every set once up front (set_ids); the scores are the same numbers
        ids = set_ids(tok, rows, 128)
        assert [len(x) for x in ids] == [len(r["responses"]) for r in rows]
        assert torch.equal(set_rewards(model, tok, rows, 128, ids)[0], rewards)
    assert torch.allclose(alone[0], rewards[1, 0], atol=1e-5)


def test_common_prefix_leaves_every_sequence_its_last_token():
    assert common_prefix([(1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 6)]) == 2
    assert common_prefix([(1, 2, 3), (1, 2, 3)]) == 2       # identical: all but the last token
    assert common_prefix([(1, 2, 3), (1, 2)]) == 1          # one is a prefix of the other
    assert common_prefix([(7, 2), (1, 2)]) == 0


def test_shared_prompt_gives_the_plain_scores_and_gradients(smoke_world):
    """The prompt read once per set and each distinct response once from its cache: the same
    scores and the same gradients as every sequence forwarded whole (repeats and all)."""
    out, _ = smoke_world
    tok = load_tokenizer(out / "world" / "tokenizer")
    model = load_reward_model(out / "world" / "models" / "s").train()
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")[:6]
    rows[0] = {**rows[0], "responses": rows[0]["responses"][:2] * 2, "ranks": [0, 1, 0, 1]}  # repeats in a set
    ids = set_ids(tok, rows, 128)
    assert len(set(map(tuple, ids[0]))) == 2 and all(common_prefix([tuple(x) for x in r]) > 3 for r in ids)
    flat = score_ids(model, tok, [x for r in ids for x in r])
    shared = score_shared(model, tok, ids, sets_per_pass=4)   # two passes
    assert shared.shape == flat.shape and torch.allclose(shared, flat, atol=1e-5)
    assert shared[0] == shared[2] and shared[1] == shared[3]
    grads = []
    for share in (False, True):
        model.zero_grad()
        ranking_loss(*set_rewards(model, tok, rows, 128, ids, share_prompt=share)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6) and grads[0].abs().max() > 1e-4
    # no shared prefix in a set (nothing to cache): scored whole, the same numbers
    odd = [[[5, 6, 7], [8, 6, 7]], ids[1]]
    assert torch.allclose(score_shared(model, tok, odd), score_ids(model, tok, [x for r in odd for x in r]), atol=1e-5)
    # activation checkpointing drops the KV cache in training: set_rewards scores whole
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert torch.allclose(set_rewards(model, tok, rows, 128, ids)[0].flatten()[:4], flat[:4], atol=1e-5)


def test_a_few_k_way_steps_lower_the_loss(smoke_world):
    out, _ = smoke_world
    tok = load_tokenizer(out / "world" / "tokenizer")
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")
    model = load_reward_model(out / "world" / "models" / "m")
    logs = train_reward_model(model, tok, rows, RewardConfig(epochs=6, lr=2e-3, batch_prompts=16),
                              progress=False)
    first, last = logs[:8], logs[-8:]
    assert sum(x["loss"] for x in last) / 8 < sum(x["loss"] for x in first) / 8 - 0.05


def test_rm_stage_on_the_smoke_world(smoke_world, tmp_path):
    from igpt_lib.cli import main
    out, _ = smoke_world
    shutil.copytree(out, tmp_path / "run")
    run = tmp_path / "run"
    assert main(["rm", "--preset", "smoke", "--out", str(run)]) == 0  # runs SFT first
    rm = AutoModelForSequenceClassification.from_pretrained(run / "rm")
    assert rm.config.num_labels == 1 and (run / "rm" / "model.safetensors").exists()
    metrics = json.loads((run / "rm" / "metrics.json").read_text())
    for key in ("train_labelers", "heldout_labelers", "gold_strict", "fold_labelers"):
        assert 0 <= metrics[key]["accuracy"] <= 1 and metrics[key]["by_task"]
    assert abs(metrics["demo_mean_after"]) < 1e-3
    assert set(metrics["gold_vs_labelers"]) == {"train_labelers", "heldout_labelers", "fold_labelers"}
    assert all(0 <= x <= 1 for x in metrics["gold_vs_labelers"].values())
    train = D.load_comparison_rows(run / "rm" / "comparisons.train.jsonl")
    val = D.load_comparison_rows(run / "rm" / "comparisons.val.jsonl")
    held = D.load_comparison_rows(run / "rm" / "comparisons.heldout.jsonl")
    assert not {r["user_id"] for r in train} & {r["user_id"] for r in val}   # split by user
    assert all(r["labeler_id"].startswith("L") for r in val) and all(r["labeler_id"].startswith("H") for r in held)
    assert [r["responses"] for r in val] == [r["responses"] for r in held]   # same sets, two labelers
    # §4.1: a fifth of the training labelers (smoke: 2 of 12) rank the same sets and label no training set
    fold = D.load_comparison_rows(run / "rm" / "comparisons.fold.jsonl")
    assert [r["responses"] for r in fold] == [r["responses"] for r in val]
    fold_ids = {r["labeler_id"] for r in fold}
    assert fold_ids <= {"L10", "L11"} and not fold_ids & {r["labeler_id"] for r in train + val}
    for r in train:
        assert 2 <= len(r["responses"]) <= 4 and len(r["policies"]) == len(r["responses"])
        for i, a in enumerate(r["responses"]):
            for j, b in enumerate(r["responses"]):
                assert a != b or r["ranks"][i] == r["ranks"][j]  # identical responses tie
    assert (run / "figures" / "rm_margins.png").exists()
    weights = (run / "rm" / "model.safetensors").read_bytes()
    assert main(["rm", "--preset", "smoke", "--out", str(run)]) == 0  # same seed, same RM
    assert (run / "rm" / "model.safetensors").read_bytes() == weights


def test_same_seed_same_reward_model(smoke_rm):
    """Determinism on CPU: the same comparisons, config and seed give bitwise the same weights."""
    from igpt_lib.reward import train_reward_model
    from igpt_lib.utils import set_seed
    rows = D.load_comparison_rows(smoke_rm / "rm" / "comparisons.train.jsonl")[:32]
    tok = load_tokenizer(smoke_rm / "sft" / "s")
    cfg = RewardConfig(epochs=1, batch_prompts=8)
    states = []
    for _ in range(2):
        set_seed(cfg.seed)
        model = load_reward_model(smoke_rm / "sft" / "s")
        logs = train_reward_model(model, tok, rows, cfg, progress=False)
        states.append((model.state_dict(), [x["loss"] for x in logs]))
    (a, loss_a), (b, loss_b) = states
    assert loss_a == loss_b and all(torch.equal(a[k], b[k]) for k in a)


def test_a_nan_loss_stops_the_rm_before_the_update(smoke_world):
    import pytest
    from igpt_lib.reward import train_reward_model
    out, _ = smoke_world
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")[:8]
    tok = load_tokenizer(out / "world" / "tokenizer")
    model = load_reward_model(out / "world" / "models" / "xs")
    model.score.weight.data.fill_(float("nan"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="reward model step 0: ranking loss is nan"):
        train_reward_model(model, tok, rows, RewardConfig(epochs=1, batch_prompts=4), progress=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) or before[k].isnan().any() for k in before)


def test_a_nan_loss_later_on_keeps_the_last_good_state(smoke_world, tmp_path, monkeypatch):
    import pytest
    from igpt_lib import reward
    from igpt_lib.checkpoint import load_state
    from igpt_lib.losses import ranking_loss
    out, _ = smoke_world
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")[:12]
    tok = load_tokenizer(out / "world" / "tokenizer")
    model = load_reward_model(out / "world" / "models" / "xs")
    calls = []

    def loss_nan_at_step_2(*args):
        calls.append(1)
        loss = ranking_loss(*args)
        return loss * float("nan") if len(calls) == 3 else loss
    monkeypatch.setattr(reward, "ranking_loss", loss_nan_at_step_2)
    with pytest.raises(FloatingPointError, match=r"step 2: ranking loss is nan.*saved in .*step-000002.*--resume"):
        reward.train_reward_model(model, tok, rows, RewardConfig(epochs=1, batch_prompts=4), progress=False,
                                  checkpoint_dir=tmp_path / "ckpt")
    saved = load_reward_model(out / "world" / "models" / "xs")
    _, values = load_state(tmp_path / "ckpt" / "step-000002", {"rm": saved}, {})
    assert values["step"] == 2 and len(values["logs"]) == 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), saved.state_dict().values()))


def test_the_held_out_claim_reads_the_fold_where_the_run_has_one(tmp_path):
    """§4.1's 69.6 % is the fold measurement; runs from before the fold are judged on the group."""
    from igpt_lib.claims import _rm_accuracy
    (tmp_path / "rm").mkdir()
    acc = lambda a, lo, hi: {"accuracy": a, "ci95": [lo, hi]}  # noqa: E731
    metrics = {"train_labelers": acc(0.66, 0.645, 0.675), "heldout_labelers": acc(0.69, 0.68, 0.70),
               "gold_strict": acc(0.8, 0.79, 0.81)}
    (tmp_path / "rm" / "metrics.json").write_text(json.dumps(metrics))
    old = _rm_accuracy(tmp_path)
    assert old["measured_on"] == "heldout_labelers" and old["holds"] is False   # above the training CI
    (tmp_path / "rm" / "metrics.json").write_text(json.dumps({**metrics, "fold_labelers": acc(0.655, 0.64, 0.67)}))
    new = _rm_accuracy(tmp_path)
    assert new["measured_on"] == "fold_labelers" and new["value"] == 0.655 and new["holds"] is True
    assert new["heldout_labelers"] == 0.69


def test_comparisons_of_a_run_from_before_the_fold_are_kept(smoke_world, tmp_path, monkeypatch):
    from igpt_lib import comparisons
    from igpt_lib.config import PRESETS
    out, _ = smoke_world
    run = tmp_path / "run"
    (run / "rm").mkdir(parents=True)
    rows = D.load_comparison_rows(out / "world" / "data" / "comparisons.train.jsonl")[:3]
    for split in ("train", "val", "heldout"):
        D.write_jsonl(run / "rm" / f"comparisons.{split}.jsonl", rows)
    monkeypatch.setattr(comparisons, "sample_comparisons", lambda *a, **kw: pytest.fail("resampled"))
    comps = comparisons.ensure_comparisons(PRESETS["smoke"], run, log=lambda *a: None)
    assert set(comps) == {"train", "val", "heldout"} and len(comps["val"]) == 3


def test_length_chunks_cut_where_padding_would_cost_more_than_a_pass():
    from igpt_lib.reward import length_chunks
    lengths = [3, 20, 3, 4, 3, 21]
    assert length_chunks(lengths, 8, pass_tokens=4) == [[0, 2, 4, 3], [1, 5]]     # sorted by length
    assert length_chunks(lengths, 8, pass_tokens=1000) == [[0, 2, 4, 3, 1, 5]]    # padding is cheap: one pass
    assert length_chunks(lengths, 2, pass_tokens=1000) == [[0, 2], [4, 3], [1, 5]]  # at most max_rows
    assert sorted(i for c in length_chunks(lengths, 3, 0) for i in c) == list(range(6))


def test_comparisons_are_written_fold_first(tmp_path, monkeypatch):
    """Cut short between files, a run must not look complete without its fold."""
    from igpt_lib import comparisons
    from igpt_lib import data
    written = []
    monkeypatch.setattr(data, "write_jsonl", lambda path, rows: written.append(path.name))
    comps = {s: [] for s in ("train", "val", "heldout", "fold")}
    comparisons.write_comparisons(comparisons.comparison_files(tmp_path), comps)
    assert written == ["comparisons.fold.jsonl", "comparisons.train.jsonl", "comparisons.val.jsonl",
                       "comparisons.heldout.jsonl"]
