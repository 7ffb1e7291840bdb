"""`python -m igpt_lib world build`: datasets, corpus, tokenizer, base models, world.json.

Layout of OUT/ (what later stages read):
  world.json                   summary: agreement, parameter counts, base-model gold scores
  world/data/*.jsonl           demonstrations, prompts, comparisons (schema: data/README.md)
  world/data/labelers.json     the labeler population and each group's calibrated noise
  world/corpus.txt             the pretraining corpus, one document per line
  world/tokenizer/             the word-level tokenizer (PreTrainedTokenizerFast)
  world/models/<size>/         base models, HF folders (safetensors)
  world/models/<size>_nlp/     base-<size> fine-tuned on the world's public NLP questions: where the
                               RM starts when `RewardConfig.public_nlp` > 0 (App. C.2; world/public_nlp.py)
Base models are keyed by content (config + corpus + tokenizer + seed). The kit ships the cpu
preset's four (data/base_models/, 16 MB: pretraining them takes ~400 s of the cold run on 2 cores).
The public-NLP model (the RM's start where `RewardConfig.public_nlp` > 0; keyed by its base model,
questions and recipe) is shipped where a preset uses it (cpu's 20,000-question start, 11 MB, ~180 s to
train; smoke trains its own in seconds).
Any other model is trained once per machine and cached under $IGPT_CACHE (default ~/.cache/igpt_kit).
`force_pretrain=True` (`world build --pretrain`) ignores the shipped ones and trains them here.
"""
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from transformers import AutoModelForCausalLM

from ..config import PAPER_PROMPTS, RewardConfig, recipe
from ..data import write_json, write_jsonl, write_text
from ..generation import generate
from ..utils import set_seed
from .corpus import make_corpus
from .datasets import make_datasets
from .gold import gold_score
from .labelers import to_json
from .pretrain import n_params, pretrain
from .prompts import GPT_PROMPT_PREFIX, gpt_prompted
from .public_nlp import multiple_choice
from .tokenizer import train_tokenizer


def cache_root():
    return Path(os.environ.get("IGPT_CACHE", Path.home() / ".cache" / "igpt_kit"))


def shipped_root():
    """Base models that come with the kit (present in a clone of the repository)."""
    return Path(__file__).resolve().parents[2] / "data" / "base_models"


def _digest(*parts):
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()[:16]


def _tokenize(tokenizer, docs):
    ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return np.fromiter((t for doc in ids for t in (*doc, eos)), dtype=np.int64)


def model_key(size, cfg, tokenizer, corpus_hash, seed):
    """Folder name of a base model: its size and a digest of everything its weights depend on."""
    return f"{size.name}-" + _digest(json.dumps(asdict(size)), str((cfg.seq_len, cfg.batch_size, seed)),
                                     corpus_hash, tokenizer.backend_tokenizer.to_str())


def _shipped_or_cached(key, name, log, force_pretrain=False):
    """The model folder `key` shipped with the kit (unless `force_pretrain`) or cached, or None."""
    shipped, cached = shipped_root() / key, cache_root() / "models" / key
    if not force_pretrain and (shipped / "model.safetensors").exists():
        log(f"  {name}: shipped with the kit ({shipped})")
        return shipped
    if (cached / "model.safetensors").exists():
        log(f"  {name}: cached at {cached}")
        return cached
    return None


def _save_to_cache(key, model, tokenizer, log_name, info):
    """Save a trained model (safetensors), its tokenizer and its log into the cache folder `key`, whole
    or not at all (written beside it, then renamed); its path."""
    path = cache_root() / "models" / key
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / log_name, info)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def base_model(size, key, cfg, tokenizer, tokens, seed, log, force_pretrain=False):
    """Path of the pretrained model for `size` (folder name `key`): shipped with the kit,
    cached, or trained now."""
    found = _shipped_or_cached(key, size.name, log, force_pretrain)
    if found:
        return found
    start = time.time()
    model, losses = pretrain(size, tokenizer, tokens, cfg.seq_len, cfg.batch_size, seed)
    path = _save_to_cache(key, model, tokenizer, "pretrain_log.json", {
        "tokens": size.pretrain_tokens, "seconds": round(time.time() - start, 1),
        "final_loss": float(np.mean(losses[-20:])), "loss_every_10_steps": losses[::10]})
    log(f"  {size.name}: {n_params(model):,} params, loss {np.mean(losses[-20:]):.3f}, "
        f"{time.time() - start:.0f} s")
    return path


