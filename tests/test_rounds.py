"""Iterated rounds (issue 6): comparisons of the current PPO policy, RM retrained on all, PPO continued."""
import json
import shutil

from igpt_lib.cli import main
from igpt_lib.config import get_preset
from igpt_lib.rounds import all_rounds, round_dir, run_round


def _lines(path):
    return len(path.read_text().splitlines())


def test_a_round_samples_the_ppo_policy_retrains_the_rm_and_continues_ppo(smoke_rm, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(smoke_rm, out)
    assert main(["ppo", "--preset", "smoke", "--out", str(out)]) == 0
    preset = get_preset("smoke")
    result = run_round(preset, out, 1, log=lambda *a: None, progress=False)
    here = round_dir(out, 1)
    new = [json.loads(x) for x in (here / "comparisons.train.jsonl").read_text().splitlines()]
    assert {p for row in new for p in row["policies"]} == {"ppo"}          # sampled from the PPO policy only
    old = _lines(out / "rm" / "comparisons.train.jsonl")
    rm = json.loads((here / "rm" / "metrics.json").read_text())
    assert rm["train_prompts"] == old + len(new)                            # retrained on old + new
    first = json.loads((here / "ppo" / "metrics.jsonl").read_text().splitlines()[0])
    start = json.loads((out / "ppo" / "metrics.jsonl").read_text().splitlines()[0])
    assert start["kl"] == 0.0 and first["kl"] != 0.0                        # round 1 starts from the PPO policy, not SFT
    assert _lines(here / "ppo" / "metrics.jsonl") == preset.rounds.ppo_iterations
    rounds = all_rounds(out)
    assert [x["round"] for x in rounds] == [0, 1] and rounds[1] == result
    assert rounds[1]["rm_evaluated_on"] == "round 0 PPO samples"
    gains = json.loads((here / "ppo" / "summary.json").read_text())  # PPO − SFT, paired, as the stage reports it
    assert rounds[1]["gain_greedy"] == gains["test_gold"]["difference"]
    assert rounds[1]["gain_sampled"] == gains["test_gold_sampled"]["difference"]
    from igpt_lib.report import format_gain
    assert format_gain({"mean": 0.04228, "ci95": [-0.0022, 0.085]}) == "+0.042 [-0.002, +0.085]"  # README's round table
    assert format_gain(None) == "—"  # a report written before the gains were recorded
