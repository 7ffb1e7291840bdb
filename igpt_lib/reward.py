"""Step 2b: the reward model — a language model with a scalar head, trained with the K-way loss
(from SFT-`size`, §3.5, or from base-`size` fine-tuned on public NLP questions, App. C.2: `rm_start`).

One batch element is one prompt with all its K responses: each response is forwarded once
and the C(K,2) ordered pairs share those K scores (`losses.ranking_loss`, InstructGPT eq. 1).
After training, the output is shifted so that labeler demonstrations score 0 on average
(§3.5); the shift is folded into the final layer norm's bias, so the saved folder is a plain
`AutoModelForSequenceClassification` whose scores are already normalised.
Lesson: notebooks/03_reward_model.ipynb.
"""
import json
import math
import shutil

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification, DynamicCache

from .checkpoint import latest, load_state, save_state
from .data import response_separator
from .losses import ranking_loss
from .models import autocast, best_device, grad_scaler
from .world.gold import gold_score, judge


def rm_text(prompt, response, tokenizer):
    """What the RM reads: prompt, response, then <eos> (the policy's stop token)."""
    return f"{prompt}{response_separator(prompt)}{response}{tokenizer.eos_token}"


def load_reward_model(path, dtype=torch.float32):
    """The RM from an SFT (causal LM) folder — new scalar head — or from a saved RM folder.
    float32 by default (weights that train: the hub's Pythia checkpoints are float16); a frozen
    RM on a GPU may take `models.compute_dtype()`."""
    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype)


SCORE_ROWS = 32  # texts per forward pass when no batch size is given


def score_texts(model, tokenizer, texts, max_length, batch_size=None):
    """RM scores (N,) of full texts, in the given order; the model reads its last non-pad token.
    Texts of similar length share a forward pass (right-padded only to their chunk's longest),
    so little compute goes to padding; the result stays differentiable for training."""
    return score_ids(model, tokenizer, tokenize(tokenizer, texts, max_length), batch_size)


def tokenize(tokenizer, texts, max_length):
    """Token ids of RM texts, as the RM reads them (truncated, no special tokens added)."""
    return tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=False)["input_ids"]