def evaluate_base(model, rows, cfg, tokenizer):
    """Mean gold score of greedy responses, zero-shot and behind the GPT-prompted prefix."""
    out = {}
    for mode, prompts in (("zero_shot", [r["prompt"] for r in rows]),
                          ("prompted", [gpt_prompted(r["prompt"]) for r in rows])):
        responses = generate(model, tokenizer, prompts, cfg.max_new_tokens)  # ~1 s: no bar
        scores = [gold_score(r, y) for r, y in zip(rows, responses)]
        by_task = {}
        for r, s in zip(rows, scores):
            by_task.setdefault(r["task"], []).append(s)
        out[mode] = {"gold": float(np.mean(scores)),
                     "by_task": {t: round(float(np.mean(v)), 4) for t, v in sorted(by_task.items())},
                     "continue_rate": float(np.mean([y.startswith("Q :") for y in responses])),
                     "examples": [[r["prompt"], y] for r, y in zip(rows[:5], responses[:5])]}
    return out


def write_data(cfg, folder):
    """The world's datasets and labelers into `folder` (the committed data/ is the cpu preset's)."""
    data, labelers, sigma, agreement = make_datasets(cfg)
    for name, rows in data.items():
        write_jsonl(Path(folder) / f"{name}.jsonl", rows)
    write_json(Path(folder) / "labelers.json", to_json(labelers, sigma))
    return data, agreement


def summary_table(report):
    """world.json as the markdown table README and docs/world.md show (printed by the CLI)."""
    lines = ["| size | params | GPT (zero-shot) gold | GPT-prompted gold | continues instead of answering |",
             "|---|---:|---:|---:|---:|"]
    for size, n in report["param_counts"].items():
        lines.append(f"| {size} | {n:,} | {report['base_gold_score'][size]:+.3f} | "
                     f"{report['base_prompted_gold_score'][size]:+.3f} | "
                     f"{report['base_continue_rate'][size]:.0%} |")
    lines += ["", f"Labeler agreement {report['labeler_agreement']:.3f} (paper 0.726), held-out "
                  f"labelers {report['heldout_labeler_agreement']:.3f} (paper 0.773); parameter ratio "
                  f"largest/smallest {report['param_ratio']}×; gold scores are means over "
                  f"{report['eval_prompts']} held-out prompts, greedy decoding."]
    return "\n".join(lines)


def _corpus_and_tokenizer(cfg, wdir):
    docs = make_corpus(cfg.corpus_tokens, cfg.seed + 2)
    write_text(wdir / "corpus.txt", "\n".join(docs) + "\n")
    tokenizer = train_tokenizer(docs)
    tokenizer.save_pretrained(wdir / "tokenizer")
    return tokenizer, _tokenize(tokenizer, docs)


def _pretrain_seed(cfg, i):
    return cfg.seed + 100 + i


def base_model_keys(cfg, tokenizer, tokens):
    """{size name: folder name} of the world's base models (what data/base_models holds)."""
    corpus_hash = _digest(tokens.tobytes())
    return {s.name: model_key(s, cfg, tokenizer, corpus_hash, _pretrain_seed(cfg, i)) for i, s in enumerate(cfg.sizes)}


def _base_models(cfg, wdir, tokenizer, tokens, log, force_pretrain=False):
    """Every size into wdir/models (shipped, cached or pretrained now); their pretraining logs."""
    keys, info = base_model_keys(cfg, tokenizer, tokens), {}
    for i, size in enumerate(cfg.sizes):
        src = base_model(size, keys[size.name], cfg, tokenizer, tokens, _pretrain_seed(cfg, i), log, force_pretrain)
        dst = wdir / "models" / size.name
        shutil.copytree(src, dst, dirs_exist_ok=True)
        info[size.name] = json.loads((dst / "pretrain_log.json").read_text())
        info[size.name].pop("loss_every_10_steps")
    return info


NLP_RECIPE = {"lr": 5e-4, "batch_prompts": 32, "epochs": 1}  # the multiple-choice fine-tune (world/public_nlp.py):
# one pass over the questions; 32 per step: ~20 % faster than 16 on 2 cores (a prototype's 20,000: 164 vs 208 s). The other settings are
# RewardConfig's defaults, not the preset's RM stage (`nlp_config`)


def nlp_seed(cfg):
    return cfg.seed + 5  # the world seed + 1: labelers, + 2: corpus, + 3 / + 4: more RM / test prompts


def nlp_config(preset):
    """Everything the public-NLP fine-tune trains with: RewardConfig's defaults (so a change to the
    preset's RM stage leaves it alone), the RM's size, `NLP_RECIPE` and the seed."""
    return replace(RewardConfig(size=preset.rm.size), **NLP_RECIPE, seed=nlp_seed(preset.world))


