"""Step 3, the loop: PPO iterations with metrics, diagnostics and checkpoints, on any device.

`PPOTrainer` holds what a run needs — models, optimizers, RNGs, the adaptive β, the EMA — and
runs `rollout` → `ppo_update` (ppo.py) once per iteration through `accelerate.Accelerator`, so
the same code runs on a CPU, one GPU, or several processes (`accelerate launch`): each process
samples its share of the batch, DDP averages the gradients, and statistics are averaged over
processes before the main process writes them. Lesson: notebooks/04_ppo.ipynb.
"""
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import latest, load_state, save_state
from .ppo import (EMA, AdaptiveKLController, ValueModel, corpus_batches, ppo_update, rollout, rollout_stats,
                  shared_base)
from .world.gold import gold_score

MUST_BE_FINITE = ("score", "kl", "policy_loss", "value_loss")  # explained variance may be NaN


class PPOTrainer:
    """PPO (or PPO-ptx, when cfg.ptx_coef > 0) of `policy` against `reward_model` (the RM, or a
    function (prompts, responses) → scores: `ppo.rollout`).
    `value_model` is an RM-shaped model (§3.5: initialised from the RM); `ref_policy` is frozen,
    or None when `policy` is a peft (LoRA) model: its base with adapters off is the reference."""

    def __init__(self, policy, ref_policy, reward_model, value_model, tokenizer, rows, cfg,
                 ptx_tokens=None, accelerator=None):
        from accelerate import Accelerator
        self.acc = acc = accelerator or Accelerator()
        n, rank = acc.num_processes, acc.process_index
        if cfg.batch_size % n or cfg.minibatch_size % n:
            raise ValueError(f"batch_size {cfg.batch_size} and minibatch_size {cfg.minibatch_size} "
                             f"must divide among {n} processes")
        self.cfg, self.tok, self.rows = cfg, tokenizer, rows
        self.local = replace(cfg, batch_size=cfg.batch_size // n, minibatch_size=cfg.minibatch_size // n)
        torch.manual_seed(cfg.seed + rank)
        if cfg.gradient_checkpointing:  # recompute activations in backward (rollouts run in eval mode)
            for model in (policy, value_model):
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.rng = np.random.default_rng(cfg.seed + rank)
        opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.95))
        value_opt = torch.optim.AdamW(value_model.parameters(), lr=cfg.value_lr, betas=(0.9, 0.95))
        self.policy, self.value, self.opt, self.value_opt = acc.prepare(policy, ValueModel(value_model),
                                                                        opt, value_opt)
        self.ref = ref_policy.to(acc.device).eval() if ref_policy is not None else None
        if ref_policy is None:
            shared_base(self.unwrapped_policy)  # fail now, not at the first rollout
        self.reward = reward_model.to(acc.device).eval() if isinstance(reward_model, torch.nn.Module) else reward_model
        self.ptx_gen = torch.Generator().manual_seed(cfg.seed + rank)
        self.ptx = corpus_batches(ptx_tokens, cfg.ptx_seq_len, self.local.minibatch_size, generator=self.ptx_gen) \
            if cfg.ptx_coef and ptx_tokens is not None else None
        self.beta = AdaptiveKLController(cfg.kl_coef, cfg.target_kl, cfg.kl_horizon)
        self.ema = EMA(self.unwrapped_policy, cfg.ema_decay) if cfg.ema_decay else None
        self.iteration, self.first_distinct, self.warned = 0, None, set()
        self.checkpoint_dir = None  # set by train(); named in error messages

    @property
    def unwrapped_policy(self):
        return self.acc.unwrap_model(self.policy)

    def step(self):
        """One iteration: sample a batch of prompts, rollout, PPO update; returns statistics."""
        batch = [self.rows[i] for i in self.rng.choice(len(self.rows), size=self.local.batch_size, replace=False)]
        policy, value = self.unwrapped_policy, self.acc.unwrap_model(self.value)
        policy.eval(), value.eval()
        ro = rollout(policy, self.ref, self.reward, value, self.tok, [r["prompt"] for r in batch],
                     self.local, self.beta.value)
        scored = rollout_stats(ro)
        self._check_finite(scored, "rollout")
        policy.train(), value.train()
        try:
            update = ppo_update(self.policy, self.value, self.opt, self.value_opt, ro, self.local, self.ptx, self.acc)
        except FloatingPointError as err:
            raise FloatingPointError(f"ppo iteration {self.iteration}: {err}; {self._last_good()}") from None
        stats = {**scored, **update, "distinct": len(set(ro.responses)) / len(ro.responses)}
        if all("meta" in r for r in batch):  # the offline world: the gold labeler can check
            stats["gold"] = float(np.mean([gold_score(r, y) for r, y in zip(batch, ro.responses)]))
        stats = {"iteration": self.iteration, "kl_coef": self.beta.value, **self._mean_over_processes(stats)}
        self.beta.update(stats["kl"], self.cfg.batch_size)
        if self.ema:
            self.ema.update(policy)
        self.iteration += 1
        return stats

    def train(self, metrics_path=None, checkpoint_dir=None, callback=None, tensorboard_dir=None, progress=True):
        """Iterate up to cfg.iterations (continuing from `self.iteration` after `resume`): one
        metrics.jsonl line per iteration, a checkpoint every cfg.save_every, `callback(stats)`."""
        from tqdm.auto import tqdm
        self.checkpoint_dir = checkpoint_dir
        main = self.acc.is_main_process
        board = _tensorboard(tensorboard_dir) if main and tensorboard_dir else None
        stats = None
        with tqdm(total=self.cfg.iterations, initial=self.iteration, desc="ppo", disable=not (progress and main)) as bar:
            while self.iteration < self.cfg.iterations:
                stats = self.step()
                self._diagnose(stats)
                if main and metrics_path:
                    with open(metrics_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps(stats) + "\n")
                if board:
                    for key, v in stats.items():
                        if v is not None and key != "iteration":
                            board.add_scalar(f"ppo/{key}", v, stats["iteration"])
                if callback and main:
                    callback(stats)
                if checkpoint_dir and (self.iteration % self.cfg.save_every == 0 or self.iteration == self.cfg.iterations):
                    self.save(checkpoint_dir)
                bar.update()
        if board:
            board.close()
        return stats

    def finish(self):
        """The trained policy (the EMA weights when enabled, App. C), in eval mode."""
        policy = self.unwrapped_policy
        if self.ema:
            self.ema.copy_to(policy)
        return policy.eval()

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, folder):
        """Everything needed to continue bit for bit (checkpoint.py); written by the main process."""
        self.acc.wait_for_everyone()
        if not self.acc.is_main_process:
            return None
        tensors = {"torch_rng": torch.get_rng_state(), "ptx_rng": self.ptx_gen.get_state()}
        if torch.cuda.is_available():
            tensors["cuda_rng"] = torch.cuda.get_rng_state()
        if self.ema:
            tensors |= {f"ema.{k}": v for k, v in self.ema.shadow.items()}
        values = {"numpy_rng": self.rng.bit_generator.state, "kl_coef": self.beta.value,
                  "first_distinct": self.first_distinct, "warned": sorted(self.warned)}
        return save_state(folder, self.iteration, self._models(), self._optimizers(), tensors, values,
                          keep=self.cfg.keep_checkpoints)

    def resume(self, folder, metrics_path=None):
        """Continue from the newest checkpoint in `folder` (if any): returns its iteration or None.
        metrics.jsonl is cut back to that iteration, so its lines match an uninterrupted run."""
        path = latest(folder)
        if path is None:
            return None
        tensors, values = load_state(path, self._models(), self._optimizers())
        self.iteration, self.beta.value = values["step"], values["kl_coef"]
        self.first_distinct, self.warned = values["first_distinct"], set(values["warned"])
        if self.acc.process_index == 0:
            torch.set_rng_state(tensors["torch_rng"])
            self.ptx_gen.set_state(tensors["ptx_rng"])
            self.rng.bit_generator.state = values["numpy_rng"]
            if "cuda_rng" in tensors and torch.cuda.is_available():
                torch.cuda.set_rng_state(tensors["cuda_rng"])
        else:  # other processes' RNGs are not saved: re-seeded from (seed, rank, iteration)
            seed = [self.cfg.seed, self.acc.process_index, self.iteration]
            torch.manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
            self.rng = np.random.default_rng(seed)
        if self.ema:
            self.ema.shadow = {k: tensors[f"ema.{k}"] for k in self.ema.shadow}
        if metrics_path and Path(metrics_path).exists() and self.acc.is_main_process:
            lines = Path(metrics_path).read_text(encoding="utf-8").splitlines(keepends=True)
            Path(metrics_path).write_text("".join(lines[: self.iteration]), encoding="utf-8")
        return self.iteration

    def _models(self):
        return {"policy": self.unwrapped_policy, "value": self.acc.unwrap_model(self.value).rm}

    def _optimizers(self):
        return {"policy": self.opt, "value": self.value_opt}

    # -- diagnostics -------------------------------------------------------------------------
    def _mean_over_processes(self, stats):
        if self.acc.num_processes == 1:
            return stats
        keys = [k for k, v in stats.items() if v is not None]
        means = self.acc.reduce(torch.tensor([float(stats[k]) for k in keys], device=self.acc.device), "mean")
        return {**stats, **dict(zip(keys, means.tolist()))}

    def _last_good(self):
        path = latest(self.checkpoint_dir) if self.checkpoint_dir else None
        return (f"the last good state is {path}; continue with --resume (a lower lr or a higher kl_coef "
                "usually helps)") if path else "no checkpoint was written yet"

    def _check_finite(self, stats, where):
        bad = [k for k in MUST_BE_FINITE if k in stats and not np.isfinite(stats[k])]
        if bad:
            raise FloatingPointError(f"ppo iteration {self.iteration}: {where} {bad[0]} is {stats[bad[0]]}; "
                                     f"stopped before the update; {self._last_good()}")

    def _diagnose(self, stats):
        """Warnings for the two failures users report most: negative KL and reward collapse.
        The k1 estimate of one batch is noisy (its true value is ≥ 0 but near 0 early on), so
        KL warns only when it is below 0 by more than 3 standard errors (`kl_se`)."""
        it = stats["iteration"]
        if stats["kl"] < -max(3 * stats.get("kl_se", 0.0), 1e-3) and "kl" not in self.warned:
            self.warned.add("kl")
            warnings.warn(f"ppo iteration {it}: mean KL {stats['kl']:.3f} < 0 (standard error "
                          f"{stats.get('kl_se', 0.0):.3f}); usual causes: a suppressed "
                          "<eos>, min_length, temperature ≠ 1, top-k/top-p sampling, or a reference that is "
                          "not the policy's SFT model", stacklevel=3)
        if self.first_distinct is None:
            self.first_distinct = stats["distinct"]
        elif stats["distinct"] < 0.5 * self.first_distinct and "collapse" not in self.warned:
            self.warned.add("collapse")
            warnings.warn(f"ppo iteration {it}: reward collapse? only {stats['distinct']:.0%} of the batch's "
                          f"responses are distinct ({self.first_distinct:.0%} at the start): the policy may be "
                          "exploiting the reward model; raise kl_coef, lower lr, or use an earlier checkpoint",
                          stacklevel=3)