def score_ids(model, tokenizer, ids, batch_size=None):
    """`score_texts` of texts already tokenized (lists of token ids, no special tokens added)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    try:
        out = []
        for start in range(0, len(order), batch_size or SCORE_ROWS):
            chunk = order[start:start + (batch_size or SCORE_ROWS)]
            enc = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            out.append(model(input_ids=enc["input_ids"].to(model.device),
                             attention_mask=enc["attention_mask"].to(model.device)).logits.squeeze(-1))  # (b,)
    finally:
        tokenizer.padding_side = side
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return torch.cat(out)[inverse.to(out[0].device)]


def set_ids(tokenizer, rows, max_length):
    """Token ids of every response of every row, as the RM reads them: one list per row."""
    texts = [rm_text(r["prompt"], y, tokenizer) for r in rows for y in r["responses"]]
    flat = tokenize(tokenizer, texts, max_length)
    out, i = [], 0
    for r in rows:
        out.append(flat[i:i + len(r["responses"])])
        i += len(r["responses"])
    return out


def set_rewards(model, tokenizer, rows, max_length, ids=None, share_prompt=True):
    """(rewards (B, K), ranks (B, K), mask (B, K)) for prompts with K_i responses each;
    every response is forwarded exactly once (Σ K_i sequences; with `share_prompt`, each
    set's prompt once and each distinct response once from its KV cache: `score_shared`).
    `ids`: the rows' `set_ids`, when they are tokenized already."""
    ids = set_ids(tokenizer, rows, max_length) if ids is None else ids
    if share_prompt and not getattr(model, "is_activation_checkpointing", False):  # checkpointing drops the cache
        flat = score_shared(model, tokenizer, ids, len(ids), sum(map(len, ids)))   # (Σ K_i,): passes cut by length only
    else:
        flat = score_ids(model, tokenizer, [x for row in ids for x in row])         # (Σ K_i,)
    ks = [len(r["responses"]) for r in rows]
    rewards = pad_sequence(list(flat.split(ks)), batch_first=True)             # (B, K)
    ranks = pad_sequence([torch.tensor(r["ranks"]) for r in rows], batch_first=True)
    mask = pad_sequence([torch.ones(k, dtype=torch.bool) for k in ks], batch_first=True)
    return rewards.float(), ranks.to(rewards.device), mask.to(rewards.device)


SHARED_SETS = 32  # sets per forward pass in `score_shared`
PASS_TOKENS = 128  # what one more forward pass costs, in padded tokens (`length_chunks`; cpu RM, docs item 25)


def length_chunks(lengths, max_rows, pass_tokens=PASS_TOKENS):
    """Indices sorted by length, cut into chunks of at most `max_rows` that pad little: a chunk
    grows while its padding (rows × longest − Σ lengths) stays within `pass_tokens`, the cost of
    the extra forward pass that cutting would start. One long response no longer pads a pass of
    short ones."""
    chunks, real = [], 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n = len(chunks[-1]) if chunks else 0
        if not n or n >= max_rows or (n + 1) * lengths[i] - real - lengths[i] > pass_tokens:
            chunks.append([])
            real = 0
        chunks[-1].append(i)
        real += lengths[i]
    return chunks


def score_shared(model, tokenizer, ids, sets_per_pass=SHARED_SETS, rows_per_pass=SCORE_ROWS):
    """`score_ids` of every sequence of every set (lists of token ids; flat (Σ K_i,), in order),
    forwarding each set's shared prefix (its prompt) once and each distinct sequence's rest once,
    from the prefix's KV cache: the same scores, for fewer token forwards when prompts are long
    and responses short (the cpu world: prompts ~15 tokens, responses ~4, a quarter of them
    repeated within their set). Differentiable, so training uses it (§3.5's one batch element
    per prompt, taken one step further: the prompt is read once too). Sets of similar prefix
    length share a pass, and responses of similar length (`length_chunks`)."""
    uniq = [list(dict.fromkeys(map(tuple, seqs))) for seqs in ids]             # distinct sequences per set
    cut = [common_prefix(u) for u in uniq]
    first = np.cumsum([0] + [len(seqs) for seqs in ids])
    groups = length_chunks(cut, sets_per_pass)
    parts = [_score_shared_pass(model, tokenizer, [ids[b] for b in g], [uniq[b] for b in g], [cut[b] for b in g],
                                rows_per_pass) for g in groups]
    place = torch.tensor([j for g in groups for b in g for j in range(first[b], first[b + 1])])
    out = torch.empty(len(place), device=parts[0].device, dtype=parts[0].dtype)
    return out.index_put((place.to(out.device),), torch.cat(parts))             # back to the input order


def common_prefix(seqs):
    """How many leading tokens all `seqs` share, leaving each at least its last token."""
    n, cap = 0, min(len(s) for s in seqs) - 1
    while n < cap and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n


def _score_shared_pass(model, tokenizer, ids, uniq, cut, rows_per_pass):
    first = np.cumsum([0] + [len(u) for u in uniq])
    index = [int(first[b]) + uniq[b].index(tuple(s)) for b, seqs in enumerate(ids) for s in seqs]
    if min(cut) == 0:  # a set with nothing shared: no cache row to read from
        return score_ids(model, tokenizer, [list(s) for u in uniq for s in u])[torch.tensor(index)]
    dev, pad = model.device, tokenizer.pad_token_id

    def padded(seqs):  # right-padded (n, T) ids and mask
        width = max(len(s) for s in seqs)
        ids_ = torch.tensor([list(s) + [pad] * (width - len(s)) for s in seqs], device=dev)
        return ids_, torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=dev)
    prefix_ids, prefix_mask = padded([u[0][:c] for u, c in zip(uniq, cut)])     # (B, P)
    cache = model(input_ids=prefix_ids, attention_mask=prefix_mask, use_cache=True).past_key_values
    layers = [(k, v) for k, v, *_ in cache]                                     # (B, heads, P, d) each
    owner = [b for b, u in enumerate(uniq) for _ in u]                            # the set of each distinct row
    rest = [s[c:] for u, c in zip(uniq, cut) for s in u]
    chunks = length_chunks([len(r) for r in rest], rows_per_pass)                 # similar lengths share a pass
    parts = []
    for rows in chunks:
        sets = torch.tensor([owner[i] for i in rows], device=dev)
        rest_ids, rest_mask = padded([rest[i] for i in rows])                     # (n, S)
        positions = torch.tensor(cut, device=dev)[sets, None] + torch.arange(rest_ids.shape[1], device=dev)
        cached = DynamicCache([(k.index_select(0, sets), v.index_select(0, sets)) for k, v in layers])  # (n, ..)
        parts.append(model(input_ids=rest_ids, attention_mask=torch.cat([prefix_mask[sets], rest_mask], 1),
                           position_ids=positions, past_key_values=cached).logits.squeeze(-1))       # (n,)
    order = [i for rows in chunks for i in rows]
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))                       # distinct row -> its place in parts
    return torch.cat(parts)[inverse[torch.tensor(index)].to(dev)]


