"""bench/: README's Performance section comes from bench/results; the RM benchmark feeds TRL
exactly the texts our reward model reads (so "the same comparisons" holds)."""
import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _module(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_performance_section_is_written_from_the_results():
    report = _module("report")
    readme = (REPO / "README.md").read_text()
    start, end = f"<!-- {report.MARKER}:start -->\n", f"\n<!-- {report.MARKER}:end -->"
    assert readme[readme.index(start) + len(start):readme.index(end)] == report.section()


def test_end_to_end_table_names_its_machine_where_it_is_not_the_section_s():
    report = _module("report")
    stages = {"sft": {"seconds": 10.0}}
    e2e = {"machine": {"cpus": 2, "platform": "box-b", "torch": "t", "torch_threads": 2},
           "presets": {"cpu": {"seconds": 60.0, "goal_s": 900, "peak_rss_mib": 1, "stages": stages}}}
    same = {"cpus": 2, "platform": "box-b"}
    assert "Measured on 2 CPU cores (box-b, torch t, 2 threads), not the machine above." in \
        report.e2e_lines(e2e, {"cpus": 2, "platform": "box-a"})[0]
    assert "Measured on" not in report.e2e_lines(e2e, same)[0]


def test_rm_bench_gives_trl_the_texts_our_rm_reads(tmp_path):
    import trl
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from igpt_lib.data import read_jsonl
    from igpt_lib.reward import rm_text
    from igpt_lib.world.labelers import Panel
    bench = _module("rm_bench")
    folder = bench.shipped_model("xs")
    tok = AutoTokenizer.from_pretrained(folder)
    rows = read_jsonl(REPO / "data" / "prompts.rm.jsonl")[:6]
    sets = bench.ranked_sets(rows, 4, Panel.load(REPO / "data" / "labelers.json"), seed=0)
    pairs = bench.to_pairs(sets, tok.eos_token)
    expected = [(rm_text(s["prompt"], s["responses"][i], tok), rm_text(s["prompt"], s["responses"][j], tok))
                for s in sets for i, a in enumerate(s["ranks"]) for j, b in enumerate(s["ranks"]) if a < b]
    assert len(pairs) == len(expected) > 0
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    args = trl.RewardConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, report_to="none",
                            activation_checkpointing=False, max_length=128)
    trainer = trl.RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tok)
    got = list(zip(trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"]))
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert got == [(ids(c), ids(r)) for c, r in expected]


def test_rm_bench_chooses_on_validation_and_refuses_a_stale_choice(tmp_path):
    import json
    import subprocess
    import sys
    bench = _module("rm_bench")
    grid = {"4": {"val_acc": 0.71, "acc": 0.60}, "8": {"val_acc": 0.70, "acc": 0.99}, "16": {"val_acc": 0.65, "acc": 0.5}}
    assert bench.choose(grid) == "4"  # validation decides, never held-out accuracy
    grid["16"]["val_acc"] = 0.71004   # equal to 4 decimals: the larger batch (fewer steps)
    assert bench.choose(grid) == "16"
    assert bench._means([(1, 10, 0.5, 0.6, 0.7), (3, 10, 0.7, 0.8, 0.9)]) == {
        "seconds": 2.0, "forwards": 10.0, "val_acc": 0.6, "acc": 0.7, "gold_acc": 0.8, "acc_by_seed": [0.6, 0.8]}
    # the committed choice was made with the plain run's settings, for every K it runs
    tuning = json.loads((REPO / "bench" / "results" / "rm_tuning.json").read_text())
    rm = json.loads((REPO / "bench" / "results" / "rm.json").read_text())
    assert all(tuning["setup"][f] == rm["setup"][f] for f in tuning["setup"] if f != "grid")
    for k, row in rm["K"].items():
        assert (row["ours_batch_prompts"], row["trl_batch_prompts"]) == tuple(tuning["K"][k]["chosen"].values())
        for who in ("ours", "trl"):  # the choice is the best validation accuracy of the grid
            assert tuning["K"][k]["chosen"][who] == int(bench.choose(tuning["K"][k]["grid"][who]))
    stale = tmp_path / "rm_tuning.json"
    stale.write_text(json.dumps({**tuning, "setup": {**tuning["setup"], "seeds": [7]}}))
    done = subprocess.run([sys.executable, str(REPO / "bench" / "rm_bench.py"), "--tuning", str(stale),
                           "--out", str(tmp_path / "rm.json")], capture_output=True, text=True)
    assert done.returncode != 0 and "other settings (seeds)" in done.stderr and "--tune" in done.stderr
    assert not (tmp_path / "rm.json").exists()


def test_rm_bench_tune_extends_its_grid_and_the_plain_run_reruns_the_choice(tmp_path):
    import json
    import subprocess
    import sys
    tuning, out = tmp_path / "tuning.json", tmp_path / "rm.json"
    small = [sys.executable, str(REPO / "bench" / "rm_bench.py"), "--ks", "4", "--prompts", "16", "--val", "8",
             "--heldout", "8", "--seeds", "0", "--tuning", str(tuning)]
    subprocess.run(small + ["--tune", "--grid", "16"], check=True, capture_output=True)
    first = json.loads(tuning.read_text())
    done = subprocess.run(small + ["--tune", "--grid", "8"], check=True, capture_output=True, text=True)
    assert "extending" in done.stdout
    both = json.loads(tuning.read_text())
    assert both["setup"]["grid"] == [8, 16]
    for who in ("ours", "trl"):  # the kept batch is not rerun; the choice is over both
        assert both["K"]["4"]["grid"][who]["16"] == first["K"]["4"]["grid"][who]["16"]
        assert set(both["K"]["4"]["grid"][who]) == {"8", "16"}
    subprocess.run(small + ["--out", str(out)], check=True, capture_output=True)
    row, chosen = json.loads(out.read_text())["K"]["4"], both["K"]["4"]["chosen"]
    assert (row["ours_batch_prompts"], row["trl_batch_prompts"]) == (chosen["ours"], chosen["trl"])
    for who in ("ours", "trl"):  # the same training again: the same held-out accuracy
        assert row[f"{who}_acc"] == both["K"]["4"]["grid"][who][str(chosen[who])]["acc"]


def test_gpu_precision_check_runs_the_kits_sft_on_the_cpu_world(tmp_path):
    """The device check's SFT run on a CPU (where mixed precision is a no-op): the kit's own train_sft
    on data/'s demonstrations from the shipped base-xs, one epoch; epoch 0 is the base itself."""
    mod = _module("gpu_precision")
    out = mod.sft_run(REPO / "data", False, 0, "xs", 1)
    assert len(out["validation_scores"]) == 2 and out["chosen_epoch"] in (0, 1) and out["seconds"] > 0
    assert out["validation_scores"][0] < out["validation_scores"][1]   # one epoch of SFT beats the base


def test_closed_qa_bench_sorts_every_answer_into_one_kind(smoke_rm, tmp_path):
    mod = _module("closed_qa")
    row = {"task": "closed_qa", "meta": {"facts": [["kim", "green", "hen"]], "name": "kim", "animal": "hen"}}
    assert [mod.kind(row, y) for y in ("green", "not stated", "black", "hen")] == \
        ["right", "not stated", "invented", "wrong"]
    result = mod.main(["--run", str(smoke_rm), "--models", "sft/xs", "--results", str(tmp_path / "closed_qa.json")])
    for mode in ("T=0", "T=1"):
        r = result["models"]["sft/xs"][mode]
        assert r["answerable"]["prompts"] + r["unanswerable"]["prompts"] > 0
        for group in ("answerable", "unanswerable"):
            if r[group]["prompts"]:
                assert sum(r[group][k] for k in mod.KINDS) == pytest.approx(1.0, abs=1e-3)


def test_generation_bench_counts_tokens_up_to_eos():
    gen = _module("generation")
    assert gen._count([[5, 6, 1, 0, 0], [7, 8, 9]], eos=1) == 3 + 3
    assert gen._count([[1]], eos=1) == 1


def test_hub_memory_runs_every_phase_of_the_hub_code_on_tiny_models(tmp_path):
    """bench/hub_memory.py (the GPU memory check of issue 7) in its CPU mode: the kit's hub stages
    run on random local models and synthetic files in the hub's schemas, and every phase the plan
    names gets a measured peak; its docs table is the one in docs/memory.md for the GPU results."""
    import json
    hub_memory = _module("hub_memory")
    result = hub_memory.run("colab-t4", tiny=True, root=tmp_path, log=lambda *a: None)
    assert result["errors"] == {}
    assert set(result["phases"]) == {"sft", "rm", "ppo_rollout", "ppo_update", "baseline", "judge"}
    assert all(r["allocated_gib"] > 0 and r["estimated_gib"] > 0 for r in result["phases"].values())
    docs = (REPO / "docs" / "memory.md").read_text()
    files = sorted((REPO / "bench" / "results").glob("hub_memory_*_cuda*.json"))
    assert len(files) == 3  # colab-t4, a100 and colab-t4's first run (before hub._free worked)
    for path in files:  # regenerate: python bench/hub_memory.py --docs FILE
        text = hub_memory.table(json.loads(path.read_text()))
        assert f"<!-- {hub_memory.marker(path)}:start -->\n{text}\n<!-- {hub_memory.marker(path)}:end -->" in docs


def test_rm_memory_probe_runs_every_variant(tmp_path):
    """Each variant's child script runs the kit's RM training on a tiny random model (on a CPU the
    probe measures nothing, but a variant that no longer fits the code fails here, not on a GPU)."""
    import random
    import subprocess
    import sys
    from transformers import GPTNeoXConfig
    probe, hub = _module("rm_memory_probe"), _module("hub_memory")
    tok = hub.tokenizer(random.Random(0))
    config = GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=512)
    hub.save_random(config, tmp_path, tok, classifier=False, device="cpu")
    for variant in probe.VARIANTS:
        out = subprocess.run([sys.executable, "-c", probe.CHILD, variant, str(tmp_path), str(REPO), "smoke"],
                             capture_output=True, text=True)
        assert out.returncode == 0, f"{variant}: {out.stderr[-800:]}"
        assert json.loads(out.stdout.strip().splitlines()[-1])["variant"] == variant


def test_rm_memory_probe_table_in_docs_is_its_result_file():
    import json
    probe = _module("rm_memory_probe")
    results = json.loads((REPO / "bench" / "results" / "rm_memory_probe.json").read_text())
    assert {r["variant"] for r in results} == set(probe.VARIANTS)
    assert probe.table(results) in (REPO / "docs" / "memory.md").read_text()  # python bench/rm_memory_probe.py --docs


def test_rm_seeds_retrains_the_stage_s_own_rm_at_seed_0(smoke_rm, tmp_path):
    import json
    import shutil
    bench = _module("rm_seeds")
    smoke_rm = shutil.copytree(smoke_rm, tmp_path / "run", symlinks=True)  # --extra-sets writes into the run
    result = bench.main(["--run", str(smoke_rm), "--preset", "smoke", "--seeds", "0", "1", "--tag", "t",
                         "--results", str(tmp_path / "rm_seeds.json")])
    stage = json.loads((smoke_rm / "rm" / "metrics.json").read_text())
    entry = result["tags"]["t"]
    for metric in bench.METRICS:  # the bias shift moves no pair, so seed 0 is the stage's accuracy
        assert abs(entry["seeds"]["0"][metric] - stage[metric]["accuracy"]) < 1e-3
        values = [entry["seeds"][s][metric] for s in ("0", "1")]
        assert abs(entry["summary"][metric]["mean"] - sum(values) / 2) < 1e-4
        assert entry["summary"][metric]["min"] == min(values)
    assert json.loads((tmp_path / "rm_seeds.json").read_text())["tags"]["t"] == entry
    from igpt_lib.config import get_preset
    assert entry["config"]["epochs"] == get_preset("smoke").rm.epochs and "seed" not in entry["config"]
    assert "| `t`: the stage's own |" in bench.table({"tags": {"t": entry}})
    assert "| `t`: epochs = 7 |" in bench.table({"tags": {"t": {**entry, "config": {**entry["config"], "epochs": 7}}}})
    assert entry["train_sets"] == stage["train_prompts"]
    rounds = stage["config"]["sets_per_prompt"]
    fewer = bench.main(["--run", str(smoke_rm), "--preset", "smoke", "--seeds", "0", "--tag", "one", "--sets", "1",
                        "--results", str(tmp_path / "rm_seeds.json")])["tags"]["one"]
    assert fewer["train_sets"] == stage["train_prompts"] // rounds > 0
    more = bench.main(["--run", str(smoke_rm), "--preset", "smoke", "--seeds", "0", "--tag", "more", "--extra-sets", "1",
                       "--results", str(tmp_path / "rm_seeds.json")])["tags"]["more"]
    assert more["train_sets"] == stage["train_prompts"] + stage["train_prompts"] // rounds
    assert (smoke_rm / "rm" / "comparisons.extra1.jsonl").exists()  # sampled once, then reused
    wider = bench.main(["--run", str(smoke_rm), "--preset", "smoke", "--seeds", "0", "--tag", "wider",
                        "--extra-prompts", "5", "--extra-prompt-sets", "2",
                        "--results", str(tmp_path / "rm_seeds.json")])["tags"]["wider"]
    assert wider["train_sets"] == stage["train_prompts"] + 5 * 2
    assert "5 more prompts (new users), 2 set(s) each" in bench.table({"tags": {"wider": wider}})
    from igpt_lib import data as D
    new = D.read_jsonl(smoke_rm / "rm" / "comparisons.prompts5x2.jsonl")
    run_prompts = {r["prompt"] for f in (smoke_rm / "world" / "data").glob("prompts.*.jsonl") for r in D.read_jsonl(f)}
    assert len({r["prompt"] for r in new}) == 5 and not run_prompts & {r["prompt"] for r in new}
    assert all(r["user_id"].startswith("r") and len(r["responses"]) == len(r["ranks"]) for r in new)
    again = bench.main(["--run", str(smoke_rm), "--preset", "smoke", "--seeds", "0", "--tag", "again",
                        "--sample-seed", "7", "--results", str(tmp_path / "rm_seeds.json")])["tags"]["again"]
    from igpt_lib.comparisons import SPLITS, comparisons_digest
    folder = smoke_rm / "rm" / "resample7"
    assert all((folder / f"comparisons.{split}.jsonl").exists() for split in SPLITS + ("fold",))
    assert again["comparisons"] == comparisons_digest(folder) != entry["comparisons"]  # new samples, new ranks
    assert again["train_sets"] == stage["train_prompts"] and again["sample_seed"] == 7
    assert [r["prompt"] for r in D.read_jsonl(folder / "comparisons.val.jsonl")] == \
        [r["prompt"] for r in D.read_jsonl(smoke_rm / "rm" / "comparisons.val.jsonl")]  # the same prompts
    assert "| `again`: the run's comparisons sampled afresh (seed 7) |" in bench.table({"tags": {"again": again}})
    folds = [entry["seeds"]["0"]["fold_labelers"], again["seeds"]["0"]["fold_labelers"]]
    assert f"on 2 sets of comparisons (seed 0 each: `t`, `again`): held-out fold {sum(folds) / 2:.3f}" in \
        bench.table({"tags": {"t": entry, "again": again}})


def test_rm_base_makes_an_sft_model_the_rm_seeds_can_start_from(smoke_rm, tmp_path):
    import json
    import shutil
    base, seeds = _module("rm_base"), _module("rm_seeds")
    run = shutil.copytree(smoke_rm, tmp_path / "run", symlinks=True)
    base.main(["--run", str(run), "--preset", "smoke", "--out", str(tmp_path / "scratch"), "--shape", "32,1,2",
               "--tokens", "8192"])
    base.main(["--run", str(run), "--preset", "smoke", "--out", str(tmp_path / "more"), "--from", "xs",
               "--tokens", "8192"])
    scratch, more = (json.loads((tmp_path / name / "info.json").read_text()) for name in ("scratch", "more"))
    assert scratch["params"] != more["params"] and "from scratch" in scratch["how"] and "continued" in more["how"]
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "scratch" / "sft").config.hidden_size == 32
    results = tmp_path / "rm_seeds.json"
    own = seeds.main(["--run", str(run), "--preset", "smoke", "--seeds", "0", "--tag", "own", "--results", str(results)])
    other = seeds.main(["--run", str(run), "--preset", "smoke", "--seeds", "0", "--tag", "scratch",
                        "--sft-model", str(tmp_path / "scratch" / "sft"), "--results", str(results)])
    own, other = own["tags"]["own"], other["tags"]["scratch"]
    assert own["rm_base"] is None and other["rm_base"]["how"] == scratch["how"]
    assert other["rm_base"]["sft"] == scratch["sft"]  # the SFT choice made from that base
    sft_l = json.loads((run / "sft" / "summary.json").read_text())["models"]["l"]["score"]
    assert own["start_sft_score"] is None  # smoke's RM starts from base-l + public NLP questions: no SFT model
    assert other["start_sft_score"] == scratch["sft"]["score"]
    from_sft = seeds.main(["--run", str(run), "--preset", "smoke", "--seeds", "0", "--tag", "from_sft", "--set",
                           "public_nlp=0", "--results", str(results)])["tags"]["from_sft"]
    assert from_sft["start_sft_score"] == sft_l and "`from_sft`: RM from SFT |" in seeds.table({"tags": {"from_sft": from_sft}})
    assert own["comparisons"] == other["comparisons"]  # the same data, so the rows compare
    assert other["seeds"]["0"]["params"] != own["seeds"]["0"]["params"]  # ... from the other model
    assert f"RM from SFT of: {scratch['how']}" in seeds.table({"tags": {"scratch": other}})