def _tensorboard(folder):
    """A SummaryWriter when TensorBoard is installed (it is optional), else None."""
    import importlib.util
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=str(folder))


def train_ppo(policy, ref_policy, reward_model, value_model, tokenizer, rows, cfg, metrics_path,
              ptx_tokens=None, progress=True, callback=None):
    """`cfg.iterations` of rollout → PPO update in one call; returns the last statistics."""
    trainer = PPOTrainer(policy, ref_policy, reward_model, value_model, tokenizer, rows, cfg, ptx_tokens)
    stats = trainer.train(metrics_path, callback=callback, progress=progress)
    trainer.finish()
    return stats


def run_ppo(preset, out, kl_coef=None, ptx_coef=None, iterations=None, lr=None, policy=None, seed=None,
            resume=False, name="ppo", log=print, progress=True, callback=None, init=None, reward=None, config=None,
            reward_fn=None):
    """`python -m igpt_lib ppo`: PPO (or PPO-ptx) of the SFT policy against OUT/rm/ → OUT/<name>/
    (default OUT/ppo/; other names keep variants such as a β sweep side by side). Checkpoints go
    to OUT/<name>/checkpoints/; `resume` continues from the newest one. `callback(stats)` is
    called after each iteration (e.g. `plots.LivePlot().update` in a notebook). `init` (a
    policy folder) and `reward` (an RM folder) replace the SFT start and OUT/rm/: the iterated
    rounds continue a PPO policy against a retrained RM; the KL reference stays the SFT policy.
    `config` (a PPOConfig, e.g. `preset.ppo_beta0`) replaces `preset.ppo`; the keywords override it.
    `reward_fn` (prompts, responses) → scores replaces the RM as the reward (the value model still
    starts from the RM): bench/ppo_oracle.py rewards with the world's gold score."""
    import time
    from dataclasses import asdict
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM
    from .data import load_prompts, write_json
    from .models import load_tokenizer, save_checkpoint
    from .reward import load_reward_model
    cfg, out, start, acc = config or preset.ppo, Path(out), time.time(), Accelerator()
    overrides = {"kl_coef": kl_coef, "ptx_coef": ptx_coef, "iterations": iterations, "lr": lr,
                 "policy": policy, "seed": seed}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    _prepare_inputs(preset, out, acc, log, progress, resume)
    ppo_dir = out / name
    ckpt, metrics = ppo_dir / "checkpoints", ppo_dir / "metrics.jsonl"
    if latest(ckpt) is not None and not resume:
        raise FileExistsError(f"{ckpt} holds checkpoints of an earlier run (newest: {latest(ckpt).name}); "
                              "pass --resume to continue it, or remove the folder to start again")
    tok = load_tokenizer(out / "sft" / cfg.policy)
    policy = AutoModelForCausalLM.from_pretrained(init or out / "sft" / cfg.policy)
    ref = AutoModelForCausalLM.from_pretrained(out / "sft" / cfg.policy)
    rm_dir = reward or out / "rm"
    value = load_reward_model(rm_dir)  # the value model starts from the RM (§3.5)
    reward = reward_fn or load_reward_model(rm_dir)
    rows = load_prompts(out / "world" / "data" / "prompts.ppo.jsonl")
    trainer = PPOTrainer(policy, ref, reward, value, tok, rows, cfg, corpus_tokens(out, tok), accelerator=acc)
    done = trainer.resume(ckpt, metrics) if resume else None
    if acc.is_main_process:
        ppo_dir.mkdir(parents=True, exist_ok=True)
        if done is None:
            metrics.write_text("")
    if acc.is_main_process:
        log(f"ppo: policy SFT-{cfg.policy}, β = {cfg.kl_coef}, γ_ptx = {cfg.ptx_coef}, lr {cfg.lr}, "
            f"{cfg.iterations} iterations"
            + (f" on {acc.num_processes} processes" if acc.num_processes > 1 else "")
            + (f"; resumed at iteration {done}" if done is not None else ""))
    last = trainer.train(metrics, ckpt, callback, tensorboard_dir=ppo_dir / "tensorboard", progress=progress)
    policy = trainer.finish()
    summary = None
    if acc.is_main_process:
        save_checkpoint(policy, tok, ppo_dir)
        summary = {**evaluate_ppo(preset, out, ref, policy, tok, cfg), "last": last,
                   "seconds": round(time.time() - start, 1), "config": asdict(cfg),
                   "base_test_gold": json.loads((out / "world.json").read_text())["base_gold_score"].get(cfg.policy)}
        write_json(ppo_dir / "summary.json", summary)
        _curves_figure(metrics, out, name)
        _log_summary(summary, log)
    if acc.num_processes > 1:  # the others wait for the main process's evaluation, then all leave the process
        acc.wait_for_everyone()  # group together: a process that exits with gloo's threads still live aborts
        acc.end_training()
    return summary


