"""Step 1: supervised fine-tuning on demonstrations with trl.SFTTrainer (§3.5, App. C).

The loss is `losses.sft_loss` (response tokens only: TRL's completion-only loss on a
prompt/completion dataset). After every epoch a *scorer* rates greedy responses to validation
prompts, and the best epoch is kept: the paper selects its SFT model by RM score on
validation, because validation loss overfits after ~1 epoch while quality keeps improving.
Here the scorer is the world's gold labeler; the RM stage can pass its reward model instead.
Lesson: notebooks/01_sft.ipynb.
"""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
import trl
from datasets import Dataset
from transformers import TrainerCallback

from .checkpoint import SealCheckpoints, latest_sealed
from .data import response_separator, write_json, write_text
from .generation import generate
from .models import load_causal_lm, lora_config, save_checkpoint
from .world.gold import gold_score


def gold_scorer(rows, responses):
    """The offline world's gold labeler as a scorer: rows need `task` and `meta`."""
    return [gold_score(r, y) for r, y in zip(rows, responses)]


def to_trl_dataset(rows):
    """Our demonstrations → TRL's prompt/completion format (TRL appends <eos>)."""
    return Dataset.from_list([{"prompt": r["prompt"], "completion": response_separator(r["prompt"]) + r["response"]}
                              for r in rows])


class EpochSelector(TrainerCallback):
    """After each evaluation: log train/val loss and the scorer's mean on validation prompts
    to metrics.jsonl; save the weights when the score is the best so far (§3.5)."""

    def __init__(self, tokenizer, eval_rows, scorer, cfg, folder, size, metrics_path, history=()):
        self.tokenizer, self.eval_rows, self.scorer, self.cfg = tokenizer, eval_rows, scorer, cfg
        self.folder, self.size, self.metrics_path = folder, size, metrics_path
        self.train_loss, self.best, self.history = None, None, []
        for row in history:  # resuming: the epochs already evaluated (their best is in `folder`)
            self._record(row)
            self.train_loss = row["train_loss"]

    def _record(self, row):
        """Add an epoch's row; True when it is the best so far (no scorer: the last epoch wins)."""
        self.history.append(row)
        key = row.get("score", row["epoch"])
        if self.best is None or key > self.best[1]:
            self.best = (row["epoch"], key)
            return True
        return False

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.train_loss = logs["loss"]
            if not math.isfinite(self.train_loss):
                kept = (f"the best epoch so far ({self.best[0]}) is saved in {self.folder}" if self.best
                        else "nothing was saved")
                if args.save_strategy != "no":
                    kept += f"; the training state at each epoch end is in {args.output_dir}"
                raise FloatingPointError(f"sft {self.size}: training loss is {self.train_loss} at epoch "
                                         f"{state.epoch:g} (step {state.global_step}); stopped; {kept}")

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        epoch = int(round(state.epoch or 0))
        model.eval()
        prompts = [r["prompt"] for r in self.eval_rows]
        responses = generate(model, self.tokenizer, prompts, self.cfg.max_new_tokens,
                             batch_size=self.cfg.eval_batch_size)
        row = {"size": self.size, "epoch": epoch, "train_loss": self.train_loss if epoch else None,
               "val_loss": metrics.get("eval_loss")}
        if self.scorer is not None:
            row["score"] = float(np.mean(self.scorer(self.eval_rows, responses)))
        if self.scorer is not gold_scorer and _checkable(self.eval_rows):  # gold beside any scorer
            row["gold"] = float(np.mean(gold_scorer(self.eval_rows, responses)))
        elif self.scorer is gold_scorer:
            row["gold"] = row["score"]
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        if self._record(row):
            save_checkpoint(model, self.tokenizer, self.folder)
        model.train()

    def choice(self):
        epoch, score = self.best
        if self.scorer is None:
            why = "no scorer given: the last epoch is kept"
        else:
            best_loss = min(self.history, key=lambda r: r["val_loss"])["epoch"]
            why = (f"highest validation score {score:+.3f} (§3.5: select by score, not loss; "
                   f"validation loss was lowest at epoch {best_loss})")
        return {"epoch": epoch, "score": score if self.scorer else None, "why": why}