def test_rm_seeds_table_in_docs_is_its_result_file():
    import json
    bench = _module("rm_seeds")
    result = json.loads(bench.RESULTS.read_text())
    assert "default" in result["tags"]  # the stage's own recipe, the yardstick for the others
    # rows name their differences from the preset's *current* defaults (a moved default would show), the
    # RM's start first
    assert "| `nlp20k_30cb1294`: the stage's own |" in bench.table(result)  # cpu: the public-NLP start, lr 2e-4
    assert "| `default`: RM from SFT, lr = 0.0005 |" in bench.table(result)    # an SFT start of the old default lr
    assert "| `nlp16k_30cb1294`: RM from base + 16,000 public NLP questions |" in bench.table(result)
    assert bench.table(result) in (REPO / "docs" / "implementation_details.md").read_text()  # --docs


def test_rm_seeds_heldout_slope_is_a_line_through_chance():
    bench = _module("rm_seeds")
    tag = lambda g, h: {"summary": {"gold_strict": {"mean": g}, "heldout_labelers": {"mean": h}}}  # noqa: E731
    k, worst = bench.heldout_slope({"tags": {"a": tag(0.6, 0.55), "b": tag(0.7, 0.6)}})
    assert abs(k - 0.5) < 1e-12 and worst < 1e-12
    k, worst = bench.heldout_slope({"tags": {"a": tag(0.6, 0.55), "b": tag(0.7, 0.65)}})
    assert 0.5 < k < 0.75 and worst > 0.01