def lr_factor(step, total, warmup, min_ratio):
    """Warm-up (if any), then cosine decay to `min_ratio` of the peak (App. C)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train_reward_model(model, tokenizer, rows, cfg, progress=True, log_every=5, checkpoint_dir=None,
                       resume=False):
    """K-way training; returns per-step logs (loss, pair accuracy, forwards). With
    `checkpoint_dir`, the state (weights, optimizer, RNG, step, logs) is saved there every
    `cfg.save_every` steps; `resume` continues from the newest checkpoint bit for bit."""
    torch.manual_seed(cfg.seed)
    # foreach: one kernel per op over all tensors (CUDA's default; on CPU the same numbers, measured
    # bit-equal here). On CPU it saves per-step overhead for small models (the RM bench's, at a few
    # prompts per step) and costs ~4 ms a step at SFT-l's 2.8M parameters (~1 s over the cpu RM)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay,
                            foreach=True)
    ids = set_ids(tokenizer, rows, cfg.max_length)  # tokenized once, not once per epoch
    rng = np.random.default_rng(cfg.seed)
    orders = [rng.permutation(len(rows)) for _ in range(cfg.epochs)]  # the data cursor is `step`
    starts = [(e, s) for e in range(cfg.epochs) for s in range(0, len(rows), cfg.batch_prompts)]
    logs, step = [], 0
    scaler = grad_scaler(model.device, cfg.mixed_precision)  # float16 only (a T4); otherwise it passes through
    found = latest(checkpoint_dir) if checkpoint_dir and resume else None
    if found:
        tensors, values = load_state(found, {"rm": model}, {"rm": opt})
        torch.set_rng_state(tensors["torch_rng"])
        step, logs = values["step"], values["logs"]
        if values.get("scaler"):
            scaler.load_state_dict(values["scaler"])

    def save():
        return save_state(checkpoint_dir, step, {"rm": model}, {"rm": opt}, {"torch_rng": torch.get_rng_state()},
                          {"logs": logs, "scaler": scaler.state_dict()}, keep=cfg.keep_checkpoints)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    bar = tqdm(total=len(starts), initial=step, desc="reward model", disable=not progress, leave=False)
    while step < len(starts):
        epoch, start = starts[step]
        picked = orders[epoch][start:start + cfg.batch_prompts]
        chunk = [rows[i] for i in picked]
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, len(starts), cfg.warmup_steps, cfg.min_lr_ratio)
        with autocast(model.device, cfg.mixed_precision):  # 16-bit compute on a GPU if asked; float32 weights and loss
            rewards, ranks, mask = set_rewards(model, tokenizer, chunk, cfg.max_length, [ids[i] for i in picked],
                                               cfg.share_prompt)
        loss = ranking_loss(rewards, ranks, mask)
        if not torch.isfinite(loss):  # stop before it reaches the weights; keep the last good state
            kept = f"; the state before it is saved in {save()} (--resume continues from it)" if checkpoint_dir else ""
            raise FloatingPointError(f"reward model step {step}: ranking loss is {loss.item()}; "
                                     f"stopped before the update (lower cfg.lr?){kept}")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        logs.append({"step": step, "loss": loss.item(), "forwards": int(mask.sum()),
                     "accuracy": pair_accuracy(rewards.detach(), ranks, mask)})
        step += 1
        bar.update()
        if step % log_every == 0:
            bar.set_postfix(loss=f"{np.mean([x['loss'] for x in logs[-log_every:]]):.3f}")
        if checkpoint_dir and (step % cfg.save_every == 0 or step == len(starts)):
            save()
    bar.close()
    model.eval()
    return logs


def pair_accuracy(rewards, ranks, mask):
    """Fraction of strictly ordered pairs the rewards order the same way (ties in reward: ½)."""
    better = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    diff = rewards.unsqueeze(2) - rewards.unsqueeze(1)     # (B, K, K)
    right = (diff > 0).float() + 0.5 * (diff == 0).float()
    return float(right[better].mean()) if better.any() else float("nan")


@torch.no_grad()
def score_sets(model, tokenizer, rows, cfg):
    """RM score of every response of every row: list of lists."""
    ids = set_ids(tokenizer, rows, cfg.max_length)
    flat = (score_shared(model, tokenizer, ids, cfg.eval_batch_size, cfg.eval_batch_size) if cfg.share_prompt else
            score_ids(model, tokenizer, [x for r in ids for x in r], cfg.eval_batch_size)).tolist()
    out, i = [], 0
    for r in rows:
        out.append(flat[i:i + len(r["responses"])])
        i += len(r["responses"])
    return out


def evaluate(scores, rows, by_gold=False):
    """Pair accuracy against the labelers' ranks (or the gold order), overall and per task,
    with the margins r_better − r_worse of the ordered pairs; against the gold order also per
    kind of pair (`pair_kind`). The 95 % interval treats each ranked
    set as one draw (`_ci95`): a set's pairs share its responses, so they are not independent."""
    hits, margins, sets, kinds = {}, [], [], {}
    for s, r in zip(scores, rows):
        verdicts = [judge(r, y) for y in r["responses"]] if by_gold else None
        order = [-v["gold"] for v in verdicts] if by_gold else r["ranks"]
        mine = []
        for i in range(len(s)):
            for j in range(len(s)):
                if order[i] < order[j]:
                    mine.append(1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
                    margins.append(s[i] - s[j])
                    if by_gold:
                        kinds.setdefault(pair_kind(verdicts[i], verdicts[j]), []).append(mine[-1])
        hits.setdefault(r.get("task", "all"), []).extend(mine)
        if mine:
            sets.append((sum(mine), len(mine)))
    every = [h for v in hits.values() for h in v]
    out = {"accuracy": float(np.mean(every)), "pairs": len(every), "sets": len(sets),
           "ci95": _ci95(sets), "by_task": {t: round(float(np.mean(v)), 4) for t, v in sorted(hits.items()) if v},
           "margins": margins}
    if by_gold:
        out |= {"by_kind": {k: round(float(np.mean(kinds[k])), 4) for k in PAIR_KINDS if k in kinds},
                "pairs_by_kind": {k: len(kinds[k]) for k in PAIR_KINDS if k in kinds}}
    return out


PAIR_KINDS = ("junk", "right_vs_wrong", "partial_credit")


def pair_kind(better, worse):
    """What separates a strictly gold-ordered pair (two `gold.judge` verdicts): "junk" when either
    response is toxic or invents a fact (the gold's penalties weigh in, whichever side wins), else
    "right_vs_wrong" when the better one earns the task's full credit (checking the answer), else
    "partial_credit" (both wrong, one less so: an item misplaced, a word off). Issue #4: the RM
    must learn correctness, not only that junk is bad."""
    if better["toxic"] or worse["toxic"] or better["invented"] or worse["invented"]:
        return "junk"
    return "right_vs_wrong" if better["quality"] >= 1.0 else "partial_credit"


def _ci95(sets):
    """95 % interval of a pair accuracy Σ hits / Σ pairs over ranked sets [(hits, pairs), ...], each set
    one cluster (the ratio estimator's cluster-robust standard error). The pairs of one set share its
    K responses; counted as independent they gave an interval half as wide (cpu: ± 0.013 against ± 0.027
    on 267 sets, which a bootstrap over the sets confirms: docs item 27)."""
    if not sets:
        return [0.0, 1.0]
    h, n = np.array(sets, dtype=float).T
    m, k = h.sum() / n.sum(), len(n)
    half = 1.96 * math.sqrt(k / max(k - 1, 1) * float(((h - m * n) ** 2).sum())) / n.sum() if k > 1 else 0.5
    return [round(float(max(m - half, 0.0)), 4), round(float(min(m + half, 1.0)), 4)]


@torch.no_grad()
def shift_rewards(model, delta):
    """Add `delta` to every RM output by moving the final layer norm's bias along the head's
    weight w: score = w·(LN(x) + b) and w·(δ w/‖w‖²) = δ. Exact, and it survives
    save_pretrained / from_pretrained because no new parameter is introduced."""
    head = model.score.weight[0]                                    # (H,)
    base = model.base_model
    norm = next((getattr(base, n) for n in ("final_layer_norm", "ln_f", "norm") if hasattr(base, n)), None)
    if norm is None or getattr(norm, "bias", None) is None:
        raise NotImplementedError(f"{type(model).__name__}: final norm has no bias to shift")
    norm.bias += delta * head / head.dot(head)


@torch.no_grad()
def normalise(model, tokenizer, demos, cfg):
    """Shift the RM so labeler demonstrations score mean 0 (§3.5); (mean before, mean after)."""
    texts = [rm_text(d["prompt"], d["response"], tokenizer) for d in demos]
    before = float(score_texts(model, tokenizer, texts, cfg.max_length, cfg.eval_batch_size).mean())
    shift_rewards(model, -before)
    after = float(score_texts(model, tokenizer, texts, cfg.max_length, cfg.eval_batch_size).mean())
    return before, after


def run_rm(preset, out, resume=False, log=print, progress=True):
    """`python -m igpt_lib rm`: comparisons of SFT samples → one K-way RM in OUT/rm/. Training
    state is checkpointed in OUT/rm/checkpoints/ (removed when the stage is done); `resume`
    continues from there (and resumes an interrupted SFT stage first)."""
    from pathlib import Path
    from .comparisons import ensure_comparisons
    from .sft import run_sft
    from .world.build import ensure_world
    out = Path(out)
    ensure_world(preset, out, log)
    _refuse_unless_resume(out / "rm" / "checkpoints", resume)
    if not (out / "sft" / "summary.json").exists():
        log("rm: no SFT models in this folder: running step 1 first")
        run_sft(preset, out, resume=resume, log=log, progress=progress)
    comps = ensure_comparisons(preset, out, log, progress)
    return fit_reward_model(preset, out, comps, out / "rm", resume, log, progress)


def rm_start(preset, out, log=None):
    """The folder the RM starts from: SFT-`size` (§3.5), or, when `rm.public_nlp`, base-`size`
    fine-tuned on that many of the world's public NLP questions (App. C.2: OUT/world/models/<size>_nlp,
    made with the world; `world.build.ensure_public_nlp` makes or finds it for a world without it)."""
    from pathlib import Path
    from .world.build import ensure_public_nlp
    cfg, out = preset.rm, Path(out)
    if not cfg.public_nlp:
        return out / "sft" / cfg.size
    return ensure_public_nlp(preset, out, log or (lambda *a: None))


def _where(path, out):
    """`path` relative to the run folder `out` where it lies inside it (metrics, checkpoints)."""
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return str(path)


def _refuse_unless_resume(ckpt, resume):
    if latest(ckpt) is not None and not resume:
        raise FileExistsError(f"{ckpt} holds checkpoints of an interrupted run (newest: {latest(ckpt).name}); "
                              "pass --resume to continue it, or remove the folder to start again")


def _refuse_another_start(ckpt, resume, start):
    """Checkpoints in `ckpt` continue only the training they came from: the same starting model and
    RewardConfig (`start`: its `config.recipe`, without how it computes), recorded in ckpt/start.json
    when training begins (checkpoints from before that file started from SFT-`size`)."""
    from .data import write_json
    marker = ckpt / "start.json"
    if resume and latest(ckpt) is not None:
        before = json.loads(marker.read_text()) if marker.exists() else {"start": f"sft/{start['config']['size']}"}
        changed = [k for k in ("start", "config") if k in before and json.dumps(before[k]) != json.dumps(start[k])]
        if changed:
            raise ValueError(f"{ckpt}: these checkpoints were trained with another {' and '.join(changed)} "
                             f"(from {before['start']}; now {start['start']}); remove the folder to start again")
        return
    ckpt.mkdir(parents=True, exist_ok=True)
    write_json(marker, start)


def fit_reward_model(preset, out, comps, rm_dir, resume=False, log=print, progress=True, figure="rm_margins"):
    """Train one RM from `rm_start` (SFT-`preset.rm.size`, or its base fine-tuned on public NLP
    questions) on comps["train"], shift it so demonstrations
    score 0, evaluate it on comps["val"] / comps["heldout"], save it to `rm_dir` (an HF folder
    with metrics.json and train_log.jsonl). Also used by the iterated rounds (rounds.py)."""
    import time
    from dataclasses import asdict
    from pathlib import Path
    from .config import recipe
    from .data import load_demonstrations, write_json, write_jsonl
    from .models import load_tokenizer, save_checkpoint
    from .utils import set_seed
    cfg, out, rm_dir, start = preset.rm, Path(out), Path(rm_dir), time.time()
    ckpt = rm_dir / "checkpoints"
    _refuse_unless_resume(ckpt, resume)
    tokenizer = load_tokenizer(out / "sft" / cfg.size)
    start_dir = rm_start(preset, out, log)
    _refuse_another_start(ckpt, resume, {"start": _where(start_dir, out), "config": recipe(cfg)})
    set_seed(cfg.seed)  # a new scalar head (the SFT start) is random: seed it, or accuracy varies run to run (±0.04)
    model = load_reward_model(start_dir).to(best_device())
    log(f"rm: starting from {start_dir}; training on {len(comps['train'])} ranked sets "
        f"({sum(len(r['responses']) for r in comps['train'])} responses, one forward each)")
    if resume and latest(ckpt) is not None:
        log(f"rm: resuming from {latest(ckpt).name}")
    logs = train_reward_model(model, tokenizer, comps["train"], cfg, progress, checkpoint_dir=ckpt, resume=resume)
    demos = load_demonstrations(out / "world" / "data" / "demonstrations.train.jsonl")
    before, after = normalise(model, tokenizer, demos, cfg)
    report = validation_accuracies(score_sets(model, tokenizer, comps["val"], cfg), comps)
    report["labelers_vs_gold"] = _labelers_vs_gold(comps["val"])
    report["gold_vs_labelers"] = gold_ceiling(comps)
    margins = report["train_labelers"].pop("margins")
    for part in report.values():
        if isinstance(part, dict):
            part.pop("margins", None)
    report |= {"demo_mean_before": before, "demo_mean_after": after,
               "start": _where(start_dir, out),
               "train_prompts": len(comps["train"]), "seconds": round(time.time() - start, 1),
               "config": asdict(cfg)}
    save_checkpoint(model, tokenizer, rm_dir)
    write_json(rm_dir / "metrics.json", report)
    write_jsonl(rm_dir / "train_log.jsonl", logs)
    _margin_figure(margins, out, figure)
    shutil.rmtree(ckpt, ignore_errors=True)  # the stage's outputs are complete
    log(_summary(report))
    return report


def _summary(report):
    """The RM stage's closing log line."""
    fold = f", training labelers held out {report['fold_labelers']['accuracy']:.3f}" if "fold_labelers" in report else ""
    kinds = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in report["gold_strict"]["by_kind"].items())
    return (f"rm: accuracy on validation comparisons: training labelers "
            f"{report['train_labelers']['accuracy']:.3f}{fold}, held-out labelers "
            f"{report['heldout_labelers']['accuracy']:.3f} (the gold itself: "
            f"{report['gold_vs_labelers']['train_labelers']:.3f} / {report['gold_vs_labelers']['heldout_labelers']:.3f}), "
            f"gold order {report['gold_strict']['accuracy']:.3f} ({kinds}); "
            f"demo mean {report['demo_mean_before']:+.3f} -> {report['demo_mean_after']:+.4f}")


