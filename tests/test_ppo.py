"""Step 3: rollouts and a few PPO iterations on the smoke world's tiny models."""
import json
import warnings

import pytest
import torch
from transformers import AutoModelForCausalLM

from igpt_lib.config import PPOConfig
from igpt_lib.models import load_tokenizer
from igpt_lib.ppo import corpus_batches, response_logprobs, rollout, rollout_stats, token_kl
from igpt_lib.ppo_trainer import PPOTrainer, train_ppo
from igpt_lib.reward import load_reward_model


def _models(out, policy="xs", rm="s"):
    torch.manual_seed(0)
    tok = load_tokenizer(out / "world" / "tokenizer")
    policy_model = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / policy)
    ref = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / policy).eval()
    reward = load_reward_model(out / "world" / "models" / rm).eval()
    value = load_reward_model(out / "world" / "models" / rm)
    value.load_state_dict(reward.state_dict())  # value model initialised from the RM (§3.5)
    return tok, policy_model, ref, reward, value


def test_left_padding_does_not_change_logprobs(smoke_world):
    out, _ = smoke_world
    tok, policy, *_ = _models(out)
    short, long = "Q : add 2 and 3 A :", "Q : reverse the letters : a b c d e f g A :"
    side, tok.padding_side = tok.padding_side, "left"
    enc = tok([short, long], return_tensors="pt", padding=True)
    tok.padding_side = side
    resp = tok(" 5 <eos>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([enc["input_ids"], resp.repeat(2, 1)], 1)
    att = torch.cat([enc["attention_mask"], torch.ones(2, resp.shape[1], dtype=torch.long)], 1)
    batched, _ = response_logprobs(policy, ids, att, enc["input_ids"].shape[1])
    alone_ids = torch.cat([tok(short, return_tensors="pt")["input_ids"], resp], 1)
    alone, _ = response_logprobs(policy, alone_ids, torch.ones_like(alone_ids), alone_ids.shape[1] - resp.shape[1])
    assert torch.allclose(batched[0], alone[0], atol=1e-5)


def test_rollout_masks_after_eos_and_starts_with_zero_kl(smoke_world):
    out, _ = smoke_world
    tok, policy, ref, reward, value = _models(out)
    cfg = PPOConfig(batch_size=8, max_new_tokens=12)
    ro = rollout(policy, ref, reward, value, tok, ["Q : describe ann A :"] * 8, cfg)
    assert ro.mask.shape == ro.logprobs.shape == ro.advantages.shape
    for ids, m in zip(ro.input_ids[:, ro.query_len:], ro.mask):
        n = int(m.sum())
        assert m[:n].all() and not m[n:].any()                  # a prefix
        if tok.eos_token_id in ids[:n].tolist():
            assert ids[n - 1] == tok.eos_token_id                # ends with the first <eos>
    assert torch.allclose(ro.logprobs * ro.mask, ro.ref_logprobs * ro.mask)  # policy == reference
    assert ro.kl_tokens.abs().max() < 1e-6 and rollout_stats(ro)["kl_exact"] < 1e-6
    assert torch.allclose(ro.rewards.sum(1), ro.scores)          # so the reward is the score alone


def test_a_reward_function_replaces_the_reward_model(smoke_world):
    out, _ = smoke_world
    tok, policy, ref, reward, value = _models(out)
    words = lambda prompts, responses: [float(len(y.split())) for y in responses]  # noqa: E731
    ro = rollout(policy.eval(), ref, words, value, tok, ["Q : describe ann A :"] * 8, PPOConfig(batch_size=8))
    assert ro.scores.tolist() == [float(len(y.split())) for y in ro.responses]
    assert torch.allclose(ro.rewards.sum(1), ro.scores)  # policy == reference: the reward is the score
    with pytest.raises(ValueError, match="one number per response"):
        rollout(policy, ref, lambda prompts, responses: [0.0], value, tok, ["Q : describe ann A :"] * 8,
                PPOConfig(batch_size=8))


def test_token_kl_on_a_hand_case():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    kl = token_kl(p.log().view(1, 1, 2), q.log().view(1, 1, 2))
    expected = 0.5 * torch.log(torch.tensor(0.5 / 0.9)) + 0.5 * torch.log(torch.tensor(0.5 / 0.1))  # KL(p ‖ q)
    assert kl.shape == (1, 1) and abs(kl.item() - expected.item()) < 1e-6


def test_exact_kl_is_what_k1_estimates(smoke_world):
    """Σ_t KL(π(·|s_t) ‖ π_SFT(·|s_t)) over sampled responses has k1's expectation (the chain rule of
    KL), with a smaller spread; a reversed KL or a wrong position would miss by many standard errors."""
    out, _ = smoke_world
    tok, policy, ref, reward, value = _models(out)
    with torch.no_grad():
        head = policy.get_output_embeddings().weight
        head.add_(torch.randn(head.shape, generator=torch.Generator().manual_seed(0)))  # ~15 nats: reversed KL ~22
    torch.manual_seed(1)
    cfg = PPOConfig(batch_size=512, max_new_tokens=4)
    ro = rollout(policy.eval(), ref, reward, value, tok, ["Q : describe ann A :"] * 512, cfg)
    k1 = ((ro.logprobs - ro.ref_logprobs) * ro.mask).sum(1)
    exact = ro.kl_tokens.sum(1)
    se = (k1.std() / 512 ** 0.5).item()
    assert exact.mean().item() > 10 * se                            # a KL well away from 0
    assert abs(k1.mean().item() - exact.mean().item()) < 3 * se, (k1.mean(), exact.mean(), se)
    assert exact.std() < k1.std() and (exact >= 0).all()


def test_a_few_ppo_iterations_raise_the_rm_score(smoke_world, tmp_path):
    out, _ = smoke_world
    tok, policy, ref, reward, value = _models(out)
    from igpt_lib import data as D
    rows = D.load_prompts(out / "world" / "data" / "prompts.ppo.jsonl")
    cfg = PPOConfig(iterations=12, batch_size=32, minibatch_size=8, lr=3e-3, kl_coef=0.01,
                    max_new_tokens=8, ptx_coef=0.1, target_kl=1.0, ema_decay=0.9)
    tokens = tok(" ".join(r["prompt"] for r in rows))["input_ids"]
    train_ppo(policy, ref, reward, value, tok, rows, cfg, tmp_path / "m.jsonl",
              ptx_tokens=tokens, progress=False)
    stats = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(stats) == 12 and stats[0]["kl"] == 0.0
    first = sum(s["score"] for s in stats[:3]) / 3
    last = sum(s["score"] for s in stats[-3:]) / 3
    assert last > first, (first, last)
    assert all(s["ptx_loss"] is not None and "gold" in s for s in stats)
    assert stats[1]["kl_coef"] != stats[0]["kl_coef"]  # the adaptive controller moved β
    assert stats[0]["kl_exact"] == 0.0 and all(s["kl_exact"] >= 0 for s in stats) and stats[-1]["kl_exact"] > 0


def test_corpus_batches_are_windows_of_the_stream():
    batches = corpus_batches(list(range(100)), 5, 3, seed=0)
    b = next(batches)
    assert b.shape == (3, 5) and all((row[1:] - row[:-1] == 1).all() for row in b)


def test_ppo_stage_on_the_smoke_world(smoke_rm, tmp_path):
    import shutil
    from igpt_lib.cli import main
    shutil.copytree(smoke_rm, tmp_path / "run")
    run = tmp_path / "run"
    assert main(["ppo", "--preset", "smoke", "--out", str(run), "--ptx-coef", "0.5"]) == 0
    assert AutoModelForCausalLM.from_pretrained(run / "ppo") is not None
    summary = json.loads((run / "ppo" / "summary.json").read_text())
    gold = summary["test_gold"]
    assert summary["config"]["ptx_coef"] == 0.5 and {"sft", "ppo", "difference"} <= set(gold)
    sampled = summary["test_gold_sampled"]
    assert sampled["samples"] == 4 and sampled["temperature"] == 1.0 and {"sft", "ppo", "difference"} <= set(sampled)
    lo, hi = gold["difference"]["ci95"]
    assert lo <= gold["ppo"]["mean"] - gold["sft"]["mean"] <= hi
    assert len((run / "ppo" / "metrics.jsonl").read_text().splitlines()) == 3
    assert (run / "figures" / "ppo_curves.png").stat().st_size > 0
    with pytest.raises(FileExistsError, match="--resume"):  # never silently over a finished run's checkpoints
        main(["ppo", "--preset", "smoke", "--out", str(run)])
    assert main(["ppo", "--preset", "smoke", "--out", str(run), "--resume"]) == 0  # nothing left to do
    assert len((run / "ppo" / "metrics.jsonl").read_text().splitlines()) == 3


def _small_cfg(**kw):
    return PPOConfig(**{**dict(iterations=6, batch_size=8, minibatch_size=4, lr=3e-3, kl_coef=0.01,
                               max_new_tokens=6, ptx_coef=0.1, target_kl=1.0, ema_decay=0.9, save_every=2), **kw})


def _trainer(out, cfg):
    from igpt_lib import data as D
    tok, policy, ref, reward, value = _models(out)
    rows = D.load_prompts(out / "world" / "data" / "prompts.ppo.jsonl")
    tokens = tok(" ".join(r["prompt"] for r in rows))["input_ids"]
    return PPOTrainer(policy, ref, reward, value, tok, rows, cfg, tokens)


def test_resume_after_an_interruption_is_bitwise_equal(smoke_world, tmp_path):
    """Checkpoints carry weights, optimizers, β, EMA, RNG states and the data cursor."""
    out, _ = smoke_world
    cfg = _small_cfg()
    whole = _trainer(out, cfg)
    whole.train(tmp_path / "a.jsonl", tmp_path / "ckpt_a", progress=False)
    policy_a = whole.finish()

    def stop_at_3(stats):
        if stats["iteration"] == 3:
            raise KeyboardInterrupt  # a disconnect after iteration 3; the last checkpoint is at 2
    first = _trainer(out, cfg)
    with pytest.raises(KeyboardInterrupt):
        first.train(tmp_path / "b.jsonl", tmp_path / "ckpt_b", callback=stop_at_3, progress=False)
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 4
    again = _trainer(out, cfg)
    assert again.resume(tmp_path / "ckpt_b", tmp_path / "b.jsonl") == 2
    again.train(tmp_path / "b.jsonl", tmp_path / "ckpt_b", progress=False)
    policy_b = again.finish()
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    for (name, a), b in zip(policy_a.state_dict().items(), policy_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in (tmp_path / "ckpt_b").iterdir()) == ["step-000004", "step-000006"]  # last 2


def test_nan_reward_stops_with_a_message_naming_it(smoke_world, tmp_path):
    out, _ = smoke_world
    trainer = _trainer(out, _small_cfg(iterations=3, save_every=1))

    def poison(stats):
        trainer.reward.score.weight.data.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"iteration 1: rollout score is nan.*step-000001"):
        trainer.train(tmp_path / "m.jsonl", tmp_path / "ckpt", callback=poison, progress=False)


