"""The hub world (issue 7): the same three steps on real models and datasets, on one card.

Every name in `HubConfig` is a hub name or a local folder/file; the stages below call the
same functions as the offline world (`sft.train_sft`, `reward.train_reward_model`,
`ppo_trainer.PPOTrainer`), only the inputs differ. Phases run one after another and free their
models (the phases of `memory.plan`): SFT per size → RM → PPO (LoRA policy whose base, with
adapters off, is the KL reference) → evaluation: responses of our policies, then the large
baseline alone in 8-bit, then the gold judge alone.
    OUT/sft/<model>/   OUT/rm/   OUT/ppo/   OUT/report.json
There is no gold labeler here: a public reward model (`hub.gold_judge`) stands in for the
held-out labelers, and SFT keeps its last epoch (no scorer to select by).
"""
import gc
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .data import load_comparisons, load_demonstrations_any, split_by_user, write_json, write_jsonl
from .memory import JUDGE_BATCH, JUDGE_LENGTH


def short(name):
    """A folder name for a hub name or a path: EleutherAI/pythia-70m-deduped -> pythia-70m-deduped."""
    return Path(str(name).rstrip("/")).name


NAMES = ("policies", "baseline", "reward_model", "sft_data", "rm_data", "ppo_prompts", "gold_judge")


def with_names(preset, **names):
    """`preset` with some of its hub names replaced (CLI flags, a notebook's parameters cell);
    tuple fields accept a comma-separated string. None leaves a name as it is."""
    from dataclasses import replace
    if preset.hub is None:
        raise ValueError(f"preset {preset.name!r} is an offline-world preset; hub names need colab-t4 or a100")
    given = {k: v for k, v in names.items() if v is not None}
    unknown = set(given) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown hub name(s) {', '.join(sorted(unknown))}; choose from {', '.join(NAMES)}")
    for key in ("policies", "rm_data", "ppo_prompts"):
        if isinstance(given.get(key), str):
            given[key] = tuple(x.strip() for x in given[key].split(",") if x.strip())
    return replace(preset, hub=replace(preset.hub, **given))


def comparisons(hub):
    """(train, val) comparisons of every `hub.rm_data` source, in our schema, split by user; at
    most `hub.rm_max_sets` training sets, drawn at random (seed 0) in their original order."""
    rows = [dict(r) for source in hub.rm_data for r in load_comparisons(source)]
    train, val = split_by_user(rows)
    if hub.rm_max_sets and len(train) > hub.rm_max_sets:
        keep = np.sort(np.random.default_rng(0).choice(len(train), hub.rm_max_sets, replace=False))
        train = [train[i] for i in keep]
    return train, val


def prompts(hub, tokenizer, split="train"):
    """PPO prompts (distinct, in order) of `hub.ppo_prompts`, cut from the left to
    `hub.max_prompt_tokens` (the latest turns are kept)."""
    rows = [dict(r) for source in hub.ppo_prompts for r in load_comparisons(source)]
    rows = split_by_user(rows)[0 if split == "train" else 1]
    seen, out = set(), []
    for r in rows:
        ids = tokenizer(r["prompt"], add_special_tokens=False)["input_ids"][-hub.max_prompt_tokens:]
        text = tokenizer.decode(ids)
        if text not in seen:
            seen.add(text)
            out.append({"prompt": text, "user_id": r["user_id"]})
    return out


