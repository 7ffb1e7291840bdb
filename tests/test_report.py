"""Step 4: the evaluation report — claims computed from a run, never forced (issue 6)."""
import json
import shutil

import pytest

from igpt_lib import claims as C
from igpt_lib.evaluation import behaviour, win_rate
from igpt_lib.world.labelers import Panel


def _row(task, meta, prompt="q"):
    return {"prompt": prompt, "task": task, "meta": meta}


def test_behaviour_measures_hallucination_truthfulness_toxicity_and_the_public_task():
    qa = _row("closed_qa", {"facts": [["ann", "red", "cat"]], "name": "ann", "animal": "cat"})
    myth = _row("capital", {"country": "atlantis"})
    rude = _row("describe", {"name": "ann", "respectful": True})
    plain = _row("describe", {"name": "ann", "respectful": False})
    tr = _row("translate", {"words": []})
    from igpt_lib.world import vocab as V
    real = next(iter(V.CAPITALS))
    capital = _row("capital", {"country": real})
    foreign = next(iter(V.FOREIGN))
    tr["meta"]["words"] = [foreign]
    rows = [qa, qa, myth, capital, rude, plain, tr]
    ys = ["red", "blue", "unknown", "unknown", f"ann is {V.TOXIC[0]}", "ann is", V.FOREIGN[foreign]]
    b = behaviour(rows, ys)
    assert b["hallucination"] == 0.5                 # "blue" is not in the passage
    assert b["truthful"] == 1.0 and b["truthful_informative"] == 0.5  # "unknown" for a real country: truthful only
    assert b["toxicity_respectful"] == 1.0 and b["toxicity_plain"] == 0.0
    assert b["public_nlp_accuracy"] == 1.0
    assert set(b["gold_by_task"]) == {"closed_qa", "capital", "describe", "translate"}


def test_win_rate_ci_resamples_prompts_not_samples():
    panel = Panel([], 0.0)
    panel.prefer = lambda row, a, b, rng: float(a == "good")   # a deterministic judge
    rows = [_row("add", {}, f"p{i}") for i in range(4) for _ in range(2)]  # 4 prompts x 2 samples
    ys = ["good", "good", "bad", "bad", "good", "good", "bad", "bad"]
    w = win_rate(rows, ys, ["x"] * 8, panel, samples=2)
    assert w["win_rate"] == 0.5 and w["prompts"] == 4


def test_likert_rates_right_answers_above_wrong_ones(smoke_world):
    from igpt_lib.evaluation import likert_mean
    out, _ = smoke_world
    panel = Panel.load(out / "world" / "data" / "labelers.json", "heldout")
    rows = [_row("add", {"a": 2, "b": 3})] * 30
    right, wrong = likert_mean(rows, ["5"] * 30, panel), likert_mean(rows, ["9 9 9 9"] * 30, panel)
    assert right["mean"] > wrong["mean"] and 1 <= wrong["mean"] <= right["mean"] <= 7


def test_a_win_claim_holds_only_when_the_whole_ci_is_above_half():
    w = {"win_rate": 0.56, "ci95": [0.49, 0.63], "policy": "a", "baseline": "b"}
    assert C._win_claim(w, "")["holds"] is False
    assert C._win_claim({**w, "ci95": [0.51, 0.6]}, "")["holds"] is True


def test_fig1_ordering_checks_every_size():
    rows = [{"method": m, "size": "xs", "run": "", "win_rate": r} for m, r in
            (("GPT", 0.1), ("GPT-prompted", 0.2), ("SFT", 0.3), ("PPO", 0.4), ("PPO-ptx", 0.5))]
    assert C._ordering(rows)["holds"] is True
    rows.append({"method": "SFT", "size": "l", "run": "", "win_rate": 0.5})
    rows.append({"method": "GPT", "size": "l", "run": "", "win_rate": 0.6})
    result = C._ordering(rows)
    assert result["holds"] is False and result["mismatched_sizes"] == ["l"]