def trl_args(cfg, output_dir, progress, size=None, checkpoints=False):
    """TRL's SFTConfig from ours: the paper's recipe, scaled (see config.SFTConfig). With
    `checkpoints`, the Trainer saves its full state into `output_dir` at every epoch end, where
    the loss is logged too (a mid-epoch resume would restart the logged running mean)."""
    on_gpu = torch.cuda.is_available()
    return trl.SFTConfig(
        output_dir=str(output_dir), num_train_epochs=cfg.epochs, learning_rate=cfg.lr_for(size),
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio},
        warmup_steps=0, adam_beta1=cfg.adam_betas[0], adam_beta2=cfg.adam_betas[1],
        weight_decay=cfg.weight_decay, max_length=cfg.max_length, completion_only_loss=True,
        eval_strategy="epoch", logging_strategy="epoch", report_to="none",
        save_strategy="epoch" if checkpoints else "no", save_total_limit=2,
        logging_nan_inf_filter=False,  # HF's default hides a NaN loss behind the running mean
        bf16=cfg.mixed_precision and on_gpu and torch.cuda.is_bf16_supported(),
        fp16=cfg.mixed_precision and on_gpu and not torch.cuda.is_bf16_supported(),  # a T4 (compute capability 7.5) has no bf16
        optim=cfg.optim,
        activation_checkpointing=cfg.gradient_checkpointing,
        seed=cfg.seed, data_seed=cfg.seed, disable_tqdm=not progress, use_cpu=not on_gpu)


def train_sft(model_path, tokenizer, train_rows, val_rows, eval_rows, cfg, folder, size,
              metrics_path, scorer=gold_scorer, progress=True, checkpoint_dir=None, resume=False):
    """Fine-tune one model; the chosen epoch's weights end in `folder`. Returns the choice.
    With `checkpoint_dir`, the full training state is saved there at each epoch end, and
    `resume` continues from the newest complete checkpoint (metrics.jsonl is cut back to it)."""
    start = latest_sealed(checkpoint_dir) if checkpoint_dir and resume else None
    # Resuming full fine-tuning, the weights come from the checkpoint through from_pretrained:
    # the Trainer's own reload is a plain load_state_dict(strict=False), which in transformers 5
    # silently skips renamed keys (GPT-NeoX saves lm_head as embed_out; transformers#43701).
    weights = start if start and not cfg.lora_r else model_path
    model = load_causal_lm(weights, residual_dropout=cfg.residual_dropout, load_in_8bit=cfg.load_in_8bit,
                           frozen_base=bool(cfg.lora_r))  # LoRA: a 16-bit base on a GPU
    history = _cut_metrics(metrics_path, size, start) if resume else []
    selector = EpochSelector(tokenizer, eval_rows, scorer, cfg, folder, size, metrics_path, history)
    peft = lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) if cfg.lora_r else None
    work_dir = Path(checkpoint_dir or Path(folder).parent / ".trl")
    trainer = trl.SFTTrainer(model=model, args=trl_args(cfg, work_dir, progress, size, bool(checkpoint_dir)),
                             train_dataset=to_trl_dataset(train_rows),
                             eval_dataset=to_trl_dataset(val_rows), processing_class=tokenizer,
                             peft_config=peft, callbacks=[selector, SealCheckpoints()])
    if start is None:
        trainer.evaluate()  # epoch 0: the base model, so the choice can also be "no fine-tuning"
    trainer.train(resume_from_checkpoint=str(start) if start else None)
    if not checkpoint_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    return selector.choice()


def _cut_metrics(metrics_path, size, checkpoint):
    """Resuming `size` from `checkpoint` (an epoch end; None = from the start): drop its rows
    of metrics.jsonl written after that epoch, so the file ends as an uninterrupted run's would.
    Returns the rows kept for `size`."""
    path = Path(metrics_path)
    last = -1 if checkpoint is None else round(json.loads((checkpoint / "trainer_state.json").read_text())["epoch"])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    rows = [(line, json.loads(line)) for line in lines]
    keep = [(line, r) for line, r in rows if r["size"] != size or r["epoch"] <= last]
    write_text(path, "".join(line for line, _ in keep))
    return [r for _, r in keep if r["size"] == size]


def _data(out, cfg, dataset):
    """(train, val, eval rows, scorer): the world's demonstrations unless `dataset` is given."""
    wdata = Path(out) / "world" / "data"
    if dataset is None:
        from .data import load_demonstrations, load_prompts
        train, val = (load_demonstrations(wdata / f"demonstrations.{s}.jsonl") for s in ("train", "val"))
        return train, val, load_prompts(wdata / "prompts.val.jsonl")[: cfg.eval_prompts], gold_scorer
    from .data import load_demonstrations_any, split_by_user
    train, val = split_by_user(load_demonstrations_any(dataset))
    return train, val, val[: cfg.eval_prompts], gold_scorer if _checkable(val) else None