def _free():
    """Hand the GPU memory of models that are gone (the caller's deleted ones, and the reference
    cycles a trainer leaves) back to the driver, so each phase starts from what it loads itself.
    Measured on a GPU (bench/hub_memory.py; docs/memory.md has the run before and after): without
    it the RM and evaluation phases began with the previous phase's models still allocated."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_sft(preset, out, resume=False, log=print, progress=True):
    """Step 1 for every `hub.policies` model on `hub.sft_data` → OUT/sft/<model>/."""
    from .models import load_tokenizer
    from .sft import train_sft
    hub, cfg, out = preset.hub, preset.sft, Path(out)
    train, val = split_by_user(load_demonstrations_any(hub.sft_data))
    (out / "sft").mkdir(parents=True, exist_ok=True)
    progress_path = out / "sft" / "progress.json"  # sizes done; summary.json (the stage's marker) comes last
    summary = json.loads(progress_path.read_text()) if progress_path.exists() else {}
    for name in hub.policies:
        _free()  # the previous size's trainer
        folder = out / "sft" / short(name)
        if short(name) in summary:
            log(f"sft {short(name)}: already in {folder}; skipped")
            continue
        log(f"sft {short(name)}: {len(train)} demonstrations, {cfg.epochs} epochs, LoRA r = {cfg.lora_r}")
        summary[short(name)] = train_sft(name, load_tokenizer(name), train, val, val[:cfg.eval_prompts], cfg,
                                         folder, short(name), out / "sft" / "metrics.jsonl", scorer=None,
                                         progress=progress, checkpoint_dir=out / "sft" / "checkpoints" / short(name),
                                         resume=resume)
        write_json(progress_path, summary)
        shutil.rmtree(out / "sft" / "checkpoints" / short(name), ignore_errors=True)  # its outputs are complete
    write_json(out / "sft" / "summary.json", {"models": summary, "config": asdict(cfg)})
    progress_path.unlink()
    return summary


def run_rm(preset, out, resume=False, log=print, progress=True):
    """Step 2: one K-way RM from `hub.reward_model` on `hub.rm_data` → OUT/rm/."""
    from .models import best_device, load_tokenizer, save_checkpoint
    from .reward import _refuse_unless_resume, evaluate, load_reward_model, normalise, score_sets, train_reward_model
    from .utils import set_seed
    hub, cfg, out, start = preset.hub, preset.rm, Path(out), time.time()
    _refuse_unless_resume(out / "rm" / "checkpoints", resume)  # never overwrite an interrupted run's state
    _free()  # a phase starts from what it loads
    train, val = comparisons(hub)
    tok = load_tokenizer(hub.reward_model)
    tok.truncation_side = "left"  # the RM reads the last token: cut the prompt's start, never the response
    set_seed(cfg.seed)
    model = load_reward_model(hub.reward_model).to(best_device())  # float32 weights, 16-bit compute on a GPU
    model.config.pad_token_id = tok.pad_token_id
    log(f"rm: {len(train)} ranked sets ({sum(len(r['responses']) for r in train)} responses) from "
        f"{', '.join(hub.rm_data)}")
    logs = train_reward_model(model, tok, train, cfg, progress, checkpoint_dir=out / "rm" / "checkpoints",
                              resume=resume)
    demos = split_by_user(load_demonstrations_any(hub.sft_data))[0][:256]
    before, after = normalise(model, tok, demos, cfg)  # §3.5: demonstrations score 0 on average
    report = evaluate(score_sets(model, tok, val, cfg), val)
    report.pop("margins")
    report = {"val_accuracy": report, "demo_mean_before": before, "demo_mean_after": after,
              "train_sets": len(train), "seconds": round(time.time() - start, 1), "config": asdict(cfg)}
    save_checkpoint(model, tok, out / "rm")
    write_json(out / "rm" / "metrics.json", report)
    write_jsonl(out / "rm" / "train_log.jsonl", logs)
    log(f"rm: validation pair accuracy {report['val_accuracy']['accuracy']:.3f} "
        f"({report['val_accuracy']['pairs']} pairs); demo mean {before:+.3f} -> {after:+.4f}")
    return report


def run_ppo(preset, out, resume=False, log=print, progress=True, callback=None):
    """Step 3: PPO of the smallest SFT policy with LoRA adapters against OUT/rm/ → OUT/ppo/.
    `callback(stats)` runs after each iteration (e.g. `plots.LivePlot().update` in lesson 04)."""
    from accelerate import Accelerator
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM
    from .models import compute_dtype, load_causal_lm, load_tokenizer, lora_config, save_checkpoint
    from .ppo_trainer import PPOTrainer
    from .reward import _refuse_unless_resume, load_reward_model
    hub, cfg, out, start = preset.hub, preset.ppo, Path(out), time.time()
    _refuse_unless_resume(out / "ppo" / "checkpoints", resume)  # never overwrite an interrupted run's state
    _free()
    sft_dir = out / "sft" / short(hub.policies[0])
    tok = load_tokenizer(sft_dir)
    tok.truncation_side = "left"  # the RM reads the last token: cut the prompt's start, never the response
    if load_tokenizer(out / "rm").get_vocab() != tok.get_vocab():  # rollouts are scored with the policy's ids
        raise ValueError(f"the reward model ({hub.reward_model}) and the policy ({hub.policies[0]}) use different "
                         "tokenizers; PPO scores the policy's token ids, so pick an RM base of the policy's family")
    # Frozen weights (the LoRA base, the reference, the RM) in 16-bit on a GPU; trained ones
    # (adapters or the full policy, the value model) float32, computed under autocast.
    policy = load_causal_lm(sft_dir, load_in_8bit=preset.sft.load_in_8bit, frozen_base=bool(cfg.lora_r))
    ref = None  # LoRA: the SFT weights under the adapters are the reference (no second copy)
    if cfg.lora_r:
        policy = get_peft_model(policy, lora_config(cfg.lora_r, 2 * cfg.lora_r, 0.0))
    else:
        ref = AutoModelForCausalLM.from_pretrained(sft_dir, dtype=compute_dtype())
    reward = load_reward_model(out / "rm", dtype=compute_dtype())
    value = load_reward_model(out / "rm")  # initialised from the RM (§3.5)
    rows = prompts(hub, tok)
    log(f"ppo: {short(hub.policies[0])} + LoRA r = {cfg.lora_r}, β = {cfg.kl_coef}, {cfg.iterations} iterations "
        f"on {len(rows)} prompts")
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(compute_dtype(), "no")
    trainer = PPOTrainer(policy, ref, reward, value, tok, rows, cfg, accelerator=Accelerator(mixed_precision=precision))
    ppo_dir = out / "ppo"
    ppo_dir.mkdir(parents=True, exist_ok=True)
    done = trainer.resume(ppo_dir / "checkpoints", ppo_dir / "metrics.jsonl") if resume else None
    if done is None:
        (ppo_dir / "metrics.jsonl").write_text("")
    last = trainer.train(ppo_dir / "metrics.jsonl", ppo_dir / "checkpoints", callback, progress=progress)
    save_checkpoint(trainer.finish(), tok, ppo_dir)
    write_json(ppo_dir / "summary.json", {"last": last, "seconds": round(time.time() - start, 1),
                                          "config": asdict(cfg)})
    return last


def judge_scores(name, pairs, batch_size=JUDGE_BATCH, max_length=JUDGE_LENGTH):
    """The gold judge's score of each (prompt, response): a sequence classifier read as a
    text pair (OpenAssistant's reward models take question and answer this way)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(name).eval()
    if model.config.pad_token_id is None:
        tok.pad_token = tok.pad_token or tok.eos_token
        model.config.pad_token_id = tok.pad_token_id
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    scores = []
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            enc = tok([p for p, _ in chunk], [y for _, y in chunk], return_tensors="pt", padding=True,
                      truncation=True, max_length=max_length).to(device)
            scores += model(**enc).logits[:, 0].float().tolist()
    del model
    _free()
    return scores


def _generate(path, rows, max_new_tokens, cfg, batch_size, bits=None):
    """Responses of one model, loaded alone and freed after, sampled as `cfg` (EvalConfig) says;
    `bits` 8 or 4 loads its linear layers quantised (bitsandbytes)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from .evaluation import responses
    from .models import load_tokenizer
    cuda = torch.cuda.is_available()
    kwargs = {"dtype": "auto"} if cuda else {}  # 16-bit on a GPU, as the checkpoint stores it
    if bits:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True) if bits == 8 else \
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16)
        kwargs["device_map"] = {"": "cuda"} if cuda else None
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not bits:
        model.to("cuda" if cuda else "cpu")
    ys = responses(model.eval(), load_tokenizer(path), rows, max_new_tokens, temperature=cfg.temperature,
                   seed=cfg.seed, batch_size=batch_size)
    del model
    _free()
    return ys


def paired_win_rate(scores_a, scores_b, seed=0):
    """P(judge prefers A to B on the same prompt), ties ½, with a bootstrap 95 % CI over prompts."""
    from .evaluation import bootstrap_ci
    a, b = np.asarray(scores_a), np.asarray(scores_b)
    wins = (a > b) + 0.5 * (a == b)
    return {"win_rate": float(wins.mean()), "ci95": bootstrap_ci(wins, seed=seed), "prompts": len(wins)}


def run_eval(preset, out, log=print, progress=True):
    """The headline on the hub: the smallest PPO policy vs the large baseline, and every SFT
    size vs the largest SFT (Figure 1's axis), judged by `hub.gold_judge` → OUT/report.json."""
    from .memory import model_config, shape
    from .models import load_tokenizer
    hub, cfg, out, start = preset.hub, preset.eval, Path(out), time.time()
    _free()  # the PPO trainer's models (reference cycles) before the first generation
    rows = prompts(hub, load_tokenizer(out / "ppo"), split="val")[:hub.eval_prompts]
    if not rows:
        raise ValueError(f"no held-out prompts: the validation users of {', '.join(hub.ppo_prompts)} have none")
    models = {"PPO-" + short(hub.policies[0]): (out / "ppo", None)}
    models |= {"SFT-" + short(n): (out / "sft" / short(n), None) for n in hub.policies}
    models["GPT-" + short(hub.baseline)] = (hub.baseline, hub.baseline_bits)  # its own phase, alone
    ys = {}
    for label, (path, bits) in models.items():
        log(f"eval: responses of {label}" + (f" ({bits}-bit)" if bits else ""))
        ys[label] = _generate(path, rows, preset.ppo.max_new_tokens, cfg, hub.baseline_batch_size, bits)
    log(f"eval: judging {len(rows)} prompts × {len(ys)} models with {hub.gold_judge}")
    flat = judge_scores(hub.gold_judge, [(r["prompt"], y) for v in ys.values() for r, y in zip(rows, v)])
    scores = {k: flat[i * len(rows):(i + 1) * len(rows)] for i, k in enumerate(ys)}  # one load of the judge
    params = {short(n): shape(model_config(n)).params for n in (*hub.policies, hub.baseline)}
    policy, baseline = f"PPO-{short(hub.policies[0])}", f"GPT-{short(hub.baseline)}"
    reference = f"SFT-{short(hub.policies[-1])}"
    report = {"preset": preset.name, "judge": hub.gold_judge, "prompts": len(rows),
              "headline": {**paired_win_rate(scores[policy], scores[baseline]), "policy": policy,
                           "baseline": baseline,
                           "param_ratio": round(params[short(hub.baseline)] / params[short(hub.policies[0])], 2)},
              "figure1": [{"model": k, "vs": reference, **paired_win_rate(scores[k], scores[reference])}
                          for k in scores if k != reference],
              "judge_means": {k: float(np.mean(v)) for k, v in scores.items()},
              "seconds": round(time.time() - start, 1)}
    write_json(out / "report.json", report)
    write_jsonl(out / "responses.jsonl", [{"prompt": r["prompt"], **{k: v[i] for k, v in ys.items()}}
                                          for i, r in enumerate(rows)])
    h = report["headline"]
    log(f"eval: {policy} vs {baseline} ({h['param_ratio']}× params): win rate {h['win_rate']:.3f} "
        f"[{h['ci95'][0]:.3f}, {h['ci95'][1]:.3f}]")
    return report


def reproduce(preset, out, log=print, progress=True):
    """Every hub stage in order, skipping those whose outputs are in `out`."""
    out, start = Path(out), time.time()
    stages = [("sft", out / "sft" / "summary.json", run_sft), ("rm", out / "rm" / "metrics.json", run_rm),
              ("ppo", out / "ppo" / "summary.json", run_ppo), ("eval", out / "report.json", run_eval)]
    for name, marker, stage in stages:
        if marker.exists():
            log(f"reproduce: {name} already in {out}; skipped")
            continue
        t = time.time()
        stage(preset, out, log=log, progress=progress) if name == "eval" else \
            stage(preset, out, resume=True, log=log, progress=progress)
        log(f"reproduce: {name} done in {time.time() - t:.0f} s")
    log(f"reproduce: {time.time() - start:.0f} s; report in {out / 'report.json'}")
    return json.loads((out / "report.json").read_text())