def test_rm_seeds_likert_ties_and_config_changes():
    import pytest
    bench = _module("rm_seeds")
    row = {"ranks": [2, 0, 3, 1, 4], "likert": [5, 7, 5, 6, 2]}
    assert bench.likert_ties(row)["ranks"] == [2, 0, 2, 1, 3]  # ordered within Likert 5: now a tie
    contradicting = {"ranks": [0, 1], "likert": [3, 6]}
    assert bench.likert_ties(contradicting) == contradicting
    from igpt_lib.config import RewardConfig
    assert bench.parse_sets(["epochs=3", "lr=2.5e-4", "gradient_checkpointing=true"], RewardConfig()) == {
        "epochs": 3, "lr": 2.5e-4, "gradient_checkpointing": True}
    with pytest.raises(SystemExit, match="no field 'epoch'"):
        bench.parse_sets(["epoch=3"], RewardConfig())
    assert bench.describe({"lr": 1e-3, "public_nlp": 0, "epochs": 2}) == ["RM from SFT", "lr = 0.001", "epochs = 2"]
    assert bench.describe({"epochs": 0, "public_nlp": 20_000}) == [  # the start scored as it is
        "RM from base + 20,000 public NLP questions", "epochs = 0: the start alone, its head untrained on the comparisons"]