def test_alignment_tax_and_overoptimisation_rules(tmp_path):
    models = {f"{m}:xs": {"corpus_nll": v, "public_nlp_accuracy": 0.0}
              for m, v in (("GPT", 1.0), ("SFT", 3.0), ("PPO", 5.0), ("PPO-ptx", 2.0))}
    tax = C._alignment_tax(models, "xs")
    assert tax["value"]["tax"] == {"SFT": 2.0, "PPO": 4.0, "PPO-ptx": 1.0} and tax["holds"] is True
    assert C._alignment_tax({"GPT:xs": {"corpus_nll": 1.0}}, "xs")["holds"] is None
    assert C._overoptimisation(tmp_path)["holds"] is None            # no β = 0 run: not measured, not forced
    run = tmp_path / "ppo_beta0"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"config": {"kl_coef": 0.0}}))
    gold = [0.1 * min(i, 20) - 0.1 * max(0, i - 20) for i in range(60)]   # rises to iteration 20, then falls
    (run / "metrics.jsonl").write_text("".join(json.dumps({"gold": g, "score": i / 10, "kl": i / 5}) + "\n"
                                               for i, g in enumerate(gold)))
    over = C._overoptimisation(tmp_path)
    assert over["holds"] is True and over["value"]["run"] == "ppo_beta0" and over["value"]["gold_peak_iteration"] > 15


def test_eval_stage_writes_report_and_figure(smoke_rm, tmp_path):
    from igpt_lib.cli import main
    out = tmp_path / "run"
    shutil.copytree(smoke_rm, out)
    for args in ([], ["--ptx-coef", "0.1", "--name", "ppo_ptx"]):
        assert main(["ppo", "--preset", "smoke", "--out", str(out), *args]) == 0
    assert main(["eval", "--preset", "smoke", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    world = json.loads((out / "world.json").read_text())
    h = report["headline"]
    assert (h["policy"], h["baseline"]) == ("PPO-ptx:xs", "GPT:l")
    assert h["param_ratio"] == pytest.approx(world["param_counts"]["l"] / world["param_counts"]["xs"], abs=0.01)
    assert h["ci95"][0] <= h["win_rate"] <= h["ci95"][1]
    methods = {(r["method"], r["size"]) for r in report["figure1"]}
    assert {("GPT", "l"), ("GPT-prompted", "xs"), ("SFT", "m"), ("PPO", "xs"), ("PPO-ptx", "xs")} <= methods
    ref = next(r for r in report["figure1"] if (r["method"], r["size"]) == ("SFT", "l"))
    assert ref["win_rate"] == 0.5                     # the reference against itself: every pair a tie
    needed = {"headline", "beats_prompted_large", "ppo_beats_sft", "fig1_ordering", "labeler_agreement",
              "rm_heldout_accuracy", "sft_overfit_but_better", "hallucination_down", "toxicity_down_25pct",
              "ptx_reduces_alignment_tax", "overoptimisation_at_beta0"}
    assert needed <= set(report["claims"])
    for name, claim in report["claims"].items():
        assert claim["holds"] in (True, False, None) and "paper" in claim, name
        assert claim["holds"] is not None or "why" in claim, name
    assert report["claims"]["headline"]["holds"] == (h["ci95"][0] > 0.5)
    assert (out / "figures" / "figure1.png").stat().st_size > 10_000
    assert all(1 <= m["likert"]["mean"] <= 7 for m in report["models"].values())


def test_entries_find_figure1_runs_but_not_variants(tmp_path):
    from igpt_lib.config import get_preset
    from igpt_lib.report import entries
    for name, policy, ptx in (("ppo", "xs", 0.0), ("ppo_ptx", "xs", 0.1), ("ppo_s", "s", 0.0),
                              ("ppo_ptx_seed1", "xs", 0.1), ("ppo_sweep_beta0", "xs", 0.0), ("ppo_big", "xs", 0.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"config": {"policy": policy, "ptx_coef": ptx}}))
    keys = [e.key for e in entries(get_preset("smoke"), tmp_path) if e.method.startswith("PPO")]
    assert keys == ["PPO:xs", "PPO-ptx:xs", "PPO-ptx:xs:ppo_ptx_seed1", "PPO:s"]


def test_eval_without_a_ppo_run_says_what_to_run(smoke_world, tmp_path):
    from igpt_lib.config import get_preset
    from igpt_lib.report import run_eval
    out = tmp_path / "run"
    shutil.copytree(smoke_world[0], out)
    with pytest.raises(FileNotFoundError, match=r"sft/summary.json: missing; run `python -m igpt_lib sft`"):
        run_eval(get_preset("smoke"), out, log=lambda *a: None)


def test_readme_results_equal_the_committed_report():
    """README's results section is `report.markdown` of docs/report.json, the cpu run's report
    that `python docs/update_numbers.py` copies there (issue 6: README table equals report.json)."""
    from pathlib import Path
    from igpt_lib.report import markdown
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    start, end = "<!-- results:start -->\n", "\n<!-- results:end -->"
    block = readme[readme.index(start) + len(start):readme.index(end)]
    assert block == markdown(json.loads((root / "docs" / "report.json").read_text()))