def _log_summary(summary, log):
    for key, how in (("test_gold", "greedy"), ("test_gold_sampled", "sampled at T = 1")):
        g = summary[key]
        log(f"ppo: held-out gold ({how}) SFT {g['sft']['mean']:+.3f} -> PPO {g['ppo']['mean']:+.3f} "
            f"(difference {g['difference']['mean']:+.3f}, 95 % CI {g['difference']['ci95']})")
    log(f"ppo: {summary['seconds']:.0f} s")


def evaluate_ppo(preset, out, sft, ppo, tokenizer, cfg, samples=4):
    """Held-out gold of SFT vs PPO on the same test prompts, all of the world's (WorldConfig.test_prompts):
    greedy (`test_gold`, as every stage of the world is scored) and `samples` responses per prompt at
    T = 1 (`test_gold_sampled`: the distribution PPO optimises; sharpening it need not change the
    greedy answer)."""
    from .data import read_jsonl
    from .evaluation import heldout_gold
    n_prompts = len(read_jsonl(Path(out) / "world" / "data" / "prompts.test.jsonl"))
    args = (out, {"sft": sft, "ppo": ppo}, tokenizer, n_prompts, cfg.max_new_tokens)
    settings = (dict(temperature=0.0, samples=1, seed=0), dict(temperature=1.0, samples=samples, seed=cfg.seed))
    return {key: heldout_gold(*args, **kw, known={"sft": _sft_scores(out, cfg.policy, sft, *args[2:], **kw)})
            for key, kw in zip(("test_gold", "test_gold_sampled"), settings)}


