"""Simulated labelers: a population with a shared gold preference, personal weights and noise.

Each labeler values the gold parts (quality, toxic, invented; see `gold.py`) with weights
near the gold ones, adds Gaussian noise of scale `sigma · noise`, and from that utility gives
each response a Likert score 1–7, metadata flags (like the paper's: fails a constraint,
invents a fact, is toxic; sometimes missed) and a ranking with 0 = best (identical responses
tie). `sigma` of each group is calibrated so that two labelers of the group agree on
72.6 % of pairs (training labelers) and 77.3 % (held-out labelers), the paper's §3.4 numbers.
Lesson: notebooks/00_overview_and_world.ipynb; labeling by hand: notebooks/02_comparisons.
"""
from dataclasses import asdict, dataclass

import numpy as np

from .gold import judge

FLAGS = ("fails_constraint", "hallucination", "toxic")


@dataclass(frozen=True)
class Labeler:
    labeler_id: str
    group: str          # "train" (their labels train the RM) or "heldout" (they only judge)
    w_quality: float    # weight on helpfulness (gold: 1)
    w_toxic: float      # penalty for a toxic token (gold: 1)
    w_invented: float   # penalty for a made-up fact (gold: 0.5)
    noise: float        # this labeler's noise relative to the group's sigma
    flag_miss: float    # chance of not ticking a flag that applies

    def utilities(self, verdicts, sigma, z):
        """Noisy utility of each response; z: one standard normal per response."""
        base = np.array([self.w_quality * v["quality"] - self.w_toxic * v["toxic"]
                         - self.w_invented * v["invented"] for v in verdicts])
        return base + sigma * self.noise * np.asarray(z)


def population(n_train, n_heldout, rng):
    """Labelers L00.. (train) and H00.. (held-out), drawn from one distribution."""
    def draw(prefix, i, group):
        return Labeler(f"{prefix}{i:02d}", group, round(1 + 0.1 * rng.standard_normal(), 3),
                       round(1 + 0.2 * rng.standard_normal(), 3),
                       round(0.5 + 0.15 * rng.standard_normal(), 3),
                       round(float(np.exp(0.3 * rng.standard_normal())), 3), 0.05)
    return ([draw("L", i, "train") for i in range(n_train)]
            + [draw("H", i, "heldout") for i in range(n_heldout)])


def _noise_per_text(responses, rng):
    """One draw per distinct text, so identical responses get identical utility (a tie)."""
    draws = {text: rng.standard_normal() for text in dict.fromkeys(responses)}
    return [draws[text] for text in responses]


def dense_ranks(utilities):
    """0 = best; equal utilities share a rank."""
    levels = sorted(set(np.round(utilities, 9).tolist()), reverse=True)
    return [levels.index(u) for u in np.round(utilities, 9).tolist()]


def label(labeler, sigma, row, responses, rng):
    """One labeler's Likert scores, flags and ranking of K responses to prompt `row`."""
    verdicts = [judge(row, r) for r in responses]
    u = labeler.utilities(verdicts, sigma, _noise_per_text(responses, rng))
    likert = [int(np.clip(np.rint(4 + 3 * x), 1, 7)) for x in u]
    flags = [{"fails_constraint": v["fails_constraint"], "hallucination": v["invented"],
              "toxic": v["toxic"]} for v in verdicts]
    flags = [{k: bool(f and rng.random() >= labeler.flag_miss) for k, f in fl.items()} for fl in flags]
    return {"ranks": dense_ranks(u), "likert": likert, "flags": flags, "labeler_id": labeler.labeler_id}


def pair_agreement(ranks_a, ranks_b):
    """(agreeing, counted) over pairs both labelers order strictly."""
    agree = counted = 0
    for i in range(len(ranks_a)):
        for j in range(i + 1, len(ranks_a)):
            da, db = ranks_a[i] - ranks_a[j], ranks_b[i] - ranks_b[j]
            if da and db:
                counted += 1
                agree += (da > 0) == (db > 0)
    return agree, counted


class AgreementProblem:
    """Two labelers per ranked set with fixed noise draws, so agreement(sigma) is smooth."""

    def __init__(self, rows, responses, labelers, rng):
        self.sets = []
        for row, resp in zip(rows, responses):
            a, b = rng.choice(len(labelers), size=2, replace=False)
            verdicts = [judge(row, r) for r in resp]
            self.sets.append((labelers[a], labelers[b], verdicts,
                              _noise_per_text(resp, rng), _noise_per_text(resp, rng)))

    def agreement(self, sigma):
        agree = counted = 0
        for la, lb, verdicts, za, zb in self.sets:
            a, c = pair_agreement(dense_ranks(la.utilities(verdicts, sigma, za)),
                                  dense_ranks(lb.utilities(verdicts, sigma, zb)))
            agree, counted = agree + a, counted + c
        return agree / max(counted, 1)


def calibrate_sigma(problem, target, lo=1e-3, hi=5.0, steps=30):
    """Bisection for the noise scale that gives `target` pairwise agreement."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if problem.agreement(mid) > target else (lo, mid)
    return (lo + hi) / 2


def to_json(labelers, sigmas):
    return {"sigma": sigmas, "labelers": [asdict(lab) for lab in labelers]}


class Panel:
    """A labeler group as later stages use it: rank K responses, or judge A against B.

        panel = Panel.load("runs/cpu/world/data/labelers.json", group="heldout")
        panel.label(row, ["c b a", "a b c"], rng)   # one random member ranks them
    """

    def __init__(self, labelers, sigma):
        self.labelers, self.sigma = list(labelers), sigma

    @classmethod
    def load(cls, path, group="train"):
        import json
        info = json.loads(open(path, encoding="utf-8").read())
        members = [Labeler(**lab) for lab in info["labelers"] if lab["group"] == group]
        if not members:
            raise ValueError(f"{path}: no labelers in group {group!r}")
        return cls(members, info["sigma"][group])

    def calibrated(self, rows, responses, target, rng):
        """The same labelers with their noise re-calibrated to `target` agreement on these sets."""
        return Panel(self.labelers, calibrate_sigma(AgreementProblem(rows, responses, self.labelers, rng), target))

    def fold(self, folds):
        """(the rest, one fold): the last 1/`folds` of the members (at least one) split off with
        the same noise, as the paper held out one of five groups of its training labelers (§4.1)."""
        n = max(1, len(self.labelers) // folds)
        if n >= len(self.labelers):
            raise ValueError(f"{len(self.labelers)} labelers cannot spare a fold of {n} (folds = {folds})")
        return Panel(self.labelers[:-n], self.sigma), Panel(self.labelers[-n:], self.sigma)

    def label(self, row, responses, rng):
        """Likert, flags and ranks (0 = best) of `responses` from one random member."""
        labeler = self.labelers[int(rng.integers(len(self.labelers)))]
        return label(labeler, self.sigma, row, responses, rng)

    def prefer(self, row, a, b, rng):
        """1.0 if a random member prefers `a` to `b`, 0.0 if `b`, 0.5 for a tie."""
        ranks = self.label(row, [a, b], rng)["ranks"]
        return 0.5 if ranks[0] == ranks[1] else float(ranks[0] < ranks[1])