def test_collapse_and_negative_kl_warnings(smoke_world):
    out, _ = smoke_world
    trainer = _trainer(out, _small_cfg())
    trainer._diagnose({"iteration": 0, "kl": 0.0, "distinct": 1.0})
    with pytest.warns(UserWarning, match="reward collapse"):
        trainer._diagnose({"iteration": 1, "kl": 0.1, "distinct": 0.25})
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                   # noise: −0.055 with a standard error of 0.03
        trainer._diagnose({"iteration": 2, "kl": -0.055, "kl_se": 0.03, "distinct": 1.0})
    with pytest.warns(UserWarning, match=r"mean KL -0.200 < 0 \(standard error 0.030\)"):
        trainer._diagnose({"iteration": 3, "kl": -0.2, "kl_se": 0.03, "distinct": 1.0})


def test_metrics_go_to_tensorboard_when_installed(smoke_world, tmp_path, monkeypatch):
    from igpt_lib import ppo_trainer
    written = []

    class Writer:
        def add_scalar(self, tag, value, step):
            written.append((tag, step))

        def close(self):
            written.append("closed")
    monkeypatch.setattr(ppo_trainer, "_tensorboard", lambda folder: Writer())
    out, _ = smoke_world
    _trainer(out, _small_cfg(iterations=2)).train(tensorboard_dir=tmp_path, progress=False)
    assert ("ppo/score", 0) in written and ("ppo/kl", 1) in written and written[-1] == "closed"