def _sft_scores(out, policy, sft, tokenizer, n_prompts, max_new_tokens, **settings):
    """The SFT policy's per-prompt held-out gold scores, kept beside its weights in
    OUT/sft/<policy>/heldout_scores.json under the settings and the weights' sha256: every PPO
    run from one SFT model is compared with the same numbers, generated once (~10 s each)."""
    import hashlib
    from .data import write_json
    from .evaluation import heldout_scores
    from .utils import file_lock
    folder = Path(out) / "sft" / policy
    cache = folder / "heldout_scores.json"
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        digest.update(f.read_bytes())
    weights = digest.hexdigest()[:16]
    key = json.dumps({"weights": weights, "prompts": n_prompts, "max_new_tokens": max_new_tokens, **settings},
                     sort_keys=True)
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if key not in known:
        scores = heldout_scores(out, sft, tokenizer, n_prompts, max_new_tokens, **settings).tolist()
        with file_lock(cache):   # PPO runs side by side (`reproduce`) add their keys in turn, none lost
            known = json.loads(cache.read_text()) if cache.exists() else {}
            known.setdefault(key, scores)
            write_json(cache, known)
    return np.array(known[key])


def corpus_tokens(out, tokenizer):
    """The world's pretraining corpus as one token stream, documents separated by <eos>."""
    docs = (Path(out) / "world" / "corpus.txt").read_text(encoding="utf-8").split("\n")
    return [t for doc in tokenizer(docs, add_special_tokens=False)["input_ids"] for t in (*doc, tokenizer.eos_token_id)]


def _prepare_inputs(preset, out, acc, log, progress, resume):
    """World, SFT and RM must exist; a single process makes the missing ones."""
    from .reward import run_rm
    from .world.build import ensure_world
    if (out / "rm" / "metrics.json").exists():
        return
    if acc.num_processes > 1:
        raise FileNotFoundError(f"{out / 'rm'}: no reward model; run `python -m igpt_lib rm` in one process first")
    ensure_world(preset, out, log)
    log("ppo: no reward model in this folder: running steps 1-2 first")
    run_rm(preset, out, resume=resume, log=log, progress=progress)


def _curves_figure(metrics_path, out, name):
    """figures/<name>_curves.png: RM score vs gold, KL and entropy per iteration."""
    import matplotlib.pyplot as plt
    from .plots import plot_ppo
    rows = [json.loads(line) for line in Path(metrics_path).read_text(encoding="utf-8").splitlines()]
    fig = plot_ppo(rows)
    (out / "figures").mkdir(exist_ok=True)
    fig.savefig(out / "figures" / f"{name.replace('/', '_')}_curves.png", dpi=120)
    plt.close(fig)
