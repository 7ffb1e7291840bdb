"""The world's datasets in the kit's one schema: demonstrations, prompts, comparisons.

Sizes are the paper's prompt counts divided by `WorldConfig.scale` (§3.2: SFT 13k, RM 33k,
PPO 31k). Demonstrations are scarce next to comparisons, as in the paper. The comparisons
here rank synthetic candidates (`candidates.py`); they calibrate and measure labeler
agreement and feed the labeling widget and loader tests. The RM stage ranks samples of the
SFT policy with the same labelers and the same calibrated noise.
"""
import random

import numpy as np

from .candidates import candidates
from .labelers import AgreementProblem, calibrate_sigma, label, population
from .prompts import make_prompts, more_rm_prompts, more_test_prompts
from .tasks import TASKS

PROMPT_FIELDS = ("prompt_id", "prompt", "user_id", "task", "kind", "meta")


def _prompt(row):
    return {k: row[k] for k in PROMPT_FIELDS}


def calibrate(cfg, prompts, labelers, rng, nprng):
    """Noise scale per labeler group for the paper's agreement, on candidate sets drawn
    independently of the ones committed, so the committed agreement is an honest measurement."""
    sigma = {}
    for group, rows, target in (("train", prompts["train"], cfg.agreement),
                                ("heldout", prompts["test"], cfg.heldout_agreement)):
        members = [lab for lab in labelers if lab.group == group]
        sets = [candidates(r, rng.randint(*cfg.k_range), rng) for r in rows]
        sigma[group] = round(calibrate_sigma(AgreementProblem(rows, sets, members, nprng), target), 6)
    return sigma


def rank_sets(rows, labelers, sigma, cfg, rng, nprng):
    """Each prompt gets K candidates ranked by one labeler of the group."""
    out = []
    for row in rows:
        responses = candidates(row, rng.randint(*cfg.k_range), rng)
        labeler = labelers[rng.randrange(len(labelers))]
        out.append({**_prompt(row), "responses": responses,
                    **label(labeler, sigma, row, responses, nprng)})
    return out


def measured_agreement(rows, labelers, sigma, nprng):
    """Agreement of two labelers re-ranking the committed candidate sets (fresh noise)."""
    problem = AgreementProblem(rows, [r["responses"] for r in rows], labelers, nprng)
    return problem.agreement(sigma)


def make_datasets(cfg):
    """{name: rows or object}, plus a summary with the calibrated and measured agreement."""
    prompts = make_prompts(cfg)
    rng, nprng = random.Random(cfg.seed + 1), np.random.default_rng(cfg.seed + 1)
    labelers = population(cfg.n_labelers, cfg.n_heldout_labelers, nprng)
    sigma = calibrate(cfg, prompts, labelers, rng, nprng)
    train_l = [lab for lab in labelers if lab.group == "train"]
    held_l = [lab for lab in labelers if lab.group == "heldout"]
    by_stage = {s: [r for r in prompts["train"] if r["stage"] == s] for s in ("sft", "rm", "ppo")}
    more_rm = more_rm_prompts(cfg, prompts)

    def demos(rows):
        return [{**_prompt(r), "response": TASKS[r["task"]].demonstrate(r["meta"], rng),
                 "labeler_id": train_l[rng.randrange(len(train_l))].labeler_id} for r in rows]

    data = {
        "demonstrations.train": demos(by_stage["sft"]),
        "demonstrations.val": demos(prompts["val"]),
        "prompts.rm": [_prompt(r) for r in by_stage["rm"] + more_rm],
        "prompts.ppo": [_prompt(r) for r in by_stage["ppo"]],
        "prompts.val": [_prompt(r) for r in prompts["val"]],
        "prompts.test": [_prompt(r) for r in prompts["test"] + more_test_prompts(cfg, prompts, more_rm)],
        "comparisons.train": rank_sets(by_stage["rm"], train_l, sigma["train"], cfg, rng, nprng),
        "comparisons.val": rank_sets(prompts["val"], train_l, sigma["train"], cfg, rng, nprng),
        "comparisons.heldout": rank_sets(prompts["test"], held_l, sigma["heldout"], cfg, rng, nprng),
    }
    agreement = {
        "train": measured_agreement(data["comparisons.train"], train_l, sigma["train"], nprng),
        "heldout": measured_agreement(data["comparisons.heldout"], held_l, sigma["heldout"], nprng),
    }
    return data, labelers, sigma, agreement
