"""The CLI frame and the presets."""
import json
import subprocess
import sys

import pytest

from igpt_lib.cli import main, parser
from igpt_lib.config import PRESETS, get_preset


def test_every_subcommand_takes_preset_and_out():
    for cmd in (["world", "build"], ["sft"], ["rm"], ["ppo"], ["eval"], ["reproduce"]):
        args = parser().parse_args(cmd + ["--preset", "smoke", "--out", "x"])
        assert args.preset == "smoke" and args.out == "x"


def test_unknown_preset_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        get_preset("tpu")
    r = subprocess.run([sys.executable, "-m", "igpt_lib", "world", "build", "--preset", "tpu"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice: 'tpu'" in r.stderr


def test_presets_are_named_instances_with_a_wide_model_family():
    assert set(PRESETS) == {"smoke", "cpu", "colab-t4", "a100"}
    for preset in PRESETS.values():
        assert len(preset.world.sizes) >= 4
        assert [s.hidden for s in preset.world.sizes] == sorted(s.hidden for s in preset.world.sizes)


def test_world_data_command_writes_the_datasets(tmp_path):
    assert main(["world", "data", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "comparisons.train.jsonl").exists() and (tmp_path / "labelers.json").exists()


def test_reproduce_skips_stages_already_done(smoke_world, tmp_path, capsys):
    import shutil
    out, _ = smoke_world
    shutil.copytree(out / "world", tmp_path / "world")
    shutil.copy(out / "world.json", tmp_path / "world.json")
    assert main(["reproduce", "--preset", "smoke", "--out", str(tmp_path), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "world already in" in printed and "sft done in" in printed and "eval done in" in printed
    assert (tmp_path / "sft" / "summary.json").exists() and (tmp_path / "ppo_ptx" / "summary.json").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["headline"]["policy"] == "PPO-ptx:xs" and report["headline"]["baseline"] == "GPT:l"
    beta0 = json.loads((tmp_path / "ppo_beta0" / "summary.json").read_text())["config"]   # the β = 0 run is made
    assert beta0["kl_coef"] == 0 and beta0["lr"] == get_preset("smoke").ppo.beta0_lr
    over = report["claims"]["overoptimisation_at_beta0"]
    assert over["value"]["run"] == "ppo_beta0" and over["holds"] in (True, False)   # computed, not "needs a run"
    stages = json.loads((tmp_path / "stages.json").read_text())                # what bench/e2e.py reads
    assert list(stages) == ["sft", "rm", "ppo", "ppo_ptx", "ppo_beta0", "eval"]   # world was skipped: not timed
    assert all(r["seconds"] > 0 and 50 < r["peak_rss_mib"] < 20_000 for r in stages.values())
    assert stages["ppo"]["jobs"] == 2 and stages["ppo"]["threads"] >= 1   # side by side, in 2 processes
    assert "ppo_beta0: 2 at a time" in printed
    for name in ("ppo", "ppo_ptx", "ppo_beta0"):                          # each worker's output kept and shown
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        assert "held-out gold (greedy)" in log and all(line in printed for line in log.splitlines())
    assert main(["reproduce", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    assert "sft already in" in capsys.readouterr().out
    assert json.loads((tmp_path / "stages.json").read_text()) == stages           # skipped stages keep their times


def test_full_reproduce_adds_figure1_runs_and_reevaluates(tmp_path):
    import os
    from igpt_lib.cli import _figure1_runs, _stale
    preset = get_preset("smoke")
    runs = _figure1_runs(preset)
    assert [name for name, _ in runs] == ["ppo_s", "ppo_ptx_s", "ppo_m", "ppo_ptx_m", "ppo_ptx_seed1", "ppo_ptx_seed2"]
    assert runs[1][1] == {"policy": "s", "ptx_coef": preset.ppo_ptx.ptx_coef, "name": "ppo_ptx_s"}
    assert [kw.get("seed") for _, kw in runs[4:]] == [preset.ppo.seed + 1, preset.ppo.seed + 2]
    report = tmp_path / "report.json"
    report.write_text("{}")
    (tmp_path / "ppo_s").mkdir()
    summary = tmp_path / "ppo_s" / "summary.json"
    summary.write_text("{}")
    os.utime(report, (1000, 1000))
    assert _stale(report, tmp_path)                      # a run finished after the report: evaluate again
    os.utime(summary, (500, 500))
    assert not _stale(report, tmp_path)


def test_ppo_beta0_flag_runs_the_presets_beta0_config(monkeypatch):
    from igpt_lib import ppo_trainer
    seen = []
    monkeypatch.setattr(ppo_trainer, "run_ppo", lambda preset, out, **kw: seen.append(kw))
    assert main(["ppo", "--preset", "smoke", "--out", "x", "--beta0"]) == 0
    assert main(["ppo", "--preset", "smoke", "--out", "x", "--beta0", "--name", "b0_again"]) == 0
    ppo, beta0 = get_preset("smoke").ppo, get_preset("smoke").ppo_beta0
    assert seen[0]["config"] == beta0 and seen[0]["name"] == "ppo_beta0" and seen[1]["name"] == "b0_again"
    assert beta0.kl_coef == 0 and beta0.lr == ppo.beta0_lr > ppo.lr
    assert beta0.batch_size // beta0.minibatch_size == ppo.batch_size // ppo.minibatch_size  # as many updates
    with pytest.raises(SystemExit):
        main(["ppo", "--preset", "colab-t4", "--out", "x", "--beta0"])             # hub presets: one clear error