def public_nlp_rows(preset, data):
    """The preset's public NLP questions: none repeats a validation or test prompt of `data`
    (the world's datasets, {name: rows})."""
    held_out = {r["prompt"] for name in ("prompts.val", "prompts.test") for r in data[name]}
    return multiple_choice(preset.rm.public_nlp, nlp_seed(preset.world), held_out)


def public_nlp_key(preset, base_key, rows):
    """Folder name of the public-NLP model: a digest of its base model's key, the questions and
    every training setting (`nlp_config`'s `config.recipe`: not how it computes)."""
    return f"{preset.rm.size}_nlp-" + _digest(base_key, json.dumps(rows), json.dumps(recipe(nlp_config(preset))))


def public_nlp_model(preset, wdir, tokenizer, base_key, rows, log, force_pretrain=False):
    """Path of base-`rm.size` (the model in `wdir`/models) fine-tuned on `rows` (`public_nlp_rows`)
    with a new scalar head (App. C.2: the paper's RM started from GPT-3 fine-tuned on public NLP
    datasets): shipped with the kit, cached, or trained now."""
    from ..reward import load_reward_model, train_reward_model
    size, key = preset.rm.size, public_nlp_key(preset, base_key, rows)
    found = _shipped_or_cached(key, f"{size}_nlp", log, force_pretrain)
    if found:
        return found
    start, rcfg = time.time(), nlp_config(preset)
    set_seed(rcfg.seed)  # the new scalar head
    model = load_reward_model(wdir / "models" / size)
    logs = train_reward_model(model, tokenizer, rows, rcfg, progress=False)
    tail = logs[-max(1, len(logs) // 10):]
    path = _save_to_cache(key, model, tokenizer, "public_nlp_log.json", {
        "key": key, "questions": len(rows), "distinct_prompts": len({r["prompt"] for r in rows}),
        "options": sum(len(r["responses"]) for r in rows), "recipe": NLP_RECIPE,
        "seconds": round(time.time() - start, 1), "final_loss": float(np.mean([x["loss"] for x in tail])),
        "final_pair_accuracy": float(np.mean([x["accuracy"] for x in tail]))})
    log(f"  {size}_nlp: {len(rows):,} questions, pair accuracy {np.mean([x['accuracy'] for x in tail]):.3f} "
        f"over the last tenth, {time.time() - start:.0f} s")
    return path


def _public_nlp(preset, wdir, tokenizer, tokens, data, log, force_pretrain=False):
    """wdir/models/<size>_nlp, where the RM starts (`RewardConfig.public_nlp` > 0); its log, or None."""
    if not preset.rm.public_nlp:
        return None
    base_key = base_model_keys(preset.world, tokenizer, tokens)[preset.rm.size]
    src = public_nlp_model(preset, wdir, tokenizer, base_key, public_nlp_rows(preset, data), log, force_pretrain)
    dst = wdir / "models" / f"{preset.rm.size}_nlp"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return json.loads((dst / "public_nlp_log.json").read_text())


def ensure_public_nlp(preset, out, log=print):
    """Path of the model the RM of `preset` starts from (`rm.public_nlp` > 0) for the world in `out`:
    the world's own copy (OUT/world/models/<size>_nlp) when its key is this preset's; otherwise the
    shipped, cached or newly trained one for this world (its tokenizer, corpus, base model and data),
    copied into the world when it has none (a world built before the public-NLP start) and left in
    the cache when the world's copy is another one's (a trial with another count: `bench/rm_seeds.py
    --set public_nlp=N` does not touch the run)."""
    from transformers import AutoTokenizer
    from ..data import read_jsonl
    out, size = Path(out), preset.rm.size
    wdir = out / "world"
    if not (wdir / "corpus.txt").exists() or not (wdir / "models" / size).is_dir():
        raise FileNotFoundError(f"{wdir}: no world with a base-{size} model here (the RM of preset {preset.name} "
                                f"starts from it): python -m igpt_lib world build --preset {preset.name} --out {out}")
    tokenizer = AutoTokenizer.from_pretrained(wdir / "tokenizer")
    tokens = _tokenize(tokenizer, (wdir / "corpus.txt").read_text().splitlines())
    data = {name: read_jsonl(wdir / "data" / f"{name}.jsonl") for name in ("prompts.val", "prompts.test")}
    base_key = base_model_keys(preset.world, tokenizer, tokens)[size]
    rows = public_nlp_rows(preset, data)
    own = wdir / "models" / f"{size}_nlp"
    if (own / "public_nlp_log.json").exists() and \
            json.loads((own / "public_nlp_log.json").read_text()).get("key") == public_nlp_key(preset, base_key, rows):
        return own
    src = public_nlp_model(preset, wdir, tokenizer, base_key, rows, log)
    if own.exists():
        return src
    shutil.copytree(src, own)
    return own


def _score_base_models(cfg, wdir, tokenizer, rows):
    params, scores = {}, {}
    for size in cfg.sizes:
        model = AutoModelForCausalLM.from_pretrained(wdir / "models" / size.name).eval()
        params[size.name] = n_params(model)
        scores[size.name] = evaluate_base(model, rows, cfg, tokenizer)
    return params, scores


def _report(preset, data, agreement, sigma, params, scores, extra):
    cfg, sizes, modes = preset.world, [s.name for s in preset.world.sizes], ("zero_shot", "prompted")
    return {
        "preset": preset.name,
        "seed": cfg.seed,
        "labeler_agreement": round(agreement["train"], 4),
        "heldout_labeler_agreement": round(agreement["heldout"], 4),
        "labeler_agreement_paper": {"train": cfg.agreement, "heldout": cfg.heldout_agreement},
        "labeler_sigma": sigma,
        "param_counts": params,
        "param_ratio": round(params[sizes[-1]] / params[sizes[0]], 2),
        "base_gold_score": {s: round(scores[s]["zero_shot"]["gold"], 4) for s in sizes},
        "base_prompted_gold_score": {s: round(scores[s]["prompted"]["gold"], 4) for s in sizes},
        "base_continue_rate": {s: round(scores[s]["zero_shot"]["continue_rate"], 4) for s in sizes},
        "base_gold_by_task": {s: {m: scores[s][m]["by_task"] for m in modes} for s in sizes},
        "base_examples": {s: {m: scores[s][m]["examples"] for m in modes} for s in sizes},
        "gpt_prompt_prefix": GPT_PROMPT_PREFIX,
        "dataset_sizes": {name: len(rows) for name, rows in data.items()},
        "scale": {"factor": cfg.scale, "paper_prompts": PAPER_PROMPTS},
        **extra,
        "config": asdict(cfg),
    }


def build_world(preset, out, log=print, force_pretrain=False):
    """Build the whole offline world of `preset` into `out`; `force_pretrain`: train the base models
    here even when the kit ships them (a cache hit is still used)."""
    cfg, out = preset.world, Path(out)
    wdir, timings, clock = out / "world", {}, time.time()

    def lap(name):
        nonlocal clock
        timings[name], clock = round(time.time() - clock, 1), time.time()

    set_seed(cfg.seed)
    log(f"world [{preset.name}]: datasets and labelers")
    data, agreement = write_data(cfg, wdir / "data")
    sigma = json.loads((wdir / "data" / "labelers.json").read_text())["sigma"]
    lap("datasets_s")
    log("world: corpus and tokenizer")
    tokenizer, tokens = _corpus_and_tokenizer(cfg, wdir)
    lap("corpus_s")
    log("world: base models (shipped, cached or pretrained now)")
    pretrain_info = _base_models(cfg, wdir, tokenizer, tokens, log, force_pretrain)
    lap("pretrain_s")
    if preset.rm.public_nlp:
        log(f"world: the RM's start, base-{preset.rm.size} fine-tuned on public NLP questions "
            "(shipped, cached or trained now)")
    nlp_info = _public_nlp(preset, wdir, tokenizer, tokens, data, log, force_pretrain)
    lap("public_nlp_s")
    log("world: base-model gold scores on held-out prompts")
    rows = data["prompts.test"][: cfg.eval_prompts]
    params, scores = _score_base_models(cfg, wdir, tokenizer, rows)
    lap("base_eval_s")
    timings["total_s"] = round(sum(timings.values()), 1)
    report = _report(preset, data, agreement, sigma, params, scores, {
        "eval_prompts": len(rows), "corpus_tokens": int(len(tokens)), "vocab_size": len(tokenizer),
        "pretrain": pretrain_info, "public_nlp": nlp_info, "timings": timings})
    write_json(out / "world.json", report)
    log(f"world: done in {timings['total_s']:.0f} s -> {out / 'world.json'}\n")
    log(summary_table(report))
    return report


def ensure_world(preset, out, log=print):
    """world.json of `out`, building the world first if this folder has none."""
    path = Path(out) / "world.json"
    if not path.exists():
        log(f"{path} not found: building the world first")
        return build_world(preset, out, log)
    return json.loads(path.read_text())