def validation_accuracies(val_scores, comps):
    """The stage's accuracies of the RM's scores of the validation sets: against the training
    labeler's ranks, the held-out labeler's ranks of the same sets (§3.4's group), the gold order
    and, where the run has a labeler fold, the fold labeler's ranks (§4.1's 69.6 %)."""
    report = {"train_labelers": evaluate(val_scores, comps["val"]),
              "heldout_labelers": evaluate(val_scores, comps["heldout"]),
              "gold_strict": evaluate(val_scores, comps["val"], by_gold=True)}
    if "fold" in comps:  # §4.1's held-out measurement: training labelers whose labels the RM never saw
        report["fold_labelers"] = evaluate(val_scores, comps["fold"])
    return report


def gold_ceiling(comps):
    """Accuracy of the gold score itself against the training and the held-out labelers' ranks
    of the validation sets: about the most an RM can reach on those labels (pairs of equal gold are
    coin flips for the labelers, ½ for any judge; only the labelers' small personal weights on the
    gold's parts, world/labelers.py, leave an RM room above it). The paper's nearest yardstick is labeler
    agreement, 72.6 % / 77.3 % (§3.4), against its RM's 72.4 % / 69.6 % (§4.1)."""
    gold = [[gold_score(r, y) for y in r["responses"]] for r in comps["val"]]
    return {f"{name}_labelers": evaluate(gold, comps[split])["accuracy"]
            for name, split in (("train", "val"), ("heldout", "heldout"), ("fold", "fold")) if split in comps}


def _labelers_vs_gold(rows):
    """How often the labelers' own ranking agrees with the gold order: the ceiling of gold-order
    accuracy for an RM trained on these labels (`gold_ceiling` is the other way round)."""
    return evaluate([[-x for x in r["ranks"]] for r in rows], rows, by_gold=True)["accuracy"]


def _margin_figure(margins, out, name="rm_margins"):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(margins, bins=40)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="r(better) − r(worse), validation pairs", ylabel="pairs",
           title="reward-model margins (right of 0 = correct)")
    fig.tight_layout()
    (out / "figures").mkdir(exist_ok=True)
    fig.savefig(out / "figures" / f"{name}.png", dpi=120)
    plt.close(fig)
