"""Resume, proven: SIGKILL a stage at a random point, `--resume` it, and get bitwise the same
weights and metrics as an uninterrupted run (issue 9). The uninterrupted SFT and RM runs are the
`smoke_rm` fixture's; the kill lands wherever the process happens to be (mid-checkpoint too)."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from igpt_lib.cli import main


def _run_until_killed(args, out, ready, log_dir, timeout=300):
    """Start `python -m igpt_lib ARGS --out OUT`; SIGKILL it as soon as `ready()` holds."""
    with open(log_dir / "killed.log", "w") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "igpt_lib", *args, "--out", str(out)],
                                stdout=logf, stderr=subprocess.STDOUT, env=os.environ.copy())
        start = time.time()
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"finished before the kill point: {(log_dir / 'killed.log').read_text()[-2000:]}")
            if time.time() - start > timeout:
                proc.kill()
                pytest.fail("kill point not reached in time")
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def _same_weights(a, b):
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys(), (a, b)
    for name in ta:
        assert torch.equal(ta[name], tb[name]), f"{b}: {name} differs"


def _without_seconds(path):
    data = json.loads(Path(path).read_text())
    data.pop("seconds", None)
    return data


def _copy_inputs(src, dst, stages):
    dst.mkdir()
    shutil.copy2(src / "world.json", dst / "world.json")
    for stage in stages:
        shutil.copytree(src / stage, dst / stage)


def _refuses_without_resume(args, state_exists):
    """Starting again over an interrupted run's state needs --resume (nothing is overwritten)."""
    if state_exists:
        with pytest.raises(FileExistsError, match="--resume"):
            main(args)


def test_sft_killed_at_a_random_epoch_resumes_bitwise(smoke_rm, tmp_path):
    out = tmp_path / "run"
    _copy_inputs(smoke_rm, out, ["world"])
    metrics = out / "sft" / "metrics.jsonl"
    total = _lines(smoke_rm / "sft" / "metrics.jsonl")      # epoch rows of every size
    k = random.Random().randint(1, total - 2)
    _run_until_killed(["sft", "--preset", "smoke"], out, lambda: _lines(metrics) >= k, tmp_path)
    args = ["sft", "--preset", "smoke", "--out", str(out)]
    state = (out / "sft" / "progress.json").exists() or any((out / "sft").glob("checkpoints/*/checkpoint-*"))
    _refuses_without_resume(args, state)
    assert main(args + ["--resume"]) == 0, f"killed after metrics line {k}"
    assert metrics.read_text() == (smoke_rm / "sft" / "metrics.jsonl").read_text(), f"killed after line {k}"
    sizes = json.loads((smoke_rm / "sft" / "summary.json").read_text())["models"]
    for size in sizes:
        _same_weights(smoke_rm / "sft" / size / "model.safetensors", out / "sft" / size / "model.safetensors")
    _same_weights(smoke_rm / "sft" / "model.safetensors", out / "sft" / "model.safetensors")
    assert _without_seconds(out / "sft" / "summary.json") == _without_seconds(smoke_rm / "sft" / "summary.json")
    assert not (out / "sft" / "checkpoints").exists() and not (out / "sft" / "progress.json").exists()


def test_rm_killed_at_a_random_step_resumes_bitwise(smoke_rm, tmp_path):
    from igpt_lib.checkpoint import checkpoints
    from igpt_lib.config import get_preset
    out = tmp_path / "run"
    _copy_inputs(smoke_rm, out, ["world", "sft"])
    every = get_preset("smoke").rm.save_every
    steps = _lines(smoke_rm / "rm" / "train_log.jsonl")
    target = every * random.Random().randint(1, (steps - 1) // every)
    ckpt = out / "rm" / "checkpoints"
    reached = lambda: any(int(p.name.rsplit("-", 1)[1]) >= target for p in ckpt.glob("*step-*"))  # noqa: E731
    _run_until_killed(["rm", "--preset", "smoke"], out, reached, tmp_path)
    args = ["rm", "--preset", "smoke", "--out", str(out)]
    _refuses_without_resume(args, bool(checkpoints(ckpt)))
    assert main(args + ["--resume"]) == 0
    for name in ("train_log.jsonl", "comparisons.train.jsonl", "comparisons.heldout.jsonl"):
        assert (out / "rm" / name).read_text() == (smoke_rm / "rm" / name).read_text(), f"{name}, step {target}"
    _same_weights(smoke_rm / "rm" / "model.safetensors", out / "rm" / "model.safetensors")
    assert _without_seconds(out / "rm" / "metrics.json") == _without_seconds(smoke_rm / "rm" / "metrics.json")
    assert not ckpt.exists()


def test_ppo_killed_at_a_random_iteration_resumes_bitwise(smoke_rm, tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for run in (whole, cut):
        _copy_inputs(smoke_rm, run, ["world", "sft", "rm"])
    assert main(["ppo", "--preset", "smoke", "--out", str(whole)]) == 0
    iterations = _lines(whole / "ppo" / "metrics.jsonl")
    k = random.Random().randint(1, iterations - 1)
    _run_until_killed(["ppo", "--preset", "smoke"], cut, lambda: _lines(cut / "ppo" / "metrics.jsonl") >= k, tmp_path)
    assert main(["ppo", "--preset", "smoke", "--out", str(cut), "--resume"]) == 0
    assert (cut / "ppo" / "metrics.jsonl").read_text() == (whole / "ppo" / "metrics.jsonl").read_text(), k
    _same_weights(whole / "ppo" / "model.safetensors", cut / "ppo" / "model.safetensors")
    assert _without_seconds(cut / "ppo" / "summary.json") == _without_seconds(whole / "ppo" / "summary.json")
