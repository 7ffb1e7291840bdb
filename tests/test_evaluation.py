"""Evaluation helpers: bootstrap intervals, win rates judged by simulated labelers."""
import numpy as np

from igpt_lib.evaluation import bootstrap_ci, win_rate
from igpt_lib.world.labelers import Labeler, Panel


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 50), rng.normal(1.0, 1.0, 2000)
    lo, hi = bootstrap_ci(small)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < (hi - lo) / 3 and lo2 < 1.0 < hi2


def test_win_rate_prefers_correct_answers_and_counts_ties_half():
    panel = Panel([Labeler("H00", "heldout", 1.0, 1.0, 0.5, 1.0, 0.0)], sigma=0.01)
    row = {"task": "add", "prompt": "Q : add 2 and 3 A :", "meta": {"a": 2, "b": 3}}
    right = win_rate([row] * 20, ["5"] * 20, ["7"] * 20, panel)
    assert right["win_rate"] == 1.0 and right["ci95"] == [1.0, 1.0] and right["by_task"] == {"add": 1.0}
    assert win_rate([row] * 10, ["5"] * 10, ["5"] * 10, panel)["win_rate"] == 0.5  # identical: ties
    assert win_rate([row] * 10, ["7"] * 10, ["5"] * 10, panel)["win_rate"] == 0.0
