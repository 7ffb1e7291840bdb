"""reproduce's PPO runs side by side in worker processes (igpt_lib/parallel.py)."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from igpt_lib.config import get_preset
from igpt_lib.parallel import default_jobs, run_ppo_stages


def test_a_worker_computes_what_the_same_run_here_computes_and_failures_name_their_log(smoke_rm, tmp_path):
    preset, out = get_preset("smoke"), tmp_path / "run"
    shutil.copytree(smoke_rm, out)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                         # the workers' thread count: the same float sums
    try:
        run_ppo_stages(preset, out, [("here", {"name": "here"})], 1, lambda *a: None)
    finally:
        torch.set_num_threads(threads)
    timings = {}
    with pytest.raises(RuntimeError, match=r"broken \(log: .*broken\.log\)"):
        run_ppo_stages(preset, out, [("worker", {"name": "worker"}), ("broken", {"name": "broken", "policy": "xxl"})],
                       2, timings.__setitem__, threads=1, progress=False)
    assert list(timings) == ["worker"] and timings["worker"]["threads"] == 1    # the good run still finished
    here, worker = load_file(out / "here" / "model.safetensors"), load_file(out / "worker" / "model.safetensors")
    assert all(torch.equal(here[k], worker[k]) for k in here)                  # bit for bit
    assert "Traceback" in (out / "logs" / "broken.log").read_text()
    summary = json.loads((out / "worker" / "summary.json").read_text())
    assert summary["test_gold"] == json.loads((out / "here" / "summary.json").read_text())["test_gold"]


def test_side_by_side_needs_the_reward_model_and_skips_finished_runs(tmp_path, capsys):
    preset, started = get_preset("smoke"), []
    with pytest.raises(FileNotFoundError, match="no reward model"):
        run_ppo_stages(preset, tmp_path, [("ppo", {})], 2, started.append)
    (tmp_path / "ppo").mkdir()
    (tmp_path / "ppo" / "summary.json").write_text("{}")
    run_ppo_stages(preset, tmp_path, [("ppo", {})], 2, started.append)        # nothing left: no workers
    assert started == [] and "ppo already in" in capsys.readouterr().out


def test_default_jobs_one_per_core_at_most_one_per_run(monkeypatch):
    from igpt_lib import parallel
    monkeypatch.setattr(parallel, "cpu_cores", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert [default_jobs(n) for n in (0, 1, 3, 9)] == [1, 1, 2, 2]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_jobs(3) == 1                                                  # one GPU: in turn


def test_sft_scores_cache_keeps_a_key_another_process_wrote_meanwhile(tmp_path, monkeypatch):
    import numpy as np
    from igpt_lib import evaluation, ppo_trainer
    folder = tmp_path / "sft" / "xs"
    folder.mkdir(parents=True)
    cache = folder / "heldout_scores.json"

    def other_process_writes_then_we_finish(*args, **kwargs):
        cache.write_text(json.dumps({"theirs": [1.0]}))
        return np.array([0.5, 0.25])

    monkeypatch.setattr(evaluation, "heldout_scores", other_process_writes_then_we_finish)
    mine = ppo_trainer._sft_scores(tmp_path, "xs", None, None, 2, 8, temperature=0.0, samples=1, seed=0)
    known = json.loads(cache.read_text())
    assert mine.tolist() == [0.5, 0.25] and known["theirs"] == [1.0] and len(known) == 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_worker_ends_itself_when_its_parent_dies(tmp_path):
    import subprocess
    import sys
    import textwrap
    import time
    pidfile, script = tmp_path / "child.pid", tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing as mp, os, time
        from igpt_lib.parallel import _exit_with_parent

        def child(path):
            _exit_with_parent()
            with open(path, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)

        if __name__ == "__main__":
            mp.get_context("spawn").Process(target=child, args=({str(pidfile)!r},)).start()
            while not os.path.exists({str(pidfile)!r}) or not open({str(pidfile)!r}).read():
                time.sleep(0.05)
            os._exit(0)   # the parent dies without cleaning up: its child is orphaned
    """))
    subprocess.run([sys.executable, str(script)], timeout=120, check=True)
    pid, deadline = int(pidfile.read_text()), time.time() + 15
    while _running(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _running(pid)                      # gone within seconds, not after its 60 s of work


def _running(pid):
    """True while `pid` exists and is not a zombie (a container's init may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
