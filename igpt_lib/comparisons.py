"""Step 2a: sample K responses per prompt from the SFT policies; simulated labelers rank them.

Like the paper's comparisons (§3.5), each prompt gets K = 4..9 samples at temperature 1; here
each sample comes from a random member of the SFT family, so a set mixes qualities, as the
paper's sets mixed outputs of several models. Validation sets are ranked twice: by a training
labeler and by a held-out labeler (for the RM's 72.4 % vs 69.6 % comparison, §4.1).
Lesson: notebooks/02_comparisons.ipynb.
"""
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from .generation import generate
from .world.datasets import PROMPT_FIELDS
from .world.labelers import Panel


def sample_sets(policies, tokenizer, rows, cfg, rng, progress=True):
    """K responses per row, each from a random policy: (responses, which policy) per row."""
    ks = rng.integers(cfg.k_range[0], cfg.k_range[1] + 1, size=len(rows))
    names = list(policies)
    owner = [rng.integers(len(names), size=k) for k in ks]  # policy index of each sample
    responses = [[None] * k for k in ks]
    for p, name in enumerate(names):
        slots = [(i, j) for i, own in enumerate(owner) for j, o in enumerate(own) if o == p]
        texts = generate(policies[name], tokenizer, [rows[i]["prompt"] for i, _ in slots],
                         cfg.max_new_tokens, temperature=cfg.temperature, progress=progress,
                         desc=f"sample {name}")
        for (i, j), text in zip(slots, texts):
            responses[i][j] = text
    return responses, [[names[o] for o in own] for own in owner]


def rank_sets(rows, responses, sources, panel, rng):
    """Comparisons rows (our schema) with one labeler's Likert, flags and ranks per set."""
    return [{**{k: row[k] for k in PROMPT_FIELDS if k in row}, "responses": resp,
             "policies": src, **panel.label(row, resp, rng)}
            for row, resp, src in zip(rows, responses, sources)]


def collect(policy_dirs, tokenizer, train_rows, val_rows, labelers_path, cfg, progress=True):
    """{"train", "val", "heldout"} and, with `cfg.labeler_folds`, "fold": comparisons of SFT
    samples, ranked by simulated labelers. "val" is ranked by a training labeler, "heldout" by a
    held-out labeler (§3.4's group) and "fold" by one of the training labelers held out of the
    training sets (§4.1's measurement)."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    policies = {name: AutoModelForCausalLM.from_pretrained(path).eval() for name, path in policy_dirs.items()}
    train_rows = [r for _ in range(cfg.sets_per_prompt) for r in train_rows]  # fresh samples each time
    train_resp, train_src = sample_sets(policies, tokenizer, train_rows, cfg, rng, progress)
    val_resp, val_src = sample_sets(policies, tokenizer, val_rows, cfg, rng, progress)
    # Agreement depends on what is labeled (near-equal samples are harder to order than the
    # world's synthetic candidates), so each group's noise is re-calibrated on these sets.
    train_panel = Panel.load(labelers_path, "train").calibrated(train_rows, train_resp, cfg.agreement, rng)
    heldout_panel = Panel.load(labelers_path, "heldout").calibrated(val_rows, val_resp,
                                                                    cfg.heldout_agreement, rng)
    # §4.1: RMs trained on four of five groups of training labelers, scored on the fifth
    train_panel, fold_panel = train_panel.fold(cfg.labeler_folds) if cfg.labeler_folds else (train_panel, None)
    comps = {"train": rank_sets(train_rows, train_resp, train_src, train_panel, rng),
             "val": rank_sets(val_rows, val_resp, val_src, train_panel, rng),
             "heldout": rank_sets(val_rows, val_resp, val_src, heldout_panel, rng)}
    if fold_panel:
        comps["fold"] = rank_sets(val_rows, val_resp, val_src, fold_panel, rng)
    return comps


def ensure_comparisons(preset, out, log=print, progress=True):
    """OUT/rm/comparisons.*.jsonl: sampled and ranked once, then reused (a run sampled before
    the labeler fold existed keeps its comparisons and has no "fold")."""
    from .data import load_comparison_rows
    rm_dir = Path(out) / "rm"
    files = comparison_files(rm_dir)
    if not all(files[split].exists() for split in SPLITS):
        sizes = preset.rm.sample_sizes or [s.name for s in preset.world.sizes]
        log(f"rm: sampling K = {preset.rm.k_range[0]}..{preset.rm.k_range[1]} responses per prompt "
            f"from SFT {', '.join(sizes)}; simulated labelers rank them")
        write_comparisons(files, sample_comparisons(preset, out, preset.rm, progress))
    return {split: load_comparison_rows(f) for split, f in files.items() if f.exists()}


SPLITS = ("train", "val", "heldout")  # every run has these; "fold" since the labeler fold (§4.1)


def write_comparisons(files, comps):
    """Each split to its file, the fold first: a run cut short between files keeps no complete
    set of the three splits without its fold (it would pass for a run from before the fold)."""
    from .data import write_jsonl
    for split in sorted(comps, key=lambda s: s != "fold"):
        write_jsonl(files[split], comps[split])


def comparison_files(folder):
    """{split: FOLDER/comparisons.{split}.jsonl} for the three splits and the fold."""
    return {split: Path(folder) / f"comparisons.{split}.jsonl" for split in SPLITS + ("fold",)}


def comparisons_digest(rm_dir):
    """Short hash of OUT/rm/comparisons.{train,val,heldout[,fold]}.jsonl: accuracies measured on
    different digests were measured on different data (bench/rm_seeds.py records it)."""
    import hashlib
    h = hashlib.sha256()
    for split in ("heldout", "train", "val", "fold"):  # sorted; "fold" last, so older runs keep their digest
        path = Path(rm_dir) / f"comparisons.{split}.jsonl"
        if split != "fold" or path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:8]


def sample_comparisons(preset, out, cfg, progress=True):
    """`collect` on a run's SFT family, RM and validation prompts and labelers, with RewardConfig
    `cfg` (the stage's, or a variant: bench/rm_seeds.py samples more sets with another seed)."""
    from .data import load_prompts
    from .models import load_tokenizer
    sizes, wdata = cfg.sample_sizes or [s.name for s in preset.world.sizes], Path(out) / "world" / "data"
    return collect({s: Path(out) / "sft" / s for s in sizes}, load_tokenizer(Path(out) / "sft" / sizes[0]),
                   load_prompts(wdata / "prompts.rm.jsonl"), load_prompts(wdata / "prompts.val.jsonl"),
                   wdata / "labelers.json", cfg, progress)