def _checkable(rows):
    """True when the world's gold labeler can score answers to these rows."""
    from .world.tasks import TASKS
    return bool(rows) and all(r.get("task") in TASKS and "meta" in r for r in rows)


def _test_gold(folder, tokenizer, rows, cfg):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    responses = generate(model, tokenizer, [r["prompt"] for r in rows], cfg.max_new_tokens,
                         batch_size=cfg.eval_batch_size)
    return float(np.mean(gold_scorer(rows, responses)))


def _write_figure_and_summary(out, summary, cfg, seconds):
    from dataclasses import asdict
    from .plots import plot_metrics
    rows = [json.loads(line) for line in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    fig = plot_metrics(rows, "epoch", ["train_loss", "val_loss", "score"], group="size",
                       title="SFT: losses and validation score per epoch")
    (out / "figures").mkdir(exist_ok=True)
    fig.savefig(out / "figures" / "sft_curves.png", dpi=120)
    write_json(out / "sft" / "summary.json", {"models": summary, "seconds": round(seconds, 1),
                                              "config": asdict(cfg)})


def run_sft(preset, out, model=None, dataset=None, resume=False, log=print, progress=True):
    """`python -m igpt_lib sft`: fine-tune every world size (or `model`) into OUT/sft/.

    World family: OUT/sft/<size>/ for each size, and OUT/sft/ itself holds the smallest (the
    policy the headline uses), each an HF folder. With `model`: OUT/sft/ is that model.
    Training state is checkpointed in OUT/sft/checkpoints/<size>/ at each epoch end and sizes
    already done are listed in OUT/sft/progress.json; `resume` continues from there."""
    import time
    from .data import load_prompts
    from .models import load_tokenizer
    from .world.build import ensure_world
    cfg, out, start = preset.sft, Path(out), time.time()
    world = ensure_world(preset, out, log) if model is None or dataset is None else None
    sft_dir = out / "sft"
    sft_dir.mkdir(parents=True, exist_ok=True)
    metrics_path, progress_path, ckpt_root = sft_dir / "metrics.jsonl", sft_dir / "progress.json", sft_dir / "checkpoints"
    done = _unfinished(progress_path, ckpt_root, resume)
    if not done and not any(ckpt_root.glob("*/checkpoint-*")):
        metrics_path.write_text("")
    sizes = list(cfg.sizes or [s.name for s in preset.world.sizes])
    models = {Path(model).name: model} if model else {s: out / "world" / "models" / s for s in sizes}
    tokenizer = load_tokenizer(model or out / "world" / "tokenizer")
    train, val, eval_rows, scorer = _data(out, cfg, dataset)
    test = load_prompts(out / "world" / "data" / "prompts.test.jsonl")[: preset.world.eval_prompts] \
        if world and scorer else None
    for name, path in models.items():
        if name in done:
            log(f"sft {name}: already trained (progress.json); skipped")
            continue
        folder = sft_dir if model else sft_dir / name
        log(f"sft {name}: {len(train)} demonstrations, {cfg.epochs} epochs, peak LR {cfg.lr_for(name):g}")
        done[name] = train_sft(path, tokenizer, train, val, eval_rows, cfg, folder, name, metrics_path,
                               scorer, progress, checkpoint_dir=ckpt_root / name, resume=resume)
        if test:  # the same held-out prompts as world.json's base_gold_score
            done[name]["test_gold"] = _test_gold(folder, tokenizer, test, cfg)
            done[name]["base_test_gold"] = world["base_gold_score"].get(name)
        write_json(progress_path, done)
        shutil.rmtree(ckpt_root / name, ignore_errors=True)
        log(f"sft {name}: kept epoch {done[name]['epoch']}: {done[name]['why']}")
    if not model:  # OUT/sft/ itself: the smallest size, the headline's policy
        for item in (sft_dir / sizes[0]).iterdir():
            shutil.copy2(item, sft_dir / item.name)
    _write_figure_and_summary(out, done, cfg, time.time() - start)
    shutil.rmtree(ckpt_root, ignore_errors=True)
    progress_path.unlink(missing_ok=True)
    return done


def _unfinished(progress_path, ckpt_root, resume):
    """Sizes an interrupted run finished ({} when starting afresh); refuses to start over an
    interrupted run's state unless `resume`."""
    found = progress_path.exists() or any(ckpt_root.glob("*/checkpoint-*"))
    if found and not resume:
        raise FileExistsError(f"{ckpt_root.parent} holds an interrupted SFT run (progress.json or "
                              "checkpoints/); pass --resume to continue it, or remove them to start again")
    return json.loads(progress_path.read_text()) if resume and progress_path.exists() else {}
