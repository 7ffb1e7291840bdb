"""Simulated labelers: calibrated agreement, ties, Likert range, gold-consistent rankings."""
import json

import numpy as np
import pytest

from igpt_lib import data as D
from igpt_lib.world.gold import gold_score
from igpt_lib.world.labelers import (AgreementProblem, Labeler, dense_ranks, label,
                                     pair_agreement, population)

from conftest import REPO


def _labelers(group):
    info = json.loads((REPO / "data" / "labelers.json").read_text())
    return [Labeler(**lab) for lab in info["labelers"] if lab["group"] == group], info["sigma"][group]


@pytest.mark.parametrize("file,group,lo,hi", [
    ("comparisons.train.jsonl", "train", 0.696, 0.756),   # paper §3.4: 72.6 ± 1.5 %
    ("comparisons.heldout.jsonl", "heldout", 0.74, 0.80),  # paper §3.4: 77.3 ± 1.3 %
])
def test_agreement_is_calibrated_to_the_paper(file, group, lo, hi):
    rows = D.read_jsonl(REPO / "data" / file)
    labelers, sigma = _labelers(group)
    measured = AgreementProblem(rows, [r["responses"] for r in rows], labelers,
                                np.random.default_rng(123)).agreement(sigma)
    assert lo <= measured <= hi


def test_more_noise_less_agreement():
    rows = D.read_jsonl(REPO / "data" / "comparisons.val.jsonl")[:100]
    labelers, _ = _labelers("train")
    problem = AgreementProblem(rows, [r["responses"] for r in rows], labelers, np.random.default_rng(0))
    assert problem.agreement(0.05) > problem.agreement(0.5) > problem.agreement(3.0)


def test_ranks_dense_with_ties():
    assert dense_ranks([0.5, 2.0, 0.5, -1.0]) == [1, 0, 1, 2]
    assert pair_agreement([0, 1, 2], [0, 2, 1]) == (2, 3)
    assert pair_agreement([0, 0, 1], [0, 1, 2]) == (2, 2)  # a tie is not counted


def test_identical_responses_tie_and_likert_in_range():
    lab = population(1, 0, np.random.default_rng(0))[0]
    row = {"task": "reverse", "meta": {"seq": ["a", "b", "c"]}}
    out = label(lab, 0.4, row, ["c b a", "a b c", "c b a", "x"], np.random.default_rng(0))
    assert out["ranks"][0] == out["ranks"][2]
    assert all(1 <= x <= 7 for x in out["likert"]) and min(out["ranks"]) == 0
    assert set(out["flags"][0]) == {"fails_constraint", "hallucination", "toxic"}


def test_rankings_follow_gold_on_average():
    rows = D.read_jsonl(REPO / "data" / "comparisons.train.jsonl")
    concordant = counted = 0
    for r in rows:
        gold = [gold_score(r, y) for y in r["responses"]]
        for i in range(len(gold)):
            for j in range(i + 1, len(gold)):
                if gold[i] != gold[j] and r["ranks"][i] != r["ranks"][j]:
                    counted += 1
                    concordant += (gold[i] > gold[j]) == (r["ranks"][i] < r["ranks"][j])
    assert concordant / counted > 0.75


def test_panel_prefers_the_gold_better_answer_most_of_the_time():
    from igpt_lib.world.labelers import Panel
    panel = Panel.load(REPO / "data" / "labelers.json", group="heldout")
    rng = np.random.default_rng(0)
    row = {"task": "capital", "meta": {"country": "norland"}}
    wins = [panel.prefer(row, "oslen", "rimo", rng) for _ in range(200)]
    assert np.mean(wins) > 0.8
    assert panel.prefer(row, "oslen", "oslen", rng) == 0.5


def test_panel_recalibrates_its_noise_on_the_sets_it_will_label():
    from igpt_lib.world.labelers import Panel
    rows = D.read_jsonl(REPO / "data" / "comparisons.train.jsonl")
    near_equal = [[y, y + " .", y + " ,", "x"] for y in (r["responses"][0] for r in rows)]  # harder sets
    panel = Panel.load(REPO / "data" / "labelers.json").calibrated(rows, near_equal, 0.726,
                                                                    np.random.default_rng(0))
    measured = AgreementProblem(rows, near_equal, panel.labelers, np.random.default_rng(9)).agreement(panel.sigma)
    assert abs(measured - 0.726) < 0.03


def test_a_fold_of_the_training_labelers_splits_off_with_their_noise():
    """§4.1: one of five groups of training labelers is held out of the RM's training sets."""
    from igpt_lib.world.labelers import Panel
    panel = Panel.load(REPO / "data" / "labelers.json")
    rest, fold = panel.fold(5)
    ids = [lab.labeler_id for lab in panel.labelers]
    assert [lab.labeler_id for lab in fold.labelers] == ids[-8:] and len(rest.labelers) == 32   # 40 labelers
    assert rest.sigma == fold.sigma == panel.sigma
    assert len(Panel(panel.labelers[:3], 1.0).fold(5)[1].labelers) == 1   # at least one
    with pytest.raises(ValueError, match="cannot spare"):
        Panel(panel.labelers[:1], 1.0).fold(5)