def test_two_process_accelerate_launch_on_cpu(smoke_rm, tmp_path):
    """The same trainer under DDP on two CPU processes (gloo). `accelerate launch --cpu` starts a
    single process unless MPI is set up, so the launch is torchrun's (`--multi_gpu`) with
    ACCELERATE_USE_CPU, which makes accelerate pick MULTI_CPU with the gloo backend."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    shutil.copytree(smoke_rm, tmp_path / "run")
    launcher = Path(sys.executable).parent / "accelerate"
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "igpt_lib", "ppo", "--preset", "smoke", "--out", str(tmp_path / "run"), "--ptx-coef", "0.5"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 processes" in done.stdout
    lines = [json.loads(x) for x in (tmp_path / "run" / "ppo" / "metrics.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in lines] == [0, 1, 2]  # written once, by the main process
    assert all(x["ptx_loss"] is not None for x in lines)
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "ppo") is not None


def test_trim_padding_keeps_every_real_token():
    from igpt_lib.ppo import trim_padding
    ids = torch.arange(24).view(3, 8)
    att = torch.tensor([[0, 0, 1, 1, 1, 0, 0, 0],      # query_len 4: prompts left-padded
                        [0, 1, 1, 1, 1, 1, 0, 0],      # responses right-padded
                        [0, 0, 0, 1, 1, 1, 1, 0]])
    t_ids, t_att, q, t = trim_padding(ids, att, 4)
    assert (q, t) == (3, 3) and t_ids.shape == (3, 6)
    assert torch.equal(t_ids, ids[:, 1:7]) and t_att.sum() == att.sum()
    _, _, q, t = trim_padding(ids, torch.tensor([[0, 1, 1, 1, 0, 0, 0, 0]] * 3), 4)
    assert (q, t) == (3, 1)                          # all responses empty: one response column kept


def test_sft_heldout_scores_are_generated_once_and_equal_a_fresh_judgement(smoke_rm, monkeypatch):
    from igpt_lib import evaluation
    from igpt_lib.config import get_preset
    from igpt_lib.models import load_tokenizer
    from igpt_lib.ppo_trainer import evaluate_ppo
    preset = get_preset("smoke")
    cfg, folder = preset.ppo, smoke_rm / "sft" / preset.ppo.policy
    tok, sft = load_tokenizer(folder), AutoModelForCausalLM.from_pretrained(folder)
    ppo = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        ppo.get_output_embeddings().weight.mul_(1.5)                  # a different policy than its SFT start
    (folder / "heldout_scores.json").unlink(missing_ok=True)
    first = evaluate_ppo(preset, smoke_rm, sft, ppo, tok, cfg)
    from igpt_lib.data import read_jsonl
    every = len(read_jsonl(smoke_rm / "world" / "data" / "prompts.test.jsonl"))
    assert first["test_gold"]["prompts"] == every > preset.world.eval_prompts   # all the world's test prompts
    fresh = evaluation.heldout_gold(smoke_rm, {"sft": sft, "ppo": ppo}, tok, every,
                                    cfg.max_new_tokens, temperature=1.0, samples=4, seed=cfg.seed)
    assert first["test_gold_sampled"] == fresh                       # the cached path judges exactly as before
    assert len(json.loads((folder / "heldout_scores.json").read_text())) == 2   # greedy and sampled
    calls = []
    real = evaluation.heldout_scores
    monkeypatch.setattr(evaluation, "heldout_scores", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    assert evaluate_ppo(preset, smoke_rm, sft, ppo, tok, cfg) == first
    assert calls == [ppo, ppo]                                        # the SFT model was not generated again
    (folder / "heldout_scores.json").unlink()