def test_rm_seeds_gold_labels_rank_by_the_gold_score():
    bench = _module("rm_seeds")
    row = {"task": "add", "meta": {"a": 2, "b": 3}, "responses": ["5", "6", "5 5 5", "7"], "ranks": [3, 0, 1, 2]}
    assert bench.gold_ranks(row)["ranks"] == [0, 2, 1, 2]  # right; wrong ties wrong; right but rambling between


def test_rm_likelihood_scores_responses_as_a_slow_loop_does(smoke_rm, tmp_path):
    import json
    from transformers import AutoModelForCausalLM
    from igpt_lib.data import load_comparison_rows
    from igpt_lib.models import load_tokenizer
    bench = _module("rm_likelihood")
    lm = AutoModelForCausalLM.from_pretrained(smoke_rm / "sft" / "xs").eval()
    tok = load_tokenizer(smoke_rm / "rm")
    rows = load_comparison_rows(smoke_rm / "rm" / "comparisons.val.jsonl")[:5]
    fast = bench.likelihoods(lm, tok, rows, batch_size=7)  # chunks cut across rows, prompts of mixed length
    for r, scores in zip(rows, fast):
        for y, s in zip(r["responses"], scores):
            q = tok(r["prompt"])["input_ids"]
            ids = torch.tensor([q + tok(y, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
            with torch.no_grad():
                logits = lm(ids).logits[0, :-1].float()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[len(q) - 1:]
            assert abs(s - float(logp.sum())) < 1e-4
    results = tmp_path / "rm_likelihood.json"
    entry = bench.main(["--run", str(smoke_rm), "--preset", "smoke", "--judge", str(smoke_rm / "sft" / "xs"),
                        "--results", str(results)])
    stage = json.loads((smoke_rm / "rm" / "metrics.json").read_text())
    for m in bench.METRICS:  # the stage's RM row is the stage's own accuracy (the bias shift moves no pair)
        assert abs(entry["rm"][m] - stage[m]["accuracy"]) < 1e-3
    from igpt_lib.config import get_preset
    from igpt_lib.reward import evaluate, load_reward_model, score_sets
    train = load_comparison_rows(smoke_rm / "rm" / "comparisons.train.jsonl")
    rm_alone = evaluate(score_sets(load_reward_model(smoke_rm / "rm").eval(), tok, train, get_preset("smoke").rm),
                        train)["accuracy"]
    judged = entry["judges"]["sft/xs"]
    assert judged["rm_plus_likelihood"]["train_fit"] >= round(rm_alone, 4) - 1e-4  # α = 0 is on the grid
    val = load_comparison_rows(smoke_rm / "rm" / "comparisons.val.jsonl")
    by_length = [[-len(y.split()) for y in r["responses"]] for r in val]
    assert entry["shorter"]["gold_strict"] == round(evaluate(by_length, val, by_gold=True)["accuracy"], 4)
    text = bench.table(json.loads(results.read_text()))
    assert f"| the stage's RM | {entry['rm']['train_labelers']:.3f} |" in text and "`sft/xs`" in text


def test_rm_likelihood_alpha_orders_by_the_better_judge_and_is_the_smallest_among_equals():
    bench = _module("rm_likelihood")
    rows = [{"task": "add", "meta": {"a": 1, "b": 1}, "responses": ["2", "3", "4"], "ranks": [0, 1, 2]}] * 3
    rm = [[0.0, 1.0, 2.0]] * 3          # orders every pair wrong
    ll = [[2.0, 1.0, 0.0]] * 3          # orders every pair right
    alpha, fit = bench.choose_alpha(rm, ll, rows)
    assert fit == 1.0 and alpha == min(a for a in bench.ALPHAS if a > 1.0)  # the smallest α where the likelihood wins
    assert bench.choose_alpha(ll, rm, rows) == (0.0, 1.0)


def test_rm_likelihood_table_in_docs_is_its_result_file():
    import json
    bench = _module("rm_likelihood")
    assert bench.table(json.loads(bench.RESULTS.read_text())) in (REPO / "docs" / "implementation_details.md").read_text()


def test_ppo_oracle_rewards_each_response_with_its_gold_score(smoke_rm, tmp_path):
    import json
    import shutil
    import pytest
    bench = _module("ppo_oracle")
    run = shutil.copytree(smoke_rm, tmp_path / "run", symlinks=True)
    entry = bench.main(["--run", str(run), "--preset", "smoke", "--results", str(tmp_path / "oracle.json")])
    rows = [json.loads(line) for line in (run / "bench_ppo_oracle" / "metrics.jsonl").read_text().splitlines()]
    scale = entry["how"]["scale"]
    assert rows and all(abs(r["score"] - scale * r["gold"]) < 1e-3 * scale for r in rows)  # the reward is the gold
    assert entry["stage"] is None and entry["kl_last30"] >= 0
    result = json.loads((tmp_path / "oracle.json").read_text())
    assert result[f"{run}/bench_ppo_oracle"] == entry
    d = entry["this"]["test_gold"]
    assert f"(oracle), × {scale}: the RM's spread | 0 | {d['difference']:+.3f} [{d['ci95'][0]:+.3f}," in bench.table(result)
    again = bench.main(["--run", str(run), "--preset", "smoke", "--reward", "rm", "--seed", "1",
                        "--results", str(tmp_path / "oracle.json")])
    assert again["name"] == "bench_ppo_rm_seed1" and again["config"]["seed"] == 1 and again["how"] is None
    assert (run / "bench_ppo_rm_seed1" / "summary.json").exists()
    assert "| the RM (as the stage) | 1 |" in bench.table(json.loads((tmp_path / "oracle.json").read_text()))
    with pytest.raises(SystemExit, match="ppo\\* folders"):
        bench.main(["--run", str(run), "--preset", "smoke", "--name", "ppo_x", "--results", str(tmp_path / "o.json")])


def test_ppo_oracle_gold_reward_looks_each_prompt_up():
    import pytest
    from igpt_lib.world.gold import gold_score
    bench = _module("ppo_oracle")
    add = {"prompt": "Q : add 2 and 3 A :", "task": "add", "meta": {"a": 2, "b": 3}}
    rev = {"prompt": "Q : reverse : a b A :", "task": "reverse", "meta": {"seq": ["a", "b"]}}
    reward = bench.gold_reward([add, rev], scale=2.0)
    assert reward([rev["prompt"], add["prompt"]], ["b a", "6"]) == [2.0 * gold_score(rev, "b a"), 2.0 * gold_score(add, "6")]
    with pytest.raises(ValueError, match="differ in their task"):
        bench.gold_reward([add, {**add, "meta": {"a": 3, "b": 2}}])


def test_ppo_oracle_rm_plus_likelihood_is_the_rm_plus_weighted_likelihood(smoke_rm):
    from transformers import AutoModelForCausalLM
    from igpt_lib.config import get_preset
    from igpt_lib.models import load_tokenizer
    from igpt_lib.reward import load_reward_model, rm_text, score_texts
    bench, judge = _module("ppo_oracle"), _module("rm_likelihood")
    preset = get_preset("smoke")
    reward, how = bench.rm_plus_likelihood(smoke_rm, preset)
    prompts, responses = ["Q : add 2 and 3 A :", "Q : reverse : a b A :"], ["5", "b a"]
    tok = load_tokenizer(smoke_rm / "rm")
    rm = load_reward_model(smoke_rm / "rm").eval()
    lm = AutoModelForCausalLM.from_pretrained(smoke_rm / "sft" / preset.rm.size).eval()
    with torch.no_grad():
        scores = score_texts(rm, tok, [rm_text(p, y, tok) for p, y in zip(prompts, responses)], preset.rm.max_length)
    ll = judge.likelihoods(lm, tok, [{"prompt": p, "responses": [y]} for p, y in zip(prompts, responses)])
    got = reward(prompts, responses)
    for g, s, x in zip(got, scores.tolist(), ll):
        assert abs(g - (s + how["weight"] * x[0])) < 1e-3 * max(1.0, abs(g))
    assert how["alpha"] in judge.ALPHAS and how["judge"] == f"sft/{preset.rm.size}"


def test_ppo_oracle_table_in_docs_is_its_result_file():
    import json
    bench = _module("ppo_oracle")
    assert bench.table(json.loads(bench.RESULTS.read_text())) in (REPO / "docs" / "implementation_details.md").read_text()


def test_rm_preset_trial_prepares_a_run_with_more_rm_prompts_and_nothing_else_changed(smoke_rm, tmp_path):
    """bench/rm_preset_trial.py: the trial folder keeps the run's world and SFT models; only the RM's
    prompts grow (so the SFT models stay valid), and the preset it runs asks for them."""
    from igpt_lib import data as D
    from igpt_lib.config import get_preset
    trial = _module("rm_preset_trial")
    preset = trial.trial_preset(get_preset("smoke"), rm_scale=64, sets_per_prompt=1)
    assert preset.world.n_rm_prompts() == round(33_000 / 64) and preset.rm.sets_per_prompt == 1
    changed = trial.trial_preset(get_preset("smoke"), 64, 1, {"public_nlp": 0, "lr": 1e-3})  # --set
    assert (changed.rm.public_nlp, changed.rm.lr) == (0, 1e-3) != (preset.rm.public_nlp, preset.rm.lr)
    assert replace(changed.rm, public_nlp=preset.rm.public_nlp, lr=preset.rm.lr) == preset.rm  # nothing else
    out = tmp_path / "trial"
    trial.prepare(smoke_rm, out, preset)
    old, new = smoke_rm / "world" / "data", out / "world" / "data"
    for path in sorted(old.glob("*.json*")):
        if path.name != "prompts.rm.jsonl":
            assert (new / path.name).read_bytes() == path.read_bytes(), path.name
    assert len(D.read_jsonl(new / "prompts.rm.jsonl")) == preset.world.n_rm_prompts()
    assert (out / "sft" / "summary.json").read_bytes() == (smoke_rm / "sft" / "summary.json").read_bytes()
    assert not (out / "rm").exists()
    with pytest.raises(SystemExit, match="exists"):
        trial.prepare(smoke_rm, out, preset)


def test_rm_preset_trial_table_in_docs_is_its_result_file():
    import json
    trial = _module("rm_preset_trial")
    result = json.loads(trial.RESULTS.read_text())
    assert result["trials"] and all(t["rm"]["gold_strict"] > 0.5 for t in result["trials"].values())
    assert trial.table(result) in (REPO / "docs" / "implementation_details.md").read_text()  # --docs


def test_rm_preset_trial_table_shows_a_dash_where_an_rm_only_trial_ran_no_ppo():
    trial = _module("rm_preset_trial")
    rm_only = {"run": "runs/x", "train_sets": 16_500, "stages": {"rm": {"seconds": 420.4}}, "ppo": {},
               "rm": {"train_labelers": 0.65, "heldout_labelers": 0.66, "gold_strict": 0.78}}
    row = trial.table({"trials": {"rm_scale=2, sets=1": rm_only}}).splitlines()[-1]
    assert row == "| rm_scale=2, sets=1 (from runs/x) | 16,500 | 420 s | 0.650 | — | 0.660 | 0.780 | — | — | — |"
    rm_only["rm"]["fold_labelers"] = 0.64   # a trial with the labeler fold (item 23)
    row = trial.table({"trials": {"rm_scale=2, sets=1, labeler fold": rm_only}}).splitlines()[-1]
    assert row == "| rm_scale=2, sets=1, labeler fold (from runs/x) | 16,500 | 420 s | 0.650 | 0.640 | 0.660 | 0.780 | — | — | — |"


def test_ppo_select_judges_runs_on_the_validation_prompts_and_skips_beta0(smoke_rm, tmp_path):
    import json
    import shutil
    import pytest
    from igpt_lib.cli import main
    bench = _module("ppo_select")
    run = shutil.copytree(smoke_rm, tmp_path / "run", symlinks=True)
    for extra in ([], ["--kl-coef", "0", "--name", "ppo_sweep_beta0"], ["--lr", "1e-3", "--name", "ppo_grid_x"]):
        assert main(["ppo", "--preset", "smoke", "--out", str(run), *extra]) == 0
    result = bench.main(["--run", str(run), "--preset", "smoke", "--results", str(tmp_path / "select.json")])
    assert json.loads((tmp_path / "select.json").read_text())["runs"][str(run)] == result
    entries = {e["name"]: e for e in result["entries"]}
    assert sorted(entries) == ["ppo", "ppo_grid_x", "ppo_sweep_beta0"]
    val = len((run / "world" / "data" / "prompts.val.jsonl").read_text().splitlines())
    assert all(e["val"][how]["prompts"] == min(val, 400) for e in entries.values() for how in ("greedy", "sampled"))
    summary = json.loads((run / "ppo" / "summary.json").read_text())     # the test columns are the summary's
    assert entries["ppo"]["test"]["greedy"]["difference"] == round(summary["test_gold"]["difference"]["mean"], 4)
    assert result["chosen"] != "ppo_sweep_beta0" and entries["ppo_grid_x"]["lr"] == 1e-3
    assert f"`{result['chosen']}` **(chosen)**" in bench.table(json.loads((tmp_path / "select.json").read_text()))
    with pytest.raises(SystemExit, match="ppo_typo"):   # a named run that is not there: said, not skipped
        bench.main(["--run", str(run), "--preset", "smoke", "--runs", "ppo", "ppo_typo", "--results", str(tmp_path / "x.json")])


def test_ppo_select_rule_takes_the_best_validation_greedy_gain_with_a_penalty():
    bench = _module("ppo_select")

    def entry(name, beta, gain):
        return {"name": name, "kl_coef": beta, "val": {"greedy": {"difference": gain}}}
    assert bench.choose([entry("a", 0.05, 0.01), entry("b", 0.0, 0.5), entry("c", 0.1, 0.02)]) == "c"


def test_ppo_select_table_in_docs_is_its_result_file():
    import json
    bench = _module("ppo_select")
    assert bench.table(json.loads(bench.RESULTS.read_text())) in (REPO / "docs" / "implementation_details.md").read_text()


def test_world_build_says_how_far_rebuilt_models_are_from_the_shipped_ones(tmp_path, monkeypatch):
    """bench/world_build.py compares each rebuilt model with the shipped one (bytes, weights, final
    loss), and docs/update_numbers.py puts that in words for docs/world.md."""
    import json
    from safetensors.torch import save_file
    wb = _module("world_build")
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    for root, shift, loss in ((shipped, 0.0, 1.25), (cache, 0.004, 1.25 + 5e-7)):
        folder = root / "xs-abc"
        folder.mkdir(parents=True)
        save_file({"w": torch.ones(3) + torch.tensor([0.0, shift, 0.0])}, str(folder / "model.safetensors"))
        (folder / "pretrain_log.json").write_text(json.dumps({"final_loss": loss}))
    (cache / "m-notshipped").mkdir()  # only the models the kit ships are compared
    monkeypatch.setattr(wb, "__file__", str(tmp_path / "bench" / "world_build.py"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "base_models").symlink_to(shipped)
    found = wb._against_shipped(cache)
    assert list(found) == ["xs-abc"] and not found["xs-abc"]["byte_equal"]
    assert found["xs-abc"]["max_abs_diff"] == pytest.approx(0.004, abs=1e-6)
    assert found["xs-abc"]["loss_diff"] == pytest.approx(5e-7)
    spec = importlib.util.spec_from_file_location("update_numbers", REPO / "docs" / "update_numbers.py")
    numbers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(numbers)
    same = {"xs-abc": {"byte_equal": True, "max_abs_diff": 0.0, "loss_diff": 0.0}}
    assert numbers.shipped_line(same) == "Weights byte-equal to the shipped ones: yes (1 models)."
    line = numbers.shipped_line({**found, "l_nlp-def": {"byte_equal": False, "max_abs_diff": 0.05, "loss_diff": 0.01}})
    assert "0 of 2. The base models: final training losses within 5.0e-07, weights within 0.004; the RM's start" in line
    assert "base-l: final training losses within 1.0e-02, weights within 0.050" in line
